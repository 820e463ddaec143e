//! The Discord half of `ringside check` (the README's "Operator commands"): the bot user, the application, the server,
//! the announcement channel, the bot's permissions there, and where Discord sends interactions
//! compared with the transport ringside is configured for.
//!
//! Every item is one line, ok or a problem in plain words; nothing here changes anything on
//! Discord's side.

use super::api::DiscordApi;
use serenity::http::Http;
use serenity::model::channel::{Channel, ChannelType};
use serenity::model::id::{ChannelId, GuildId};
use serenity::model::permissions::Permissions;

/// One checked item: whether it is fine, and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub ok: bool,
    pub text: String,
}

fn ok(text: impl Into<String>) -> Finding {
    Finding {
        ok: true,
        text: text.into(),
    }
}

fn problem(text: impl Into<String>) -> Finding {
    Finding {
        ok: false,
        text: text.into(),
    }
}

/// What ringside expects of the application's interactions endpoint setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// No `discord.public_key`: interactions must arrive over the gateway, so the application
    /// must have no interactions endpoint URL.
    Gateway,
    /// `discord.public_key` is set: Discord must POST to this URL (`None` when
    /// `server.public_url` is missing) and sign with this key.
    Endpoint {
        url: Option<String>,
        public_key: String,
    },
}

/// What the settings ask of the bot beyond posting in the channel.
#[derive(Debug, Clone, Default)]
pub struct Needs {
    /// `announce.thread_per_conference`.
    pub threads: bool,
    /// `announce.timeline`: the end summary uploads a picture.
    pub pictures: bool,
    /// `watch.alert_roles`: the roles a watch-list alert mentions. Discord notifies a role only
    /// if it is mentionable or the bot may mention every role.
    pub alert_roles: Vec<u64>,
}

/// The invite URL with the permissions `needs` asks for: those the channel must grant, and
/// *Mention @everyone, @here, and All Roles* when alerts mention roles (so they notify even a
/// role that is not mentionable).
pub fn invite_url(application_id: u64, needs: &Needs) -> String {
    let mut permissions = required_permissions(needs)
        .iter()
        .fold(Permissions::empty(), |all, (permission, _, _)| {
            all | *permission
        });
    if !needs.alert_roles.is_empty() {
        permissions |= Permissions::MENTION_EVERYONE;
    }
    format!(
        "https://discord.com/oauth2/authorize?client_id={application_id}&scope=bot+applications.commands&permissions={}",
        permissions.bits()
    )
}

/// The permissions the bot needs in the announcement channel: each with its short name and
/// what it is for.
fn required_permissions(needs: &Needs) -> Vec<(Permissions, &'static str, &'static str)> {
    let (threads, pictures) = (needs.threads, needs.pictures);
    let mut needed = vec![
        (Permissions::VIEW_CHANNEL, "view", "view the channel"),
        (Permissions::SEND_MESSAGES, "send", "send messages"),
    ];
    if pictures {
        needed.push((
            Permissions::ATTACH_FILES,
            "attach files",
            "attach the timeline picture (or set announce.timeline = false)",
        ));
    }
    if threads {
        needed.push((
            Permissions::CREATE_PUBLIC_THREADS,
            "create threads",
            "create a thread per conference",
        ));
        needed.push((
            Permissions::SEND_MESSAGES_IN_THREADS,
            "send in threads",
            "post in those threads",
        ));
    }
    needed
}

/// One line for a failed request, without the token (serenity's and reqwest's errors name the
/// URL and Discord's message, never the headers).
fn failure(what: &str, error: &serenity::Error) -> Finding {
    use serenity::http::HttpError;
    let text = match error {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(response)) => {
            let status = response.status_code.as_u16();
            let hint = match status {
                401 => {
                    " (the bot token was refused: copy it again from the Developer Portal's Bot page)"
                }
                403 => " (the bot lacks access)",
                404 => " (not found: check the id, and that the bot was invited to the server)",
                _ => "",
            };
            format!(
                "{what}: Discord answered {status} {}{hint}",
                response.error.message
            )
        }
        serenity::Error::Http(HttpError::Request(request)) => {
            format!("{what}: Discord is unreachable: {request}")
        }
        other => format!("{what}: {other}"),
    };
    problem(text)
}

