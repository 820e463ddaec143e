//! The `ringside` binary from the outside: `replay`, config errors, local mode `run`, `demo`.
//! Every child runs in a private working directory with no `RINGSIDE_*` variables and under a
//! deadline.

use crate::support_cli::{
    self, Finished, Sandbox, Service, fixture, fixture_line, free_ports, run,
};
use serde_json::{Value, json};
use std::time::Duration;

const REPLAY_TIMEOUT: Duration = Duration::from_secs(30);
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The README's Configuration: SIGTERM → graceful exit 0 within 10 s.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

const CONFERENCE: &str = "s-a0d7bfa2dd198z18deb4fcc72z184536c0000";
const PACO: &str = "p-a0d7bfa2dd198z18deb4fcc72z184536c0000-2";
const ADDED: &str = "seed/participant-added.json";
const REMOVED: &str = "seed/participant-removed.json";
const MALFORMED: &str = "seed/participant-removed.malformed.json";

const STARTED_LINE: &str = "Conference hosted by Agent 122 started";
const JOINED_LINE: &str =
    "Paco Vu (•••1119) joined the conference hosted by Agent 122 — 1 on the call";

fn replay(sandbox: &Sandbox, args: &[&str]) -> Finished {
    let mut all = vec!["replay"];
    all.extend_from_slice(args);
    run(sandbox.command(all), None, REPLAY_TIMEOUT)
}

/// The three events the two seeds must produce.
fn seed_events() -> Vec<Value> {
    vec![
        json!({
            "type": "conference_started",
            "at": "2024-02-27T16:04:52.223Z",
            "conference_id": CONFERENCE,
            "host": {"name": "Agent 122", "phone_number": "+1650XXXXXXX"},
        }),
        json!({
            "type": "participant_joined",
            "at": "2024-02-27T16:04:52.223Z",
            "conference_id": CONFERENCE,
            "participant_id": PACO,
            "name": "Paco Vu",
            "phone_number": "11119",
        }),
        json!({
            "type": "participant_left",
            "at": "2024-02-27T16:06:13.166Z",
            "conference_id": CONFERENCE,
            "participant_id": PACO,
            "name": "Paco Vu",
            "phone_number": "11119",
            "reason": "hung_up",
        }),
    ]
}

fn json_lines(out: &Finished) -> Vec<Value> {
    out.stdout
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line:?}\n{out:#?}"))
        })
        .collect()
}

fn assert_seed_events(out: &Finished) {
    assert_eq!(json_lines(out), seed_events(), "{out:#?}");
    assert!(
        !out.stdout.contains("conference_ended"),
        "nothing says the conference ended: {out:#?}"
    );
}

fn assert_quiet_success(out: &Finished) {
    assert_eq!(out.code(), Some(0), "{out:#?}");
    assert_eq!(out.stderr, "", "{out:#?}");
}

// --- replay ---------------------------------------------------------------------------------

#[test]
fn replay_json_of_the_two_seeds_prints_start_join_and_leave_and_no_end() {
    let sandbox = Sandbox::new();
    let (added, removed) = (sandbox.fixture(ADDED), sandbox.fixture(REMOVED));
    let out = replay(&sandbox, &["--json", &added, &removed]);
    assert_quiet_success(&out);
    assert_seed_events(&out);
}

#[test]
fn replay_of_the_captured_plain_calls_prints_nothing() {
    let sandbox = Sandbox::new();
    let files = [
        "captured/pstn-to-ringcentral.jsonl",
        "captured/ringcentral-to-pstn.jsonl",
        "captured/ringcentral-to-ringcentral.jsonl",
    ]
    .map(|file| sandbox.fixture(file));
    for json in [true, false] {
        let mut args: Vec<&str> = files.iter().map(String::as_str).collect();
        if json {
            args.insert(0, "--json");
        }
        let out = replay(&sandbox, &args);
        assert_quiet_success(&out);
        assert_eq!(out.stdout, "", "a plain call is no conference: {out:#?}");
    }
}

