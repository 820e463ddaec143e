//! Load generator for `POST /webhooks/ringcentral`, measured in the same run against a bare axum
//! route on its own listener that only parses the same bodies, and against `GET /healthz` on
//! ringside's own listener (its HTTP stack and layers, no body, no store). Then an end-to-end
//! mode: a second ringside posting to a Discord fake that never rate-limits, timed from the
//! webhook's 200 to the message's arrival at the fake. See `benches/README.md` and
//! `docs/performance.md`.
//!
//! The real app runs in-process on 127.0.0.1:0 with a temporary store and a memory sink; the
//! client is reqwest (HTTP/1.1 keep-alive, no proxy) on the same runtime. Every loop is bounded
//! and every request has a timeout, so the bench stops by itself. Absolute numbers depend on the
//! machine; the webhook-to-bare-route ratios are the point.
//!
//! `cargo bench --features bench --bench webhook_load` runs the full plan. Run any other way
//! (e.g. by `cargo test --features bench --benches`, which does not pass `--bench`), it makes a
//! few requests per case only.

#[path = "support/plan.rs"]
mod plan;

use anyhow::{Context as _, bail, ensure};
use axum::body::Bytes;
use axum::http::StatusCode;
use ringside::app;
use ringside::config::{DiscordBot, PublicKey, Settings};
use ringside::discord::announcer::MemorySink;
use ringside::ringcentral::wire::TelephonyNotification;
use ringside::store::{InboxCounts, Store, StoreStats};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The notification every POST is made from.
const SEED: &str = "tests/fixtures/ringcentral/seed/participant-added.json";
/// The concurrency levels, each run for the baseline and the webhook.
const CONCURRENCY: [usize; 2] = [1, 32];
/// Consecutive notifications that share one `telephonySessionId` (one caller's call).
const PER_SESSION: usize = 4;
/// Callers merged into one conference before the next conference starts.
const PER_CONFERENCE: usize = 16;
/// No request may take longer than this (a failure, not a latency sample).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the detector to mark everything processed after the last POST.
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);
/// Notifications re-sent at the end to check that a redelivery is not stored twice.
const REDELIVERIES: usize = 16;
/// The open-loop rate of the fixed-rate mode (the target: p99 acknowledgement < 10 ms).
const FIXED_RATE: f64 = 2_000.0;
/// The end-to-end mode sends one join every this long, each as its own caller.
const JOIN_EVERY: Duration = Duration::from_millis(100);
/// Longest wait for the last join to reach the Discord fake.
const ANNOUNCE_DEADLINE: Duration = Duration::from_secs(15);
/// An Ed25519 public key (RFC 8032, test 1) so that interactions come over
/// `POST /discord/interactions` and ringside opens no gateway connection to the fake.
const PUBLIC_KEY: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const BOT_TOKEN: &str = "bench-bot-token";
const APPLICATION_ID: u64 = 1_100_000_000_000_000_001;
const GUILD_ID: u64 = 1_100_000_000_000_000_100;
const CHANNEL_ID: u64 = 1_100_000_000_000_000_200;

/// How many requests each case makes.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Unmeasured requests before each case (connections opened, caches warm).
    warm_up: usize,
    /// Measured requests per case.
    requests: usize,
    /// Requests of the fixed-rate mode, per case (at [`FIXED_RATE`]).
    fixed_rate: usize,
    /// Unmeasured joins of the end-to-end mode (the first starts the conference).
    e2e_warm_up: usize,
    /// Measured joins of the end-to-end mode.
    e2e_joins: usize,
}

const FULL: Plan = Plan {
    warm_up: 200,
    requests: 2_000,
    fixed_rate: 10_000,
    e2e_warm_up: 5,
    e2e_joins: 200,
};
const SMOKE: Plan = Plan {
    warm_up: 4,
    requests: 16,
    fixed_rate: 40,
    e2e_warm_up: 1,
    e2e_joins: 3,
};

fn main() {
    plan::run("webhook_load", FULL, SMOKE, bench);
}

