//! The RingCentral side: wire model, webhook route, authentication, the REST client and its
//! rate groups.

pub mod auth;
pub mod client;
pub mod kick;
pub mod rate;
pub mod reconciler;
pub mod subscription;
pub mod webhook;
pub mod wire;
