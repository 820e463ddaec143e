//! A RingCentral platform fake on a real local port.
//!
//! [`Platform::start`] binds `127.0.0.1:0` and serves, with axum, the part of RingCentral's REST
//! API ringside uses (`docs/ringcentral.md` §3–§6):
//!
//! - OAuth: `POST /restapi/oauth/token` (JWT and refresh grants, HTTP Basic client check) and
//!   `POST /restapi/oauth/revoke` ([`oauth`]);
//! - webhook subscriptions with the validation handshake, renewal, blacklisting and delivery of
//!   notifications ([`subscriptions`]);
//! - telephony sessions: `GET …/telephony/sessions/{id}`, `GET`/`DELETE …/parties/{id}` (the
//!   kick) and `DELETE …/sessions/{id}` ([`telephony`]);
//! - account and extension presence with `detailedTelephonyState` ([`presence`]);
//! - extension info, the company directory's names ([`directory`]);
//! - per-group rate limits over a sliding window, with the restarting penalty ([`rate`]);
//! - a request log ([`log`]).
//!
//! Conferences are scripted with [`ConferenceController`] (from
//! [`PlatformHandle::conference`]), which wraps a [`ConferenceScript`](super::ConferenceScript):
//! every notification it scripts is parsed back into the platform's session state (so a session
//! GET agrees with what was delivered) and delivered to every active subscription.
//!
//! Nothing here uses ringside's RingCentral types: the fake reads and writes JSON by field name,
//! so a mistake in ringside's client or wire model cannot cancel itself out.

mod controller;
mod directory;
mod log;
mod oauth;
mod presence;
mod rate;
mod state;
mod subscriptions;
mod telephony;
#[cfg(test)]
mod tests;
mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use controller::ConferenceController;
pub use log::RequestRecord;
pub use oauth::TokenRequests;
pub use rate::RateGroup;
pub use subscriptions::{DeliveryRecord, DisabledFilter, Subscription, SubscriptionStatus};
pub use ws::WsStats;

use state::Shared;

/// Client id accepted by default.
pub const DEFAULT_CLIENT_ID: &str = "sim-client-id";
/// Client secret accepted by default.
pub const DEFAULT_CLIENT_SECRET: &str = "sim-client-secret";
/// JWT credential accepted by default.
pub const DEFAULT_JWT: &str = "sim-jwt-credential";
/// The `scope` of issued tokens by default.
pub const DEFAULT_SCOPE: &str = "CallControl ReadAccounts ReadPresence SubscriptionWebhook";

/// How a session GET shows a conference participant who is still connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParticipantView {
    /// `status.code` `Answered`, no `peerId`.
    #[default]
    Answered,
    /// `status.code` `Gone` with a `peerId` naming the original party, like RingCentral's
    /// widget fixture (`js-widgets/conference-session.json`).
    GoneWithPeer,
}

/// Settings of a [`Platform`]; every one has a default ([`PlatformOptions::default`]).
#[derive(Debug, Clone)]
pub struct PlatformOptions {
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    pub(crate) jwt: String,
    pub(crate) access_token_ttl: Duration,
    pub(crate) refresh_token_ttl: Duration,
    pub(crate) issue_refresh_tokens: bool,
    pub(crate) scope: String,
    pub(crate) disabled_filters: Vec<(String, String)>,
    pub(crate) presence_permitted: bool,
    pub(crate) extensions_permitted: bool,
    pub(crate) directory: Vec<(String, String)>,
    pub(crate) limits: [u32; 4],
    pub(crate) penalty: Duration,
    pub(crate) window: Duration,
    pub(crate) participant_view: ParticipantView,
    pub(crate) list_disconnected_parties: bool,
    pub(crate) account_id: String,
    pub(crate) owner_id: String,
    pub(crate) blacklist_after_failures: Option<u32>,
    pub(crate) ws: ws::WsOptions,
}

