//! The operator listener's routes: `GET /readyz`, `GET /metrics`, and `GET /api/conferences`
//! behind the bearer token.

use crate::conference::{ConferenceView, Identity, Roster, Timestamp};
use crate::pipeline::ReadinessCheck;
use crate::pipeline::SubscriptionHealth;
use crate::store::Store;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Router, routing::get};
use secrecy::{ExposeSecret, SecretString};
use serde::{Serialize, Serializer};
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
    let live = state.roster.live_shared();
    let mut body = Vec::with_capacity(listing_capacity(&live));
    if let Err(error) = serde_json::to_writer(&mut body, &Listing { conferences: &live }) {
        tracing::error!(%error, "could not serialize the conference listing");
        return (StatusCode::INTERNAL_SERVER_ERROR, "listing failed\n").into_response();
    }
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The answer's size, guessed from typical rows so that the body is allocated about once (a
/// 20,000-participant listing is some 5 MB: doubling a buffer up to there leaves freed blocks
/// the allocator keeps).
fn listing_capacity(live: &[Arc<ConferenceView>]) -> usize {
    const PER_CONFERENCE: usize = 160;
    const PER_PARTICIPANT: usize = 200;
    let participants: usize = live.iter().map(|view| view.live().count()).sum();
    32 + live.len() * PER_CONFERENCE + participants * PER_PARTICIPANT
}

/// The shape the README's "HTTP routes" documents, serialized straight from the roster's views
/// (no intermediate JSON tree): full numbers (an operator endpoint), `null` for what is unknown.
#[derive(Serialize)]
struct Listing<'a> {
    #[serde(serialize_with = "each_conference")]
    conferences: &'a [Arc<ConferenceView>],
}

fn each_conference<S: Serializer>(
    live: &&[Arc<ConferenceView>],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(live.iter().map(|view| ConferenceJson::of(view)))
}

#[derive(Serialize)]
struct ConferenceJson<'a> {
    conference_id: &'a str,
    started_at: Option<Time>,
    host: Option<Person<'a>>,
    #[serde(serialize_with = "live_participants")]
    participants: &'a ConferenceView,
}

impl<'a> ConferenceJson<'a> {
    fn of(view: &'a ConferenceView) -> Self {
        ConferenceJson {
            conference_id: view.id.as_str(),
            started_at: view.started_at.map(Time),
            host: view.host.as_ref().map(Person::of),
            participants: view,
        }
    }
}

fn live_participants<S: Serializer>(
    view: &&ConferenceView,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(view.live().map(|p| ParticipantJson {
        participant_id: p.id.as_str(),
        name: p.identity.name.as_deref(),
        phone_number: p.identity.phone_number.as_deref(),
        joined_at: p.joined_at.map(Time),
        muted: p.muted,
        on_hold: p.on_hold,
    }))
}

#[derive(Serialize)]
struct Person<'a> {
    name: Option<&'a str>,
    phone_number: Option<&'a str>,
}

impl<'a> Person<'a> {
    fn of(identity: &'a Identity) -> Self {
        Person {
            name: identity.name.as_deref(),
            phone_number: identity.phone_number.as_deref(),
        }
    }
}

#[derive(Serialize)]
struct ParticipantJson<'a> {
    participant_id: &'a str,
    name: Option<&'a str>,
    phone_number: Option<&'a str>,
    joined_at: Option<Time>,
    muted: bool,
    on_hold: bool,
}

/// A time as RFC 3339, written straight into the output.
struct Time(Timestamp);

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conference::{ConferenceId, ParticipantId, ParticipantView};

    fn participant(id: &str, name: Option<&str>, live: bool) -> ParticipantView {
        ParticipantView {
            id: ParticipantId::parse(id).unwrap(),
            identity: Identity {
                name: name.map(str::to_owned),
                phone_number: Some("+16505550142".to_owned()),
                extension_id: Some("62288".to_owned()),
            },
            joined_at: name.map(|_| Timestamp(1_709_049_892_223)),
            live,
            muted: true,
            on_hold: false,
            left_at: None,
            removed_by: None,
            original_party: None,
            original_session: None,
        }
    }

    #[test]
    fn the_listing_is_the_documented_shape_in_order_with_live_participants_only() {
        let view = Arc::new(ConferenceView {
            id: ConferenceId::parse("s-conf").unwrap(),
            started_at: Some(Timestamp(1_709_049_892_000)),
            host: Some(Identity {
                name: Some("Agent 122".to_owned()),
                phone_number: None,
                extension_id: None,
            }),
            host_party: None,
            ended: false,
            ended_at: None,
            joined: 3,
            peak: 2,
            participants: vec![
                participant("p-1", Some("Paco \"Vu\""), true),
                participant("p-2", Some("Gone"), false),
                participant("p-3", None, true),
            ],
        });
        let unknown = Arc::new(ConferenceView {
            id: ConferenceId::parse("s-other").unwrap(),
            started_at: None,
            host: None,
            host_party: None,
            ended: false,
            ended_at: None,
            joined: 0,
            peak: 0,
            participants: Vec::new(),
        });
        let live = [view, unknown];
        let text = serde_json::to_string(&Listing { conferences: &live }).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"conferences":[{"conference_id":"s-conf","started_at":"2024-02-27T16:04:52.000Z","#,
                r#""host":{"name":"Agent 122","phone_number":null},"participants":["#,
                r#"{"participant_id":"p-1","name":"Paco \"Vu\"","phone_number":"+16505550142","#,
                r#""joined_at":"2024-02-27T16:04:52.223Z","muted":true,"on_hold":false},"#,
                r#"{"participant_id":"p-3","name":null,"phone_number":"+16505550142","#,
                r#""joined_at":null,"muted":true,"on_hold":false}]},"#,
                r#"{"conference_id":"s-other","started_at":null,"host":null,"participants":[]}]}"#
            )
        );
        assert!(listing_capacity(&live) >= text.len());
    }
}
