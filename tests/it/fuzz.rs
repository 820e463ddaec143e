//! Fuzz-style properties: bad input never panics, is answered with a clear 4xx or quarantined,
//! and changes nothing else.
//!
//! Targets (case counts from [`cases`]):
//! 1. the webhook's parsing path as pure functions — `Envelope`, `EventKind::of`,
//!    `TelephonyNotification`, `SessionUpdate::from_notification` — over arbitrary bytes,
//!    arbitrary JSON as the `body` of an otherwise valid envelope, and mutations of the seed
//!    fixture (fields replaced, deleted, deeply nested; bytes truncated and spliced);
//! 2. the detector fed the `SessionUpdate`s that path produces from fuzzed notifications;
//! 3. the replay reader over arbitrary text, JSON lines with garbage, arrays with garbage
//!    elements and truncated documents;
//! 4. the real webhook route over HTTP (the whole app, in-process) at a lower count.
//!
//! Each property prints one summary line (to the real stderr, so `cargo test` shows it).
//!
//! `RINGSIDE_FUZZ_CASES` is the total number of cases, split among the targets in the proportions
//! of [`WEIGHTS`]; unset, it is 20,000, so that `cargo test` stays quick. The full run is a million
//! cases (what `.ci/run` runs after `cargo test`):
//!
//! ```sh
//! RINGSIDE_FUZZ_CASES=1000000 cargo test --test it fuzz::
//! ```

use crate::support;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestCaseResult, TestRunner};
use ringside::app::replay::{Format, Source, replay};
use ringside::conference::{
    ConferenceEvent, ConferenceId, Detector, EventKind as ConferenceEventKind, Input,
    ParticipantId, SessionUpdate, Timestamp, Unusable,
};
use ringside::config::PhoneNumbers;
use ringside::ringcentral::wire::{Envelope, NotificationKind as EventKind, TelephonyNotification};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashSet};
use std::fmt::Debug;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// Cases per target.
pub struct Cases {
    pub bytes: u32,
    pub json_body: u32,
    pub seed_mutations: u32,
    pub detector: u32,
    pub replay: u32,
    pub http: u32,
}

impl Cases {
    fn total(&self) -> u64 {
        [
            self.bytes,
            self.json_body,
            self.seed_mutations,
            self.detector,
            self.replay,
            self.http,
        ]
        .iter()
        .map(|&n| u64::from(n))
        .sum()
    }

    /// `total` cases split in the proportions of `self`, each rounded up (so they add up to at
    /// least `total`, and every target runs at least once).
    fn scaled_to(&self, total: u32) -> Cases {
        let weights = self.total();
        let share = |weight: u32| {
            let cases = (u64::from(total) * u64::from(weight)).div_ceil(weights);
            u32::try_from(cases).expect("a share is at most the total")
        };
        Cases {
            bytes: share(self.bytes),
            json_body: share(self.json_body),
            seed_mutations: share(self.seed_mutations),
            detector: share(self.detector),
            replay: share(self.replay),
            http: share(self.http),
        }
    }
}

/// The proportions of the targets: cheap parsing gets most cases, the detector, the replay reader
/// and the HTTP route fewer. A total equal to their sum (1,005,000) runs exactly these counts.
pub const WEIGHTS: Cases = Cases {
    bytes: 770_000,
    json_body: 100_000,
    seed_mutations: 115_000,
    detector: 5_000,
    replay: 12_000,
    http: 3_000,
};

/// The environment variable with the total number of cases.
const CASES_VAR: &str = "RINGSIDE_FUZZ_CASES";
/// The total when [`CASES_VAR`] is unset: quick enough for every `cargo test`.
const DEFAULT_TOTAL: u32 = 20_000;
/// The full run: a million cases.
const FULL_RUN: u32 = 1_000_000;

/// The cases per target for this run: [`CASES_VAR`] (or [`DEFAULT_TOTAL`]) split by [`WEIGHTS`].
/// A total of [`FULL_RUN`] or more is checked to add up to a full run.
pub fn cases() -> &'static Cases {
    static CASES: OnceLock<Cases> = OnceLock::new();
    CASES.get_or_init(|| {
        let total = match std::env::var(CASES_VAR) {
            Err(std::env::VarError::NotPresent) => DEFAULT_TOTAL,
            Ok(text) => match text.trim().parse::<u32>() {
                Ok(total) if total > 0 => total,
                _ => panic!("{CASES_VAR}={text:?}: expected a positive number of cases"),
            },
            Err(error) => panic!("{CASES_VAR}: {error}"),
        };
        let cases = WEIGHTS.scaled_to(total);
        if total >= FULL_RUN {
            assert!(
                cases.total() >= u64::from(FULL_RUN),
                "{CASES_VAR}={total} asks for a full run, but the targets add up to {}",
                cases.total()
            );
        }
        cases
    })
}

const SEED: &str = "seed/participant-added.json";
const TELEPHONY_EVENT: &str =
    "/restapi/v1.0/account/80964XXXX/extension/622953XXXXX/telephony/sessions";
/// The webhook's longest stored uuid (`MAX_UUID_LEN` in `src/ringcentral/webhook.rs`).
const MAX_UUID_LEN: usize = 256;
/// The body limit of the HTTP target's app (small, so that 413s are cheap to provoke).
const HTTP_MAX_BODY: usize = 4096;

// ---------------------------------------------------------------------------------------------
// Running a property
// ---------------------------------------------------------------------------------------------

