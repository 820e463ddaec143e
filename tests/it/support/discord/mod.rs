//! A fake Discord for the integration tests (`docs/architecture.md`, Tests): REST routes on axum that validate every
//! request against Discord's OpenAPI description (`openapi`), JSON bodies and file uploads
//! (`multipart`) alike, a websocket gateway that serenity's
//! shard accepts (`gateway`), and interaction builders with Ed25519 signing (`interactions`).
//!
//! Nothing here uses ringside's own types, so a mistake in the app cannot cancel itself out.
//!
//! ```ignore
//! let fake = FakeDiscord::start().await;
//! // settings.discord.api_url = fake.base_url(); bot ids from fake.options()
//! fake.wait_messages(CHANNEL_ID, 1, DEADLINE).await;
//! assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
//! ```

pub mod gateway;
pub mod interactions;
pub mod multipart;
pub mod openapi;
pub mod rest;

use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// The ids the fake answers for unless told otherwise.
pub const APPLICATION_ID: u64 = 1_100_000_000_000_000_001;
pub const BOT_USER_ID: u64 = 1_100_000_000_000_000_001;
pub const GUILD_ID: u64 = 1_100_000_000_000_000_100;
pub const CHANNEL_ID: u64 = 1_100_000_000_000_000_200;
pub const BOT_TOKEN: &str = "fake-bot-token.ringside.test";
pub const BOT_USERNAME: &str = "ringside";
/// Discord's epoch (2015-01-01), in milliseconds since the Unix epoch.
const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;
/// Discord's bucket for creating messages in one channel: 5 messages per 5 seconds.
pub const DISCORD_CHANNEL_BUCKET: (u32, Duration) = (5, Duration::from_secs(5));
/// How often `wait_*` polls.
const POLL: Duration = Duration::from_millis(10);

/// How the fake is set up. Change fields before [`FakeDiscord::start_with`].
#[derive(Debug, Clone)]
pub struct FakeOptions {
    pub application_id: u64,
    pub bot_user_id: u64,
    pub bot_username: String,
    pub guild_id: u64,
    /// The bot token requests must carry (`Authorization: Bot <token>`, and IDENTIFY's
    /// `token`); `None` accepts any.
    pub token: Option<String>,
    /// The announcement channel; more can be added with [`FakeDiscord::add_channel`].
    pub channel_id: u64,
    /// Treat request objects as `additionalProperties: false` (see `openapi`).
    pub closed_objects: bool,
    /// How long a `nonce` with `enforce_nonce` deduplicates (Discord: "a few minutes").
    pub nonce_window: Duration,
    /// An enforced limit on message creation per channel: `(count, window)`; `None`: headers only.
    /// [`FakeOptions::with_discord_channel_bucket`] sets Discord's own.
    pub channel_limit: Option<(u32, Duration)>,
    /// The limit advertised in the headers of routes that are not enforced.
    pub advertised_limit: u32,
    /// `heartbeat_interval` in HELLO, in milliseconds.
    pub heartbeat_interval_ms: u64,
    /// Permission bits of `@everyone` in `GET /guilds/{id}`.
    pub everyone_permissions: u64,
    /// `interactions_endpoint_url` in `GET /applications/@me`.
    pub interactions_endpoint_url: Option<String>,
}

impl Default for FakeOptions {
    fn default() -> FakeOptions {
        FakeOptions {
            application_id: APPLICATION_ID,
            bot_user_id: BOT_USER_ID,
            bot_username: BOT_USERNAME.to_owned(),
            guild_id: GUILD_ID,
            token: Some(BOT_TOKEN.to_owned()),
            channel_id: CHANNEL_ID,
            closed_objects: true,
            nonce_window: Duration::from_secs(300),
            channel_limit: None,
            advertised_limit: 5,
            heartbeat_interval_ms: 41_250,
            // VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | ATTACH_FILES | READ_MESSAGE_HISTORY |
            // CREATE_PUBLIC_THREADS | SEND_MESSAGES_IN_THREADS
            everyone_permissions: (1 << 10)
                | (1 << 11)
                | (1 << 14)
                | (1 << 15)
                | (1 << 16)
                | (1 << 35)
                | (1 << 38),
            interactions_endpoint_url: None,
        }
    }
}

