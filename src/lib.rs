//! ringside: watches RingCentral conference calls and reports joins and leaves.

pub mod conference;
pub mod ringcentral;
#[cfg(feature = "simulator")]
pub mod simulator;
pub mod store;