/// How often each outcome happened, for the summary line (shows what the generators reach).
#[derive(Default)]
struct Tally(Mutex<BTreeMap<String, u64>>);

impl Tally {
    fn count(&self, what: &str) {
        let mut counts = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *counts.entry(what.to_owned()).or_default() += 1;
    }

    fn show(&self) -> String {
        let counts = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        counts
            .iter()
            .map(|(what, count)| format!("{what} {count}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Runs `test` on `cases` values of `strategy`; panics with the minimal failing input, or prints
/// one summary line (with what `tally` counted).
fn run_property<S>(
    name: &str,
    cases: u32,
    strategy: S,
    tally: &Tally,
    test: impl Fn(S::Value) -> TestCaseResult,
) where
    S: Strategy,
    S::Value: Debug,
{
    let config = Config {
        cases,
        failure_persistence: None,
        // ChaCha costs more than most targets in a debug build.
        rng_algorithm: RngAlgorithm::XorShift,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let ran = AtomicU64::new(0);
    let started = Instant::now();
    let result = runner.run(&strategy, |value| {
        ran.fetch_add(1, Ordering::Relaxed);
        test(value)
    });
    if let Err(error) = result {
        panic!("fuzz {name}: {error}");
    }
    let ran = ran.load(Ordering::Relaxed);
    // Straight to the real stderr: the harness captures only `print!`/`eprint!`.
    let _ = writeln!(
        std::io::stderr().lock(),
        "fuzz {name}: {ran} cases passed in {:.1?} ({})",
        started.elapsed(),
        tally.show()
    );
}

fn one_line(what: &str, text: &str) -> TestCaseResult {
    prop_assert!(!text.trim().is_empty(), "{what} is empty");
    prop_assert!(
        !text.contains('\n') && !text.contains('\r'),
        "{what} is not one line: {text:?}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Generators
//
// proptest's combinators are slow in a debug build (tens of µs per `prop_oneof!`), so most inputs
// are decoded from proptest-generated seeds by a small deterministic generator ([`Rng`]): cheap
// enough for a million cases, and a failure still prints the decoded input. Arbitrary JSON is
// proptest's recursive strategy ([`json_value`]) where it is the point of the target.
// ---------------------------------------------------------------------------------------------

const KEYS: &[&str] = &[
    "uuid",
    "event",
    "timestamp",
    "subscriptionId",
    "ownerId",
    "body",
    "sequence",
    "sessionId",
    "telephonySessionId",
    "serverId",
    "eventTime",
    "origin",
    "type",
    "parties",
    "accountId",
    "extensionId",
    "id",
    "direction",
    "to",
    "from",
    "status",
    "code",
    "reason",
    "description",
    "peerId",
    "partyId",
    "rcc",
    "mobilePickupData",
    "ccMailboxes",
    "srvLvl",
    "srvlvl",
    "missedCall",
    "standAlone",
    "muted",
    "conferenceRole",
    "owner",
    "phoneNumber",
    "name",
    "deviceId",
];

const WORDS: &[&str] = &[
    "",
    " ",
    "conference",
    "Conference",
    "CONFERENCE",
    "Gone",
    "Disconnected",
    "disconnected",
    "Answered",
    "Setup",
    "Proceeding",
    "Hold",
    "Parked",
    "VoiceMail",
    "Participant",
    "Host",
    "Inbound",
    "Outbound",
    "Call",
    "AttendedTransfer",
    "BlindTransfer",
    "2024-02-27T16:04:52.223Z",
    "9999-12-31T23:59:59.999999999Z",
    "0000-01-01T00:00:00Z",
    "2024-02-30T00:00:00Z",
    "2024-02-27T16:04:52.223+23:59",
    "2024-02-27T16:04:52.223-23:59",
    "-1",
    "0",
    "9223372036854775807",
    "18446744073709551616",
    "/restapi/v1.0/account/~/telephony/sessions",
    TELEPHONY_EVENT,
    "/restapi/v1.0/account/1/extension/2/telephony/sessions?x=1",
    "/restapi/v1.0/subscription/~?threshold=120&interval=60",
    "s-a0d7bfa2dd198z18deb4fcc72z184536c0000",
    "p-a0d7bfa2dd198z18deb4fcc72z184536c0000-2",
    "s-1",
    "p-1",
    "\n",
    "\r\n",
    "\u{0}",
    "\u{1b}[31m",
    "\u{2028}",
    "\u{85}",
    "é",
    "🦀",
    "\u{feff}",
];

/// A small deterministic generator (SplitMix64), decoding proptest seeds into inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True one time in `n`.
    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    fn maybe<T>(&mut self, make: impl FnOnce(&mut Rng) -> T) -> Option<T> {
        (!self.one_in(4)).then(|| make(self))
    }
}

/// Strings that matter: known wire values, ids, control characters, long ones, anything.
fn random_text(rng: &mut Rng) -> String {
    const ASCII: &[u8] = b"abcXYZ0123456789 _.:+/~-";
    const CONTROL: &[char] = &[
        '\0', '\n', '\r', '\t', '\u{1b}', '\u{7f}', '\u{85}', '\u{2028}',
    ];
    match rng.below(8) {
        0..=3 => rng.pick(WORDS).to_owned(),
        4 => (0..rng.below(25))
            .map(|_| char::from(rng.pick(ASCII)))
            .collect(),
        5 => (0..rng.below(12))
            .filter_map(|_| char::from_u32((rng.next() % 0x11_0000) as u32))
            .collect(),
        6 => rng.pick(WORDS).repeat(rng.below(300)),
        _ => (0..1 + rng.below(4)).map(|_| rng.pick(CONTROL)).collect(),
    }
}

fn random_key(rng: &mut Rng) -> String {
    if rng.one_in(5) {
        random_text(rng)
    } else {
        rng.pick(KEYS).to_owned()
    }
}

fn random_number(rng: &mut Rng) -> Value {
    match rng.below(5) {
        0 => [
            json!(0),
            json!(1),
            json!(-1),
            json!(9),
            json!(i64::MAX),
            json!(i64::MAX as u64 + 1),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(1.5),
            json!(-0.0),
            json!(1e300),
            json!(9.0),
        ][rng.below(12)]
        .clone(),
        1 => Value::from(rng.next() as i64),
        2 => Value::from(rng.next()),
        3 => Value::from(f64::from_bits(rng.next())),
        _ => Value::from(rng.below(20)),
    }
}

fn random_leaf(rng: &mut Rng) -> Value {
    match rng.below(6) {
        0 => Value::Null,
        1 => Value::Bool(rng.one_in(2)),
        2 => random_number(rng),
        _ => Value::String(random_text(rng)),
    }
}

/// Any JSON value, up to `depth` levels of arrays and objects.
fn random_json(rng: &mut Rng, depth: usize) -> Value {
    if depth == 0 || rng.one_in(2) {
        return random_leaf(rng);
    }
    let len = rng.below(5);
    if rng.one_in(2) {
        Value::Array((0..len).map(|_| random_json(rng, depth - 1)).collect())
    } else {
        Value::Object(
            (0..len)
                .map(|_| (random_key(rng), random_json(rng, depth - 1)))
                .collect(),
        )
    }
}

/// Arbitrary JSON values, with proptest's recursive strategy (leaves and keys from seeds).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = any::<u64>().prop_map(|seed| random_leaf(&mut Rng(seed)));
    let key = any::<u64>().prop_map(|seed| random_key(&mut Rng(seed)));
    leaf.prop_recursive(4, 32, 5, move |inner| {
        (any::<bool>(), vec((key.clone(), inner), 0..5)).prop_map(|(array, items)| {
            if array {
                Value::Array(items.into_iter().map(|(_, value)| value).collect())
            } else {
                Value::Object(items.into_iter().collect())
            }
        })
    })
}

/// Bytes, shown as an escaped byte string when a property fails.
#[derive(Clone)]
struct Body(Vec<u8>);

impl Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

/// Raw bytes: random, JSON-looking token soup, deep nesting, random text.
fn random_bytes(rng: &mut Rng, mut extra: Vec<u8>) -> Vec<u8> {
    const TOKENS: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"",
        "\\",
        "\"uuid\"",
        "\"event\"",
        "\"body\"",
        "\"parties\"",
        "\"sequence\"",
        "1",
        "-0",
        "1e999",
        "null",
        "true",
        "\"x\"",
        " ",
        "\n",
        "\"\\u0000\"",
        "\"\\ud800\"",
        "\"\\ud800\\udc00\"",
        "\u{feff}",
    ];
    match rng.below(4) {
        0 => {
            extra.extend((0..rng.below(200)).map(|_| rng.next() as u8));
            extra
        }
        1 => {
            let mut soup: Vec<u8> = (0..rng.below(60))
                .flat_map(|_| rng.pick(TOKENS).bytes())
                .collect();
            let at = rng.below(soup.len() + 1);
            soup.splice(at..at, extra);
            soup
        }
        2 => {
            let open = rng.pick(&["[", "{\"body\":", "{\"a\":[", " ", "[{\"b\":"]);
            open.repeat(rng.below(600)).into_bytes()
        }
        _ => random_text(rng).into_bytes(),
    }
}

fn raw_bytes() -> impl Strategy<Value = Body> {
    (any::<u64>(), vec(any::<u8>(), 0..24))
        .prop_map(|(seed, extra)| Body(random_bytes(&mut Rng(seed), extra)))
}

/// A path into a JSON value.
#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    At(usize),
}

/// How many values `value` holds, itself included.
fn count_nodes(value: &Value) -> usize {
    1 + match value {
        Value::Object(map) => map.values().map(count_nodes).sum(),
        Value::Array(items) => items.iter().map(count_nodes).sum(),
        _ => 0,
    }
}

/// The path of the `n`-th value of `value` in pre-order (`n` modulo the number of values).
fn nth_path(value: &Value, n: usize) -> Vec<Seg> {
    fn walk(value: &Value, n: &mut usize, here: &mut Vec<Seg>) -> bool {
        if *n == 0 {
            return true;
        }
        *n -= 1;
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    here.push(Seg::Key(key.clone()));
                    if walk(child, n, here) {
                        return true;
                    }
                    here.pop();
                }
            }
            Value::Array(items) => {
                for (index, child) in items.iter().enumerate() {
                    here.push(Seg::At(index));
                    if walk(child, n, here) {
                        return true;
                    }
                    here.pop();
                }
            }
            _ => {}
        }
        false
    }
    let mut n = n % count_nodes(value);
    let mut path = Vec::new();
    walk(value, &mut n, &mut path);
    path
}

