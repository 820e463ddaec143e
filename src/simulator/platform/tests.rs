//! Tests of the platform fake over real HTTP: a reqwest client against the platform, and a
//! tiny axum webhook receiver where a webhook is needed. Tests may use ringside's wire model
//! to cross-check shapes; the fake itself does not.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use reqwest::Method;
use serde_json::{Value, json};

use super::*;
use crate::ringcentral::wire::{CallSession, SubscriptionInfo, TelephonyNotification, TokenInfo};
use crate::simulator::{LeaveSignal, Person};

// ----- helpers ---------------------------------------------------------------------------------

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client builds")
}

fn host() -> Person {
    Person::with_extension("Agent 122", "+16505550122", "62295300122")
}

fn paco() -> Person {
    Person::with_extension("Paco Vu", "11119", "62288300119")
}

fn dana() -> Person {
    Person::new("Dana Whitfield", "+14155550142")
}

async fn platform(options: PlatformOptions) -> PlatformHandle {
    Platform::start(options).await.expect("platform starts")
}

async fn grant(handle: &PlatformHandle, id: &str, secret: &str, jwt: &str) -> reqwest::Response {
    http()
        .post(format!("{}/restapi/oauth/token", handle.base_url()))
        .basic_auth(id, Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={jwt}"
        ))
        .send()
        .await
        .expect("token request")
}

async fn token(handle: &PlatformHandle) -> TokenInfo {
    let response = grant(
        handle,
        DEFAULT_CLIENT_ID,
        DEFAULT_CLIENT_SECRET,
        DEFAULT_JWT,
    )
    .await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("token json")
}

async fn bearer(handle: &PlatformHandle) -> String {
    token(handle).await.access_token
}

async fn refresh(handle: &PlatformHandle, refresh_token: &str) -> reqwest::Response {
    http()
        .post(format!("{}/restapi/oauth/token", handle.base_url()))
        .basic_auth(DEFAULT_CLIENT_ID, Some(DEFAULT_CLIENT_SECRET))
        .body(format!(
            "grant_type=refresh_token&refresh_token={refresh_token}"
        ))
        .send()
        .await
        .expect("refresh request")
}

async fn call(
    handle: &PlatformHandle,
    method: Method,
    path: &str,
    bearer: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = http()
        .request(method, format!("{}{path}", handle.base_url()))
        .bearer_auth(bearer);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("api request")
}

async fn error_code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.expect("error json");
    body["errorCode"]
        .as_str()
        .or_else(|| body["error"].as_str())
        .unwrap_or_default()
        .to_owned()
}

const ACCOUNT_FILTER: &str = "/restapi/v1.0/account/~/telephony/sessions";

fn session_path(id: &str) -> String {
    format!("/restapi/v1.0/account/~/telephony/sessions/{id}")
}

fn party_path(session: &str, party: &str) -> String {
    format!("/restapi/v1.0/account/~/telephony/sessions/{session}/parties/{party}")
}

/// How the test receiver answers the validation handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handshake {
    Echo,
    NoEcho,
    NoContentType,
    TooBig,
    TooSlow,
}

#[derive(Debug, Clone)]
struct Received {
    verification_token: Option<String>,
    content_type: Option<String>,
    body: Value,
}

#[derive(Clone)]
struct ReceiverState {
    handshake: Handshake,
    handshakes: Arc<Mutex<u32>>,
    got: Arc<Mutex<Vec<Received>>>,
}

/// A webhook receiver on 127.0.0.1:0.
struct Receiver {
    url: String,
    state: ReceiverState,
}

impl Receiver {
    async fn start(handshake: Handshake) -> Self {
        let state = ReceiverState {
            handshake,
            handshakes: Arc::default(),
            got: Arc::default(),
        };
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("receiver binds");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, state }
    }

    fn got(&self) -> Vec<Received> {
        self.state.got.lock().expect("lock").clone()
    }

    fn handshakes(&self) -> u32 {
        *self.state.handshakes.lock().expect("lock")
    }
}

async fn receive(State(state): State<ReceiverState>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    if let Some(token) = header("validation-token") {
        *state.handshakes.lock().expect("lock") += 1;
        let reply = Response::builder().status(200);
        return match state.handshake {
            Handshake::Echo => reply
                .header("validation-token", token)
                .header("content-type", "application/json")
                .body(Body::empty()),
            Handshake::NoEcho => reply
                .header("content-type", "application/json")
                .body(Body::empty()),
            Handshake::NoContentType => reply.header("validation-token", token).body(Body::empty()),
            Handshake::TooBig => reply
                .header("validation-token", token)
                .header("content-type", "application/json")
                .body(Body::from(format!("\"{}\"", "x".repeat(1100)))),
            Handshake::TooSlow => {
                tokio::time::sleep(Duration::from_millis(3500)).await;
                reply
                    .header("validation-token", token)
                    .header("content-type", "application/json")
                    .body(Body::empty())
            }
        }
        .expect("response builds");
    }
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    state.got.lock().expect("lock").push(Received {
        verification_token: header("verification-token"),
        content_type: header("content-type"),
        body,
    });
    StatusCode::OK.into_response()
}

fn subscription_body(address: &str, filters: &[&str], expires_in: u64) -> Value {
    json!({
        "eventFilters": filters,
        "deliveryMode": {"transportType": "WebHook", "address": address, "verificationToken": "hook-secret-1"},
        "expiresIn": expires_in,
    })
}

async fn subscribe(handle: &PlatformHandle, bearer: &str, receiver: &Receiver) -> SubscriptionInfo {
    let response = call(
        handle,
        Method::POST,
        "/restapi/v1.0/subscription",
        bearer,
        Some(subscription_body(&receiver.url, &[ACCOUNT_FILTER], 3600)),
    )
    .await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("subscription json")
}

/// A platform with a subscription to a receiver that answers the handshake.
async fn subscribed(options: PlatformOptions) -> (PlatformHandle, String, Receiver) {
    let handle = platform(options).await;
    let bearer = bearer(&handle).await;
    let receiver = Receiver::start(Handshake::Echo).await;
    subscribe(&handle, &bearer, &receiver).await;
    (handle, bearer, receiver)
}

async fn get_session(handle: &PlatformHandle, bearer: &str, id: &str) -> reqwest::Response {
    call(handle, Method::GET, &session_path(id), bearer, None).await
}

fn party<'a>(session: &'a Value, id: &str) -> &'a Value {
    session["parties"]
        .as_array()
        .expect("parties")
        .iter()
        .find(|party| party["id"] == id)
        .unwrap_or_else(|| panic!("no party {id} in {session}"))
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

// ----- OAuth -----------------------------------------------------------------------------------

#[tokio::test]
async fn jwt_grant_with_the_right_client_and_jwt_issues_a_bearer_token() {
    let handle = platform(PlatformOptions::new().access_token_ttl(1800)).await;
    let response = grant(
        &handle,
        DEFAULT_CLIENT_ID,
        DEFAULT_CLIENT_SECRET,
        DEFAULT_JWT,
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "x-rate-limit-group").as_deref(),
        Some("auth")
    );
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 1800);
    assert_eq!(body["scope"], DEFAULT_SCOPE);
    assert!(body["refresh_token"].is_string());
    assert!(body["refresh_token_expires_in"].is_u64());
    assert!(body["owner_id"].is_string() && body["endpoint_id"].is_string());
    let info: TokenInfo = serde_json::from_value(body).expect("ringside's model parses it");
    let presence = call(
        &handle,
        Method::GET,
        "/restapi/v1.0/account/~/presence",
        &info.access_token,
        None,
    )
    .await;
    assert_eq!(presence.status(), 200);
    assert_eq!(handle.token_requests().jwt, 1);
}

