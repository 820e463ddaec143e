//! How long ringside takes to be connected and subscribed again after its RingCentral WebSocket
//! drops: a recovered session against a fresh one, measured in the same run. See
//! `benches/README.md`.
//!
//! The real app runs in-process in WebSocket mode (no public URL) against the platform fake, whose
//! gateway drops every connection on demand without a close frame (its side of the TCP
//! connection simply closes).
//! Each case has its own platform, app and store. The clock runs from the drop until ringside's
//! `connected` watch is true again: the value `/readyz` reads, which ringside sets only once the
//! socket is back and its subscription is in place (recovered, or made again). Each drop is then
//! checked against the gateway's counters and `/readyz`, and a caller is merged into a conference
//! and must be announced, so every reconnect is shown to deliver. Every wait is bounded.
//!
//! `cargo bench --features bench --bench websocket_recovery` runs the full plan. Run any other way
//! (e.g. by `cargo test --features bench --benches`, which does not pass `--bench`), it drops the
//! socket three times per case only.

#[path = "support/plan.rs"]
mod plan;

use anyhow::{Context as _, anyhow, bail, ensure};
use ringside::app::{self, Running};
use ringside::config::{Delivery, RingCentralCredentials, Settings};
use ringside::discord::announcer::MemorySink;
use ringside::simulator::platform::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_JWT, Platform, PlatformHandle,
    PlatformOptions, WsStats,
};
use ringside::simulator::{ConferenceController, Person, RateGroup};
use secrecy::SecretString;
use std::fmt::Write as _;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::sync::{oneshot, watch};

/// The conference script's seed (names and ids only; the timing does not depend on it).
const SEED: u64 = 0x5eed_0456;
/// The longest a drop may take to be connected and subscribed again (a failure, not a sample).
const RECONNECT_DEADLINE: Duration = Duration::from_secs(10);
/// The longest any other wait may take: start, `/readyz`, an announcement, settling.
const DEADLINE: Duration = Duration::from_secs(10);
/// The longest a graceful stop may take (ringside promises 10 s).
const STOP_DEADLINE: Duration = Duration::from_secs(15);
/// Where ringside asks for a ws token: the first request of every reconnect.
const WS_TOKEN_PATH: &str = "/restapi/oauth/wstoken";
/// How often `/readyz` is asked once ringside says it is connected again.
const READYZ_POLL: Duration = Duration::from_millis(2);
/// RingCentral is quiet (no REST request) for this long before a drop: the discovery ringside
/// runs after a fresh subscription is over before the clock starts.
const QUIET: Duration = Duration::from_millis(50);
/// The fresh-session case's recovery window: none. The gateway announces `recoveryTimeout` 0, so
/// ringside presents no `wsc` and the gateway keeps nothing: a new session and a new
/// subscription every time. (A window of 1 ms is announced as 1 s, the gateway's whole seconds,
/// and on loopback ringside is often back within that millisecond: it recovers.)
const NO_RECOVERY: Duration = Duration::ZERO;
/// How long the outage check keeps ringside away (a penalty on RingCentral's Auth group).
const OUTAGE: Duration = Duration::from_secs(1);
/// Joins this close together would be posted as one line; each drop waits for its own.
const COALESCE_MS: u64 = 50;
/// Every rate group's limit on the platform: RingCentral's Auth group allows 5 ws tokens a
/// minute, which a drop every few milliseconds would exhaust at the sixth drop.
const GENEROUS_LIMIT: u32 = 100_000;

/// ringside's own waits before reconnecting, as `src/ringcentral/websocket.rs` has them: none
/// after a drop; a backoff only between failed attempts.
const RECONNECT_POLICY: &str = "none after a drop (reconnects at once, same loop); \
     1 s doubling to 60 s, +0-25 % jitter, only after a failed attempt";

/// How many drops each case makes.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Unmeasured drops first (the same checks, no sample).
    warm_up: usize,
    /// Measured drops per case.
    drops: usize,
}

const FULL: Plan = Plan {
    warm_up: 1,
    drops: 20,
};
const SMOKE: Plan = Plan {
    warm_up: 1,
    drops: 3,
};

fn main() {
    plan::run("websocket_recovery", FULL, SMOKE, bench);
}