fn at_path<'a>(value: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    path.iter().try_fold(value, |value, seg| match seg {
        Seg::Key(key) => value.get_mut(key.as_str()),
        Seg::At(index) => value.get_mut(*index),
    })
}

/// A change to a JSON document; `at` picks a path (modulo the number of paths).
#[derive(Debug, Clone)]
enum TreeOp {
    /// Replace the value at a path.
    Replace { at: usize, value: Value },
    /// Delete the field (or element) at a path.
    Delete { at: usize },
    /// Wrap the value at a path in `depth` arrays (or objects).
    Nest {
        at: usize,
        depth: usize,
        array: bool,
    },
    /// Add a field to the object at a path (nothing if it is not an object).
    Add {
        at: usize,
        key: String,
        value: Value,
    },
}

/// A change to the bytes of a serialized document; `at` modulo its length plus one.
#[derive(Debug, Clone)]
enum ByteOp {
    Truncate {
        at: usize,
    },
    /// Replace `remove` bytes at `at` by `insert`.
    Splice {
        at: usize,
        remove: usize,
        insert: Vec<u8>,
    },
}

fn apply_tree_op(document: &mut Value, op: &TreeOp) {
    match op {
        TreeOp::Replace { at, value } => {
            if let Some(target) = at_path(document, &nth_path(document, *at)) {
                *target = value.clone();
            }
        }
        TreeOp::Delete { at } => {
            let path = nth_path(document, *at);
            let Some((last, parent)) = path.split_last() else {
                return;
            };
            match (at_path(document, parent), last) {
                (Some(Value::Object(map)), Seg::Key(key)) => {
                    map.shift_remove(key);
                }
                (Some(Value::Array(items)), Seg::At(index)) if *index < items.len() => {
                    items.remove(*index);
                }
                _ => {}
            }
        }
        TreeOp::Nest { at, depth, array } => {
            if let Some(target) = at_path(document, &nth_path(document, *at)) {
                let mut value = target.take();
                for _ in 0..*depth {
                    value = if *array {
                        Value::Array(vec![value])
                    } else {
                        Value::Object(Map::from_iter([("a".to_owned(), value)]))
                    };
                }
                *target = value;
            }
        }
        TreeOp::Add { at, key, value } => {
            if let Some(Value::Object(map)) = at_path(document, &nth_path(document, *at)) {
                map.insert(key.clone(), value.clone());
            }
        }
    }
}

