//! ringside: watches RingCentral conference calls and reports joins and leaves.

pub mod ringcentral;
#[cfg(feature = "simulator")]
pub mod simulator;
