//! Turning pending events into messages: stale events summarised, the rest as announcements
//! (grouped by conference, split at Discord's limits), per-conference threads, and the "cannot
//! see calls" notices. Each message gets its nonce here.

use super::card::picture;
use crate::conference::{ConferenceEvent, ConferenceId, ConferenceView, EventKind, Roster};
use crate::config::PhoneNumbers;
use crate::discord::message;
use crate::pipeline::{Announcement, Clock, SubscriptionHealth};
use crate::store::{BatchTarget, NewBatch};
use crate::util::random;
use std::sync::Arc;
use std::time::Duration;

fn is_end(event: &&ConferenceEvent) -> bool {
    matches!(event.kind, EventKind::ConferenceEnded { .. })
}

/// A random nonce prefix for this run: with the sequence it makes every batch's nonce unique.
pub(super) fn nonce_prefix() -> String {
    let mut bytes = [0u8; 5];
    if !random::fill(&mut bytes) {
        // Time is unique enough for a nonce prefix when the OS has no randomness to give.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        bytes.copy_from_slice(&nanos.to_le_bytes()[..5]);
    }
    random::hex_of(&bytes)
}

/// "ringside cannot see calls" once when health turns Failing, and the recovery after it.
#[derive(Debug, Default)]
pub(super) struct HealthNotice {
    posted: bool,
}

impl HealthNotice {
    pub(super) fn on(
        &mut self,
        state: &SubscriptionHealth,
        planner: &mut Planner,
    ) -> Option<NewBatch> {
        match state {
            SubscriptionHealth::Failing { reason } if !self.posted => {
                self.posted = true;
                Some(planner.channel_batch(message::unhealthy_notice(reason), None))
            }
            SubscriptionHealth::Active { .. } if self.posted => {
                self.posted = false;
                Some(planner.channel_batch(message::recovered_notice(), None))
            }
            _ => None,
        }
    }

    /// The notice [`HealthNotice::on`] answered could not be committed: as if it never was, so
    /// the next change of health tries again.
    pub(super) fn not_posted(&mut self) {
        self.posted = !self.posted;
    }
}

/// The messages planned for some events, and the timeline pictures some of them carry.
#[derive(Default)]
pub(super) struct Planned {
    pub(super) batches: Vec<NewBatch>,
    /// Which batch carries which ended conference's picture (not drawn yet).
    pictures: Vec<(usize, ConferenceView)>,
}

impl Planned {
    /// Draws the pictures (each takes milliseconds of CPU: on the blocking pool, not an async
    /// worker) and attaches each to its batch; answers the batches.
    pub(super) async fn draw_pictures(self, style: PhoneNumbers) -> Vec<NewBatch> {
        let Planned {
            mut batches,
            pictures,
        } = self;
        for (index, view) in pictures {
            let files = picture(view, style).await;
            if let Some(batch) = batches.get_mut(index) {
                batch.body = message::with_attachments(&batch.body, &files);
                batch.files = files;
            }
        }
        batches
    }
}

/// Turns pending events into messages.
pub(super) struct Planner {
    pub(super) roster: Roster,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) phone_numbers: PhoneNumbers,
    pub(super) stale_after: Duration,
    pub(super) thread_per_conference: bool,
    pub(super) channel_id: u64,
    pub(super) nonce_prefix: String,
    pub(super) sequence: u64,
    /// `announce.feed`: off, conference events get no message (the roster cards speak for them).
    pub(super) feed: bool,
    /// `announce.timeline`: a conference's end line carries its timeline picture.
    pub(super) timeline: bool,
}

impl Planner {
    fn new_batch(
        &mut self,
        content: String,
        conference: Option<&ConferenceId>,
        target: BatchTarget,
        thread_name: Option<String>,
    ) -> NewBatch {
        self.sequence += 1;
        let nonce = message::nonce(&self.nonce_prefix, self.sequence);
        NewBatch {
            body: message::body(&content, &nonce),
            nonce,
            channel_id: self.channel_id.to_string(),
            conference_id: conference.map(|id| id.as_str().to_owned()),
            target,
            thread_name,
            outbox_ids: Vec::new(),
            files: Vec::new(),
        }
    }

    pub(super) fn channel_batch(
        &mut self,
        content: String,
        conference: Option<&ConferenceId>,
    ) -> NewBatch {
        self.new_batch(content, conference, BatchTarget::Channel, None)
    }

