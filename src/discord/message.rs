//! Announcements as Discord messages: the lines (the phrasebook's markdown formatter, rendered
//! when the message is built, just before it can leave, from the roster) grouped by
//! conference under headers, the "while ringside was away" summary, the health notices, thread
//! names, and the message body with its nonce.
//!
//! Every caller-supplied text goes through [`escape::text`] (in [`markdown`]); every message
//! body carries an empty `allowed_mentions` and the `SUPPRESS_NOTIFICATIONS | SUPPRESS_EMBEDS`
//! flags, so nothing in it pings or unfurls — except a watch-list alert ([`alert_body`]), which
//! notifies and mentions exactly its alert roles.
//! A message never exceeds [`MAX_CONTENT_CHARS`]: longer announcements are split at line
//! boundaries, repeating a conference's header on the continuation.

use crate::conference::{ConferenceEvent, ConferenceId, EventKind, Roster, Timestamp};
use crate::config::PhoneNumbers;
use crate::present::markdown::{self, timestamp};
use crate::present::{escape, phrase};
use crate::store::BatchFile;
use serenity::builder::{CreateAllowedMentions, CreateMessage};
use serenity::model::channel::{MessageFlags, Nonce};
use std::collections::BTreeMap;

pub use crate::present::words::MAX_CONTENT_CHARS;
/// Discord's limit on a thread name, in characters.
pub const MAX_THREAD_NAME_CHARS: usize = 100;

/// What a conference is called in a header or a thread name: its host and start time, as known
/// now (roster), else from `events`.
struct ConferenceLabel {
    host: Option<String>,
    started_at: Option<Timestamp>,
}

fn label(
    conference: &ConferenceId,
    events: &[&ConferenceEvent],
    roster: &Roster,
    style: PhoneNumbers,
) -> ConferenceLabel {
    let view = roster.conference(conference);
    let event_host = events.iter().find_map(|event| match &event.kind {
        EventKind::ConferenceStarted { host } => host.clone(),
        _ => None,
    });
    let host = view
        .as_ref()
        .and_then(|view| view.host.clone())
        .or(event_host)
        .and_then(|identity| markdown::host(&identity, style));
    let started_at = view.as_ref().and_then(|view| view.started_at).or_else(|| {
        events.iter().find_map(|event| match event.kind {
            EventKind::ConferenceStarted { .. } => Some(event.at),
            _ => None,
        })
    });
    ConferenceLabel { host, started_at }
}

/// `**Conference · host Agent 122 · <t:…:t>**`: names one conference among several.
fn header(conference: &ConferenceId, label: &ConferenceLabel) -> String {
    let mut text = "Conference".to_owned();
    if label.host.is_none() && label.started_at.is_none() {
        // Nothing better to tell two conferences apart by than the end of their id.
        let id: Vec<char> = conference.as_str().chars().collect();
        let tail: String = id[id.len().saturating_sub(6)..].iter().collect();
        if let Some(tail) = escape::text(&tail) {
            text.push_str(&format!(" …{tail}"));
        }
    }
    if let Some(host) = &label.host {
        text.push_str(&format!(" · host {host}"));
    }
    if let Some(at) = label.started_at {
        text.push_str(&format!(" · {}", timestamp(at, 't')));
    }
    format!("**{text}**")
}

/// One line for one event, from the roster at the moment it is said.
pub fn line(event: &ConferenceEvent, roster: &Roster, style: PhoneNumbers) -> String {
    markdown::line(&phrase(event, roster), style)
}

/// Lines under an optional header; a split repeats the header on the continuation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub header: Option<String>,
    pub lines: Vec<String>,
}

