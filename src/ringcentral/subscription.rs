//! The webhook subscription's lifecycle (the README's "Connecting to RingCentral";
//! `docs/ringcentral.md` §3).
//!
//! At start, reuse the stored subscription only when ringside holds its verification token and
//! its address is this webhook, and it is `Active`; otherwise delete what cannot be trusted and
//! create a new one (RingCentral never returns the token and cannot change `deliveryMode`).
//! What ringside deletes is exactly: the subscription whose id it stored (whatever its address),
//! and any WebHook subscription at its own address other than the one it keeps. Every other
//! subscription of the same app and user — a staging instance, a blue/green twin, another
//! integration, any WebSocket subscription — is listed in the log and left alone.
//!
//! The verification token of a new subscription is stored *before* the create request: while
//! the store cannot write, nothing is created (so a failing store cannot make ringside create
//! subscriptions it then forgets and deletes).
//! Renew on the reminder notification and on a timer before expiry; a watchdog reads the
//! subscription every `watchdog_interval_secs` and recreates it when it is `Blacklisted` or
//! gone, then asks for discovery. On shutdown the subscription is kept.

use super::client::{RcClient, RcError};
use super::wire::{CreateSubscription, DeliveryMode, SubscriptionInfo, SubscriptionStatus};
use crate::pipeline::SubscriptionHealth;
use crate::store::Store;
use crate::util::shutdown::Shutdown;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// The account-wide telephony-session filter.
pub const TELEPHONY_FILTER: &str = "/restapi/v1.0/account/~/telephony/sessions";
/// Where ringside keeps what it knows of its subscription.
const SUBSCRIPTION_KEY: &str = "ringcentral.subscription";
/// Renewal never waits less than this after a failure.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);

/// `threshold` and `interval` of the renewal reminder for a subscription living `expires_in`
/// seconds: T = min(86400, expiresIn/2), I = min(3600, T/2).
pub fn reminder_filter(expires_in: u32) -> String {
    let threshold = (expires_in / 2).min(86_400);
    let interval = (threshold / 2).min(3_600);
    format!("/restapi/v1.0/subscription/~?threshold={threshold}&interval={interval}")
}

/// The filters ringside subscribes to: configured, or telephony sessions plus the reminder.
pub fn event_filters(configured: &[String], expires_in: u32) -> Vec<String> {
    if configured.is_empty() {
        vec![TELEPHONY_FILTER.to_owned(), reminder_filter(expires_in)]
    } else {
        configured.to_vec()
    }
}

/// What ringside remembers of the subscription it created. `id` is empty between storing the
/// token and RingCentral's answer to the create request.
#[derive(Clone, Serialize, Deserialize)]
struct Stored {
    #[serde(default)]
    id: String,
    address: String,
    verification_token: String,
}

/// Starting with WebSocket delivery: the webhook subscription ringside created before (whatever
/// its address) is deleted and forgotten, so switching modes leaves nothing delivering to a
/// webhook nobody listens at. Failures are logged; the next start tries again.
pub async fn forget_webhook_subscription(client: &RcClient, store: &Store) {
    let Some(id) = stored_id(store).await else {
        return;
    };
    match client.delete_subscription(&id).await {
        Ok(()) | Err(RcError::NotFound { .. }) => {
            tracing::info!(subscription_id = %id, "deleted the webhook subscription: notifications now arrive over the WebSocket");
            let _ = store.set_meta(SUBSCRIPTION_KEY, "").await;
        }
        Err(error) => {
            tracing::warn!(%error, subscription_id = %id, "could not delete the webhook subscription left from webhook delivery")
        }
    }
}

/// The id of the subscription ringside created, as stored.
pub async fn stored_id(store: &Store) -> Option<String> {
    let text = store.get_meta(SUBSCRIPTION_KEY).await.ok()??;
    serde_json::from_str::<Stored>(&text)
        .ok()
        .map(|stored| stored.id)
        .filter(|id| !id.is_empty())
}

/// The manager's settings.
pub struct SubscriptionOptions {
    /// `{public_url}/webhooks/ringcentral`.
    pub address: String,
    pub verification_token: SecretString,
    pub event_filters: Vec<String>,
    pub expires_in: u32,
    pub watchdog_interval: Duration,
}

pub struct SubscriptionManager {
    client: Arc<RcClient>,
    store: Store,
    options: SubscriptionOptions,
    health: watch::Sender<SubscriptionHealth>,
    /// Told after a subscription was (re)created: events may have been missed.
    discover: mpsc::UnboundedSender<()>,
}

