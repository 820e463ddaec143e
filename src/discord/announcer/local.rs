//! The local-mode announcer: events in order, each coalescing window's worth rendered as plain
//! lines (from the roster at send time) and handed to a [`Sink`].

use super::{Sink, receive_the_rest, sleep_until};
use crate::conference::Roster;
use crate::config::PhoneNumbers;
use crate::pipeline::{Announcement, Progress};
use crate::present::{phrase, plain};
use crate::store::Store;
use crate::util::shutdown::Shutdown;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
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
    progress: Progress,
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
                send(&ready, &roster, sink.as_ref(), settings, store.as_ref(), &progress).await;
            }
            () = shutdown.recv(), if !closing => closing = true,
        }
        if closing {
            let mut rest = Vec::new();
            receive_the_rest(&mut events, &mut rest, LOCAL_DRAIN).await;
            pending.extend(rest.into_iter().map(|event| (Instant::now(), event)));
            let ready: Vec<Announcement> = pending.drain(..).map(|(_, event)| event).collect();
            send(
                &ready,
                &roster,
                sink.as_ref(),
                settings,
                store.as_ref(),
                &progress,
            )
            .await;
            return;
        }
    }
}

/// How long a graceful stop in local mode waits for the detector's last events.
const LOCAL_DRAIN: Duration = Duration::from_secs(5);

async fn send(
    events: &[Announcement],
    roster: &Roster,
    sink: &dyn Sink,
    settings: AnnouncerSettings,
    store: Option<&Store>,
    progress: &Progress,
) {
    if events.is_empty() {
        return;
    }
    // Written or not, these are finished with: a failed write stays in the outbox for the next
    // start.
    let count = events.len();
    let lines: Vec<String> = events
        .iter()
        .map(|announcement| {
            plain::line(&phrase(&announcement.event, roster), settings.phone_numbers)
        })
        .collect();
    let lines_count = lines.len() as u64;
    match sink.send(lines).await {
        Ok(()) => {
            metrics::counter!("ringside_announcements_sent_total").increment(lines_count);
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
            metrics::counter!("ringside_announcements_failed_total").increment(lines_count);
            tracing::error!(%error, "could not write announcements; they stay in the outbox");
        }
    }
    // Written or not, these are finished with: a failed write stays in the outbox for the next
    // start.
    progress.announced(count);
}
