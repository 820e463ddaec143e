//! A RingCentral platform fake: scripts conferences and delivers the telephony-session
//! notifications RingCentral would send to a webhook.
//!
//! Payloads are built from JSON templates with the shapes of real RingCentral payloads
//! (`templates/*.json`, compare `fixtures/ringcentral/seed/participant-added.json` and
//! `js-widgets/conference-session.json`), filled in field by field. Nothing here serializes a
//! ringside type, so a mistake in ringside's own wire model cannot cancel itself out in tests.
//!
//! A [`ConferenceScript`] records, in order, what a conference looks like on the wire
//! (`docs/ringcentral.md` §2.2):
//!
//! 1. [`ConferenceScript::start`]: the conference session (origin `Conference`, legacy
//!    `sessionId` `"0"`) with its Host party `Answered`.
//! 2. [`ConferenceScript::call_and_merge`]: a plain two-party call whose host leg goes
//!    `Setup`, `Proceeding`, `Answered`; then the merge: that leg goes `Gone`/`Conference` with
//!    a `peerId` naming the conference-side party, and the conference-side `Participant` party
//!    appears `Answered`.
//! 3. [`ConferenceScript::hang_up`]: a caller leaves, signalled as chosen by [`LeaveSignal`].
//! 4. [`ConferenceScript::end`]: the host ends the conference.
//!
//! [`play`] then POSTs the notifications to a webhook, as RingCentral would.

mod deliver;
mod demo;
pub mod discord;
pub mod platform;
mod script;
#[cfg(test)]
mod tests;

pub use deliver::{PlayReport, deliver, play};
pub use demo::{DEMO_SEED, DemoScript, demo_script};
pub use platform::{
    ConferenceController, ParticipantView, Platform, PlatformHandle, PlatformOptions, RateGroup,
};
pub use script::ConferenceScript;

/// Someone on a call: the conference host or a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Display name; an empty name is left out of the payload (as for many PSTN callers).
    pub name: String,
    /// Phone number, E.164 (`+14155550142`) or an extension number (`11119`).
    pub number: String,
    /// RingCentral extension id, for people on the account. For the host, one is made up from
    /// the seed when absent (every host leg carries one).
    pub extension_id: Option<String>,
}

impl Person {
    /// A person outside the account (no extension id).
    pub fn new(name: impl Into<String>, number: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            number: number.into(),
            extension_id: None,
        }
    }

    /// A person on the account, with an extension id.
    pub fn with_extension(
        name: impl Into<String>,
        number: impl Into<String>,
        extension_id: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            number: number.into(),
            extension_id: Some(extension_id.into()),
        }
    }

    /// A person on the account whose notifications carry the extension id and number but no
    /// name (an internal caller with no caller ID name): only the company directory names them.
    pub fn extension_only(extension_id: impl Into<String>, number: impl Into<String>) -> Self {
        Self::with_extension("", number, extension_id)
    }
}

/// A caller added to a [`ConferenceScript`]; only meaningful for the script that returned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallerRef(pub(crate) usize);

/// Which notifications RingCentral sends when a caller hangs up. `docs/ringcentral.md` (§2.2) leaves
/// this UNCONFIRMED, so tests script each variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeaveSignal {
    /// The original party goes `Disconnected` (on the original session), then the
    /// conference-side party goes `Disconnected`.
    Both,
    /// Only the original party goes `Disconnected` (like `seed/participant-removed.json`).
    OriginalOnly,
    /// Only the conference-side party goes `Disconnected`.
    ConferenceOnly,
    /// Nothing is sent; only a reconciliation could notice.
    Silent,
}

impl LeaveSignal {
    /// Every variant, for tests that loop over them.
    pub const ALL: [LeaveSignal; 4] = [
        Self::Both,
        Self::OriginalOnly,
        Self::ConferenceOnly,
        Self::Silent,
    ];

    /// Whether the original party's `Disconnected` is sent.
    pub fn signals_original(self) -> bool {
        matches!(self, Self::Both | Self::OriginalOnly)
    }

    /// Whether the conference-side party's `Disconnected` is sent.
    pub fn signals_conference(self) -> bool {
        matches!(self, Self::Both | Self::ConferenceOnly)
    }
}

/// One scripted notification: the full webhook POST body and where it belongs.
#[derive(Debug, Clone, PartialEq)]
pub struct Scripted {
    /// Script-clock time of the event (the body's `eventTime`, millisecond precision).
    pub at: time::OffsetDateTime,
    /// `body.telephonySessionId`.
    pub session_id: String,
    /// `body.sequence`.
    pub sequence: u64,
    /// The whole notification (envelope and body) as RingCentral would POST it.
    pub body: serde_json::Value,
}

/// Why delivering notifications failed.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The request could not be sent or timed out.
    #[error("delivering notification failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The webhook answered something other than 200.
    #[error("webhook answered {status} to notification {index}")]
    Rejected {
        /// Position of the notification in the played script.
        index: usize,
        /// What the webhook answered.
        status: reqwest::StatusCode,
        /// What had been delivered up to and including the rejected notification.
        report: PlayReport,
    },
}
