//! The detector's inputs, and the check that turns a lenient wire notification into one.
//!
//! A notification is *usable* when it names its session (`body.telephonySessionId`), carries an
//! integer `body.sequence` from 0 to `i64::MAX`, and every party has an `id`. Anything else in it
//! may be missing or unknown and is processed normally.

use super::ids::{
    Actor, ConferenceId, IdError, Identity, ParticipantKey, PartyId, SessionId, Timestamp,
};
use crate::ringcentral::wire::{
    CallSession, ConferenceRole, Direction, Endpoint, OriginType, Party, StatusCode, StatusReason,
    TelephonyBody,
};
use serde::{Deserialize, Serialize};

/// One input to the detector, stamped with the time ringside received or produced it.
#[derive(Debug, Clone)]
pub enum Input {
    /// A telephony-session notification from the webhook (or the inbox, at start).
    Notification {
        received_at: Timestamp,
        notification: SessionUpdate,
    },
    /// A `GET /telephony/sessions/{id}` answer from the reconciler.
    Snapshot {
        requested_at: Timestamp,
        session: SessionUpdate,
    },
    /// The session GET answered 404: the conference is over.
    SessionGone {
        at: Timestamp,
        conference_id: ConferenceId,
    },
    /// Someone asked to remove a participant; recorded before the DELETE is sent.
    KickIntent {
        at: Timestamp,
        participant: ParticipantKey,
        by: Actor,
        reason: Option<String>,
    },
    /// The DELETE failed: the participant was not removed.
    KickFailed {
        at: Timestamp,
        participant: ParticipantKey,
    },
    /// Time passed; lets the detector forget finished sessions.
    Tick { now: Timestamp },
}

impl Input {
    /// The time the input carries.
    pub fn time(&self) -> Timestamp {
        match self {
            Input::Notification { received_at, .. } => *received_at,
            Input::Snapshot { requested_at, .. } => *requested_at,
            Input::SessionGone { at, .. }
            | Input::KickIntent { at, .. }
            | Input::KickFailed { at, .. } => *at,
            Input::Tick { now } => *now,
        }
    }
}

/// A session's parties as one notification or one snapshot reports them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUpdate {
    pub session_id: SessionId,
    /// Present on notifications; snapshots have none.
    pub sequence: Option<u64>,
    /// `eventTime`, used only for what is shown.
    pub event_time: Option<Timestamp>,
    pub origin: Option<OriginType>,
    pub parties: Vec<PartyUpdate>,
}

/// One party in a [`SessionUpdate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartyUpdate {
    pub id: PartyId,
    pub direction: Option<Direction>,
    pub from: Identity,
    pub to: Identity,
    /// `to.phoneNumber` was the literal `conference`.
    pub to_conference: bool,
    pub code: Option<StatusCode>,
    pub reason: Option<StatusReason>,
    pub peer: Option<Peer>,
    pub role: Option<ConferenceRole>,
    pub muted: Option<bool>,
}

/// `status.peerId`, with unusable parts dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    pub telephony_session_id: Option<SessionId>,
    pub party_id: Option<PartyId>,
}

/// Why a telephony notification cannot be processed (it is quarantined, not refused).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unusable {
    #[error("body.telephonySessionId is missing")]
    MissingSessionId,
    #[error("body.telephonySessionId {0}")]
    BadSessionId(IdError),
    #[error("body.sequence is missing")]
    MissingSequence,
    #[error("body.sequence {0} is not an integer from 0 to 9223372036854775807")]
    BadSequence(String),
    #[error("body.parties[{0}].id is missing")]
    MissingPartyId(usize),
    #[error("body.parties[{0}].id {1}")]
    BadPartyId(usize, IdError),
    #[error("body does not have the shape of a telephony session event: {0}")]
    Shape(String),
}

impl SessionUpdate {
    /// Checks a notification body; see the module doc for what is required.
    pub fn from_notification(body: &TelephonyBody) -> Result<Self, Unusable> {
        let session_id = match body.telephony_session_id.as_deref() {
            None => return Err(Unusable::MissingSessionId),
            Some(id) => SessionId::parse(id).map_err(Unusable::BadSessionId)?,
        };
        let sequence = match &body.sequence {
            None | Some(serde_json::Value::Null) => return Err(Unusable::MissingSequence),
            Some(value) => parse_sequence(value)?,
        };
        Ok(SessionUpdate {
            session_id,
            sequence: Some(sequence),
            event_time: body
                .event_time
                .as_deref()
                .and_then(Timestamp::parse_rfc3339),
            origin: body.origin.as_ref().and_then(|origin| origin.kind.clone()),
            parties: parties(&body.parties)?,
        })
    }

    /// Checks a session GET answer.
    pub fn from_snapshot(session: &CallSession) -> Result<Self, Unusable> {
        let session_id = match session.id.as_deref() {
            None => return Err(Unusable::MissingSessionId),
            Some(id) => SessionId::parse(id).map_err(Unusable::BadSessionId)?,
        };
        Ok(SessionUpdate {
            session_id,
            sequence: None,
            event_time: None,
            origin: session
                .origin
                .as_ref()
                .and_then(|origin| origin.kind.clone()),
            parties: parties(&session.parties)?,
        })
    }
}

fn parse_sequence(value: &serde_json::Value) -> Result<u64, Unusable> {
    value
        .as_u64()
        .filter(|sequence| i64::try_from(*sequence).is_ok())
        .ok_or_else(|| {
            let shown: String = value.to_string().chars().take(40).collect();
            Unusable::BadSequence(shown)
        })
}

fn parties(parties: &[Party]) -> Result<Vec<PartyUpdate>, Unusable> {
    parties
        .iter()
        .enumerate()
        .map(|(index, party)| {
            let id = match party.id.as_deref() {
                None => return Err(Unusable::MissingPartyId(index)),
                Some(id) => PartyId::parse(id).map_err(|e| Unusable::BadPartyId(index, e))?,
            };
            let status = party.status.clone().unwrap_or_default();
            let peer = status.peer_id.map(|peer| Peer {
                telephony_session_id: peer
                    .telephony_session_id
                    .as_deref()
                    .and_then(|id| SessionId::parse(id).ok()),
                party_id: peer
                    .party_id
                    .as_deref()
                    .and_then(|id| PartyId::parse(id).ok()),
            });
            Ok(PartyUpdate {
                id,
                direction: party.direction.clone(),
                from: identity(party.from.as_ref()),
                to: identity(party.to.as_ref()),
                to_conference: party
                    .to
                    .as_ref()
                    .and_then(|to| to.phone_number.as_deref())
                    .is_some_and(|number| number.eq_ignore_ascii_case("conference")),
                code: status.code,
                reason: status.reason,
                peer,
                role: party.conference_role.clone(),
                muted: party.muted,
            })
        })
        .collect()
}

fn identity(endpoint: Option<&Endpoint>) -> Identity {
    let clean = |value: &Option<String>| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
    };
    match endpoint {
        None => Identity::default(),
        Some(endpoint) => Identity {
            name: clean(&endpoint.name),
            phone_number: clean(&endpoint.phone_number)
                .filter(|number| !number.eq_ignore_ascii_case("conference")),
            extension_id: clean(&endpoint.extension_id),
        },
    }
}
