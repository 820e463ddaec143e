//! `/kick caller:<autocomplete> [reason]`: an ephemeral confirmation, then the removal through the
//! kick port.
//!
//! Access is checked on autocomplete (others get no choices), on the command and again on the
//! confirming button, with the caller's presence and the per-member limit. The confirmation lives
//! in memory, bound to the invoking member, until `discord.confirm_secs` pass or a button uses it.
//!
//! A watch-list alert's Remove button asks the same way ([`Commands::watch_remove`]): one path,
//! so the access re-check, the confirmation bound to the presser, the limit and the audit log
//! are the same as for `/kick`.

use super::{
    Commands, Invoker, MAX_CHOICE_CHARS, MAX_CHOICES, Reply, WATCH_REMOVE, edit, ephemeral,
    message, new_message, participant_key, plain, update,
};
use crate::conference::{Identity, ParticipantKey};
use crate::pipeline::{KickOutcome, KickRequest};
use crate::present::words::{self, MAX_REASON_CHARS};
use crate::present::{escape, markdown};
use serenity::all::{
    AutocompleteChoice, ButtonStyle, CommandInteraction, ComponentInteraction, CreateActionRow,
    CreateAutocompleteResponse, CreateButton, CreateInteractionResponse, ResolvedValue,
};

/// Custom id prefix of the confirming button.
pub const KICK_YES: &str = "kick:yes:";
/// Custom id prefix of the cancelling button.
pub const KICK_NO: &str = "kick:no:";
/// Longest button label Discord takes.
const MAX_LABEL_CHARS: usize = 80;

/// A confirmation waiting for its button.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    user_id: u64,
    key: ParticipantKey,
    reason: Option<String>,
    expires_at_ms: i64,
}

/// Where a removal was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Asked {
    /// `/kick caller:`.
    Command,
    /// A watch-list alert's Remove button.
    Alert,
}

/// A live caller someone may name.
#[derive(Debug, Clone)]
struct Target {
    key: ParticipantKey,
    identity: Identity,
    call: String,
    is_host: bool,
}

enum Resolved {
    One(Target),
    Host(Identity),
    Ambiguous(usize),
    Nobody,
}

fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

impl Commands {
    /// Every live participant, the host included (marked), oldest conference first.
    fn targets(&self) -> Vec<Target> {
        let style = self.inner.style;
        let mut targets = Vec::new();
        for view in self.inner.roster.live() {
            let call = markdown::call_label(&view, style);
            for participant in view.live() {
                let is_host = view
                    .host_party
                    .as_ref()
                    .is_some_and(|host| host.as_str() == participant.id.as_str());
                targets.push(Target {
                    key: ParticipantKey {
                        conference: view.id.clone(),
                        participant: participant.id.clone(),
                    },
                    identity: participant.identity.clone(),
                    call: call.clone(),
                    is_host,
                });
            }
        }
        targets
    }

    /// The caller a `/kick caller:` value names: our key, else a unique exact name, else a
    /// unique number (4 digits or more, the whole number or its end).
    fn resolve(&self, value: &str) -> Resolved {
        let value = value.trim();
        let targets = self.targets();
        let found: Vec<&Target> = if value.starts_with("p:") {
            targets
                .iter()
                .filter(|t| participant_key(&t.key) == value)
                .collect()
        } else {
            let lower = value.to_lowercase();
            let by_name: Vec<&Target> = targets
                .iter()
                .filter(|t| {
                    t.identity
                        .name
                        .as_deref()
                        .is_some_and(|name| name.trim().to_lowercase() == lower)
                })
                .collect();
            let typed = digits(value);
            if !by_name.is_empty() {
                by_name
            } else if typed.len() >= 4
                && typed.len() == value.chars().filter(|c| c.is_alphanumeric()).count()
            {
                targets
                    .iter()
                    .filter(|t| {
                        t.identity
                            .phone_number
                            .as_deref()
                            .is_some_and(|number| digits(number).ends_with(&typed))
                    })
                    .collect()
            } else {
                Vec::new()
            }
        };
        let callers: Vec<&Target> = found.iter().copied().filter(|t| !t.is_host).collect();
        match (callers.len(), found.first()) {
            (1, _) => Resolved::One(callers[0].clone()),
            (0, Some(host)) => Resolved::Host(host.identity.clone()),
            (0, None) => match self.host_named(value) {
                Some(host) => Resolved::Host(host),
                None => Resolved::Nobody,
            },
            (n, _) => Resolved::Ambiguous(n),
        }
    }

    /// The host of a live conference whose name (or number, 4 digits or more) is `value`.
    fn host_named(&self, value: &str) -> Option<Identity> {
        let lower = value.to_lowercase();
        let typed = digits(value);
        self.inner
            .roster
            .live()
            .into_iter()
            .filter_map(|view| view.host)
            .find(|host| {
                host.name
                    .as_deref()
                    .is_some_and(|name| name.trim().to_lowercase() == lower)
                    || (typed.len() >= 4
                        && host
                            .phone_number
                            .as_deref()
                            .is_some_and(|number| digits(number).ends_with(&typed)))
            })
    }

