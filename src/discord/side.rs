//! The Discord side, started in one place: the announcer posting to the channel, the slash
//! commands with their responder, the way interactions arrive (the gateway client, or the
//! `POST /discord/interactions` route), registering the commands, and the side's part of
//! `/readyz`.

use super::announcer::{self, DiscordAnnouncer};
use super::api::DiscordApi;
use super::commands::{self, Commands, Deps as CommandDeps};
use super::gateway;
use super::interactions::{self, InteractionsState};
use super::poster::{Poster, Reachability};
use super::respond::{self, Responder};
use crate::conference::Roster;
use crate::config::Settings;
use crate::pipeline::{Announcement, Clock, Kicker, Progress, ReadinessCheck, SubscriptionHealth};
use crate::store::Store;
use crate::util::backoff::Backoff;
use crate::util::shutdown::Shutdown;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// What the side needs from the rest of ringside.
pub struct Deps {
    pub store: Store,
    pub roster: Roster,
    pub clock: Arc<dyn Clock>,
    /// The detector's events, in order, with their outbox rows.
    pub events: mpsc::UnboundedReceiver<Announcement>,
    /// The kick port, when RingCentral credentials are configured.
    pub kicker: Option<Arc<dyn Kicker>>,
    /// Whether ringside can see calls (the channel is told when it cannot).
    pub health: Option<watch::Receiver<SubscriptionHealth>>,
    pub shutdown: Shutdown,
    /// How long a graceful stop keeps sending what is pending.
    pub drain_timeout: Duration,
    /// Counts the announcements finished with.
    pub progress: Progress,
}

/// Where ringside announces and how interactions arrive.
#[derive(Debug, Clone)]
pub struct Target {
    pub guild_id: u64,
    pub channel_id: u64,
    /// `true`: `POST /discord/interactions`; `false`: the gateway.
    pub endpoint: bool,
}

/// What the rest of ringside holds of the side.
#[derive(Clone)]
pub struct Handles {
    /// The handlers both transports use (the demo calls them directly).
    pub commands: Commands,
    /// Answers interactions; its deferred work (kicks) is let finish on a graceful stop.
    pub responder: Responder,
    pub target: Target,
}

/// The side, started.
pub struct Side {
    pub handles: Handles,
    pub announcer: JoinHandle<()>,
    /// `POST /discord/interactions`, when `discord.public_key` is set.
    pub routes: Option<axum::Router>,
    /// The gateway client, when interactions come over the gateway.
    pub gateway: Option<JoinHandle<()>>,
    /// Registering the commands: ends once Discord took them.
    pub registration: JoinHandle<()>,
    pub readiness: Vec<ReadinessCheck>,
}

impl Side {
    /// Starts the side for `api` (the configured bot).
    pub fn start(settings: &Settings, api: DiscordApi, deps: Deps) -> anyhow::Result<Side> {
        let poster = Arc::new(Poster::new(api.clone())?);
        let mut readiness = vec![poster_readiness(poster.reachability())];
        let announcer = tokio::spawn(announcer::run_discord(DiscordAnnouncer {
            events: deps.events,
            roster: deps.roster.clone(),
            poster,
            store: deps.store.clone(),
            clock: deps.clock.clone(),
            phone_numbers: settings.privacy.phone_numbers,
            coalesce: Duration::from_millis(settings.announce.coalesce_ms),
            stale_after: Duration::from_secs(settings.announce.stale_after_secs),
            thread_per_conference: settings.announce.thread_per_conference,
            channel_id: api.channel_id,
            health: deps.health,
            shutdown: deps.shutdown.clone(),
            drain_timeout: deps.drain_timeout,
            progress: deps.progress,
            feed: settings.announce.feed,
            timeline: settings.announce.timeline,
            roster_card: settings
                .announce
                .roster_card
                .then(|| Duration::from_millis(settings.announce.roster_edit_ms)),
            resend_poll: Some(announcer::RESEND_POLL),
        }));
        let commands = Commands::new(CommandDeps {
            roster: deps.roster,
            kicker: deps.kicker,
            access: settings.access.clone(),
            guild_id: api.guild_id,
            phone_numbers: settings.privacy.phone_numbers,
            confirm_ttl: Duration::from_secs(settings.discord.confirm_secs),
            store: deps.store,
            clock: deps.clock.clone(),
        });
        let responder = Responder::new(api.serenity()?);
        let registration = tokio::spawn(register_commands(api.clone(), deps.shutdown.clone()));
        let (routes, gateway) = match &settings.discord.public_key {
            Some(public_key) => {
                let routes = interactions::router(InteractionsState {
                    verifier: interactions::verifier(public_key)?,
                    commands: commands.clone(),
                    responder: responder.clone(),
                    clock: deps.clock,
                    max_body_bytes: settings.server.max_body_bytes,
                    seen: interactions::SeenInteractions::default(),
                });
                (Some(routes), None)
            }
            None => {
                let (connected, connected_rx) = watch::channel(false);
                readiness.push(gateway::readiness(connected_rx));
                let task = gateway::spawn(
                    api.clone(),
                    commands.clone(),
                    responder.clone(),
                    connected,
                    deps.shutdown,
                );
                (None, Some(task))
            }
        };
        Ok(Side {
            handles: Handles {
                commands,
                responder,
                target: Target {
                    guild_id: api.guild_id,
                    channel_id: api.channel_id,
                    endpoint: settings.discord.public_key.is_some(),
                },
            },
            announcer,
            routes,
            gateway,
            registration,
            readiness,
        })
    }
}

/// The first wait after a failed registration; doubles up to [`REGISTER_RETRY_MAX`].
const REGISTER_RETRY_FIRST: Duration = Duration::from_secs(2);
const REGISTER_RETRY_MAX: Duration = Duration::from_secs(300);

/// `/readyz` fails while the announcer's poster cannot reach Discord or its token is refused.
fn poster_readiness(reachability: watch::Receiver<Reachability>) -> ReadinessCheck {
    Arc::new(move || match &*reachability.borrow() {
        Reachability::Unknown | Reachability::Reachable { .. } => None,
        Reachability::Unreachable { reason, .. } => Some(format!("Discord unreachable: {reason}")),
        Reachability::Unauthorized { .. } => Some("Discord refuses the bot token".to_owned()),
    })
}

/// Registers `/participants` and `/kick` in the server by bulk overwrite (so a restart never
/// duplicates them), retrying with backoff while Discord is unreachable; gives up on stop.
async fn register_commands(api: DiscordApi, mut shutdown: Shutdown) {
    let http = match api.serenity() {
        Ok(http) => http,
        Err(error) => {
            tracing::error!(error = %format!("{error:#}"), "cannot register the Discord commands");
            return;
        }
    };
    let mut backoff = Backoff::new(REGISTER_RETRY_FIRST, REGISTER_RETRY_MAX);
    loop {
        match commands::register(&http, api.guild_id).await {
            Ok(()) => {
                tracing::info!(
                    guild_id = api.guild_id,
                    "registered /participants and /kick"
                );
                return;
            }
            Err(error) => {
                metrics::counter!("ringside_discord_command_registration_failures_total")
                    .increment(1);
                let wait = backoff.next_wait();
                tracing::warn!(
                    error = %respond::describe(&error),
                    retry_in_secs = wait.as_secs(),
                    "could not register the Discord commands"
                );
                if shutdown.sleep(wait).await {
                    return;
                }
            }
        }
    }
}