#[tokio::test]
async fn token_grant_with_wrong_basic_credentials_is_invalid_client() {
    let handle = platform(PlatformOptions::new()).await;
    let response = grant(&handle, DEFAULT_CLIENT_ID, "wrong-secret", DEFAULT_JWT).await;
    assert_eq!(response.status(), 401);
    assert_eq!(error_code(response).await, "invalid_client");
    let unauthenticated = http()
        .post(format!("{}/restapi/oauth/token", handle.base_url()))
        .body("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=x")
        .send()
        .await
        .expect("request");
    assert_eq!(unauthenticated.status(), 401);
}

#[tokio::test]
async fn token_grant_with_a_wrong_jwt_is_invalid_grant() {
    let handle = platform(PlatformOptions::new().jwt("the-real-jwt")).await;
    let response = grant(
        &handle,
        DEFAULT_CLIENT_ID,
        DEFAULT_CLIENT_SECRET,
        DEFAULT_JWT,
    )
    .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "invalid_grant");
    assert!(body["error_description"].is_string());
    let right = grant(
        &handle,
        DEFAULT_CLIENT_ID,
        DEFAULT_CLIENT_SECRET,
        "the-real-jwt",
    )
    .await;
    assert_eq!(right.status(), 200);
    let counts = handle.token_requests();
    assert_eq!((counts.jwt, counts.issued), (2, 1));
}

#[tokio::test]
async fn refresh_tokens_are_single_use_and_end_the_old_access_token() {
    let handle = platform(PlatformOptions::new()).await;
    let first = token(&handle).await;
    let old_refresh = first.refresh_token.clone().expect("refresh token issued");
    let response = refresh(&handle, &old_refresh).await;
    assert_eq!(response.status(), 200);
    let second: TokenInfo = response.json().await.expect("json");
    assert_ne!(second.access_token, first.access_token);

    let again = refresh(&handle, &old_refresh).await;
    assert_eq!(again.status(), 400);
    assert_eq!(error_code(again).await, "invalid_grant");

    let old = call(
        &handle,
        Method::GET,
        "/restapi/v1.0/subscription",
        &first.access_token,
        None,
    )
    .await;
    assert_eq!(old.status(), 401);
    let new = call(
        &handle,
        Method::GET,
        "/restapi/v1.0/subscription",
        &second.access_token,
        None,
    )
    .await;
    assert_eq!(new.status(), 200);
    assert_eq!(handle.token_requests().refresh, 2);
}

#[tokio::test]
async fn refresh_tokens_are_left_out_when_the_app_does_not_issue_them() {
    let handle = platform(
        PlatformOptions::new()
            .refresh_tokens(false)
            .scope("CallControl"),
    )
    .await;
    let body: Value = grant(
        &handle,
        DEFAULT_CLIENT_ID,
        DEFAULT_CLIENT_SECRET,
        DEFAULT_JWT,
    )
    .await
    .json()
    .await
    .expect("json");
    assert!(body.get("refresh_token").is_none());
    assert!(body.get("refresh_token_expires_in").is_none());
    assert_eq!(body["scope"], "CallControl");
}

#[tokio::test]
async fn api_calls_need_a_live_bearer_token() {
    let handle =
        platform(PlatformOptions::new().access_token_lifetime(Duration::from_millis(400))).await;
    let path = "/restapi/v1.0/subscription";
    let missing = http()
        .get(format!("{}{path}", handle.base_url()))
        .send()
        .await
        .expect("request");
    assert_eq!(missing.status(), 401);

    let unknown = call(&handle, Method::GET, path, "not-a-token", None).await;
    assert_eq!(unknown.status(), 401);
    assert_eq!(error_code(unknown).await, "OAU-129");

    let short = bearer(&handle).await;
    assert_eq!(
        call(&handle, Method::GET, path, &short, None)
            .await
            .status(),
        200
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let expired = call(&handle, Method::GET, path, &short, None).await;
    assert_eq!(expired.status(), 401);
    assert_eq!(error_code(expired).await, "OAU-128");
}

#[tokio::test]
async fn expire_tokens_makes_every_access_token_answer_oau_128() {
    let handle = platform(PlatformOptions::new()).await;
    let bearer = bearer(&handle).await;
    let path = "/restapi/v1.0/subscription";
    assert_eq!(
        call(&handle, Method::GET, path, &bearer, None)
            .await
            .status(),
        200
    );
    handle.expire_tokens();
    let expired = call(&handle, Method::GET, path, &bearer, None).await;
    assert_eq!(expired.status(), 401);
    assert_eq!(error_code(expired).await, "OAU-128");
}

#[tokio::test]
async fn revoke_ends_the_whole_token_pair() {
    let handle = platform(PlatformOptions::new()).await;
    let info = token(&handle).await;
    let response = http()
        .post(format!("{}/restapi/oauth/revoke", handle.base_url()))
        .basic_auth(DEFAULT_CLIENT_ID, Some(DEFAULT_CLIENT_SECRET))
        .body(format!("token={}", info.access_token))
        .send()
        .await
        .expect("revoke");
    assert_eq!(response.status(), 200);
    let after = call(
        &handle,
        Method::GET,
        "/restapi/v1.0/subscription",
        &info.access_token,
        None,
    )
    .await;
    assert_eq!(error_code(after).await, "OAU-129");
    let refreshed = refresh(&handle, info.refresh_token.as_deref().expect("refresh")).await;
    assert_eq!(refreshed.status(), 400);
}

// ----- Subscriptions ---------------------------------------------------------------------------

#[tokio::test]
async fn subscription_create_runs_the_handshake_and_never_returns_the_token() {
    let handle = platform(PlatformOptions::new()).await;
    let bearer = bearer(&handle).await;
    let receiver = Receiver::start(Handshake::Echo).await;
    let response = call(
        &handle,
        Method::POST,
        "/restapi/v1.0/subscription",
        &bearer,
        Some(subscription_body(&receiver.url, &[ACCOUNT_FILTER], 3600)),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "x-rate-limit-group").as_deref(),
        Some("medium")
    );
    let text = response.text().await.expect("text");
    assert!(!text.contains("hook-secret-1"), "{text}");
    let body: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(body["status"], "Active");
    assert_eq!(body["eventFilters"], json!([ACCOUNT_FILTER]));
    assert_eq!(body["deliveryMode"]["transportType"], "WebHook");
    assert_eq!(body["deliveryMode"]["address"], receiver.url.as_str());
    assert!(
        body["expiresIn"]
            .as_u64()
            .is_some_and(|left| left > 3500 && left <= 3600)
    );
    for field in ["id", "uri", "expirationTime", "creationTime"] {
        assert!(body[field].is_string(), "{field} missing in {body}");
    }
    let info: SubscriptionInfo = serde_json::from_value(body).expect("ringside's model parses it");
    assert_eq!(receiver.handshakes(), 1);
    let kept = handle.subscriptions();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].id, info.id);
    assert_eq!(kept[0].verification_token.as_deref(), Some("hook-secret-1"));
}