#[test]
fn replay_of_the_malformed_seed_exits_1_naming_file_and_line() {
    let sandbox = Sandbox::new();
    let malformed = sandbox.fixture(MALFORMED);
    let out = replay(&sandbox, &["--json", &malformed]);
    assert_eq!(out.code(), Some(1), "{out:#?}");
    assert_eq!(out.stdout, "", "{out:#?}");
    let lines = out.stderr_lines();
    assert_eq!(lines.len(), 1, "one problem, one line: {out:#?}");
    assert!(
        lines[0].starts_with("ringside: seed/participant-removed.malformed.json:14: "),
        "{out:#?}"
    );
}

#[test]
fn replay_json_lines_skips_a_garbage_line_reports_it_and_exits_1() {
    let sandbox = Sandbox::new();
    let file = sandbox.write(
        "mixed.jsonl",
        &format!(
            "{}\nthis is not json\n{}\n",
            fixture_line(ADDED),
            fixture_line(REMOVED)
        ),
    );
    let out = replay(&sandbox, &["--json", &file]);
    assert_eq!(out.code(), Some(1), "{out:#?}");
    assert_seed_events(&out);
    let lines = out.stderr_lines();
    assert_eq!(lines.len(), 1, "{out:#?}");
    assert!(
        lines[0].starts_with("ringside: mixed.jsonl:2: "),
        "{out:#?}"
    );
}

/// The README's replay section: records that are not JSON are reported and skipped — wherever they are. A JSON
/// lines file whose first line is bad is currently taken for one broken JSON document, so the
/// good lines after it are never replayed.
#[test]
fn replay_json_lines_with_a_garbage_first_line_still_replays_the_good_lines() {
    let sandbox = Sandbox::new();
    let file = sandbox.write(
        "late-start.jsonl",
        &format!(
            "this is not json\n{}\n{}\n",
            fixture_line(ADDED),
            fixture_line(REMOVED)
        ),
    );
    let out = replay(&sandbox, &["--json", &file]);
    assert_eq!(out.code(), Some(1), "{out:#?}");
    assert!(
        out.stderr.contains("late-start.jsonl:1"),
        "the bad line is named: {out:#?}"
    );
    assert_seed_events(&out);
}

#[test]
fn replay_json_array_of_the_two_seeds_works_like_two_files() {
    let sandbox = Sandbox::new();
    let array = format!("[\n{},\n{}\n]\n", fixture(ADDED), fixture(REMOVED));
    let file = sandbox.write("both.json", &array);
    let out = replay(&sandbox, &["--json", &file]);
    assert_quiet_success(&out);
    assert_seed_events(&out);
}

/// The README's replay section: unusable records are reported "with file, line and reason". In a JSON array the
/// record is currently named `file: record 2`, not by its line.
#[test]
fn replay_names_the_line_of_an_unusable_record_in_a_json_array() {
    let sandbox = Sandbox::new();
    let mut removed: Value = serde_json::from_str(&fixture(REMOVED)).unwrap();
    removed["body"]
        .as_object_mut()
        .unwrap()
        .remove("sequence")
        .unwrap();
    let added: Value = serde_json::from_str(&fixture(ADDED)).unwrap();
    // One record per line: the second record is on line 3.
    let file = sandbox.write("both.json", &format!("[\n{added},\n{removed}\n]\n"));
    let out = replay(&sandbox, &["--json", &file]);
    assert_eq!(out.code(), Some(1), "{out:#?}");
    assert!(
        out.stderr.contains("both.json:3"),
        "the record's line is named: {out:#?}"
    );
}

#[test]
fn replay_dash_reads_standard_input() {
    let sandbox = Sandbox::new();
    let input = format!("{}\n{}\n", fixture_line(ADDED), fixture_line(REMOVED));
    let out = run(
        sandbox.command(["replay", "--json", "-"]),
        Some(input.as_bytes()),
        REPLAY_TIMEOUT,
    );
    assert_quiet_success(&out);
    assert_seed_events(&out);
}

