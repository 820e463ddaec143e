//! From raw text to checked [`Settings`]: defaults, types, ranges and groups.
//!
//! Each check names its key in the error. A key whose value is an empty string
//! counts as not set: it gets its default, or stays `None`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use super::error::ConfigError;
use super::lenient::{List, Scalar};
use super::raw::{
    RawAccess, RawAnnounce, RawContacts, RawDiscord, RawPrivacy, RawRingCentral, RawServer,
    RawSettings, RawStore, RawWatch,
};
use super::settings::{
    Access, Announce, Contacts, Delivery, Discord, DiscordBot, PhoneNumbers, Privacy, PublicKey,
    RingCentral, RingCentralCredentials, Server, Settings, StoreSettings, Watch,
};

type Result<T> = std::result::Result<T, ConfigError>;

/// Built-in defaults, for the keys that have one.
pub(super) mod defaults {
    pub const LISTEN: &str = "127.0.0.1:8080";
    pub const ADMIN_LISTEN: &str = "127.0.0.1:9090";
    pub const MAX_BODY_BYTES: u64 = 65_536;
    pub const HEADER_READ_TIMEOUT_SECS: u64 = 10;
    pub const IDLE_TIMEOUT_SECS: u64 = 60;
    pub const MAX_CONNECTIONS: u64 = 512;
    pub const WEBHOOK_DEADLINE_MS: u64 = 2_500;
    pub const RINGCENTRAL_SERVER_URL: &str = "https://platform.ringcentral.com";
    pub const SUBSCRIPTION_EXPIRES_IN: u64 = 604_800;
    pub const RECONCILE_INTERVAL_SECS: u64 = 20;
    pub const WATCHDOG_INTERVAL_SECS: u64 = 300;
    pub const KICK_CONFIRM_SECS: u64 = 15;
    pub const TOKEN_REFRESH_MARGIN_SECS: u64 = 60;
    pub const AUTH_RETRY_SECS: u64 = 15;
    pub const REQUEST_TIMEOUT_SECS: u64 = 10;
    pub const LIGHT_REQUESTS_PER_MINUTE: u64 = 50;
    pub const DISCORD_API_URL: &str = "https://discord.com";
    pub const DISCORD_CONFIRM_SECS: u64 = 60;
    pub const COALESCE_MS: u64 = 0;
    pub const STALE_AFTER_SECS: u64 = 600;
    pub const THREAD_PER_CONFERENCE: bool = false;
    pub const ROSTER_CARD: bool = true;
    pub const ROSTER_EDIT_MS: u64 = 2000;
    /// Faster edits than this only spend Discord's edit budget on states nobody reads.
    pub const MIN_ROSTER_EDIT_MS: u64 = 300;
    /// A card that lags a minute behind its call no longer answers "who is on now".
    pub const MAX_ROSTER_EDIT_MS: u64 = 60_000;
    pub const FEED: bool = true;
    pub const TIMELINE: bool = true;
    pub const KICK_ENABLED: bool = true;
    pub const KICK_LIMIT_PER_MINUTE: u64 = 5;
    pub const STORE_PATH: &str = "data/ringside.sqlite3";
    pub const RETENTION_DAYS: u64 = 30;
    pub const AUDIT_RETENTION_DAYS: u64 = 365;
}

/// RingCentral's limit on a webhook verification token, in characters; the API token shares it.
pub(super) const VERIFICATION_TOKEN_MAX: usize = 64;
/// The shortest configured secret token ringside accepts: a guessable token would open the
/// webhook (or the operator API) to anyone who can reach it. Generated tokens are 32 characters.
pub(super) const TOKEN_MIN: usize = 16;

/// The longest country calling code (ITU-T E.164 codes have 1 to 3 digits).
pub(super) const COUNTRY_CODE_MAX_DIGITS: usize = 3;

