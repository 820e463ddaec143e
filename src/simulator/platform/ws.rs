//! WebSocket delivery (`docs/ringcentral.md` §3.6): a faithful fake of RingCentral's WebSocket
//! gateway on its own listener.
//!
//! - `POST /restapi/oauth/wstoken` (Bearer, Auth rate group) answers a single-use token and the
//!   gateway's `ws://` address.
//! - A connection presents `?access_token=` (and, to recover, `&wsc=`). A missing or unknown
//!   token is closed with code 4400. Otherwise the first frame is `ConnectionDetails` with a
//!   `wsc` token and the limits.
//! - Frames are JSON arrays `[header, body?]`. `ClientRequest` `POST /restapi/v1.0/subscription`
//!   subscribes this session (a second one replaces the first), `DELETE …/{id}` removes it; the
//!   answer carries the request's `messageId`. `Heartbeat` is echoed.
//! - Notifications go out as `ServerNotification` (header `messageId` = the `uuid`).
//! - Keep-alive: ping frames on a period; only client *text* frames reset the idle timer. After
//!   `idle_timeout` with none: `Error` `WSG-902` and close; after `absolute_timeout`: `WSG-903`.
//! - Recovery: a dropped session is kept for `recovery_timeout`, buffering the last
//!   `recovery_buffer` notifications. A reconnect with its `wsc` in time, from the same OAuth
//!   session, with a subscription, is `Successful` and gets the buffer replayed; another OAuth
//!   session is `Failed` with `WSG-1003`, no subscription `WSG-1005`, too late plain `Failed`; a
//!   `wsc` the gateway never issued is `Error` `WSG-400` and a close.
//!
//! Tests drop every connection at will ([`super::PlatformHandle::drop_websockets`]).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::state::{Shared, random_hex, random_uuid, whole_seconds, wire_time};
use super::subscriptions::{Subscription, SubscriptionStatus};

/// The gateway's settings (see [`super::PlatformOptions`]).
#[derive(Debug, Clone)]
pub(crate) struct WsOptions {
    pub(crate) token_ttl: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) absolute_timeout: Duration,
    pub(crate) recovery_timeout: Duration,
    pub(crate) recovery_buffer: usize,
    pub(crate) ping_interval: Duration,
}

impl Default for WsOptions {
    fn default() -> Self {
        WsOptions {
            token_ttl: Duration::from_secs(600),
            idle_timeout: Duration::from_secs(1800),
            absolute_timeout: Duration::from_secs(86_400),
            recovery_timeout: Duration::from_secs(180),
            recovery_buffer: 100,
            ping_interval: Duration::from_secs(30),
        }
    }
}

/// What the gateway saw, for tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WsStats {
    /// `POST /restapi/oauth/wstoken` calls answered with a token.
    pub tokens_issued: u32,
    /// Connections accepted (with a valid token).
    pub connections: u32,
    /// Reconnects that recovered their session.
    pub recovered: u32,
    /// Reconnects whose recovery failed (any reason).
    pub recovery_failed: u32,
    /// Heartbeats echoed.
    pub heartbeats: u32,
    /// Subscriptions created over the socket.
    pub subscribed: u32,
    /// Subscriptions deleted over the socket.
    pub unsubscribed: u32,
    /// Notifications sent (replays included).
    pub notifications: u32,
    /// Connections closed for idling (`WSG-902`).
    pub idle_closes: u32,
}

/// The gateway's state, inside the platform's lock.
#[derive(Debug)]
pub(crate) struct WsState {
    /// Single-use tokens: token → (OAuth session, expiry).
    tokens: HashMap<String, (u64, Instant)>,
    /// Sessions by their `wsc` token.
    sessions: HashMap<String, Session>,
    pub(crate) stats: WsStats,
    /// Tells every connection to drop (a network failure, for tests).
    kill: broadcast::Sender<()>,
    /// Absolute timeout overridden by tests (`expire_websockets`).
    pub(crate) expire_now: broadcast::Sender<()>,
    next_connection: u64,
}

