//! WebSocket delivery (`docs/ringcentral.md` §3.6, and the README's "No public address
//! needed"): ringside opens the connection, so it needs no public address and no open port.
//!
//! One connection, one subscription:
//! 1. `POST /restapi/oauth/wstoken` with the current access token (RingCentral's Auth group: a
//!    429 closes it together with the token endpoint; a 401 refreshes the access token at once).
//! 2. Connect to `{uri}?access_token=…` (and `&wsc=…` to recover) over TLS when the `uri` is
//!    `wss://`. Nothing is sent before `ConnectionDetails`, whose limits are kept, and whose
//!    `recoveryState` says whether the session and its subscription survived.
//! 3. Unless recovered, subscribe over the socket (a `ClientRequest` matched by `messageId`
//!    only), report filters RingCentral did not enable, and ask for discovery and
//!    reconciliation: events may have been missed.
//! 4. `ServerNotification`s go through the same [`Intake`] as webhook ones (commit first; the
//!    `uuid` dedupes a replay), each with the latest `wsc` token in the same transaction, so a
//!    restart within `recoveryTimeout` can recover too.
//! 5. A `Heartbeat` whenever no text frame was *sent* for min(60 s, idleTimeout/3) (ping frames
//!    and server traffic do not reset RingCentral's idle timer); any frame from the server is a
//!    sign of life, and a socket silent past a bound is dead.
//! 6. After a drop or `WSG-903`, reconnect at once with a new ws token (from a refreshed access
//!    token, never a new JWT login) and the latest `wsc`. Backoff with jitter only between
//!    failed attempts.
//! 7. On a graceful stop: `DELETE` the subscription over the socket, then close.
//!
//! The URLs carry secrets (the ws token, the `wsc`): they are never logged.

use super::client::{RcClient, RcError};
use super::intake::Intake;
use super::subscription;
use crate::pipeline::{Clock, SubscriptionHealth};
use crate::store::Store;
use crate::util::backoff::Backoff;
use crate::util::random;
use crate::util::shutdown::Shutdown;
use axum::body::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// Where the session's `wsc` token is kept (with the notifications it delivered).
pub const SESSION_KEY: &str = "ringcentral.ws_session";
/// The longest wait between two heartbeats (RingCentral's guide: idle timeouts are long; the
/// SDKs send one at least this often).
const MAX_HEARTBEAT: Duration = Duration::from_secs(60);
/// How long `ConnectionDetails`, or an answer to a request over the socket, may take.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// Backoff between failed attempts to connect.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);
/// The recovery window assumed before RingCentral told one (its documented default).
const DEFAULT_RECOVERY: Duration = Duration::from_secs(180);

/// What the WebSocket delivery runs with.
pub struct WebSocketDelivery {
    pub client: Arc<RcClient>,
    pub intake: Intake,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub filters: Vec<String>,
    pub health: watch::Sender<SubscriptionHealth>,
    /// True while the socket is connected and subscribed (`/readyz`).
    pub connected: watch::Sender<bool>,
    /// Told when events may have been missed (a fresh subscription).
    pub discover: mpsc::UnboundedSender<()>,
}

/// The session as kept in the store: enough to recover after a restart.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeptSession {
    wsc: String,
    /// When it was last heard of, milliseconds since the epoch.
    at_ms: i64,
    recovery_timeout_secs: u64,
    /// The session's subscription, when it was made healthy: a restart that recovers the
    /// session keeps it instead of adding a second one.
    #[serde(default)]
    subscription: Option<String>,
}

impl KeptSession {
    fn of(session: &Session, now_ms: i64) -> KeptSession {
        KeptSession {
            wsc: session.wsc.clone(),
            at_ms: now_ms,
            recovery_timeout_secs: session.recovery_timeout.as_secs(),
            subscription: session.subscription.clone(),
        }
    }
}

/// What `ConnectionDetails` said.
#[derive(Debug, Clone)]
struct Details {
    wsc: Option<String>,
    recovery_state: Option<String>,
    recovery_error: Option<String>,
    idle_timeout: Option<Duration>,
    recovery_timeout: Option<Duration>,
}

/// Why a connection ended.
#[derive(Debug)]
enum Ended {
    /// ringside is stopping (the subscription was deleted).
    Stopped,
    /// Dropped, timed out or closed by the server: reconnect (recovering if in time).
    Lost(String),
}