/// The notifications to send: the seed with a unique `uuid` and `sequence` each, a new
/// `telephonySessionId` (and original party) every `per_session`, merged into a new conference
/// every `per_conference` sessions, so each session is one caller joining.
struct Notifications {
    seed: Value,
    next: usize,
    per_session: usize,
    per_conference: usize,
    /// Name each caller `Bench Caller NNNNN` (its session's number), so that its join can be
    /// found in a Discord message.
    named: bool,
}

impl Notifications {
    /// The load cases' notifications: [`PER_SESSION`] per caller, [`PER_CONFERENCE`] callers a
    /// conference, all with the seed's caller.
    fn load() -> anyhow::Result<Self> {
        Notifications::load_with(PER_SESSION, PER_CONFERENCE, false)
    }

    fn load_with(per_session: usize, per_conference: usize, named: bool) -> anyhow::Result<Self> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SEED);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let seed: Value = serde_json::from_slice(&bytes).context("the seed is not JSON")?;
        ensure!(
            seed["body"]["parties"][0]["status"]["peerId"].is_object(),
            "the seed no longer has body.parties[0].status.peerId"
        );
        Ok(Notifications {
            seed,
            next: 0,
            per_session,
            per_conference,
            named,
        })
    }

    /// The next `count` bodies, serialized before the clock starts.
    fn take(&mut self, count: usize) -> anyhow::Result<Arc<Vec<Bytes>>> {
        let mut bodies = Vec::with_capacity(count);
        for _ in 0..count {
            let i = self.next;
            self.next += 1;
            let session = i / self.per_session;
            let conference = session / self.per_conference;
            let mut notification = self.seed.clone();
            notification["uuid"] = json!(format!("bench-{i:08}"));
            let body = &mut notification["body"];
            body["sequence"] = json!(i + 1);
            body["telephonySessionId"] = json!(format!("s-bench-{session:06}"));
            body["sessionId"] = json!(format!("{}", 3_000_000_000_u64 + session as u64));
            let party = &mut body["parties"][0];
            party["id"] = json!(format!("p-bench-{session:06}-1"));
            party["status"]["peerId"] = json!({
                "telephonySessionId": format!("s-bench-conf-{conference:05}"),
                "sessionId": "0",
                "partyId": format!("p-bench-conf-{conference:05}-{}", session % self.per_conference + 2),
            });
            if self.named {
                party["to"]["name"] = json!(caller_name(session));
            }
            bodies.push(Bytes::from(serde_json::to_vec(&notification)?));
        }
        Ok(Arc::new(bodies))
    }

    /// Notifications made so far.
    fn made(&self) -> usize {
        self.next
    }
}

/// The name of the caller of session `session` when the notifications are `named`.
fn caller_name(session: usize) -> String {
    format!("Bench Caller {session:05}")
}

/// What one case sends.
#[derive(Clone)]
enum Load {
    /// `GET /healthz`.
    Baseline { url: Arc<str> },
    /// `POST` body `i` for request `i`, with the verification token: to ringside's
    /// `/webhooks/ringcentral`, or to the bare route (which ignores the token).
    Webhook {
        url: Arc<str>,
        token: Arc<str>,
        bodies: Arc<Vec<Bytes>>,
    },
}

impl Load {
    fn len(&self) -> Option<usize> {
        match self {
            Load::Baseline { .. } => None,
            Load::Webhook { bodies, .. } => Some(bodies.len()),
        }
    }

    fn request(&self, client: &reqwest::Client, i: usize) -> reqwest::RequestBuilder {
        match self {
            Load::Baseline { url } => client.get(&**url),
            Load::Webhook { url, token, bodies } => client
                .post(&**url)
                .header("Content-Type", "application/json; charset=UTF-8")
                .header("Verification-Token", &**token)
                .body(bodies[i].clone()),
        }
    }
}

