//! Crash test (b) (the README's Durability): exactly-once announcements to Discord across a SIGKILL.
//!
//! `ringside run` is configured against the fake Discord of `tests/it/support/discord` (endpoint
//! transport, so no gateway) with RingCentral in local mode. A burst of distinct participant-joined
//! notifications over many conferences makes the announcer busy; the fake's channel is slow (every
//! created message's answer is held back a few milliseconds, after the message exists) and
//! rate-limited (`set_channel_limit`, and two injected 429s), so sends are in flight. The process is SIGKILLed at a
//! random moment while it is sending: right after the fake stored the K-th message (K random),
//! plus a random jitter of up to twice the held-back time, so some kills land while Discord has
//! the message and ringside does not know it yet. It is restarted on the same store and left until
//! everything is delivered (every acknowledged join is in the channel and the store, read-only,
//! holds no pending batch, undelivered outbox row or unprocessed inbox row), then stopped
//! gracefully. Then:
//!
//! - every acknowledged notification's join is in the channel exactly once (none lost);
//! - no caller's join is there twice, and each conference started once (none posted twice);
//! - nothing the burst never sent is announced;
//! - the store still has nothing pending after the stop;
//! - the fake saw no protocol violation.
//!
//! The seed is printed (`RINGSIDE_CRASH_SEED` replays one). Run with `-- --nocapture` for the
//! numbers: announcements expected vs delivered, messages posted, POSTs, 429s, and resends
//! deduplicated by nonce (a POST whose nonce was seen before).

use crate::support::discord::{
    APPLICATION_ID, BOT_TOKEN, CHANNEL_ID, FakeDiscord, FakeOptions, GUILD_ID, interactions,
};
use crate::support_cli::crash::{ACKED, Burst, REFUSED, Rng, UNSENT, prepare, run_command, seed};
use crate::support_cli::{Sandbox, Service};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const KILL_TIMEOUT: Duration = Duration::from_secs(10);
/// The wait for the K-th message gives up (and fails) after this long.
const SENDING_DEADLINE: Duration = Duration::from_secs(20);
/// With the burst done, a channel this long without a new message has everything.
const QUIET: Duration = Duration::from_secs(1);
/// After the restart, everything acknowledged is in the channel within this.
const DELIVERY_DEADLINE: Duration = Duration::from_secs(30);

const POOL: usize = 1_200;
const SENDERS: usize = 2;
const CONFERENCES: usize = 24;
const SCENARIOS: usize = 5;
/// Coalescing window of the service, in milliseconds.
const COALESCE_MS: u64 = 10;
/// How long the fake holds back the answer to a created message.
const ANSWER_DELAY: Duration = Duration::from_millis(25);
/// The fake's enforced limit on message creation in the channel.
const CHANNEL_LIMIT: (u32, Duration) = (4, Duration::from_millis(150));
/// The kill comes after the K-th stored message, K in this range.
const KILL_AFTER_MESSAGES: (u64, u64) = (3, 40);

fn name(run: usize, i: usize) -> String {
    format!("Caller R{run}N{i:05}")
}

fn message_count(fake: &FakeDiscord) -> usize {
    fake.with_state(|s| s.messages.get(&CHANNEL_ID).map_or(0, Vec::len))
}

/// `ringside run` with Discord at the fake and RingCentral in local mode, store at `store`.
fn start(sandbox: &Sandbox, store: &Path, fake: &FakeDiscord) -> Service {
    let mut command = run_command(sandbox, store, COALESCE_MS);
    command
        .env("RINGSIDE_DISCORD__TOKEN", BOT_TOKEN)
        .env(
            "RINGSIDE_DISCORD__APPLICATION_ID",
            APPLICATION_ID.to_string(),
        )
        .env("RINGSIDE_DISCORD__GUILD_ID", GUILD_ID.to_string())
        .env("RINGSIDE_DISCORD__CHANNEL_ID", CHANNEL_ID.to_string())
        .env("RINGSIDE_DISCORD__API_URL", fake.base_url())
        // Exactly-once of the lines is what this test counts; the cards' restarts are
        // `cards::after_a_restart_the_same_card_is_edited`.
        .env("RINGSIDE_ANNOUNCE__ROSTER_CARD", "false")
        .env(
            "RINGSIDE_DISCORD__PUBLIC_KEY",
            interactions::public_key_hex(),
        );
    Service::start(command)
}

