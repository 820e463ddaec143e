//! How ringside reaches Discord's REST API: one place that knows the base URL, the token and
//! the HTTP client settings.
//!
//! Two clients share these settings. The announcer's own poster ([`super::poster`]) sends channel
//! messages with a plain reqwest client so it sees every status and rate-limit header.
//! Serenity's [`Http`] does the rest (command registration, interaction responses, `check`); it
//! is always built with its rate limiter disabled, because serenity's limiter ignores the
//! `discord.api_url` base (its requests would go to discord.com) and the poster paces channel
//! posts itself. Neither client uses the system's proxy settings: a CI proxy must not capture a
//! local fake, and the bot token must not pass through a proxy nobody configured.

use crate::config::{DiscordBot, Settings};
use anyhow::Context as _;
use secrecy::{ExposeSecret, SecretString};
use serenity::http::{Http, HttpBuilder};
use serenity::model::id::ApplicationId;
use std::sync::Arc;
use std::time::Duration;

/// Discord's REST API version, in every path.
pub const API_PATH: &str = "/api/v10";
/// The timeout of every Discord request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Identifies ringside to Discord, as its API requires of bots.
pub const USER_AGENT: &str = concat!(
    "DiscordBot (https://github.com/ringside/ringside, ",
    env!("CARGO_PKG_VERSION"),
    ")"
);

/// Where and as whom ringside talks to Discord.
#[derive(Clone)]
pub struct DiscordApi {
    /// `discord.api_url`, without a trailing `/`.
    pub base_url: String,
    pub token: SecretString,
    pub application_id: u64,
    pub guild_id: u64,
    pub channel_id: u64,
}

impl std::fmt::Debug for DiscordApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordApi")
            .field("base_url", &self.base_url)
            .field("token", &"[REDACTED]")
            .field("application_id", &self.application_id)
            .field("guild_id", &self.guild_id)
            .field("channel_id", &self.channel_id)
            .finish()
    }
}

impl DiscordApi {
    /// The configured bot, or `None` in local mode.
    pub fn from_settings(settings: &Settings) -> Option<DiscordApi> {
        settings
            .discord
            .bot
            .as_ref()
            .map(|bot| DiscordApi::new(&settings.discord.api_url, bot))
    }

    pub fn new(api_url: &str, bot: &DiscordBot) -> DiscordApi {
        DiscordApi {
            base_url: api_url.trim_end_matches('/').to_owned(),
            token: bot.token.clone(),
            application_id: bot.application_id,
            guild_id: bot.guild_id,
            channel_id: bot.channel_id,
        }
    }

    /// `{api_url}/api/v10{path}`; `path` starts with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{API_PATH}{path}", self.base_url)
    }

    /// The `Authorization` header value.
    pub fn authorization(&self) -> String {
        format!("Bot {}", self.token.expose_secret())
    }

    /// A reqwest client for Discord: no system proxy, a connect timeout, ringside's user agent.
    pub fn http_client(&self) -> anyhow::Result<reqwest::Client> {
        reqwest::Client::builder()
            .no_proxy()
            .user_agent(USER_AGENT)
            .connect_timeout(REQUEST_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .context("building the Discord HTTP client")
    }

    /// Serenity's REST client aimed at `api_url`, with its rate limiter off (see the module doc).
    pub fn serenity(&self) -> anyhow::Result<Arc<Http>> {
        let http = HttpBuilder::new(self.token.expose_secret())
            .client(self.http_client()?)
            .proxy(self.base_url.clone())
            .ratelimiter_disabled(true)
            .application_id(ApplicationId::new(self.application_id))
            .build();
        Ok(Arc::new(http))
    }
}