/// The sections of an announcement of `events` (in order): one conference → its lines without a
/// header; several → each conference's lines under its header, conferences in order of their
/// first event.
pub fn sections(events: &[&ConferenceEvent], roster: &Roster, style: PhoneNumbers) -> Vec<Section> {
    let groups = by_conference(events);
    let several = groups.len() > 1;
    groups
        .into_iter()
        .map(|(conference, events)| Section {
            // A group that opens with its start line is named by it.
            header: (several
                && !matches!(
                    events.first().map(|event| &event.kind),
                    Some(EventKind::ConferenceStarted { .. })
                ))
            .then(|| header(&conference, &label(&conference, &events, roster, style))),
            lines: events
                .iter()
                .map(|event| line(event, roster, style))
                .collect(),
        })
        .collect()
}

/// Events grouped by conference, conferences in order of their first event.
fn by_conference<'a>(
    events: &[&'a ConferenceEvent],
) -> Vec<(ConferenceId, Vec<&'a ConferenceEvent>)> {
    let mut groups: Vec<(ConferenceId, Vec<&ConferenceEvent>)> = Vec::new();
    for event in events {
        match groups
            .iter_mut()
            .find(|(conference, _)| conference == &event.conference_id)
        {
            Some((_, group)) => group.push(event),
            None => groups.push((event.conference_id.clone(), vec![event])),
        }
    }
    groups
}

fn chars(text: &str) -> usize {
    text.chars().count()
}

