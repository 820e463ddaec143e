//! ringside's own Discord REST poster for announcements: a plain reqwest client that sees every
//! status and header (serenity's own client hides them: `docs/architecture.md`), so it can pace itself by Discord's rate-limit buckets and tell
//! the announcer exactly what happened.
//!
//! One call is one request. Before it, the poster waits until the route's bucket (and the global
//! limit) allows a request: a bucket whose `X-RateLimit-Remaining` reached 0 is closed until its
//! `X-RateLimit-Reset-After`, and a 429 closes the bucket — or every bucket, when global — for its
//! `retry_after`. The answer is classified for the announcer: rate limited (resend the same body
//! after the wait), refused for good (park it), unauthorized (a configuration problem: keep it and
//! retry slowly), transient (retry with backoff; safe because every message has an enforced
//! nonce).
//!
//! The bot token is only ever put in the `Authorization` header: it is in no log, error or
//! `Debug` output.

use crate::discord::api::DiscordApi;
use crate::store::BatchFile;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;
use tokio::time::Instant;

/// How long a 429 without any `retry_after` closes its bucket.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// The shortest wait after a 429, whatever it says: a `retry_after` of 0 must not turn into a
/// resend loop (every 429 counts toward Discord's invalid-request limit, whose penalty is an IP
/// ban).
const MIN_RETRY_AFTER: Duration = Duration::from_millis(250);
/// The longest wait a rate-limit answer can impose (a bogus header cannot stall us for days).
const MAX_WAIT: Duration = Duration::from_secs(3600);
/// The most characters of Discord's error message kept.
const MAX_ERROR_CHARS: usize = 300;

/// What a boxed [`Post`] call returns.
pub type PostFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, PostError>> + Send + 'a>>;

/// The port the announcer delivers through: ringside's [`Poster`] in production, an in-memory
/// poster in the announcer's tests (which then run on a paused clock).
pub trait Post: Send + Sync + 'static {
    /// `POST /channels/{channel_id}/messages` with `body` (JSON) as is; with `files`, as
    /// multipart: `body` as `payload_json` (its `attachments` names them) and `files[n]`.
    fn post_message<'a>(
        &'a self,
        channel_id: u64,
        body: &'a str,
        files: &'a [BatchFile],
    ) -> PostFuture<'a, PostedMessage>;

    /// `PATCH /channels/{channel_id}/messages/{message_id}` with `body` (JSON), or multipart
    /// with `files` as [`Post::post_message`] sends them. Edits have their own bucket.
    fn edit_message<'a>(
        &'a self,
        channel_id: u64,
        message_id: &'a str,
        body: &'a str,
        files: &'a [BatchFile],
    ) -> PostFuture<'a, PostedMessage>;

    /// When a message to `channel_id` can be posted without waiting on a rate limit (the
    /// channel's create-message bucket and the global limit); `None`: now. The announcer asks
    /// before it plans the next message, so events that arrive while the bucket is empty share
    /// that message instead of queueing behind it.
    fn message_open_at(&self, channel_id: u64) -> Option<Instant>;

    /// A public thread started from a message; answers the thread's channel id.
    fn create_thread_from_message<'a>(
        &'a self,
        channel_id: u64,
        message_id: &'a str,
        name: &'a str,
    ) -> PostFuture<'a, String>;
}

impl Post for Poster {
    fn post_message<'a>(
        &'a self,
        channel_id: u64,
        body: &'a str,
        files: &'a [BatchFile],
    ) -> PostFuture<'a, PostedMessage> {
        Box::pin(Poster::post_message(self, channel_id, body, files))
    }

    fn edit_message<'a>(
        &'a self,
        channel_id: u64,
        message_id: &'a str,
        body: &'a str,
        files: &'a [BatchFile],
    ) -> PostFuture<'a, PostedMessage> {
        Box::pin(Poster::edit_message(
            self, channel_id, message_id, body, files,
        ))
    }

    fn message_open_at(&self, channel_id: u64) -> Option<Instant> {
        Poster::message_open_at(self, channel_id)
    }

    fn create_thread_from_message<'a>(
        &'a self,
        channel_id: u64,
        message_id: &'a str,
        name: &'a str,
    ) -> PostFuture<'a, String> {
        Box::pin(Poster::create_thread_from_message(
            self, channel_id, message_id, name,
        ))
    }
}

