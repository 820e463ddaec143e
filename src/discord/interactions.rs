//! `POST /discord/interactions`: Discord's HTTP-interactions transport, enabled by
//! `discord.public_key` (the README's "Connecting to Discord", step 5).
//!
//! Every request is verified before its body is parsed: the Ed25519 signature in
//! `X-Signature-Ed25519` over `X-Signature-Timestamp` followed by the raw body, and a timestamp
//! within five minutes of now (either way). Anything else is `401` with a one-line reason —
//! Discord sends bad signatures on purpose and drops endpoints that accept them. A verified body
//! that is not an interaction is `400`. A signed interaction whose id was already received in the
//! last ten minutes (a captured request posted again within the timestamp window) is `401`: no
//! second answer, no second action. PING is answered `{"type":1}`; other interactions go to
//! [`Commands::handle`]: a `Now` reply is the response body, a `Deferred` one answers with its
//! ack and finishes through the [`Responder`] (PATCH `@original`).

use super::commands::{Commands, Reply};
use super::respond::{Responder, count, kind_of};
use crate::pipeline::Clock;
use crate::util::throttle::Throttle;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serenity::all::Interaction;
use serenity::interactions_endpoint::Verifier;
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Refusal log lines: at most one per reason per second, each with the count it stands for.
static REFUSALS: Throttle = Throttle::new(Duration::from_secs(1));
/// How long an interaction id is remembered: twice the timestamp window, so a replay signed
/// with the same timestamp is refused for as long as its timestamp would be accepted.
const REMEMBER_IDS_MS: i64 = 10 * 60 * 1000;
/// The most interaction ids remembered. Only requests Discord signed get this far; at this
/// many, the oldest is forgotten first.
const MAX_REMEMBERED_IDS: usize = 100_000;

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
    /// Interaction ids received in the last ten minutes.
    pub seen: SeenInteractions,
}

/// Interaction ids received recently, oldest first: a replay of a signed request is refused.
#[derive(Clone, Default)]
pub struct SeenInteractions(Arc<Mutex<Seen>>);

#[derive(Default)]
struct Seen {
    order: VecDeque<(i64, u64)>,
    ids: HashSet<u64>,
}

impl SeenInteractions {
    /// Records `id` received at `now_ms`; `false` when it was received in the last ten minutes.
    fn first_time(&self, id: u64, now_ms: i64) -> bool {
        let mut seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(&(at, old)) = seen.order.front() {
            if now_ms.saturating_sub(at) < REMEMBER_IDS_MS && seen.order.len() < MAX_REMEMBERED_IDS
            {
                break;
            }
            seen.order.pop_front();
            seen.ids.remove(&old);
        }
        if !seen.ids.insert(id) {
            return false;
        }
        seen.order.push_back((now_ms, id));
        true
    }
}

