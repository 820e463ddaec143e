//! An event as phrase parts, made once: who, what, how long, by whom, why, how many — from the
//! roster at the moment it is said (so a name learned a moment after a join is the one shown),
//! falling back to the event's own copy once the roster has forgotten the conference. Either way
//! the roster's names apply (contacts, then caller ID, then the directory).

use crate::conference::{
    Actor, ConferenceEvent, ConferenceId, EventKind, Identity, LeaveReason, ParticipantKey, Roster,
    Timestamp,
};

/// What is said about one event, before any formatting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phrase {
    pub at: Timestamp,
    pub conference_id: ConferenceId,
    /// The conference's host as known now; for a start, the event's host when the roster has
    /// none.
    pub host: Option<Identity>,
    pub what: What,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum What {
    Started,
    Joined {
        who: Identity,
        on_call: u32,
    },
    Left {
        who: Identity,
        reason: LeaveReason,
        /// How long the caller was on, when their join time is known.
        stayed_secs: Option<i64>,
        by: Option<Actor>,
        why: Option<String>,
        on_call: u32,
    },
    Ended {
        lasted_secs: Option<i64>,
        callers: u32,
        peak: u32,
    },
}

/// The phrase for `event`, with names from `roster` where it knows better.
pub fn phrase(event: &ConferenceEvent, roster: &Roster) -> Phrase {
    let roster_host = roster
        .conference(&event.conference_id)
        .and_then(|view| view.host);
    let (host, what) = match &event.kind {
        EventKind::ConferenceStarted { host } => (
            roster_host.or_else(|| host.as_ref().map(|host| roster.named(host))),
            What::Started,
        ),
        EventKind::ParticipantJoined {
            identity, on_call, ..
        } => (
            roster_host,
            What::Joined {
                who: participant_identity(event, identity, roster),
                on_call: *on_call,
            },
        ),
        EventKind::ParticipantLeft {
            identity,
            reason,
            joined_at,
            removed_by,
            removal_reason,
            on_call,
            ..
        } => (
            roster_host,
            What::Left {
                who: participant_identity(event, identity, roster),
                reason: *reason,
                stayed_secs: joined_at.map(|joined| event.at.secs_since(joined)),
                by: removed_by.clone(),
                why: removal_reason.clone(),
                on_call: *on_call,
            },
        ),
        EventKind::ConferenceEnded {
            duration_secs,
            participants,
            peak,
        } => (
            roster_host,
            What::Ended {
                lasted_secs: *duration_secs,
                callers: *participants,
                peak: *peak,
            },
        ),
    };
    Phrase {
        at: event.at,
        conference_id: event.conference_id.clone(),
        host,
        what,
    }
}

/// The identity to show for a participant event: the roster's, if it knows better.
pub fn participant_identity(
    event: &ConferenceEvent,
    fallback: &Identity,
    roster: &Roster,
) -> Identity {
    event
        .kind
        .participant_id()
        .and_then(|participant| {
            roster.participant(&ParticipantKey {
                conference: event.conference_id.clone(),
                participant: participant.clone(),
            })
        })
        .map(|view| view.identity)
        .filter(|identity| !identity.is_unknown())
        .unwrap_or_else(|| roster.named(fallback))
}