/// A message Discord created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedMessage {
    pub id: String,
}

/// Why a request did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    /// 429: nothing goes to the bucket (every bucket when `global`) before `retry_after` passes;
    /// the poster waits that out itself before the next request.
    #[error("Discord rate-limited the request ({scope} limit); retry after {retry_after:?}")]
    RateLimited {
        retry_after: Duration,
        global: bool,
        scope: String,
    },
    /// 400, 403, 404 and the other 4xx: sending it again would get the same answer.
    #[error("Discord refused the request with status {status}{}: {message}",
        code.map(|code| format!(" (code {code})")).unwrap_or_default())]
    Refused {
        status: u16,
        code: Option<u64>,
        message: String,
    },
    /// 401: the bot token is wrong or revoked. Nothing is lost; it is retried slowly.
    #[error("Discord does not accept ringside's bot token (401): check discord.token")]
    Unauthorized,
    /// 5xx, a timeout, a connection failure or an unreadable answer: retried with backoff.
    #[error("Discord could not be reached or failed: {reason}")]
    Transient { status: Option<u16>, reason: String },
}

/// Whether Discord answered ringside recently (`/readyz` reads it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reachability {
    /// No request has been made yet.
    Unknown,
    /// The last request got an answer from Discord (a rate limit or a refusal included).
    Reachable { at: SystemTime },
    /// Requests fail (no connection, timeouts, 5xx) since `since`.
    Unreachable { since: SystemTime, reason: String },
    /// Discord refuses the token since `since`.
    Unauthorized { since: SystemTime },
}

impl Reachability {
    /// Whether announcements can currently get through.
    pub fn is_ok(&self) -> bool {
        matches!(self, Reachability::Unknown | Reachability::Reachable { .. })
    }
}

/// Which requests share a rate-limit bucket: the route with its major parameter (the channel).
#[derive(Debug, Clone)]
struct Route {
    /// `POST /channels/{channel_id}/messages`: the metrics label (no ids).
    template: &'static str,
    /// The template with its major parameter filled in: the key until Discord names the bucket.
    key: String,
    major: u64,
}

#[derive(Debug, Default)]
struct Limits {
    /// Route key → the bucket Discord named for it (`X-RateLimit-Bucket`).
    buckets: HashMap<String, String>,
    /// Bucket key → no request before this.
    closed_until: HashMap<String, Instant>,
    global_until: Option<Instant>,
}

impl Limits {
    fn bucket_key(&self, route: &Route) -> String {
        match self.buckets.get(&route.key) {
            Some(bucket) => format!("{bucket}:{}", route.major),
            None => route.key.clone(),
        }
    }

    /// When the next request on `route` may go.
    fn open_at(&self, route: &Route) -> Option<Instant> {
        let bucket = self.closed_until.get(&self.bucket_key(route)).copied();
        match (bucket, self.global_until) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The announcer's Discord client.
pub struct Poster {
    api: DiscordApi,
    client: reqwest::Client,
    limits: Mutex<Limits>,
    reachability: watch::Sender<Reachability>,
}

impl std::fmt::Debug for Poster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poster")
            .field("api", &self.api)
            .field("reachability", &*self.reachability.borrow())
            .finish_non_exhaustive()
    }
}

/// The rate-limit headers of one answer.
#[derive(Debug, Default)]
struct RateHeaders {
    remaining: Option<u64>,
    reset_after: Option<Duration>,
    bucket: Option<String>,
    retry_after: Option<Duration>,
    global: bool,
    scope: Option<String>,
}

fn seconds(value: f64) -> Option<Duration> {
    (value.is_finite() && value >= 0.0).then(|| Duration::from_secs_f64(value).min(MAX_WAIT))
}

