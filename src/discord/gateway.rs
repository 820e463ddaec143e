//! The gateway transport (the default when no `discord.public_key` is configured): serenity's
//! [`Client`] with no intents — interactions arrive regardless — whose `interaction_create`
//! runs [`Commands::handle`] and delivers the reply through the [`Responder`].
//!
//! The client is built with [`ClientBuilder::new_with_http`] from an [`Http`] aimed at
//! `discord.api_url`, so awaiting the builder reads `GET /api/v10/gateway` from that base and
//! connects to the websocket URL it names (a test fake can answer both). `connected` is true from
//! READY (or a resume) until the shard leaves the connected stage, for `/readyz`. Serenity does
//! not tell the handler every such change (a connection reset followed by a failed resume
//! restarts the shard without a stage-update event), so the shard manager's view of its runners
//! is also read every [`STAGE_POLL`].

use super::api::DiscordApi;
use super::commands::Commands;
use super::respond::{Responder, kind_of};
use crate::util::backoff::Backoff;
use crate::util::shutdown::Shutdown;
use secrecy::ExposeSecret;
use serenity::all::{
    ApplicationId, Client, ClientBuilder, ConnectionStage, Context, EventHandler, GatewayIntents,
    Interaction, Ready, ResumedEvent, ShardStageUpdateEvent,
};
use serenity::async_trait;
use serenity::gateway::ShardManager;
use serenity::http::{Http, HttpBuilder};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often the shards' connection stage is read for `connected` (an in-memory read).
pub const STAGE_POLL: Duration = Duration::from_millis(250);

struct Handler {
    commands: Commands,
    responder: Responder,
    connected: watch::Sender<bool>,
}

#[async_trait]
impl EventHandler for Handler {
    async fn ready(&self, _ctx: Context, ready: Ready) {
        tracing::info!(
            user = %ready.user.name,
            guilds = ready.guilds.len(),
            "connected to the Discord gateway"
        );
        self.connected.send_replace(true);
    }

    async fn resume(&self, _ctx: Context, _event: ResumedEvent) {
        self.connected.send_replace(true);
    }

    async fn shard_stage_update(&self, _ctx: Context, event: ShardStageUpdateEvent) {
        if event.new != ConnectionStage::Connected && event.old == ConnectionStage::Connected {
            tracing::warn!(stage = %event.new, "the Discord gateway connection was lost");
            self.connected.send_replace(false);
        }
    }

    async fn interaction_create(&self, _ctx: Context, interaction: Interaction) {
        let id = interaction.id();
        let token = interaction.token().to_owned();
        let kind = kind_of(&interaction);
        let span = super::respond::span(&interaction, kind);
        let answer = async {
            let reply = self.commands.handle(interaction).await;
            self.responder.deliver(id, &token, kind, reply).await;
        };
        tracing::Instrument::instrument(answer, span).await;
    }
}

/// A serenity REST client for the gateway client (it takes its own, by value): same base URL,
/// token and settings as [`DiscordApi::serenity`].
pub fn gateway_http(api: &DiscordApi) -> anyhow::Result<Http> {
    Ok(HttpBuilder::new(api.token.expose_secret())
        .client(api.http_client()?)
        .proxy(api.base_url.clone())
        .ratelimiter_disabled(true)
        .application_id(ApplicationId::new(api.application_id))
        .build())
}

/// Connects to the gateway and serves interactions until `shutdown` turns true (or its sender
/// is gone). A client that stops for good — the token refused, the gateway refusing the
/// session — is logged, shows in `/readyz` (not connected) and is started again after a backoff:
/// the task itself never ends before `shutdown`.
pub fn spawn(
    api: DiscordApi,
    commands: Commands,
    responder: Responder,
    connected: watch::Sender<bool>,
    mut shutdown: Shutdown,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = Backoff::new(GATEWAY_RETRY_FIRST, GATEWAY_RETRY_MAX);
        loop {
            if !connect_once(&api, &commands, &responder, &connected, &mut shutdown).await {
                break;
            }
            connected.send_replace(false);
            let wait = backoff.next_wait();
            tracing::warn!(
                retry_in_secs = wait.as_secs(),
                "the Discord gateway client stopped; starting it again"
            );
            if shutdown.sleep(wait).await {
                break;
            }
        }
        connected.send_replace(false);
    })
}