#[test]
fn replay_of_a_missing_file_exits_1_naming_it() {
    let sandbox = Sandbox::new();
    let out = replay(&sandbox, &["--json", "no-such-recording.json"]);
    assert_eq!(out.code(), Some(1), "{out:#?}");
    assert_eq!(out.stdout, "", "{out:#?}");
    assert!(out.stderr.contains("no-such-recording.json"), "{out:#?}");
    assert!(!out.stderr.contains("panicked"), "{out:#?}");
}

#[test]
fn replay_skips_notifications_of_other_kinds_silently() {
    let sandbox = Sandbox::new();
    let presence = json!({
        "uuid": "5500000000000000001",
        "event": "/restapi/v1.0/account/~/extension/622953XXXXX/presence?detailedTelephonyState=true",
        "timestamp": "2024-02-27T16:05:00.000Z",
        "subscriptionId": "3ca0ec27-a916-4260-82ad-035752e61da2",
        "ownerId": "6228832XXXX",
        "body": {"extensionId": "622953XXXXX", "telephonyStatus": "CallConnected", "sequence": 1},
    });
    let reminder = json!({
        "uuid": "5500000000000000002",
        "event": "/restapi/v1.0/subscription/3ca0ec27-a916-4260-82ad-035752e61da2?threshold=86400&interval=3600",
        "timestamp": "2024-02-27T16:05:01.000Z",
        "subscriptionId": "3ca0ec27-a916-4260-82ad-035752e61da2",
        "ownerId": "6228832XXXX",
        "body": {"id": "3ca0ec27-a916-4260-82ad-035752e61da2", "expiresIn": 86000},
    });
    let file = sandbox.write("others.jsonl", &format!("{presence}\n{reminder}\n"));
    let out = replay(&sandbox, &["--json", &file]);
    assert_quiet_success(&out);
    assert_eq!(out.stdout, "", "{out:#?}");
}

#[test]
fn replay_reports_a_telephony_notification_without_sequence_by_file_line_and_field() {
    let sandbox = Sandbox::new();
    let mut removed: Value = serde_json::from_str(&fixture(REMOVED)).unwrap();
    removed["body"]
        .as_object_mut()
        .unwrap()
        .remove("sequence")
        .unwrap();
    let file = sandbox.write(
        "no-sequence.jsonl",
        &format!("{}\n{removed}\n", fixture_line(ADDED)),
    );
    let out = replay(&sandbox, &["--json", &file]);
    assert_eq!(out.code(), Some(1), "{out:#?}");
    assert_eq!(
        json_lines(&out),
        seed_events()[..2],
        "the first line is replayed, the second skipped: {out:#?}"
    );
    let lines = out.stderr_lines();
    assert_eq!(lines.len(), 1, "{out:#?}");
    assert!(
        lines[0].starts_with("ringside: no-sequence.jsonl:2: "),
        "{out:#?}"
    );
    assert!(lines[0].contains("body.sequence"), "{out:#?}");
}

#[test]
fn replay_without_json_prints_the_local_mode_lines() {
    let sandbox = Sandbox::new();
    let (added, removed) = (sandbox.fixture(ADDED), sandbox.fixture(REMOVED));
    let out = replay(&sandbox, &[&added, &removed]);
    assert_quiet_success(&out);
    assert_eq!(
        out.stdout,
        format!("{STARTED_LINE}\n{JOINED_LINE}\nPaco Vu (•••1119) left after 1m 21s\n"),
        "{out:#?}"
    );
}

// --- config errors --------------------------------------------------------------------------