impl RateHeaders {
    fn read(headers: &reqwest::header::HeaderMap) -> RateHeaders {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::trim)
        };
        RateHeaders {
            remaining: text("x-ratelimit-remaining").and_then(|v| v.parse().ok()),
            reset_after: text("x-ratelimit-reset-after")
                .and_then(|v| v.parse().ok())
                .and_then(seconds),
            bucket: text("x-ratelimit-bucket")
                .filter(|v| !v.is_empty())
                .map(str::to_owned),
            retry_after: text("retry-after")
                .and_then(|v| v.parse().ok())
                .and_then(seconds),
            global: text("x-ratelimit-global").is_some_and(|v| v.eq_ignore_ascii_case("true")),
            scope: text("x-ratelimit-scope").map(str::to_owned),
        }
    }
}

/// Discord's error body: `{ "message": …, "code": …, "retry_after": …, "global": … }`.
#[derive(Debug, Default, serde::Deserialize)]
struct ErrorBody {
    message: Option<String>,
    code: Option<u64>,
    retry_after: Option<f64>,
    global: Option<bool>,
}

impl Poster {
    pub fn new(api: DiscordApi) -> anyhow::Result<Poster> {
        let client = api.http_client()?;
        Ok(Poster {
            api,
            client,
            limits: Mutex::default(),
            reachability: watch::Sender::new(Reachability::Unknown),
        })
    }

    /// Whether Discord answered recently, and since when it has not; changes as requests go.
    pub fn reachability(&self) -> watch::Receiver<Reachability> {
        self.reachability.subscribe()
    }

    /// `POST /channels/{channel_id}/messages` with `body` (JSON) as is, or multipart with
    /// `files`.
    pub async fn post_message(
        &self,
        channel_id: u64,
        body: &str,
        files: &[BatchFile],
    ) -> Result<PostedMessage, PostError> {
        let route = message_route(channel_id);
        let url = self.api.url(&format!("/channels/{channel_id}/messages"));
        let answer = self
            .request(&route, reqwest::Method::POST, &url, body, files)
            .await?;
        Ok(PostedMessage {
            id: snowflake(&answer)?,
        })
    }

    /// `PATCH /channels/{channel_id}/messages/{message_id}` with `body` (JSON) as is, or
    /// multipart with `files`. A deleted message answers [`PostError::Refused`] with status 404
    /// and code [`UNKNOWN_MESSAGE`].
    pub async fn edit_message(
        &self,
        channel_id: u64,
        message_id: &str,
        body: &str,
        files: &[BatchFile],
    ) -> Result<PostedMessage, PostError> {
        let route = Route {
            template: "PATCH /channels/{channel_id}/messages/{message_id}",
            key: format!("PATCH /channels/{channel_id}/messages/{{message_id}}"),
            major: channel_id,
        };
        let url = self
            .api
            .url(&format!("/channels/{channel_id}/messages/{message_id}"));
        let answer = self
            .request(&route, reqwest::Method::PATCH, &url, body, files)
            .await?;
        Ok(PostedMessage {
            id: snowflake(&answer)?,
        })
    }

    /// When `POST /channels/{channel_id}/messages` may go without waiting (its bucket and the
    /// global limit); `None`: now.
    pub fn message_open_at(&self, channel_id: u64) -> Option<Instant> {
        let route = message_route(channel_id);
        self.limits
            .lock()
            .ok()
            .and_then(|limits| limits.open_at(&route))
            .filter(|at| *at > Instant::now())
    }

    /// `POST /channels/{channel_id}/messages/{message_id}/threads`: a public thread started from
    /// the message, archived after a day of silence; answers the thread's channel id.
    pub async fn create_thread_from_message(
        &self,
        channel_id: u64,
        message_id: &str,
        name: &str,
    ) -> Result<String, PostError> {
        let route = Route {
            template: "POST /channels/{channel_id}/messages/{message_id}/threads",
            key: format!("POST /channels/{channel_id}/messages/{{message_id}}/threads"),
            major: channel_id,
        };
        let url = self.api.url(&format!(
            "/channels/{channel_id}/messages/{message_id}/threads"
        ));
        let body = serde_json::json!({ "name": name, "auto_archive_duration": 1440 }).to_string();
        let answer = self
            .request(&route, reqwest::Method::POST, &url, &body, &[])
            .await?;
        snowflake(&answer)
    }

