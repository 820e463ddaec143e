//! Small helpers shared by every layer; nothing here knows RingCentral, Discord or the store.

pub mod throttle;
