//! ringside: watches RingCentral conference calls and reports joins and leaves.

pub mod config;
pub mod ringcentral;
