//! The validated settings handed to the rest of ringside.
//!
//! Everything here has already been checked: addresses parse, numbers are in
//! range, ids are real snowflakes and credential groups are complete. Secrets
//! are [`SecretString`]s, so `Debug` shows `[REDACTED]` instead of them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

/// All of ringside's settings, one field per `[section]` of the settings file.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `[server]`: the HTTP listeners.
    pub server: Server,
    /// `[ringcentral]`: the telephony side.
    pub ringcentral: RingCentral,
    /// `[discord]`: the chat side.
    pub discord: Discord,
    /// `[announce]`: how joins and leaves are posted.
    pub announce: Announce,
    /// `[privacy]`: what is shown about callers.
    pub privacy: Privacy,
    /// `[contacts]`: the team's names for callers.
    pub contacts: Contacts,
    /// `[access]`: who may use the Discord commands.
    pub access: Access,
    /// `[watch]`: callers whose joins alert the team.
    pub watch: Watch,
    /// `[store]`: the local database.
    pub store: StoreSettings,
    /// The settings file these were read from (none: defaults and the environment only); the
    /// watch list and `[access]` are read from it again when it changes.
    pub file: Option<PathBuf>,
}

/// `[server]`
#[derive(Debug, Clone)]
pub struct Server {
    /// `server.listen`: public listener for webhooks and Discord interactions.
    pub listen: SocketAddr,
    /// `server.admin_listen`: listener for health and metrics.
    pub admin_listen: SocketAddr,
    /// `server.public_url`: the absolute http(s) URL RingCentral and Discord
    /// reach `listen` at, without a trailing `/`. `None`: not reachable from
    /// outside (no webhook subscription).
    pub public_url: Option<String>,
    /// `server.max_body_bytes`: largest request body accepted (at least 1024).
    pub max_body_bytes: usize,
    /// `server.api_token`: bearer token for the admin API (16 to 64 characters); `None`
    /// disables it.
    pub api_token: Option<SecretString>,
    /// `server.header_read_timeout_secs`: a connection must send a whole request head within
    /// this (at least 1 s).
    pub header_read_timeout: Duration,
    /// `server.idle_timeout_secs`: a connection with no bytes either way for this long is
    /// closed (at least 1 s).
    pub idle_timeout: Duration,
    /// `server.max_connections`: open connections per listener (one-port mode: one cap for
    /// both route sets); a connection beyond it waits for a slot (at least 1).
    pub max_connections: usize,
    /// `server.webhook_deadline_ms`: a notification carrying the right token is answered 200 or
    /// 503 within this (at least 1 ms).
    pub webhook_deadline: Duration,
}

/// `[ringcentral]`
#[derive(Debug, Clone)]
pub struct RingCentral {
    /// `ringcentral.server_url`: the platform, absolute http(s) URL without a trailing `/`.
    pub server_url: String,
    /// `ringcentral.client_id`, `client_secret` and `jwt`, all or none.
    /// `None`: no RingCentral account (local mode for this side).
    pub credentials: Option<RingCentralCredentials>,
    /// `ringcentral.verification_token`: 16 to 64 visible ASCII characters
    /// that RingCentral sends back with every webhook.
    pub verification_token: Option<SecretString>,
    /// `ringcentral.event_filters`: empty means the built-in default
    /// (account telephony sessions and the subscription reminder).
    pub event_filters: Vec<String>,
    /// `ringcentral.host_extensions`: extensions whose conferences are watched;
    /// empty means all.
    pub host_extensions: Vec<String>,
    /// `ringcentral.subscription_expires_in`: requested webhook lifetime, seconds (at least 60).
    pub subscription_expires_in: u32,
    /// `ringcentral.reconcile_interval_secs`: how often live calls are re-read (at least 1).
    pub reconcile_interval_secs: u64,
    /// `ringcentral.watchdog_interval_secs`: how often the subscription is checked (at least 1).
    pub watchdog_interval_secs: u64,
    /// `ringcentral.kick_confirm_secs`: how long to wait for a kicked party to leave (at least 1).
    pub kick_confirm_secs: u64,
    /// `ringcentral.token_refresh_margin_secs`: refresh the access token this long before it expires.
    pub token_refresh_margin_secs: u64,
    /// `ringcentral.auth_retry_secs`: the first wait after a failed token request; doubles up to
    /// five minutes (RingCentral's Auth group allows 5 requests a minute).
    pub auth_retry_secs: u64,
    /// `ringcentral.request_timeout_secs`: the timeout of every RingCentral request.
    pub request_timeout_secs: u64,
    /// `ringcentral.light_requests_per_minute`: the app's Light rate-group budget, which
    /// reconciliation and kicks share (kicks first).
    pub light_requests_per_minute: u32,
    /// `ringcentral.delivery`: how notifications arrive (meaningful with credentials).
    pub delivery: Delivery,
    /// Why `delivery` is what it is, in words (`ringside check` says it).
    pub delivery_reason: &'static str,
}

