//! A notification on its way in: the one decode of a notification's bytes, used by the webhook,
//! by the replay of the inbox at start and by `ringside replay`, and what the webhook hands the
//! pipeline once the notification is committed.

use crate::conference::{SessionUpdate, Timestamp, Unusable};
use crate::ringcentral::wire::{NotificationKind, RawEnvelope, TelephonyBody};

/// Longest notification `uuid` ringside stores.
pub const MAX_UUID_LEN: usize = 256;

/// A notification committed to the inbox, on its way to the detector.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub inbox_id: i64,
    pub received_at: Timestamp,
    pub payload: Payload,
}

#[derive(Debug, Clone)]
pub enum Payload {
    Telephony(SessionUpdate),
    /// The subscription renewal reminder.
    Reminder,
}

impl Payload {
    /// The inbox's `kind` column for this payload.
    pub fn kind(&self) -> &'static str {
        match self {
            Payload::Telephony(_) => "telephony",
            Payload::Reminder => "reminder",
        }
    }
}

/// What a notification is, for ringside.
#[derive(Debug)]
pub enum Decoded {
    /// Something to commit: a usable telephony notification or the renewal reminder. The
    /// envelope's `timestamp`, when it parses, comes along (`ringside replay` falls back on it).
    Usable {
        uuid: String,
        payload: Payload,
        timestamp: Option<Timestamp>,
    },
    /// A notification of another kind: acknowledged and ignored.
    Ignored { uuid: String, event: String },
    /// A notification ringside cannot use: quarantined (a 4xx would get the subscription
    /// blacklisted).
    Unusable { uuid: String, reason: Unusable },
}

/// Why bytes are not a notification at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("body is not JSON: {0}")]
    NotJson(String),
    #[error("body is not a RingCentral notification: {0}")]
    NotNotification(String),
}

/// Decodes a notification: the envelope once (its body left raw), then the body once, as the
/// type its `event` names.
pub fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let envelope: RawEnvelope = serde_json::from_slice(bytes).map_err(|error| {
        let message = error.to_string();
        match error.classify() {
            serde_json::error::Category::Data => DecodeError::NotNotification(message),
            _ => DecodeError::NotJson(message),
        }
    })?;
    if !envelope.body.get().trim_start().starts_with('{') {
        return Err(DecodeError::NotNotification(
            "body is not a JSON object".to_owned(),
        ));
    }
    let kind = NotificationKind::of(&envelope.event);
    let uuid = envelope.uuid;
    if kind == NotificationKind::Other {
        return Ok(Decoded::Ignored {
            uuid,
            event: envelope.event,
        });
    }
    if uuid.is_empty() || uuid.len() > MAX_UUID_LEN {
        let reason = Unusable::Shape(format!("uuid must be 1 to {MAX_UUID_LEN} characters"));
        return Ok(Decoded::Unusable { uuid, reason });
    }
    let timestamp = envelope
        .timestamp
        .as_deref()
        .and_then(Timestamp::parse_rfc3339);
    let payload = match kind {
        NotificationKind::TelephonySessions => {
            let update = serde_json::from_str::<TelephonyBody>(envelope.body.get())
                .map_err(|error| Unusable::Shape(error.to_string()))
                .and_then(|body| SessionUpdate::from_notification(&body));
            match update {
                Ok(update) => Payload::Telephony(update),
                Err(reason) => return Ok(Decoded::Unusable { uuid, reason }),
            }
        }
        _ => Payload::Reminder,
    };
    Ok(Decoded::Usable {
        uuid,
        payload,
        timestamp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decoded(value: serde_json::Value) -> Result<Decoded, DecodeError> {
        decode(&serde_json::to_vec(&value).unwrap())
    }

    #[test]
    fn each_kind_of_input_is_told_apart() {
        assert!(matches!(
            decode(b"{\"uuid\":"),
            Err(DecodeError::NotJson(_))
        ));
        assert!(matches!(
            decoded(json!({"uuid": 1, "event": "/x", "body": {}})),
            Err(DecodeError::NotNotification(_))
        ));
        assert!(matches!(
            decoded(json!({"uuid": "u", "event": "/x", "body": []})),
            Err(DecodeError::NotNotification(_))
        ));
        assert!(matches!(
            decoded(json!({"uuid": "u", "event": "/restapi/v1.0/account/~/presence", "body": {}})),
            Ok(Decoded::Ignored { .. })
        ));
        assert!(matches!(
            decoded(
                json!({"uuid": "u", "event": "/restapi/v1.0/subscription/~?threshold=1", "body": {}})
            ),
            Ok(Decoded::Usable {
                payload: Payload::Reminder,
                ..
            })
        ));
        assert!(matches!(
            decoded(
                json!({"uuid": "", "event": "/restapi/v1.0/account/~/telephony/sessions", "body": {}})
            ),
            Ok(Decoded::Unusable { .. })
        ));
        match decoded(json!({
            "uuid": "u", "event": "/restapi/v1.0/account/~/telephony/sessions",
            "timestamp": "2024-02-27T16:04:52.223Z",
            "body": {"telephonySessionId": "s-1", "sequence": 1, "parties": [{"id": "p-1"}]}
        })) {
            Ok(Decoded::Usable {
                payload: Payload::Telephony(update),
                timestamp: Some(_),
                ..
            }) => assert_eq!(update.session_id.as_str(), "s-1"),
            other => panic!("{other:?}"),
        }
        match decoded(json!({
            "uuid": "u", "event": "/restapi/v1.0/account/~/telephony/sessions",
            "body": {"telephonySessionId": "s-1", "parties": []}
        })) {
            Ok(Decoded::Unusable { reason, .. }) => {
                assert_eq!(reason.to_string(), "body.sequence is missing")
            }
            other => panic!("{other:?}"),
        }
    }
}