/// `ringside run` with a bad setting: exit 2, exactly one line `ringside: config: …` naming
/// `key`, nothing about a panic, and never `secret` (when given).
fn assert_config_error(out: &Finished, key: &str, secret: Option<&str>) {
    assert_eq!(out.code(), Some(2), "{out:#?}");
    assert_eq!(out.stdout, "", "{out:#?}");
    assert!(
        out.stderr.ends_with('\n') && out.stderr.lines().count() == 1,
        "exactly one line on stderr: {out:#?}"
    );
    assert!(out.stderr.starts_with("ringside: config:"), "{out:#?}");
    assert!(out.stderr.contains(key), "names {key}: {out:#?}");
    for text in ["panicked", "backtrace", "RUST_BACKTRACE"] {
        assert!(!out.stderr.contains(text), "{out:#?}");
    }
    if let Some(secret) = secret {
        assert!(!out.stderr.contains(secret), "leaks a secret: {out:#?}");
    }
}

fn run_with_config(sandbox: &Sandbox, toml: &str) -> Finished {
    let file = sandbox.write("settings.toml", toml);
    let mut command = sandbox.command(["--config", &file, "run"]);
    command.env("RUST_BACKTRACE", "1");
    run(command, None, START_TIMEOUT)
}

#[test]
fn run_with_a_typo_key_in_the_config_file_exits_2_naming_it() {
    let sandbox = Sandbox::new();
    let out = run_with_config(&sandbox, "[server]\nlisen = \"127.0.0.1:8080\"\n");
    assert_config_error(&out, "server.lisen", None);
}

#[test]
fn run_with_a_partial_ringcentral_group_exits_2_naming_the_missing_key() {
    let sandbox = Sandbox::new();
    let out = run_with_config(
        &sandbox,
        "[ringcentral]\nclient_id = \"abc\"\nclient_secret = \"pa55-w0rd-value\"\n",
    );
    assert_config_error(&out, "ringcentral.jwt", Some("pa55-w0rd-value"));
}

#[test]
fn run_with_a_bad_listen_address_in_the_config_file_exits_2_naming_it() {
    let sandbox = Sandbox::new();
    let out = run_with_config(&sandbox, "[server]\nlisten = \"nope\"\n");
    assert_config_error(&out, "server.listen", None);
}

#[test]
fn run_with_a_bad_listen_address_in_the_environment_exits_2_naming_it() {
    let sandbox = Sandbox::new();
    let mut command = sandbox.command(["run"]);
    command
        .env("RINGSIDE_SERVER__LISTEN", "nope")
        .env("RUST_BACKTRACE", "1");
    let out = run(command, None, START_TIMEOUT);
    assert_config_error(&out, "server.listen", None);
}

// --- local mode -----------------------------------------------------------------------------

/// `ringside run` in local mode on fresh ports, with its store in the sandbox; also returns the
/// public port.
fn local_run(sandbox: &Sandbox, extra_env: &[(&str, &str)]) -> (Service, u16) {
    let [public, admin] = free_ports();
    let store = sandbox.path().join("x.sqlite3");
    let mut command = sandbox.command(["run"]);
    command
        .env("RINGSIDE_SERVER__LISTEN", format!("127.0.0.1:{public}"))
        .env(
            "RINGSIDE_SERVER__ADMIN_LISTEN",
            format!("127.0.0.1:{admin}"),
        )
        .env("RINGSIDE_STORE__PATH", &store)
        .env("RINGSIDE_ANNOUNCE__COALESCE_MS", "50");
    for (name, value) in extra_env {
        command.env(name, value);
    }
    (Service::start(command), public)
}

/// True when `text` holds a run of 32 hex digits (a generated token's shape).
fn has_hex_token(text: &str) -> bool {
    text.split(|c: char| !c.is_ascii_hexdigit())
        .any(|word| word.len() >= 32)
}