/// What a drop must come back as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The default recovery window: the session survives, no new subscription.
    Recovery,
    /// No recovery window: new session, new subscription.
    Fresh,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Recovery => "recovery (session recovered)",
            Kind::Fresh => "fresh session (no recovery window)",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Kind::Recovery => "recovery",
            Kind::Fresh => "fresh session",
        }
    }

    /// The callers' names start with this (one conference per case).
    fn caller_prefix(self) -> &'static str {
        match self {
            Kind::Recovery => "Recovery Caller",
            Kind::Fresh => "Fresh Caller",
        }
    }

    fn options(self) -> PlatformOptions {
        let mut options = PlatformOptions::new();
        for group in RateGroup::ALL {
            options = options.limit(group, GENEROUS_LIMIT);
        }
        match self {
            Kind::Recovery => options,
            Kind::Fresh => options.ws_recovery_timeout(NO_RECOVERY),
        }
    }

    /// Whether the gateway's counters around one drop show the expected path.
    fn check(self, before: &WsStats, after: &WsStats) -> anyhow::Result<()> {
        let connected_once = after.connections == before.connections + 1;
        let fine = match self {
            Kind::Recovery => {
                connected_once
                    && after.recovered == before.recovered + 1
                    && after.recovery_failed == before.recovery_failed
                    && after.subscribed == before.subscribed
            }
            Kind::Fresh => {
                connected_once
                    && after.recovered == before.recovered
                    && after.subscribed == before.subscribed + 1
            }
        };
        ensure!(
            fine,
            "{}: the gateway's counters do not show the expected path: before {before:?}, after {after:?}",
            self.short()
        );
        Ok(())
    }
}

/// One drop's times, each from the moment `drop_websockets` was called.
#[derive(Debug, Clone, Copy)]
struct DropSample {
    /// ringside's watch went false: it saw the connection gone (`None` if the false was
    /// overtaken by the true before the bench looked).
    noticed: Option<Duration>,
    /// ringside's request for a new ws token reached the platform (the first step back).
    token: Duration,
    /// ringside's watch went true: connected and subscribed again. The measurement.
    connected: Duration,
    /// The first `/readyz` 200 after that (asked every [`READYZ_POLL`]).
    readyz: Duration,
}

/// One case's results.
struct Case {
    kind: Kind,
    samples: Vec<DropSample>,
    stats: WsStats,
    /// Callers merged (one per drop, plus the outage check's), each announced exactly once.
    callers: usize,
    /// The recovery case's extra check: a caller who joined while the socket was down.
    outage_check: Option<String>,
}

async fn bench(plan: Plan, full: bool) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "websocket_recovery: ringside in-process in WebSocket mode against the platform fake's gateway ({cores} cores, one tokio runtime for both)"
    );
    println!(
        "plan: {} mode, {} warm-up + {} measured drops per case; clock: drop_websockets() to ringside's connected watch true",
        if full { "full" } else { "smoke" },
        plan.warm_up,
        plan.drops
    );
    println!("ringside's reconnect delay: {RECONNECT_POLICY}");

    let mut cases = Vec::new();
    for kind in [Kind::Recovery, Kind::Fresh] {
        let case = run_case(kind, plan)
            .await
            .with_context(|| format!("case {}", kind.short()))?;
        cases.push(case);
    }

    println!();
    print!("{}", table(&cases));
    println!();
    print!("{}", phases(&cases));
    println!();
    print!("{}", ratio(&cases));
    println!();
    println!("correctness:");
    for case in &cases {
        print!("{}", report(case, plan));
    }
    println!("websocket_recovery: ok");
    Ok(())
}

/// One case: its own platform, ringside and store; drops, timed and checked.
async fn run_case(kind: Kind, plan: Plan) -> anyhow::Result<Case> {
    let platform = Platform::start(kind.options())
        .await
        .context("starting the platform fake")?;
    let dir = tempfile::tempdir().context("a temporary directory")?;
    let settings = settings(&platform, dir.path())?;
    let sink = MemorySink::new();
    let running = app::start(&settings, Arc::new(sink.clone()))
        .await
        .context("starting ringside")?;
    let outcome = drive_case(kind, plan, &platform, &running, &sink).await;
    // Stopped either way; a failure of the case is the error that counts.
    let stopped = tokio::time::timeout(STOP_DEADLINE, running.shutdown())
        .await
        .map_err(|_| anyhow!("ringside did not stop within {STOP_DEADLINE:?}"))
        .and_then(|stopped| stopped.context("stopping ringside"));
    let platform_stopped = tokio::time::timeout(STOP_DEADLINE, platform.stop())
        .await
        .map_err(|_| anyhow!("the platform fake did not stop within {STOP_DEADLINE:?}"));
    drop(dir);
    let case = outcome?;
    stopped?;
    platform_stopped?;
    Ok(case)
}

