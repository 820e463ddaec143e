//! The detector alone, on one thread: a synthetic day of a 1,000-agent call centre
//! (`support/day.rs`) applied input by input to a fresh `Detector`, in inputs applied per second.
//! See `docs/performance.md`.
//!
//! `cargo bench --features bench --bench detector`

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ringside::conference::{ConferenceEvent, Detector, DetectorConfig, EventKind, Input};
use std::hint::black_box;

#[path = "support/day.rs"]
mod day;

use day::{CALL_CENTRE_DAY, Day};

/// What the day made the detector say.
#[derive(Debug, Default)]
struct Said {
    started: usize,
    joined: usize,
    left: usize,
    ended: usize,
    /// Joins into something that is not one of the day's conferences (a plain call, a transfer).
    stray_joins: usize,
}

/// How many inputs the pipeline applies before it commits (its `MAX_APPLIED`).
const PIPELINE_BATCH: usize = 256;

/// Applies every input; with `take_rows`, hands over the changed rows (serialized) every
/// `PIPELINE_BATCH` inputs, as the pipeline's commits do.
fn replay(inputs: Vec<Input>, take_rows: bool) -> (Detector, Vec<ConferenceEvent>) {
    let mut detector = Detector::new(DetectorConfig::default());
    let mut events = Vec::new();
    for (n, input) in inputs.into_iter().enumerate() {
        events.extend(detector.apply(input));
        if take_rows && n % PIPELINE_BATCH == PIPELINE_BATCH - 1 {
            black_box(detector.take_changes().expect("rows serialize"));
        }
    }
    (detector, events)
}

fn tally(events: &[ConferenceEvent]) -> Said {
    let mut said = Said::default();
    for event in events {
        match &event.kind {
            EventKind::ConferenceStarted { .. } => said.started += 1,
            EventKind::ParticipantJoined { .. } => {
                said.joined += 1;
                if !event.conference_id.as_str().starts_with("s-conf-") {
                    said.stray_joins += 1;
                }
            }
            EventKind::ParticipantLeft { .. } => said.left += 1,
            EventKind::ConferenceEnded { .. } => said.ended += 1,
        }
    }
    said
}

/// The day must be worth measuring: every conference starts and ends, (nearly) every merged
/// caller joins and leaves once, and no plain call or transfer produces anything.
fn check(day: &Day) {
    let (_, events) = replay(day.inputs.clone(), true);
    let said = tally(&events);
    let expected = day.expected;
    println!(
        "synthetic day: {} inputs ({} conferences with {} callers merged, {} plain calls, {} transfers, \
         {} snapshots, {} ticks, {} duplicate deliveries, {} neighbours swapped)",
        day.inputs.len(),
        expected.conferences,
        expected.joins,
        expected.plain_calls,
        expected.transfers,
        expected.snapshots,
        expected.ticks,
        expected.duplicates,
        expected.swaps,
    );
    println!(
        "detector said: {} started, {} joined, {} left, {} ended ({} events)",
        said.started,
        said.joined,
        said.left,
        said.ended,
        events.len()
    );
    assert_eq!(
        said.started, expected.conferences,
        "every conference starts"
    );
    assert_eq!(said.ended, expected.conferences, "every conference ends");
    assert_eq!(
        said.stray_joins, 0,
        "plain calls and transfers produce no join"
    );
    // A swap can put a caller's hang-up before their merge: then, by the rules, they never join.
    assert!(
        said.joined * 100 >= expected.joins * 98 && said.joined <= expected.joins,
        "joins: {} of {} merged callers",
        said.joined,
        expected.joins
    );
    assert_eq!(
        said.left, said.joined,
        "everyone who joined leaves by the end of the day"
    );
}

fn bench(c: &mut Criterion) {
    let day = Day::generate(CALL_CENTRE_DAY);
    check(&day);
    let mut group = c.benchmark_group("detector");
    group.sample_size(10);
    group.throughput(Throughput::Elements(day.inputs.len() as u64));
    group.bench_function("synthetic day, 1000 agents", |b| {
        // The inputs are cloned outside the clock; the detector and its events are dropped
        // outside it too (criterion drops `iter_batched` outputs after timing).
        b.iter_batched(
            || day.inputs.clone(),
            |inputs| black_box(replay(inputs, false)),
            BatchSize::PerIteration,
        )
    });
    // What the pipeline asks of the detector: the same day, and its changed rows serialized
    // for every commit.
    group.bench_function("synthetic day, rows taken every 256 inputs", |b| {
        b.iter_batched(
            || day.inputs.clone(),
            |inputs| black_box(replay(inputs, true)),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
