//! Operator commands that run beside a service on the same store: `ringside check` and
//! `ringside subscriptions list|delete`. They sign in with a fresh token (never the service's
//! stored one, whose refresh token is single-use) and revoke it when done.

use crate::config::{Delivery, Settings};
use crate::discord::api::DiscordApi;
use crate::discord::check::Transport;
use crate::ringcentral::client::{RcClient, RcError};
use crate::ringcentral::subscription;
use crate::ringcentral::wire::SubscriptionStatus;
use crate::store::Store;
use std::sync::Arc;

/// The permissions ringside needs, and why. The WebSocket's permission is not checked by name:
/// RingCentral's documents spell it several ways (`docs/ringcentral.md` §3.6); subscribing
/// tells.
const REQUIRED_PERMISSIONS: &[(&str, &str)] = &[(
    "CallControl",
    "telephony-session events and removing callers",
)];
/// Needed with webhook delivery only.
const WEBHOOK_PERMISSION: (&str, &str) = ("SubscriptionWebhook", "the webhook subscription");
/// Used when present.
const OPTIONAL_PERMISSIONS: &[(&str, &str)] = &[(
    "ReadPresence",
    "discovering conferences already running at start",
)];

/// One checked item.
pub struct Line {
    pub ok: bool,
    pub text: String,
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mark = if self.ok { "ok     " } else { "PROBLEM" };
        write!(f, "{mark} {}", self.text)
    }
}

fn ok(text: impl Into<String>) -> Line {
    Line {
        ok: true,
        text: text.into(),
    }
}

fn problem(text: impl Into<String>) -> Line {
    Line {
        ok: false,
        text: text.into(),
    }
}

fn client(settings: &Settings) -> anyhow::Result<Option<Arc<RcClient>>> {
    match &settings.ringcentral.credentials {
        Some(credentials) => Ok(Some(crate::ringcentral::side::client(
            settings,
            credentials.clone(),
            None,
        )?)),
        None => Ok(None),
    }
}

/// `ringside check`: the configuration, then the RingCentral half, then the Discord half. A side
/// in local mode is reported as such, not as a problem.
pub async fn check(settings: &Settings) -> anyhow::Result<Vec<Line>> {
    let mut lines = vec![ok("config: valid")];
    lines.extend(check_contacts(settings));
    lines.extend(check_ringcentral(settings).await?);
    lines.extend(check_discord(settings).await);
    Ok(lines)
}

/// The contacts file, when one is set: each problem as the service would log it, and how many
/// names it holds.
fn check_contacts(settings: &Settings) -> Vec<Line> {
    let Some(path) = &settings.contacts.path else {
        return vec![];
    };
    let loaded = super::contacts::load(path, settings.contacts.default_country_code.as_deref());
    let mut lines: Vec<Line> = loaded.problems.iter().cloned().map(problem).collect();
    if loaded.parsed.is_some() {
        lines.push(ok(format!(
            "contacts: {} names from {}",
            loaded.len(),
            path.display()
        )));
    }
    lines
}

async fn check_discord(settings: &Settings) -> Vec<Line> {
    let Some(api) = DiscordApi::from_settings(settings) else {
        return vec![ok("discord: local mode (announcements on standard output)")];
    };
    let transport = match &settings.discord.public_key {
        Some(public_key) => Transport::Endpoint {
            url: settings
                .server
                .public_url
                .as_ref()
                .map(|url| format!("{url}/discord/interactions")),
            public_key: public_key.to_hex(),
        },
        None => Transport::Gateway,
    };
    crate::discord::check::check(
        &api,
        &transport,
        crate::discord::check::Needs {
            threads: settings.announce.thread_per_conference,
            pictures: settings.announce.timeline,
            alert_roles: settings.watch.alert_roles.clone(),
        },
    )
    .await
    .into_iter()
    .map(|finding| Line {
        ok: finding.ok,
        text: finding.text,
    })
    .collect()
}

