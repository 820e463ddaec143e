//! Interaction JSON as Discord sends it (gateway `INTERACTION_CREATE` or the HTTP endpoint), and
//! Ed25519 signing for the HTTP endpoint with a fixed-seed key.
//!
//! Every builder's output carries the fields serenity 0.12.5 requires (`id, application_id, type,
//! token, version, locale, entitlements, attachment_size_limit`, `member` with `user, roles,
//! deaf, mute, flags`, …); `tests/it/fake_discord.rs` checks each deserializes into serenity's
//! `Interaction` with the right variant.

use super::{APPLICATION_ID, CHANNEL_ID, GUILD_ID};
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT: AtomicU64 = AtomicU64::new(1);

/// A fresh interaction id (a snowflake with the current time) and a token that names it.
fn fresh_id() -> u64 {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    ((super::now_ms().saturating_sub(1_420_070_400_000)) << 22) | (n & 0x3f_ffff)
}

/// Administrator.
pub const ADMINISTRATOR: u64 = 1 << 3;
/// What an ordinary member has in a channel: view, send, read history, use application commands.
pub const ORDINARY: u64 = (1 << 10) | (1 << 11) | (1 << 16) | (1 << 31);

/// The member who invokes an interaction.
#[derive(Debug, Clone)]
pub struct Member {
    pub user_id: u64,
    pub username: String,
    pub global_name: Option<String>,
    pub roles: Vec<u64>,
    /// The member's permissions in the channel, as Discord sends them (a decimal string).
    pub permissions: String,
    /// The guild the interaction comes from.
    pub guild_id: u64,
    pub nick: Option<String>,
}

impl Member {
    /// An ordinary member of the fake's guild, no roles.
    pub fn new(user_id: u64, username: &str) -> Member {
        Member {
            user_id,
            username: username.to_owned(),
            global_name: None,
            roles: Vec::new(),
            permissions: ORDINARY.to_string(),
            guild_id: GUILD_ID,
            nick: None,
        }
    }

    pub fn global_name(mut self, name: &str) -> Member {
        self.global_name = Some(name.to_owned());
        self
    }

    #[expect(dead_code, reason = "a builder step no test uses yet")]
    pub fn nick(mut self, nick: &str) -> Member {
        self.nick = Some(nick.to_owned());
        self
    }

    pub fn roles(mut self, roles: &[u64]) -> Member {
        self.roles = roles.to_vec();
        self
    }

    pub fn permissions(mut self, bits: u64) -> Member {
        self.permissions = bits.to_string();
        self
    }

    /// Adds the Administrator permission.
    pub fn admin(mut self) -> Member {
        let bits: u64 = self.permissions.parse().unwrap_or(0);
        self.permissions = (bits | ADMINISTRATOR).to_string();
        self
    }

    /// The interaction comes from another guild.
    pub fn guild(mut self, guild_id: u64) -> Member {
        self.guild_id = guild_id;
        self
    }

    pub fn user_json(&self) -> Value {
        json!({
            "id": self.user_id.to_string(),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": null,
            "public_flags": 0,
        })
    }

    /// The `member` object of an interaction.
    pub fn to_json(&self) -> Value {
        json!({
            "user": self.user_json(),
            "nick": self.nick,
            "avatar": null,
            "roles": self.roles.iter().map(u64::to_string).collect::<Vec<_>>(),
            "joined_at": "2025-01-01T00:00:00.000000+00:00",
            "premium_since": null,
            "deaf": false,
            "mute": false,
            "flags": 0,
            "pending": false,
            "permissions": self.permissions,
            "communication_disabled_until": null,
        })
    }
}

/// A string option, for `command`.
pub fn opt_str(name: &str, value: &str) -> Value {
    json!({"name": name, "type": 3, "value": value})
}

/// A boolean option, for `command`.
pub fn opt_bool(name: &str, value: bool) -> Value {
    json!({"name": name, "type": 5, "value": value})
}

/// The focused string option of an autocomplete, holding what the user typed so far.
pub fn focused_str(name: &str, partial: &str) -> Value {
    json!({"name": name, "type": 3, "value": partial, "focused": true})
}

/// The fields every interaction from a guild member carries.
fn base(kind: u8, member: &Member) -> Value {
    let id = fresh_id();
    json!({
        "id": id.to_string(),
        "application_id": APPLICATION_ID.to_string(),
        "type": kind,
        "token": format!("fake-interaction-token-{id}"),
        "version": 1,
        "guild_id": member.guild_id.to_string(),
        "channel_id": CHANNEL_ID.to_string(),
        "channel": {"id": CHANNEL_ID.to_string(), "type": 0, "name": "conference-calls"},
        "member": member.to_json(),
        "app_permissions": "2248473465835073",
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {"0": member.guild_id.to_string()},
        "context": 0,
        "attachment_size_limit": 8_388_608,
    })
}

/// The same interaction sent from a DM: no `guild_id` or `member`, the user at the top level.
pub fn in_dm(mut interaction: Value) -> Value {
    if let Some(map) = interaction.as_object_mut() {
        let user = map
            .remove("member")
            .map(|m| m["user"].clone())
            .unwrap_or(Value::Null);
        map.remove("guild_id");
        map.remove("guild_locale");
        map.insert("user".into(), user);
        map.insert("context".into(), json!(1));
        map.insert("authorizing_integration_owners".into(), json!({"0": "0"}));
        map.insert(
            "channel".into(),
            json!({"id": CHANNEL_ID.to_string(), "type": 1}),
        );
        if let Some(data) = map.get_mut("data").and_then(Value::as_object_mut) {
            data.remove("guild_id");
        }
    }
    interaction
}