async fn drive_case(
    kind: Kind,
    plan: Plan,
    platform: &PlatformHandle,
    running: &Running,
    sink: &MemorySink,
) -> anyhow::Result<Case> {
    let side = running
        .ringcentral
        .as_ref()
        .context("ringside has no RingCentral side")?;
    let mut connected = side
        .websocket
        .clone()
        .context("ringside is not in WebSocket mode (no connected watch)")?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(DEADLINE)
        .build()
        .context("an HTTP client")?;
    let readyz_url = format!(
        "http://{}/readyz",
        running.admin_addr.unwrap_or(running.public_addr)
    );

    tokio::time::timeout(DEADLINE, connected.wait_for(|up| *up))
        .await
        .map_err(|_| anyhow!("ringside did not connect and subscribe within {DEADLINE:?}"))?
        .map_err(|_| anyhow!("ringside's WebSocket task ended before connecting"))?;
    wait_ready(&client, &readyz_url).await?;
    let first = platform.ws_stats();
    ensure!(
        (first.connections, first.subscribed) == (1, 1),
        "after the start: {first:?}"
    );

    let conference = platform.conference(SEED, host());
    bounded("the conference starts", conference.start()).await?;
    let mut callers = Vec::new();
    let mut samples = Vec::with_capacity(plan.drops);
    for round in 1..=plan.warm_up + plan.drops {
        quiet(platform, running).await?;
        let before = platform.ws_stats();
        let (mut sample, start) = time_drop(platform, &mut connected)
            .await
            .with_context(|| format!("drop {round}"))?;
        let after = platform.ws_stats();
        kind.check(&before, &after)
            .with_context(|| format!("drop {round}"))?;
        let ready = wait_ready(&client, &readyz_url)
            .await
            .with_context(|| format!("drop {round}"))?;
        sample.readyz = ready.duration_since(start);
        // The restored subscription delivers: a caller joins and is announced.
        let caller = caller(kind, callers.len());
        merge_and_wait(&conference, sink, &caller)
            .await
            .with_context(|| format!("after drop {round}"))?;
        callers.push(caller);
        if round > plan.warm_up {
            samples.push(sample);
        }
    }

    // A caller who joins while the socket is down reaches ringside through the gateway's
    // recovery buffer. Untimed: the ws token endpoint is held back for a second (a rate-limit
    // penalty with `Retry-After`, which ringside waits out) so that the merge surely happens in
    // the outage. The fresh case has no such check: with the session gone, those notifications
    // reach no subscription, as on RingCentral, and reconciliation is what repairs them.
    let outage_check = if kind == Kind::Recovery {
        quiet(platform, running).await?;
        let before = platform.ws_stats();
        connected.borrow_and_update();
        platform.throttle(RateGroup::Auth, OUTAGE, true);
        platform.drop_websockets();
        tokio::time::timeout(DEADLINE, connected.wait_for(|up| !*up))
            .await
            .map_err(|_| anyhow!("the outage check: the drop was not noticed within {DEADLINE:?}"))?
            .map_err(|_| anyhow!("ringside's WebSocket task ended"))?;
        let caller = caller(kind, callers.len());
        conference.advance(Duration::from_secs(5));
        bounded(
            "a merge during the outage",
            conference.call_and_merge(caller.clone()),
        )
        .await?;
        tokio::time::timeout(RECONNECT_DEADLINE, connected.wait_for(|up| *up))
            .await
            .map_err(|_| anyhow!("the outage check: not back within {RECONNECT_DEADLINE:?}"))?
            .map_err(|_| anyhow!("ringside's WebSocket task ended"))?;
        wait_for_join(sink, &caller)
            .await
            .context("the outage check")?;
        wait_ready(&client, &readyz_url)
            .await
            .context("the outage check")?;
        let after = platform.ws_stats();
        kind.check(&before, &after).context("the outage check")?;
        callers.push(caller);
        Some(format!(
            "a caller merged while the socket was down (ws token held back {} s) was announced once after the recovery",
            OUTAGE.as_secs()
        ))
    } else {
        None
    };

    // Nothing lost, nothing doubled.
    bounded("ringside settles", running.idle()).await?;
    let lines = sink.lines();
    for caller in &callers {
        let joined = lines.iter().filter(|line| is_join_of(line, caller)).count();
        ensure!(
            joined == 1,
            "{} was announced joining {joined} times: {lines:#?}",
            caller.name
        );
    }
    let lost = platform.lost_notifications();
    ensure!(
        lost.is_empty(),
        "{} notifications reached no subscription: {lost:#?}",
        lost.len()
    );
    samples.sort_by_key(|s| s.connected);
    Ok(Case {
        kind,
        samples,
        stats: platform.ws_stats(),
        callers: callers.len(),
        outage_check,
    })
}