/// Sends request `i` of `load` and reads the whole answer: `Err` with why unless it is a 200.
async fn send(client: &reqwest::Client, load: &Load, i: usize) -> Result<(), String> {
    match load.request(client, i).send().await {
        Ok(response) => {
            let status = response.status();
            match response.bytes().await {
                Ok(_) if status == reqwest::StatusCode::OK => Ok(()),
                Ok(body) => Err(format!(
                    "request {i}: {status}: {}",
                    String::from_utf8_lossy(&body).trim()
                )),
                Err(error) => Err(format!("request {i}: reading the answer: {error}")),
            }
        }
        Err(error) => Err(format!("request {i}: {error}")),
    }
}

/// One case's measurements.
struct Sample {
    latencies: Vec<Duration>,
    wall: Duration,
    /// Requests that did not answer 200, with why.
    failures: Vec<String>,
}

impl Sample {
    fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64()
    }

    /// Nearest-rank percentile of the sorted latencies.
    fn percentile(&self, p: f64) -> Duration {
        let n = self.latencies.len();
        if n == 0 {
            return Duration::ZERO;
        }
        let rank = (p * n as f64).ceil() as usize;
        self.latencies[rank.clamp(1, n) - 1]
    }

    fn max(&self) -> Duration {
        self.latencies.last().copied().unwrap_or_default()
    }
}

/// Sends `requests` requests of `load` from `concurrency` tasks (request `i` goes to whichever
/// task is free) and times each from send to the last byte of the answer.
async fn drive(
    client: &reqwest::Client,
    load: &Load,
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<Sample> {
    if let Some(len) = load.len() {
        ensure!(len == requests, "{len} bodies for {requests} requests");
    }
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (client, load, next) = (client.clone(), load.clone(), Arc::clone(&next));
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(requests / concurrency + 1);
            let mut failures = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    break;
                }
                let sent = Instant::now();
                let outcome = send(&client, &load, i).await;
                latencies.push(sent.elapsed());
                if let Err(failure) = outcome {
                    failures.push(failure);
                }
            }
            (latencies, failures)
        }));
    }
    let mut sample = Sample {
        latencies: Vec::with_capacity(requests),
        wall: Duration::ZERO,
        failures: Vec::new(),
    };
    for worker in workers {
        let (latencies, failures) = worker.await.context("a load task panicked")?;
        sample.latencies.extend(latencies);
        sample.failures.extend(failures);
    }
    sample.wall = started.elapsed();
    sample.latencies.sort_unstable();
    Ok(sample)
}

/// How a case's requests are sent.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// A fixed pool of this many tasks, each sending its next request when its last is answered.
    Concurrency(usize),
    /// Open loop: request `i` is due at `i / rate` seconds, sent then whatever is in flight.
    Rate(f64),
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mode::Concurrency(n) => write!(f, "c={n}"),
            Mode::Rate(rate) => write!(f, "{rate:.0}/s"),
        }
    }
}

/// One row of the table.
struct Case {
    name: &'static str,
    mode: Mode,
    sample: Sample,
}

const BARE: &str = "bare axum route POST /bare";
const HEALTHZ: &str = "ringside GET /healthz";
const WEBHOOK: &str = "webhook POST /webhooks/ringcentral";

/// The webhook run's group-commit effect: the store's counters around it.
struct GroupCommit {
    mode: Mode,
    requests: usize,
    before: StoreStats,
    after: StoreStats,
}

