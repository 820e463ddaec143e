//! `ringside init`: writes a commented settings file for a newcomer, by asking on the terminal
//! or, for scripts, from flags and the `RINGSIDE_*` variables the service itself reads.
//!
//! This module owns the first settings file: which values it asks for and in what order
//! ([`interview`]), how each answer is checked ([`check`]), the groups that go together
//! ([`from_given`]), the file's text ([`render`]) and how it reaches the disk ([`write_private`]).
//! It never reads an existing settings file (a broken one must not stop `init --force`), and the
//! file it writes is read back by [`Settings::from_sources`] before it replaces anything, so
//! what `init` writes is always what the service loads.
//!
//! Secrets — the Discord bot token, the RingCentral client secret and JWT — are taken only from
//! the environment (`RINGSIDE_DISCORD__TOKEN`, `RINGSIDE_RINGCENTRAL__CLIENT_SECRET`,
//! `RINGSIDE_RINGCENTRAL__JWT`) or from a prompt with echo off, never from a flag: a flag's
//! value is visible to every local user in the process list and lands in shell history. No
//! secret is ever written anywhere but the file: not echoed, not masked, not in an error, not in
//! the summary. The webhook verification token and the admin API token are generated here from
//! the one source of randomness (`crate::util::random`) unless the environment sets them.
//!
//! The file is created `0600` (never loosened then tightened), in a temporary file in the same
//! directory that is renamed into place, so a crash leaves either the old file or the new one.
//! An existing file is replaced only with `--force`.
//!
//! Exit statuses: 0 written; 1 the file exists (no `--force`), cannot be written, or the
//! answers ended early; 2 a value or group is wrong, or there is no terminal to ask on.

use crate::config::{Delivery, PublicKey, Settings};
use crate::util::private_file::Staged;
use secrecy::{ExposeSecret, SecretString};
use std::fmt::Write as _;
use std::io::{self, BufRead, IsTerminal as _, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `ringside init`'s flags. Every value flag is also read from the variable the service reads.
#[derive(Debug, Default, clap::Args)]
#[command(after_help = SECRETS_HELP)]
pub struct InitArgs {
    /// Never ask: take the values from these flags and RINGSIDE_* variables only.
    #[arg(long)]
    pub non_interactive: bool,
    /// Replace the settings file if it already exists.
    #[arg(long)]
    pub force: bool,
    /// The Discord application id (17 to 20 digits).
    #[arg(long, env = "RINGSIDE_DISCORD__APPLICATION_ID", value_name = "ID")]
    pub discord_application_id: Option<String>,
    /// The Discord server (guild) the bot works in.
    #[arg(long, env = "RINGSIDE_DISCORD__GUILD_ID", value_name = "ID")]
    pub discord_guild_id: Option<String>,
    /// The Discord channel joins and leaves are announced in.
    #[arg(long, env = "RINGSIDE_DISCORD__CHANNEL_ID", value_name = "ID")]
    pub discord_channel_id: Option<String>,
    /// The application's public key (64 hex characters); optional, enables the interactions
    /// endpoint.
    #[arg(long, env = "RINGSIDE_DISCORD__PUBLIC_KEY", value_name = "HEX")]
    pub discord_public_key: Option<String>,
    /// The RingCentral platform [default: https://platform.ringcentral.com; the sandbox is
    /// https://platform.devtest.ringcentral.com].
    #[arg(long, env = "RINGSIDE_RINGCENTRAL__SERVER_URL", value_name = "URL")]
    pub ringcentral_server_url: Option<String>,
    /// The RingCentral app's client id.
    #[arg(long, env = "RINGSIDE_RINGCENTRAL__CLIENT_ID", value_name = "ID")]
    pub ringcentral_client_id: Option<String>,
    /// How RingCentral's notifications arrive: websocket or webhook.
    #[arg(long, env = "RINGSIDE_RINGCENTRAL__DELIVERY", value_name = "HOW")]
    pub delivery: Option<String>,
    /// The https URL RingCentral and Discord reach ringside at (needed for webhook delivery).
    #[arg(long, env = "RINGSIDE_SERVER__PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Discord role ids whose members may /kick, comma-separated.
    #[arg(long, env = "RINGSIDE_ACCESS__KICK_ROLES", value_name = "ID,ID")]
    pub kick_roles: Option<String>,
    /// The SQLite database file [default: data/ringside.sqlite3].
    #[arg(long, env = "RINGSIDE_STORE__PATH", value_name = "FILE")]
    pub store_path: Option<String>,
}

const SECRETS_HELP: &str = "\
Secrets are never flags: a flag's value is visible to every local user in the process list and \
lands in shell history. Give them in the environment or answer the hidden prompts:
  RINGSIDE_DISCORD__TOKEN              the Discord bot token
  RINGSIDE_RINGCENTRAL__CLIENT_SECRET  the RingCentral app's client secret
  RINGSIDE_RINGCENTRAL__JWT            the RingCentral JWT credential
RINGSIDE_RINGCENTRAL__VERIFICATION_TOKEN and RINGSIDE_SERVER__API_TOKEN are used when set; \
otherwise they are generated.

The file is --config FILE, else $RINGSIDE_CONFIG, else config/ringside.toml; it is written with \
mode 0600. Exit status: 0 written, 1 not written (the file exists without --force, it cannot be \
written, or the answers ended), 2 a value is wrong or there is no terminal to ask on.";

/// The settings file `ringside init` writes when none is named.
const DEFAULT_FILE: &str = "config/ringside.toml";
/// Variables that name the settings file and the secrets (read here, never taken from flags).
const ENV_CONFIG: &str = "RINGSIDE_CONFIG";
const ENV_DISCORD_TOKEN: &str = "RINGSIDE_DISCORD__TOKEN";
const ENV_CLIENT_SECRET: &str = "RINGSIDE_RINGCENTRAL__CLIENT_SECRET";
const ENV_JWT: &str = "RINGSIDE_RINGCENTRAL__JWT";
const ENV_VERIFICATION_TOKEN: &str = "RINGSIDE_RINGCENTRAL__VERIFICATION_TOKEN";
const ENV_API_TOKEN: &str = "RINGSIDE_SERVER__API_TOKEN";

/// Runs `ringside init` and prints its outcome; `config` is the global `--config FILE`.
pub fn main(config: Option<&Path>, args: InitArgs) -> ExitCode {
    let mut stdout = io::stdout();
    match run(config, args, &mut stdout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ringside init: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

fn run(config: Option<&Path>, args: InitArgs, out: &mut impl Write) -> Result<(), InitError> {
    let path = target_file(config)?;
    if !args.force && path.symlink_metadata().is_ok() {
        return Err(InitError::Exists(path));
    }
    let defaults = Settings::from_sources(None, &[])
        .map_err(|error| InitError::Unloadable(error.to_string()))?;
    let (non_interactive, force) = (args.non_interactive, args.force);
    let given = Given::from_process(args, &defaults)?;
    let answers = if non_interactive {
        from_given(&given)?
    } else {
        if !io::stdin().is_terminal() {
            return Err(InitError::NoTerminal);
        }
        let mut asker = Asker::new(Terminal::new(), io::stdout());
        interview(&mut asker, &given)?
    };
    let tokens = Tokens::take_or_generate(&given)?;
    let text = render(&answers, &tokens);
    write_private(&path, &text, force)?;
    summarize(out, &path, &answers, &tokens).map_err(|error| InitError::Io {
        what: "write to standard output".into(),
        error,
    })
}

/// `--config FILE`, else `$RINGSIDE_CONFIG` (when not empty), else [`DEFAULT_FILE`]: the file
/// `Settings::load` reads, whether or not it exists yet.
fn target_file(config: Option<&Path>) -> Result<PathBuf, InitError> {
    if let Some(path) = config {
        return Ok(path.to_owned());
    }
    Ok(env_value(ENV_CONFIG)?
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_FILE)))
}

/// A `RINGSIDE_*` variable; empty counts as not set, as in the settings.
fn env_value(name: &'static str) -> Result<Option<String>, InitError> {
    match std::env::var(name) {
        Ok(value) if value.is_empty() => Ok(None),
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(InitError::Bad {
            what: name.to_owned(),
            reason: "is not valid UTF-8".into(),
        }),
    }
}

// --- what init can go wrong with -------------------------------------------------------------

/// Why nothing was written. `Display` is one line and never holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{} already exists; run `ringside init --force` to replace it", .0.display())]
    Exists(PathBuf),
    #[error(
        "no terminal to ask on; run `ringside init --non-interactive` with flags or RINGSIDE_* variables (see docs/setup.md)"
    )]
    NoTerminal,
    #[error("{what}: {reason}")]
    Bad { what: String, reason: String },
    #[error("the {group} settings are incomplete: {missing} missing ({together}; give none of them for local mode)", missing = .missing.join(", "))]
    Incomplete {
        group: &'static str,
        missing: Vec<String>,
        together: &'static str,
    },
    #[error("the answers ended before the questions did; nothing written")]
    InputEnded,
    #[error("the settings would not load: {0}")]
    Unloadable(String),
    #[error("the operating system gave no randomness for the tokens; nothing written")]
    NoRandomness,
    #[error("cannot {what}: {error}")]
    Io { what: String, error: io::Error },
}