impl Default for WsState {
    fn default() -> Self {
        WsState {
            tokens: HashMap::new(),
            sessions: HashMap::new(),
            stats: WsStats::default(),
            kill: broadcast::channel(4).0,
            expire_now: broadcast::channel(4).0,
            next_connection: 0,
        }
    }
}

#[derive(Debug)]
struct Session {
    oauth_session: u64,
    subscription: Option<String>,
    /// The live connection's outbox; `None` while disconnected.
    connection: Option<mpsc::UnboundedSender<Message>>,
    /// Which connection serves it (a reconnect can take over before the old one is noticed).
    connection_id: u64,
    disconnected_at: Option<Instant>,
    /// Notifications kept while disconnected (the most recent `recovery_buffer`).
    buffer: VecDeque<Value>,
    sequence: u64,
}

impl WsState {
    pub(crate) fn drop_all(&self) {
        let _ = self.kill.send(());
    }

    /// Ends every session as if its recovery window had run out, answering the subscriptions
    /// that ended with them; a later recovery with their `wsc` is `Failed`.
    pub(crate) fn end_sessions(&mut self) -> Vec<String> {
        self.sessions
            .drain()
            .filter_map(|(_, session)| session.subscription)
            .collect()
    }

    /// Where a WebSocket subscription's notifications go now: the live connection, the
    /// recovery buffer, or nowhere (`false`: lost).
    pub(crate) fn deliver(
        &mut self,
        subscription_id: &str,
        body: &Value,
        options: &WsOptions,
    ) -> bool {
        let Some(session) = self
            .sessions
            .values_mut()
            .find(|session| session.subscription.as_deref() == Some(subscription_id))
        else {
            return false;
        };
        match &session.connection {
            Some(connection) => {
                let sent = connection.send(notification(body)).is_ok();
                if sent {
                    self.stats.notifications += 1;
                }
                sent
            }
            None => {
                let in_window = session
                    .disconnected_at
                    .is_some_and(|at| at.elapsed() < options.recovery_timeout);
                if in_window {
                    session.buffer.push_back(body.clone());
                    while session.buffer.len() > options.recovery_buffer {
                        session.buffer.pop_front();
                    }
                }
                in_window
            }
        }
    }

    /// Sessions disconnected for longer than the recovery window end, and their subscriptions
    /// with them.
    fn expire(&mut self, options: &WsOptions) -> Vec<String> {
        let mut gone = Vec::new();
        self.sessions.retain(|_, session| {
            let expired = session
                .disconnected_at
                .is_some_and(|at| at.elapsed() >= options.recovery_timeout);
            if expired && let Some(id) = session.subscription.take() {
                gone.push(id);
            }
            !expired
        });
        gone
    }
}

fn notification(body: &Value) -> Message {
    let uuid = body.get("uuid").cloned().unwrap_or(Value::Null);
    let header = json!({
        "type": "ServerNotification",
        "messageId": uuid,
        "status": 200,
        "headers": {"RCRequestId": random_uuid()},
    });
    Message::Text(json!([header, body]).to_string())
}

/// `POST /restapi/oauth/wstoken`.
pub(crate) async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let session = match shared.lock().tokens.check_bearer_session(&headers) {
        Ok(session) => session,
        Err(refusal) => return refusal.into_response(),
    };
    let token = random_hex(24);
    let ttl = shared.options.ws.token_ttl;
    let mut inner = shared.lock();
    inner
        .ws
        .tokens
        .insert(token.clone(), (session, Instant::now() + ttl));
    inner.ws.stats.tokens_issued += 1;
    Json(json!({
        "ws_access_token": token,
        "uri": format!("{}/ws", shared.ws_url()),
        "expires_in": whole_seconds(ttl),
    }))
    .into_response()
}