fn apply_byte_op(bytes: &mut Vec<u8>, op: &ByteOp) {
    match op {
        ByteOp::Truncate { at } => bytes.truncate(at % (bytes.len() + 1)),
        ByteOp::Splice { at, remove, insert } => {
            let start = at % (bytes.len() + 1);
            let end = (start + remove).min(bytes.len());
            bytes.splice(start..end, insert.iter().copied());
        }
    }
}

/// A document changed, serialized (compact or pretty), then its bytes changed.
#[derive(Debug, Clone)]
struct Mutation {
    tree: Vec<TreeOp>,
    pretty: bool,
    bytes: Vec<ByteOp>,
}

impl Mutation {
    /// Up to `max_tree` tree changes and (one time in three) up to `max_bytes` byte changes.
    fn random(rng: &mut Rng, max_tree: usize, max_bytes: usize) -> Mutation {
        let tree = (0..rng.below(max_tree + 1))
            .map(|_| {
                let at = rng.next() as usize;
                match rng.below(9) {
                    0..=3 => TreeOp::Replace {
                        at,
                        value: random_json(rng, 3),
                    },
                    4..=6 => TreeOp::Delete { at },
                    7 => TreeOp::Nest {
                        at,
                        depth: 1 + rng.below(300),
                        array: rng.one_in(2),
                    },
                    _ => TreeOp::Add {
                        at,
                        key: random_key(rng),
                        value: random_json(rng, 2),
                    },
                }
            })
            .collect();
        let pretty = rng.one_in(2);
        let byte_ops = if rng.one_in(3) {
            1 + rng.below(max_bytes.max(1))
        } else {
            0
        };
        let bytes = (0..byte_ops.min(max_bytes))
            .map(|_| {
                let at = rng.next() as usize;
                if rng.one_in(2) {
                    ByteOp::Truncate { at }
                } else {
                    ByteOp::Splice {
                        at,
                        remove: rng.below(8),
                        insert: (0..rng.below(8)).map(|_| rng.next() as u8).collect(),
                    }
                }
            })
            .collect();
        Mutation {
            tree,
            pretty,
            bytes,
        }
    }

    fn apply(&self, document: &Value) -> Vec<u8> {
        let mut document = document.clone();
        for op in &self.tree {
            apply_tree_op(&mut document, op);
        }
        let mut bytes = if self.pretty {
            serde_json::to_vec_pretty(&document)
        } else {
            serde_json::to_vec(&document)
        }
        .expect("a JSON value serializes");
        for op in &self.bytes {
            apply_byte_op(&mut bytes, op);
        }
        bytes
    }
}

fn seed() -> Value {
    support::fixture_json(SEED)
}

/// Where in an otherwise valid telephony body an arbitrary value goes.
const BODY_SPOTS: &[&str] = &[
    "",
    "/sequence",
    "/telephonySessionId",
    "/eventTime",
    "/origin",
    "/origin/type",
    "/parties",
    "/parties/0",
    "/parties/0/id",
    "/parties/0/status",
    "/parties/0/status/code",
    "/parties/0/status/reason",
    "/parties/0/status/peerId",
    "/parties/0/status/peerId/telephonySessionId",
    "/parties/0/to",
    "/parties/0/from",
    "/parties/0/from/name",
    "/parties/0/direction",
    "/parties/0/conferenceRole",
    "/parties/0/muted",
];