impl SubscriptionManager {
    pub fn new(
        client: Arc<RcClient>,
        store: Store,
        options: SubscriptionOptions,
        discover: mpsc::UnboundedSender<()>,
    ) -> (Self, watch::Receiver<SubscriptionHealth>) {
        let (health, receiver) = watch::channel(SubscriptionHealth::Starting);
        (
            SubscriptionManager {
                client,
                store,
                options,
                health,
                discover,
            },
            receiver,
        )
    }

    fn set_health(&self, health: SubscriptionHealth) {
        if *self.health.borrow() != health {
            match &health {
                SubscriptionHealth::Active { id } => {
                    tracing::info!(subscription_id = %id, "RingCentral subscription active")
                }
                SubscriptionHealth::Failing { reason } => {
                    tracing::error!(%reason, "ringside cannot see calls")
                }
                SubscriptionHealth::Starting => {}
            }
            metrics::gauge!("ringside_subscription_active").set(match health {
                SubscriptionHealth::Active { .. } => 1.0,
                _ => 0.0,
            });
            let _ = self.health.send(health);
        }
    }

    async fn stored(&self) -> Option<Stored> {
        let text = self.store.get_meta(SUBSCRIPTION_KEY).await.ok()??;
        serde_json::from_str(&text).ok()
    }

    fn trusted(&self, stored: &Stored) -> bool {
        stored.address == self.options.address
            && stored.verification_token == self.options.verification_token.expose_secret()
    }

    /// Makes sure an Active subscription delivers to this webhook with a token ringside holds.
    /// Returns its id.
    pub async fn ensure(&self) -> Result<String, SubscriptionError> {
        let stored = self.stored().await.filter(|stored| !stored.id.is_empty());
        let mut keep = None;
        if let Some(stored) = stored.as_ref().filter(|stored| self.trusted(stored)) {
            match self.client.get_subscription(&stored.id).await {
                Ok(info)
                    if info.status == Some(SubscriptionStatus::Active)
                        && same_filters(&info.event_filters, &self.options.event_filters) =>
                {
                    // Renewed at once: a restart must not leave it to expire before the timer.
                    keep = Some(self.renew(&info.id).await.unwrap_or(info));
                }
                Ok(info) if info.status == Some(SubscriptionStatus::Active) => {
                    tracing::warn!(subscription_id = %info.id, "stored subscription has other filters than configured; replacing it");
                }
                Ok(info) => {
                    tracing::warn!(subscription_id = %info.id, status = ?info.status, "stored subscription is not active; replacing it");
                }
                Err(RcError::NotFound { .. }) => {
                    tracing::warn!(subscription_id = %stored.id, "stored subscription is gone; creating a new one");
                }
                Err(error) => return Err(SubscriptionError::Client(error)),
            }
        }
        // The subscription ringside created, when it is not kept: whatever its address (the
        // address or the token changed since), ringside made it and replaces it.
        if let Some(stored) = &stored
            && keep.is_none()
        {
            tracing::warn!(subscription_id = %stored.id, "deleting the subscription ringside created before");
            self.delete(&stored.id).await?;
        }
        let kept_id = keep.as_ref().map(|kept| kept.id.as_str());
        let stored_id = stored.as_ref().map(|stored| stored.id.as_str());
        for info in self.client.list_subscriptions().await? {
            if Some(info.id.as_str()) == kept_id || Some(info.id.as_str()) == stored_id {
                continue;
            }
            let mode = info.delivery_mode.as_ref();
            let transport = mode
                .and_then(|mode| mode.transport_type.as_deref())
                .unwrap_or("WebHook");
            let address = mode.and_then(|mode| mode.address.as_deref());
            if transport.eq_ignore_ascii_case("WebHook")
                && address == Some(self.options.address.as_str())
            {
                // Delivers to this webhook with a token ringside does not hold (the store was
                // lost, or the token changed): its notifications would be refused anyway.
                tracing::warn!(subscription_id = %info.id, "deleting a subscription to this webhook whose verification token ringside does not hold");
                self.delete(&info.id).await?;
            } else {
                tracing::info!(
                    subscription_id = %info.id,
                    transport,
                    address = address.unwrap_or(""),
                    status = ?info.status,
                    "another subscription of this app and user; left alone"
                );
            }
        }
        let info = match keep {
            Some(info) => {
                tracing::info!(subscription_id = %info.id, "reusing the stored subscription");
                info
            }
            None => self.create().await?,
        };
        self.report_filters(&info);
        Ok(info.id)
    }

    async fn delete(&self, id: &str) -> Result<(), SubscriptionError> {
        match self.client.delete_subscription(id).await {
            Ok(()) | Err(RcError::NotFound { .. }) => Ok(()),
            Err(error) => Err(SubscriptionError::Client(error)),
        }
    }

