//! Where time comes from. Every stage that stamps or compares times takes a [`Clock`], so tests
//! and `ringside replay` run on their own time; the detector itself has no clock at all.

use crate::conference::Timestamp;

/// Where time comes from; tests and the replay path use their own.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_offset_date_time(time::OffsetDateTime::now_utc())
    }
}
