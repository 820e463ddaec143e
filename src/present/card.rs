//! The roster card's text: one message per conference, in Discord markdown, as it reads at each
//! stage of the call.
//!
//! - [`opening`]: what is posted when the conference starts — its host and how many are on the
//!   call, naming no caller, so each caller is named in exactly one *posted* message (its join
//!   line); callers reach the card only through edits.
//! - [`live`]: who is on the call now (not those who left), each with when they joined as a
//!   Discord timestamp (`<t:…:R>` keeps "3 minutes ago" current without edits), muted and on
//!   hold marked, and the count.
//! - [`record`]: once the conference ended, its final record: that it ended, how long it
//!   lasted, every caller who was on it with when they joined and left, the peak, and who was
//!   removed and by whom.
//!
//! Names and numbers go through the markdown formatter ([`super::markdown`]): inert, numbers per
//! `privacy.phone_numbers`. A card never exceeds [`MAX_CONTENT_CHARS`]: callers that do not fit
//! are counted on a last line instead.

use super::markdown::{self, timestamp};
use super::plain;
use super::timeline::{Row, Span, Timeline};
use super::words::{self, MAX_CONTENT_CHARS};
use crate::conference::{ConferenceView, ParticipantView, Timestamp};
use crate::config::PhoneNumbers;

/// The card's first line: the conference, its host, when it started.
fn title(view: &ConferenceView, style: PhoneNumbers, ended: bool) -> String {
    let mut text = if ended {
        "📋 **Conference ended**".to_owned()
    } else {
        "📋 **Conference**".to_owned()
    };
    if let Some(host) = view
        .host
        .as_ref()
        .and_then(|host| markdown::host(host, style))
    {
        text.push_str(&format!(" · host {host}"));
    }
    if let Some(started) = view.started_at {
        let format = if ended { 'f' } else { 't' };
        text.push_str(&format!(" · started {}", timestamp(started, format)));
    }
    text
}

/// The card as posted: the host and the count, no caller.
pub fn opening(view: &ConferenceView, style: PhoneNumbers) -> String {
    let on_call = u32::try_from(view.live().count()).unwrap_or(u32::MAX);
    format!(
        "{}\n**{}**",
        title(view, style, false),
        words::on_call(on_call)
    )
}

/// The card while the conference is on: who is on the call now.
pub fn live(view: &ConferenceView, style: PhoneNumbers) -> String {
    let on_call = u32::try_from(view.live().count()).unwrap_or(u32::MAX);
    let head = format!(
        "{}\n**{}** · peak {}",
        title(view, style, false),
        words::on_call(on_call),
        view.peak
    );
    let lines: Vec<String> = view
        .live()
        .map(|participant| live_line(participant, style))
        .collect();
    fit(head, lines, "on the call")
}

/// `• **Paco Vu** (•••1119) · joined <t:…:R> · 🔇 muted`
fn live_line(participant: &ParticipantView, style: PhoneNumbers) -> String {
    let mut line = format!(
        "• {}",
        words::sentence_start(markdown::caller(&participant.identity, style, true))
    );
    if let Some(joined) = participant.joined_at {
        line.push_str(&format!(" · joined {}", timestamp(joined, 'R')));
    }
    if participant.muted {
        line.push_str(" · 🔇 muted");
    }
    if participant.on_hold {
        line.push_str(" · ⏸️ on hold");
    }
    line
}

/// The card once the conference ended: everyone who was on it.
pub fn record(view: &ConferenceView, style: PhoneNumbers) -> String {
    let mut head = title(view, style, true);
    if let (Some(started), Some(ended)) = (view.started_at, view.ended_at) {
        head.push_str(&format!(
            " · lasted {}",
            words::duration(ended.secs_since(started))
        ));
    }
    head.push_str(&format!(
        "\n**{}** · peak {}",
        words::callers(view.joined),
        view.peak
    ));
    let lines: Vec<String> = view
        .participants
        .iter()
        .map(|participant| record_line(participant, style))
        .collect();
    fit(head, lines, "who were on the call")
}

/// `• **Paco Vu** (•••1119) · 16:04–16:09 · 🚫 removed by @mod`
fn record_line(participant: &ParticipantView, style: PhoneNumbers) -> String {
    let mut line = format!(
        "• {}",
        words::sentence_start(markdown::caller(&participant.identity, style, true))
    );
    match (participant.joined_at, participant.left_at) {
        (Some(joined), Some(left)) => line.push_str(&format!(
            " · {}–{} ({})",
            timestamp(joined, 't'),
            timestamp(left, 't'),
            words::duration(left.secs_since(joined))
        )),
        (Some(joined), None) => line.push_str(&format!(" · from {}", timestamp(joined, 't'))),
        _ => {}
    }
    if let Some(by) = &participant.removed_by {
        line.push_str(&format!(" · 🚫 removed by {}", markdown::actor(by)));
    }
    line
}

