//! Wiring: opens the store, restores and replays, starts the detector task, the announcer and
//! the listeners, and shuts them down in order. Knows no protocol details.

pub mod admin;
#[cfg(feature = "simulator")]
pub mod demo;
pub mod discord;
pub mod listener;
pub mod logging;
pub mod metrics;
pub mod operator;
pub mod replay;
pub mod supervise;
#[cfg(feature = "test-hooks")]
pub mod test_hooks;

use crate::conference::{ConferenceEvent, Detector, DetectorConfig, Roster};
use crate::config::Settings;
use crate::discord::announcer::{self, AnnouncerSettings, DiscordAnnouncer, Sink};
use crate::discord::api::DiscordApi;
use crate::discord::commands::{Commands, Deps as CommandDeps};
use crate::discord::gateway as discord_gateway;
use crate::discord::interactions::{self, InteractionsState};
use crate::discord::poster::Poster;
use crate::discord::respond::Responder;
use crate::pipeline::SubscriptionHealth;
use crate::pipeline::{self, Clock, Kicker, SystemClock};
use crate::ringcentral::auth::{AuthOptions, TokenOwner};
use crate::ringcentral::client::RcClient;
use crate::ringcentral::kick::RcKicker;
use crate::ringcentral::rate::RateLimits;
use crate::ringcentral::reconciler::{Reconciler, ReconcilerHandle};
use crate::ringcentral::subscription::{self, SubscriptionManager, SubscriptionOptions};
use crate::ringcentral::webhook::{self, WebhookState};
use crate::store::Store;
use crate::util::shutdown::{Shutdown, StopSender};
use anyhow::Context as _;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use secrecy::{ExposeSecret, SecretString};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use supervise::{Supervisor, Watched};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// The store key of the generated webhook verification token.
const VERIFICATION_TOKEN_KEY: &str = "ringcentral.verification_token";
/// Random bytes in a generated verification token (hex-encoded: 32 characters).
const GENERATED_TOKEN_BYTES: usize = 16;
/// No request may hold a connection longer than this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A graceful stop gives up waiting on in-flight work after this long.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// What a started ringside exposes to its caller (the binary, the demo, the tests).
pub struct Running {
    pub public_addr: SocketAddr,
    /// `None` when the operator routes share the public listener.
    pub admin_addr: Option<SocketAddr>,
    pub roster: Roster,
    pub store: Store,
    /// Where announcements go when a Discord bot is configured (`None`: local mode).
    pub discord: Option<DiscordTarget>,
    /// The slash-command handlers both transports use (the demo calls them directly).
    pub commands: Option<Commands>,
    /// Answers interactions; its deferred work (kicks) is let finish on a graceful stop.
    responder: Option<Responder>,
    /// Set only when ringside generated the token and no RingCentral group is configured: the
    /// one case where showing it is safe (it protects nothing real yet).
    pub shown_verification_token: Option<String>,
    verification_token: SecretString,
    /// The kick port, when RingCentral credentials are configured.
    pub kicker: Option<Arc<dyn Kicker>>,
    pub reconciler: Option<ReconcilerHandle>,
    /// The subscription's health, when RingCentral credentials are configured.
    pub subscription: Option<watch::Receiver<SubscriptionHealth>>,
    /// The RingCentral client, when credentials are configured.
    pub ringcentral: Option<Arc<RcClient>>,
    /// Feeds the detector (reconciliation, kicks).
    pub inputs: pipeline::DetectorInputs,
    /// The core tasks beside the pipeline and the announcer: the subscription manager, the
    /// reconciler, the gateway client (supervised), and one-shot work such as registering the
    /// commands (not supervised: it ends when done).
    background: Vec<(&'static str, Watched<()>)>,
    shutdown: StopSender,
    servers: Vec<(&'static str, Watched<std::io::Result<()>>)>,
    pipeline: Watched<Detector>,
    announcer: Watched<()>,
    /// Ends when the store thread ends; never awaited.
    store_thread: Watched<()>,
    /// Keeps the announcer's channel open while ringside runs, so that the announcer ends only
    /// on a stop (after the detector task let go of its sender), never because the detector
    /// task died: that death is the detector's, and is reported as such.
    events_keepalive: mpsc::UnboundedSender<pipeline::Announcement>,
    pub supervisor: Supervisor,
}

impl Running {
    /// The webhook address on the public listener.
    pub fn webhook_url(&self) -> String {
        format!("http://{}/webhooks/ringcentral", self.public_addr)
    }

    /// The verification token notifications must carry (for the in-process demo and tests).
    pub fn verification_token(&self) -> &SecretString {
        &self.verification_token
    }

    /// Graceful stop: stop accepting, drain the detector and the announcer, close the store.
    /// Every stage shares one deadline ([`SHUTDOWN_GRACE`] from now), so the process exits within
    /// the 10 s DESIGN §7 promises however the time is spent; what the announcer could not send
    /// by then stays in the store and is sent (with the same nonces) at the next start.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        self.supervisor.stopping();
        self.shutdown.stop();
        // What did not finish in time, said in one line at the end (a store that cannot write
        // makes every stage late, and has said so already).
        let mut late: Vec<&'static str> = Vec::new();
        for (name, mut server) in self.servers {
            match tokio::time::timeout_at(deadline, &mut server).await {
                Ok(Ok(Some(Ok(())) | None)) => {}
                Ok(Ok(Some(Err(error)))) => {
                    tracing::warn!(%error, listener = name, "listener stopped with an error")
                }
                Ok(Err(error)) => tracing::warn!(%error, listener = name, "listener task failed"),
                Err(_) => {
                    late.push(name);
                    server.abort();
                }
            }
        }
        // Interactions stopped arriving with the listeners; kicks already confirmed finish and
        // their replies are edited (they need the detector, which drains after this).
        if let Some(responder) = &self.responder
            && tokio::time::timeout_at(deadline, responder.wait_follow_ups())
                .await
                .is_err()
        {
            late.push("a confirmed kick");
        }
        for (name, mut task) in self.background {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                late.push(name);
                task.abort();
            }
        }
        let mut pipeline = self.pipeline;
        match tokio::time::timeout_at(deadline, &mut pipeline).await {
            Ok(Ok(Some(_detector))) => {}
            Ok(Ok(None)) => tracing::warn!("the detector task had already ended"),
            Ok(Err(error)) => tracing::warn!(%error, "detector task failed"),
            Err(_) => {
                late.push("the detector (the rest of the inbox is replayed at the next start)");
                pipeline.abort();
            }
        }
        drop(self.events_keepalive);
        let mut announcer = self.announcer;
        if tokio::time::timeout_at(deadline, &mut announcer)
            .await
            .is_err()
        {
            late.push("the announcer (the rest is sent at the next start)");
            announcer.abort();
        }
        drop(self.store_thread);
        // The store finishes what is queued; a store that cannot write may take long to fail
        // each write, so its close is bounded too. What it did not flush is replayed or resent
        // at the next start; the stop still succeeds.
        match tokio::time::timeout_at(deadline + STORE_CLOSE_GRACE, self.store.close()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => late.push("the store"),
        }
        if !late.is_empty() {
            tracing::warn!(
                unfinished = %late.join(", "),
                "stopped before everything was flushed; nothing is lost: it is replayed or resent at the next start"
            );
        }
        Ok(())
    }
}

