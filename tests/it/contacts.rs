//! The contacts file (the README's "Naming callers: the contacts file"): a contact's name wins
//! over caller ID in what ringside announces, a rewritten file is read again while ringside
//! runs, and `ringside check` and `ringside replay` report each bad line as
//! `contacts: FILE:LINE: problem` while the good lines still apply.

use crate::support::{DEADLINE, TestApp, TestConfig, eventually};
use crate::support_cli::{Finished, Sandbox, fixture, run};
use ringside::conference::Identity;
use ringside::simulator::{ConferenceScript, LeaveSignal, Person, play};
use std::time::Duration;

const CLI_TIMEOUT: Duration = Duration::from_secs(30);
/// Caller ID that names nobody, as a mobile carrier sends it.
const CALLER_ID: &str = "WIRELESS CALLER";

fn host() -> Person {
    Person::with_extension("Dana Host", "+16505550100", "62295300101")
}

/// Plays the notifications of `script` from `from` on.
async fn play_from(app: &TestApp, script: &ConferenceScript, from: usize) -> usize {
    let notifications = &script.notifications()[from..];
    play(
        &app.client,
        &app.webhook_url(),
        &app.token(),
        notifications,
        Duration::ZERO,
    )
    .await
    .expect("every notification is answered 200");
    script.notifications().len()
}

fn caller(number: &str) -> Identity {
    Identity {
        name: Some(CALLER_ID.into()),
        phone_number: Some(number.into()),
        extension_id: None,
    }
}

#[tokio::test]
async fn a_contact_names_the_caller_over_caller_id_and_a_rewritten_file_renames_while_running() {
    let mut config = TestConfig::new();
    let path = config.dir.path().join("contacts.csv");
    std::fs::write(
        &path,
        "number,name\n+14155550142,Paco (vendor)\nnot a number,Nobody\n",
    )
    .unwrap();
    config.settings.contacts.path = Some(path.clone());
    let app = config.start().await;

    let mut script = ConferenceScript::new(14, host(), time::OffsetDateTime::now_utc());
    script.start();
    let paco = script.call_and_merge(Person::new(CALLER_ID, "+14155550142"));
    let played = play_from(&app, &script, 0).await;
    let lines = app.wait_for_lines(2).await;
    assert_eq!(
        lines[1],
        "Paco (vendor) (•••0142) joined the conference hosted by Dana Host — 1 on the call",
        "the good line applies despite the bad one: {lines:#?}"
    );

    // A longer text: a new size, whatever the file system's clock resolution.
    std::fs::write(
        &path,
        "+1 (415) 555-0142,Paco Vu\n+14155550177,\"Chen, Bo (vendor)\"\n",
    )
    .unwrap();
    eventually(
        "the rewritten contacts file is read",
        DEADLINE,
        async || {
            let named = app.running.roster.named(&caller("+14155550177"));
            (named.name.as_deref() == Some("Chen, Bo (vendor)")).then_some(())
        },
    )
    .await;

    script.advance(Duration::from_secs(30));
    script.call_and_merge(Person::new(CALLER_ID, "+14155550177"));
    script.advance(Duration::from_secs(30));
    script.hang_up(paco, LeaveSignal::Both);
    play_from(&app, &script, played).await;
    let lines = app.wait_for_lines(4).await;
    assert_eq!(
        lines[2],
        "Chen, Bo (vendor) (•••0177) joined the conference hosted by Dana Host — 2 on the call",
        "{lines:#?}"
    );
    assert!(
        lines[3].starts_with("Paco Vu (•••0142) left after "),
        "the reloaded name for a caller already on the call: {lines:#?}"
    );
    assert!(
        lines.iter().all(|line| !line.contains(CALLER_ID)),
        "{lines:#?}"
    );
}

/// A settings file naming `contacts.csv` in the sandbox, and the contacts file itself.
fn with_contacts(sandbox: &Sandbox, contacts: &str, default_country_code: Option<&str>) {
    let code = default_country_code
        .map(|code| format!("default_country_code = \"{code}\"\n"))
        .unwrap_or_default();
    sandbox.write(
        "ringside.toml",
        &format!("[contacts]\npath = \"contacts.csv\"\n{code}"),
    );
    sandbox.write("contacts.csv", contacts);
}

fn ringside(sandbox: &Sandbox, args: &[&str]) -> Finished {
    let mut all = vec!["--config", "ringside.toml"];
    all.extend_from_slice(args);
    run(sandbox.command(all), None, CLI_TIMEOUT)
}

#[test]
fn check_reports_each_bad_contacts_line_with_file_and_line_and_counts_the_good_ones() {
    let sandbox = Sandbox::new();
    with_contacts(
        &sandbox,
        "number,name\n+14155550142,Paco\n4155550177,Bo\n+14155550199,\"Cy\n",
        None,
    );
    let out = ringside(&sandbox, &["check"]);
    assert_eq!(out.code(), Some(1), "{out:#?}");
    let lines = out.stdout_lines();
    let contacts: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|line| line.contains("contacts:"))
        .collect();
    assert_eq!(
        contacts,
        [
            "PROBLEM contacts: contacts.csv:3: the number is not an E.164 number (+ and country code); set contacts.default_country_code to accept national numbers",
            "PROBLEM contacts: contacts.csv:4: a quote opened on this line is never closed; the rest of the file is not read",
            "ok      contacts: 1 names from contacts.csv",
        ],
        "{out:#?}"
    );
    assert!(!out.stdout.contains("555"), "no numbers shown: {out:#?}");
}

#[test]
fn check_accepts_national_numbers_with_a_default_country_code() {
    let sandbox = Sandbox::new();
    with_contacts(&sandbox, "(415) 555-0142,Paco\n", Some("1"));
    let out = ringside(&sandbox, &["check"]);
    assert_eq!(out.code(), Some(0), "{out:#?}");
    assert!(
        out.stdout_lines()
            .contains(&"ok      contacts: 1 names from contacts.csv"),
        "{out:#?}"
    );
}

#[test]
fn check_names_a_missing_contacts_file() {
    let sandbox = Sandbox::new();
    sandbox.write("ringside.toml", "[contacts]\npath = \"absent.csv\"\n");
    let out = ringside(&sandbox, &["check"]);
    assert_eq!(out.code(), Some(1), "{out:#?}");
    assert!(
        out.stdout
            .contains("PROBLEM contacts: absent.csv: cannot read: "),
        "{out:#?}"
    );
}

#[test]
fn replay_names_the_caller_from_the_contacts_file_and_reports_bad_lines_on_stderr() {
    let sandbox = Sandbox::new();
    with_contacts(&sandbox, "+14155550142,Paco (vendor)\n+14155550177\n", None);
    let mut added: serde_json::Value =
        serde_json::from_str(&fixture("seed/participant-added.json")).unwrap();
    let party = &mut added["body"]["parties"][0]["to"];
    party["phoneNumber"] = "+14155550142".into();
    party["name"] = CALLER_ID.into();
    sandbox.write("added.json", &added.to_string());

    let out = ringside(&sandbox, &["replay", "added.json"]);
    assert_eq!(
        out.stdout_lines(),
        [
            "Conference hosted by Agent 122 started",
            "Paco (vendor) (•••0142) joined the conference hosted by Agent 122 — 1 on the call",
        ],
        "{out:#?}"
    );
    assert_eq!(
        out.stderr_lines(),
        [
            "contacts: contacts.csv:2: has 1 field (a record is number,name; put a name with a comma in double quotes)"
        ],
        "{out:#?}"
    );
    assert_eq!(
        out.code(),
        Some(1),
        "a skipped line fails the replay: {out:#?}"
    );
}