impl FakeOptions {
    /// Message creation limited as Discord limits it per channel ([`DISCORD_CHANNEL_BUCKET`]):
    /// every answer carries the bucket's true `X-RateLimit-Limit`, `-Remaining`, `-Reset`,
    /// `-Reset-After` and `-Bucket`, and a sixth message within the window is answered 429 with
    /// `retry_after` and `X-RateLimit-Scope: user`.
    pub fn with_discord_channel_bucket(self) -> FakeOptions {
        FakeOptions {
            channel_limit: Some(DISCORD_CHANNEL_BUCKET),
            ..self
        }
    }
}

/// One request as the fake received it.
#[derive(Debug, Clone)]
#[expect(dead_code, reason = "recorded whole; tests read only some fields")]
pub struct Recorded {
    pub method: String,
    /// The path after `/api/v10`, without the query.
    pub path: String,
    pub query: Option<String>,
    /// The matched template, when the route exists.
    pub template: Option<String>,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    pub user_agent: Option<String>,
    pub content_type: Option<String>,
    pub audit_log_reason: Option<String>,
    /// The body parsed as JSON, or a form's `payload_json` (`Value::Null` when empty, not JSON, or
    /// a form the fake refused; see `raw_body`).
    pub body: Value,
    /// A form's file parts (`files[n]`), in the body's order; empty for JSON bodies.
    pub files: Vec<multipart::Part>,
    /// Empty when the body was over the upload limit ([`multipart::UPLOAD_LIMIT`]).
    pub raw_body: Vec<u8>,
    /// The status the fake answered with.
    pub status: u16,
    pub received: Instant,
}

/// A stored channel message.
#[derive(Debug, Clone)]
#[expect(dead_code, reason = "recorded whole; tests read only some fields")]
pub struct StoredMessage {
    pub id: u64,
    pub channel_id: u64,
    /// The Message JSON the fake answered with.
    pub json: Value,
    /// The request body that created it (a form's `payload_json`).
    pub request: Value,
    /// The bodies of `PATCH /channels/{c}/messages/{id}` (a form's `payload_json`), in order.
    pub edits: Vec<Value>,
    /// Its files now, after any edits; `json["attachments"]` describes them.
    pub attachments: Vec<Attachment>,
}

/// A file attached to a stored message, with the bytes that were uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The id the fake gave it.
    pub id: u64,
    /// The `attachments` entry's `filename` when it has one, else the part's.
    pub filename: String,
    /// The part's `Content-Type`.
    pub content_type: String,
    /// The `attachments` entry's `description` (alt text), if any.
    pub description: Option<String>,
    pub bytes: Vec<u8>,
}

/// A thread the fake created.
#[derive(Debug, Clone)]
#[expect(dead_code, reason = "recorded whole; tests read only some fields")]
pub struct Thread {
    pub id: u64,
    pub parent_id: u64,
    pub message_id: u64,
    pub name: String,
}

/// An interaction callback (`POST /interactions/{id}/{token}/callback`).
#[derive(Debug, Clone)]
#[expect(dead_code, reason = "recorded whole; tests read only some fields")]
pub struct Callback {
    pub interaction_id: u64,
    pub token: String,
    /// The body: `{"type": N, "data": …}`.
    pub body: Value,
    pub received: Instant,
    /// How long after the fake pushed this interaction on the gateway, when it did.
    pub after_dispatch: Option<Duration>,
}

/// An edit of an interaction's original response (`PATCH /webhooks/{app}/{token}/messages/@original`).
#[derive(Debug, Clone)]
#[expect(dead_code, reason = "recorded whole; tests read only some fields")]
pub struct OriginalEdit {
    pub application_id: u64,
    pub token: String,
    pub body: Value,
    pub received: Instant,
}

/// What the gateway saw of one IDENTIFY.
#[derive(Debug, Clone)]
#[expect(dead_code, reason = "recorded whole; tests read only some fields")]
pub struct Identify {
    pub token: Option<String>,
    pub intents: Option<u64>,
    pub compress: Option<bool>,
    pub payload: Value,
}

/// Decides on `(channel_id, request body)` whether a message creation is refused.
pub type MessagePredicate = Box<dyn Fn(u64, &Value) -> bool + Send + Sync>;

/// A refusal rule for message creation; it applies once, then is removed.
pub struct Refusal {
    pub matches: MessagePredicate,
    pub status: u16,
    pub code: u64,
}

/// Rate-limit bookkeeping of one bucket (route template + major parameter).
#[derive(Debug, Clone)]
pub struct Bucket {
    pub hash: String,
    pub limit: u32,
    pub window: Duration,
    pub window_start: Instant,
    pub used: u32,
    /// Set when the fake answered 429: the client was told to wait until then.
    pub blocked_until: Option<Instant>,
}