/// A stable id for a command name (what Discord's registered command id would be).
pub fn command_id(name: &str) -> u64 {
    1_300_000_000_000_000_000
        + name.bytes().fold(0u64, |h, b| {
            h.wrapping_mul(131).wrapping_add(u64::from(b)) % 1_000_000_000
        })
}

fn command_data(name: &str, options: Value, member: &Member) -> Value {
    json!({
        "id": command_id(name).to_string(),
        "name": name,
        "type": 1,
        "options": if options.is_null() { json!([]) } else { options },
        "guild_id": member.guild_id.to_string(),
    })
}

/// A slash command (`type: 2`); `options` is a JSON array such as `[opt_str("caller", "x")]`.
pub fn command(name: &str, options: Value, member: &Member) -> Value {
    let mut interaction = base(2, member);
    interaction["data"] = command_data(name, options, member);
    interaction
}

/// An autocomplete request (`type: 4`); one option should be `focused_str(..)`.
pub fn autocomplete(name: &str, options_with_focused: Value, member: &Member) -> Value {
    let mut interaction = base(4, member);
    interaction["data"] = command_data(name, options_with_focused, member);
    interaction
}

/// A button click (`type: 3`) on `message` (Message JSON, such as a callback's response shaped
/// by [`message`]).
pub fn button(custom_id: &str, member: &Member, message: Value) -> Value {
    let mut interaction = base(3, member);
    interaction["data"] = json!({"custom_id": custom_id, "component_type": 2});
    interaction["message"] = message;
    interaction
}

/// A Message JSON for a button's `message`: an ephemeral bot message with `content` and
/// `components` (what the app's confirmation carried).
pub fn message(id: u64, content: &str, components: Value) -> Value {
    json!({
        "id": id.to_string(),
        "channel_id": CHANNEL_ID.to_string(),
        "author": {
            "id": super::BOT_USER_ID.to_string(),
            "username": super::BOT_USERNAME,
            "discriminator": "0",
            "global_name": null,
            "avatar": null,
            "bot": true,
        },
        "content": content,
        "timestamp": super::timestamp_now(),
        "edited_timestamp": null,
        "tts": false,
        "mention_everyone": false,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "pinned": false,
        "type": 20,
        "flags": 64,
        "components": if components.is_null() { json!([]) } else { components },
        "webhook_id": APPLICATION_ID.to_string(),
        "application_id": APPLICATION_ID.to_string(),
    })
}

/// Discord's PING (`type: 1`), sent to the HTTP endpoint.
pub fn ping() -> Value {
    let id = fresh_id();
    json!({
        "id": id.to_string(),
        "application_id": APPLICATION_ID.to_string(),
        "type": 1,
        "token": format!("fake-interaction-token-{id}"),
        "version": 1,
        "user": null,
    })
}

/// The fixed-seed signing key (`[7; 32]`).
pub fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

/// The public key, as the app's `discord.public_key` takes it (64 hex digits).
pub fn public_key_hex() -> String {
    hex(signing_key().verifying_key().as_bytes())
}

/// The public key's raw bytes.
pub fn public_key_bytes() -> [u8; 32] {
    signing_key().verifying_key().to_bytes()
}

/// `X-Signature-Ed25519` for `timestamp` + `body`.
pub fn sign(timestamp: &str, body: &[u8]) -> String {
    let mut message = timestamp.as_bytes().to_vec();
    message.extend_from_slice(body);
    hex(&signing_key().sign(&message).to_bytes())
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What to get wrong when posting a signed interaction.
#[derive(Debug, Clone, Copy, Default)]
pub struct Signing {
    /// Sign with another key.
    pub wrong_key: bool,
    /// Sign other bytes than the body sent.
    pub tampered_body: bool,
    /// Leave the signature headers out.
    pub unsigned: bool,
    /// Date the timestamp this many seconds in the past.
    pub age_secs: u64,
}

/// The current Unix time in seconds, as `X-Signature-Timestamp` carries it.
pub fn timestamp_now() -> u64 {
    super::now_ms() / 1000
}

/// POSTs `interaction` to `url` signed as Discord would (or wrongly, per `how`).
pub async fn post_signed(
    client: &reqwest::Client,
    url: &str,
    interaction: &Value,
    how: Signing,
) -> reqwest::Response {
    let body = serde_json::to_vec(interaction).expect("interaction JSON serializes");
    post_signed_bytes(client, url, body, how).await
}

/// POSTs raw `body` bytes to `url`, signed per `how`.
pub async fn post_signed_bytes(
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
    how: Signing,
) -> reqwest::Response {
    let timestamp = (timestamp_now() - how.age_secs).to_string();
    let signed_body = if how.tampered_body {
        let mut other = body.clone();
        other.push(b' ');
        other
    } else {
        body.clone()
    };
    let signature = if how.wrong_key {
        let mut message = timestamp.as_bytes().to_vec();
        message.extend_from_slice(&signed_body);
        hex(&SigningKey::from_bytes(&[8; 32]).sign(&message).to_bytes())
    } else {
        sign(&timestamp, &signed_body)
    };
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .header(
            "user-agent",
            "Discord-Interactions/1.0 (+https://discord.com)",
        );
    if !how.unsigned {
        request = request
            .header("x-signature-ed25519", signature)
            .header("x-signature-timestamp", timestamp);
    }
    request
        .body(body)
        .send()
        .await
        .expect("the interactions endpoint answers")
}
