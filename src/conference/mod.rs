//! Conferences: ids, participants, the detector's inputs and outputs, the detector, the roster.
//!
//! This module does no I/O and reads no clock: everything, time included, comes in as input.

pub mod contacts;
pub mod detector;
pub mod event;
pub mod ids;
pub mod input;
pub mod names;
pub mod roster;
pub mod watch;

pub use detector::{
    ConferenceView, Detector, DetectorConfig, ParticipantView, RowError, RowKind, StateRow,
};
pub use event::{ConferenceEvent, EventKind, LeaveReason};
pub use ids::{
    Actor, ConferenceId, Identity, ParticipantId, ParticipantKey, PartyId, SessionId, Timestamp,
};
pub use input::{Input, SessionUpdate, Unusable};
pub use names::Names;
pub use roster::{Roster, RosterChanges};
pub use watch::{Matched, WatchList};

#[cfg(test)]
mod tests;