const RINGCENTRAL_GROUP: &str = "ringcentral.client_id, client_secret and jwt go together";
const DISCORD_GROUP: &str = "discord.token, application_id, guild_id and channel_id go together";

pub(super) fn settings(raw: RawSettings) -> Result<Settings> {
    let server = server(raw.server)?;
    let ringcentral = ringcentral(raw.ringcentral, server.public_url.is_some())?;
    let settings = Settings {
        server,
        ringcentral,
        discord: discord(raw.discord)?,
        announce: announce(raw.announce)?,
        privacy: privacy(raw.privacy)?,
        contacts: contacts(raw.contacts)?,
        access: access(raw.access)?,
        watch: watch(raw.watch)?,
        store: store(raw.store)?,
        file: None,
    };
    across_sections(&settings)?;
    Ok(settings)
}

/// Rules that tie keys of different sections together.
fn across_sections(settings: &Settings) -> Result<()> {
    if settings.ringcentral.credentials.is_some()
        && settings.ringcentral.delivery == Delivery::Webhook
        && settings.server.public_url.is_none()
    {
        return Err(ConfigError::Missing {
            key: "server.public_url",
            group: "ringcentral.delivery = \"webhook\" needs the address RingCentral reaches: {server.public_url}/webhooks/ringcentral; without one, leave ringcentral.delivery unset or \"websocket\"",
        });
    }
    Ok(())
}

/// `ringcentral.delivery`: as set, else `webhook` when RingCentral can reach ringside (a public
/// URL is set) and `websocket` otherwise; with the reason, for `ringside check`.
fn delivery(value: Option<Scalar>, public_url: bool) -> Result<(Delivery, &'static str)> {
    match text(value).as_deref() {
        None if public_url => Ok((
            Delivery::Webhook,
            "server.public_url is set and ringcentral.delivery is not",
        )),
        None => Ok((
            Delivery::WebSocket,
            "no server.public_url, so no public address is needed",
        )),
        Some(value) if value.eq_ignore_ascii_case("websocket") => {
            Ok((Delivery::WebSocket, "ringcentral.delivery = \"websocket\""))
        }
        Some(value) if value.eq_ignore_ascii_case("webhook") => {
            Ok((Delivery::Webhook, "ringcentral.delivery = \"webhook\""))
        }
        Some(value) => Err(ConfigError::invalid(
            "ringcentral.delivery",
            format!("{value:?} is not websocket or webhook"),
        )),
    }
}

fn server(raw: RawServer) -> Result<Server> {
    Ok(Server {
        listen: socket_addr("server.listen", raw.listen, defaults::LISTEN)?,
        admin_listen: socket_addr(
            "server.admin_listen",
            raw.admin_listen,
            defaults::ADMIN_LISTEN,
        )?,
        public_url: text(raw.public_url)
            .map(|url| http_url("server.public_url", url))
            .transpose()?,
        max_body_bytes: to_usize(
            "server.max_body_bytes",
            whole(
                "server.max_body_bytes",
                raw.max_body_bytes,
                defaults::MAX_BODY_BYTES,
                1024,
                u64::MAX,
            )?,
        )?,
        api_token: text(raw.api_token)
            .map(|token| secret_token("server.api_token", token))
            .transpose()?,
        header_read_timeout: Duration::from_secs(whole(
            "server.header_read_timeout_secs",
            raw.header_read_timeout_secs,
            defaults::HEADER_READ_TIMEOUT_SECS,
            1,
            86_400,
        )?),
        idle_timeout: Duration::from_secs(whole(
            "server.idle_timeout_secs",
            raw.idle_timeout_secs,
            defaults::IDLE_TIMEOUT_SECS,
            1,
            86_400,
        )?),
        max_connections: to_usize(
            "server.max_connections",
            whole(
                "server.max_connections",
                raw.max_connections,
                defaults::MAX_CONNECTIONS,
                1,
                1_000_000,
            )?,
        )?,
        webhook_deadline: Duration::from_millis(whole(
            "server.webhook_deadline_ms",
            raw.webhook_deadline_ms,
            defaults::WEBHOOK_DEADLINE_MS,
            1,
            60_000,
        )?),
    })
}

