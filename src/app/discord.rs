//! Background work of the Discord side that belongs to the service's lifetime: registering the
//! slash commands (retried until Discord takes them) and the poster's part of `/readyz`.

use crate::discord::api::DiscordApi;
use crate::discord::commands;
use crate::discord::poster::Reachability;
use crate::discord::respond;
use crate::pipeline::ReadinessCheck;
use crate::util::backoff::Backoff;
use crate::util::shutdown::Shutdown;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The first wait after a failed registration; doubles up to [`REGISTER_RETRY_MAX`].
const REGISTER_RETRY_FIRST: Duration = Duration::from_secs(2);
const REGISTER_RETRY_MAX: Duration = Duration::from_secs(300);

/// `/readyz` fails while the announcer's poster cannot reach Discord or its token is refused.
pub fn poster_readiness(reachability: watch::Receiver<Reachability>) -> ReadinessCheck {
    Arc::new(move || match &*reachability.borrow() {
        Reachability::Unknown | Reachability::Reachable { .. } => None,
        Reachability::Unreachable { reason, .. } => Some(format!("Discord unreachable: {reason}")),
        Reachability::Unauthorized { .. } => Some("Discord refuses the bot token".to_owned()),
    })
}

/// Registers `/participants` and `/kick` in the server by bulk overwrite (so a restart never
/// duplicates them), retrying with backoff while Discord is unreachable; gives up on stop.
pub async fn register_commands(api: DiscordApi, mut shutdown: Shutdown) {
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