async fn refused_with_sub_525(handshake: Handshake) {
    let handle = platform(PlatformOptions::new()).await;
    let bearer = bearer(&handle).await;
    let receiver = Receiver::start(handshake).await;
    let response = call(
        &handle,
        Method::POST,
        "/restapi/v1.0/subscription",
        &bearer,
        Some(subscription_body(&receiver.url, &[ACCOUNT_FILTER], 3600)),
    )
    .await;
    assert_eq!(response.status(), 400, "{handshake:?}");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["errorCode"], "SUB-525", "{handshake:?}");
    assert_eq!(body["message"], "WebHook server response is invalid");
    assert_eq!(receiver.handshakes(), 1);
    assert!(handle.subscriptions().is_empty());
}

#[tokio::test]
async fn subscription_create_is_refused_with_sub_525_when_the_receiver_does_not_echo() {
    refused_with_sub_525(Handshake::NoEcho).await;
}

#[tokio::test]
async fn subscription_create_is_refused_with_sub_525_without_a_content_type() {
    refused_with_sub_525(Handshake::NoContentType).await;
}

#[tokio::test]
async fn subscription_create_is_refused_with_sub_525_when_the_answer_is_over_1024_bytes() {
    refused_with_sub_525(Handshake::TooBig).await;
}

#[tokio::test]
async fn subscription_create_is_refused_with_sub_525_when_the_answer_takes_over_3_s() {
    refused_with_sub_525(Handshake::TooSlow).await;
}

#[tokio::test]
async fn filters_without_permission_are_reported_in_disabled_filters() {
    let handle =
        platform(PlatformOptions::new().disable_filter(ACCOUNT_FILTER, "CallControl")).await;
    let bearer = bearer(&handle).await;
    let receiver = Receiver::start(Handshake::Echo).await;
    let reminder = "/restapi/v1.0/subscription/~?threshold=600&interval=300";
    let response = call(
        &handle,
        Method::POST,
        "/restapi/v1.0/subscription",
        &bearer,
        Some(subscription_body(
            &receiver.url,
            &[ACCOUNT_FILTER, reminder],
            3600,
        )),
    )
    .await;
    assert_eq!(response.status(), 200);
    let info: SubscriptionInfo = response.json().await.expect("json");
    assert_eq!(info.event_filters, vec![reminder.to_owned()]);
    assert_eq!(info.disabled_filters.len(), 1);
    let disabled = &info.disabled_filters[0];
    assert_eq!(disabled.filter.as_deref(), Some(ACCOUNT_FILTER));
    assert!(disabled.reason.is_some());
    assert!(
        disabled
            .message
            .as_deref()
            .is_some_and(|m| m.contains("CallControl"))
    );

    // No telephony filter is enabled, so a conference's notifications are lost.
    let conference = handle.conference(7, host());
    conference.start().await;
    assert!(receiver.got().is_empty());
    assert_eq!(handle.lost_notifications().len(), 1);
}

#[tokio::test]
async fn reminder_filters_and_unknown_filters_are_validated() {
    let handle = platform(PlatformOptions::new()).await;
    let bearer = bearer(&handle).await;
    let receiver = Receiver::start(Handshake::Echo).await;
    let cases = [
        (
            "/restapi/v1.0/subscription/~?threshold=1800&interval=900",
            3600,
            true,
        ),
        (
            "/restapi/v1.0/subscription/~?interval=60&threshold=120",
            3600,
            true,
        ),
        (
            "/restapi/v1.0/subscription/~?threshold=1801&interval=900",
            3600,
            false,
        ),
        (
            "/restapi/v1.0/subscription/~?threshold=1800&interval=901",
            3600,
            false,
        ),
        ("/restapi/v1.0/subscription/~?threshold=1800", 3600, false),
        (
            "/restapi/v1.0/account/~/extension/~/telephony/sessions",
            3600,
            true,
        ),
        (
            "/restapi/v1.0/account/~/extension/~/message-store",
            3600,
            false,
        ),
        ("/restapi/v1.0/account/~/telephony/session", 3600, false),
    ];
    for (filter, expires_in, valid) in cases {
        let response = call(
            &handle,
            Method::POST,
            "/restapi/v1.0/subscription",
            &bearer,
            Some(subscription_body(&receiver.url, &[filter], expires_in)),
        )
        .await;
        if valid {
            assert_eq!(response.status(), 200, "{filter}");
        } else {
            assert_eq!(response.status(), 400, "{filter}");
            assert_eq!(error_code(response).await, "SUB-508", "{filter}");
        }
    }
}