/// An envelope that is valid except for its `body`: an arbitrary JSON value as the whole body,
/// or in one spot of the seed's body.
fn envelope_with_arbitrary_body() -> impl Strategy<Value = Body> {
    let seed = seed();
    (any::<u64>(), json_value()).prop_map(move |(choice, value)| {
        let rng = &mut Rng(choice);
        let mut envelope = seed.clone();
        match rng.below(6) {
            0 => envelope["uuid"] = Value::String(random_text(rng)),
            1 => envelope["event"] = Value::String(random_text(rng)),
            _ => {}
        }
        let spot = rng.pick(BODY_SPOTS);
        if let Some(target) = envelope["body"].pointer_mut(spot) {
            *target = value;
        }
        Body(serde_json::to_vec(&envelope).expect("a JSON value serializes"))
    })
}

/// The seed fixture, mutated.
fn mutated_seed(rng: &mut Rng, seed: &Value) -> Vec<u8> {
    Mutation::random(rng, 4, 2).apply(seed)
}

fn mutated_seeds() -> impl Strategy<Value = Body> {
    let seed = seed();
    any::<u64>().prop_map(move |choice| Body(mutated_seed(&mut Rng(choice), &seed)))
}

// ----- well-formed notifications with values from small pools (for the detector) ------------

const SESSIONS: &[&str] = &["s-conf1", "s-conf2", "s-call1", "s-call2", "s-call3"];
const PARTIES: &[&str] = &[
    "p-conf1-0",
    "p-conf1-1",
    "p-conf1-2",
    "p-conf2-1",
    "p-call1-1",
    "p-call2-1",
    "p-call3-1",
];
const CODES: &[&str] = &[
    "Disconnected",
    "Disconnected",
    "Gone",
    "Setup",
    "Proceeding",
    "Answered",
    "Gone",
    "Disconnected",
    "Hold",
    "Parked",
    "VoiceMail",
];
const REASONS: &[&str] = &[
    "Conference",
    "AttendedTransfer",
    "BlindTransfer",
    "Supervising",
    "CallSwitch",
    "Pickup",
];
const NAMES: &[&str] = &["Agent 122", "Paco Vu", "Ana", "", " ", "conference"];
const NUMBERS: &[&str] = &[
    "+16505550100",
    "11119",
    "conference",
    "CONFERENCE",
    "",
    "101",
];
const EXTENSIONS: &[&str] = &["101", "102", "622953XXXXX"];
const T0: i64 = 1_709_049_892_223;

fn pooled_endpoint(rng: &mut Rng) -> Value {
    json!({
        "phoneNumber": rng.maybe(|rng| rng.pick(NUMBERS)),
        "name": rng.maybe(|rng| rng.pick(NAMES)),
        "extensionId": rng.maybe(|rng| rng.pick(EXTENSIONS)),
    })
}

fn pooled_party(rng: &mut Rng) -> Value {
    let mut party = json!({
        "id": rng.pick(PARTIES),
        "direction": rng.maybe(|rng| rng.pick(&["Inbound", "Outbound"])),
        "status": {
            "code": rng.maybe(|rng| rng.pick(CODES)),
            "reason": rng.maybe(|rng| rng.pick(REASONS)),
        },
        "conferenceRole": rng.maybe(|rng| rng.pick(&["Host", "Participant"])),
        "muted": rng.maybe(|rng| rng.one_in(2)),
    });
    if let Some(to) = rng.maybe(pooled_endpoint) {
        party["to"] = to;
    }
    if let Some(from) = rng.maybe(pooled_endpoint) {
        party["from"] = from;
    }
    if !rng.one_in(3) {
        party["status"]["peerId"] = json!({
            "telephonySessionId": rng.maybe(|rng| rng.pick(SESSIONS)),
            "partyId": rng.maybe(|rng| rng.pick(PARTIES)),
        });
    }
    party
}

/// A telephony notification built from small pools, so that sessions, parties and peers link up;
/// in a script, `step` keeps sequences mostly increasing (so that updates are not dropped as old).
fn pooled_notification(rng: &mut Rng, step: Option<usize>) -> Value {
    let sequence = match step {
        Some(step) if !rng.one_in(8) => step + rng.below(2),
        _ => rng.below(40),
    };
    json!({
        "uuid": rng.next().to_string(),
        "event": TELEPHONY_EVENT,
        "body": {
            "sequence": sequence,
            "telephonySessionId": rng.pick(SESSIONS),
            "eventTime": rng.maybe(|rng| Timestamp(T0 + rng.below(600_000) as i64).to_rfc3339()),
            "origin": { "type": rng.maybe(|rng| rng.pick(&["Call", "Conference", "RingOut"])) },
            "parties": (0..rng.below(4)).map(|_| pooled_party(rng)).collect::<Vec<_>>(),
        }
    })
}

/// A pooled notification, as is half the time, fuzzed otherwise.
fn fuzzed_notification(rng: &mut Rng, step: Option<usize>) -> Vec<u8> {
    let notification = pooled_notification(rng, step);
    if rng.one_in(2) {
        serde_json::to_vec(&notification).expect("a JSON value serializes")
    } else {
        Mutation::random(rng, 2, 1).apply(&notification)
    }
}

// ---------------------------------------------------------------------------------------------
// Target 1: the webhook's parsing path, as pure functions
// ---------------------------------------------------------------------------------------------

/// What the webhook route does with a body (`receive` in `src/ringcentral/webhook.rs`, minus the
/// store).
#[derive(Debug)]
enum Outcome {
    /// 400 with this reason.
    Refused(String),
    /// 200, nothing stored.
    Ignored,
    /// 200, stored as a reminder.
    Reminder,
    /// 200, quarantined with this reason.
    Quarantined(String),
    /// 200, stored and sent to the detector.
    Usable(SessionUpdate),
}

