//! Delivering a [`Reply`] over Discord's REST API (serenity's [`Http`], aimed at
//! `discord.api_url`).
//!
//! - Gateway mode ([`Responder::deliver`]): `Now` is POSTed to the interaction's callback;
//!   `Deferred` POSTs the ack, runs the work, then PATCHes `@original` with its result.
//! - HTTP-interactions mode: the ack is the HTTP response body, and only the follow-up goes
//!   through here ([`Responder::finish`]).
//!
//! Failures are logged and counted (`ringside_discord_interactions_total{kind,outcome}`); the
//! interaction token never appears in a log line.

use super::commands::{Reply, Work};
use serenity::all::{
    CreateInteractionResponse, EditInteractionResponse, Interaction, InteractionId,
};
use serenity::builder::Builder as _;
use serenity::http::{Http, HttpError};
use std::sync::Arc;
use std::time::Duration;

/// How long before retrying an edit Discord answered 404 (the ack may not have reached it yet).
const EDIT_RETRY_AFTER: Duration = Duration::from_millis(1000);

/// The interaction's kind, as a metric label.
pub fn kind_of(interaction: &Interaction) -> &'static str {
    match interaction {
        Interaction::Ping(_) => "ping",
        Interaction::Command(_) => "command",
        Interaction::Autocomplete(_) => "autocomplete",
        Interaction::Component(_) => "component",
        Interaction::Modal(_) => "modal",
        _ => "other",
    }
}

/// Counts one interaction outcome.
pub fn count(kind: &'static str, outcome: &'static str) {
    metrics::counter!("ringside_discord_interactions_total", "kind" => kind, "outcome" => outcome)
        .increment(1);
}

/// A serenity error in words, without the request's URL (which holds the interaction token).
pub fn describe(error: &serenity::Error) -> String {
    match error {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(response)) => format!(
            "Discord answered {}: {} (code {})",
            response.status_code, response.error.message, response.error.code
        ),
        serenity::Error::Http(HttpError::Request(request)) => {
            if request.is_timeout() {
                "the request to Discord timed out".to_owned()
            } else if request.is_connect() {
                "could not connect to Discord".to_owned()
            } else {
                "the request to Discord failed".to_owned()
            }
        }
        serenity::Error::Http(other) => other.to_string(),
        serenity::Error::Model(model) => format!("the reply was refused before sending: {model}"),
        serenity::Error::Json(json) => format!("Discord's answer was not understood: {json}"),
        _ => "Discord could not be reached".to_owned(),
    }
}

fn is_not_found(error: &serenity::Error) -> bool {
    matches!(
        error,
        serenity::Error::Http(HttpError::UnsuccessfulRequest(response))
            if response.status_code.as_u16() == 404
    )
}

/// Sends replies and follow-ups through serenity's REST client.
#[derive(Clone)]
pub struct Responder {
    http: Arc<Http>,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder").finish_non_exhaustive()
    }
}

impl Responder {
    /// `http` from [`super::api::DiscordApi::serenity`] (application id set, limiter off).
    pub fn new(http: Arc<Http>) -> Responder {
        Responder { http }
    }

    pub fn http(&self) -> &Arc<Http> {
        &self.http
    }

    /// Gateway mode: answers through the callback endpoint, then finishes deferred work.
    pub async fn deliver(&self, id: InteractionId, token: &str, kind: &'static str, reply: Reply) {
        match reply {
            Reply::Now(response) => {
                if self.callback(id, token, response, kind).await {
                    count(kind, "answered");
                }
            }
            Reply::Deferred { ack, work } => {
                if self.callback(id, token, ack, kind).await {
                    self.finish(token, work, kind).await;
                }
            }
        }
    }

    /// `POST /interactions/{id}/{token}/callback`; false (logged, counted) when it failed.
    pub async fn callback(
        &self,
        id: InteractionId,
        token: &str,
        response: CreateInteractionResponse,
        kind: &'static str,
    ) -> bool {
        match response.execute(&self.http, (id, token)).await {
            Ok(()) => true,
            Err(error) => {
                count(kind, "callback_failed");
                tracing::warn!(
                    interaction_id = %id,
                    kind,
                    error = %describe(&error),
                    "could not answer a Discord interaction"
                );
                false
            }
        }
    }

    /// Runs deferred work and edits the original response with its result (`PATCH
    /// /webhooks/{app}/{token}/messages/@original`), retrying once after a 404.
    pub async fn finish(&self, token: &str, work: Work, kind: &'static str) {
        let edit: EditInteractionResponse = work.await;
        let mut result = edit.clone().execute(&self.http, token).await;
        if let Err(error) = &result {
            if is_not_found(error) {
                tokio::time::sleep(EDIT_RETRY_AFTER).await;
                result = edit.execute(&self.http, token).await;
            }
        }
        match result {
            Ok(_) => count(kind, "deferred"),
            Err(error) => {
                count(kind, "edit_failed");
                tracing::warn!(
                    kind,
                    error = %describe(&error),
                    "could not edit a deferred Discord reply"
                );
            }
        }
    }
}
