//! The announcer: takes detector events in order, waits out the coalescing window, renders them
//! from the roster at send time and hands the text to a sink.
//!
//! In local mode the sink is standard output (one line per announcement). Waiting before
//! rendering is what lets an identity learned a moment after a join show in the join's line.
//!
//! In Discord mode ([`run_discord`]) the announcements become channel messages
//! ([`super::message`]), committed to the store with their nonce before they are posted by
//! [`super::poster`], sent one at a time in order, retried through rate limits and outages and
//! parked when Discord refuses them for good.

use crate::conference::{ConferenceEvent, ConferenceId, EventKind, Roster};
use crate::config::PhoneNumbers;
use crate::discord::message;
use crate::discord::poster::{PostError, Poster};
use crate::pipeline::{Announcement, Clock};
use crate::present::{phrase, plain};
use crate::ringcentral::subscription::SubscriptionHealth;
use crate::store::{Batch, BatchTarget, NewBatch, Store};
use crate::util::backoff::Backoff;
use crate::util::random;
use crate::util::shutdown::Shutdown;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Where rendered announcements go.
pub trait Sink: Send + Sync + 'static {
    fn send(&self, lines: Vec<String>) -> SinkFuture<'_>;
}

/// What [`Sink::send`] returns (a boxed future keeps the trait usable as `dyn Sink`).
pub type SinkFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send + 'a>>;

/// Local mode: one line per announcement on standard output.
#[derive(Debug, Default)]
pub struct StdoutSink;

impl Sink for StdoutSink {
    fn send(&self, lines: Vec<String>) -> SinkFuture<'_> {
        Box::pin(async move {
            let mut text = String::new();
            for line in lines {
                text.push_str(&line);
                text.push('\n');
            }
            let mut stdout = tokio::io::stdout();
            stdout.write_all(text.as_bytes()).await?;
            stdout.flush().await
        })
    }
}

/// Keeps every line in memory (the demo and tests read them back).
#[derive(Debug, Clone, Default)]
pub struct MemorySink {
    lines: Arc<Mutex<Vec<String>>>,
    notify: Option<mpsc::UnboundedSender<String>>,
}

impl MemorySink {
    pub fn new() -> Self {
        MemorySink::default()
    }

    /// Also forwards each line to `notify` as it is sent.
    pub fn forwarding(notify: mpsc::UnboundedSender<String>) -> Self {
        MemorySink {
            lines: Arc::default(),
            notify: Some(notify),
        }
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .map(|lines| lines.clone())
            .unwrap_or_default()
    }
}

