//! The kick: how `/kick` removes a caller (the README's "Removing a caller";
//! `docs/ringcentral.md` §5.1), behind the pipeline's `Kicker` port.
//!
//! The intent is recorded first, so a leave that arrives before the DELETE's answer is already
//! announced as a removal. The DELETE uses the conference-side ids, as RingCentral's own client
//! does; a 404 while the caller is still live falls back to the original call's ids. A DELETE that
//! timed out is never blindly repeated: the session is read first. 204 is confirmed by the leave
//! that follows, or by a reconciliation after `kick_confirm_secs`. The host is never removed.
//! Every attempt, allowed or refused, goes to the audit log.

use super::client::{RcClient, RcError};
use super::reconciler::ReconcilerHandle;
use crate::conference::{Input, ParticipantKey, PartyId, Roster};
use crate::pipeline::{Clock, DetectorInputs, KickOutcome, KickRequest, Kicker};
use crate::ringcentral::wire::StatusCode;
use crate::store::{AuditEntry, Store};
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// The kick through RingCentral's Delete Call Party API.
pub struct RcKicker {
    /// Removals under way.
    pub in_flight: Arc<std::sync::Mutex<HashSet<ParticipantKey>>>,
    pub client: Arc<RcClient>,
    pub roster: Roster,
    pub inputs: DetectorInputs,
    pub store: Store,
    pub reconciler: ReconcilerHandle,
    pub clock: Arc<dyn Clock>,
    pub confirm_after: Duration,
}

impl Kicker for RcKicker {
    fn kick(&self, request: KickRequest) -> Pin<Box<dyn Future<Output = KickOutcome> + Send + '_>> {
        let span = tracing::info_span!(
            "kick",
            conference_id = %request.participant.conference,
            party_id = %request.participant.participant,
            requested_by = %request.by.id,
        );
        Box::pin(tracing::Instrument::instrument(
            async move {
                // One removal per caller at a time: a second moderator's DELETE would meet a 404
                // and wrongly fall back to the original call's ids.
                let outcome = match InFlight::claim(&self.in_flight, &request.participant) {
                    Some(_claim) => self.remove(&request).await,
                    None => KickOutcome::Failed {
                        reason: "another removal of this caller is in progress".into(),
                    },
                };
                self.audit(&request, &outcome).await;
                metrics::counter!("ringside_kicks_total", "outcome" => outcome.as_str())
                    .increment(1);
                tracing::info!(
                    conference_id = %request.participant.conference,
                    party_id = %request.participant.participant,
                    outcome = outcome.as_str(),
                    "kick"
                );
                outcome
            },
            span,
        ))
    }
}

impl RcKicker {
    async fn remove(&self, request: &KickRequest) -> KickOutcome {
        let key = &request.participant;
        let Some(view) = self.roster.conference(&key.conference) else {
            return KickOutcome::AlreadyGone;
        };
        if view
            .host_party
            .as_ref()
            .is_some_and(|host| host.as_str() == key.participant.as_str())
        {
            return KickOutcome::Host;
        }
        let Some(participant) = view
            .participant(&key.participant)
            .filter(|p| p.live)
            .cloned()
        else {
            return KickOutcome::AlreadyGone;
        };
        let applied = self
            .inputs
            .apply(Input::KickIntent {
                at: self.clock.now(),
                participant: key.clone(),
                by: request.by.clone(),
                reason: request.reason.clone(),
            })
            .await;
        if !applied {
            return KickOutcome::Failed {
                reason: "ringside is shutting down".into(),
            };
        }
        let conference = key.conference.as_str();
        let party = key.participant.as_str();
        let outcome = match self.client.delete_party(conference, party, None).await {
            Ok(()) => KickOutcome::Removed,
            Err(RcError::NotFound { .. }) => {
                self.with_original_ids(
                    key,
                    participant.original_session.as_ref().map(|s| s.as_str()),
                    participant.original_party.as_ref(),
                )
                .await
            }
            Err(RcError::Timeout(_)) => self.after_timeout(conference, party).await,
            Err(error) => KickOutcome::Failed {
                reason: plain_words(&error),
            },
        };
        if outcome == KickOutcome::Removed {
            self.confirm_later(key.clone());
        } else {
            // Not removed by this kick: whatever leave follows is not a removal.
            self.inputs.send(Input::KickFailed {
                at: self.clock.now(),
                participant: key.clone(),
            });
            if outcome == KickOutcome::AlreadyGone {
                self.reconciler.poll_now(key.conference.clone());
            }
        }
        outcome
    }