/// Sends `requests` requests of `load` open-loop at `rate` a second: request `i` is due at
/// `i / rate` s from the start and is sent then (from a task of its own) whatever is still in
/// flight; its latency runs from when it was due to the last byte of the answer, so a sender
/// that falls behind counts against the server, not in its favour. The timer wakes every
/// millisecond and sends what is due.
async fn drive_rate(
    client: &reqwest::Client,
    load: &Load,
    requests: usize,
    rate: f64,
) -> anyhow::Result<Sample> {
    if let Some(len) = load.len() {
        ensure!(len == requests, "{len} bodies for {requests} requests");
    }
    let started = Instant::now();
    let mut ticks = tokio::time::interval(Duration::from_millis(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut tasks = Vec::with_capacity(requests);
    let mut sent = 0;
    while sent < requests {
        ticks.tick().await;
        let due = ((started.elapsed().as_secs_f64() * rate) as usize + 1).min(requests);
        while sent < due {
            let i = sent;
            sent += 1;
            let at = started + Duration::from_secs_f64(i as f64 / rate);
            let (client, load) = (client.clone(), load.clone());
            tasks.push(tokio::spawn(async move {
                let outcome = send(&client, &load, i).await;
                (at.elapsed(), outcome)
            }));
        }
    }
    let mut sample = Sample {
        latencies: Vec::with_capacity(requests),
        wall: Duration::ZERO,
        failures: Vec::new(),
    };
    for task in tasks {
        let (latency, outcome) = task.await.context("a load task panicked")?;
        sample.latencies.push(latency);
        if let Err(failure) = outcome {
            sample.failures.push(failure);
        }
    }
    sample.wall = started.elapsed();
    sample.latencies.sort_unstable();
    Ok(sample)
}

/// `POST /bare` on its own listener: reads the body, parses it with
/// `serde_json::from_slice::<TelephonyNotification>` (the typed envelope and body, the same
/// serde work as the webhook's decode, without its checks), answers 200, or 400 if it does not
/// parse. No auth, no store, no layers: the floor for the same request.
async fn bare_route() -> anyhow::Result<SocketAddr> {
    async fn parse(body: Bytes) -> StatusCode {
        match serde_json::from_slice::<TelephonyNotification>(&body) {
            Ok(notification) => {
                std::hint::black_box(notification);
                StatusCode::OK
            }
            Err(_) => StatusCode::BAD_REQUEST,
        }
    }
    let router = axum::Router::new().route("/bare", axum::routing::post(parse));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the bare route")?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(addr)
}

/// Fails unless every request of `sample` was answered 200.
fn all_ok(what: &str, sample: &Sample) -> anyhow::Result<()> {
    ensure!(
        sample.failures.is_empty(),
        "{what} failed: {} requests, first: {:?}",
        sample.failures.len(),
        first(&sample.failures)
    );
    Ok(())
}

async fn bench(plan: Plan, full: bool) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("a temporary directory")?;
    let mut settings = Settings::from_sources(None, &[]).context("default settings")?;
    settings.server.listen = ([127, 0, 0, 1], 0).into();
    settings.server.admin_listen = ([127, 0, 0, 1], 0).into();
    settings.store.path = dir.path().join("ringside.sqlite3");
    let sink = MemorySink::new();
    let running = app::start(&settings, Arc::new(sink.clone()))
        .await
        .context("starting ringside")?;
    let store = running.store.clone();
    let token: Arc<str> = running.verification_token().expose_secret().into();
    let health_url: Arc<str> = format!("http://{}/healthz", running.public_addr).into();
    let webhook_url: Arc<str> = running.webhook_url().into();
    let bare_url: Arc<str> = format!("http://{}/bare", bare_route().await?).into();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .context("an HTTP client")?;

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "webhook_load: ringside in-process on {} ({cores} cores, one tokio runtime for server and client, HTTP/1.1 keep-alive)",
        running.public_addr
    );
    println!(
        "plan: {} mode, {} warm-up + {} measured requests per case at concurrency {:?}; {} requests per case open-loop at {FIXED_RATE:.0}/s",
        if full { "full" } else { "smoke" },
        plan.warm_up,
        plan.requests,
        CONCURRENCY,
        plan.fixed_rate,
    );
    println!(
        "bare route: its own listener (axum::serve), serde_json::from_slice::<TelephonyNotification> of the same bodies, 200; durable inbox: SQLite at {}",
        settings.store.path.display()
    );

    let mut notifications = Notifications::load()?;
    let mut cases = Vec::new();
    let mut group_commits = Vec::new();
    let mut post_failures = Vec::new();
    let mut posts = 0usize;
    let modes = CONCURRENCY
        .into_iter()
        .map(Mode::Concurrency)
        .chain([Mode::Rate(FIXED_RATE)]);
    for mode in modes {
        // The rate mode has no warm-up: its connections are the earlier modes'.
        let (warm_ups, requests) = match mode {
            Mode::Concurrency(_) => (plan.warm_up, plan.requests),
            Mode::Rate(_) => (0, plan.fixed_rate),
        };
        let run = async |load: &Load, count: usize| match mode {
            Mode::Concurrency(concurrency) => drive(&client, load, count, concurrency).await,
            Mode::Rate(rate) => drive_rate(&client, load, count, rate).await,
        };
        // The webhook's bodies, made before any clock starts; the bare route gets the same.
        let warm_bodies = notifications.take(warm_ups)?;
        let bodies = notifications.take(requests)?;
        let bare = |bodies: &Arc<Vec<Bytes>>| Load::Webhook {
            url: bare_url.clone(),
            token: token.clone(),
            bodies: bodies.clone(),
        };
        let webhook = |bodies: &Arc<Vec<Bytes>>| Load::Webhook {
            url: webhook_url.clone(),
            token: token.clone(),
            bodies: bodies.clone(),
        };

        if let Mode::Concurrency(concurrency) = mode {
            all_ok(
                BARE,
                &drive(&client, &bare(&warm_bodies), warm_ups, concurrency).await?,
            )?;
        }
        let sample = run(&bare(&bodies), requests).await?;
        all_ok(BARE, &sample)?;
        cases.push(Case {
            name: BARE,
            mode,
            sample,
        });

        if let Mode::Concurrency(concurrency) = mode {
            let healthz = Load::Baseline {
                url: health_url.clone(),
            };
            all_ok(
                HEALTHZ,
                &drive(&client, &healthz, warm_ups, concurrency).await?,
            )?;
            let sample = drive(&client, &healthz, requests, concurrency).await?;
            all_ok(HEALTHZ, &sample)?;
            cases.push(Case {
                name: HEALTHZ,
                mode,
                sample,
            });
            let warm = drive(&client, &webhook(&warm_bodies), warm_ups, concurrency).await?;
            post_failures.extend(warm.failures);
        }
        posts += warm_ups;
        let before = store.stats();
        let sample = run(&webhook(&bodies), requests).await?;
        let after = store.stats();
        posts += requests;
        post_failures.extend(sample.failures.iter().cloned());
        group_commits.push(GroupCommit {
            mode,
            requests,
            before,
            after,
        });
        cases.push(Case {
            name: WEBHOOK,
            mode,
            sample,
        });
    }

    println!();
    print!("{}", table(&cases));
    println!();
    print!("{}", ratios(&cases));
    println!();
    print!("{}", group_commit_table(&group_commits));

    let verdict = verify(&store, &client, &webhook_url, &token, &notifications).await;
    let state_bytes: usize = store
        .detector_rows()
        .await
        .map_or(0, |rows| rows.iter().map(|(_, _, body)| body.len()).sum());
    running.shutdown().await.context("stopping ringside")?;
    drop(dir);

    println!();
    println!("correctness:");
    println!(
        "  POSTs answered 200: {} of {}",
        posts - post_failures.len(),
        posts
    );
    if !post_failures.is_empty() {
        bail!(
            "{} POSTs were not answered 200; first: {:?}",
            post_failures.len(),
            first(&post_failures)
        );
    }
    let report = verdict?;
    print!("{report}");
    println!(
        "  announcement lines: {} (joins coalesced by the announcer); detector state {:.1} KiB",
        sink.lines().len(),
        state_bytes as f64 / 1024.0
    );

    println!();
    end_to_end(plan, &client).await?;
    println!("webhook_load: ok");
    Ok(())
}

