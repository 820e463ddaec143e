//! The Discord side: announcements as channel messages ([`message`], worded by the phrasebook in
//! [`crate::present`]), the announcer and its REST poster, the slash commands with their
//! access control, and the two ways interactions arrive (the gateway and the HTTP endpoint).
//! It reaches RingCentral only through the kick port.

pub mod access;
pub mod announcer;
pub mod api;
pub mod check;
pub mod commands;
pub mod gateway;
pub mod interactions;
pub mod message;
pub mod poster;
pub mod respond;
pub mod side;

pub use side::{Deps, Handles, Side, Target};
