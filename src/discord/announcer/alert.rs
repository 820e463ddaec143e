//! The watch list's alerts: when a caller on the list joins a conference, one message in the
//! channel that names them and the call, mentions the alert roles and carries a Remove button
//! (`watch:remove:<participant key>`, handled by the commands like `/kick`). It is the one
//! message ringside posts that notifies (docs/architecture.md §5, [`message::alert_body`]).
//!
//! A lane of its own beside the lines and the roster cards, following the roster's changes:
//! - One alert per caller per conference. Its row (with its nonce) is committed before the post,
//!   so a repost after a crash is the same message; then its message id. A restart posts again
//!   only the alerts still `pending` (same nonce: Discord answers with the same message), and
//!   never a second alert for a caller who has a row.
//! - The alert does not wait for the lines: it is the message someone must read now. Rate
//!   limits are waited out by the poster.
//! - When the caller leaves, is removed or the call ends, the alert is edited to say so, its
//!   button turned off and nobody pinged again, and its row is `closed`.
//! - Discord refusing an alert (or its edit: someone deleted it) closes it: it is logged, never
//!   retried in a loop. Outages are retried with backoff.
//!
//! A changed watch list (a reload) makes the roster look at every live conference again, so a
//! caller already on a call who is now watched gets an alert.

use super::Post;
use crate::conference::{ConferenceId, ParticipantId, ParticipantKey, Roster, RosterChanges};
use crate::config::PhoneNumbers;
use crate::discord::commands::watch_remove_id;
use crate::discord::message::{self, AlertEnd};
use crate::discord::poster::PostError;
use crate::present::markdown;
use crate::store::{AlertRow, AlertState, Store};
use crate::util::backoff::Backoff;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Waits between tries after an outage or a store failure.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(60);

/// What the alert lane runs with.
pub(super) struct AlertLane {
    pub(super) roster: Roster,
    pub(super) changes: RosterChanges,
    pub(super) poster: Arc<dyn Post>,
    pub(super) store: Store,
    pub(super) channel_id: u64,
    pub(super) phone_numbers: PhoneNumbers,
    pub(super) nonce_prefix: String,
}

/// One caller's alert as the lane knows it.
struct Alert {
    /// As stored: `None` until the nonce is kept.
    row: Option<AlertRow>,
    /// When the next step (post, or the closing edit) is due; `None`: nothing to do.
    due: Option<Instant>,
    retry: Backoff,
}

impl Alert {
    fn new(row: Option<AlertRow>, due: Option<Instant>) -> Alert {
        Alert {
            row,
            due,
            retry: Backoff::new(RETRY_FIRST, RETRY_MAX),
        }
    }

    fn state(&self) -> Option<AlertState> {
        self.row.as_ref().map(|row| row.state)
    }
}

/// Follows the watched callers with their alerts; runs until dropped (with the lines' loop).
pub(super) async fn run(lane: AlertLane) {
    let mut lane = Lane {
        alerts: HashMap::new(),
        sequence: 0,
        config: lane,
    };
    lane.resume().await;
    loop {
        let next = super::earliest_due(&lane.alerts, |alert| alert.due);
        tokio::select! {
            changed = lane.config.changes.changed() => {
                let now = Instant::now();
                for id in changed {
                    lane.note(&id, now);
                }
            }
            () = super::sleep_until(next.as_ref().map(|(due, _)| *due)), if next.is_some() => {
                let Some((_, key)) = next else { continue };
                lane.step(&key).await;
            }
        }
        metrics::gauge!("ringside_watch_alerts_followed").set(lane.alerts.len() as f64);
    }
}

struct Lane {
    /// Every alert of the conferences the roster knows, closed ones too (they mean "already
    /// alerted"); forgotten with their conference, so bounded by the roster.
    alerts: HashMap<ParticipantKey, Alert>,
    sequence: u64,
    config: AlertLane,
}

