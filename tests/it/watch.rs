//! The watch list end to end (the README's "Watch list"): the platform fake plays a conference a
//! watched caller joins, ringside posts the alert, and its Remove button is pressed over both
//! transports. The fake Discord validates every request against Discord's OpenAPI description.
//!
//! Waits poll with deadlines; nothing asserts on elapsed time.

use crate::discord::{
    EPHEMERAL, Env, MOD_ID, SEED, assert_no_violations, env_with, host, moderator, normalize,
    other_moderator, paco, plain_member, rhea,
};
use crate::support::discord::interactions::{self, button};
use crate::support::discord::{CHANNEL_ID, FakeOptions};
use crate::support::{DEADLINE, Transport};
use ringside::config::Settings;
use ringside::simulator::{ConferenceController, LeaveSignal};
use serde_json::{Value, json};
use std::time::Duration;

/// The roles `watch.alert_roles` names.
const ALERT_ROLES: [u64; 2] = [1_100_000_000_000_000_501, 1_100_000_000_000_000_502];
/// SUPPRESS_NOTIFICATIONS.
const SILENT: u64 = 1 << 12;
/// How an alert begins.
const ALERT: &str = "🚨 ";

fn watching(settings: &mut Settings) {
    // Paco by number, in E.164; nobody by name but a piece that matches no one here.
    settings.watch.numbers = vec!["+14155550142".to_owned()];
    settings.watch.names = vec!["nobody at all".to_owned()];
    settings.watch.alert_roles = ALERT_ROLES.to_vec();
    // The cards are their own lane; the alerts are asserted alone.
    settings.announce.roster_card = false;
}

async fn watch_env(transport: Transport) -> Env {
    env_with(transport, FakeOptions::default(), watching).await
}

/// The alert requests the fake took (message creations beginning with the alert's mark).
fn alert_posts(env: &Env) -> Vec<Value> {
    env.fake
        .message_requests(CHANNEL_ID)
        .into_iter()
        .filter(|r| r["content"].as_str().is_some_and(|c| c.starts_with(ALERT)))
        .collect()
}

/// Waits for the one alert of the channel; answers its message.
async fn wait_alert(env: &Env) -> Value {
    env.fake
        .wait_for("the watch-list alert", DEADLINE, |s| {
            s.channel_messages(CHANNEL_ID)
                .into_iter()
                .find(|m| m["content"].as_str().is_some_and(|c| c.starts_with(ALERT)))
        })
        .await
}

/// Waits until the alert's latest edit satisfies `done`; answers that edit.
async fn wait_alert_edit(env: &Env, alert: u64, what: &str, done: impl Fn(&str) -> bool) -> Value {
    let what = format!("the alert edited: {what}");
    env.fake
        .wait_for(&what, DEADLINE, |s| {
            let message = s
                .messages
                .get(&CHANNEL_ID)?
                .iter()
                .find(|m| m.id == alert)?;
            let last = message.edits.last()?;
            done(last["content"].as_str()?).then(|| last.clone())
        })
        .await
}

