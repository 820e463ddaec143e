//! ringside: watches RingCentral conference calls and reports joins and leaves in Discord.
//!
//! The layers, and the one direction dependencies point (`docs/architecture.md` describes each
//! module and the path of one notification and one kick):
//!
//! ```text
//! app → {ringcentral, discord} → pipeline → {conference, present} → {store, config, util}
//! ```
//!
//! Nothing imports upward, and the two sides never import each other: the Discord side reaches
//! RingCentral only through the pipeline's `Kicker` port, and the RingCentral side feeds the
//! detector through `pipeline::DetectorInputs`. `ringcentral::wire` is a leaf of serde types
//! that `conference` and `pipeline` may read. `simulator` (a default-on feature) is the
//! RingCentral platform fake for `ringside demo` and the tests.

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