fn ringcentral(raw: RawRingCentral, public_url: bool) -> Result<RingCentral> {
    let (delivery, delivery_reason) = delivery(raw.delivery, public_url)?;
    let credentials = match (text(raw.client_id), text(raw.client_secret), text(raw.jwt)) {
        (None, None, None) => None,
        (Some(client_id), Some(client_secret), Some(jwt)) => Some(RingCentralCredentials {
            client_id,
            client_secret: client_secret.into(),
            jwt: jwt.into(),
        }),
        (client_id, client_secret, _) => {
            let key = if client_id.is_none() {
                "ringcentral.client_id"
            } else if client_secret.is_none() {
                "ringcentral.client_secret"
            } else {
                "ringcentral.jwt"
            };
            return Err(ConfigError::Missing {
                key,
                group: RINGCENTRAL_GROUP,
            });
        }
    };

    Ok(RingCentral {
        server_url: http_url(
            "ringcentral.server_url",
            text(raw.server_url).unwrap_or_else(|| defaults::RINGCENTRAL_SERVER_URL.into()),
        )?,
        credentials,
        verification_token: text(raw.verification_token)
            .map(|token| secret_token("ringcentral.verification_token", token))
            .transpose()?,
        event_filters: strings(raw.event_filters),
        host_extensions: strings(raw.host_extensions),
        subscription_expires_in: to_u32(whole(
            "ringcentral.subscription_expires_in",
            raw.subscription_expires_in,
            defaults::SUBSCRIPTION_EXPIRES_IN,
            60,
            u32::MAX.into(),
        )?),
        reconcile_interval_secs: whole(
            "ringcentral.reconcile_interval_secs",
            raw.reconcile_interval_secs,
            defaults::RECONCILE_INTERVAL_SECS,
            1,
            u64::MAX,
        )?,
        watchdog_interval_secs: whole(
            "ringcentral.watchdog_interval_secs",
            raw.watchdog_interval_secs,
            defaults::WATCHDOG_INTERVAL_SECS,
            1,
            u64::MAX,
        )?,
        kick_confirm_secs: whole(
            "ringcentral.kick_confirm_secs",
            raw.kick_confirm_secs,
            defaults::KICK_CONFIRM_SECS,
            1,
            u64::MAX,
        )?,
        token_refresh_margin_secs: whole(
            "ringcentral.token_refresh_margin_secs",
            raw.token_refresh_margin_secs,
            defaults::TOKEN_REFRESH_MARGIN_SECS,
            0,
            u64::MAX,
        )?,
        auth_retry_secs: whole(
            "ringcentral.auth_retry_secs",
            raw.auth_retry_secs,
            defaults::AUTH_RETRY_SECS,
            1,
            3600,
        )?,
        request_timeout_secs: whole(
            "ringcentral.request_timeout_secs",
            raw.request_timeout_secs,
            defaults::REQUEST_TIMEOUT_SECS,
            1,
            300,
        )?,
        light_requests_per_minute: u32::try_from(whole(
            "ringcentral.light_requests_per_minute",
            raw.light_requests_per_minute,
            defaults::LIGHT_REQUESTS_PER_MINUTE,
            1,
            10_000,
        )?)
        .unwrap_or(u32::MAX),
        delivery,
        delivery_reason,
    })
}