#[tokio::test]
async fn subscriptions_can_be_listed_read_renewed_updated_and_deleted() {
    let (handle, bearer, _receiver) = subscribed(PlatformOptions::new()).await;
    let id = handle.subscriptions()[0].id.clone();
    let path = format!("/restapi/v1.0/subscription/{id}");

    let list = call(
        &handle,
        Method::GET,
        "/restapi/v1.0/subscription",
        &bearer,
        None,
    )
    .await;
    assert_eq!(
        header(&list, "x-rate-limit-group").as_deref(),
        Some("light")
    );
    let list: Value = list.json().await.expect("json");
    assert_eq!(list["records"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["records"][0]["id"], id.as_str());

    let read: Value = call(&handle, Method::GET, &path, &bearer, None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(read["status"], "Active");

    let renewed = call(
        &handle,
        Method::POST,
        &format!("{path}/renew"),
        &bearer,
        None,
    )
    .await;
    assert_eq!(renewed.status(), 200);
    assert_eq!(
        header(&renewed, "x-rate-limit-group").as_deref(),
        Some("light")
    );

    let updated = call(
        &handle,
        Method::PUT,
        &path,
        &bearer,
        Some(json!({"expiresIn": 7200})),
    )
    .await;
    assert_eq!(updated.status(), 200);
    assert_eq!(
        header(&updated, "x-rate-limit-group").as_deref(),
        Some("medium")
    );
    let updated: Value = updated.json().await.expect("json");
    assert!(
        updated["expiresIn"]
            .as_u64()
            .is_some_and(|left| left > 7100)
    );
    assert_eq!(handle.subscriptions()[0].expires_in, 7200);

    let deleted = call(&handle, Method::DELETE, &path, &bearer, None).await;
    assert_eq!(deleted.status(), 204);
    let gone = call(&handle, Method::GET, &path, &bearer, None).await;
    assert_eq!(gone.status(), 404);
    assert!(error_code(gone).await.starts_with("SUB-"));
    let again = call(&handle, Method::DELETE, &path, &bearer, None).await;
    assert_eq!(again.status(), 404);
}

#[tokio::test]
async fn subscriptions_expire_in_real_time() {
    let handle = platform(PlatformOptions::new()).await;
    let bearer = bearer(&handle).await;
    let receiver = Receiver::start(Handshake::Echo).await;
    let response = call(
        &handle,
        Method::POST,
        "/restapi/v1.0/subscription",
        &bearer,
        Some(subscription_body(&receiver.url, &[ACCOUNT_FILTER], 1)),
    )
    .await;
    let info: SubscriptionInfo = response.json().await.expect("json");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let path = format!("/restapi/v1.0/subscription/{}", info.id);
    assert_eq!(
        call(&handle, Method::GET, &path, &bearer, None)
            .await
            .status(),
        404
    );
    let renew = call(
        &handle,
        Method::POST,
        &format!("{path}/renew"),
        &bearer,
        None,
    )
    .await;
    assert_eq!(renew.status(), 404);
    let conference = handle.conference(3, host());
    conference.start().await;
    assert!(
        receiver.got().is_empty(),
        "an expired subscription gets nothing"
    );
}

#[tokio::test]
async fn a_blacklisted_subscription_gets_no_deliveries_and_cannot_be_renewed() {
    let (handle, bearer, receiver) = subscribed(PlatformOptions::new()).await;
    let id = handle.subscriptions()[0].id.clone();
    let conference = handle.conference(11, host());
    conference.start().await;
    assert_eq!(receiver.got().len(), 1);

    assert!(handle.blacklist(&id));
    conference.call_and_merge(paco()).await;
    assert_eq!(receiver.got().len(), 1, "nothing after the blacklisting");

    let path = format!("/restapi/v1.0/subscription/{id}");
    let read: Value = call(&handle, Method::GET, &path, &bearer, None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(read["status"], "Blacklisted");
    assert!(read["blacklistedData"]["blacklistedAt"].is_string());
    assert!(read["blacklistedData"]["reason"].is_string());
    let renew = call(
        &handle,
        Method::POST,
        &format!("{path}/renew"),
        &bearer,
        None,
    )
    .await;
    assert_eq!(renew.status(), 400);
    let put = call(&handle, Method::PUT, &path, &bearer, Some(json!({}))).await;
    assert_eq!(put.status(), 400);
}

#[tokio::test]
async fn failing_deliveries_blacklist_the_subscription_when_configured() {
    let handle = platform(PlatformOptions::new().blacklist_after_failures(2)).await;
    let bearer = bearer(&handle).await;
    let receiver = Receiver::start(Handshake::Echo).await;
    let response = call(
        &handle,
        Method::POST,
        "/restapi/v1.0/subscription",
        &bearer,
        // The handshake goes to the receiver; notifications to a path it does not serve (404).
        Some(subscription_body(&receiver.url, &[ACCOUNT_FILTER], 3600)),
    )
    .await;
    assert_eq!(response.status(), 200);
    // Point the subscription at a 404 by swapping the address the fake keeps.
    {
        let mut inner = handle.shared.lock();
        inner.subscriptions[0].address = format!("{}/missing", receiver.url);
    }
    let conference = handle.conference(5, host());
    conference.start().await;
    conference.call(dana()).await;
    let deliveries = handle.deliveries();
    assert!(deliveries.iter().all(|record| record.status == Some(404)));
    assert_eq!(deliveries.len(), 2, "the third goes nowhere: blacklisted");
    let kept = &handle.subscriptions()[0];
    assert_eq!(kept.status, SubscriptionStatus::Blacklisted);
    assert!(
        kept.blacklisted
            .as_ref()
            .is_some_and(|(_, reason)| reason.contains("[404]"))
    );
}

#[tokio::test]
async fn a_renewal_reminder_reaches_the_receiver() {
    let handle = platform(PlatformOptions::new()).await;
    let bearer = bearer(&handle).await;
    let receiver = Receiver::start(Handshake::Echo).await;
    let reminder = "/restapi/v1.0/subscription/~?threshold=600&interval=120";
    let info: SubscriptionInfo = call(
        &handle,
        Method::POST,
        "/restapi/v1.0/subscription",
        &bearer,
        Some(subscription_body(
            &receiver.url,
            &[ACCOUNT_FILTER, reminder],
            3600,
        )),
    )
    .await
    .json()
    .await
    .expect("json");
    let record = handle.send_reminder(&info.id).await.expect("delivered");
    assert!(record.ok());
    let got = receiver.got();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body["event"], reminder);
    assert_eq!(got[0].body["body"]["subscriptionId"], info.id.as_str());
    assert!(got[0].body["body"]["expiresIn"].is_u64());
    assert_eq!(got[0].verification_token.as_deref(), Some("hook-secret-1"));
    assert!(handle.send_reminder("no-such-subscription").await.is_none());
}

// ----- Conferences and sessions ---------------------------------------------------------------

#[tokio::test]
async fn conference_notifications_reach_the_receiver_with_the_subscription_token() {
    let (handle, _bearer, receiver) = subscribed(PlatformOptions::new()).await;
    let id = handle.subscriptions()[0].id.clone();
    let conference = handle.conference(21, host());
    conference.start().await;
    let caller = conference.call_and_merge(paco()).await;
    let got = receiver.got();
    assert_eq!(got.len(), 6, "host, three call legs, gone, participant");
    for received in &got {
        assert_eq!(
            received.verification_token.as_deref(),
            Some("hook-secret-1")
        );
        assert_eq!(
            received.content_type.as_deref(),
            Some("application/json; charset=UTF-8")
        );
        assert_eq!(received.body["subscriptionId"], id.as_str());
        let parsed: TelephonyNotification =
            serde_json::from_value(received.body.clone()).expect("ringside's model parses it");
        assert_eq!(parsed.body.parties.len(), 1);
    }
    let last = &got[5].body["body"];
    assert_eq!(
        last["telephonySessionId"],
        conference.conference_id().as_str()
    );
    assert_eq!(
        last["parties"][0]["id"],
        conference.participant_id(caller).as_str()
    );
    let deliveries = handle.deliveries();
    assert_eq!(deliveries.len(), 6);
    assert!(deliveries.iter().all(|record| record.status == Some(200)));
}

#[tokio::test]
async fn session_get_matches_the_state_after_joins_leaves_and_end() {
    let (handle, bearer, receiver) = subscribed(PlatformOptions::new()).await;
    let conference = handle.conference(31, host());
    conference.start().await;
    let first = conference.call_and_merge(paco()).await;
    conference.advance(Duration::from_secs(60));
    let second = conference.call_and_merge(dana()).await;
    let conference_id = conference.conference_id();

    let response = get_session(&handle, &bearer, &conference_id).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "x-rate-limit-group").as_deref(),
        Some("light")
    );
    let session: Value = response.json().await.expect("json");
    assert_eq!(session["id"], conference_id.as_str());
    assert_eq!(session["origin"]["type"], "Conference");
    assert_eq!(session["parties"].as_array().map(Vec::len), Some(3));
    let host_party = party(&session, &conference.host_party_id());
    assert_eq!(host_party["conferenceRole"], "Host");
    assert_eq!(host_party["status"]["code"], "Answered");
    assert_eq!(host_party["owner"]["extensionId"], "62295300122");
    for caller in [first, second] {
        let joined = party(&session, &conference.participant_id(caller));
        assert_eq!(joined["conferenceRole"], "Participant");
        assert_eq!(joined["direction"], "Inbound");
        assert_eq!(joined["status"]["code"], "Answered");
        assert_eq!(joined["muted"], false);
        assert_eq!(joined["standAlone"], false);
    }
    let typed: CallSession = serde_json::from_value(session).expect("ringside's model parses it");
    assert_eq!(typed.parties.len(), 3);

    // The original call of a merged caller shows Gone/Conference pointing at the conference.
    let (original_session, original_party) = conference.original_ids(second);
    let original: Value = get_session(&handle, &bearer, &original_session)
        .await
        .json()
        .await
        .expect("json");
    let leg = party(&original, &original_party);
    assert_eq!(leg["status"]["code"], "Gone");
    assert_eq!(leg["status"]["reason"], "Conference");
    assert_eq!(
        leg["status"]["peerId"]["telephonySessionId"],
        conference_id.as_str()
    );

    conference.hang_up(first, LeaveSignal::Both).await;
    let session: Value = get_session(&handle, &bearer, &conference_id)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        party(&session, &conference.participant_id(first))["status"]["code"],
        "Disconnected"
    );
    assert_eq!(
        party(&session, &conference.participant_id(second))["status"]["code"],
        "Answered"
    );
    let (first_session, _) = conference.original_ids(first);
    assert_eq!(
        get_session(&handle, &bearer, &first_session).await.status(),
        404
    );

    let delivered_before_end = receiver.got().len();
    conference.end().await;
    assert!(receiver.got().len() > delivered_before_end);
    let ended = get_session(&handle, &bearer, &conference_id).await;
    assert_eq!(ended.status(), 404);
    assert!(error_code(ended).await.starts_with("TAS-"));
    assert_eq!(
        get_session(&handle, &bearer, &original_session)
            .await
            .status(),
        404
    );
    assert_eq!(
        get_session(&handle, &bearer, "s-unknown").await.status(),
        404
    );
}