#[test]
fn run_in_local_mode_announces_a_posted_seed_on_stdout_and_stops_on_sigterm() {
    let sandbox = Sandbox::new();
    let (mut service, public) = local_run(&sandbox, &[]);
    let banner = service.banner(START_TIMEOUT);
    assert_eq!(
        banner.webhook,
        format!("http://127.0.0.1:{public}/webhooks/ringcentral"),
        "{banner:?}"
    );
    let token = banner.token.clone().unwrap_or_else(|| {
        panic!(
            "no RingCentral group: the generated token is shown\n{}",
            banner.lines.join("\n")
        )
    });
    assert_eq!(token.len(), 32, "{banner:?}");

    let status = support_cli::post_notification(&banner.webhook, &token, &fixture(ADDED));
    assert_eq!(status, 200, "{banner:?}");
    let lines = service.stdout_lines(2, Duration::from_secs(15));
    assert_eq!(lines, [STARTED_LINE, JOINED_LINE]);

    let exit = service.terminate(STOP_TIMEOUT);
    assert_eq!(exit.code(), Some(0), "graceful stop: {exit}");
    assert_eq!(
        service.stdout_seen,
        [STARTED_LINE, JOINED_LINE],
        "nothing else on stdout"
    );
    let stderr = service.stderr_seen.join("\n");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn run_never_prints_a_configured_verification_token() {
    const TOKEN: &str = "s3cr3t-token-4ffe-81d0";
    let sandbox = Sandbox::new();
    let (mut service, _) = local_run(
        &sandbox,
        &[("RINGSIDE_RINGCENTRAL__VERIFICATION_TOKEN", TOKEN)],
    );
    let banner = service.banner(START_TIMEOUT);
    assert_eq!(banner.token, None, "{banner:?}");
    // The configured token is the one that works.
    let status = support_cli::post_notification(&banner.webhook, TOKEN, &fixture(ADDED));
    assert_eq!(status, 200, "{banner:?}");
    service.stdout_lines(2, Duration::from_secs(15));
    let exit = service.terminate(STOP_TIMEOUT);
    assert_eq!(exit.code(), Some(0), "{exit}");
    let everything = format!(
        "{}\n{}",
        service.stdout_seen.join("\n"),
        service.stderr_seen.join("\n")
    );
    assert!(!everything.contains(TOKEN), "token printed:\n{everything}");
}

#[test]
fn run_with_a_ringcentral_group_prints_no_generated_token_and_no_credentials() {
    const SECRET: &str = "dummy-client-secret-9f2";
    const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJkdW1teSI6dHJ1ZX0.c2lnbmF0dXJlLWR1bW15";
    let sandbox = Sandbox::new();
    // A RingCentral that refuses connections: ringside starts, fails to sign in, and says so
    // without printing a credential.
    let [dead] = free_ports::<1>();
    let server_url = format!("http://127.0.0.1:{dead}");
    let (mut service, _) = local_run(
        &sandbox,
        &[
            ("RINGSIDE_RINGCENTRAL__CLIENT_ID", "dummy-client-id"),
            ("RINGSIDE_RINGCENTRAL__CLIENT_SECRET", SECRET),
            ("RINGSIDE_RINGCENTRAL__JWT", JWT),
            ("RINGSIDE_RINGCENTRAL__SERVER_URL", &server_url),
            (
                "RINGSIDE_SERVER__PUBLIC_URL",
                "https://ringside.example.test",
            ),
        ],
    );
    let banner = service.banner(START_TIMEOUT);
    assert_eq!(banner.token, None, "{banner:?}");
    service.stderr_until(START_TIMEOUT, |line| line.contains("cannot see calls"));
    let exit = service.terminate(STOP_TIMEOUT);
    assert_eq!(exit.code(), Some(0), "{exit}");
    let everything = format!(
        "{}\n{}",
        service.stdout_seen.join("\n"),
        service.stderr_seen.join("\n")
    );
    assert!(
        !everything.contains("verification token (generated"),
        "a token is shown:\n{everything}"
    );
    assert!(
        !has_hex_token(&everything),
        "a token is shown:\n{everything}"
    );
    assert!(
        !everything.contains(SECRET),
        "secret printed:\n{everything}"
    );
    assert!(!everything.contains(JWT), "JWT printed:\n{everything}");
}

#[test]
fn run_keeps_its_generated_token_across_a_restart_on_the_same_store() {
    let sandbox = Sandbox::new();
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let (mut service, _) = local_run(&sandbox, &[]);
        let banner = service.banner(START_TIMEOUT);
        tokens.push(banner.token.clone().unwrap_or_else(|| panic!("{banner:?}")));
        let exit = service.terminate(STOP_TIMEOUT);
        assert_eq!(exit.code(), Some(0), "{exit}");
    }
    assert_eq!(tokens[0], tokens[1]);
}