    /// 404 on the conference-side ids while the caller is still live: try the original call's.
    async fn with_original_ids(
        &self,
        key: &ParticipantKey,
        session: Option<&str>,
        party: Option<&PartyId>,
    ) -> KickOutcome {
        let still_live = self
            .roster
            .participant(key)
            .is_some_and(|participant| participant.live);
        let (Some(session), Some(party), true) = (session, party, still_live) else {
            return KickOutcome::AlreadyGone;
        };
        match self
            .client
            .delete_party(session, party.as_str(), None)
            .await
        {
            Ok(()) => KickOutcome::Removed,
            Err(RcError::NotFound { .. }) => KickOutcome::AlreadyGone,
            Err(error) => KickOutcome::Failed {
                reason: plain_words(&error),
            },
        }
    }

    /// The DELETE's outcome is unknown: read the session before deciding to send it again.
    async fn after_timeout(&self, conference: &str, party: &str) -> KickOutcome {
        match self.client.get_session(conference).await {
            Err(RcError::NotFound { .. }) => KickOutcome::AlreadyGone,
            Err(error) => KickOutcome::Failed {
                reason: format!(
                    "RingCentral did not answer the removal, and ringside could not check whether it happened ({})",
                    plain_words(&error)
                ),
            },
            Ok(session) => {
                let still_on = session.parties.iter().any(|p| {
                    p.id.as_deref() == Some(party)
                        && p.status.as_ref().and_then(|s| s.code.as_ref())
                            != Some(&StatusCode::Disconnected)
                });
                if !still_on {
                    return KickOutcome::Removed;
                }
                match self.client.delete_party(conference, party, None).await {
                    Ok(()) => KickOutcome::Removed,
                    Err(RcError::NotFound { .. }) => KickOutcome::Removed,
                    Err(error) => KickOutcome::Failed {
                        reason: plain_words(&error),
                    },
                }
            }
        }
    }

    /// 204 is confirmed by the leave; without one in time, reconcile the conference.
    fn confirm_later(&self, key: ParticipantKey) {
        let roster = self.roster.clone();
        let reconciler = self.reconciler.clone();
        let wait = self.confirm_after;
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            if roster.participant(&key).is_some_and(|p| p.live) {
                tracing::info!(conference_id = %key.conference, party_id = %key.participant, "no leave after the removal; reconciling");
                reconciler.poll_now(key.conference);
            }
        });
    }

    async fn audit(&self, request: &KickRequest, outcome: &KickOutcome) {
        let detail = match outcome {
            KickOutcome::Failed { reason } => reason.clone(),
            _ => request.reason.clone().unwrap_or_default(),
        };
        let entry = AuditEntry {
            at_ms: self.clock.now().0,
            actor_id: request.by.id.clone(),
            actor_name: request.by.display.clone(),
            action: "kick".into(),
            conference_id: Some(request.participant.conference.as_str().to_owned()),
            participant_id: Some(request.participant.participant.as_str().to_owned()),
            outcome: outcome.as_str().into(),
            detail,
        };
        if let Err(error) = self.store.audit(entry).await {
            tracing::error!(%error, "could not write the audit log");
        }
    }
}

/// A claim on one caller's removal, released when dropped.
struct InFlight {
    set: Arc<std::sync::Mutex<HashSet<ParticipantKey>>>,
    key: ParticipantKey,
}

impl InFlight {
    fn claim(
        set: &Arc<std::sync::Mutex<HashSet<ParticipantKey>>>,
        key: &ParticipantKey,
    ) -> Option<Self> {
        let mut claimed = set.lock().unwrap_or_else(|poison| poison.into_inner());
        claimed.insert(key.clone()).then(|| InFlight {
            set: set.clone(),
            key: key.clone(),
        })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .remove(&self.key);
    }
}

/// A RingCentral failure as the member who asked should read it.
pub fn plain_words(error: &RcError) -> String {
    match error {
        RcError::Api { status: 403, .. } => "RingCentral refused: the app lacks the CallControl permission, or its user has no rights over this caller's extension".into(),
        RcError::Api { message, .. } => format!("RingCentral refused: {message}"),
        RcError::Penalty { retry_in, .. } => format!("RingCentral is rate-limiting ringside; try again in {}s", retry_in.as_secs().max(1)),
        RcError::RateLimited { retry_after, .. } => format!("RingCentral is rate-limiting ringside; try again in {}s", retry_after.as_secs().max(1)),
        RcError::Timeout(_) | RcError::Network(_) => "RingCentral did not answer".into(),
        RcError::Auth(_) => "ringside cannot sign in to RingCentral right now".into(),
        RcError::NotFound { .. } => "the caller is not on the call".into(),
        RcError::Decode(_) => "RingCentral gave an answer ringside does not understand".into(),
    }
}
