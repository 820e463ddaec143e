//! The plain formatter: one readable line per event, for standard output in local mode and for
//! `ringside replay`.

use super::phrase::{Phrase, What};
use super::words::{self, UNKNOWN_CALLER};
use crate::conference::{Identity, LeaveReason};
use crate::config::PhoneNumbers;

/// A caller or host as one phrase: `Paco Vu (•••1119)`, `•••1119`, or `an unknown caller`.
pub fn caller(identity: &Identity, style: PhoneNumbers) -> String {
    let number = identity
        .phone_number
        .as_deref()
        .and_then(|number| words::phone_number(number, style));
    match (&identity.name, number) {
        (Some(name), Some(number)) => format!("{name} ({number})"),
        (Some(name), None) => name.clone(),
        (None, Some(number)) => number,
        (None, None) => UNKNOWN_CALLER.to_owned(),
    }
}

/// A host by name when there is one, else by number.
pub fn host(identity: &Identity, style: PhoneNumbers) -> Option<String> {
    match (&identity.name, &identity.phone_number) {
        (Some(name), _) => Some(name.clone()),
        (None, Some(number)) => words::phone_number(number, style),
        (None, None) => None,
    }
}

/// One readable line for one event.
pub fn line(phrase: &Phrase, style: PhoneNumbers) -> String {
    let hosted_by = phrase
        .host
        .as_ref()
        .and_then(|host| self::host(host, style));
    match &phrase.what {
        What::Started => match hosted_by {
            Some(host) => format!("Conference hosted by {host} started"),
            None => "A conference started".to_owned(),
        },
        What::Joined { who, on_call } => {
            let who = words::sentence_start(caller(who, style));
            match hosted_by {
                Some(host) => format!(
                    "{who} joined the conference hosted by {host} — {}",
                    words::on_call(*on_call)
                ),
                None => format!("{who} joined a conference — {}", words::on_call(*on_call)),
            }
        }
        What::Left {
            who,
            reason,
            stayed_secs,
            by,
            why,
            ..
        } => {
            let who = words::sentence_start(caller(who, style));
            let stayed = words::after(*stayed_secs);
            match reason {
                LeaveReason::HungUp => format!("{who} left{stayed}"),
                LeaveReason::Removed => {
                    let by = by
                        .as_ref()
                        .map(|actor| format!(" by {}", actor.display))
                        .unwrap_or_default();
                    let why = why
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
        What::Ended {
            lasted_secs,
            callers,
            peak,
        } => {
            let lasted = words::after(*lasted_secs);
            let subject = match hosted_by {
                Some(host) => format!("Conference hosted by {host}"),
                None => "The conference".to_owned(),
            };
            format!(
                "{subject} ended{lasted} — {}, at most {peak} at once",
                words::callers(*callers)
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conference::{
        Actor, ConferenceId, Detector, Input, ParticipantId, ParticipantKey, Roster, SessionUpdate,
    };
    use crate::present::words::{duration, phone_number};
    use crate::present::{json, phrase};
    use crate::ringcentral::wire::TelephonyNotification;
    use serde_json::json;

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
            .map(|event| line(&phrase(event, &roster), style))
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
            "an unknown caller"
        );
        assert_eq!(
            crate::present::words::sentence_start(caller(
                &Identity::default(),
                PhoneNumbers::Masked
            )),
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
        let joined = json::event(&events[1], &roster);
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