/// The timeline picture's input for an ended conference: the host's row on top, spanning the
/// call, then one row per caller in join order — a caller who rejoined (the same number or
/// extension) keeps one row with a bar per stretch —, each named as the plain text names them
/// (numbers per `privacy.phone_numbers`), removals marked. Times are minutes from the start; the
/// start is given in UTC in the title (no time-zone database: readers are anywhere).
pub fn timeline(view: &ConferenceView, style: PhoneNumbers) -> Timeline {
    let start = view
        .started_at
        .or_else(|| view.participants.iter().filter_map(|p| p.joined_at).min())
        .unwrap_or(Timestamp(0));
    let end = view
        .ended_at
        .into_iter()
        .chain(view.participants.iter().filter_map(|p| p.left_at))
        .max()
        .unwrap_or(start);
    let offset = |at: Timestamp| at.0.saturating_sub(start.0);
    let duration_ms = offset(end).max(0);
    let mut title = "Conference".to_owned();
    if let Some(host) = view.host.as_ref().and_then(|host| plain::host(host, style)) {
        title.push_str(&format!(" · host {host}"));
    }
    if view.started_at.is_some() {
        title.push_str(&format!(" · {}", utc_minute(start)));
    }
    let mut rows: Vec<Row> = Vec::new();
    if let Some(host) = &view.host {
        rows.push(Row {
            label: plain::host(host, style).unwrap_or_else(|| "host".to_owned()),
            host: true,
            spans: vec![Span {
                from_ms: 0,
                to_ms: duration_ms,
                removed: false,
            }],
        });
    }
    // Which row each line (number or extension) has, to put a rejoin on its first row.
    let mut lines: Vec<(usize, &crate::conference::Identity)> = Vec::new();
    let mut participants: Vec<&ParticipantView> = view.participants.iter().collect();
    participants.sort_by_key(|p| p.joined_at);
    for participant in participants {
        let span = Span {
            from_ms: participant.joined_at.map_or(0, offset),
            to_ms: participant.left_at.map_or(duration_ms, offset),
            removed: participant.removed_by.is_some(),
        };
        let same = lines
            .iter()
            .find(|(_, identity)| identity.same_line(&participant.identity))
            .map(|(row, _)| *row);
        match same {
            Some(row) => rows[row].spans.push(span),
            None => {
                lines.push((rows.len(), &participant.identity));
                rows.push(Row {
                    label: words::sentence_start(plain::caller(&participant.identity, style)),
                    host: false,
                    spans: vec![span],
                });
            }
        }
    }
    Timeline {
        title,
        duration_ms,
        rows,
    }
}

/// `2024-02-27 16:04 UTC`.
fn utc_minute(at: Timestamp) -> String {
    let rfc3339 = at.to_rfc3339();
    match (rfc3339.get(..10), rfc3339.get(11..16)) {
        (Some(day), Some(minute)) => format!("{day} {minute} UTC"),
        _ => rfc3339,
    }
}

/// The final record of a card whose conference ringside no longer remembers (it ended while
/// ringside was stopped, longer ago than the details are kept).
pub fn forgotten() -> String {
    "📋 **Conference ended** · its details were not kept while ringside was stopped".to_owned()
}

