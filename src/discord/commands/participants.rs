//! `/participants [conference] [public]`: who is on the calls now, from the live roster.
//!
//! One message, at most 2000 characters: conferences oldest first, each with its host, start,
//! count and one line per caller. When everything does not fit, the message lists as many
//! callers as fit and ends with "…and N more callers"; `conference:` narrows it to one call.
//! (Pagination buttons would need state per message for little gain: a call with more than
//! ~30 callers is rare for the people this is for.)

use super::{
    Actor, Commands, MAX_CHOICE_CHARS, MAX_CHOICES, MAX_CONTENT_CHARS, Reply, call_label,
    caller_phrase, conference_key, cut, ephemeral, message, plain,
};
use crate::conference::{ConferenceView, Timestamp};
use crate::config::PhoneNumbers;
use serenity::all::{
    AutocompleteChoice, CommandInteraction, CreateAutocompleteResponse, CreateInteractionResponse,
    ResolvedValue,
};

/// Room kept at the end of a cut message for the "…and N more" line.
const TAIL_RESERVE: usize = 80;

impl Commands {
    pub(super) async fn participants(&self, command: &CommandInteraction) -> Reply {
        let actor = Actor::of_command(command);
        if let Err(refusal) = self.inner.policy.can_list(&actor.caller) {
            let text = self.refuse("list_refused", &actor, None, &refusal).await;
            return ephemeral(text);
        }
        let mut chosen: Option<&str> = None;
        let mut public = false;
        for option in command.data.options() {
            match (option.name, option.value) {
                ("conference", ResolvedValue::String(value)) => chosen = Some(value),
                ("public", ResolvedValue::Boolean(value)) => public = value,
                _ => {}
            }
        }
        let mut live = self.inner.roster.live();
        if let Some(chosen) = chosen.map(str::trim).filter(|c| !c.is_empty()) {
            live.retain(|view| matches_conference(view, chosen, self.inner.style));
            if live.is_empty() {
                return ephemeral(
                    "That conference is not live any more. Run /participants to see every call.",
                );
            }
        }
        let content = if live.is_empty() {
            "Nobody is on a conference call right now.".to_owned()
        } else {
            listing(&live, self.inner.style)
        };
        Reply::Now(CreateInteractionResponse::Message(
            message(content).ephemeral(!public),
        ))
    }

    pub(super) fn participants_autocomplete(&self, command: &CommandInteraction) -> Reply {
        let actor = Actor::of_command(command);
        let mut response = CreateAutocompleteResponse::new();
        if self.inner.policy.can_list(&actor.caller).is_ok() {
            let typed = command
                .data
                .autocomplete()
                .map(|option| option.value.trim().to_lowercase())
                .unwrap_or_default();
            let choices: Vec<AutocompleteChoice> = self
                .inner
                .roster
                .live()
                .iter()
                .filter_map(|view| {
                    let label = format!(
                        "{} · {} on the call",
                        call_label(view, self.inner.style),
                        view.live().count()
                    );
                    (typed.is_empty() || label.to_lowercase().contains(&typed)).then(|| {
                        AutocompleteChoice::new(
                            cut(&plain(&label), MAX_CHOICE_CHARS),
                            conference_key(view),
                        )
                    })
                })
                .take(MAX_CHOICES)
                .collect();
            response = response.set_choices(choices);
        }
        Reply::Now(CreateInteractionResponse::Autocomplete(response))
    }
}

/// Whether the `conference:` value (our key, or typed text) names this conference.
fn matches_conference(view: &ConferenceView, chosen: &str, style: PhoneNumbers) -> bool {
    if chosen.starts_with("c:") {
        return conference_key(view) == chosen;
    }
    let chosen = chosen.to_lowercase();
    call_label(view, style).to_lowercase().contains(&chosen) || view.id.as_str() == chosen
}

/// `<t:1709049892:R>`: each reader sees it relative to their own now.
fn relative(at: Timestamp) -> String {
    format!("<t:{}:R>", at.unix_seconds())
}

/// The lines of one conference: a heading, then one per live caller (never the host).
fn conference_lines(view: &ConferenceView, style: PhoneNumbers) -> (String, Vec<String>) {
    let callers: Vec<_> = view
        .live()
        .filter(|p| {
            view.host_party
                .as_ref()
                .is_none_or(|host| host.as_str() != p.id.as_str())
        })
        .collect();
    let host = view
        .host
        .as_ref()
        .map(|host| caller_phrase(host, style, true))
        .unwrap_or_else(|| "an unknown host".to_owned());
    let mut heading = format!("Conference hosted by {host}");
    if let Some(started) = view.started_at {
        heading.push_str(&format!(", started {}", relative(started)));
    }
    heading.push_str(&match callers.len() {
        0 => " — no callers yet".to_owned(),
        1 => " — 1 caller".to_owned(),
        n => format!(" — {n} callers"),
    });
    let lines = callers
        .iter()
        .map(|p| {
            let mut line = format!("• {}", caller_phrase(&p.identity, style, false));
            if let Some(joined) = p.joined_at {
                line.push_str(&format!(", joined {}", relative(joined)));
            }
            if p.muted {
                line.push_str(" · muted");
            }
            if p.on_hold {
                line.push_str(" · on hold");
            }
            line
        })
        .collect();
    (heading, lines)
}

/// Every conference in one message of at most 2000 characters (see the module doc).
pub(super) fn listing(live: &[ConferenceView], style: PhoneNumbers) -> String {
    let mut out = String::new();
    let mut used = 0usize;
    let mut left_out = 0usize;
    let fits = |out: &mut String, used: &mut usize, line: &str| -> bool {
        let len = line.chars().count() + 1;
        if *used + len + TAIL_RESERVE > MAX_CONTENT_CHARS {
            return false;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(line);
        *used += len;
        true
    };
    for (index, view) in live.iter().enumerate() {
        let (heading, lines) = conference_lines(view, style);
        let heading = if index > 0 {
            format!("\n{heading}")
        } else {
            heading
        };
        if left_out > 0 || !fits(&mut out, &mut used, &heading) {
            left_out += lines.len();
            continue;
        }
        for line in lines {
            if left_out > 0 || !fits(&mut out, &mut used, &line) {
                left_out += 1;
            }
        }
    }
    match left_out {
        0 => {}
        1 => out.push_str("\n…and 1 more caller (pick one conference to see it whole)"),
        n => out.push_str(&format!(
            "\n…and {n} more callers (pick one conference to see it whole)"
        )),
    }
    out
}