fn discord(raw: RawDiscord) -> Result<Discord> {
    let bot = match (
        text(raw.token),
        text(raw.application_id),
        text(raw.guild_id),
        text(raw.channel_id),
    ) {
        (None, None, None, None) => None,
        (Some(token), Some(application_id), Some(guild_id), Some(channel_id)) => Some(DiscordBot {
            token: token.into(),
            application_id: snowflake("discord.application_id", &application_id)?,
            guild_id: snowflake("discord.guild_id", &guild_id)?,
            channel_id: snowflake("discord.channel_id", &channel_id)?,
        }),
        (token, application_id, guild_id, _) => {
            let key = if token.is_none() {
                "discord.token"
            } else if application_id.is_none() {
                "discord.application_id"
            } else if guild_id.is_none() {
                "discord.guild_id"
            } else {
                "discord.channel_id"
            };
            return Err(ConfigError::Missing {
                key,
                group: DISCORD_GROUP,
            });
        }
    };

    Ok(Discord {
        bot,
        public_key: text(raw.public_key).map(public_key).transpose()?,
        api_url: http_url(
            "discord.api_url",
            text(raw.api_url).unwrap_or_else(|| defaults::DISCORD_API_URL.into()),
        )?,
        confirm_secs: whole(
            "discord.confirm_secs",
            raw.confirm_secs,
            defaults::DISCORD_CONFIRM_SECS,
            1,
            u64::MAX,
        )?,
    })
}

fn announce(raw: RawAnnounce) -> Result<Announce> {
    Ok(Announce {
        coalesce_ms: whole(
            "announce.coalesce_ms",
            raw.coalesce_ms,
            defaults::COALESCE_MS,
            0,
            u64::MAX,
        )?,
        stale_after_secs: whole(
            "announce.stale_after_secs",
            raw.stale_after_secs,
            defaults::STALE_AFTER_SECS,
            1,
            u64::MAX,
        )?,
        thread_per_conference: boolean(
            "announce.thread_per_conference",
            raw.thread_per_conference,
            defaults::THREAD_PER_CONFERENCE,
        )?,
        roster_card: boolean(
            "announce.roster_card",
            raw.roster_card,
            defaults::ROSTER_CARD,
        )?,
        roster_edit_ms: whole(
            "announce.roster_edit_ms",
            raw.roster_edit_ms,
            defaults::ROSTER_EDIT_MS,
            defaults::MIN_ROSTER_EDIT_MS,
            defaults::MAX_ROSTER_EDIT_MS,
        )?,
        feed: boolean("announce.feed", raw.feed, defaults::FEED)?,
        timeline: boolean("announce.timeline", raw.timeline, defaults::TIMELINE)?,
    })
}

fn privacy(raw: RawPrivacy) -> Result<Privacy> {
    let phone_numbers = match text(raw.phone_numbers) {
        None => PhoneNumbers::default(),
        Some(value) => PhoneNumbers::ALL
            .into_iter()
            .find(|choice| choice.as_str() == value)
            .ok_or_else(|| {
                ConfigError::invalid(
                    "privacy.phone_numbers",
                    format!("{value:?} is not one of masked, full or hidden"),
                )
            })?,
    };
    Ok(Privacy { phone_numbers })
}

fn contacts(raw: RawContacts) -> Result<Contacts> {
    let default_country_code = text(raw.default_country_code)
        .map(|code| {
            // Digits only, no `+`: it is the code written before a national number.
            let fits = (1..=COUNTRY_CODE_MAX_DIGITS).contains(&code.len())
                && code.bytes().all(|b| b.is_ascii_digit())
                && !code.starts_with('0');
            if fits {
                Ok(code)
            } else {
                Err(ConfigError::invalid(
                    "contacts.default_country_code",
                    format!(
                        "{code:?} is not a country calling code (1 to {COUNTRY_CODE_MAX_DIGITS} digits, e.g. \"1\" or \"44\")"
                    ),
                ))
            }
        })
        .transpose()?;
    Ok(Contacts {
        path: text(raw.path).map(PathBuf::from),
        default_country_code,
    })
}

