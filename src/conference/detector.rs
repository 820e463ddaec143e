//! The detector: a pure state machine from RingCentral's telephony events to conference events.
//!
//! No I/O and no clock: every input carries its time. Grace periods run on received times;
//! `eventTime` is used only for what is shown. The whole state is serializable. The rules, one
//! function each below:
//!
//! - **Conference and participant keys.** A conference is keyed by its conference session's
//!   `telephonySessionId`; a participant by its conference-side party id.
//! - **Join from an original party** ([`Detector::join_from_original_party`]): a party with
//!   `Gone`/`Conference` and a `peerId` means the far end of that call joined conference
//!   `peerId.telephonySessionId` as party `peerId.partyId`; its identity is the remote side of
//!   the original party (`to` when `Outbound`, `from` when `Inbound`).
//! - **Join from the conference side** ([`Detector::join_from_conference_side`]): a party of a
//!   conference session (`origin.type = Conference`) with `conferenceRole = Participant` and any
//!   status but `Disconnected` (`Gone` there does not mean gone). Its own remote side names it
//!   only when that differs from the host (RingCentral puts the host's leg in `from` for merged
//!   callers); otherwise it stays unknown until an original party names it, and the roster is
//!   updated then ([`participant_identity`]). Every original-party update that names its caller
//!   is kept with the party, so the call's earlier or later updates name a participant whose
//!   `Gone`/`Conference` update never came ([`Detector::remember_caller`]).
//! - **Host** ([`Detector::host_from_conference_side`], [`Detector::host_from_original_party`]):
//!   the conference party with `conferenceRole = Host` (identity from `from`); until that is
//!   seen, the near side of the original party that went `Gone`/`Conference`. The host is not a
//!   participant.
//! - **Start** ([`Detector::start`]): `conference_started` when a conference is first seen live,
//!   before its first join, with the host when known.
//! - **Leave** ([`Detector::leave`]): the conference-side party reaches `Disconnected`; the
//!   original party that joined reaches `Disconnected`; a snapshot lists it `Disconnected`; or two
//!   consecutive snapshots miss a participant who joined more than one reconcile interval before
//!   ([`Detector::leave_when_missing_from_snapshots`]). Reasons: `removed` when a kick intent is
//!   recorded, `conference_ended` when the host already left or the conference ends, `vanished`
//!   when only reconciliation found it gone, else `hung_up`.
//! - **End** ([`Detector::end_when_all_disconnected`], [`Detector::end`]): `SessionGone`, or every
//!   known party of the conference session is `Disconnected` and its host party was seen. Remaining
//!   participants leave with `conference_ended` first. Original parties alone never end a
//!   conference.
//! - **Order** ([`Detector::accept_party`]): `sequence` is per session; a per-party high-water mark
//!   drops older and repeated updates. Sessions are not ordered against each other.
//! - **Never twice, never back**: a participant joins at most once and leaves at most once; a
//!   leave needs a join; a participant seen gone before it joined never joins; an ended conference
//!   takes no more events. Plain calls, transfers and supervision never produce a join.
//! - **Forgetting** ([`Detector::forget`]): a conference's details are dropped `forget_after`
//!   after it ended; tombstones (ids, the participants who left, high-water marks of conference
//!   parties) live `tombstone_for` (at least 24 h), so a late duplicate can never bring anyone
//!   back.
//! - **Remembering less** ([`Detector::remember_caller`], [`Detector::forget`]): a party keeps
//!   its caller only until it is linked and finished (the participant holds the name then);
//!   otherwise the caller stays while the party is remembered, since a conference side seen late
//!   may still link it through its `peerId` and need the name. A finished (`Disconnected` or
//!   `Gone`) party that never linked is kept `forget_after` (10 minutes by default), long enough
//!   for any reordered or repeated update of the call to meet its mark and be dropped; each party
//!   is its own row, so what is remembered costs nothing at a commit that does not touch it. A
//!   call that never finished keeps its party `tombstone_for`, since it may still be up. Neither
//!   can bring anyone back later: a plain call's party that never linked never had a
//!   `Gone`/`Conference` update applied (that would have linked it), and a linked one stays as
//!   long as its conference's details; a participant's own record, kept with its conference's
//!   tombstone, is what forbids a second join or leave.
//! - **Durable rows** ([`Detector::take_changes`]): the state is kept as one row per party, per
//!   conference and per link, and every mutation marks its row; a commit writes only the rows its
//!   inputs changed, so its cost follows the notifications, not the size of the state, and an
//!   idle detector (ticks that forget nothing) changes no row.

use super::event::{ConferenceEvent, EventKind, LeaveReason, ids};
use super::ids::{
    Actor, ConferenceId, Identity, ParticipantId, ParticipantKey, PartyId, SessionId, Timestamp,
};
use super::input::{Input, PartyUpdate, SessionUpdate};
use crate::ringcentral::wire::{ConferenceRole, Direction, OriginType, StatusCode, StatusReason};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

mod state;
pub use state::{RowError, RowKind, StateRow};

/// Tombstones must outlive any redelivery RingCentral could make.
pub const MIN_TOMBSTONE_MILLIS: i64 = 24 * 60 * 60 * 1000;

