//! The local-mode outlet: each message is the pending events as plain lines (rendered from the
//! roster when they are written) handed to a [`Sink`]; their outbox rows are marked delivered
//! once written.

use super::Sink;
use super::outlet::{Delivering, Loop, Outlet, announce};
use crate::conference::Roster;
use crate::config::PhoneNumbers;
use crate::pipeline::{Announcement, Progress, SubscriptionHealth};
use crate::present::{phrase, plain};
use crate::store::Store;
use crate::util::shutdown::Shutdown;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Settings the announcer runs with.
#[derive(Debug, Clone, Copy)]
pub struct AnnouncerSettings {
    /// `announce.coalesce_ms`: an extra wait for company of the first pending event (0: none).
    pub coalesce: Duration,
    pub phone_numbers: PhoneNumbers,
}

/// How long a graceful stop in local mode waits for the detector's last events, and then for
/// the sink to take them.
const LOCAL_DRAIN: Duration = Duration::from_secs(5);

/// Runs until `events` closes or `shutdown` fires, by the announcer's one rule
/// ([`super::outlet`]); either way every event already received is announced before it returns
/// (a graceful stop loses nothing).
pub async fn run(
    events: mpsc::UnboundedReceiver<Announcement>,
    roster: Roster,
    sink: Arc<dyn Sink>,
    settings: AnnouncerSettings,
    shutdown: Shutdown,
    store: Option<Store>,
    progress: Progress,
) {
    let outlet_roster = roster.clone();
    let outlet = Lines {
        written: Arc::new(Written {
            roster,
            sink,
            phone_numbers: settings.phone_numbers,
            store,
        }),
    };
    announce(
        outlet,
        Loop {
            events,
            coalesce: settings.coalesce,
            health: None,
            shutdown,
            drain_timeout: LOCAL_DRAIN,
            progress,
            roster: outlet_roster,
            backlog: None,
            resend_poll: None,
        },
    )
    .await;
}

/// A sink as an [`Outlet`]: it is always open, and its messages need no commit of their own (the
/// events' outbox rows are replayed at the next start until they are marked delivered).
struct Lines {
    written: Arc<Written>,
}

/// What writing a message needs.
struct Written {
    roster: Roster,
    sink: Arc<dyn Sink>,
    phone_numbers: PhoneNumbers,
    store: Option<Store>,
}

impl Outlet for Lines {
    type Message = Vec<Announcement>;

    async fn committed(&mut self) -> Vec<Vec<Announcement>> {
        Vec::new()
    }

    async fn commit(&mut self, events: &[Announcement]) -> Option<Vec<Vec<Announcement>>> {
        if events.is_empty() {
            return Some(Vec::new());
        }
        Some(vec![events.to_vec()])
    }

    async fn on_health(&mut self, _state: &SubscriptionHealth) -> Vec<Vec<Announcement>> {
        Vec::new()
    }

    fn open_at(&self) -> Option<Instant> {
        None
    }

    fn deliver(&self, events: Vec<Announcement>) -> Delivering {
        let written = Arc::clone(&self.written);
        Box::pin(async move { written.write(&events).await })
    }
}

impl Written {
    /// Writes the events' lines; a failed write leaves them in the outbox for the next start.
    async fn write(&self, events: &[Announcement]) {
        let lines: Vec<String> = events
            .iter()
            .map(|announcement| {
                plain::line(
                    &phrase(&announcement.event, &self.roster),
                    self.phone_numbers,
                )
            })
            .collect();
        let lines_count = lines.len() as u64;
        match self.sink.send(lines).await {
            Ok(()) => {
                metrics::counter!("ringside_announcements_sent_total").increment(lines_count);
                let delivered: Vec<i64> = events
                    .iter()
                    .filter_map(|announcement| announcement.outbox_id)
                    .collect();
                if let Some(store) = &self.store
                    && let Err(error) = store.mark_delivered(delivered).await
                {
                    // Announced again after a crash, at worst; a failing store is logged by the
                    // store.
                    tracing::debug!(%error, "could not mark announcements delivered");
                }
            }
            Err(error) => {
                metrics::counter!("ringside_announcements_failed_total").increment(lines_count);
                tracing::error!(%error, "could not write announcements; they stay in the outbox");
            }
        }
    }
}
