//! The real app as a RingCentral client (the README's "Connecting to RingCentral": sign-in,
//! subscription, webhook route, reconciliation, removing a caller) against the RingCentral platform fake, over HTTP on real sockets.
//!
//! Every app runs with its own temporary store, its public listener on a fixed free port that
//! `server.public_url` names (so the webhook address survives a restart), one-second reconcile,
//! watchdog, kick confirmation and auth retry, and a 50 ms coalescing window. Waits poll with a
//! deadline; the only plain waits are the ones that assert that nothing happens for a while.

use crate::support::{
    self, DEADLINE, TestApp, TestConfig, VERIFICATION_TOKEN, eventually, free_port, start_platform,
};
use ringside::conference::{Actor, ConferenceId, ParticipantId, ParticipantKey};
use ringside::pipeline::SubscriptionHealth;
use ringside::pipeline::{KickOutcome, KickRequest};
use ringside::ringcentral::subscription::TELEPHONY_FILTER;
use ringside::simulator::platform::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_JWT, PlatformHandle, PlatformOptions,
    RequestRecord,
};
use ringside::simulator::{CallerRef, ConferenceController, LeaveSignal, Person, RateGroup};
use ringside::store::AuditEntry;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

const SUBSCRIPTIONS: &str = "/restapi/v1.0/subscription";
const PRESENCE: &str = "/restapi/v1.0/account/~/presence";
const SEED: u64 = 0x5eed_0122;

fn host() -> Person {
    Person::with_extension("Agent 122", "122", "62295300122")
}

fn paco() -> Person {
    Person::new("Paco Vu", "+14155550142")
}

fn rhea() -> Person {
    Person::new("Rhea Stone", "+14155550177")
}

fn moderator() -> Actor {
    Actor {
        id: "410000000000000001".into(),
        display: "@mod".into(),
    }
}

fn session_path(session: &str) -> String {
    format!("/restapi/v1.0/account/~/telephony/sessions/{session}")
}

fn party_path(session: &str, party: &str) -> String {
    format!("{}/parties/{party}", session_path(session))
}

/// The requests the platform answered with this method and path.
fn requests_to(platform: &PlatformHandle, method: &str, path: &str) -> Vec<RequestRecord> {
    platform
        .requests()
        .into_iter()
        .filter(|r| r.method == method && r.path == path)
        .collect()
}

fn light_requests(platform: &PlatformHandle) -> Vec<RequestRecord> {
    platform
        .requests()
        .into_iter()
        .filter(|r| r.group == Some(RateGroup::Light))
        .collect()
}

fn describe(requests: &[RequestRecord]) -> Vec<String> {
    requests
        .iter()
        .map(|r| format!("{} {} {} {}", r.at.time(), r.method, r.path, r.status))
        .collect()
}

fn key(conference: &ConferenceController, caller: CallerRef) -> ParticipantKey {
    ParticipantKey {
        conference: ConferenceId::parse(&conference.conference_id()).expect("a conference id"),
        participant: ParticipantId::parse(&conference.participant_id(caller))
            .expect("a participant id"),
    }
}

fn kick_request(participant: ParticipantKey) -> KickRequest {
    KickRequest {
        participant,
        by: moderator(),
        reason: Some("not on the guest list".into()),
    }
}

/// Waits until the roster lists every one of `callers` live in the conference.
async fn wait_live(app: &TestApp, conference: &ConferenceController, callers: &[CallerRef]) {
    let keys: Vec<ParticipantKey> = callers.iter().map(|c| key(conference, *c)).collect();
    eventually("the callers are live in the roster", DEADLINE, async || {
        keys.iter()
            .all(|key| {
                app.running
                    .roster
                    .participant(key)
                    .is_some_and(|participant| participant.live)
            })
            .then_some(())
    })
    .await;
}