impl InitError {
    /// 2 for what the user must change in the values or the way init is run, else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            InitError::NoTerminal
            | InitError::Bad { .. }
            | InitError::Incomplete { .. }
            | InitError::Unloadable(_) => 2,
            InitError::Exists(_)
            | InitError::InputEnded
            | InitError::NoRandomness
            | InitError::Io { .. } => 1,
        }
    }
}

// --- the values: given, checked, answered ----------------------------------------------------

/// One value init writes, and the names it goes by: the flag, the variable, the settings key.
#[derive(Debug, Clone, Copy)]
struct Field {
    flag: Option<&'static str>,
    var: &'static str,
    key: &'static str,
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.flag {
            Some(flag) => write!(f, "{flag} or {} ({})", self.var, self.key),
            None => write!(f, "{} ({})", self.var, self.key),
        }
    }
}

const fn flag(flag: &'static str, var: &'static str, key: &'static str) -> Field {
    Field {
        flag: Some(flag),
        var,
        key,
    }
}

const fn secret(var: &'static str, key: &'static str) -> Field {
    Field {
        flag: None,
        var,
        key,
    }
}

const APPLICATION_ID: Field = flag(
    "--discord-application-id",
    "RINGSIDE_DISCORD__APPLICATION_ID",
    "discord.application_id",
);
const GUILD_ID: Field = flag(
    "--discord-guild-id",
    "RINGSIDE_DISCORD__GUILD_ID",
    "discord.guild_id",
);
const CHANNEL_ID: Field = flag(
    "--discord-channel-id",
    "RINGSIDE_DISCORD__CHANNEL_ID",
    "discord.channel_id",
);
const PUBLIC_KEY: Field = flag(
    "--discord-public-key",
    "RINGSIDE_DISCORD__PUBLIC_KEY",
    "discord.public_key",
);
const BOT_TOKEN: Field = secret(ENV_DISCORD_TOKEN, "discord.token");
const SERVER_URL: Field = flag(
    "--ringcentral-server-url",
    "RINGSIDE_RINGCENTRAL__SERVER_URL",
    "ringcentral.server_url",
);
const CLIENT_ID: Field = flag(
    "--ringcentral-client-id",
    "RINGSIDE_RINGCENTRAL__CLIENT_ID",
    "ringcentral.client_id",
);
const CLIENT_SECRET: Field = secret(ENV_CLIENT_SECRET, "ringcentral.client_secret");
const JWT: Field = secret(ENV_JWT, "ringcentral.jwt");
const DELIVERY: Field = flag(
    "--delivery",
    "RINGSIDE_RINGCENTRAL__DELIVERY",
    "ringcentral.delivery",
);
const PUBLIC_URL: Field = flag(
    "--public-url",
    "RINGSIDE_SERVER__PUBLIC_URL",
    "server.public_url",
);
const KICK_ROLES: Field = flag(
    "--kick-roles",
    "RINGSIDE_ACCESS__KICK_ROLES",
    "access.kick_roles",
);
const STORE_PATH: Field = flag("--store-path", "RINGSIDE_STORE__PATH", "store.path");

const DISCORD_TOGETHER: &str = "discord.token, application_id, guild_id and channel_id go together";
const RINGCENTRAL_TOGETHER: &str = "ringcentral.client_id, client_secret and jwt go together";

/// What the flags and the environment gave, unchecked, and the built-in defaults.
struct Given {
    args: InitArgs,
    bot_token: Option<SecretString>,
    client_secret: Option<SecretString>,
    jwt: Option<SecretString>,
    verification_token: Option<SecretString>,
    api_token: Option<SecretString>,
    default_server_url: String,
    default_store_path: String,
}

impl Given {
    fn from_process(args: InitArgs, defaults: &Settings) -> Result<Given, InitError> {
        let secret = |name| Ok::<_, InitError>(env_value(name)?.map(SecretString::from));
        Ok(Given {
            args: InitArgs {
                // clap hands an empty variable over as an empty value; the settings count it as
                // not set, and so does init.
                discord_application_id: non_empty(args.discord_application_id),
                discord_guild_id: non_empty(args.discord_guild_id),
                discord_channel_id: non_empty(args.discord_channel_id),
                discord_public_key: non_empty(args.discord_public_key),
                ringcentral_server_url: non_empty(args.ringcentral_server_url),
                ringcentral_client_id: non_empty(args.ringcentral_client_id),
                delivery: non_empty(args.delivery),
                public_url: non_empty(args.public_url),
                kick_roles: non_empty(args.kick_roles),
                store_path: non_empty(args.store_path),
                ..InitArgs::default()
            },
            bot_token: secret(ENV_DISCORD_TOKEN)?,
            client_secret: secret(ENV_CLIENT_SECRET)?,
            jwt: secret(ENV_JWT)?,
            verification_token: secret(ENV_VERIFICATION_TOKEN)?,
            api_token: secret(ENV_API_TOKEN)?,
            default_server_url: defaults.ringcentral.server_url.clone(),
            default_store_path: defaults.store.path.display().to_string(),
        })
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|value| !value.trim().is_empty())
}

