//! `POST /webhooks/ringcentral`: the one route RingCentral calls.
//!
//! The path does no network I/O and never waits on Discord: authenticate, parse the envelope,
//! commit it to the inbox (the commit is the dedup), answer. RingCentral blacklists slow or
//! failing endpoints, so a notification that is well-formed JSON but unusable is quarantined and
//! answered 200 — only requests that are not notifications at all get a 4xx.
//!
//! The order of checks is what makes the route safe to expose. The handshake (a
//! `Validation-Token` header and no body) is decided from the headers and stays unauthenticated,
//! as RingCentral requires; every other request is authenticated from its headers *before* a
//! byte of its body is read, so an unauthenticated client costs a header parse and nothing more.
//! A request carrying the right token is answered within `server.webhook_deadline_ms`: 200 once
//! committed, else 503 — never a 4xx for a store that is slow or failing: the 4xx would say the
//! notification itself was wrong, and whether RingCentral redelivers is unconfirmed
//! (`docs/ringcentral.md` §3.5), so a 503 says "try again" and reconciliation repairs what a lost
//! notification would have told. Refusals are counted per reason and logged at most once a second per reason; a failing
//! store is logged by the store itself, once when it starts failing and once when it recovers.

use super::intake::{Intake, IntakeError};
use crate::conference::Timestamp;
use crate::pipeline::DecodeError;
use crate::util::throttle::Throttle;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;

/// The header RingCentral's handshake uses (and, per the 2023 guide, maybe every notification).
pub const VALIDATION_TOKEN: &str = "validation-token";
/// The header that carries the subscription's verification token on notifications.
pub const VERIFICATION_TOKEN: &str = "verification-token";
/// A handshake answer must stay under 1 KiB in total; longer tokens are refused.
const MAX_VALIDATION_TOKEN_LEN: usize = 512;
/// The most of a body read on an unauthenticated request that may be a handshake (a chunked
/// body, whose length the headers do not give): a handshake's body is empty.
const MAX_HANDSHAKE_BODY: usize = 1024;

/// Refusal log lines: at most one per reason per second, each with the count it stands for.
static REFUSALS: Throttle = Throttle::new(Duration::from_secs(1));

/// What the route needs.
#[derive(Clone)]
pub struct WebhookState {
    pub verification_token: Arc<SecretString>,
    /// Where a notification goes once authenticated (shared with the WebSocket).
    pub intake: Intake,
    pub max_body_bytes: usize,
    /// `server.webhook_deadline_ms`: an authenticated request is answered 200 or 503 by then.
    pub deadline: Duration,
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
    #[error("ringside could not store the notification in time")]
    Deadline,
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
            WebhookError::Store | WebhookError::Deadline => StatusCode::SERVICE_UNAVAILABLE,
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
            WebhookError::Deadline => "deadline",
        }
    }
}

impl IntoResponse for WebhookError {
    fn into_response(self) -> Response {
        let reason = self.metric_reason();
        metrics::counter!("ringside_notifications_rejected_total", "reason" => reason).increment(1);
        // A store that is slow or failing is logged by the store, once; each refusal of the
        // client's own making is logged here at most once a second per reason.
        if !matches!(self, WebhookError::Store | WebhookError::Deadline)
            && let Some(count) = REFUSALS.admit(reason)
        {
            tracing::warn!(status = self.status().as_u16(), reason = %self, count, "webhook requests refused");
        }
        let mut response = (self.status(), format!("{self}\n")).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }
}

