//! The phrasebook: how ringside says what happened, on every surface.
//!
//! An event becomes phrase parts once ([`phrase`]: who, what, how long, by whom, why, how many,
//! from the roster at the moment it is said), and a formatter arranges them: [`plain`] for
//! standard output and `ringside replay`, [`markdown`] for Discord — the channel's messages and
//! the commands' replies, choices and buttons alike — and [`json`] for `replay --json`. The roster
//! card's text ([`card`]) is markdown too. The words
//! they share (masked numbers, durations, counts, the unknown caller) are in [`words`]; making
//! caller-supplied text inert in Discord is [`escape`]. The picture attached when a conference
//! ends, who was on the call when, is [`timeline`]'s.
//!
//! Dependencies: `conference` and `config` only. Message structure (grouping, splitting, nonces)
//! belongs to the Discord side, not here.

pub mod card;
pub mod escape;
pub mod json;
pub mod markdown;
mod phrase;
pub mod plain;
pub mod timeline;
pub mod words;

pub use phrase::{Phrase, What, participant_identity, phrase};
