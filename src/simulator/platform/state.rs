//! The platform's shared state, the delivery queue and small helpers (ids, times, errors,
//! form bodies).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::PlatformOptions;
use super::controller::ConferenceEntry;
use super::log::RequestRecord;
use super::oauth::TokenStore;
use super::rate::RateLimiter;
use super::subscriptions::{DeliveryRecord, Subscription};
use super::telephony::Sessions;

/// Everything the handlers, the controllers and the delivery worker share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) options: PlatformOptions,
    /// `http://127.0.0.1:PORT`, for `uri` fields.
    pub(crate) base_url: String,
    /// `ws://127.0.0.1:PORT` of the WebSocket gateway.
    ws_url: String,
    inner: Mutex<Inner>,
    queue: mpsc::UnboundedSender<Job>,
    /// For handshakes and deliveries; never goes through a proxy.
    pub(crate) http: reqwest::Client,
}

/// The mutable state, behind one lock (never held across an await).
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) tokens: TokenStore,
    pub(crate) subscriptions: Vec<Subscription>,
    pub(crate) sessions: Sessions,
    pub(crate) conferences: Vec<ConferenceEntry>,
    pub(crate) rate: RateLimiter,
    pub(crate) log: Vec<RequestRecord>,
    pub(crate) deliveries: Vec<DeliveryRecord>,
    pub(crate) lost: Vec<Value>,
    pub(crate) faults: Faults,
    /// Company directory entries: extension id → name.
    pub(crate) directory: HashMap<String, String>,
    pub(crate) ws: super::ws::WsState,
}

/// Misbehaviour of the kick endpoint, switched on by tests.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    /// Party ids whose DELETE answers 403.
    pub(crate) forbidden: HashSet<String>,
    /// Conference-side party ids whose DELETE answers 404 while the caller is on.
    pub(crate) hidden: HashSet<String>,
    /// Delay before answering a party DELETE.
    pub(crate) answer_delay: Duration,
    /// Deliver the leave notifications before answering.
    pub(crate) leave_before_answer: bool,
}

/// Work for the delivery worker: notifications to deliver in order.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) items: Vec<Outgoing>,
    pub(crate) not_before: Option<Instant>,
    pub(crate) done: oneshot::Sender<()>,
}

#[derive(Debug)]
pub(crate) enum Outgoing {
    /// A telephony notification for every subscription with a telephony filter.
    Telephony(Value),
    /// A notification for one subscription (a renewal reminder).
    Direct {
        subscription_id: String,
        body: Value,
        record: oneshot::Sender<Option<DeliveryRecord>>,
    },
}

impl Shared {
    pub(crate) fn new(
        options: PlatformOptions,
        base_url: String,
        ws_url: String,
    ) -> (Arc<Self>, JoinHandle<()>) {
        let (queue, jobs) = mpsc::unbounded_channel();
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("a plain HTTP client builds");
        let inner = Inner {
            tokens: TokenStore::default(),
            subscriptions: Vec::new(),
            sessions: Sessions::default(),
            conferences: Vec::new(),
            rate: RateLimiter::new(&options),
            log: Vec::new(),
            deliveries: Vec::new(),
            lost: Vec::new(),
            faults: Faults::default(),
            directory: options.directory.iter().cloned().collect(),
            ws: super::ws::WsState::default(),
        };
        let shared = Arc::new(Self {
            options,
            base_url,
            ws_url,
            inner: Mutex::new(inner),
            queue,
            http,
        });
        let worker = tokio::spawn(super::subscriptions::delivery_worker(
            Arc::downgrade(&shared),
            jobs,
        ));
        (shared, worker)
    }

    /// `ws://127.0.0.1:PORT` of the WebSocket gateway.
    pub(crate) fn ws_url(&self) -> &str {
        &self.ws_url
    }

    /// The state. A panic while it was held (a misused script) does not poison it for good.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues telephony notifications for delivery, in order after everything queued before;
    /// the receiver fires once they are delivered. Call it while holding the state lock so the
    /// queue order is the order the state changed in.
    pub(crate) fn enqueue(
        &self,
        notifications: Vec<Value>,
        not_before: Option<Instant>,
    ) -> oneshot::Receiver<()> {
        self.enqueue_items(
            notifications.into_iter().map(Outgoing::Telephony).collect(),
            not_before,
        )
    }

