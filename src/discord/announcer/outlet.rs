//! The one announcer loop, and the [`Outlet`] it sends through (Discord's channel, or plain lines
//! on a [`super::Sink`]).
//!
//! The rule, for every outlet: a message leaves as soon as the previous one is finished with and
//! the outlet can take one without waiting (for Discord: the channel's create-message bucket and
//! the global limit are open). Everything pending then goes into it; events that arrive while a
//! message is in flight, the bucket is empty or a 429 is waited out accumulate and share the next
//! one. `announce.coalesce_ms`, when not 0, is an extra wait counted from the first pending
//! event. Each message is kept (committed) before it is delivered, and messages are delivered one
//! at a time, in order.
//!
//! One exception keeps names right: a join whose caller the roster cannot name yet holds the
//! message for at most [`NAME_GRACE`], re-checked every [`NAME_POLL`]. RingCentral often names a
//! merged caller in a notification a moment after the one that makes them join; a named join is
//! never held, and a caller who has no name at all is announced as unknown once the grace ends.

use super::{receive_the_rest, sleep_until};
use crate::conference::{EventKind, ParticipantKey, Roster};
use crate::pipeline::{Announcement, Progress, SubscriptionHealth};
use crate::util::shutdown::Shutdown;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// A delivery under way.
pub(super) type Delivering = Pin<Box<dyn Future<Output = ()> + Send>>;

/// How long events whose messages could not be committed wait before they are tried again (a
/// failing store logs once; this keeps a zero coalescing window from turning into a busy loop).
const COMMIT_RETRY: Duration = Duration::from_secs(1);

/// The longest a join whose caller has no name yet holds its message for the name.
pub(super) const NAME_GRACE: Duration = Duration::from_secs(5);
/// How often a held message looks again whether its callers are named.
const NAME_POLL: Duration = Duration::from_millis(25);

/// Where the announcer's messages go.
pub(super) trait Outlet: Send + 'static {
    /// A message, committed and waiting to be delivered.
    type Message: Send + 'static;

    /// Messages committed before a restart: delivered first, in order.
    fn committed(&mut self) -> impl Future<Output = Vec<Self::Message>> + Send;

    /// Turns `events` into messages (rendered from the roster now) and keeps them before they are
    /// delivered; `None` when they could not be kept, so the events stay pending.
    fn commit(
        &mut self,
        events: &[Announcement],
    ) -> impl Future<Output = Option<Vec<Self::Message>>> + Send;

    /// The committed notice a change of the subscription's health calls for, if any.
    fn on_health(
        &mut self,
        state: &SubscriptionHealth,
    ) -> impl Future<Output = Vec<Self::Message>> + Send;

    /// The parked messages an operator asked to send again, taken to be delivered like the
    /// others; looked for at start and every [`Loop::resend_poll`]. An outlet that parks nothing
    /// has none.
    fn resends(&mut self) -> impl Future<Output = Vec<Self::Message>> + Send {
        std::future::ready(Vec::new())
    }

    /// When the outlet can take the next message without waiting; `None`: now.
    fn open_at(&self) -> Option<Instant>;

    /// Delivers one message until it is finished with (sent, parked, or failed for good). A stop
    /// may drop the future, leaving what it had committed for the next start.
    fn deliver(&self, message: Self::Message) -> Delivering;
}

/// What the loop runs with, whatever the outlet.
pub(super) struct Loop {
    /// The detector's events, in order, with their outbox rows.
    pub(super) events: mpsc::UnboundedReceiver<Announcement>,
    /// `announce.coalesce_ms`: the extra wait of the first pending event (0: none).
    pub(super) coalesce: Duration,
    /// The RingCentral subscription's health (none in setups without a subscription).
    pub(super) health: Option<watch::Receiver<SubscriptionHealth>>,
    pub(super) shutdown: Shutdown,
    /// How long a graceful stop keeps receiving and sending; the rest is sent at the next start.
    pub(super) drain_timeout: Duration,
    /// Counts the announcements finished with (their message delivered, parked or failed).
    pub(super) progress: Progress,
    /// Whether a pending join's caller is named yet.
    pub(super) roster: Roster,
    /// Told how many messages are pending or in flight (the roster cards give way to them).
    pub(super) backlog: Option<watch::Sender<usize>>,
    /// How often [`Outlet::resends`] is asked after start; `None`: only at start.
    pub(super) resend_poll: Option<Duration>,
}

/// A committed message and how many announcements are finished with once it is.
type Queued<M> = (M, usize);

