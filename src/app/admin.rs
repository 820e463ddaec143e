//! The operator listener's routes: `GET /readyz`, `GET /metrics`, and `GET /api/conferences`
//! behind the bearer token.

use crate::conference::{ConferenceView, Identity, Roster, Timestamp};
use crate::pipeline::ReadinessCheck;
use crate::pipeline::SubscriptionHealth;
use crate::store::Store;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, routing::get};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tokio::sync::watch;

/// Refusal log lines: at most one per second, with the count each stands for.
static REFUSALS: crate::util::throttle::Throttle =
    crate::util::throttle::Throttle::new(std::time::Duration::from_secs(1));

#[derive(Clone)]
struct ApiState {
    roster: Roster,
    token: Arc<SecretString>,
}

/// `GET /readyz` and `GET /metrics`, always on the operator listener.
pub fn probes_router(
    store: Store,
    subscription: Option<watch::Receiver<SubscriptionHealth>>,
    checks: Vec<ReadinessCheck>,
) -> Router {
    Router::new()
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Probes {
            store,
            subscription,
            checks: Arc::new(checks),
        })
}

#[derive(Clone)]
struct Probes {
    store: Store,
    subscription: Option<watch::Receiver<SubscriptionHealth>>,
    checks: Arc<Vec<ReadinessCheck>>,
}

/// Ready when the subscription is active (or there is none to manage: local mode), every other
/// check passes (Discord reachable, or local mode) and the store takes a write; otherwise 503
/// naming the failing part.
async fn readyz(State(probes): State<Probes>) -> Response {
    if let Some(subscription) = &probes.subscription {
        let health = subscription.borrow().clone();
        if !matches!(health, SubscriptionHealth::Active { .. }) {
            let reason = match health {
                SubscriptionHealth::Failing { reason } => reason,
                _ => "starting".to_owned(),
            };
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: RingCentral subscription not active: {reason}\n"),
            )
                .into_response();
        }
    }
    for check in probes.checks.iter() {
        if let Some(problem) = check() {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {problem}\n"),
            )
                .into_response();
        }
    }
    // From the first failed write on, until a write commits again: no probe write needed (and
    // none that could succeed on a full disk while notifications cannot).
    if let Some(reason) = probes.store.failing() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: store not writable: {reason}\n"),
        )
            .into_response();
    }
    match tokio::time::timeout(STORE_PROBE_TIMEOUT, probes.store.check_writable()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(_)) | Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: store not writable\n",
        )
            .into_response(),
    }
}

/// A readiness probe's store write that takes longer than this counts as a failure: a probe
/// must answer while a supervisor still waits.
const STORE_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

async fn metrics() -> Response {
    match super::metrics::handle() {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "metrics unavailable\n").into_response(),
    }
}

/// `/api/*`, present only when `server.api_token` is set.
pub fn api_router(roster: Roster, token: SecretString) -> Router {
    Router::new()
        .route("/api/conferences", get(conferences))
        .with_state(ApiState {
            roster,
            token: Arc::new(token),
        })
}

fn authorized(headers: &HeaderMap, token: &SecretString) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .is_some_and(|given| bool::from(given.as_bytes().ct_eq(token.expose_secret().as_bytes())))
}

async fn conferences(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    if !authorized(&headers, &state.token) {
        metrics::counter!("ringside_api_unauthorized_total").increment(1);
        if let Some(count) = REFUSALS.admit("api_unauthorized") {
            tracing::warn!(count, "GET /api/conferences without a valid bearer token");
        }
        return (StatusCode::UNAUTHORIZED, "missing or wrong bearer token\n").into_response();
    }
    let conferences: Vec<Value> = state.roster.live().iter().map(conference_json).collect();
    Json(json!({ "conferences": conferences })).into_response()
}

fn time(at: Option<Timestamp>) -> Value {
    at.map(|at| Value::String(at.to_rfc3339()))
        .unwrap_or(Value::Null)
}

fn person(identity: &Identity) -> Value {
    json!({ "name": identity.name, "phone_number": identity.phone_number })
}

/// The shape the README's "HTTP routes" documents: full numbers (an operator endpoint), `null` for what is unknown.
pub fn conference_json(view: &ConferenceView) -> Value {
    json!({
        "conference_id": view.id.as_str(),
        "started_at": time(view.started_at),
        "host": view.host.as_ref().map(person),
        "participants": view.live().map(|p| json!({
            "participant_id": p.id.as_str(),
            "name": p.identity.name,
            "phone_number": p.identity.phone_number,
            "joined_at": time(p.joined_at),
            "muted": p.muted,
            "on_hold": p.on_hold,
        })).collect::<Vec<_>>(),
    })
}