    pub(super) fn kick_autocomplete(&self, command: &CommandInteraction) -> Reply {
        let actor = Invoker::of_command(command);
        let mut response = CreateAutocompleteResponse::new();
        if self.inner.kicker.is_some() && self.inner.policy.can_kick(&actor.caller).is_ok() {
            let typed = command
                .data
                .autocomplete()
                .map(|option| option.value.trim().to_lowercase())
                .unwrap_or_default();
            let typed_digits = digits(&typed);
            let style = self.inner.style;
            let choices: Vec<AutocompleteChoice> = self
                .targets()
                .into_iter()
                .filter(|t| !t.is_host)
                .filter(|t| {
                    typed.is_empty()
                        || t.identity
                            .name
                            .as_deref()
                            .is_some_and(|name| name.to_lowercase().contains(&typed))
                        || (!typed_digits.is_empty()
                            && t.identity
                                .phone_number
                                .as_deref()
                                .is_some_and(|n| digits(n).contains(&typed_digits)))
                })
                .take(MAX_CHOICES)
                .map(|t| {
                    let label = format!(
                        "{} · {}",
                        markdown::caller(&t.identity, style, false),
                        t.call
                    );
                    AutocompleteChoice::new(
                        words::cut(&plain(&label), MAX_CHOICE_CHARS),
                        participant_key(&t.key),
                    )
                })
                .collect();
            response = response.set_choices(choices);
        }
        Reply::Now(CreateInteractionResponse::Autocomplete(response))
    }

    pub(super) async fn kick(&self, command: &CommandInteraction) -> Reply {
        let actor = Invoker::of_command(command);
        let mut value = "";
        let mut reason: Option<String> = None;
        for option in command.data.options() {
            match (option.name, option.value) {
                ("caller", ResolvedValue::String(v)) => value = v,
                ("reason", ResolvedValue::String(v)) => {
                    let v = v.trim();
                    if !v.is_empty() {
                        reason = Some(v.chars().take(MAX_REASON_CHARS).collect());
                    }
                }
                _ => {}
            }
        }
        self.ask_to_kick(actor, value, reason, Asked::Command).await
    }

    /// A watch-list alert's Remove button (`watch:remove:<participant key>`): the same
    /// confirmation as `/kick` naming that caller, for the member who pressed it.
    pub(super) async fn watch_remove(&self, component: &ComponentInteraction) -> Reply {
        let actor = Invoker::of_component(component);
        let Some(key) = component.data.custom_id.strip_prefix(WATCH_REMOVE) else {
            return ephemeral("This button is no longer in use.");
        };
        self.ask_to_kick(actor, key, None, Asked::Alert).await
    }

    /// The one way to a removal: access, the kick port, the per-member limit and the caller
    /// checked for `actor`, then an ephemeral confirmation bound to them (its buttons are
    /// [`Commands::kick_button`]'s).
    async fn ask_to_kick(
        &self,
        actor: Invoker,
        value: &str,
        reason: Option<String>,
        asked: Asked,
    ) -> Reply {
        if let Err(refusal) = self.inner.policy.can_kick(&actor.caller) {
            let text = self.refuse("kick_refused", &actor, None, &refusal).await;
            return ephemeral(text);
        }
        if self.inner.kicker.is_none() {
            return ephemeral(
                "Removing callers needs RingCentral credentials; ringside is running without them (local mode).",
            );
        }
        if let Err(refusal) = self
            .inner
            .policy
            .check_limit(actor.user_id(), self.now_ms())
        {
            let text = self.refuse("kick_refused", &actor, None, &refusal).await;
            return ephemeral(text);
        }
        let style = self.inner.style;
        let target = match self.resolve(value) {
            Resolved::One(target) => target,
            Resolved::Host(identity) => {
                return ephemeral(format!(
                    "{} is the host of the call and cannot be removed.",
                    markdown::short_name(&identity, style)
                ));
            }
            Resolved::Ambiguous(n) => {
                return ephemeral(format!(
                    "{n} callers match that; pick one from the list as you type."
                ));
            }
            Resolved::Nobody if asked == Asked::Alert => {
                return ephemeral("That caller is no longer on the call; nobody was removed.");
            }
            Resolved::Nobody => {
                return ephemeral(
                    "No caller on a live conference matches that; they may have left. Pick one from the list as you type.",
                );
            }
        };
        let now = self.now_ms();
        self.inner.pending.retain(|_, p| p.expires_at_ms > now);
        let id = confirmation_id();
        let expires_at_ms = now.saturating_add(self.inner.confirm_ttl_ms);
        self.inner.pending.insert(
            id.clone(),
            Pending {
                user_id: actor.user_id(),
                key: target.key.clone(),
                reason: reason.clone(),
                expires_at_ms,
            },
        );
        let mut content = format!(
            "Remove {} from {}?",
            markdown::caller(&target.identity, style, true),
            target.call
        );
        if let Some(reason) = reason.as_deref().and_then(markdown::reason) {
            content.push_str(&format!("\nReason: {reason}"));
        }
        content.push_str(&format!(
            "\nThis expires <t:{}:R>.",
            expires_at_ms.div_euclid(1000)
        ));
        let label = words::cut(
            &plain(&format!(
                "Remove {}",
                markdown::short_name(&target.identity, style)
            )),
            MAX_LABEL_CHARS,
        );
        let buttons = CreateActionRow::Buttons(vec![
            CreateButton::new(format!("{KICK_YES}{id}"))
                .style(ButtonStyle::Danger)
                .label(label),
            CreateButton::new(format!("{KICK_NO}{id}"))
                .style(ButtonStyle::Secondary)
                .label("Cancel"),
        ]);
        Reply::Now(CreateInteractionResponse::Message(
            new_message(content)
                .ephemeral(true)
                .components(vec![buttons]),
        ))
    }