/// A line cut to fit a message on its own (lines are short; this is a safety net).
fn fit(line: &str, max: usize) -> String {
    if chars(line) <= max {
        return line.to_owned();
    }
    let mut cut: String = line.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Message contents of at most `max` characters each, split only between lines.
pub fn split(sections: &[Section], max: usize) -> Vec<String> {
    let mut messages = Vec::new();
    let mut current = String::new();
    let push_line = |current: &mut String, messages: &mut Vec<String>, line: &str| -> bool {
        // Answers whether `line` started a new message.
        let line = fit(line, max);
        let needed = if current.is_empty() {
            chars(&line)
        } else {
            chars(current) + 1 + chars(&line)
        };
        let fresh = if needed > max && !current.is_empty() {
            messages.push(std::mem::take(current).trim_end().to_owned());
            true
        } else {
            current.is_empty()
        };
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(&line);
        fresh
    };
    for (index, section) in sections.iter().enumerate() {
        if index > 0 && !current.is_empty() && chars(&current) + 1 < max {
            // A blank line between conferences.
            current.push('\n');
        }
        if let Some(header) = &section.header {
            // Keep a header with at least its first line.
            let first = section.lines.first().map(String::as_str).unwrap_or("");
            let together = chars(header) + 1 + chars(first);
            if !current.is_empty() && chars(&current) + 1 + together > max {
                messages.push(std::mem::take(&mut current).trim_end().to_owned());
            }
            push_line(&mut current, &mut messages, header);
        }
        for line in &section.lines {
            let fresh = push_line(&mut current, &mut messages, line);
            if fresh && let Some(header) = &section.header {
                let line = std::mem::take(&mut current);
                let continued = format!("{header} (continued)");
                if chars(&continued) + 1 + chars(&line) <= max {
                    current = format!("{continued}\n{line}");
                } else {
                    current = line;
                }
            }
        }
    }
    if !current.is_empty() {
        messages.push(current);
    }
    messages
}

/// The contents announcing `events`, each within Discord's limit.
pub fn announcement(
    events: &[&ConferenceEvent],
    roster: &Roster,
    style: PhoneNumbers,
) -> Vec<String> {
    split(&sections(events, roster, style), MAX_CONTENT_CHARS)
}

/// Counts of what happened in one conference while ringside was away.
#[derive(Debug, Default, Clone, Copy)]
struct AwayCounts {
    started: u32,
    joined: u32,
    left: u32,
    ended: u32,
}

fn plural(count: u32, one: &str, many: &str) -> String {
    if count == 1 {
        format!("1 {one}")
    } else {
        format!("{count} {many}")
    }
}

/// The "while ringside was away" summary of stale events: per conference, counts only (no
/// per-caller list), and the time span they cover.
pub fn away_summary(
    events: &[&ConferenceEvent],
    roster: &Roster,
    style: PhoneNumbers,
) -> Vec<String> {
    let (Some(first), Some(last)) = (
        events.iter().map(|event| event.at).min(),
        events.iter().map(|event| event.at).max(),
    ) else {
        return Vec::new();
    };
    let mut lines = vec![format!(
        "⏸️ **While ringside was away** ({} – {}), these were not announced one by one:",
        timestamp(first, 'f'),
        timestamp(last, 't')
    )];
    let mut totals: BTreeMap<&str, u32> = BTreeMap::new();
    for (conference, events) in by_conference(events) {
        let mut counts = AwayCounts::default();
        for event in &events {
            match event.kind {
                EventKind::ConferenceStarted { .. } => counts.started += 1,
                EventKind::ParticipantJoined { .. } => counts.joined += 1,
                EventKind::ParticipantLeft { .. } => counts.left += 1,
                EventKind::ConferenceEnded { .. } => counts.ended += 1,
            }
        }
        *totals.entry("conferences").or_default() += 1;
        let mut parts = Vec::new();
        if counts.started > 0 {
            parts.push("started".to_owned());
        }
        if counts.joined > 0 {
            parts.push(plural(counts.joined, "join", "joins"));
        }
        if counts.left > 0 {
            parts.push(plural(counts.left, "leave", "leaves"));
        }
        if counts.ended > 0 {
            parts.push("ended".to_owned());
        }
        let label = label(&conference, &events, roster, style);
        let name = match (&label.host, label.started_at) {
            (Some(host), Some(at)) => format!("host {host}, from {}", timestamp(at, 't')),
            (Some(host), None) => format!("host {host}"),
            (None, Some(at)) => format!("from {}", timestamp(at, 't')),
            (None, None) => "a conference".to_owned(),
        };
        lines.push(format!("• {name}: {}", parts.join(" · ")));
    }
    split(
        &[Section {
            header: None,
            lines,
        }],
        MAX_CONTENT_CHARS,
    )
}

/// Posted once when ringside stops seeing calls; `reason` is in plain words.
pub fn unhealthy_notice(reason: &str) -> String {
    let reason = markdown::reason(reason).unwrap_or_else(|| "no reason given".to_owned());
    format!(
        "⚠️ **ringside cannot see calls right now** — {reason}. Joins and leaves are not announced \
         until this is fixed."
    )
}

/// Posted when ringside sees calls again after [`unhealthy_notice`].
pub fn recovered_notice() -> String {
    "✅ **ringside can see calls again.** Announcements continue from here.".to_owned()
}

/// The name of a conference's thread: `Agent 122 · 16:04 UTC` (plain text, at most 100 chars).
pub fn thread_name(
    conference: &ConferenceId,
    events: &[&ConferenceEvent],
    roster: &Roster,
    style: PhoneNumbers,
) -> String {
    let label = label(conference, events, roster, style);
    // Thread names show no markdown: drop the escapes' backslashes.
    let host = label
        .host
        .map(|host| host.replace('\\', ""))
        .unwrap_or_else(|| "Conference".to_owned());
    let name = match label.started_at {
        Some(at) => {
            let rfc = at.to_rfc3339();
            let date = rfc.get(0..10).unwrap_or_default();
            let time = rfc.get(11..16).unwrap_or_default();
            format!("{host} · {date} {time} UTC")
        }
        None => host,
    };
    fit(&name, MAX_THREAD_NAME_CHARS)
}

/// A nonce of at most 25 characters: `prefix` (fixed per store) and a sequence number.
pub fn nonce(prefix: &str, sequence: u64) -> String {
    let nonce = format!("{prefix}-{sequence:x}");
    nonce.chars().take(25).collect()
}

/// The JSON body of `POST /channels/{id}/messages`: serenity's `CreateMessage` with the content,
/// no mentions allowed, silent, no embeds, and the nonce Discord deduplicates on.
pub fn body(content: &str, nonce: &str) -> String {
    let message = CreateMessage::new()
        .content(content)
        .allowed_mentions(CreateAllowedMentions::new())
        .flags(MessageFlags::SUPPRESS_NOTIFICATIONS | MessageFlags::SUPPRESS_EMBEDS)
        .nonce(Nonce::String(nonce.to_owned()))
        .enforce_nonce(true);
    // Serializing a builder of strings and flags cannot fail; fall back to the same shape.
    serde_json::to_string(&message).unwrap_or_else(|_| {
        serde_json::json!({
            "content": content,
            "nonce": nonce,
            "enforce_nonce": true,
            "allowed_mentions": { "parse": [] },
            "flags": (MessageFlags::SUPPRESS_NOTIFICATIONS | MessageFlags::SUPPRESS_EMBEDS).bits(),
        })
        .to_string()
    })
}

/// `body` with its uploaded files described: `attachments` entry `n` names `files[n]`.
pub fn with_attachments(body: &str, files: &[BatchFile]) -> String {
    if files.is_empty() {
        return body.to_owned();
    }
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(mut fields)) => {
            fields.insert("attachments".to_owned(), attachments(files));
            serde_json::Value::Object(fields).to_string()
        }
        // `body` is ringside's own JSON object; anything else is left as it is.
        _ => body.to_owned(),
    }
}