    /// Waits until the route's bucket is open, then sends one request (`body` as JSON, or as
    /// `payload_json` of a multipart form with `files`); answers its JSON body.
    async fn request(
        &self,
        route: &Route,
        method: reqwest::Method,
        url: &str,
        body: &str,
        files: &[BatchFile],
    ) -> Result<serde_json::Value, PostError> {
        loop {
            let open_at = self
                .limits
                .lock()
                .map(|limits| limits.open_at(route))
                .unwrap_or(None);
            match open_at {
                Some(at) if at > Instant::now() => tokio::time::sleep_until(at).await,
                _ => break,
            }
        }
        let started = Instant::now();
        let request = self
            .client
            .request(method, url)
            .header(reqwest::header::AUTHORIZATION, self.api.authorization());
        let request = if files.is_empty() {
            request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_owned())
        } else {
            request.multipart(multipart(body, files))
        };
        let sent = request.send().await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => {
                let reason = if error.is_timeout() {
                    "the request timed out".to_owned()
                } else if error.is_connect() {
                    "no connection".to_owned()
                } else {
                    "the request failed".to_owned()
                };
                self.finish_metrics(route, "error", started);
                self.unreachable(&reason);
                tracing::debug!(route = route.template, error = %error.without_url(), "Discord request failed");
                return Err(PostError::Transient {
                    status: None,
                    reason,
                });
            }
        };
        let status = response.status();
        let headers = RateHeaders::read(response.headers());
        let text = response.text().await;
        self.finish_metrics(route, status.as_str(), started);
        self.note_limits(route, &headers);
        let text = match text {
            Ok(text) => text,
            Err(_) if status.is_success() => {
                self.unreachable("the answer was cut off");
                return Err(PostError::Transient {
                    status: Some(status.as_u16()),
                    reason: "the answer was cut off".into(),
                });
            }
            Err(_) => String::new(),
        };
        if status.is_success() {
            self.reachable();
            return serde_json::from_str(&text).map_err(|_| PostError::Transient {
                status: Some(status.as_u16()),
                reason: "the answer was not JSON".into(),
            });
        }
        let error: ErrorBody = serde_json::from_str(&text).unwrap_or_default();
        match status.as_u16() {
            429 => {
                self.reachable();
                let retry_after = error
                    .retry_after
                    .and_then(seconds)
                    .or(headers.retry_after)
                    .unwrap_or(DEFAULT_RETRY_AFTER)
                    .max(MIN_RETRY_AFTER);
                let global = headers.global || error.global.unwrap_or(false);
                let scope = headers
                    .scope
                    .clone()
                    .unwrap_or_else(|| if global { "global" } else { "user" }.to_owned());
                self.close(route, retry_after, global);
                metrics::counter!("ringside_discord_rate_limited_total", "scope" => scope.clone())
                    .increment(1);
                tracing::warn!(
                    route = route.template,
                    retry_after_secs = retry_after.as_secs_f64(),
                    global,
                    %scope,
                    "Discord rate limit hit"
                );
                Err(PostError::RateLimited {
                    retry_after,
                    global,
                    scope,
                })
            }
            401 => {
                self.unauthorized();
                Err(PostError::Unauthorized)
            }
            code if status.is_client_error() => {
                self.reachable();
                let message: String = error
                    .message
                    .unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_owned())
                    .chars()
                    .take(MAX_ERROR_CHARS)
                    .collect();
                Err(PostError::Refused {
                    status: code,
                    code: error.code,
                    message,
                })
            }
            code => {
                let reason = format!("Discord answered {code}");
                self.unreachable(&reason);
                Err(PostError::Transient {
                    status: Some(code),
                    reason,
                })
            }
        }
    }

    fn finish_metrics(&self, route: &Route, status: &str, started: Instant) {
        metrics::counter!(
            "ringside_discord_requests_total",
            "route" => route.template,
            "status" => status.to_owned()
        )
        .increment(1);
        metrics::histogram!("ringside_discord_request_seconds", "route" => route.template)
            .record(started.elapsed().as_secs_f64());
    }

    /// Keeps what the answer said about the route's bucket.
    fn note_limits(&self, route: &Route, headers: &RateHeaders) {
        let Ok(mut limits) = self.limits.lock() else {
            return;
        };
        if let Some(bucket) = &headers.bucket {
            limits.buckets.insert(route.key.clone(), bucket.clone());
        }
        if headers.remaining == Some(0)
            && let Some(reset_after) = headers.reset_after
        {
            let key = limits.bucket_key(route);
            let until = Instant::now() + reset_after;
            let entry = limits.closed_until.entry(key).or_insert(until);
            *entry = (*entry).max(until);
        }
        let now = Instant::now();
        limits.closed_until.retain(|_, until| *until > now);
    }

    /// After a 429: no request to the bucket (or any, when global) for `wait`.
    fn close(&self, route: &Route, wait: Duration, global: bool) {
        let Ok(mut limits) = self.limits.lock() else {
            return;
        };
        let until = Instant::now() + wait;
        if global {
            limits.global_until = Some(limits.global_until.map_or(until, |at| at.max(until)));
        } else {
            let key = limits.bucket_key(route);
            let entry = limits.closed_until.entry(key).or_insert(until);
            *entry = (*entry).max(until);
        }
    }

    fn reachable(&self) {
        self.reachability.send_replace(Reachability::Reachable {
            at: SystemTime::now(),
        });
    }

    fn unreachable(&self, reason: &str) {
        self.reachability.send_modify(|state| {
            let since = match state {
                Reachability::Unreachable { since, .. } => *since,
                _ => SystemTime::now(),
            };
            *state = Reachability::Unreachable {
                since,
                reason: reason.to_owned(),
            };
        });
    }

    fn unauthorized(&self) {
        self.reachability.send_if_modified(|state| {
            if matches!(state, Reachability::Unauthorized { .. }) {
                return false;
            }
            *state = Reachability::Unauthorized {
                since: SystemTime::now(),
            };
            true
        });
    }
}

