//! Posting one message until it is sent or parked: rate limits waited out (the poster paces
//! itself), refusals parked, a refused token and outages retried with backoff, threads created
//! from a conference's start message. A parked message an operator asked for again
//! ([`Batch::is_resend`]) is delivered the same way, and parked again if refused again.

use super::Post;
use crate::discord::poster::PostError;
use crate::store::{Batch, BatchTarget, Store};
use crate::util::backoff::Backoff;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where a batch is delivered and what it needs while being delivered.
pub(super) struct Delivery {
    pub(super) poster: Arc<dyn Post>,
    pub(super) store: Store,
    pub(super) channel_id: u64,
    /// Conference → thread, as learned this run (the store has the rest).
    pub(super) threads: Mutex<std::collections::HashMap<String, u64>>,
}

/// The first wait after a transient failure; doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait between retries of a transient failure.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// The longest wait between retries while Discord refuses the bot token.
const MAX_UNAUTHORIZED_BACKOFF: Duration = Duration::from_secs(300);
/// How many times a thread creation is tried before its conference is announced in the channel.
const THREAD_ATTEMPTS: u32 = 3;

/// The wait after `attempt` failures in a row: [`FIRST_BACKOFF`], doubling up to `max`.
fn backoff(attempt: u32, max: Duration) -> Duration {
    Backoff::new(FIRST_BACKOFF, max).wait_after(attempt)
}