/// How long past the shared deadline the store may take to close.
const STORE_CLOSE_GRACE: Duration = Duration::from_millis(1500);

/// The Discord channel ringside announces in, and how interactions arrive.
#[derive(Debug, Clone)]
pub struct DiscordTarget {
    pub guild_id: u64,
    pub channel_id: u64,
    /// `true`: `POST /discord/interactions`; `false`: the gateway.
    pub endpoint: bool,
}

/// Starts ringside with the given announcement sink (used only in local mode: with a Discord
/// bot configured, announcements go to its channel).
pub async fn start(settings: &Settings, sink: Arc<dyn Sink>) -> anyhow::Result<Running> {
    start_with_clock(settings, sink, Arc::new(SystemClock)).await
}

pub async fn start_with_clock(
    settings: &Settings,
    sink: Arc<dyn Sink>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Running> {
    let store = Store::open(&settings.store.path)?;
    let (verification_token, generated) = verification_token(settings, &store).await?;
    let local_ringcentral = settings.ringcentral.credentials.is_none();
    let platform = match &settings.ringcentral.credentials {
        Some(credentials) => Some(platform_client(settings, credentials.clone(), &store)?),
        None => None,
    };
    // Settings guarantee a public URL whenever credentials are configured.
    let webhook_address = settings
        .server
        .public_url
        .as_ref()
        .map(|url| format!("{url}/webhooks/ringcentral"));
    let shown_verification_token =
        (generated && local_ringcentral).then(|| verification_token.expose_secret().to_owned());

    let config = DetectorConfig {
        reconcile_interval_millis: i64::try_from(settings.ringcentral.reconcile_interval_secs)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000),
        host_extensions: settings
            .ringcentral
            .host_extensions
            .iter()
            .cloned()
            .collect(),
        ..DetectorConfig::default()
    };
    let detector = restore_detector(&store, config).await;
    let roster = Roster::new();
    roster.rebuild(&detector);
    let (accepted_tx, accepted_rx) = mpsc::unbounded_channel();
    let (inputs, directed_rx) = pipeline::DetectorInputs::channel();
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let (shutdown, shutdown_rx) = crate::util::shutdown::channel();
    let (reminders_tx, reminders_rx) = mpsc::unbounded_channel();

    // Announcements committed but not sent before the last stop go first.
    let undelivered = store.undelivered().await?;
    if !undelivered.is_empty() {
        tracing::info!(
            count = undelivered.len(),
            "resending announcements not delivered before the last stop"
        );
    }
    for row in undelivered {
        match serde_json::from_str::<ConferenceEvent>(&row.event) {
            Ok(event) => {
                let _ = events_tx.send(pipeline::Announcement {
                    outbox_id: Some(row.id),
                    event,
                });
            }
            Err(error) => {
                tracing::warn!(%error, event_id = %row.event_id, "a kept announcement no longer parses; skipped")
            }
        }
    }

    let unprocessed = store.unprocessed().await?;
    let mut unusable = Vec::new();
    for row in &unprocessed {
        match pipeline::accepted_from_row(row) {
            Ok(accepted) => {
                let _ = accepted_tx.send(accepted);
            }
            Err(reason) => {
                if unusable.is_empty() {
                    tracing::warn!(inbox_id = row.id, %reason, "a stored notification can no longer be used");
                }
                unusable.push(row.id);
            }
        }
    }
    if !unprocessed.is_empty() {
        tracing::info!(
            count = unprocessed.len(),
            "replaying notifications accepted before the last stop"
        );
    }
    if !unusable.is_empty() {
        tracing::warn!(
            count = unusable.len(),
            "skipping stored rows that no longer parse"
        );
        store.mark_processed(unusable).await?;
    }

    let supervisor = Supervisor::default();
    let store_thread = supervisor.watch(
        "store",
        tokio::spawn({
            let store = store.clone();
            async move { store.ended().await }
        }),
    );
    let pipeline = tokio::spawn(
        pipeline::Pipeline::new(
            detector,
            roster.clone(),
            store.clone(),
            events_tx.clone(),
            clock.clone(),
            platform.as_ref().map(|_| reminders_tx),
            pipeline::Retention {
                inbox_millis: days(settings.store.retention_days),
                audit_millis: days(settings.store.audit_retention_days),
            },
        )
        .run(accepted_rx, directed_rx),
    );
    let public = webhook::router(WebhookState {
        verification_token: Arc::new(verification_token.clone()),
        store: store.clone(),
        accepted: accepted_tx,
        max_body_bytes: settings.server.max_body_bytes,
        deadline: settings.server.webhook_deadline,
        clock: clock.clone(),
    })
    .route("/healthz", get(|| async { (StatusCode::OK, "ok\n") }));
    // The RingCentral side: the reconciler and the kick port now; the subscription once the
    // webhook listens (creating one runs RingCentral's handshake against it).
    let mut ringcentral = None;
    if let (Some(client), Some(address)) = (&platform, &webhook_address) {
        let (reconciler, reconciler_handle) = Reconciler::new(
            client.clone(),
            roster.clone(),
            inputs.clone(),
            store.clone(),
            clock.clone(),
            Duration::from_secs(settings.ringcentral.reconcile_interval_secs),
        );
        let (manager, health) = SubscriptionManager::new(
            client.clone(),
            store.clone(),
            SubscriptionOptions {
                address: address.clone(),
                verification_token: verification_token.clone(),
                event_filters: subscription::event_filters(
                    &settings.ringcentral.event_filters,
                    settings.ringcentral.subscription_expires_in,
                ),
                expires_in: settings.ringcentral.subscription_expires_in,
                watchdog_interval: Duration::from_secs(settings.ringcentral.watchdog_interval_secs),
            },
            reconciler_handle.discover_sender(),
        );
        let kicker: Arc<dyn Kicker> = Arc::new(RcKicker {
            in_flight: Arc::default(),
            client: client.clone(),
            roster: roster.clone(),
            inputs: inputs.clone(),
            store: store.clone(),
            reconciler: reconciler_handle.clone(),
            clock: clock.clone(),
            confirm_after: Duration::from_secs(settings.ringcentral.kick_confirm_secs),
        });
        ringcentral = Some((reconciler, manager, health, kicker, reconciler_handle));
    }
    let subscription_health = ringcentral
        .as_ref()
        .map(|(_, _, health, _, _)| health.clone());

    // The Discord side, or the local-mode sink: the announcer starts now (events waited in its
    // channel), the commands once the kick port exists.
    let mut readiness: Vec<pipeline::ReadinessCheck> = vec![supervisor.readiness()];
    let mut public = public;
    let mut gateway = None;
    let mut discord_tasks = Vec::new();
    let mut discord_commands = None;
    let mut follow_ups = None;
    let announcer = match DiscordApi::from_settings(settings) {
        None => tokio::spawn(announcer::run(
            events_rx,
            roster.clone(),
            sink,
            AnnouncerSettings {
                coalesce: Duration::from_millis(settings.announce.coalesce_ms),
                phone_numbers: settings.privacy.phone_numbers,
            },
            shutdown_rx.clone(),
            Some(store.clone()),
        )),
        Some(api) => {
            let poster = Arc::new(Poster::new(api.clone())?);
            readiness.push(discord::poster_readiness(poster.reachability()));
            let announcer = tokio::spawn(announcer::run_discord(DiscordAnnouncer {
                events: events_rx,
                roster: roster.clone(),
                poster,
                store: store.clone(),
                clock: clock.clone(),
                phone_numbers: settings.privacy.phone_numbers,
                coalesce: Duration::from_millis(settings.announce.coalesce_ms),
                stale_after: Duration::from_secs(settings.announce.stale_after_secs),
                thread_per_conference: settings.announce.thread_per_conference,
                channel_id: api.channel_id,
                health: subscription_health.clone(),
                shutdown: shutdown_rx.clone(),
                drain_timeout: SHUTDOWN_GRACE,
            }));
            let commands = Commands::new(CommandDeps {
                roster: roster.clone(),
                kicker: ringcentral
                    .as_ref()
                    .map(|(_, _, _, kicker, _)| kicker.clone()),
                access: settings.access.clone(),
                guild_id: api.guild_id,
                phone_numbers: settings.privacy.phone_numbers,
                confirm_ttl: Duration::from_secs(settings.discord.confirm_secs),
                store: store.clone(),
                clock: clock.clone(),
            });
            discord_commands = Some(commands.clone());
            let responder = Responder::new(api.serenity()?);
            follow_ups = Some(responder.clone());
            // One-shot (it ends once Discord took the commands): not supervised.
            discord_tasks.push((
                "registration",
                Supervisor::unsupervised(tokio::spawn(discord::register_commands(
                    api.clone(),
                    shutdown_rx.clone(),
                ))),
            ));
            match &settings.discord.public_key {
                Some(public_key) => {
                    public = public.merge(interactions::router(InteractionsState {
                        verifier: interactions::verifier(public_key)?,
                        commands,
                        responder,
                        clock: clock.clone(),
                        max_body_bytes: settings.server.max_body_bytes,
                        seen: interactions::SeenInteractions::default(),
                    }));
                }
                None => {
                    let (connected_tx, connected_rx) = watch::channel(false);
                    readiness.push(discord_gateway::readiness(connected_rx));
                    gateway = Some((api.clone(), commands, responder, connected_tx));
                }
            }
            announcer
        }
    };

    let _ = metrics::handle();
    let mut operator = admin::probes_router(store.clone(), subscription_health.clone(), readiness);
    if let Some(token) = &settings.server.api_token {
        operator = operator.merge(admin::api_router(roster.clone(), token.clone()));
    }
    let mut servers = Vec::new();
    let limits = listener::Limits {
        header_read_timeout: settings.server.header_read_timeout,
        idle_timeout: settings.server.idle_timeout,
        max_connections: settings.server.max_connections,
    };
    let needed = u64::try_from(settings.server.max_connections)
        .unwrap_or(u64::MAX)
        .saturating_mul(2)
        .saturating_add(64);
    listener::raise_open_files_limit(needed);
    let public_listener = bind(settings.server.listen, "server.listen").await?;
    let public_addr = public_listener.local_addr()?;
    // Port 0 asks for any free port, so two zeros are two listeners, not one.
    let one_port = settings.server.admin_listen == settings.server.listen
        && settings.server.listen.port() != 0;
    let admin_addr = if one_port {
        servers.push(watched(
            &supervisor,
            "public listener",
            serve(
                public_listener,
                public.merge(operator),
                limits,
                "public",
                shutdown_rx.clone(),
            ),
        ));
        None
    } else {
        let admin_listener = bind(settings.server.admin_listen, "server.admin_listen").await?;
        let admin_addr = admin_listener.local_addr()?;
        servers.push(watched(
            &supervisor,
            "public listener",
            serve(
                public_listener,
                public,
                limits,
                "public",
                shutdown_rx.clone(),
            ),
        ));
        servers.push(watched(
            &supervisor,
            "operator listener",
            serve(
                admin_listener,
                operator,
                limits,
                "operator",
                shutdown_rx.clone(),
            ),
        ));
        Some(admin_addr)
    };

    let mut background = discord_tasks;
    if let Some((http, commands, responder, connected)) = gateway {
        background.push(watched(
            &supervisor,
            "gateway",
            discord_gateway::spawn(http, commands, responder, connected, shutdown_rx.clone()),
        ));
    }
    let mut kicker = None;
    let mut reconciler_handle = None;
    if let Some((reconciler, manager, _, kick, handle)) = ringcentral {
        background.push(watched(
            &supervisor,
            "subscription",
            tokio::spawn(manager.run(reminders_rx, shutdown_rx.clone())),
        ));
        background.push(watched(
            &supervisor,
            "reconciler",
            tokio::spawn(reconciler.run(shutdown_rx.clone())),
        ));
        kicker = Some(kick);
        reconciler_handle = Some(handle);
    }

    Ok(Running {
        commands: discord_commands,
        responder: follow_ups,
        discord: settings.discord.bot.as_ref().map(|bot| DiscordTarget {
            guild_id: bot.guild_id,
            channel_id: bot.channel_id,
            endpoint: settings.discord.public_key.is_some(),
        }),
        public_addr,
        admin_addr,
        roster,
        store,
        shown_verification_token,
        verification_token,
        kicker,
        reconciler: reconciler_handle,
        subscription: subscription_health,
        ringcentral: platform,
        background,
        inputs,
        shutdown,
        servers,
        pipeline: supervisor.watch("pipeline", pipeline),
        announcer: supervisor.watch("announcer", announcer),
        store_thread,
        events_keepalive: events_tx,
        supervisor,
    })
}