/// What the Discord fake saw: each message's arrival and content.
#[derive(Clone, Default)]
struct FakeDiscord {
    messages: Arc<Mutex<Vec<(Instant, String)>>>,
    /// Requests to anything but the two routes below.
    unexpected: Arc<Mutex<Vec<String>>>,
    next_id: Arc<AtomicUsize>,
}

impl FakeDiscord {
    /// A Discord that answers every message at once and never rate-limits: create message
    /// answers a message object, the command registration answers an empty list, anything else
    /// is noted and answered 404.
    async fn start() -> anyhow::Result<(FakeDiscord, String)> {
        use axum::extract::{Path, State};
        use axum::routing::{post, put};
        async fn create(
            State(fake): State<FakeDiscord>,
            Path(channel): Path<String>,
            body: Bytes,
        ) -> axum::Json<Value> {
            let arrived = Instant::now();
            let body: Value = serde_json::from_slice(&body).unwrap_or_default();
            let content = body["content"].as_str().unwrap_or_default().to_owned();
            let id =
                1_200_000_000_000_000_000_u64 + fake.next_id.fetch_add(1, Ordering::Relaxed) as u64;
            fake.messages
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push((arrived, content.clone()));
            axum::Json(json!({
                "id": id.to_string(),
                "channel_id": channel,
                "type": 0,
                "content": content,
                "author": {"id": APPLICATION_ID.to_string(), "username": "ringside", "discriminator": "0", "global_name": null, "avatar": null, "bot": true},
                "timestamp": "2024-02-27T16:04:52.558000+00:00",
                "edited_timestamp": null,
                "tts": false,
                "mention_everyone": false,
                "mentions": [],
                "mention_roles": [],
                "attachments": [],
                "embeds": [],
                "pinned": false,
                "flags": body["flags"].as_u64().unwrap_or(0),
                "nonce": body["nonce"].clone(),
            }))
        }
        async fn commands() -> axum::Json<Value> {
            axum::Json(json!([]))
        }
        async fn other(
            State(fake): State<FakeDiscord>,
            request: axum::extract::Request,
        ) -> StatusCode {
            fake.unexpected
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(format!("{} {}", request.method(), request.uri().path()));
            StatusCode::NOT_FOUND
        }
        let fake = FakeDiscord::default();
        let router = axum::Router::new()
            .route("/api/v10/channels/{channel}/messages", post(create))
            .route(
                "/api/v10/applications/{application}/guilds/{guild}/commands",
                put(commands),
            )
            .fallback(other)
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the Discord fake")?;
        let url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok((fake, url))
    }