fn attachments(files: &[BatchFile]) -> serde_json::Value {
    files
        .iter()
        .enumerate()
        .map(|(id, file)| serde_json::json!({ "id": id, "filename": file.filename }))
        .collect()
}

/// The JSON body of `PATCH /channels/{id}/messages/{id}` (a roster card's edit): the content, no
/// mentions allowed (repeated at every edit: Discord applies an edit's own `allowed_mentions`),
/// and the uploaded files described. The flags the card was created with stay as they are.
pub fn edit_body(content: &str, files: &[BatchFile]) -> String {
    let mut body = serde_json::json!({
        "content": content,
        "allowed_mentions": { "parse": [] },
    });
    if !files.is_empty() {
        body["attachments"] = attachments(files);
    }
    body.to_string()
}

/// A watch-list alert as it first reads: `🚨 **Paco Vu** (•••0142), on the watch list, joined
/// Agent 122's call. <@&123>`: the caller, the call, and a mention of each alert role.
pub fn alert_opening(who: &str, call: &str, roles: &[u64]) -> String {
    let mut text = format!("🚨 {who}, on the watch list, joined {call}.");
    for role in roles {
        text.push_str(&format!(" <@&{role}>"));
    }
    text
}

/// How a watch-list alert's caller stopped being on the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertEnd {
    /// They hung up (at this time, when known).
    Left(Option<Timestamp>),
    /// A moderator removed them (already worded by [`markdown::actor`]).
    Removed(String),
    /// The call ended, or ringside no longer knows it.
    CallEnded,
}

/// A watch-list alert once its caller is off the call: `🚨 **Paco Vu** (•••0142), on the watch
/// list, joined Agent 122's call; left <t:…:t>.` (or `; removed by <@…>.`). The role mentions
/// are gone: the alert has been answered.
pub fn alert_closing(who: &str, call: &str, end: &AlertEnd) -> String {
    let end = match end {
        AlertEnd::Left(Some(at)) => format!("left {}", timestamp(*at, 't')),
        AlertEnd::Left(None) => "left".to_owned(),
        AlertEnd::Removed(by) => format!("removed by {by}"),
        AlertEnd::CallEnded => "the call ended".to_owned(),
    };
    format!("🚨 {who}, on the watch list, joined {call}; {end}.")
}

/// The alert's one action row: a Danger button `Remove` with `custom_id`, on or off.
fn alert_buttons(custom_id: &str, disabled: bool) -> serde_json::Value {
    serde_json::json!([{
        "type": 1,
        "components": [{
            "type": 2,
            "style": 4,
            "label": "Remove",
            "custom_id": custom_id,
            "disabled": disabled,
        }],
    }])
}

