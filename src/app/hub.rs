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
///
/// A state kept in one piece by an older ringside is moved into rows first. Rows that cannot be
/// read are cleared, so the fresh start is not mixed with them at the next one.
async fn restore_detector(store: &Store, config: DetectorConfig) -> Detector {
    let rows = match store.detector_rows().await {
        Ok(rows) => rows,
        Err(error) => {
            tracing::warn!(%error, "cannot read the stored conference state; starting fresh");
            return Detector::new(config);
        }
    };
    let restored = if rows.is_empty() {
        adopt_legacy_state(store, config.clone()).await
    } else {
        pipeline::detector_from_rows(config.clone(), rows).map(Some)
    };
    match restored {
        Ok(Some(detector)) => {
            tracing::info!(
                live_conferences = detector.live_conferences().len(),
                "restored the conference state"
            );
            detector
        }
        Ok(None) => Detector::new(config),
        Err(error) => {
            tracing::warn!(%error, "the stored conference state cannot be read; starting fresh");
            if let Err(error) = store.replace_detector_rows(Vec::new()).await {
                tracing::warn!(%error, "cannot clear the unreadable conference state");
            }
            Detector::new(config)
        }
    }
}

/// The state an older ringside kept in one piece, moved into rows; `None` when there is none.
async fn adopt_legacy_state(
    store: &Store,
    config: DetectorConfig,
) -> Result<Option<Detector>, String> {
    let Some(state) = store
        .legacy_detector_state()
        .await
        .map_err(|error| error.to_string())?
    else {
        return Ok(None);
    };
    let mut detector = serde_json::from_str::<Detector>(&state)
        .map_err(|error| error.to_string())?
        .with_config(config);
    let rows = detector
        .all_rows()
        .map_err(|error| error.to_string())?
        .into_iter()
        .map(pipeline::state_row)
        .collect();
    store
        .replace_detector_rows(rows)
        .await
        .map_err(|error| error.to_string())?;
    tracing::info!("moved the conference state into rows");
    Ok(Some(detector))
}

#[cfg(test)]
mod tests {
    use super::restore_detector;
    use crate::conference::{Detector, DetectorConfig, Input, SessionUpdate, Timestamp};
    use crate::ringcentral::wire::TelephonyNotification;
    use crate::store::test_support::open_temp;

    /// A detector with one live conference, from the seed fixtures.
    fn with_a_conference() -> Detector {
        let mut detector = Detector::default();
        let path = format!(
            "{}/tests/fixtures/ringcentral/seed/participant-added.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(path).unwrap();
        let notification: TelephonyNotification = serde_json::from_str(&text).unwrap();
        let update = SessionUpdate::from_notification(&notification.body).unwrap();
        detector.apply(Input::Notification {
            received_at: Timestamp(1_700_000_000_000),
            notification: update,
        });
        detector
    }

    #[tokio::test]
    async fn a_state_kept_in_one_piece_by_an_older_ringside_is_moved_into_rows() {
        let (_dir, store) = open_temp();
        let legacy = with_a_conference();
        assert!(!legacy.views().is_empty(), "the seed starts a conference");
        let text = serde_json::to_string(&legacy).unwrap();
        store.set_meta("detector.state", &text).await.unwrap();

        let restored = restore_detector(&store, DetectorConfig::default()).await;
        assert_eq!(restored.views(), legacy.views());
        assert_eq!(store.legacy_detector_state().await.unwrap(), None);
        let rows = store.detector_rows().await.unwrap();
        assert!(!rows.is_empty());

        // The next start reads the rows.
        let again = restore_detector(&store, DetectorConfig::default()).await;
        assert_eq!(again.views(), legacy.views());
    }

    #[tokio::test]
    async fn unreadable_rows_are_cleared_and_the_detector_starts_fresh() {
        let (_dir, store) = open_temp();
        let row = crate::store::StateRow {
            kind: "conference",
            key: "s-1".to_owned(),
            body: Some("not json".to_owned()),
        };
        store
            .commit_processed(Vec::new(), vec![row], Vec::new())
            .await
            .unwrap();
        let restored = restore_detector(&store, DetectorConfig::default()).await;
        assert!(restored.views().is_empty());
        assert!(store.detector_rows().await.unwrap().is_empty());
    }
}
