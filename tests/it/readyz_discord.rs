//! `/readyz` and `/metrics` with the Discord side configured (the README's HTTP routes): the real app on
//! 127.0.0.1:0 against the fake Discord of `tests/it/support/discord`.
//!
//! - 503 naming Discord while the announcer's poster cannot reach it (a closed port), 200 once it
//!   can (the port opens);
//! - 503 naming Discord while the bot token is refused, 200 once it is accepted;
//! - in gateway mode, 503 while the gateway is not connected, 200 once it is;
//! - 503 naming the store while it does not take writes (another connection holds SQLite's write
//!   lock: works as root too, unlike file permissions), 200 once it does;
//! - `/metrics` after Discord traffic and an injected 429.
//!
//! "Subscription not active" is covered in `tests/it/ringcentral.rs`
//! (`a_disabled_telephony_filter_makes_readyz_name_the_missing_permission`).

use crate::support::discord::{
    APPLICATION_ID, BOT_TOKEN, CHANNEL_ID, FakeDiscord, FakeOptions, GUILD_ID, interactions,
};
use crate::support::{self, DEADLINE, TestApp, TestConfig, eventually, fixture_json, free_port};
use ringside::config::DiscordBot;
use secrecy::SecretString;
use std::net::SocketAddr;
use std::time::Duration;

const ADDED: &str = "seed/participant-added.json";

/// Announcements go to Discord at `api_url` with the fake's ids and token; interactions come
/// through `POST /discord/interactions` when `endpoint`, else over the gateway.
fn with_discord(mut config: TestConfig, api_url: &str, endpoint: bool) -> TestConfig {
    let discord = &mut config.settings.discord;
    discord.bot = Some(DiscordBot {
        token: SecretString::from(BOT_TOKEN),
        application_id: APPLICATION_ID,
        guild_id: GUILD_ID,
        channel_id: CHANNEL_ID,
    });
    discord.api_url = api_url.to_owned();
    discord.public_key = endpoint
        .then(|| ringside::config::PublicKey::from_hex(&interactions::public_key_hex()))
        .flatten();
    config
}

/// Polls `/readyz` until its status is `status`; answers the body.
async fn readyz_becomes(app: &TestApp, status: u16) -> String {
    eventually(&format!("/readyz answers {status}"), DEADLINE, async || {
        let (got, body) = app.readyz().await;
        (got == status).then_some(body)
    })
    .await
}

/// Forwards every connection to `listen` on to `target` (the closed port opening).
async fn forward(listen: SocketAddr, target: SocketAddr) -> tokio::task::JoinHandle<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .expect("the closed port can be bound again");
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    })
}