fn access(raw: RawAccess) -> Result<Access> {
    Ok(Access {
        list_roles: snowflakes("access.list_roles", raw.list_roles)?,
        list_users: snowflakes("access.list_users", raw.list_users)?,
        kick_roles: snowflakes("access.kick_roles", raw.kick_roles)?,
        kick_users: snowflakes("access.kick_users", raw.kick_users)?,
        kick_enabled: boolean(
            "access.kick_enabled",
            raw.kick_enabled,
            defaults::KICK_ENABLED,
        )?,
        kick_limit_per_minute: to_u32(whole(
            "access.kick_limit_per_minute",
            raw.kick_limit_per_minute,
            defaults::KICK_LIMIT_PER_MINUTE,
            1,
            u32::MAX.into(),
        )?),
    })
}

/// The watch list: numbers must be E.164 (a national number would match nobody, silently),
/// names must say something (an empty substring would match everyone).
fn watch(raw: RawWatch) -> Result<Watch> {
    let numbers = strings(raw.numbers)
        .into_iter()
        .map(|number| {
            crate::util::phone::e164(&number, None).ok_or_else(|| {
                ConfigError::invalid(
                    "watch.numbers",
                    format!(
                        "{number:?} is not an E.164 number (+ and the country code, e.g. \"+13105550199\")"
                    ),
                )
            })
        })
        .collect::<Result<Vec<String>>>()?;
    let names = strings(raw.names)
        .into_iter()
        .map(|name| {
            let trimmed = name.trim();
            if trimmed.is_empty() {
                Err(ConfigError::invalid(
                    "watch.names",
                    "has an empty name, which would match every caller",
                ))
            } else {
                Ok(trimmed.to_owned())
            }
        })
        .collect::<Result<Vec<String>>>()?;
    Ok(Watch {
        numbers,
        names,
        alert_roles: snowflakes("watch.alert_roles", raw.alert_roles)?,
    })
}

fn store(raw: RawStore) -> Result<StoreSettings> {
    Ok(StoreSettings {
        path: PathBuf::from(text(raw.path).unwrap_or_else(|| defaults::STORE_PATH.into())),
        retention_days: to_u32(whole(
            "store.retention_days",
            raw.retention_days,
            defaults::RETENTION_DAYS,
            1,
            u32::MAX.into(),
        )?),
        audit_retention_days: to_u32(whole(
            "store.audit_retention_days",
            raw.audit_retention_days,
            defaults::AUDIT_RETENTION_DAYS,
            1,
            u32::MAX.into(),
        )?),
    })
}

/// The text of a value, or `None` when it is absent or empty.
fn text(value: Option<Scalar>) -> Option<String> {
    value.map(|s| s.0).filter(|s| !s.is_empty())
}

fn strings(value: Option<List>) -> Vec<String> {
    value
        .map(|list| list.0.into_iter().map(|s| s.0).collect())
        .unwrap_or_default()
}

fn socket_addr(key: &str, value: Option<Scalar>, default: &str) -> Result<SocketAddr> {
    let value = text(value).unwrap_or_else(|| default.to_owned());
    value.parse().map_err(|_| {
        ConfigError::invalid(
            key,
            format!("{value:?} is not a socket address (e.g. {default})"),
        )
    })
}

/// A whole number between `min` and `max`, or `default` when not set.
fn whole(key: &str, value: Option<Scalar>, default: u64, min: u64, max: u64) -> Result<u64> {
    let Some(value) = text(value) else {
        return Ok(default);
    };
    let number: u64 = match value.parse() {
        Ok(number) => number,
        Err(_) if value.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(ConfigError::invalid(
                key,
                format!("{value:?} is too large (at most {max})"),
            ));
        }
        Err(_) if value.starts_with('-') && value[1..].parse::<u64>().is_ok() => {
            return Err(ConfigError::invalid(
                key,
                format!("{value:?} is negative (at least {min})"),
            ));
        }
        Err(_) => {
            return Err(ConfigError::invalid(
                key,
                format!("{value:?} is not a whole number"),
            ));
        }
    };
    if number < min {
        Err(ConfigError::invalid(
            key,
            format!("{value:?} is too small (at least {min})"),
        ))
    } else if number > max {
        Err(ConfigError::invalid(
            key,
            format!("{value:?} is too large (at most {max})"),
        ))
    } else {
        Ok(number)
    }
}