impl Default for PlatformOptions {
    fn default() -> Self {
        Self {
            client_id: DEFAULT_CLIENT_ID.to_owned(),
            client_secret: DEFAULT_CLIENT_SECRET.to_owned(),
            jwt: DEFAULT_JWT.to_owned(),
            access_token_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(604_800),
            issue_refresh_tokens: true,
            scope: DEFAULT_SCOPE.to_owned(),
            disabled_filters: Vec::new(),
            presence_permitted: true,
            extensions_permitted: true,
            directory: Vec::new(),
            limits: [
                RateGroup::Light.default_limit(),
                RateGroup::Medium.default_limit(),
                RateGroup::Heavy.default_limit(),
                RateGroup::Auth.default_limit(),
            ],
            penalty: Duration::from_secs(60),
            window: Duration::from_secs(60),
            participant_view: ParticipantView::Answered,
            list_disconnected_parties: true,
            account_id: "37439510".to_owned(),
            owner_id: "62295300122".to_owned(),
            blacklist_after_failures: None,
            ws: ws::WsOptions::default(),
        }
    }
}

impl PlatformOptions {
    /// The defaults: see the `DEFAULT_*` constants; 3600 s access tokens with refresh tokens;
    /// every filter enabled; presence permitted; limits Light 50, Medium 40, Heavy 10, Auth 5 per
    /// 60 s; 60 s penalty; participants shown `Answered`.
    pub fn new() -> Self {
        Self::default()
    }

    /// The app's client id and secret (checked with HTTP Basic on the OAuth endpoints).
    pub fn client(mut self, id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.client_id = id.into();
        self.client_secret = secret.into();
        self
    }

    /// The JWT credential the JWT grant accepts.
    pub fn jwt(mut self, jwt: impl Into<String>) -> Self {
        self.jwt = jwt.into();
        self
    }

    /// Lifetime of access tokens, in seconds (real time).
    pub fn access_token_ttl(mut self, seconds: u64) -> Self {
        self.access_token_ttl = Duration::from_secs(seconds);
        self
    }

    /// Lifetime of access tokens as a duration (sub-second lifetimes for tests; `expires_in`
    /// rounds up to whole seconds).
    pub fn access_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.access_token_ttl = lifetime;
        self
    }

    /// Whether token answers carry a refresh token (the app's "Issue refresh tokens").
    pub fn refresh_tokens(mut self, issued: bool) -> Self {
        self.issue_refresh_tokens = issued;
        self
    }

    /// The `scope` string of token answers.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = scope.into();
        self
    }

    /// Reports `filter` (compared without its query) in `disabledFilters` of every subscription
    /// asking for it, because the app lacks `permission` (e.g. `CallControl`).
    pub fn disable_filter(
        mut self,
        filter: impl Into<String>,
        permission: impl Into<String>,
    ) -> Self {
        self.disabled_filters
            .push((filter.into(), permission.into()));
        self
    }

    /// Whether account presence is permitted (`ReadPresence`); 403 otherwise.
    pub fn presence_permitted(mut self, permitted: bool) -> Self {
        self.presence_permitted = permitted;
        self
    }

    /// Whether extension info may be read (the app's `ReadAccounts`); 403 `CMN-401` otherwise.
    pub fn extensions_permitted(mut self, permitted: bool) -> Self {
        self.extensions_permitted = permitted;
        self
    }

    /// A company directory entry: `GET …/extension/{extension_id}` answers with `name` (it
    /// wins over the name of a scripted person with that extension id).
    pub fn directory_entry(
        mut self,
        extension_id: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        self.directory.push((extension_id.into(), name.into()));
        self
    }

    /// Requests allowed per window in `group`.
    pub fn limit(mut self, group: RateGroup, requests: u32) -> Self {
        self.limits[group.index()] = requests;
        self
    }

    /// Length of the penalty after a group goes over its limit, in seconds.
    pub fn penalty_secs(mut self, seconds: u64) -> Self {
        self.penalty = Duration::from_secs(seconds);
        self
    }

    /// Length of the penalty as a duration (`Retry-After` rounds up to whole seconds).
    pub fn penalty(mut self, penalty: Duration) -> Self {
        self.penalty = penalty;
        self
    }

    /// Length of the sliding rate-limit window (60 s by default; shorter only for tests).
    pub fn rate_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// How session GETs show connected conference participants.
    pub fn participants_as(mut self, view: ParticipantView) -> Self {
        self.participant_view = view;
        self
    }

    /// Whether session GETs still list parties that went `Disconnected` (on by default; when
    /// off they are left out).
    pub fn list_disconnected_parties(mut self, listed: bool) -> Self {
        self.list_disconnected_parties = listed;
        self
    }

    /// The account id (accepted in paths besides `~`).
    pub fn account_id(mut self, id: impl Into<String>) -> Self {
        self.account_id = id.into();
        self
    }

    /// `owner_id` of tokens and `ownerId` of delivered notifications.
    pub fn owner_id(mut self, id: impl Into<String>) -> Self {
        self.owner_id = id.into();
        self
    }

    /// Blacklists a subscription after this many failed deliveries in a row (never by default).
    pub fn blacklist_after_failures(mut self, failures: u32) -> Self {
        self.blacklist_after_failures = Some(failures);
        self
    }

    /// The gateway closes a connection after this long without a client text frame
    /// (`WSG-902`; default 1800 s). Ping frames do not count.
    pub fn ws_idle_timeout(mut self, timeout: Duration) -> Self {
        self.ws.idle_timeout = timeout;
        self
    }

    /// The gateway ends every connection after this long (`WSG-903`; default a day).
    pub fn ws_absolute_timeout(mut self, timeout: Duration) -> Self {
        self.ws.absolute_timeout = timeout;
        self
    }

    /// How long a dropped session can be recovered (default 180 s).
    pub fn ws_recovery_timeout(mut self, timeout: Duration) -> Self {
        self.ws.recovery_timeout = timeout;
        self
    }

    /// How many notifications a dropped session keeps for its recovery (default 100).
    pub fn ws_recovery_buffer(mut self, size: usize) -> Self {
        self.ws.recovery_buffer = size;
        self
    }

    /// How often the gateway sends a ping frame (default 30 s).
    pub fn ws_ping_interval(mut self, interval: Duration) -> Self {
        self.ws.ping_interval = interval;
        self
    }
}