    async fn keep(&self, stored: &Stored) -> Result<(), SubscriptionError> {
        let text = serde_json::to_string(stored)
            .map_err(|error| SubscriptionError::Store(error.to_string()))?;
        self.store
            .set_meta(SUBSCRIPTION_KEY, &text)
            .await
            .map_err(|error| SubscriptionError::Store(error.to_string()))
    }

    async fn create(&self) -> Result<SubscriptionInfo, SubscriptionError> {
        let token = self.options.verification_token.expose_secret().to_owned();
        // The token first: if the store cannot keep it, no subscription is created.
        self.keep(&Stored {
            id: String::new(),
            address: self.options.address.clone(),
            verification_token: token.clone(),
        })
        .await?;
        let request = CreateSubscription {
            event_filters: self.options.event_filters.clone(),
            delivery_mode: DeliveryMode {
                transport_type: Some("WebHook".into()),
                address: Some(self.options.address.clone()),
                verification_token: Some(token.clone()),
            },
            expires_in: self.options.expires_in,
        };
        let info = self.client.create_subscription(&request).await?;
        self.keep(&Stored {
            id: info.id.clone(),
            address: self.options.address.clone(),
            verification_token: token,
        })
        .await?;
        tracing::info!(subscription_id = %info.id, "created the RingCentral subscription");
        // Events may have been missed while there was no subscription.
        let _ = self.discover.send(());
        Ok(info)
    }

    /// Active, unless RingCentral disabled filters (an app permission is missing): then loud
    /// and not healthy, while the subscription is still kept, renewed and watched.
    fn report_filters(&self, info: &SubscriptionInfo) {
        match disabled_filters(info) {
            None => self.set_health(SubscriptionHealth::Active {
                id: info.id.clone(),
            }),
            Some(problem) => self.set_health(SubscriptionHealth::Failing {
                reason: SubscriptionError::DisabledFilters(problem).to_string(),
            }),
        }
    }
}

/// `disabledFilters`, in words, when there are any.
pub(crate) fn disabled_filters(info: &SubscriptionInfo) -> Option<String> {
    if info.disabled_filters.is_empty() {
        return None;
    }
    let reasons: Vec<String> = info
        .disabled_filters
        .iter()
        .map(|filter| {
            format!(
                "{} ({})",
                filter.filter.as_deref().unwrap_or("a filter"),
                filter
                    .message
                    .as_deref()
                    .or(filter.reason.as_deref())
                    .unwrap_or("no reason given")
            )
        })
        .collect();
    Some(reasons.join("; "))
}

/// `/account/123/extension/456/…` as `/account/~/extension/~/…`: RingCentral expands `~` in
/// the filters it stores.
pub fn normalized_filter(filter: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let mut previous = "";
    for part in filter.split('/') {
        let numeric = !part.is_empty() && part.chars().all(|c| c.is_ascii_digit());
        parts.push(
            if numeric && (previous == "account" || previous == "extension") {
                "~"
            } else {
                part
            },
        );
        previous = part;
    }
    parts.join("/")
}

/// Whether a subscription's filters are the configured ones (order and `~` expansion aside).
pub fn same_filters(held: &[String], wanted: &[String]) -> bool {
    let sorted = |filters: &[String]| {
        let mut filters: Vec<String> = filters.iter().map(|f| normalized_filter(f)).collect();
        filters.sort();
        filters
    };
    sorted(held) == sorted(wanted)
}

/// Errors worth waiting out rather than replacing the subscription for.
fn transient(error: &SubscriptionError) -> bool {
    use super::auth::AuthError;
    match error {
        SubscriptionError::Client(error) => match error {
            RcError::Timeout(_)
            | RcError::Network(_)
            | RcError::Penalty { .. }
            | RcError::RateLimited { .. } => true,
            RcError::Api { status, .. } => *status >= 500 || *status == 408 || *status == 409,
            RcError::Auth(
                AuthError::Backoff(_)
                | AuthError::RateLimited(_)
                | AuthError::Timeout
                | AuthError::Network(_),
            ) => true,
            _ => false,
        },
        _ => false,
    }
}

impl SubscriptionManager {
    /// Renews now (on the reminder, or when the timer says so).
    pub async fn renew(&self, id: &str) -> Result<SubscriptionInfo, SubscriptionError> {
        let info = self.client.renew_subscription(id).await?;
        tracing::info!(subscription_id = %id, expiration = info.expiration_time.as_deref().unwrap_or("?"), "renewed the RingCentral subscription");
        Ok(info)
    }