type Socket = WebSocketStream<Box<dyn Stream>>;

/// A byte stream: TCP, or TLS over TCP.
trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

impl WebSocketDelivery {
    /// Runs until `shutdown`: connect, subscribe, receive, recover, reconnect.
    pub async fn run(self, mut shutdown: Shutdown) {
        let mut resume = self.kept_session().await;
        let mut backoff = Backoff::new(RETRY_FIRST, RETRY_MAX);
        // The subscription a recovered session still has: a healthy one kept from before a
        // restart, then the one made on this run.
        let mut subscription: Option<String> =
            resume.as_ref().and_then(|kept| kept.subscription.clone());
        // The health the subscription had when it was made, restored after a recovery.
        let mut subscribed_health = match &subscription {
            Some(id) => SubscriptionHealth::Active { id: id.clone() },
            None => SubscriptionHealth::Starting,
        };
        loop {
            if shutdown.is_shutdown() {
                break;
            }
            let attempt = self.connect(resume.as_ref(), &mut shutdown).await;
            let (mut socket, details) = match attempt {
                Ok(Some(connected)) => connected,
                Ok(None) => break,
                Err(Failure::Wait(wait, reason)) => {
                    self.failing(&reason);
                    if shutdown.sleep(wait).await {
                        break;
                    }
                    continue;
                }
                Err(Failure::Retry(reason)) => {
                    self.failing(&reason);
                    // A refused recovery token is not tried again.
                    resume = None;
                    if shutdown.sleep(backoff.next_wait()).await {
                        break;
                    }
                    continue;
                }
            };
            let recovered =
                details.recovery_state.as_deref() == Some("Successful") && subscription.is_some();
            if let Some(state) = &details.recovery_state {
                metrics::counter!("ringside_websocket_recoveries_total", "outcome" => if recovered { "successful" } else { "failed" }).increment(1);
                tracing::info!(
                    recovery = %state,
                    code = details.recovery_error.as_deref().unwrap_or(""),
                    "reconnected to RingCentral's WebSocket"
                );
            }
            metrics::counter!("ringside_websocket_connects_total").increment(1);
            let mut session = Session {
                wsc: details.wsc.clone().unwrap_or_default(),
                heartbeat_every: heartbeat_interval(details.idle_timeout),
                recovery_timeout: details.recovery_timeout.unwrap_or(DEFAULT_RECOVERY),
                subscription: None,
                last_sent: Instant::now(),
                last_heard: Instant::now(),
            };
            if !recovered {
                match self.subscribe(&mut socket, &mut session).await {
                    Ok((id, health)) => {
                        subscription = Some(id);
                        subscribed_health = health;
                    }
                    Err(reason) => {
                        self.failing(&reason);
                        let _ = socket.close(None).await;
                        resume = None;
                        if shutdown.sleep(backoff.next_wait()).await {
                            break;
                        }
                        continue;
                    }
                }
                // Events may have been missed while there was no subscription.
                let _ = self.discover.send(());
            }
            // Kept for a restart only when healthy: one with filters RingCentral did not enable
            // is made again (and reported again) after a restart.
            session.subscription = subscription
                .clone()
                .filter(|_| matches!(subscribed_health, SubscriptionHealth::Active { .. }));
            self.set_health(subscribed_health.clone());
            backoff.reset();
            self.keep_session(&session).await;
            self.connected.send_replace(true);
            metrics::gauge!("ringside_websocket_connected").set(1.0);
            let ended = self
                .serve(
                    &mut socket,
                    &mut session,
                    subscription.as_deref(),
                    &mut shutdown,
                )
                .await;
            self.connected.send_replace(false);
            metrics::gauge!("ringside_websocket_connected").set(0.0);
            match ended {
                Ended::Stopped => {
                    self.forget_session().await;
                    break;
                }
                Ended::Lost(reason) => {
                    tracing::warn!(%reason, "RingCentral's WebSocket was lost; reconnecting");
                    resume = Some(KeptSession::of(&session, self.clock.now().0));
                }
            }
        }
        self.connected.send_replace(false);
    }

    fn failing(&self, reason: &str) {
        self.set_health(SubscriptionHealth::Failing {
            reason: reason.to_owned(),
        });
    }