/// One gateway client from start to stop; `false` when ringside is stopping.
async fn connect_once(
    api: &DiscordApi,
    commands: &Commands,
    responder: &Responder,
    connected: &watch::Sender<bool>,
    shutdown: &mut Shutdown,
) -> bool {
    let http = match gateway_http(api) {
        Ok(http) => http,
        Err(error) => {
            tracing::error!(error = %format!("{error:#}"), "could not set up the Discord gateway client");
            return true;
        }
    };
    // Serenity falls back to discord.com's gateway when `GET /gateway` fails, whatever
    // `discord.api_url` says; ask first (retrying), and hand it the answer.
    let Some(url) = gateway_url(&http, shutdown).await else {
        return false;
    };
    let handler = Handler {
        commands: commands.clone(),
        responder: responder.clone(),
        connected: connected.clone(),
    };
    let built = ClientBuilder::new_with_http(http, GatewayIntents::empty())
        .event_handler(handler)
        .await;
    let mut client: Client = match built {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(error = %super::respond::describe(&error), "could not set up the Discord gateway client");
            return true;
        }
    };
    *client.ws_url.lock().await = url;
    let manager = client.shard_manager.clone();
    tokio::select! {
        () = follow_stage(manager.clone(), connected.clone()) => true,
        result = client.start() => {
            if let Err(error) = result {
                tracing::error!(error = %super::respond::describe(&error), "the Discord gateway client stopped");
            }
            true
        }
        () = shutdown.recv() => {
            tracing::info!("stopping the Discord gateway");
            manager.shutdown_all().await;
            false
        }
    }
}

/// The first wait after a failed `GET /gateway`; doubles up to [`GATEWAY_RETRY_MAX`].
const GATEWAY_RETRY_FIRST: Duration = Duration::from_secs(2);
const GATEWAY_RETRY_MAX: Duration = Duration::from_secs(60);

/// The gateway's address from `GET /gateway` at `discord.api_url`, retried with backoff until it
/// answers; `None` when ringside stops first.
async fn gateway_url(http: &Http, shutdown: &mut Shutdown) -> Option<String> {
    let mut backoff = Backoff::new(GATEWAY_RETRY_FIRST, GATEWAY_RETRY_MAX);
    loop {
        let wait = match http.get_gateway().await {
            Ok(gateway) => return Some(gateway.url),
            Err(error) => {
                let wait = backoff.next_wait();
                tracing::warn!(
                    error = %super::respond::describe(&error),
                    retry_in_secs = wait.as_secs(),
                    "cannot read the Discord gateway's address"
                );
                wait
            }
        };
        if shutdown.sleep(wait).await {
            return None;
        }
    }
}

/// Keeps `connected` equal to "a shard runner is in the connected stage", every
/// [`STAGE_POLL`]; never returns. A restarted shard's runner leaves the map (and a new one is
/// added only once its websocket opened), so a gateway that went away reads as not connected.
async fn follow_stage(manager: Arc<ShardManager>, connected: watch::Sender<bool>) {
    loop {
        tokio::time::sleep(STAGE_POLL).await;
        let up = manager
            .runners
            .lock()
            .await
            .values()
            .any(|runner| runner.stage == ConnectionStage::Connected);
        connected.send_if_modified(|current| {
            let changed = *current != up;
            if changed && !up {
                tracing::warn!("the Discord gateway connection was lost");
            }
            *current = up;
            changed
        });
    }
}

