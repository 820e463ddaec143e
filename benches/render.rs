//! Rendering announcements: the Discord message contents of a batch of events
//! (`discord::message::announcement`: the phrasebook's markdown lines, grouped and split) and
//! each message's JSON body (`discord::message::body`), and the plain lines of local mode
//! (`present::plain`), in events rendered per second. See `docs/performance.md`.
//!
//! The events and the roster they are rendered from come from a small synthetic day
//! (`support/day.rs`, 50 agents, 1 hour) replayed through the detector without its ticks, so
//! every conference is still in the roster, as it is when the announcer renders a batch.
//!
//! `render/timeline png` is the picture attached when a conference ends (`present::timeline::png`:
//! drawn and PNG-encoded), for a one-hour conference with a host and 3 or 50 callers, in pictures
//! per second; the bench prints each picture's size once.
//!
//! `cargo bench --features bench --bench render` (`-- timeline` for the pictures alone)

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ringside::conference::{
    ConferenceEvent, ConferenceId, Detector, DetectorConfig, EventKind, Input, Roster,
};
use ringside::config::PhoneNumbers;
use ringside::discord::message;
use ringside::present::timeline::{self, Row, Span, Timeline};
use ringside::present::{phrase, plain};
use std::collections::BTreeMap;
use std::hint::black_box;

// Only the generator is used here; the expectations are `benches/detector.rs`'s.
#[allow(dead_code)]
#[path = "support/day.rs"]
mod day;

/// Events and the roster as the announcer would see them.
fn story() -> (Vec<ConferenceEvent>, Roster) {
    let day = day::Day::generate(day::Shape {
        agents: 50,
        hours: 1,
        seed: 7,
    });
    let mut detector = Detector::new(DetectorConfig::default());
    let roster = Roster::new();
    let mut events = Vec::new();
    for input in day.inputs {
        if matches!(input, Input::Tick { .. }) {
            continue;
        }
        events.extend(detector.apply(input));
        let dirty = detector.take_dirty();
        roster.sync(&detector, &dirty);
    }
    (events, roster)
}

/// The batches an announcer renders: one join on its own (`announce.coalesce_ms = 0`, or a quiet
/// channel), one conference's whole story, and a backlog across many conferences.
fn batches(events: &[ConferenceEvent]) -> Vec<(&'static str, Vec<&ConferenceEvent>)> {
    let join = events
        .iter()
        .find(|event| matches!(event.kind, EventKind::ParticipantJoined { .. }))
        .expect("the day has a join");
    let mut by_conference: BTreeMap<&ConferenceId, Vec<&ConferenceEvent>> = BTreeMap::new();
    for event in events {
        by_conference
            .entry(&event.conference_id)
            .or_default()
            .push(event);
    }
    let busiest = by_conference
        .values()
        .max_by_key(|events| events.len())
        .expect("the day has a conference")
        .clone();
    let backlog: Vec<&ConferenceEvent> = events.iter().skip(events.len() / 3).take(60).collect();
    let conferences = backlog
        .iter()
        .map(|event| &event.conference_id)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    println!(
        "batches: 1 join; one conference's {} events; a backlog of {} events across {conferences} conferences",
        busiest.len(),
        backlog.len()
    );
    vec![
        ("one join", vec![join]),
        ("one conference", busiest),
        ("backlog", backlog),
    ]
}

/// A one-hour conference: the host throughout, and `callers` callers joining over the first half
/// hour, some leaving and coming back, every seventh removed.
fn conference(callers: usize) -> Timeline {
    const MINUTE: i64 = 60_000;
    let hour = 60 * MINUTE;
    let host = Row {
        label: "Agent 122".to_owned(),
        host: true,
        spans: vec![Span {
            from_ms: 0,
            to_ms: hour,
            removed: false,
        }],
    };
    let rows = (1..=callers as i64).map(|caller| {
        let joined = caller * 37 % 30 * MINUTE;
        let left = (joined + (10 + caller * 13 % 40) * MINUTE).min(hour);
        let mut spans = vec![Span {
            from_ms: joined,
            to_ms: left,
            removed: caller % 7 == 0,
        }];
        if caller % 3 == 0 && left + 5 * MINUTE < hour {
            spans.push(Span {
                from_ms: left + 5 * MINUTE,
                to_ms: hour,
                removed: false,
            });
        }
        Row {
            label: format!("Caller {caller} (•••{:04})", caller * 1119 % 10_000),
            host: false,
            spans,
        }
    });
    Timeline {
        title: "Conference · host Agent 122 · 2026-12-08 14:03 UTC".to_owned(),
        duration_ms: hour,
        rows: std::iter::once(host).chain(rows).collect(),
    }
}

fn bench_timeline(c: &mut Criterion) {
    let mut group = c.benchmark_group("render");
    for callers in [3, 50] {
        let conference = conference(callers);
        let picture = timeline::draw(&conference);
        println!(
            "timeline, {callers} callers: {}×{} px, {} bytes of PNG",
            picture.width,
            picture.height,
            timeline::png(&conference).len()
        );
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(
            BenchmarkId::new("timeline png", format!("{callers} callers")),
            &conference,
            |b, conference| b.iter(|| timeline::png(black_box(conference)).len()),
        );
    }
    group.finish();
}

fn bench(c: &mut Criterion) {
    let (events, roster) = story();
    let batches = batches(&events);
    let style = PhoneNumbers::Masked;
    let mut group = c.benchmark_group("render");
    for (name, batch) in &batches {
        group.throughput(Throughput::Elements(batch.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("discord message", name),
            batch,
            |b, batch| {
                b.iter(|| {
                    let contents = message::announcement(black_box(batch), &roster, style);
                    contents
                        .iter()
                        .enumerate()
                        .map(|(index, content)| {
                            message::body(content, &message::nonce("bench", index as u64)).len()
                        })
                        .sum::<usize>()
                })
            },
        );
        group.bench_with_input(BenchmarkId::new("plain lines", name), batch, |b, batch| {
            b.iter(|| {
                batch
                    .iter()
                    .map(|event| plain::line(&phrase(black_box(event), &roster), style).len())
                    .sum::<usize>()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench, bench_timeline);
criterion_main!(benches);
