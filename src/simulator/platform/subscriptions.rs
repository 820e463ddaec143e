//! Webhook subscriptions (`docs/ringcentral.md` §3): create with the validation handshake, read, list,
//! renew, update, delete, blacklisting, renewal reminders and the delivery of notifications.

use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use reqwest::header::{CONTENT_TYPE, USER_AGENT};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::state::{
    Job, Outgoing, Shared, api_error, form_decode, random_uuid, whole_seconds, wire_time,
};

/// Account-level telephony sessions filter.
pub(crate) const ACCOUNT_SESSIONS: &str = "/restapi/v1.0/account/~/telephony/sessions";
/// Extension-level telephony sessions filter.
pub(crate) const EXTENSION_SESSIONS: &str =
    "/restapi/v1.0/account/~/extension/~/telephony/sessions";
/// Path of the renewal reminder filter (its query carries `threshold` and `interval`).
const REMINDER: &str = "/restapi/v1.0/subscription/~";
/// `expiresIn` when a create leaves it out (RingCentral's default is UNCONFIRMED).
const DEFAULT_EXPIRES_IN: u64 = 604_800;
/// The largest WebHook `expiresIn` (2026 spec).
const MAX_EXPIRES_IN: u64 = 315_360_000;
/// Subscriptions per user and app.
const MAX_SUBSCRIPTIONS: usize = 30;
/// The handshake's answer must come within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);
/// The handshake's whole answer (status line, headers, body) must fit in this.
const HANDSHAKE_MAX_BYTES: usize = 1024;
/// How long one notification delivery may take.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// `status` of a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionStatus {
    /// Delivering.
    Active,
    /// Stopped; cannot be renewed (delete it and create a new one).
    Blacklisted,
}

impl SubscriptionStatus {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "Active",
            Self::Blacklisted => "Blacklisted",
        }
    }
}

/// A filter the platform did not enable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisabledFilter {
    /// The filter as requested.
    pub filter: String,
    /// Why, in short.
    pub reason: String,
    /// Names the missing permission.
    pub message: String,
}

/// A webhook subscription as the platform keeps it (verification token included, unlike the
/// REST answers).
#[derive(Debug, Clone)]
pub struct Subscription {
    /// Its id.
    pub id: String,
    /// The enabled filters.
    pub event_filters: Vec<String>,
    /// The filters reported in `disabledFilters`.
    pub disabled_filters: Vec<DisabledFilter>,
    /// The webhook URL.
    pub address: String,
    /// `deliveryMode.verificationToken` as created, sent as `Verification-Token`.
    pub verification_token: Option<String>,
    /// Lifetime in seconds, as requested (renewals extend by it).
    pub expires_in: u64,
    /// When it expires (real time).
    pub expires_at: Instant,
    /// When it expires, as reported.
    pub expiration_time: OffsetDateTime,
    /// When it was created.
    pub creation_time: OffsetDateTime,
    /// `Active` or `Blacklisted`.
    pub status: SubscriptionStatus,
    /// When and why it was blacklisted.
    pub blacklisted: Option<(OffsetDateTime, String)>,
    /// Failed deliveries in a row.
    pub consecutive_failures: u32,
    /// `deliveryMode.transportType`: `WebHook`, or `WebSocket` (created over the gateway;
    /// `address` is empty then).
    pub transport: &'static str,
}

impl Subscription {
    /// A subscription created over the WebSocket gateway: it renews itself while its session
    /// lives, so it is given a day and extended at each delivery.
    pub(crate) fn websocket(
        event_filters: Vec<String>,
        disabled_filters: Vec<DisabledFilter>,
    ) -> Self {
        let now = OffsetDateTime::now_utc();
        let lifetime = Duration::from_secs(86_400);
        Subscription {
            id: random_uuid(),
            event_filters,
            disabled_filters,
            address: String::new(),
            verification_token: None,
            expires_in: 86_400,
            expires_at: Instant::now() + lifetime,
            expiration_time: now + lifetime,
            creation_time: now,
            status: SubscriptionStatus::Active,
            blacklisted: None,
            consecutive_failures: 0,
            transport: "WebSocket",
        }
    }

