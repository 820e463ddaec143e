//! Rendering: how an announcement reads. One module for every sink — standard output in local
//! mode, `replay`, and (with the Discord integration) channel messages.
//!
//! Announcements are rendered when they are sent, not when the event happened: names come from
//! the roster at that moment, so an identity learned within the coalescing window is the one
//! shown. The event's own copy is the fallback once the roster has forgotten the conference.

use crate::conference::{
    ConferenceEvent, ConferenceView, EventKind, Identity, LeaveReason, ParticipantKey, Roster,
    Timestamp,
};
use crate::config::PhoneNumbers;
use serde_json::{Value, json};

/// Shown in place of the hidden digits of a phone number.
const MASK: &str = "•••";
/// How many trailing digits a masked number keeps.
const MASK_KEEP_DIGITS: usize = 4;

/// A phone number as `privacy.phone_numbers` allows it to be shown.
pub fn phone_number(number: &str, style: PhoneNumbers) -> Option<String> {
    match style {
        PhoneNumbers::Hidden => None,
        PhoneNumbers::Full => Some(number.to_owned()),
        PhoneNumbers::Masked => {
            let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
            let keep = digits.len().min(MASK_KEEP_DIGITS);
            let tail: String = digits[digits.len() - keep..].iter().collect();
            Some(format!("{MASK}{tail}"))
        }
    }
}

/// A caller or host as one phrase: `Paco Vu (•••1119)`, `•••1119`, or `an unknown caller`.
pub fn caller(identity: &Identity, style: PhoneNumbers) -> String {
    let number = identity
        .phone_number
        .as_deref()
        .and_then(|number| phone_number(number, style));
    match (&identity.name, number) {
        (Some(name), Some(number)) => format!("{name} ({number})"),
        (Some(name), None) => name.clone(),
        (None, Some(number)) => number,
        (None, None) => "An unknown caller".to_owned(),
    }
}

/// A host by name when there is one, else by number.
fn host(identity: &Identity, style: PhoneNumbers) -> Option<String> {
    match (&identity.name, &identity.phone_number) {
        (Some(name), _) => Some(name.clone()),
        (None, Some(number)) => phone_number(number, style),
        (None, None) => None,
    }
}

