//! The pipeline: the hub every notification goes through, and the types at its edges.
//!
//! The webhook (and, later, other transports) decodes a notification with [`decode`], commits it
//! to the inbox and hands it over as an [`Accepted`]; the [`Pipeline`] task, the one owner of the
//! detector, applies it, updates the roster, commits the processed marks, the detector's state
//! and the events it produced in one transaction, and hands each event to the announcer as an
//! [`Announcement`]. The sides plug into it through small types defined here, so that neither
//! side reaches into the other or into the app: a [`Clock`], [`DetectorInputs`] (reconciliation
//! and kicks feed the detector), the [`Kicker`] port (the Discord commands remove a caller) and
//! [`ReadinessCheck`]s (each side's part of `/readyz`).
//!
//! Dependencies: this module uses `conference`, `store`, `config` and the RingCentral wire model
//! (a leaf of serde types); it never imports a side or the app.

mod accepted;
mod announcement;
mod clock;
mod health;
mod hub;
mod inputs;
mod kick;
mod progress;
mod readiness;

pub use accepted::{Accepted, DecodeError, Decoded, MAX_UUID_LEN, Payload, decode};
pub use announcement::Announcement;
pub use clock::{Clock, SystemClock};
pub use health::SubscriptionHealth;
pub use hub::{
    Deps, Pipeline, Retention, TICK_INTERVAL, accepted_from_row, detector_from_rows, state_row,
};
pub use inputs::{DetectorInputs, Directed};
pub use kick::{KickOutcome, KickRequest, Kicker};
pub use progress::Progress;
pub use readiness::ReadinessCheck;
