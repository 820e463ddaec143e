//! The RingCentral side, built in one place: the REST client and its token owner, the
//! reconciler, the subscription manager, the kick port and the directory's name lookups.
//!
//! Notifications arrive by the delivery `ringcentral.delivery` names: a webhook subscription kept
//! by the [`SubscriptionManager`], or RingCentral's WebSocket ([`WebSocketDelivery`]). Either
//! way they go through the same [`Intake`], and the health of the subscription reads the same.
//!
//! It is built before the listeners open (the commands need the kick port) and run once they
//! listen ([`Side::run`]): creating a webhook subscription runs RingCentral's validation
//! handshake against ringside's own webhook.

use super::auth::{AuthOptions, TokenOwner};
use super::client::RcClient;
use super::directory::Directory;
use super::intake::Intake;
use super::kick::RcKicker;
use super::rate::RateLimits;
use super::reconciler::{Reconciler, ReconcilerHandle};
use super::subscription::{self, SubscriptionManager, SubscriptionOptions};
use super::websocket::WebSocketDelivery;
use crate::conference::Roster;
use crate::config::{Delivery, RingCentralCredentials, Settings};
use crate::pipeline::{Clock, DetectorInputs, Kicker, ReadinessCheck, SubscriptionHealth};
use crate::store::Store;
use crate::util::shutdown::Shutdown;
use anyhow::Context as _;
use secrecy::SecretString;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// What the side needs from the rest of ringside.
pub struct Deps {
    pub store: Store,
    pub roster: Roster,
    pub inputs: DetectorInputs,
    pub clock: Arc<dyn Clock>,
    /// The webhook secret the subscription is created with.
    pub verification_token: SecretString,
    /// Where WebSocket notifications go (the webhook's route has its own).
    pub intake: Intake,
}

/// What the rest of ringside holds of the side.
#[derive(Clone)]
pub struct Handles {
    pub client: Arc<RcClient>,
    pub kicker: Arc<dyn Kicker>,
    pub reconciler: ReconcilerHandle,
    pub health: watch::Receiver<SubscriptionHealth>,
    pub delivery: Delivery,
    /// With WebSocket delivery: whether the socket is connected and subscribed.
    pub websocket: Option<watch::Receiver<bool>>,
}

impl Handles {
    /// The side's part of `/readyz` beyond the subscription's health: the socket, when
    /// notifications come over one.
    pub fn readiness(&self) -> Vec<ReadinessCheck> {
        match &self.websocket {
            Some(connected) => {
                let connected = connected.clone();
                vec![Arc::new(move || {
                    (!*connected.borrow())
                        .then(|| "RingCentral WebSocket not connected and subscribed".to_owned())
                })]
            }
            None => Vec::new(),
        }
    }
}

/// How the side's notifications arrive.
enum Delivering {
    Webhook(SubscriptionManager),
    WebSocket(WebSocketDelivery),
}

/// The side, built and not yet running.
pub struct Side {
    handles: Handles,
    reconciler: Reconciler,
    directory: Directory,
    delivering: Delivering,
}