// --- demo -----------------------------------------------------------------------------------

#[test]
fn demo_plays_the_scripted_conference_with_joins_participants_kick_and_summary() {
    let out = demo_transcript(&["demo"]);
    assert!(
        out.stderr.contains("subscribed over the WebSocket"),
        "{}",
        out.stderr
    );
}

#[test]
fn demo_over_a_webhook_plays_the_same_conference() {
    let out = demo_transcript(&["demo", "--webhook"]);
    assert!(out.stderr.contains("webhook"), "{}", out.stderr);
}

/// Runs `ringside <args>` and checks its transcript is the whole scripted conference, in order.
fn demo_transcript(args: &[&str]) -> Finished {
    let sandbox = Sandbox::new();
    let out = run(
        sandbox.command(args.iter().copied()),
        None,
        Duration::from_secs(60),
    );
    assert_eq!(out.code(), Some(0), "{out:#?}");
    let lines = out.stdout_lines();
    let position = |wanted: &dyn Fn(&str) -> bool, what: &str| {
        lines
            .iter()
            .position(|line| wanted(line))
            .unwrap_or_else(|| panic!("no {what} line on stdout:\n{}", out.stdout))
    };
    // Channel messages as Discord shows them, then the command exchanges.
    let started = position(
        &|line| line.starts_with("📞 Conference started · host Agent 122 · "),
        "start",
    );
    let joins = [
        "➕ Paco Vu (•••1119) joined · 1 on the call",
        "➕ Dana Whitfield (•••0142) joined · 2 on the call",
        "➕ Ravi Anand (•••8750) joined · 3 on the call",
    ]
    .map(|join| position(&|line| line == join, join));
    let participants = position(&|line| line == "› /participants", "/participants");
    assert!(
        lines[participants + 1].starts_with("  Conference hosted by Agent 122"),
        "{}",
        out.stdout
    );
    for (offset, caller) in ["Paco Vu", "Dana Whitfield", "Ravi Anand"]
        .iter()
        .enumerate()
    {
        assert!(
            lines[participants + 2 + offset].starts_with(&format!("  • {caller} (•••")),
            "{}",
            out.stdout
        );
    }
    let suggestions = position(
        &|line| line.starts_with("› /kick caller: Paco…   suggestions: Paco Vu (•••1119)"),
        "autocomplete",
    );
    let confirm = position(
        &|line| line == "  [Remove Paco Vu] [Cancel]",
        "confirmation buttons",
    );
    let pressed = position(&|line| line == "› [Remove Paco Vu]", "button press");
    let result = position(
        &|line| line == "  Removed Paco Vu from Agent 122's call.",
        "kick result",
    );
    let removed = position(
        &|line| {
            line.starts_with("🚫 Paco Vu was removed by @moderator after ")
                && line.ends_with("— not on the guest list · 2 on the call")
        },
        "removal announcement",
    );
    let left = position(
        &|line| line.starts_with("➖ Dana Whitfield left after "),
        "Dana's leave",
    );
    let ended = position(
        &|line| line.starts_with("📴 Conference ended after "),
        "ended after",
    );
    let order = [
        started,
        joins[0],
        joins[1],
        joins[2],
        participants,
        suggestions,
        confirm,
        pressed,
        result,
        removed,
        left,
        ended,
    ];
    assert!(
        order.windows(2).all(|pair| pair[0] < pair[1]),
        "out of order {order:?}:\n{}",
        out.stdout
    );
    // The watch list: Ravi's join alerts the moderators, and its Remove button goes through the
    // same confirmation as /kick; the alert then says who removed him, its button off.
    let alert = position(
        &|line| {
            line == "🚨 Ravi Anand (•••8750), on the watch list, joined Agent 122's call. @moderators"
        },
        "the watch-list alert",
    );
    assert_eq!(lines[alert + 1], "[Remove]", "{}", out.stdout);
    let pressed_alert = position(
        &|line| line == "› [Remove] on the watch-list alert",
        "the alert's Remove pressed",
    );
    let removed_by_alert = position(
        &|line| line == "  Removed Ravi Anand from Agent 122's call.",
        "the alert's removal",
    );
    let alert_closed = position(
        &|line| {
            line == "🚨 Ravi Anand (•••8750), on the watch list, joined Agent 122's call; removed by @moderator."
        },
        "the alert edited",
    );
    assert_eq!(
        lines[alert_closed + 1],
        "[Remove] (turned off)",
        "{}",
        out.stdout
    );
    assert!(
        alert < pressed_alert
            && pressed_alert < removed_by_alert
            && removed_by_alert < alert_closed,
        "{}",
        out.stdout
    );
    // The roster card: posted naming no caller, edited as the call went, its record last.
    let card = position(
        &|line| line.starts_with("📋 Conference · host Agent 122 · started "),
        "the card as posted",
    );
    assert!(
        lines[card + 1].ends_with(" on the call") && !lines[card + 1].contains('•'),
        "the posted card names no caller:\n{}",
        out.stdout
    );
    position(
        &|line| line == "✏️  (the roster card above, edited:)",
        "a card edit",
    );
    let picture = position(
        &|line| line.starts_with("🖼️  timeline.png (") && line.contains(" written to "),
        "the timeline picture",
    );
    let record = position(
        &|line| line.starts_with("📋 Conference ended · host Agent 122 · started "),
        "the card's record",
    );
    assert!(ended < picture && picture < record, "{}", out.stdout);
    let rest: Vec<&str> = lines[record + 1..]
        .iter()
        .filter(|line| !line.is_empty())
        .copied()
        .collect();
    assert_eq!(rest.len(), 4, "the record is last:\n{}", out.stdout);
    assert_eq!(rest[0], "3 callers · peak 3");
    assert!(
        rest[1].starts_with("• Paco Vu (•••1119) · ")
            && rest[1].ends_with(" · 🚫 removed by @moderator"),
        "{}",
        out.stdout
    );
    assert!(rest[2].starts_with("• Dana Whitfield (•••0142) · "));
    assert!(rest[3].starts_with("• Ravi Anand (•••8750) · "));
    assert!(
        !out.stdout.contains("**") && !out.stdout.contains("<t:"),
        "Discord markup shown raw:\n{}",
        out.stdout
    );
    out
}

