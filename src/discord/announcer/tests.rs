//! The Discord announcer against the poster's fake Discord (real sockets, real time).

use super::{DiscordAnnouncer, Post, run_discord};
use crate::conference::{
    ConferenceEvent, ConferenceId, EventKind, Identity, ParticipantId, Roster, Timestamp,
};
use crate::config::PhoneNumbers;
use crate::discord::api::DiscordApi;
use crate::discord::poster::fake::{FakeDiscord, Scripted};
use crate::discord::poster::{PostError, PostFuture, PostedMessage, Poster};
use crate::pipeline::{Announcement, Clock, Progress, SubscriptionHealth, SystemClock};
use crate::store::{BatchFile, Store};
use secrecy::SecretString;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

const CHANNEL: u64 = 100;

fn api(base_url: &str) -> DiscordApi {
    DiscordApi {
        base_url: base_url.to_owned(),
        token: SecretString::from("test-token"),
        application_id: 1,
        guild_id: 2,
        channel_id: CHANNEL,
    }
}

struct Options {
    coalesce: Duration,
    stale_after: Duration,
    threads: bool,
    health: Option<watch::Receiver<SubscriptionHealth>>,
    /// None by default: most tests have nothing parked to look for.
    resend_poll: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            coalesce: Duration::from_millis(100),
            stale_after: Duration::from_secs(600),
            threads: false,
            health: None,
            resend_poll: None,
        }
    }
}

struct Running {
    progress: Progress,
    events: mpsc::UnboundedSender<Announcement>,
    shutdown: crate::util::shutdown::StopSender,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Commits `event` to the outbox and hands it to the announcer, as the detector does.
    async fn send(&self, store: &Store, event: ConferenceEvent) {
        self.events.send(outgoing(store, event).await).unwrap();
    }

    /// Stops and waits, with no timeout of its own: on a paused clock a timeout would fire while
    /// the store's thread is answering (the runtime looks idle then, and time jumps).
    async fn stop_and_wait(self) {
        self.shutdown.stop();
        drop(self.events);
        self.task.await.unwrap();
    }

    async fn stop(self) {
        self.shutdown.stop();
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("the announcer stops")
            .unwrap();
    }
}

fn start(fake: &FakeDiscord, store: &Store, options: Options) -> Running {
    start_with(
        Arc::new(Poster::new(api(&fake.base_url)).unwrap()),
        store,
        options,
    )
}

fn start_with(poster: Arc<dyn Post>, store: &Store, options: Options) -> Running {
    let progress = Progress::default();
    let (events, receiver) = mpsc::unbounded_channel();
    let (shutdown, shutdown_receiver) = crate::util::shutdown::channel();
    let config = DiscordAnnouncer {
        events: receiver,
        roster: Roster::new(),
        poster,
        store: store.clone(),
        clock: Arc::new(SystemClock),
        phone_numbers: PhoneNumbers::Masked,
        coalesce: options.coalesce,
        stale_after: options.stale_after,
        thread_per_conference: options.threads,
        channel_id: CHANNEL,
        health: options.health,
        shutdown: shutdown_receiver,
        drain_timeout: Duration::from_millis(300),
        progress: progress.clone(),
        feed: true,
        timeline: true,
        // The cards have their own lane and tests (`tests/it/cards.rs`).
        roster_card: None,
        resend_poll: options.resend_poll,
    };
    Running {
        progress,
        events,
        shutdown,
        task: tokio::spawn(run_discord(config)),
    }
}

/// The announcer as the service runs it by default: no extra coalescing wait.
fn start_with_default_announcing(poster: Arc<dyn Post>, store: &Store) -> Running {
    start_with(
        poster,
        store,
        Options {
            coalesce: Duration::ZERO,
            ..Options::default()
        },
    )
}

fn now() -> Timestamp {
    SystemClock.now()
}

fn conference(n: u32) -> ConferenceId {
    ConferenceId::parse(&format!("s-conf-{n}")).unwrap()
}

fn event(conference_n: u32, id: &str, kind: EventKind, received_at: Timestamp) -> ConferenceEvent {
    ConferenceEvent {
        id: id.to_owned(),
        conference_id: conference(conference_n),
        at: received_at,
        received_at,
        kind,
    }
}