/// The checked values the file is written from.
#[derive(Debug)]
struct Answers {
    discord: Option<DiscordAnswers>,
    ringcentral: Option<RingCentralAnswers>,
    public_url: Option<String>,
    kick_roles: Vec<String>,
    store_path: String,
}

#[derive(Debug)]
struct DiscordAnswers {
    application_id: String,
    guild_id: String,
    channel_id: String,
    token: SecretString,
    public_key: Option<String>,
}

#[derive(Debug)]
struct RingCentralAnswers {
    server_url: String,
    client_id: String,
    client_secret: SecretString,
    jwt: SecretString,
    delivery: Delivery,
}

/// The answer checks, shared by the prompts and the flags. Each returns the value to write, or
/// a reason short enough for one line that never repeats a secret.
mod check {
    use super::*;

    /// Discord snowflakes have been 17 to 20 digits since 2015 and fit in 64 bits.
    pub fn discord_id(answer: &str) -> Result<String, String> {
        let digits =
            (17..=20).contains(&answer.len()) && answer.bytes().all(|b| b.is_ascii_digit());
        if digits && answer.parse::<u64>().is_ok() {
            Ok(answer.to_owned())
        } else {
            Err(format!(
                "{answer:?} is not a Discord id (17 to 20 digits; in Discord, turn on Developer Mode and use Copy ID)"
            ))
        }
    }

    /// Ids separated by commas (or the list forms the settings accept); empty is none.
    pub fn discord_ids(answer: &str) -> Result<Vec<String>, String> {
        crate::config::parse_list(answer)?
            .iter()
            .map(|id| discord_id(id.trim()))
            .collect()
    }

    /// An absolute https URL (http only for this machine), without user, query or fragment,
    /// which is what the settings accept; trailing slashes are dropped as the settings do.
    pub fn url(answer: &str) -> Result<String, String> {
        let url = reqwest::Url::parse(answer).map_err(|_| {
            format!("{answer:?} is not an absolute URL (e.g. https://ringside.example.com)")
        })?;
        let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        match url.scheme() {
            "https" => {}
            "http" if local => {}
            _ => {
                return Err(
                    "must start with https:// (http:// only for localhost or 127.0.0.1)".into(),
                );
            }
        }
        if url.host_str().is_none() {
            return Err("has no host name".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not contain a user name or password".into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("must not have a ?query or #fragment".into());
        }
        Ok(answer.trim_end_matches('/').to_owned())
    }

    /// Discord's application public key: 64 hex characters that are an Ed25519 key.
    pub fn public_key(answer: &str) -> Result<String, String> {
        if answer.len() != 64 || !answer.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("is not 64 hexadecimal characters (Developer Portal → General Information → Public Key)".into());
        }
        PublicKey::from_hex(answer)
            .map(|key| key.to_hex())
            .ok_or_else(|| "is not a valid Ed25519 public key".into())
    }

    /// A JWT: three base64url parts separated by dots. The reason never shows the value.
    pub fn jwt(answer: &str) -> Result<SecretString, String> {
        let base64url = |part: &str| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        let parts: Vec<&str> = answer.split('.').collect();
        if parts.len() == 3 && parts.iter().all(|part| base64url(part)) {
            Ok(SecretString::from(answer.to_owned()))
        } else {
            Err("is not a JWT (three base64url parts separated by dots)".into())
        }
    }

    /// A bot token or client secret: visible ASCII, no spaces. The reason never shows it.
    pub fn secret(answer: &str) -> Result<SecretString, String> {
        if answer.is_empty() {
            Err("is needed".into())
        } else if answer.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(SecretString::from(answer.to_owned()))
        } else {
            Err("may contain only visible ASCII characters (no spaces)".into())
        }
    }

    /// Plain text on one line (a client id, a path).
    pub fn text(answer: &str) -> Result<String, String> {
        if answer.is_empty() {
            Err("is needed".into())
        } else if answer.chars().any(char::is_control) {
            Err("must be one line of text".into())
        } else {
            Ok(answer.to_owned())
        }
    }

    pub fn delivery(answer: &str) -> Result<Delivery, String> {
        match answer.to_ascii_lowercase().as_str() {
            "websocket" => Ok(Delivery::WebSocket),
            "webhook" => Ok(Delivery::Webhook),
            _ => Err(format!("{answer:?} is not websocket or webhook")),
        }
    }
}

