//! Test support for the integration tests: the real app on 127.0.0.1:0 with a temporary store,
//! a memory sink to read announcements back, and HTTP helpers.
//!
//! Logs are shown only when `TEST_LOG` is set (`RUST_LOG` picks the level, default `debug` for
//! ringside).

pub mod discord;

use ringside::app::{self, Running};
use ringside::config::{Delivery, DiscordBot, PublicKey, RingCentralCredentials, Settings};
use ringside::discord::announcer::MemorySink;
use ringside::pipeline::SubscriptionHealth;
use ringside::simulator::platform::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_JWT, Platform, PlatformHandle,
    PlatformOptions,
};
use ringside::store::{InboxCounts, QuarantineRow};
use secrecy::{ExposeSecret, SecretString};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Once};
use std::time::Duration;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// The webhook secret every test app is configured with.
pub const VERIFICATION_TOKEN: &str = "test-verification-token-7f3a";
/// The operator API bearer token every test app is configured with.
pub const API_TOKEN: &str = "test-api-token-91c2";
/// The extra coalescing wait the test apps run with (ringside's default is none): the events one
/// notification produces (a last leave and the end) then share a message however the tasks are
/// scheduled, as the channels the tests expect show them.
pub const COALESCE_MS: u64 = 50;
/// How long a test waits for something that should happen before giving up.
pub const DEADLINE: Duration = Duration::from_secs(10);
/// How often a wait polls.
const POLL: Duration = Duration::from_millis(10);

/// The fixtures directory.
pub fn fixture_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ringcentral")
        .join(relative)
}

/// A fixture's bytes, exactly as stored.
pub fn fixture_bytes(relative: &str) -> Vec<u8> {
    let path = fixture_path(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A fixture parsed as JSON.
pub fn fixture_json(relative: &str) -> serde_json::Value {
    serde_json::from_slice(&fixture_bytes(relative))
        .unwrap_or_else(|e| panic!("fixture {relative} is not JSON: {e}"))
}

/// The notifications of a `.jsonl` fixture, one per non-empty line.
pub fn fixture_lines(relative: &str) -> Vec<serde_json::Value> {
    String::from_utf8(fixture_bytes(relative))
        .expect("fixtures are UTF-8")
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).expect("each fixture line is JSON"))
        .collect()
}

fn init_logs() {
    static LOGS: Once = Once::new();
    LOGS.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,ringside=debug"));
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
    });
}

/// A port on 127.0.0.1 that was free a moment ago (bound, then released).
pub fn free_port() -> SocketAddr {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    probe.local_addr().expect("its address")
}

/// Settings plus the temporary directory that holds the store, before (or between) starts.
pub struct TestConfig {
    pub dir: Arc<TempDir>,
    pub settings: Settings,
}

impl TestConfig {
    /// Defaults, a store in a fresh temporary directory, both listeners on `127.0.0.1:0` (two
    /// ports: port 0 asks for any free port), a short extra coalescing wait, a configured
    /// verification token and API token.
    pub fn new() -> TestConfig {
        init_logs();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut settings = Settings::from_sources(None, &[]).expect("default settings are valid");
        settings.server.listen = ([127, 0, 0, 1], 0).into();
        settings.server.admin_listen = ([127, 0, 0, 1], 0).into();
        settings.server.api_token = Some(SecretString::from(API_TOKEN));
        settings.ringcentral.verification_token = Some(SecretString::from(VERIFICATION_TOKEN));
        settings.announce.coalesce_ms = COALESCE_MS;
        settings.store.path = dir.path().join("ringside.sqlite3");
        TestConfig {
            dir: Arc::new(dir),
            settings,
        }
    }

    /// Serves everything on one port: a free port is found, released and used for both.
    pub fn on_one_port(mut self) -> TestConfig {
        let addr = free_port();
        self.settings.server.listen = addr;
        self.settings.server.admin_listen = addr;
        self
    }

    /// Starts ringside with these settings and a fresh memory sink.
    pub async fn start(self) -> TestApp {
        let sink = MemorySink::new();
        let running = app::start(&self.settings, Arc::new(sink.clone()))
            .await
            .expect("ringside starts");
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(DEADLINE)
            .build()
            .expect("an HTTP client");
        TestApp {
            config: self,
            running,
            sink,
            client,
        }
    }
}