    /// Changes the health, saying so once per change.
    fn set_health(&self, health: SubscriptionHealth) {
        if *self.health.borrow() == health {
            return;
        }
        match &health {
            SubscriptionHealth::Active { id } => {
                tracing::info!(subscription_id = %id, "RingCentral subscription active over the WebSocket");
                metrics::gauge!("ringside_subscription_active").set(1.0);
            }
            SubscriptionHealth::Failing { reason } => {
                tracing::error!(%reason, "ringside cannot see calls");
                metrics::gauge!("ringside_subscription_active").set(0.0);
            }
            SubscriptionHealth::Starting => {}
        }
        self.health.send_replace(health);
    }

    /// A token, a connection and its `ConnectionDetails`; `Ok(None)` when stopping.
    async fn connect(
        &self,
        resume: Option<&KeptSession>,
        shutdown: &mut Shutdown,
    ) -> Result<Option<(Socket, Details)>, Failure> {
        let token = tokio::select! {
            token = self.client.ws_token() => token,
            () = shutdown.recv() => return Ok(None),
        };
        let token = token.map_err(|error| match error {
            RcError::Penalty { retry_in, .. } => {
                Failure::Wait(retry_in, format!("RingCentral's WebSocket: {error}"))
            }
            RcError::RateLimited { retry_after, .. } => {
                Failure::Wait(retry_after, format!("RingCentral's WebSocket: {error}"))
            }
            other => Failure::Retry(format!("RingCentral's WebSocket token: {other}")),
        })?;
        let mut url = reqwest::Url::parse(&token.uri)
            .map_err(|_| Failure::Retry("RingCentral's WebSocket address is not a URL".into()))?;
        url.query_pairs_mut()
            .append_pair("access_token", token.token.expose_secret());
        let now = self.clock.now().0;
        if let Some(kept) = resume.filter(|kept| {
            now.saturating_sub(kept.at_ms)
                < i64::try_from(kept.recovery_timeout_secs.saturating_mul(1000)).unwrap_or(0)
        }) {
            url.query_pairs_mut().append_pair("wsc", &kept.wsc);
        }
        let socket = tokio::select! {
            socket = open(url) => socket.map_err(Failure::Retry)?,
            () = shutdown.recv() => return Ok(None),
        };
        let mut socket = socket;
        // Nothing is sent before ConnectionDetails.
        let details = tokio::time::timeout(ANSWER_TIMEOUT, connection_details(&mut socket))
            .await
            .map_err(|_| {
                Failure::Retry("no ConnectionDetails from RingCentral's WebSocket".into())
            })?
            .map_err(Failure::Retry)?;
        Ok(Some((socket, details)))
    }

    /// Subscribes over the socket; answers the subscription's id and its health (filters
    /// RingCentral did not enable make it failing: a permission is missing).
    async fn subscribe(
        &self,
        socket: &mut Socket,
        session: &mut Session,
    ) -> Result<(String, SubscriptionHealth), String> {
        let body = json!({
            "eventFilters": self.filters,
            "deliveryMode": {"transportType": "WebSocket"},
        });
        let (status, answer) = request(
            socket,
            session,
            "POST",
            "/restapi/v1.0/subscription",
            Some(body),
        )
        .await?;
        if !(200..300).contains(&status) {
            let code = answer
                .as_ref()
                .and_then(|body| body.get("errorCode").and_then(Value::as_str))
                .unwrap_or("");
            return Err(format!(
                "RingCentral refused the WebSocket subscription ({status} {code}): the app may be missing a permission"
            ));
        }
        let info: super::wire::SubscriptionInfo = answer
            .map(serde_json::from_value)
            .transpose()
            .ok()
            .flatten()
            .ok_or_else(|| "RingCentral's subscription answer has no id".to_owned())?;
        tracing::info!(subscription_id = %info.id, "subscribed over RingCentral's WebSocket");
        let health = match subscription::disabled_filters(&info) {
            None => SubscriptionHealth::Active {
                id: info.id.clone(),
            },
            Some(problem) => SubscriptionHealth::Failing {
                reason: subscription::SubscriptionError::DisabledFilters(problem).to_string(),
            },
        };
        Ok((info.id, health))
    }