/// How RingCentral's notifications reach ringside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Over a WebSocket ringside opens: no public address needed.
    WebSocket,
    /// To `{server.public_url}/webhooks/ringcentral`.
    Webhook,
}

impl Delivery {
    /// The name used in the settings file.
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::WebSocket => "websocket",
            Delivery::Webhook => "webhook",
        }
    }
}

/// The RingCentral JWT-flow credentials (`client_id`, `client_secret`, `jwt`).
#[derive(Debug, Clone)]
pub struct RingCentralCredentials {
    /// The app's client id, exactly as written.
    pub client_id: String,
    /// The app's client secret.
    pub client_secret: SecretString,
    /// The user's JWT credential.
    pub jwt: SecretString,
}

/// `[discord]`
#[derive(Debug, Clone)]
pub struct Discord {
    /// `discord.token`, `application_id`, `guild_id` and `channel_id`, all or
    /// none. `None`: no Discord bot (local mode for this side).
    pub bot: Option<DiscordBot>,
    /// `discord.public_key`: the application's Ed25519 public key (64 hex characters in the
    /// settings), for verifying interactions.
    pub public_key: Option<PublicKey>,
    /// `discord.api_url`: absolute http(s) URL without a trailing `/`.
    pub api_url: String,
    /// `discord.confirm_secs`: how long a confirmation button stays valid (at least 1).
    pub confirm_secs: u64,
}

/// An Ed25519 public key: checked to be a point on the curve when the settings are loaded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// From 64 hex characters (either case); `None` unless they are a valid Ed25519 key.
    pub fn from_hex(hex: &str) -> Option<PublicKey> {
        if hex.len() != 64 || !hex.is_ascii() {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (index, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(index * 2..index * 2 + 2)?, 16).ok()?;
        }
        // serenity's verifier is the one that will use it: ask it whether it can.
        serenity::interactions_endpoint::Verifier::try_new(bytes)
            .ok()
            .map(|_| PublicKey(bytes))
    }

    pub fn bytes(&self) -> [u8; 32] {
        self.0
    }

    /// Lower-case hex, as Discord shows it in the Developer Portal.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|byte| format!("{byte:02x}")).collect()
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

/// The Discord bot identity and where it posts.
#[derive(Debug, Clone)]
pub struct DiscordBot {
    /// The bot token.
    pub token: SecretString,
    /// The application (snowflake) id.
    pub application_id: u64,
    /// The server (guild) id.
    pub guild_id: u64,
    /// The channel announcements go to.
    pub channel_id: u64,
}