#[tokio::test]
async fn session_get_can_show_connected_participants_as_gone_with_a_peer() {
    let options = PlatformOptions::new()
        .participants_as(ParticipantView::GoneWithPeer)
        .list_disconnected_parties(false);
    let (handle, bearer, _receiver) = subscribed(options).await;
    let conference = handle.conference(41, host());
    let stays = conference.call_and_merge(paco()).await;
    let leaves = conference.call_and_merge(dana()).await;
    conference.hang_up(leaves, LeaveSignal::Both).await;
    let session: Value = get_session(&handle, &bearer, &conference.conference_id())
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        session["parties"].as_array().map(Vec::len),
        Some(2),
        "{session}"
    );
    let joined = party(&session, &conference.participant_id(stays));
    assert_eq!(joined["status"]["code"], "Gone");
    assert_eq!(
        joined["status"]["peerId"]["partyId"],
        conference.original_ids(stays).1.as_str()
    );
    assert_eq!(
        party(&session, &conference.host_party_id())["status"]["code"],
        "Answered"
    );
}

#[tokio::test]
async fn a_silent_hang_up_changes_the_session_but_delivers_nothing() {
    let (handle, bearer, receiver) = subscribed(PlatformOptions::new()).await;
    let conference = handle.conference(51, host());
    let caller = conference.call_and_merge(paco()).await;
    let delivered = receiver.got().len();
    conference.hang_up(caller, LeaveSignal::Silent).await;
    handle.flush().await;
    assert_eq!(
        receiver.got().len(),
        delivered,
        "a silent disconnect sends nothing"
    );
    assert_eq!(handle.lost_notifications().len(), 2);
    let session: Value = get_session(&handle, &bearer, &conference.conference_id())
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        party(&session, &conference.participant_id(caller))["status"]["code"],
        "Disconnected"
    );
}

#[tokio::test]
async fn a_partial_leave_signal_delivers_only_its_side() {
    let (handle, _bearer, receiver) = subscribed(PlatformOptions::new()).await;
    let conference = handle.conference(52, host());
    let caller = conference.call_and_merge(paco()).await;
    let before = receiver.got().len();
    conference.hang_up(caller, LeaveSignal::OriginalOnly).await;
    let got = receiver.got();
    assert_eq!(got.len(), before + 1);
    assert_eq!(
        got[before].body["body"]["telephonySessionId"],
        conference.original_ids(caller).0.as_str()
    );
}

#[tokio::test]
async fn notifications_without_an_active_subscription_are_lost() {
    let handle = platform(PlatformOptions::new()).await;
    let bearer = bearer(&handle).await;
    let conference = handle.conference(61, host());
    conference.start().await;
    conference.call_and_merge(paco()).await;
    assert_eq!(handle.lost_notifications().len(), 6);
    assert!(handle.deliveries().is_empty());
    let session = get_session(&handle, &bearer, &conference.conference_id()).await;
    assert_eq!(session.status(), 200, "the state exists all the same");
}

