//! `/participants [conference] [public]`: who is on the calls now, from the live roster.
//!
//! Conferences oldest first, each with its host, start, count and one line per caller. A list
//! that does not fit one message (2000 characters) is paginated: pages break between lines, a
//! conference continued on the next page repeats its heading, and "◂ Previous" / "Next ▸"
//! buttons turn the pages. The buttons carry the page and the scope (`all` or a conference key)
//! in their custom id, so paging keeps no state: each press re-reads the live roster and checks
//! list access again. `conference:` narrows the list to one call.

use super::{
    Commands, Invoker, MAX_CHOICE_CHARS, MAX_CHOICES, Reply, conference_key, ephemeral, message,
    new_message, plain,
};
use crate::conference::{ConferenceView, Timestamp};
use crate::config::PhoneNumbers;
use crate::present::markdown;
use crate::present::words::{self, MAX_CONTENT_CHARS, UNKNOWN_HOST};
use serenity::all::{
    AutocompleteChoice, ButtonStyle, CommandInteraction, ComponentInteraction, CreateActionRow,
    CreateAutocompleteResponse, CreateButton, CreateInteractionResponse, ResolvedValue,
};

/// Room kept at the end of a page for its "Page 2 of 3" line.
const FOOTER_RESERVE: usize = 40;
/// The custom-id prefix of the paging buttons: `participants:page:<n>:<scope>`.
pub const PAGE_PREFIX: &str = "participants:page:";
/// The scope of a list of every live conference.
const ALL: &str = "all";

impl Commands {
    pub(super) async fn participants(&self, command: &CommandInteraction) -> Reply {
        let actor = Invoker::of_command(command);
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
        let mut scope = ALL.to_owned();
        if let Some(chosen) = chosen.map(str::trim).filter(|c| !c.is_empty()) {
            live.retain(|view| matches_conference(view, chosen, self.inner.style));
            match live.as_slice() {
                [] => {
                    return ephemeral(
                        "That conference is not live any more. Run /participants to see every call.",
                    );
                }
                [one] => scope = conference_key(one),
                _ => {}
            }
        }
        let (content, buttons) = page(&live, self.inner.style, 1, &scope);
        Reply::Now(CreateInteractionResponse::Message(
            new_message(content).components(buttons).ephemeral(!public),
        ))
    }

    /// A paging button: the page asked for, re-read from the roster now.
    pub(super) async fn participants_page(&self, component: &ComponentInteraction) -> Reply {
        let actor = Invoker::of_component(component);
        if let Err(refusal) = self.inner.policy.can_list(&actor.caller) {
            let text = self.refuse("list_refused", &actor, None, &refusal).await;
            return ephemeral(text);
        }
        let rest = component
            .data
            .custom_id
            .strip_prefix(PAGE_PREFIX)
            .unwrap_or_default();
        let (number, scope) = rest.split_once(':').unwrap_or((rest, ALL));
        let number: usize = number.parse().unwrap_or(1);
        let mut live = self.inner.roster.live();
        if scope != ALL {
            live.retain(|view| conference_key(view) == scope);
        }
        let (content, buttons) = page(&live, self.inner.style, number, scope);
        Reply::Now(CreateInteractionResponse::UpdateMessage(
            message(content).components(buttons),
        ))
    }

    pub(super) fn participants_autocomplete(&self, command: &CommandInteraction) -> Reply {
        let actor = Invoker::of_command(command);
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
                        markdown::call_label(view, self.inner.style),
                        view.live().count()
                    );
                    (typed.is_empty() || label.to_lowercase().contains(&typed)).then(|| {
                        AutocompleteChoice::new(
                            words::cut(&plain(&label), MAX_CHOICE_CHARS),
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
    markdown::call_label(view, style)
        .to_lowercase()
        .contains(&chosen)
        || view.id.as_str() == chosen
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
        .map(|host| markdown::caller(host, style, true))
        .unwrap_or_else(|| UNKNOWN_HOST.to_owned());
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
            let mut line = format!("• {}", markdown::caller(&p.identity, style, false));
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

/// The pages of the list: each at most 2000 characters with its footer, broken between lines; a
/// conference continued from the previous page repeats its heading.
pub(super) fn pages(live: &[ConferenceView], style: PhoneNumbers) -> Vec<String> {
    let budget = MAX_CONTENT_CHARS - FOOTER_RESERVE;
    let mut pages = Vec::new();
    let mut current = String::new();
    let push = |page: &mut String, line: &str| {
        if !page.is_empty() {
            page.push('\n');
        }
        page.push_str(line);
    };
    let len = |text: &str| text.chars().count();
    for view in live {
        let (heading, lines) = conference_lines(view, style);
        // A heading starts a page rather than end one.
        let first = lines.first().map_or(0, |line| len(line) + 1);
        if !current.is_empty() && len(&current) + 2 + len(&heading) + first > budget {
            pages.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push('\n');
        }
        push(&mut current, &heading);
        for line in lines {
            if len(&current) + 1 + len(&line) > budget {
                pages.push(std::mem::take(&mut current));
                push(&mut current, &format!("{heading} (continued)"));
            }
            push(&mut current, &line);
        }
    }
    if !current.is_empty() {
        pages.push(current);
    }
    pages
}

/// Page `number` (from 1, clamped to the pages there are) with its footer and paging buttons.
pub(super) fn page(
    live: &[ConferenceView],
    style: PhoneNumbers,
    number: usize,
    scope: &str,
) -> (String, Vec<CreateActionRow>) {
    let pages = pages(live, style);
    if pages.is_empty() {
        let text = if scope == ALL {
            "Nobody is on a conference call right now."
        } else {
            "That conference is not live any more. Run /participants to see every call."
        };
        return (text.to_owned(), vec![]);
    }
    let total = pages.len();
    let number = number.clamp(1, total);
    let mut content = pages[number - 1].clone();
    if total == 1 {
        return (content, vec![]);
    }
    content.push_str(&format!("\n\n_Page {number} of {total}_"));
    let button = |target: usize, label: &str, enabled: bool| {
        CreateButton::new(format!("{PAGE_PREFIX}{target}:{scope}"))
            .label(label)
            .style(ButtonStyle::Secondary)
            .disabled(!enabled)
    };
    let row = CreateActionRow::Buttons(vec![
        button(number.saturating_sub(1), "◂ Previous", number > 1),
        button(number + 1, "Next ▸", number < total),
    ]);
    (content, vec![row])
}