/// Runs every check, in order; later items that depend on a failed one are skipped.
pub async fn check(api: &DiscordApi, transport: &Transport, needs: Needs) -> Vec<Finding> {
    let mut findings = Vec::new();
    let http = match api.serenity() {
        Ok(http) => http,
        Err(error) => return vec![problem(format!("discord: {error:#}"))],
    };
    let bot = match http.get_current_user().await {
        Ok(user) => {
            findings.push(ok(format!(
                "discord bot: signed in as {} ({})",
                user.name, user.id
            )));
            user
        }
        Err(error) => {
            findings.push(failure("discord bot", &error));
            return findings;
        }
    };
    findings.extend(check_application(api, transport).await);
    findings.extend(check_channel(&http, api, bot.id, &needs).await);
    findings.push(ok(format!(
        "discord invite URL for these settings: {}",
        invite_url(api.application_id, &needs)
    )));
    findings
}

/// The application: its id matches the configured one, and its interactions endpoint setting
/// matches the transport. Serenity's `CurrentApplicationInfo` does not carry
/// `interactions_endpoint_url`, so this reads the raw JSON.
async fn check_application(api: &DiscordApi, transport: &Transport) -> Vec<Finding> {
    let client = match api.http_client() {
        Ok(client) => client,
        Err(error) => return vec![problem(format!("discord application: {error:#}"))],
    };
    let response = client
        .get(api.url("/applications/@me"))
        .header(reqwest::header::AUTHORIZATION, api.authorization())
        .send()
        .await;
    let body: serde_json::Value = match response {
        Ok(response) if response.status().is_success() => match response.json().await {
            Ok(body) => body,
            Err(error) => {
                return vec![problem(format!(
                    "discord application: unreadable answer: {}",
                    error.without_url()
                ))];
            }
        },
        Ok(response) => {
            return vec![problem(format!(
                "discord application: Discord answered {}",
                response.status()
            ))];
        }
        Err(error) => {
            return vec![problem(format!(
                "discord application: Discord is unreachable: {}",
                error.without_url()
            ))];
        }
    };
    let mut findings = Vec::new();
    let id = body.get("id").and_then(|id| id.as_str()).unwrap_or("");
    if id == api.application_id.to_string() {
        findings.push(ok(format!("discord application: {id}")));
    } else {
        findings.push(problem(format!(
            "discord application: the bot token belongs to application {id}, not discord.application_id {}",
            api.application_id
        )));
    }
    let endpoint = body
        .get("interactions_endpoint_url")
        .and_then(|url| url.as_str())
        .filter(|url| !url.is_empty());
    let verify_key = body.get("verify_key").and_then(|key| key.as_str());
    findings.push(match (transport, endpoint) {
        (Transport::Gateway, None) => {
            ok("discord interactions: over the gateway (no interactions endpoint URL is set)")
        }
        (Transport::Gateway, Some(url)) => problem(format!(
            "discord interactions: the application sends them to {url}, so the gateway receives none; clear the Interactions Endpoint URL in the Developer Portal or set discord.public_key"
        )),
        (Transport::Endpoint { url: None, .. }, _) => problem(
            "discord interactions: discord.public_key is set but server.public_url is not, so Discord cannot reach /discord/interactions",
        ),
        (Transport::Endpoint { url: Some(expected), .. }, None) => problem(format!(
            "discord interactions: no Interactions Endpoint URL is set; set it to {expected} in the Developer Portal"
        )),
        (Transport::Endpoint { url: Some(expected), .. }, Some(url)) if url == expected => {
            ok(format!("discord interactions: sent to {url}"))
        }
        (Transport::Endpoint { url: Some(expected), .. }, Some(url)) => problem(format!(
            "discord interactions: the application sends them to {url}, not {expected}"
        )),
    });
    if let Transport::Endpoint { public_key, .. } = transport {
        match verify_key {
            Some(key) if key.eq_ignore_ascii_case(public_key) => {
                findings.push(ok("discord public key: matches the application's"))
            }
            Some(_) => findings.push(problem(
                "discord public key: discord.public_key is not this application's public key",
            )),
            None => findings.push(problem(
                "discord public key: the application did not return its public key",
            )),
        }
    }
    findings
}