/// Caller names of the join lines of `content` (`➕ **Caller R1N00042** (…) joined · …`).
fn joined_names(content: &str) -> Vec<String> {
    content
        .lines()
        .filter(|line| line.starts_with("➕ ") && line.contains(" joined"))
        .map(|line| {
            let rest = line.trim_start_matches("➕ ").trim_start_matches("**");
            rest.split("**").next().unwrap_or(rest).to_owned()
        })
        .collect()
}

/// (pending batches, undelivered outbox rows, unprocessed inbox rows), read-only.
fn peek_store(store: &Path) -> Option<(usize, usize, usize)> {
    let conn =
        rusqlite::Connection::open_with_flags(store, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .ok()?;
    conn.query_row(
        "SELECT (SELECT count(*) FROM batches WHERE state = 'pending'),
                (SELECT count(*) FROM outbox WHERE delivered_at_ms IS NULL),
                (SELECT count(*) FROM inbox WHERE processed_at_ms IS NULL)",
        [],
        |r| {
            Ok((
                r.get::<_, i64>(0)? as usize,
                r.get::<_, i64>(1)? as usize,
                r.get::<_, i64>(2)? as usize,
            ))
        },
    )
    .ok()
}

#[derive(Debug, Default)]
struct Report {
    kill_after_messages: usize,
    kill_jitter_us: u64,
    answers_held_at_kill: usize,
    acked: usize,
    sent: usize,
    burst_done_at_kill: bool,
    pending_batches_at_crash: Option<usize>,
    undelivered_at_crash: Option<usize>,
    expected: usize,
    delivered: usize,
    delivered_unacked: usize,
    messages_first: usize,
    messages: usize,
    posts: usize,
    rate_limited: usize,
    nonce_resends: usize,
    resent_at_restart: usize,
    seconds: f64,
}

fn scenario(run: usize, rng: &mut Rng, runtime: &tokio::runtime::Runtime) -> Report {
    let began = Instant::now();
    let mut report = Report {
        kill_after_messages: rng.between(KILL_AFTER_MESSAGES.0, KILL_AFTER_MESSAGES.1) as usize,
        kill_jitter_us: rng.between(0, 2 * ANSWER_DELAY.as_micros() as u64),
        ..Report::default()
    };
    let fake = runtime.block_on(FakeDiscord::start_with(FakeOptions {
        channel_limit: Some(CHANNEL_LIMIT),
        ..FakeOptions::default()
    }));
    fake.set_message_delay(Some(ANSWER_DELAY));
    // The first two sends are rate-limited too: resent after the wait with the same nonce.
    fake.rate_limit_next(2, 0.05);
    let prepared = prepare("crashd", run, POOL, CONFERENCES, |i| name(run, i));
    let sandbox = Sandbox::new();
    let store = sandbox.path().join("crash.sqlite3");

    // --- first run: the burst, the announcer busy, the kill ---------------------------------
    let mut first = start(&sandbox, &store, &fake);
    let banner = first.banner(START_TIMEOUT);
    let token = banner
        .token
        .clone()
        .unwrap_or_else(|| panic!("no generated token in the banner: {banner:?}"));
    let mut burst = Burst::start(
        banner.webhook.clone(),
        token,
        prepared.iter().map(|p| p.body.clone()).collect(),
        SENDERS,
    );
    let waiting = Instant::now();
    // A burst that coalesces into fewer than K messages ends the wait once it is done and the
    // channel has gone quiet: the kill then comes after the last post.
    let mut last_count = 0;
    let mut last_growth = Instant::now();
    while message_count(&fake) < report.kill_after_messages {
        let count = message_count(&fake);
        if count != last_count {
            (last_count, last_growth) = (count, Instant::now());
        } else if burst.done.load(Ordering::SeqCst) && last_growth.elapsed() > QUIET {
            break;
        }
        assert!(
            waiting.elapsed() < SENDING_DEADLINE,
            "run {run}: only {} of {} messages within {SENDING_DEADLINE:?}; violations {:#?}",
            message_count(&fake),
            report.kill_after_messages,
            fake.violations()
        );
        std::thread::sleep(Duration::from_micros(200));
    }
    let jitter = Instant::now() + Duration::from_micros(report.kill_jitter_us);
    while Instant::now() < jitter {
        std::hint::spin_loop();
    }
    let killed_at = Instant::now();
    report.burst_done_at_kill = burst.done.load(Ordering::SeqCst);
    let status = first.kill_hard(KILL_TIMEOUT);
    report.answers_held_at_kill = fake
        .requests()
        .iter()
        .filter(|r| {
            r.method == "POST"
                && r.template.as_deref() == Some("/channels/{channel_id}/messages")
                && r.status == 200
                && r.received + ANSWER_DELAY > killed_at
        })
        .count();
    burst.finish();
    assert_eq!(
        status.signal(),
        Some(9),
        "run {run}: died of SIGKILL: {status}"
    );
    report.messages_first = message_count(&fake);
    if let Some((pending, undelivered, _)) = peek_store(&store) {
        report.pending_batches_at_crash = Some(pending);
        report.undelivered_at_crash = Some(undelivered);
    }
    let outcome = burst.outcomes();
    report.sent = outcome.iter().filter(|&&o| o != UNSENT).count();
    report.acked = outcome.iter().filter(|&&o| o == ACKED).count();
    assert!(
        outcome.iter().all(|&o| o != REFUSED),
        "run {run}: a notification was answered neither 200 nor not at all"
    );
    // A new process cannot know the 429 its predecessor was given; Discord would just answer
    // 429 again. The fake's memory of it is dropped so it does not count that as a violation.
    fake.set_channel_limit(Some(CHANNEL_LIMIT));

    // --- second run: resend, deliver the rest, stop gracefully --------------------------------
    let expected: BTreeSet<String> = (0..POOL)
        .filter(|&i| outcome[i] == ACKED)
        .map(|i| prepared[i].name.clone())
        .collect();
    let mut second = start(&sandbox, &store, &fake);
    second.banner(START_TIMEOUT);
    let waiting = Instant::now();
    loop {
        let delivered: BTreeSet<String> = fake
            .contents(CHANNEL_ID)
            .iter()
            .flat_map(|c| joined_names(c))
            .collect();
        let missing = expected.difference(&delivered).count();
        // Everything is delivered: every acknowledged join in the channel, and nothing left
        // unprocessed, unannounced or unsent in the store.
        let left = peek_store(&store);
        if missing == 0 && left == Some((0, 0, 0)) {
            break;
        }
        assert!(
            waiting.elapsed() < DELIVERY_DEADLINE,
            "run {run}: {missing} acknowledged joins still not in the channel after {DELIVERY_DEADLINE:?}; \
             (pending batches, undelivered rows, unprocessed rows) {left:?}\n{report:?}\nviolations {:#?}",
            fake.violations()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let exit = second.terminate(STOP_TIMEOUT);
    assert_eq!(exit.code(), Some(0), "run {run}: graceful stop: {exit}");
    let stderr = second.stderr_seen.join("\n");
    assert!(!stderr.contains("panicked"), "run {run}: {stderr}");
    report.resent_at_restart = second
        .stderr_seen
        .iter()
        .find(|l| l.contains("sending the announcements committed before the restart"))
        .and_then(|l| l.split("count=").nth(1))
        .and_then(|c| {
            c.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .ok()
        })
        .unwrap_or(0);

    // --- what the channel and the store hold ---------------------------------------------------
    let left = peek_store(&store).expect("the store reads");
    assert_eq!(
        left,
        (0, 0, 0),
        "run {run}: pending batches / undelivered outbox rows / unprocessed inbox rows left after a graceful stop\n{}",
        second.stderr_seen[second.stderr_seen.len().saturating_sub(40)..].join("\n")
    );
    let contents = fake.contents(CHANNEL_ID);
    let mut joins: BTreeMap<String, usize> = BTreeMap::new();
    let mut starts = 0;
    for content in &contents {
        for who in joined_names(content) {
            *joins.entry(who).or_insert(0) += 1;
        }
        starts += content.matches("📞 **Conference started**").count();
    }
    let twice: Vec<(&String, &usize)> = joins.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "run {run}: joins announced more than once: {twice:?}\n{report:?}"
    );
    let lost: Vec<&String> = expected
        .iter()
        .filter(|n| !joins.contains_key(*n))
        .collect();
    assert!(
        lost.is_empty(),
        "run {run}: acknowledged joins lost: {lost:?}"
    );
    let sent_names: BTreeSet<&str> = (0..POOL)
        .filter(|&i| outcome[i] != UNSENT)
        .map(|i| prepared[i].name.as_str())
        .collect();
    let strangers: Vec<&String> = joins
        .keys()
        .filter(|n| !sent_names.contains(n.as_str()))
        .collect();
    assert!(
        strangers.is_empty(),
        "run {run}: announced joins that were never sent: {strangers:?}"
    );
    let conferences: BTreeSet<&str> = (0..POOL)
        .filter(|&i| joins.contains_key(&prepared[i].name))
        .map(|i| prepared[i].conference.as_str())
        .collect();
    assert_eq!(
        starts,
        conferences.len(),
        "run {run}: conference starts announced vs conferences joined"
    );
    let violations = fake.violations();
    assert!(
        violations.is_empty(),
        "run {run}: the fake Discord saw violations: {violations:#?}"
    );

    // --- the numbers ---------------------------------------------------------------------------
    let mut seen = BTreeSet::new();
    for request in fake.requests().iter().filter(|r| {
        r.method == "POST" && r.template.as_deref() == Some("/channels/{channel_id}/messages")
    }) {
        report.posts += 1;
        match request.status {
            429 => report.rate_limited += 1,
            200 => {
                assert_eq!(request.body["enforce_nonce"], Value::Bool(true));
                if !seen.insert(request.body["nonce"].to_string()) {
                    report.nonce_resends += 1;
                }
            }
            other => panic!("run {run}: a message POST was answered {other}"),
        }
    }
    report.expected = expected.len();
    report.delivered = joins.len();
    report.delivered_unacked = joins.keys().filter(|n| !expected.contains(*n)).count();
    report.messages = contents.len();
    assert_eq!(
        report.messages,
        seen.len(),
        "run {run}: one message per distinct nonce"
    );
    report.seconds = began.elapsed().as_secs_f64();
    runtime.block_on(async move { drop(fake) });
    report
}

#[test]
fn discord_announcements_are_exactly_once_across_a_sigkill() {
    let began = Instant::now();
    let seed = seed();
    println!("crash test (b) seed {seed} (RINGSIDE_CRASH_SEED={seed} replays these kill moments)");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut rng = Rng(seed);
    let mut resends = 0;
    for run in 1..=SCENARIOS {
        let r = scenario(run, &mut rng, &runtime);
        resends += r.nonce_resends;
        println!(
            "run {run}: killed after message {} + {} us ({} answer(s) held back, burst {}); \
             notifications sent {}, acked {}; at crash: {} messages, pending batches {}, undelivered rows {}; \
             resent at restart {}; announcements expected {} vs delivered {} ({} never acked, 0 twice); \
             messages posted {}, message POSTs {} ({} answered 429), resends deduplicated by nonce {}; {:.1} s",
            r.kill_after_messages,
            r.kill_jitter_us,
            r.answers_held_at_kill,
            if r.burst_done_at_kill {
                "done"
            } else {
                "still going"
            },
            r.sent,
            r.acked,
            r.messages_first,
            r.pending_batches_at_crash
                .map_or("?".into(), |n| n.to_string()),
            r.undelivered_at_crash.map_or("?".into(), |n| n.to_string()),
            r.resent_at_restart,
            r.expected,
            r.delivered,
            r.delivered_unacked,
            r.messages,
            r.posts,
            r.rate_limited,
            r.nonce_resends,
            r.seconds,
        );
    }
    println!(
        "crash test (b): {SCENARIOS} scenarios in {:.1} s, {resends} resend(s) deduplicated by nonce",
        began.elapsed().as_secs_f64()
    );
}