/// Accepts gateway connections until the platform is gone.
pub(crate) async fn serve(listener: TcpListener, shared: Weak<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let Some(platform) = shared.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            if let Err(error) = connection(platform, stream).await {
                tracing::debug!(%error, "simulated WebSocket connection ended");
            }
        });
    }
}

/// The query of the upgrade request.
fn query_params(query: &str) -> HashMap<String, String> {
    super::state::form_decode(query)
}

async fn connection(
    shared: Arc<Shared>,
    stream: tokio::net::TcpStream,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    let mut query = String::new();
    // The callback's signature is tungstenite's; it never refuses, so its large error is moot.
    #[allow(clippy::result_large_err)]
    let ws = tokio_tungstenite::accept_hdr_async(
        stream,
        |request: &tokio_tungstenite::tungstenite::handshake::server::Request,
         response: tokio_tungstenite::tungstenite::handshake::server::Response| {
            query = request.uri().query().unwrap_or_default().to_owned();
            Ok(response)
        },
    )
    .await?;
    let params = query_params(&query);
    let (mut sink, mut frames) = ws.split();
    let options = shared.options.ws.clone();

    // The token: single use, not expired.
    let oauth_session = {
        let mut inner = shared.lock();
        let presented = params.get("access_token").cloned().unwrap_or_default();
        match inner.ws.tokens.remove(&presented) {
            Some((session, expires)) if Instant::now() < expires => Some(session),
            _ => None,
        }
    };
    let Some(oauth_session) = oauth_session else {
        let close = CloseFrame {
            code: CloseCode::from(4400),
            reason: "Unauthorized".into(),
        };
        sink.send(Message::Close(Some(close))).await?;
        return Ok(());
    };

    let (outbox, mut outgoing) = mpsc::unbounded_channel::<Message>();
    let opened = open_session(&shared, params.get("wsc"), oauth_session, &outbox, &options);
    let Some((wsc, connection_id, details, replay)) = opened else {
        let error = json!([
            {"type": "Error", "messageId": random_uuid(), "status": 400},
            {"errorCode": "WSG-400", "message": "Malformed WebSocket session context token"}
        ]);
        sink.send(Message::Text(error.to_string())).await?;
        sink.send(Message::Close(None)).await?;
        return Ok(());
    };
    sink.send(Message::Text(details.to_string())).await?;
    for body in &replay {
        sink.send(notification(body)).await?;
    }
    shared.lock().ws.stats.notifications += u32::try_from(replay.len()).unwrap_or(u32::MAX);

    let (mut kill, mut expire) = {
        let inner = shared.lock();
        (inner.ws.kill.subscribe(), inner.ws.expire_now.subscribe())
    };
    let started = Instant::now();
    let mut last_client_text = Instant::now();
    let mut ping = tokio::time::interval(options.ping_interval);
    ping.tick().await;
    let outcome: Result<Option<(&str, &str)>, tokio_tungstenite::tungstenite::Error> = loop {
        let idle_deadline = last_client_text + options.idle_timeout;
        let absolute_deadline = started + options.absolute_timeout;
        tokio::select! {
            frame = frames.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    last_client_text = Instant::now();
                    if let Some(answer) = request(&shared, &wsc, &text) {
                        if let Err(error) = sink.send(answer).await {
                            break Err(error);
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | None => break Ok(None),
                Some(Ok(_)) => {}
                Some(Err(error)) => break Err(error),
            },
            Some(message) = outgoing.recv() => {
                if let Err(error) = sink.send(message).await {
                    break Err(error);
                }
            }
            _ = ping.tick() => {
                if let Err(error) = sink.send(Message::Ping(Vec::new())).await {
                    break Err(error);
                }
            }
            () = tokio::time::sleep_until(idle_deadline) => {
                shared.lock().ws.stats.idle_closes += 1;
                break Ok(Some(("WSG-902", "Idle timeout expired")));
            }
            () = tokio::time::sleep_until(absolute_deadline) => {
                break Ok(Some(("WSG-903", "Absolute timeout expired")));
            }
            _ = expire.recv() => break Ok(Some(("WSG-903", "Absolute timeout expired"))),
            // A network failure: the socket goes without a close frame.
            _ = kill.recv() => {
                disconnected(&shared, &wsc, connection_id, &mut outgoing);
                return Ok(());
            }
        }
    };
    if let Ok(Some((code, message))) = outcome {
        let error = json!([
            {"type": "Error", "messageId": random_uuid(), "status": 400},
            {"errorCode": code, "message": message}
        ]);
        let _ = sink.send(Message::Text(error.to_string())).await;
        let _ = sink.send(Message::Close(None)).await;
    }
    disconnected(&shared, &wsc, connection_id, &mut outgoing);
    outcome.map(|_| ())
}

/// The session a connection serves: a new one, or the one it recovers. Answers its `wsc`, the
/// connection's id, the `ConnectionDetails` frame and the notifications to replay; `None` for a
/// `wsc` the gateway never issued.
fn open_session(
    shared: &Shared,
    presented: Option<&String>,
    oauth_session: u64,
    outbox: &mpsc::UnboundedSender<Message>,
    options: &WsOptions,
) -> Option<(String, u64, Value, Vec<Value>)> {
    let mut inner = shared.lock();
    let gone = inner.ws.expire(options);
    inner.subscriptions.retain(|sub| !gone.contains(&sub.id));
    inner.ws.stats.connections += 1;
    inner.ws.next_connection += 1;
    let connection_id = inner.ws.next_connection;
    let Some(presented) = presented else {
        let wsc = new_session(&mut inner.ws, oauth_session, outbox.clone(), connection_id);
        let details = details(&wsc, 1, options, None);
        return Some((wsc, connection_id, details, Vec::new()));
    };
    match recover(
        &mut inner,
        presented,
        oauth_session,
        outbox,
        connection_id,
        options,
    ) {
        Recovery::Unknown => None,
        Recovery::Successful {
            wsc,
            sequence,
            replay,
        } => {
            inner.ws.stats.recovered += 1;
            let details = details(&wsc, sequence, options, Some(("Successful", None)));
            Some((wsc, connection_id, details, replay))
        }
        Recovery::Failed { code } => {
            inner.ws.stats.recovery_failed += 1;
            let wsc = new_session(&mut inner.ws, oauth_session, outbox.clone(), connection_id);
            let details = details(&wsc, 1, options, Some(("Failed", code)));
            Some((wsc, connection_id, details, Vec::new()))
        }
    }
}

/// Notifications queued for a connection that died before sending them.
fn unsent(outgoing: &mut mpsc::UnboundedReceiver<Message>) -> Vec<Value> {
    let mut bodies = Vec::new();
    while let Ok(message) = outgoing.try_recv() {
        if let Message::Text(text) = message
            && let Ok(Value::Array(mut parts)) = serde_json::from_str::<Value>(&text)
            && parts
                .first()
                .and_then(|h| h.get("type"))
                .and_then(Value::as_str)
                == Some("ServerNotification")
            && parts.len() > 1
        {
            bodies.push(parts.swap_remove(1));
        }
    }
    bodies
}

/// The connection `connection_id` ended: its session waits for a recovery (unless another
/// connection took it over already), keeping what the dead connection never sent. The outbox
/// is drained under the lock, so nothing delivered to it in between is lost.
fn disconnected(
    shared: &Shared,
    wsc: &str,
    connection_id: u64,
    outgoing: &mut mpsc::UnboundedReceiver<Message>,
) {
    let mut inner = shared.lock();
    outgoing.close();
    let unsent = unsent(outgoing);
    let keep = shared.options.ws.recovery_buffer;
    if let Some(session) = inner.ws.sessions.get_mut(wsc) {
        if session.connection_id == connection_id {
            session.connection = None;
            session.disconnected_at = Some(Instant::now());
        }
        match &session.connection {
            // Taken over already: the new connection gets them.
            Some(live) => {
                for body in &unsent {
                    let _ = live.send(notification(body));
                }
            }
            None => {
                for body in unsent.into_iter().rev() {
                    session.buffer.push_front(body);
                }
            }
        }
        while session.buffer.len() > keep {
            session.buffer.pop_front();
        }
    }
}

fn new_session(
    ws: &mut WsState,
    oauth_session: u64,
    outbox: mpsc::UnboundedSender<Message>,
    connection_id: u64,
) -> String {
    let wsc = random_hex(20);
    ws.sessions.insert(
        wsc.clone(),
        Session {
            oauth_session,
            subscription: None,
            connection: Some(outbox),
            connection_id,
            disconnected_at: None,
            buffer: VecDeque::new(),
            sequence: 1,
        },
    );
    wsc
}

enum Recovery {
    Unknown,
    Successful {
        wsc: String,
        sequence: u64,
        replay: Vec<Value>,
    },
    Failed {
        code: Option<&'static str>,
    },
}

fn recover(
    inner: &mut super::state::Inner,
    presented: &str,
    oauth_session: u64,
    outbox: &mpsc::UnboundedSender<Message>,
    connection_id: u64,
    options: &WsOptions,
) -> Recovery {
    let Some(session) = inner.ws.sessions.get_mut(presented) else {
        // Issued once, then expired with its window: a plain failure. Never issued: WSG-400.
        return if presented.len() == 40 && presented.bytes().all(|b| b.is_ascii_hexdigit()) {
            Recovery::Failed { code: None }
        } else {
            Recovery::Unknown
        };
    };
    // A session whose old connection is not noticed gone yet is in its window too: the new
    // connection takes it over.
    let in_window = session
        .disconnected_at
        .is_none_or(|at| at.elapsed() < options.recovery_timeout);
    let failure = if session.oauth_session != oauth_session {
        Some(Some("WSG-1003"))
    } else if session.subscription.is_none() {
        Some(Some("WSG-1005"))
    } else if !in_window {
        Some(None)
    } else {
        None
    };
    match failure {
        Some(code) => {
            // The old session ends; its subscription with it.
            let old = inner.ws.sessions.remove(presented);
            if let Some(id) = old.and_then(|old| old.subscription) {
                inner.subscriptions.retain(|sub| sub.id != id);
            }
            Recovery::Failed { code }
        }
        None => {
            session.connection = Some(outbox.clone());
            session.connection_id = connection_id;
            session.disconnected_at = None;
            session.sequence += 1;
            Recovery::Successful {
                wsc: presented.to_owned(),
                sequence: session.sequence,
                replay: session.buffer.drain(..).collect(),
            }
        }
    }
}

fn details(
    wsc: &str,
    sequence: u64,
    options: &WsOptions,
    recovery: Option<(&str, Option<&str>)>,
) -> Value {
    let mut body = json!({
        "creationTime": wire_time(OffsetDateTime::now_utc()),
        "maxConnectionsPerSession": 50,
        "recoveryBufferSize": options.recovery_buffer,
        "recoveryTimeout": whole_seconds(options.recovery_timeout),
        "idleTimeout": whole_seconds(options.idle_timeout),
        "absoluteTimeout": whole_seconds(options.absolute_timeout),
        "maxActiveRequests": 10,
    });
    if let Some((state, code)) = recovery {
        body["recoveryState"] = json!(state);
        if let Some(code) = code {
            body["recoveryErrorCode"] = json!(code);
        }
    }
    json!([
        {
            "type": "ConnectionDetails",
            "messageId": random_uuid(),
            "status": 200,
            "wsc": {"token": wsc, "sequence": sequence},
            "headers": {"RCRequestId": random_uuid()},
        },
        body
    ])
}

/// A client's text frame: a `ClientRequest` or a `Heartbeat`; the answer to send, if any.
fn request(shared: &Shared, wsc: &str, text: &str) -> Option<Message> {
    let frame: Value = serde_json::from_str(text).ok()?;
    let header = frame.get(0)?;
    let message_id = header.get("messageId").cloned().unwrap_or(Value::Null);
    match header.get("type").and_then(Value::as_str)? {
        "Heartbeat" => {
            shared.lock().ws.stats.heartbeats += 1;
            Some(Message::Text(
                json!([{"type": "Heartbeat", "messageId": message_id}]).to_string(),
            ))
        }
        "ClientRequest" => {
            let method = header.get("method").and_then(Value::as_str).unwrap_or("");
            let path = header.get("path").and_then(Value::as_str).unwrap_or("");
            let (status, body) = client_request(shared, wsc, method, path, frame.get(1));
            let mut answer = vec![json!({
                "type": "ClientRequest",
                "messageId": message_id,
                "status": status,
                "headers": {"Content-Type": "application/json", "RCRequestId": random_uuid()},
            })];
            answer.extend(body);
            Some(Message::Text(Value::Array(answer).to_string()))
        }
        _ => None,
    }
}

fn client_request(
    shared: &Shared,
    wsc: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Option<Value>) {
    let path = path.trim_end_matches('/');
    let error = |status: u16, code: &str, message: &str| {
        (
            status,
            Some(
                json!({"errorCode": code, "message": message, "errors": [{"errorCode": code, "message": message}]}),
            ),
        )
    };
    if method.eq_ignore_ascii_case("POST") && path == "/restapi/v1.0/subscription" {
        let filters: Vec<String> = body
            .and_then(|body| body.get("eventFilters"))
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|f| f.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let transport = body
            .and_then(|body| body.pointer("/deliveryMode/transportType"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if filters.is_empty() {
            return error(400, "SUB-508", "Event filters are invalid: [] (none given)");
        }
        if !transport.eq_ignore_ascii_case("WebSocket") {
            return error(
                400,
                "CMN-101",
                "Parameter [deliveryMode.transportType] value is invalid",
            );
        }
        let (event_filters, disabled_filters) =
            match super::subscriptions::validate_filters(shared, &filters, 86_400) {
                Ok(split) => split,
                Err(bad) => {
                    return error(
                        400,
                        "SUB-519",
                        &format!("Event filters are invalid: {bad:?}"),
                    );
                }
            };
        let subscription = Subscription::websocket(event_filters, disabled_filters);
        let info = subscription.info(&shared.base_url);
        let mut inner = shared.lock();
        // One subscription per connection: a second replaces the first.
        let previous = inner
            .ws
            .sessions
            .get_mut(wsc)
            .and_then(|session| session.subscription.replace(subscription.id.clone()));
        if let Some(previous) = previous {
            inner.subscriptions.retain(|sub| sub.id != previous);
        }
        inner.ws.stats.subscribed += 1;
        inner.subscriptions.push(subscription);
        return (200, Some(info));
    }
    if method.eq_ignore_ascii_case("DELETE")
        && let Some(id) = path.strip_prefix("/restapi/v1.0/subscription/")
    {
        let mut inner = shared.lock();
        let before = inner.subscriptions.len();
        inner.subscriptions.retain(|sub| {
            !(sub.id == id && sub.status == SubscriptionStatus::Active && sub.is_websocket())
        });
        if inner.subscriptions.len() == before {
            return error(
                404,
                "SUB-520",
                "Resource for parameter [subscriptionId] is not found",
            );
        }
        if let Some(session) = inner.ws.sessions.get_mut(wsc)
            && session.subscription.as_deref() == Some(id)
        {
            session.subscription = None;
        }
        inner.ws.stats.unsubscribed += 1;
        return (204, None);
    }
    error(404, "CMN-102", "Resource for parameter [path] is not found")
}