/// The server, the channel, and the bot's permissions in it.
async fn check_channel(
    http: &Http,
    api: &DiscordApi,
    bot: serenity::model::id::UserId,
    needs: &Needs,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let guild = match http.get_guild(GuildId::new(api.guild_id)).await {
        Ok(guild) => {
            findings.push(ok(format!("discord server: {} ({})", guild.name, guild.id)));
            guild
        }
        Err(error) => {
            findings.push(failure(&format!("discord server {}", api.guild_id), &error));
            return findings;
        }
    };
    let channel = match http.get_channel(ChannelId::new(api.channel_id)).await {
        Ok(Channel::Guild(channel)) if channel.guild_id == guild.id => channel,
        Ok(Channel::Guild(channel)) => {
            findings.push(problem(format!(
                "discord channel {}: belongs to server {}, not {}",
                channel.id, channel.guild_id, guild.id
            )));
            return findings;
        }
        Ok(_) => {
            findings.push(problem(format!(
                "discord channel {}: not a server channel",
                api.channel_id
            )));
            return findings;
        }
        Err(error) => {
            findings.push(failure(
                &format!("discord channel {}", api.channel_id),
                &error,
            ));
            return findings;
        }
    };
    if matches!(channel.kind, ChannelType::Text | ChannelType::News) {
        findings.push(ok(format!(
            "discord channel: #{} ({})",
            channel.name, channel.id
        )));
    } else {
        findings.push(problem(format!(
            "discord channel #{}: announcements need a text channel",
            channel.name
        )));
    }
    let member = match http.get_member(guild.id, bot).await {
        Ok(member) => member,
        Err(error) => {
            findings.push(failure("discord bot membership", &error));
            return findings;
        }
    };
    #[allow(deprecated)]
    let granted = guild.user_permissions_in(&channel, &member);
    let required = required_permissions(needs);
    let missing: Vec<&str> = required
        .iter()
        .filter(|(permission, _, _)| !granted.contains(*permission))
        .map(|(_, _, why)| *why)
        .collect();
    if missing.is_empty() {
        findings.push(ok(format!(
            "discord permissions in #{}: {}",
            channel.name,
            required
                .iter()
                .map(|(_, name, _)| *name)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    } else {
        findings.push(problem(format!(
            "discord permissions in #{}: the bot cannot {}",
            channel.name,
            missing.join(", ")
        )));
    }
    findings.extend(alert_roles(&guild, granted, &needs.alert_roles));
    findings
}

/// Whether each alert role will be notified: the bot may mention every role, or the role is
/// mentionable; otherwise the alert shows the mention but notifies nobody.
fn alert_roles(
    guild: &serenity::model::guild::PartialGuild,
    granted: Permissions,
    roles: &[u64],
) -> Vec<Finding> {
    if roles.is_empty() {
        return Vec::new();
    }
    if granted.contains(Permissions::MENTION_EVERYONE) {
        return vec![ok(
            "discord alert roles: the bot may mention every role (Mention @everyone, @here, and All Roles)"
                .to_owned(),
        )];
    }
    roles
        .iter()
        .map(|id| match guild.roles.get(&serenity::model::id::RoleId::new(*id)) {
            Some(role) if role.mentionable => ok(format!(
                "discord alert role @{}: mentionable, so alerts notify it",
                role.name
            )),
            Some(role) => problem(format!(
                "discord alert role @{}: not mentionable and the bot lacks Mention @everyone, @here, and All Roles, so alerts will not notify it; make the role mentionable (Server Settings → Roles) or grant the bot that permission",
                role.name
            )),
            None => problem(format!(
                "discord alert role {id}: no such role in the server (check watch.alert_roles)"
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_and_pictures_add_their_permissions() {
        assert_eq!(required_permissions(&Needs::default()).len(), 2);
        let with_threads: Vec<Permissions> = required_permissions(&Needs {
            threads: true,
            pictures: false,
            alert_roles: Vec::new(),
        })
        .into_iter()
        .map(|(p, _, _)| p)
        .collect();
        assert!(with_threads.contains(&Permissions::CREATE_PUBLIC_THREADS));
        assert!(with_threads.contains(&Permissions::SEND_MESSAGES_IN_THREADS));
        assert!(!with_threads.contains(&Permissions::ATTACH_FILES));
        let with_pictures: Vec<Permissions> = required_permissions(&Needs {
            threads: false,
            pictures: true,
            alert_roles: Vec::new(),
        })
        .into_iter()
        .map(|(p, _, _)| p)
        .collect();
        assert_eq!(
            with_pictures,
            vec![
                Permissions::VIEW_CHANNEL,
                Permissions::SEND_MESSAGES,
                Permissions::ATTACH_FILES
            ]
        );
        // The README's invite URL asks for exactly these by default.
        let bits: u64 = with_pictures.iter().map(|p| p.bits()).sum();
        assert_eq!(bits, 35840);
        let mut needs = Needs {
            threads: false,
            pictures: true,
            alert_roles: Vec::new(),
        };
        assert!(invite_url(7, &needs).ends_with("&permissions=35840"));
        needs.alert_roles = vec![123];
        assert_eq!(
            invite_url(7, &needs),
            "https://discord.com/oauth2/authorize?client_id=7&scope=bot+applications.commands&permissions=166912",
            "alerts that mention roles add Mention @everyone, @here, and All Roles (131072)"
        );
    }
}
