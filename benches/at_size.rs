//! ringside at size: resident memory, disk writes while quiet and webhook throughput with 10,000
//! live conferences of 2 callers each, against the same with none. See `benches/README.md`.
//!
//! Unlike `webhook_load`, ringside runs as a subprocess (`ringside run`, the release binary Cargo
//! builds for the bench) in local mode: announcements on its standard output, no Discord, no
//! RingCentral client, a fixed verification token, `server.api_token` set so that
//! `GET /api/conferences` is served, ports chosen by the system and read from its banner, and a
//! store in a temporary directory. Its memory and I/O are then its own, read from
//! `/proc/PID/status` and `/proc/PID/io` (Linux only).
//!
//! Every loop is bounded, every request has a timeout and the child is killed when the bench
//! ends, however it ends. `cargo bench --features bench --bench at_size` runs the full plan; run any other way
//! (e.g. `cargo test --benches`, which does not pass `--bench`) it runs a small smoke plan.

#[path = "support/plan.rs"]
mod plan;

use anyhow::{Context as _, bail, ensure};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

/// The binary under test: Cargo builds it with the bench's profile (release).
const BIN: &str = env!("CARGO_BIN_EXE_ringside");
/// The notification every POST is made from.
const SEED: &str = "tests/fixtures/ringcentral/seed/participant-added.json";
/// The verification token the child is configured with (never printed by it).
const VERIFICATION_TOKEN: &str = "at-size-verification-token-0123";
/// The bearer token of `GET /api/conferences`.
const API_TOKEN: &str = "at-size-api-token-0123456789abcdef";
/// Callers merged into each conference.
const CALLERS: usize = 2;
/// Concurrent POSTs, for the load and for the throughput runs.
const CONCURRENCY: usize = 32;
/// First conference number of the throughput runs' joins (far above the load's).
const THROUGHPUT_BASE: usize = 1_000_000;
/// No request may take longer than this (a failure, not a sample).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The full listing is one large answer.
const LISTING_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for the child's banner.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest wait for the detector and the announcer to catch up with the load.
const PROCESS_DEADLINE: Duration = Duration::from_secs(600);
/// How often `/metrics` is read while waiting.
const POLL: Duration = Duration::from_millis(200);

/// How big each part of the run is.
#[derive(Debug, Clone, Copy)]
struct Plan {
    conferences: usize,
    /// Unmeasured joins before each throughput run.
    warm_up: usize,
    /// Measured joins in each throughput run.
    joins: usize,
    /// The quiet window in which disk writes are counted.
    quiet: Duration,
    /// Wait after the start-up banner before the idle RSS is read.
    settle: Duration,
}

const FULL: Plan = Plan {
    conferences: 10_000,
    warm_up: 200,
    joins: 2_000,
    quiet: Duration::from_secs(10),
    settle: Duration::from_secs(2),
};
const SMOKE: Plan = Plan {
    conferences: 50,
    warm_up: 8,
    joins: 32,
    quiet: Duration::from_secs(1),
    settle: Duration::from_millis(200),
};

fn main() {
    plan::run("at_size", FULL, SMOKE, bench);
}

// --- the child --------------------------------------------------------------------------------

