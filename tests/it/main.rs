//! ringside's integration tests, in one test binary (`it`): one link of serenity, axum and
//! reqwest instead of one per file, and the shared support below compiled once.
//!
//! One module per area; run one of them with a filter on its path, for example
//! `cargo test --test it webhook::` or `cargo test --test it crash`.
//!
//! - [`support`]: the real app in-process on 127.0.0.1:0, HTTP helpers, and the fake Discord
//!   ([`support::discord`]);
//! - [`support_cli`]: the real `ringside` binary in a private working directory, and the pieces
//!   the crash tests share.
//!
//! Set `TEST_LOG=1` to see the app's logs. The fuzz and property modules run a quick count by
//! default; their docs say how to run them at full strength (`.ci/run` does, after `cargo test`).

#[macro_use]
mod support;
mod support_cli;

mod cards;
mod cli;
mod contacts;
mod crash;
mod crash_discord;
mod crash_websocket;
mod detector_properties;
mod directory;
mod discord;
mod discord_operator;
mod fake_discord;
mod fuzz;
mod init;
mod maintenance;
mod operations;
mod packaging;
mod parked;
mod readyz_discord;
mod ringcentral;
mod watch;
mod webhook;
mod websocket;
mod wire_fixtures;