/// The party as the platform's session GET shows it.
fn party_status(platform: &PlatformHandle, session: &str, party: &str) -> Option<String> {
    let session = platform.session(session)?;
    session["parties"]
        .as_array()?
        .iter()
        .find(|p| p["id"] == party)
        .and_then(|p| p.pointer("/status/code"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

async fn audit(app: &TestApp) -> Vec<AuditEntry> {
    app.running.store.audit_since(0).await.expect("audit log")
}

/// A platform with default options, ringside started against it (with `configure` applied to
/// the settings) and its subscription active.
async fn platform_and_app(
    options: PlatformOptions,
    configure: impl FnOnce(&mut ringside::config::Settings),
) -> (PlatformHandle, TestApp) {
    let platform = start_platform(options).await;
    let mut config = TestConfig::new().against(&platform);
    configure(&mut config.settings);
    let app = config.start().await;
    app.wait_subscription_active().await;
    (platform, app)
}

/// A conference with Paco and Rhea merged in, both live in ringside's roster.
struct Call {
    platform: PlatformHandle,
    app: TestApp,
    conference: ConferenceController,
    paco: CallerRef,
    rhea: CallerRef,
}

async fn live_call(
    options: PlatformOptions,
    configure: impl FnOnce(&mut ringside::config::Settings),
) -> Call {
    let (platform, app) = platform_and_app(options, configure).await;
    let conference = platform.conference(SEED, host());
    conference.start().await;
    conference.advance(Duration::from_secs(20));
    let paco = conference.call_and_merge(paco()).await;
    conference.advance(Duration::from_secs(20));
    let rhea = conference.call_and_merge(rhea()).await;
    wait_live(&app, &conference, &[paco, rhea]).await;
    Call {
        platform,
        app,
        conference,
        paco,
        rhea,
    }
}

impl Call {
    async fn kick(&self, participant: ParticipantKey) -> KickOutcome {
        let kicker = self.app.running.kicker().expect("a kicker");
        kicker.kick(kick_request(participant)).await
    }

    async fn audit_entry(&self, participant: &ParticipantKey) -> AuditEntry {
        let entries = audit(&self.app).await;
        let mine: Vec<&AuditEntry> = entries
            .iter()
            .filter(|entry| {
                entry.participant_id.as_deref() == Some(participant.participant.as_str())
            })
            .collect();
        assert_eq!(mine.len(), 1, "one audit entry per attempt: {entries:#?}");
        let entry = mine[0].clone();
        assert_eq!(entry.action, "kick");
        assert_eq!(entry.actor_id, moderator().id);
        assert_eq!(entry.actor_name, moderator().display);
        assert_eq!(
            entry.conference_id.as_deref(),
            Some(participant.conference.as_str())
        );
        entry
    }
}

// ----- 1. start-up ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_subscribes_passes_the_handshake_and_announces_a_played_conference() {
    let platform = start_platform(PlatformOptions::new()).await;
    let config = TestConfig::new().against(&platform);
    let address = config.webhook_address();
    let app = config.start().await;

    let id = app.wait_subscription_active().await;
    let subscriptions = platform.subscriptions();
    assert_eq!(subscriptions.len(), 1, "{subscriptions:#?}");
    let subscription = &subscriptions[0];
    assert_eq!(subscription.id, id);
    assert_eq!(subscription.status.as_str(), "Active");
    assert_eq!(subscription.address, address);
    assert_eq!(
        subscription.verification_token.as_deref(),
        Some(app.token().as_str())
    );
    assert!(subscription.has_telephony_filter(), "{subscription:#?}");
    assert!(
        subscription.reminder_filter().is_some(),
        "{subscription:#?}"
    );

    eventually("/readyz answers 200", DEADLINE, async || {
        let (status, _) = app.readyz().await;
        (status == 200).then_some(())
    })
    .await;

    let conference = platform.conference(SEED, host());
    conference.start().await;
    conference.advance(Duration::from_secs(10));
    let paco = conference.call_and_merge(paco()).await;
    conference.advance(Duration::from_secs(10));
    let _rhea = conference.call_and_merge(rhea()).await;
    conference.advance(Duration::from_secs(60));
    conference.hang_up(paco, LeaveSignal::Both).await;
    conference.advance(Duration::from_secs(60));
    conference.end().await;

    let lines = app.wait_for_line(" ended after ").await;
    let expected_in_order = [
        "Conference hosted by Agent 122 started",
        "Paco Vu (•••0142) joined the conference hosted by Agent 122 — 1 on the call",
        "Rhea Stone (•••0177) joined the conference hosted by Agent 122 — 2 on the call",
        "Paco Vu (•••0142) left after ",
        "Rhea Stone (•••0177) left after ",
        "Conference hosted by Agent 122 ended after ",
    ];
    assert_eq!(lines.len(), expected_in_order.len(), "{lines:#?}");
    for (line, expected) in lines.iter().zip(expected_in_order) {
        assert!(
            line.starts_with(expected),
            "{line:?} vs {expected:?}: {lines:#?}"
        );
    }
    assert!(
        lines[4].ends_with("when the conference ended"),
        "{lines:#?}"
    );
    assert!(
        lines[5].ends_with("— 2 callers, at most 2 at once"),
        "{lines:#?}"
    );
    let delivered = platform.deliveries();
    assert!(delivered.iter().all(|d| d.ok()), "{delivered:#?}");
    assert!(delivered.iter().all(|d| d.subscription_id == id));
    app.stop().await;
}

// ----- 2. restart ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_reuses_the_subscription_and_the_stored_token() {
    let platform = start_platform(PlatformOptions::new()).await;
    let app = TestConfig::new().against(&platform).start().await;
    let id = app.wait_subscription_active().await;
    let tokens_before = platform.token_requests();
    assert_eq!(tokens_before.jwt, 1, "{tokens_before:?}");
    assert_eq!(requests_to(&platform, "POST", SUBSCRIPTIONS).len(), 1);
    let (config, _) = app.stop().await;

    let app = config.start().await;
    let again = app.wait_subscription_active().await;
    assert_eq!(again, id, "the stored subscription is reused");
    // The reuse was decided by reading it (a GET after the restart).
    eventually("the stored subscription is read", DEADLINE, async || {
        (!requests_to(&platform, "GET", &format!("{SUBSCRIPTIONS}/{id}")).is_empty()).then_some(())
    })
    .await;
    let subscriptions = platform.subscriptions();
    assert_eq!(subscriptions.len(), 1, "{subscriptions:#?}");
    assert_eq!(subscriptions[0].id, id);
    assert_eq!(
        requests_to(&platform, "POST", SUBSCRIPTIONS).len(),
        1,
        "no second create: {:#?}",
        describe(&platform.requests())
    );
    let deletes: Vec<_> = platform
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .collect();
    assert!(deletes.is_empty(), "{:#?}", describe(&deletes));
    assert_eq!(
        platform.token_requests(),
        tokens_before,
        "the stored token is reused: no new grant"
    );
    // And the reused subscription still delivers to the restarted app.
    let conference = platform.conference(SEED, host());
    conference.start().await;
    let paco = conference.call_and_merge(paco()).await;
    wait_live(&app, &conference, &[paco]).await;
    app.wait_for_line("Paco Vu (•••0142) joined").await;
    app.stop().await;
}

// ----- 3. subscriptions ringside cannot trust ------------------------------------------------

/// A token of the platform's default app and user, obtained outside ringside.
async fn outside_token(platform: &PlatformHandle) -> String {
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/restapi/oauth/token", platform.base_url()))
        .basic_auth(DEFAULT_CLIENT_ID, Some(DEFAULT_CLIENT_SECRET))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", DEFAULT_JWT),
        ])
        .send()
        .await
        .expect("the token endpoint answers")
        .json()
        .await
        .expect("a token answer");
    answer["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_with_a_token_ringside_does_not_hold_is_deleted() {
    let platform = start_platform(PlatformOptions::new()).await;
    let app = TestConfig::new().against(&platform).start().await;
    let ours = app.wait_subscription_active().await;
    let address = app.config.webhook_address();

    // Someone else subscribes the same address with another token (ringside answers the
    // handshake, which carries no token).
    let token = outside_token(&platform).await;
    let created = reqwest::Client::new()
        .post(format!("{}{SUBSCRIPTIONS}", platform.base_url()))
        .bearer_auth(token)
        .json(&json!({
            "eventFilters": [TELEPHONY_FILTER],
            "deliveryMode": {
                "transportType": "WebHook",
                "address": address,
                "verificationToken": "someone-elses-token",
            },
            "expiresIn": 3600,
        }))
        .send()
        .await
        .expect("the platform answers");
    assert_eq!(created.status(), 200);
    let foreign = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(platform.subscriptions().len(), 2);

    let (config, _) = app.stop().await;
    let app = config.start().await;
    let id = app.wait_subscription_active().await;
    assert_eq!(id, ours, "the trusted stored subscription is kept");
    let subscriptions = platform.subscriptions();
    assert_eq!(subscriptions.len(), 1, "{subscriptions:#?}");
    assert_eq!(subscriptions[0].id, ours);
    assert_eq!(
        subscriptions[0].verification_token.as_deref(),
        Some(VERIFICATION_TOKEN)
    );
    assert_eq!(
        requests_to(&platform, "DELETE", &format!("{SUBSCRIPTIONS}/{foreign}")).len(),
        1
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_left_by_a_lost_store_is_deleted_and_replaced() {
    let platform = start_platform(PlatformOptions::new()).await;
    let first = TestConfig::new().against(&platform);
    let listen = first.settings.server.listen;
    let app = first.start().await;
    let old = app.wait_subscription_active().await;
    app.stop().await;

    // Same address and token, but a fresh store: ringside does not know the old one's token.
    let mut config = TestConfig::new().against(&platform);
    config.settings.server.listen = listen;
    config.settings.server.public_url = Some(format!("http://{listen}"));
    let app = config.start().await;
    let new = app.wait_subscription_active().await;
    assert_ne!(new, old);
    assert_eq!(
        requests_to(&platform, "DELETE", &format!("{SUBSCRIPTIONS}/{old}")).len(),
        1,
        "{:#?}",
        describe(&platform.requests())
    );
    let subscriptions = platform.subscriptions();
    assert_eq!(subscriptions.len(), 1, "{subscriptions:#?}");
    assert_eq!(subscriptions[0].id, new);
    assert_eq!(subscriptions[0].address, app.config.webhook_address());
    assert_eq!(
        subscriptions[0].verification_token.as_deref(),
        Some(app.token().as_str())
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_verification_token_replaces_the_subscription() {
    let platform = start_platform(PlatformOptions::new()).await;
    let app = TestConfig::new().against(&platform).start().await;
    let old = app.wait_subscription_active().await;
    let (mut config, _) = app.stop().await;

    config.settings.ringcentral.verification_token =
        Some(secrecy::SecretString::from("a-new-verification-token"));
    let app = config.start().await;
    let new = app.wait_subscription_active().await;
    assert_ne!(new, old);
    let subscriptions = platform.subscriptions();
    assert_eq!(subscriptions.len(), 1, "{subscriptions:#?}");
    assert_eq!(subscriptions[0].id, new);
    assert_eq!(
        subscriptions[0].verification_token.as_deref(),
        Some("a-new-verification-token")
    );
    assert_eq!(
        requests_to(&platform, "DELETE", &format!("{SUBSCRIPTIONS}/{old}")).len(),
        1
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_of_another_instance_are_left_alone_across_restarts() {
    let platform = start_platform(PlatformOptions::new()).await;
    let production = TestConfig::new().against(&platform).start().await;
    let production_id = production.wait_subscription_active().await;
    // A staging instance of the same app and user: its own address, store and token.
    let mut staging = TestConfig::new().against(&platform);
    staging.settings.ringcentral.verification_token =
        Some(secrecy::SecretString::from("staging-verification-token"));
    let staging = staging.start().await;
    let staging_id = staging.wait_subscription_active().await;
    assert_ne!(staging_id, production_id);

    // Each restarts (a blue/green deploy): neither deletes the other's subscription.
    let (config, _) = staging.stop().await;
    let staging = config.start().await;
    assert_eq!(staging.wait_subscription_active().await, staging_id);
    let (config, _) = production.stop().await;
    let production = config.start().await;
    assert_eq!(production.wait_subscription_active().await, production_id);

    let deletes: Vec<RequestRecord> = platform
        .requests()
        .into_iter()
        .filter(|request| request.method == "DELETE")
        .collect();
    assert!(deletes.is_empty(), "{:#?}", describe(&deletes));
    assert_eq!(platform.subscriptions().len(), 2);
    production.stop().await;
    staging.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stored_subscription_is_replaced_when_the_address_changed() {
    let platform = start_platform(PlatformOptions::new()).await;
    let app = TestConfig::new().against(&platform).start().await;
    let old = app.wait_subscription_active().await;
    let (mut config, _) = app.stop().await;

    // Same store, new address: the one ringside created (at the old address) goes.
    let listen = support::free_port();
    config.settings.server.listen = listen;
    config.settings.server.public_url = Some(format!("http://{listen}"));
    let app = config.start().await;
    let new = app.wait_subscription_active().await;
    assert_ne!(new, old);
    assert_eq!(
        requests_to(&platform, "DELETE", &format!("{SUBSCRIPTIONS}/{old}")).len(),
        1,
        "{:#?}",
        describe(&platform.requests())
    );
    let subscriptions = platform.subscriptions();
    assert_eq!(subscriptions.len(), 1, "{subscriptions:#?}");
    assert_eq!(subscriptions[0].address, app.config.webhook_address());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_subscription_is_created_while_the_store_cannot_keep_its_token() {
    let platform = start_platform(PlatformOptions::new()).await;
    let app = TestConfig::new().against(&platform).start().await;
    let old = app.wait_subscription_active().await;
    let (config, _) = app.stop().await;
    ringside::app::operator::delete_subscription(&config.settings, Some(old))
        .await
        .expect("the operator deletes it");
    let creates_before = requests_to(&platform, "POST", SUBSCRIPTIONS).len();

    // Another connection holds the store's write lock: reads work, writes fail.
    let lock = rusqlite::Connection::open(&config.settings.store.path).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let app = config.start().await;
    let reason = support::eventually(
        "the subscription reports failing",
        Duration::from_secs(20),
        async || match app.subscription_health() {
            SubscriptionHealth::Failing { reason } => Some(reason),
            _ => None,
        },
    )
    .await;
    assert!(
        reason.contains("cannot keep the subscription in the store"),
        "{reason}"
    );
    assert!(platform.subscriptions().is_empty());
    assert_eq!(
        requests_to(&platform, "POST", SUBSCRIPTIONS).len(),
        creates_before,
        "a subscription was created while its token could not be kept"
    );
    drop(lock);
    app.stop().await;
}

// ----- 4. auth -------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_share_one_token_request_and_a_401_refreshes_once() {
    let platform = start_platform(PlatformOptions::new()).await;
    let config = TestConfig::new().against(&platform);
    let credentials = config.settings.ringcentral.credentials.clone().unwrap();
    let client =
        ringside::ringcentral::side::client(&config.settings, credentials, None).expect("a client");

    let callers: Vec<_> = (0..50)
        .map(|_| {
            let client = Arc::clone(&client);
            tokio::spawn(async move { client.auth().access_token().await })
        })
        .collect();
    for caller in callers {
        caller
            .await
            .expect("the caller did not panic")
            .expect("a token");
    }
    let tokens = platform.token_requests();
    assert_eq!(tokens.total(), 1, "{tokens:?}");
    assert_eq!(tokens.jwt, 1, "{tokens:?}");

    platform.expire_tokens();
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let client = Arc::clone(&client);
            tokio::spawn(async move { client.list_subscriptions().await })
        })
        .collect();
    for call in calls {
        call.await
            .expect("the call did not panic")
            .expect("succeeds after one refresh");
    }
    let tokens = platform.token_requests();
    assert_eq!(tokens.refresh, 1, "one refresh grant: {tokens:?}");
    assert_eq!(tokens.jwt, 1, "no second JWT grant: {tokens:?}");
    let lists = requests_to(&platform, "GET", SUBSCRIPTIONS);
    assert!(
        lists.iter().any(|r| r.status == 401),
        "{:#?}",
        describe(&lists)
    );
    assert_eq!(
        lists.iter().filter(|r| r.status == 200).count(),
        10,
        "{:#?}",
        describe(&lists)
    );
}

// ----- 5. watchdog ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blacklisted_subscription_is_recreated_and_discovery_runs_again() {
    let (platform, app) = platform_and_app(PlatformOptions::new(), |_| {}).await;
    let old = app.wait_subscription_active().await;
    assert!(platform.blacklist(&old));
    let blacklisted_at = OffsetDateTime::now_utc();

    let new = eventually(
        "a new subscription replaces the blacklisted one",
        DEADLINE,
        async || {
            platform
                .subscriptions()
                .into_iter()
                .find(|s| s.id != old && s.status.as_str() == "Active")
                .map(|s| s.id)
        },
    )
    .await;
    eventually(
        "ringside reports the new subscription",
        DEADLINE,
        async || {
            (app.subscription_health() == SubscriptionHealth::Active { id: new.clone() })
                .then_some(())
        },
    )
    .await;
    let subscriptions = platform.subscriptions();
    assert_eq!(
        subscriptions.len(),
        1,
        "the blacklisted one was deleted: {subscriptions:#?}"
    );
    assert_eq!(
        subscriptions[0].verification_token.as_deref(),
        Some(VERIFICATION_TOKEN)
    );

    let created_at = requests_to(&platform, "POST", SUBSCRIPTIONS)
        .iter()
        .filter(|r| r.at > blacklisted_at && r.status == 200)
        .map(|r| r.at)
        .next()
        .expect("the create after the blacklisting");
    eventually(
        "discovery runs after the recreation",
        DEADLINE,
        async || {
            platform
                .requests()
                .iter()
                .any(|r| r.at > created_at && r.method == "GET" && r.path == PRESENCE)
                .then_some(())
        },
    )
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_reminder_renews_the_subscription() {
    let (platform, app) = platform_and_app(PlatformOptions::new(), |_| {}).await;
    let id = app.wait_subscription_active().await;
    let renew = format!("{SUBSCRIPTIONS}/{id}/renew");
    assert!(requests_to(&platform, "POST", &renew).is_empty());

    let delivery = platform
        .send_reminder(&id)
        .await
        .expect("the reminder is delivered");
    assert!(delivery.ok(), "{delivery:?}");
    eventually("the subscription is renewed", DEADLINE, async || {
        requests_to(&platform, "POST", &renew)
            .iter()
            .any(|r| r.status == 200)
            .then_some(())
    })
    .await;
    assert_eq!(platform.subscriptions().len(), 1);
    assert_eq!(app.subscription_health(), SubscriptionHealth::Active { id });
    let lines = app.settle().await;
    assert!(lines.is_empty(), "a reminder is not announced: {lines:#?}");
    app.stop().await;
}

// ----- scope ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_conferences_of_the_configured_hosts_are_announced_and_listed() {
    let watched = host();
    let other = Person::with_extension("Agent 200", "200", "62295300200");
    let extension = watched.extension_id.clone().unwrap();
    let (platform, app) = platform_and_app(PlatformOptions::new(), |settings| {
        settings.ringcentral.host_extensions = vec![extension];
    })
    .await;

    let outside = platform.conference(SEED + 1, other);
    outside.start().await;
    let stranger = outside
        .call_and_merge(Person::new("Sam Stranger", "+14155550199"))
        .await;
    let inside = platform.conference(SEED, watched);
    inside.start().await;
    let paco = inside.call_and_merge(paco()).await;
    wait_live(&app, &inside, &[paco]).await;
    outside.hang_up(stranger, LeaveSignal::Both).await;
    outside.end().await;

    let lines = app.settle().await;
    assert_eq!(
        lines,
        vec![
            "Conference hosted by Agent 122 started",
            "Paco Vu (•••0142) joined the conference hosted by Agent 122 — 1 on the call",
        ]
    );
    let live = app.running.roster.live();
    assert_eq!(live.len(), 1, "{live:#?}");
    assert_eq!(live[0].id.as_str(), inside.conference_id());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_subscription_is_recreated_by_the_watchdog() {
    let (platform, app) = platform_and_app(PlatformOptions::new(), |_| {}).await;
    let old = app.wait_subscription_active().await;
    let deleted =
        ringside::app::operator::delete_subscription(&app.config.settings, Some(old.clone()))
            .await
            .expect("the operator deletes it");
    assert_eq!(deleted, format!("deleted {old}"));

    let new = eventually("a new subscription is created", DEADLINE, async || {
        platform
            .subscriptions()
            .into_iter()
            .find(|s| s.id != old && s.status.as_str() == "Active")
            .map(|s| s.id)
    })
    .await;
    eventually(
        "ringside reports the new subscription",
        DEADLINE,
        async || {
            (app.subscription_health() == SubscriptionHealth::Active { id: new.clone() })
                .then_some(())
        },
    )
    .await;
    assert_eq!(platform.subscriptions().len(), 1);
    app.stop().await;
}

// ----- 6. penalty window ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_light_request_is_sent_during_a_429_penalty_window() {
    let call = live_call(PlatformOptions::new(), |_| {}).await;
    let platform = &call.platform;
    let throttled_at = OffsetDateTime::now_utc();
    platform.throttle(RateGroup::Light, Duration::from_secs(3), true);

    let first_429 = eventually("a Light request is answered 429", DEADLINE, async || {
        light_requests(platform)
            .into_iter()
            .find(|r| r.at >= throttled_at && r.status == 429)
    })
    .await;
    let penalty_over = first_429.at + Duration::from_secs(3);
    let next = eventually("a Light request after the penalty", DEADLINE, async || {
        light_requests(platform)
            .into_iter()
            .find(|r| r.at > first_429.at)
    })
    .await;
    let after: Vec<RequestRecord> = light_requests(platform)
        .into_iter()
        .filter(|r| r.at > first_429.at)
        .collect();
    assert!(
        next.at >= penalty_over,
        "a Light request arrived {:?} after the 429 (Retry-After: 3 s): {:#?}",
        next.at - first_429.at,
        describe(&after)
    );
    assert_ne!(next.status, 429, "{:#?}", describe(&after));
    assert_eq!(
        light_requests(platform)
            .iter()
            .filter(|r| r.status == 429)
            .count(),
        1,
        "one 429 only: {:#?}",
        describe(&light_requests(platform))
    );
    call.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_without_retry_after_pauses_light_requests_for_thirty_seconds() {
    let call = live_call(PlatformOptions::new(), |_| {}).await;
    let platform = &call.platform;
    let throttled_at = OffsetDateTime::now_utc();
    platform.throttle(RateGroup::Light, Duration::from_secs(1), false);

    let first_429 = eventually("a Light request is answered 429", DEADLINE, async || {
        light_requests(platform)
            .into_iter()
            .find(|r| r.at >= throttled_at && r.status == 429)
    })
    .await;
    // Without Retry-After ringside waits 30 s; nothing Light may arrive in the next 5 s.
    let quiet_until = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < quiet_until {
        let after: Vec<RequestRecord> = light_requests(platform)
            .into_iter()
            .filter(|r| r.at > first_429.at)
            .collect();
        assert!(
            after.is_empty(),
            "Light requests during the 30 s pause: {:#?}",
            describe(&after)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    call.app.stop().await;
}

// ----- 7. budget -----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_stay_within_the_light_budget_and_reach_every_conference() {
    const LIMIT: usize = 10;
    const WINDOW: Duration = Duration::from_secs(2);
    const CONFERENCES: u64 = 12;
    let platform = start_platform(
        PlatformOptions::new()
            .limit(RateGroup::Light, LIMIT as u32)
            .rate_window(WINDOW),
    )
    .await;
    let mut conferences = Vec::new();
    for n in 0..CONFERENCES {
        let host = Person::with_extension(
            format!("Host {n}"),
            format!("1{n:02}"),
            format!("6229530{n:04}"),
        );
        let caller = Person::new(format!("Caller {n}"), format!("+1415555{n:04}"));
        let (conference, _) = platform
            .running_conference(SEED + n, host, vec![caller])
            .await;
        conferences.push(conference.conference_id());
    }

    let mut config = TestConfig::new().against(&platform);
    // The watchdog's reads are Light too; keep them out of the way of the polls.
    config.settings.ringcentral.watchdog_interval_secs = 60;
    let app = config.start().await;
    app.wait_subscription_active().await;

    eventually(
        "every conference is polled",
        Duration::from_secs(20),
        async || {
            let throttled: Vec<RequestRecord> = light_requests(&platform)
                .into_iter()
                .filter(|r| r.status == 429)
                .collect();
            assert!(
                throttled.is_empty(),
                "over the budget: {:#?}",
                describe(&throttled)
            );
            conferences
                .iter()
                .all(|id| !requests_to(&platform, "GET", &session_path(id)).is_empty())
                .then_some(())
        },
    )
    .await;
    // Keep going a little: every conference is polled a second time as well (round-robin).
    eventually(
        "every conference is polled twice",
        Duration::from_secs(20),
        async || {
            conferences
                .iter()
                .all(|id| requests_to(&platform, "GET", &session_path(id)).len() >= 2)
                .then_some(())
        },
    )
    .await;
    app.stop().await;

    let light = light_requests(&platform);
    assert!(
        light.iter().all(|r| r.status != 429),
        "{:#?}",
        describe(&light)
    );
    let most = light
        .iter()
        .map(|start| {
            light
                .iter()
                .filter(|r| r.at >= start.at && r.at < start.at + WINDOW)
                .count()
        })
        .max()
        .unwrap_or(0);
    assert!(
        most <= LIMIT,
        "{most} Light requests in one {WINDOW:?} window: {:#?}",
        describe(&light)
    );
    assert_eq!(still_running(&platform, &conferences), CONFERENCES as usize);
}

/// How many of the conferences the platform still runs (none ended by the polling).
fn still_running(platform: &PlatformHandle, conferences: &[String]) -> usize {
    conferences
        .iter()
        .filter(|id| platform.session(id).is_some())
        .count()
}

// ----- 8. kick -------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kick_deletes_the_conference_party_and_is_announced_as_a_removal() {
    let call = live_call(PlatformOptions::new(), |_| {}).await;
    let paco = key(&call.conference, call.paco);
    let conference_id = call.conference.conference_id();
    let party = call.conference.participant_id(call.paco);

    let outcome = call.kick(paco.clone()).await;
    assert_eq!(outcome, KickOutcome::Removed);
    assert_eq!(
        party_status(&call.platform, &conference_id, &party).as_deref(),
        Some("Disconnected")
    );
    let deletes: Vec<RequestRecord> = call
        .platform
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .collect();
    assert_eq!(deletes.len(), 1, "{:#?}", describe(&deletes));
    assert_eq!(deletes[0].path, party_path(&conference_id, &party));
    assert_eq!(deletes[0].status, 204);

    let lines = call.app.wait_for_line("was removed by @mod").await;
    let removal = lines
        .iter()
        .find(|line| line.contains("was removed by"))
        .unwrap();
    assert!(
        removal.starts_with("Paco Vu (•••0142) was removed by @mod after ")
            && removal.ends_with(" — not on the guest list"),
        "{lines:#?}"
    );
    let lines = call.app.settle().await;
    assert!(
        !lines
            .iter()
            .any(|line| line.starts_with("Paco Vu (•••0142) left")),
        "the removal is announced once, as a removal: {lines:#?}"
    );
    assert!(
        call.app
            .running
            .roster
            .participant(&paco)
            .is_some_and(|p| !p.live)
    );
    let entry = call.audit_entry(&paco).await;
    assert_eq!(entry.outcome, "removed");
    assert_eq!(entry.detail, "not on the guest list");
    call.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leave_that_arrives_before_the_delete_answers_is_still_a_removal() {
    let call = live_call(PlatformOptions::new(), |_| {}).await;
    call.platform.leave_before_answer(true);
    let rhea = key(&call.conference, call.rhea);

    let outcome = call.kick(rhea.clone()).await;
    assert_eq!(outcome, KickOutcome::Removed);
    let lines = call.app.wait_for_line("was removed by @mod").await;
    assert!(
        lines
            .iter()
            .any(|line| line.starts_with("Rhea Stone (•••0177) was removed by @mod after ")),
        "{lines:#?}"
    );
    let lines = call.app.settle().await;
    assert!(
        !lines
            .iter()
            .any(|line| line.starts_with("Rhea Stone (•••0177) left")),
        "{lines:#?}"
    );
    assert_eq!(call.audit_entry(&rhea).await.outcome, "removed");
    call.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kick_answered_404_on_the_conference_ids_falls_back_to_the_original_call() {
    let call = live_call(PlatformOptions::new(), |_| {}).await;
    let paco = key(&call.conference, call.paco);
    let conference_id = call.conference.conference_id();
    let party = call.conference.participant_id(call.paco);
    let (original_session, original_party) = call.conference.original_ids(call.paco);
    call.platform.hide_conference_party(&party);

    let outcome = call.kick(paco.clone()).await;
    assert_eq!(outcome, KickOutcome::Removed);
    let deletes: Vec<RequestRecord> = call
        .platform
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .collect();
    let tried: Vec<(String, u16)> = deletes.iter().map(|r| (r.path.clone(), r.status)).collect();
    assert_eq!(
        tried,
        vec![
            (party_path(&conference_id, &party), 404),
            (party_path(&original_session, &original_party), 204),
        ]
    );
    assert!(!call.conference.is_present(call.paco));
    call.app
        .wait_for_line("Paco Vu (•••0142) was removed by @mod")
        .await;
    assert_eq!(call.audit_entry(&paco).await.outcome, "removed");
    call.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_is_never_kicked() {
    let call = live_call(PlatformOptions::new(), |_| {}).await;
    let host = ParticipantKey {
        conference: ConferenceId::parse(&call.conference.conference_id()).unwrap(),
        participant: ParticipantId::parse(&call.conference.host_party_id()).unwrap(),
    };
    eventually("the host party is known", DEADLINE, async || {
        call.app
            .running
            .roster
            .conference(&host.conference)
            .and_then(|view| view.host_party)
    })
    .await;

    let outcome = call.kick(host.clone()).await;
    assert_eq!(outcome, KickOutcome::Host);
    let deletes: Vec<RequestRecord> = call
        .platform
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .collect();
    assert!(deletes.is_empty(), "{:#?}", describe(&deletes));
    assert!(
        call.platform
            .session(&call.conference.conference_id())
            .is_some()
    );
    assert_eq!(call.audit_entry(&host).await.outcome, "refused_host");
    call.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_kick_fails_in_plain_words_and_the_caller_stays() {
    let call = live_call(PlatformOptions::new(), |_| {}).await;
    let paco = key(&call.conference, call.paco);
    call.platform
        .forbid_kick(&call.conference.participant_id(call.paco));

    let outcome = call.kick(paco.clone()).await;
    let KickOutcome::Failed { reason } = &outcome else {
        panic!("expected a failure, got {outcome:?}");
    };
    assert!(reason.contains("CallControl"), "{reason}");
    assert!(
        !reason.contains('{') && !reason.contains("CMN-"),
        "plain words: {reason}"
    );
    assert!(call.conference.is_present(call.paco));
    let lines = call.app.settle().await;
    assert!(
        call.app
            .running
            .roster
            .participant(&paco)
            .is_some_and(|p| p.live),
        "the caller stays listed"
    );
    assert!(
        !lines
            .iter()
            .any(|line| line.starts_with("Paco Vu (•••0142) was removed")),
        "{lines:#?}"
    );
    let entry = call.audit_entry(&paco).await;
    assert_eq!(entry.outcome, "failed");
    assert!(entry.detail.contains("CallControl"), "{entry:?}");
    call.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kick_whose_answer_times_out_reads_the_session_before_deleting_again() {
    // A long reconcile interval, so that a session read after the kick is the kick's own.
    let call = live_call(PlatformOptions::new(), |settings| {
        settings.ringcentral.request_timeout_secs = 1;
        settings.ringcentral.reconcile_interval_secs = 60;
    })
    .await;
    let paco = key(&call.conference, call.paco);
    let conference_id = call.conference.conference_id();
    let party = call.conference.participant_id(call.paco);
    call.platform.delay_kick_answers(Duration::from_secs(3));

    let kicked_at = OffsetDateTime::now_utc();
    let outcome = call.kick(paco.clone()).await;
    assert_eq!(outcome, KickOutcome::Removed);
    // The DELETE went through (the platform disconnects at once) but its answer never reached
    // ringside, so the platform logged no answer for it; a second DELETE would have been
    // answered (404: the party is gone) and logged.
    assert_eq!(
        party_status(&call.platform, &conference_id, &party).as_deref(),
        Some("Disconnected")
    );
    let deletes: Vec<RequestRecord> = call
        .platform
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .collect();
    assert!(
        deletes.is_empty(),
        "the DELETE was repeated: {:#?}",
        describe(&deletes)
    );
    let reads: Vec<RequestRecord> =
        requests_to(&call.platform, "GET", &session_path(&conference_id))
            .into_iter()
            .filter(|r| r.at >= kicked_at + Duration::from_millis(900))
            .collect();
    assert_eq!(
        reads.len(),
        1,
        "the session was read once after the DELETE timed out: {:#?}",
        describe(&call.platform.requests())
    );
    call.app
        .wait_for_line("Paco Vu (•••0142) was removed by @mod")
        .await;
    assert_eq!(call.audit_entry(&paco).await.outcome, "removed");
    call.app.stop().await;
}

// ----- 9. silent disconnect ------------------------------------------------------------------

/// Paco hangs up and nothing is delivered: only reconciliation can notice.
async fn silent_disconnect_is_announced(options: PlatformOptions) {
    let call = live_call(options, |_| {}).await;
    let paco = key(&call.conference, call.paco);
    let before = call.platform.deliveries().len();
    call.conference
        .hang_up(call.paco, LeaveSignal::Silent)
        .await;
    assert_eq!(
        call.platform.deliveries().len(),
        before,
        "nothing was delivered"
    );

    let lines = call
        .app
        .wait_for_line("Paco Vu (•••0142) dropped off the call")
        .await;
    assert!(
        !lines
            .iter()
            .any(|line| line.starts_with("Paco Vu (•••0142) left")),
        "{lines:#?}"
    );
    assert!(
        call.app
            .running
            .roster
            .participant(&paco)
            .is_some_and(|p| !p.live)
    );
    // Rhea is still on.
    let rhea = key(&call.conference, call.rhea);
    assert!(
        call.app
            .running
            .roster
            .participant(&rhea)
            .is_some_and(|p| p.live)
    );
    let lines = call.app.settle().await;
    assert_eq!(
        lines
            .iter()
            .filter(|line| line.contains("dropped off"))
            .count(),
        1,
        "announced once: {lines:#?}"
    );
    call.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_disconnect_shown_as_disconnected_by_the_session_is_repaired() {
    silent_disconnect_is_announced(PlatformOptions::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_disconnect_left_out_of_the_session_is_repaired() {
    silent_disconnect_is_announced(PlatformOptions::new().list_disconnected_parties(false)).await;
}

/// The detector's state is kept across a restart (the README's Durability): a leave that
/// happened while ringside was down is found by reconciliation at start and announced once, and
/// nothing already announced (the start, Rhea's join) is announced again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leave_missed_while_stopped_is_found_after_a_restart() {
    let call = live_call(PlatformOptions::new(), |_| {}).await;
    let paco = key(&call.conference, call.paco);
    let rhea = key(&call.conference, call.rhea);
    let (config, _) = call.app.stop().await;

    // Delivered while ringside is down: lost.
    call.conference.hang_up(call.paco, LeaveSignal::Both).await;
    let failed = call.platform.deliveries();
    assert!(failed.last().is_some_and(|d| !d.ok()), "{failed:#?}");

    let app = config.start().await;
    app.wait_for_line("Paco Vu (•••0142) dropped off the call")
        .await;
    let lines = app.settle().await;
    assert_eq!(
        lines.len(),
        1,
        "nothing else is announced again: {lines:#?}"
    );
    assert!(
        app.running
            .roster
            .participant(&paco)
            .is_some_and(|p| !p.live),
        "{lines:#?}"
    );
    assert!(
        app.running
            .roster
            .participant(&rhea)
            .is_some_and(|p| p.live)
    );
    app.stop().await;
}

// ----- 10. discovery -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conference_running_before_start_is_discovered() {
    let platform = start_platform(PlatformOptions::new()).await;
    let (conference, callers) = platform
        .running_conference(SEED, host(), vec![paco(), rhea()])
        .await;
    let app = TestConfig::new().against(&platform).start().await;

    wait_live(&app, &conference, &callers).await;
    let live = app.running.roster.live();
    assert_eq!(live.len(), 1, "{live:#?}");
    assert_eq!(live[0].id.as_str(), conference.conference_id());
    assert_eq!(live[0].participants.len(), 2, "{live:#?}");
    // Only the conference side is known (its parties carry the host's leg), so the callers are
    // unnamed until an original call's event names them (the detector's rules, `src/conference/detector.rs`).
    let lines = eventually("both callers are announced", DEADLINE, async || {
        let lines = app.lines();
        (lines
            .iter()
            .filter(|line| line.contains(" joined "))
            .count()
            == 2)
            .then_some(lines)
    })
    .await;
    assert_eq!(
        lines,
        vec![
            "Conference hosted by Agent 122 started",
            "An unknown caller joined the conference hosted by Agent 122 — 1 on the call",
            "An unknown caller joined the conference hosted by Agent 122 — 2 on the call",
        ]
    );
    assert!(
        !requests_to(&platform, "GET", PRESENCE).is_empty(),
        "found through presence"
    );
    app.stop().await;
}

// ----- 11. disabled filter -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_telephony_filter_makes_readyz_name_the_missing_permission() {
    let platform =
        start_platform(PlatformOptions::new().disable_filter(TELEPHONY_FILTER, "CallControl"))
            .await;
    let app = TestConfig::new().against(&platform).start().await;

    let reason = eventually(
        "the subscription is reported failing",
        DEADLINE,
        async || match app.subscription_health() {
            SubscriptionHealth::Failing { reason } => Some(reason),
            _ => None,
        },
    )
    .await;
    assert!(reason.contains("CallControl"), "{reason}");
    let (status, body) = app.readyz().await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("RingCentral subscription"), "{body}");
    assert!(body.contains("CallControl"), "{body}");
    app.stop().await;
}

// ----- 12. operator commands -----------------------------------------------------------------

fn problems(lines: &[ringside::app::operator::Line]) -> Vec<String> {
    lines
        .iter()
        .filter(|line| !line.ok)
        .map(ToString::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_list_and_delete_work_against_the_platform() {
    // Each command signs in and revokes: six Auth requests here, over the default five a minute.
    let options = PlatformOptions::new().limit(RateGroup::Auth, 20);
    let (platform, app) = platform_and_app(options, |_| {}).await;
    let id = app.wait_subscription_active().await;
    let settings = app.config.settings.clone();
    let address = app.config.webhook_address();

    let before = platform.token_requests();
    let lines = ringside::app::operator::check(&settings)
        .await
        .expect("check runs");
    let text: Vec<String> = lines.iter().map(ToString::to_string).collect();
    assert!(problems(&lines).is_empty(), "{text:#?}");
    assert!(
        text.iter()
            .any(|line| line.contains(&id) && line.contains("Active")),
        "{text:#?}"
    );
    let after = platform.token_requests();
    assert_eq!(after.jwt, before.jwt + 1, "a fresh token: {after:?}");
    assert_eq!(
        after.revoked,
        before.revoked + 1,
        "revoked afterwards: {after:?}"
    );

    let listed = ringside::app::operator::list_subscriptions(&settings)
        .await
        .expect("list runs");
    assert_eq!(listed, vec![format!("{id} Active {address}")]);
    assert_eq!(platform.token_requests().revoked, before.revoked + 2);

    // Stopped first (so that its watchdog does not recreate it); the store stays.
    let (_config, _) = app.stop().await;
    let deleted = ringside::app::operator::delete_subscription(&settings, None)
        .await
        .expect("delete runs");
    assert_eq!(deleted, format!("deleted {id}"));
    assert!(platform.subscriptions().is_empty());
    assert_eq!(platform.token_requests().revoked, before.revoked + 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_in_websocket_mode_names_the_delivery_and_needs_no_webhook_permission() {
    // An app without SubscriptionWebhook, and nothing running: nothing to report but the
    // delivery and why.
    let platform =
        start_platform(PlatformOptions::new().scope("ReadAccounts ReadPresence CallControl")).await;
    let settings = TestConfig::new().against_websocket(&platform).settings;
    let lines = ringside::app::operator::check(&settings)
        .await
        .expect("check runs");
    let text: Vec<String> = lines.iter().map(ToString::to_string).collect();
    assert!(problems(&lines).is_empty(), "{text:#?}");
    assert!(
        text.iter()
            .any(|line| line.contains("ringcentral delivery: websocket (")),
        "{text:#?}"
    );
    assert!(
        text.iter().any(|line| line
            .contains("ringcentral subscription: held over the WebSocket by the running service")),
        "{text:#?}"
    );
    assert!(
        !text.iter().any(|line| line.contains("SubscriptionWebhook")),
        "{text:#?}"
    );
    assert!(
        platform.subscriptions().is_empty(),
        "check subscribes nothing"
    );
    assert_eq!(platform.token_requests().revoked, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_a_missing_subscription_and_a_missing_permission() {
    let platform = start_platform(PlatformOptions::new()).await;
    let mut settings = TestConfig::new().against(&platform).settings;
    settings.server.public_url = Some(format!("http://{}", free_port()));
    let lines = ringside::app::operator::check(&settings)
        .await
        .expect("check runs");
    let problems_found = problems(&lines);
    assert_eq!(problems_found.len(), 1, "{problems_found:#?}");
    assert!(
        problems_found[0].contains("none delivers to"),
        "{problems_found:#?}"
    );
    assert_eq!(platform.token_requests().revoked, 1);

    let platform = start_platform(
        PlatformOptions::new().scope("ReadAccounts ReadPresence SubscriptionWebhook"),
    )
    .await;
    let settings = TestConfig::new().against(&platform).settings;
    let lines = ringside::app::operator::check(&settings)
        .await
        .expect("check runs");
    let problems_found = problems(&lines);
    assert!(
        problems_found
            .iter()
            .any(|line| line.contains("CallControl") && line.contains("missing")),
        "{problems_found:#?}"
    );
    assert_eq!(platform.token_requests().revoked, 1);
}
