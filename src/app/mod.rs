//! Wiring: ringside started in order, and stopped in order.
//!
//! Start-up, in [`start_with_clock`]: open the store (private files) and take the webhook
//! secret; start the hub ([`hub`]: restore the detector, queue unsent announcements, replay
//! unprocessed notifications, spawn the pipeline task); read the contacts file into the roster
//! and watch it ([`contacts`]); set the watch list; build the RingCentral side (client,
//! reconciler, subscription manager, kick port — not yet running); start the Discord side (or
//! the local-mode announcer); open the public and the operator listeners with their routes;
//! then run the RingCentral side, whose subscription's handshake needs the webhook listening.
//! The settings file is followed for the watch list and `[access]` ([`reload`]).
//! Every long-running task is supervised ([`supervise`]). The stop ([`Running::shutdown`])
//! runs the other way: listeners, confirmed kicks, background tasks, the detector, the
//! announcer, the store — under one deadline.
//!
//! This module knows no protocol details: each side builds itself (`ringcentral::Side`,
//! `discord::Side`); the app composes them.

pub mod admin;
pub mod contacts;
#[cfg(feature = "simulator")]
pub mod demo;
mod hub;
pub mod init;
pub mod listener;
pub mod logging;
pub mod maintenance;
pub mod metrics;
pub mod operator;
pub mod parked;
pub mod reload;
pub mod replay;
mod running;
pub mod supervise;
#[cfg(feature = "test-hooks")]
pub mod test_hooks;

pub use running::Running;

use crate::conference::Roster;
use crate::config::Settings;
use crate::discord::announcer::{self, AnnouncerSettings, Sink};
use crate::discord::api::DiscordApi;
use crate::pipeline::{Clock, ReadinessCheck, SystemClock};
use crate::ringcentral::intake::Intake;
use crate::ringcentral::webhook::{self, WebhookState};
use crate::store::Store;
use crate::util::shutdown::{self, Shutdown};
use anyhow::Context as _;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use secrecy::{ExposeSecret, SecretString};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use supervise::{Supervisor, Watched};
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

/// Starts ringside with the given announcement sink (used only in local mode: with a Discord
/// bot configured, announcements go to its channel).
pub async fn start(settings: &Settings, sink: Arc<dyn Sink>) -> anyhow::Result<Running> {
    start_with_clock(settings, sink, Arc::new(SystemClock)).await
}

