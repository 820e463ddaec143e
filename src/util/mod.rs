//! Small helpers shared by every layer; nothing here knows RingCentral, Discord or the store.
//! One thing, one place: the backoff, the randomness, the graceful stop, the log throttle and
//! the reading of phone numbers, the writing of files that hold secrets.

pub mod backoff;
pub mod phone;
pub mod private_file;
pub mod random;
pub mod shutdown;
pub mod throttle;