/// `[announce]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    /// `announce.coalesce_ms`: an optional extra wait, from the first pending event, before a
    /// message leaves (0, the default: none; a message leaves as soon as the channel can take
    /// it, and events that arrive meanwhile share it).
    pub coalesce_ms: u64,
    /// `announce.stale_after_secs`: events received longer ago than this are summarised, not
    /// replayed, after an outage.
    pub stale_after_secs: u64,
    /// `announce.thread_per_conference`: post each conference in its own thread.
    pub thread_per_conference: bool,
    /// `announce.roster_card`: one message per conference, edited in place to show who is on
    /// the call, and at the end everyone who was.
    pub roster_card: bool,
    /// `announce.roster_edit_ms`: how long a roster card waits for its conference to settle
    /// before it is edited (at least 300).
    pub roster_edit_ms: u64,
    /// `announce.feed`: the join and leave lines (off: only the roster cards).
    pub feed: bool,
    /// `announce.timeline`: a picture of who was on the call when, at each conference's end.
    pub timeline: bool,
}

/// `[privacy]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Privacy {
    /// `privacy.phone_numbers`: how callers' numbers are shown.
    pub phone_numbers: PhoneNumbers,
}

/// How phone numbers appear in Discord (`masked`, `full` or `hidden`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PhoneNumbers {
    /// Only the last digits are shown.
    #[default]
    Masked,
    /// The whole number is shown.
    Full,
    /// No number is shown.
    Hidden,
}

impl PhoneNumbers {
    /// Every choice, in the order documented.
    pub const ALL: [PhoneNumbers; 3] = [
        PhoneNumbers::Masked,
        PhoneNumbers::Full,
        PhoneNumbers::Hidden,
    ];

    /// The name used in the settings file.
    pub fn as_str(self) -> &'static str {
        match self {
            PhoneNumbers::Masked => "masked",
            PhoneNumbers::Full => "full",
            PhoneNumbers::Hidden => "hidden",
        }
    }
}

/// `[contacts]`
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contacts {
    /// `contacts.path`: a CSV file of `number,name` lines whose names win over caller ID
    /// (`crate::conference::contacts` reads it). `None`: no contacts.
    pub path: Option<PathBuf>,
    /// `contacts.default_country_code`: 1 to 3 digits (`"1"`, `"44"`); with it, numbers
    /// without `+` (in the file and from RingCentral) are read as national numbers of that
    /// country. `None`: only E.164 numbers (`+` and country code) are read.
    pub default_country_code: Option<String>,
}

/// `[access]`: Discord role and user ids allowed to use the commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// `access.list_roles`: roles that may list conference participants.
    pub list_roles: Vec<u64>,
    /// `access.list_users`: users that may list conference participants.
    pub list_users: Vec<u64>,
    /// `access.kick_roles`: roles that may remove a participant.
    pub kick_roles: Vec<u64>,
    /// `access.kick_users`: users that may remove a participant.
    pub kick_users: Vec<u64>,
    /// `access.kick_enabled`: whether removing participants is offered at all.
    pub kick_enabled: bool,
    /// `access.kick_limit_per_minute`: removals allowed per minute (at least 1).
    pub kick_limit_per_minute: u32,
}

/// `[watch]`: the watch list. A caller on it who joins a conference gets an alert in the
/// channel that mentions `alert_roles` (`crate::conference::watch` matches, the Discord side
/// posts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Watch {
    /// `watch.numbers`: numbers in E.164 (`+` and the country code), as written with spaces,
    /// dashes, dots and parentheses taken out.
    pub numbers: Vec<String>,
    /// `watch.names`: case-insensitive substrings, matched against every name known for a caller
    /// (caller ID, the contact's, the directory's); kept trimmed, never empty.
    pub names: Vec<String>,
    /// `watch.alert_roles`: Discord role ids the alert mentions (the only mentions it allows).
    pub alert_roles: Vec<u64>,
}

impl Watch {
    /// Whether nobody is watched (no numbers, no names): no alert is ever posted.
    pub fn is_empty(&self) -> bool {
        self.numbers.is_empty() && self.names.is_empty()
    }
}

/// `[store]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    /// `store.path`: the SQLite database file.
    pub path: PathBuf,
    /// `store.retention_days`: how long conference history is kept (at least 1).
    pub retention_days: u32,
    /// `store.audit_retention_days`: how long the audit log is kept (at least 1).
    pub audit_retention_days: u32,
}
