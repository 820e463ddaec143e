//! The roster cards: one message per conference in the channel, edited in place to show who is
//! on the call, and at the end who was ([`crate::present::card`] says what each one reads).
//!
//! The cards are their own lane beside the join and leave lines, and give way to them:
//! - A card is posted `announce.roster_edit_ms` after its conference is first seen (a burst of
//!   joins settles first), naming no caller. Its nonce is kept before the post, so a repost after
//!   a crash is the same message; its message id once Discord created it, so a restart edits
//!   the same card.
//! - The post shares the channel's create-message bucket with the lines, so it waits until the
//!   announcer has nothing pending and the bucket is open: a card never takes a line's place.
//!   Edits go through their own bucket (Discord limits edits apart from creates).
//! - Each change of the conference's roster makes its card due `roster_edit_ms` later, pushed
//!   back by every further change but never past [`SETTLE_LIMIT`] times that from the first: at
//!   most one edit per settled change, and a busy call's card still follows it. An edit that would
//!   not change the text is not sent.
//! - When the conference ends the card gets its final record (with the timeline picture when the
//!   lines are off: `announce.feed = false`), and the lane forgets it.
//! - An edit answered 404 Unknown Message (code 10008: someone deleted the card) forgets that
//!   card and posts a new one — at most [`MAX_REPOSTS`] times per conference, so a moderator who
//!   keeps deleting it does not start a loop. Any other refusal gives the card up (logged once).
//!   Rate limits are waited out by the poster; outages are retried with backoff.
//!
//! A stop drops the lane (once the lines are drained) with any request in flight: at the next
//! start every live card is edited once to the roster as it is then.

use super::Post;
use crate::conference::{ConferenceId, ConferenceView, Roster, RosterChanges};
use crate::config::PhoneNumbers;
use crate::discord::message;
use crate::discord::poster::PostError;
use crate::present::card;
use crate::store::{BatchFile, CardRow, Store};
use crate::util::backoff::Backoff;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// A change waits at most this many `roster_edit_ms` (from the first unsent change) for the
/// conference to settle.
const SETTLE_LIMIT: u32 = 3;
/// How many times a conference's card is posted again after someone deleted it.
const MAX_REPOSTS: u32 = 3;
/// How often a card waiting to be posted looks whether the lines left room.
const FEED_POLL: Duration = Duration::from_millis(50);
/// Waits between tries after an outage or a store failure.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(60);

/// What the card lane runs with.
pub(super) struct CardLane {
    pub(super) roster: Roster,
    pub(super) changes: RosterChanges,
    pub(super) poster: Arc<dyn Post>,
    pub(super) store: Store,
    pub(super) channel_id: u64,
    pub(super) phone_numbers: PhoneNumbers,
    /// `announce.roster_edit_ms`.
    pub(super) edit_after: Duration,
    /// The final edit carries the timeline picture (`announce.timeline` with the lines off).
    pub(super) picture_on_card: bool,
    /// How many of the lines' messages are pending or in flight (0: the lines are idle).
    pub(super) feed_backlog: watch::Receiver<usize>,
    pub(super) nonce_prefix: String,
}

/// One conference's card as the lane knows it.
struct Card {
    /// As stored: `None` until the nonce is kept, `message_id` once posted.
    row: Option<CardRow>,
    /// The text Discord shows, as far as ringside knows (`None`: unknown, e.g. after a restart).
    shown: Option<String>,
    /// When the next step (post or edit) is due; `None`: nothing to do.
    due: Option<Instant>,
    /// The latest the pending change may wait.
    settle_by: Option<Instant>,
    reposts: u32,
    retry: Backoff,
}

impl Card {
    fn new(row: Option<CardRow>, due: Instant) -> Card {
        Card {
            row,
            shown: None,
            due: Some(due),
            settle_by: None,
            reposts: 0,
            retry: Backoff::new(RETRY_FIRST, RETRY_MAX),
        }
    }

    fn message_id(&self) -> Option<&str> {
        self.row.as_ref().and_then(|row| row.message_id.as_deref())
    }
}

/// What one step did to its card.
enum Step {
    /// Keep following it.
    Keep,
    /// Its conference is over for the card (final record shown, or forgotten).
    Done,
    /// Discord refused it, or it was deleted once too often: no new card for this conference.
    GivenUp,
}

/// Follows the conferences with their cards; runs until dropped (with the lines' loop, which
/// ends at the stop once the lines are drained).
pub(super) async fn run(lane: CardLane) {
    let mut lane = Lane {
        cards: HashMap::new(),
        given_up: HashSet::new(),
        sequence: 0,
        config: lane,
    };
    lane.resume().await;
    loop {
        let next = super::earliest_due(&lane.cards, |card| card.due);
        tokio::select! {
            changed = lane.config.changes.changed() => {
                let now = Instant::now();
                for id in changed {
                    lane.note(id, now);
                }
            }
            () = super::sleep_until(next.as_ref().map(|(due, _)| *due)), if next.is_some() => {
                let Some((_, id)) = next else { continue };
                lane.step(&id).await;
            }
        }
        metrics::gauge!("ringside_roster_cards_followed").set(lane.cards.len() as f64);
    }
}

