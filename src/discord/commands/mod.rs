//! The slash commands `/participants` and `/kick` (the README's "Connecting to Discord"), independent of how the
//! interaction arrived: [`Commands::handle`] takes a parsed [`Interaction`] and returns a
//! [`Reply`]; the gateway ([`super::gateway`]) and the HTTP endpoint ([`super::interactions`])
//! deliver it.
//!
//! - Every reply carries an empty `allowed_mentions`; every caller-supplied text is worded by the
//!   phrasebook's markdown formatter ([`crate::present::markdown`]), which makes it inert.
//! - Autocomplete values are our own keys: `p:` / `c:` and a 16-hex-digit FNV-1a hash of the
//!   conference id (and participant id). They are stable and stateless, and are resolved by
//!   scanning the live roster, so they stay far below Discord's 100-character limit whatever
//!   RingCentral's ids look like.
//! - `/kick` answers with an ephemeral confirmation whose buttons (`kick:yes:<id>` /
//!   `kick:no:<id>`) name a pending confirmation kept in memory for `discord.confirm_secs`.
//!   A watch-list alert's Remove button (`watch:remove:p:<hex>`) asks for the same one.
//! - Autocomplete refusals are silent (an empty list) and not audited: Discord asks on every
//!   keystroke. Refusals of a command or a button are answered, counted and audited.
//! - Anything that calls RingCentral is [`Reply::Deferred`]; autocomplete is always
//!   [`Reply::Now`].

mod kick;
mod participants;

use super::access::{Caller, Policy, Refusal};
use crate::conference::{ConferenceView, ParticipantKey, Roster};
use crate::config::{Access, PhoneNumbers};
use crate::pipeline::{Clock, Kicker};
// The longest kick reason kept: the option is registered with this maximum too.
use crate::present::words::MAX_REASON_CHARS;
use crate::store::{AuditEntry, Store};
use dashmap::DashMap;
use serenity::all::{
    CommandInteraction, CommandOptionType, ComponentInteraction, CreateAllowedMentions,
    CreateCommand, CreateCommandOption, CreateInteractionResponse,
    CreateInteractionResponseMessage, EditInteractionResponse, Interaction, InteractionContext,
    InteractionResponseFlags, Member, User,
};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub use kick::{KICK_NO, KICK_YES};

/// Discord's limit on autocomplete choices.
pub const MAX_CHOICES: usize = 25;
/// Discord's limit on a choice's name and value, in characters.
pub const MAX_CHOICE_CHARS: usize = 100;
/// How long a refusal's audit write may hold up the reply (Discord's deadline is 3 s).
const AUDIT_WAIT: Duration = Duration::from_millis(1500);

/// The work of a deferred reply: it produces the edit of the original response.
pub type Work = Pin<Box<dyn Future<Output = EditInteractionResponse> + Send>>;

/// What to answer an interaction with.
pub enum Reply {
    /// The whole answer, within Discord's 3 s.
    Now(CreateInteractionResponse),
    /// `ack` now, then `work`, whose result edits the original response (`@original`).
    Deferred {
        ack: CreateInteractionResponse,
        work: Work,
    },
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reply::Now(response) => f.debug_tuple("Now").field(response).finish(),
            Reply::Deferred { ack, .. } => f
                .debug_struct("Deferred")
                .field("ack", ack)
                .finish_non_exhaustive(),
        }
    }
}

/// What the commands need.
pub struct Deps {
    pub roster: Roster,
    /// `None` when RingCentral runs in local mode: `/kick` then explains it needs credentials.
    pub kicker: Option<Arc<dyn Kicker>>,
    pub access: Access,
    /// `discord.guild_id`: interactions from anywhere else are refused.
    pub guild_id: u64,
    pub phone_numbers: PhoneNumbers,
    /// `discord.confirm_secs`.
    pub confirm_ttl: Duration,
    /// Refusals go to the audit log (the kicker audits attempts itself).
    pub store: Store,
    pub clock: Arc<dyn Clock>,
}

/// The command handlers; cheap to clone.
#[derive(Clone)]
pub struct Commands {
    inner: Arc<Inner>,
}

struct Inner {
    roster: Roster,
    kicker: Option<Arc<dyn Kicker>>,
    policy: Policy,
    style: PhoneNumbers,
    confirm_ttl_ms: i64,
    store: Store,
    clock: Arc<dyn Clock>,
    pending: DashMap<String, kick::Pending>,
}

