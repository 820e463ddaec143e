//! `ringside parked` and `ringside parked resend ID` (the real binary) beside the running app on
//! the same store: the fake Discord refuses the channel so an announcement is parked, the
//! operator lists it, lets Discord accept again and asks for it once more; the running
//! announcer posts the stored message, nonce and all.

use crate::discord::{Env, SEED, assert_no_violations, env, host, paco};
use crate::readyz_discord::series;
use crate::support::discord::CHANNEL_ID;
use crate::support::{DEADLINE, Transport, eventually};
use crate::support_cli::{Finished, Sandbox, run};
use ringside::store::{Batch, BatchState};
use serde_json::Value;
use std::time::Duration;

/// How long one `ringside parked …` may take before the test gives up on it.
const CLI_TIMEOUT: Duration = Duration::from_secs(30);

/// `ringside --config ringside.toml ARGS`, whose settings name the running app's store.
async fn ringside(env: &Env, args: &[&str]) -> Finished {
    let sandbox = Sandbox::new();
    let store = env.app.config.settings.store.path.display().to_string();
    sandbox.write("ringside.toml", &format!("[store]\npath = {store:?}\n"));
    let mut all = vec!["--config".to_owned(), "ringside.toml".to_owned()];
    all.extend(args.iter().map(|arg| (*arg).to_owned()));
    tokio::task::spawn_blocking(move || run(sandbox.command(all), None, CLI_TIMEOUT))
        .await
        .expect("the command ran")
}

async fn parked(env: &Env) -> Vec<Batch> {
    env.app
        .running
        .store
        .parked_batches(10)
        .await
        .expect("parked batches")
}

/// The `content` of a stored or posted message body.
fn content(body: &Value) -> &str {
    body["content"].as_str().unwrap_or_default()
}

/// Starts a conference, then refuses the channel while Paco joins: his join is parked.
async fn parked_join(env: &Env) -> Batch {
    let conference = env.platform.conference(SEED, host());
    conference.start().await;
    env.fake.wait_messages(CHANNEL_ID, 1, DEADLINE).await;
    env.fake.refuse_channel(CHANNEL_ID, 403, 50001);
    conference.advance(Duration::from_secs(20));
    conference.call_and_merge(paco()).await;
    let mut found = eventually("Paco's join parked", DEADLINE, async || {
        let found = parked(env).await;
        (!found.is_empty()).then_some(found)
    })
    .await;
    assert_eq!(found.len(), 1, "{found:#?}");
    found.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_announcement_is_listed_and_resent_with_its_nonce_by_the_running_service() {
    let env = env(Transport::Gateway).await;
    let batch = parked_join(&env).await;
    let stored: Value = serde_json::from_str(&batch.body).expect("a JSON body");
    assert!(content(&stored).contains("Paco Vu"), "{stored}");

    let listed = ringside(&env, &["parked"]).await;
    assert_eq!(listed.code(), Some(0), "{listed:#?}");
    let lines = listed.stdout_lines();
    assert!(
        lines[0].starts_with(&format!("{} parked ", batch.id)),
        "{listed:#?}"
    );
    assert!(
        lines.iter().any(|l| l.trim_start().starts_with("why:")
            && l.contains("403")
            && l.contains("Missing Access")),
        "{listed:#?}"
    );
    for text in content(&stored).lines() {
        assert!(
            lines.contains(&format!("        {text}").as_str()),
            "{text:?} indented in {listed:#?}"
        );
    }

    env.fake.accept_channel(CHANNEL_ID);
    let asked = ringside(&env, &["parked", "resend", &batch.id.to_string()]).await;
    assert_eq!(asked.code(), Some(0), "{asked:#?}");
    assert_eq!(asked.stdout_lines().len(), 1, "{asked:#?}");
    assert!(asked.stdout.contains("sent again"), "{asked:#?}");

    env.fake.wait_messages(CHANNEL_ID, 2, DEADLINE).await;
    eventually("the resent batch marked sent", DEADLINE, async || {
        let now = env.app.running.store.batch(batch.id).await.ok()??;
        (now.state == BatchState::Sent).then_some(())
    })
    .await;
    let requests = env.fake.message_requests(CHANNEL_ID);
    let resent: Vec<&Value> = requests
        .iter()
        .filter(|r| r["nonce"] == batch.nonce.as_str())
        .collect();
    assert_eq!(resent.len(), 1, "exactly one message: {requests:#?}");
    assert_eq!(content(resent[0]), content(&stored));
    assert_eq!(
        env.fake.contents(CHANNEL_ID).len(),
        2,
        "nothing else posted"
    );

    let listed = ringside(&env, &["parked"]).await;
    assert_eq!(listed.code(), Some(0), "{listed:#?}");
    assert_eq!(listed.stdout, "No parked announcements.\n");

    // The recorder is the process's, shared with the other tests: only this test resends, and
    // the gauge's value is theirs too, so it is only looked for.
    let page = eventually("the resend counted", DEADLINE, async || {
        let page = env
            .app
            .admin_get("/metrics", None)
            .await
            .text()
            .await
            .ok()?;
        series(&page, "ringside_announcements_resent_total ")
            .is_some_and(|n| n >= 1.0)
            .then_some(page)
    })
    .await;
    assert!(
        series(&page, "ringside_announcements_parked ").is_some(),
        "{page}"
    );
    assert_no_violations(&env.fake);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_of_an_unknown_or_a_sent_announcement_fails_and_changes_nothing() {
    let env = env(Transport::Gateway).await;
    let conference = env.platform.conference(SEED, host());
    conference.start().await;
    env.fake.wait_messages(CHANNEL_ID, 1, DEADLINE).await;
    let nonce = env.fake.message_requests(CHANNEL_ID)[0]["nonce"].clone();
    // Its batch is among the first few the announcer kept (ids count from 1).
    let sent = eventually("the start marked sent", DEADLINE, async || {
        for id in 1..=10 {
            let found = env.app.running.store.batch(id).await.ok()??;
            if found.nonce == nonce && found.state == BatchState::Sent {
                return Some(found);
            }
        }
        None
    })
    .await;

    for (id, says) in [
        (sent.id.to_string(), "not parked"),
        ("4242".into(), "no announcement"),
    ] {
        let refused = ringside(&env, &["parked", "resend", &id]).await;
        assert_ne!(refused.code(), Some(0), "{refused:#?}");
        assert!(refused.stdout.is_empty(), "{refused:#?}");
        // One line says why (a test's temporary directory also draws the store's warning).
        let said: Vec<&str> = refused
            .stderr_lines()
            .into_iter()
            .filter(|line| line.starts_with("ringside: "))
            .collect();
        assert_eq!(said.len(), 1, "{refused:#?}");
        assert!(said[0].contains(says), "{refused:#?}");
    }
    let after = env.app.running.store.batch(sent.id).await.expect("a read");
    assert_eq!(after.as_ref(), Some(&sent));
    assert!(
        env.app
            .running
            .store
            .batch(4242)
            .await
            .expect("a read")
            .is_none()
    );
    assert_eq!(env.fake.contents(CHANNEL_ID).len(), 1);
    assert_no_violations(&env.fake);
}
