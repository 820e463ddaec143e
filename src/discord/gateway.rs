//! The gateway transport (the default when no `discord.public_key` is configured): serenity's
//! [`Client`] with no intents — interactions arrive regardless — whose `interaction_create`
//! runs [`Commands::handle`] and delivers the reply through the [`Responder`].
//!
//! The client is built with [`ClientBuilder::new_with_http`] from an [`Http`] aimed at
//! `discord.api_url`, so awaiting the builder reads `GET /api/v10/gateway` from that base and
//! connects to the websocket URL it names (a test fake can answer both). `connected` is true from
//! READY (or a resume) until the shard leaves the connected stage, for `/readyz`.

use super::api::DiscordApi;
use super::commands::Commands;
use super::respond::{Responder, kind_of};
use secrecy::ExposeSecret;
use serenity::all::{
    ApplicationId, Client, ClientBuilder, ConnectionStage, Context, EventHandler, GatewayIntents,
    Interaction, Ready, ResumedEvent, ShardStageUpdateEvent,
};
use serenity::async_trait;
use serenity::http::{Http, HttpBuilder};
use tokio::sync::watch;
use tokio::task::JoinHandle;

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
        let reply = self.commands.handle(interaction).await;
        self.responder.deliver(id, &token, kind, reply).await;
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
/// is dropped), then stops the shards. `connected` follows the connection (see the module doc).
pub fn spawn(
    http: Http,
    commands: Commands,
    responder: Responder,
    connected: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let handler = Handler {
            commands,
            responder,
            connected: connected.clone(),
        };
        let built = ClientBuilder::new_with_http(http, GatewayIntents::empty())
            .event_handler(handler)
            .await;
        let mut client: Client = match built {
            Ok(client) => client,
            Err(error) => {
                tracing::error!(error = %super::respond::describe(&error), "could not set up the Discord gateway client");
                return;
            }
        };
        let manager = client.shard_manager.clone();
        tokio::select! {
            result = client.start() => {
                if let Err(error) = result {
                    tracing::error!(error = %super::respond::describe(&error), "the Discord gateway client stopped");
                }
            }
            () = stopped(&mut shutdown) => {
                tracing::info!("stopping the Discord gateway");
                manager.shutdown_all().await;
            }
        }
        connected.send_replace(false);
    })
}

/// Resolves once `shutdown` is true or its sender is gone.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}