    /// Receives until the socket is lost or ringside stops.
    async fn serve(
        &self,
        socket: &mut Socket,
        session: &mut Session,
        subscription: Option<&str>,
        shutdown: &mut Shutdown,
    ) -> Ended {
        let silence = session.heartbeat_every * 2 + Duration::from_secs(10);
        loop {
            let heartbeat_at = session.last_sent + session.heartbeat_every;
            let dead_at = session.last_heard + silence;
            tokio::select! {
                frame = socket.next() => {
                    session.last_heard = Instant::now();
                    match frame {
                        Some(Ok(Message::Text(text))) => {
                            if let Some(lost) = self.frame(session, &text).await {
                                return Ended::Lost(lost);
                            }
                        }
                        Some(Ok(Message::Close(_))) | None => {
                            return Ended::Lost("the server closed the connection".into());
                        }
                        // Pings are answered by the library; pongs and binaries are life signs.
                        Some(Ok(_)) => {}
                        Some(Err(error)) => return Ended::Lost(format!("the connection failed: {error}")),
                    }
                }
                () = tokio::time::sleep_until(heartbeat_at) => {
                    let beat = json!([{"type": "Heartbeat", "messageId": message_id()}]);
                    if let Err(error) = send(socket, session, beat).await {
                        return Ended::Lost(error);
                    }
                    metrics::counter!("ringside_websocket_heartbeats_total").increment(1);
                }
                () = tokio::time::sleep_until(dead_at) => {
                    return Ended::Lost(format!("nothing heard for {}s", silence.as_secs()));
                }
                () = shutdown.recv() => {
                    self.unsubscribe(socket, session, subscription).await;
                    let _ = socket.close(None).await;
                    return Ended::Stopped;
                }
            }
        }
    }

    /// One text frame from the server; `Some(reason)` when it ends the connection.
    ///
    /// Only the header is parsed here; a notification's body is kept as the bytes RingCentral
    /// sent and parsed once, by the intake, like a webhook's.
    async fn frame(&self, session: &mut Session, text: &str) -> Option<String> {
        let Ok(parts) = serde_json::from_str::<Vec<&RawValue>>(text) else {
            tracing::debug!("RingCentral's WebSocket sent a frame that is not a JSON array");
            return None;
        };
        let header: FrameHeader = serde_json::from_str(parts.first()?.get()).ok()?;
        if let Some(wsc) = header.wsc.and_then(|wsc| wsc.token) {
            session.wsc = wsc;
        }
        match header.kind.as_deref() {
            Some("ServerNotification") => {
                let body = parts.get(1)?.get();
                metrics::counter!("ringside_websocket_notifications_total").increment(1);
                metrics::gauge!("ringside_websocket_last_message_unix_seconds")
                    .set(self.clock.now().unix_seconds() as f64);
                let bytes = Bytes::copy_from_slice(body.as_bytes());
                let meta = serde_json::to_string(&KeptSession::of(session, self.clock.now().0))
                    .ok()
                    .map(|text| (SESSION_KEY, text));
                let span = tracing::info_span!(
                    "notification",
                    uuid = tracing::field::Empty,
                    telephony_session_id = tracing::field::Empty
                );
                let taken = tracing::Instrument::instrument(
                    self.intake.take(bytes, self.clock.now(), meta),
                    span,
                )
                .await;
                if let Err(error) = taken {
                    // Not committed: the session is dropped so that RingCentral's recovery
                    // replays it, and the reconnect waits for the store like any attempt.
                    tracing::debug!(%error, "a WebSocket notification was not taken in");
                    return Some(format!("a notification could not be kept: {error}"));
                }
                None
            }
            Some("Error") => {
                let parts: Vec<Value> = parts
                    .iter()
                    .map(|part| serde_json::from_str(part.get()).unwrap_or(Value::Null))
                    .collect();
                Some(format!(
                    "RingCentral's WebSocket ended the session ({})",
                    error_code(&parts)
                ))
            }
            _ => None,
        }
    }

    async fn unsubscribe(
        &self,
        socket: &mut Socket,
        session: &mut Session,
        subscription: Option<&str>,
    ) {
        let Some(id) = subscription else {
            return;
        };
        let path = format!("/restapi/v1.0/subscription/{id}");
        match request(socket, session, "DELETE", &path, None).await {
            Ok((status, _)) if (200..300).contains(&status) || status == 404 => {
                tracing::info!(subscription_id = %id, "deleted the WebSocket subscription");
            }
            Ok((status, _)) => {
                tracing::warn!(
                    status,
                    "RingCentral did not delete the WebSocket subscription"
                )
            }
            Err(error) => tracing::warn!(%error, "could not delete the WebSocket subscription"),
        }
    }