/// `ringside run` as a child process; killed when dropped.
struct Service {
    child: Child,
    dir: tempfile::TempDir,
    webhook: String,
    operator: String,
    /// Lines the child printed on standard output (its announcements).
    stdout_lines: Arc<AtomicUsize>,
    /// The last lines of its standard error, for failure messages.
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

impl Service {
    /// Starts the child and waits for its banner.
    fn start() -> anyhow::Result<Service> {
        let dir = tempfile::Builder::new()
            .prefix("ringside-at-size-")
            .tempdir()
            .context("a temporary directory")?;
        let mut command = Command::new(BIN);
        command
            .arg("run")
            .current_dir(dir.path())
            .env_clear()
            .env("RINGSIDE_SERVER__LISTEN", "127.0.0.1:0")
            .env("RINGSIDE_SERVER__ADMIN_LISTEN", "127.0.0.1:0")
            .env("RINGSIDE_SERVER__API_TOKEN", API_TOKEN)
            .env(
                "RINGSIDE_RINGCENTRAL__VERIFICATION_TOKEN",
                VERIFICATION_TOKEN,
            )
            .env("RINGSIDE_STORE__PATH", store_path(dir.path()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        let mut child = command.spawn().with_context(|| format!("starting {BIN}"))?;
        let stdout_lines = Arc::new(AtomicUsize::new(0));
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the child's pipes are missing");
        };
        std::thread::spawn({
            let count = Arc::clone(&stdout_lines);
            move || {
                for line in BufReader::new(stdout).lines() {
                    if line.is_err() {
                        break;
                    }
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let (banner_tx, banner_rx) = mpsc::channel();
        std::thread::spawn({
            let tail = Arc::clone(&stderr_tail);
            move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let _ = banner_tx.send(line.clone());
                    let mut tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
                    if tail.len() == 20 {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
            }
        });
        let mut service = Service {
            child,
            dir,
            webhook: String::new(),
            operator: String::new(),
            stdout_lines,
            stderr_tail,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = banner_rx.recv_timeout(left).map_err(|_| {
                anyhow::anyhow!(
                    "no complete banner within {START_TIMEOUT:?}\n{}",
                    service.tail()
                )
            })?;
            let line = line.trim_start();
            if let Some(url) = line.strip_prefix("webhook: ") {
                service.webhook = url.to_owned();
            } else if let Some(url) = line.strip_prefix("operator: ") {
                service.operator = url.to_owned();
            } else if line.starts_with("RingCentral:") {
                break;
            }
        }
        ensure!(
            !service.webhook.is_empty() && !service.operator.is_empty(),
            "the banner named no webhook or no operator address\n{}",
            service.tail()
        );
        Ok(service)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn store_dir(&self) -> &Path {
        self.dir.path()
    }

    fn tail(&self) -> String {
        let tail = self
            .stderr_tail
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let lines: Vec<&str> = tail.iter().map(String::as_str).collect();
        format!("--- the child's last stderr lines\n{}", lines.join("\n"))
    }

    /// Fails when the child is no longer running.
    fn alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait().context("waiting for the child")? {
            bail!("ringside exited: {status}\n{}", self.tail());
        }
        Ok(())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn store_path(dir: &Path) -> PathBuf {
    dir.join("ringside.sqlite3")
}

// --- what /proc says --------------------------------------------------------------------------

/// `/proc/PID/status` memory lines, in KiB.
#[derive(Debug, Clone, Copy, Default)]
struct Memory {
    rss: u64,
    hwm: u64,
    anon: u64,
    file: u64,
}

fn memory(pid: u32) -> anyhow::Result<Memory> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context("reading /proc/PID/status (Linux only)")?;
    let mut memory = Memory::default();
    for line in text.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let kib = || {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .unwrap_or(0)
        };
        match name {
            "VmRSS" => memory.rss = kib(),
            "VmHWM" => memory.hwm = kib(),
            "RssAnon" => memory.anon = kib(),
            "RssFile" => memory.file = kib(),
            _ => {}
        }
    }
    ensure!(memory.rss > 0, "no VmRSS in /proc/{pid}/status");
    Ok(memory)
}

/// `/proc/PID/io`: bytes handed to `write(2)` and friends, and bytes the process caused to be
/// sent to storage (counted when the page is dirtied).
#[derive(Debug, Clone, Copy, Default)]
struct Io {
    wchar: u64,
    write_bytes: u64,
    syscw: u64,
}

fn io(pid: u32) -> anyhow::Result<Io> {
    let text =
        std::fs::read_to_string(format!("/proc/{pid}/io")).context("reading /proc/PID/io")?;
    let mut io = Io::default();
    for line in text.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().parse().unwrap_or(0);
        match name {
            "wchar" => io.wchar = value,
            "write_bytes" => io.write_bytes = value,
            "syscw" => io.syscw = value,
            _ => {}
        }
    }
    Ok(io)
}

/// Total size of the files in the store directory (the database, its WAL and shared memory).
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.metadata().ok())
        .filter(|meta| meta.is_file())
        .map(|meta| meta.len())
        .sum()
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

fn bytes_mib(bytes: u64) -> String {
    format!("{:.2}", bytes as f64 / (1024.0 * 1024.0))
}

// --- the load ---------------------------------------------------------------------------------

/// The seed, turned into one caller's join per notification.
struct Notifications {
    seed: Value,
}

impl Notifications {
    fn load() -> anyhow::Result<Self> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(SEED);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let seed: Value = serde_json::from_slice(&bytes).context("the seed is not JSON")?;
        ensure!(
            seed["body"]["parties"][0]["status"]["peerId"].is_object(),
            "the seed no longer has body.parties[0].status.peerId"
        );
        Ok(Notifications { seed })
    }

    /// The joins of [`CALLERS`] callers into each of `count` conferences numbered from `first`:
    /// each caller's own call (a new `telephonySessionId`) goes `Gone`/`Conference` with a
    /// `peerId` in the conference session, which the detector reads as the host's call
    /// starting the conference and the caller joining it.
    fn joins(&self, first: usize, count: usize) -> anyhow::Result<Arc<Vec<Vec<u8>>>> {
        let mut bodies = Vec::with_capacity(count * CALLERS);
        for conference in first..first + count {
            for caller in 0..CALLERS {
                let session = conference * CALLERS + caller;
                let mut notification = self.seed.clone();
                notification["uuid"] = json!(format!("at-size-{session:08}"));
                let body = &mut notification["body"];
                body["sequence"] = json!(1);
                body["telephonySessionId"] = json!(format!("s-size-{session:08}"));
                body["sessionId"] = json!(format!("{}", 4_000_000_000_u64 + session as u64));
                let party = &mut body["parties"][0];
                party["id"] = json!(format!("p-size-{session:08}-1"));
                party["to"]["name"] = json!(format!("Caller {session}"));
                party["to"]["phoneNumber"] = json!(format!("+1555{:07}", session % 10_000_000));
                party["status"]["peerId"] = json!({
                    "telephonySessionId": format!("s-size-conf-{conference:07}"),
                    "sessionId": "0",
                    "partyId": format!("p-size-conf-{conference:07}-{}", caller + 2),
                });
                bodies.push(serde_json::to_vec(&notification)?);
            }
        }
        Ok(Arc::new(bodies))
    }
}

/// POSTs every body from [`CONCURRENCY`] tasks; answers the wall time. Any answer but 200 fails.
async fn post_all(
    client: &reqwest::Client,
    url: &str,
    bodies: &Arc<Vec<Vec<u8>>>,
) -> anyhow::Result<Duration> {
    let next = Arc::new(AtomicUsize::new(0));
    let url: Arc<str> = url.into();
    let started = Instant::now();
    let mut workers = Vec::with_capacity(CONCURRENCY);
    for _ in 0..CONCURRENCY {
        let (client, url, bodies, next) = (
            client.clone(),
            Arc::clone(&url),
            Arc::clone(bodies),
            Arc::clone(&next),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else {
                    return Ok::<(), String>(());
                };
                let response = client
                    .post(&*url)
                    .header("Content-Type", "application/json; charset=UTF-8")
                    .header("Verification-Token", VERIFICATION_TOKEN)
                    .body(body.clone())
                    .send()
                    .await
                    .map_err(|error| format!("POST {i}: {error}"))?;
                let status = response.status();
                let text = response
                    .text()
                    .await
                    .map_err(|error| format!("POST {i}: reading the answer: {error}"))?;
                if status != reqwest::StatusCode::OK {
                    return Err(format!("POST {i}: {status}: {}", text.trim()));
                }
            }
        }));
    }
    for worker in workers {
        worker
            .await
            .context("a load task panicked")?
            .map_err(|failure| anyhow::anyhow!(failure))?;
    }
    Ok(started.elapsed())
}

