//! Whether ringside can see calls: the RingCentral side keeps it, `/readyz` and the announcer's
//! "cannot see calls" notice read it.

/// The subscription as the rest of ringside sees it (readiness, "cannot see calls" notices).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionHealth {
    Starting,
    Active {
        id: String,
    },
    /// ringside cannot see calls; the reason in plain words.
    Failing {
        reason: String,
    },
}
