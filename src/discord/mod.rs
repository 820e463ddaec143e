//! The Discord side. For now: how announcements read ([`render`]), shared by local mode and
//! `replay`; the channel poster, commands and access control build on it.

pub mod announcer;
pub mod render;
