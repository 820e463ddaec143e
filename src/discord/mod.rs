//! The Discord side: how announcements read ([`render`] for local mode and `replay`, [`message`]
//! for channel messages), the announcer and its REST poster, the slash commands with their
//! access control, and the two ways interactions arrive (the gateway and the HTTP endpoint).
//! It reaches RingCentral only through the kick port.

pub mod access;
pub mod announcer;
pub mod api;
pub mod check;
pub mod commands;
pub mod escape;
pub mod gateway;
pub mod interactions;
pub mod message;
pub mod poster;
pub mod render;
pub mod respond;
