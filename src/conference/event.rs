//! What the detector reports: conference events with deterministic ids.

use super::ids::{Actor, ConferenceId, Identity, ParticipantId, Timestamp};
use serde::{Deserialize, Serialize};

/// One thing that happened in a conference. The `id` is derived from what happened, so the same
/// fact always gets the same id (the outbox is unique on it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConferenceEvent {
    pub id: String,
    pub conference_id: ConferenceId,
    /// When it happened, from RingCentral's `eventTime` (or the input's time when there is none).
    pub at: Timestamp,
    /// When ringside received the input that produced it; staleness counts from here.
    pub received_at: Timestamp,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    ConferenceStarted {
        host: Option<Identity>,
    },
    ParticipantJoined {
        participant_id: ParticipantId,
        identity: Identity,
        /// Callers on the call right after this join.
        on_call: u32,
    },
    ParticipantLeft {
        participant_id: ParticipantId,
        identity: Identity,
        reason: LeaveReason,
        joined_at: Option<Timestamp>,
        removed_by: Option<Actor>,
        removal_reason: Option<String>,
        /// Callers still on the call after this leave.
        on_call: u32,
    },
    ConferenceEnded {
        duration_secs: Option<i64>,
        /// Distinct callers who joined.
        participants: u32,
        /// Most callers on the call at once.
        peak: u32,
    },
}

impl EventKind {
    /// The event type as `replay --json` and the store name it.
    pub fn type_name(&self) -> &'static str {
        match self {
            EventKind::ConferenceStarted { .. } => "conference_started",
            EventKind::ParticipantJoined { .. } => "participant_joined",
            EventKind::ParticipantLeft { .. } => "participant_left",
            EventKind::ConferenceEnded { .. } => "conference_ended",
        }
    }

    pub fn participant_id(&self) -> Option<&ParticipantId> {
        match self {
            EventKind::ParticipantJoined { participant_id, .. }
            | EventKind::ParticipantLeft { participant_id, .. } => Some(participant_id),
            _ => None,
        }
    }
}

/// Why a participant left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// Their leg disconnected.
    HungUp,
    /// A kick was recorded for them before the leave arrived.
    Removed,
    /// The conference ended with them on it.
    ConferenceEnded,
    /// Only reconciliation found them gone.
    Vanished,
}

impl LeaveReason {
    pub fn as_str(self) -> &'static str {
        match self {
            LeaveReason::HungUp => "hung_up",
            LeaveReason::Removed => "removed",
            LeaveReason::ConferenceEnded => "conference_ended",
            LeaveReason::Vanished => "vanished",
        }
    }
}

/// Deterministic event ids.
pub(crate) mod ids {
    use super::super::ids::{ConferenceId, ParticipantId};

    pub fn started(conference: &ConferenceId) -> String {
        format!("started:{conference}")
    }
    pub fn joined(conference: &ConferenceId, participant: &ParticipantId) -> String {
        format!("joined:{conference}:{participant}")
    }
    pub fn left(conference: &ConferenceId, participant: &ParticipantId) -> String {
        format!("left:{conference}:{participant}")
    }
    pub fn ended(conference: &ConferenceId) -> String {
        format!("ended:{conference}")
    }
}