impl Side {
    /// The side for the configured credentials; `None` in local mode (no credentials).
    pub fn build(settings: &Settings, deps: Deps) -> anyhow::Result<Option<Side>> {
        let Some(credentials) = &settings.ringcentral.credentials else {
            return Ok(None);
        };
        let client = client(settings, credentials.clone(), Some(deps.store.clone()))?;
        let ringcentral = &settings.ringcentral;
        let (reconciler, reconciler_handle) = Reconciler::new(
            client.clone(),
            deps.roster.clone(),
            deps.inputs.clone(),
            deps.store.clone(),
            deps.clock.clone(),
            Duration::from_secs(ringcentral.reconcile_interval_secs),
        );
        let directory = Directory::new(client.clone(), deps.roster.clone());
        let filters = subscription::event_filters(
            &ringcentral.event_filters,
            ringcentral.subscription_expires_in,
        );
        let (delivering, health, websocket) =
            match (ringcentral.delivery, &settings.server.public_url) {
                (Delivery::Webhook, Some(public_url)) => {
                    let (manager, health) = SubscriptionManager::new(
                        client.clone(),
                        deps.store.clone(),
                        SubscriptionOptions {
                            address: format!("{public_url}/webhooks/ringcentral"),
                            verification_token: deps.verification_token,
                            event_filters: filters,
                            expires_in: ringcentral.subscription_expires_in,
                            watchdog_interval: Duration::from_secs(
                                ringcentral.watchdog_interval_secs,
                            ),
                        },
                        reconciler_handle.discover_sender(),
                    );
                    (Delivering::Webhook(manager), health, None)
                }
                // Settings refuse webhook delivery without a public URL; the socket needs none.
                _ => {
                    let (health, receiver) = watch::channel(SubscriptionHealth::Starting);
                    let (connected, connected_rx) = watch::channel(false);
                    let delivery = WebSocketDelivery {
                        client: client.clone(),
                        intake: deps.intake,
                        store: deps.store.clone(),
                        clock: deps.clock.clone(),
                        // The socket needs no renewal reminder: WebSocket subscriptions renew
                        // themselves while the session lives.
                        filters: filters
                            .into_iter()
                            .filter(|filter| !filter.starts_with("/restapi/v1.0/subscription"))
                            .collect(),
                        health,
                        connected,
                        discover: reconciler_handle.discover_sender(),
                    };
                    (
                        Delivering::WebSocket(delivery),
                        receiver,
                        Some(connected_rx),
                    )
                }
            };
        let kicker: Arc<dyn Kicker> = Arc::new(RcKicker {
            in_flight: Arc::default(),
            client: client.clone(),
            roster: deps.roster,
            inputs: deps.inputs,
            store: deps.store,
            reconciler: reconciler_handle.clone(),
            clock: deps.clock,
            confirm_after: Duration::from_secs(ringcentral.kick_confirm_secs),
        });
        Ok(Some(Side {
            handles: Handles {
                client,
                kicker,
                reconciler: reconciler_handle,
                health,
                delivery: ringcentral.delivery,
                websocket,
            },
            reconciler,
            directory,
            delivering,
        }))
    }

    pub fn handles(&self) -> Handles {
        self.handles.clone()
    }

    /// Starts the delivery — the subscription manager (renewal `reminders` come from the
    /// pipeline) or the WebSocket —, the reconciler and the directory's lookups; answers the tasks
    /// by name.
    pub fn run(
        self,
        reminders: mpsc::UnboundedReceiver<()>,
        shutdown: &Shutdown,
    ) -> Vec<(&'static str, JoinHandle<()>)> {
        let delivery = match self.delivering {
            Delivering::Webhook(manager) => (
                "subscription",
                tokio::spawn(manager.run(reminders, shutdown.clone())),
            ),
            Delivering::WebSocket(socket) => {
                let client = self.handles.client.clone();
                let store = socket.store.clone();
                let shutdown = shutdown.clone();
                (
                    "websocket",
                    tokio::spawn(async move {
                        // Switching from webhook delivery leaves no webhook subscription behind.
                        subscription::forget_webhook_subscription(&client, &store).await;
                        socket.run(shutdown).await
                    }),
                )
            }
        };
        vec![
            delivery,
            (
                "reconciler",
                tokio::spawn(self.reconciler.run(shutdown.clone())),
            ),
            (
                "directory",
                tokio::spawn(self.directory.run(shutdown.clone())),
            ),
        ]
    }
}

/// The RingCentral client with its token owner (keeping the token pair in `store` when one is
/// given) and its rate groups.
pub fn client(
    settings: &Settings,
    credentials: RingCentralCredentials,
    store: Option<Store>,
) -> anyhow::Result<Arc<RcClient>> {
    let timeout = Duration::from_secs(settings.ringcentral.request_timeout_secs);
    let http = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(timeout)
        .build()
        .context("building the RingCentral HTTP client")?;
    let limits = Arc::new(RateLimits::new(
        settings.ringcentral.light_requests_per_minute,
    ));
    let auth = Arc::new(TokenOwner::new(
        http.clone(),
        AuthOptions {
            server_url: settings.ringcentral.server_url.clone(),
            credentials,
            margin: Duration::from_secs(settings.ringcentral.token_refresh_margin_secs),
            retry_base: Duration::from_secs(settings.ringcentral.auth_retry_secs),
            timeout,
        },
        store,
        limits.clone(),
    ));
    Ok(Arc::new(RcClient::new(
        http,
        settings.ringcentral.server_url.clone(),
        auth,
        limits,
        timeout,
    )))
}