/// Discord's error code for a message that does not exist (deleted by someone).
pub const UNKNOWN_MESSAGE: u64 = 10008;

impl PostError {
    /// Whether the message an edit named is gone (someone deleted it): 404 with code
    /// [`UNKNOWN_MESSAGE`].
    pub fn is_unknown_message(&self) -> bool {
        matches!(
            self,
            PostError::Refused {
                status: 404,
                code: Some(UNKNOWN_MESSAGE),
                ..
            }
        )
    }
}

/// Discord's upload form: the JSON body as `payload_json`, each file as `files[n]` (the body's
/// `attachments` entry with id `n` describes it).
fn multipart(body: &str, files: &[BatchFile]) -> reqwest::multipart::Form {
    let payload = reqwest::multipart::Part::text(body.to_owned())
        .mime_str("application/json")
        .unwrap_or_else(|_| reqwest::multipart::Part::text(body.to_owned()));
    let mut form = reqwest::multipart::Form::new().part("payload_json", payload);
    for (index, file) in files.iter().enumerate() {
        let part =
            reqwest::multipart::Part::bytes(file.bytes.clone()).file_name(file.filename.clone());
        let part = match part.mime_str(content_type(&file.filename)) {
            Ok(part) => part,
            Err(_) => {
                reqwest::multipart::Part::bytes(file.bytes.clone()).file_name(file.filename.clone())
            }
        };
        form = form.part(format!("files[{index}]"), part);
    }
    form
}

/// The content type of an uploaded file, by its name (ringside uploads PNG pictures).
fn content_type(filename: &str) -> &'static str {
    if filename.to_ascii_lowercase().ends_with(".png") {
        "image/png"
    } else {
        "application/octet-stream"
    }
}

/// The route of creating a message in `channel_id` (the bucket every announcement goes through).
fn message_route(channel_id: u64) -> Route {
    Route {
        template: "POST /channels/{channel_id}/messages",
        key: format!("POST /channels/{channel_id}/messages"),
        major: channel_id,
    }
}