    /// The watchdog's check: recreate when `Blacklisted` or gone.
    pub async fn watch_once(&self, id: &str) -> Result<String, SubscriptionError> {
        match self.client.get_subscription(id).await {
            Ok(info) if info.status == Some(SubscriptionStatus::Active) => {
                self.report_filters(&info);
                Ok(id.to_owned())
            }
            Ok(info) => {
                tracing::warn!(subscription_id = %id, status = ?info.status, reason = info.blacklisted_data.as_ref().and_then(|b| b.reason.as_deref()).unwrap_or(""), "subscription is not active; recreating it");
                metrics::counter!("ringside_subscription_recreated_total").increment(1);
                match self.client.delete_subscription(id).await {
                    Ok(()) | Err(RcError::NotFound { .. }) => {}
                    Err(error) => return Err(error.into()),
                }
                self.ensure().await
            }
            Err(RcError::NotFound { .. }) => {
                tracing::warn!(subscription_id = %id, "subscription is gone; recreating it");
                metrics::counter!("ringside_subscription_recreated_total").increment(1);
                self.ensure().await
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Runs the lifecycle until `shutdown` fires: ensure, then renew on reminders and before
    /// expiry, and watch.
    pub async fn run(self, mut reminders: mpsc::UnboundedReceiver<()>, mut shutdown: Shutdown) {
        let mut id: Option<String> = None;
        let mut watchdog = tokio::time::interval(self.options.watchdog_interval);
        watchdog.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let renew_every = Duration::from_secs(u64::from(self.options.expires_in / 2).max(1));
        let mut renewal =
            tokio::time::interval_at(tokio::time::Instant::now() + renew_every, renew_every);
        renewal.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if id.is_none() {
                match self.ensure().await {
                    Ok(ensured) => id = Some(ensured),
                    Err(error) => {
                        self.set_health(SubscriptionHealth::Failing {
                            reason: error.to_string(),
                        });
                        if shutdown.sleep(retry_delay(&error)).await {
                            return;
                        }
                        continue;
                    }
                }
            }
            let current = id.clone().unwrap_or_default();
            tokio::select! {
                () = shutdown.recv() => return,
                _ = watchdog.tick() => match self.watch_once(&current).await {
                    Ok(now) => id = Some(now),
                    Err(error) => self.report(&error, &mut id),
                },
                Some(()) = reminders.recv() => {
                    if let Err(error) = self.renew(&current).await {
                        self.report(&error, &mut id);
                    }
                }
                _ = renewal.tick() => {
                    if let Err(error) = self.renew(&current).await {
                        self.report(&error, &mut id);
                    }
                }
            }
        }
    }

    fn report(&self, error: &SubscriptionError, id: &mut Option<String>) {
        match error {
            // Transient: keep the subscription and try again at the next tick.
            error if transient(error) => {
                tracing::warn!(%error, "subscription check failed; will retry")
            }
            SubscriptionError::Client(RcError::NotFound { .. }) => *id = None,
            _ => {
                self.set_health(SubscriptionHealth::Failing {
                    reason: error.to_string(),
                });
                *id = None;
            }
        }
    }
}

fn retry_delay(error: &SubscriptionError) -> Duration {
    match error {
        SubscriptionError::Client(RcError::Penalty { retry_in, .. }) => *retry_in,
        SubscriptionError::Client(RcError::RateLimited { retry_after, .. }) => *retry_after,
        _ => RETRY_AFTER_FAILURE,
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum SubscriptionError {
    #[error("RingCentral did not enable {0}: the app is missing a permission")]
    DisabledFilters(String),
    #[error("subscription: {0}")]
    Client(#[from] RcError),
    #[error("cannot keep the subscription in the store: {0}")]
    Store(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reminder_is_derived_from_the_lifetime() {
        assert_eq!(
            reminder_filter(604_800),
            "/restapi/v1.0/subscription/~?threshold=86400&interval=3600"
        );
        assert_eq!(
            reminder_filter(3_600),
            "/restapi/v1.0/subscription/~?threshold=1800&interval=900"
        );
        assert_eq!(
            reminder_filter(60),
            "/restapi/v1.0/subscription/~?threshold=30&interval=15"
        );
    }

    #[test]
    fn configured_filters_replace_the_defaults() {
        assert_eq!(event_filters(&[], 604_800)[0], TELEPHONY_FILTER);
        assert_eq!(event_filters(&[], 604_800).len(), 2);
        let own = vec!["/restapi/v1.0/account/~/extension/~/telephony/sessions".to_owned()];
        assert_eq!(event_filters(&own, 604_800), own);
    }
}
