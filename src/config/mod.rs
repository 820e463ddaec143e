//! Settings: loading and validating them. This module owns them; nothing else
//! in ringside reads a settings file or a `RINGSIDE_*` environment variable,
//! except the `init` command, which takes the same variables as the values of
//! the first file it writes (and reads that file back through [`Settings`]).
//!
//! Sources, later ones winning:
//!
//! 1. built-in defaults;
//! 2. a TOML file: the one passed as `--config FILE`, else the one named by
//!    `RINGSIDE_CONFIG`, else `config/ringside.toml` if it exists, else none;
//! 3. environment variables `RINGSIDE_<SECTION>__<KEY>`, e.g.
//!    `RINGSIDE_DISCORD__TOKEN` for `discord.token`.
//!
//! `config/ringside.example.toml` documents every key.
//!
//! Values are taken exactly as written: a string setting is never turned into
//! a number or a boolean on the way (`RINGSIDE_RINGCENTRAL__CLIENT_ID=0123`
//! is the client id `"0123"`), and number, boolean and Discord id settings
//! accept strings (`guild_id = "123"`). Lists in environment variables are
//! written `[a, b]`, `["a", "b"]` or `a,b`. An empty value counts as not set.
//!
//! Anything wrong fails the load with one [`ConfigError`] line naming the key:
//! unknown keys (typos), values of the wrong kind or range, half-configured
//! credential groups. Secret values never appear in errors or `Debug` output.

mod error;
mod lenient;
mod raw;
mod settings;
mod sources;
mod validate;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use error::ConfigError;
pub use lenient::parse_list;
pub use settings::{
    Access, Announce, Contacts, Delivery, Discord, DiscordBot, PhoneNumbers, Privacy, PublicKey,
    RingCentral, RingCentralCredentials, Server, Settings, StoreSettings, Watch,
};

impl Settings {
    /// Loads the settings for this process: the file chosen as described in
    /// the [module documentation](self) (`explicit` is `--config FILE`), then
    /// the process's `RINGSIDE_*` environment variables.
    pub fn load(explicit: Option<&Path>) -> Result<Settings, ConfigError> {
        let env = sources::process_env()?;
        let file = sources::choose_file(explicit, &env, Path::is_file);
        Settings::from_sources(file.as_deref(), &env)
    }

    /// Loads the settings from `file` (none: defaults only) and then the
    /// `RINGSIDE_<SECTION>__<KEY>` entries of `env`, which stands in for the
    /// process environment. `RINGSIDE_CONFIG` in `env` is ignored here: the
    /// file is the one given.
    pub fn from_sources(
        file: Option<&Path>,
        env: &[(String, String)],
    ) -> Result<Settings, ConfigError> {
        let path = file.map(Path::to_path_buf);
        let file = match file {
            Some(path) => Some((path, sources::file_layer(path)?)),
            None => None,
        };
        let env = sources::env_layer(env)?;
        let raw = sources::merge(file, env)?;
        let mut settings = validate::settings(raw)?;
        settings.file = path;
        Ok(settings)
    }
}