    pub(crate) fn enqueue_items(
        &self,
        items: Vec<Outgoing>,
        not_before: Option<Instant>,
    ) -> oneshot::Receiver<()> {
        let (done, receiver) = oneshot::channel();
        let job = Job {
            items,
            not_before,
            done,
        };
        if self.queue.send(job).is_err() {
            tracing::debug!("simulated platform stopped; notifications dropped");
        }
        receiver
    }

    /// Waits for everything queued so far.
    pub(crate) async fn flush(&self) {
        let _ = self.enqueue(Vec::new(), None).await;
    }
}

impl Inner {
    /// Forgets subscriptions past their expiration time.
    pub(crate) fn prune_subscriptions(&mut self) {
        let now = Instant::now();
        self.subscriptions.retain(|sub| sub.expires_at > now);
    }

    pub(crate) fn blacklist(&mut self, id: &str, reason: &str) -> bool {
        match self.subscriptions.iter_mut().find(|sub| sub.id == id) {
            Some(sub) => {
                sub.blacklist(reason);
                true
            }
            None => false,
        }
    }
}

/// A RingCentral API error answer: `{"errorCode","message","errors":[…]}`.
pub(crate) fn api_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({
        "errorCode": code,
        "message": message,
        "errors": [{"errorCode": code, "message": message}],
    });
    (status, Json(body)).into_response()
}

/// An OAuth error answer: `{"error","error_description","errors":[…]}`.
pub(crate) fn oauth_error(
    status: StatusCode,
    error: &str,
    code: &str,
    description: &str,
) -> Response {
    let body = json!({
        "error": error,
        "error_description": description,
        "errors": [{"errorCode": code, "message": description}],
    });
    (status, Json(body)).into_response()
}

/// Unknown paths and methods.
pub(crate) async fn not_found() -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "CMN-102",
        "Resource for parameter [path] is not found",
    )
}

/// RFC 3339 with milliseconds and `Z`, as RingCentral writes times.
const WIRE_TIME: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

pub(crate) fn wire_time(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(WIRE_TIME)
        .expect("times format")
}

/// `bytes` random bytes as lower-case hex.
pub(crate) fn random_hex(bytes: usize) -> String {
    crate::util::random::hex(bytes).expect("the OS has randomness")
}

/// A random id shaped like a UUID.
pub(crate) fn random_uuid() -> String {
    let hex = random_hex(16);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Seconds in `duration`, rounded up.
pub(crate) fn whole_seconds(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

/// Decodes an `application/x-www-form-urlencoded` body (or query). Later keys win.
pub(crate) fn form_decode(text: &str) -> HashMap<String, String> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => out.push(b' '),
            b'%' if index + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).ok();
                match hex.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        index += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes standard base64 (padding optional); `None` on anything else.
pub(crate) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn value(symbol: u8) -> Option<u32> {
        match symbol {
            b'A'..=b'Z' => Some(u32::from(symbol - b'A')),
            b'a'..=b'z' => Some(u32::from(symbol - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(symbol - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let symbols = text.trim_end_matches('=').as_bytes();
    if symbols.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(symbols.len() * 3 / 4);
    for chunk in symbols.chunks(4) {
        let mut acc = 0_u32;
        for &symbol in chunk {
            acc = (acc << 6) | value(symbol)?;
        }
        acc <<= 6 * (4 - chunk.len() as u32);
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod helper_tests {
    use super::*;

    #[test]
    fn base64_decodes_basic_credentials() {
        assert_eq!(
            base64_decode("c2ltLWNsaWVudC1pZDpzaW0tY2xpZW50LXNlY3JldA==").as_deref(),
            Some(&b"sim-client-id:sim-client-secret"[..])
        );
        assert_eq!(base64_decode("YQ").as_deref(), Some(&b"a"[..]));
        assert_eq!(base64_decode("YWI").as_deref(), Some(&b"ab"[..]));
        assert_eq!(base64_decode("!!!!"), None);
    }

    #[test]
    fn form_bodies_are_percent_decoded() {
        let form = form_decode(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a+b%2Fc&x",
        );
        assert_eq!(
            form["grant_type"],
            "urn:ietf:params:oauth:grant-type:jwt-bearer"
        );
        assert_eq!(form["assertion"], "a b/c");
        assert_eq!(form["x"], "");
        assert_eq!(form_decode("a=%zz%4")["a"], "%zz%4");
    }
}