    /// Whether it delivers over the WebSocket gateway.
    pub fn is_websocket(&self) -> bool {
        self.transport == "WebSocket"
    }

    /// Whether it asks for telephony session notifications.
    pub fn has_telephony_filter(&self) -> bool {
        self.event_filters
            .iter()
            .any(|filter| filter == ACCOUNT_SESSIONS || filter == EXTENSION_SESSIONS)
    }

    /// Its renewal reminder filter, if any.
    pub fn reminder_filter(&self) -> Option<&str> {
        self.event_filters
            .iter()
            .find(|filter| filter.starts_with(REMINDER))
            .map(String::as_str)
    }

    pub(crate) fn blacklist(&mut self, reason: &str) {
        if self.status != SubscriptionStatus::Blacklisted {
            self.status = SubscriptionStatus::Blacklisted;
            self.blacklisted = Some((OffsetDateTime::now_utc(), reason.to_owned()));
        }
    }

    fn renew(&mut self) {
        self.expires_at = Instant::now() + Duration::from_secs(self.expires_in);
        self.expiration_time = OffsetDateTime::now_utc() + Duration::from_secs(self.expires_in);
    }

    fn remaining(&self) -> u64 {
        whole_seconds(self.expires_at.saturating_duration_since(Instant::now()))
    }

    /// The `SubscriptionInfo` answer (never the verification token).
    pub(crate) fn info(&self, base_url: &str) -> Value {
        let mut body = json!({
            "id": self.id,
            "uri": format!("{base_url}/restapi/v1.0/subscription/{}", self.id),
            "eventFilters": self.event_filters,
            "disabledFilters": self.disabled_filters.iter().map(|disabled| json!({
                "filter": disabled.filter,
                "reason": disabled.reason,
                "message": disabled.message,
            })).collect::<Vec<_>>(),
            "expirationTime": wire_time(self.expiration_time),
            "expiresIn": self.remaining(),
            "status": self.status.as_str(),
            "creationTime": wire_time(self.creation_time),
            "deliveryMode": {
                "transportType": self.transport,
                "address": self.address,
                "encryption": false,
            },
        });
        if self.is_websocket()
            && let Some(mode) = body["deliveryMode"].as_object_mut()
        {
            mode.remove("address");
        }
        if let Some((at, reason)) = &self.blacklisted {
            body["blacklistedData"] = json!({"blacklistedAt": wire_time(*at), "reason": reason});
        }
        body
    }
}

/// One attempt to deliver a notification to a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// When it was sent.
    pub at: OffsetDateTime,
    /// The subscription it went to.
    pub subscription_id: String,
    /// The notification's `uuid`.
    pub uuid: String,
    /// The notification's `event`.
    pub event: String,
    /// `body.telephonySessionId` (telephony notifications).
    pub telephony_session_id: Option<String>,
    /// `body.sequence` (telephony notifications).
    pub sequence: Option<u64>,
    /// The webhook's status; `None` when the request failed.
    pub status: Option<u16>,
    /// Why the request failed.
    pub error: Option<String>,
}

impl DeliveryRecord {
    /// The record of sending `body` to `subscription_id` at `at`.
    fn of(
        at: OffsetDateTime,
        subscription_id: &str,
        body: &Value,
        status: Option<u16>,
        error: Option<String>,
    ) -> DeliveryRecord {
        DeliveryRecord {
            at,
            subscription_id: subscription_id.to_owned(),
            uuid: text(body, "/uuid"),
            event: text(body, "/event"),
            telephony_session_id: body
                .pointer("/body/telephonySessionId")
                .and_then(Value::as_str)
                .map(str::to_owned),
            sequence: body.pointer("/body/sequence").and_then(Value::as_u64),
            status,
            error,
        }
    }

    /// Whether the webhook answered 2xx.
    pub fn ok(&self) -> bool {
        self.status
            .is_some_and(|status| (200..300).contains(&status))
    }
}

fn not_found() -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "SUB-520",
        "Resource for parameter [subscriptionId] is not found",
    )
}

fn invalid(code: &str, message: &str) -> Response {
    api_error(StatusCode::BAD_REQUEST, code, message)
}