struct Lane {
    cards: HashMap<ConferenceId, Card>,
    /// Live conferences whose card was given up; forgotten with the conference (bounded by the
    /// roster).
    given_up: HashSet<ConferenceId>,
    sequence: u64,
    config: CardLane,
}

impl Lane {
    /// At start: the cards kept before the restart are edited once to the roster as it is now,
    /// and every live conference without a card gets one.
    async fn resume(&mut self) {
        let now = Instant::now();
        match self.config.store.live_cards().await {
            Ok(rows) => {
                for row in rows {
                    let Ok(id) = ConferenceId::parse(&row.conference_id) else {
                        continue;
                    };
                    self.cards.insert(id, Card::new(Some(row), now));
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read the roster cards; live conferences get new ones");
            }
        }
        for id in self.config.roster.live_ids() {
            self.note(id, now);
        }
    }

    /// A conference's roster changed: its card is due once the change settles; a live
    /// conference without a card gets one.
    fn note(&mut self, id: ConferenceId, now: Instant) {
        let edit_after = self.config.edit_after;
        if let Some(card) = self.cards.get_mut(&id) {
            if card.message_id().is_none() {
                // Not posted yet: it goes when first due, with what the roster says then.
                return;
            }
            let settle_by = *card
                .settle_by
                .get_or_insert(now + edit_after * SETTLE_LIMIT);
            let due = (now + edit_after).min(settle_by);
            card.due = Some(card.due.map_or(due, |at| at.max(due).min(settle_by)));
            return;
        }
        match self.config.roster.conference(&id) {
            None => {
                self.given_up.remove(&id);
            }
            Some(view) if !view.ended && !self.given_up.contains(&id) => {
                self.cards.insert(id, Card::new(None, now + edit_after));
            }
            Some(_) => {}
        }
    }

    async fn step(&mut self, id: &ConferenceId) {
        let Some(mut card) = self.cards.remove(id) else {
            return;
        };
        card.due = None;
        let step = if card.message_id().is_some() {
            self.edit(id, &mut card).await
        } else {
            self.post(id, &mut card).await
        };
        match step {
            Step::Keep => {
                self.cards.insert(id.clone(), card);
            }
            Step::GivenUp => {
                self.given_up.insert(id.clone());
            }
            Step::Done => {}
        }
    }

    /// Posts the card (naming no caller), once the lines have nothing pending and the channel's
    /// bucket is open.
    async fn post(&mut self, id: &ConferenceId, card: &mut Card) -> Step {
        let Some(view) = self.config.roster.conference(id) else {
            // Forgotten before it was ever shown.
            self.forget(id).await;
            return Step::Done;
        };
        let now = Instant::now();
        if *self.config.feed_backlog.borrow() > 0 {
            card.due = Some(now + FEED_POLL);
            return Step::Keep;
        }
        if let Some(open) = self.config.poster.message_open_at(self.config.channel_id) {
            card.due = Some(open.max(now + FEED_POLL));
            return Step::Keep;
        }
        let row = match card.row.clone() {
            Some(row) => row,
            None => {
                self.sequence += 1;
                let row = CardRow {
                    conference_id: id.as_str().to_owned(),
                    channel_id: self.config.channel_id.to_string(),
                    nonce: message::nonce(&self.config.nonce_prefix, self.sequence),
                    message_id: None,
                    finished: false,
                };
                if let Err(error) = self.config.store.save_card(row.clone()).await {
                    tracing::debug!(%error, "cannot keep a roster card before posting it; retrying");
                    card.due = Some(Instant::now() + card.retry.next_wait());
                    return Step::Keep;
                }
                card.row = Some(row.clone());
                row
            }
        };
        let content = card::opening(&view, self.config.phone_numbers);
        let body = message::body(&content, &row.nonce);
        let channel = row.channel_id.parse().unwrap_or(self.config.channel_id);
        match self.config.poster.post_message(channel, &body, &[]).await {
            Ok(posted) => {
                metrics::counter!("ringside_roster_card_requests_total", "request" => "post", "outcome" => "sent").increment(1);
                card.retry.reset();
                let row = CardRow {
                    message_id: Some(posted.id),
                    ..row
                };
                if let Err(error) = self.config.store.save_card(row.clone()).await {
                    // The next start posts it again with the same nonce: Discord answers with
                    // this same message.
                    tracing::warn!(%error, "cannot keep a roster card's message");
                }
                card.row = Some(row);
                card.shown = Some(content);
                // Callers, or the end, reach the card by an edit right away; an empty call's
                // card waits for its first change.
                if view.ended || view.live().next().is_some() {
                    card.due = Some(Instant::now());
                }
                Step::Keep
            }
            Err(error) => self.failed(id, card, "post", error).await,
        }
    }

    /// Edits the card to the roster as it is now (its final record once the conference ended).
    async fn edit(&mut self, id: &ConferenceId, card: &mut Card) -> Step {
        let style = self.config.phone_numbers;
        let view = self.config.roster.conference(id);
        let ended = view.as_ref().is_none_or(|view| view.ended);
        let content = match &view {
            Some(view) if view.ended => card::record(view, style),
            Some(view) => card::live(view, style),
            None => card::forgotten(),
        };
        card.settle_by = None;
        if card.shown.as_deref() == Some(content.as_str()) && !ended {
            return Step::Keep;
        }
        let files = match &view {
            Some(view) if ended && self.config.picture_on_card => {
                picture(view.clone(), style).await
            }
            _ => Vec::new(),
        };
        let body = message::edit_body(&content, &files);
        let (Some(row), Some(message_id)) =
            (card.row.clone(), card.message_id().map(str::to_owned))
        else {
            return Step::Keep;
        };
        let channel = row.channel_id.parse().unwrap_or(self.config.channel_id);
        match self
            .config
            .poster
            .edit_message(channel, &message_id, &body, &files)
            .await
        {
            Ok(_) => {
                metrics::counter!("ringside_roster_card_requests_total", "request" => "edit", "outcome" => "sent").increment(1);
                card.retry.reset();
                card.shown = Some(content);
                if !ended {
                    return Step::Keep;
                }
                let row = CardRow {
                    finished: true,
                    ..row
                };
                if let Err(error) = self.config.store.save_card(row).await {
                    // At the next start the card gets its final record again: the same text.
                    tracing::warn!(%error, "cannot mark a roster card final");
                }
                Step::Done
            }
            Err(error) if error.is_unknown_message() => {
                metrics::counter!("ringside_roster_card_requests_total", "request" => "edit", "outcome" => "deleted").increment(1);
                self.forget(id).await;
                if ended {
                    return Step::Done;
                }
                if card.reposts >= MAX_REPOSTS {
                    tracing::info!(
                        conference_id = id.as_str(),
                        "a roster card was deleted again; it is not posted again for this conference"
                    );
                    return Step::GivenUp;
                }
                card.reposts += 1;
                tracing::info!(
                    conference_id = id.as_str(),
                    "a roster card was deleted; posting a new one"
                );
                card.row = None;
                card.shown = None;
                card.due = Some(Instant::now());
                Step::Keep
            }
            Err(error) => self.failed(id, card, "edit", error).await,
        }
    }

    /// A post or edit that did not go through: wait out a rate limit, retry an outage with
    /// backoff, give the card up when Discord refuses it.
    async fn failed(
        &mut self,
        id: &ConferenceId,
        card: &mut Card,
        request: &'static str,
        error: PostError,
    ) -> Step {
        match error {
            PostError::RateLimited { .. } => {
                metrics::counter!("ringside_roster_card_requests_total", "request" => request, "outcome" => "rate_limited").increment(1);
                // The poster waits the bucket out before the next request.
                card.due = Some(Instant::now());
                Step::Keep
            }
            error @ PostError::Refused { .. } => {
                metrics::counter!("ringside_roster_card_requests_total", "request" => request, "outcome" => "refused").increment(1);
                tracing::error!(%error, conference_id = id.as_str(), "Discord refused a roster card; it is given up for this conference");
                self.forget(id).await;
                Step::GivenUp
            }
            error => {
                metrics::counter!("ringside_roster_card_requests_total", "request" => request, "outcome" => "failed").increment(1);
                let wait = card.retry.next_wait();
                tracing::warn!(%error, retry_in_ms = wait.as_millis() as u64, "roster card not updated; retrying");
                card.due = Some(Instant::now() + wait);
                Step::Keep
            }
        }
    }

    async fn forget(&self, id: &ConferenceId) {
        if let Err(error) = self.config.store.forget_card(id.as_str()).await {
            tracing::warn!(%error, "cannot forget a roster card");
        }
    }
}

/// The timeline picture of an ended conference, as the file an upload carries (none when it
/// cannot be drawn). Drawing takes milliseconds of CPU (tens for 50 callers), so it runs on the
/// blocking pool rather than an async worker.
pub(super) async fn picture(view: ConferenceView, style: PhoneNumbers) -> Vec<BatchFile> {
    let drawn = tokio::task::spawn_blocking(move || {
        crate::present::timeline::png(&card::timeline(&view, style))
    })
    .await;
    match drawn {
        Ok(bytes) if !bytes.is_empty() => vec![BatchFile {
            filename: TIMELINE_FILE.to_owned(),
            bytes,
        }],
        Ok(_) => Vec::new(),
        Err(error) => {
            tracing::error!(%error, "could not draw a timeline picture; the message goes without it");
            Vec::new()
        }
    }
}

/// The name of the uploaded timeline picture.
pub(super) const TIMELINE_FILE: &str = "timeline.png";