// ----- safe to expose: what the binary logs under a flood, with a failing store, and when a
// ----- core task dies --------------------------------------------------------------------------

/// POSTs `count` requests to `url` from 32 connections at once, each with `headers` and a body
/// from `body(i)`; answers every status seen and how long it took.
fn flood(
    url: &str,
    count: usize,
    headers: &[(&str, &str)],
    body: impl Fn(usize) -> String,
) -> (Vec<u16>, Duration) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let started = std::time::Instant::now();
        let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let bodies: std::sync::Arc<Vec<String>> =
            std::sync::Arc::new((0..count).map(&body).collect());
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        let workers: Vec<_> = (0..32)
            .map(|_| {
                let (client, next, bodies, headers, url) = (
                    client.clone(),
                    next.clone(),
                    bodies.clone(),
                    headers.clone(),
                    url.to_owned(),
                );
                tokio::spawn(async move {
                    let mut statuses = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= bodies.len() {
                            return statuses;
                        }
                        let mut request = client.post(&url).body(bodies[i].clone());
                        for (name, value) in &headers {
                            request = request.header(name, value);
                        }
                        let status = request.send().await.map(|r| r.status().as_u16());
                        statuses.push(status.unwrap_or(0));
                    }
                })
            })
            .collect();
        let mut statuses = Vec::new();
        for worker in workers {
            statuses.extend(worker.await.unwrap());
        }
        (statuses, started.elapsed())
    })
}