async fn check_ringcentral(settings: &Settings) -> anyhow::Result<Vec<Line>> {
    let mut lines = Vec::new();
    let Some(client) = client(settings)? else {
        lines.push(ok("ringcentral: local mode (no credentials configured)"));
        return Ok(lines);
    };
    match client.auth().access_token().await {
        Err(error) => {
            lines.push(problem(format!("ringcentral token: {error}")));
            return Ok(lines);
        }
        Ok(_) => lines.push(ok(
            "ringcentral token: obtained with the configured credentials",
        )),
    }
    let scope = client.auth().scope().await.unwrap_or_default();
    let delivery = settings.ringcentral.delivery;
    lines.push(ok(format!(
        "ringcentral delivery: {} ({})",
        delivery.as_str(),
        settings.ringcentral.delivery_reason
    )));
    let webhook = (delivery == Delivery::Webhook).then_some(&WEBHOOK_PERMISSION);
    for (permission, why) in REQUIRED_PERMISSIONS.iter().chain(webhook) {
        if scope
            .iter()
            .any(|held| held.eq_ignore_ascii_case(permission))
        {
            lines.push(ok(format!("ringcentral permission {permission}: granted")));
        } else {
            lines.push(problem(format!(
                "ringcentral permission {permission}: missing from the app (needed for {why})"
            )));
        }
    }
    for (permission, why) in OPTIONAL_PERMISSIONS {
        if scope
            .iter()
            .any(|held| held.eq_ignore_ascii_case(permission))
        {
            lines.push(ok(format!("ringcentral permission {permission}: granted")));
        } else {
            lines.push(ok(format!(
                "ringcentral permission {permission}: not granted (optional, for {why})"
            )));
        }
    }
    lines.push(check_directory(&client).await);
    match delivery {
        Delivery::Webhook => lines.extend(check_subscription(settings, &client).await),
        // The subscription belongs to the socket of the running service (none when nothing
        // runs): there is nothing to read over HTTP.
        Delivery::WebSocket => lines.push(ok(
            "ringcentral subscription: held over the WebSocket by the running service (ringside run subscribes when it connects)",
        )),
    }
    if let Err(error) = client.auth().revoke_current().await {
        lines.push(problem(format!(
            "ringcentral token: could not revoke the check's token: {error}"
        )));
    }
    Ok(lines)
}

/// One read of the JWT user's own extension (`GET …/extension/~`), as the directory's lookups
/// would read a caller's: the one place a missing ReadAccounts (or ReadExtensions) shows.
async fn check_directory(client: &RcClient) -> Line {
    match client.extension("~").await {
        Ok(_) => ok("ringcentral directory: extension names can be read"),
        Err(RcError::Api { status: 403, .. }) => problem(
            "ringcentral directory: the app lacks ReadAccounts (or the user ReadExtensions); callers known only by extension stay unnamed — add the permission in the Developer Console",
        ),
        Err(error) => problem(format!("ringcentral directory: {error}")),
    }
}

async fn check_subscription(settings: &Settings, client: &RcClient) -> Vec<Line> {
    let Some(public_url) = &settings.server.public_url else {
        return vec![problem(
            "server.public_url: not set (RingCentral must reach {public_url}/webhooks/ringcentral)",
        )];
    };
    let address = format!("{public_url}/webhooks/ringcentral");
    let expected: Vec<String> = subscription::event_filters(
        &settings.ringcentral.event_filters,
        settings.ringcentral.subscription_expires_in,
    );
    let records = match client.list_subscriptions().await {
        Ok(records) => records,
        Err(error) => return vec![problem(format!("ringcentral subscriptions: {error}"))],
    };
    let ours: Vec<_> = records
        .iter()
        .filter(|info| {
            info.delivery_mode
                .as_ref()
                .and_then(|mode| mode.address.as_deref())
                == Some(address.as_str())
        })
        .collect();
    let Some(info) = ours.first() else {
        return vec![problem(format!(
            "ringcentral subscription: none delivers to {address} (ringside run creates it)"
        ))];
    };
    let mut lines = Vec::new();
    let status = info
        .status
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_else(|| "unknown".into());
    if info.status == Some(SubscriptionStatus::Active) {
        lines.push(ok(format!(
            "ringcentral subscription {}: {status}, delivering to {address}",
            info.id
        )));
    } else {
        lines.push(problem(format!(
            "ringcentral subscription {}: {status} (ringside run recreates it)",
            info.id
        )));
    }
    if subscription::same_filters(&info.event_filters, &expected) {
        lines.push(ok(format!(
            "ringcentral subscription {}: filters as configured",
            info.id
        )));
    } else {
        lines.push(problem(format!(
            "ringcentral subscription {}: filters {:?} differ from the configured {expected:?}",
            info.id, info.event_filters
        )));
    }
    for disabled in &info.disabled_filters {
        lines.push(problem(format!(
            "ringcentral subscription {}: filter {} disabled: {}",
            info.id,
            disabled.filter.as_deref().unwrap_or("?"),
            disabled
                .message
                .as_deref()
                .or(disabled.reason.as_deref())
                .unwrap_or("no reason given")
        )));
    }
    if ours.len() > 1 {
        lines.push(problem(format!(
            "ringcentral subscriptions: {} deliver to {address}; ringside run keeps one",
            ours.len()
        )));
    }
    lines
}