/// Starts platform fakes.
#[derive(Debug)]
pub struct Platform;

impl Platform {
    /// Binds `127.0.0.1:0` and serves the fake until [`PlatformHandle::stop`] (or the handle is
    /// dropped, which stops it without waiting).
    pub async fn start(options: PlatformOptions) -> std::io::Result<PlatformHandle> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let gateway = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let ws_addr = gateway.local_addr()?;
        let (shared, worker) =
            Shared::new(options, format!("http://{addr}"), format!("ws://{ws_addr}"));
        let ws_server = tokio::spawn(ws::serve(gateway, Arc::downgrade(&shared)));
        let app = router(shared.clone());
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stop_rx.await;
                })
                .await;
            if let Err(error) = served {
                tracing::warn!(%error, "simulated platform stopped with an error");
            }
        });
        Ok(PlatformHandle {
            addr,
            shared,
            stop: Some(stop_tx),
            server: Some(server),
            worker: Some(worker),
            ws_server: Some(ws_server),
        })
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/restapi/oauth/token", post(oauth::token))
        .route("/restapi/oauth/revoke", post(oauth::revoke))
        .route("/restapi/oauth/wstoken", post(ws::token))
        .route(
            "/restapi/v1.0/subscription",
            post(subscriptions::create).get(subscriptions::list),
        )
        .route(
            "/restapi/v1.0/subscription/{id}",
            get(subscriptions::read)
                .put(subscriptions::update)
                .delete(subscriptions::remove),
        )
        .route(
            "/restapi/v1.0/subscription/{id}/renew",
            post(subscriptions::renew),
        )
        .route(
            "/restapi/v1.0/account/{account}/telephony/sessions/{session}",
            get(telephony::get_session).delete(telephony::delete_session),
        )
        .route(
            "/restapi/v1.0/account/{account}/telephony/sessions/{session}/parties/{party}",
            get(telephony::get_party).delete(telephony::delete_party),
        )
        .route(
            "/restapi/v1.0/account/{account}/presence",
            get(presence::account_presence),
        )
        .route(
            "/restapi/v1.0/account/{account}/extension/{extension}",
            get(directory::get_extension),
        )
        .route(
            "/restapi/v1.0/account/{account}/extension/{extension}/presence",
            get(presence::extension_presence),
        )
        .fallback(state::not_found)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            log::gate,
        ))
        .with_state(shared)
}

