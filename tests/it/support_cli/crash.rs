//! Pieces the crash tests share: a seeded RNG for the kill moment, distinct participant-joined
//! notifications built from the seed fixture, and the burst that posts them to the webhook from
//! concurrent senders while the test waits for its moment to kill.

use super::fixture;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

/// What became of one prepared notification.
pub const UNSENT: u8 = 0;
pub const IN_FLIGHT: u8 = 1;
pub const ACKED: u8 = 2;
pub const REFUSED: u8 = 3;
pub const FAILED: u8 = 4;

/// splitmix64: enough randomness for a kill moment, and reproducible from its seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform enough in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

/// The seed of this run: `RINGSIDE_CRASH_SEED` when set (to replay one), else from the clock.
pub fn seed() -> u64 {
    if let Ok(text) = std::env::var("RINGSIDE_CRASH_SEED") {
        return text
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("RINGSIDE_CRASH_SEED={text:?}: {e}"));
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    // Folded and mixed so close clocks give unrelated seeds.
    Rng(nanos as u64 ^ (nanos >> 64) as u64 ^ u64::from(std::process::id())).next()
}

/// Notification `i` of a scenario: its uuid, the conference it joins, the conference-side
/// party id (the participant's key), the caller's name and the body.
pub struct Prepared {
    pub uuid: String,
    pub conference: String,
    pub participant: String,
    pub name: String,
    pub body: String,
}

const ADDED: &str = "seed/participant-added.json";

/// `pool` distinct participant-joined notifications of scenario `run`, round robin over
/// `conferences` conferences; ids start with `tag` (`{tag}-{run}-…`), caller `i` is `name(i)`.
pub fn prepare(
    tag: &str,
    run: usize,
    pool: usize,
    conferences: usize,
    name: impl Fn(usize) -> String,
) -> Vec<Prepared> {
    let seed: Value = serde_json::from_str(&fixture(ADDED)).unwrap();
    (0..pool)
        .map(|i| {
            let uuid = format!("{tag}-{run}-{i:05}");
            let conference = format!("s-{tag}{run}-conf{}", i % conferences);
            let participant = format!("p-{tag}{run}-conf{}-{i:05}", i % conferences);
            let name = name(i);
            let mut value = seed.clone();
            value["uuid"] = Value::from(uuid.clone());
            let body = &mut value["body"];
            body["telephonySessionId"] = Value::from(format!("s-{tag}{run}-orig-{i:05}"));
            body["sessionId"] = Value::from(format!("{}", 7_000_000_000u64 + i as u64));
            let party = &mut body["parties"][0];
            party["id"] = Value::from(format!("p-{tag}{run}-orig-{i:05}-1"));
            party["to"]["name"] = Value::from(name.clone());
            party["to"]["phoneNumber"] = Value::from(format!("+1555{i:07}"));
            let peer = &mut party["status"]["peerId"];
            peer["telephonySessionId"] = Value::from(conference.clone());
            peer["partyId"] = Value::from(participant.clone());
            Prepared {
                uuid,
                conference,
                participant,
                name,
                body: value.to_string(),
            }
        })
        .collect()
}

/// The burst: `senders` tasks post the pool in order until `stop` is set or it is used up.
/// Runs on its own thread; `outcome[i]` says what became of notification `i`.
pub struct Burst {
    pub outcome: Arc<Vec<AtomicU8>>,
    pub acked: Arc<AtomicUsize>,
    pub stop: Arc<AtomicBool>,
    pub done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Burst {
    pub fn start(url: String, token: String, bodies: Vec<String>, senders: usize) -> Burst {
        let outcome: Arc<Vec<AtomicU8>> =
            Arc::new((0..bodies.len()).map(|_| AtomicU8::new(UNSENT)).collect());
        let acked = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (outcome, acked, stop, done) =
                (outcome.clone(), acked.clone(), stop.clone(), done.clone());
            move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(4)
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    let client = reqwest::Client::builder()
                        .no_proxy()
                        .timeout(Duration::from_secs(5))
                        .build()
                        .unwrap();
                    let bodies = Arc::new(bodies);
                    let next = Arc::new(AtomicUsize::new(0));
                    let senders: Vec<_> = (0..senders)
                        .map(|_| {
                            let (client, bodies, next, outcome, acked, stop, url, token) = (
                                client.clone(),
                                bodies.clone(),
                                next.clone(),
                                outcome.clone(),
                                acked.clone(),
                                stop.clone(),
                                url.clone(),
                                token.clone(),
                            );
                            tokio::spawn(async move {
                                while !stop.load(Ordering::SeqCst) {
                                    let i = next.fetch_add(1, Ordering::SeqCst);
                                    if i >= bodies.len() {
                                        break;
                                    }
                                    outcome[i].store(IN_FLIGHT, Ordering::SeqCst);
                                    let sent = client
                                        .post(&url)
                                        .header("Verification-Token", &token)
                                        .header("Content-Type", "application/json")
                                        .body(bodies[i].clone())
                                        .send()
                                        .await;
                                    let result = match sent {
                                        Ok(response) if response.status() == 200 => {
                                            acked.fetch_add(1, Ordering::SeqCst);
                                            ACKED
                                        }
                                        Ok(_) => REFUSED,
                                        Err(_) => FAILED,
                                    };
                                    outcome[i].store(result, Ordering::SeqCst);
                                }
                            })
                        })
                        .collect();
                    for sender in senders {
                        let _ = sender.await;
                    }
                });
                done.store(true, Ordering::SeqCst);
            }
        });
        Burst {
            outcome,
            acked,
            stop,
            done,
            thread: Some(thread),
        }
    }

    pub fn finish(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            // Every request has a 5 s timeout, so this ends.
            thread.join().expect("the burst thread panicked");
        }
    }
}

impl Drop for Burst {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Burst {
    /// What became of each notification, as it stands.
    pub fn outcomes(&self) -> Vec<u8> {
        self.outcome
            .iter()
            .map(|o| o.load(Ordering::SeqCst))
            .collect()
    }

    /// How many requests are under way.
    #[expect(dead_code, reason = "no crash test reads it yet")]
    pub fn in_flight(&self) -> usize {
        self.outcome
            .iter()
            .filter(|o| o.load(Ordering::SeqCst) == IN_FLIGHT)
            .count()
    }
}

/// `ringside run` on fresh loopback ports with its store at `store` and the given coalescing
/// window; callers add their own settings (Discord, for crash test (b)) before starting it.
pub fn run_command(
    sandbox: &super::Sandbox,
    store: &std::path::Path,
    coalesce_ms: u64,
) -> std::process::Command {
    let [public, admin] = super::free_ports();
    let mut command = sandbox.command(["run"]);
    command
        .env("RINGSIDE_SERVER__LISTEN", format!("127.0.0.1:{public}"))
        .env(
            "RINGSIDE_SERVER__ADMIN_LISTEN",
            format!("127.0.0.1:{admin}"),
        )
        .env("RINGSIDE_STORE__PATH", store)
        .env("RINGSIDE_ANNOUNCE__COALESCE_MS", coalesce_ms.to_string());
    command
}
