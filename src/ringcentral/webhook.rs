//! `POST /webhooks/ringcentral`: the one route RingCentral calls.
//!
//! The path does no network I/O and never waits on Discord: authenticate, parse the envelope,
//! commit it to the inbox (the commit is the dedup), answer. RingCentral blacklists slow or
//! failing endpoints, so a notification that is well-formed JSON but unusable is quarantined and
//! answered 200 — only requests that are not notifications at all get a 4xx.

use crate::conference::{SessionUpdate, Timestamp, Unusable};
use crate::ringcentral::wire::{Envelope, EventKind, TelephonyNotification};
use crate::store::{InboxInsert, NewInboxRow, NewQuarantineRow, Store};
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tokio::sync::mpsc;

/// The header RingCentral's handshake uses (and, per the 2023 guide, maybe every notification).
pub const VALIDATION_TOKEN: &str = "validation-token";
/// The header that carries the subscription's verification token on notifications.
pub const VERIFICATION_TOKEN: &str = "verification-token";
/// A handshake answer must stay under 1 KiB in total; longer tokens are refused.
const MAX_VALIDATION_TOKEN_LEN: usize = 512;
/// Longest notification `uuid` ringside stores.
const MAX_UUID_LEN: usize = 256;

/// Where time comes from; tests and the replay path use their own.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_offset_date_time(time::OffsetDateTime::now_utc())
    }
}

/// A notification committed to the inbox, on its way to the detector.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub inbox_id: i64,
    pub received_at: Timestamp,
    pub payload: Payload,
}

#[derive(Debug, Clone)]
pub enum Payload {
    Telephony(SessionUpdate),
    /// The subscription renewal reminder.
    Reminder,
}

/// What the route needs.
#[derive(Clone)]
pub struct WebhookState {
    pub verification_token: Arc<SecretString>,
    pub store: Store,
    pub accepted: mpsc::UnboundedSender<Accepted>,
    pub max_body_bytes: usize,
    pub clock: Arc<dyn Clock>,
}

/// Why a request was refused. The body of the answer is the one-line reason.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("missing or wrong verification token")]
    Unauthorized,
    #[error("body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("could not read the body")]
    Unreadable,
    #[error("Validation-Token is longer than {MAX_VALIDATION_TOKEN_LEN} bytes")]
    ValidationTokenTooLong,
    #[error("body is not JSON: {0}")]
    NotJson(String),
    #[error("body is not a RingCentral notification: {0}")]
    NotNotification(String),
    #[error("ringside cannot store notifications right now")]
    Store,
}