/// The durations the detector's rules depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectorConfig {
    /// The reconciler's polling interval; a participant must have been on the call longer than
    /// this before a missing snapshot entry counts against it.
    pub reconcile_interval_millis: i64,
    /// How long an ended conference keeps its details (for late identity lookups and rendering).
    pub forget_after_millis: i64,
    /// How long ids and high-water marks are kept after last activity (clamped to ≥ 24 h).
    pub tombstone_millis: i64,
    /// Scope: only conferences hosted by these extension ids are announced and listed (empty:
    /// all). A conference waits, silently, until its host is known to be in scope.
    pub host_extensions: BTreeSet<String>,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            reconcile_interval_millis: 20_000,
            forget_after_millis: 10 * 60 * 1000,
            tombstone_millis: 25 * 60 * 60 * 1000,
            host_extensions: BTreeSet::new(),
        }
    }
}

/// What the detector remembers of one party (of any session): its high-water mark and status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PartyTrack {
    session: SessionId,
    sequence: Option<u64>,
    code: Option<StatusCode>,
    seen: Timestamp,
    /// For an original party: the caller's side, once an update named it (see
    /// [`Detector::remember_caller`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    caller: Option<Identity>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Presence {
    /// Known (linked) but not joined yet.
    Pending,
    /// On the call, in a conference that has not started because its host is not known to be
    /// in scope; joins when it starts.
    Waiting,
    Live,
    Left,
    /// Seen gone before it ever joined: it never will.
    GoneBeforeJoin,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Kick {
    by: Actor,
    reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Participant {
    presence: Presence,
    joined_at: Option<Timestamp>,
    joined_received: Option<Timestamp>,
    original_party: Option<PartyId>,
    /// The remote side of the original call's party: the most reliable name.
    original_identity: Option<Identity>,
    /// The conference-side party's remote side: trusted only when it is not the host.
    conference_identity: Option<Identity>,
    muted: bool,
    on_hold: bool,
    kick: Option<Kick>,
    /// Consecutive snapshots that did not list this participant.
    misses: u8,
    /// When the last of those was taken: two misses must be a reconcile interval apart.
    #[serde(default)]
    last_miss: Option<Timestamp>,
    /// When the participant left (its event's time) and whether a kick removed them: what the
    /// roster card's end record and the timeline picture show.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    left_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    removed: bool,
}

impl Participant {
    fn new() -> Self {
        Participant {
            presence: Presence::Pending,
            joined_at: None,
            joined_received: None,
            original_party: None,
            original_identity: None,
            conference_identity: None,
            muted: false,
            on_hold: false,
            kick: None,
            misses: 0,
            last_miss: None,
            left_at: None,
            removed: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Conference {
    started: bool,
    started_at: Option<Timestamp>,
    last_activity: Timestamp,
    host: Option<Identity>,
    host_party: Option<PartyId>,
    /// Every conference-session party seen, with its latest status.
    parties: BTreeMap<PartyId, Option<StatusCode>>,
    participants: BTreeMap<ParticipantId, Participant>,
    joined: u32,
    peak: u32,
    ended_at: Option<Timestamp>,
    /// The end by `eventTime` (what is shown); `ended_at` is the received time rules run on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ended_at_event: Option<Timestamp>,
    /// Details dropped; only the tombstone remains.
    compacted: bool,
}

impl Conference {
    fn new(now: Timestamp) -> Self {
        Conference {
            started: false,
            started_at: None,
            last_activity: now,
            host: None,
            host_party: None,
            parties: BTreeMap::new(),
            participants: BTreeMap::new(),
            joined: 0,
            peak: 0,
            ended_at: None,
            ended_at_event: None,
            compacted: false,
        }
    }

    fn on_call(&self) -> u32 {
        let live = self
            .participants
            .values()
            .filter(|p| p.presence == Presence::Live)
            .count();
        u32::try_from(live).unwrap_or(u32::MAX)
    }

    fn host_left(&self) -> bool {
        self.host_party
            .as_ref()
            .and_then(|party| self.parties.get(party))
            .is_some_and(|code| *code == Some(StatusCode::Disconnected))
    }
}

/// How a leave was detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeaveCause {
    Disconnected,
    Missing,
    ConferenceEnded,
}

/// The time context of one input.
#[derive(Debug, Clone, Copy)]
struct Ctx {
    received: Timestamp,
    at: Timestamp,
    /// The input is a reconciliation snapshot: what it shows gone, only reconciliation saw.
    snapshot: bool,
}

/// The conference detector. See the module doc for its rules.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Detector {
    #[serde(skip)]
    config: DetectorConfig,
    /// Every party of every session still remembered: the largest map, looked up for every
    /// party of every input, so hashed (nothing reads it in order).
    parties: HashMap<PartyId, PartyTrack>,
    conferences: BTreeMap<ConferenceId, Conference>,
    /// Original party id → the participant it became.
    links: HashMap<PartyId, ParticipantKey>,
    #[serde(skip)]
    dirty: HashSet<ConferenceId>,
    /// What changed since the durable rows were last taken ([`Detector::take_changes`]).
    #[serde(skip)]
    unsaved: Unsaved,
}

/// The keys of the durable rows changed since they were last taken: one row per party, per
/// conference and per link, so a commit writes what the notifications in it touched and never
/// the whole state.
#[derive(Debug, Clone, Default)]
struct Unsaved {
    parties: HashSet<PartyId>,
    conferences: HashSet<ConferenceId>,
    links: HashSet<PartyId>,
}

/// Adds `id` to a set of marks, cloning it only when it is not there yet (most inputs touch
/// what the last one did).
fn mark<T: Clone + Eq + std::hash::Hash>(set: &mut HashSet<T>, id: &T) {
    if !set.contains(id) {
        set.insert(id.clone());
    }
}

/// A conference to change, marked for the next save. Takes the two fields rather than `self`,
/// so the caller can still touch the others (the roster's `dirty` set) while holding it.
fn conference_mut<'a>(
    conferences: &'a mut BTreeMap<ConferenceId, Conference>,
    unsaved: &mut Unsaved,
    id: &ConferenceId,
) -> Option<&'a mut Conference> {
    let conference = conferences.get_mut(id)?;
    mark(&mut unsaved.conferences, id);
    Some(conference)
}

