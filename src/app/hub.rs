//! Starting the hub: the detector restored from the store with the roster rebuilt from it, the
//! announcements committed but not sent queued first, the notifications accepted but not
//! processed replayed, and the pipeline task spawned.

use crate::conference::{ConferenceEvent, Detector, DetectorConfig, Roster};
use crate::config::Settings;
use crate::pipeline::{
    self, Accepted, Announcement, Clock, DetectorInputs, Pipeline, Progress, Retention,
};
use crate::store::Store;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The running hub and the ends the rest of ringside plugs into.
pub struct Hub {
    pub roster: Roster,
    pub inputs: DetectorInputs,
    /// Where the webhook hands committed notifications.
    pub accepted: mpsc::UnboundedSender<Accepted>,
    /// The announcer's end of the events.
    pub events: mpsc::UnboundedReceiver<Announcement>,
    /// Keeps the announcer's channel open until the stop (see `Running`).
    pub events_keepalive: mpsc::UnboundedSender<Announcement>,
    /// Renewal reminders for the subscription manager (when there is one).
    pub reminders: Option<mpsc::UnboundedReceiver<()>>,
    pub task: JoinHandle<Detector>,
    /// How far the pipeline has got (`Running::idle`).
    pub progress: Progress,
}

/// Restores, replays and starts the pipeline task.
pub async fn start(
    settings: &Settings,
    store: &Store,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Hub> {
    let detector = restore_detector(store, detector_config(settings)).await;
    let roster = Roster::new();
    roster.rebuild(&detector);
    let (accepted, accepted_rx) = mpsc::unbounded_channel();
    let (inputs, directed_rx) = DetectorInputs::channel();
    let (events_tx, events) = mpsc::unbounded_channel();
    let (reminders_tx, reminders_rx) = match settings.ringcentral.credentials {
        Some(_) => {
            let (tx, rx) = mpsc::unbounded_channel();
            (Some(tx), Some(rx))
        }
        None => (None, None),
    };
    let progress = Progress::default();
    resend_undelivered(store, &events_tx, &progress).await?;
    replay_unprocessed(store, &accepted, &progress).await?;
    let task = tokio::spawn(
        Pipeline::new(
            detector,
            pipeline::Deps {
                roster: roster.clone(),
                store: store.clone(),
                events: events_tx.clone(),
                clock,
                reminders: reminders_tx,
                retention: Retention {
                    inbox_millis: days(settings.store.retention_days),
                    audit_millis: days(settings.store.audit_retention_days),
                },
                progress: progress.clone(),
            },
        )
        .run(accepted_rx, directed_rx),
    );
    Ok(Hub {
        roster,
        inputs,
        accepted,
        events,
        events_keepalive: events_tx,
        reminders: reminders_rx,
        task,
        progress,
    })
}

fn detector_config(settings: &Settings) -> DetectorConfig {
    DetectorConfig {
        reconcile_interval_millis: i64::try_from(settings.ringcentral.reconcile_interval_secs)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000),
        host_extensions: settings
            .ringcentral
            .host_extensions
            .iter()
            .cloned()
            .collect(),
        ..DetectorConfig::default()
    }
}

fn days(days: u32) -> i64 {
    i64::from(days).saturating_mul(24 * 60 * 60 * 1000)
}

/// Announcements committed but not sent before the last stop go first.
async fn resend_undelivered(
    store: &Store,
    events: &mpsc::UnboundedSender<Announcement>,
    progress: &Progress,
) -> anyhow::Result<()> {
    let undelivered = store.undelivered().await?;
    if !undelivered.is_empty() {
        tracing::info!(
            count = undelivered.len(),
            "resending announcements not delivered before the last stop"
        );
    }
    for row in undelivered {
        match serde_json::from_str::<ConferenceEvent>(&row.event) {
            Ok(event) => {
                progress.produced(1);
                let _ = events.send(Announcement {
                    outbox_id: Some(row.id),
                    event,
                });
            }
            Err(error) => {
                tracing::warn!(%error, event_id = %row.event_id, "a kept announcement no longer parses; skipped")
            }
        }
    }
    Ok(())
}

/// Notifications accepted but not processed before the last stop are applied again (the
/// outbox keeps their events once); rows this build cannot use are marked and skipped.
async fn replay_unprocessed(
    store: &Store,
    accepted: &mpsc::UnboundedSender<Accepted>,
    progress: &Progress,
) -> anyhow::Result<()> {
    let unprocessed = store.unprocessed().await?;
    if !unprocessed.is_empty() {
        tracing::info!(
            count = unprocessed.len(),
            "replaying notifications accepted before the last stop"
        );
    }
    let mut unusable = Vec::new();
    for row in &unprocessed {
        match pipeline::accepted_from_row(row) {
            Ok(row) => {
                progress.accepted(1);
                let _ = accepted.send(row);
            }
            Err(reason) => {
                if unusable.is_empty() {
                    tracing::warn!(inbox_id = row.id, %reason, "a stored notification can no longer be used");
                }
                unusable.push(row.id);
            }
        }
    }
    if !unusable.is_empty() {
        tracing::warn!(
            count = unusable.len(),
            "skipping stored rows that no longer parse"
        );
        store.mark_processed(unusable).await?;
    }
    Ok(())
}

/// The detector as it was at the last commit (the roster is rebuilt from it), or a fresh one.
async fn restore_detector(store: &Store, config: DetectorConfig) -> Detector {
    match store.detector_state().await {
        Ok(Some(state)) => match serde_json::from_str::<Detector>(&state) {
            Ok(detector) => {
                let detector = detector.with_config(config);
                tracing::info!(
                    live_conferences = detector.live_conferences().len(),
                    "restored the conference state"
                );
                detector
            }
            Err(error) => {
                tracing::warn!(%error, "the stored conference state cannot be read; starting fresh");
                Detector::new(config)
            }
        },
        Ok(None) => Detector::new(config),
        Err(error) => {
            tracing::warn!(%error, "cannot read the stored conference state; starting fresh");
            Detector::new(config)
        }
    }
}