/// Drops every gateway connection and times ringside's way back on its `connected` watch. The
/// watch is observed from a thread of its own, parked until the value changes: ringside's and the
/// platform's tasks keep both runtime workers busy while they reconnect, and a task of the bench
/// on those workers would be woken only when one of them is free (up to ~1 ms late on 2 cores).
/// When ringside asked for the new ws token is read afterwards from the platform's request log
/// (its arrival time, wall clock, against the wall clock at the drop). Answers the times and the
/// instant the clock started.
async fn time_drop(
    platform: &PlatformHandle,
    connected: &mut watch::Receiver<bool>,
) -> anyhow::Result<(DropSample, Instant)> {
    ensure!(
        *connected.borrow_and_update(),
        "ringside was not connected before the drop"
    );
    let (parked, observer) = observe(connected.clone())?;
    parked
        .await
        .map_err(|_| anyhow!("the observer thread did not start"))?;
    let wall = OffsetDateTime::now_utc();
    let start = Instant::now();
    platform.drop_websockets();
    let observed = tokio::time::timeout(RECONNECT_DEADLINE + DEADLINE, observer)
        .await
        .map_err(|_| anyhow!("the observer thread did not answer"))?
        .map_err(|_| anyhow!("the observer thread ended without an answer"))?;
    let (noticed, back) = observed.map_err(|error| {
        anyhow!(
            "{error} ({:?}, ringside connected: {})",
            platform.ws_stats(),
            *connected.borrow()
        )
    })?;
    connected.borrow_and_update();
    let token = platform
        .requests()
        .iter()
        .filter(|request| request.path == WS_TOKEN_PATH && request.at >= wall)
        .map(|request| request.at - wall)
        .min()
        .context("ringside is back, but the platform logged no ws token request after the drop")?;
    let back = back.duration_since(start);
    let sample = DropSample {
        noticed: noticed.map(|at| at.duration_since(start)),
        token: Duration::try_from(token).unwrap_or_default(),
        connected: back,
        // Filled in by the caller once `/readyz` answered.
        readyz: back,
    };
    Ok((sample, start))
}

/// When the watch turned false (if the bench saw it) and then true.
type Observed = Result<(Option<Instant>, Instant), String>;

/// Starts a thread that waits, on a runtime of its own, for `connected` to turn false and then
/// true (within [`RECONNECT_DEADLINE`]), noting when each change arrived. Answers a signal that
/// it is parked on the watch and its answer.
fn observe(
    mut connected: watch::Receiver<bool>,
) -> anyhow::Result<(oneshot::Receiver<()>, oneshot::Receiver<Observed>)> {
    let (parked_tx, parked) = oneshot::channel();
    let (answer_tx, answer) = oneshot::channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .context("the observer's runtime")?;
    std::thread::Builder::new()
        .name("observer".into())
        .spawn(move || {
            let observed = runtime.block_on(async {
                let watching = async {
                    let mut noticed = None;
                    {
                        let mut changed = std::pin::pin!(connected.changed());
                        // Parked on the watch (its first poll registered the wake-up) before
                        // the bench may drop the socket.
                        let first =
                            std::future::poll_fn(|cx| Poll::Ready(changed.as_mut().poll(cx)))
                                .await;
                        if first.is_ready() {
                            return Err("the watch changed before the drop".to_owned());
                        }
                        let _ = parked_tx.send(());
                        changed
                            .await
                            .map_err(|_| "ringside's WebSocket task ended".to_owned())?;
                    }
                    loop {
                        let at = Instant::now();
                        if *connected.borrow_and_update() {
                            return Ok((noticed, at));
                        }
                        noticed.get_or_insert(at);
                        connected
                            .changed()
                            .await
                            .map_err(|_| "ringside's WebSocket task ended".to_owned())?;
                    }
                };
                tokio::time::timeout(RECONNECT_DEADLINE, watching)
                    .await
                    .unwrap_or_else(|_| {
                        Err(format!(
                            "ringside was not connected and subscribed again within {RECONNECT_DEADLINE:?} of the drop"
                        ))
                    })
            });
            let _ = answer_tx.send(observed);
        })
        .context("the observer thread")?;
    Ok((parked, answer))
}

