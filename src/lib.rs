//! ringside: watches RingCentral conference calls and reports joins and leaves.

pub mod ringcentral;
pub mod store;
