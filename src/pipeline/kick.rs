//! The kick port: how the Discord commands remove a caller without knowing RingCentral. The
//! RingCentral side implements it (`ringcentral::kick::RcKicker`); tests and the demo can plug
//! in their own.

use crate::conference::{Actor, ParticipantKey};
use std::future::Future;
use std::pin::Pin;

/// A request to remove one caller.
#[derive(Debug, Clone)]
pub struct KickRequest {
    pub participant: ParticipantKey,
    pub by: Actor,
    pub reason: Option<String>,
}

/// How a kick ended, for the reply to the member who asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KickOutcome {
    /// RingCentral removed the caller; the leave is announced as a removal.
    Removed,
    /// The caller was not on the call (any more).
    AlreadyGone,
    /// The host cannot be removed.
    Host,
    /// Not removed; the reason in plain words.
    Failed { reason: String },
}

impl KickOutcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            KickOutcome::Removed => "removed",
            KickOutcome::AlreadyGone => "already_gone",
            KickOutcome::Host => "refused_host",
            KickOutcome::Failed { .. } => "failed",
        }
    }
}

/// The port the Discord commands call.
pub trait Kicker: Send + Sync + 'static {
    fn kick(&self, request: KickRequest) -> Pin<Box<dyn Future<Output = KickOutcome> + Send + '_>>;
}
