//! Load generator for `POST /webhooks/ringcentral`, measured against `GET /healthz` on the same
//! listener (same HTTP stack, no store) in the same run. See `benches/README.md`.
//!
//! The real app runs in-process on 127.0.0.1:0 with a temporary store and a memory sink; the
//! client is reqwest (HTTP/1.1 keep-alive, no proxy) on the same runtime. Every loop is bounded
//! and every request has a timeout, so the bench stops by itself. Absolute numbers depend on the
//! machine; the webhook-to-baseline ratios are the point.
//!
//! `cargo bench --bench webhook_load` runs the full plan. Run any other way (e.g. by
//! `cargo test --benches`, which does not pass `--bench`), it makes a few requests per case only.

use anyhow::{Context as _, bail, ensure};
use axum::body::Bytes;
use ringside::app;
use ringside::config::Settings;
use ringside::discord::announcer::MemorySink;
use ringside::store::{InboxCounts, Store, StoreStats};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// How many requests each case makes.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Unmeasured requests before each case (connections opened, caches warm).
    warm_up: usize,
    /// Measured requests per case.
    requests: usize,
}

const FULL: Plan = Plan {
    warm_up: 200,
    requests: 2_000,
};
const SMOKE: Plan = Plan {
    warm_up: 4,
    requests: 16,
};

fn main() {
    // `cargo bench` passes `--bench`; anything else gets the short smoke plan.
    let full = std::env::args().any(|arg| arg == "--bench");
    let plan = if full { FULL } else { SMOKE };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    if let Err(error) = runtime.block_on(bench(plan, full)) {
        eprintln!("webhook_load: FAILED: {error:#}");
        std::process::exit(1);
    }
}

/// The notifications to send: the seed with a unique `uuid` and `sequence` each, a new
/// `telephonySessionId` (and original party) every [`PER_SESSION`], merged into a new conference
/// every [`PER_CONFERENCE`] sessions, so each session is one caller joining.
struct Notifications {
    seed: Value,
    next: usize,
}

impl Notifications {
    fn load() -> anyhow::Result<Self> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SEED);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let seed: Value = serde_json::from_slice(&bytes).context("the seed is not JSON")?;
        ensure!(
            seed["body"]["parties"][0]["status"]["peerId"].is_object(),
            "the seed no longer has body.parties[0].status.peerId"
        );
        Ok(Notifications { seed, next: 0 })
    }

    /// The next `count` bodies, serialized before the clock starts.
    fn take(&mut self, count: usize) -> anyhow::Result<Arc<Vec<Bytes>>> {
        let mut bodies = Vec::with_capacity(count);
        for _ in 0..count {
            let i = self.next;
            self.next += 1;
            let session = i / PER_SESSION;
            let conference = session / PER_CONFERENCE;
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
                "partyId": format!("p-bench-conf-{conference:05}-{}", session % PER_CONFERENCE + 2),
            });
            bodies.push(Bytes::from(serde_json::to_vec(&notification)?));
        }
        Ok(Arc::new(bodies))
    }

    /// Notifications made so far.
    fn made(&self) -> usize {
        self.next
    }
}

/// What one case sends.
#[derive(Clone)]
enum Load {
    /// `GET /healthz`.
    Baseline { url: Arc<str> },
    /// `POST /webhooks/ringcentral`, body `i` for request `i`.
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
                let request = match &load {
                    Load::Baseline { url } => client.get(&**url),
                    Load::Webhook { url, token, bodies } => client
                        .post(&**url)
                        .header("Content-Type", "application/json; charset=UTF-8")
                        .header("Verification-Token", &**token)
                        .body(bodies[i].clone()),
                };
                let sent = Instant::now();
                let outcome = match request.send().await {
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
                };
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

/// One row of the table.
struct Case {
    name: &'static str,
    concurrency: usize,
    sample: Sample,
}

/// The webhook run's group-commit effect: the store's counters around it.
struct GroupCommit {
    concurrency: usize,
    requests: usize,
    before: StoreStats,
    after: StoreStats,
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
        "plan: {} mode, {} warm-up + {} measured requests per case, concurrency {:?}",
        if full { "full" } else { "smoke" },
        plan.warm_up,
        plan.requests,
        CONCURRENCY
    );