/// Posts one batch until it is sent or parked (retrying rate limits, outages and a refused
/// token; a stop drops this future, leaving the batch pending for the next start).
#[tracing::instrument(
    name = "delivery",
    skip_all,
    fields(
        batch_id = batch.id,
        conference_id = batch.conference_id.as_deref().unwrap_or(""),
        nonce = %batch.nonce,
    )
)]
pub(super) async fn deliver(delivery: Arc<Delivery>, batch: Batch) {
    let channel = batch.channel_id.parse().unwrap_or(delivery.channel_id);
    let mut destination = match (batch.target, batch.conference_id.as_deref()) {
        (BatchTarget::Thread, Some(conference)) => {
            delivery.thread(conference).await.unwrap_or(channel)
        }
        _ => channel,
    };
    let mut attempt = 0u32;
    let mut limited = 0u32;
    loop {
        match delivery
            .poster
            .post_message(destination, &batch.body, &batch.files)
            .await
        {
            Ok(posted) => {
                if batch.target == BatchTarget::ThreadStart
                    && let Some(conference) = batch.conference_id.as_deref()
                {
                    let name = batch.thread_name.as_deref().unwrap_or("Conference");
                    delivery
                        .start_thread(channel, &posted.id, conference, name)
                        .await;
                }
                metrics::counter!("ringside_announcements_sent_total").increment(1);
                if batch.is_resend() {
                    metrics::counter!("ringside_announcements_resent_total").increment(1);
                    tracing::info!(batch = batch.id, nonce = %batch.nonce, "a parked announcement was sent again");
                }
                if let Err(error) = delivery.store.batch_sent(batch.id, posted.id).await {
                    // Sent again at the next start, where Discord's nonce check drops the copy.
                    tracing::warn!(%error, batch = batch.id, "could not mark an announcement sent");
                }
                return;
            }
            Err(PostError::RateLimited { .. }) => {
                // The poster waits the limit out before the next request; same body, same nonce.
                // Repeated 429s for the same message also back off, in case Discord keeps
                // answering with a wait shorter than it means.
                limited += 1;
                metrics::counter!("ringside_announcements_retried_total").increment(1);
                if limited > 1 {
                    tokio::time::sleep(backoff(limited - 1, MAX_BACKOFF)).await;
                }
            }
            Err(PostError::Refused {
                status, message, ..
            }) if destination != channel => {
                // The thread is gone or closed: the channel still takes the message.
                tracing::warn!(status, %message, "the conference's thread refused an announcement; posting in the channel");
                if let Some(conference) = batch.conference_id.as_deref() {
                    delivery.forget_thread(conference);
                }
                destination = channel;
                metrics::counter!("ringside_announcements_retried_total").increment(1);
            }
            Err(error @ PostError::Refused { .. }) => {
                metrics::counter!("ringside_announcements_parked_total").increment(1);
                if batch.is_resend() {
                    tracing::error!(%error, batch = batch.id, nonce = %batch.nonce, "Discord refused a parked announcement again; it is parked again");
                } else {
                    tracing::error!(%error, batch = batch.id, nonce = %batch.nonce, "Discord refused an announcement; it is parked");
                }
                if let Err(error) = delivery
                    .store
                    .batch_parked(batch.id, error.to_string())
                    .await
                {
                    tracing::warn!(%error, batch = batch.id, "could not mark an announcement parked");
                }
                count_parked(&delivery.store).await;
                return;
            }
            Err(PostError::Unauthorized) => {
                attempt += 1;
                metrics::counter!("ringside_announcements_retried_total").increment(1);
                tracing::error!(
                    "Discord does not accept ringside's bot token (check discord.token); \
                     announcements are kept and retried"
                );
                tokio::time::sleep(backoff(attempt, MAX_UNAUTHORIZED_BACKOFF)).await;
            }
            Err(error @ PostError::Transient { .. }) => {
                attempt += 1;
                metrics::counter!("ringside_announcements_retried_total").increment(1);
                let wait = backoff(attempt, MAX_BACKOFF);
                tracing::warn!(%error, retry_in_ms = wait.as_millis() as u64, "announcement not sent; retrying");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Sets `ringside_announcements_parked` from the store: the announcements parked now and not
/// taken to be sent again. Read rather than counted here: the retention deletes parked ones too.
pub(super) async fn count_parked(store: &Store) {
    match store.parked_count().await {
        Ok(count) => metrics::gauge!("ringside_announcements_parked").set(count as f64),
        Err(error) => tracing::debug!(%error, "cannot count the parked announcements"),
    }
}

impl Delivery {
    async fn thread(&self, conference: &str) -> Option<u64> {
        if let Some(thread) = self
            .threads
            .lock()
            .ok()
            .and_then(|threads| threads.get(conference).copied())
        {
            return Some(thread);
        }
        match self.store.conference_thread(conference).await {
            Ok(thread) => thread.and_then(|thread| thread.parse().ok()),
            Err(error) => {
                tracing::warn!(%error, "cannot read a conference's thread; posting in the channel");
                None
            }
        }
    }

    fn forget_thread(&self, conference: &str) {
        if let Ok(mut threads) = self.threads.lock() {
            threads.insert(conference.to_owned(), self.channel_id);
        }
    }

    /// Creates the conference's thread from its start message (a few tries; without a thread
    /// its messages go to the channel).
    async fn start_thread(&self, channel: u64, message_id: &str, conference: &str, name: &str) {
        for attempt in 1..=THREAD_ATTEMPTS {
            match self
                .poster
                .create_thread_from_message(channel, message_id, name)
                .await
            {
                Ok(thread) => {
                    if let Ok(id) = thread.parse::<u64>()
                        && let Ok(mut threads) = self.threads.lock()
                    {
                        threads.insert(conference.to_owned(), id);
                    }
                    if let Err(error) = self.store.set_conference_thread(conference, &thread).await
                    {
                        tracing::warn!(%error, "cannot keep a conference's thread");
                    }
                    return;
                }
                Err(PostError::RateLimited { .. }) => {}
                Err(error @ PostError::Refused { .. }) => {
                    tracing::warn!(%error, "cannot create a conference's thread; it is announced in the channel");
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, attempt, "cannot create a conference's thread yet");
                    tokio::time::sleep(backoff(attempt, MAX_BACKOFF)).await;
                }
            }
        }
    }
}