/// The commands to register with a bulk overwrite (`PUT …/guilds/{guild}/commands`).
///
/// Both are guild-only. `/kick` has no `default_member_permissions`: a bot cannot grant
/// per-role overrides, so a default would hide it from the roles `[access]` names; the handlers
/// decide (the README's "Who may do what").
pub fn definitions() -> Vec<CreateCommand> {
    vec![
        CreateCommand::new("participants")
            .description("Who is on the conference calls right now")
            .contexts(vec![InteractionContext::Guild])
            .add_option(
                CreateCommandOption::new(
                    CommandOptionType::String,
                    "conference",
                    "Only this conference",
                )
                .set_autocomplete(true),
            )
            .add_option(CreateCommandOption::new(
                CommandOptionType::Boolean,
                "public",
                "Show the list to everyone in the channel (default: only you)",
            )),
        CreateCommand::new("kick")
            .description("Remove a caller from a conference call")
            .contexts(vec![InteractionContext::Guild])
            .add_option(
                CreateCommandOption::new(
                    CommandOptionType::String,
                    "caller",
                    "The caller to remove",
                )
                .required(true)
                .set_autocomplete(true),
            )
            .add_option(
                CreateCommandOption::new(
                    CommandOptionType::String,
                    "reason",
                    "Why (shown with the removal in the channel)",
                )
                .max_length(MAX_REASON_CHARS as u16),
            ),
    ]
}

/// Registers [`definitions`] in the guild, replacing whatever was there.
pub async fn register(http: &serenity::http::Http, guild_id: u64) -> serenity::Result<()> {
    serenity::model::id::GuildId::new(guild_id)
        .set_commands(http, definitions())
        .await
        .map(|_| ())
}

impl Commands {
    pub fn new(deps: Deps) -> Commands {
        Commands {
            inner: Arc::new(Inner {
                roster: deps.roster,
                kicker: deps.kicker,
                policy: Policy::new(deps.access, deps.guild_id),
                style: deps.phone_numbers,
                confirm_ttl_ms: i64::try_from(deps.confirm_ttl.as_millis()).unwrap_or(i64::MAX),
                store: deps.store,
                clock: deps.clock,
                pending: DashMap::new(),
            }),
        }
    }

    /// The one entry point: any interaction in, the reply out.
    pub async fn handle(&self, interaction: Interaction) -> Reply {
        match interaction {
            Interaction::Ping(_) => Reply::Now(CreateInteractionResponse::Pong),
            Interaction::Command(command) => match command.data.name.as_str() {
                "participants" => self.participants(&command).await,
                "kick" => self.kick(&command).await,
                _ => ephemeral("ringside does not know this command."),
            },
            Interaction::Autocomplete(command) => match command.data.name.as_str() {
                "participants" => self.participants_autocomplete(&command),
                "kick" => self.kick_autocomplete(&command),
                _ => Reply::Now(CreateInteractionResponse::Autocomplete(
                    serenity::all::CreateAutocompleteResponse::new(),
                )),
            },
            Interaction::Component(component) => {
                if component.data.custom_id.starts_with("kick:") {
                    self.kick_button(&component).await
                } else if component.data.custom_id.starts_with(WATCH_REMOVE) {
                    self.watch_remove(&component).await
                } else if component
                    .data
                    .custom_id
                    .starts_with(participants::PAGE_PREFIX)
                {
                    self.participants_page(&component).await
                } else {
                    ephemeral("This button is no longer in use.")
                }
            }
            _ => ephemeral("ringside does not handle this kind of interaction."),
        }
    }

    /// Replaces `[access]` (the settings file changed): the next decision uses it.
    pub fn set_access(&self, access: Access) {
        self.inner.policy.set_access(access);
    }

    /// Confirmations waiting for a button (expired ones are dropped as new ones come).
    pub fn pending_confirmations(&self) -> usize {
        self.inner.pending.len()
    }

    fn now_ms(&self) -> i64 {
        self.inner.clock.now().0
    }

    /// Audits a refusal (bounded wait: the reply must leave within Discord's deadline).
    async fn audit_refusal(
        &self,
        action: &str,
        actor: &Invoker,
        target: Option<&ParticipantKey>,
        detail: String,
    ) {
        let entry = AuditEntry {
            at_ms: self.now_ms(),
            actor_id: actor.id.clone(),
            actor_name: actor.display.clone(),
            action: action.to_owned(),
            conference_id: target.map(|key| key.conference.as_str().to_owned()),
            participant_id: target.map(|key| key.participant.as_str().to_owned()),
            outcome: "refused".to_owned(),
            detail,
        };
        match tokio::time::timeout(AUDIT_WAIT, self.inner.store.audit(entry)).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::error!(%error, "could not audit a refusal"),
            Err(_) => tracing::warn!("auditing a refusal took too long; answering first"),
        }
    }

    /// Refuses with an ephemeral message, audited and counted.
    async fn refuse(
        &self,
        action: &str,
        actor: &Invoker,
        target: Option<&ParticipantKey>,
        refusal: &Refusal,
    ) -> String {
        metrics::counter!("ringside_discord_refusals_total", "reason" => refusal.as_str())
            .increment(1);
        tracing::info!(
            user_id = %actor.id,
            action,
            reason = refusal.as_str(),
            "command refused"
        );
        let text = refusal.plain();
        self.audit_refusal(action, actor, target, text.clone())
            .await;
        text
    }
}