/// Asks `/readyz` every [`READYZ_POLL`] until it answers 200; answers when that answer came.
async fn wait_ready(client: &reqwest::Client, url: &str) -> anyhow::Result<Instant> {
    let until = Instant::now() + DEADLINE;
    loop {
        let last = match client.get(url).send().await {
            Ok(response) => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                if status == reqwest::StatusCode::OK {
                    return Ok(Instant::now());
                }
                format!("{status}: {}", body.trim())
            }
            Err(error) => error.to_string(),
        };
        if Instant::now() >= until {
            bail!("/readyz did not answer 200 within {DEADLINE:?}; last: {last}");
        }
        tokio::time::sleep(READYZ_POLL).await;
    }
}

/// Waits until ringside has nothing in flight and RingCentral has seen no request for
/// [`QUIET`], within [`DEADLINE`].
async fn quiet(platform: &PlatformHandle, running: &Running) -> anyhow::Result<()> {
    bounded("ringside settles", running.idle()).await?;
    let until = Instant::now() + DEADLINE;
    let mut seen = platform.requests().len();
    loop {
        tokio::time::sleep(QUIET).await;
        let now = platform.requests().len();
        if now == seen {
            return Ok(());
        }
        ensure!(
            Instant::now() < until,
            "RingCentral still saw requests after {DEADLINE:?}"
        );
        seen = now;
    }
}

async fn merge_and_wait(
    conference: &ConferenceController,
    sink: &MemorySink,
    caller: &Person,
) -> anyhow::Result<()> {
    conference.advance(Duration::from_secs(5));
    bounded("a merge", conference.call_and_merge(caller.clone())).await?;
    wait_for_join(sink, caller).await
}

