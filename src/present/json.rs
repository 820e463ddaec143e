//! The `ringside replay --json` object of an event (the README's "Replaying recorded notifications"): full numbers, unknown values
//! `null`, names from the roster at the end of the replay.

use super::phrase::{Phrase, What, phrase};
use crate::conference::{ConferenceEvent, EventKind, Identity, Roster, Timestamp};
use serde_json::{Value, json};

fn identity_json(identity: &Identity) -> Value {
    json!({ "name": identity.name, "phone_number": identity.phone_number })
}

fn time_json(at: Timestamp) -> Value {
    Value::String(at.to_rfc3339())
}

/// One JSON object per event.
pub fn event(event: &ConferenceEvent, roster: &Roster) -> Value {
    let Phrase { host, what, .. } = phrase(event, roster);
    let mut object = json!({
        "type": event.kind.type_name(),
        "at": time_json(event.at),
        "conference_id": event.conference_id.as_str(),
    });
    let participant_id = event.kind.participant_id().map(|id| id.as_str());
    let extra = match what {
        What::Started => json!({ "host": host.as_ref().map(identity_json) }),
        What::Joined { who, .. } => json!({
            "participant_id": participant_id,
            "name": who.name,
            "phone_number": who.phone_number,
        }),
        What::Left { who, reason, .. } => json!({
            "participant_id": participant_id,
            "name": who.name,
            "phone_number": who.phone_number,
            "reason": reason.as_str(),
        }),
        What::Ended { .. } => match &event.kind {
            EventKind::ConferenceEnded {
                duration_secs,
                participants,
                peak,
            } => json!({
                "duration_secs": duration_secs,
                "participants": participants,
                "peak": peak,
            }),
            _ => json!({}),
        },
    };
    if let (Some(object), Value::Object(extra)) = (object.as_object_mut(), extra) {
        object.extend(extra);
    }
    object
}
