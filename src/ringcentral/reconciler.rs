//! Discovery and reconciliation (the README's "Reconciliation"; `docs/ringcentral.md` §5.3).
//!
//! Notifications can be missed (parties outside the account, silent disconnects, a subscription
//! that was down), so while a conference is live ringside reads its session every
//! `reconcile_interval_secs` and feeds the answer to the detector as a snapshot (404 → the
//! session is gone). Discovery — at start and after the subscription was recreated — finds
//! conferences already in progress: the ones ringside last knew were live, and, when the app may
//! read presence, every extension's active conference legs. Polls spend the Light budget, minus
//! a reserve kept for kicks; with more live conferences than the budget allows, they are polled
//! round-robin and slower.

use super::client::{RcClient, RcError};
use super::rate::RateGroup;
use crate::conference::{ConferenceId, Input, Roster, SessionUpdate};
use crate::pipeline::{Clock, DetectorInputs};
use crate::store::Store;
use crate::util::shutdown::Shutdown;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Where the ids of the conferences live at the last look are kept, for discovery at start.
const LIVE_KEY: &str = "ringcentral.live_conferences";
/// How often the reconciler looks at what is due.
const STEP: Duration = Duration::from_millis(250);
/// Light requests per window always left for kicks.
const MIN_KICK_RESERVE: u32 = 5;

/// Light requests per window kept for kicks out of a group of `limit`: a fifth, at least
/// [`MIN_KICK_RESERVE`], and never the whole group. Polls leave it alone; the directory's lookups
/// leave it and the reconciler's share alone (`super::directory`).
pub fn kick_reserve(limit: u32) -> u32 {
    (limit / 5)
        .max(MIN_KICK_RESERVE)
        .min(limit.saturating_sub(1))
}

/// Requests to the reconciler from other parts.
#[derive(Clone)]
pub struct ReconcilerHandle {
    poll_now: mpsc::UnboundedSender<ConferenceId>,
    discover: mpsc::UnboundedSender<()>,
}

impl ReconcilerHandle {
    /// Read this conference's session as soon as the budget allows (after a kick).
    pub fn poll_now(&self, conference: ConferenceId) {
        let _ = self.poll_now.send(conference);
    }

    /// Look for conferences already in progress.
    pub fn discover(&self) {
        let _ = self.discover.send(());
    }

    /// The sender the subscription manager uses to ask for discovery.
    pub fn discover_sender(&self) -> mpsc::UnboundedSender<()> {
        self.discover.clone()
    }
}

pub struct Reconciler {
    client: Arc<RcClient>,
    roster: Roster,
    inputs: DetectorInputs,
    store: Store,
    clock: Arc<dyn Clock>,
    interval: Duration,
    poll_now: mpsc::UnboundedReceiver<ConferenceId>,
    discover: mpsc::UnboundedReceiver<()>,
    /// Discovered sessions not (yet) in the roster: polled once.
    discovered: BTreeSet<ConferenceId>,
    urgent: BTreeSet<ConferenceId>,
    last_polled: HashMap<ConferenceId, Instant>,
    presence_permitted: bool,
    remembered: Vec<ConferenceId>,
}

impl Reconciler {
    pub fn new(
        client: Arc<RcClient>,
        roster: Roster,
        inputs: DetectorInputs,
        store: Store,
        clock: Arc<dyn Clock>,
        interval: Duration,
    ) -> (Self, ReconcilerHandle) {
        let (poll_tx, poll_rx) = mpsc::unbounded_channel();
        let (discover_tx, discover_rx) = mpsc::unbounded_channel();
        (
            Reconciler {
                client,
                roster,
                inputs,
                store,
                clock,
                interval,
                poll_now: poll_rx,
                discover: discover_rx,
                discovered: BTreeSet::new(),
                urgent: BTreeSet::new(),
                last_polled: HashMap::new(),
                presence_permitted: true,
                remembered: Vec::new(),
            },
            ReconcilerHandle {
                poll_now: poll_tx,
                discover: discover_tx,
            },
        )
    }

