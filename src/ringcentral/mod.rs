//! The RingCentral side: the webhook route, authentication, the REST client and its rate groups,
//! the subscription's lifecycle, the reconciler, the kick and the company directory's names — built and run from [`Side`].
//!
//! It talks to Discord never; it feeds the detector through the pipeline's [`DetectorInputs`]
//! and serves the commands through the [`Kicker`] port, both defined in [`crate::pipeline`].
//! [`wire`] is a leaf (serde types only): the one RingCentral module `conference` and
//! `pipeline` may read.
//!
//! [`DetectorInputs`]: crate::pipeline::DetectorInputs
//! [`Kicker`]: crate::pipeline::Kicker

pub mod auth;
pub mod client;
pub mod directory;
pub mod intake;
pub mod kick;
pub mod rate;
pub mod reconciler;
pub mod side;
pub mod subscription;
pub mod webhook;
pub mod websocket;
pub mod wire;

pub use side::{Deps, Handles, Side};
