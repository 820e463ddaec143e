//! ringside: watches RingCentral conference calls and reports joins and leaves.

pub mod app;
pub mod conference;
pub mod config;
pub mod discord;
pub mod pipeline;
pub mod present;
pub mod ringcentral;
#[cfg(feature = "simulator")]
pub mod simulator;
pub mod store;
pub mod util;
