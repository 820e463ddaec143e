//! Small helpers shared by every layer; nothing here knows RingCentral, Discord or the store.
//! One thing, one place: the backoff, the randomness, the graceful stop and the log throttle.

pub mod backoff;
pub mod random;
pub mod shutdown;
pub mod throttle;
