//! Taking a notification in, whatever carried it (the webhook or the WebSocket): decoded once,
//! then ignored, quarantined or committed to the inbox and handed to the pipeline. Nothing
//! downstream knows the transport.

use crate::conference::{Timestamp, Unusable};
use crate::pipeline::{Accepted, Clock, DecodeError, Decoded, Payload, Progress, decode};
use crate::store::{InboxInsert, NewInboxRow, NewQuarantineRow, Store};
use axum::body::Bytes;
use std::sync::Arc;
use tokio::sync::mpsc;

/// What taking a notification in needs.
#[derive(Clone)]
pub struct Intake {
    pub store: Store,
    pub accepted: mpsc::UnboundedSender<Accepted>,
    pub clock: Arc<dyn Clock>,
    /// Counts each notification handed to the pipeline.
    pub progress: Progress,
}

/// What became of a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    Accepted,
    Duplicate,
    /// Of another kind: acknowledged and ignored.
    Ignored,
    /// Unusable: kept in the quarantine.
    Quarantined,
}

/// Why a notification was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntakeError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("ringside cannot store notifications right now")]
    Store,
}

impl Intake {
    /// Decodes, then quarantines or commits `bytes`, received at `received_at`. `meta`, when
    /// given, is written in the same transaction as the inbox row (the WebSocket keeps its
    /// session token this way). The commit runs in its own task, so a caller that gives up
    /// waiting (a webhook deadline) loses nothing: a commit that lands is handed on all the same.
    pub async fn take(
        &self,
        bytes: Bytes,
        received_at: Timestamp,
        meta: Option<(&'static str, String)>,
    ) -> Result<Taken, IntakeError> {
        match decode(&bytes)? {
            Decoded::Ignored { uuid, event } => {
                metrics::counter!("ringside_notifications_total", "outcome" => "ignored")
                    .increment(1);
                tracing::debug!(%uuid, %event, "notification of another kind ignored");
                Ok(Taken::Ignored)
            }
            Decoded::Unusable { uuid, reason } => {
                self.quarantine(&uuid, received_at, &bytes, reason).await
            }
            Decoded::Usable { uuid, payload, .. } => {
                let span = tracing::Span::current();
                span.record("uuid", uuid.as_str());
                if let Payload::Telephony(update) = &payload {
                    span.record("telephony_session_id", update.session_id.as_str());
                    tracing::debug!("telephony notification received");
                }
                self.commit(uuid, received_at, bytes, payload, meta).await
            }
        }
    }

    async fn commit(
        &self,
        uuid: String,
        received_at: Timestamp,
        bytes: Bytes,
        payload: Payload,
        meta: Option<(&'static str, String)>,
    ) -> Result<Taken, IntakeError> {
        let row = NewInboxRow {
            uuid,
            kind: payload.kind().to_owned(),
            received_at_ms: received_at.0,
            body: bytes.to_vec(),
        };
        let intake = self.clone();
        let committed = tokio::spawn(tracing::Instrument::in_current_span(async move {
            let uuid = row.uuid.clone();
            match intake.store.insert_inbox_with_meta(row, meta).await {
                Ok(InboxInsert::Inserted { id }) => {
                    metrics::counter!("ringside_notifications_total", "outcome" => "accepted")
                        .increment(1);
                    // The detector task may be gone during shutdown; the row is committed and
                    // will be replayed at the next start, so nothing is lost.
                    intake.progress.accepted(1);
                    let _ = intake.accepted.send(Accepted {
                        inbox_id: id,
                        received_at,
                        payload,
                    });
                    Ok(Taken::Accepted)
                }
                Ok(InboxInsert::Duplicate { .. }) => {
                    metrics::counter!("ringside_notifications_total", "outcome" => "duplicate")
                        .increment(1);
                    tracing::debug!(%uuid, "duplicate notification dropped");
                    Ok(Taken::Duplicate)
                }
                Err(error) => {
                    // The store logs that it is failing, once.
                    tracing::debug!(%error, "could not commit a notification to the inbox");
                    Err(IntakeError::Store)
                }
            }
        }));
        committed.await.unwrap_or(Err(IntakeError::Store))
    }

    async fn quarantine(
        &self,
        uuid: &str,
        received_at: Timestamp,
        bytes: &Bytes,
        reason: Unusable,
    ) -> Result<Taken, IntakeError> {
        metrics::counter!("ringside_notifications_total", "outcome" => "quarantined").increment(1);
        tracing::warn!(%uuid, %reason, "unusable notification quarantined");
        let row = NewQuarantineRow {
            uuid: Some(uuid.to_owned()).filter(|uuid| !uuid.is_empty()),
            received_at_ms: received_at.0,
            reason: reason.to_string(),
            body: bytes.to_vec(),
        };
        match self.store.quarantine(row).await {
            Ok(_) => Ok(Taken::Quarantined),
            Err(error) => {
                tracing::debug!(%error, "could not quarantine a notification");
                Err(IntakeError::Store)
            }
        }
    }
}