/// Announces through `outlet` until the events close or the stop comes.
///
/// At start, the messages committed before a restart go first, then the parked ones an operator
/// asked for again (looked for again every `resend_poll`, and queued behind what is committed
/// already: the same bucket, one message at a time). Then, whenever nothing is being
/// delivered, nothing committed is waiting, the outlet is open and the first pending event has
/// waited `coalesce`, every pending event is committed into the next message(s). On a stop, what
/// is pending is committed and delivered for at most `drain_timeout`.
pub(super) async fn announce<O: Outlet>(mut outlet: O, config: Loop) {
    let Loop {
        mut events,
        coalesce,
        mut health,
        mut shutdown,
        drain_timeout,
        progress,
        roster,
        backlog,
        resend_poll,
    } = config;
    let mut queue: VecDeque<Queued<O::Message>> = outlet
        .committed()
        .await
        .into_iter()
        .map(|message| (message, 0))
        .collect();
    queue.extend(outlet.resends().await.into_iter().map(|m| (m, 0)));
    let mut resend_at = resend_poll.map(|poll| Instant::now() + poll);
    let mut pending: Vec<Announcement> = Vec::new();
    // When the first pending event may go at the earliest (its arrival plus `coalesce`, or a
    // retry after a failed commit).
    let mut gathered_at: Option<Instant> = None;
    let mut in_flight: Option<(Delivering, usize)> = None;
    // When each pending event arrived (a join waiting for its caller's name is held at most
    // `NAME_GRACE` from its own arrival), and when the names are looked at again.
    let mut arrivals: Vec<Instant> = Vec::new();
    let mut names_checked_at: Option<Instant> = None;
    let mut closing = false;
    if let Some(receiver) = health.as_mut() {
        let current = receiver.borrow_and_update().clone();
        queue.extend(outlet.on_health(&current).await.into_iter().map(|m| (m, 0)));
    }

    loop {
        if in_flight.is_none()
            && let Some((message, finishes)) = queue.pop_front()
        {
            in_flight = Some((outlet.deliver(message), finishes));
        }
        let queued = pending.len() + queue.len() + usize::from(in_flight.is_some());
        metrics::gauge!("ringside_announcements_queued").set(queued as f64);
        if let Some(backlog) = &backlog {
            backlog.send_if_modified(|count| std::mem::replace(count, queued) != queued);
        }
        let due = match (&in_flight, gathered_at) {
            (None, Some(gathered)) => {
                let due = outlet.open_at().map_or(gathered, |open| open.max(gathered));
                Some(names_checked_at.map_or(due, |check| check.max(due)))
            }
            _ => None,
        };
        tokio::select! {
            received = events.recv(), if !closing => match received {
                Some(event) => {
                    if pending.is_empty() {
                        gathered_at = Some(Instant::now() + coalesce);
                    }
                    arrivals.push(Instant::now());
                    pending.push(event);
                }
                None => closing = true,
            },
            () = sleep_until(due), if due.is_some() => {
                // Whatever arrived at the same instant goes too.
                while let Ok(event) = events.try_recv() {
                    arrivals.push(Instant::now());
                    pending.push(event);
                }
                // Everything before the first join still waiting for its caller's name goes.
                let now = Instant::now();
                let ready = pending
                    .iter()
                    .zip(&arrivals)
                    .position(|(event, arrived)| *arrived + NAME_GRACE > now && unnamed(&roster, event))
                    .unwrap_or(pending.len());
                if ready == 0 {
                    names_checked_at = Some(now + NAME_POLL);
                    continue;
                }
                names_checked_at = None;
                let held = pending.split_off(ready);
                let taken = std::mem::replace(&mut pending, held);
                arrivals.drain(..ready);
                gathered_at = (!pending.is_empty()).then_some(now);
                match outlet.commit(&taken).await {
                    Some(messages) => enqueue(&mut queue, messages, taken.len(), &progress),
                    None => {
                        let again = Instant::now();
                        arrivals.splice(0..0, taken.iter().map(|_| again));
                        let held = std::mem::replace(&mut pending, taken);
                        pending.extend(held);
                        gathered_at = Some(again + COMMIT_RETRY.max(coalesce));
                    }
                }
            }
            finishes = finished(&mut in_flight) => {
                in_flight = None;
                progress.announced(finishes);
            }
            () = sleep_until(resend_at), if resend_at.is_some() && !closing => {
                queue.extend(outlet.resends().await.into_iter().map(|m| (m, 0)));
                resend_at = resend_poll.map(|poll| Instant::now() + poll);
            }
            changed = health_changed(&mut health) => match changed {
                Some(state) => queue.extend(outlet.on_health(&state).await.into_iter().map(|m| (m, 0))),
                None => health = None,
            },
            () = shutdown.recv(), if !closing => closing = true,
        }
        if closing {
            receive_the_rest(&mut events, &mut pending, drain_timeout).await;
            let taken = std::mem::take(&mut pending);
            arrivals.clear();
            if let Some(messages) = outlet.commit(&taken).await {
                enqueue(&mut queue, messages, taken.len(), &progress);
            }
            let drained = tokio::time::timeout(drain_timeout, async {
                if let Some((current, finishes)) = in_flight.take() {
                    current.await;
                    progress.announced(finishes);
                }
                while let Some((message, finishes)) = queue.pop_front() {
                    outlet.deliver(message).await;
                    progress.announced(finishes);
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

/// Whether `event` is a join whose caller the roster cannot name (yet).
fn unnamed(roster: &Roster, event: &Announcement) -> bool {
    let EventKind::ParticipantJoined {
        participant_id,
        identity,
        ..
    } = &event.event.kind
    else {
        return false;
    };
    let key = ParticipantKey {
        conference: event.event.conference_id.clone(),
        participant: participant_id.clone(),
    };
    match roster.participant(&key) {
        Some(participant) => participant.identity.is_unknown(),
        None => identity.is_unknown(),
    }
}

/// Queues the messages committed for `count` announcements: they are finished with once the last
/// of them is.
fn enqueue<M>(
    queue: &mut VecDeque<Queued<M>>,
    messages: Vec<M>,
    count: usize,
    progress: &Progress,
) {
    let last = messages.len().saturating_sub(1);
    if messages.is_empty() {
        progress.announced(count);
    }
    queue.extend(
        messages
            .into_iter()
            .enumerate()
            .map(|(i, message)| (message, if i == last { count } else { 0 })),
    );
}

async fn finished(in_flight: &mut Option<(Delivering, usize)>) -> usize {
    match in_flight {
        Some((current, finishes)) => {
            current.await;
            *finishes
        }
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
