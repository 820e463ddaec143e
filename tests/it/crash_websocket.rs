//! Crash test over the WebSocket (the README's "No public address needed" and Durability):
//! `ringside run` with no public address, notifications over the platform fake's WebSocket
//! gateway, is SIGKILLed at a random moment while a conference fills up and callers leave. It
//! is restarted on the same store within RingCentral's recovery window while the conference
//! goes on, and stopped with SIGTERM once it has caught up. Then:
//!
//! - the restart recovered the session with the `wsc` kept in the store and kept its
//!   subscription (one subscription over both runs, no second one);
//! - the restored detector state holds every caller the platform merged exactly once, live
//!   exactly when the platform says they are still on the call, and no conference counts more
//!   joins than it has participants (nothing applied twice): what the dead process had read
//!   off the socket but not committed is replayed or repaired by reconciliation;
//! - every caller's join was announced at least once over the two runs, and every leave the
//!   state holds was announced; duplicates across the crash are reported, not failed on.
//!
//! The kill moment comes from a seeded RNG (printed; `RINGSIDE_CRASH_SEED` replays one). Run
//! with `-- --nocapture` to see the numbers.

use crate::support_cli::crash::{Rng, run_command, seed};
use crate::support_cli::{Sandbox, Service};
use ringside::conference::DetectorConfig;
use ringside::pipeline::detector_from_rows;
use ringside::simulator::platform::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_JWT, PlatformHandle,
};
use ringside::simulator::{CallerRef, LeaveSignal, Person, Platform, PlatformOptions};
use ringside::store::Store;
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const KILL_TIMEOUT: Duration = Duration::from_secs(10);
/// Callers merged into the conference per scenario; every third hangs up later on.
const CALLERS: usize = 24;
/// Between two steps of the script, so the kill lands while notifications are flowing.
const PACE: Duration = Duration::from_millis(15);
const SCENARIOS: usize = 2;
const HOST: &str = "Agent 122";

fn caller(i: usize) -> Person {
    Person::new(format!("Caller {i:02}"), format!("+1415555{i:04}"))
}