    async fn kept_session(&self) -> Option<KeptSession> {
        let text = self.store.get_meta(SESSION_KEY).await.ok()??;
        serde_json::from_str(&text).ok()
    }

    async fn keep_session(&self, session: &Session) {
        let kept = KeptSession::of(session, self.clock.now().0);
        if let Ok(text) = serde_json::to_string(&kept) {
            let _ = self.store.set_meta(SESSION_KEY, &text).await;
        }
    }

    async fn forget_session(&self) {
        let _ = self.store.set_meta(SESSION_KEY, "").await;
    }
}

/// Why an attempt to connect failed.
enum Failure {
    /// RingCentral said when to come back (a rate limit).
    Wait(Duration, String),
    /// Anything else: back off.
    Retry(String),
}

/// The live connection's bookkeeping.
struct Session {
    wsc: String,
    heartbeat_every: Duration,
    recovery_timeout: Duration,
    /// Kept with the `wsc` for a restart (see [`KeptSession::subscription`]).
    subscription: Option<String>,
    /// When a text frame was last sent (RingCentral's idle timer counts only these).
    last_sent: Instant,
    last_heard: Instant,
}

/// What ringside reads of a frame's header: its type and the latest `wsc` token.
#[derive(Deserialize)]
struct FrameHeader {
    #[serde(rename = "type")]
    kind: Option<String>,
    wsc: Option<WscHeader>,
}

#[derive(Deserialize)]
struct WscHeader {
    token: Option<String>,
}

/// The `errorCode` of an `Error` frame's body (`WSG-902`, …), or "unknown".
fn error_code(parts: &[Value]) -> &str {
    parts
        .get(1)
        .and_then(|body| body.get("errorCode"))
        .and_then(Value::as_str)
        .unwrap_or("unknown")
}

/// min(60 s, idleTimeout/3), at least a second.
fn heartbeat_interval(idle_timeout: Option<Duration>) -> Duration {
    idle_timeout
        .map(|idle| (idle / 3).min(MAX_HEARTBEAT))
        .unwrap_or(MAX_HEARTBEAT)
        .max(Duration::from_secs(1))
}

fn message_id() -> String {
    random::hex(16).unwrap_or_else(|| format!("{:x}", random::SplitMix64::new(1).next_u64()))
}

async fn send(socket: &mut Socket, session: &mut Session, frame: Value) -> Result<(), String> {
    socket
        .send(Message::Text(frame.to_string()))
        .await
        .map_err(|error| format!("sending failed: {error}"))?;
    session.last_sent = Instant::now();
    Ok(())
}