/// The member who invoked a command or pressed a button, for access decisions, the audit log
/// and the removal announcement (which names them as a `conference::Actor`).
#[derive(Debug, Clone)]
struct Invoker {
    caller: Caller,
    id: String,
    display: String,
}

impl Invoker {
    fn new(guild_id: Option<u64>, user: &User, member: Option<&Member>) -> Invoker {
        Invoker {
            caller: Caller {
                guild_id,
                user_id: user.id.get(),
                roles: member
                    .map(|m| m.roles.iter().map(|role| role.get()).collect())
                    .unwrap_or_default(),
                permissions: member.and_then(|m| m.permissions),
            },
            id: user.id.get().to_string(),
            display: member
                .map(|m| m.display_name())
                .unwrap_or_else(|| user.display_name())
                .to_owned(),
        }
    }

    fn of_command(command: &CommandInteraction) -> Invoker {
        Invoker::new(
            command.guild_id.map(|g| g.get()),
            &command.user,
            command.member.as_deref(),
        )
    }

    fn of_component(component: &ComponentInteraction) -> Invoker {
        Invoker::new(
            component.guild_id.map(|g| g.get()),
            &component.user,
            component.member.as_ref(),
        )
    }

    fn user_id(&self) -> u64 {
        self.caller.user_id
    }
}

/// A message response body with no mentions allowed.
fn message(content: impl Into<String>) -> CreateInteractionResponseMessage {
    CreateInteractionResponseMessage::new()
        .content(content)
        .allowed_mentions(CreateAllowedMentions::new())
}

/// A new reply message: no mentions allowed, and silent (`/participants public:true` posts in
/// the channel, which must not notify anyone). Updates of an existing message keep its flags.
fn new_message(content: impl Into<String>) -> CreateInteractionResponseMessage {
    message(content).flags(InteractionResponseFlags::SUPPRESS_NOTIFICATIONS)
}

/// An ephemeral message, answered now.
fn ephemeral(content: impl Into<String>) -> Reply {
    Reply::Now(CreateInteractionResponse::Message(
        new_message(content).ephemeral(true),
    ))
}

/// An update of the message the button sits on, its buttons removed.
fn update(content: impl Into<String>) -> Reply {
    Reply::Now(CreateInteractionResponse::UpdateMessage(
        message(content).components(vec![]),
    ))
}

/// An edit of the original response, buttons removed, no mentions allowed.
fn edit(content: impl Into<String>) -> EditInteractionResponse {
    EditInteractionResponse::new()
        .content(content)
        .components(vec![])
        .allowed_mentions(CreateAllowedMentions::new())
}

/// 64-bit FNV-1a: a hash that never changes between builds or runs.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (index, part) in parts.iter().enumerate() {
        if index > 0 {
            hash ^= 0xff;
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        for byte in part.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// Custom id prefix of a watch-list alert's Remove button; the participant key follows.
pub const WATCH_REMOVE: &str = "watch:remove:";

/// The custom id of the Remove button on `key`'s watch-list alert: `watch:remove:p:<16 hex>`.
pub fn watch_remove_id(key: &ParticipantKey) -> String {
    format!("{WATCH_REMOVE}{}", participant_key(key))
}

/// The autocomplete value naming a participant: `p:` and 16 hex digits.
pub fn participant_key(key: &ParticipantKey) -> String {
    format!(
        "p:{:016x}",
        fnv1a(&[key.conference.as_str(), key.participant.as_str()])
    )
}

/// The autocomplete value naming a conference: `c:` and 16 hex digits.
pub fn conference_key(view: &ConferenceView) -> String {
    format!("c:{:016x}", fnv1a(&[view.id.as_str()]))
}

/// Escaped text for places Discord shows literally (autocomplete choices, button labels): the
/// markdown backslashes [`crate::present::escape::text`] added are taken out again, everything else it did
/// (invisible characters gone, one line, `@` broken) stays.
fn plain(escaped: &str) -> String {
    let mut out = String::with_capacity(escaped.len());
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests;