/// `POST /webhooks/ringcentral`.
pub async fn receive(State(state): State<WebhookState>, request: Request) -> Response {
    let received_at = state.intake.clock.now();
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let secret = state.verification_token.expose_secret();
    let authentic = authenticate(headers, secret);
    let validation = headers.get(VALIDATION_TOKEN);
    let declared = declared_length(headers);
    if let Some(token) = validation
        && !authentic
    {
        // Unauthenticated: only a handshake may pass, and a handshake has no body. Decided from
        // the headers; a chunked body is read only up to `MAX_HANDSHAKE_BODY`.
        return match declared {
            Declared::Empty => handshake(token),
            Declared::Chunked => match read_limited(body, MAX_HANDSHAKE_BODY).await {
                Ok(bytes) if blank(&bytes) => handshake(token),
                _ => Err(WebhookError::Unauthorized),
            },
            Declared::Length(_) => Err(WebhookError::Unauthorized),
        }
        .unwrap_or_else(IntoResponse::into_response);
    }
    if !authentic {
        return WebhookError::Unauthorized.into_response();
    }
    if let Declared::Length(length) = declared
        && length > state.max_body_bytes as u64
    {
        return WebhookError::TooLarge(state.max_body_bytes).into_response();
    }
    // From here the sender proved it holds the token: answer within the deadline, 200 or 503.
    let deadline = state.deadline;
    let work = async move {
        let bytes =
            read_limited(body, state.max_body_bytes)
                .await
                .map_err(|error| match error {
                    ReadError::TooLarge => WebhookError::TooLarge(state.max_body_bytes),
                    ReadError::Unreadable => WebhookError::Unreadable,
                })?;
        if let Some(token) = validation
            && blank(&bytes)
        {
            return handshake(token);
        }
        accept(state, received_at, bytes).await
    };
    match tokio::time::timeout(deadline, work).await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => error.into_response(),
        Err(_) => WebhookError::Deadline.into_response(),
    }
}

/// What the headers say of the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Declared {
    /// `Content-Length: 0`, or neither a length nor a transfer encoding.
    Empty,
    /// `Content-Length: n` with n > 0.
    Length(u64),
    /// A transfer encoding (chunked) or an unreadable length: the body must be read to know.
    Chunked,
}

fn declared_length(headers: &HeaderMap) -> Declared {
    match headers.get(header::CONTENT_LENGTH) {
        Some(value) => match value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            Some(0) => Declared::Empty,
            Some(length) => Declared::Length(length),
            None => Declared::Chunked,
        },
        None if headers.contains_key(header::TRANSFER_ENCODING) => Declared::Chunked,
        None => Declared::Empty,
    }
}

fn blank(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_whitespace)
}

enum ReadError {
    TooLarge,
    Unreadable,
}

/// Reads at most `limit` bytes of `body`.
async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ReadError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<LengthLimitError>() => Err(ReadError::TooLarge),
        Err(_) => Err(ReadError::Unreadable),
    }
}

/// An authenticated notification's body, taken in like any other (`intake`).
#[tracing::instrument(
    name = "notification",
    skip_all,
    fields(uuid = tracing::field::Empty, telephony_session_id = tracing::field::Empty)
)]
async fn accept(
    state: WebhookState,
    received_at: Timestamp,
    bytes: Bytes,
) -> Result<Response, WebhookError> {
    match state.intake.take(bytes, received_at, None).await {
        Ok(_) => Ok(ok()),
        Err(IntakeError::Decode(DecodeError::NotJson(message))) => {
            Err(WebhookError::NotJson(message))
        }
        Err(IntakeError::Decode(DecodeError::NotNotification(message))) => {
            Err(WebhookError::NotNotification(message))
        }
        Err(IntakeError::Store) => Err(WebhookError::Store),
    }
}

/// Handshake: answer 200 at once, echoing `Validation-Token`, with a JSON content type and a
/// response well under 1 KiB.
fn handshake(token: &HeaderValue) -> Result<Response, WebhookError> {
    if token.len() > MAX_VALIDATION_TOKEN_LEN {
        return Err(WebhookError::ValidationTokenTooLong);
    }
    metrics::counter!("ringside_webhook_handshakes_total").increment(1);
    // Anyone may send a handshake: logged like a refusal, at most once a second.
    if let Some(count) = REFUSALS.admit("handshake") {
        tracing::info!(count, "answered RingCentral's webhook validation handshake");
    }
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
/// docs disagree on the name), compared in constant time. Only the first value of each header
/// counts: a request repeating a header a hundred times still makes one guess per name.
fn authenticate(headers: &HeaderMap, secret: &str) -> bool {
    let matches = |name: &str| {
        headers
            .get(name)
            .is_some_and(|value| bool::from(value.as_bytes().ct_eq(secret.as_bytes())))
    };
    matches(VERIFICATION_TOKEN) | matches(VALIDATION_TOKEN)
}

fn ok() -> Response {
    StatusCode::OK.into_response()
}

/// The public listener's RingCentral route. The body limit is applied by [`receive`] itself,
/// after authentication.
pub fn router(state: WebhookState) -> axum::Router {
    axum::Router::new()
        .route("/webhooks/ringcentral", axum::routing::post(receive))
        .with_state(state)
}
