//! The Discord outlet: messages planned from pending events ([`super::planner`]), committed to
//! the store with their nonces before they are posted, delivered one at a time
//! ([`super::delivery`]); the channel's create-message bucket says when the next one can go.

use super::Post;
use super::alert::{self, AlertLane};
use super::card::{self, CardLane};
use super::delivery::{Delivery, count_parked, deliver};
use super::outlet::{Delivering, Loop, Outlet, announce};
use super::planner::{HealthNotice, Planner, nonce_prefix};
use crate::conference::Roster;
use crate::config::PhoneNumbers;
use crate::pipeline::{Announcement, Clock, Progress, SubscriptionHealth};
use crate::store::{Batch, NewBatch, Store};
use crate::util::shutdown::Shutdown;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// How often the running announcer looks for parked messages an operator asked to send again
/// (`ringside parked resend`, from another process): the longest such a request waits. Each look
/// is one read of a small partial index, and writes nothing unless there is one.
pub const RESEND_POLL: Duration = Duration::from_secs(3);

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
    /// `announce.coalesce_ms`: an extra wait for company of the first pending event (0: none).
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
    /// `announce.feed`: the conferences' lines (off: only the roster cards speak for them).
    pub feed: bool,
    /// `announce.timeline`: the end of a conference carries its timeline picture.
    pub timeline: bool,
    /// `announce.roster_card` on: how long a card waits for its conference to settle
    /// (`announce.roster_edit_ms`).
    pub roster_card: Option<Duration>,
    /// How often parked messages asked for again are looked for after start ([`RESEND_POLL`]);
    /// `None`: only at start (tests on a paused clock, which a standing timer would make jump
    /// whenever the store answers).
    pub resend_poll: Option<Duration>,
}