    /// When the first message naming `name` arrived.
    fn arrival_of(&self, name: &str) -> Option<Instant> {
        self.messages
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .find(|(_, content)| content.contains(name))
            .map(|(at, _)| *at)
    }

    fn message_count(&self) -> usize {
        self.messages.lock().map_or(0, |m| m.len())
    }
}

/// End to end: a second ringside, default settings but a Discord bot aimed at [`FakeDiscord`],
/// sent one join at a time every [`JOIN_EVERY`] (each its own named caller, all in one
/// conference); for each join, the time from its webhook 200 (the answer's headers at the
/// client) to the arrival at the fake of the first message naming the caller.
async fn end_to_end(plan: Plan, client: &reqwest::Client) -> anyhow::Result<()> {
    let (fake, fake_url) = FakeDiscord::start().await?;
    let dir = tempfile::tempdir().context("a temporary directory")?;
    let mut settings = Settings::from_sources(None, &[]).context("default settings")?;
    settings.server.listen = ([127, 0, 0, 1], 0).into();
    settings.server.admin_listen = ([127, 0, 0, 1], 0).into();
    settings.store.path = dir.path().join("ringside.sqlite3");
    settings.discord.bot = Some(DiscordBot {
        token: SecretString::from(BOT_TOKEN),
        application_id: APPLICATION_ID,
        guild_id: GUILD_ID,
        channel_id: CHANNEL_ID,
    });
    settings.discord.api_url = fake_url;
    settings.discord.public_key = PublicKey::from_hex(PUBLIC_KEY);
    ensure!(
        settings.discord.public_key.is_some(),
        "the bench's public key is not valid"
    );
    let coalesce_ms = settings.announce.coalesce_ms;
    let running = app::start(&settings, Arc::new(MemorySink::new()))
        .await
        .context("starting ringside with the Discord fake")?;
    let token: Arc<str> = running.verification_token().expose_secret().into();
    let url: Arc<str> = running.webhook_url().into();
    println!(
        "end to end: ringside with default settings (announce.coalesce_ms = {coalesce_ms}, thread_per_conference = {}) posting to a Discord fake that never rate-limits",
        settings.announce.thread_per_conference
    );
    println!(
        "plan: {} warm-up + {} measured joins, one every {} ms, each a new caller merged into one conference; clock: webhook 200 (client) to the message's arrival at the fake",
        plan.e2e_warm_up,
        plan.e2e_joins,
        JOIN_EVERY.as_millis()
    );

    let total = plan.e2e_warm_up + plan.e2e_joins;
    let mut notifications = Notifications::load_with(1, usize::MAX, true)?;
    let load = Load::Webhook {
        url,
        token,
        bodies: notifications.take(total)?,
    };
    let mut acked = Vec::with_capacity(total);
    let mut ticks = tokio::time::interval(JOIN_EVERY);
    for i in 0..total {
        ticks.tick().await;
        let response = load
            .request(client, i)
            .send()
            .await
            .with_context(|| format!("join {i}"))?;
        let at = Instant::now();
        ensure!(
            response.status() == reqwest::StatusCode::OK,
            "join {i}: {}",
            response.status()
        );
        let _ = response.bytes().await;
        acked.push(at);
    }
    let deadline = Instant::now() + ANNOUNCE_DEADLINE;
    while fake.arrival_of(&caller_name(total - 1)).is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut latencies = Vec::with_capacity(plan.e2e_joins);
    let mut missing = Vec::new();
    for (i, acked) in acked.iter().enumerate().skip(plan.e2e_warm_up) {
        match fake.arrival_of(&caller_name(i)) {
            // A message can arrive before the client has read the 200: counted as 0.
            Some(arrived) => latencies.push(arrived.saturating_duration_since(*acked)),
            None => missing.push(i),
        }
    }
    running.shutdown().await.context("stopping ringside")?;
    drop(dir);
    latencies.sort_unstable();
    let sample = Sample {
        latencies,
        wall: Duration::ZERO,
        failures: Vec::new(),
    };
    println!(
        "{:<36} {:>6} {:>9} {:>9} {:>9} {:>9}",
        "accepted -> Discord request", "joins", "p50 ms", "p99 ms", "max ms", "messages"
    );
    println!(
        "{:<36} {:>6} {:>9} {:>9} {:>9} {:>9}",
        format!("coalesce_ms = {coalesce_ms}"),
        sample.latencies.len(),
        ms(sample.percentile(0.50)),
        ms(sample.percentile(0.99)),
        ms(sample.max()),
        fake.message_count(),
    );
    let unexpected = fake
        .unexpected
        .lock()
        .map(|u| u.clone())
        .unwrap_or_default();
    println!(
        "correctness: {} of {} measured joins announced; requests to other Discord routes: {:?}",
        sample.latencies.len(),
        plan.e2e_joins,
        unexpected
    );
    ensure!(missing.is_empty(), "joins never announced: {missing:?}");
    Ok(())
}

