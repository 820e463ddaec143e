//! `ringside replay`: recorded notifications through the detector, in file order, with each
//! notification's `eventTime` as its received time.
//!
//! A file holds one JSON object, a JSON array of them, or JSON lines. Records that are not JSON or
//! not usable notifications are reported (file, line, reason) and skipped; notifications of other
//! kinds are skipped silently. Callers are named by the contacts file when one is set
//! (`crate::app::contacts`); its problems are reported like the service logs them.

use crate::conference::{
    ConferenceEvent, Detector, Input, Names, Roster, SessionUpdate, Timestamp,
};
use crate::config::PhoneNumbers;
use crate::pipeline::{Decoded, Payload, decode};
use crate::present::{json, phrase, plain};
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
    replay_with_contacts(sources, format, Names::default())
}

/// [`replay`] with callers named by `contacts` (read from `contacts.path` by the caller, like
/// the service does; the directory is not asked: a replay is offline).
pub fn replay_with_contacts(sources: &[Source], format: Format, contacts: Names) -> Output {
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
    roster.set_contacts(contacts);
    roster.rebuild(&detector);
    output.lines = events
        .iter()
        .map(|event| match format {
            Format::Json => json::event(event, &roster).to_string(),
            Format::Text(numbers) => plain::line(&phrase(event, &roster), numbers),
        })
        .collect();
    output
}

/// The records of one file: one JSON document (an object or an array of them) when the whole
/// text parses; otherwise JSON lines, each bad line reported and the rest still read — unless no
/// line at all is a JSON object, in which case the file is one broken document, reported once.
fn records(source: &Source, problems: &mut Vec<String>) -> Vec<Record> {
    if source.text.trim().is_empty() {
        return Vec::new();
    }
    let whole = match serde_json::from_str::<Value>(&source.text) {
        Ok(Value::Array(values)) => {
            let lines = array_element_lines(&source.text);
            return values
                .into_iter()
                .enumerate()
                .map(|(index, value)| Record {
                    place: format!("{}:{}", source.name, lines.get(index).copied().unwrap_or(1)),
                    value,
                })
                .collect();
        }
        Ok(value) => {
            let line = source
                .text
                .lines()
                .position(|line| !line.trim().is_empty())
                .unwrap_or(0);
            return vec![Record {
                place: format!("{}:{}", source.name, line + 1),
                value,
            }];
        }
        Err(error) => error,
    };
    let any_object_line = source
        .text
        .lines()
        .any(|line| matches!(serde_json::from_str::<Value>(line), Ok(Value::Object(_))));
    if !any_object_line {
        problems.push(format!(
            "{}:{}: not JSON: {whole}",
            source.name,
            whole.line()
        ));
        return Vec::new();
    }
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
    records
}

/// The line on which each element of a top-level JSON array starts (the text is known to be a
/// valid JSON array).
fn array_element_lines(text: &str) -> Vec<usize> {
    let mut lines = Vec::new();
    let (mut line, mut depth, mut in_string, mut escaped) = (1, 0usize, false, false);
    let mut expecting_element = false;
    for byte in text.bytes() {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            if byte == b'\n' {
                line += 1;
            }
            continue;
        }
        if expecting_element && depth == 1 && !byte.is_ascii_whitespace() && byte != b']' {
            lines.push(line);
            expecting_element = false;
        }
        match byte {
            b'\n' => line += 1,
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth == 1 {
                    expecting_element = true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b',' if depth == 1 => expecting_element = true,
            _ => {}
        }
    }
    lines
}

/// A telephony notification ready for the detector (with its envelope `timestamp`), `None` for
/// a notification of another kind, or why the record cannot be used.
fn notification(value: &Value) -> Result<Option<(SessionUpdate, Option<Timestamp>)>, String> {
    let bytes = serde_json::to_vec(value).map_err(|error| format!("not JSON: {error}"))?;
    match decode(&bytes) {
        Ok(Decoded::Usable {
            payload: Payload::Telephony(update),
            timestamp,
            ..
        }) => Ok(Some((update, timestamp))),
        Ok(Decoded::Usable { .. } | Decoded::Ignored { .. }) => Ok(None),
        Ok(Decoded::Unusable { reason, .. }) => Err(format!("unusable notification: {reason}")),
        Err(error) => Err(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::array_element_lines;

    #[test]
    fn array_elements_are_found_on_their_lines() {
        let text = "[\n  {\"a\": \"x,]\\\"\"},\n\n  {\"b\": [1,\n 2]},\n  3\n]";
        assert_eq!(array_element_lines(text), [2, 4, 6]);
        assert_eq!(array_element_lines("[]"), Vec::<usize>::new());
        assert_eq!(array_element_lines("[{},{}]"), [1, 1]);
    }
}