/// The JSON body of a watch-list alert's `POST /channels/{id}/messages`: the one message that
/// notifies (no `SUPPRESS_NOTIFICATIONS`, docs/architecture.md §5), and only `roles`
/// (`allowed_mentions` is exactly `{"roles": [...]}`: no `parse`, no users), no embeds, its
/// nonce, and the Remove button.
pub fn alert_body(content: &str, nonce: &str, roles: &[u64], custom_id: &str) -> String {
    let roles: Vec<String> = roles.iter().map(u64::to_string).collect();
    serde_json::json!({
        "content": content,
        "nonce": nonce,
        "enforce_nonce": true,
        "allowed_mentions": { "roles": roles },
        "flags": MessageFlags::SUPPRESS_EMBEDS.bits(),
        "components": alert_buttons(custom_id, false),
    })
    .to_string()
}

/// The JSON body of a watch-list alert's closing edit: the new content, nobody pinged again
/// (`{"parse": []}`), the Remove button turned off.
pub fn alert_edit_body(content: &str, custom_id: &str) -> String {
    serde_json::json!({
        "content": content,
        "allowed_mentions": { "parse": [] },
        "components": alert_buttons(custom_id, true),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conference::{Actor, Identity, LeaveReason, ParticipantId};

    const T0: i64 = 1_709_049_892_000; // 2024-02-27T16:04:52Z

    fn conference(n: u32) -> ConferenceId {
        ConferenceId::parse(&format!("s-conf-{n}")).unwrap()
    }

    fn ev(conference_n: u32, at_secs: i64, kind: EventKind) -> ConferenceEvent {
        let at = Timestamp(T0 + at_secs * 1000);
        ConferenceEvent {
            id: format!("{}:{}:{at_secs}", kind.type_name(), conference_n),
            conference_id: conference(conference_n),
            at,
            received_at: at,
            kind,
        }
    }

    fn who(name: &str, number: &str) -> Identity {
        Identity {
            name: (!name.is_empty()).then(|| name.to_owned()),
            phone_number: (!number.is_empty()).then(|| number.to_owned()),
            extension_id: None,
        }
    }

    fn started(c: u32, at: i64, host: &str) -> ConferenceEvent {
        ev(
            c,
            at,
            EventKind::ConferenceStarted {
                host: Some(who(host, "+16505550122")),
            },
        )
    }

    fn joined(c: u32, at: i64, p: &str, name: &str, number: &str, on_call: u32) -> ConferenceEvent {
        ev(
            c,
            at,
            EventKind::ParticipantJoined {
                participant_id: ParticipantId::parse(p).unwrap(),
                identity: who(name, number),
                on_call,
            },
        )
    }

    fn left(
        c: u32,
        at: i64,
        p: &str,
        name: &str,
        reason: LeaveReason,
        on_call: u32,
    ) -> ConferenceEvent {
        ev(
            c,
            at,
            EventKind::ParticipantLeft {
                participant_id: ParticipantId::parse(p).unwrap(),
                identity: who(name, "11119"),
                reason,
                joined_at: Some(Timestamp(T0 + (at - 252) * 1000)),
                removed_by: None,
                removal_reason: None,
                on_call,
            },
        )
    }

    fn ended(c: u32, at: i64) -> ConferenceEvent {
        ev(
            c,
            at,
            EventKind::ConferenceEnded {
                duration_secs: Some(3720),
                participants: 5,
                peak: 3,
            },
        )
    }

    fn render_all(events: &[ConferenceEvent]) -> String {
        let refs: Vec<&ConferenceEvent> = events.iter().collect();
        announcement(&refs, &Roster::new(), PhoneNumbers::Masked).join("\n-----\n")
    }

    #[test]
    fn every_kind_of_line() {
        let mut removed = left(1, 400, "p-1", "Paco Vu", LeaveReason::Removed, 2);
        if let EventKind::ParticipantLeft {
            removed_by,
            removal_reason,
            ..
        } = &mut removed.kind
        {
            *removed_by = Some(Actor {
                id: "123456789012345678".into(),
                display: "@mod".into(),
            });
            *removal_reason = Some("not on the guest list".into());
        }
        let mut removed_by_name = removed.clone();
        if let EventKind::ParticipantLeft { removed_by, .. } = &mut removed_by_name.kind {
            *removed_by = Some(Actor {
                id: "console".into(),
                display: "**ops** @here".into(),
            });
        }
        let events = vec![
            started(1, 0, "Agent 122"),
            joined(1, 10, "p-1", "Paco Vu", "11119", 3),
            joined(1, 11, "p-2", "", "+16505550142", 4),
            joined(1, 12, "p-3", "", "", 5),
            left(1, 300, "p-2", "Paco Vu", LeaveReason::HungUp, 2),
            left(1, 301, "p-2", "Dana Whitfield", LeaveReason::Vanished, 1),
            removed,
            removed_by_name,
            left(
                1,
                3720,
                "p-3",
                "Ravi Anand",
                LeaveReason::ConferenceEnded,
                0,
            ),
            ended(1, 3720),
        ];
        insta::assert_snapshot!(render_all(&events));
    }

    #[test]
    fn several_conferences_are_grouped_under_headers() {
        let events = vec![
            started(1, 0, "Agent 122"),
            joined(1, 10, "p-1", "Paco Vu", "11119", 1),
            started(2, 12, "Front Desk"),
            joined(2, 13, "p-9", "Ravi Anand", "+14155558750", 1),
            joined(1, 14, "p-2", "Dana Whitfield", "+16505550142", 2),
            joined(3, 15, "p-7", "Lee Chan", "+14155550007", 4),
        ];
        insta::assert_snapshot!(render_all(&events));
    }

    #[test]
    fn a_long_announcement_is_split_between_lines() {
        let events: Vec<ConferenceEvent> = (0..60)
            .map(|i| {
                joined(
                    1 + i % 2,
                    i64::from(i),
                    &format!("p-{i}"),
                    &format!("Caller number {i} with a rather long display name"),
                    "+16505550100",
                    i + 1,
                )
            })
            .collect();
        let refs: Vec<&ConferenceEvent> = events.iter().collect();
        let messages = announcement(&refs, &Roster::new(), PhoneNumbers::Masked);
        assert!(messages.len() > 1);
        for message in &messages {
            assert!(chars(message) <= MAX_CONTENT_CHARS, "{}", chars(message));
        }
        let all = messages.join("\n");
        for i in 0..60 {
            let name = format!("**Caller number {i} with a rather long display name**");
            assert_eq!(all.matches(&name).count(), 1, "{name}");
        }
        // Each message names its conference (the header is repeated on a continuation).
        for message in &messages {
            assert!(message.starts_with("**Conference"), "{message}");
        }
        insta::assert_snapshot!(messages.join("\n-----\n"));
    }

    #[test]
    fn splitting_never_cuts_a_line() {
        let lines: Vec<String> = (0..10)
            .map(|i| format!("line {i} {}", "x".repeat(7)))
            .collect();
        let messages = split(
            &[Section {
                header: None,
                lines: lines.clone(),
            }],
            40,
        );
        assert_eq!(messages.join("\n"), lines.join("\n"));
        assert!(messages.iter().all(|m| chars(m) <= 40));
        assert_eq!(messages.len(), 5);
    }

    #[test]
    fn the_health_notices() {
        insta::assert_snapshot!(format!(
            "{}\n{}",
            unhealthy_notice("the RingCentral subscription is Blacklisted"),
            recovered_notice()
        ));
    }

    #[test]
    fn the_away_summary_counts_per_conference_without_names() {
        let events = [
            started(1, 0, "Agent 122"),
            joined(1, 10, "p-1", "Paco Vu", "11119", 1),
            joined(1, 20, "p-2", "Dana Whitfield", "+16505550142", 2),
            left(1, 300, "p-1", "Paco Vu", LeaveReason::HungUp, 1),
            joined(2, 400, "p-9", "Ravi Anand", "+14155558750", 3),
            ended(1, 3720),
        ];
        let refs: Vec<&ConferenceEvent> = events.iter().collect();
        let summary = away_summary(&refs, &Roster::new(), PhoneNumbers::Masked).join("\n-----\n");
        assert!(!summary.contains("Paco"));
        insta::assert_snapshot!(summary);
    }

    #[test]
    fn a_hostile_caller_name_is_inert() {
        let events = vec![joined(
            1,
            10,
            "p-1",
            "@everyone **x** <@&1>\u{200B}\u{202E}\u{2060}",
            "11119",
            1,
        )];
        let text = render_all(&events);
        assert!(!text.contains("@everyone"));
        assert!(!text.contains("<@&"));
        insta::assert_snapshot!(text);
        let body: serde_json::Value = serde_json::from_str(&body(&text, "abc-1")).unwrap();
        assert_eq!(body["allowed_mentions"]["parse"], serde_json::json!([]));
        assert_eq!(body["flags"].as_u64().unwrap() & 4096, 4096);
        assert_eq!(body["flags"].as_u64().unwrap() & 4, 4);
    }

    #[test]
    fn the_body_carries_the_nonce_enforced() {
        let body: serde_json::Value =
            serde_json::from_str(&body("hello", &nonce("0123456789ab", 42))).unwrap();
        assert_eq!(body["content"], "hello");
        assert_eq!(body["nonce"], "0123456789ab-2a");
        assert_eq!(body["enforce_nonce"], true);
        assert_eq!(body["tts"], false);
        assert!(nonce("0123456789ab", u64::MAX).chars().count() <= 25);
    }

    #[test]
    fn a_thread_is_named_after_its_host_and_start() {
        let events = [started(1, 0, "Agent **122**")];
        let refs: Vec<&ConferenceEvent> = events.iter().collect();
        assert_eq!(
            thread_name(&conference(1), &refs, &Roster::new(), PhoneNumbers::Masked),
            "Agent **122** · 2024-02-27 16:04 UTC",
            "plain text: thread names show no markdown"
        );
    }

    #[test]
    fn a_watch_alert_notifies_and_mentions_only_its_roles_and_its_close_pings_nobody() {
        let content = alert_opening("**Paco Vu** (•••0142)", "Agent 122's call", &[123, 456]);
        assert_eq!(
            content,
            "🚨 **Paco Vu** (•••0142), on the watch list, joined Agent 122's call. <@&123> <@&456>"
        );
        let body: serde_json::Value = serde_json::from_str(&alert_body(
            &content,
            "w-1",
            &[123, 456],
            "watch:remove:p:1",
        ))
        .unwrap();
        assert_eq!(
            body["allowed_mentions"],
            serde_json::json!({ "roles": ["123", "456"] })
        );
        assert_eq!(body["flags"].as_u64().unwrap() & 4096, 0, "not silent");
        assert_eq!(body["nonce"], "w-1");
        let button = &body["components"][0]["components"][0];
        assert_eq!(button["custom_id"], "watch:remove:p:1");
        assert_eq!(button["style"], 4);
        assert_eq!(button["disabled"], false);

        let closing = alert_closing(
            "**Paco Vu** (•••0142)",
            "Agent 122's call",
            &AlertEnd::Removed("<@42>".into()),
        );
        assert_eq!(
            closing,
            "🚨 **Paco Vu** (•••0142), on the watch list, joined Agent 122's call; removed by <@42>."
        );
        let edit: serde_json::Value =
            serde_json::from_str(&alert_edit_body(&closing, "watch:remove:p:1")).unwrap();
        assert_eq!(edit["allowed_mentions"], serde_json::json!({ "parse": [] }));
        assert_eq!(edit["components"][0]["components"][0]["disabled"], true);
        assert_eq!(
            alert_closing("x", "y", &AlertEnd::Left(Some(Timestamp(T0)))),
            "🚨 x, on the watch list, joined y; left <t:1709049892:t>."
        );
    }
}