/// A REST request over the socket, matched to its answer by `messageId` only; frames that are
/// not the answer (notifications arriving meanwhile) are left for the caller to see again
/// through RingCentral's recovery — ringside subscribes before anything else arrives, and
/// deletes only when stopping.
async fn request(
    socket: &mut Socket,
    session: &mut Session,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<(u16, Option<Value>), String> {
    let id = message_id();
    let mut frame =
        vec![json!({"type": "ClientRequest", "messageId": id, "method": method, "path": path})];
    frame.extend(body);
    send(socket, session, Value::Array(frame)).await?;
    let answer = async {
        while let Some(frame) = socket.next().await {
            let Message::Text(text) =
                frame.map_err(|error| format!("the connection failed: {error}"))?
            else {
                continue;
            };
            let Ok(Value::Array(parts)) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            let Some(header) = parts.first() else {
                continue;
            };
            if header.get("messageId").and_then(Value::as_str) == Some(id.as_str()) {
                let status = header
                    .get("status")
                    .and_then(Value::as_u64)
                    .and_then(|status| u16::try_from(status).ok())
                    .unwrap_or(0);
                return Ok((status, parts.get(1).cloned()));
            }
        }
        Err("the connection closed before RingCentral answered".to_owned())
    };
    tokio::time::timeout(ANSWER_TIMEOUT, answer)
        .await
        .map_err(|_| format!("no answer to {method} {path} over the WebSocket"))?
}

/// Waits for `ConnectionDetails` (an `Error` first ends the attempt).
async fn connection_details(socket: &mut Socket) -> Result<Details, String> {
    while let Some(frame) = socket.next().await {
        let frame = frame.map_err(|error| format!("the connection failed: {error}"))?;
        let text = match frame {
            Message::Text(text) => text,
            Message::Close(close) => {
                let code = close.map(|close| u16::from(close.code)).unwrap_or(0);
                return Err(format!(
                    "RingCentral's WebSocket closed the connection (code {code})"
                ));
            }
            _ => continue,
        };
        let Ok(Value::Array(parts)) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let Some(header) = parts.first() else {
            continue;
        };
        match header.get("type").and_then(Value::as_str) {
            Some("ConnectionDetails") => {
                let body = parts.get(1).cloned().unwrap_or(Value::Null);
                let seconds = |name: &str| {
                    body.get(name)
                        .and_then(Value::as_u64)
                        .map(Duration::from_secs)
                };
                return Ok(Details {
                    wsc: header
                        .pointer("/wsc/token")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    recovery_state: body
                        .get("recoveryState")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    recovery_error: body
                        .get("recoveryErrorCode")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    idle_timeout: seconds("idleTimeout"),
                    recovery_timeout: seconds("recoveryTimeout"),
                });
            }
            Some("Error") => {
                return Err(format!(
                    "RingCentral's WebSocket refused the connection ({})",
                    error_code(&parts)
                ));
            }
            _ => {}
        }
    }
    Err("the connection closed before ConnectionDetails".into())
}

/// Opens `url` (`ws://` or `wss://`); errors never show the URL (it carries the tokens).
async fn open(url: reqwest::Url) -> Result<Socket, String> {
    let host = url
        .host_str()
        .ok_or("RingCentral's WebSocket address has no host")?
        .to_owned();
    let tls = match url.scheme() {
        "wss" => true,
        "ws" => false,
        _ => return Err("RingCentral's WebSocket address is not ws:// or wss://".into()),
    };
    let port = url
        .port_or_known_default()
        .unwrap_or(if tls { 443 } else { 80 });
    let tcp = tokio::time::timeout(
        ANSWER_TIMEOUT,
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    .map_err(|_| format!("connecting to {host} timed out"))?
    .map_err(|error| format!("cannot connect to {host}: {error}"))?;
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Stream> = if tls {
        Box::new(tls_connect(&host, tcp).await?)
    } else {
        Box::new(tcp)
    };
    let request = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        url.as_str(),
    )
    .map_err(|_| "RingCentral's WebSocket address is not a valid request".to_owned())?;
    let (socket, _) = tokio::time::timeout(
        ANSWER_TIMEOUT,
        tokio_tungstenite::client_async(request, stream),
    )
    .await
    .map_err(|_| format!("the WebSocket handshake with {host} timed out"))?
    .map_err(|error| {
        format!(
            "the WebSocket handshake with {host} failed: {}",
            scrub(&error.to_string())
        )
    })?;
    Ok(socket)
}

/// Error texts may quote the request; nothing after a `?` is shown.
fn scrub(text: &str) -> String {
    match text.split_once('?') {
        Some((before, _)) => format!("{before}?…"),
        None => text.to_owned(),
    }
}

async fn tls_connect(
    host: &str,
    tcp: tokio::net::TcpStream,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|error| format!("TLS setup failed: {error}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|_| format!("{host} is not a valid TLS server name"))?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|error| format!("TLS with {host} failed: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_come_at_a_third_of_the_idle_timeout_and_at_least_every_minute() {
        assert_eq!(
            heartbeat_interval(Some(Duration::from_secs(1800))),
            Duration::from_secs(60)
        );
        assert_eq!(
            heartbeat_interval(Some(Duration::from_secs(6))),
            Duration::from_secs(2)
        );
        assert_eq!(heartbeat_interval(None), Duration::from_secs(60));
        assert_eq!(
            heartbeat_interval(Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn errors_never_show_the_query() {
        assert_eq!(
            scrub("HTTP error: 401 for ws://x/ws?access_token=secret&wsc=abc"),
            "HTTP error: 401 for ws://x/ws?…"
        );
    }
}