async fn wait_for_join(sink: &MemorySink, caller: &Person) -> anyhow::Result<()> {
    let until = Instant::now() + DEADLINE;
    loop {
        if sink.lines().iter().any(|line| is_join_of(line, caller)) {
            return Ok(());
        }
        if Instant::now() >= until {
            bail!(
                "{} was not announced within {DEADLINE:?}; lines: {:#?}",
                caller.name,
                sink.lines()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `Name (•••1234) joined the conference …` for this caller.
fn is_join_of(line: &str, caller: &Person) -> bool {
    line.starts_with(&format!("{} (", caller.name)) && line.contains(" joined the conference")
}

/// Runs `what` within [`DEADLINE`].
async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> anyhow::Result<T> {
    tokio::time::timeout(DEADLINE, future)
        .await
        .map_err(|_| anyhow!("{what}: not within {DEADLINE:?}"))
}

fn host() -> Person {
    Person::with_extension("Agent 122", "122", "62295300122")
}

/// The `n`th caller of a case: a unique name and number.
fn caller(kind: Kind, n: usize) -> Person {
    Person::new(
        format!("{} {n:02}", kind.caller_prefix()),
        format!("+1415555{:04}", 1000 + n),
    )
}

/// WebSocket mode against `platform`: no public URL, its base URL and default credentials, a
/// temporary store, both listeners on `127.0.0.1:0`; everything else the defaults.
fn settings(platform: &PlatformHandle, dir: &std::path::Path) -> anyhow::Result<Settings> {
    let mut settings = Settings::from_sources(None, &[]).context("default settings")?;
    settings.server.listen = ([127, 0, 0, 1], 0).into();
    settings.server.admin_listen = ([127, 0, 0, 1], 0).into();
    settings.server.public_url = None;
    settings.store.path = dir.join("ringside.sqlite3");
    settings.announce.coalesce_ms = COALESCE_MS;
    let ringcentral = &mut settings.ringcentral;
    ringcentral.server_url = platform.base_url();
    ringcentral.credentials = Some(RingCentralCredentials {
        client_id: DEFAULT_CLIENT_ID.to_owned(),
        client_secret: SecretString::from(DEFAULT_CLIENT_SECRET),
        jwt: SecretString::from(DEFAULT_JWT),
    });
    ringcentral.delivery = Delivery::WebSocket;
    Ok(settings)
}

/// Nearest-rank percentile of sorted durations.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let n = sorted.len();
    if n == 0 {
        return Duration::ZERO;
    }
    let rank = (p * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

fn sorted(case: &Case, field: impl Fn(&DropSample) -> Option<Duration>) -> Vec<Duration> {
    let mut values: Vec<_> = case.samples.iter().filter_map(field).collect();
    values.sort_unstable();
    values
}

fn ms(duration: Duration) -> String {
    format!("{:.3}", duration.as_secs_f64() * 1e3)
}

fn table(cases: &[Case]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<34} {:>5} {:>9} {:>9} {:>9}",
        "connected and subscribed again", "drops", "p50 ms", "p90 ms", "max ms"
    );
    for case in cases {
        let back = sorted(case, |s| Some(s.connected));
        let _ = writeln!(
            out,
            "{:<34} {:>5} {:>9} {:>9} {:>9}",
            case.kind.name(),
            back.len(),
            ms(percentile(&back, 0.50)),
            ms(percentile(&back, 0.90)),
            ms(back.last().copied().unwrap_or_default()),
        );
    }
    out
}

fn phases(cases: &[Case]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<30} {:>9} {:>9} {:>9} {:>9}",
        "p50 ms after the drop", "noticed", "ws token", "connected", "/readyz"
    );
    for case in cases {
        let p50 = |field: &dyn Fn(&DropSample) -> Option<Duration>| {
            let values = sorted(case, field);
            if values.is_empty() {
                "-".to_owned()
            } else {
                ms(percentile(&values, 0.50))
            }
        };
        let _ = writeln!(
            out,
            "{:<30} {:>9} {:>9} {:>9} {:>9}",
            case.kind.short(),
            p50(&|s| s.noticed),
            p50(&|s| Some(s.token)),
            p50(&|s| Some(s.connected)),
            p50(&|s| Some(s.readyz)),
        );
    }
    let _ = writeln!(
        out,
        "(noticed: ringside's connected watch false; ws token: its POST {WS_TOKEN_PATH} reached the platform;"
    );
    let _ = writeln!(
        out,
        " connected: the watch true again; /readyz: its first 200 after that, asked every {} ms)",
        READYZ_POLL.as_millis()
    );
    out
}

fn ratio(cases: &[Case]) -> String {
    let mut out = String::new();
    let find = |kind: Kind| cases.iter().find(|case| case.kind == kind);
    let (Some(recovery), Some(fresh)) = (find(Kind::Recovery), find(Kind::Fresh)) else {
        return out;
    };
    let p50 = |case: &Case| percentile(&sorted(case, |s| Some(s.connected)), 0.50);
    let (r, f) = (p50(recovery), p50(fresh));
    let _ = writeln!(
        out,
        "ratio recovery / fresh session, p50: {:.2}x (fresh session - recovery: {} ms)",
        r.as_secs_f64() / f.as_secs_f64().max(1e-9),
        ms(f.saturating_sub(r)),
    );
    out
}

fn report(case: &Case, plan: Plan) -> String {
    let mut out = String::new();
    let drops = plan.warm_up + plan.drops + usize::from(case.outage_check.is_some());
    let path = match case.kind {
        Kind::Recovery => "recovered (recoveryState Successful, no new subscription)",
        Kind::Fresh => "a new session (no wsc presented) and a new subscription over the socket",
    };
    let _ = writeln!(
        out,
        "  {}: {drops} drops, each {path}, /readyz 200 after each",
        case.kind.short()
    );
    let _ = writeln!(
        out,
        "    {} callers merged after the reconnects, each announced exactly once; no notification lost",
        case.callers
    );
    if let Some(check) = &case.outage_check {
        let _ = writeln!(out, "    {check}");
    }
    let s = &case.stats;
    let _ = writeln!(
        out,
        "    gateway: {} ws tokens, {} connections, {} recovered, {} recoveries failed, {} subscribed",
        s.tokens_issued, s.connections, s.recovered, s.recovery_failed, s.subscribed
    );
    out
}