/// Starts ringside with the test defaults.
pub async fn spawn_app() -> TestApp {
    TestConfig::new().start().await
}

/// A running ringside.
pub struct TestApp {
    pub config: TestConfig,
    pub running: Running,
    pub sink: MemorySink,
    pub client: reqwest::Client,
}

/// A raw HTTP exchange: everything the server wrote, byte for byte.
#[derive(Debug)]
pub struct RawResponse {
    pub bytes: Vec<u8>,
}

impl RawResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    pub fn head(&self) -> &str {
        let text = std::str::from_utf8(&self.bytes).expect("an ASCII response head");
        text.split("\r\n\r\n").next().unwrap_or_default()
    }

    /// The status code of the status line.
    pub fn status(&self) -> u16 {
        self.head()
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {:?}", self.text()))
    }

    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<String> {
        self.head().lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }

    pub fn body(&self) -> String {
        let text = self.text();
        text.split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default()
    }
}

impl TestApp {
    pub fn public_addr(&self) -> SocketAddr {
        self.running.public_addr
    }

    /// The operator listener (the public one when they are shared).
    pub fn admin_addr(&self) -> SocketAddr {
        self.running.admin_addr.unwrap_or(self.running.public_addr)
    }

    pub fn webhook_url(&self) -> String {
        self.running.webhook_url()
    }

    pub fn token(&self) -> String {
        self.running.verification_token().expose_secret().to_owned()
    }

    /// POSTs `body` to the webhook with exactly the given headers (plus what reqwest adds:
    /// `content-length`, `host`, `accept`).
    pub async fn post_raw(
        &self,
        body: impl Into<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self.client.post(self.webhook_url()).body(body.into());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("the webhook answers")
    }

    /// POSTs a JSON value with the right `Verification-Token`, as RingCentral does.
    pub async fn notify(&self, notification: &serde_json::Value) -> reqwest::Response {
        self.notify_bytes(serde_json::to_vec(notification).expect("JSON serializes"))
            .await
    }

    /// POSTs bytes with the right `Verification-Token` and a JSON content type.
    pub async fn notify_bytes(&self, body: impl Into<Vec<u8>>) -> reqwest::Response {
        let token = self.token();
        self.post_raw(
            body,
            &[
                ("Content-Type", "application/json; charset=UTF-8"),
                ("Verification-Token", token.as_str()),
            ],
        )
        .await
    }

    /// POSTs a JSON notification and asserts a 200.
    pub async fn notify_ok(&self, notification: &serde_json::Value) {
        let response = self.notify(notification).await;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert_eq!(status, 200, "webhook answered {status}: {body:?}");
    }

