//! `POST /discord/interactions`: Discord's HTTP-interactions transport, enabled by
//! `discord.public_key` (DESIGN §5 "Two ways to receive interactions").
//!
//! Every request is verified before its body is parsed: the Ed25519 signature in
//! `X-Signature-Ed25519` over `X-Signature-Timestamp` followed by the raw body, and a timestamp
//! within five minutes of now (either way). Anything else is `401` with a one-line reason —
//! Discord sends bad signatures on purpose and drops endpoints that accept them. A verified body
//! that is not an interaction is `400`. PING is answered `{"type":1}`; other interactions go to
//! [`Commands::handle`]: a `Now` reply is the response body, a `Deferred` one answers with its
//! ack and finishes through the [`Responder`] (PATCH `@original`).

use super::commands::{Commands, Reply};
use super::respond::{Responder, count, kind_of};
use crate::ringcentral::webhook::Clock;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serenity::all::Interaction;
use serenity::interactions_endpoint::Verifier;
use std::sync::Arc;

/// The route's path.
pub const PATH: &str = "/discord/interactions";
/// The furthest a request's timestamp may be from now, either way.
pub const MAX_SKEW_SECS: i64 = 300;

/// What the route needs.
#[derive(Clone)]
pub struct InteractionsState {
    pub verifier: Verifier,
    pub commands: Commands,
    pub responder: Responder,
    pub clock: Arc<dyn Clock>,
    /// `server.max_body_bytes`.
    pub max_body_bytes: usize,
}

/// The verifier for `discord.public_key` (64 hex characters), or why not.
pub fn verifier(public_key_hex: &str) -> anyhow::Result<Verifier> {
    let hex = public_key_hex.trim();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        anyhow::bail!("discord.public_key must be 64 hex characters");
    }
    let mut key = [0u8; 32];
    for (index, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[index * 2..index * 2 + 2], 16)
            .map_err(|_| anyhow::anyhow!("discord.public_key must be 64 hex characters"))?;
    }
    Verifier::try_new(key)
        .map_err(|_| anyhow::anyhow!("discord.public_key is not a valid Ed25519 key"))
}

/// The public listener's Discord route, with its body limit.
pub fn router(state: InteractionsState) -> axum::Router {
    let limit = state.max_body_bytes;
    axum::Router::new()
        .route(PATH, axum::routing::post(receive))
        .layer(axum::extract::DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// A refused request: status and one line, logged and counted.
fn reject(status: StatusCode, reason: &'static str, line: String) -> Response {
    metrics::counter!("ringside_discord_interaction_rejections_total", "reason" => reason)
        .increment(1);
    tracing::warn!(
        status = status.as_u16(),
        reason,
        "refused a Discord interaction request"
    );
    (status, format!("{line}\n")).into_response()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

async fn receive(
    State(state): State<InteractionsState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_))) => {
            return reject(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("request body is larger than {} bytes", state.max_body_bytes),
            );
        }
        Err(_) => {
            return reject(
                StatusCode::BAD_REQUEST,
                "unreadable",
                "request body could not be read".into(),
            );
        }
    };
    let Some(signature) = header(&headers, "X-Signature-Ed25519") else {
        return reject(
            StatusCode::UNAUTHORIZED,
            "no_signature",
            "missing X-Signature-Ed25519".into(),
        );
    };
    let Some(timestamp) = header(&headers, "X-Signature-Timestamp") else {
        return reject(
            StatusCode::UNAUTHORIZED,
            "no_timestamp",
            "missing X-Signature-Timestamp".into(),
        );
    };
    if state.verifier.verify(signature, timestamp, &body).is_err() {
        return reject(
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            "invalid request signature".into(),
        );
    }
    let Ok(sent_at) = timestamp.trim().parse::<i64>() else {
        return reject(
            StatusCode::UNAUTHORIZED,
            "bad_timestamp",
            "X-Signature-Timestamp is not a Unix time in seconds".into(),
        );
    };
    let now = state.clock.now().unix_seconds();
    if (now - sent_at).abs() > MAX_SKEW_SECS {
        return reject(
            StatusCode::UNAUTHORIZED,
            "stale_timestamp",
            format!("X-Signature-Timestamp is more than {MAX_SKEW_SECS} seconds from now"),
        );
    }
    let interaction: Interaction = match serde_json::from_slice(&body) {
        Ok(interaction) => interaction,
        Err(error) => {
            return reject(
                StatusCode::BAD_REQUEST,
                "not_interaction",
                format!("not a Discord interaction: {error}"),
            );
        }
    };
    let kind = kind_of(&interaction);
    if let Interaction::Ping(_) = interaction {
        count(kind, "answered");
        return Json(serde_json::json!({"type": 1})).into_response();
    }
    let token = interaction.token().to_owned();
    match state.commands.handle(interaction).await {
        Reply::Now(response) => {
            count(kind, "answered");
            Json(response).into_response()
        }
        Reply::Deferred { ack, work } => {
            let responder = state.responder.clone();
            tokio::spawn(async move { responder.finish(&token, work, kind).await });
            Json(ack).into_response()
        }
    }
}
