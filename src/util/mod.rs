//! Small helpers shared by every layer; nothing here knows RingCentral, Discord or the store.
//! One thing, one place: the backoff, the randomness, the graceful stop, the log throttle and
//! the reading of phone numbers.

pub mod backoff;
pub mod phone;
pub mod random;
pub mod shutdown;
pub mod throttle;