fn id_of(message: &Value) -> u64 {
    message["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("a message id")
}

/// A live conference with Paco (watched) and Rhea (not) on it, and Paco's alert posted.
async fn alerted(env: &Env) -> (ConferenceController, Value) {
    let conference = env.platform.conference(SEED, host());
    conference.start().await;
    conference.advance(Duration::from_secs(20));
    let paco = conference.call_and_merge(paco()).await;
    conference.advance(Duration::from_secs(20));
    let rhea = conference.call_and_merge(rhea()).await;
    env.wait_live(&conference, &[paco, rhea]).await;
    let alert = wait_alert(env).await;
    (conference, alert)
}

/// `member` presses the alert's Remove button.
async fn press_remove(
    env: &Env,
    alert: &Value,
    member: &interactions::Member,
) -> crate::discord::Answer {
    let custom_id = alert["components"][0]["components"][0]["custom_id"]
        .as_str()
        .expect("the Remove button")
        .to_owned();
    env.interact(button(
        &custom_id,
        member,
        interactions::message(
            id_of(alert),
            alert["content"].as_str().unwrap_or_default(),
            alert["components"].clone(),
        ),
    ))
    .await
}

#[tokio::test]
async fn the_alert_mentions_exactly_the_alert_roles_notifies_and_names_the_caller_and_the_call() {
    let env = watch_env(Transport::Gateway).await;
    let (_conference, alert) = alerted(&env).await;
    assert_eq!(
        alert["content"],
        format!(
            "🚨 **Paco Vu** (•••0142), on the watch list, joined Agent 122's call. <@&{}> <@&{}>",
            ALERT_ROLES[0], ALERT_ROLES[1]
        )
    );
    let posts = alert_posts(&env);
    assert_eq!(posts.len(), 1, "one alert, for Paco only: {posts:#?}");
    let body = &posts[0];
    assert_eq!(
        body["allowed_mentions"],
        json!({ "roles": [ALERT_ROLES[0].to_string(), ALERT_ROLES[1].to_string()] }),
        "exactly the roles: no parse, no users"
    );
    assert_eq!(
        body["flags"].as_u64().unwrap_or(0) & SILENT,
        0,
        "the alert notifies"
    );
    let button = &body["components"][0]["components"][0];
    assert_eq!(button["label"], "Remove");
    assert_eq!(button["style"], 4);
    assert!(
        button["custom_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("watch:remove:p:")),
        "{button}"
    );
    // Every other message stays silent.
    for other in env.fake.message_requests(CHANNEL_ID) {
        if other["content"]
            .as_str()
            .is_some_and(|c| c.starts_with(ALERT))
        {
            continue;
        }
        assert_eq!(
            other["flags"].as_u64().unwrap_or(0) & SILENT,
            SILENT,
            "{other}"
        );
    }
    assert_no_violations(&env.fake);
}

async fn remove_is_refused_to_a_member_without_kick_access_and_deletes_nothing(
    transport: Transport,
) {
    let env = watch_env(transport).await;
    let (_conference, alert) = alerted(&env).await;
    let refused = press_remove(&env, &alert, &plain_member()).await;
    assert_eq!(refused.kind(), 4, "{}", refused.body);
    assert_eq!(refused.flags() & EPHEMERAL, EPHEMERAL, "only they see it");
    assert_eq!(refused.content(), "You are not allowed to remove callers.");
    assert!(refused.custom_ids().is_empty());
    env.app.settle().await;
    assert!(env.deletes().is_empty(), "nothing deleted");
    let audit = env.app.running.store.audit_since(0).await.expect("audit");
    assert_eq!(audit.len(), 1, "{audit:#?}");
    assert_eq!(audit[0].action, "kick_refused");
    assert_no_violations(&env.fake);
}

async fn remove_confirmed_by_the_presser_removes_and_the_alert_says_by_whom(transport: Transport) {
    let env = watch_env(transport).await;
    let (_conference, alert) = alerted(&env).await;
    let confirmation = press_remove(&env, &alert, &moderator()).await;
    assert_eq!(confirmation.kind(), 4, "{}", confirmation.body);
    assert_eq!(confirmation.flags() & EPHEMERAL, EPHEMERAL);
    assert_eq!(
        normalize(&confirmation.content()),
        "Remove **Paco Vu** (•••0142) from Agent 122's call?\nThis expires <t>."
    );
    let ids = confirmation.custom_ids();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids[0].starts_with("kick:yes:"));

    let stranger = env.press(&confirmation, &ids[0], &other_moderator()).await;
    assert_eq!(stranger.kind(), 4, "{}", stranger.body);
    assert_eq!(
        stranger.content(),
        "Only the member who ran /kick can confirm it."
    );
    env.app.settle().await;
    assert!(
        env.deletes().is_empty(),
        "another member's press removes nothing"
    );

    let pressed = env.press(&confirmation, &ids[0], &moderator()).await;
    assert_eq!(pressed.kind(), 7, "{}", pressed.body);
    let edit = env.wait_edit(&pressed.token).await;
    assert_eq!(edit["content"], "Removed Paco Vu from Agent 122's call.");
    assert_eq!(env.deletes().len(), 1, "one DELETE at the platform");

    let closed = wait_alert_edit(&env, id_of(&alert), "removed by the moderator", |c| {
        c.contains("removed by")
    })
    .await;
    assert_eq!(
        closed["content"],
        format!(
            "🚨 **Paco Vu** (•••0142), on the watch list, joined Agent 122's call; removed by <@{MOD_ID}>."
        )
    );
    assert_eq!(
        closed["allowed_mentions"],
        json!({ "parse": [] }),
        "nobody pinged again"
    );
    assert_eq!(closed["components"][0]["components"][0]["disabled"], true);
    let audit = env.app.running.store.audit_since(0).await.expect("audit");
    assert!(
        audit
            .iter()
            .any(|e| e.action == "kick" && e.actor_id == MOD_ID.to_string())
    );
    assert_no_violations(&env.fake);
}

over_both_transports!(
    remove_is_refused_to_a_member_without_kick_access_and_deletes_nothing,
    remove_confirmed_by_the_presser_removes_and_the_alert_says_by_whom,
);

#[tokio::test]
async fn a_watched_caller_hanging_up_gets_the_alert_edited_to_left() {
    let env = watch_env(Transport::Gateway).await;
    let conference = env.platform.conference(SEED, host());
    conference.start().await;
    conference.advance(Duration::from_secs(20));
    let paco = conference.call_and_merge(paco()).await;
    let alert = wait_alert(&env).await;
    conference.advance(Duration::from_secs(40));
    conference.hang_up(paco, LeaveSignal::Both).await;
    let closed = wait_alert_edit(&env, id_of(&alert), "left", |c| c.contains("; left")).await;
    assert_eq!(
        normalize(closed["content"].as_str().unwrap_or_default()),
        "🚨 **Paco Vu** (•••0142), on the watch list, joined Agent 122's call; left <t>."
    );
    assert_eq!(closed["allowed_mentions"], json!({ "parse": [] }));
    assert_eq!(closed["components"][0]["components"][0]["disabled"], true);
    assert_no_violations(&env.fake);
}

#[tokio::test]
async fn a_restart_does_not_post_a_second_alert_for_the_same_caller() {
    let env = watch_env(Transport::Gateway).await;
    let (conference, alert) = alerted(&env).await;
    let env = env.restart().await;
    // Something happens on the call after the restart: the lane looks at the conference again.
    conference.advance(Duration::from_secs(20));
    let late = conference
        .call_and_merge(ringside::simulator::Person::new(
            "Late Joiner",
            "+14155550100",
        ))
        .await;
    env.wait_live(&conference, &[late]).await;
    env.app.settle().await;
    assert_eq!(
        alert_posts(&env).len(),
        1,
        "no second alert after the restart"
    );
    let alerts: Vec<Value> = env
        .fake
        .messages(CHANNEL_ID)
        .into_iter()
        .filter(|m| m["content"].as_str().is_some_and(|c| c.starts_with(ALERT)))
        .collect();
    assert_eq!(alerts.len(), 1);
    assert_eq!(id_of(&alerts[0]), id_of(&alert));
    assert_no_violations(&env.fake);
}