fn webhook_path(bytes: &[u8]) -> Outcome {
    let envelope: Envelope = match serde_json::from_slice(bytes) {
        Ok(envelope) => envelope,
        Err(error) => return Outcome::Refused(error.to_string()),
    };
    let kind = EventKind::of(&envelope.event);
    if kind == EventKind::Other {
        return Outcome::Ignored;
    }
    if envelope.uuid.is_empty() || envelope.uuid.len() > MAX_UUID_LEN {
        return Outcome::Quarantined(
            Unusable::Shape(format!("uuid must be 1 to {MAX_UUID_LEN} characters")).to_string(),
        );
    }
    if kind == EventKind::SubscriptionReminder {
        return Outcome::Reminder;
    }
    let notification: TelephonyNotification = match serde_json::from_slice(bytes) {
        Ok(notification) => notification,
        Err(error) => return Outcome::Quarantined(Unusable::Shape(error.to_string()).to_string()),
    };
    match SessionUpdate::from_notification(&notification.body) {
        Ok(update) => Outcome::Usable(update),
        Err(reason) => Outcome::Quarantined(reason.to_string()),
    }
}

/// The parsing path never panics; every reason is one line; a usable update is within bounds.
fn check_webhook_path(bytes: &[u8]) -> Result<Outcome, TestCaseError> {
    let outcome = webhook_path(bytes);
    match &outcome {
        Outcome::Refused(reason) => one_line("the 400 reason", reason)?,
        Outcome::Quarantined(reason) => one_line("the Unusable reason", reason)?,
        Outcome::Usable(update) => {
            let sequence = update.sequence.expect("a notification has a sequence");
            prop_assert!(i64::try_from(sequence).is_ok());
        }
        Outcome::Ignored | Outcome::Reminder => {}
    }
    Ok(outcome)
}

fn tally_outcome(tally: &Tally, outcome: Outcome) -> TestCaseResult {
    tally.count(match outcome {
        Outcome::Refused(_) => "400",
        Outcome::Ignored => "ignored",
        Outcome::Reminder => "reminder",
        Outcome::Quarantined(_) => "quarantined",
        Outcome::Usable(_) => "usable",
    });
    Ok(())
}

#[test]
fn webhook_parsing_survives_arbitrary_bytes() {
    let tally = Tally::default();
    run_property(
        "webhook parsing / arbitrary bytes",
        cases().bytes,
        raw_bytes(),
        &tally,
        |body| tally_outcome(&tally, check_webhook_path(&body.0)?),
    );
}

#[test]
fn webhook_parsing_survives_arbitrary_json_bodies() {
    let tally = Tally::default();
    run_property(
        "webhook parsing / arbitrary JSON body",
        cases().json_body,
        envelope_with_arbitrary_body(),
        &tally,
        |body| tally_outcome(&tally, check_webhook_path(&body.0)?),
    );
}

#[test]
fn webhook_parsing_survives_mutations_of_the_seed() {
    let tally = Tally::default();
    run_property(
        "webhook parsing / seed mutations",
        cases().seed_mutations,
        mutated_seeds(),
        &tally,
        |body| tally_outcome(&tally, check_webhook_path(&body.0)?),
    );
}

#[test]
fn the_unmutated_seed_is_usable() {
    // The generators start from a usable notification (otherwise the mutations test little).
    let bytes = support::fixture_bytes(SEED);
    assert!(matches!(webhook_path(&bytes), Outcome::Usable(_)));
}

// ---------------------------------------------------------------------------------------------
// Target 2: the detector on fuzzed-but-parsable notifications
// ---------------------------------------------------------------------------------------------

/// A script: notifications (fuzzed) and the milliseconds before each is received.
fn script() -> impl Strategy<Value = Vec<(Body, i64)>> {
    vec(any::<u64>(), 1..24).prop_map(|seeds| {
        seeds
            .into_iter()
            .enumerate()
            .map(|(step, seed)| {
                let rng = &mut Rng(seed);
                let gap = rng.below(5_000) as i64;
                (Body(fuzzed_notification(rng, Some(step))), gap)
            })
            .collect()
    })
}

/// Feeds the usable notifications of `script` to a fresh detector; checks that no participant
/// leaves without having joined and no event id repeats. Answers the events.
fn run_detector(script: &[(Body, i64)]) -> Result<Vec<ConferenceEvent>, TestCaseError> {
    let mut detector = Detector::default();
    let mut joined: HashSet<(ConferenceId, ParticipantId)> = HashSet::new();
    let mut ids: HashSet<String> = HashSet::new();
    let mut all = Vec::new();
    let mut received_at = Timestamp(T0);
    for (body, gap) in script {
        received_at = received_at.plus_millis(*gap);
        let Outcome::Usable(notification) = check_webhook_path(&body.0)? else {
            continue;
        };
        let events = detector.apply(Input::Notification {
            received_at,
            notification,
        });
        for event in events {
            prop_assert!(ids.insert(event.id.clone()), "event {} twice", event.id);
            let key = event
                .kind
                .participant_id()
                .map(|participant| (event.conference_id.clone(), participant.clone()));
            match (&event.kind, key) {
                (ConferenceEventKind::ParticipantJoined { .. }, Some(key)) => {
                    joined.insert(key);
                }
                (ConferenceEventKind::ParticipantLeft { .. }, Some(key)) => {
                    prop_assert!(
                        joined.contains(&key),
                        "{} left {} without joining it",
                        key.1,
                        key.0
                    );
                }
                _ => {}
            }
            all.push(event);
        }
    }
    Ok(all)
}