#[tokio::test]
async fn a_conference_running_before_the_subscription_is_seen_only_by_get_and_presence() {
    let handle = platform(PlatformOptions::new()).await;
    let (conference, callers) = handle
        .running_conference(71, host(), vec![paco(), dana()])
        .await;
    let bearer = bearer(&handle).await;
    let receiver = Receiver::start(Handshake::Echo).await;
    subscribe(&handle, &bearer, &receiver).await;
    handle.flush().await;
    assert!(receiver.got().is_empty());
    let session: Value = get_session(&handle, &bearer, &conference.conference_id())
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(session["parties"].as_array().map(Vec::len), Some(3));
    let presence: Value = call(
        &handle,
        Method::GET,
        "/restapi/v1.0/account/~/presence?detailedTelephonyState=true",
        &bearer,
        None,
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(
        presence["records"][0]["activeCalls"][0]["telephonySessionId"],
        conference.conference_id().as_str()
    );
    // From now on its notifications are delivered.
    conference.hang_up(callers[0], LeaveSignal::Both).await;
    assert_eq!(receiver.got().len(), 2);
}

// ----- Kick ------------------------------------------------------------------------------------

/// A conference with two merged callers on a subscribed platform.
async fn kick_setup(
    options: PlatformOptions,
) -> (
    PlatformHandle,
    String,
    Receiver,
    ConferenceController,
    [crate::simulator::CallerRef; 2],
) {
    let (handle, bearer, receiver) = subscribed(options).await;
    let conference = handle.conference(81, host());
    conference.start().await;
    let first = conference.call_and_merge(paco()).await;
    let second = conference.call_and_merge(dana()).await;
    (handle, bearer, receiver, conference, [first, second])
}

#[tokio::test]
async fn kick_with_conference_ids_answers_204_and_the_leave_notifications_follow() {
    let (handle, bearer, receiver, conference, [first, second]) =
        kick_setup(PlatformOptions::new()).await;
    let before = receiver.got().len();
    let confid = conference.conference_id();
    let partid = conference.participant_id(first);
    let response = call(
        &handle,
        Method::DELETE,
        &party_path(&confid, &partid),
        &bearer,
        None,
    )
    .await;
    assert_eq!(response.status(), 204);
    assert_eq!(
        header(&response, "x-rate-limit-group").as_deref(),
        Some("light")
    );
    handle.flush().await;
    let got = receiver.got();
    assert_eq!(got.len(), before + 2);
    let conference_side = &got[before].body["body"];
    assert_eq!(conference_side["telephonySessionId"], confid.as_str());
    assert_eq!(conference_side["parties"][0]["id"], partid.as_str());
    assert_eq!(
        conference_side["parties"][0]["status"]["code"],
        "Disconnected"
    );
    let original_side = &got[before + 1].body["body"];
    assert_eq!(
        original_side["telephonySessionId"],
        conference.original_ids(first).0.as_str()
    );
    assert_eq!(
        original_side["parties"][0]["status"]["code"],
        "Disconnected"
    );
    assert!(!conference.is_present(first));
    assert!(conference.is_present(second));

    let session: Value = get_session(&handle, &bearer, &confid)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(party(&session, &partid)["status"]["code"], "Disconnected");
    let again = call(
        &handle,
        Method::DELETE,
        &party_path(&confid, &partid),
        &bearer,
        None,
    )
    .await;
    assert_eq!(again.status(), 404, "an already-gone party");
}

#[tokio::test]
async fn kick_with_the_original_call_ids_answers_204_too() {
    let (handle, bearer, receiver, conference, [first, _]) =
        kick_setup(PlatformOptions::new()).await;
    let before = receiver.got().len();
    let (session, party_id) = conference.original_ids(first);
    let response = call(
        &handle,
        Method::DELETE,
        &party_path(&session, &party_id),
        &bearer,
        None,
    )
    .await;
    assert_eq!(response.status(), 204);
    handle.flush().await;
    let got = receiver.got();
    assert_eq!(got.len(), before + 2);
    assert_eq!(
        got[before].body["body"]["parties"][0]["id"],
        conference.participant_id(first).as_str()
    );
    let again = call(
        &handle,
        Method::DELETE,
        &party_path(&session, &party_id),
        &bearer,
        None,
    )
    .await;
    assert_eq!(again.status(), 404);
}

#[tokio::test]
async fn kick_of_an_unknown_party_is_404() {
    let (handle, bearer, _receiver, conference, _) = kick_setup(PlatformOptions::new()).await;
    let confid = conference.conference_id();
    for path in [
        party_path(&confid, "p-nobody-9"),
        party_path("s-no-such-session", "p-nobody-1"),
    ] {
        let response = call(&handle, Method::DELETE, &path, &bearer, None).await;
        assert_eq!(response.status(), 404, "{path}");
        assert!(error_code(response).await.starts_with("TAS-"));
    }
}

#[tokio::test]
async fn kick_answers_403_on_demand_without_disconnecting() {
    let (handle, bearer, receiver, conference, [first, _]) =
        kick_setup(PlatformOptions::new()).await;
    let partid = conference.participant_id(first);
    handle.forbid_kick(&partid);
    let before = receiver.got().len();
    let response = call(
        &handle,
        Method::DELETE,
        &party_path(&conference.conference_id(), &partid),
        &bearer,
        None,
    )
    .await;
    assert_eq!(response.status(), 403);
    assert!(error_code(response).await.starts_with("CMN-"));
    handle.flush().await;
    assert_eq!(receiver.got().len(), before);
    assert!(conference.is_present(first));
}

#[tokio::test]
async fn a_hidden_conference_party_answers_404_while_the_original_ids_still_work() {
    let (handle, bearer, _receiver, conference, [first, _]) =
        kick_setup(PlatformOptions::new()).await;
    let partid = conference.participant_id(first);
    handle.hide_conference_party(&partid);
    let hidden = call(
        &handle,
        Method::DELETE,
        &party_path(&conference.conference_id(), &partid),
        &bearer,
        None,
    )
    .await;
    assert_eq!(hidden.status(), 404);
    assert!(conference.is_present(first));
    let (session, party_id) = conference.original_ids(first);
    let original = call(
        &handle,
        Method::DELETE,
        &party_path(&session, &party_id),
        &bearer,
        None,
    )
    .await;
    assert_eq!(original.status(), 204);
    assert!(!conference.is_present(first));
}

#[tokio::test]
async fn a_delayed_kick_answer_times_the_client_out_but_the_caller_is_disconnected() {
    let (handle, bearer, receiver, conference, [first, _]) =
        kick_setup(PlatformOptions::new()).await;
    handle.delay_kick_answers(Duration::from_secs(3));
    let before = receiver.got().len();
    let outcome = http()
        .delete(format!(
            "{}{}",
            handle.base_url(),
            party_path(
                &conference.conference_id(),
                &conference.participant_id(first)
            )
        ))
        .bearer_auth(&bearer)
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(outcome.is_err_and(|error| error.is_timeout()));
    handle.flush().await;
    assert_eq!(receiver.got().len(), before + 2);
    assert!(!conference.is_present(first));
}

#[tokio::test]
async fn leave_before_answer_delivers_the_notifications_before_the_204() {
    let (handle, bearer, receiver, conference, [first, _]) =
        kick_setup(PlatformOptions::new()).await;
    handle.leave_before_answer(true);
    let before = receiver.got().len();
    let response = call(
        &handle,
        Method::DELETE,
        &party_path(
            &conference.conference_id(),
            &conference.participant_id(first),
        ),
        &bearer,
        None,
    )
    .await;
    assert_eq!(response.status(), 204);
    assert_eq!(
        receiver.got().len(),
        before + 2,
        "already delivered when the 204 arrives"
    );
}

#[tokio::test]
async fn deleting_the_host_without_keep_alive_ends_the_conference_for_everyone() {
    let (handle, bearer, _receiver, conference, [first, second]) =
        kick_setup(PlatformOptions::new()).await;
    let confid = conference.conference_id();
    let response = call(
        &handle,
        Method::DELETE,
        &party_path(&confid, &conference.host_party_id()),
        &bearer,
        None,
    )
    .await;
    assert_eq!(response.status(), 204);
    assert!(!conference.is_present(first) && !conference.is_present(second));
    assert_eq!(get_session(&handle, &bearer, &confid).await.status(), 404);
}

#[tokio::test]
async fn deleting_the_host_with_keep_alive_removes_only_the_host() {
    let (handle, bearer, receiver, conference, [first, second]) =
        kick_setup(PlatformOptions::new()).await;
    let confid = conference.conference_id();
    let before = receiver.got().len();
    let response = call(
        &handle,
        Method::DELETE,
        &party_path(&confid, &conference.host_party_id()),
        &bearer,
        Some(json!({"keepConferenceAlive": true})),
    )
    .await;
    assert_eq!(response.status(), 204);
    handle.flush().await;
    assert_eq!(receiver.got().len(), before + 1);
    assert!(conference.is_present(first) && conference.is_present(second));
    let session: Value = get_session(&handle, &bearer, &confid)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        party(&session, &conference.host_party_id())["status"]["code"],
        "Disconnected"
    );
    assert_eq!(
        party(&session, &conference.participant_id(first))["status"]["code"],
        "Answered"
    );
    let presence: Value = call(
        &handle,
        Method::GET,
        "/restapi/v1.0/account/~/presence",
        &bearer,
        None,
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(presence["records"], json!([]), "the host is off the call");
}

// ----- Presence --------------------------------------------------------------------------------

#[tokio::test]
async fn presence_lists_the_hosts_of_live_conferences() {
    let handle = platform(PlatformOptions::new()).await;
    let bearer = bearer(&handle).await;
    let live = handle.conference(91, host());
    live.call_and_merge(paco()).await;
    let ended = handle.conference(92, Person::with_extension("Agent 7", "107", "777"));
    ended.start().await;
    ended.end().await;
    handle.conference(93, Person::with_extension("Agent 8", "108", "888"));

    let response = call(
        &handle,
        Method::GET,
        "/restapi/v1.0/account/~/presence?detailedTelephonyState=true",
        &bearer,
        None,
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "x-rate-limit-group").as_deref(),
        Some("heavy")
    );
    let body: Value = response.json().await.expect("json");
    let records = body["records"].as_array().expect("records");
    assert_eq!(records.len(), 1, "{body}");
    assert_eq!(records[0]["extension"]["id"], "62295300122");
    assert!(records[0]["extension"]["extensionNumber"].is_string());
    assert_eq!(records[0]["telephonyStatus"], "CallConnected");
    let active = &records[0]["activeCalls"][0];
    assert_eq!(active["telephonySessionId"], live.conference_id().as_str());
    assert_eq!(active["partyId"], live.host_party_id().as_str());
    assert_eq!(active["sessionId"], "0");
    assert_eq!(active["direction"], "Outbound");
    assert_eq!(active["to"], "conference");
    assert_eq!(active["toName"], "Conference");
    assert_eq!(active["telephonyStatus"], "CallConnected");
    let typed: crate::ringcentral::wire::PresenceList =
        serde_json::from_value(body).expect("ringside's model parses it");
    assert!(typed.records[0].active_calls[0].is_conference_leg());
}

