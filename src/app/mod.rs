//! Wiring: opens the store, restores and replays, starts the detector task, the announcer and
//! the listeners, and shuts them down in order. Knows no protocol details.

pub mod admin;
#[cfg(feature = "simulator")]
pub mod demo;
pub mod logging;
pub mod metrics;
pub mod pipeline;
pub mod replay;

use crate::conference::{Detector, DetectorConfig, Roster};
use crate::config::Settings;
use crate::discord::announcer::{self, AnnouncerSettings, Sink};
use crate::ringcentral::webhook::{self, Clock, SystemClock, WebhookState};
use crate::store::Store;
use anyhow::Context as _;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use secrecy::{ExposeSecret, SecretString};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
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
    /// Set only when ringside generated the token and no RingCentral group is configured: the
    /// one case where showing it is safe (it protects nothing real yet).
    pub shown_verification_token: Option<String>,
    verification_token: SecretString,
    shutdown: watch::Sender<bool>,
    servers: Vec<JoinHandle<std::io::Result<()>>>,
    pipeline: JoinHandle<Detector>,
    announcer: JoinHandle<()>,
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
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        for server in self.servers {
            match tokio::time::timeout(SHUTDOWN_GRACE, server).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(error))) => tracing::warn!(%error, "listener stopped with an error"),
                Ok(Err(error)) => tracing::warn!(%error, "listener task failed"),
                Err(_) => tracing::warn!("listener did not stop in time"),
            }
        }
        match tokio::time::timeout(SHUTDOWN_GRACE, self.pipeline).await {
            Ok(Ok(_detector)) => {}
            Ok(Err(error)) => tracing::warn!(%error, "detector task failed"),
            Err(_) => tracing::warn!("detector task did not drain in time"),
        }
        if tokio::time::timeout(SHUTDOWN_GRACE, self.announcer)
            .await
            .is_err()
        {
            tracing::warn!("announcer did not drain in time");
        }
        self.store.close().await.context("closing the store")?;
        Ok(())
    }
}

/// Starts ringside with the given announcement sink.
pub async fn start(settings: &Settings, sink: Arc<dyn Sink>) -> anyhow::Result<Running> {
    start_with_clock(settings, sink, Arc::new(SystemClock)).await
}

pub async fn start_with_clock(
    settings: &Settings,
    sink: Arc<dyn Sink>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Running> {
    if settings.discord.bot.is_some() {
        anyhow::bail!(
            "config: discord: this build announces on standard output only; remove the discord.token, application_id, guild_id and channel_id settings"
        );
    }
    let store = Store::open(&settings.store.path)?;
    let (verification_token, generated) = verification_token(settings, &store).await?;
    let local_ringcentral = settings.ringcentral.credentials.is_none();
    if !local_ringcentral {
        tracing::warn!(
            "RingCentral credentials are configured, but this build manages no subscription yet: it accepts notifications that carry the verification token (ringcentral.verification_token, or the one generated and kept in the store)"
        );
    }
    let shown_verification_token =
        (generated && local_ringcentral).then(|| verification_token.expose_secret().to_owned());

    let detector = Detector::new(DetectorConfig {
        reconcile_interval_millis: i64::try_from(settings.ringcentral.reconcile_interval_secs)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000),
        ..DetectorConfig::default()
    });
    let roster = Roster::new();
    let (accepted_tx, accepted_rx) = mpsc::unbounded_channel();
    let (directed_tx, directed_rx) = mpsc::unbounded_channel();
    let inputs = pipeline::DetectorInputs::new(directed_tx);
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let (shutdown, shutdown_rx) = watch::channel(false);

    let unprocessed = store.unprocessed().await?;
    let mut unusable = Vec::new();
    for row in &unprocessed {
        match pipeline::accepted_from_row(row) {
            Some(accepted) => {
                let _ = accepted_tx.send(accepted);
            }
            None => unusable.push(row.id),
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

    let pipeline = tokio::spawn(
        pipeline::Pipeline {
            detector,
            roster: roster.clone(),
            store: store.clone(),
            events: events_tx,
            clock: clock.clone(),
            reminders: None,
        }
        .run(accepted_rx, directed_rx),
    );
    let announcer = tokio::spawn(announcer::run(
        events_rx,
        roster.clone(),
        sink,
        AnnouncerSettings {
            coalesce: Duration::from_millis(settings.announce.coalesce_ms),
            phone_numbers: settings.privacy.phone_numbers,
        },
        shutdown_rx.clone(),
    ));

    let public = webhook::router(WebhookState {
        verification_token: Arc::new(verification_token.clone()),
        store: store.clone(),
        accepted: accepted_tx,
        max_body_bytes: settings.server.max_body_bytes,
        clock,
    })
    .route("/healthz", get(|| async { (StatusCode::OK, "ok\n") }));
    let _ = metrics::handle();
    let mut operator = admin::probes_router(store.clone());
    if let Some(token) = &settings.server.api_token {
        operator = operator.merge(admin::api_router(roster.clone(), token.clone()));
    }
    let mut servers = Vec::new();
    let public_listener = bind(settings.server.listen, "server.listen").await?;
    let public_addr = public_listener.local_addr()?;
    // Port 0 asks for any free port, so two zeros are two listeners, not one.
    let one_port = settings.server.admin_listen == settings.server.listen
        && settings.server.listen.port() != 0;
    let admin_addr = if one_port {
        servers.push(serve(
            public_listener,
            public.merge(operator),
            shutdown_rx.clone(),
        ));
        None
    } else {
        let admin_listener = bind(settings.server.admin_listen, "server.admin_listen").await?;
        let admin_addr = admin_listener.local_addr()?;
        servers.push(serve(public_listener, public, shutdown_rx.clone()));
        servers.push(serve(admin_listener, operator, shutdown_rx));
        Some(admin_addr)
    };

    Ok(Running {
        public_addr,
        admin_addr,
        roster,
        store,
        shown_verification_token,
        verification_token,
        shutdown,
        servers,
        pipeline,
        announcer,
    })
}

async fn bind(addr: SocketAddr, key: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("{key}: cannot listen on {addr}"))
}

fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<std::io::Result<()>> {
    let router = router
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(TraceLayer::new_for_http());
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
            })
            .await
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
    let mut bytes = [0u8; GENERATED_TOKEN_BYTES];
    getrandom::fill(&mut bytes)
        .map_err(|error| anyhow::anyhow!("no randomness for a verification token: {error}"))?;
    let token: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
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
    text.push_str("  announcements: standard output (local mode)\n");
    if let Some(token) = &running.shown_verification_token {
        text.push_str(&format!(
            "  verification token (generated; send it as the Verification-Token header): {token}\n"
        ));
    }
    text
}

/// `ringside run`: start, print the banner, wait for SIGTERM or SIGINT, stop gracefully.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let running = start(&settings, Arc::new(announcer::StdoutSink)).await?;
    eprint!("{}", banner(&running));
    wait_for_signal().await;
    tracing::info!("stopping");
    running.shutdown().await
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                return;
            }
            _ => tracing::warn!("cannot watch SIGTERM/SIGINT; falling back to Ctrl-C"),
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