impl Sink for MemorySink {
    fn send(&self, lines: Vec<String>) -> SinkFuture<'_> {
        if let Ok(mut kept) = self.lines.lock() {
            kept.extend(lines.iter().cloned());
        }
        if let Some(notify) = &self.notify {
            for line in lines {
                let _ = notify.send(line);
            }
        }
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Settings the announcer runs with.
#[derive(Debug, Clone, Copy)]
pub struct AnnouncerSettings {
    pub coalesce: Duration,
    pub phone_numbers: PhoneNumbers,
}

/// Runs until `events` closes or `shutdown` fires; either way every event already received is
/// announced before it returns (a graceful stop loses nothing).
pub async fn run(
    mut events: mpsc::UnboundedReceiver<Announcement>,
    roster: Roster,
    sink: Arc<dyn Sink>,
    settings: AnnouncerSettings,
    mut shutdown: Shutdown,
    store: Option<Store>,
) {
    let mut pending: VecDeque<(Instant, Announcement)> = VecDeque::new();
    let mut closing = false;
    loop {
        let due = pending
            .front()
            .map(|(arrived, _)| *arrived + settings.coalesce);
        tokio::select! {
            received = events.recv(), if !closing => match received {
                Some(event) => pending.push_back((Instant::now(), event)),
                None => closing = true,
            },
            _ = sleep_until(due), if due.is_some() => {
                let now = Instant::now();
                let mut ready = Vec::new();
                while pending.front().is_some_and(|(arrived, _)| *arrived + settings.coalesce <= now) {
                    if let Some((_, event)) = pending.pop_front() {
                        ready.push(event);
                    }
                }
                send(&ready, &roster, sink.as_ref(), settings, store.as_ref()).await;
            }
            () = shutdown.recv(), if !closing => closing = true,
        }
        if closing {
            let mut rest = Vec::new();
            receive_the_rest(&mut events, &mut rest, LOCAL_DRAIN).await;
            pending.extend(rest.into_iter().map(|event| (Instant::now(), event)));
            let ready: Vec<Announcement> = pending.drain(..).map(|(_, event)| event).collect();
            send(&ready, &roster, sink.as_ref(), settings, store.as_ref()).await;
            return;
        }
    }
}

/// How long a graceful stop in local mode waits for the detector's last events.
const LOCAL_DRAIN: Duration = Duration::from_secs(5);

/// On a graceful stop the detector task is still draining the inbox, and what it produces
/// arrives here until it drops its sender: keep receiving until then (at most `bound`), so a stop
/// with a backlog announces it now rather than at the next start.
async fn receive_the_rest(
    events: &mut mpsc::UnboundedReceiver<Announcement>,
    into: &mut Vec<Announcement>,
    bound: Duration,
) {
    let drained = tokio::time::timeout(bound, async {
        while let Some(event) = events.recv().await {
            into.push(event);
        }
    })
    .await;
    if drained.is_err() {
        // The stop's summary says what was left; the detector's rows are replayed at start.
        tracing::debug!("the detector was still producing events when the announcer stopped");
    }
    events.close();
    while let Ok(event) = events.try_recv() {
        into.push(event);
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

async fn send(
    events: &[Announcement],
    roster: &Roster,
    sink: &dyn Sink,
    settings: AnnouncerSettings,
    store: Option<&Store>,
) {
    if events.is_empty() {
        return;
    }
    let lines: Vec<String> = events
        .iter()
        .map(|announcement| {
            plain::line(&phrase(&announcement.event, roster), settings.phone_numbers)
        })
        .collect();
    let count = lines.len() as u64;
    match sink.send(lines).await {
        Ok(()) => {
            metrics::counter!("ringside_announcements_sent_total").increment(count);
            let delivered: Vec<i64> = events
                .iter()
                .filter_map(|announcement| announcement.outbox_id)
                .collect();
            if let Some(store) = store
                && let Err(error) = store.mark_delivered(delivered).await
            {
                // Announced again after a crash, at worst; a failing store is logged by the store.
                tracing::debug!(%error, "could not mark announcements delivered");
            }
        }
        Err(error) => {
            metrics::counter!("ringside_announcements_failed_total").increment(count);
            tracing::error!(%error, "could not write announcements; they stay in the outbox");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Discord mode
// ---------------------------------------------------------------------------------------------

/// The first wait after a transient failure; doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait between retries of a transient failure.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// The longest wait between retries while Discord refuses the bot token.
const MAX_UNAUTHORIZED_BACKOFF: Duration = Duration::from_secs(300);
/// How many times a thread creation is tried before its conference is announced in the channel.
const THREAD_ATTEMPTS: u32 = 3;

/// What the Discord announcer runs with.
pub struct DiscordAnnouncer {
    /// The detector's events, in order, with their outbox rows.
    pub events: mpsc::UnboundedReceiver<Announcement>,
    pub roster: Roster,
    pub poster: Arc<Poster>,
    pub store: Store,
    /// Decides which events are stale (their `received_at` against now).
    pub clock: Arc<dyn Clock>,
    pub phone_numbers: PhoneNumbers,
    /// `announce.coalesce_ms`: how long the first pending event waits for company.
    pub coalesce: Duration,
    /// `announce.stale_after_secs`: older events are summarised, not announced one by one.
    pub stale_after: Duration,
    /// `announce.thread_per_conference`.
    pub thread_per_conference: bool,
    /// `discord.channel_id`.
    pub channel_id: u64,
    /// The RingCentral subscription's health (none in setups without a subscription).
    pub health: Option<watch::Receiver<SubscriptionHealth>>,
    pub shutdown: Shutdown,
    /// How long a graceful stop keeps sending what is pending; the rest is sent at the next start.
    pub drain_timeout: Duration,
}

/// Where a batch is delivered and what it needs while being delivered.
struct Delivery {
    poster: Arc<Poster>,
    store: Store,
    channel_id: u64,
    /// Conference → thread, as learned this run (the store has the rest).
    threads: Mutex<std::collections::HashMap<String, u64>>,
}

type InFlight = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Announces in Discord until `events` closes or `shutdown` fires.
///
/// At start, the messages committed but not yet sent (a crash, or a stop that ran out of time)
/// are sent first, in order, with their stored body and nonce. Then: the first pending event
/// opens the coalescing window; when it has elapsed and nothing is being sent, every pending
/// event becomes one announcement (split at line boundaries when long), committed to the store
/// with its nonce, then posted, one message at a time, in order. Events that arrive while a
/// message is in flight or waiting out a rate limit go into the next announcement. A message
/// Discord refuses for good is parked and reported; the next one still goes. On shutdown what is
/// pending is committed and sent for at most `drain_timeout`.
pub async fn run_discord(config: DiscordAnnouncer) {
    let DiscordAnnouncer {
        mut events,
        roster,
        poster,
        store,
        clock,
        phone_numbers,
        coalesce,
        stale_after,
        thread_per_conference,
        channel_id,
        mut health,
        mut shutdown,
        drain_timeout,
    } = config;
    let delivery = Arc::new(Delivery {
        poster,
        store: store.clone(),
        channel_id,
        threads: Mutex::default(),
    });
    let mut planner = Planner {
        roster,
        clock,
        phone_numbers,
        stale_after,
        thread_per_conference,
        channel_id,
        nonce_prefix: nonce_prefix(),
        sequence: 0,
    };

    let mut queue: VecDeque<Batch> = match store.pending_batches().await {
        Ok(pending) => {
            if !pending.is_empty() {
                tracing::info!(
                    count = pending.len(),
                    "sending the announcements committed before the restart"
                );
            }
            pending.into()
        }
        Err(error) => {
            tracing::error!(%error, "cannot read the pending announcements; they are sent at the next start");
            VecDeque::new()
        }
    };
    let mut pending: Vec<Announcement> = Vec::new();
    let mut window_opened: Option<Instant> = None;
    let mut in_flight: Option<InFlight> = None;
    let mut closing = false;
    let mut notice = HealthNotice::default();
    if let Some(receiver) = health.as_mut() {
        let current = receiver.borrow_and_update().clone();
        if let Some(batch) = notice.on(&current, &mut planner)
            && !commit(&store, vec![batch], &mut queue).await
        {
            notice.not_posted();
        }
    }

    loop {
        if in_flight.is_none()
            && let Some(batch) = queue.pop_front()
        {
            in_flight = Some(Box::pin(deliver(Arc::clone(&delivery), batch)));
        }
        let queued = pending.len() + queue.len() + usize::from(in_flight.is_some());
        metrics::gauge!("ringside_announcements_queued").set(queued as f64);
        let due = match (&in_flight, window_opened) {
            (None, Some(opened)) => Some(opened + coalesce),
            _ => None,
        };
        tokio::select! {
            received = events.recv(), if !closing => match received {
                Some(event) => {
                    if pending.is_empty() {
                        window_opened = Some(Instant::now());
                    }
                    pending.push(event);
                }
                None => closing = true,
            },
            () = sleep_until(due), if due.is_some() => {
                window_opened = None;
                let taken = std::mem::take(&mut pending);
                let batches = planner.plan(&taken);
                if !commit(&store, batches, &mut queue).await {
                    // Not committed: keep the events and try again after a window.
                    pending = taken;
                    window_opened = Some(Instant::now());
                }
            }
            () = finished(&mut in_flight) => in_flight = None,
            changed = health_changed(&mut health) => match changed {
                Some(state) => {
                    if let Some(batch) = notice.on(&state, &mut planner)
                        && !commit(&store, vec![batch], &mut queue).await
                    {
                        notice.not_posted();
                    }
                }
                None => health = None,
            },
            () = shutdown.recv(), if !closing => closing = true,
        }
        if closing {
            receive_the_rest(&mut events, &mut pending, drain_timeout).await;
            let batches = planner.plan(&std::mem::take(&mut pending));
            commit(&store, batches, &mut queue).await;
            let drained = tokio::time::timeout(drain_timeout, async {
                if let Some(current) = in_flight.take() {
                    current.await;
                }
                while let Some(batch) = queue.pop_front() {
                    deliver(Arc::clone(&delivery), batch).await;
                }
            })
            .await;
            if drained.is_err() {
                tracing::warn!(
                    "stopping with announcements not yet sent; they are sent at the next start"
                );
            }
            metrics::gauge!("ringside_announcements_queued").set(0.0);
            return;
        }
    }
}

async fn finished(in_flight: &mut Option<InFlight>) {
    match in_flight {
        Some(current) => current.await,
        None => std::future::pending().await,
    }
}

async fn health_changed(
    health: &mut Option<watch::Receiver<SubscriptionHealth>>,
) -> Option<SubscriptionHealth> {
    match health {
        Some(receiver) => match receiver.changed().await {
            Ok(()) => Some(receiver.borrow_and_update().clone()),
            Err(_) => None,
        },
        None => std::future::pending().await,
    }
}

/// Commits batches before they are posted and queues them; answers whether that worked.
async fn commit(store: &Store, batches: Vec<NewBatch>, queue: &mut VecDeque<Batch>) -> bool {
    if batches.is_empty() {
        return true;
    }
    match store.create_batches(batches).await {
        Ok(created) => {
            queue.extend(created);
            true
        }
        Err(error) => {
            // The store logs that it is failing, once; the caller retries after a window.
            tracing::debug!(%error, "cannot commit announcements before posting them; retrying");
            false
        }
    }
}

/// A random nonce prefix for this run: with the sequence it makes every batch's nonce unique.
fn nonce_prefix() -> String {
    let mut bytes = [0u8; 5];
    if !random::fill(&mut bytes) {
        // Time is unique enough for a nonce prefix when the OS has no randomness to give.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        bytes.copy_from_slice(&nanos.to_le_bytes()[..5]);
    }
    random::hex_of(&bytes)
}

/// "ringside cannot see calls" once when health turns Failing, and the recovery after it.
#[derive(Debug, Default)]
struct HealthNotice {
    posted: bool,
}

impl HealthNotice {
    fn on(&mut self, state: &SubscriptionHealth, planner: &mut Planner) -> Option<NewBatch> {
        match state {
            SubscriptionHealth::Failing { reason } if !self.posted => {
                self.posted = true;
                Some(planner.channel_batch(message::unhealthy_notice(reason), None))
            }
            SubscriptionHealth::Active { .. } if self.posted => {
                self.posted = false;
                Some(planner.channel_batch(message::recovered_notice(), None))
            }
            _ => None,
        }
    }

    /// The notice [`HealthNotice::on`] answered could not be committed: as if it never was, so
    /// the next change of health tries again.
    fn not_posted(&mut self) {
        self.posted = !self.posted;
    }
}

/// Turns pending events into messages.
struct Planner {
    roster: Roster,
    clock: Arc<dyn Clock>,
    phone_numbers: PhoneNumbers,
    stale_after: Duration,
    thread_per_conference: bool,
    channel_id: u64,
    nonce_prefix: String,
    sequence: u64,
}

impl Planner {
    fn new_batch(
        &mut self,
        content: String,
        conference: Option<&ConferenceId>,
        target: BatchTarget,
        thread_name: Option<String>,
    ) -> NewBatch {
        self.sequence += 1;
        let nonce = message::nonce(&self.nonce_prefix, self.sequence);
        NewBatch {
            body: message::body(&content, &nonce),
            nonce,
            channel_id: self.channel_id.to_string(),
            conference_id: conference.map(|id| id.as_str().to_owned()),
            target,
            thread_name,
            outbox_ids: Vec::new(),
        }
    }

    fn channel_batch(&mut self, content: String, conference: Option<&ConferenceId>) -> NewBatch {
        self.new_batch(content, conference, BatchTarget::Channel, None)
    }

    /// The messages announcing `events`: stale ones summarised first, then the rest.
    fn plan(&mut self, events: &[Announcement]) -> Vec<NewBatch> {
        if events.is_empty() {
            return Vec::new();
        }
        let stale_before = self
            .clock
            .now()
            .plus_millis(-i64::try_from(self.stale_after.as_millis()).unwrap_or(i64::MAX));
        let (stale, fresh): (Vec<&ConferenceEvent>, Vec<&ConferenceEvent>) = events
            .iter()
            .map(|announcement| &announcement.event)
            .partition(|event| event.received_at < stale_before);
        let style = self.phone_numbers;
        let mut batches = Vec::new();
        if !stale.is_empty() {
            tracing::info!(
                count = stale.len(),
                "summarising announcements that waited too long"
            );
            for content in message::away_summary(&stale, &self.roster, style) {
                batches.push(self.channel_batch(content, None));
            }
        }
        if !fresh.is_empty() && !self.thread_per_conference {
            let single = fresh
                .iter()
                .all(|event| event.conference_id == fresh[0].conference_id)
                .then(|| fresh[0].conference_id.clone());
            for content in message::announcement(&fresh, &self.roster, style) {
                batches.push(self.channel_batch(content, single.as_ref()));
            }
        } else if !fresh.is_empty() {
            batches.extend(self.plan_threads(&fresh));
        }
        // The events are delivered once the last of their messages is done.
        if let Some(last) = batches.last_mut() {
            last.outbox_ids = events
                .iter()
                .filter_map(|announcement| announcement.outbox_id)
                .collect();
        }
        batches
    }

    /// Thread mode: per conference, its start in the channel (a thread is made from it), its
    /// joins and leaves in its thread, its end in the channel.
    fn plan_threads(&mut self, fresh: &[&ConferenceEvent]) -> Vec<NewBatch> {
        let style = self.phone_numbers;
        let mut conferences: Vec<ConferenceId> = Vec::new();
        for event in fresh {
            if !conferences.contains(&event.conference_id) {
                conferences.push(event.conference_id.clone());
            }
        }
        let mut batches = Vec::new();
        for conference in conferences {
            let events: Vec<&ConferenceEvent> = fresh
                .iter()
                .copied()
                .filter(|event| event.conference_id == conference)
                .collect();
            let is = |event: &&ConferenceEvent, start: bool| match event.kind {
                EventKind::ConferenceStarted { .. } => start,
                EventKind::ConferenceEnded { .. } => !start,
                _ => false,
            };
            let starts: Vec<&ConferenceEvent> =
                events.iter().copied().filter(|e| is(e, true)).collect();
            let ends: Vec<&ConferenceEvent> =
                events.iter().copied().filter(|e| is(e, false)).collect();
            let middle: Vec<&ConferenceEvent> = events
                .iter()
                .copied()
                .filter(|e| {
                    !matches!(
                        e.kind,
                        EventKind::ConferenceStarted { .. } | EventKind::ConferenceEnded { .. }
                    )
                })
                .collect();
            if !starts.is_empty() {
                let name = message::thread_name(&conference, &events, &self.roster, style);
                for content in message::announcement(&starts, &self.roster, style) {
                    let batch = self.new_batch(
                        content,
                        Some(&conference),
                        BatchTarget::ThreadStart,
                        Some(name.clone()),
                    );
                    batches.push(batch);
                }
            }
            for content in message::announcement(&middle, &self.roster, style) {
                batches.push(self.new_batch(content, Some(&conference), BatchTarget::Thread, None));
            }
            for content in message::announcement(&ends, &self.roster, style) {
                batches.push(self.channel_batch(content, Some(&conference)));
            }
        }
        batches
    }
}

/// The wait after `attempt` failures in a row: [`FIRST_BACKOFF`], doubling up to `max`.
fn backoff(attempt: u32, max: Duration) -> Duration {
    Backoff::new(FIRST_BACKOFF, max).wait_after(attempt)
}

/// Posts one batch until it is sent or parked (retrying rate limits, outages and a refused
/// token; a stop drops this future, leaving the batch pending for the next start).
async fn deliver(delivery: Arc<Delivery>, batch: Batch) {
    let channel = batch.channel_id.parse().unwrap_or(delivery.channel_id);
    let mut destination = match (batch.target, batch.conference_id.as_deref()) {
        (BatchTarget::Thread, Some(conference)) => {
            delivery.thread(conference).await.unwrap_or(channel)
        }
        _ => channel,
    };
    let mut attempt = 0u32;
    let mut limited = 0u32;
    loop {
        match delivery.poster.post_message(destination, &batch.body).await {
            Ok(posted) => {
                if batch.target == BatchTarget::ThreadStart
                    && let Some(conference) = batch.conference_id.as_deref()
                {
                    let name = batch.thread_name.as_deref().unwrap_or("Conference");
                    delivery
                        .start_thread(channel, &posted.id, conference, name)
                        .await;
                }
                metrics::counter!("ringside_announcements_sent_total").increment(1);
                if let Err(error) = delivery.store.batch_sent(batch.id, posted.id).await {
                    // Sent again at the next start, where Discord's nonce check drops the copy.
                    tracing::warn!(%error, batch = batch.id, "could not mark an announcement sent");
                }
                return;
            }
            Err(PostError::RateLimited { .. }) => {
                // The poster waits the limit out before the next request; same body, same nonce.
                // Repeated 429s for the same message also back off, in case Discord keeps
                // answering with a wait shorter than it means.
                limited += 1;
                metrics::counter!("ringside_announcements_retried_total").increment(1);
                if limited > 1 {
                    tokio::time::sleep(backoff(limited - 1, MAX_BACKOFF)).await;
                }
            }
            Err(PostError::Refused {
                status, message, ..
            }) if destination != channel => {
                // The thread is gone or closed: the channel still takes the message.
                tracing::warn!(status, %message, "the conference's thread refused an announcement; posting in the channel");
                if let Some(conference) = batch.conference_id.as_deref() {
                    delivery.forget_thread(conference);
                }
                destination = channel;
                metrics::counter!("ringside_announcements_retried_total").increment(1);
            }
            Err(error @ PostError::Refused { .. }) => {
                metrics::counter!("ringside_announcements_parked_total").increment(1);
                tracing::error!(%error, batch = batch.id, nonce = %batch.nonce, "Discord refused an announcement; it is parked");
                if let Err(error) = delivery
                    .store
                    .batch_parked(batch.id, error.to_string())
                    .await
                {
                    tracing::warn!(%error, batch = batch.id, "could not mark an announcement parked");
                }
                return;
            }
            Err(PostError::Unauthorized) => {
                attempt += 1;
                metrics::counter!("ringside_announcements_retried_total").increment(1);
                tracing::error!(
                    "Discord does not accept ringside's bot token (check discord.token); \
                     announcements are kept and retried"
                );
                tokio::time::sleep(backoff(attempt, MAX_UNAUTHORIZED_BACKOFF)).await;
            }
            Err(error @ PostError::Transient { .. }) => {
                attempt += 1;
                metrics::counter!("ringside_announcements_retried_total").increment(1);
                let wait = backoff(attempt, MAX_BACKOFF);
                tracing::warn!(%error, retry_in_ms = wait.as_millis() as u64, "announcement not sent; retrying");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

impl Delivery {
    async fn thread(&self, conference: &str) -> Option<u64> {
        if let Some(thread) = self
            .threads
            .lock()
            .ok()
            .and_then(|threads| threads.get(conference).copied())
        {
            return Some(thread);
        }
        match self.store.conference_thread(conference).await {
            Ok(thread) => thread.and_then(|thread| thread.parse().ok()),
            Err(error) => {
                tracing::warn!(%error, "cannot read a conference's thread; posting in the channel");
                None
            }
        }
    }

    fn forget_thread(&self, conference: &str) {
        if let Ok(mut threads) = self.threads.lock() {
            threads.insert(conference.to_owned(), self.channel_id);
        }
    }

    /// Creates the conference's thread from its start message (a few tries; without a thread
    /// its messages go to the channel).
    async fn start_thread(&self, channel: u64, message_id: &str, conference: &str, name: &str) {
        for attempt in 1..=THREAD_ATTEMPTS {
            match self
                .poster
                .create_thread_from_message(channel, message_id, name)
                .await
            {
                Ok(thread) => {
                    if let Ok(id) = thread.parse::<u64>()
                        && let Ok(mut threads) = self.threads.lock()
                    {
                        threads.insert(conference.to_owned(), id);
                    }
                    if let Err(error) = self.store.set_conference_thread(conference, &thread).await
                    {
                        tracing::warn!(%error, "cannot keep a conference's thread");
                    }
                    return;
                }
                Err(PostError::RateLimited { .. }) => {}
                Err(error @ PostError::Refused { .. }) => {
                    tracing::warn!(%error, "cannot create a conference's thread; it is announced in the channel");
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, attempt, "cannot create a conference's thread yet");
                    tokio::time::sleep(backoff(attempt, MAX_BACKOFF)).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod discord_tests {
    use super::*;
    use crate::conference::{Identity, ParticipantId, Timestamp};
    use crate::discord::api::DiscordApi;
    use crate::discord::poster::fake::{FakeDiscord, Scripted};
    use crate::pipeline::SystemClock;
    use secrecy::SecretString;
    use std::future::Future;

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
    }

    impl Default for Options {
        fn default() -> Self {
            Options {
                coalesce: Duration::from_millis(100),
                stale_after: Duration::from_secs(600),
                threads: false,
                health: None,
            }
        }
    }

    struct Running {
        events: mpsc::UnboundedSender<Announcement>,
        shutdown: crate::util::shutdown::StopSender,
        task: tokio::task::JoinHandle<()>,
    }

    impl Running {
        /// Commits `event` to the outbox and hands it to the announcer, as the detector does.
        async fn send(&self, store: &Store, event: ConferenceEvent) {
            self.events.send(outgoing(store, event).await).unwrap();
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
        let (events, receiver) = mpsc::unbounded_channel();
        let (shutdown, shutdown_receiver) = crate::util::shutdown::channel();
        let config = DiscordAnnouncer {
            events: receiver,
            roster: Roster::new(),
            poster: Arc::new(Poster::new(api(&fake.base_url)).unwrap()),
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
        };
        Running {
            events,
            shutdown,
            task: tokio::spawn(run_discord(config)),
        }
    }

    fn now() -> Timestamp {
        SystemClock.now()
    }

    fn conference(n: u32) -> ConferenceId {
        ConferenceId::parse(&format!("s-conf-{n}")).unwrap()
    }

    fn event(
        conference_n: u32,
        id: &str,
        kind: EventKind,
        received_at: Timestamp,
    ) -> ConferenceEvent {
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
            .commit_processed(vec![], None, vec![row])
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
}
