//! The one decode of a notification (`ringside::pipeline::decode`, what the webhook and the
//! WebSocket call before committing: the envelope, the body as the type its `event` names, and
//! the usability checks of `SessionUpdate::from_notification`), over every real notification in
//! `tests/fixtures/ringcentral/`, in notifications per second. See `docs/performance.md`.
//!
//! `cargo bench --features bench --bench parse`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ringside::pipeline::{Decoded, decode};
use std::hint::black_box;
use std::path::{Path, PathBuf};

/// Every `.json` file, and every line of every `.jsonl` file, under `dir`.
fn documents(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("reading {}: {error}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            documents(&path, out);
            continue;
        }
        let bytes = std::fs::read(&path).expect("a fixture");
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => out.push((path, bytes)),
            Some("jsonl") => out.extend(
                bytes
                    .split(|b| *b == b'\n')
                    .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
                    .map(|line| (path.clone(), line.to_vec())),
            ),
            _ => {}
        }
    }
}

/// The fixtures that are notifications (whatever the decode makes of them); REST objects and the
/// deliberately malformed seed are not, and are left out.
fn notifications() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ringcentral");
    let mut all = Vec::new();
    documents(&root, &mut all);
    let (mut usable, mut ignored, mut unusable, mut not_notifications) = (0, 0, 0, 0);
    let mut kept = Vec::new();
    for (_, bytes) in all {
        match decode(&bytes) {
            Ok(Decoded::Usable { .. }) => usable += 1,
            Ok(Decoded::Ignored { .. }) => ignored += 1,
            Ok(Decoded::Unusable { .. }) => unusable += 1,
            Err(_) => {
                not_notifications += 1;
                continue;
            }
        }
        kept.push(bytes);
    }
    let bytes: usize = kept.iter().map(Vec::len).sum();
    println!(
        "fixtures: {} notifications ({usable} usable, {ignored} ignored, {unusable} quarantined), \
         {} bytes in all; {not_notifications} other documents left out",
        kept.len(),
        bytes
    );
    assert!(
        usable >= 20,
        "the real notifications are in tests/fixtures/ringcentral"
    );
    kept
}

fn bench(c: &mut Criterion) {
    let notifications = notifications();
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(notifications.len() as u64));
    group.bench_function("decode every real fixture", |b| {
        b.iter(|| {
            for bytes in &notifications {
                let _ = black_box(decode(black_box(bytes)));
            }
        })
    });
    let seed = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ringcentral/seed/participant-added.json");
    let seed = std::fs::read(seed).expect("the seed");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode seed/participant-added", |b| {
        b.iter(|| black_box(decode(black_box(&seed))))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