#[tokio::test]
async fn extension_presence_shows_the_owner_hosting_or_not() {
    let handle = platform(PlatformOptions::new().owner_id("62295300122")).await;
    let bearer = bearer(&handle).await;
    let path = "/restapi/v1.0/account/~/extension/~/presence?detailedTelephonyState=true";
    let idle: Value = call(&handle, Method::GET, path, &bearer, None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(idle["telephonyStatus"], "NoCall");
    assert_eq!(idle["activeCalls"], json!([]));
    let conference = handle.conference(94, host());
    conference.start().await;
    let response = call(&handle, Method::GET, path, &bearer, None).await;
    assert_eq!(
        header(&response, "x-rate-limit-group").as_deref(),
        Some("light")
    );
    let busy: Value = response.json().await.expect("json");
    assert_eq!(busy["extension"]["id"], "62295300122");
    assert_eq!(
        busy["activeCalls"][0]["telephonySessionId"],
        conference.conference_id().as_str()
    );
}

#[tokio::test]
async fn presence_is_forbidden_without_the_permission() {
    let handle = platform(PlatformOptions::new().presence_permitted(false)).await;
    let bearer = bearer(&handle).await;
    let response = call(
        &handle,
        Method::GET,
        "/restapi/v1.0/account/~/presence",
        &bearer,
        None,
    )
    .await;
    assert_eq!(response.status(), 403);
    assert!(error_code(response).await.starts_with("CMN-"));
}

// ----- Directory -------------------------------------------------------------------------------

#[tokio::test]
async fn extension_info_answers_known_extensions_in_ringcentral_shape_and_404_for_others() {
    let handle = platform(
        PlatformOptions::new()
            .owner_id("62295300122")
            .directory_entry("62288", "Dana Whitfield"),
    )
    .await;
    let bearer = bearer(&handle).await;
    let read = async |id: &str| {
        call(
            &handle,
            Method::GET,
            &format!("/restapi/v1.0/account/~/extension/{id}"),
            &bearer,
            None,
        )
        .await
    };
    let response = read("62288").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "x-rate-limit-group").as_deref(),
        Some("light")
    );
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["id"], json!(62288), "the id is a JSON number");
    assert_eq!(body["name"], "Dana Whitfield");
    assert_eq!(body["contact"]["firstName"], "Dana");
    assert_eq!(body["contact"]["lastName"], "Whitfield");
    assert_eq!(body["status"], "Enabled");
    let typed: crate::ringcentral::wire::ExtensionRecord =
        serde_json::from_value(body).expect("ringside's model parses it");
    assert_eq!(typed.display_name().as_deref(), Some("Dana Whitfield"));

    // A scripted person with an extension id is known too; one without a name is unnamed.
    let conference = handle.conference(95, host());
    conference.call_and_merge(paco()).await;
    conference
        .call_and_merge(Person::extension_only("62288300120", "11120"))
        .await;
    let paco_info: Value = read("62288300119").await.json().await.expect("json");
    assert_eq!(paco_info["name"], "Paco Vu");
    assert_eq!(paco_info["extensionNumber"], "11119");
    let unnamed: Value = read("62288300120").await.json().await.expect("json");
    assert_eq!(unnamed.get("name"), None, "{unnamed}");
    handle.set_directory_name("62288300120", "Lee Park");
    let named: Value = read("62288300120").await.json().await.expect("json");
    assert_eq!(named["name"], "Lee Park");

    let owner: Value = read("~").await.json().await.expect("json");
    assert_eq!(owner["id"], json!(62295300122_u64));
    assert_eq!(owner["name"], "Agent 122", "the owner is the scripted host");

    let unknown = read("999").await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(error_code(unknown).await, "CMN-102");
}

#[tokio::test]
async fn extension_info_is_forbidden_without_read_accounts() {
    let handle = platform(PlatformOptions::new().extensions_permitted(false)).await;
    let bearer = bearer(&handle).await;
    let response = call(
        &handle,
        Method::GET,
        "/restapi/v1.0/account/~/extension/~",
        &bearer,
        None,
    )
    .await;
    assert_eq!(response.status(), 403);
    assert_eq!(error_code(response).await, "CMN-401");
}

// ----- Rate limits -----------------------------------------------------------------------------

#[tokio::test]
async fn every_answer_carries_the_rate_limit_headers_of_its_group() {
    let handle = platform(PlatformOptions::new()).await;
    let bearer = bearer(&handle).await;
    let first = call(
        &handle,
        Method::GET,
        "/restapi/v1.0/subscription",
        &bearer,
        None,
    )
    .await;
    assert_eq!(
        header(&first, "x-rate-limit-group").as_deref(),
        Some("light")
    );
    assert_eq!(header(&first, "x-rate-limit-limit").as_deref(), Some("50"));
    assert_eq!(
        header(&first, "x-rate-limit-remaining").as_deref(),
        Some("49")
    );
    assert_eq!(header(&first, "x-rate-limit-window").as_deref(), Some("60"));
    let second = call(
        &handle,
        Method::GET,
        "/restapi/v1.0/subscription",
        &bearer,
        None,
    )
    .await;
    assert_eq!(
        header(&second, "x-rate-limit-remaining").as_deref(),
        Some("48")
    );
    let unauthorized = call(
        &handle,
        Method::GET,
        "/restapi/v1.0/subscription",
        "bad",
        None,
    )
    .await;
    assert_eq!(unauthorized.status(), 401);
    assert_eq!(
        header(&unauthorized, "x-rate-limit-group").as_deref(),
        Some("light")
    );
}