/// The `id` of a created message or channel.
fn snowflake(answer: &serde_json::Value) -> Result<String, PostError> {
    answer
        .get("id")
        .and_then(|id| match id {
            serde_json::Value::String(id) => Some(id.clone()),
            serde_json::Value::Number(id) => Some(id.to_string()),
            _ => None,
        })
        .ok_or_else(|| PostError::Transient {
            status: None,
            reason: "the answer had no id".into(),
        })
}

/// A minimal Discord fake for tests: records every POST and answers as scripted.
#[cfg(test)]
pub(crate) mod fake {
    use axum::Router;
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, HeaderValue, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::post;
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};
    use tokio::time::Instant;

    /// What the next POST gets instead of a success.
    #[derive(Debug, Clone)]
    pub enum Scripted {
        /// 429 with `retry_after` in the body (and the matching headers).
        RateLimited { retry_after: f64, global: bool },
        /// A status with Discord's error body.
        Status(u16, u64, &'static str),
    }

    /// One request the fake received.
    #[derive(Debug, Clone)]
    pub struct Received {
        pub at: Instant,
        pub path: String,
        pub authorization: Option<String>,
        pub body: serde_json::Value,
        /// What the answer was (a status).
        pub status: u16,
        /// What the check hook said at receipt (e.g. "the nonce is in the store").
        pub check: Option<bool>,
    }

    /// What a receive hook answers.
    pub type CheckFuture = std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>;
    type Check = Arc<dyn Fn(&serde_json::Value) -> CheckFuture + Send + Sync>;

    #[derive(Default)]
    struct Recorded {
        received: Vec<Received>,
        script: VecDeque<Scripted>,
        next_id: u64,
        /// Headers to send with every success (e.g. a bucket and remaining 0).
        remaining_zero_for: Option<f64>,
    }

    #[derive(Clone)]
    pub struct FakeDiscord {
        state: Arc<Mutex<Recorded>>,
        check: Arc<Mutex<Option<Check>>>,
        pub base_url: String,
    }

    impl FakeDiscord {
        pub async fn start() -> FakeDiscord {
            let fake = FakeDiscord {
                state: Arc::default(),
                check: Arc::default(),
                base_url: String::new(),
            };
            let app = Router::new()
                .route("/api/v10/channels/{channel}/messages", post(message))
                .route(
                    "/api/v10/channels/{channel}/messages/{message}/threads",
                    post(thread),
                )
                .with_state(fake.clone());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            FakeDiscord {
                base_url: format!("http://{addr}"),
                ..fake
            }
        }

        pub fn script(&self, answer: Scripted) {
            self.state.lock().unwrap().script.push_back(answer);
        }

        /// Every success says the bucket is empty for `reset_after` seconds.
        pub fn exhaust_bucket(&self, reset_after: f64) {
            self.state.lock().unwrap().remaining_zero_for = Some(reset_after);
        }

        /// Runs `check` on every POST body when it arrives.
        pub fn on_receive(
            &self,
            check: impl Fn(&serde_json::Value) -> CheckFuture + Send + Sync + 'static,
        ) {
            *self.check.lock().unwrap() = Some(Arc::new(check));
        }

        pub fn received(&self) -> Vec<Received> {
            self.state.lock().unwrap().received.clone()
        }

        /// The bodies of the messages answered 200, in order.
        pub fn posted(&self) -> Vec<Received> {
            self.received()
                .into_iter()
                .filter(|r| r.status == 200 && r.path.ends_with("/messages"))
                .collect()
        }
    }

    async fn answer(fake: FakeDiscord, path: String, headers: HeaderMap, body: String) -> Response {
        let body: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let check = fake.check.lock().unwrap().clone();
        let check = match check {
            Some(check) => Some(check(&body).await),
            None => None,
        };
        let authorization = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut state = fake.state.lock().unwrap();
        let scripted = state.script.pop_front();
        state.next_id += 1;
        let id = 1_000_000_000_000_000_000 + state.next_id;
        let (status, response) = match scripted {
            None => {
                let mut response = (
                    StatusCode::OK,
                    axum::Json(serde_json::json!({ "id": id.to_string() })),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert("x-ratelimit-bucket", HeaderValue::from_static("abcd1234"));
                if let Some(reset) = state.remaining_zero_for {
                    let h = response.headers_mut();
                    h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
                    h.insert(
                        "x-ratelimit-reset-after",
                        HeaderValue::from_str(&reset.to_string()).unwrap(),
                    );
                }
                (200, response)
            }
            Some(Scripted::RateLimited {
                retry_after,
                global,
            }) => {
                let mut response = (
                    StatusCode::TOO_MANY_REQUESTS,
                    axum::Json(serde_json::json!({
                        "message": "You are being rate limited.",
                        "retry_after": retry_after,
                        "global": global,
                    })),
                )
                    .into_response();
                let h = response.headers_mut();
                h.insert(
                    "retry-after",
                    HeaderValue::from_str(&(retry_after.ceil() as u64).to_string()).unwrap(),
                );
                h.insert("x-ratelimit-scope", HeaderValue::from_static("user"));
                if global {
                    h.insert("x-ratelimit-global", HeaderValue::from_static("true"));
                }
                (429, response)
            }
            Some(Scripted::Status(status, code, message)) => (
                status,
                (
                    StatusCode::from_u16(status).unwrap(),
                    axum::Json(serde_json::json!({ "message": message, "code": code })),
                )
                    .into_response(),
            ),
        };
        state.received.push(Received {
            at: Instant::now(),
            path,
            authorization,
            body,
            status,
            check,
        });
        response
    }

    async fn message(
        State(fake): State<FakeDiscord>,
        Path(channel): Path<String>,
        headers: HeaderMap,
        body: String,
    ) -> Response {
        answer(fake, format!("/channels/{channel}/messages"), headers, body).await
    }

    async fn thread(
        State(fake): State<FakeDiscord>,
        Path((channel, message)): Path<(String, String)>,
        headers: HeaderMap,
        body: String,
    ) -> Response {
        answer(
            fake,
            format!("/channels/{channel}/messages/{message}/threads"),
            headers,
            body,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::fake::{FakeDiscord, Scripted};
    use super::*;
    use secrecy::SecretString;

    pub(crate) fn api(base_url: &str) -> DiscordApi {
        DiscordApi {
            base_url: base_url.to_owned(),
            token: SecretString::from("sekrit-token-value"),
            application_id: 1,
            guild_id: 2,
            channel_id: 100,
        }
    }

    #[tokio::test]
    async fn a_message_is_posted_with_the_bot_token_and_its_id_is_answered() {
        let fake = FakeDiscord::start().await;
        let poster = Poster::new(api(&fake.base_url)).unwrap();
        assert_eq!(*poster.reachability().borrow(), Reachability::Unknown);
        let posted = poster
            .post_message(100, r#"{"content":"hi"}"#, &[])
            .await
            .unwrap();
        assert!(!posted.id.is_empty());
        let received = fake.received();
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].path, "/channels/100/messages");
        assert_eq!(
            received[0].authorization.as_deref(),
            Some("Bot sekrit-token-value")
        );
        assert!(poster.reachability().borrow().is_ok());
        let thread = poster
            .create_thread_from_message(100, &posted.id, "Agent 122")
            .await
            .unwrap();
        assert!(!thread.is_empty());
        let received = fake.received();
        assert_eq!(received[1].body["name"], "Agent 122");
        assert_eq!(received[1].body["auto_archive_duration"], 1440);
        assert!(!format!("{poster:?}").contains("sekrit"));
    }

    #[tokio::test]
    async fn a_429_closes_the_bucket_until_retry_after_passes() {
        let fake = FakeDiscord::start().await;
        let poster = Poster::new(api(&fake.base_url)).unwrap();
        fake.script(Scripted::RateLimited {
            retry_after: 0.6,
            global: false,
        });
        let error = poster.post_message(100, "{}", &[]).await.unwrap_err();
        assert!(
            matches!(error, PostError::RateLimited { retry_after, global: false, .. }
                if retry_after == Duration::from_millis(600)),
            "{error:?}"
        );
        poster.post_message(100, "{}", &[]).await.unwrap();
        let received = fake.received();
        assert!(received[1].at.duration_since(received[0].at) >= Duration::from_millis(590));
    }

    #[tokio::test]
    async fn a_429_that_says_wait_zero_still_waits_a_little() {
        let fake = FakeDiscord::start().await;
        let poster = Poster::new(api(&fake.base_url)).unwrap();
        fake.script(Scripted::RateLimited {
            retry_after: 0.0,
            global: false,
        });
        let error = poster.post_message(100, "{}", &[]).await.unwrap_err();
        assert!(
            matches!(error, PostError::RateLimited { retry_after, .. } if retry_after == MIN_RETRY_AFTER),
            "{error:?}"
        );
        poster.post_message(100, "{}", &[]).await.unwrap();
        let received = fake.received();
        assert!(received[1].at.duration_since(received[0].at) >= MIN_RETRY_AFTER);
    }

    #[tokio::test]
    async fn an_empty_bucket_waits_for_its_reset() {
        let fake = FakeDiscord::start().await;
        let poster = Poster::new(api(&fake.base_url)).unwrap();
        fake.exhaust_bucket(0.5);
        poster.post_message(100, "{}", &[]).await.unwrap();
        poster.post_message(100, "{}", &[]).await.unwrap();
        let received = fake.received();
        assert!(received[1].at.duration_since(received[0].at) >= Duration::from_millis(490));
    }

    #[tokio::test]
    async fn an_empty_bucket_says_when_the_channel_can_take_a_message_again() {
        let fake = FakeDiscord::start().await;
        let poster = Poster::new(api(&fake.base_url)).unwrap();
        assert_eq!(poster.message_open_at(100), None, "nothing known yet: open");
        poster.post_message(100, "{}", &[]).await.unwrap();
        assert_eq!(poster.message_open_at(100), None, "room left: open");
        fake.exhaust_bucket(30.0);
        let before = Instant::now();
        poster.post_message(100, "{}", &[]).await.unwrap();
        let open_at = poster.message_open_at(100).expect("the bucket is empty");
        assert!(
            open_at >= before + Duration::from_secs(29),
            "{:?}",
            open_at - before
        );
        assert_eq!(
            poster.message_open_at(200),
            None,
            "another channel's bucket is its own"
        );
    }

    #[tokio::test]
    async fn answers_are_classified_for_the_announcer() {
        let fake = FakeDiscord::start().await;
        let poster = Poster::new(api(&fake.base_url)).unwrap();
        fake.script(Scripted::Status(403, 50001, "Missing Access"));
        fake.script(Scripted::Status(401, 0, "401: Unauthorized"));
        fake.script(Scripted::Status(502, 0, "Bad Gateway"));
        assert_eq!(
            poster.post_message(100, "{}", &[]).await.unwrap_err(),
            PostError::Refused {
                status: 403,
                code: Some(50001),
                message: "Missing Access".into()
            }
        );
        let unauthorized = poster.post_message(100, "{}", &[]).await.unwrap_err();
        assert_eq!(unauthorized, PostError::Unauthorized);
        assert!(!unauthorized.to_string().contains("sekrit"));
        assert!(matches!(
            *poster.reachability().borrow(),
            Reachability::Unauthorized { .. }
        ));
        assert!(matches!(
            poster.post_message(100, "{}", &[]).await.unwrap_err(),
            PostError::Transient {
                status: Some(502),
                ..
            }
        ));
        assert!(!poster.reachability().borrow().is_ok());
        poster.post_message(100, "{}", &[]).await.unwrap();
        assert!(poster.reachability().borrow().is_ok());
    }

    #[tokio::test]
    async fn no_connection_is_transient_and_unreachable() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let poster = Poster::new(api(&format!("http://{addr}"))).unwrap();
        let error = poster.post_message(100, "{}", &[]).await.unwrap_err();
        assert!(matches!(error, PostError::Transient { status: None, .. }));
        assert!(!format!("{error:?} {error}").contains("sekrit"));
        assert!(matches!(
            *poster.reachability().borrow(),
            Reachability::Unreachable { .. }
        ));
    }
}