fn join(conference_n: u32, name: &str, on_call: u32) -> ConferenceEvent {
    event(
        conference_n,
        &format!("joined:{conference_n}:{name}"),
        EventKind::ParticipantJoined {
            participant_id: ParticipantId::parse(&format!("p-{name}")).unwrap(),
            identity: Identity {
                name: Some(name.to_owned()),
                phone_number: Some("+16505550100".into()),
                extension_id: None,
            },
            on_call,
        },
        now(),
    )
}

fn started(conference_n: u32) -> ConferenceEvent {
    event(
        conference_n,
        &format!("started:{conference_n}"),
        EventKind::ConferenceStarted {
            host: Some(Identity {
                name: Some("Agent 122".into()),
                ..Identity::default()
            }),
        },
        now(),
    )
}

fn ended(conference_n: u32) -> ConferenceEvent {
    event(
        conference_n,
        &format!("ended:{conference_n}"),
        EventKind::ConferenceEnded {
            duration_secs: Some(60),
            participants: 1,
            peak: 1,
        },
        now(),
    )
}

/// Keeps the event in the outbox first, as the pipeline does.
async fn outgoing(store: &Store, event: ConferenceEvent) -> Announcement {
    let row = crate::store::NewOutboxRow {
        event_id: event.id.clone(),
        conference_id: event.conference_id.to_string(),
        received_at_ms: event.received_at.0,
        event: serde_json::to_string(&event).unwrap(),
    };
    let ids = store
        .commit_processed(vec![], vec![], vec![row])
        .await
        .unwrap();
    Announcement {
        outbox_id: ids[0],
        event,
    }
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn contents(fake: &FakeDiscord) -> Vec<String> {
    fake.posted()
        .iter()
        .map(|r| r.body["content"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn forty_joins_in_two_seconds_take_at_most_eight_messages() {
    let fake = FakeDiscord::start().await;
    let (_dir, store) = crate::store::test_support::open_temp();
    let running = start(
        &fake,
        &store,
        Options {
            coalesce: Duration::from_millis(300),
            ..Options::default()
        },
    );
    let names: Vec<String> = (0..40).map(|i| format!("Caller {i:02}")).collect();
    for (i, name) in names.iter().enumerate() {
        let event = outgoing(&store, join(1, name, i as u32 + 1)).await;
        running.events.send(event).unwrap();
        tokio::time::sleep(Duration::from_millis(48)).await;
    }
    eventually("every name is posted", || async {
        let all = contents(&fake).join("\n");
        names
            .iter()
            .all(|name| all.contains(&format!("**{name}**")))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let posted = contents(&fake);
    assert!(posted.len() <= 8, "{} messages", posted.len());
    let all = posted.join("\n");
    for name in &names {
        assert_eq!(all.matches(&format!("**{name}**")).count(), 1, "{name}");
    }
    assert!(store.undelivered().await.unwrap().is_empty());
    assert!(store.pending_batches().await.unwrap().is_empty());
    running.stop().await;
}

#[tokio::test]
async fn a_429_is_waited_out_and_the_same_message_is_sent_again() {
    let fake = FakeDiscord::start().await;
    let (_dir, store) = crate::store::test_support::open_temp();
    fake.script(Scripted::RateLimited {
        retry_after: 1.0,
        global: false,
    });
    let running = start(&fake, &store, Options::default());
    running.send(&store, join(1, "Paco Vu", 1)).await;
    eventually("the 429", || async { !fake.received().is_empty() }).await;
    // Arrives while the limit is waited out: it goes into the next message.
    running.send(&store, join(1, "Dana Whitfield", 2)).await;
    eventually("both messages", || async { fake.posted().len() == 2 }).await;
    let received = fake.received();
    assert_eq!(received.len(), 3, "429, the same message again, the next");
    assert_eq!(received[0].status, 429);
    assert!(received[1].at.duration_since(received[0].at) >= Duration::from_millis(990));
    assert_eq!(received[0].body, received[1].body, "same body, same nonce");
    assert_ne!(received[1].body["nonce"], received[2].body["nonce"]);
    let all = contents(&fake).join("\n");
    assert_eq!(all.matches("Paco Vu").count(), 1);
    assert_eq!(all.matches("Dana Whitfield").count(), 1);
    assert!(store.undelivered().await.unwrap().is_empty());
    running.stop().await;
}

#[tokio::test]
async fn a_refused_message_is_parked_and_the_next_still_goes_out() {
    let fake = FakeDiscord::start().await;
    let (_dir, store) = crate::store::test_support::open_temp();
    fake.script(Scripted::Status(403, 50001, "Missing Access"));
    let running = start(&fake, &store, Options::default());
    running.send(&store, join(1, "Paco Vu", 1)).await;
    eventually("the parked message", || async {
        !store.parked_batches(10).await.unwrap().is_empty()
    })
    .await;
    running.send(&store, join(1, "Dana Whitfield", 2)).await;
    eventually("the next message", || async { fake.posted().len() == 1 }).await;
    assert!(contents(&fake)[0].contains("Dana Whitfield"));
    let parked = store.parked_batches(10).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert!(parked[0].body.contains("Paco Vu"));
    assert!(parked[0].error.as_deref().unwrap().contains("403"));
    // Parked rows are not announced again at restart.
    assert!(store.undelivered().await.unwrap().is_empty());
    assert!(store.pending_batches().await.unwrap().is_empty());
    running.stop().await;
}

#[tokio::test]
async fn a_parked_message_asked_for_again_is_parked_again_if_refused_then_sent_with_its_nonce() {
    let fake = FakeDiscord::start().await;
    let (_dir, store) = crate::store::test_support::open_temp();
    fake.script(Scripted::Status(403, 50001, "Missing Access"));
    let running = start(
        &fake,
        &store,
        Options {
            resend_poll: Some(Duration::from_millis(50)),
            ..Options::default()
        },
    );
    running.send(&store, join(1, "Paco Vu", 1)).await;
    eventually("the parked message", || async {
        !store.parked_batches(10).await.unwrap().is_empty()
    })
    .await;
    let parked = store.parked_batches(10).await.unwrap().remove(0);

    // Asked for again while Discord still refuses it: parked again, with the new reason.
    fake.script(Scripted::Status(404, 10003, "Unknown Channel"));
    store.request_resend(parked.id).await.unwrap();
    eventually("parked again", || async {
        store
            .parked_batches(10)
            .await
            .unwrap()
            .first()
            .is_some_and(|again| {
                again.resend_requested_at_ms.is_none()
                    && again.error.as_deref().is_some_and(|e| e.contains("404"))
            })
    })
    .await;

    // Asked for once more, now that Discord takes it: one message, the stored one.
    store.request_resend(parked.id).await.unwrap();
    eventually("the resent message", || async { fake.posted().len() == 1 }).await;
    let received = fake.received();
    assert_eq!(received.len(), 3, "refused, refused again, sent");
    for request in &received {
        assert_eq!(request.body, received[0].body, "same body, same nonce");
    }
    assert_eq!(received[0].body["nonce"], parked.nonce.as_str());
    assert!(contents(&fake)[0].contains("Paco Vu"));
    eventually("the batch sent", || async {
        store.batch(parked.id).await.unwrap().unwrap().state == crate::store::BatchState::Sent
    })
    .await;
    assert_eq!(store.parked_count().await.unwrap(), 0);
    running.stop().await;
}

#[tokio::test]
async fn a_message_is_in_the_store_with_its_nonce_when_discord_receives_it() {
    let fake = FakeDiscord::start().await;
    let (_dir, store) = crate::store::test_support::open_temp();
    let kept = store.clone();
    fake.on_receive(move |body| {
        let store = kept.clone();
        let nonce = body["nonce"].as_str().unwrap_or_default().to_owned();
        let body = body.clone();
        Box::pin(async move {
            store.pending_batches().await.unwrap().iter().any(|batch| {
                batch.nonce == nonce
                    && serde_json::from_str::<serde_json::Value>(&batch.body).unwrap() == body
            })
        })
    });
    let running = start(&fake, &store, Options::default());
    running.send(&store, join(1, "Paco Vu", 1)).await;
    eventually("the post", || async { fake.posted().len() == 1 }).await;
    assert_eq!(fake.posted()[0].check, Some(true));
    eventually("the batch is marked sent", || async {
        store.pending_batches().await.unwrap().is_empty()
    })
    .await;
    running.stop().await;
}

#[tokio::test]
async fn a_restart_sends_a_pending_message_again_with_the_same_nonce_and_body() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ringside.db");
    let store = Store::open(&path).unwrap();
    let down = FakeDiscord::start().await;
    for _ in 0..50 {
        down.script(Scripted::Status(503, 0, "unavailable"));
    }
    let running = start(&down, &store, Options::default());
    running.send(&store, join(1, "Paco Vu", 1)).await;
    eventually("a failed attempt", || async { !down.received().is_empty() }).await;
    running.stop().await;
    let pending = store.pending_batches().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert!(
        store.undelivered().await.unwrap().is_empty(),
        "the batch carries the event"
    );
    store.close().await.unwrap();

    let store = Store::open(&path).unwrap();
    let up = FakeDiscord::start().await;
    let running = start(&up, &store, Options::default());
    eventually("the resend", || async { up.posted().len() == 1 }).await;
    let resent = &up.posted()[0].body;
    assert_eq!(resent, &down.received()[0].body);
    assert_eq!(resent["nonce"], pending[0].nonce.as_str());
    assert_eq!(resent["enforce_nonce"], true);
    eventually("marked sent", || async {
        store.pending_batches().await.unwrap().is_empty()
    })
    .await;
    assert!(store.undelivered().await.unwrap().is_empty());
    running.stop().await;
}

#[tokio::test]
async fn a_caller_named_everyone_pings_nobody() {
    let fake = FakeDiscord::start().await;
    let (_dir, store) = crate::store::test_support::open_temp();
    let running = start(&fake, &store, Options::default());
    running.send(&store, join(1, "@everyone", 1)).await;
    eventually("the post", || async { fake.posted().len() == 1 }).await;
    let body = &fake.posted()[0].body;
    assert_eq!(body["allowed_mentions"]["parse"], serde_json::json!([]));
    assert_eq!(body["flags"].as_u64().unwrap() & 4096, 4096);
    assert!(!body["content"].as_str().unwrap().contains("@everyone"));
    running.stop().await;
}

#[tokio::test]
async fn stale_events_become_one_away_summary() {
    let fake = FakeDiscord::start().await;
    let (_dir, store) = crate::store::test_support::open_temp();
    let running = start(&fake, &store, Options::default());
    let long_ago = now().plus_millis(-2 * 3600 * 1000);
    for (i, mut event) in [
        started(1),
        join(1, "Paco Vu", 1),
        join(1, "Dana Whitfield", 2),
    ]
    .into_iter()
    .enumerate()
    {
        event.received_at = long_ago.plus_millis(i as i64 * 1000);
        event.at = event.received_at;
        running.send(&store, event).await;
    }
    eventually("the summary", || async { fake.posted().len() == 1 }).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let posted = contents(&fake);
    assert_eq!(posted.len(), 1);
    assert!(
        posted[0].contains("While ringside was away"),
        "{}",
        posted[0]
    );
    assert!(posted[0].contains("2 joins"), "{}", posted[0]);
    assert!(!posted[0].contains("Paco"));
    assert!(store.undelivered().await.unwrap().is_empty());
    running.stop().await;
}

#[tokio::test]
async fn failing_then_active_posts_exactly_two_notices() {
    let fake = FakeDiscord::start().await;
    let (_dir, store) = crate::store::test_support::open_temp();
    let (health, receiver) = watch::channel(SubscriptionHealth::Starting);
    let running = start(
        &fake,
        &store,
        Options {
            health: Some(receiver),
            ..Options::default()
        },
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    health.send_replace(SubscriptionHealth::Failing {
        reason: "the subscription is Blacklisted".into(),
    });
    eventually("the notice", || async { fake.posted().len() == 1 }).await;
    health.send_replace(SubscriptionHealth::Failing {
        reason: "RingCentral sign-in fails".into(),
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    health.send_replace(SubscriptionHealth::Starting);
    tokio::time::sleep(Duration::from_millis(50)).await;
    health.send_replace(SubscriptionHealth::Active { id: "sub-1".into() });
    eventually("the recovery", || async { fake.posted().len() == 2 }).await;
    health.send_replace(SubscriptionHealth::Active { id: "sub-2".into() });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let posted = contents(&fake);
    assert_eq!(posted.len(), 2, "{posted:?}");
    assert!(posted[0].contains("cannot see calls") && posted[0].contains("Blacklisted"));
    assert!(posted[1].contains("can see calls again"));
    running.stop().await;
}

#[tokio::test]
async fn a_thread_per_conference_keeps_the_channel_to_starts_and_ends() {
    let fake = FakeDiscord::start().await;
    let (_dir, store) = crate::store::test_support::open_temp();
    let running = start(
        &fake,
        &store,
        Options {
            threads: true,
            ..Options::default()
        },
    );
    running.send(&store, started(1)).await;
    running.send(&store, join(1, "Paco Vu", 1)).await;
    eventually("start, thread, join", || async {
        fake.received().len() == 3
    })
    .await;
    running.send(&store, ended(1)).await;
    eventually("the end", || async { fake.received().len() == 4 }).await;
    let received = fake.received();
    let channel = format!("/channels/{CHANNEL}/messages");
    assert_eq!(received[0].path, channel);
    assert!(
        received[0].body["content"]
            .as_str()
            .unwrap()
            .contains("Conference started")
    );
    assert!(received[1].path.ends_with("/threads"));
    assert!(
        received[1].body["name"]
            .as_str()
            .unwrap()
            .starts_with("Agent 122")
    );
    let thread = store
        .conference_thread(conference(1).as_str())
        .await
        .unwrap()
        .expect("the thread is kept");
    assert_eq!(received[2].path, format!("/channels/{thread}/messages"));
    assert!(
        received[2].body["content"]
            .as_str()
            .unwrap()
            .contains("Paco Vu")
    );
    assert_eq!(received[3].path, channel);
    assert!(
        received[3].body["content"]
            .as_str()
            .unwrap()
            .contains("Conference ended")
    );
    running.stop().await;
}

#[tokio::test]
async fn a_stop_sends_what_is_pending() {
    let fake = FakeDiscord::start().await;
    let (_dir, store) = crate::store::test_support::open_temp();
    let running = start(
        &fake,
        &store,
        Options {
            coalesce: Duration::from_secs(30),
            ..Options::default()
        },
    );
    running.send(&store, join(1, "Paco Vu", 1)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    running.stop().await;
    assert_eq!(fake.posted().len(), 1);
    assert!(store.pending_batches().await.unwrap().is_empty());
    assert!(store.undelivered().await.unwrap().is_empty());
}

// ----- on a paused clock, against an in-memory poster ----------------------------------------

/// An in-memory Discord for the announcer: answers the scripted results in order (success once
/// they run out) and keeps every body with the (virtual) time it arrived. Optionally each answer
/// takes `latency`, and message creation has Discord's bucket: at most `count` per `window`,
/// the window starting with its first message. Like ringside's poster, it waits for an empty
/// bucket to open before it sends, and counts each such wait.
#[derive(Default)]
struct MemoryPoster {
    script: std::sync::Mutex<std::collections::VecDeque<PostError>>,
    received: std::sync::Mutex<Vec<(Instant, serde_json::Value)>>,
    latency: Duration,
    bucket: Option<(u32, Duration)>,
    /// The current window's start and how many messages it took.
    window: std::sync::Mutex<Option<(Instant, u32)>>,
    /// How many posts found the bucket empty and waited inside the poster.
    waited: std::sync::atomic::AtomicUsize,
    /// Told of every request received.
    arrived: tokio::sync::Notify,
    /// Every edit: the message and the body.
    edits: std::sync::Mutex<Vec<(String, serde_json::Value)>>,
}

impl MemoryPoster {
    fn scripted(errors: Vec<PostError>) -> Arc<MemoryPoster> {
        Arc::new(MemoryPoster {
            script: std::sync::Mutex::new(errors.into()),
            ..MemoryPoster::default()
        })
    }

    fn received(&self) -> Vec<(Instant, serde_json::Value)> {
        self.received.lock().unwrap().clone()
    }

    fn waited(&self) -> usize {
        self.waited.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits for the `count`th request without a timer of its own, so a paused clock stands
    /// still meanwhile.
    async fn requests(&self, count: usize) {
        loop {
            let arrived = self.arrived.notified();
            if self.received.lock().unwrap().len() >= count {
                return;
            }
            arrived.await;
        }
    }

    /// Counts one message in the bucket's window.
    fn take_from_bucket(&self) {
        let Some((_, window)) = self.bucket else {
            return;
        };
        let now = Instant::now();
        let mut current = self.window.lock().unwrap();
        match current.as_mut() {
            Some((start, used)) if now < *start + window => *used += 1,
            _ => *current = Some((now, 1)),
        }
    }
}

impl Post for MemoryPoster {
    fn edit_message<'a>(
        &'a self,
        _channel: u64,
        message_id: &'a str,
        body: &'a str,
        _files: &'a [BatchFile],
    ) -> PostFuture<'a, PostedMessage> {
        let value = serde_json::from_str(body).expect("the announcer edits with JSON");
        self.edits
            .lock()
            .unwrap()
            .push((message_id.to_owned(), value));
        Box::pin(std::future::ready(Ok(PostedMessage {
            id: message_id.to_owned(),
        })))
    }

    fn post_message<'a>(
        &'a self,
        channel: u64,
        body: &'a str,
        _files: &'a [BatchFile],
    ) -> PostFuture<'a, PostedMessage> {
        Box::pin(async move {
            if let Some(open) = self.message_open_at(channel) {
                self.waited
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep_until(open).await;
            }
            self.take_from_bucket();
            let value = serde_json::from_str(body).expect("the announcer posts JSON");
            let count = {
                let mut received = self.received.lock().unwrap();
                received.push((Instant::now(), value));
                received.len()
            };
            self.arrived.notify_waiters();
            let answer = match self.script.lock().unwrap().pop_front() {
                Some(error) => Err(error),
                None => Ok(PostedMessage {
                    id: format!("{}", 1_000 + count),
                }),
            };
            if !self.latency.is_zero() {
                tokio::time::sleep(self.latency).await;
            }
            answer
        })
    }

    fn message_open_at(&self, _channel: u64) -> Option<Instant> {
        let (count, window) = self.bucket?;
        let (start, used) = (*self.window.lock().unwrap())?;
        let opens = start + window;
        (used >= count && Instant::now() < opens).then_some(opens)
    }

    fn create_thread_from_message<'a>(
        &'a self,
        _channel: u64,
        message_id: &'a str,
        _name: &'a str,
    ) -> PostFuture<'a, String> {
        Box::pin(std::future::ready(Ok(format!("9{message_id}"))))
    }
}

/// Waits (in small steps of virtual time, so the clock never jumps past the announcer's own
/// waits) until the poster has received `count` requests.
async fn received_at_least(poster: &MemoryPoster, count: usize) {
    for _ in 0..100_000 {
        if poster.received().len() >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the poster received {:?}", poster.received());
}

fn bodies_content(received: &[(Instant, serde_json::Value)]) -> Vec<String> {
    received
        .iter()
        .map(|(_, body)| body["content"].as_str().unwrap_or_default().to_owned())
        .collect()
}

// The store answers from its own thread, and a paused clock jumps whenever the runtime waits
// for it; so these tests commit their events to the outbox before the announcer starts, and the
// waits they measure involve no store.

#[tokio::test(start_paused = true)]
async fn on_a_paused_clock_joins_within_one_window_share_one_message() {
    let (_dir, store) = crate::store::test_support::open_temp();
    let mut announcements = Vec::new();
    for i in 1..=5u32 {
        announcements.push(outgoing(&store, join(1, &format!("Caller {i}"), i)).await);
    }
    let poster = Arc::new(MemoryPoster::default());
    let running = start_with(
        poster.clone(),
        &store,
        Options {
            coalesce: Duration::from_millis(1500),
            ..Options::default()
        },
    );
    for announcement in announcements {
        running.progress.produced(1);
        running.events.send(announcement).unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!running.progress.is_idle(), "nothing was posted yet");
    // Idle once the message with all five is delivered: the signal tests wait on.
    running.progress.idle().await;
    assert_eq!(poster.received().len(), 1);
    running.stop_and_wait().await;
    let contents = bodies_content(&poster.received());
    assert_eq!(contents.len(), 1, "{contents:#?}");
    for i in 1..=5 {
        assert!(
            contents[0].contains(&format!("**Caller {i}**")),
            "{contents:#?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn on_a_paused_clock_a_rate_limited_message_is_resent_with_the_same_nonce() {
    let (_dir, store) = crate::store::test_support::open_temp();
    let announcement = outgoing(&store, join(1, "Paco Vu", 1)).await;
    let poster = MemoryPoster::scripted(vec![PostError::RateLimited {
        retry_after: Duration::from_secs(2),
        global: false,
        scope: "user".into(),
    }]);
    let running = start_with(poster.clone(), &store, Options::default());
    running.events.send(announcement).unwrap();
    received_at_least(&poster, 2).await;
    running.stop_and_wait().await;
    let received = poster.received();
    assert_eq!(received.len(), 2, "{received:#?}");
    assert_eq!(received[0].1, received[1].1, "the same body and nonce");
    assert!(store.pending_batches().await.unwrap().is_empty());
    assert!(store.undelivered().await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn on_a_paused_clock_a_refused_token_is_retried_with_growing_waits() {
    let (_dir, store) = crate::store::test_support::open_temp();
    let announcement = outgoing(&store, join(1, "Paco Vu", 1)).await;
    let poster = MemoryPoster::scripted(vec![PostError::Unauthorized, PostError::Unauthorized]);
    let running = start_with(poster.clone(), &store, Options::default());
    running.events.send(announcement).unwrap();
    received_at_least(&poster, 3).await;
    running.stop_and_wait().await;
    let times: Vec<Instant> = poster.received().iter().map(|(at, _)| *at).collect();
    assert_eq!(times.len(), 3, "two refusals, then the message went");
    let (first, second) = (times[1] - times[0], times[2] - times[1]);
    assert!(first >= Duration::from_millis(500), "{first:?}");
    assert!(second >= Duration::from_millis(1000), "{second:?}");
    assert!(second > first, "{first:?} then {second:?}");
    assert!(store.pending_batches().await.unwrap().is_empty());
}

/// Commits `count` joins to the outbox (callers "Caller 01"…), before the announcer starts.
async fn joins(store: &Store, count: u32) -> Vec<Announcement> {
    let mut announcements = Vec::new();
    for i in 1..=count {
        announcements.push(outgoing(store, join(1, &format!("Caller {i:02}"), i)).await);
    }
    announcements
}

#[tokio::test(start_paused = true)]
async fn with_default_settings_each_join_is_posted_the_instant_it_arrives() {
    let (_dir, store) = crate::store::test_support::open_temp();
    let announcements = joins(&store, 5).await;
    let poster = Arc::new(MemoryPoster::default());
    let running = start_with_default_announcing(poster.clone(), &store);
    let mut arrived = Vec::new();
    for (i, announcement) in announcements.into_iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        arrived.push(Instant::now());
        running.events.send(announcement).unwrap();
        poster.requests(i + 1).await;
    }
    running.stop_and_wait().await;
    let received = poster.received();
    let posted: Vec<Instant> = received.iter().map(|(at, _)| *at).collect();
    assert_eq!(posted, arrived, "each posted with no wait at all");
    let contents = bodies_content(&received);
    for (i, content) in contents.iter().enumerate() {
        assert!(
            content.contains(&format!("**Caller {:02}**", i + 1)),
            "{contents:#?}"
        );
        assert_eq!(content.matches(" joined · ").count(), 1, "{contents:#?}");
    }
    assert!(store.pending_batches().await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn joins_that_arrive_while_a_post_is_in_flight_share_the_next_message() {
    let (_dir, store) = crate::store::test_support::open_temp();
    let announcements = joins(&store, 4).await;
    let poster = Arc::new(MemoryPoster {
        latency: Duration::from_millis(400),
        ..MemoryPoster::default()
    });
    let running = start_with_default_announcing(poster.clone(), &store);
    let mut announcements = announcements.into_iter();
    running.events.send(announcements.next().unwrap()).unwrap();
    poster.requests(1).await;
    // The first message is in flight (its answer takes 400 ms): these three wait for it.
    for announcement in announcements {
        tokio::time::sleep(Duration::from_millis(100)).await;
        running.events.send(announcement).unwrap();
    }
    poster.requests(2).await;
    running.stop_and_wait().await;
    let received = poster.received();
    let contents = bodies_content(&received);
    assert_eq!(contents.len(), 2, "{contents:#?}");
    assert_eq!(
        contents[0].matches(" joined · ").count(),
        1,
        "{contents:#?}"
    );
    for i in 2..=4 {
        assert!(
            contents[1].contains(&format!("**Caller {i:02}**")),
            "{contents:#?}"
        );
    }
    assert!(
        received[1].0 - received[0].0 >= Duration::from_millis(400),
        "sent once the first was answered"
    );
}

#[tokio::test(start_paused = true)]
async fn joins_that_arrive_while_the_channel_bucket_is_empty_share_the_message_it_opens_for() {
    let (_dir, store) = crate::store::test_support::open_temp();
    let mut announcements = joins(&store, 8).await.into_iter();
    let poster = Arc::new(MemoryPoster {
        // Discord's bucket for creating messages in a channel.
        bucket: Some((5, Duration::from_secs(5))),
        ..MemoryPoster::default()
    });
    let running = start_with_default_announcing(poster.clone(), &store);
    // Five joins, each posted before the next arrives: the bucket is empty after them.
    for count in 1..=5 {
        running.events.send(announcements.next().unwrap()).unwrap();
        poster.requests(count).await;
    }
    for announcement in announcements {
        tokio::time::sleep(Duration::from_millis(100)).await;
        running.events.send(announcement).unwrap();
    }
    poster.requests(6).await;
    running.stop_and_wait().await;
    let received = poster.received();
    let contents = bodies_content(&received);
    assert_eq!(contents.len(), 6, "{contents:#?}");
    for i in 6..=8 {
        assert!(
            contents[5].contains(&format!("**Caller {i:02}**")),
            "{contents:#?}"
        );
    }
    assert_eq!(
        received[5].0 - received[0].0,
        Duration::from_secs(5),
        "posted the instant the bucket opened"
    );
    assert_eq!(
        poster.waited(),
        0,
        "no message was planned into an empty bucket"
    );
    assert!(store.pending_batches().await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_coalescing_window_is_an_extra_wait_from_the_first_pending_join() {
    let (_dir, store) = crate::store::test_support::open_temp();
    let mut announcements = joins(&store, 3).await.into_iter();
    let poster = Arc::new(MemoryPoster::default());
    let running = start_with(
        poster.clone(),
        &store,
        Options {
            coalesce: Duration::from_millis(700),
            ..Options::default()
        },
    );
    // A first join once the announcer has read the store at start (a paused clock jumps while
    // the store answers, and the driver sleeps below).
    running.events.send(announcements.next().unwrap()).unwrap();
    poster.requests(1).await;
    let began = Instant::now();
    running.events.send(announcements.next().unwrap()).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    running.events.send(announcements.next().unwrap()).unwrap();
    poster.requests(2).await;
    running.stop_and_wait().await;
    let received = poster.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[1].0 - began, Duration::from_millis(700));
    let content = received[1].1["content"].as_str().unwrap();
    assert_eq!(content.matches(" joined · ").count(), 2, "{content}");
}

#[tokio::test(start_paused = true)]
async fn a_join_whose_caller_has_no_name_yet_holds_its_message_at_most_the_grace() {
    let (_dir, store) = crate::store::test_support::open_temp();
    let named = outgoing(&store, join(1, "Caller 01", 1)).await;
    let mut nameless = join(1, "Caller 02", 2);
    if let EventKind::ParticipantJoined { identity, .. } = &mut nameless.kind {
        *identity = Identity::default();
    }
    let nameless = outgoing(&store, nameless).await;
    let poster = Arc::new(MemoryPoster::default());
    let running = start_with_default_announcing(poster.clone(), &store);
    let began = Instant::now();
    running.events.send(named).unwrap();
    poster.requests(1).await;
    running.events.send(nameless).unwrap();
    poster.requests(2).await;
    running.stop_and_wait().await;
    let received = poster.received();
    assert_eq!(received[0].0, began, "a named join goes at once");
    let held = received[1].0 - began;
    assert!(
        held >= super::outlet::NAME_GRACE
            && held < super::outlet::NAME_GRACE + Duration::from_secs(1),
        "held {held:?}"
    );
    let contents = bodies_content(&received);
    assert!(contents[0].contains("**Caller 01**"), "{contents:#?}");
    assert!(contents[1].contains("unknown caller"), "{contents:#?}");
}