#[test]
fn ten_thousand_refused_requests_write_at_most_one_log_line_a_second() {
    let sandbox = Sandbox::new();
    let (mut service, _) = local_run(&sandbox, &[]);
    let banner = service.banner(START_TIMEOUT);
    let (statuses, took) = flood(&banner.webhook, 10_000, &[], |_| "{}".to_owned());
    assert!(statuses.iter().all(|status| *status == 401), "{:?}", {
        let mut odd: Vec<_> = statuses.iter().filter(|s| **s != 401).collect();
        odd.dedup();
        odd
    });
    service.settle(Duration::from_millis(500), Duration::from_secs(5));
    let exit = service.terminate(STOP_TIMEOUT);
    assert_eq!(exit.code(), Some(0));
    let refusals = service
        .stderr_seen
        .iter()
        .filter(|line| line.contains("webhook requests refused"))
        .count();
    eprintln!(
        "10,000 unauthenticated requests in {took:.1?}: {refusals} refusal log lines, {} stderr lines in all",
        service.stderr_seen.len()
    );
    let bound = took.as_secs() as usize + 2;
    assert!(
        (1..=bound).contains(&refusals),
        "{refusals} refusal lines for {took:?} of flood"
    );
}

#[test]
fn a_store_that_cannot_write_is_logged_once_and_a_stop_still_exits_0() {
    let sandbox = Sandbox::new();
    let (mut service, _) = local_run(
        &sandbox,
        &[
            ("RINGSIDE_SERVER__WEBHOOK_DEADLINE_MS", "300"),
            (
                "RINGSIDE_RINGCENTRAL__VERIFICATION_TOKEN",
                "flood-test-token-0123456789",
            ),
        ],
    );
    let banner = service.banner(START_TIMEOUT);
    let lock = rusqlite::Connection::open(sandbox.path().join("x.sqlite3")).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let seed: Value = serde_json::from_str(&fixture(ADDED)).unwrap();
    let notification = |i: usize| {
        let mut notification = seed.clone();
        notification["uuid"] = json!(format!("locked-{i}"));
        notification.to_string()
    };
    let headers = [
        ("Verification-Token", "flood-test-token-0123456789"),
        ("Content-Type", "application/json"),
    ];
    let (statuses, _) = flood(&banner.webhook, 40, &headers, notification);
    assert!(statuses.iter().all(|status| *status == 503), "{statuses:?}");
    service.stderr_until(Duration::from_secs(20), |line| {
        line.contains("the store cannot write")
    });
    let (statuses, _) = flood(&banner.webhook, 40, &headers, |i| notification(i + 40));
    assert!(statuses.iter().all(|status| *status == 503), "{statuses:?}");

    // Stopped while the store still cannot write: within the 10 s the README promises.
    let exit = service.terminate(Duration::from_secs(11));
    assert_eq!(exit.code(), Some(0), "{}", service.stderr_seen.join("\n"));
    drop(lock);
    let failing = service
        .stderr_seen
        .iter()
        .filter(|line| line.contains("the store cannot write"))
        .count();
    assert_eq!(failing, 1, "{}", service.stderr_seen.join("\n"));
    let per_request = service
        .stderr_seen
        .iter()
        .filter(|line| line.contains("could not commit") || line.contains("refused"))
        .count();
    assert_eq!(per_request, 0, "{}", service.stderr_seen.join("\n"));
}

#[test]
fn a_core_task_that_dies_stops_ringside_with_exit_status_1() {
    for task in ["pipeline", "announcer", "store"] {
        let sandbox = Sandbox::new();
        let (mut service, _) = local_run(&sandbox, &[("RINGSIDE_TEST_END_TASK", task)]);
        service.banner(START_TIMEOUT);
        let line = service.stderr_until(Duration::from_secs(10), |line| {
            line.contains("a core task ended")
        });
        assert!(line.contains(task), "{line}");
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(status) = service.try_wait() {
                break status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{task}: still running"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(status.code(), Some(1), "{task}");
    }
}