/// Checks filters against what the platform offers. `Err` lists the invalid ones.
pub(crate) fn validate_filters(
    shared: &Shared,
    filters: &[String],
    expires_in: u64,
) -> Result<(Vec<String>, Vec<DisabledFilter>), Vec<String>> {
    let mut enabled = Vec::new();
    let mut disabled = Vec::new();
    let mut bad = Vec::new();
    for filter in filters {
        let (path, query) = filter.split_once('?').unwrap_or((filter.as_str(), ""));
        let valid = match path {
            ACCOUNT_SESSIONS | EXTENSION_SESSIONS => query.is_empty(),
            REMINDER => reminder_valid(query, expires_in),
            _ => false,
        };
        if !valid {
            bad.push(filter.clone());
            continue;
        }
        let missing = shared
            .options
            .disabled_filters
            .iter()
            .find(|(disabled, _)| disabled.split('?').next() == Some(path));
        match missing {
            Some((_, permission)) => disabled.push(DisabledFilter {
                filter: filter.clone(),
                reason: "Permission".to_owned(),
                message: format!("Required application permission [{permission}] is missing"),
            }),
            None => enabled.push(filter.clone()),
        }
    }
    if bad.is_empty() {
        Ok((enabled, disabled))
    } else {
        Err(bad)
    }
}

/// `threshold` ≤ half the lifetime, `interval` ≤ half the threshold, both positive.
fn reminder_valid(query: &str, expires_in: u64) -> bool {
    let params = form_decode(query);
    if params.len() != 2 {
        return false;
    }
    let number = |key: &str| params.get(key).and_then(|value| value.parse::<u64>().ok());
    match (number("threshold"), number("interval")) {
        (Some(threshold), Some(interval)) => {
            threshold > 0
                && interval > 0
                && threshold <= expires_in / 2
                && interval <= threshold / 2
        }
        _ => false,
    }
}

fn filters_error(bad: &[String]) -> Response {
    invalid(
        "SUB-508",
        &format!("Event filters are invalid: [{}]", bad.join(", ")),
    )
}

fn string_list(value: Option<&Value>) -> Option<Vec<String>> {
    value?
        .as_array()?
        .iter()
        .map(|item| item.as_str().map(str::to_owned))
        .collect()
}

/// `POST /restapi/v1.0/subscription`.
pub(crate) async fn create(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return invalid("CMN-101", "Parameter [body] value is invalid");
    };
    let Some(filters) = string_list(request.get("eventFilters")).filter(|list| !list.is_empty())
    else {
        return invalid("SUB-508", "Event filters are invalid: [] (none given)");
    };
    let transport = request
        .pointer("/deliveryMode/transportType")
        .and_then(Value::as_str);
    if !transport.is_some_and(|transport| transport.eq_ignore_ascii_case("WebHook")) {
        return invalid(
            "CMN-101",
            "Parameter [deliveryMode.transportType] value is invalid",
        );
    }
    let Some(address) = request
        .pointer("/deliveryMode/address")
        .and_then(Value::as_str)
        .filter(|address| address.starts_with("http://") || address.starts_with("https://"))
        .map(str::to_owned)
    else {
        return invalid(
            "CMN-101",
            "Parameter [deliveryMode.address] value is invalid",
        );
    };
    let verification_token = request
        .pointer("/deliveryMode/verificationToken")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let expires_in = match request.get("expiresIn") {
        None | Some(Value::Null) => DEFAULT_EXPIRES_IN,
        Some(value) => match value.as_u64() {
            Some(seconds) if seconds > 0 => seconds.min(MAX_EXPIRES_IN),
            _ => return invalid("CMN-101", "Parameter [expiresIn] value is invalid"),
        },
    };
    let (event_filters, disabled_filters) = match validate_filters(&shared, &filters, expires_in) {
        Ok(split) => split,
        Err(bad) => return filters_error(&bad),
    };
    {
        let mut inner = shared.lock();
        inner.prune_subscriptions();
        if inner.subscriptions.len() >= MAX_SUBSCRIPTIONS {
            return invalid("SUB-505", "Maximum number of subscriptions is reached");
        }
    }

    if let Err(why) = handshake(&shared.http, &address).await {
        tracing::info!(%why, "simulated platform refused a subscription: handshake failed");
        return invalid("SUB-525", "WebHook server response is invalid");
    }

    let now = OffsetDateTime::now_utc();
    let subscription = Subscription {
        id: random_uuid(),
        event_filters,
        disabled_filters,
        address,
        verification_token,
        expires_in,
        expires_at: Instant::now() + Duration::from_secs(expires_in),
        expiration_time: now + Duration::from_secs(expires_in),
        creation_time: now,
        status: SubscriptionStatus::Active,
        blacklisted: None,
        consecutive_failures: 0,
        transport: "WebHook",
    };
    let info = subscription.info(&shared.base_url);
    shared.lock().subscriptions.push(subscription);
    Json(info).into_response()
}