fn join_count(fake: &FakeDiscord) -> usize {
    fake.contents(CHANNEL_ID)
        .iter()
        .map(|c| c.matches(" joined").count())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_names_discord_while_it_cannot_be_reached_and_recovers() {
    let fake = FakeDiscord::start().await;
    let closed = free_port();
    let app = with_discord(TestConfig::new(), &format!("http://{closed}"), true)
        .start()
        .await;
    // Nothing was attempted yet: nothing says Discord is down.
    let (status, body) = app.readyz().await;
    assert_eq!(status, 200, "{body}");

    app.notify_ok(&fixture_json(ADDED)).await;
    let body = readyz_becomes(&app, 503).await;
    assert!(body.contains("Discord unreachable"), "{body}");
    support::assert_one_line(&body);
    // Still down a retry later.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (status, body) = app.readyz().await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("Discord"), "{body}");

    let target: SocketAddr = fake.base_url()["http://".len()..].parse().unwrap();
    let forwarder = forward(closed, target).await;
    fake.wait_messages(CHANNEL_ID, 1, DEADLINE).await;
    readyz_becomes(&app, 200).await;
    assert_eq!(join_count(&fake), 1, "{:?}", fake.contents(CHANNEL_ID));
    let violations = fake.violations();
    assert!(violations.is_empty(), "{violations:#?}");
    app.stop().await;
    forwarder.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_names_discord_while_the_bot_token_is_refused_and_recovers() {
    let fake = FakeDiscord::start_with(FakeOptions {
        token: Some("another-bot-token.ringside.test".to_owned()),
        ..FakeOptions::default()
    })
    .await;
    let app = with_discord(TestConfig::new(), &fake.base_url(), true)
        .start()
        .await;
    app.notify_ok(&fixture_json(ADDED)).await;
    let body = readyz_becomes(&app, 503).await;
    assert!(body.contains("Discord refuses the bot token"), "{body}");
    assert!(!body.contains(BOT_TOKEN), "the token is not shown: {body}");
    assert!(fake.contents(CHANNEL_ID).is_empty());

    // The token is accepted from now on (as after fixing it on Discord's side).
    fake.with_state(|s| s.options.token = Some(BOT_TOKEN.to_owned()));
    fake.wait_messages(CHANNEL_ID, 1, DEADLINE).await;
    readyz_becomes(&app, 200).await;
    assert_eq!(join_count(&fake), 1, "{:?}", fake.contents(CHANNEL_ID));
    // The only violations are the refused `Authorization` headers.
    let violations = fake.violations();
    assert!(
        violations.iter().all(|v| v.contains("Authorization")),
        "{violations:#?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_in_gateway_mode_waits_for_the_gateway() {
    // A token the fake refuses: `GET /gateway` answers 401, so the client never learns the
    // fake's gateway and never connects.
    let fake = FakeDiscord::start_with(FakeOptions {
        token: Some("another-bot-token.ringside.test".to_owned()),
        ..FakeOptions::default()
    })
    .await;
    let config = with_discord(TestConfig::new(), &fake.base_url(), false);
    let app = config.start().await;
    fake.wait_for("GET /gateway refused", DEADLINE, |s| {
        s.requests
            .iter()
            .any(|r| r.path == "/gateway" && r.status == 401)
            .then_some(())
    })
    .await;
    let (status, body) = app.readyz().await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("Discord gateway not connected"), "{body}");
    assert_eq!(fake.gateway_connections(), 0);
    // The client keeps asking the configured Discord (never discord.com's gateway instead) ...
    fake.wait_for("GET /gateway asked again", DEADLINE, |s| {
        (s.requests.iter().filter(|r| r.path == "/gateway").count() >= 2).then_some(())
    })
    .await;

    // ... so once the token is accepted it connects, without a restart: 200 once READY has come.
    fake.with_state(|s| s.options.token = Some(BOT_TOKEN.to_owned()));
    fake.wait_identified(DEADLINE).await;
    let body = readyz_becomes(&app, 200).await;
    assert_eq!(body.trim(), "ready");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_names_the_store_while_it_takes_no_writes() {
    let app = TestConfig::new().start().await;
    readyz_becomes(&app, 200).await;
    // Another connection holds the write lock: the probe write waits out the store's busy
    // timeout and fails.
    let path = app.config.settings.store.path.clone();
    let blocker = tokio::task::spawn_blocking(move || {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
        conn
    })
    .await
    .unwrap();
    let (status, body) = app.readyz().await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("store not writable"), "{body}");
    blocker.execute_batch("COMMIT").unwrap();
    drop(blocker);
    readyz_becomes(&app, 200).await;
    app.stop().await;
}

/// The largest value of the series lines of `page` that start with `prefix`, if any (series
/// registered ahead at 0 sit beside the ones that moved).
pub(crate) fn series(page: &str, prefix: &str) -> Option<f64> {
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.strip_prefix(prefix)?.rsplit(' ').next()?.parse().ok())
        .reduce(f64::max)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_discord_requests_announcements_and_rate_limits() {
    let fake = FakeDiscord::start().await;
    let app = with_discord(TestConfig::new(), &fake.base_url(), true)
        .start()
        .await;
    fake.rate_limit_next(1, 0.05);
    app.notify_ok(&fixture_json(ADDED)).await;
    fake.wait_messages(CHANNEL_ID, 1, DEADLINE).await;
    let page = eventually("the announcement is counted", DEADLINE, async || {
        let page = app.admin_get("/metrics", None).await.text().await.unwrap();
        series(&page, "ringside_announcements_sent_total")
            .is_some_and(|n| n >= 1.0)
            .then_some(page)
    })
    .await;
    let route = r#"route="POST /channels/{channel_id}/messages""#;
    for (what, prefix) in [
        (
            "a successful message POST",
            format!(r#"ringside_discord_requests_total{{{route},status="200"}}"#),
        ),
        (
            "the rate-limited message POST",
            format!(r#"ringside_discord_requests_total{{{route},status="429"}}"#),
        ),
        (
            "the 429",
            r#"ringside_discord_rate_limited_total{scope="#.to_owned(),
        ),
        (
            "request durations",
            "ringside_discord_request_seconds".to_owned(),
        ),
    ] {
        let value = series(&page, &prefix);
        assert!(
            value.is_some_and(|n| n > 0.0),
            "{what}: no {prefix} series with a positive value in\n{page}"
        );
    }
    assert!(
        page.contains("# TYPE ringside_discord_request_seconds "),
        "{page}"
    );
    let violations = fake.violations();
    assert!(violations.is_empty(), "{violations:#?}");
    app.stop().await;
}