/// The head and as many lines as fit in one message; the rest counted on a last line.
fn fit(head: String, lines: Vec<String>, who: &str) -> String {
    // Room kept for the "… and N more" line.
    const RESERVE: usize = 60;
    let mut text = head;
    let mut used = text.chars().count();
    let total = lines.len();
    for (shown, line) in lines.into_iter().enumerate() {
        let length = line.chars().count() + 1;
        let last = shown + 1 == total;
        let room = if last {
            MAX_CONTENT_CHARS
        } else {
            MAX_CONTENT_CHARS - RESERVE
        };
        if used + length > room {
            text.push_str(&format!("\n… and {} more {who}", total - shown));
            return text;
        }
        text.push('\n');
        text.push_str(&line);
        used += length;
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conference::{Actor, ConferenceId, Identity, ParticipantId};

    const T0: i64 = 1_709_049_892_000; // 2024-02-27T16:04:52Z

    fn participant(n: u32, name: Option<&str>, live: bool) -> ParticipantView {
        ParticipantView {
            id: ParticipantId::parse(&format!("p-{n}")).unwrap(),
            identity: Identity {
                name: name.map(str::to_owned),
                phone_number: Some(format!("+1650555{n:04}")),
                extension_id: None,
            },
            joined_at: Some(Timestamp(T0 + i64::from(n) * 60_000)),
            live,
            muted: false,
            on_hold: false,
            left_at: (!live).then(|| Timestamp(T0 + i64::from(n) * 60_000 + 125_000)),
            removed_by: None,
            original_party: None,
            original_session: None,
        }
    }

    fn view(participants: Vec<ParticipantView>, ended: bool) -> ConferenceView {
        let live = participants.iter().filter(|p| p.live).count() as u32;
        ConferenceView {
            id: ConferenceId::parse("s-conf-1").unwrap(),
            started_at: Some(Timestamp(T0)),
            host: Some(Identity {
                name: Some("Agent 122".into()),
                phone_number: None,
                extension_id: Some("122".into()),
            }),
            host_party: None,
            ended,
            ended_at: ended.then_some(Timestamp(T0 + 754_000)),
            joined: participants.len() as u32,
            peak: live.max(2),
            participants,
        }
    }

    #[test]
    fn the_posted_card_names_the_host_and_the_count_but_no_caller() {
        let view = view(
            vec![
                participant(1, Some("Paco Vu"), true),
                participant(2, None, true),
            ],
            false,
        );
        let text = opening(&view, PhoneNumbers::Masked);
        assert_eq!(
            text,
            "📋 **Conference** · host Agent 122 · started <t:1709049892:t>\n**2 on the call**"
        );
        assert!(!text.contains("Paco") && !text.contains("0002"));
    }

    #[test]
    fn the_live_card_lists_who_is_on_now_with_markers_and_not_who_left() {
        let mut muted = participant(2, Some("Dana <@everyone>"), true);
        muted.muted = true;
        let mut held = participant(3, None, true);
        held.on_hold = true;
        let view = view(
            vec![
                participant(1, Some("Paco Vu"), true),
                muted,
                held,
                participant(4, Some("Gone Caller"), false),
            ],
            false,
        );
        let text = live(&view, PhoneNumbers::Masked);
        assert_eq!(
            text,
            "📋 **Conference** · host Agent 122 · started <t:1709049892:t>\n\
             **3 on the call** · peak 3\n\
             • **Paco Vu** (•••0001) · joined <t:1709049952:R>\n\
             • **Dana \\<@\u{200b}everyone\\>** (•••0002) · joined <t:1709050012:R> · 🔇 muted\n\
             • •••0003 · joined <t:1709050072:R> · ⏸️ on hold"
        );
        assert!(!text.contains("Gone Caller"));
    }

    #[test]
    fn the_record_lists_everyone_who_was_on_it_and_who_removed_whom() {
        let mut removed = participant(2, Some("Dana"), false);
        removed.removed_by = Some(Actor {
            id: "4242".into(),
            display: "mod".into(),
        });
        let view = view(vec![participant(1, Some("Paco Vu"), false), removed], true);
        let text = record(&view, PhoneNumbers::Hidden);
        assert_eq!(
            text,
            "📋 **Conference ended** · host Agent 122 · started <t:1709049892:f> · lasted 12m 34s\n\
             **2 callers** · peak 2\n\
             • **Paco Vu** · <t:1709049952:t>–<t:1709050077:t> (2m 5s)\n\
             • **Dana** · <t:1709050012:t>–<t:1709050137:t> (2m 5s) · 🚫 removed by <@4242>"
        );
    }

    #[test]
    fn the_timeline_has_the_host_on_top_one_row_per_caller_and_a_rejoin_on_its_first_row() {
        let mut removed = participant(2, None, false);
        removed.removed_by = Some(Actor {
            id: "4242".into(),
            display: "mod".into(),
        });
        let mut rejoined = participant(3, Some("Paco Vu"), false);
        rejoined.id = ParticipantId::parse("p-9").unwrap();
        rejoined.identity.phone_number = Some("+16505550001".into());
        rejoined.joined_at = Some(Timestamp(T0 + 400_000));
        rejoined.left_at = None;
        let view = view(
            vec![participant(1, Some("Paco Vu"), false), removed, rejoined],
            true,
        );
        let timeline = timeline(&view, PhoneNumbers::Masked);
        assert_eq!(
            timeline.title,
            "Conference · host Agent 122 · 2024-02-27 16:04 UTC"
        );
        assert_eq!(timeline.duration_ms, 754_000);
        type Shown<'a> = (&'a str, bool, Vec<(i64, i64, bool)>);
        let rows: Vec<Shown> = timeline
            .rows
            .iter()
            .map(|row| {
                (
                    row.label.as_str(),
                    row.host,
                    row.spans
                        .iter()
                        .map(|s| (s.from_ms, s.to_ms, s.removed))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                ("Agent 122", true, vec![(0, 754_000, false)]),
                (
                    "Paco Vu (•••0001)",
                    false,
                    vec![(60_000, 185_000, false), (400_000, 754_000, false)]
                ),
                ("•••0002", false, vec![(120_000, 245_000, true)]),
            ]
        );
    }

    #[test]
    fn a_card_with_more_callers_than_fit_counts_the_rest_and_stays_within_discords_limit() {
        let participants: Vec<ParticipantView> = (1..=200)
            .map(|n| participant(n, Some(&"N".repeat(40)), true))
            .collect();
        let view = view(participants, false);
        for text in [
            live(&view, PhoneNumbers::Full),
            record(&view, PhoneNumbers::Full),
        ] {
            assert!(text.chars().count() <= MAX_CONTENT_CHARS, "{}", text.len());
            assert!(text.contains("more"), "{text}");
        }
        let last = live(&view, PhoneNumbers::Full);
        let shown = last.lines().filter(|line| line.starts_with('•')).count();
        assert!(
            last.ends_with(&format!("… and {} more on the call", 200 - shown)),
            "{last}"
        );
    }
}