/// `ringside subscriptions list`: one line per subscription: id, status, address.
pub async fn list_subscriptions(settings: &Settings) -> anyhow::Result<Vec<String>> {
    let client = require_client(settings)?;
    let result = client.list_subscriptions().await;
    let _ = client.auth().revoke_current().await;
    Ok(result?
        .into_iter()
        .map(|info| {
            format!(
                "{} {} {}",
                info.id,
                info.status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "unknown".into()),
                info.delivery_mode
                    .and_then(|mode| mode.address)
                    .unwrap_or_else(|| "-".into())
            )
        })
        .collect())
}

/// `ringside subscriptions delete [ID]`: the given one, or the one ringside created.
pub async fn delete_subscription(
    settings: &Settings,
    id: Option<String>,
) -> anyhow::Result<String> {
    let id = match id {
        Some(id) => id,
        None => {
            let store = Store::open(&settings.store.path)?;
            let stored = subscription::stored_id(&store).await;
            store.close().await?;
            stored.ok_or_else(|| {
                anyhow::anyhow!(
                    "no subscription id given and none stored in {}",
                    settings.store.path.display()
                )
            })?
        }
    };
    let client = require_client(settings)?;
    let result = client.delete_subscription(&id).await;
    let _ = client.auth().revoke_current().await;
    match result {
        Ok(()) => Ok(format!("deleted {id}")),
        Err(RcError::NotFound { .. }) => Ok(format!("{id} does not exist")),
        Err(error) => Err(error.into()),
    }
}

/// `ringside audit [--since DATE]`: the audit log, oldest first, one entry per line.
pub async fn audit(settings: &Settings, since: Option<&str>) -> anyhow::Result<Vec<String>> {
    let since_ms = match since {
        None => 0,
        Some(text) => parse_date(text).ok_or_else(|| {
            anyhow::anyhow!("--since {text:?} is not a date (2026-11-25 or 2026-11-25T14:00:00Z)")
        })?,
    };
    let store = Store::open(&settings.store.path)?;
    let entries = store.audit_since(since_ms).await;
    store.close().await?;
    Ok(entries?
        .into_iter()
        .map(|entry| {
            format!(
                "{} {} {} ({}) conference={} participant={} {}{}",
                crate::conference::Timestamp(entry.at_ms).to_rfc3339(),
                entry.action,
                entry.actor_name,
                entry.actor_id,
                entry.conference_id.as_deref().unwrap_or("-"),
                entry.participant_id.as_deref().unwrap_or("-"),
                entry.outcome,
                if entry.detail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", entry.detail)
                }
            )
        })
        .collect())
}

/// `2026-11-25` (midnight UTC) or an RFC 3339 time, as milliseconds since the epoch.
fn parse_date(text: &str) -> Option<i64> {
    if let Some(at) = crate::conference::Timestamp::parse_rfc3339(text) {
        return Some(at.0);
    }
    crate::conference::Timestamp::parse_rfc3339(&format!("{text}T00:00:00Z")).map(|at| at.0)
}

fn require_client(settings: &Settings) -> anyhow::Result<Arc<RcClient>> {
    client(settings)?.ok_or_else(|| {
        anyhow::anyhow!(
            "config: ringcentral.client_id, client_secret and jwt are needed to manage subscriptions"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::parse_date;
    use crate::ringcentral::subscription::normalized_filter;

    #[test]
    fn audit_dates_are_days_or_rfc3339_times() {
        assert_eq!(parse_date("1970-01-02"), Some(86_400_000));
        assert_eq!(parse_date("1970-01-01T00:00:01Z"), Some(1_000));
        assert_eq!(parse_date("yesterday"), None);
    }

    #[test]
    fn expanded_account_and_extension_ids_compare_as_tilde() {
        assert_eq!(
            normalized_filter("/restapi/v1.0/account/2460123/extension/2744567/telephony/sessions"),
            "/restapi/v1.0/account/~/extension/~/telephony/sessions"
        );
        assert_eq!(
            normalized_filter("/restapi/v1.0/subscription/~?threshold=86400&interval=3600"),
            "/restapi/v1.0/subscription/~?threshold=86400&interval=3600"
        );
    }
}