/// Narrows a number `whole` has already bounded by `u32::MAX`.
fn to_u32(number: u64) -> u32 {
    u32::try_from(number).unwrap_or(u32::MAX)
}

fn to_usize(key: &str, number: u64) -> Result<usize> {
    usize::try_from(number).map_err(|_| {
        ConfigError::invalid(
            key,
            format!(
                "\"{number}\" is too large for this machine (at most {})",
                usize::MAX
            ),
        )
    })
}

fn boolean(key: &str, value: Option<Scalar>, default: bool) -> Result<bool> {
    match text(value) {
        None => Ok(default),
        Some(value) if value.eq_ignore_ascii_case("true") => Ok(true),
        Some(value) if value.eq_ignore_ascii_case("false") => Ok(false),
        Some(value) => Err(ConfigError::invalid(
            key,
            format!("{value:?} is not true or false"),
        )),
    }
}

/// A Discord id: a positive 64-bit snowflake, written as a number or a string.
fn snowflake(key: &str, value: &str) -> Result<u64> {
    match value.parse::<u64>() {
        Ok(id) if id > 0 && !value.starts_with('+') => Ok(id),
        _ => Err(ConfigError::invalid(
            key,
            format!(
                "{value:?} is not a Discord id (a positive whole number such as 123456789012345678)"
            ),
        )),
    }
}

fn snowflakes(key: &str, value: Option<List>) -> Result<Vec<u64>> {
    strings(value).iter().map(|id| snowflake(key, id)).collect()
}

/// An absolute http(s) URL without user info, query or fragment, kept as written except for
/// trailing slashes, which are removed so paths can be appended with `/`. Errors never show the
/// value: a URL may carry a password or a token in its user info or query.
fn http_url(key: &str, value: String) -> Result<String> {
    let bad = |why: &str| {
        ConfigError::invalid(
            key,
            format!("is not {why} (e.g. https://ringside.example.com)"),
        )
    };
    if value.trim() != value {
        return Err(bad("a URL without surrounding spaces"));
    }
    let url = reqwest::Url::parse(&value).map_err(|_| bad("an absolute http(s) URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(bad("an absolute http(s) URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::invalid(
            key,
            "must not contain a user name or password",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("a URL without ?query or #fragment"));
    }
    Ok(value.trim_end_matches('/').to_owned())
}

/// A secret token ringside compares requests against (`ringcentral.verification_token`,
/// which RingCentral echoes in an HTTP header, and `server.api_token`): 16 to 64 visible ASCII
/// characters. Errors never show it.
fn secret_token(key: &str, value: String) -> Result<SecretString> {
    let length = value.chars().count();
    if length > VERIFICATION_TOKEN_MAX {
        return Err(ConfigError::invalid(
            key,
            format!("is {length} characters long (at most {VERIFICATION_TOKEN_MAX})"),
        ));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::invalid(
            key,
            "may contain only visible ASCII characters (no spaces)",
        ));
    }
    if length < TOKEN_MIN {
        return Err(ConfigError::invalid(
            key,
            format!(
                "is {length} characters long (at least {TOKEN_MIN}: a short token can be guessed)"
            ),
        ));
    }
    Ok(value.into())
}

/// Discord's application public key: 32 bytes as 64 hex characters, a valid Ed25519 key.
fn public_key(value: String) -> Result<PublicKey> {
    if value.len() != 64 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ConfigError::invalid(
            "discord.public_key",
            format!("{value:?} is not 64 hexadecimal characters"),
        ));
    }
    PublicKey::from_hex(&value).ok_or_else(|| {
        ConfigError::invalid(
            "discord.public_key",
            format!("{value:?} is not a valid Ed25519 public key"),
        )
    })
}