/// Checks that every notification is stored exactly once: the inbox holds one row per POST,
/// nothing was quarantined, and re-sending some of them answers 200 without adding a row.
async fn verify(
    store: &Store,
    client: &reqwest::Client,
    url: &Arc<str>,
    token: &Arc<str>,
    notifications: &Notifications,
) -> anyhow::Result<String> {
    let sent = notifications.made() as u64;
    let counts = store.counts().await.context("reading the store counts")?;
    let expected = InboxCounts {
        total: sent,
        unprocessed: counts.unprocessed,
        quarantined: 0,
    };
    ensure!(
        counts == expected,
        "store counts {counts:?}, expected {sent} inbox rows and no quarantine"
    );
    let mut again = Notifications::load()?;
    let redelivered = Load::Webhook {
        url: url.clone(),
        token: token.clone(),
        bodies: again.take(REDELIVERIES.min(notifications.made()))?,
    };
    let count = redelivered.len().unwrap_or(0);
    let sample = drive(client, &redelivered, count, 1).await?;
    ensure!(
        sample.failures.is_empty(),
        "a redelivery was not answered 200: {:?}",
        first(&sample.failures)
    );
    let after = store.counts().await.context("reading the store counts")?;
    ensure!(
        after.total == sent && after.quarantined == 0,
        "redeliveries changed the store: {after:?}"
    );
    // The detector marks rows processed behind the answers; give it a bounded moment.
    let deadline = Instant::now() + DRAIN_DEADLINE;
    let mut unprocessed = after.unprocessed;
    while unprocessed > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        unprocessed = store.counts().await?.unprocessed;
    }
    let mut report = String::new();
    writeln!(
        report,
        "  store.counts(): {} inbox rows for {sent} distinct notifications, {} quarantined",
        after.total, after.quarantined
    )?;
    writeln!(
        report,
        "  {count} redeliveries answered 200 and stored nothing new (uuid dedup)"
    )?;
    writeln!(
        report,
        "  unprocessed after the detector drained: {unprocessed}"
    )?;
    Ok(report)
}

