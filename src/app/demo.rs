//! `ringside demo`: the whole pipeline with no accounts. ringside signs in to the built-in
//! RingCentral platform fake, subscribes its webhook (handshake included), and the fake plays a
//! conference: a host and three callers join (the third is on the watch list, so the
//! moderators' role is alerted), a moderator runs `/participants`, removes one caller with
//! `/kick` (autocomplete, confirmation button, result) and the watch-listed one with the alert's
//! Remove button (the same confirmation), one caller hangs up, and the host ends it.
//!
//! ringside's Discord side runs unchanged — announcer, roster card, poster, nonces, command
//! handlers — against a Discord stand-in ([`crate::simulator::discord`]) that prints each channel
//! message as Discord would show it, each edit of the roster card as the card then reads, and
//! writes the timeline picture attached to the end summary to a file it names. The card settles
//! for 300 ms here (`announce.roster_edit_ms`'s least), since the call runs minutes in seconds. The command exchanges are the real handlers' replies to the
//! interactions a member's client would send. `ringside demo --discord` posts the same
//! conference into the real channel of the configured bot instead.

use crate::config::{Delivery, DiscordBot, PublicKey, RingCentralCredentials, Settings};
use crate::discord::announcer::MemorySink;
use crate::discord::api::DiscordApi;
use crate::discord::commands::{Reply, WATCH_REMOVE};
use crate::pipeline::SubscriptionHealth;
use crate::simulator::discord::{DemoDiscord, Posted, preview};
use crate::simulator::platform::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_JWT, PlatformHandle,
};
use crate::simulator::{LeaveSignal, Person, Platform, PlatformOptions};
use anyhow::Context as _;
use secrecy::SecretString;
use serde_json::{Value, json};
use serenity::model::application::Interaction;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Real time between two steps of the call, so the demo reads like a call, only faster.
const PACE: Duration = Duration::from_millis(400);
/// How long the demo waits for notifications sent over the WebSocket to arrive.
const SETTLE_LIMIT: Duration = Duration::from_secs(5);
/// How long the demo waits for its subscription before giving up.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(15);
/// The seed of the demo's conference ids.
const DEMO_SEED: u64 = 122;
/// The stand-in Discord's ids.
const DEMO_APPLICATION: u64 = 1_200_000_000_000_000_001;
const DEMO_GUILD: u64 = 1_200_000_000_000_000_002;
const DEMO_CHANNEL: u64 = 1_200_000_000_000_000_003;
const DEMO_MODERATOR: u64 = 1_200_000_000_000_000_042;
/// The role the demo's watch-list alerts mention.
const DEMO_ALERT_ROLE: u64 = 1_200_000_000_000_000_077;
/// Ravi Anand's number, on the demo's watch list.
const DEMO_WATCHED_NUMBER: &str = "+442071838750";
/// Selects the interactions-endpoint transport, so the demo opens no gateway connection (with
/// `--discord`, none that real members' commands could reach); no request is ever signed with it (the demo hands interactions to the handlers directly). It is
/// the public key of RFC 8032's first Ed25519 test vector.
const DEMO_PUBLIC_KEY: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
/// `announce.roster_edit_ms` in the demo: the fastest ringside accepts.
const DEMO_ROSTER_EDIT_MS: u64 = 300;
/// Where the demo writes the timeline picture it was sent (in the system's temporary folder).
const TIMELINE_FILE: &str = "ringside-demo-timeline.png";
/// How a roster card begins, and how its final record does.
const CARD: &str = "📋 ";
const CARD_ENDED: &str = "📋 **Conference ended**";
/// Discord's EPHEMERAL message flag.
const EPHEMERAL: u64 = 1 << 6;