/// Everything the fake knows. Tests read it through the accessors or [`FakeDiscord::with_state`].
pub struct State {
    pub options: FakeOptions,
    pub requests: Vec<Recorded>,
    pub violations: Vec<String>,
    /// Messages per channel (threads included), in creation order.
    pub messages: HashMap<u64, Vec<StoredMessage>>,
    /// Channel ids in creation order of their first message, for `all_messages`.
    pub message_order: Vec<(u64, u64)>,
    pub known_channels: HashSet<u64>,
    pub threads: Vec<Thread>,
    /// `permission_overwrites` per channel for `GET /channels/{id}`.
    pub overwrites: HashMap<u64, Vec<Value>>,
    /// Extra roles of the guild: `(id, name, permissions)`.
    pub roles: Vec<(u64, String, u64)>,
    /// The bot member's role ids.
    pub bot_roles: Vec<u64>,
    /// Roles anyone may mention (Discord's `mentionable`).
    pub mentionable_roles: Vec<u64>,
    /// `(channel, nonce as JSON text)` → (message id, when).
    pub nonces: HashMap<(u64, String), (u64, Instant)>,
    pub buckets: HashMap<String, Bucket>,
    pub refusals: Vec<Refusal>,
    pub refused_channels: HashMap<u64, (u16, u64)>,
    /// Injected 429s for message creation: (count left, retry_after seconds).
    pub rate_limit_next: Option<(u32, f64)>,
    /// Injected failures for message creation: (count left, status).
    pub fail_next: Option<(u32, u16)>,
    /// How long a created message's answer is held back (the message exists meanwhile).
    pub message_delay: Option<Duration>,
    pub registered_commands: Vec<Value>,
    /// Every `PUT …/commands` body, in order.
    pub command_puts: Vec<Value>,
    pub callbacks: Vec<Callback>,
    pub original_edits: Vec<OriginalEdit>,
    /// The current original response per interaction token.
    pub originals: HashMap<String, Value>,
    /// When an interaction id was pushed on the gateway.
    pub dispatched: HashMap<u64, Instant>,
    pub identifies: Vec<Identify>,
    pub heartbeats: u64,
    pub gateway_connections: HashMap<u64, mpsc::UnboundedSender<gateway::Outgoing>>,
    /// Dispatches sent on the gateway, READY included: `(t, d)`.
    pub dispatches: Vec<(String, Value)>,
    last_id: u64,
}

impl State {
    fn new(options: FakeOptions) -> State {
        let mut known_channels = HashSet::new();
        known_channels.insert(options.channel_id);
        State {
            options,
            requests: Vec::new(),
            violations: Vec::new(),
            messages: HashMap::new(),
            message_order: Vec::new(),
            known_channels,
            threads: Vec::new(),
            overwrites: HashMap::new(),
            roles: Vec::new(),
            bot_roles: Vec::new(),
            mentionable_roles: Vec::new(),
            nonces: HashMap::new(),
            buckets: HashMap::new(),
            refusals: Vec::new(),
            refused_channels: HashMap::new(),
            rate_limit_next: None,
            fail_next: None,
            message_delay: None,
            registered_commands: Vec::new(),
            command_puts: Vec::new(),
            callbacks: Vec::new(),
            original_edits: Vec::new(),
            originals: HashMap::new(),
            dispatched: HashMap::new(),
            identifies: Vec::new(),
            heartbeats: 0,
            gateway_connections: HashMap::new(),
            dispatches: Vec::new(),
            last_id: 0,
        }
    }

    /// A fresh snowflake, increasing, with the current time in its top bits.
    pub fn next_id(&mut self) -> u64 {
        let candidate = (now_ms().saturating_sub(DISCORD_EPOCH_MS)) << 22;
        self.last_id = candidate.max(self.last_id + 1);
        self.last_id
    }

    pub fn violation(&mut self, text: impl Into<String>) {
        self.violations.push(text.into());
    }

    /// Removes a message, as a moderator deleting it does; whether it existed.
    pub fn remove_message(&mut self, channel_id: u64, message_id: u64) -> bool {
        let Some(list) = self.messages.get_mut(&channel_id) else {
            return false;
        };
        let before = list.len();
        list.retain(|m| m.id != message_id);
        let removed = list.len() < before;
        if removed {
            self.message_order
                .retain(|&(c, id)| (c, id) != (channel_id, message_id));
        }
        removed
    }

