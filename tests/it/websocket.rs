//! Notifications over RingCentral's WebSocket (the README's "No public address needed"): the
//! real app, with no public URL at all, against the platform fake's WebSocket gateway, over
//! real sockets.

use crate::support::{DEADLINE, TestApp, TestConfig, eventually, start_platform};
use ringside::simulator::platform::{PlatformHandle, PlatformOptions};
use ringside::simulator::{CallerRef, ConferenceController, LeaveSignal, Person};
use std::time::Duration;

const SEED: u64 = 0x5eed_0123;

fn host() -> Person {
    Person::with_extension("Agent 122", "122", "62295300122")
}

fn paco() -> Person {
    Person::new("Paco Vu", "+14155550142")
}

fn rhea() -> Person {
    Person::new("Rhea Stone", "+14155550177")
}

const PACO_JOINED: &str = "Paco Vu (•••0142) joined the conference hosted by Agent 122";
const RHEA_JOINED: &str = "Rhea Stone (•••0177) joined the conference hosted by Agent 122";

/// A platform with `options` and ringside subscribed over its WebSocket gateway.
async fn subscribed(options: PlatformOptions) -> (PlatformHandle, TestApp) {
    let platform = start_platform(options).await;
    let app = TestConfig::new().against_websocket(&platform).start().await;
    app.wait_subscription_active().await;
    wait_connected(&app).await;
    (platform, app)
}

async fn wait_connected(app: &TestApp) {
    eventually("/readyz answers 200", DEADLINE, async || {
        let (status, _) = app.readyz().await;
        (status == 200).then_some(())
    })
    .await;
}

/// Starts a conference and merges Paco in; answers it with Paco.
async fn conference_with_paco(platform: &PlatformHandle) -> (ConferenceController, CallerRef) {
    let conference = platform.conference(SEED, host());
    conference.start().await;
    conference.advance(Duration::from_secs(20));
    let paco = conference.call_and_merge(paco()).await;
    (conference, paco)
}