/// A supervised task with its name.
fn watched<T: Send + 'static>(
    supervisor: &Supervisor,
    name: &'static str,
    task: JoinHandle<T>,
) -> (&'static str, Watched<T>) {
    (name, supervisor.watch(name, task))
}

/// The RingCentral client with its token owner (keeping the token pair in `store`) and rate
/// groups.
pub fn platform_client(
    settings: &Settings,
    credentials: crate::config::RingCentralCredentials,
    store: &Store,
) -> anyhow::Result<Arc<RcClient>> {
    platform_client_with(settings, credentials, Some(store.clone()))
}

/// The same, with the token pair kept in `store` only when one is given.
pub fn platform_client_with(
    settings: &Settings,
    credentials: crate::config::RingCentralCredentials,
    store: Option<Store>,
) -> anyhow::Result<Arc<RcClient>> {
    let timeout = Duration::from_secs(settings.ringcentral.request_timeout_secs);
    let http = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(timeout)
        .build()
        .context("building the RingCentral HTTP client")?;
    let limits = Arc::new(RateLimits::new(
        settings.ringcentral.light_requests_per_minute,
    ));
    let auth = Arc::new(TokenOwner::new(
        http.clone(),
        AuthOptions {
            server_url: settings.ringcentral.server_url.clone(),
            credentials,
            margin: Duration::from_secs(settings.ringcentral.token_refresh_margin_secs),
            retry_base: Duration::from_secs(settings.ringcentral.auth_retry_secs),
            timeout,
        },
        store,
        limits.clone(),
    ));
    Ok(Arc::new(RcClient::new(
        http,
        settings.ringcentral.server_url.clone(),
        auth,
        limits,
        timeout,
    )))
}