impl Lane {
    /// At start: the alerts kept before the restart are finished (a pending one posted with its
    /// nonce, a posted one closed if its caller is gone), then every live conference is looked
    /// at for watched callers without one.
    async fn resume(&mut self) {
        // Without the rows an alert could be posted twice: no alert until they are read.
        let mut retry = Backoff::new(RETRY_FIRST, RETRY_MAX);
        let rows = loop {
            match self.config.store.alerts().await {
                Ok(rows) => break rows,
                Err(error) => {
                    let wait = retry.next_wait();
                    tracing::warn!(%error, retry_in_ms = wait.as_millis() as u64, "cannot read the watch-list alerts; alerts wait for the store");
                    tokio::time::sleep(wait).await;
                }
            }
        };
        let now = Instant::now();
        for row in rows {
            let (Ok(conference), Ok(participant)) = (
                ConferenceId::parse(&row.conference_id),
                ParticipantId::parse(&row.participant_id),
            ) else {
                continue;
            };
            let due = (row.state != AlertState::Closed).then_some(now);
            self.alerts.insert(
                ParticipantKey {
                    conference,
                    participant,
                },
                Alert::new(Some(row), due),
            );
        }
        for id in self.config.roster.live_ids() {
            self.note(&id, now);
        }
    }

    /// A conference's roster changed: watched callers without an alert get one; open alerts of
    /// the conference look whether their caller is gone.
    fn note(&mut self, id: &ConferenceId, now: Instant) {
        if self.config.roster.conference(id).is_none() {
            // Forgotten: its open alerts get their last edit, closed ones are dropped.
            self.alerts.retain(|key, alert| {
                &key.conference != id || alert.state() != Some(AlertState::Closed)
            });
        }
        for alert in self
            .alerts
            .iter_mut()
            .filter(|(key, _)| &key.conference == id)
            .map(|(_, alert)| alert)
        {
            if alert.state() == Some(AlertState::Posted) && alert.due.is_none() {
                alert.due = Some(now);
            }
        }
        for participant in self.config.roster.watched(id) {
            let key = ParticipantKey {
                conference: id.clone(),
                participant: participant.id,
            };
            self.alerts
                .entry(key)
                .or_insert_with(|| Alert::new(None, Some(now)));
        }
    }

    async fn step(&mut self, key: &ParticipantKey) {
        let Some(mut alert) = self.alerts.remove(key) else {
            return;
        };
        alert.due = None;
        match alert.state() {
            None | Some(AlertState::Pending) => self.post(key, &mut alert).await,
            Some(AlertState::Posted) => self.close(key, &mut alert).await,
            Some(AlertState::Closed) => {}
        }
        let forgotten = self.config.roster.conference(&key.conference).is_none();
        if !(forgotten && alert.state() == Some(AlertState::Closed)) {
            self.alerts.insert(key.clone(), alert);
        }
    }

    /// How the caller and the call are named now.
    fn names(&self, key: &ParticipantKey) -> (String, String) {
        let style = self.config.phone_numbers;
        let who = self
            .config
            .roster
            .participant(key)
            .map(|p| markdown::caller(&p.identity, style, true))
            .unwrap_or_else(|| "A caller".to_owned());
        let call = self
            .config
            .roster
            .conference(&key.conference)
            .map(|view| markdown::call_label(&view, style))
            .unwrap_or_else(|| "a conference call".to_owned());
        (who, call)
    }

    /// How the caller left the call, or `None` while they are on it.
    fn end(&self, key: &ParticipantKey) -> Option<AlertEnd> {
        let Some(view) = self.config.roster.conference(&key.conference) else {
            return Some(AlertEnd::CallEnded);
        };
        match view.participant(&key.participant) {
            Some(p) if p.live && !view.ended => None,
            Some(p) => match &p.removed_by {
                Some(by) => Some(AlertEnd::Removed(markdown::actor(by))),
                None if p.live => Some(AlertEnd::CallEnded),
                None => Some(AlertEnd::Left(p.left_at)),
            },
            None => Some(AlertEnd::CallEnded),
        }
    }