/// Checks a value that came from a flag or a variable; the error names both.
fn checked<T>(
    field: Field,
    value: Option<&str>,
    check: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, InitError> {
    value
        .map(|value| {
            check(value.trim()).map_err(|reason| InitError::Bad {
                what: field.to_string(),
                reason,
            })
        })
        .transpose()
}

fn checked_secret(
    field: Field,
    value: Option<&SecretString>,
    check: impl Fn(&str) -> Result<SecretString, String>,
) -> Result<Option<SecretString>, InitError> {
    checked(field, value.map(|v| v.expose_secret()), check)
}

/// The answers from flags and variables alone (`--non-interactive`): every value checked first,
/// so a wrong one is named even when its group is also incomplete; then the groups, all or none.
fn from_given(given: &Given) -> Result<Answers, InitError> {
    let args = &given.args;
    let application_id = checked(
        APPLICATION_ID,
        args.discord_application_id.as_deref(),
        check::discord_id,
    )?;
    let guild_id = checked(
        GUILD_ID,
        args.discord_guild_id.as_deref(),
        check::discord_id,
    )?;
    let channel_id = checked(
        CHANNEL_ID,
        args.discord_channel_id.as_deref(),
        check::discord_id,
    )?;
    let public_key = checked(
        PUBLIC_KEY,
        args.discord_public_key.as_deref(),
        check::public_key,
    )?;
    let token = checked_secret(BOT_TOKEN, given.bot_token.as_ref(), check::secret)?;
    let server_url = checked(
        SERVER_URL,
        args.ringcentral_server_url.as_deref(),
        check::url,
    )?;
    let client_id = checked(
        CLIENT_ID,
        args.ringcentral_client_id.as_deref(),
        check::text,
    )?;
    let client_secret = checked_secret(CLIENT_SECRET, given.client_secret.as_ref(), check::secret)?;
    let jwt = checked_secret(JWT, given.jwt.as_ref(), check::jwt)?;
    let delivery = checked(DELIVERY, args.delivery.as_deref(), check::delivery)?;
    let public_url = checked(PUBLIC_URL, args.public_url.as_deref(), check::url)?;
    let kick_roles = checked(KICK_ROLES, args.kick_roles.as_deref(), check::discord_ids)?;
    let store_path = checked(STORE_PATH, args.store_path.as_deref(), check::text)?;

    let discord = match (application_id, guild_id, channel_id, token) {
        (None, None, None, None) if public_key.is_none() => None,
        (Some(application_id), Some(guild_id), Some(channel_id), Some(token)) => {
            Some(DiscordAnswers {
                application_id,
                guild_id,
                channel_id,
                token,
                public_key,
            })
        }
        (application_id, guild_id, channel_id, token) => {
            let missing = [
                (APPLICATION_ID, application_id.is_none()),
                (GUILD_ID, guild_id.is_none()),
                (CHANNEL_ID, channel_id.is_none()),
                (BOT_TOKEN, token.is_none()),
            ];
            return Err(incomplete("Discord", &missing, DISCORD_TOGETHER));
        }
    };
    let ringcentral = match (client_id, client_secret, jwt) {
        (None, None, None) => None,
        (Some(client_id), Some(client_secret), Some(jwt)) => Some(RingCentralAnswers {
            server_url: server_url.unwrap_or_else(|| given.default_server_url.clone()),
            client_id,
            client_secret,
            jwt,
            delivery: delivery.unwrap_or(if public_url.is_some() {
                Delivery::Webhook
            } else {
                Delivery::WebSocket
            }),
        }),
        (client_id, client_secret, jwt) => {
            let missing = [
                (CLIENT_ID, client_id.is_none()),
                (CLIENT_SECRET, client_secret.is_none()),
                (JWT, jwt.is_none()),
            ];
            return Err(incomplete("RingCentral", &missing, RINGCENTRAL_TOGETHER));
        }
    };
    if ringcentral
        .as_ref()
        .is_some_and(|rc| rc.delivery == Delivery::Webhook)
        && public_url.is_none()
    {
        return Err(InitError::Bad {
            what: PUBLIC_URL.to_string(),
            reason: "is needed for webhook delivery (RingCentral posts to {public_url}/webhooks/ringcentral); without one, use --delivery websocket".into(),
        });
    }
    Ok(Answers {
        discord,
        ringcentral,
        public_url,
        kick_roles: kick_roles.unwrap_or_default(),
        store_path: store_path.unwrap_or_else(|| given.default_store_path.clone()),
    })
}

fn incomplete(group: &'static str, fields: &[(Field, bool)], together: &'static str) -> InitError {
    InitError::Incomplete {
        group,
        missing: fields
            .iter()
            .filter(|(_, missing)| *missing)
            .map(|(field, _)| field.to_string())
            .collect(),
        together,
    }
}

// --- asking ----------------------------------------------------------------------------------

/// Where answers come from: the terminal, or a script in the tests.
pub trait Input {
    /// The next answer without its line ending; `None` when the input has ended.
    fn line(&mut self) -> io::Result<Option<String>>;
    /// The next answer, read without showing what is typed.
    fn secret_line(&mut self) -> io::Result<Option<String>>;
}

/// Asks questions on `out` and reads the answers from `input`, asking again with a one-line
/// reason until an answer passes its check.
pub struct Asker<I, W> {
    input: I,
    out: W,
}

impl<I: Input, W: Write> Asker<I, W> {
    pub fn new(input: I, out: W) -> Self {
        Asker { input, out }
    }

    fn say(&mut self, text: &str) -> Result<(), InitError> {
        writeln!(self.out, "{text}").map_err(output_error)
    }

    fn prompt(&mut self, prompt: &str, hint: Option<&str>) -> Result<(), InitError> {
        match hint {
            Some(hint) => write!(self.out, "{prompt} [{hint}]: "),
            None => write!(self.out, "{prompt}: "),
        }
        .and_then(|()| self.out.flush())
        .map_err(output_error)
    }

    /// Asks until `check` takes the answer; Enter gives `default` (or, with none, an empty
    /// answer, which `check` may take as "skip").
    fn ask<T>(
        &mut self,
        prompt: &str,
        hint: Option<&str>,
        default: Option<&str>,
        check: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, InitError> {
        loop {
            self.prompt(prompt, hint.or(default))?;
            let line = self.input.line().map_err(input_error)?;
            let answer = line.ok_or(InitError::InputEnded)?;
            let answer = match (answer.trim(), default) {
                ("", Some(default)) => default,
                (answer, _) => answer,
            };
            match check(answer) {
                Ok(value) => return Ok(value),
                Err(reason) => self.say(&format!("  That {reason}; please try again."))?,
            }
        }
    }

    /// Asks for a secret with echo off until `check` takes it; Enter keeps `kept` (the value
    /// from the environment) when there is one. Neither the answer nor any mask of it is
    /// written to `out`.
    fn ask_secret(
        &mut self,
        prompt: &str,
        kept: Option<(&SecretString, &str)>,
        check: impl Fn(&str) -> Result<SecretString, String>,
    ) -> Result<SecretString, InitError> {
        let hint = kept.map(|(_, var)| format!("Enter keeps the one in {var}"));
        loop {
            self.prompt(prompt, hint.as_deref())?;
            let line = self.input.secret_line().map_err(input_error)?;
            let answer = line.map(SecretString::from).ok_or(InitError::InputEnded)?;
            let answer = answer.expose_secret().trim();
            let result = match kept {
                Some((value, _)) if answer.is_empty() => Ok(value.clone()),
                _ => check(answer),
            };
            match result {
                Ok(value) => return Ok(value),
                Err(reason) => self.say(&format!("  That {reason}; please try again."))?,
            }
        }
    }

    /// A yes/no question; Enter gives `default`.
    fn confirm(&mut self, prompt: &str, default: bool) -> Result<bool, InitError> {
        let hint = if default { "Y/n" } else { "y/N" };
        self.ask(prompt, Some(hint), None, |answer| {
            match answer.to_ascii_lowercase().as_str() {
                "" => Ok(default),
                "y" | "yes" => Ok(true),
                "n" | "no" => Ok(false),
                _ => Err(format!("{answer:?} is not yes or no")),
            }
        })
    }
}

fn output_error(error: io::Error) -> InitError {
    InitError::Io {
        what: "write the questions".into(),
        error,
    }
}

fn input_error(error: io::Error) -> InitError {
    InitError::Io {
        what: "read the answers".into(),
        error,
    }
}

/// The questions, in order: Discord (ids, bot token, public key), RingCentral (platform, client
/// id, client secret, JWT, delivery), the public URL, the roles that may kick, the store. Values
/// given as flags or variables are the defaults.
fn interview<I: Input, W: Write>(
    asker: &mut Asker<I, W>,
    given: &Given,
) -> Result<Answers, InitError> {
    let args = &given.args;
    asker.say(
        "ringside init writes a settings file. Press Enter to keep the value in [brackets].\n\
         Secrets are asked with echo off; they are written only to the file (mode 0600).",
    )?;

    asker.say("\nDiscord: the bot that posts joins and leaves and answers /participants and /kick\n(Developer Portal: https://discord.com/developers/applications). Without it, ringside\nannounces on standard output.")?;
    let discord = if asker.confirm("Connect Discord now?", true)? {
        let application_id = asker.ask(
            "Application id (General Information → Application ID)",
            None,
            args.discord_application_id.as_deref(),
            check::discord_id,
        )?;
        let guild_id = asker.ask(
            "Server (guild) id (right-click the server → Copy Server ID)",
            None,
            args.discord_guild_id.as_deref(),
            check::discord_id,
        )?;
        let channel_id = asker.ask(
            "Channel id for the announcements (right-click the channel → Copy Channel ID)",
            None,
            args.discord_channel_id.as_deref(),
            check::discord_id,
        )?;
        let token = asker.ask_secret(
            "Bot token (Bot → Reset Token; hidden)",
            given
                .bot_token
                .as_ref()
                .map(|token| (token, ENV_DISCORD_TOKEN)),
            check::secret,
        )?;
        let public_key = asker.ask(
            "Public key, only to receive interactions at {public_url}/discord/interactions",
            Some(
                args.discord_public_key
                    .as_deref()
                    .unwrap_or("Enter: none, use the gateway"),
            ),
            args.discord_public_key.as_deref(),
            |answer| optional(answer, check::public_key),
        )?;
        Some(DiscordAnswers {
            application_id,
            guild_id,
            channel_id,
            token,
            public_key,
        })
    } else {
        None
    };

    asker.say("\nRingCentral: the account whose conference calls are watched (an app with JWT auth\nin the developer console). Without it, ringside subscribes to nothing.")?;
    let ringcentral = if asker.confirm("Connect RingCentral now?", true)? {
        let server_url = asker.ask(
            "Platform URL (the sandbox is https://platform.devtest.ringcentral.com)",
            None,
            Some(
                args.ringcentral_server_url
                    .as_deref()
                    .unwrap_or(&given.default_server_url),
            ),
            check::url,
        )?;
        let client_id = asker.ask(
            "Client id",
            None,
            args.ringcentral_client_id.as_deref(),
            check::text,
        )?;
        let client_secret = asker.ask_secret(
            "Client secret (hidden)",
            given
                .client_secret
                .as_ref()
                .map(|secret| (secret, ENV_CLIENT_SECRET)),
            check::secret,
        )?;
        let jwt = asker.ask_secret(
            "JWT credential (hidden)",
            given.jwt.as_ref().map(|jwt| (jwt, ENV_JWT)),
            check::jwt,
        )?;
        let delivery = asker.ask(
            "Delivery: websocket (no public address needed) or webhook (RingCentral posts to your public URL)",
            None,
            Some(args.delivery.as_deref().unwrap_or("websocket")),
            check::delivery,
        )?;
        Some(RingCentralAnswers {
            server_url,
            client_id,
            client_secret,
            jwt,
            delivery,
        })
    } else {
        None
    };

    let webhook = ringcentral
        .as_ref()
        .is_some_and(|rc| rc.delivery == Delivery::Webhook);
    let wants_url = webhook || discord.as_ref().is_some_and(|d| d.public_key.is_some());
    let public_url = if wants_url || args.public_url.is_some() {
        asker.say("\nThe public URL: where RingCentral's webhooks and Discord's interactions reach ringside\n(usually a reverse proxy in front of server.listen).")?;
        asker.ask(
            "Public URL",
            Some(args.public_url.as_deref().unwrap_or(if webhook {
                "needed for webhook delivery"
            } else {
                "Enter: none"
            })),
            args.public_url.as_deref(),
            |answer| match optional(answer, check::url)? {
                None if webhook => Err("is needed for webhook delivery".to_owned()),
                url => Ok(url),
            },
        )?
    } else {
        None
    };

    let kick_roles = if discord.is_some() {
        asker.say("\nWho may remove callers with /kick: Discord role ids, comma-separated.")?;
        asker.ask(
            "Roles that may /kick",
            Some(
                args.kick_roles
                    .as_deref()
                    .unwrap_or("Enter: none, only Administrators"),
            ),
            args.kick_roles.as_deref(),
            check::discord_ids,
        )?
    } else {
        Vec::new()
    };

    asker.say("\nThe store: the SQLite file that keeps ringside's state across restarts.")?;
    let store_path = asker.ask(
        "Database file",
        None,
        Some(
            args.store_path
                .as_deref()
                .unwrap_or(&given.default_store_path),
        ),
        check::text,
    )?;

    Ok(Answers {
        discord,
        ringcentral,
        public_url,
        kick_roles,
        store_path,
    })
}

/// An optional answer: empty is none, anything else must pass `check`.
fn optional<T>(
    answer: &str,
    check: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, String> {
    if answer.is_empty() {
        Ok(None)
    } else {
        check(answer).map(Some)
    }
}

/// The real terminal: lines from standard input, secrets with echo off.
struct Terminal {
    stdin: io::StdinLock<'static>,
}

impl Terminal {
    fn new() -> Self {
        Terminal {
            stdin: io::stdin().lock(),
        }
    }
}

impl Input for Terminal {
    fn line(&mut self) -> io::Result<Option<String>> {
        let mut line = String::new();
        if self.stdin.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let end = line.trim_end_matches(['\n', '\r']).len();
        line.truncate(end);
        Ok(Some(line))
    }

    fn secret_line(&mut self) -> io::Result<Option<String>> {
        // Restored when this returns, by any path, including an error or a panic.
        let _echo_off = EchoOff::new()?;
        self.line()
    }
}

/// Echo turned off on standard input while it lives; the line feed still echoes, so the next
/// question starts on its own line.
struct EchoOff {
    saved: rustix::termios::Termios,
}

impl EchoOff {
    fn new() -> io::Result<Self> {
        use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
        let saved = tcgetattr(io::stdin())?;
        let mut quiet = saved.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        quiet.local_modes.insert(LocalModes::ECHONL);
        tcsetattr(io::stdin(), OptionalActions::Now, &quiet)?;
        Ok(EchoOff { saved })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        use rustix::termios::{OptionalActions, tcsetattr};
        let _ = tcsetattr(io::stdin(), OptionalActions::Now, &self.saved);
    }
}

// --- the tokens ------------------------------------------------------------------------------

/// The webhook verification token and the admin API token: from the environment, or generated.
struct Tokens {
    verification: SecretString,
    verification_generated: bool,
    api: SecretString,
    api_generated: bool,
}

impl Tokens {
    fn take_or_generate(given: &Given) -> Result<Tokens, InitError> {
        let take = |from: &Option<SecretString>| match from {
            Some(token) => Ok((token.clone(), false)),
            None => crate::util::random::hex(super::GENERATED_TOKEN_BYTES)
                .map(|token| (SecretString::from(token), true))
                .ok_or(InitError::NoRandomness),
        };
        let (verification, verification_generated) = take(&given.verification_token)?;
        let (api, api_generated) = take(&given.api_token)?;
        Ok(Tokens {
            verification,
            verification_generated,
            api,
            api_generated,
        })
    }
}

// --- the file --------------------------------------------------------------------------------

/// `value` as a TOML basic string: quotes, backslashes and control characters escaped.
fn toml_string(value: &str) -> String {
    let mut text = String::with_capacity(value.len() + 2);
    text.push('"');
    for c in value.chars() {
        match c {
            '"' => text.push_str("\\\""),
            '\\' => text.push_str("\\\\"),
            '\t' => text.push_str("\\t"),
            '\n' => text.push_str("\\n"),
            '\r' => text.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(text, "\\u{:04X}", u32::from(c));
            }
            c => text.push(c),
        }
    }
    text.push('"');
    text
}

fn toml_list(values: &[String]) -> String {
    let items: Vec<String> = values.iter().map(|value| toml_string(value)).collect();
    format!("[{}]", items.join(", "))
}

/// The settings file's text: each section says what it is for; every other key is in
/// `config/ringside.example.toml`.
fn render(answers: &Answers, tokens: &Tokens) -> String {
    let mut text = String::new();
    let mut line = |line: &str| {
        text.push_str(line);
        text.push('\n');
    };
    line("# ringside settings, written by `ringside init`.");
    line("#");
    line("# Only what a first start needs is here; config/ringside.example.toml documents every");
    line("# other key, with its default. Any key can also be set by an environment variable");
    line("# RINGSIDE_<SECTION>__<KEY> (double underscore), which wins over this file.");
    line("#");
    line("# This file holds secrets: keep it readable by ringside's user only (it was written");
    line("# with mode 0600). `ringside check` tests it against Discord and RingCentral.");
    line("");
    line("[server]");
    line("# The HTTP listeners: the public one (webhooks, Discord interactions) and the admin one");
    line("# (health, metrics, admin API); listen addresses and limits: see the example file.");
    if let Some(url) = &answers.public_url {
        line("# Where RingCentral and Discord reach the public listener.");
        line(&format!("public_url = {}", toml_string(url)));
    } else {
        line("# No public_url: ringside is not reachable from outside.");
    }
    line("# Bearer token of the admin API (GET /api/conferences on the admin listener).");
    line(&format!(
        "api_token = {}",
        toml_string(tokens.api.expose_secret())
    ));
    line("");
    line("[ringcentral]");
    line("# The telephony side: the account whose conference calls are watched.");
    match &answers.ringcentral {
        Some(rc) => {
            line(&format!("server_url = {}", toml_string(&rc.server_url)));
            line("# client_id, client_secret and jwt go together (all three or none).");
            line(&format!("client_id = {}", toml_string(&rc.client_id)));
            line(&format!(
                "client_secret = {}",
                toml_string(rc.client_secret.expose_secret())
            ));
            line(&format!("jwt = {}", toml_string(rc.jwt.expose_secret())));
            line("# websocket: ringside connects out; webhook: RingCentral posts to");
            line("# {server.public_url}/webhooks/ringcentral.");
            line(&format!("delivery = {}", toml_string(rc.delivery.as_str())));
        }
        None => {
            line(
                "# No account yet: local mode, nothing is subscribed. Add client_id, client_secret",
            );
            line("# and jwt (see the example file), or run `ringside init --force` again.");
        }
    }
    line("# RingCentral sends this back with every webhook, proving it is genuine.");
    line(&format!(
        "verification_token = {}",
        toml_string(tokens.verification.expose_secret())
    ));
    line("");
    line("[discord]");
    line("# The chat side: the bot that announces joins and leaves and answers /participants and");
    line("# /kick.");
    match &answers.discord {
        Some(discord) => {
            line(
                "# token, application_id, guild_id and channel_id go together (all four or none).",
            );
            line(&format!(
                "token = {}",
                toml_string(discord.token.expose_secret())
            ));
            line(&format!(
                "application_id = {}",
                toml_string(&discord.application_id)
            ));
            line(&format!("guild_id = {}", toml_string(&discord.guild_id)));
            line("# The channel joins and leaves are announced in.");
            line(&format!(
                "channel_id = {}",
                toml_string(&discord.channel_id)
            ));
            match &discord.public_key {
                Some(key) => {
                    line(
                        "# Interactions arrive at {server.public_url}/discord/interactions, signed",
                    );
                    line("# with this key (put that URL in the Developer Portal).");
                    line(&format!("public_key = {}", toml_string(key)));
                }
                None => line("# No public_key: interactions arrive over the Discord gateway."),
            }
        }
        None => {
            line("# No bot yet: local mode, announcements go to standard output. Add token,");
            line("# application_id, guild_id and channel_id (see the example file).");
        }
    }
    line("");
    line("[access]");
    line("# Who may use the Discord commands.");
    if answers.kick_roles.is_empty() {
        line("# No kick_roles: only members with the Administrator permission may /kick.");
    } else {
        line("# Roles whose members may remove callers with /kick.");
        line(&format!("kick_roles = {}", toml_list(&answers.kick_roles)));
    }
    line("");
    line("[store]");
    line("# The local database: ringside's state across restarts (it holds secrets too).");
    line(&format!("path = {}", toml_string(&answers.store_path)));
    text
}

/// Writes `text` to `path`, private from the first byte: a `0600` temporary file in the same
/// directory, synced, checked to load as settings, then put in place in one step. Without
/// `force` an existing file is never replaced, even one that appeared meanwhile.
fn write_private(path: &Path, text: &str, force: bool) -> Result<(), InitError> {
    let io_error = |error| InitError::Io {
        what: format!("write {}", path.display()),
        error,
    };
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.exists() {
        crate::store::create_private_dirs(dir).map_err(io_error)?;
    }
    let staged = Staged::beside(path, "init").map_err(io_error)?;
    std::fs::write(staged.path(), text).map_err(io_error)?;
    Settings::from_sources(Some(staged.path()), &[])
        .map_err(|error| InitError::Unloadable(error.to_string()))?;
    staged.place(path, force).map_err(|error| {
        if error.kind() == io::ErrorKind::AlreadyExists {
            InitError::Exists(path.to_owned())
        } else {
            io_error(error)
        }
    })
}

/// What was written, without any secret, and the next step.
fn summarize(
    out: &mut impl Write,
    path: &Path,
    answers: &Answers,
    tokens: &Tokens,
) -> io::Result<()> {
    writeln!(out, "Wrote {} (mode 0600).", path.display())?;
    match &answers.discord {
        Some(discord) => writeln!(
            out,
            "  Discord: bot of application {} posting in channel {} of server {}{}",
            discord.application_id,
            discord.channel_id,
            discord.guild_id,
            if discord.public_key.is_some() {
                ", interactions at {server.public_url}/discord/interactions"
            } else {
                ", interactions over the gateway"
            }
        )?,
        None => writeln!(
            out,
            "  Discord: not configured (local mode: announcements on standard output)"
        )?,
    }
    match &answers.ringcentral {
        Some(rc) => writeln!(
            out,
            "  RingCentral: client {} on {}, {} delivery",
            rc.client_id,
            rc.server_url,
            rc.delivery.as_str()
        )?,
        None => writeln!(
            out,
            "  RingCentral: not configured (local mode: no subscription)"
        )?,
    }
    if let Some(url) = &answers.public_url {
        writeln!(out, "  public URL: {url}")?;
    }
    let origin = |generated, var| {
        if generated {
            "generated".to_owned()
        } else {
            format!("from {var}")
        }
    };
    writeln!(
        out,
        "  ringcentral.verification_token: {}; server.api_token: {}",
        origin(tokens.verification_generated, ENV_VERIFICATION_TOKEN),
        origin(tokens.api_generated, ENV_API_TOKEN)
    )?;
    writeln!(out, "  store: {}", answers.store_path)?;
    if path == Path::new(DEFAULT_FILE) {
        writeln!(out, "Next: ringside check")
    } else {
        writeln!(out, "Next: ringside --config {} check", path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    const APP: &str = "123456789012345678";
    const GUILD: &str = "223456789012345678";
    const CHANNEL: &str = "323456789012345678";
    const BOT_TOKEN_VALUE: &str = "MTIz.bot-token-never-shown";
    const CLIENT_SECRET_VALUE: &str = "client-secret-never-shown";
    const JWT_VALUE: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl";

    /// Scripted answers; records which were read as secrets.
    struct Script {
        answers: VecDeque<&'static str>,
        secret_reads: usize,
    }

    impl Script {
        fn new(answers: &[&'static str]) -> Self {
            Script {
                answers: answers.iter().copied().collect(),
                secret_reads: 0,
            }
        }
    }

    impl Input for Script {
        fn line(&mut self) -> io::Result<Option<String>> {
            Ok(self.answers.pop_front().map(str::to_owned))
        }

        fn secret_line(&mut self) -> io::Result<Option<String>> {
            self.secret_reads += 1;
            self.line()
        }
    }

    fn nothing_given() -> Given {
        Given {
            args: InitArgs::default(),
            bot_token: None,
            client_secret: None,
            jwt: None,
            verification_token: None,
            api_token: None,
            default_server_url: "https://platform.ringcentral.com".into(),
            default_store_path: "data/ringside.sqlite3".into(),
        }
    }

    /// Runs the interview on `answers`; the answers (or the error) and everything it printed.
    fn interview_on(
        given: &Given,
        answers: &[&'static str],
    ) -> (Result<Answers, InitError>, String, Script) {
        let mut asker = Asker::new(Script::new(answers), Vec::new());
        let result = interview(&mut asker, given);
        let Asker { input, out } = asker;
        (result, String::from_utf8(out).unwrap(), input)
    }

    #[test]
    fn a_bad_answer_is_asked_again_with_its_reason() {
        let (answers, out, script) = interview_on(
            &nothing_given(),
            &[
                "y",
                "abc",
                APP,
                GUILD,
                CHANNEL,
                BOT_TOKEN_VALUE,
                "",  // Discord
                "n", // no RingCentral
                "1, 2",
                "", // kick roles: bad, then none
                "", // store
            ],
        );
        let answers = answers.unwrap();
        assert_eq!(out.matches("Application id").count(), 2, "{out}");
        assert!(
            out.contains("That \"abc\" is not a Discord id (17 to 20 digits"),
            "{out}"
        );
        assert!(out.contains("That \"1\" is not a Discord id"), "{out}");
        let discord = answers.discord.unwrap();
        assert_eq!(
            (discord.application_id.as_str(), discord.guild_id.as_str()),
            (APP, GUILD)
        );
        assert_eq!(discord.channel_id, CHANNEL);
        assert!(discord.public_key.is_none());
        assert!(answers.kick_roles.is_empty());
        assert!(script.answers.is_empty(), "every answer was asked for");
    }

    #[test]
    fn a_secret_answer_never_appears_in_the_output() {
        let (answers, out, script) = interview_on(
            &nothing_given(),
            &[
                "",
                APP,
                GUILD,
                CHANNEL,
                BOT_TOKEN_VALUE,
                "", // Discord (Enter: yes)
                "", // RingCentral (Enter: yes)
                "", // platform: the default
                "client-id",
                CLIENT_SECRET_VALUE,
                "not a jwt but a secret all the same",
                JWT_VALUE,
                "", // websocket
                "", // kick roles
                "", // store
            ],
        );
        let answers = answers.unwrap();
        assert_eq!(script.secret_reads, 4, "token, secret and both JWT answers");
        for secret in [
            BOT_TOKEN_VALUE,
            CLIENT_SECRET_VALUE,
            JWT_VALUE,
            "not a jwt but a secret",
        ] {
            assert!(!out.contains(secret), "{secret:?} shown in:\n{out}");
        }
        assert!(out.contains("That is not a JWT"), "{out}");
        let rc = answers.ringcentral.unwrap();
        assert_eq!(rc.jwt.expose_secret(), JWT_VALUE);
        assert_eq!(rc.client_secret.expose_secret(), CLIENT_SECRET_VALUE);
        assert_eq!(rc.server_url, "https://platform.ringcentral.com");
        assert_eq!(rc.delivery, Delivery::WebSocket);
        assert_eq!(
            answers.discord.unwrap().token.expose_secret(),
            BOT_TOKEN_VALUE
        );
    }

    #[test]
    fn skipping_both_groups_asks_only_for_the_store() {
        let (answers, out, _) = interview_on(&nothing_given(), &["n", "no", "var/ringside.db"]);
        let answers = answers.unwrap();
        assert!(answers.discord.is_none() && answers.ringcentral.is_none());
        assert!(answers.public_url.is_none());
        assert_eq!(answers.store_path, "var/ringside.db");
        assert!(
            !out.contains("Application id") && !out.contains("Client id"),
            "{out}"
        );
        assert!(out.contains("Connect Discord now? [Y/n]: "), "{out}");
    }

    #[test]
    fn a_secret_from_the_environment_is_kept_on_enter_and_values_given_are_the_defaults() {
        let mut given = nothing_given();
        given.args.discord_application_id = Some(APP.into());
        given.args.discord_guild_id = Some(GUILD.into());
        given.args.discord_channel_id = Some(CHANNEL.into());
        given.bot_token = Some(BOT_TOKEN_VALUE.into());
        let (answers, out, _) = interview_on(&given, &["", "", "", "", "", "", "n", "", ""]);
        let discord = answers.unwrap().discord.unwrap();
        assert_eq!(discord.token.expose_secret(), BOT_TOKEN_VALUE);
        assert_eq!(discord.channel_id, CHANNEL);
        assert!(out.contains(&format!("[{APP}]")), "{out}");
        assert!(
            out.contains("Enter keeps the one in RINGSIDE_DISCORD__TOKEN"),
            "{out}"
        );
        assert!(!out.contains(BOT_TOKEN_VALUE), "{out}");
    }

    #[test]
    fn webhook_delivery_asks_for_a_public_url_until_one_is_given() {
        let (answers, out, _) = interview_on(
            &nothing_given(),
            &[
                "n", // no Discord
                "y",
                "",
                "client-id",
                CLIENT_SECRET_VALUE,
                JWT_VALUE,
                "webhook",
                "",                        // none: refused
                "http://ringside.example", // plain http: refused
                "https://ringside.example/",
                "",
            ],
        );
        let answers = answers.unwrap();
        assert!(out.contains("That is needed for webhook delivery"), "{out}");
        assert!(out.contains("That must start with https://"), "{out}");
        assert_eq!(
            answers.public_url.as_deref(),
            Some("https://ringside.example")
        );
        assert_eq!(answers.ringcentral.unwrap().delivery, Delivery::Webhook);
    }

    #[test]
    fn answers_that_end_early_write_nothing() {
        let (answers, _, _) = interview_on(&nothing_given(), &["y", APP]);
        assert!(matches!(answers, Err(InitError::InputEnded)));
    }

    #[test]
    fn a_bad_flag_is_named_with_its_variable_and_key() {
        let mut given = nothing_given();
        given.args.discord_guild_id = Some("abc".into());
        let error = from_given(&given).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        assert_eq!(
            error.to_string(),
            "--discord-guild-id or RINGSIDE_DISCORD__GUILD_ID (discord.guild_id): \"abc\" is not a Discord id (17 to 20 digits; in Discord, turn on Developer Mode and use Copy ID)"
        );
    }

    #[test]
    fn a_partial_group_names_every_missing_value_and_never_a_secret() {
        let mut given = nothing_given();
        given.args.ringcentral_client_id = Some("client-id".into());
        given.jwt = Some("a.b".into());
        let error = from_given(&given).unwrap_err().to_string();
        assert!(error.contains("RINGSIDE_RINGCENTRAL__JWT (ringcentral.jwt): is not a JWT"));
        given.jwt = Some(JWT_VALUE.into());
        let error = from_given(&given).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        let error = error.to_string();
        assert_eq!(
            error,
            "the RingCentral settings are incomplete: RINGSIDE_RINGCENTRAL__CLIENT_SECRET (ringcentral.client_secret) missing (ringcentral.client_id, client_secret and jwt go together; give none of them for local mode)"
        );
        assert!(!error.contains(JWT_VALUE));
    }

    #[test]
    fn nothing_given_is_local_mode() {
        let answers = from_given(&nothing_given()).unwrap();
        assert!(answers.discord.is_none() && answers.ringcentral.is_none());
        assert_eq!(answers.store_path, "data/ringside.sqlite3");
    }

    #[test]
    fn the_checks_take_what_the_settings_take() {
        assert!(check::discord_id("1234567890123456").is_err(), "16 digits");
        assert!(
            check::discord_id("99999999999999999999").is_err(),
            "beyond 64 bits"
        );
        assert!(check::discord_id("12345678901234567").is_ok());
        assert_eq!(
            check::discord_ids("[\"123456789012345678\", 223456789012345678]").unwrap(),
            [APP, GUILD]
        );
        assert!(check::url("http://127.0.0.1:8080").is_ok());
        assert!(check::url("https://user:pw@example.com").is_err());
        assert!(check::url("https://example.com/?token=x").is_err());
        assert!(check::url("ftp://example.com").is_err());
        assert!(check::public_key(&"0".repeat(63)).is_err());
        assert!(
            check::public_key("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
                .is_ok()
        );
        assert!(check::jwt("a.b.c").is_ok());
        assert!(check::jwt("a.b").is_err() && check::jwt("a..c").is_err());
        assert!(check::jwt("a.b+/.c").is_err(), "base64url, not base64");
        assert!(check::secret("has space").is_err());
        assert!(check::delivery("WebSocket").is_ok() && check::delivery("poll").is_err());
    }

    #[test]
    fn toml_strings_read_back_as_written() {
        use figment::providers::{Format, Toml};
        for value in [
            "plain",
            "quote \" and backslash \\ and 'single'",
            "line\nbreak\ttab\r\u{7f}\u{1b}\u{85}",
            "ünïcödé ✓",
        ] {
            let text = format!("key = {}\n", toml_string(value));
            let read: String = figment::Figment::from(Toml::string(&text))
                .extract_inner("key")
                .unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(read, value);
        }
    }

    #[test]
    fn the_rendered_file_loads_back_to_the_answers() {
        let answers = Answers {
            discord: Some(DiscordAnswers {
                application_id: APP.into(),
                guild_id: GUILD.into(),
                channel_id: CHANNEL.into(),
                token: BOT_TOKEN_VALUE.into(),
                public_key: None,
            }),
            ringcentral: Some(RingCentralAnswers {
                server_url: "https://platform.devtest.ringcentral.com".into(),
                client_id: "id \"quoted\"".into(),
                client_secret: CLIENT_SECRET_VALUE.into(),
                jwt: JWT_VALUE.into(),
                delivery: Delivery::WebSocket,
            }),
            public_url: None,
            kick_roles: vec![APP.into(), GUILD.into()],
            store_path: "data/x.sqlite3".into(),
        };
        let tokens = Tokens::take_or_generate(&nothing_given()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ringside.toml");
        std::fs::write(&path, render(&answers, &tokens)).unwrap();
        let settings = Settings::from_sources(Some(&path), &[]).unwrap();
        let rc = settings.ringcentral.credentials.unwrap();
        assert_eq!(rc.client_id, "id \"quoted\"");
        assert_eq!(rc.jwt.expose_secret(), JWT_VALUE);
        let bot = settings.discord.bot.unwrap();
        assert_eq!(bot.channel_id, CHANNEL.parse::<u64>().unwrap());
        assert_eq!(settings.access.kick_roles.len(), 2);
        assert_eq!(
            settings.server.api_token.unwrap().expose_secret(),
            tokens.api.expose_secret()
        );
    }
}
