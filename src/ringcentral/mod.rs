//! The RingCentral side: wire model, webhook route (and later auth, REST client, subscription).

// pub mod webhook; (enabled once the store lands)
pub mod wire;