    /// Sends `request` (a complete HTTP/1.1 request head and body) on a fresh connection to the
    /// public listener and reads everything the server answers until it closes.
    pub async fn raw_exchange(&self, request: &[u8]) -> RawResponse {
        let mut stream = tokio::net::TcpStream::connect(self.public_addr())
            .await
            .expect("connect to the public listener");
        stream.write_all(request).await.expect("write the request");
        let mut bytes = Vec::new();
        let read = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut bytes)).await;
        match read {
            Ok(Ok(_)) => {}
            // A reset after the answer was written still leaves the answer readable.
            Ok(Err(error)) if !bytes.is_empty() => {
                eprintln!("connection ended with {error} after the answer");
            }
            Ok(Err(error)) => panic!("reading the answer failed: {error}"),
            Err(_) => panic!("no answer within {DEADLINE:?}; got {bytes:?}"),
        }
        RawResponse { bytes }
    }

    /// GET `path` on the operator listener, with an optional bearer token.
    pub async fn admin_get(&self, path: &str, bearer: Option<&str>) -> reqwest::Response {
        let url = format!("http://{}{path}", self.admin_addr());
        let mut request = self.client.get(url);
        if let Some(token) = bearer {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        request.send().await.expect("the operator listener answers")
    }

    /// GET `path` on the public listener.
    pub async fn public_get(&self, path: &str) -> reqwest::Response {
        let url = format!("http://{}{path}", self.public_addr());
        self.client
            .get(url)
            .send()
            .await
            .expect("the public listener answers")
    }

    /// Every announcement line so far.
    pub fn lines(&self) -> Vec<String> {
        self.sink.lines()
    }

    /// Waits until at least `count` announcement lines were sent; panics with what arrived when
    /// the deadline passes.
    pub async fn wait_for_lines(&self, count: usize) -> Vec<String> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let lines = self.sink.lines();
            if lines.len() >= count {
                return lines;
            }
            if Instant::now() >= deadline {
                panic!(
                    "expected at least {count} announcement lines within {DEADLINE:?}, got {lines:#?}"
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until every committed inbox row was processed by the detector.
    pub async fn wait_processed(&self) -> InboxCounts {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let counts = self.counts().await;
            if counts.unprocessed == 0 {
                return counts;
            }
            if Instant::now() >= deadline {
                panic!("inbox rows still unprocessed after {DEADLINE:?}: {counts:?}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the detector has processed everything committed and everything it produced
    /// was announced (ringside's own idle signal, not a sleep), and answers every line announced
    /// so far. For asserting that something was *not* announced.
    pub async fn settle(&self) -> Vec<String> {
        self.wait_processed().await;
        tokio::time::timeout(DEADLINE, self.running.idle())
            .await
            .unwrap_or_else(|_| panic!("ringside still busy after {DEADLINE:?}"));
        self.sink.lines()
    }

    pub async fn counts(&self) -> InboxCounts {
        self.running.store.counts().await.expect("store counts")
    }

    pub async fn quarantined(&self, limit: usize) -> Vec<QuarantineRow> {
        self.running
            .store
            .quarantined(limit)
            .await
            .expect("quarantined rows")
    }

    /// Graceful stop; answers the configuration (to start again on the same store) and every
    /// line announced, including what the stop flushed.
    pub async fn stop(self) -> (TestConfig, Vec<String>) {
        self.running.shutdown().await.expect("graceful shutdown");
        (self.config, self.sink.lines())
    }
}

/// Asserts that a response body is one non-empty line of text (a trailing newline allowed).
pub fn assert_one_line(body: &str) {
    let trimmed = body.strip_suffix('\n').unwrap_or(body);
    assert!(!trimmed.trim().is_empty(), "empty reason body");
    assert!(
        !trimmed.contains('\n') && !trimmed.contains('\r'),
        "reason is not one line: {body:?}"
    );
}

// ----- RingCentral: the real app against the platform fake ----------------------------------

/// Polls `probe` every few milliseconds until it answers `Some`, and answers that; panics naming
/// `what` when `deadline` passes first.
pub async fn eventually<T>(
    what: &str,
    deadline: Duration,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let until = Instant::now() + deadline;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        if Instant::now() >= until {
            panic!("{what}: not within {deadline:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Starts the RingCentral platform fake (with test logs when `TEST_LOG` is set).
pub async fn start_platform(options: PlatformOptions) -> PlatformHandle {
    init_logs();
    Platform::start(options)
        .await
        .expect("the platform fake starts")
}

impl TestConfig {
    /// RingCentral mode against `platform`: its base URL and default credentials; the public
    /// listener on a fixed free port (so a restart keeps the webhook address) with
    /// `server.public_url` pointing at it; the operator listener on its own port; one-second
    /// reconcile, watchdog, kick confirmation and auth retry; a 5 s request timeout.
    pub fn against(mut self, platform: &PlatformHandle) -> TestConfig {
        let listen = free_port();
        self.settings.server.listen = listen;
        self.settings.server.admin_listen = ([127, 0, 0, 1], 0).into();
        self.settings.server.public_url = Some(format!("http://{listen}"));
        let ringcentral = &mut self.settings.ringcentral;
        ringcentral.server_url = platform.base_url();
        ringcentral.credentials = Some(RingCentralCredentials {
            client_id: DEFAULT_CLIENT_ID.to_owned(),
            client_secret: SecretString::from(DEFAULT_CLIENT_SECRET),
            jwt: SecretString::from(DEFAULT_JWT),
        });
        ringcentral.delivery = Delivery::Webhook;
        ringcentral.reconcile_interval_secs = 1;
        ringcentral.watchdog_interval_secs = 1;
        ringcentral.kick_confirm_secs = 1;
        ringcentral.auth_retry_secs = 1;
        ringcentral.request_timeout_secs = 5;
        self
    }

    /// RingCentral mode against `platform` with notifications over its WebSocket gateway: no
    /// public URL at all, and the same short intervals as [`TestConfig::against`].
    pub fn against_websocket(self, platform: &PlatformHandle) -> TestConfig {
        let mut config = self.against(platform);
        config.settings.server.public_url = None;
        config.settings.ringcentral.delivery = Delivery::WebSocket;
        config
    }

    /// The webhook address RingCentral is given: `{server.public_url}/webhooks/ringcentral`.
    pub fn webhook_address(&self) -> String {
        format!(
            "{}/webhooks/ringcentral",
            self.settings
                .server
                .public_url
                .as_deref()
                .expect("server.public_url is set")
        )
    }
}

impl TestApp {
    /// The subscription's health as ringside reports it.
    pub fn subscription_health(&self) -> SubscriptionHealth {
        self.running
            .ringcentral
            .as_ref()
            .expect("RingCentral mode manages a subscription")
            .health
            .borrow()
            .clone()
    }

    /// Waits until ringside reports its subscription active; answers its id.
    pub async fn wait_subscription_active(&self) -> String {
        eventually(
            "the subscription becomes active",
            DEADLINE,
            async || match self.subscription_health() {
                SubscriptionHealth::Active { id } => Some(id),
                _ => None,
            },
        )
        .await
    }

    /// `GET /readyz` on the operator listener: status and body.
    pub async fn readyz(&self) -> (u16, String) {
        let response = self.admin_get("/readyz", None).await;
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// Waits until an announcement line contains `needle`; answers every line so far.
    pub async fn wait_for_line(&self, needle: &str) -> Vec<String> {
        let what = format!("an announcement containing {needle:?}");
        eventually(&what, DEADLINE, async || {
            let lines = self.sink.lines();
            lines
                .iter()
                .any(|line| line.contains(needle))
                .then_some(lines)
        })
        .await
    }
}

// ----- Discord: the real app against the fake Discord ------------------------------------------

/// How interactions reach the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// The gateway client (no `discord.public_key`).
    Gateway,
    /// `POST /discord/interactions` (`discord.public_key` set to the fake's signing key).
    Endpoint,
}

impl TestConfig {
    /// A Discord bot against `fake`: `discord.api_url`, the bot group with the fake's default
    /// ids and token, and for [`Transport::Endpoint`] the fake's public key.
    pub fn with_discord(mut self, fake: &discord::FakeDiscord, transport: Transport) -> TestConfig {
        let options = fake.options();
        self.settings.discord.api_url = fake.base_url();
        self.settings.discord.bot = Some(DiscordBot {
            token: SecretString::from(discord::BOT_TOKEN),
            application_id: options.application_id,
            guild_id: options.guild_id,
            channel_id: options.channel_id,
        });
        self.settings.discord.public_key = match transport {
            Transport::Gateway => None,
            Transport::Endpoint => PublicKey::from_hex(&discord::interactions::public_key_hex()),
        };
        // The roster cards are extra channel messages with tests of their own (`cards`, and the
        // 40-join burst in `discord`); elsewhere the channel holds only the lines a test reads.
        self.settings.announce.roster_card = false;
        self
    }
}

impl TestApp {
    /// `POST /discord/interactions` on the public listener.
    pub fn interactions_url(&self) -> String {
        format!("http://{}/discord/interactions", self.public_addr())
    }
}

/// Runs an `async fn(Transport)` of the calling module once per transport, as `name::gateway` and `name::endpoint`.
macro_rules! over_both_transports {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn gateway() {
                super::$name(super::Transport::Gateway).await;
            }

            #[tokio::test]
            async fn endpoint() {
                super::$name(super::Transport::Endpoint).await;
            }
        }
    )*};
}
