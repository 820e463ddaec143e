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
use crate::util::backoff::Backoff;
use serenity::all::{
    CreateInteractionResponse, EditInteractionResponse, Interaction, InteractionId,
};
use serenity::builder::Builder as _;
use serenity::http::{Http, HttpError};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// The first wait before retrying an edit; doubles each time (with jitter).
const EDIT_RETRY_FIRST: Duration = Duration::from_millis(1000);
/// The longest wait between two tries of an edit.
const EDIT_RETRY_MAX: Duration = Duration::from_secs(16);
/// Tries of an edit in all: the moderator must learn whether the caller was removed, and the
/// interaction token stays valid for 15 minutes, so a short outage or a 429 is waited out.
const EDIT_ATTEMPTS: u32 = 5;

/// The span an interaction is handled in, through its deferred work: its id, kind and the member
/// who sent it (never its token).
pub fn span(interaction: &Interaction, kind: &'static str) -> tracing::Span {
    let user_id = match interaction {
        Interaction::Command(command) | Interaction::Autocomplete(command) => {
            Some(command.user.id.get())
        }
        Interaction::Component(component) => Some(component.user.id.get()),
        _ => None,
    };
    tracing::info_span!(
        "interaction",
        interaction_id = %interaction.id(),
        kind,
        user_id = user_id.unwrap_or_default(),
    )
}

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

/// Whether an edit that failed this way may succeed if sent again: a 404 (the ack may not have
/// reached Discord yet), a 429 (serenity's limiter is off, so Discord's answer comes back as an
/// error), a 5xx, or no answer at all. Editing `@original` is idempotent.
fn worth_retrying(error: &serenity::Error) -> bool {
    match error {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(response)) => {
            let status = response.status_code.as_u16();
            status == 404 || status == 429 || status >= 500
        }
        serenity::Error::Http(HttpError::Request(_)) => true,
        // A 429's body has no `code`, which serenity fails to decode.
        serenity::Error::Json(_) => true,
        _ => false,
    }
}

/// Sends replies and follow-ups through serenity's REST client.
#[derive(Clone)]
pub struct Responder {
    http: Arc<Http>,
    /// Deferred work under way (a kick and its reply edit), so a graceful stop can let it end.
    follow_ups: Arc<std::sync::Mutex<JoinSet<()>>>,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder").finish_non_exhaustive()
    }
}

impl Responder {
    /// `http` from [`super::api::DiscordApi::serenity`] (application id set, limiter off).
    pub fn new(http: Arc<Http>) -> Responder {
        Responder {
            http,
            follow_ups: Arc::default(),
        }
    }

    /// Runs [`Responder::finish`] in the background, tracked: [`Responder::wait_follow_ups`]
    /// waits for it. (A kick cut off by the process ending would leave the moderator with
    /// "Removing …" and no answer.)
    pub fn finish_later(&self, token: String, work: Work, kind: &'static str) {
        let responder = self.clone();
        let mut tasks = self
            .follow_ups
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Forget the ones already done, so the set stays small on a long run.
        while tasks.try_join_next().is_some() {}
        // The deferred work (a kick and its reply) stays in the interaction's span.
        tasks.spawn(tracing::Instrument::in_current_span(async move {
            responder.finish(&token, work, kind).await
        }));
    }

    /// Waits for the deferred work under way (callers bound it with a timeout).
    pub async fn wait_follow_ups(&self) {
        let mut tasks = std::mem::take(
            &mut *self
                .follow_ups
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        while tasks.join_next().await.is_some() {}
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
                    self.finish_later(token.to_owned(), work, kind);
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
    /// /webhooks/{app}/{token}/messages/@original`), retrying with backoff what may succeed
    /// later (see [`worth_retrying`]).
    pub async fn finish(&self, token: &str, work: Work, kind: &'static str) {
        let edit: EditInteractionResponse = work.await;
        let mut backoff = Backoff::new(EDIT_RETRY_FIRST, EDIT_RETRY_MAX);
        let mut attempt = 1;
        let result = loop {
            let result = edit.clone().execute(&self.http, token).await;
            match &result {
                Err(error) if attempt < EDIT_ATTEMPTS && worth_retrying(error) => {
                    tracing::info!(
                        kind,
                        attempt,
                        error = %describe(error),
                        "editing a deferred Discord reply failed; trying again"
                    );
                    tokio::time::sleep(backoff.next_wait()).await;
                    attempt += 1;
                }
                _ => break result,
            }
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discord::interactions::tests::{message_json, responder_for};
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A Discord whose `@original` edits fail `failures` times with `status`, then succeed.
    async fn flaky_discord(failures: usize, status: StatusCode) -> (String, Arc<AtomicUsize>) {
        let tries = Arc::new(AtomicUsize::new(0));
        let seen = tries.clone();
        let app = axum::Router::new().fallback(move || {
            let seen = seen.clone();
            async move {
                let attempt = seen.fetch_add(1, Ordering::SeqCst);
                if attempt < failures {
                    return (
                        status,
                        axum::Json(serde_json::json!({"message": "try later", "retry_after": 0.1, "global": false})),
                    )
                        .into_response();
                }
                axum::Json(message_json("done"))
                .into_response()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), tries)
    }

    fn done() -> Work {
        Box::pin(async { EditInteractionResponse::new().content("done") })
    }

    #[tokio::test]
    async fn an_edit_is_retried_through_429s_and_outages_until_discord_takes_it() {
        for status in [StatusCode::TOO_MANY_REQUESTS, StatusCode::BAD_GATEWAY] {
            let (base, tries) = flaky_discord(2, status).await;
            responder_for(&base)
                .finish("tok", done(), "component")
                .await;
            assert_eq!(
                tries.load(Ordering::SeqCst),
                3,
                "{status}: two failures, then the edit"
            );
        }
    }

    #[tokio::test]
    async fn a_refused_edit_is_not_repeated() {
        let (base, tries) = flaky_discord(10, StatusCode::FORBIDDEN).await;
        responder_for(&base)
            .finish("tok", done(), "component")
            .await;
        assert_eq!(tries.load(Ordering::SeqCst), 1);
    }
}
