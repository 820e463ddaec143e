//! The RingCentral side: wire model, webhook route (and later auth, REST client, subscription).

pub mod webhook;
pub mod wire;