#[test]
fn detector_never_leaves_without_a_join_nor_repeats_an_event() {
    let tally = Tally::default();
    run_property(
        "detector / fuzzed notifications",
        cases().detector,
        script(),
        &tally,
        |script| {
            for event in run_detector(&script)? {
                tally.count(event.kind.type_name());
            }
            Ok(())
        },
    );
}

#[test]
fn detector_scripts_reach_joins_and_leaves() {
    // The generator above is only useful if its scripts make the detector join and leave.
    let mut runner = TestRunner::deterministic();
    let strategy = script();
    let (mut joins, mut leaves) = (0, 0);
    for _ in 0..500 {
        let script = strategy.new_tree(&mut runner).expect("a script").current();
        for event in run_detector(&script).expect("the property holds") {
            match event.kind.type_name() {
                "participant_joined" => joins += 1,
                "participant_left" => leaves += 1,
                _ => {}
            }
        }
    }
    assert!(joins > 50 && leaves > 10, "joins {joins}, leaves {leaves}");
}

// ---------------------------------------------------------------------------------------------
// Target 3: the replay reader
// ---------------------------------------------------------------------------------------------

/// One record of a replay file.
fn replay_record(rng: &mut Rng, seed: &Value) -> String {
    match rng.below(10) {
        0..=3 => String::from_utf8_lossy(&fuzzed_notification(rng, None)).into_owned(),
        4 | 5 => random_json(rng, 3).to_string(),
        6 | 7 => String::from_utf8_lossy(&mutated_seed(rng, seed)).into_owned(),
        8 => random_text(rng).replace('\n', " "),
        _ => String::from_utf8_lossy(&random_bytes(rng, Vec::new())).into_owned(),
    }
}