fn first(failures: &[String]) -> Option<&str> {
    failures.first().map(String::as_str)
}

fn ms(duration: Duration) -> String {
    format!("{:.3}", duration.as_secs_f64() * 1e3)
}

fn table(cases: &[Case]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<36} {:>7} {:>8} {:>10} {:>9} {:>9} {:>9}",
        "case", "mode", "requests", "req/s", "p50 ms", "p99 ms", "max ms"
    );
    for case in cases {
        let s = &case.sample;
        let _ = writeln!(
            out,
            "{:<36} {:>7} {:>8} {:>10.0} {:>9} {:>9} {:>9}",
            case.name,
            case.mode.to_string(),
            s.latencies.len(),
            s.throughput(),
            ms(s.percentile(0.50)),
            ms(s.percentile(0.99)),
            ms(s.max()),
        );
    }
    out
}

fn ratios(cases: &[Case]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<36} {:>7} {:>8} {:>8} {:>10}",
        "ratio", "mode", "p50", "p99", "throughput"
    );
    let modes: Vec<Mode> = cases
        .iter()
        .filter(|c| c.name == WEBHOOK)
        .map(|c| c.mode)
        .collect();
    for against in [BARE, HEALTHZ] {
        for mode in &modes {
            let find = |name: &str| {
                cases
                    .iter()
                    .find(|c| c.mode == *mode && c.name == name)
                    .map(|c| &c.sample)
            };
            let (Some(baseline), Some(webhook)) = (find(against), find(WEBHOOK)) else {
                continue;
            };
            let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
            let _ = writeln!(
                out,
                "{:<36} {:>7} {:>7.2}x {:>7.2}x {:>9.2}x",
                format!(
                    "webhook / {}",
                    against.split(' ').take(2).collect::<Vec<_>>().join(" ")
                ),
                mode.to_string(),
                ratio(webhook.percentile(0.50), baseline.percentile(0.50)),
                ratio(webhook.percentile(0.99), baseline.percentile(0.99)),
                webhook.throughput() / baseline.throughput().max(1e-9),
            );
        }
    }
    out
}

fn group_commit_table(runs: &[GroupCommit]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "store group commit during the measured webhook runs (store.stats() after - before;"
    );
    let _ = writeln!(
        out,
        "commands = inbox inserts + the detector's processed marks and state writes)"
    );
    let _ = writeln!(
        out,
        "{:>7} {:>8} {:>13} {:>9} {:>13} {:>14}",
        "mode", "requests", "transactions", "commands", "commands/txn", "requests/txn"
    );
    for run in runs {
        let transactions = run.after.transactions - run.before.transactions;
        let commands = run.after.commands - run.before.commands;
        let per = |n: f64| n / (transactions.max(1) as f64);
        let _ = writeln!(
            out,
            "{:>7} {:>8} {:>13} {:>9} {:>13.2} {:>14.2}",
            run.mode.to_string(),
            run.requests,
            transactions,
            commands,
            per(commands as f64),
            per(run.requests as f64),
        );
    }
    out
}