    let mut notifications = Notifications::load()?;
    let mut cases = Vec::new();
    let mut group_commits = Vec::new();
    let mut post_failures = Vec::new();
    let mut posts = 0usize;
    for concurrency in CONCURRENCY {
        let baseline = Load::Baseline {
            url: health_url.clone(),
        };
        let warm = drive(&client, &baseline, plan.warm_up, concurrency).await?;
        ensure!(
            warm.failures.is_empty(),
            "GET /healthz failed during warm-up: {:?}",
            first(&warm.failures)
        );
        let sample = drive(&client, &baseline, plan.requests, concurrency).await?;
        ensure!(
            sample.failures.is_empty(),
            "GET /healthz failed: {} of {}, first: {:?}",
            sample.failures.len(),
            plan.requests,
            first(&sample.failures)
        );
        cases.push(Case {
            name: "baseline GET /healthz",
            concurrency,
            sample,
        });

        let warm_up = Load::Webhook {
            url: webhook_url.clone(),
            token: token.clone(),
            bodies: notifications.take(plan.warm_up)?,
        };
        let warm = drive(&client, &warm_up, plan.warm_up, concurrency).await?;
        posts += plan.warm_up;
        post_failures.extend(warm.failures);
        let measured = Load::Webhook {
            url: webhook_url.clone(),
            token: token.clone(),
            bodies: notifications.take(plan.requests)?,
        };
        let before = store.stats();
        let sample = drive(&client, &measured, plan.requests, concurrency).await?;
        let after = store.stats();
        posts += plan.requests;
        post_failures.extend(sample.failures.iter().cloned());
        group_commits.push(GroupCommit {
            concurrency,
            requests: plan.requests,
            before,
            after,
        });
        cases.push(Case {
            name: "webhook POST /webhooks/ringcentral",
            concurrency,
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
    println!("webhook_load: ok");
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
        "{:<36} {:>4} {:>8} {:>10} {:>9} {:>9} {:>9}",
        "case", "conc", "requests", "req/s", "p50 ms", "p99 ms", "max ms"
    );
    for case in cases {
        let s = &case.sample;
        let _ = writeln!(
            out,
            "{:<36} {:>4} {:>8} {:>10.0} {:>9} {:>9} {:>9}",
            case.name,
            case.concurrency,
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
        "{:<36} {:>4} {:>8} {:>8} {:>10}",
        "ratio webhook / baseline", "conc", "p50", "p99", "throughput"
    );
    for concurrency in CONCURRENCY {
        let find = |prefix: &str| {
            cases
                .iter()
                .find(|c| c.concurrency == concurrency && c.name.starts_with(prefix))
                .map(|c| &c.sample)
        };
        let (Some(baseline), Some(webhook)) = (find("baseline"), find("webhook")) else {
            continue;
        };
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
        let _ = writeln!(
            out,
            "{:<36} {:>4} {:>7.2}x {:>7.2}x {:>9.2}x",
            "",
            concurrency,
            ratio(webhook.percentile(0.50), baseline.percentile(0.50)),
            ratio(webhook.percentile(0.99), baseline.percentile(0.99)),
            webhook.throughput() / baseline.throughput().max(1e-9),
        );
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
        "{:>4} {:>8} {:>13} {:>9} {:>13} {:>14}",
        "conc", "requests", "transactions", "commands", "commands/txn", "requests/txn"
    );
    for run in runs {
        let transactions = run.after.transactions - run.before.transactions;
        let commands = run.after.commands - run.before.commands;
        let per = |n: f64| n / (transactions.max(1) as f64);
        let _ = writeln!(
            out,
            "{:>4} {:>8} {:>13} {:>9} {:>13.2} {:>14.2}",
            run.concurrency,
            run.requests,
            transactions,
            commands,
            per(commands as f64),
            per(run.requests as f64),
        );
    }
    out
}