/// A running platform fake: its address, and controls and observations for tests.
#[derive(Debug)]
pub struct PlatformHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    worker: Option<JoinHandle<()>>,
    ws_server: Option<JoinHandle<()>>,
}

impl PlatformHandle {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving (finishing requests in flight) and stops delivering.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        if let Some(worker) = self.worker.take() {
            worker.abort();
        }
        if let Some(ws_server) = self.ws_server.take() {
            ws_server.abort();
        }
        self.shared.lock().ws.drop_all();
    }

    // ----- WebSocket gateway ---------------------------------------------------------------

    /// `ws://127.0.0.1:PORT` of the WebSocket gateway.
    pub fn ws_url(&self) -> String {
        self.shared.ws_url().to_owned()
    }

    /// What the gateway saw so far.
    pub fn ws_stats(&self) -> WsStats {
        self.shared.lock().ws.stats.clone()
    }

    /// Drops every gateway connection without a close frame, as a network failure would; the
    /// sessions stay recoverable for the recovery window.
    pub fn drop_websockets(&self) {
        self.shared.lock().ws.drop_all();
    }

    /// Drops every gateway connection and ends their sessions, as an outage longer than the
    /// recovery window would: a reconnect presenting the old `wsc` is `Failed`, and the
    /// sessions' subscriptions are gone.
    pub fn drop_websockets_past_recovery(&self) {
        let mut inner = self.shared.lock();
        let ended = inner.ws.end_sessions();
        inner.subscriptions.retain(|sub| !ended.contains(&sub.id));
        inner.ws.drop_all();
    }

    /// Ends every gateway connection with `WSG-903` (the absolute timeout), now.
    pub fn expire_websockets(&self) {
        let _ = self.shared.lock().ws.expire_now.send(());
    }

    // ----- OAuth ---------------------------------------------------------------------------

    /// Expires every access token issued so far (they answer 401 `OAU-128` from now on).
    pub fn expire_tokens(&self) {
        self.shared.lock().tokens.expire_all();
    }

    /// How many token requests each grant type got (counted once past the rate limiter).
    pub fn token_requests(&self) -> TokenRequests {
        self.shared.lock().tokens.requests.clone()
    }

    // ----- Subscriptions -------------------------------------------------------------------

    /// Every live (unexpired, undeleted) subscription, verification tokens included.
    pub fn subscriptions(&self) -> Vec<Subscription> {
        let mut inner = self.shared.lock();
        inner.prune_subscriptions();
        inner.subscriptions.clone()
    }

    /// Blacklists a subscription: status `Blacklisted`, deliveries stop, renewal is refused.
    /// False when there is no such live subscription.
    pub fn blacklist(&self, id: &str) -> bool {
        let mut inner = self.shared.lock();
        inner.prune_subscriptions();
        inner.blacklist(id, "Blacklisted by the simulator")
    }

    /// Delivers a renewal reminder to the subscription (event = its reminder filter, or
    /// `/restapi/v1.0/subscription/~?threshold=60&interval=15` when it has none). `None` when
    /// there is no such live, active subscription.
    pub async fn send_reminder(&self, id: &str) -> Option<DeliveryRecord> {
        subscriptions::send_reminder(&self.shared, id).await
    }

    /// Every delivery attempt so far (handshakes excluded), oldest first.
    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        self.shared.lock().deliveries.clone()
    }

    /// Telephony notifications that reached no subscription (lost, as on the real platform)
    /// or were withheld by a silent leave or a muted controller.
    pub fn lost_notifications(&self) -> Vec<serde_json::Value> {
        self.shared.lock().lost.clone()
    }

    /// Waits until every notification queued so far has been delivered (or lost).
    pub async fn flush(&self) {
        self.shared.flush().await;
    }

    /// Applies a raw telephony notification (a whole webhook body, e.g. a captured fixture) to
    /// the session state and delivers it like a scripted one.
    pub async fn inject(&self, notification: serde_json::Value) {
        let done = {
            let mut inner = self.shared.lock();
            inner.sessions.apply(&notification);
            self.shared.enqueue(vec![notification], None)
        };
        let _ = done.await;
    }

    // ----- Telephony -----------------------------------------------------------------------

    /// A new conference hosted by `host`, scripted from `seed`, on a clock starting now.
    /// Nothing happens until the controller is driven.
    pub fn conference(&self, seed: u64, host: super::Person) -> ConferenceController {
        ConferenceController::new(self.shared.clone(), seed, host)
    }

    /// A conference that was already running before anyone subscribed: started with `callers`
    /// merged in, its state in place, its notifications lost. Deliveries are on afterwards.
    pub async fn running_conference(
        &self,
        seed: u64,
        host: super::Person,
        callers: Vec<super::Person>,
    ) -> (ConferenceController, Vec<super::CallerRef>) {
        let conference = self.conference(seed, host);
        conference.set_delivering(false);
        conference.start().await;
        let mut refs = Vec::new();
        for person in callers {
            conference.advance(Duration::from_secs(30));
            refs.push(conference.call_and_merge(person).await);
        }
        conference.set_delivering(true);
        (conference, refs)
    }

    /// The session as `GET …/telephony/sessions/{id}` would answer it, `None` when it answers
    /// 404.
    pub fn session(&self, id: &str) -> Option<serde_json::Value> {
        let inner = self.shared.lock();
        inner.sessions.render(id, &self.shared.options)
    }

    /// Makes `DELETE …/parties/{party_id}` answer 403 (`CMN-408`) for this party id (conference
    /// or original), without disconnecting anyone.
    pub fn forbid_kick(&self, party_id: &str) {
        self.shared
            .lock()
            .faults
            .forbidden
            .insert(party_id.to_owned());
    }

    /// Makes the conference-side ids of this participant answer 404 to a DELETE while the
    /// caller is still on (the original ids keep working).
    pub fn hide_conference_party(&self, party_id: &str) {
        self.shared.lock().faults.hidden.insert(party_id.to_owned());
    }

    /// Delays every answer to a party DELETE by `delay` (the disconnect still happens at once).
    pub fn delay_kick_answers(&self, delay: Duration) {
        self.shared.lock().faults.answer_delay = delay;
    }

    /// Whether a party DELETE delivers the leave notifications before answering 204 (by default
    /// they follow the answer).
    pub fn leave_before_answer(&self, before: bool) {
        self.shared.lock().faults.leave_before_answer = before;
    }

    // ----- Directory -----------------------------------------------------------------------

    /// Registers (or renames) a company directory entry from now on ([`PlatformOptions::directory_entry`]).
    pub fn set_directory_name(&self, extension_id: &str, name: &str) {
        self.shared
            .lock()
            .directory
            .insert(extension_id.to_owned(), name.to_owned());
    }

    // ----- Rate limits ---------------------------------------------------------------------

    /// Starts a penalty in `group` now, lasting `penalty` (restarted by any request during it);
    /// its 429s carry `Retry-After` only when `send_retry_after`.
    pub fn throttle(&self, group: RateGroup, penalty: Duration, send_retry_after: bool) {
        self.shared
            .lock()
            .rate
            .throttle(group, penalty, send_retry_after);
    }

    /// Changes the limit of `group` from now on.
    pub fn set_limit(&self, group: RateGroup, requests: u32) {
        self.shared.lock().rate.set_limit(group, requests);
    }

    // ----- Request log ---------------------------------------------------------------------

    /// Every request answered so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.lock().log.clone()
    }
}

impl Drop for PlatformHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(worker) = self.worker.take() {
            worker.abort();
        }
        if let Some(ws_server) = self.ws_server.take() {
            ws_server.abort();
        }
    }
}