    /// The messages of one channel, as Message JSON.
    pub fn channel_messages(&self, channel_id: u64) -> Vec<Value> {
        self.messages
            .get(&channel_id)
            .map(|list| list.iter().map(|m| m.json.clone()).collect())
            .unwrap_or_default()
    }
}

pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    pub(crate) rest_addr: std::net::SocketAddr,
    pub(crate) gateway_addr: std::net::SocketAddr,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The running fake. Dropping it stops its servers.
pub struct FakeDiscord {
    shared: Arc<Shared>,
    /// Dropping it stops the REST server (gracefully) and the gateway (its connections too).
    _stop: tokio::sync::watch::Sender<()>,
}

impl FakeDiscord {
    /// Starts the fake with the default options.
    pub async fn start() -> FakeDiscord {
        FakeDiscord::start_with(FakeOptions::default()).await
    }

    /// Starts the REST server and the gateway, each on 127.0.0.1:0.
    pub async fn start_with(options: FakeOptions) -> FakeDiscord {
        // Load the description before the first request needs it.
        let _ = openapi::spec();
        let rest_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port for the fake Discord REST API");
        let gateway_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port for the fake Discord gateway");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(options)),
            rest_addr: rest_listener.local_addr().expect("its address"),
            gateway_addr: gateway_listener.local_addr().expect("its address"),
        });
        let (stop, stopped) = tokio::sync::watch::channel(());
        tokio::spawn(rest::serve(rest_listener, shared.clone(), stopped.clone()));
        tokio::spawn(gateway::serve(gateway_listener, shared.clone(), stopped));
        FakeDiscord {
            shared,
            _stop: stop,
        }
    }

    /// What the app's `discord.api_url` is set to: `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.shared.rest_addr)
    }

    /// The gateway's URL, as `GET /gateway` serves it: `ws://127.0.0.1:PORT`.
    pub fn gateway_url(&self) -> String {
        format!("ws://{}", self.shared.gateway_addr)
    }

    pub fn options(&self) -> FakeOptions {
        self.shared.lock().options.clone()
    }

    /// Runs `f` on the state, under the lock (do not hold it long).
    pub fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.shared.lock())
    }

    /// The messages of `channel_id` (a thread id works too), in order, as Message JSON.
    pub fn messages(&self, channel_id: u64) -> Vec<Value> {
        self.shared.lock().channel_messages(channel_id)
    }

    /// The `content` of each message of `channel_id`, in order.
    pub fn contents(&self, channel_id: u64) -> Vec<String> {
        self.messages(channel_id)
            .iter()
            .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// The request bodies that created the messages of `channel_id`, in order.
    pub fn message_requests(&self, channel_id: u64) -> Vec<Value> {
        let state = self.shared.lock();
        state
            .messages
            .get(&channel_id)
            .map(|list| list.iter().map(|m| m.request.clone()).collect())
            .unwrap_or_default()
    }

    /// Every message in every channel, in creation order.
    pub fn all_messages(&self) -> Vec<Value> {
        let state = self.shared.lock();
        state
            .message_order
            .iter()
            .filter_map(|(channel, id)| state.messages.get(channel)?.iter().find(|m| m.id == *id))
            .map(|m| m.json.clone())
            .collect()
    }

    /// The files of a message now (after its edits), with their bytes; empty for an unknown
    /// message.
    pub fn attachments(&self, channel_id: u64, message_id: u64) -> Vec<Attachment> {
        self.stored(channel_id, message_id)
            .map(|m| m.attachments)
            .unwrap_or_default()
    }

    /// The bodies of the successive edits of a message (a form's `payload_json`), in order.
    pub fn edits(&self, channel_id: u64, message_id: u64) -> Vec<Value> {
        self.stored(channel_id, message_id)
            .map(|m| m.edits)
            .unwrap_or_default()
    }

    fn stored(&self, channel_id: u64, message_id: u64) -> Option<StoredMessage> {
        self.shared
            .lock()
            .messages
            .get(&channel_id)?
            .iter()
            .find(|m| m.id == message_id)
            .cloned()
    }

    /// Deletes a message without a request, as a moderator does in the Discord client: later
    /// edits of it are answered 404 / 10008 Unknown Message. Whether it existed.
    pub fn delete_message(&self, channel_id: u64, message_id: u64) -> bool {
        self.shared.lock().remove_message(channel_id, message_id)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    pub fn violations(&self) -> Vec<String> {
        self.shared.lock().violations.clone()
    }

    pub fn callbacks(&self) -> Vec<Callback> {
        self.shared.lock().callbacks.clone()
    }

    pub fn original_edits(&self) -> Vec<OriginalEdit> {
        self.shared.lock().original_edits.clone()
    }

    /// The current original response of an interaction (after its callback and any edits).
    pub fn original(&self, token: &str) -> Option<Value> {
        self.shared.lock().originals.get(token).cloned()
    }

    /// The command list of the last `PUT …/guilds/{guild}/commands`, with the ids the fake gave.
    pub fn registered_commands(&self) -> Vec<Value> {
        self.shared.lock().registered_commands.clone()
    }

    #[expect(dead_code, reason = "part of the fake's API; no test uses it yet")]
    pub fn threads(&self) -> Vec<Thread> {
        self.shared.lock().threads.clone()
    }

    pub fn identifies(&self) -> Vec<Identify> {
        self.shared.lock().identifies.clone()
    }

    /// Makes `channel_id` known (posts to unknown channels get 404 Unknown Channel).
    #[expect(dead_code, reason = "part of the fake's API; no test uses it yet")]
    pub fn add_channel(&self, channel_id: u64) {
        self.shared.lock().known_channels.insert(channel_id);
    }

    /// `permission_overwrites` of `GET /channels/{channel_id}`.
    pub fn set_overwrites(&self, channel_id: u64, overwrites: Vec<Value>) {
        self.shared.lock().overwrites.insert(channel_id, overwrites);
    }

    /// Permission bits of `@everyone`.
    pub fn set_everyone_permissions(&self, permissions: u64) {
        self.shared.lock().options.everyone_permissions = permissions;
    }

    /// Adds a guild role.
    pub fn add_role(&self, role_id: u64, name: &str, permissions: u64) {
        self.shared
            .lock()
            .roles
            .push((role_id, name.to_owned(), permissions));
    }

    /// Makes a role mentionable by anyone.
    pub fn set_role_mentionable(&self, role_id: u64) {
        self.shared.lock().mentionable_roles.push(role_id);
    }

    /// The bot member's roles.
    pub fn set_bot_roles(&self, roles: Vec<u64>) {
        self.shared.lock().bot_roles = roles;
    }

    pub fn set_interactions_endpoint_url(&self, url: Option<String>) {
        self.shared.lock().options.interactions_endpoint_url = url;
    }

    /// An enforced per-channel limit on message creation, `None` to lift it.
    pub fn set_channel_limit(&self, limit: Option<(u32, Duration)>) {
        let mut state = self.shared.lock();
        state.options.channel_limit = limit;
        state.buckets.clear();
    }

    /// The next `count` message creations get 429 with `retry_after_secs`.
    pub fn rate_limit_next(&self, count: u32, retry_after_secs: f64) {
        self.shared.lock().rate_limit_next = Some((count, retry_after_secs));
    }

    /// Every message creation in `channel_id` is refused with `status` and Discord `code`
    /// (e.g. 403 / 50001 Missing Access, 404 / 10003 Unknown Channel).
    pub fn refuse_channel(&self, channel_id: u64, status: u16, code: u64) {
        self.shared
            .lock()
            .refused_channels
            .insert(channel_id, (status, code));
    }

    /// Lifts a [`Self::refuse_channel`].
    pub fn accept_channel(&self, channel_id: u64) {
        self.shared.lock().refused_channels.remove(&channel_id);
    }

    /// The next message creation whose body matches `predicate(channel_id, body)` is refused once.
    pub fn refuse_next_message_where(
        &self,
        predicate: impl Fn(u64, &Value) -> bool + Send + Sync + 'static,
        status: u16,
        code: u64,
    ) {
        self.shared.lock().refusals.push(Refusal {
            matches: Box::new(predicate),
            status,
            code,
        });
    }

    /// The next message creation whose `content` or embeds contain `needle` is refused once.
    pub fn refuse_next_message_containing(&self, needle: &str, status: u16, code: u64) {
        let needle = needle.to_owned();
        self.refuse_next_message_where(
            move |_, body| {
                body["content"]
                    .as_str()
                    .is_some_and(|c| c.contains(&needle))
                    || body["embeds"].to_string().contains(&needle)
            },
            status,
            code,
        );
    }

    /// The next `count` message creations fail with `status` (e.g. 500, 502).
    pub fn fail_next(&self, count: u32, status: u16) {
        self.shared.lock().fail_next = Some((count, status));
    }

    /// Holds back the answer to each message creation by `delay` after the message is stored: a
    /// slow Discord, so a client killed meanwhile never learns that its message exists.
    pub fn set_message_delay(&self, delay: Option<Duration>) {
        self.shared.lock().message_delay = delay;
    }

    /// Pushes an `INTERACTION_CREATE` dispatch to every identified gateway connection; returns
    /// how many got it.
    pub fn send_interaction(&self, interaction: Value) -> usize {
        if let Some(id) = interaction["id"].as_str().and_then(|s| s.parse().ok()) {
            self.shared.lock().dispatched.insert(id, Instant::now());
        }
        self.send_dispatch("INTERACTION_CREATE", interaction)
    }

    /// Pushes any dispatch `(t, d)` to every identified gateway connection.
    pub fn send_dispatch(&self, t: &str, d: Value) -> usize {
        let state = self.shared.lock();
        state
            .gateway_connections
            .values()
            .filter(|tx| {
                tx.send(gateway::Outgoing::Dispatch(t.to_owned(), d.clone()))
                    .is_ok()
            })
            .count()
    }

    /// Closes every gateway connection with `code` (e.g. 1000, or 4000 "unknown error", after
    /// which serenity reconnects). Returns how many were closed.
    pub fn disconnect_gateway(&self, code: u16) -> usize {
        let mut state = self.shared.lock();
        let closed = state
            .gateway_connections
            .values()
            .filter(|tx| tx.send(gateway::Outgoing::Close(code)).is_ok())
            .count();
        state.gateway_connections.clear();
        closed
    }

    /// How many gateway connections have identified and are open.
    pub fn gateway_connections(&self) -> usize {
        self.shared.lock().gateway_connections.len()
    }

    /// Polls `f` until it returns `Some`, or panics after `timeout` describing `what`.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut(&State) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = f(&self.shared.lock()) {
                return found;
            }
            if Instant::now() > deadline {
                let state = self.shared.lock();
                panic!(
                    "fake Discord: timed out after {timeout:?} waiting for {what}; violations: {:#?}; last requests: {:#?}",
                    state.violations,
                    state
                        .requests
                        .iter()
                        .rev()
                        .take(5)
                        .map(|r| format!("{} {} -> {}", r.method, r.path, r.status))
                        .collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until `channel_id` holds at least `count` messages; returns them all.
    pub async fn wait_messages(
        &self,
        channel_id: u64,
        count: usize,
        timeout: Duration,
    ) -> Vec<Value> {
        self.wait_for(
            &format!("{count} message(s) in channel {channel_id}"),
            timeout,
            |s| {
                let list = s.channel_messages(channel_id);
                (list.len() >= count).then_some(list)
            },
        )
        .await
    }

    /// Waits for at least `count` interaction callbacks.
    #[expect(dead_code, reason = "part of the fake's API; no test uses it yet")]
    pub async fn wait_callbacks(&self, count: usize, timeout: Duration) -> Vec<Callback> {
        self.wait_for(&format!("{count} callback(s)"), timeout, |s| {
            (s.callbacks.len() >= count).then(|| s.callbacks.clone())
        })
        .await
    }

    /// Waits until a gateway connection has identified; returns the first IDENTIFY.
    pub async fn wait_identified(&self, timeout: Duration) -> Identify {
        self.wait_for("a gateway IDENTIFY", timeout, |s| {
            (!s.gateway_connections.is_empty())
                .then(|| s.identifies.first().cloned())
                .flatten()
        })
        .await
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// RFC 3339 for now, as Discord writes timestamps.
pub(crate) fn timestamp_now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("now formats")
}

/// A Discord-shaped error body.
pub fn error_body(code: u64, message: &str) -> Value {
    json!({"code": code, "message": message})
}

/// Discord's message for its common error codes.
pub fn error_message(code: u64) -> &'static str {
    match code {
        0 => "General error",
        10003 => "Unknown Channel",
        10004 => "Unknown Guild",
        10007 => "Unknown Member",
        10008 => "Unknown Message",
        10015 => "Unknown Webhook",
        40005 => "Request entity too large",
        10062 => "Unknown interaction",
        40060 => "Interaction has already been acknowledged.",
        50001 => "Missing Access",
        50013 => "Missing Permissions",
        50035 => "Invalid Form Body",
        _ => "Error",
    }
}
