//! The announcer: takes detector events in order, renders them from the roster at send time
//! and hands them to an outlet — standard output in local mode (one line per announcement),
//! channel messages in Discord mode ([`run_discord`], [`super::message`]).
//!
//! One rule for every outlet ([`outlet`]): a message leaves as soon as the previous one is
//! finished with and the outlet can take one without waiting — for Discord, the channel's
//! create-message bucket and the global limit are open, as the [`Post`] port says. Every pending
//! event goes into it; events that arrive while a message is in flight, the bucket is empty or a
//! 429 is waited out share the next one. So a lone join is posted at once, and a burst takes as
//! few messages as Discord's bucket forces. `announce.coalesce_ms` (default 0) is an optional
//! extra wait from the first pending event: with it, an identity learned a moment after a join
//! can still show in the join's line.
//!
//! The parts: [`outlet`] is the one loop and the [`outlet::Outlet`] trait; [`channel`] is the
//! Discord outlet, [`local`] the standard-output one (local mode, and the tests' memory sink).
//! For Discord, [`planner`] turns pending events into messages (stale ones summarised, threads
//! per conference, the health notices), each committed to the store with its nonce before it is
//! posted, and [`delivery`] posts one message until it is sent or parked, through the [`Post`]
//! port — ringside's REST poster in production, an in-memory poster in tests, which run on a
//! paused clock.

mod alert;
mod card;
mod channel;
mod delivery;
mod local;
mod outlet;
mod planner;
mod sinks;
#[cfg(test)]
mod tests;

pub use super::poster::Post;
pub use channel::{DiscordAnnouncer, RESEND_POLL, run_discord};
pub use local::{AnnouncerSettings, run};
pub use sinks::{MemorySink, Sink, SinkFuture, StdoutSink};

use crate::pipeline::Announcement;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// On a graceful stop the detector task is still draining the inbox, and what it produces
/// arrives here until it drops its sender: keep receiving until then (at most `bound`), so a stop
/// with a backlog announces it now rather than at the next start.
pub(super) async fn receive_the_rest(
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

/// The key whose step is due first, and when (the roster cards' and the alerts' lanes).
pub(super) fn earliest_due<K: Clone + Ord, T>(
    entries: &std::collections::HashMap<K, T>,
    due: impl Fn(&T) -> Option<Instant>,
) -> Option<(Instant, K)> {
    entries
        .iter()
        .filter_map(|(key, entry)| due(entry).map(|at| (at, key)))
        .min()
        .map(|(at, key)| (at, key.clone()))
}

pub(super) async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}