/// `ringside run` with RingCentral credentials for `platform` and no public address.
fn start(sandbox: &Sandbox, store: &Path, platform: &PlatformHandle) -> Service {
    let mut command = run_command(sandbox, store, 20);
    command
        .env("RINGSIDE_RINGCENTRAL__CLIENT_ID", DEFAULT_CLIENT_ID)
        .env("RINGSIDE_RINGCENTRAL__CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
        .env("RINGSIDE_RINGCENTRAL__JWT", DEFAULT_JWT)
        .env("RINGSIDE_RINGCENTRAL__SERVER_URL", platform.base_url())
        .env("RINGSIDE_RINGCENTRAL__RECONCILE_INTERVAL_SECS", "1")
        .env("RINGSIDE_RINGCENTRAL__WATCHDOG_INTERVAL_SECS", "1");
    let mut service = Service::start(command);
    service.stderr_until(START_TIMEOUT, |line| {
        line.contains("subscribed over RingCentral's WebSocket")
            || line.contains("reconnected to RingCentral's WebSocket")
    });
    service
}

/// One step of the script: merge caller `i`, or hang up caller `i`.
#[derive(Debug, Clone, Copy)]
enum Step {
    Merge(usize),
    HangUp(usize),
}

/// Merges every caller in turn; every third one hangs up four merges later.
fn script() -> Vec<Step> {
    let mut steps = Vec::new();
    for i in 0..CALLERS {
        steps.push(Step::Merge(i));
        if i >= 4 && (i - 4) % 3 == 0 {
            steps.push(Step::HangUp(i - 4));
        }
    }
    steps
}

/// A caller as the platform has them at the end.
struct Expected {
    name: String,
    /// The conference-side party id.
    party: String,
    /// The host's leg of the caller's original call.
    original: String,
    on_call: bool,
}

impl Expected {
    /// Whether a committed notification body names this caller and one links their call to
    /// the conference party: the original leg's `Gone`/`Conference` (its `peerId.partyId`), or a
    /// conference-side update pointing back at the original leg. (A reconciliation read shows
    /// the conference party without that link, and its `Disconnected` update carries none.)
    fn named_and_linked(&self, bodies: &[String]) -> bool {
        let named = format!("\"name\":\"{}\"", self.name);
        let peer = format!("\"partyId\":\"{}\"", self.party);
        let own = format!("\"id\":\"{}\"", self.party);
        let back = format!("\"partyId\":\"{}\"", self.original);
        bodies.iter().any(|body| body.contains(&named))
            && bodies
                .iter()
                .any(|body| body.contains(&peer) || (body.contains(&own) && body.contains(&back)))
    }
}

const JOINED: &str = " joined the conference";

#[derive(Debug, Default)]
struct Report {
    /// Callers the state holds without a name: every notification naming them was read off
    /// the socket by the killed process and never committed (RingCentral redelivers nothing
    /// outside its recovery buffer), and the conference session does not name its parties.
    unnamed: usize,
    /// Of those, callers committed notifications name and link (must be none).
    unnamed_yet_named_in_inbox: usize,
    kill_after_steps: usize,
    kill_jitter_us: u64,
    steps: usize,
    sent_before_kill: u32,
    sent_total: u32,
    recovered: u32,
    subscriptions: u32,
    joined: usize,
    left: usize,
    join_lines: usize,
    join_lines_duplicated: usize,
    leave_lines: usize,
    seconds: f64,
}

/// Caller name → how many lines contain `marker` right after it.
fn lines_by_caller(lines: &[String], marker: &str) -> BTreeMap<String, usize> {
    let mut found = BTreeMap::new();
    for line in lines {
        if line.contains(marker)
            && let Some(name) = line.split(" (").next()
        {
            *found.entry(name.to_owned()).or_insert(0) += 1;
        }
    }
    found
}

fn scenario(run: usize, rng: &mut Rng, runtime: &tokio::runtime::Runtime) -> Report {
    let began = Instant::now();
    let steps = script();
    let mut report = Report {
        kill_after_steps: rng.between(4, (steps.len() - 6) as u64) as usize,
        kill_jitter_us: rng.between(0, 5_000),
        steps: steps.len(),
        ..Report::default()
    };
    let platform = runtime.block_on(async { Platform::start(PlatformOptions::new()).await });
    let platform = platform.expect("the platform fake starts");
    let sandbox = Sandbox::new();
    let store = sandbox.path().join("crash.sqlite3");

    let mut first = start(&sandbox, &store, &platform);
    let done = Arc::new(AtomicUsize::new(0));
    let conference = platform.conference(
        0x5eed_0000 + run as u64,
        Person::with_extension(HOST, "122", "62295300122"),
    );
    let driver = runtime.spawn({
        let (conference, done, steps) = (conference.clone(), done.clone(), steps.clone());
        async move {
            conference.start().await;
            let mut callers: Vec<Option<CallerRef>> = vec![None; CALLERS];
            for step in steps {
                conference.advance(Duration::from_secs(7));
                match step {
                    Step::Merge(i) => callers[i] = Some(conference.call_and_merge(caller(i)).await),
                    Step::HangUp(i) => {
                        let who = callers[i].expect("merged before hanging up");
                        conference.hang_up(who, LeaveSignal::Both).await;
                    }
                }
                done.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(PACE).await;
            }
            callers
        }
    });

    // --- the kill, mid-script --------------------------------------------------------------
    let deadline = Instant::now() + START_TIMEOUT;
    while done.load(Ordering::SeqCst) < report.kill_after_steps && Instant::now() < deadline {
        std::thread::sleep(Duration::from_micros(200));
    }
    std::thread::sleep(Duration::from_micros(report.kill_jitter_us));
    report.sent_before_kill = platform.ws_stats().notifications;
    let status = first.kill_hard(KILL_TIMEOUT);
    assert_eq!(status.signal(), Some(9), "run {run}: {status}");

    // --- the restart, while the conference goes on -------------------------------------------
    let mut second = start(&sandbox, &store, &platform);
    let callers = runtime
        .block_on(async { tokio::time::timeout(START_TIMEOUT, driver).await })
        .expect("the script finishes")
        .expect("the script does not panic");
    // Each caller by the conference-side party ringside keys participants on.
    let callers: Vec<Expected> = callers
        .iter()
        .enumerate()
        .map(|(i, who)| {
            let who = who.expect("every caller was merged");
            Expected {
                name: caller(i).name,
                party: conference.participant_id(who),
                original: conference.original_ids(who).1,
                on_call: conference.is_present(who),
            }
        })
        .collect();
    // Caught up: every caller's join has been announced (by name, or as an unknown caller for
    // those whose naming notifications died with the process), then quiet.
    let caught_up = Instant::now() + Duration::from_secs(20);
    while Instant::now() < caught_up {
        let both = [&first.stdout_seen[..], &second.stdout_seen[..]].concat();
        let named = lines_by_caller(&both, JOINED);
        let unknown = both
            .iter()
            .filter(|l| l.starts_with("An unknown caller joined"))
            .count();
        let announced = callers
            .iter()
            .filter(|c| named.contains_key(&c.name))
            .count()
            + unknown;
        if announced >= callers.len()
            && second.settle(Duration::from_millis(1500), Duration::from_secs(5))
        {
            break;
        }
        second.settle(Duration::from_millis(200), Duration::from_secs(1));
    }
    let exit = second.terminate(STOP_TIMEOUT);
    assert_eq!(exit.code(), Some(0), "run {run}: graceful stop: {exit}");
    let stats = platform.ws_stats();
    report.sent_total = stats.notifications;
    report.recovered = stats.recovered;
    report.subscriptions = stats.subscribed;
    runtime.block_on(platform.stop());
    let transcript = format!(
        "--- first run\n{}\n--- second run\n{}",
        first.stdout_seen.join("\n"),
        second.stdout_seen.join("\n")
    );
    let second_stderr = second.stderr_seen.join("\n");
    assert!(
        !second_stderr.contains("panicked"),
        "run {run}: {second_stderr}"
    );
    assert!(
        report.recovered >= 1,
        "run {run}: the restart did not recover the session ({stats:?}):\n{second_stderr}"
    );
    assert_eq!(
        report.subscriptions, 1,
        "run {run}: the recovered session's subscription was not kept ({stats:?})"
    );

    // --- the restored detector state -----------------------------------------------------------
    let state = runtime.block_on(async {
        let opened = Store::open(&store).expect("opening the store after the runs");
        let state = opened.detector_rows().await.unwrap();
        opened.close().await.unwrap();
        state
    });
    assert!(
        !state.is_empty(),
        "run {run}: no detector state was committed"
    );
    let detector =
        detector_from_rows(DetectorConfig::default(), state).expect("the stored state parses");
    let views = detector.views();
    assert_eq!(views.len(), 1, "run {run}: one conference: {views:#?}");
    let view = &views[0];
    assert_eq!(
        view.joined as usize,
        view.participants.len(),
        "run {run}: {} joins counted for {} participants (applied twice?)",
        view.joined,
        view.participants.len()
    );
    // Participant id → (name, live), as many times as the state holds it.
    let mut held: BTreeMap<String, Vec<(Option<String>, bool)>> = BTreeMap::new();
    for participant in &view.participants {
        held.entry(participant.id.as_str().to_owned())
            .or_default()
            .push((participant.identity.name.clone(), participant.live));
    }
    let mut wrong = Vec::new();
    for expected in &callers {
        match held.get(&expected.party).map(Vec::as_slice) {
            Some([(name, live)]) if *live == expected.on_call => match name {
                Some(name) if *name == expected.name => {}
                None => report.unnamed += 1,
                Some(other) => wrong.push(format!("{} is held as {other}", expected.name)),
            },
            found => wrong.push(format!(
                "{} ({}, on the call: {}) is held as {found:?}",
                expected.name, expected.party, expected.on_call
            )),
        }
    }
    let strangers: Vec<&String> = held
        .keys()
        .filter(|party| !callers.iter().any(|c| &c.party == *party))
        .collect();
    assert!(
        wrong.is_empty() && strangers.is_empty(),
        "run {run}: the state disagrees with the platform: {wrong:#?}; never merged: {strangers:?}\n{report:?}\n{transcript}"
    );
    // A caller may be nameless only when the committed notifications do not both name them
    // and link their call to the conference party: the rest died with the process (RingCentral
    // re-sends only what it held back after noticing the drop), and a reconciliation read
    // neither names nor links conference parties.
    let bodies: Vec<String> = {
        let conn = rusqlite::Connection::open(&store).unwrap();
        let mut statement = conn.prepare("SELECT body FROM inbox").unwrap();
        statement
            .query_map([], |r| r.get::<_, Vec<u8>>(0))
            .unwrap()
            .map(|body| String::from_utf8_lossy(&body.unwrap()).into_owned())
            .collect()
    };
    let nameless: Vec<&String> = callers
        .iter()
        .filter(|c| held[&c.party][0].0.is_none() && c.named_and_linked(&bodies))
        .map(|c| &c.name)
        .collect();
    report.unnamed_yet_named_in_inbox = nameless.len();
    assert!(
        nameless.is_empty(),
        "run {run}: callers committed notifications name and link are nameless: {nameless:?}\n{report:?}\n{transcript}"
    );
    report.joined = callers.len();
    report.left = callers.iter().filter(|c| !c.on_call).count();

    // --- announcements over both runs ----------------------------------------------------------
    let both = [&first.stdout_seen[..], &second.stdout_seen[..]].concat();
    let joins = lines_by_caller(&both, JOINED);
    let leaves = lines_by_caller(&both, " left after ");
    let drops = lines_by_caller(&both, " dropped off the call");
    // A join is announced by name, or as "An unknown caller" when the caller's naming
    // notification came after a reconciliation had already shown their conference-side party
    // (the name follows in later lines) or died with the process.
    let unknown_joins = both
        .iter()
        .filter(|line| line.starts_with("An unknown caller joined"))
        .count();
    let unannounced: Vec<&String> = callers
        .iter()
        .filter(|c| !joins.contains_key(&c.name))
        .map(|c| &c.name)
        .collect();
    assert!(
        unannounced.len() <= unknown_joins,
        "run {run}: joins never announced: {unannounced:?} ({unknown_joins} unknown callers joined)\n{report:?}\n{transcript}"
    );
    let silent_leaves: Vec<&String> = callers
        .iter()
        .filter(|c| {
            !c.on_call
                && held[&c.party][0].0.is_some()
                && !leaves.contains_key(&c.name)
                && !drops.contains_key(&c.name)
        })
        .map(|c| &c.name)
        .collect();
    assert!(
        silent_leaves.is_empty(),
        "run {run}: leaves never announced: {silent_leaves:?}\n{report:?}\n{transcript}"
    );
    report.join_lines = joins.values().sum();
    report.join_lines_duplicated = joins.values().filter(|&&n| n > 1).count();
    report.leave_lines = leaves.values().sum::<usize>() + drops.values().sum::<usize>();
    report.seconds = began.elapsed().as_secs_f64();
    report
}

#[test]
fn a_sigkill_mid_conference_loses_and_doubles_nothing_over_the_websocket() {
    let seed = seed();
    println!("websocket crash test seed {seed} (RINGSIDE_CRASH_SEED={seed} replays it)");
    let mut rng = Rng(seed);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for run in 1..=SCENARIOS {
        let r = scenario(run, &mut rng, &runtime);
        println!(
            "run {run}: killed after {} of {} steps + {} us, {} notifications sent by then, {} in all; \
             recovered {}, subscriptions {}; {} callers ({} left, {} unnamed, {} of them named and linked in the inbox): join lines {} ({} duplicated), \
             leave lines {}; {:.1} s",
            r.kill_after_steps,
            r.steps,
            r.kill_jitter_us,
            r.sent_before_kill,
            r.sent_total,
            r.recovered,
            r.subscriptions,
            r.joined,
            r.left,
            r.unnamed,
            r.unnamed_yet_named_in_inbox,
            r.join_lines,
            r.join_lines_duplicated,
            r.leave_lines,
            r.seconds,
        );
    }
}