    pub(super) async fn kick_button(&self, component: &ComponentInteraction) -> Reply {
        let custom_id = component.data.custom_id.as_str();
        let (confirm, id) = if let Some(id) = custom_id.strip_prefix(KICK_YES) {
            (true, id)
        } else if let Some(id) = custom_id.strip_prefix(KICK_NO) {
            (false, id)
        } else {
            return ephemeral("This button is no longer in use.");
        };
        let actor = Invoker::of_component(component);
        let Some(pending) = self.inner.pending.get(id).map(|p| p.clone()) else {
            return update("This confirmation has expired or was already used. Run /kick again.");
        };
        if pending.user_id != actor.user_id() {
            return ephemeral("Only the member who ran /kick can confirm it.");
        }
        // From here on the confirmation is used up, whatever happens. Taken atomically: two
        // presses handled at once (each interaction runs in its own task) get it once.
        let Some((_, pending)) = self
            .inner
            .pending
            .remove_if(id, |_, p| p.user_id == actor.user_id())
        else {
            return ephemeral("This confirmation was already used.");
        };
        let now = self.now_ms();
        if pending.expires_at_ms <= now {
            return update("This confirmation has expired. Run /kick again.");
        }
        if !confirm {
            return update("Cancelled; nobody was removed.");
        }
        let refusal = match self.inner.policy.can_kick(&actor.caller) {
            Ok(()) => self.inner.policy.take_kick(actor.user_id(), now).err(),
            Err(refusal) => Some(refusal),
        };
        if let Some(refusal) = refusal {
            let text = self
                .refuse("kick_refused", &actor, Some(&pending.key), &refusal)
                .await;
            return update(text);
        }
        let Some(kicker) = self.inner.kicker.clone() else {
            return update(
                "Removing callers needs RingCentral credentials; ringside is running without them (local mode).",
            );
        };
        let style = self.inner.style;
        let Some(view) = self.inner.roster.conference(&pending.key.conference) else {
            return update("That call has ended; nobody was removed.");
        };
        if view
            .host_party
            .as_ref()
            .is_some_and(|host| host.as_str() == pending.key.participant.as_str())
        {
            let refusal_text = "The host cannot be removed.".to_owned();
            self.audit_refusal(
                "kick_refused",
                &actor,
                Some(&pending.key),
                refusal_text.clone(),
            )
            .await;
            return update(refusal_text);
        }
        let Some(participant) = view
            .participant(&pending.key.participant)
            .filter(|p| p.live && !view.ended)
            .cloned()
        else {
            return update("That caller is no longer on the call; nobody was removed.");
        };
        let name = markdown::short_name(&participant.identity, style);
        let ack = CreateInteractionResponse::UpdateMessage(
            message(format!("Removing {name}…")).components(vec![]),
        );
        let request = KickRequest {
            participant: pending.key.clone(),
            by: crate::conference::Actor {
                id: actor.id.clone(),
                display: actor.display.clone(),
            },
            reason: pending.reason.clone(),
        };
        let call = markdown::call_label(&view, style);
        let work = Box::pin(async move {
            let outcome = kicker.kick(request).await;
            edit(outcome_text(&outcome, &name, &call))
        });
        Reply::Deferred { ack, work }
    }
}

/// The result of a removal, in one short sentence.
pub(super) fn outcome_text(outcome: &KickOutcome, name: &str, call: &str) -> String {
    match outcome {
        KickOutcome::Removed => format!("Removed {name} from {call}."),
        KickOutcome::AlreadyGone => format!("{name} had already left the call."),
        KickOutcome::Host => "The host cannot be removed.".to_owned(),
        KickOutcome::Failed { reason } => format!(
            "RingCentral did not remove {name}: {}.",
            escape::text_limited(reason, 300)
                .unwrap_or_else(|| "no reason given".to_owned())
                .trim_end_matches('.')
        ),
    }
}

/// A fresh confirmation id (random, 16 hex digits).
fn confirmation_id() -> String {
    crate::util::random::hex(8).unwrap_or_else(|| {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        format!("{:016x}", nanos ^ NEXT.fetch_add(1, Ordering::Relaxed))
    })
}
