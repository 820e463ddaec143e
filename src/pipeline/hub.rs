//! The detector task: the one owner of the detector. It applies accepted notifications in the
//! order they were committed, updates the roster, hands events to the announcer and marks the
//! inbox rows processed.

use super::{Accepted, Announcement, Clock, Decoded, Directed, Payload, Progress, decode};
use crate::conference::{
    ConferenceEvent, Detector, DetectorConfig, Input, Roster, RowKind, StateRow, Timestamp,
};
use crate::store::{self, InboxRow, NewOutboxRow, Store};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How often the detector is told that time passed (so it can forget finished sessions).
pub const TICK_INTERVAL: Duration = Duration::from_secs(30);
/// Most accepted notifications applied before the roster and the inbox marks are updated (the
/// store's own group commit, `store::MAX_BATCH`, is a separate bound on its queue).
const MAX_APPLIED: usize = 256;
/// After a commit the store refused, how soon it is tried again (a tick with nothing waiting
/// writes nothing).
const RETRY_EVERY: Duration = Duration::from_secs(1);

pub struct Pipeline {
    pub detector: Detector,
    pub roster: Roster,
    pub store: Store,
    /// To the announcer: each event with its outbox id.
    pub events: mpsc::UnboundedSender<Announcement>,
    /// Events produced since the last commit.
    pending: Vec<ConferenceEvent>,
    pub clock: Arc<dyn Clock>,
    /// Where renewal reminders go (the subscription manager), when there is one.
    pub reminders: Option<mpsc::UnboundedSender<()>>,
    /// How long inbox and quarantine rows, and audit entries, are kept.
    pub retention: Retention,
    /// Detector rows taken but not yet committed (a commit the store refused), newest body per
    /// row.
    unsaved: BTreeMap<(RowKind, String), Option<String>>,
    /// Inbox rows applied whose processed marks wait for a commit the store accepts.
    unmarked: Vec<i64>,
    /// Counts what was applied and what was handed to the announcer.
    progress: Progress,
}

/// What the pipeline task works with besides the detector.
pub struct Deps {
    pub roster: Roster,
    pub store: Store,
    /// To the announcer: each event with its outbox id.
    pub events: mpsc::UnboundedSender<Announcement>,
    pub clock: Arc<dyn Clock>,
    /// Where renewal reminders go (the subscription manager), when there is one.
    pub reminders: Option<mpsc::UnboundedSender<()>>,
    pub retention: Retention,
    pub progress: Progress,
}

/// `store.retention_days` and `store.audit_retention_days`, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub inbox_millis: i64,
    pub audit_millis: i64,
}

/// How often old rows are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

impl Pipeline {
    pub fn new(detector: Detector, deps: Deps) -> Self {
        Pipeline {
            detector,
            roster: deps.roster,
            store: deps.store,
            events: deps.events,
            pending: Vec::new(),
            clock: deps.clock,
            reminders: deps.reminders,
            retention: deps.retention,
            unsaved: BTreeMap::new(),
            unmarked: Vec::new(),
            progress: deps.progress,
        }
    }