/// [`start`] with the clock every stage stamps and compares times with.
pub async fn start_with_clock(
    settings: &Settings,
    sink: Arc<dyn Sink>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Running> {
    let store = Store::open(&settings.store.path)?;
    let (verification_token, generated) = verification_token(settings, &store).await?;
    let supervisor = Supervisor::default();
    let (stop, shutdown) = shutdown::channel();
    let store_thread = supervisor.watch("store", tokio::spawn(ended(store.clone())));
    let hub = hub::start(settings, &store, clock.clone()).await?;
    // Before the announcer starts, so the first line already shows the contacts' names.
    let contacts = contacts::start(settings, &hub.roster, shutdown.clone());
    hub.roster
        .set_watch_list(crate::conference::WatchList::new(&settings.watch));
    let intake = Intake {
        store: store.clone(),
        accepted: hub.accepted,
        clock: clock.clone(),
        progress: hub.progress.clone(),
    };
    let ringcentral = crate::ringcentral::Side::build(
        settings,
        crate::ringcentral::Deps {
            store: store.clone(),
            roster: hub.roster.clone(),
            inputs: hub.inputs.clone(),
            clock: clock.clone(),
            verification_token: verification_token.clone(),
            intake: intake.clone(),
        },
    )?;
    let rc = ringcentral.as_ref().map(crate::ringcentral::Side::handles);
    let deps = crate::discord::Deps {
        store: store.clone(),
        roster: hub.roster.clone(),
        clock: clock.clone(),
        events: hub.events,
        kicker: rc.as_ref().map(|rc| rc.kicker.clone()),
        health: rc.as_ref().map(|rc| rc.health.clone()),
        shutdown: shutdown.clone(),
        drain_timeout: SHUTDOWN_GRACE,
        progress: hub.progress.clone(),
    };
    let announcing = announcing(settings, sink, deps)?;
    let mut readiness = vec![supervisor.readiness()];
    readiness.extend(announcing.readiness);
    let mut background = supervised(&supervisor, announcing.tasks);
    // Not a core task: without reloads the names read last stay, and announcing goes on.
    background.extend(contacts.map(|task| ("contacts", Supervisor::unsupervised(task))));
    // Not a core task either: without reloads the watch list and access read at start stay.
    let reload = reload::start(
        settings,
        &hub.roster,
        announcing.discord.as_ref().map(|d| d.commands.clone()),
        shutdown.clone(),
    );
    background.extend(reload.map(|task| ("settings reload", Supervisor::unsupervised(task))));
    let webhook = WebhookState {
        verification_token: Arc::new(verification_token.clone()),
        intake,
        max_body_bytes: settings.server.max_body_bytes,
        deadline: settings.server.webhook_deadline,
    };
    let public = public_router(webhook, announcing.routes);
    readiness.extend(rc.iter().flat_map(|rc| rc.readiness()));
    let operator = operator_router(settings, &store, &hub.roster, rc.as_ref(), readiness);
    let (servers, public_addr, admin_addr) =
        listen(settings, public, operator, &supervisor, &shutdown).await?;
    if let (Some(side), Some(reminders)) = (ringcentral, hub.reminders) {
        let tasks = side.run(reminders, &shutdown).into_iter();
        background.extend(supervised(
            &supervisor,
            tasks.map(|(name, task)| (name, task, true)),
        ));
    }
    let shown_verification_token = (generated && settings.ringcentral.credentials.is_none())
        .then(|| verification_token.expose_secret().to_owned());
    Ok(Running {
        public_addr,
        admin_addr,
        roster: hub.roster,
        store,
        inputs: hub.inputs,
        progress: hub.progress,
        ringcentral: rc,
        discord: announcing.discord,
        shown_verification_token,
        verification_token,
        tasks: running::Tasks {
            stop,
            servers,
            background,
            pipeline: supervisor.watch("pipeline", hub.task),
            announcer: supervisor.watch("announcer", announcing.announcer),
            store_thread,
            events_keepalive: hub.events_keepalive,
        },
        supervisor,
    })
}

async fn ended(store: Store) {
    store.ended().await
}

/// The announcer, and with a bot configured the rest of the Discord side.
struct Announcing {
    announcer: JoinHandle<()>,
    discord: Option<crate::discord::Handles>,
    /// `POST /discord/interactions`, when that is how interactions arrive.
    routes: Option<Router>,
    readiness: Vec<ReadinessCheck>,
    /// Named tasks, and whether each is supervised (registering the commands is one-shot).
    tasks: Vec<(&'static str, JoinHandle<()>, bool)>,
}

/// The Discord side when a bot is configured; else local mode: plain lines on `sink`.
fn announcing(
    settings: &Settings,
    sink: Arc<dyn Sink>,
    deps: crate::discord::Deps,
) -> anyhow::Result<Announcing> {
    let Some(api) = DiscordApi::from_settings(settings) else {
        let announcer = tokio::spawn(announcer::run(
            deps.events,
            deps.roster,
            sink,
            AnnouncerSettings {
                coalesce: Duration::from_millis(settings.announce.coalesce_ms),
                phone_numbers: settings.privacy.phone_numbers,
            },
            deps.shutdown,
            Some(deps.store),
            deps.progress,
        ));
        return Ok(Announcing {
            announcer,
            discord: None,
            routes: None,
            readiness: vec![],
            tasks: vec![],
        });
    };
    let side = crate::discord::Side::start(settings, api, deps)?;
    let mut tasks = vec![("registration", side.registration, false)];
    tasks.extend(side.gateway.map(|gateway| ("gateway", gateway, true)));
    Ok(Announcing {
        announcer: side.announcer,
        discord: Some(side.handles),
        routes: side.routes,
        readiness: side.readiness,
        tasks,
    })
}

/// The public listener's routes: the webhook, `/healthz`, and the Discord interactions route
/// when there is one.
fn public_router(webhook: WebhookState, interactions: Option<Router>) -> Router {
    let public =
        webhook::router(webhook).route("/healthz", get(|| async { (StatusCode::OK, "ok\n") }));
    match interactions {
        Some(routes) => public.merge(routes),
        None => public,
    }
}

/// The operator listener's routes: `/readyz`, `/metrics`, and `/api/conferences` when
/// `server.api_token` is set.
fn operator_router(
    settings: &Settings,
    store: &Store,
    roster: &Roster,
    ringcentral: Option<&crate::ringcentral::Handles>,
    readiness: Vec<ReadinessCheck>,
) -> Router {
    let _ = metrics::install(metrics::Parts {
        ringcentral: ringcentral.is_some(),
        websocket: settings.ringcentral.delivery == crate::config::Delivery::WebSocket,
    });
    // A dead core task has no metric of its own (the process exits with it); the restart that
    // follows shows as a new start time (deploy/prometheus/alerts.yml, RingsideRestarted).
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64());
    ::metrics::gauge!("ringside_start_time_seconds").set(started);
    let health = ringcentral.map(|rc| rc.health.clone());
    let mut operator = admin::probes_router(store.clone(), health, readiness);
    if let Some(token) = &settings.server.api_token {
        operator = operator.merge(admin::api_router(roster.clone(), token.clone()));
    }
    operator
}

type Servers = Vec<(&'static str, Watched<std::io::Result<()>>)>;

/// Opens the listeners: two, or one for both route sets when both addresses are the same.
async fn listen(
    settings: &Settings,
    public: Router,
    operator: Router,
    supervisor: &Supervisor,
    shutdown: &Shutdown,
) -> anyhow::Result<(Servers, SocketAddr, Option<SocketAddr>)> {
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
    let serve = |listener, router, name| serve(listener, router, limits, name, shutdown.clone());
    // Port 0 asks for any free port, so two zeros are two listeners, not one.
    if settings.server.admin_listen == settings.server.listen && settings.server.listen.port() != 0
    {
        let task = serve(public_listener, public.merge(operator), "public");
        return Ok((
            vec![watched(supervisor, "public listener", task)],
            public_addr,
            None,
        ));
    }
    let admin_listener = bind(settings.server.admin_listen, "server.admin_listen").await?;
    let admin_addr = admin_listener.local_addr()?;
    let servers = vec![
        watched(
            supervisor,
            "public listener",
            serve(public_listener, public, "public"),
        ),
        watched(
            supervisor,
            "operator listener",
            serve(admin_listener, operator, "operator"),
        ),
    ];
    Ok((servers, public_addr, Some(admin_addr)))
}

/// Named tasks, supervised unless flagged otherwise (one-shot work such as registering the
/// commands ends when done).
fn supervised(
    supervisor: &Supervisor,
    tasks: impl IntoIterator<Item = (&'static str, JoinHandle<()>, bool)>,
) -> Vec<(&'static str, Watched<()>)> {
    tasks
        .into_iter()
        .map(|(name, task, watch)| match watch {
            true => watched(supervisor, name, task),
            false => (name, Supervisor::unsupervised(task)),
        })
        .collect()
}

/// A supervised task with its name.
fn watched<T: Send + 'static>(
    supervisor: &Supervisor,
    name: &'static str,
    task: JoinHandle<T>,
) -> (&'static str, Watched<T>) {
    (name, supervisor.watch(name, task))
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
    match running.discord.as_ref().map(|discord| &discord.target) {
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
    match running.ringcentral.as_ref().map(|rc| rc.delivery) {
        Some(crate::config::Delivery::Webhook) => {
            text.push_str("  RingCentral: subscription managed for this webhook\n")
        }
        Some(crate::config::Delivery::WebSocket) => text.push_str(
            "  RingCentral: notifications over RingCentral's WebSocket (no public address needed)\n",
        ),
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