/// The validation handshake (`docs/ringcentral.md` §3.2). `Err` says what was wrong.
async fn handshake(http: &reqwest::Client, address: &str) -> Result<(), String> {
    let token = random_uuid();
    let exchange = async {
        let response = http
            .post(address)
            .header("Validation-Token", &token)
            .header(USER_AGENT, "RingCentral-Webhook/8.3")
            .send()
            .await
            .map_err(|error| format!("request failed: {error}"))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|error| format!("reading the answer failed: {error}"))?;
        Ok::<_, String>((status, headers, body))
    };
    let (status, headers, body) = tokio::time::timeout(HANDSHAKE_TIMEOUT, exchange)
        .await
        .map_err(|_| "no answer within 3 s".to_owned())??;
    if status != reqwest::StatusCode::OK {
        return Err(format!("answered {status}"));
    }
    if headers
        .get("validation-token")
        .map(|value| value.as_bytes())
        != Some(token.as_bytes())
    {
        return Err("did not echo Validation-Token".to_owned());
    }
    if !headers.contains_key(CONTENT_TYPE) {
        return Err("no Content-Type".to_owned());
    }
    let status_line = format!("HTTP/1.1 {status}\r\n").len();
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + 2 + value.len() + 2)
        .sum();
    let total = status_line + header_bytes + 2 + body.len();
    if total > HANDSHAKE_MAX_BYTES {
        return Err(format!("answer is {total} bytes"));
    }
    Ok(())
}

/// `GET /restapi/v1.0/subscription`.
pub(crate) async fn list(State(shared): State<Arc<Shared>>) -> Response {
    let mut inner = shared.lock();
    inner.prune_subscriptions();
    let records: Vec<Value> = inner
        .subscriptions
        .iter()
        .map(|sub| sub.info(&shared.base_url))
        .collect();
    Json(json!({
        "uri": format!("{}/restapi/v1.0/subscription", shared.base_url),
        "records": records,
    }))
    .into_response()
}

/// `GET /restapi/v1.0/subscription/{id}`.
pub(crate) async fn read(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let mut inner = shared.lock();
    inner.prune_subscriptions();
    match inner.subscriptions.iter().find(|sub| sub.id == id) {
        Some(sub) => Json(sub.info(&shared.base_url)).into_response(),
        None => not_found(),
    }
}

fn blacklisted() -> Response {
    invalid(
        "SUB-522",
        "Subscription is blacklisted; delete it and create a new one",
    )
}

/// `POST /restapi/v1.0/subscription/{id}/renew`.
pub(crate) async fn renew(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let mut inner = shared.lock();
    inner.prune_subscriptions();
    let Some(sub) = inner.subscriptions.iter_mut().find(|sub| sub.id == id) else {
        return not_found();
    };
    if sub.status == SubscriptionStatus::Blacklisted {
        return blacklisted();
    }
    sub.renew();
    Json(sub.info(&shared.base_url)).into_response()
}