/// How many announcement lines start with `prefix`.
fn count(lines: &[String], prefix: &str) -> usize {
    lines.iter().filter(|line| line.starts_with(prefix)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_public_address_ringside_subscribes_over_the_websocket_and_announces() {
    let (platform, app) = subscribed(PlatformOptions::new()).await;
    let subscriptions = platform.subscriptions();
    assert_eq!(subscriptions.len(), 1, "{subscriptions:#?}");
    assert!(subscriptions[0].is_websocket(), "{subscriptions:#?}");
    assert!(subscriptions[0].has_telephony_filter());
    assert!(
        subscriptions[0].reminder_filter().is_none(),
        "a WebSocket subscription renews itself: no reminder"
    );
    let stats = platform.ws_stats();
    assert_eq!((stats.connections, stats.subscribed), (1, 1), "{stats:?}");

    let (conference, paco) = conference_with_paco(&platform).await;
    conference.advance(Duration::from_secs(60));
    conference.hang_up(paco, LeaveSignal::Both).await;
    conference.advance(Duration::from_secs(10));
    conference.end().await;
    let lines = app.wait_for_line(" ended after ").await;
    assert_eq!(count(&lines, PACO_JOINED), 1, "{lines:#?}");
    assert_eq!(
        count(&lines, "Paco Vu (•••0142) left after "),
        1,
        "{lines:#?}"
    );
    let delivered = platform.deliveries();
    assert!(delivered.iter().all(|d| d.ok()), "{delivered:#?}");
    assert!(platform.lost_notifications().is_empty());
    // Nothing was posted to a webhook: no handshake, no webhook subscription.
    assert!(
        platform
            .requests()
            .iter()
            .all(|request| !(request.method == "POST"
                && request.path == "/restapi/v1.0/subscription")),
        "a webhook subscription was created"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_keep_an_idle_connection_past_the_idle_timeout() {
    let options = PlatformOptions::new().ws_idle_timeout(Duration::from_secs(3));
    let (platform, app) = subscribed(options).await;
    // Three idle timeouts with nothing to deliver.
    tokio::time::sleep(Duration::from_secs(9)).await;
    let stats = platform.ws_stats();
    assert_eq!(stats.idle_closes, 0, "{stats:?}");
    assert_eq!(stats.connections, 1, "never reconnected: {stats:?}");
    assert!(stats.heartbeats >= 3, "{stats:?}");
    let (status, body) = app.readyz().await;
    assert_eq!(status, 200, "{body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_recovers_in_the_window_losing_nothing_and_doubling_nothing() {
    let (platform, app) = subscribed(PlatformOptions::new()).await;
    let (conference, _paco) = conference_with_paco(&platform).await;
    app.wait_for_line(PACO_JOINED).await;

    platform.drop_websockets();
    // While ringside is away, Rhea joins: the gateway buffers it for the recovery.
    conference.advance(Duration::from_secs(20));
    let _rhea = conference.call_and_merge(rhea()).await;
    app.wait_for_line(RHEA_JOINED).await;
    let stats = platform.ws_stats();
    assert_eq!(stats.recovered, 1, "{stats:?}");
    assert_eq!(
        stats.subscribed, 1,
        "recovered, not subscribed again: {stats:?}"
    );
    let lines = app.settle().await;
    assert_eq!(count(&lines, PACO_JOINED), 1, "{lines:#?}");
    assert_eq!(count(&lines, RHEA_JOINED), 1, "{lines:#?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_recovery_subscribes_again_and_reconciliation_repairs_a_missed_leave() {
    let (platform, app) = subscribed(PlatformOptions::new()).await;
    let (conference, paco) = conference_with_paco(&platform).await;
    app.wait_for_line(PACO_JOINED).await;

    // An outage longer than the recovery window: the session is gone when ringside is back.
    platform.drop_websockets_past_recovery();
    conference.advance(Duration::from_secs(30));
    conference.hang_up(paco, LeaveSignal::Both).await;
    let lines = app
        .wait_for_line("Paco Vu (•••0142) dropped off the call")
        .await;
    let stats = platform.ws_stats();
    assert!(stats.recovery_failed >= 1, "{stats:?}");
    assert_eq!(stats.subscribed, 2, "subscribed again: {stats:?}");
    assert_eq!(count(&lines, PACO_JOINED), 1, "{lines:#?}");
    assert_eq!(
        platform.subscriptions().len(),
        1,
        "the lost session's subscription is gone"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_absolute_timeout_ends_the_session_and_ringside_reconnects() {
    let (platform, app) = subscribed(PlatformOptions::new()).await;
    platform.expire_websockets();
    eventually("a second connection", DEADLINE, async || {
        (platform.ws_stats().connections >= 2).then_some(())
    })
    .await;
    wait_connected(&app).await;
    let (conference, _paco) = conference_with_paco(&platform).await;
    let lines = app.wait_for_line(PACO_JOINED).await;
    assert_eq!(count(&lines, PACO_JOINED), 1, "{lines:#?}");
    drop(conference);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_deletes_the_subscription_over_the_socket() {
    let (platform, app) = subscribed(PlatformOptions::new()).await;
    assert_eq!(platform.subscriptions().len(), 1);
    app.stop().await;
    assert_eq!(platform.ws_stats().unsubscribed, 1);
    assert!(platform.subscriptions().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_the_socket_through_a_drop() {
    let (platform, app) =
        subscribed(PlatformOptions::new().ws_recovery_timeout(Duration::from_secs(30))).await;
    // Hold the reconnect back: the ws token endpoint is rate limited for a while.
    platform.throttle(
        ringside::simulator::RateGroup::Auth,
        Duration::from_secs(3),
        true,
    );
    platform.drop_websockets();
    let started = tokio::time::Instant::now();
    let body = eventually("/readyz answers 503", Duration::from_secs(2), async || {
        let (status, body) = app.readyz().await;
        (status == 503).then_some(body)
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(body.contains("WebSocket"), "{body}");
    wait_connected(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_ws_token_is_waited_out_with_no_request_inside_the_window() {
    let platform = start_platform(PlatformOptions::new()).await;
    platform.throttle(
        ringside::simulator::RateGroup::Auth,
        Duration::from_secs(2),
        true,
    );
    let app = TestConfig::new().against_websocket(&platform).start().await;
    app.wait_subscription_active().await;
    let tokens: Vec<_> = platform
        .requests()
        .into_iter()
        .filter(|request| request.path.starts_with("/restapi/oauth/"))
        .collect();
    // The first Auth request met the penalty (429); nothing else went inside the window.
    let refused: Vec<_> = tokens
        .iter()
        .filter(|request| request.status == 429)
        .collect();
    assert_eq!(refused.len(), 1, "{tokens:#?}");
    assert_eq!(
        tokens
            .iter()
            .filter(|r| r.path.ends_with("/wstoken") && r.status == 200)
            .count(),
        1
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_on_the_ws_token_refreshes_the_access_token_without_a_new_login() {
    let (platform, app) = subscribed(PlatformOptions::new()).await;
    let before = platform.token_requests();
    platform.expire_tokens();
    platform.drop_websockets();
    eventually("a second connection", DEADLINE, async || {
        (platform.ws_stats().connections >= 2).then_some(())
    })
    .await;
    wait_connected(&app).await;
    let after = platform.token_requests();
    assert_eq!(after.jwt, before.jwt, "no new JWT login: {after:?}");
    assert!(after.refresh > before.refresh, "{after:?}");
    assert_eq!(
        platform.ws_stats().recovered,
        1,
        "same OAuth session: recovered"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_to_the_websocket_deletes_the_webhook_subscription_and_back_subscribes_again() {
    let platform = start_platform(PlatformOptions::new()).await;
    let app = TestConfig::new().against(&platform).start().await;
    let webhook = app.wait_subscription_active().await;
    let public_url = app.config.settings.server.public_url.clone();

    // To the WebSocket, same store: the webhook subscription it made goes.
    let (mut config, _) = app.stop().await;
    config.settings.server.public_url = None;
    config.settings.ringcentral.delivery = ringside::config::Delivery::WebSocket;
    let app = config.start().await;
    app.wait_subscription_active().await;
    eventually("the webhook subscription is gone", DEADLINE, async || {
        platform
            .subscriptions()
            .iter()
            .all(|sub| sub.id != webhook && sub.is_websocket())
            .then_some(())
    })
    .await;

    // And back to the webhook: the socket's subscription is deleted on the way out, and a
    // webhook subscription is made as before.
    let (mut config, _) = app.stop().await;
    config.settings.server.public_url = public_url;
    config.settings.ringcentral.delivery = ringside::config::Delivery::Webhook;
    let app = config.start().await;
    let again = app.wait_subscription_active().await;
    let subscriptions = platform.subscriptions();
    assert_eq!(subscriptions.len(), 1, "{subscriptions:#?}");
    assert_eq!(subscriptions[0].id, again);
    assert!(!subscriptions[0].is_websocket());
    app.stop().await;
}
