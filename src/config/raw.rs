//! The shape of the settings file: every key ringside knows, as raw text.
//!
//! These structs decide which keys exist (unknown ones are rejected by serde's
//! `deny_unknown_fields`); `validate` decides what their values mean. A key
//! that is absent is `None` and gets its default there.

use serde::{Deserialize, Serialize};

use super::lenient::{List, Scalar};

/// The sections, as written in TOML (`[server]`) and in environment variable
/// names (`RINGSIDE_SERVER__...`).
pub(super) const SECTIONS: [&str; 9] = [
    "server",
    "ringcentral",
    "discord",
    "announce",
    "privacy",
    "contacts",
    "access",
    "watch",
    "store",
];

#[derive(Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawSettings {
    pub server: RawServer,
    pub ringcentral: RawRingCentral,
    pub discord: RawDiscord,
    pub announce: RawAnnounce,
    pub privacy: RawPrivacy,
    pub contacts: RawContacts,
    pub access: RawAccess,
    pub watch: RawWatch,
    pub store: RawStore,
}

#[derive(Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawServer {
    pub listen: Option<Scalar>,
    pub admin_listen: Option<Scalar>,
    pub public_url: Option<Scalar>,
    pub max_body_bytes: Option<Scalar>,
    pub api_token: Option<Scalar>,
    pub header_read_timeout_secs: Option<Scalar>,
    pub idle_timeout_secs: Option<Scalar>,
    pub max_connections: Option<Scalar>,
    pub webhook_deadline_ms: Option<Scalar>,
}

#[derive(Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawRingCentral {
    pub server_url: Option<Scalar>,
    pub client_id: Option<Scalar>,
    pub client_secret: Option<Scalar>,
    pub jwt: Option<Scalar>,
    pub verification_token: Option<Scalar>,
    pub event_filters: Option<List>,
    pub host_extensions: Option<List>,
    pub subscription_expires_in: Option<Scalar>,
    pub reconcile_interval_secs: Option<Scalar>,
    pub watchdog_interval_secs: Option<Scalar>,
    pub kick_confirm_secs: Option<Scalar>,
    pub token_refresh_margin_secs: Option<Scalar>,
    pub auth_retry_secs: Option<Scalar>,
    pub request_timeout_secs: Option<Scalar>,
    pub light_requests_per_minute: Option<Scalar>,
    pub delivery: Option<Scalar>,
}

#[derive(Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawDiscord {
    pub token: Option<Scalar>,
    pub application_id: Option<Scalar>,
    pub guild_id: Option<Scalar>,
    pub channel_id: Option<Scalar>,
    pub public_key: Option<Scalar>,
    pub api_url: Option<Scalar>,
    pub confirm_secs: Option<Scalar>,
}

#[derive(Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawAnnounce {
    pub coalesce_ms: Option<Scalar>,
    pub stale_after_secs: Option<Scalar>,
    pub thread_per_conference: Option<Scalar>,
    pub roster_card: Option<Scalar>,
    pub roster_edit_ms: Option<Scalar>,
    pub feed: Option<Scalar>,
    pub timeline: Option<Scalar>,
}

#[derive(Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawPrivacy {
    pub phone_numbers: Option<Scalar>,
}

#[derive(Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawContacts {
    pub path: Option<Scalar>,
    pub default_country_code: Option<Scalar>,
}

#[derive(Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawAccess {
    pub list_roles: Option<List>,
    pub list_users: Option<List>,
    pub kick_roles: Option<List>,
    pub kick_users: Option<List>,
    pub kick_enabled: Option<Scalar>,
    pub kick_limit_per_minute: Option<Scalar>,
}

#[derive(Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawWatch {
    pub numbers: Option<List>,
    pub names: Option<List>,
    pub alert_roles: Option<List>,
}

#[derive(Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawStore {
    pub path: Option<Scalar>,
    pub retention_days: Option<Scalar>,
    pub audit_retention_days: Option<Scalar>,
}