    /// Runs until `shutdown` fires. Discovery runs first.
    pub async fn run(mut self, mut shutdown: Shutdown) {
        self.discovery().await;
        let mut step = tokio::time::interval(STEP);
        step.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.recv() => return,
                Some(conference) = self.poll_now.recv() => {
                    self.urgent.insert(conference);
                }
                Some(()) = self.discover.recv() => {
                    while self.discover.try_recv().is_ok() {}
                    self.discovery().await;
                }
                _ = step.tick() => self.poll_due().await,
            }
        }
    }

    /// Light requests polls may use now, keeping the kick reserve.
    fn poll_allowance(&self) -> u32 {
        let limits = self.client.limits();
        if limits.penalty(RateGroup::Light).is_some() {
            return 0;
        }
        let (limit, _) = limits.budget(RateGroup::Light);
        limits
            .available(RateGroup::Light)
            .saturating_sub(kick_reserve(limit))
    }

    async fn poll_due(&mut self) {
        let live: BTreeSet<ConferenceId> = self.roster.live_ids().into_iter().collect();
        self.remember(&live).await;
        self.last_polled
            .retain(|id, _| live.contains(id) || self.discovered.contains(id));
        let now = Instant::now();
        let candidates: BTreeSet<&ConferenceId> =
            live.iter().chain(self.discovered.iter()).collect();
        let mut due: Vec<(Option<Instant>, ConferenceId)> = candidates
            .into_iter()
            .filter(|id| !self.urgent.contains(*id))
            .map(|id| (self.last_polled.get(id).copied(), id.clone()))
            .filter(|(last, _)| last.is_none_or(|last| now.duration_since(last) >= self.interval))
            .collect();
        // Round-robin: the longest-waiting first, after the ones asked for by a kick.
        due.sort();
        let urgent: Vec<ConferenceId> = std::mem::take(&mut self.urgent).into_iter().collect();
        let queue: Vec<(bool, ConferenceId)> = urgent
            .into_iter()
            .map(|id| (true, id))
            .chain(due.into_iter().map(|(_, id)| (false, id)))
            .collect();
        for (index, (_, conference)) in queue.iter().enumerate() {
            if self.poll_allowance() == 0 {
                // What was asked for urgently stays asked for; the rest is due again anyway.
                self.urgent.extend(
                    queue[index..]
                        .iter()
                        .filter(|(urgent, _)| *urgent)
                        .map(|(_, id)| id.clone()),
                );
                metrics::counter!("ringside_reconcile_deferred_total").increment(1);
                return;
            }
            self.poll(conference).await;
        }
    }

    #[tracing::instrument(name = "reconcile", skip(self), fields(conference_id = %conference))]
    async fn poll(&mut self, conference: &ConferenceId) {
        self.last_polled.insert(conference.clone(), Instant::now());
        let requested_at = self.clock.now();
        let answer = self.client.get_session(conference.as_str()).await;
        // A discovered session is read until RingCentral answers about it (a sign-in back-off
        // or a penalty at start must not make ringside forget it).
        if matches!(answer, Ok(_) | Err(RcError::NotFound { .. })) {
            self.discovered.remove(conference);
        }
        match answer {
            Ok(session) => match SessionUpdate::from_snapshot(&session) {
                Ok(update) => {
                    metrics::counter!("ringside_reconcile_snapshots_total").increment(1);
                    self.inputs.send(Input::Snapshot {
                        requested_at,
                        session: update,
                    });
                }
                Err(reason) => {
                    tracing::warn!(conference_id = %conference, %reason, "unusable session read")
                }
            },
            Err(RcError::NotFound { .. }) => {
                tracing::info!(conference_id = %conference, "conference session is gone");
                self.inputs.send(Input::SessionGone {
                    at: requested_at,
                    conference_id: conference.clone(),
                });
            }
            Err(error) => {
                tracing::warn!(conference_id = %conference, %error, "could not read the conference session")
            }
        }
    }

    /// Finds conferences already in progress.
    async fn discovery(&mut self) {
        if let Ok(Some(text)) = self.store.get_meta(LIVE_KEY).await {
            let stored: Vec<String> = serde_json::from_str(&text).unwrap_or_default();
            for id in stored {
                if let Ok(id) = ConferenceId::parse(&id) {
                    self.discovered.insert(id);
                }
            }
        }
        if self.presence_permitted {
            match self.client.account_presence().await {
                Ok(records) => {
                    for call in records.iter().flat_map(|record| &record.active_calls) {
                        if !call.is_conference_leg() {
                            continue;
                        }
                        if let Some(id) = call
                            .telephony_session_id
                            .as_deref()
                            .and_then(|id| ConferenceId::parse(id).ok())
                        {
                            self.discovered.insert(id);
                        }
                    }
                }
                Err(RcError::Api { status: 403, .. }) => {
                    tracing::info!(
                        "the app may not read presence (ReadPresence); discovery uses the conferences ringside already knew"
                    );
                    self.presence_permitted = false;
                }
                Err(error) => tracing::warn!(%error, "presence read for discovery failed"),
            }
        }
        for id in &self.discovered {
            self.last_polled.remove(id);
        }
        if !self.discovered.is_empty() {
            tracing::info!(
                count = self.discovered.len(),
                "conferences to reconcile after discovery"
            );
        }
    }

    async fn remember(&mut self, live: &BTreeSet<ConferenceId>) {
        let ids: Vec<ConferenceId> = live.iter().cloned().collect();
        if ids == self.remembered {
            return;
        }
        let text: Vec<&str> = ids.iter().map(ConferenceId::as_str).collect();
        if let Ok(text) = serde_json::to_string(&text)
            && self.store.set_meta(LIVE_KEY, &text).await.is_ok()
        {
            self.remembered = ids;
        }
    }
}