    /// The messages announcing `events`: stale ones summarised first, then the rest.
    pub(super) fn plan(&mut self, events: &[Announcement]) -> Planned {
        if events.is_empty() {
            return Planned::default();
        }
        let stale_before = self
            .clock
            .now()
            .plus_millis(-i64::try_from(self.stale_after.as_millis()).unwrap_or(i64::MAX));
        let (stale, fresh): (Vec<&ConferenceEvent>, Vec<&ConferenceEvent>) = events
            .iter()
            .map(|announcement| &announcement.event)
            .partition(|event| event.received_at < stale_before);
        let style = self.phone_numbers;
        let mut batches = Vec::new();
        let mut pictures = Vec::new();
        if !self.feed {
            // The roster cards speak for the conferences; the events are done with.
            return Planned::default();
        }
        if !stale.is_empty() {
            tracing::info!(
                count = stale.len(),
                "summarising announcements that waited too long"
            );
            for content in message::away_summary(&stale, &self.roster, style) {
                batches.push(self.channel_batch(content, None));
            }
        }
        if !fresh.is_empty() && !self.thread_per_conference {
            // With pictures, a message ends at each conference's end line: the picture goes
            // with the message that ends the conference.
            let timeline = self.timeline;
            for chunk in fresh.split_inclusive(|event| timeline && is_end(event)) {
                let single = chunk
                    .iter()
                    .all(|event| event.conference_id == chunk[0].conference_id)
                    .then(|| chunk[0].conference_id.clone());
                for content in message::announcement(chunk, &self.roster, style) {
                    batches.push(self.channel_batch(content, single.as_ref()));
                }
                if let Some(ended) = chunk.last().filter(|event| is_end(event)) {
                    self.attach_timeline(&batches, &ended.conference_id, &mut pictures);
                }
            }
        } else if !fresh.is_empty() {
            self.plan_threads(&fresh, &mut batches, &mut pictures);
        }
        // The events are delivered once the last of their messages is done.
        if let Some(last) = batches.last_mut() {
            last.outbox_ids = events
                .iter()
                .filter_map(|announcement| announcement.outbox_id)
                .collect();
        }
        Planned { batches, pictures }
    }

    /// Notes that `batch` (the last so far: a conference's end summary) carries `conference`'s
    /// timeline picture, when pictures are on and the roster still has the conference. The
    /// picture is drawn by [`Planned::draw_pictures`], off the async workers.
    fn attach_timeline(
        &self,
        batches: &[NewBatch],
        conference: &ConferenceId,
        pictures: &mut Vec<(usize, ConferenceView)>,
    ) {
        if !self.timeline || batches.is_empty() {
            return;
        }
        if let Some(view) = self.roster.conference(conference) {
            pictures.push((batches.len() - 1, view));
        }
    }

    /// Thread mode: per conference, its start in the channel (a thread is made from it), its
    /// joins and leaves in its thread, its end in the channel.
    fn plan_threads(
        &mut self,
        fresh: &[&ConferenceEvent],
        batches: &mut Vec<NewBatch>,
        pictures: &mut Vec<(usize, ConferenceView)>,
    ) {
        let style = self.phone_numbers;
        let mut conferences: Vec<ConferenceId> = Vec::new();
        for event in fresh {
            if !conferences.contains(&event.conference_id) {
                conferences.push(event.conference_id.clone());
            }
        }
        for conference in conferences {
            let events: Vec<&ConferenceEvent> = fresh
                .iter()
                .copied()
                .filter(|event| event.conference_id == conference)
                .collect();
            let is = |event: &&ConferenceEvent, start: bool| match event.kind {
                EventKind::ConferenceStarted { .. } => start,
                EventKind::ConferenceEnded { .. } => !start,
                _ => false,
            };
            let starts: Vec<&ConferenceEvent> =
                events.iter().copied().filter(|e| is(e, true)).collect();
            let ends: Vec<&ConferenceEvent> =
                events.iter().copied().filter(|e| is(e, false)).collect();
            let middle: Vec<&ConferenceEvent> = events
                .iter()
                .copied()
                .filter(|e| {
                    !matches!(
                        e.kind,
                        EventKind::ConferenceStarted { .. } | EventKind::ConferenceEnded { .. }
                    )
                })
                .collect();
            if !starts.is_empty() {
                let name = message::thread_name(&conference, &events, &self.roster, style);
                for content in message::announcement(&starts, &self.roster, style) {
                    let batch = self.new_batch(
                        content,
                        Some(&conference),
                        BatchTarget::ThreadStart,
                        Some(name.clone()),
                    );
                    batches.push(batch);
                }
            }
            for content in message::announcement(&middle, &self.roster, style) {
                batches.push(self.new_batch(content, Some(&conference), BatchTarget::Thread, None));
            }
            for content in message::announcement(&ends, &self.roster, style) {
                batches.push(self.channel_batch(content, Some(&conference)));
            }
            if !ends.is_empty() {
                self.attach_timeline(batches, &conference, pictures);
            }
        }
    }
}
