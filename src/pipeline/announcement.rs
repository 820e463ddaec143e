//! What the pipeline hands the announcer.

use crate::conference::ConferenceEvent;

/// An event to announce, with its outbox row (marked delivered once the sink took it). `None`
/// when the event was never kept in the outbox (tests feeding the announcer directly).
#[derive(Debug, Clone)]
pub struct Announcement {
    pub outbox_id: Option<i64>,
    pub event: ConferenceEvent,
}
