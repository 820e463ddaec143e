//! `ringside replay`: recorded notifications through the detector, in file order, with each
//! notification's `eventTime` as its received time.
//!
//! A file holds one JSON object, a JSON array of them, or JSON lines. Records that are not JSON or
//! not usable notifications are reported (file, line, reason) and skipped; notifications of other
//! kinds are skipped silently.

use crate::conference::{ConferenceEvent, Detector, Input, Roster, SessionUpdate, Timestamp};
use crate::config::PhoneNumbers;
use crate::discord::render;
use crate::ringcentral::wire::{Envelope, EventKind, TelephonyNotification};
use serde_json::Value;

/// One input file, already read.
pub struct Source {
    /// How to name it in messages (the path, or `-` for standard input).
    pub name: String,
    pub text: String,
}

/// What a replay printed and what it skipped.
#[derive(Debug, Default)]
pub struct Output {
    pub lines: Vec<String>,
    pub problems: Vec<String>,
}

/// A record and where it was found.
struct Record {
    place: String,
    value: Value,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One readable line per event, as local mode announces it.
    Text(PhoneNumbers),
    /// One JSON object per line.
    Json,
}

pub fn replay(sources: &[Source], format: Format) -> Output {
    let mut output = Output::default();
    let mut detector = Detector::default();
    let mut events: Vec<ConferenceEvent> = Vec::new();
    let mut last_time = Timestamp(0);
    for source in sources {
        for record in records(source, &mut output.problems) {
            match notification(&record.value) {
                Ok(None) => {}
                Ok(Some((update, timestamp))) => {
                    let received_at = update.event_time.or(timestamp).unwrap_or(last_time);
                    last_time = received_at;
                    events.extend(detector.apply(Input::Notification {
                        received_at,
                        notification: update,
                    }));
                }
                Err(reason) => output.problems.push(format!("{}: {reason}", record.place)),
            }
        }
    }
    // Rendered at the end, like an announcement at send time: names learned later show.
    let roster = Roster::new();
    roster.rebuild(&detector);
    output.lines = events
        .iter()
        .map(|event| match format {
            Format::Json => render::replay_json(event, &roster).to_string(),
            Format::Text(numbers) => render::line(event, &roster, numbers),
        })
        .collect();
    output
}

/// The records of one file. A file whose first line is a complete JSON value is read as JSON
/// lines (a bad line is reported and the rest still read); otherwise as one JSON document.
fn records(source: &Source, problems: &mut Vec<String>) -> Vec<Record> {
    let first_line = source.text.lines().find(|line| !line.trim().is_empty());
    let Some(first_line) = first_line else {
        return Vec::new();
    };
    let json_lines = serde_json::from_str::<Value>(first_line).is_ok()
        && serde_json::from_str::<Value>(&source.text).is_err();
    if json_lines {
        let mut records = Vec::new();
        for (index, line) in source.text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let place = format!("{}:{}", source.name, index + 1);
            match serde_json::from_str::<Value>(line) {
                Ok(value) => records.push(Record { place, value }),
                Err(error) => problems.push(format!("{place}: not JSON: {error}")),
            }
        }
        return records;
    }
    match serde_json::from_str::<Value>(&source.text) {
        Ok(Value::Array(values)) => values
            .into_iter()
            .enumerate()
            .map(|(index, value)| Record {
                place: format!("{}: record {}", source.name, index + 1),
                value,
            })
            .collect(),
        Ok(value) => vec![Record {
            place: format!("{}:1", source.name),
            value,
        }],
        Err(error) => {
            problems.push(format!(
                "{}:{}: not JSON: {error}",
                source.name,
                error.line()
            ));
            Vec::new()
        }
    }
}

/// A telephony notification ready for the detector (with its envelope `timestamp`), `None` for
/// a notification of another kind, or why the record cannot be used.
fn notification(value: &Value) -> Result<Option<(SessionUpdate, Option<Timestamp>)>, String> {
    let envelope: Envelope = serde_json::from_value(value.clone())
        .map_err(|error| format!("not a notification: {error}"))?;
    if EventKind::of(&envelope.event) != EventKind::TelephonySessions {
        return Ok(None);
    }
    let notification: TelephonyNotification = serde_json::from_value(value.clone())
        .map_err(|error| format!("not a telephony notification: {error}"))?;
    let update = SessionUpdate::from_notification(&notification.body)
        .map_err(|reason| format!("unusable notification: {reason}"))?;
    let timestamp = notification
        .timestamp
        .as_deref()
        .and_then(Timestamp::parse_rfc3339);
    Ok(Some((update, timestamp)))
}