/// The `/readyz` check for the gateway: fine while `connected` is true.
pub fn readiness(connected: watch::Receiver<bool>) -> crate::pipeline::ReadinessCheck {
    std::sync::Arc::new(move || {
        (!*connected.borrow()).then(|| "Discord gateway not connected".to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DiscordBot;
    use crate::discord::commands::tests::{GUILD, command_json, harness, plain_member};
    use crate::discord::interactions::tests::{fake_discord_with, responder_for};
    use futures_util::{SinkExt, StreamExt};
    use serde_json::{Value, json};
    use std::time::Duration;
    use tokio_tungstenite::tungstenite::Message;

    /// A one-connection fake gateway: Hello, wait for Identify, READY, one INTERACTION_CREATE,
    /// then heartbeat ACKs until the client goes.
    async fn fake_gateway(interaction: Value) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}", listener.local_addr().unwrap());
        let resume = url.clone();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
            let send = |value: Value| Message::Text(value.to_string());
            ws.send(send(json!({"op": 10, "d": {"heartbeat_interval": 45_000}})))
                .await
                .unwrap();
            while let Some(Ok(frame)) = ws.next().await {
                let Message::Text(text) = frame else { continue };
                let payload: Value = serde_json::from_str(&text).unwrap();
                match payload["op"].as_u64() {
                    Some(2) => {
                        ws.send(send(json!({"op": 0, "t": "READY", "s": 1, "d": {
                            "v": 10,
                            "user": {"id": "1", "username": "ringside", "discriminator": "0",
                                     "avatar": null, "bot": true, "verified": true,
                                     "mfa_enabled": false, "flags": 0},
                            "guilds": [{"id": GUILD.to_string(), "unavailable": true}],
                            "session_id": "session", "resume_gateway_url": resume,
                            "application": {"id": "1", "flags": 0}
                        }})))
                        .await
                        .unwrap();
                        ws.send(send(json!({"op": 0, "t": "INTERACTION_CREATE", "s": 2,
                                            "d": interaction})))
                            .await
                            .unwrap();
                    }
                    Some(1) => {
                        let _ = ws.send(send(json!({"op": 11}))).await;
                    }
                    _ => {}
                }
            }
        });
        url
    }

    #[tokio::test]
    async fn the_gateway_connects_answers_an_interaction_and_stops_on_shutdown() {
        let interaction = command_json(2, "participants", json!([]), plain_member());
        let ws_url = fake_gateway(interaction).await;
        let (base, seen) = fake_discord_with(Some(ws_url)).await;
        let h = harness();
        let api = DiscordApi::new(
            &base,
            &DiscordBot {
                token: secrecy::SecretString::from("bot-token"),
                application_id: 1,
                guild_id: GUILD,
                channel_id: 20,
            },
        );
        let (connected_tx, mut connected) = watch::channel(false);
        let (stop, shutdown) = crate::util::shutdown::channel();
        let task = spawn(
            api.clone(),
            h.commands.clone(),
            responder_for(&base),
            connected_tx,
            shutdown,
        );
        tokio::time::timeout(Duration::from_secs(10), connected.wait_for(|up| *up))
            .await
            .expect("READY within 10 s")
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let callback = seen
                .lock()
                .unwrap()
                .iter()
                .find(|(_, path, _)| path.ends_with("/callback"))
                .cloned();
            if let Some((method, path, body)) = callback {
                assert_eq!(method, "POST");
                assert_eq!(path, "/api/v10/interactions/900/interaction-token/callback");
                assert!(
                    body["data"]["content"]
                        .as_str()
                        .unwrap()
                        .contains("Paco Vu")
                );
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no callback arrived"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.stop();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the gateway stops on shutdown")
            .unwrap();
        assert!(!*connected.borrow());
        assert_eq!(
            readiness(connected)().as_deref(),
            Some("Discord gateway not connected")
        );
    }
}