impl WebhookError {
    fn status(&self) -> StatusCode {
        match self {
            WebhookError::Unauthorized => StatusCode::UNAUTHORIZED,
            WebhookError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            WebhookError::Unreadable
            | WebhookError::ValidationTokenTooLong
            | WebhookError::NotJson(_)
            | WebhookError::NotNotification(_) => StatusCode::BAD_REQUEST,
            WebhookError::Store => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn metric_reason(&self) -> &'static str {
        match self {
            WebhookError::Unauthorized => "unauthorized",
            WebhookError::TooLarge(_) => "too_large",
            WebhookError::Unreadable => "unreadable",
            WebhookError::ValidationTokenTooLong => "validation_token_too_long",
            WebhookError::NotJson(_) => "not_json",
            WebhookError::NotNotification(_) => "not_notification",
            WebhookError::Store => "store",
        }
    }
}

impl IntoResponse for WebhookError {
    fn into_response(self) -> Response {
        metrics::counter!("ringside_notifications_rejected_total", "reason" => self.metric_reason())
            .increment(1);
        tracing::warn!(status = self.status().as_u16(), reason = %self, "webhook request refused");
        let mut response = (self.status(), format!("{self}\n")).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }
}

/// `POST /webhooks/ringcentral`.
pub async fn receive(
    State(state): State<WebhookState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WebhookError> {
    let received_at = state.clock.now();
    let bytes = read_body(body, state.max_body_bytes)?;
    if let Some(token) = headers.get(VALIDATION_TOKEN)
        && bytes.iter().all(u8::is_ascii_whitespace)
    {
        return handshake(token);
    }
    authenticate(&headers, state.verification_token.expose_secret())?;
    let envelope: Envelope = serde_json::from_slice(&bytes).map_err(refusal)?;
    let kind = EventKind::of(&envelope.event);
    if kind == EventKind::Other {
        metrics::counter!("ringside_notifications_total", "outcome" => "ignored").increment(1);
        tracing::debug!(uuid = %envelope.uuid, event = %envelope.event, "notification of another kind ignored");
        return Ok(ok());
    }
    if envelope.uuid.is_empty() || envelope.uuid.len() > MAX_UUID_LEN {
        let reason = Unusable::Shape(format!("uuid must be 1 to {MAX_UUID_LEN} characters"));
        return quarantine(&state, &envelope.uuid, received_at, &bytes, reason).await;
    }
    match kind {
        EventKind::TelephonySessions => match usable(&bytes) {
            Ok(update) => {
                tracing::debug!(telephony_session_id = %update.session_id, uuid = %envelope.uuid, "telephony notification received");
                commit(
                    &state,
                    &envelope.uuid,
                    "telephony",
                    received_at,
                    &bytes,
                    Payload::Telephony(update),
                )
                .await
            }
            Err(reason) => quarantine(&state, &envelope.uuid, received_at, &bytes, reason).await,
        },
        _ => {
            commit(
                &state,
                &envelope.uuid,
                "reminder",
                received_at,
                &bytes,
                Payload::Reminder,
            )
            .await
        }
    }
}

/// The body, as axum buffered it under the route's `DefaultBodyLimit`.
fn read_body(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, WebhookError> {
    match body {
        Ok(bytes) => Ok(bytes),
        Err(BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_))) => {
            Err(WebhookError::TooLarge(limit))
        }
        Err(_) => Err(WebhookError::Unreadable),
    }
}

/// Handshake: answer 200 at once, echoing `Validation-Token`, with a JSON content type and a
/// response well under 1 KiB.
fn handshake(token: &HeaderValue) -> Result<Response, WebhookError> {
    if token.len() > MAX_VALIDATION_TOKEN_LEN {
        return Err(WebhookError::ValidationTokenTooLong);
    }
    metrics::counter!("ringside_webhook_handshakes_total").increment(1);
    tracing::info!("answered RingCentral's webhook validation handshake");
    let mut response = StatusCode::OK.into_response();
    let headers = response.headers_mut();
    headers.insert("Validation-Token", token.clone());
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// Verification: `Verification-Token`, or a `Validation-Token` equal to the secret (RingCentral's
/// docs disagree on the name), compared in constant time.
fn authenticate(headers: &HeaderMap, secret: &str) -> Result<(), WebhookError> {
    let matches = |name: &str| {
        headers
            .get_all(name)
            .iter()
            .any(|value| bool::from(value.as_bytes().ct_eq(secret.as_bytes())))
    };
    if matches(VERIFICATION_TOKEN) || matches(VALIDATION_TOKEN) {
        Ok(())
    } else {
        Err(WebhookError::Unauthorized)
    }
}

fn refusal(error: serde_json::Error) -> WebhookError {
    let message = error.to_string();
    match error.classify() {
        serde_json::error::Category::Data => WebhookError::NotNotification(message),
        _ => WebhookError::NotJson(message),
    }
}

/// The checks a telephony notification must pass to reach the detector.
fn usable(bytes: &[u8]) -> Result<SessionUpdate, Unusable> {
    let notification: TelephonyNotification =
        serde_json::from_slice(bytes).map_err(|error| Unusable::Shape(error.to_string()))?;
    SessionUpdate::from_notification(&notification.body)
}

async fn commit(
    state: &WebhookState,
    uuid: &str,
    kind: &str,
    received_at: Timestamp,
    bytes: &Bytes,
    payload: Payload,
) -> Result<Response, WebhookError> {
    let row = NewInboxRow {
        uuid: uuid.to_owned(),
        kind: kind.to_owned(),
        received_at_ms: received_at.0,
        body: bytes.to_vec(),
    };
    match state.store.insert_inbox(row).await {
        Ok(InboxInsert::Inserted { id }) => {
            metrics::counter!("ringside_notifications_total", "outcome" => "accepted").increment(1);
            // The detector task may be gone during shutdown; the row is committed and will be
            // replayed at the next start, so nothing is lost.
            let _ = state.accepted.send(Accepted {
                inbox_id: id,
                received_at,
                payload,
            });
            Ok(ok())
        }
        Ok(InboxInsert::Duplicate { .. }) => {
            metrics::counter!("ringside_notifications_total", "outcome" => "duplicate")
                .increment(1);
            tracing::debug!(%uuid, "duplicate notification dropped");
            Ok(ok())
        }
        Err(error) => {
            tracing::error!(%error, "could not commit a notification to the inbox");
            Err(WebhookError::Store)
        }
    }
}

async fn quarantine(
    state: &WebhookState,
    uuid: &str,
    received_at: Timestamp,
    bytes: &Bytes,
    reason: Unusable,
) -> Result<Response, WebhookError> {
    metrics::counter!("ringside_notifications_total", "outcome" => "quarantined").increment(1);
    tracing::warn!(%uuid, %reason, "unusable notification quarantined");
    let row = NewQuarantineRow {
        uuid: Some(uuid.to_owned()).filter(|uuid| !uuid.is_empty()),
        received_at_ms: received_at.0,
        reason: reason.to_string(),
        body: bytes.to_vec(),
    };
    match state.store.quarantine(row).await {
        Ok(_) => Ok(ok()),
        Err(error) => {
            tracing::error!(%error, "could not quarantine a notification");
            Err(WebhookError::Store)
        }
    }
}

fn ok() -> Response {
    StatusCode::OK.into_response()
}

/// The public listener's RingCentral route, with its body limit.
pub fn router(state: WebhookState) -> axum::Router {
    let limit = state.max_body_bytes;
    axum::Router::new()
        .route("/webhooks/ringcentral", axum::routing::post(receive))
        .layer(axum::extract::DefaultBodyLimit::max(limit))
        .with_state(state)
}
