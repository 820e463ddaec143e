//! `ringside parked [--limit N]` and `ringside parked resend ID`: the announcements Discord
//! refused for good (the announcer parks them, `src/discord/announcer/delivery.rs`) shown to the
//! operator, and one of them marked to be sent again once the cause is fixed.
//!
//! Like `ringside audit`, both open the store beside a running service on the same file, or
//! without one, and never talk to Discord: the running announcer takes a resend request within a
//! few seconds (or at its next start) and posts it through its own poster and bucket, with the
//! stored nonce, body and files. What is shown is what would have been posted, masked as the
//! announcer masked it, nothing more; the pictures' bytes are only counted.

use crate::conference::Timestamp;
use crate::config::Settings;
use crate::store::{Batch, BatchState, ResendRequest, Store};

/// How many parked announcements `ringside parked` lists without `--limit`.
pub const DEFAULT_LIMIT: usize = 50;

/// What `ringside parked` prints when nothing is parked.
const NOTHING_PARKED: &str = "No parked announcements.";

/// The indent of a parked announcement's details, and the deeper one of its text.
const DETAIL: &str = "    ";
const TEXT: &str = "        ";

/// `ringside parked`: at most `limit` parked announcements, newest first, each as a few lines.
pub async fn list(settings: &Settings, limit: usize) -> anyhow::Result<Vec<String>> {
    let store = Store::open(&settings.store.path)?;
    let parked = store.parked_batches(limit).await;
    store.close().await?;
    let parked = parked?;
    if parked.is_empty() {
        return Ok(vec![NOTHING_PARKED.to_owned()]);
    }
    Ok(parked.iter().flat_map(describe).collect())
}

/// `ringside parked resend ID`: marks parked announcement `id` for the announcer; answers the
/// line to print. An unknown id or a batch that is not parked is an error and changes nothing.
pub async fn resend(settings: &Settings, id: i64) -> anyhow::Result<String> {
    let store = Store::open(&settings.store.path)?;
    let asked = store.request_resend(id).await;
    store.close().await?;
    match asked? {
        ResendRequest::Requested => Ok(format!(
            "parked announcement {id} will be sent again: the running service sends it within a \
             few seconds, or at its next start"
        )),
        ResendRequest::AlreadyRequested { at_ms } => Ok(format!(
            "parked announcement {id} was already asked for again at {}: the running service \
             sends it within a few seconds, or at its next start",
            Timestamp(at_ms).to_rfc3339()
        )),
        ResendRequest::Unknown => Err(anyhow::anyhow!(
            "no announcement {id} (see `ringside parked` for the parked ones)"
        )),
        ResendRequest::NotParked(state) => Err(anyhow::anyhow!(
            "announcement {id} is not parked: {}",
            match state {
                BatchState::Sent => "it was sent",
                BatchState::Pending | BatchState::Parked => "it is being sent",
            }
        )),
    }
}

/// One parked announcement: a heading line (id, when, conference), why, a pending resend
/// request, the refused text indented, and its files counted.
fn describe(batch: &Batch) -> Vec<String> {
    let parked_at = batch
        .done_at_ms
        .map_or_else(|| "unknown".to_owned(), |at| Timestamp(at).to_rfc3339());
    let mut heading = format!("{} parked {parked_at}", batch.id);
    if let Some(conference) = &batch.conference_id {
        heading.push_str(&format!(" conference {conference}"));
    }
    let mut lines = vec![heading];
    let why = batch.error.as_deref().unwrap_or("unknown");
    lines.push(format!("{DETAIL}why: {}", one_line(why)));
    if let Some(at) = batch.resend_requested_at_ms {
        lines.push(format!(
            "{DETAIL}resend requested at {} (not yet taken by the service)",
            Timestamp(at).to_rfc3339()
        ));
    }
    match content(&batch.body) {
        Some(text) if !text.is_empty() => {
            lines.push(format!("{DETAIL}text:"));
            lines.extend(text.lines().map(|line| format!("{TEXT}{line}")));
        }
        Some(_) => lines.push(format!("{DETAIL}text: (none)")),
        None => lines.push(format!("{DETAIL}text: (the stored body is not a message)")),
    }
    if !batch.files.is_empty() {
        let names: Vec<&str> = batch.files.iter().map(|f| f.filename.as_str()).collect();
        lines.push(format!(
            "{DETAIL}files: {} attached ({})",
            batch.files.len(),
            names.join(", ")
        ));
    }
    lines
}

/// The `content` of a stored message body; `None` when the body is not a JSON object.
fn content(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let message = value.as_object()?;
    Some(
        message
            .get("content")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    )
}

/// Discord's error message is one line today; the listing keeps it one line whatever it says.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{BatchFile, BatchTarget};

    fn parked(body: &str) -> Batch {
        Batch {
            id: 7,
            nonce: "n-7".into(),
            channel_id: "100".into(),
            conference_id: Some("s-conf".into()),
            target: BatchTarget::Channel,
            thread_name: None,
            body: body.into(),
            created_at_ms: 0,
            state: BatchState::Parked,
            message_id: None,
            error: Some(
                "Discord refused the request with status 403 (code 50001):\nMissing Access".into(),
            ),
            done_at_ms: Some(1_000),
            resend_requested_at_ms: None,
            files: Vec::new(),
        }
    }

    #[test]
    fn a_parked_announcement_shows_its_id_time_conference_reason_and_indented_text() {
        let batch =
            parked(r#"{"content":"➕ **Paco Vu** joined\n➕ **Dana** joined","nonce":"n-7"}"#);
        assert_eq!(
            describe(&batch),
            [
                "7 parked 1970-01-01T00:00:01.000Z conference s-conf",
                "    why: Discord refused the request with status 403 (code 50001): Missing Access",
                "    text:",
                "        ➕ **Paco Vu** joined",
                "        ➕ **Dana** joined",
            ]
        );
    }

    #[test]
    fn a_parked_time_an_older_ringside_did_not_keep_shows_as_unknown() {
        let mut batch = parked(r#"{"content":"hi"}"#);
        batch.done_at_ms = None;
        batch.conference_id = None;
        assert_eq!(describe(&batch)[0], "7 parked unknown");
    }

    #[test]
    fn files_are_counted_and_a_pending_request_is_shown_without_the_bytes() {
        let mut batch = parked(r#"{"content":"**Conference ended**"}"#);
        batch.resend_requested_at_ms = Some(2_000);
        batch.files = vec![BatchFile {
            filename: "timeline.png".into(),
            bytes: vec![0x89, b'P', b'N', b'G'],
        }];
        let lines = describe(&batch);
        assert_eq!(
            lines[2],
            "    resend requested at 1970-01-01T00:00:02.000Z (not yet taken by the service)"
        );
        assert_eq!(
            lines.last().unwrap(),
            "    files: 1 attached (timeline.png)"
        );
        assert!(!lines.join("\n").contains("PNG"), "{lines:#?}");
    }

    #[test]
    fn a_body_that_is_not_a_message_is_said_so_rather_than_dumped() {
        assert_eq!(
            describe(&parked("not json"))[2],
            "    text: (the stored body is not a message)"
        );
        assert_eq!(describe(&parked("{}"))[2], "    text: (none)");
    }
}