/// `PUT /restapi/v1.0/subscription/{id}` (body `{eventFilters?, expiresIn?}`; empty renews).
pub(crate) async fn update(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let request = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(value) => value,
            Err(_) => return invalid("CMN-101", "Parameter [body] value is invalid"),
        }
    };
    let mut inner = shared.lock();
    inner.prune_subscriptions();
    let Some(index) = inner.subscriptions.iter().position(|sub| sub.id == id) else {
        return not_found();
    };
    if inner.subscriptions[index].status == SubscriptionStatus::Blacklisted {
        return blacklisted();
    }
    let expires_in = match request.get("expiresIn") {
        None | Some(Value::Null) => inner.subscriptions[index].expires_in,
        Some(value) => match value.as_u64() {
            Some(seconds) if seconds > 0 => seconds.min(MAX_EXPIRES_IN),
            _ => return invalid("CMN-101", "Parameter [expiresIn] value is invalid"),
        },
    };
    let filters = match request.get("eventFilters") {
        None | Some(Value::Null) => None,
        Some(value) => match string_list(Some(value)).filter(|list| !list.is_empty()) {
            Some(list) => Some(list),
            None => return invalid("SUB-508", "Event filters are invalid: [] (none given)"),
        },
    };
    let split = match &filters {
        Some(filters) => match validate_filters(&shared, filters, expires_in) {
            Ok(split) => Some(split),
            Err(bad) => return filters_error(&bad),
        },
        None => None,
    };
    let sub = &mut inner.subscriptions[index];
    if let Some((enabled, disabled)) = split {
        sub.event_filters = enabled;
        sub.disabled_filters = disabled;
    }
    sub.expires_in = expires_in;
    sub.renew();
    Json(sub.info(&shared.base_url)).into_response()
}

/// `DELETE /restapi/v1.0/subscription/{id}`.
pub(crate) async fn remove(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let mut inner = shared.lock();
    inner.prune_subscriptions();
    let before = inner.subscriptions.len();
    inner.subscriptions.retain(|sub| sub.id != id);
    if inner.subscriptions.len() == before {
        not_found()
    } else {
        StatusCode::NO_CONTENT.into_response()
    }
}

/// Queues a renewal reminder for subscription `id` and waits for its delivery.
pub(crate) async fn send_reminder(shared: &Arc<Shared>, id: &str) -> Option<DeliveryRecord> {
    let receiver = {
        let mut inner = shared.lock();
        inner.prune_subscriptions();
        let sub = inner
            .subscriptions
            .iter()
            .find(|sub| sub.id == id && sub.status == SubscriptionStatus::Active)?;
        let event = sub
            .reminder_filter()
            .unwrap_or("/restapi/v1.0/subscription/~?threshold=60&interval=15")
            .to_owned();
        let now = OffsetDateTime::now_utc();
        let body = json!({
            "uuid": random_uuid(),
            "event": event,
            "timestamp": wire_time(now),
            "subscriptionId": sub.id,
            "ownerId": shared.options.owner_id,
            "body": {
                "id": sub.id,
                "subscriptionId": sub.id,
                "expiresIn": sub.remaining(),
                "expirationTime": wire_time(sub.expiration_time),
                "status": sub.status.as_str(),
            },
        });
        let (record, receiver) = oneshot::channel();
        let _done = shared.enqueue_items(
            vec![Outgoing::Direct {
                subscription_id: sub.id.clone(),
                body,
                record,
            }],
            None,
        );
        receiver
    };
    receiver.await.ok().flatten()
}

/// Delivers queued notifications in order until the platform is gone.
pub(crate) async fn delivery_worker(shared: Weak<Shared>, mut jobs: mpsc::UnboundedReceiver<Job>) {
    while let Some(job) = jobs.recv().await {
        if let Some(at) = job.not_before {
            tokio::time::sleep_until(at).await;
        }
        let Some(shared) = shared.upgrade() else {
            break;
        };
        for item in job.items {
            match item {
                Outgoing::Telephony(body) => deliver_telephony(&shared, body).await,
                Outgoing::Direct {
                    subscription_id,
                    body,
                    record,
                } => {
                    let target = {
                        let mut inner = shared.lock();
                        inner.prune_subscriptions();
                        inner
                            .subscriptions
                            .iter()
                            .find(|sub| {
                                sub.id == subscription_id
                                    && sub.status == SubscriptionStatus::Active
                            })
                            .map(|sub| (sub.address.clone(), sub.verification_token.clone()))
                    };
                    let outcome = match target {
                        Some((address, token)) => Some(
                            deliver_one(&shared, &subscription_id, &address, token, body).await,
                        ),
                        None => None,
                    };
                    let _ = record.send(outcome);
                }
            }
        }
        drop(shared);
        let _ = job.done.send(());
    }
}