/// The verifier for `discord.public_key` (checked when the settings were loaded).
pub fn verifier(public_key: &crate::config::PublicKey) -> anyhow::Result<Verifier> {
    Verifier::try_new(public_key.bytes())
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
    if let Some(count) = REFUSALS.admit(reason) {
        tracing::warn!(
            status = status.as_u16(),
            reason,
            count,
            "refused Discord interaction requests"
        );
    }
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
    if !state
        .seen
        .first_time(interaction.id().get(), state.clock.now().0)
    {
        return reject(
            StatusCode::UNAUTHORIZED,
            "replayed",
            "this interaction was already received".into(),
        );
    }
    let kind = kind_of(&interaction);
    if let Interaction::Ping(_) = interaction {
        count(kind, "answered");
        return Json(serde_json::json!({"type": 1})).into_response();
    }
    let token = interaction.token().to_owned();
    let span = super::respond::span(&interaction, kind);
    let answer = async {
        match state.commands.handle(interaction).await {
            Reply::Now(response) => {
                count(kind, "answered");
                Json(response).into_response()
            }
            Reply::Deferred { ack, work } => {
                state.responder.finish_later(token, work, kind);
                Json(ack).into_response()
            }
        }
    };
    tracing::Instrument::instrument(answer, span).await
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::DiscordBot;
    use crate::discord::api::DiscordApi;
    use crate::discord::commands::tests::{
        Harness, command_json, harness, moderator, paco_key, plain_member,
    };
    use axum::extract::Request;
    use ed25519_dalek::{Signer, SigningKey};
    use serde_json::{Value, json};
    use std::sync::Mutex;
    use std::time::Duration;

    /// What the fake Discord REST API received: method, path, body.
    pub(crate) type Seen = Arc<Mutex<Vec<(String, String, Value)>>>;

    /// A minimal Discord REST fake: 204 for interaction callbacks, a message for anything
    /// else; records every request.
    pub(crate) async fn fake_discord() -> (String, Seen) {
        fake_discord_with(None).await
    }

    /// [`fake_discord`], answering `GET /api/v10/gateway` with `gateway_url` when given.
    /// A message as Discord answers it (what serenity reads back from an edit).
    pub(crate) fn message_json(content: &str) -> Value {
        json!({
            "id": "700", "channel_id": "20",
            "author": {"id": "1", "username": "ringside", "discriminator": "0",
                       "avatar": null, "bot": true},
            "content": content, "timestamp": "2024-01-01T00:00:00+00:00",
            "edited_timestamp": null, "tts": false, "mention_everyone": false,
            "mentions": [], "mention_roles": [], "attachments": [], "embeds": [],
            "pinned": false, "type": 0
        })
    }

    pub(crate) async fn fake_discord_with(gateway_url: Option<String>) -> (String, Seen) {
        let seen: Seen = Arc::default();
        let record = seen.clone();
        let app = axum::Router::new().fallback(move |request: Request| {
            let record = record.clone();
            let gateway_url = gateway_url.clone();
            async move {
                let method = request.method().to_string();
                let path = request.uri().path().to_owned();
                if let (Some(url), "/api/v10/gateway") = (gateway_url, path.as_str()) {
                    return Json(json!({ "url": url })).into_response();
                }
                let bytes = axum::body::to_bytes(request.into_body(), 1 << 20)
                    .await
                    .unwrap_or_default();
                let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                record.lock().unwrap().push((method, path.clone(), body));
                if path.ends_with("/callback") {
                    StatusCode::NO_CONTENT.into_response()
                } else {
                    Json(message_json("")).into_response()
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (format!("http://{addr}"), seen)
    }

    pub(crate) fn responder_for(base: &str) -> Responder {
        let api = DiscordApi::new(
            base,
            &DiscordBot {
                token: secrecy::SecretString::from("bot-token"),
                application_id: 1,
                guild_id: crate::discord::commands::tests::GUILD,
                channel_id: 20,
            },
        );
        Responder::new(api.serenity().unwrap())
    }

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    struct Endpoint {
        url: String,
        client: reqwest::Client,
        now_secs: i64,
        seen: Seen,
        _harness: Harness,
    }

    async fn endpoint() -> Endpoint {
        let (base, seen) = fake_discord().await;
        let h = harness();
        let now_secs = h.clock.now().unix_seconds();
        let state = InteractionsState {
            verifier: Verifier::try_new(key().verifying_key().to_bytes()).unwrap(),
            commands: h.commands.clone(),
            responder: responder_for(&base),
            clock: h.clock.clone(),
            max_body_bytes: 65_536,
            seen: SeenInteractions::default(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router(state)).await;
        });
        Endpoint {
            url: format!("http://{addr}{PATH}"),
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            now_secs,
            seen,
            _harness: h,
        }
    }

    impl Endpoint {
        async fn post(&self, body: &str, timestamp: &str, signer: &SigningKey) -> (u16, String) {
            let message = [timestamp.as_bytes(), body.as_bytes()].concat();
            let signature: String = signer
                .sign(&message)
                .to_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let response = self
                .client
                .post(&self.url)
                .header("X-Signature-Ed25519", signature)
                .header("X-Signature-Timestamp", timestamp)
                .header("Content-Type", "application/json")
                .body(body.to_owned())
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }

        async fn signed(&self, body: &Value) -> (u16, Value) {
            let (status, text) = self
                .post(&body.to_string(), &self.now_secs.to_string(), &key())
                .await;
            (
                status,
                serde_json::from_str(&text).unwrap_or(Value::String(text)),
            )
        }
    }

    fn ping() -> String {
        json!({"id": "1", "application_id": "1", "type": 1, "token": "t", "version": 1}).to_string()
    }

    #[tokio::test]
    async fn a_signed_ping_gets_a_pong() {
        let e = endpoint().await;
        let (status, body) = e.post(&ping(), &e.now_secs.to_string(), &key()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap(),
            json!({"type": 1})
        );
    }

    #[tokio::test]
    async fn a_bad_signature_is_401_before_parsing() {
        let e = endpoint().await;
        let other = SigningKey::from_bytes(&[8; 32]);
        let (status, body) = e.post(&ping(), &e.now_secs.to_string(), &other).await;
        assert_eq!(
            (status, body.as_str()),
            (401, "invalid request signature\n")
        );
        // Not JSON at all, but signed by someone else: still 401, not 400.
        let (status, _) = e.post("not json", &e.now_secs.to_string(), &other).await;
        assert_eq!(status, 401);
        // No signature headers at all.
        let response = e.client.post(&e.url).body(ping()).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 401);
        assert_eq!(
            response.text().await.unwrap(),
            "missing X-Signature-Ed25519\n"
        );
    }

    #[tokio::test]
    async fn a_timestamp_more_than_five_minutes_away_is_401() {
        let e = endpoint().await;
        for timestamp in [
            (e.now_secs - 301).to_string(),
            (e.now_secs + 301).to_string(),
            "yesterday".to_owned(),
        ] {
            let (status, body) = e.post(&ping(), &timestamp, &key()).await;
            assert_eq!(status, 401, "{timestamp}: {body}");
            assert_eq!(body.lines().count(), 1);
        }
        let (status, _) = e
            .post(&ping(), &(e.now_secs - 299).to_string(), &key())
            .await;
        assert_eq!(status, 200);
    }

    #[tokio::test]
    async fn a_replayed_signed_interaction_is_refused_and_not_acted_on() {
        let e = endpoint().await;
        let listing = command_json(2, "participants", json!([]), plain_member());
        let (status, first) = e.signed(&listing).await;
        assert_eq!(status, 200);
        assert_eq!(first["type"], 4);
        // The same signed request, posted again inside the timestamp window.
        let (status, again) = e.signed(&listing).await;
        assert_eq!(status, 401);
        assert_eq!(again, json!("this interaction was already received\n"));
        // A different interaction is answered as usual.
        let mut other = listing.clone();
        other["id"] = json!("902");
        assert_eq!(e.signed(&other).await.0, 200);
    }

    #[test]
    fn interaction_ids_are_remembered_for_ten_minutes_and_bounded() {
        let seen = SeenInteractions::default();
        assert!(seen.first_time(1, 0));
        assert!(!seen.first_time(1, REMEMBER_IDS_MS - 1));
        assert!(seen.first_time(2, REMEMBER_IDS_MS - 1));
        // Ten minutes on, the first is forgotten; the second is still remembered.
        assert!(seen.first_time(1, REMEMBER_IDS_MS));
        assert!(!seen.first_time(2, REMEMBER_IDS_MS));
        for id in 10..(10 + MAX_REMEMBERED_IDS as u64) {
            seen.first_time(id, REMEMBER_IDS_MS);
        }
        assert!(seen.0.lock().unwrap().order.len() <= MAX_REMEMBERED_IDS);
    }

    #[tokio::test]
    async fn a_signed_body_that_is_not_an_interaction_is_400() {
        let e = endpoint().await;
        let (status, body) = e.post("{\"type\":", &e.now_secs.to_string(), &key()).await;
        assert_eq!(status, 400);
        assert!(body.starts_with("not a Discord interaction"), "{body}");
        assert_eq!(body.lines().count(), 1);
    }

    #[tokio::test]
    async fn a_command_is_answered_in_the_response_body() {
        let e = endpoint().await;
        let (status, body) = e
            .signed(&command_json(2, "participants", json!([]), plain_member()))
            .await;
        assert_eq!(status, 200);
        assert_eq!(body["type"], 4);
        assert!(
            body["data"]["content"]
                .as_str()
                .unwrap()
                .contains("Paco Vu")
        );
        assert!(
            e.seen.lock().unwrap().is_empty(),
            "nothing POSTed to Discord"
        );
    }

    #[tokio::test]
    async fn a_confirmed_kick_is_acked_in_the_body_then_patches_the_original() {
        let e = endpoint().await;
        let (_, confirmation) = e
            .signed(&command_json(
                2,
                "kick",
                json!([{"name": "caller", "type": 3, "value": paco_key()}]),
                moderator(),
            ))
            .await;
        let yes = confirmation["data"]["components"][0]["components"][0]["custom_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut press = command_json(3, "kick", json!([]), moderator());
        press["id"] = json!("901");
        press["data"] = json!({"custom_id": yes, "component_type": 2});
        press["token"] = json!("button-token");
        press["message"] = json!({
            "id": "700", "channel_id": "20",
            "author": {"id": "1", "username": "ringside", "discriminator": "0", "avatar": null},
            "content": "", "timestamp": "2024-01-01T00:00:00+00:00", "edited_timestamp": null,
            "tts": false, "mention_everyone": false, "mentions": [], "mention_roles": [],
            "attachments": [], "embeds": [], "pinned": false, "type": 0
        });
        let (status, ack) = e.signed(&press).await;
        assert_eq!(status, 200);
        assert_eq!(ack["type"], 7);
        assert_eq!(ack["data"]["content"], "Removing Paco Vu…");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let seen = e.seen.lock().unwrap().clone();
            if let Some((method, path, body)) = seen.first() {
                assert_eq!(method, "PATCH");
                assert_eq!(path, "/api/v10/webhooks/1/button-token/messages/@original");
                assert_eq!(body["content"], "Removed Paco Vu from Agent 122's call.");
                assert_eq!(body["components"], json!([]));
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "no PATCH arrived");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn the_responder_posts_the_callback_then_patches_for_deferred_work() {
        let (base, seen) = fake_discord().await;
        let responder = responder_for(&base);
        let id = serenity::all::InteractionId::new(901);
        responder
            .deliver(
                id,
                "tok",
                "component",
                Reply::Deferred {
                    ack: serenity::all::CreateInteractionResponse::Acknowledge,
                    work: Box::pin(async {
                        serenity::all::EditInteractionResponse::new().content("done")
                    }),
                },
            )
            .await;
        // The edit is tracked work: a graceful stop waits for it, and so does this test.
        responder.wait_follow_ups().await;
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(seen[0].0, "POST");
        assert_eq!(seen[0].1, "/api/v10/interactions/901/tok/callback");
        assert_eq!(seen[0].2["type"], 6);
        assert_eq!(seen[1].0, "PATCH");
        assert_eq!(seen[1].1, "/api/v10/webhooks/1/tok/messages/@original");
        assert_eq!(seen[1].2["content"], "done");
    }
}