#[tokio::test]
async fn going_over_the_limit_answers_429_with_retry_after_and_leaves_other_groups_alone() {
    let options = PlatformOptions::new()
        .limit(RateGroup::Light, 2)
        .penalty(Duration::from_millis(1000))
        .rate_window(Duration::from_millis(1200));
    let handle = platform(options).await;
    let bearer = bearer(&handle).await;
    let path = "/restapi/v1.0/subscription";
    for remaining in ["1", "0"] {
        let ok = call(&handle, Method::GET, path, &bearer, None).await;
        assert_eq!(ok.status(), 200);
        assert_eq!(
            header(&ok, "x-rate-limit-remaining").as_deref(),
            Some(remaining)
        );
    }
    let over = call(&handle, Method::GET, path, &bearer, None).await;
    assert_eq!(over.status(), 429);
    assert_eq!(header(&over, "retry-after").as_deref(), Some("1"));
    assert_eq!(
        header(&over, "x-rate-limit-remaining").as_deref(),
        Some("0")
    );
    assert_eq!(error_code(over).await, "CMN-301");

    // Other groups are not affected.
    let medium = call(
        &handle,
        Method::DELETE,
        "/restapi/v1.0/subscription/nope",
        &bearer,
        None,
    )
    .await;
    assert_eq!(medium.status(), 404);

    // During the penalty every request of the group is refused (and restarts it): the timing
    // is checked on a paused clock in `rate.rs`.
    assert_eq!(
        call(&handle, Method::GET, path, &bearer, None)
            .await
            .status(),
        429
    );
}

#[tokio::test]
async fn the_window_slides_so_old_requests_stop_counting() {
    let options = PlatformOptions::new()
        .limit(RateGroup::Heavy, 2)
        .rate_window(Duration::from_millis(600))
        .penalty(Duration::from_millis(100));
    let handle = platform(options).await;
    let bearer = bearer(&handle).await;
    let path = "/restapi/v1.0/account/~/presence";
    assert_eq!(
        call(&handle, Method::GET, path, &bearer, None)
            .await
            .status(),
        200
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        call(&handle, Method::GET, path, &bearer, None)
            .await
            .status(),
        200
    );
    // 700 ms after the first: it left the window, the second has not.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let third = call(&handle, Method::GET, path, &bearer, None).await;
    assert_eq!(third.status(), 200);
    assert_eq!(
        header(&third, "x-rate-limit-remaining").as_deref(),
        Some("0")
    );
    assert_eq!(
        call(&handle, Method::GET, path, &bearer, None)
            .await
            .status(),
        429
    );
}

#[tokio::test]
async fn throttle_on_demand_with_and_without_retry_after() {
    let handle = platform(PlatformOptions::new()).await;
    let bearer = bearer(&handle).await;
    handle.throttle(RateGroup::Light, Duration::from_secs(30), true);
    let light = call(
        &handle,
        Method::GET,
        "/restapi/v1.0/subscription",
        &bearer,
        None,
    )
    .await;
    assert_eq!(light.status(), 429);
    assert_eq!(header(&light, "retry-after").as_deref(), Some("30"));

    handle.throttle(RateGroup::Heavy, Duration::from_millis(300), false);
    let heavy = call(
        &handle,
        Method::GET,
        "/restapi/v1.0/account/~/presence",
        &bearer,
        None,
    )
    .await;
    assert_eq!(heavy.status(), 429);
    assert_eq!(header(&heavy, "retry-after"), None);
    assert_eq!(
        header(&heavy, "x-rate-limit-group").as_deref(),
        Some("heavy")
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let after = call(
        &handle,
        Method::GET,
        "/restapi/v1.0/account/~/presence",
        &bearer,
        None,
    )
    .await;
    assert_eq!(after.status(), 200);

    handle.throttle(RateGroup::Auth, Duration::from_secs(5), true);
    let auth = grant(
        &handle,
        DEFAULT_CLIENT_ID,
        DEFAULT_CLIENT_SECRET,
        DEFAULT_JWT,
    )
    .await;
    assert_eq!(auth.status(), 429);
    assert_eq!(header(&auth, "retry-after").as_deref(), Some("5"));
}

#[tokio::test]
async fn the_auth_group_allows_five_token_requests_a_minute_by_default() {
    let handle = platform(PlatformOptions::new()).await;
    for _ in 0..5 {
        let ok = grant(
            &handle,
            DEFAULT_CLIENT_ID,
            DEFAULT_CLIENT_SECRET,
            DEFAULT_JWT,
        )
        .await;
        assert_eq!(ok.status(), 200);
    }
    let over = grant(
        &handle,
        DEFAULT_CLIENT_ID,
        DEFAULT_CLIENT_SECRET,
        DEFAULT_JWT,
    )
    .await;
    assert_eq!(over.status(), 429);
    assert_eq!(header(&over, "retry-after").as_deref(), Some("60"));
    assert_eq!(
        handle.token_requests().jwt,
        5,
        "the refused request never reached the endpoint"
    );
}

#[tokio::test]
async fn set_limit_changes_a_group_limit_at_run_time() {
    let handle = platform(PlatformOptions::new()).await;
    let bearer = bearer(&handle).await;
    handle.set_limit(RateGroup::Light, 1);
    let path = "/restapi/v1.0/subscription";
    assert_eq!(
        call(&handle, Method::GET, path, &bearer, None)
            .await
            .status(),
        200
    );
    assert_eq!(
        call(&handle, Method::GET, path, &bearer, None)
            .await
            .status(),
        429
    );
}

// ----- Request log -----------------------------------------------------------------------------

#[tokio::test]
async fn the_request_log_records_groups_statuses_and_authorization() {
    let handle = platform(PlatformOptions::new()).await;
    let bearer = bearer(&handle).await;
    call(
        &handle,
        Method::GET,
        "/restapi/v1.0/subscription",
        &bearer,
        None,
    )
    .await;
    call(
        &handle,
        Method::GET,
        "/restapi/v1.0/account/~/presence?detailedTelephonyState=true",
        "bad",
        None,
    )
    .await;
    call(&handle, Method::GET, &session_path("s-none"), &bearer, None).await;
    http()
        .get(format!("{}/nowhere", handle.base_url()))
        .send()
        .await
        .expect("request");
    let log = handle.requests();
    let summary: Vec<(&str, &str, Option<RateGroup>, u16, bool)> = log
        .iter()
        .map(|r| {
            (
                r.method.as_str(),
                r.path.as_str(),
                r.group,
                r.status,
                r.authorized,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "POST",
                "/restapi/oauth/token",
                Some(RateGroup::Auth),
                200,
                false
            ),
            (
                "GET",
                "/restapi/v1.0/subscription",
                Some(RateGroup::Light),
                200,
                true
            ),
            (
                "GET",
                "/restapi/v1.0/account/~/presence",
                Some(RateGroup::Heavy),
                401,
                false
            ),
            (
                "GET",
                "/restapi/v1.0/account/~/telephony/sessions/s-none",
                Some(RateGroup::Light),
                404,
                true
            ),
            ("GET", "/nowhere", None, 404, false),
        ]
    );
    assert_eq!(log[2].query.as_deref(), Some("detailedTelephonyState=true"));
    assert!(log.windows(2).all(|pair| pair[0].at <= pair[1].at));
}

#[tokio::test]
async fn stop_shuts_the_platform_down() {
    let handle = platform(PlatformOptions::new()).await;
    let url = handle.base_url();
    assert!(url.starts_with("http://127.0.0.1:"));
    handle.stop().await;
    let refused = http()
        .post(format!("{url}/restapi/oauth/token"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(refused.is_err());
}