/// `ringside_detector_events_total{type=KIND}` from `/metrics` (0 before the first event).
async fn events(client: &reqwest::Client, operator: &str, kind: &str) -> anyhow::Result<u64> {
    let text = client
        .get(format!("{operator}/metrics"))
        .send()
        .await
        .context("GET /metrics")?
        .error_for_status()
        .context("GET /metrics")?
        .text()
        .await
        .context("reading /metrics")?;
    let wanted = format!("ringside_detector_events_total{{type=\"{kind}\"}}");
    Ok(text
        .lines()
        .find_map(|line| line.strip_prefix(&wanted))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map_or(0, |value| value as u64))
}

/// Waits until the detector has produced `started` starts and `joined` joins, and the announcer
/// has printed a line for each; answers how long it took.
async fn wait_processed(
    client: &reqwest::Client,
    service: &mut Service,
    started: u64,
    joined: u64,
) -> anyhow::Result<Duration> {
    let since = Instant::now();
    let deadline = since + PROCESS_DEADLINE;
    let lines = usize::try_from(started + joined).unwrap_or(usize::MAX);
    loop {
        service.alive()?;
        let (s, j) = (
            events(client, &service.operator, "conference_started").await?,
            events(client, &service.operator, "participant_joined").await?,
        );
        let printed = service.stdout_lines.load(Ordering::Relaxed);
        if s >= started && j >= joined && printed >= lines {
            return Ok(since.elapsed());
        }
        if Instant::now() >= deadline {
            bail!(
                "after {PROCESS_DEADLINE:?}: {s} of {started} starts, {j} of {joined} joins, {printed} of {lines} lines announced\n{}",
                service.tail()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// What the full listing answered.
struct Listing {
    conferences: usize,
    participants: usize,
    bytes: usize,
    took: Duration,
}

async fn list(client: &reqwest::Client, operator: &str) -> anyhow::Result<Listing> {
    let started = Instant::now();
    let response = client
        .get(format!("{operator}/api/conferences"))
        .bearer_auth(API_TOKEN)
        .timeout(LISTING_TIMEOUT)
        .send()
        .await
        .context("GET /api/conferences")?;
    let status = response.status();
    let body = response.bytes().await.context("reading /api/conferences")?;
    let took = started.elapsed();
    ensure!(
        status == reqwest::StatusCode::OK,
        "/api/conferences answered {status}"
    );
    let value: Value = serde_json::from_slice(&body).context("/api/conferences is not JSON")?;
    let conferences = value["conferences"]
        .as_array()
        .context("no conferences array")?;
    let participants = conferences
        .iter()
        .map(|c| c["participants"].as_array().map_or(0, Vec::len))
        .sum();
    Ok(Listing {
        conferences: conferences.len(),
        participants,
        bytes: body.len(),
        took,
    })
}

/// Throughput of new joins (each into a new conference) after a warm-up, in POSTs per second.
async fn throughput(
    client: &reqwest::Client,
    service: &mut Service,
    notifications: &Notifications,
    plan: Plan,
) -> anyhow::Result<f64> {
    let warm = notifications.joins(THROUGHPUT_BASE, plan.warm_up / CALLERS)?;
    post_all(client, &service.webhook, &warm).await?;
    let measured = notifications.joins(
        THROUGHPUT_BASE + plan.warm_up / CALLERS,
        plan.joins / CALLERS,
    )?;
    let took = post_all(client, &service.webhook, &measured).await?;
    service.alive()?;
    Ok(measured.len() as f64 / took.as_secs_f64())
}

// --- the runs ---------------------------------------------------------------------------------

/// The run with no conferences: idle memory and the throughput to compare with.
struct Empty {
    idle: Memory,
    throughput: f64,
}

async fn run_empty(
    client: &reqwest::Client,
    notifications: &Notifications,
    plan: Plan,
) -> anyhow::Result<Empty> {
    let mut service = Service::start()?;
    tokio::time::sleep(plan.settle).await;
    service.alive()?;
    let idle = memory(service.pid())?;
    let throughput = throughput(client, &mut service, notifications, plan).await?;
    Ok(Empty { idle, throughput })
}

/// The run at size.
struct AtSize {
    idle: Memory,
    load_rate: f64,
    processed_after: Duration,
    loaded: Memory,
    listing: Listing,
    listed: Memory,
    quiet: Quiet,
    throughput: f64,
    end: Memory,
    store_bytes: u64,
}

/// Writes during the quiet window.
struct Quiet {
    before: Io,
    after: Io,
    /// `write_bytes` added in each second of the window.
    per_second: Vec<u64>,
    dir_before: u64,
    dir_after: u64,
}

async fn run_at_size(
    client: &reqwest::Client,
    notifications: &Notifications,
    plan: Plan,
) -> anyhow::Result<AtSize> {
    let mut service = Service::start()?;
    tokio::time::sleep(plan.settle).await;
    service.alive()?;
    let pid = service.pid();
    let idle = memory(pid)?;

    let load = notifications.joins(0, plan.conferences)?;
    let took = post_all(client, &service.webhook, &load).await?;
    let load_rate = load.len() as f64 / took.as_secs_f64();
    drop(load);
    let conferences = plan.conferences as u64;
    let processed_after = wait_processed(
        client,
        &mut service,
        conferences,
        conferences * CALLERS as u64,
    )
    .await?;
    let loaded = memory(pid)?;

    let listing = list(client, &service.operator).await?;
    ensure!(
        listing.conferences == plan.conferences
            && listing.participants == plan.conferences * CALLERS,
        "/api/conferences listed {} conferences and {} participants, expected {} and {}",
        listing.conferences,
        listing.participants,
        plan.conferences,
        plan.conferences * CALLERS
    );
    let listed = memory(pid)?;

    // The quiet window starts right after the listing: nothing is sent to the child in it.
    let before = io(pid)?;
    let dir_before = dir_bytes(service.store_dir());
    let mut per_second = Vec::new();
    let mut last = before.write_bytes;
    let window = Instant::now();
    let seconds = plan.quiet.as_secs().max(1);
    for second in 1..=seconds {
        let due = window + plan.quiet.mul_f64(second as f64 / seconds as f64);
        tokio::time::sleep_until(due.into()).await;
        let now = io(pid)?.write_bytes;
        per_second.push(now - last);
        last = now;
    }
    let after = io(pid)?;
    let dir_after = dir_bytes(service.store_dir());
    service.alive()?;

    let throughput = throughput(client, &mut service, notifications, plan).await?;
    let end = memory(pid)?;
    let store_bytes = dir_bytes(service.store_dir());
    Ok(AtSize {
        idle,
        load_rate,
        processed_after,
        loaded,
        listing,
        listed,
        quiet: Quiet {
            before,
            after,
            per_second,
            dir_before,
            dir_after,
        },
        throughput,
        end,
        store_bytes,
    })
}

async fn bench(plan: Plan, full: bool) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "at_size: {BIN} run as a subprocess, local mode (stdout sink, durable inbox), {cores} cores"
    );
    println!(
        "plan: {} mode; {} conferences x {CALLERS} callers; throughput: {} warm-up + {} measured joins at concurrency {CONCURRENCY}, each run in a fresh process; quiet window {:?}",
        if full { "full" } else { "smoke" },
        plan.conferences,
        plan.warm_up,
        plan.joins,
        plan.quiet
    );
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .context("an HTTP client")?;
    let notifications = Notifications::load()?;
    let empty = run_empty(&client, &notifications, plan)
        .await
        .context("the run with no conferences")?;
    let size = run_at_size(&client, &notifications, plan)
        .await
        .context("the run at size")?;
    print!("{}", report(plan, &empty, &size));
    println!("at_size: ok");
    Ok(())
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "OVER" }
}

fn report(plan: Plan, empty: &Empty, size: &AtSize) -> String {
    let mut out = String::new();
    let n = plan.conferences;
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "load: {} POSTs at {:.0}/s; detector and announcer done {:.1} s after the last answer",
        n * CALLERS,
        size.load_rate,
        size.processed_after.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "listing: {} conferences, {} participants, {} bytes in {:.0} ms",
        size.listing.conferences,
        size.listing.participants,
        size.listing.bytes,
        size.listing.took.as_secs_f64() * 1e3
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<44} {:>9} {:>9} {:>9} {:>9}  target",
        "memory (MiB, /proc/PID/status)", "VmRSS", "RssAnon", "RssFile", "VmHWM"
    );
    let rows = [
        (
            "idle, no conferences (run 1)",
            empty.idle,
            Some((50, "< 50")),
        ),
        (
            "idle, no conferences (run 2)",
            size.idle,
            Some((50, "< 50")),
        ),
        (
            "after the load, before the listing",
            size.loaded,
            None::<(u64, &str)>,
        ),
        ("after the full listing", size.listed, Some((100, "< 100"))),
        ("at the end (after the throughput run)", size.end, None),
    ];
    for (name, memory, target) in rows {
        let target = target.map_or(String::new(), |(limit, text)| {
            format!("{text} {}", verdict(memory.rss < limit * 1024))
        });
        let _ = writeln!(
            out,
            "{name:<44} {:>9} {:>9} {:>9} {:>9}  {target}",
            mib(memory.rss),
            mib(memory.anon),
            mib(memory.file),
            mib(memory.hwm)
        );
    }
    let q = &size.quiet;
    let written = q.after.write_bytes - q.before.write_bytes;
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "quiet {:?} with {n} live conferences (/proc/PID/io, from right after the listing):",
        plan.quiet
    );
    let _ = writeln!(
        out,
        "  write_bytes {} MiB ({written} bytes), wchar {} bytes, write calls {}  target < 1 MiB {}",
        bytes_mib(written),
        q.after.wchar - q.before.wchar,
        q.after.syscw - q.before.syscw,
        verdict(written < 1024 * 1024)
    );
    let timeline: Vec<String> = q
        .per_second
        .iter()
        .map(|bytes| format!("{:.0}", *bytes as f64 / 1024.0))
        .collect();
    let _ = writeln!(
        out,
        "  write_bytes per second (KiB): {}",
        timeline.join(" ")
    );
    let _ = writeln!(
        out,
        "  store directory {} -> {} bytes ({:+}); {} bytes at the end",
        q.dir_before,
        q.dir_after,
        q.dir_after as i64 - q.dir_before as i64,
        size.store_bytes
    );
    let ratio = size.throughput / empty.throughput;
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "throughput, new joins at concurrency {CONCURRENCY} (POST/s): none live {:.0}, {n} live {:.0}; ratio {ratio:.2}  target >= 0.80 {}",
        empty.throughput,
        size.throughput,
        verdict(ratio >= 0.8)
    );
    out
}
