//! The markdown formatter: how ringside speaks in Discord — in channel messages and in the
//! commands' replies, autocomplete choices and buttons.
//!
//! Every caller-supplied text (names, numbers shown in full, kick reasons, a moderator's display
//! name) goes through [`escape::text`], so nothing in it formats, mentions or hides; names are
//! bold in announcements; times are Discord timestamps, shown in each reader's own zone.

use super::escape;
use super::phrase::{Phrase, What};
use super::words::{self, MAX_REASON_CHARS, UNKNOWN_CALLER};
use crate::conference::{Actor, ConferenceView, Identity, LeaveReason, Timestamp};
use crate::config::PhoneNumbers;

/// A caller's name, inert, if there is a visible one.
pub fn name(identity: &Identity) -> Option<String> {
    identity.name.as_deref().and_then(escape::text)
}

/// A caller's name as shown in an announcement: bold and inert.
fn bold_name(identity: &Identity) -> Option<String> {
    name(identity).map(|name| format!("**{name}**"))
}

/// The number as `privacy.phone_numbers` allows, inert: with `full`, it is RingCentral's string
/// as given (it may be a SIP address or anything a caller ID carries).
pub fn number(identity: &Identity, style: PhoneNumbers) -> Option<String> {
    identity
        .phone_number
        .as_deref()
        .and_then(|number| words::phone_number(number, style))
        .and_then(|number| escape::text(&number))
}

/// `Paco Vu (•••1119)` (the name in bold when `bold`), `•••1119`, or `an unknown caller`.
pub fn caller(identity: &Identity, style: PhoneNumbers, bold: bool) -> String {
    let shown = if bold {
        bold_name(identity)
    } else {
        name(identity)
    };
    match (shown, number(identity, style)) {
        (Some(name), Some(number)) => format!("{name} ({number})"),
        (Some(name), None) => name,
        (None, Some(number)) => number,
        (None, None) => UNKNOWN_CALLER.to_owned(),
    }
}

/// `Paco Vu`, else the number as shown, else `an unknown caller`.
pub fn short_name(identity: &Identity, style: PhoneNumbers) -> String {
    name(identity)
        .or_else(|| number(identity, style))
        .unwrap_or_else(|| UNKNOWN_CALLER.to_owned())
}

/// A host, inert and without markdown: name, else number.
pub fn host(identity: &Identity, style: PhoneNumbers) -> Option<String> {
    name(identity).or_else(|| number(identity, style))
}

/// `Agent 122's call`, `•••4567's call`, or `a conference call`.
pub fn call_label(view: &ConferenceView, style: PhoneNumbers) -> String {
    view.host
        .as_ref()
        .and_then(|host| self::host(host, style))
        .map(|host| format!("{host}'s call"))
        .unwrap_or_else(|| "a conference call".to_owned())
}

/// `<t:UNIX:t>`: a time each reader sees in their own zone (`style` is Discord's format letter).
pub fn timestamp(at: Timestamp, style: char) -> String {
    format!("<t:{}:{style}>", at.unix_seconds())
}

/// A moderator: their mention (which pings nobody, since no message allows mentions), else
/// their display name, inert.
pub fn actor(actor: &Actor) -> String {
    if !actor.id.is_empty() && actor.id.chars().all(|c| c.is_ascii_digit()) {
        format!("<@{}>", actor.id)
    } else {
        escape::text(&actor.display).unwrap_or_else(|| "a moderator".to_owned())
    }
}

/// A kick reason, inert and at most [`MAX_REASON_CHARS`].
pub fn reason(text: &str) -> Option<String> {
    escape::text_limited(text, MAX_REASON_CHARS)
}

/// One line of an announcement.
pub fn line(phrase: &Phrase, style: PhoneNumbers) -> String {
    match &phrase.what {
        What::Started => {
            let mut text = "📞 **Conference started**".to_owned();
            if let Some(host) = phrase
                .host
                .as_ref()
                .and_then(|host| self::host(host, style))
            {
                text.push_str(&format!(" · host {host}"));
            }
            text.push_str(&format!(" · {}", timestamp(phrase.at, 't')));
            text
        }
        What::Joined { who, on_call } => {
            let who = words::sentence_start(caller(who, style, true));
            format!("➕ {who} joined · {}", words::on_call(*on_call))
        }
        What::Left {
            who,
            reason,
            stayed_secs,
            by,
            why,
            on_call,
        } => {
            // A leave names the caller only: the join already gave the number.
            let who =
                words::sentence_start(bold_name(who).unwrap_or_else(|| caller(who, style, true)));
            let stayed = words::after(*stayed_secs);
            let count = format!(" · {}", words::on_call(*on_call));
            match reason {
                LeaveReason::HungUp => format!("➖ {who} left{stayed}{count}"),
                LeaveReason::Vanished => format!("➖ {who} dropped off the call{stayed}{count}"),
                LeaveReason::ConferenceEnded => {
                    format!("➖ {who} left{stayed} when the conference ended")
                }
                LeaveReason::Removed => {
                    let by = by
                        .as_ref()
                        .map(|by| format!(" by {}", actor(by)))
                        .unwrap_or_default();
                    let why = why
                        .as_deref()
                        .and_then(self::reason)
                        .map(|reason| format!(" — {reason}"))
                        .unwrap_or_default();
                    format!("🚫 {who} was removed{by}{stayed}{why}{count}")
                }
            }
        }
        What::Ended {
            lasted_secs,
            callers,
            peak,
        } => {
            let lasted = words::after(*lasted_secs);
            format!(
                "📴 **Conference ended**{lasted} · {} · peak {peak}",
                words::callers(*callers)
            )
        }
    }
}