/// Runs the demo; `settings` supply privacy and access choices (and, with `real_discord`, the
/// bot and channel), everything else is the demo's own. Notifications arrive over the
/// platform's WebSocket, or with `webhook` over a webhook subscription.
pub async fn run(settings: &Settings, real_discord: bool, webhook: bool) -> anyhow::Result<()> {
    let dir = private_dir()?;
    let platform = Platform::start(PlatformOptions::new())
        .await
        .context("starting the built-in RingCentral platform")?;
    let listen = free_local_port()?;
    let mut settings = settings.clone();
    settings.server.listen = listen;
    settings.server.admin_listen = ([127, 0, 0, 1], 0).into();
    settings.server.public_url = webhook.then(|| format!("http://{listen}"));
    settings.ringcentral.delivery = if webhook {
        Delivery::Webhook
    } else {
        Delivery::WebSocket
    };
    settings.server.api_token = None;
    settings.store.path = dir.join("ringside.sqlite3");
    settings.ringcentral.server_url = platform.base_url();
    settings.ringcentral.credentials = Some(RingCentralCredentials {
        client_id: DEFAULT_CLIENT_ID.to_owned(),
        client_secret: SecretString::from(DEFAULT_CLIENT_SECRET),
        jwt: SecretString::from(DEFAULT_JWT),
    });
    settings.ringcentral.verification_token = None;
    settings.ringcentral.host_extensions.clear();
    settings.ringcentral.reconcile_interval_secs = 2;
    settings.ringcentral.kick_confirm_secs = 3;
    // The demo's call runs minutes in seconds: its roster card settles as fast as ringside
    // allows.
    settings.announce.roster_edit_ms = DEMO_ROSTER_EDIT_MS;
    // Ravi Anand's number is on the watch list: his join alerts the moderators' role.
    settings.watch.numbers = vec![DEMO_WATCHED_NUMBER.to_owned()];
    settings.watch.alert_roles = vec![DEMO_ALERT_ROLE];

    let (posted_tx, mut posted_rx) = mpsc::unbounded_channel::<Posted>();
    let mut stand_in = None;
    let moderator = if real_discord {
        // Nothing is printed from the real channel: the printer ends at once.
        drop(posted_tx);
        let Some(api) = DiscordApi::from_settings(&settings) else {
            anyhow::bail!(
                "demo --discord: set the [discord] group (token, application_id, guild_id, channel_id): the scripted conference is posted to that channel"
            );
        };
        // No gateway session: real members' commands must not be answered from the demo's
        // simulated roster. The demo hands its interactions to the handlers directly.
        settings.discord.public_key = PublicKey::from_hex(DEMO_PUBLIC_KEY);
        // The bot removes the caller on the demo's behalf, so "removed by" names someone real.
        match api.serenity()?.get_current_user().await {
            Ok(user) => user.id.get(),
            Err(error) => anyhow::bail!(
                "demo --discord: Discord refused the bot: {}",
                crate::discord::respond::describe(&error)
            ),
        }
    } else {
        let discord = DemoDiscord::start(posted_tx)
            .await
            .context("starting the Discord stand-in")?;
        settings.discord.api_url = discord.base_url();
        settings.discord.bot = Some(DiscordBot {
            token: SecretString::from("demo-bot-token"),
            application_id: DEMO_APPLICATION,
            guild_id: DEMO_GUILD,
            channel_id: DEMO_CHANNEL,
        });
        settings.discord.public_key = PublicKey::from_hex(DEMO_PUBLIC_KEY);
        stand_in = Some(discord);
        DEMO_MODERATOR
    };
    let mention = move |id: &str| {
        if id == moderator.to_string() {
            "@moderator".to_owned()
        } else {
            "@member".to_owned()
        }
    };

    let running = super::start(&settings, Arc::new(MemorySink::new())).await?;
    // The roster card as the channel shows it now, so the demo can let it settle between steps;
    // and the Remove button of the watch-list alert, once posted.
    let (card_shown, mut card) = tokio::sync::watch::channel(String::new());
    let (alert_posted, mut alert) = tokio::sync::watch::channel(None::<String>);
    let picture_path = std::env::temp_dir().join(TIMELINE_FILE);
    let printer = tokio::spawn(async move {
        while let Some(posted) = posted_rx.recv().await {
            print_posted(&posted, &mention, &picture_path);
            if let Some((_, custom_id, false)) = posted
                .buttons
                .iter()
                .find(|(_, custom_id, _)| custom_id.starts_with(WATCH_REMOVE))
            {
                alert_posted.send_replace(Some(custom_id.clone()));
            }
            if posted.content.starts_with(CARD) {
                card_shown.send_replace(posted.content);
            }
        }
    });
    if let Some(ringcentral) = &running.ringcentral {
        let mut health = ringcentral.health.clone();
        tokio::time::timeout(
            SUBSCRIBE_TIMEOUT,
            health.wait_for(|h| matches!(h, SubscriptionHealth::Active { .. })),
        )
        .await
        .context("the demo's subscription did not become active")?
        .context("the subscription manager stopped")?;
    }
    let commands = running
        .discord
        .as_ref()
        .map(|discord| discord.commands.clone())
        .context("the Discord commands did not start")?;
    let guild = settings
        .discord
        .bot
        .as_ref()
        .map_or(DEMO_GUILD, |bot| bot.guild_id);
    let member = Member {
        id: moderator,
        guild,
    };
    if webhook {
        eprintln!(
            "ringside demo: subscribed {} at the built-in RingCentral platform {}",
            running.webhook_url(),
            platform.base_url()
        );
    } else {
        eprintln!(
            "ringside demo: subscribed over the WebSocket of the built-in RingCentral platform {} (no public address needed)",
            platform.base_url()
        );
    }
    match &stand_in {
        Some(_) => eprintln!("ringside demo: channel messages as Discord shows them:\n"),
        None => eprintln!(
            "ringside demo: announcements go to Discord channel {}; command replies below\n",
            settings
                .discord
                .bot
                .as_ref()
                .map_or(0, |bot| bot.channel_id)
        ),
    }

    let host = Person::with_extension("Agent 122", "+16505550122", "62295300122");
    let conference = platform.conference(DEMO_SEED, host);
    conference.start().await;
    let mut callers = Vec::new();
    for (person, wait) in [
        (
            Person::with_extension("Paco Vu", "11119", "62288300119"),
            20,
        ),
        (Person::new("Dana Whitfield", "+14155550142"), 180),
        (Person::new("Ravi Anand", "+442071838750"), 150),
    ] {
        conference.advance(Duration::from_secs(wait));
        callers.push(conference.call_and_merge(person).await);
        tokio::time::sleep(PACE).await;
    }
    settle(&platform, &running).await;
    card_settled(&mut card, stand_in.is_some(), "**3 on the call**").await;

    println!();
    let listing = commands
        .handle(member.command("participants", json!([]))?)
        .await;
    show("/participants", listing, &mention).await;

    conference.advance(Duration::from_secs(240));
    let suggestions = commands
        .handle(member.autocomplete("kick", "caller", "Paco")?)
        .await;
    let choice = match suggestions {
        Reply::Now(response) => {
            let response = serde_json::to_value(&response)?;
            let choices = response["data"]["choices"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let names: Vec<&str> = choices.iter().filter_map(|c| c["name"].as_str()).collect();
            println!("› /kick caller: Paco…   suggestions: {}", names.join(" | "));
            choices
                .first()
                .and_then(|c| c["value"].as_str())
                .map(str::to_owned)
        }
        Reply::Deferred { .. } => None,
    }
    .context("autocomplete offered no caller named Paco")?;
    let confirmation = commands
        .handle(member.command(
            "kick",
            json!([{"name": "caller", "type": 3, "value": choice},
                   {"name": "reason", "type": 3, "value": "not on the guest list"}]),
        )?)
        .await;
    let confirm_id = show(
        "/kick caller:Paco Vu reason:not on the guest list",
        confirmation,
        &mention,
    )
    .await
    .context("the /kick confirmation offered no button")?;
    let pressed = commands.handle(member.button(&confirm_id)?).await;
    show("[Remove Paco Vu]", pressed, &mention).await;
    println!();
    let _ = std::io::stdout().flush();
    settle(&platform, &running).await;

    if stand_in.is_some() {
        // The watch-list alert's Remove button goes through the same confirmation as /kick.
        let remove = tokio::time::timeout(SETTLE_LIMIT, alert.wait_for(Option::is_some))
            .await
            .context("no watch-list alert was posted")?
            .context("the printer stopped")?
            .clone()
            .context("no watch-list alert was posted")?;
        let confirmation = commands.handle(member.button(&remove)?).await;
        let confirm_id = show("[Remove] on the watch-list alert", confirmation, &mention)
            .await
            .context("the alert's Remove offered no confirmation")?;
        let pressed = commands.handle(member.button(&confirm_id)?).await;
        show("[Remove Ravi Anand]", pressed, &mention).await;
        println!();
        let _ = std::io::stdout().flush();
        settle(&platform, &running).await;
    }

    conference.advance(Duration::from_secs(180));
    conference.hang_up(callers[1], LeaveSignal::Both).await;
    tokio::time::sleep(PACE).await;
    conference.advance(Duration::from_secs(120));
    conference.end().await;
    settle(&platform, &running).await;
    // The card's final record comes a moment after the end line.
    card_settled(&mut card, stand_in.is_some(), CARD_ENDED).await;

    running.shutdown().await?;
    drop(stand_in);
    let _ = printer.await;
    platform.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Waits (a few seconds at most) until the roster card the stand-in shows contains `wanted`.
async fn card_settled(
    card: &mut tokio::sync::watch::Receiver<String>,
    stand_in: bool,
    wanted: &str,
) {
    if stand_in {
        let _ =
            tokio::time::timeout(SETTLE_LIMIT, card.wait_for(|shown| shown.contains(wanted))).await;
    }
}

/// Prints a channel message as Discord shows it: an edit of the roster card marked as such, an
/// uploaded picture written to `picture_path` and named.
fn print_posted(posted: &Posted, mention: &dyn Fn(&str) -> String, picture_path: &Path) {
    if posted.edit_of.is_some() {
        let what = if posted.content.starts_with(CARD) {
            "the roster card"
        } else {
            "the alert"
        };
        println!("✏️  ({what} above, edited:)");
    }
    println!("{}", preview(&posted.content, mention));
    if !posted.buttons.is_empty() {
        let labels: Vec<String> = posted
            .buttons
            .iter()
            .map(|(label, _, disabled)| {
                if *disabled {
                    format!("[{label}] (turned off)")
                } else {
                    format!("[{label}]")
                }
            })
            .collect();
        println!("{}", labels.join(" "));
    }
    for (name, bytes) in &posted.files {
        match std::fs::write(picture_path, bytes) {
            Ok(()) => println!(
                "🖼️  {name} ({} bytes) attached: written to {}",
                bytes.len(),
                picture_path.display()
            ),
            Err(error) => println!(
                "🖼️  {name} ({} bytes) attached; cannot write it to {}: {error}",
                bytes.len(),
                picture_path.display()
            ),
        }
    }
    let _ = std::io::stdout().flush();
}

/// The demo's moderator, as a member's client would identify them in an interaction.
struct Member {
    id: u64,
    guild: u64,
}

impl Member {
    fn json(&self) -> Value {
        json!({
            "user": {"id": self.id.to_string(), "username": "moderator", "discriminator": "0",
                     "avatar": null, "global_name": "Moderator"},
            "roles": [], "permissions": "8", "deaf": false, "mute": false, "flags": 0,
            "joined_at": "2024-01-01T00:00:00+00:00", "nick": null,
        })
    }

    fn interaction(&self, kind: u8, data: Value, extra: Value) -> anyhow::Result<Interaction> {
        let mut interaction = json!({
            "id": "1200000000000000100", "application_id": "1", "type": kind, "data": data,
            "guild_id": self.guild.to_string(), "channel_id": "1", "member": self.json(),
            "token": "demo-interaction", "version": 1, "locale": "en-US",
            "app_permissions": "0", "entitlements": [], "attachment_size_limit": 8_388_608,
        });
        if let (Some(target), Some(extra)) = (interaction.as_object_mut(), extra.as_object()) {
            target.extend(extra.clone());
        }
        serde_json::from_value(interaction).context("building the demo's interaction")
    }

    fn command(&self, name: &str, options: Value) -> anyhow::Result<Interaction> {
        self.interaction(
            2,
            json!({"id": "1", "name": name, "type": 1, "options": options}),
            json!({}),
        )
    }

    fn autocomplete(&self, name: &str, option: &str, typed: &str) -> anyhow::Result<Interaction> {
        self.interaction(
            4,
            json!({"id": "1", "name": name, "type": 1,
                   "options": [{"name": option, "type": 3, "value": typed, "focused": true}]}),
            json!({}),
        )
    }

    fn button(&self, custom_id: &str) -> anyhow::Result<Interaction> {
        self.interaction(
            3,
            json!({"custom_id": custom_id, "component_type": 2}),
            json!({"message": {
                "id": "1200000000000000200", "channel_id": "1",
                "author": {"id": "1", "username": "ringside", "discriminator": "0", "avatar": null, "bot": true},
                "content": "", "timestamp": "2024-01-01T00:00:00+00:00", "edited_timestamp": null,
                "tts": false, "mention_everyone": false, "mentions": [], "mention_roles": [],
                "attachments": [], "embeds": [], "pinned": false, "type": 0, "flags": EPHEMERAL
            }}),
        )
    }
}

/// Prints an exchange: what the member typed, then ringside's reply as Discord shows it (the
/// deferred kind too: the acknowledgement, then the edit the work produced). Answers the custom
/// id of the reply's first button, if any.
async fn show(typed: &str, reply: Reply, mention: &dyn Fn(&str) -> String) -> Option<String> {
    println!("› {typed}");
    match reply {
        Reply::Now(response) => {
            show_message(&serde_json::to_value(&response).ok()?["data"], mention)
        }
        Reply::Deferred { ack, work } => {
            show_message(&serde_json::to_value(&ack).ok()?["data"], mention);
            let edit = work.await;
            show_message(&serde_json::to_value(&edit).ok()?, mention)
        }
    }
}

fn show_message(data: &Value, mention: &dyn Fn(&str) -> String) -> Option<String> {
    if let Some(content) = data["content"].as_str() {
        for line in preview(content, mention).lines() {
            println!("  {line}");
        }
    }
    let buttons: Vec<&Value> = data["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().into_iter().flatten())
        .collect();
    if !buttons.is_empty() {
        let labels: Vec<String> = buttons
            .iter()
            .map(|button| format!("[{}]", button["label"].as_str().unwrap_or("?")))
            .collect();
        println!("  {}", labels.join(" "));
    }
    if data["flags"].as_u64().unwrap_or(0) & EPHEMERAL != 0 {
        println!("  (only you can see this)");
    }
    buttons
        .first()
        .and_then(|button| button["custom_id"].as_str())
        .map(str::to_owned)
}

/// Waits until the platform has delivered what it queued and ringside has announced all of it.
/// A webhook delivery ends when ringside has answered it; a WebSocket one when the frame is on
/// its way, so for those the demo also waits (a few seconds at most) until ringside has taken
/// as many as the platform sent.
async fn settle(platform: &PlatformHandle, running: &super::Running) {
    platform.flush().await;
    let sent = u64::from(platform.ws_stats().notifications);
    let deadline = tokio::time::Instant::now() + SETTLE_LIMIT;
    while running.progress.accepted_total() < sent && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    running.idle().await;
}

/// A free port on the loopback interface (the webhook address must be known before start).
fn free_local_port() -> anyhow::Result<std::net::SocketAddr> {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(probe.local_addr()?)
}

/// A fresh directory name for the demo's store, removed at the end. The store creates it,
/// readable by this user only, as it does any store directory.
fn private_dir() -> anyhow::Result<std::path::PathBuf> {
    let suffix =
        crate::util::random::hex(8).ok_or_else(|| anyhow::anyhow!("no randomness from the OS"))?;
    let dir = std::env::temp_dir().join(format!("ringside-demo-{suffix}"));
    anyhow::ensure!(!dir.exists(), "{} already exists", dir.display());
    Ok(dir)
}