fn days(days: u32) -> i64 {
    i64::from(days).saturating_mul(24 * 60 * 60 * 1000)
}

/// The detector as it was at the last commit (the roster is rebuilt from it), or a fresh one.
async fn restore_detector(store: &Store, config: DetectorConfig) -> Detector {
    match store.detector_state().await {
        Ok(Some(state)) => match serde_json::from_str::<Detector>(&state) {
            Ok(detector) => {
                let detector = detector.with_config(config);
                tracing::info!(
                    live_conferences = detector.live_conferences().len(),
                    "restored the conference state"
                );
                detector
            }
            Err(error) => {
                tracing::warn!(%error, "the stored conference state cannot be read; starting fresh");
                Detector::new(config)
            }
        },
        Ok(None) => Detector::new(config),
        Err(error) => {
            tracing::warn!(%error, "cannot read the stored conference state; starting fresh");
            Detector::new(config)
        }
    }
}

async fn bind(addr: SocketAddr, key: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("{key}: cannot listen on {addr}"))
}

fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: listener::Limits,
    name: &'static str,
    mut shutdown: Shutdown,
) -> JoinHandle<std::io::Result<()>> {
    let router = router
        // No route may hold a connection longer than this; an answer that late is a 503 (a
        // 408 or another 4xx would tell RingCentral the notification itself was wrong).
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        // Spans and responses at debug; failures are not logged here: each route logs its
        // refusals itself, throttled, and a failing store is logged once by the store.
        .layer(TraceLayer::new_for_http().on_failure(()))
        // A bug must not reset RingCentral's connection: answer 500 and keep serving.
        .layer(CatchPanicLayer::new());
    listener::serve(listener, router, limits, name, async move {
        shutdown.recv().await;
    })
}