    /// Commits the alert's row with its nonce (the first time), then posts it.
    async fn post(&mut self, key: &ParticipantKey, alert: &mut Alert) {
        let row = match alert.row.clone() {
            Some(row) => row,
            None => {
                self.sequence += 1;
                let row = AlertRow {
                    conference_id: key.conference.as_str().to_owned(),
                    participant_id: key.participant.as_str().to_owned(),
                    channel_id: self.config.channel_id.to_string(),
                    nonce: message::nonce(&self.config.nonce_prefix, self.sequence),
                    message_id: None,
                    state: AlertState::Pending,
                };
                if let Err(error) = self.config.store.save_alert(row.clone()).await {
                    tracing::debug!(%error, "cannot keep a watch-list alert before posting it; retrying");
                    alert.due = Some(Instant::now() + alert.retry.next_wait());
                    return;
                }
                alert.row = Some(row.clone());
                row
            }
        };
        let (who, call) = self.names(key);
        let content = message::alert_opening(&who, &call, &self.config.roster.alert_roles());
        let body = message::alert_body(
            &content,
            &row.nonce,
            &self.config.roster.alert_roles(),
            &watch_remove_id(key),
        );
        let channel = row.channel_id.parse().unwrap_or(self.config.channel_id);
        match self.config.poster.post_message(channel, &body, &[]).await {
            Ok(posted) => {
                metrics::counter!("ringside_watch_alert_requests_total", "request" => "post", "outcome" => "sent").increment(1);
                tracing::info!(
                    conference_id = key.conference.as_str(),
                    participant_id = key.participant.as_str(),
                    "a caller on the watch list joined; alert posted"
                );
                alert.retry.reset();
                let row = AlertRow {
                    message_id: Some(posted.id),
                    state: AlertState::Posted,
                    ..row
                };
                if let Err(error) = self.config.store.save_alert(row.clone()).await {
                    // The next start posts it again with the same nonce: the same message.
                    tracing::warn!(%error, "cannot keep a watch-list alert's message");
                }
                alert.row = Some(row);
                if self.end(key).is_some() {
                    alert.due = Some(Instant::now());
                }
            }
            Err(error) => self.failed(key, alert, "post", error).await,
        }
    }

    /// Once the caller is gone: the alert says how, its button off, its row closed.
    async fn close(&mut self, key: &ParticipantKey, alert: &mut Alert) {
        let Some(end) = self.end(key) else {
            return;
        };
        let Some(row) = alert.row.clone() else {
            return;
        };
        let Some(message_id) = row.message_id.clone() else {
            return;
        };
        let (who, call) = self.names(key);
        let content = message::alert_closing(&who, &call, &end);
        let body = message::alert_edit_body(&content, &watch_remove_id(key));
        let channel = row.channel_id.parse().unwrap_or(self.config.channel_id);
        match self
            .config
            .poster
            .edit_message(channel, &message_id, &body, &[])
            .await
        {
            Ok(_) => {
                metrics::counter!("ringside_watch_alert_requests_total", "request" => "edit", "outcome" => "sent").increment(1);
                alert.retry.reset();
                self.closed(alert, row).await;
            }
            Err(error) => self.failed(key, alert, "edit", error).await,
        }
    }

    /// Keeps the alert closed: nothing more is done with it.
    async fn closed(&self, alert: &mut Alert, row: AlertRow) {
        let row = AlertRow {
            state: AlertState::Closed,
            ..row
        };
        if let Err(error) = self.config.store.save_alert(row.clone()).await {
            // At the next start it is edited again: the same text.
            tracing::warn!(%error, "cannot mark a watch-list alert closed");
        }
        alert.row = Some(row);
        alert.due = None;
    }

    /// A post or edit that did not go through: wait out a rate limit, retry an outage with
    /// backoff, close the alert when Discord refuses it (or its message was deleted).
    async fn failed(
        &mut self,
        key: &ParticipantKey,
        alert: &mut Alert,
        request: &'static str,
        error: PostError,
    ) {
        match error {
            PostError::RateLimited { .. } => {
                metrics::counter!("ringside_watch_alert_requests_total", "request" => request, "outcome" => "rate_limited").increment(1);
                alert.due = Some(Instant::now());
            }
            error @ PostError::Refused { .. } => {
                metrics::counter!("ringside_watch_alert_requests_total", "request" => request, "outcome" => "refused").increment(1);
                if error.is_unknown_message() {
                    tracing::info!(
                        conference_id = key.conference.as_str(),
                        "a watch-list alert was deleted; it is not edited"
                    );
                } else {
                    tracing::error!(%error, conference_id = key.conference.as_str(), "Discord refused a watch-list alert; it is given up");
                }
                if let Some(row) = alert.row.clone() {
                    self.closed(alert, row).await;
                }
            }
            error => {
                metrics::counter!("ringside_watch_alert_requests_total", "request" => request, "outcome" => "failed").increment(1);
                let wait = alert.retry.next_wait();
                tracing::warn!(%error, retry_in_ms = wait.as_millis() as u64, "watch-list alert not sent; retrying");
                alert.due = Some(Instant::now() + wait);
            }
        }
    }
}