    /// Runs until every sender of `accepted` is gone, then returns the detector.
    pub async fn run(
        mut self,
        mut accepted: mpsc::UnboundedReceiver<Accepted>,
        mut directed: mpsc::UnboundedReceiver<Directed>,
    ) -> Detector {
        let mut tick = tokio::time::interval(TICK_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut batch = Vec::with_capacity(MAX_APPLIED);
        let mut retry = tokio::time::interval(RETRY_EVERY);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut prune = tokio::time::interval(PRUNE_EVERY);
        prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                count = accepted.recv_many(&mut batch, MAX_APPLIED) => {
                    if count == 0 {
                        if !self.commit(Vec::new()).await {
                            tracing::warn!(
                                notifications = self.unmarked.len(),
                                events = self.pending.len(),
                                "stopping with a store that cannot write: the notifications not marked processed are replayed at the next start"
                            );
                        }
                        return self.detector;
                    }
                    self.apply_batch(std::mem::take(&mut batch)).await;
                }
                Some(Directed { input, applied }) = directed.recv() => {
                    self.apply(input);
                    self.sync_roster();
                    if let Some(applied) = applied {
                        let _ = applied.send(());
                    }
                    // Not replayable from the inbox: what it changed is written at once.
                    self.commit(Vec::new()).await;
                }
                _ = prune.tick() => self.prune().await,
                _ = tick.tick() => {
                    let now = self.clock.now();
                    self.apply(Input::Tick { now });
                    self.sync_roster();
                    self.commit(Vec::new()).await;
                }
                _ = retry.tick() => {
                    self.commit(Vec::new()).await;
                }
            }
        }
    }

    fn apply(&mut self, input: Input) {
        for event in self.detector.apply(input) {
            metrics::counter!("ringside_detector_events_total", "type" => event.kind.type_name())
                .increment(1);
            tracing::info!(
                conference_id = %event.conference_id,
                event = event.kind.type_name(),
                participant_id = event.kind.participant_id().map(|p| p.as_str()).unwrap_or(""),
                "conference event"
            );
            self.pending.push(event);
        }
    }

    /// Pruning by `store.retention_days` (processed inbox rows, quarantine) and
    /// `store.audit_retention_days`. Unprocessed rows are never pruned.
    async fn prune(&mut self) {
        let now = self.clock.now();
        let inbox = self
            .store
            .prune(now.0.saturating_sub(self.retention.inbox_millis))
            .await;
        let audit = self
            .store
            .prune_audit(now.0.saturating_sub(self.retention.audit_millis))
            .await;
        match (inbox, audit) {
            (Ok(rows), Ok(entries)) if rows + entries > 0 => {
                tracing::info!(rows, entries, "pruned old inbox rows and audit entries")
            }
            (Ok(_), Ok(_)) => {}
            (Err(error), _) | (_, Err(error)) => tracing::warn!(%error, "pruning failed"),
        }
    }

    /// Copies changed conferences to the roster.
    fn sync_roster(&mut self) {
        let changed = self.detector.take_dirty();
        self.roster.sync(&self.detector, &changed);
    }

    /// Commits what the detector produced, in one transaction: the detector rows its inputs
    /// changed, the processed marks of those inputs, and the events (to the outbox, unique on
    /// their ids). What is written follows what happened since the last commit, never the size
    /// of the state; with nothing new, nothing is written.
    ///
    /// When the store cannot write, nothing is lost or announced early: the rows, marks and
    /// events wait, and the next commit (at the latest the next retry tick) writes them with
    /// its own. Answers whether everything due was committed.
    async fn commit(&mut self, processed: Vec<i64>) -> bool {
        self.unmarked.extend(processed);
        let events = std::mem::take(&mut self.pending);
        let rows_taken = match self.detector.take_changes() {
            Ok(rows) => {
                for StateRow { kind, key, body } in rows {
                    self.unsaved.insert((kind, key), body);
                }
                true
            }
            Err(error) => {
                // Cannot happen for the detector's types; if it did, the inputs stay unmarked
                // and are replayed into the last committed state at the next start.
                tracing::error!(%error, "could not serialize the detector's changed state");
                false
            }
        };
        let marks = if rows_taken {
            std::mem::take(&mut self.unmarked)
        } else {
            Vec::new()
        };
        if marks.is_empty() && self.unsaved.is_empty() && events.is_empty() {
            return true;
        }
        let state: Vec<store::StateRow> = self
            .unsaved
            .iter()
            .map(|((kind, key), body)| {
                state_row(StateRow {
                    kind: *kind,
                    key: key.clone(),
                    body: body.clone(),
                })
            })
            .collect();
        let rows: Vec<NewOutboxRow> = events
            .iter()
            .filter_map(|event| {
                let text = serde_json::to_string(event).ok()?;
                Some(NewOutboxRow {
                    event_id: event.id.clone(),
                    conference_id: event.conference_id.as_str().to_owned(),
                    received_at_ms: event.received_at.0,
                    event: text,
                })
            })
            .collect();
        let kept = match self
            .store
            .commit_processed(marks.clone(), state, rows)
            .await
        {
            Ok(kept) => kept,
            Err(error) => {
                // The store logs that it is failing, once; this retries at the next commit.
                tracing::debug!(%error, "could not commit processed notifications; retrying");
                self.unmarked.extend(marks);
                self.pending = events;
                return false;
            }
        };
        self.unsaved.clear();
        // The announcer outlives this task; if it is gone we are shutting down anyway.
        for (event, id) in events.into_iter().zip(kept) {
            // `None`: committed before (a replay after a crash) — resent from the outbox at
            // start if it was never announced.
            if let Some(id) = id {
                self.progress.produced(1);
                let _ = self.events.send(Announcement {
                    outbox_id: Some(id),
                    event,
                });
            }
        }
        true
    }

    #[tracing::instrument(name = "pipeline_batch", skip_all, fields(notifications = batch.len()))]
    async fn apply_batch(&mut self, batch: Vec<Accepted>) {
        let count = batch.len();
        let mut processed = Vec::with_capacity(batch.len());
        for accepted in batch {
            processed.push(accepted.inbox_id);
            match accepted.payload {
                Payload::Telephony(notification) => self.apply(Input::Notification {
                    received_at: accepted.received_at,
                    notification,
                }),
                Payload::Reminder => {
                    tracing::info!("subscription renewal reminder received");
                    if let Some(reminders) = &self.reminders {
                        let _ = reminders.send(());
                    }
                }
            }
        }
        self.sync_roster();
        self.commit(processed).await;
        // After the commit, which hands the events on: applied never runs ahead of produced.
        self.progress.applied(count);
    }
}

/// A detector row as the store keeps it.
pub fn state_row(row: StateRow) -> store::StateRow {
    store::StateRow {
        kind: row.kind.as_str(),
        key: row.key,
        body: row.body,
    }
}

/// The detector the store's rows describe, under `config`.
pub fn detector_from_rows(
    config: DetectorConfig,
    rows: Vec<store::StoredRow>,
) -> Result<Detector, String> {
    let rows = rows
        .into_iter()
        .map(|(kind, key, body)| {
            RowKind::parse(&kind)
                .map(|kind| (kind, key, body))
                .ok_or_else(|| format!("a stored row of unknown kind {kind:?}"))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Detector::from_rows(config, rows).map_err(|error| error.to_string())
}

/// Turns a stored inbox row back into what the webhook accepted (for the replay at start), or
/// says why it no longer can (a row kept by an older ringside that this one cannot use).
pub fn accepted_from_row(row: &InboxRow) -> Result<Accepted, String> {
    let payload = match row.kind.as_str() {
        "reminder" => Payload::Reminder,
        _ => match decode(&row.body) {
            Ok(Decoded::Usable { payload, .. }) => payload,
            Ok(Decoded::Ignored { event, .. }) => return Err(format!("a {event} notification")),
            Ok(Decoded::Unusable { reason, .. }) => return Err(reason.to_string()),
            Err(error) => return Err(error.to_string()),
        },
    };
    Ok(Accepted {
        inbox_id: row.id,
        received_at: Timestamp(row.received_at_ms),
        payload,
    })
}
