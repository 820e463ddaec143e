//! The Discord announcer's loop: messages committed before a restart go first; then each
//! coalescing window's events are planned into messages, committed with their nonces, and
//! delivered one at a time, in order.

use super::delivery::{Delivery, deliver};
use super::planner::{HealthNotice, Planner, nonce_prefix};
use super::{Post, receive_the_rest, sleep_until};
use crate::conference::Roster;
use crate::config::PhoneNumbers;
use crate::pipeline::{Announcement, Clock, Progress, SubscriptionHealth};
use crate::store::{Batch, NewBatch, Store};
use crate::util::shutdown::Shutdown;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// What the Discord announcer runs with.
pub struct DiscordAnnouncer {
    /// The detector's events, in order, with their outbox rows.
    pub events: mpsc::UnboundedReceiver<Announcement>,
    pub roster: Roster,
    pub poster: Arc<dyn Post>,
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
    /// Counts the announcements finished with (their message delivered or parked).
    pub progress: Progress,
}

/// The delivery under way; it answers the id of its batch.
type InFlight = std::pin::Pin<Box<dyn std::future::Future<Output = i64> + Send>>;

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
        progress,
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
    // How many announcements each batch finishes (the last batch planned from them).
    let mut finishes: HashMap<i64, usize> = HashMap::new();
    let mut closing = false;
    let mut notice = HealthNotice::default();
    if let Some(receiver) = health.as_mut() {
        let current = receiver.borrow_and_update().clone();
        if let Some(batch) = notice.on(&current, &mut planner)
            && !commit_batches(&store, vec![batch], &mut queue).await
        {
            notice.not_posted();
        }
    }

    loop {
        if in_flight.is_none()
            && let Some(batch) = queue.pop_front()
        {
            let id = batch.id;
            let delivery = Arc::clone(&delivery);
            in_flight = Some(Box::pin(async move {
                deliver(delivery, batch).await;
                id
            }));
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
                if commit_batches(&store, batches, &mut queue).await {
                    match queue.back() {
                        Some(last) => *finishes.entry(last.id).or_default() += taken.len(),
                        None => progress.announced(taken.len()),
                    }
                } else {
                    // Not committed: keep the events and try again after a window.
                    pending = taken;
                    window_opened = Some(Instant::now());
                }
            }
            id = finished(&mut in_flight) => {
                in_flight = None;
                progress.announced(finishes.remove(&id).unwrap_or(0));
            }
            changed = health_changed(&mut health) => match changed {
                Some(state) => {
                    if let Some(batch) = notice.on(&state, &mut planner)
                        && !commit_batches(&store, vec![batch], &mut queue).await
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
            commit_batches(&store, batches, &mut queue).await;
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

async fn finished(in_flight: &mut Option<InFlight>) -> i64 {
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
async fn commit_batches(
    store: &Store,
    batches: Vec<NewBatch>,
    queue: &mut VecDeque<Batch>,
) -> bool {
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