/// Announces in Discord until `events` closes or `shutdown` fires, by the announcer's one rule
/// ([`super::outlet`]).
///
/// At start, the messages committed but not yet sent (a crash, or a stop that ran out of time)
/// are sent first, in order, with their stored body and nonce; so are parked messages an
/// operator asked to send again (`ringside parked resend`), then and whenever the announcer
/// finds one. Then each message is planned from
/// every pending event (split at line boundaries when long), committed to the store with its
/// nonce, then posted. A message Discord refuses for good is parked and reported; the next one
/// still goes. On shutdown what is pending is committed and sent for at most `drain_timeout`.
pub async fn run_discord(config: DiscordAnnouncer) {
    let DiscordAnnouncer {
        events,
        roster,
        poster,
        store,
        clock,
        phone_numbers,
        coalesce,
        stale_after,
        thread_per_conference,
        channel_id,
        health,
        shutdown,
        drain_timeout,
        progress,
        feed,
        timeline,
        roster_card,
        resend_poll,
    } = config;
    let outlet_roster = roster.clone();
    let nonce_prefix = nonce_prefix();
    let (backlog, feed_backlog) = watch::channel(0);
    let cards = roster_card.map(|edit_after| CardLane {
        changes: roster.watch(),
        roster: roster.clone(),
        poster: Arc::clone(&poster),
        store: store.clone(),
        channel_id,
        phone_numbers,
        edit_after,
        picture_on_card: timeline && !feed,
        feed_backlog,
        // Its own prefix: a card's nonce never meets a line's.
        nonce_prefix: format!("c{nonce_prefix}"),
    });
    let alerts = AlertLane {
        changes: roster.watch(),
        roster: roster.clone(),
        poster: Arc::clone(&poster),
        store: store.clone(),
        channel_id,
        phone_numbers,
        // Its own prefix: an alert's nonce never meets a line's or a card's.
        nonce_prefix: format!("w{nonce_prefix}"),
    };
    let outlet = Channel {
        delivery: Arc::new(Delivery {
            poster,
            store: store.clone(),
            channel_id,
            threads: Mutex::default(),
        }),
        planner: Planner {
            roster,
            clock,
            phone_numbers,
            stale_after,
            thread_per_conference,
            channel_id,
            nonce_prefix,
            sequence: 0,
            feed,
            timeline,
        },
        notice: HealthNotice::default(),
        store,
        channel_id,
    };
    let lines = announce(
        outlet,
        Loop {
            events,
            coalesce,
            health,
            shutdown,
            drain_timeout,
            progress,
            roster: outlet_roster,
            backlog: Some(backlog),
            resend_poll,
        },
    );
    // The cards and the alerts follow the conferences for as long as the lines are announced;
    // a stop drops them once the lines are drained.
    let cards = async move {
        match cards {
            Some(cards) => card::run(cards).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = lines => {}
        () = cards => {}
        () = alert::run(alerts) => {}
    }
}

/// The announcement channel as an [`Outlet`].
struct Channel {
    delivery: Arc<Delivery>,
    planner: Planner,
    notice: HealthNotice,
    store: Store,
    channel_id: u64,
}

impl Outlet for Channel {
    type Message = Batch;

    async fn committed(&mut self) -> Vec<Batch> {
        count_parked(&self.store).await;
        match self.store.pending_batches().await {
            Ok(pending) => {
                if !pending.is_empty() {
                    tracing::info!(
                        count = pending.len(),
                        "sending the announcements committed before the restart"
                    );
                }
                pending
            }
            Err(error) => {
                tracing::error!(%error, "cannot read the pending announcements; they are sent at the next start");
                Vec::new()
            }
        }
    }

    async fn resends(&mut self) -> Vec<Batch> {
        match self.store.take_resends().await {
            Ok(taken) => {
                for batch in &taken {
                    // No text: it has callers' names.
                    tracing::info!(
                        batch_id = batch.id,
                        nonce = %batch.nonce,
                        "sending a parked announcement again, as an operator asked"
                    );
                }
                if !taken.is_empty() {
                    count_parked(&self.store).await;
                }
                taken
            }
            Err(error) => {
                // The store logs that it is failing, once; the request stays for the next look.
                tracing::debug!(%error, "cannot look for parked announcements to send again");
                Vec::new()
            }
        }
    }

    async fn commit(&mut self, events: &[Announcement]) -> Option<Vec<Batch>> {
        let batches = self
            .planner
            .plan(events)
            .draw_pictures(self.planner.phone_numbers)
            .await;
        if batches.is_empty() {
            // Nothing to post for them (the lines are off): they are done with.
            let ids: Vec<i64> = events.iter().filter_map(|a| a.outbox_id).collect();
            if !ids.is_empty()
                && let Err(error) = self.store.mark_delivered(ids).await
            {
                tracing::debug!(%error, "cannot mark events done with; retrying");
                return None;
            }
        }
        commit_batches(&self.store, batches).await
    }

    async fn on_health(&mut self, state: &SubscriptionHealth) -> Vec<Batch> {
        let Some(batch) = self.notice.on(state, &mut self.planner) else {
            return Vec::new();
        };
        commit_batches(&self.store, vec![batch])
            .await
            .unwrap_or_else(|| {
                self.notice.not_posted();
                Vec::new()
            })
    }

    fn open_at(&self) -> Option<Instant> {
        // Thread messages go through their thread's bucket; the channel's is the one every
        // conference's start and end, and every message without threads, shares.
        self.delivery.poster.message_open_at(self.channel_id)
    }

    fn deliver(&self, batch: Batch) -> Delivering {
        Box::pin(deliver(Arc::clone(&self.delivery), batch))
    }
}

/// Commits batches before they are posted; `None` when the store could not keep them.
async fn commit_batches(store: &Store, batches: Vec<NewBatch>) -> Option<Vec<Batch>> {
    if batches.is_empty() {
        return Some(Vec::new());
    }
    match store.create_batches(batches).await {
        Ok(created) => Some(created),
        Err(error) => {
            // The store logs that it is failing, once; the loop tries again a little later.
            tracing::debug!(%error, "cannot commit announcements before posting them; retrying");
            None
        }
    }
}
