//! Names from the company directory (the README's "Names from the company directory"): the real
//! app against the RingCentral platform fake, with internal callers whose notifications carry an
//! extension id and no name.

use crate::support::{DEADLINE, TestApp, TestConfig, eventually, start_platform};
use ringside::simulator::platform::{PlatformHandle, PlatformOptions};
use ringside::simulator::{LeaveSignal, Person, RateGroup};
use std::time::Duration;

const SEED: u64 = 0x5eed_0d1e;
const LEE: &str = "62288300120";
const KIM: &str = "62288300121";

fn host() -> Person {
    Person::with_extension("Agent 122", "122", "62295300122")
}

fn extension_path(id: &str) -> String {
    format!("/restapi/v1.0/account/~/extension/{id}")
}

fn lookups(platform: &PlatformHandle, id: &str) -> usize {
    let path = extension_path(id);
    platform
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == path)
        .count()
}

/// The name the roster shows for the live participant with this extension id.
fn shown_name(app: &TestApp, extension: &str) -> Option<Option<String>> {
    app.running.roster.live().into_iter().find_map(|view| {
        view.participants
            .into_iter()
            .find(|p| p.identity.extension_id.as_deref() == Some(extension))
            .map(|p| p.identity.name)
    })
}

async fn started(options: PlatformOptions) -> (PlatformHandle, TestApp) {
    let platform = start_platform(options).await;
    let app = TestConfig::new().against(&platform).start().await;
    app.wait_subscription_active().await;
    (platform, app)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_known_only_by_extension_is_listed_and_announced_with_the_directory_name() {
    let (platform, app) = started(PlatformOptions::new().directory_entry(LEE, "Lee Park")).await;
    let conference = platform.conference(SEED, host());
    conference.start().await;
    conference.advance(Duration::from_secs(10));
    let lee = conference
        .call_and_merge(Person::extension_only(LEE, "11120"))
        .await;

    eventually(
        "the roster shows the directory's name",
        DEADLINE,
        async || (shown_name(&app, LEE) == Some(Some("Lee Park".to_owned()))).then_some(()),
    )
    .await;
    conference.advance(Duration::from_secs(60));
    conference.hang_up(lee, LeaveSignal::Both).await;
    let lines = app.wait_for_line(" left after ").await;
    let left = lines
        .iter()
        .find(|line| line.contains(" left after "))
        .expect("a leave line");
    assert!(left.starts_with("Lee Park"), "{lines:#?}");
    assert_eq!(lookups(&platform, LEE), 1, "one lookup");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_read_accounts_check_reports_it_once_and_the_app_runs_on_without_lookups() {
    // The app and the check each sign in (and the check revokes): over the Auth group's five.
    let options = PlatformOptions::new()
        .extensions_permitted(false)
        .limit(RateGroup::Auth, 20);
    let (platform, app) = started(options).await;

    let lines = ringside::app::operator::check(&app.config.settings)
        .await
        .expect("check runs");
    let directory: Vec<String> = lines
        .iter()
        .filter(|line| line.text.contains("ringcentral directory"))
        .map(ToString::to_string)
        .collect();
    assert_eq!(directory.len(), 1, "{directory:#?}");
    assert!(
        directory[0].starts_with("PROBLEM") && directory[0].contains("ReadAccounts"),
        "{directory:#?}"
    );

    let conference = platform.conference(SEED, host());
    conference.start().await;
    conference
        .call_and_merge(Person::extension_only(LEE, "11120"))
        .await;
    eventually("the app asks once", DEADLINE, async || {
        (lookups(&platform, LEE) == 1).then_some(())
    })
    .await;
    conference.advance(Duration::from_secs(10));
    conference
        .call_and_merge(Person::extension_only(KIM, "11121"))
        .await;
    app.wait_for_line("— 2 on the call").await;
    eventually("the second caller is live, unnamed", DEADLINE, async || {
        (shown_name(&app, KIM) == Some(None)).then_some(())
    })
    .await;
    assert_eq!(lookups(&platform, KIM), 0, "no lookups after the 403");
    assert_eq!(lookups(&platform, LEE), 1);
    let (status, body) = app.readyz().await;
    assert_eq!(status, 200, "the app runs on: {body}");
    app.stop().await;
}