/// Delivers a telephony notification to every active subscription with a telephony filter;
/// with none, it is lost.
async fn deliver_telephony(shared: &Arc<Shared>, body: Value) {
    let (targets, over_websocket) = {
        let mut inner = shared.lock();
        inner.prune_subscriptions();
        let active: Vec<&Subscription> = inner
            .subscriptions
            .iter()
            .filter(|sub| sub.status == SubscriptionStatus::Active && sub.has_telephony_filter())
            .collect();
        let webhooks: Vec<(String, String, Option<String>)> = active
            .iter()
            .filter(|sub| !sub.is_websocket())
            .map(|sub| {
                (
                    sub.id.clone(),
                    sub.address.clone(),
                    sub.verification_token.clone(),
                )
            })
            .collect();
        let sockets: Vec<String> = active
            .iter()
            .filter(|sub| sub.is_websocket())
            .map(|sub| sub.id.clone())
            .collect();
        (webhooks, sockets)
    };
    let mut delivered_somewhere = false;
    for id in over_websocket {
        let mut copy = body.clone();
        copy["subscriptionId"] = json!(id);
        copy["ownerId"] = json!(shared.options.owner_id);
        let mut inner = shared.lock();
        let sent = inner.ws.deliver(&id, &copy, &shared.options.ws);
        let record = DeliveryRecord::of(
            OffsetDateTime::now_utc(),
            &id,
            &copy,
            sent.then_some(200),
            (!sent).then(|| "the WebSocket session is gone".to_owned()),
        );
        inner.deliveries.push(record);
        delivered_somewhere |= sent;
    }
    if targets.is_empty() {
        if !delivered_somewhere {
            shared.lock().lost.push(body);
        }
        return;
    }
    for (id, address, token) in targets {
        let mut copy = body.clone();
        copy["subscriptionId"] = json!(id);
        copy["ownerId"] = json!(shared.options.owner_id);
        deliver_one(shared, &id, &address, token, copy).await;
    }
}

/// POSTs one notification as RingCentral does and records the outcome.
async fn deliver_one(
    shared: &Arc<Shared>,
    subscription_id: &str,
    address: &str,
    token: Option<String>,
    body: Value,
) -> DeliveryRecord {
    let at = OffsetDateTime::now_utc();
    let bytes = serde_json::to_vec(&body).expect("a JSON value always serializes");
    let mut request = shared
        .http
        .post(address)
        .header(CONTENT_TYPE, "application/json; charset=UTF-8")
        .header(USER_AGENT, "RingCentral-Webhook/8.3")
        .timeout(DELIVERY_TIMEOUT)
        .body(bytes);
    if let Some(token) = &token {
        request = request.header("Verification-Token", token);
    }
    let (status, error) = match request.send().await {
        Ok(response) => (Some(response.status()), None),
        Err(error) => (None, Some(error.to_string())),
    };
    let record = DeliveryRecord::of(
        at,
        subscription_id,
        &body,
        status.map(|status| status.as_u16()),
        error,
    );
    let mut inner = shared.lock();
    if let Some(sub) = inner
        .subscriptions
        .iter_mut()
        .find(|sub| sub.id == subscription_id)
    {
        if record.ok() {
            sub.consecutive_failures = 0;
        } else {
            sub.consecutive_failures += 1;
            if shared
                .options
                .blacklist_after_failures
                .is_some_and(|limit| sub.consecutive_failures >= limit)
            {
                let reason = match status {
                    Some(status) => format!(
                        "Webhook responses with code: [{}], reason: [{}]",
                        status.as_u16(),
                        status.canonical_reason().unwrap_or("Unknown")
                    ),
                    None => "I/O operation is failed. Details: [Read timed out]".to_owned(),
                };
                sub.blacklist(&reason);
            }
        }
    }
    inner.deliveries.push(record.clone());
    record
}

fn text(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}