/// A read-only view of one conference, for the roster and rendering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConferenceView {
    pub id: ConferenceId,
    pub started_at: Option<Timestamp>,
    pub host: Option<Identity>,
    /// The host's conference-side party, once seen (never a kick target).
    pub host_party: Option<PartyId>,
    pub ended: bool,
    /// When the conference ended, by its last event's time (`ended` alone when unknown).
    pub ended_at: Option<Timestamp>,
    pub joined: u32,
    pub peak: u32,
    /// Live participants first come in join order of their ids; left ones are kept until the
    /// conference is forgotten, so late renders can still name them.
    pub participants: Vec<ParticipantView>,
}

impl ConferenceView {
    pub fn live(&self) -> impl Iterator<Item = &ParticipantView> {
        self.participants.iter().filter(|p| p.live)
    }

    pub fn participant(&self, id: &ParticipantId) -> Option<&ParticipantView> {
        self.participants.iter().find(|p| &p.id == id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParticipantView {
    pub id: ParticipantId,
    pub identity: Identity,
    pub joined_at: Option<Timestamp>,
    pub live: bool,
    pub muted: bool,
    pub on_hold: bool,
    /// When a participant who left did (the roster card's end record, the timeline picture).
    pub left_at: Option<Timestamp>,
    /// Who removed a participant a kick took off the call.
    pub removed_by: Option<Actor>,
    /// The original call's party, for a kick that must fall back to the original ids.
    pub original_party: Option<PartyId>,
    pub original_session: Option<SessionId>,
}

impl Detector {
    pub fn new(config: DetectorConfig) -> Self {
        let mut config = config;
        config.tombstone_millis = config.tombstone_millis.max(MIN_TOMBSTONE_MILLIS);
        Detector {
            config,
            ..Detector::default()
        }
    }

    /// Restores a snapshot taken with `serde`, under the current settings.
    pub fn with_config(mut self, config: DetectorConfig) -> Self {
        let restored = Detector::new(config);
        self.config = restored.config;
        self.dirty = self.conferences.keys().cloned().collect();
        self
    }

    /// Applies one input and returns the events it produced, in order.
    pub fn apply(&mut self, input: Input) -> Vec<ConferenceEvent> {
        let mut out = Vec::new();
        match input {
            Input::Notification {
                received_at,
                notification,
            } => {
                let ctx = Ctx {
                    received: received_at,
                    at: notification.event_time.unwrap_or(received_at),
                    snapshot: false,
                };
                self.on_session_update(&notification, ctx, &mut out);
            }
            Input::Snapshot {
                requested_at,
                session,
            } => {
                let ctx = Ctx {
                    received: requested_at,
                    at: requested_at,
                    snapshot: true,
                };
                self.on_session_update(&session, ctx, &mut out);
            }
            Input::SessionGone { at, conference_id } => {
                let ctx = Ctx {
                    received: at,
                    at,
                    snapshot: false,
                };
                self.end_when_session_gone(&conference_id, ctx, &mut out);
            }
            Input::KickIntent {
                participant,
                by,
                reason,
                ..
            } => self.record_kick(&participant, Some(Kick { by, reason })),
            Input::KickFailed { participant, .. } => self.record_kick(&participant, None),
            Input::Tick { now } => self.forget(now),
        }
        out
    }

    /// Conferences whose view changed since the last call (for the roster).
    pub fn take_dirty(&mut self) -> Vec<ConferenceId> {
        std::mem::take(&mut self.dirty).into_iter().collect()
    }

    /// The view of one conference, once it has started.
    pub fn view(&self, id: &ConferenceId) -> Option<ConferenceView> {
        let conference = self.conferences.get(id)?;
        if !conference.started || conference.compacted {
            return None;
        }
        let participants = conference
            .participants
            .iter()
            .filter(|(_, p)| matches!(p.presence, Presence::Live | Presence::Left))
            .map(|(id, p)| ParticipantView {
                id: id.clone(),
                identity: participant_identity(p, conference.host.as_ref()),
                joined_at: p.joined_at,
                live: p.presence == Presence::Live,
                muted: p.muted,
                on_hold: p.on_hold,
                left_at: p.left_at,
                removed_by: p
                    .kick
                    .as_ref()
                    .filter(|_| p.removed)
                    .map(|kick| kick.by.clone()),
                original_party: p.original_party.clone(),
                original_session: p
                    .original_party
                    .as_ref()
                    .and_then(|party| self.parties.get(party))
                    .map(|track| track.session.clone()),
            })
            .collect();
        Some(ConferenceView {
            id: id.clone(),
            started_at: conference.started_at,
            host: conference.host.clone(),
            host_party: conference.host_party.clone(),
            ended: conference.ended_at.is_some(),
            ended_at: conference.ended_at_event.or(conference.ended_at),
            joined: conference.joined,
            peak: conference.peak,
            participants,
        })
    }

    /// Every conference with a view.
    pub fn views(&self) -> Vec<ConferenceView> {
        self.conferences
            .keys()
            .filter_map(|id| self.view(id))
            .collect()
    }

    /// Conferences that have started and not ended (what the reconciler polls).
    pub fn live_conferences(&self) -> Vec<ConferenceId> {
        self.conferences
            .iter()
            .filter(|(_, c)| c.started && c.ended_at.is_none())
            .map(|(id, _)| id.clone())
            .collect()
    }

    // ----- order -------------------------------------------------------------------------

    /// Order: keeps a per-party high-water mark and drops updates at or below it. Snapshots carry
    /// no sequence and never move the mark.
    fn accept_party(
        &mut self,
        session: &SessionId,
        sequence: Option<u64>,
        party: &PartyUpdate,
        ctx: Ctx,
    ) -> bool {
        match (self.parties.get_mut(&party.id), sequence) {
            (Some(track), Some(sequence)) => {
                if track.sequence.is_some_and(|mark| sequence <= mark) {
                    return false;
                }
                track.sequence = Some(sequence);
                track.code = party.code.clone();
                track.seen = ctx.received;
                mark(&mut self.unsaved.parties, &party.id);
                true
            }
            (Some(track), None) => {
                if ctx.received > track.seen {
                    track.seen = ctx.received;
                    mark(&mut self.unsaved.parties, &party.id);
                }
                true
            }
            (None, _) => {
                mark(&mut self.unsaved.parties, &party.id);
                self.parties.insert(
                    party.id.clone(),
                    PartyTrack {
                        session: session.clone(),
                        sequence,
                        code: party.code.clone(),
                        seen: ctx.received,
                        caller: None,
                    },
                );
                true
            }
        }
    }

    fn on_session_update(
        &mut self,
        update: &SessionUpdate,
        ctx: Ctx,
        out: &mut Vec<ConferenceEvent>,
    ) {
        let fresh: Vec<&PartyUpdate> = update
            .parties
            .iter()
            .filter(|party| self.accept_party(&update.session_id, update.sequence, party, ctx))
            .collect();
        let conference_id = ConferenceId::from(&update.session_id);
        let is_conference = update.origin == Some(OriginType::Conference)
            || self.conferences.contains_key(&conference_id)
            || update.parties.iter().any(|party| party.role.is_some());
        if is_conference {
            self.on_conference_session(&conference_id, &fresh, ctx, out);
            if ctx.snapshot {
                self.leave_when_missing_from_snapshots(&conference_id, update, ctx, out);
            }
        } else {
            for party in fresh {
                self.on_original_party(&update.session_id, party, ctx, out);
            }
        }
    }

    // ----- conference session ------------------------------------------------------------------

    fn on_conference_session(
        &mut self,
        id: &ConferenceId,
        parties: &[&PartyUpdate],
        ctx: Ctx,
        out: &mut Vec<ConferenceEvent>,
    ) {
        if parties.is_empty() || self.touch(id, ctx).is_none() {
            return;
        }
        // Within one update the host goes first: callers disconnected in the same notification
        // as the host left because the conference ended, whatever order the parties are listed.
        let (hosts, others): (Vec<&&PartyUpdate>, Vec<&&PartyUpdate>) = parties
            .iter()
            .partition(|party| conference_role(party) == ConferenceRole::Host);
        for party in hosts.into_iter().chain(others) {
            if let Some(conference) = conference_mut(&mut self.conferences, &mut self.unsaved, id) {
                // `Disconnected` is final for a party: a snapshot read before it (answered
                // after it) must not bring the party back.
                match conference.parties.get_mut(&party.id) {
                    Some(status) if *status == Some(StatusCode::Disconnected) => {}
                    Some(status) => *status = party.code.clone(),
                    None => {
                        conference
                            .parties
                            .insert(party.id.clone(), party.code.clone());
                    }
                }
            }
            match conference_role(party) {
                ConferenceRole::Host => self.host_from_conference_side(id, party, ctx, out),
                _ => self.join_from_conference_side(id, party, ctx, out),
            }
        }
        self.end_when_all_disconnected(id, ctx, out);
    }

    /// Host: the conference party with `conferenceRole = Host`, identity from its `from`.
    fn host_from_conference_side(
        &mut self,
        id: &ConferenceId,
        party: &PartyUpdate,
        ctx: Ctx,
        out: &mut Vec<ConferenceEvent>,
    ) {
        let Some(conference) = conference_mut(&mut self.conferences, &mut self.unsaved, id) else {
            return;
        };
        conference.host_party = Some(party.id.clone());
        let previous = conference.host.take().unwrap_or_default();
        conference.host = Some(party.from.clone().or(&previous)).filter(|host| !host.is_unknown());
        if party.code != Some(StatusCode::Disconnected) {
            self.start(id, ctx, out);
        }
    }

    /// Join (conference side): a `Participant` party in any status but `Disconnected`; a
    /// `Disconnected` one leaves.
    fn join_from_conference_side(
        &mut self,
        id: &ConferenceId,
        party: &PartyUpdate,
        ctx: Ctx,
        out: &mut Vec<ConferenceEvent>,
    ) {
        let key = ParticipantKey {
            conference: id.clone(),
            participant: ParticipantId::from(&party.id),
        };
        let original = party
            .peer
            .as_ref()
            .and_then(|peer| peer.party_id.clone())
            .filter(|original| *original != party.id);
        if let Some(original) = &original
            && self.links.get(original) != Some(&key)
        {
            self.links.insert(original.clone(), key.clone());
            mark(&mut self.unsaved.links, original);
        }
        let original_gone = original
            .as_ref()
            .and_then(|original| self.parties.get(original))
            .is_some_and(|track| track.code == Some(StatusCode::Disconnected));
        let original_caller = original
            .as_ref()
            .and_then(|original| self.parties.get(original))
            .and_then(|track| track.caller.clone());
        let Some(participant) = self.participant_mut(&key) else {
            return;
        };
        if original.is_some() {
            participant.original_party = original;
        }
        if participant.original_identity.is_none() {
            participant.original_identity = original_caller;
        }
        let remote = match party.direction {
            Some(Direction::Outbound) => &party.to,
            _ => &party.from,
        };
        if !remote.is_unknown() {
            participant.conference_identity = Some(remote.clone());
        }
        if let Some(muted) = party.muted {
            participant.muted = muted;
        }
        if let Some(code) = &party.code {
            participant.on_hold = *code == StatusCode::Hold;
        }
        participant.misses = 0;
        if party.code == Some(StatusCode::Disconnected) || original_gone {
            let cause = if ctx.snapshot {
                LeaveCause::Missing
            } else {
                LeaveCause::Disconnected
            };
            self.leave(&key, cause, ctx, out);
        } else {
            self.join(&key, ctx, out);
        }
    }

    // ----- original sessions -------------------------------------------------------------------

    fn on_original_party(
        &mut self,
        session: &SessionId,
        party: &PartyUpdate,
        ctx: Ctx,
        out: &mut Vec<ConferenceEvent>,
    ) {
        self.remember_caller(party);
        let merged =
            party.code == Some(StatusCode::Gone) && party.reason == Some(StatusReason::Conference);
        if merged {
            self.join_from_original_party(session, party, ctx, out);
        } else if party.code == Some(StatusCode::Disconnected) {
            self.leave_from_original_party(party, ctx, out);
        }
    }

    /// Join (original side): `Gone`/`Conference` with a `peerId` naming the conference and party.
    fn join_from_original_party(
        &mut self,
        _session: &SessionId,
        party: &PartyUpdate,
        ctx: Ctx,
        out: &mut Vec<ConferenceEvent>,
    ) {
        let Some(peer) = &party.peer else { return };
        let (Some(conference_session), Some(conference_party)) =
            (&peer.telephony_session_id, &peer.party_id)
        else {
            return;
        };
        let key = ParticipantKey {
            conference: ConferenceId::from(conference_session),
            participant: ParticipantId::from(conference_party),
        };
        if self.links.get(&party.id) != Some(&key) {
            self.links.insert(party.id.clone(), key.clone());
            mark(&mut self.unsaved.links, &party.id);
        }
        let (remote, near) = match party.direction {
            Some(Direction::Inbound) => (&party.from, &party.to),
            _ => (&party.to, &party.from),
        };
        self.host_from_original_party(&key.conference, near, ctx);
        let conference_side_gone = self
            .parties
            .get(&PartyId::from(&key.participant))
            .is_some_and(|track| track.code == Some(StatusCode::Disconnected));
        let Some(participant) = self.participant_mut(&key) else {
            return;
        };
        participant.original_party = Some(party.id.clone());
        if !remote.is_unknown() {
            participant.original_identity = Some(remote.clone());
        }
        if conference_side_gone {
            self.leave(&key, LeaveCause::Disconnected, ctx, out);
        } else {
            self.join(&key, ctx, out);
        }
    }

    /// Host, until the conference side names it: the near side of the merged original party.
    fn host_from_original_party(&mut self, id: &ConferenceId, near: &Identity, ctx: Ctx) {
        let Some(conference) = self.touch(id, ctx) else {
            return;
        };
        if conference.host.is_none() && !near.is_unknown() {
            conference.host = Some(near.clone());
        }
    }

    /// Identities (late): every update of an original party that names its caller is kept with
    /// the party's track, and names the participant it is linked to if nothing named them yet.
    /// So a caller whose `Gone`/`Conference` update never arrived (lost with a crashed process,
    /// or overflowed from RingCentral's recovery buffer) is still named: by the call's earlier
    /// updates once the conference side links the party through its `peerId`, or by its later
    /// ones (the hang-up).
    fn remember_caller(&mut self, party: &PartyUpdate) {
        let caller = match party.direction {
            Some(Direction::Inbound) => &party.from,
            _ => &party.to,
        };
        if !caller.is_unknown()
            && let Some(key) = self.links.get(&party.id).cloned()
        {
            self.name_if_unnamed(&key, caller);
        }
        // A finished call keeps its caller while it is remembered: a conference side seen
        // later may still link it through its `peerId` and need the name. Once linked, the
        // participant holds the name and the party's copy goes (the compact form).
        let linked = self.links.contains_key(&party.id);
        let Some(track) = self.parties.get_mut(&party.id) else {
            return;
        };
        let changed = if linked && party.code == Some(StatusCode::Disconnected) {
            track.caller.take().is_some()
        } else if !caller.is_unknown() && track.caller.as_ref() != Some(caller) {
            track.caller = Some(caller.clone());
            true
        } else {
            false
        };
        if changed {
            mark(&mut self.unsaved.parties, &party.id);
        }
    }

    /// Gives a participant its original identity, unless an original party already named it.
    fn name_if_unnamed(&mut self, key: &ParticipantKey, caller: &Identity) {
        let Some(conference) =
            conference_mut(&mut self.conferences, &mut self.unsaved, &key.conference)
        else {
            return;
        };
        let Some(participant) = conference.participants.get_mut(&key.participant) else {
            return;
        };
        if participant.original_identity.is_none() {
            participant.original_identity = Some(caller.clone());
            mark(&mut self.dirty, &key.conference);
        }
    }

    /// Leave (original side): the original party that joined reaches `Disconnected`.
    fn leave_from_original_party(
        &mut self,
        party: &PartyUpdate,
        ctx: Ctx,
        out: &mut Vec<ConferenceEvent>,
    ) {
        if let Some(key) = self.links.get(&party.id).cloned() {
            self.leave(&key, LeaveCause::Disconnected, ctx, out);
            self.end_when_all_disconnected(&key.conference, ctx, out);
        }
    }

    // ----- snapshots ---------------------------------------------------------------------------

    /// Leave (reconciliation): two consecutive snapshots that no longer list a participant who
    /// joined more than one reconcile interval before the snapshot was requested.
    fn leave_when_missing_from_snapshots(
        &mut self,
        id: &ConferenceId,
        update: &SessionUpdate,
        ctx: Ctx,
        out: &mut Vec<ConferenceEvent>,
    ) {
        let listed: BTreeSet<&str> = update
            .parties
            .iter()
            .map(|party| party.id.as_str())
            .collect();
        let interval = self.config.reconcile_interval_millis;
        let Some(conference) = self.conferences.get_mut(id) else {
            return;
        };
        if conference.ended_at.is_some() {
            return;
        }
        let mut vanished = Vec::new();
        for (participant_id, participant) in conference.participants.iter_mut() {
            if participant.presence != Presence::Live {
                continue;
            }
            if listed.contains(participant_id.as_str()) {
                if participant.misses != 0 || participant.last_miss.is_some() {
                    participant.misses = 0;
                    participant.last_miss = None;
                    mark(&mut self.unsaved.conferences, id);
                }
                continue;
            }
            let settled = participant
                .joined_received
                .is_some_and(|joined| joined.plus_millis(interval) < ctx.received);
            let spaced = participant
                .last_miss
                .is_none_or(|last| last.plus_millis(interval) <= ctx.received);
            if settled && spaced {
                participant.misses = participant.misses.saturating_add(1);
                participant.last_miss = Some(ctx.received);
                mark(&mut self.unsaved.conferences, id);
                if participant.misses >= 2 {
                    vanished.push(participant_id.clone());
                }
            }
        }
        for participant in vanished {
            let key = ParticipantKey {
                conference: id.clone(),
                participant,
            };
            self.leave(&key, LeaveCause::Missing, ctx, out);
        }
        self.end_when_all_disconnected(id, ctx, out);
    }

    // ----- the shared transitions --------------------------------------------------------------

    /// The conference, created on first sight and marked active; `None` once it ended.
    fn touch(&mut self, id: &ConferenceId, ctx: Ctx) -> Option<&mut Conference> {
        if !self.conferences.contains_key(id) {
            self.conferences
                .insert(id.clone(), Conference::new(ctx.received));
        }
        mark(&mut self.unsaved.conferences, id);
        let conference = self.conferences.get_mut(id)?;
        if conference.ended_at.is_some() {
            return None;
        }
        conference.last_activity = ctx.received;
        mark(&mut self.dirty, id);
        Some(conference)
    }

    /// The participant's record, created on first sight; `None` once the conference ended.
    fn participant_mut(&mut self, key: &ParticipantKey) -> Option<&mut Participant> {
        let conference = conference_mut(&mut self.conferences, &mut self.unsaved, &key.conference)?;
        if conference.ended_at.is_some() {
            return None;
        }
        mark(&mut self.dirty, &key.conference);
        if !conference.participants.contains_key(&key.participant) {
            conference
                .participants
                .insert(key.participant.clone(), Participant::new());
        }
        conference.participants.get_mut(&key.participant)
    }

    /// Start: `conference_started` the first time a conference is seen live.
    fn start(&mut self, id: &ConferenceId, ctx: Ctx, out: &mut Vec<ConferenceEvent>) {
        let Some(conference) = conference_mut(&mut self.conferences, &mut self.unsaved, id) else {
            return;
        };
        if conference.started || conference.ended_at.is_some() {
            return;
        }
        let scope = &self.config.host_extensions;
        let in_scope = scope.is_empty()
            || conference
                .host
                .as_ref()
                .and_then(|host| host.extension_id.as_ref())
                .is_some_and(|extension| scope.contains(extension));
        if !in_scope {
            return;
        }
        conference.started = true;
        conference.started_at = Some(ctx.at);
        mark(&mut self.dirty, id);
        out.push(ConferenceEvent {
            id: ids::started(id),
            conference_id: id.clone(),
            at: ctx.at,
            received_at: ctx.received,
            kind: EventKind::ConferenceStarted {
                host: conference.host.clone(),
            },
        });
        let waiting: Vec<ParticipantId> = conference
            .participants
            .iter()
            .filter(|(_, p)| p.presence == Presence::Waiting)
            .map(|(id, _)| id.clone())
            .collect();
        for participant in waiting {
            let key = ParticipantKey {
                conference: id.clone(),
                participant,
            };
            self.join(&key, ctx, out);
        }
    }

    /// A pending participant joins (once); anyone else is left as they are.
    fn join(&mut self, key: &ParticipantKey, ctx: Ctx, out: &mut Vec<ConferenceEvent>) {
        let pending = self
            .conferences
            .get(&key.conference)
            .filter(|c| c.ended_at.is_none())
            .and_then(|c| c.participants.get(&key.participant))
            .is_some_and(|p| matches!(p.presence, Presence::Pending | Presence::Waiting));
        if !pending {
            return;
        }
        self.start(&key.conference, ctx, out);
        let Some(conference) =
            conference_mut(&mut self.conferences, &mut self.unsaved, &key.conference)
        else {
            return;
        };
        let started = conference.started;
        let Some(participant) = conference.participants.get_mut(&key.participant) else {
            return;
        };
        if participant.presence == Presence::Live {
            // Joined while its conference started (a waiting participant).
            return;
        }
        if participant.presence == Presence::Pending {
            participant.joined_at = Some(ctx.at);
            participant.joined_received = Some(ctx.received);
        }
        if !started {
            participant.presence = Presence::Waiting;
            return;
        }
        participant.presence = Presence::Live;
        let at = participant.joined_at.unwrap_or(ctx.at);
        let identity = participant_identity(participant, conference.host.as_ref());
        conference.joined = conference.joined.saturating_add(1);
        let on_call = conference.on_call();
        conference.peak = conference.peak.max(on_call);
        mark(&mut self.dirty, &key.conference);
        out.push(ConferenceEvent {
            id: ids::joined(&key.conference, &key.participant),
            conference_id: key.conference.clone(),
            at,
            received_at: ctx.received,
            kind: EventKind::ParticipantJoined {
                participant_id: key.participant.clone(),
                identity,
                on_call,
            },
        });
    }

    /// Leave: a live participant leaves once, with a reason; a pending one is marked gone so it
    /// can never join.
    fn leave(
        &mut self,
        key: &ParticipantKey,
        cause: LeaveCause,
        ctx: Ctx,
        out: &mut Vec<ConferenceEvent>,
    ) {
        let Some(conference) =
            conference_mut(&mut self.conferences, &mut self.unsaved, &key.conference)
        else {
            return;
        };
        let host_left = conference.host_left();
        let host = conference.host.clone();
        let Some(participant) = conference.participants.get_mut(&key.participant) else {
            return;
        };
        match participant.presence {
            Presence::Pending | Presence::Waiting => {
                participant.presence = Presence::GoneBeforeJoin;
                return;
            }
            Presence::Left | Presence::GoneBeforeJoin => return,
            Presence::Live => {}
        }
        participant.presence = Presence::Left;
        let reason = match (cause, &participant.kick) {
            (LeaveCause::ConferenceEnded, _) => LeaveReason::ConferenceEnded,
            (_, Some(_)) => LeaveReason::Removed,
            (LeaveCause::Missing, None) => LeaveReason::Vanished,
            (LeaveCause::Disconnected, None) if host_left => LeaveReason::ConferenceEnded,
            (LeaveCause::Disconnected, None) => LeaveReason::HungUp,
        };
        participant.left_at = Some(ctx.at);
        participant.removed = reason == LeaveReason::Removed;
        let identity = participant_identity(participant, host.as_ref());
        let joined_at = participant.joined_at;
        let kick = participant
            .kick
            .clone()
            .filter(|_| reason == LeaveReason::Removed);
        let on_call = conference.on_call();
        mark(&mut self.dirty, &key.conference);
        out.push(ConferenceEvent {
            id: ids::left(&key.conference, &key.participant),
            conference_id: key.conference.clone(),
            at: ctx.at,
            received_at: ctx.received,
            kind: EventKind::ParticipantLeft {
                participant_id: key.participant.clone(),
                identity,
                reason,
                joined_at,
                removed_by: kick.as_ref().map(|kick| kick.by.clone()),
                removal_reason: kick.and_then(|kick| kick.reason),
                on_call,
            },
        });
    }

    /// End: every known conference-session party is `Disconnected` and the host party was seen.
    fn end_when_all_disconnected(
        &mut self,
        id: &ConferenceId,
        ctx: Ctx,
        out: &mut Vec<ConferenceEvent>,
    ) {
        let Some(conference) = self.conferences.get(id) else {
            return;
        };
        // Callers known only from their original call are parties of the conference too: a
        // host who leaves while they are on (keepConferenceAlive) does not end it.
        let all_gone = conference.host_party.is_some()
            && conference
                .parties
                .values()
                .all(|code| *code == Some(StatusCode::Disconnected))
            && conference
                .participants
                .values()
                .all(|p| p.presence != Presence::Live);
        if all_gone {
            self.end(id, ctx, out);
        }
    }

    /// End: the conference session is gone (a session GET answered 404).
    fn end_when_session_gone(
        &mut self,
        id: &ConferenceId,
        ctx: Ctx,
        out: &mut Vec<ConferenceEvent>,
    ) {
        self.conferences
            .entry(id.clone())
            .or_insert_with(|| Conference::new(ctx.received));
        mark(&mut self.unsaved.conferences, id);
        self.end(id, ctx, out);
    }

    /// Remaining participants leave with `conference_ended`, then `conference_ended` itself
    /// (only for a conference that was announced as started).
    fn end(&mut self, id: &ConferenceId, ctx: Ctx, out: &mut Vec<ConferenceEvent>) {
        let live: Vec<ParticipantId> = match self.conferences.get(id) {
            Some(conference) if conference.ended_at.is_none() => conference
                .participants
                .iter()
                .filter(|(_, p)| p.presence == Presence::Live)
                .map(|(id, _)| id.clone())
                .collect(),
            _ => return,
        };
        for participant in live {
            let key = ParticipantKey {
                conference: id.clone(),
                participant,
            };
            self.leave(&key, LeaveCause::ConferenceEnded, ctx, out);
        }
        let Some(conference) = conference_mut(&mut self.conferences, &mut self.unsaved, id) else {
            return;
        };
        conference.ended_at = Some(ctx.received);
        conference.ended_at_event = Some(ctx.at);
        conference.last_activity = ctx.received;
        mark(&mut self.dirty, id);
        if conference.started {
            out.push(ConferenceEvent {
                id: ids::ended(id),
                conference_id: id.clone(),
                at: ctx.at,
                received_at: ctx.received,
                kind: EventKind::ConferenceEnded {
                    duration_secs: conference.started_at.map(|start| ctx.at.secs_since(start)),
                    participants: conference.joined,
                    peak: conference.peak,
                },
            });
        }
    }

    fn record_kick(&mut self, key: &ParticipantKey, kick: Option<Kick>) {
        let Some(conference) =
            conference_mut(&mut self.conferences, &mut self.unsaved, &key.conference)
        else {
            return;
        };
        if let Some(participant) = conference.participants.get_mut(&key.participant)
            && participant.presence == Presence::Live
        {
            participant.kick = kick;
        }
    }

    /// Forgetting: ended conferences lose their details after `forget_after`; tombstones and
    /// high-water marks go after `tombstone_for` of silence. Idle conferences with nobody on the
    /// call are forgotten after the same tombstone period.
    fn forget(&mut self, now: Timestamp) {
        let forget_after = self.config.forget_after_millis;
        let tombstone = self.config.tombstone_millis;
        let mut removed = Vec::new();
        for (id, conference) in self.conferences.iter_mut() {
            match conference.ended_at {
                Some(ended) if ended.plus_millis(tombstone) < now => removed.push(id.clone()),
                Some(ended) if !conference.compacted && ended.plus_millis(forget_after) < now => {
                    conference.compacted = true;
                    conference.participants.clear();
                    conference.parties.clear();
                    mark(&mut self.dirty, id);
                    mark(&mut self.unsaved.conferences, id);
                }
                None if conference.on_call() == 0
                    && conference.last_activity.plus_millis(tombstone) < now =>
                {
                    removed.push(id.clone());
                }
                _ => {}
            }
        }
        for id in &removed {
            self.conferences.remove(id);
            mark(&mut self.dirty, id);
            mark(&mut self.unsaved.conferences, id);
        }
        let conferences = &self.conferences;
        let unsaved = &mut self.unsaved;
        self.links.retain(|party, key| {
            let kept = conferences
                .get(&key.conference)
                .is_some_and(|c| !c.compacted);
            if !kept {
                mark(&mut unsaved.links, party);
            }
            kept
        });
        let links = &self.links;
        self.parties.retain(|id, track| {
            // Most parties are neither old enough nor finished: decided without the link
            // lookup. A linked party stays: participants are protected by their conference's
            // own tombstone, and the link goes with the conference's details.
            let silent = track.seen.plus_millis(tombstone) < now;
            // A plain call's finished party matters only briefly (reordering around a merge).
            let finished_plain = matches!(
                track.code,
                Some(StatusCode::Disconnected) | Some(StatusCode::Gone)
            ) && track.seen.plus_millis(forget_after) < now;
            let kept = !(silent || finished_plain) || links.contains_key(id);
            if !kept {
                mark(&mut unsaved.parties, id);
            }
            kept
        });
    }
}

/// The conference role of a conference-session party; when RingCentral leaves it out, the host's
/// leg is the outbound one towards `conference`.
fn conference_role(party: &PartyUpdate) -> ConferenceRole {
    match &party.role {
        Some(role) => role.clone(),
        None if party.direction == Some(Direction::Outbound) && party.to_conference => {
            ConferenceRole::Host
        }
        None => ConferenceRole::Participant,
    }
}

/// Identity: the original party's remote side when known; else the conference-side remote side
/// when it is not the host's line; else unknown.
fn participant_identity(participant: &Participant, host: Option<&Identity>) -> Identity {
    let conference_side = participant
        .conference_identity
        .as_ref()
        .filter(|identity| host.is_some_and(|host| !identity.same_line(host)));
    match (&participant.original_identity, conference_side) {
        (Some(original), Some(side)) => original.clone().or(side),
        (Some(original), None) => original.clone(),
        (None, Some(side)) => side.clone(),
        (None, None) => Identity::default(),
    }
}
