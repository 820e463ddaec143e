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

//!
//! The parts: [`local`] is the standard-output loop (local mode, and the tests' memory sink),
//! [`channel`] the Discord loop; [`planner`] turns pending events into messages (stale ones
//! summarised, threads per conference, the health notices) and [`delivery`] posts one message
//! until it is sent or parked, through the [`Post`] port — ringside's REST poster in production,
//! an in-memory poster in tests, which run on a paused clock. Both loops coalesce as they always
//! have; one rule for both is the performance work's to set.

mod channel;
mod delivery;
mod local;
mod planner;
mod sinks;
#[cfg(test)]
mod tests;

pub use super::poster::Post;
pub use channel::{DiscordAnnouncer, run_discord};
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

pub(super) async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}