/// A replay file: arbitrary text, JSON lines with garbage, an array with garbage elements, or one
/// document; any of them maybe truncated.
fn replay_text(rng: &mut Rng, seed: &Value, records: &[u64]) -> String {
    const SOUP: &[char] = &[
        '[', ']', '{', '}', '"', ',', ':', '0', 'a', ' ', '\n', '\r', '\\',
    ];
    let separator = rng.pick(&["\n", "\r\n", "\n\n", ",\n", " "]);
    let records = records
        .iter()
        .map(|&record| replay_record(&mut Rng(record), seed));
    let text = match rng.below(12) {
        0 => (0..rng.below(8)).map(|_| random_text(rng)).collect(),
        1 => (0..rng.below(80)).map(|_| rng.pick(SOUP)).collect(),
        2..=5 => records.collect::<Vec<_>>().join(separator),
        6..=8 => {
            let close = if rng.one_in(3) { "" } else { "]" };
            format!("[{}{close}", records.collect::<Vec<_>>().join(separator))
        }
        9 | 10 => {
            let array = Value::Array(
                (0..rng.below(6))
                    .map(|step| pooled_notification(rng, Some(step)))
                    .collect(),
            );
            if rng.one_in(2) {
                serde_json::to_string_pretty(&array).expect("serializes")
            } else {
                array.to_string()
            }
        }
        _ => String::from_utf8_lossy(&mutated_seed(rng, seed)).into_owned(),
    };
    if rng.one_in(3) {
        let mut at = rng.below(text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text[..at].to_owned()
    } else {
        text
    }
}

/// A replay input: one to three files.
#[derive(Debug, Clone)]
struct ReplayCase {
    names: Vec<String>,
    texts: Vec<String>,
    format: Format,
}

fn replay_case() -> impl Strategy<Value = ReplayCase> {
    let seed = seed();
    (any::<u64>(), vec(vec(any::<u64>(), 0..8), 1..3)).prop_map(move |(choice, files)| {
        let rng = &mut Rng(choice);
        let name = rng
            .pick(&["fuzz.jsonl", "-", "a:1:", "dir/file name.json", ""])
            .to_owned();
        let format = match rng.below(4) {
            0 => Format::Text(rng.pick(&PhoneNumbers::ALL)),
            _ => Format::Json,
        };
        let texts: Vec<String> = files
            .iter()
            .map(|records| replay_text(rng, &seed, records))
            .collect();
        ReplayCase {
            names: (0..texts.len())
                .map(|index| format!("{name}{index}"))
                .collect(),
            texts,
            format,
        }
    })
}

/// `problem` starts with `name:N:` for a line N of `text` (or the line after its last).
fn names_a_line(problem: &str, name: &str, text: &str) -> TestCaseResult {
    let rest = problem
        .strip_prefix(name)
        .and_then(|rest| rest.strip_prefix(':'));
    prop_assert!(rest.is_some(), "{problem:?} does not start with {name:?}:");
    let rest = rest.unwrap_or_default();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    prop_assert!(
        rest[digits.len()..].starts_with(':'),
        "{problem:?} does not name a line"
    );
    let line: usize = digits
        .parse()
        .map_err(|_| TestCaseError::fail(format!("{problem:?} does not name a line")))?;
    let lines = text.lines().count().max(1);
    prop_assert!(
        (1..=lines + 1).contains(&line),
        "{problem:?}: line {line} of a {lines}-line text"
    );
    Ok(())
}

#[test]
fn replay_reports_every_bad_record_with_its_file_and_line() {
    let tally = Tally::default();
    run_property(
        "replay / fuzzed files",
        cases().replay,
        replay_case(),
        &tally,
        |case| {
            let sources: Vec<Source> = case
                .names
                .iter()
                .zip(&case.texts)
                .map(|(name, text)| Source {
                    name: name.clone(),
                    text: text.clone(),
                })
                .collect();
            let output = replay(&sources, case.format);
            for _ in &output.problems {
                tally.count("problems");
            }
            for _ in &output.lines {
                tally.count("events");
            }
            for problem in &output.problems {
                one_line("a replay problem", problem)?;
                // Names end in their index, so no name is a prefix of another's `name:`.
                let source = sources
                    .iter()
                    .find(|source| problem.starts_with(&format!("{}:", source.name)));
                prop_assert!(source.is_some(), "{problem:?} names no source");
                let source = source.expect("checked");
                names_a_line(problem, &source.name, &source.text)?;
            }
            if case.format == Format::Json {
                for line in &output.lines {
                    one_line("a replay --json line", line)?;
                    prop_assert!(serde_json::from_str::<Value>(line).is_ok(), "{line:?}");
                }
            }
            // JSON lines: every non-blank line that is not JSON is reported on its line.
            for source in &sources {
                let lines_mode = serde_json::from_str::<Value>(&source.text).is_err()
                    && source.text.lines().any(|line| {
                        matches!(serde_json::from_str::<Value>(line), Ok(Value::Object(_)))
                    });
                if !lines_mode {
                    continue;
                }
                for (index, line) in source.text.lines().enumerate() {
                    if line.trim().is_empty() || serde_json::from_str::<Value>(line).is_ok() {
                        continue;
                    }
                    let place = format!("{}:{}: not JSON", source.name, index + 1);
                    prop_assert!(
                        output
                            .problems
                            .iter()
                            .any(|problem| problem.starts_with(&place)),
                        "line {} of {} is not JSON and not reported: {:?}",
                        index + 1,
                        source.name,
                        output.problems
                    );
                }
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Target 4: the webhook route over HTTP
// ---------------------------------------------------------------------------------------------

/// A body for the HTTP target: anything above, the seed under a fresh uuid, or too large.
fn http_body() -> impl Strategy<Value = Body> {
    let seed = seed();
    (any::<u64>(), json_value()).prop_map(move |(choice, value)| {
        let rng = &mut Rng(choice);
        Body(match rng.below(8) {
            0 => random_bytes(rng, Vec::new()),
            1 => {
                let mut envelope = seed.clone();
                if let Some(target) = envelope["body"].pointer_mut(rng.pick(BODY_SPOTS)) {
                    *target = value;
                }
                serde_json::to_vec(&envelope).expect("serializes")
            }
            2 | 3 => mutated_seed(rng, &seed),
            4 => {
                let mut document = seed.clone();
                document["uuid"] = json!(rng.next().to_string());
                Mutation::random(rng, 1, 0).apply(&document)
            }
            5 => fuzzed_notification(rng, None),
            6 => {
                let mut bytes = mutated_seed(rng, &seed);
                let len = HTTP_MAX_BODY - 64 + rng.below(128);
                bytes.resize(len.max(bytes.len()), b' ');
                bytes
            }
            _ => vec![b'{'; HTTP_MAX_BODY + 1 + rng.below(HTTP_MAX_BODY * 2)],
        })
    })
}

#[test]
fn webhook_route_answers_200_400_or_413_and_refusals_store_nothing() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let app = runtime.block_on(async {
        let mut config = support::TestConfig::new();
        config.settings.server.max_body_bytes = HTTP_MAX_BODY;
        config.start().await
    });
    // A fresh connection per request: a reused keep-alive connection the server has just closed
    // would look like a dropped connection, and hide whether the route itself dropped one.
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(support::DEADLINE)
        .build()
        .expect("an HTTP client");
    let (url, token) = (app.webhook_url(), app.token());
    let tally = Tally::default();
    run_property(
        "webhook route / HTTP",
        cases().http,
        http_body(),
        &tally,
        |body| {
            runtime.block_on(async {
                let before = app.counts().await;
                let response = client
                    .post(&url)
                    .header("Content-Type", "application/json; charset=UTF-8")
                    .header("Verification-Token", &token)
                    .body(body.0.clone())
                    .send()
                    .await;
                prop_assert!(response.is_ok(), "no answer: {response:?}");
                let response = response.expect("checked");
                let status = response.status().as_u16();
                tally.count(&status.to_string());
                let text = response.text().await;
                prop_assert!(
                    text.is_ok(),
                    "the answer's body could not be read: {text:?}"
                );
                let text = text.unwrap_or_default();
                prop_assert!(
                    [200, 400, 413].contains(&status),
                    "answered {status}: {text:?}"
                );
                if status != 200 {
                    one_line("the 4xx reason", text.strip_suffix('\n').unwrap_or(&text))?;
                    let after = app.counts().await;
                    prop_assert_eq!(
                        before.total,
                        after.total,
                        "a refused body reached the inbox"
                    );
                    prop_assert_eq!(
                        before.quarantined,
                        after.quarantined,
                        "a refused body was quarantined"
                    );
                }
                if status == 413 {
                    prop_assert!(body.0.len() > HTTP_MAX_BODY);
                }
                Ok(())
            })
        },
    );
    runtime.block_on(async {
        let counts = app.wait_processed().await;
        let _ = writeln!(
            std::io::stderr().lock(),
            "fuzz webhook route / HTTP: the store after the run: {counts:?}"
        );
        app.stop().await;
    });
}