/// `45s`, `1m 21s`, `4m`, `1h 2m`.
pub fn duration(secs: i64) -> String {
    let secs = secs.max(0);
    let (hours, minutes, seconds) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (hours, minutes, seconds) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

/// `3 on the call`.
pub(crate) fn on_call(count: u32) -> String {
    format!("{count} on the call")
}

/// The identity to show for a participant event: the roster's, if it knows better.
pub(crate) fn participant_identity(
    event: &ConferenceEvent,
    fallback: &Identity,
    roster: &Roster,
) -> Identity {
    event
        .kind
        .participant_id()
        .and_then(|participant| {
            roster.participant(&ParticipantKey {
                conference: event.conference_id.clone(),
                participant: participant.clone(),
            })
        })
        .map(|view| view.identity)
        .filter(|identity| !identity.is_unknown())
        .unwrap_or_else(|| fallback.clone())
}

/// The conference's host as known now, else as the event knew it.
fn conference_host(
    event: &ConferenceEvent,
    fallback: Option<&Identity>,
    roster: &Roster,
) -> Option<Identity> {
    roster
        .conference(&event.conference_id)
        .and_then(|view| view.host)
        .or_else(|| fallback.cloned())
}

/// One readable line per announcement (local mode and plain `replay`).
pub fn line(event: &ConferenceEvent, roster: &Roster, style: PhoneNumbers) -> String {
    let hosted_by = |fallback: Option<&Identity>| {
        conference_host(event, fallback, roster).and_then(|identity| host(&identity, style))
    };
    match &event.kind {
        EventKind::ConferenceStarted { host } => match hosted_by(host.as_ref()) {
            Some(host) => format!("Conference hosted by {host} started"),
            None => "A conference started".to_owned(),
        },
        EventKind::ParticipantJoined {
            identity,
            on_call: count,
            ..
        } => {
            let who = caller(&participant_identity(event, identity, roster), style);
            match hosted_by(None) {
                Some(host) => format!(
                    "{who} joined the conference hosted by {host} — {}",
                    on_call(*count)
                ),
                None => format!("{who} joined a conference — {}", on_call(*count)),
            }
        }
        EventKind::ParticipantLeft {
            identity,
            reason,
            joined_at,
            removed_by,
            removal_reason,
            ..
        } => {
            let who = caller(&participant_identity(event, identity, roster), style);
            let stayed = joined_at
                .map(|joined| format!(" after {}", duration(event.at.secs_since(joined))))
                .unwrap_or_default();
            match reason {
                LeaveReason::HungUp => format!("{who} left{stayed}"),
                LeaveReason::Removed => {
                    let by = removed_by
                        .as_ref()
                        .map(|actor| format!(" by {}", actor.display))
                        .unwrap_or_default();
                    let why = removal_reason
                        .as_ref()
                        .map(|reason| format!(" — {reason}"))
                        .unwrap_or_default();
                    format!("{who} was removed{by}{stayed}{why}")
                }
                LeaveReason::ConferenceEnded => {
                    format!("{who} left{stayed} when the conference ended")
                }
                LeaveReason::Vanished => format!("{who} dropped off the call{stayed}"),
            }
        }
        EventKind::ConferenceEnded {
            duration_secs,
            participants,
            peak,
        } => {
            let lasted = duration_secs
                .map(|secs| format!(" after {}", duration(secs)))
                .unwrap_or_default();
            let callers = match participants {
                1 => "1 caller".to_owned(),
                n => format!("{n} callers"),
            };
            let subject = match hosted_by(None) {
                Some(host) => format!("Conference hosted by {host}"),
                None => "The conference".to_owned(),
            };
            format!("{subject} ended{lasted} — {callers}, at most {peak} at once")
        }
    }
}

fn identity_json(identity: &Identity) -> Value {
    json!({ "name": identity.name, "phone_number": identity.phone_number })
}

fn time_json(at: Timestamp) -> Value {
    Value::String(at.to_rfc3339())
}

/// The `replay --json` object of an event: full numbers, unknown values `null`.
pub fn replay_json(event: &ConferenceEvent, roster: &Roster) -> Value {
    let mut object = json!({
        "type": event.kind.type_name(),
        "at": time_json(event.at),
        "conference_id": event.conference_id.as_str(),
    });
    let extra = match &event.kind {
        EventKind::ConferenceStarted { host } => {
            let host = conference_host(event, host.as_ref(), roster);
            json!({ "host": host.as_ref().map(identity_json) })
        }
        EventKind::ParticipantJoined {
            participant_id,
            identity,
            ..
        }
        | EventKind::ParticipantLeft {
            participant_id,
            identity,
            ..
        } => {
            let identity = participant_identity(event, identity, roster);
            let mut fields = json!({
                "participant_id": participant_id.as_str(),
                "name": identity.name,
                "phone_number": identity.phone_number,
            });
            if let (EventKind::ParticipantLeft { reason, .. }, Some(fields)) =
                (&event.kind, fields.as_object_mut())
            {
                fields.insert("reason".into(), json!(reason.as_str()));
            }
            fields
        }
        EventKind::ConferenceEnded {
            duration_secs,
            participants,
            peak,
        } => json!({
            "duration_secs": duration_secs,
            "participants": participants,
            "peak": peak,
        }),
    };
    if let (Some(object), Value::Object(extra)) = (object.as_object_mut(), extra) {
        object.extend(extra);
    }
    object
}

/// The participants of one live conference, one line each, as `/participants` lists them.
pub fn participants(view: &ConferenceView, style: PhoneNumbers) -> Vec<String> {
    let host = view
        .host
        .as_ref()
        .and_then(|identity| host(identity, style))
        .unwrap_or_else(|| "an unknown host".to_owned());
    let live: Vec<_> = view.live().collect();
    let mut lines = vec![format!(
        "Conference hosted by {host}{} — {}",
        view.started_at
            .map(|at| format!(", started {}", clock_time(at)))
            .unwrap_or_default(),
        on_call(u32::try_from(live.len()).unwrap_or(u32::MAX))
    )];
    for participant in live {
        let mut line = format!("  • {}", caller(&participant.identity, style));
        if let Some(joined) = participant.joined_at {
            line.push_str(&format!(", joined {}", clock_time(joined)));
        }
        if participant.muted {
            line.push_str(", muted");
        }
        if participant.on_hold {
            line.push_str(", on hold");
        }
        lines.push(line);
    }
    lines
}

/// `16:04:52 UTC`.
fn clock_time(at: Timestamp) -> String {
    let rfc = at.to_rfc3339();
    match rfc.get(11..19) {
        Some(time) => format!("{time} UTC"),
        None => rfc,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conference::{Actor, ConferenceId, Detector, Input, ParticipantId, SessionUpdate};
    use crate::ringcentral::wire::TelephonyNotification;

    fn seed(name: &str) -> Input {
        let path = format!(
            "{}/tests/fixtures/ringcentral/seed/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(path).unwrap();
        let notification: TelephonyNotification = serde_json::from_str(&text).unwrap();
        let update = SessionUpdate::from_notification(&notification.body).unwrap();
        Input::Notification {
            received_at: update.event_time.unwrap(),
            notification: update,
        }
    }

    /// Renders every event of `inputs` the way the announcer would, after all of them.
    fn rendered(inputs: Vec<Input>, style: PhoneNumbers) -> String {
        let mut detector = Detector::default();
        let events: Vec<_> = inputs
            .into_iter()
            .flat_map(|input| detector.apply(input))
            .collect();
        let roster = Roster::new();
        roster.rebuild(&detector);
        events
            .iter()
            .map(|event| line(event, &roster, style))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn seed_key() -> ParticipantKey {
        ParticipantKey {
            conference: ConferenceId::parse("s-a0d7bfa2dd198z18deb4fcc72z184536c0000").unwrap(),
            participant: ParticipantId::parse("p-a0d7bfa2dd198z18deb4fcc72z184536c0000-2").unwrap(),
        }
    }

    #[test]
    fn seed_conference_reads_naturally_with_masked_numbers() {
        insta::assert_snapshot!(rendered(
            vec![
                seed("participant-added.json"),
                seed("participant-removed.json")
            ],
            PhoneNumbers::Masked
        ));
    }

    #[test]
    fn full_and_hidden_numbers_follow_the_privacy_setting() {
        let inputs = || vec![seed("participant-added.json")];
        insta::assert_snapshot!("full_numbers", rendered(inputs(), PhoneNumbers::Full));
        insta::assert_snapshot!("hidden_numbers", rendered(inputs(), PhoneNumbers::Hidden));
    }

    #[test]
    fn a_removal_names_who_removed_the_caller_and_why() {
        let kick = Input::KickIntent {
            at: crate::conference::Timestamp(0),
            participant: seed_key(),
            by: Actor {
                id: "42".into(),
                display: "@mod".into(),
            },
            reason: Some("not on the guest list".into()),
        };
        insta::assert_snapshot!(rendered(
            vec![
                seed("participant-added.json"),
                kick,
                seed("participant-removed.json")
            ],
            PhoneNumbers::Masked
        ));
    }

    #[test]
    fn the_end_summary_gives_duration_callers_and_peak() {
        let gone = Input::SessionGone {
            at: crate::conference::Timestamp::parse_rfc3339("2024-02-27T17:10:00.000Z").unwrap(),
            conference_id: seed_key().conference,
        };
        insta::assert_snapshot!(rendered(
            vec![seed("participant-added.json"), gone],
            PhoneNumbers::Masked
        ));
    }

    #[test]
    fn the_participant_list_shows_host_callers_and_join_times() {
        let mut detector = Detector::default();
        detector.apply(seed("participant-added.json"));
        let view = detector.views().pop().unwrap();
        insta::assert_snapshot!(participants(&view, PhoneNumbers::Masked).join("\n"));
    }

    #[test]
    fn durations_read_like_a_person_would_say_them() {
        let said: Vec<String> = [0, 45, 60, 81, 252, 3600, 3720, 86_399]
            .into_iter()
            .map(duration)
            .collect();
        assert_eq!(
            said,
            [
                "0s", "45s", "1m", "1m 21s", "4m 12s", "1h", "1h 2m", "23h 59m"
            ]
        );
    }

    #[test]
    fn masking_keeps_the_last_four_digits_only() {
        assert_eq!(
            phone_number("+1 (650) 555-0142", PhoneNumbers::Masked).unwrap(),
            "•••0142"
        );
        assert_eq!(
            phone_number("11119", PhoneNumbers::Masked).unwrap(),
            "•••1119"
        );
        assert_eq!(phone_number("101", PhoneNumbers::Masked).unwrap(), "•••101");
        assert_eq!(
            phone_number("+16505550142", PhoneNumbers::Full).unwrap(),
            "+16505550142"
        );
        assert_eq!(phone_number("+16505550142", PhoneNumbers::Hidden), None);
    }

    #[test]
    fn an_unknown_caller_is_still_announced() {
        assert_eq!(
            caller(&Identity::default(), PhoneNumbers::Masked),
            "An unknown caller"
        );
        let number_only = Identity {
            phone_number: Some("+14155550142".into()),
            ..Identity::default()
        };
        assert_eq!(caller(&number_only, PhoneNumbers::Masked), "•••0142");
    }

    #[test]
    fn replay_json_has_the_documented_fields() {
        let mut detector = Detector::default();
        let events = detector.apply(seed("participant-added.json"));
        let roster = Roster::new();
        roster.rebuild(&detector);
        let joined = replay_json(&events[1], &roster);
        assert_eq!(
            joined,
            json!({
                "type": "participant_joined",
                "at": "2024-02-27T16:04:52.223Z",
                "conference_id": "s-a0d7bfa2dd198z18deb4fcc72z184536c0000",
                "participant_id": "p-a0d7bfa2dd198z18deb4fcc72z184536c0000-2",
                "name": "Paco Vu",
                "phone_number": "11119",
            })
        );
    }
}