/// The webhook secret: configured, else the one generated earlier, else a new one (stored so
/// that restarts keep it). The flag says whether ringside generated it.
async fn verification_token(
    settings: &Settings,
    store: &Store,
) -> anyhow::Result<(SecretString, bool)> {
    if let Some(token) = &settings.ringcentral.verification_token {
        return Ok((token.clone(), false));
    }
    if let Some(token) = store.get_meta(VERIFICATION_TOKEN_KEY).await? {
        return Ok((SecretString::from(token), true));
    }
    let token = crate::util::random::hex(GENERATED_TOKEN_BYTES)
        .ok_or_else(|| anyhow::anyhow!("no randomness from the OS"))?;
    store.set_meta(VERIFICATION_TOKEN_KEY, &token).await?;
    Ok((SecretString::from(token), true))
}

/// The start-up banner, on standard error (standard output carries only announcements).
pub fn banner(running: &Running) -> String {
    let mut text = format!(
        "ringside is listening on http://{}\n  webhook: {}\n",
        running.public_addr,
        running.webhook_url()
    );
    if let Some(admin) = running.admin_addr {
        text.push_str(&format!("  operator: http://{admin}\n"));
    }
    match &running.discord {
        None => text.push_str("  announcements: standard output (local mode)\n"),
        Some(discord) => text.push_str(&format!(
            "  announcements: Discord channel {} in server {}\n  interactions: {}\n",
            discord.channel_id,
            discord.guild_id,
            if discord.endpoint {
                "POST /discord/interactions (signed requests only)"
            } else {
                "the Discord gateway"
            }
        )),
    }
    if let Some(token) = &running.shown_verification_token {
        text.push_str(&format!(
            "  verification token (generated; send it as the Verification-Token header): {token}\n"
        ));
    }
    match &running.subscription {
        Some(_) => text.push_str("  RingCentral: subscription managed for this webhook\n"),
        None => text.push_str("  RingCentral: local mode (no credentials; no subscription)\n"),
    }
    text
}

/// `ringside run`: start, print the banner, wait for SIGTERM or SIGINT, stop gracefully. If a
/// core task dies first, stop all the same and fail (exit status 1), so that a supervisor
/// restarts ringside.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    // Listen for the signals before anything can tell the world ringside is up: a SIGTERM that
    // arrives right after the banner must stop it gracefully, not kill it.
    let stop = stop_signal()?;
    let running = start(&settings, Arc::new(announcer::StdoutSink)).await?;
    eprint!("{}", banner(&running));
    #[cfg(feature = "test-hooks")]
    test_hooks::arm(&running);
    let supervisor = running.supervisor.clone();
    let dead = tokio::select! {
        () = stop => None,
        name = supervisor.died() => Some(name),
    };
    tracing::info!("stopping");
    running.shutdown().await?;
    match dead {
        None => Ok(()),
        Some(name) => Err(anyhow::anyhow!(
            "core task {name} ended; stopped so that a supervisor can restart ringside"
        )),
    }
}

/// Resolves on SIGTERM or SIGINT; the handlers are installed when this returns.
fn stop_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("watching SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("watching SIGINT")?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
