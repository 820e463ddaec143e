//! Detector rules, one by one (see the rule list in `detector.rs`).

use super::*;
use crate::ringcentral::wire::{
    ConferenceRole, Direction, OriginType, StatusCode, StatusReason, TelephonyNotification,
};
use input::{PartyUpdate, Peer};

const T0: i64 = 1_700_000_000_000;

fn at(secs: i64) -> Timestamp {
    Timestamp(T0 + secs * 1000)
}

fn id(value: &str) -> Identity {
    Identity {
        name: Some(value.to_owned()),
        phone_number: None,
        extension_id: None,
    }
}

fn person(name: &str, number: &str) -> Identity {
    Identity {
        name: Some(name.to_owned()),
        phone_number: Some(number.to_owned()),
        extension_id: None,
    }
}

const HOST: (&str, &str) = ("Agent 122", "+16505550100");
const CONF: &str = "s-conf";

/// A party update with the fields the rules look at.
fn party(id: &str, code: StatusCode) -> PartyUpdate {
    PartyUpdate {
        id: PartyId::parse(id).unwrap(),
        direction: None,
        from: Identity::default(),
        to: Identity::default(),
        to_conference: false,
        code: Some(code),
        reason: None,
        peer: None,
        role: None,
        muted: None,
    }
}

/// The host's leg of an original call, merged into the conference as `conference_party`.
fn merged(original: &str, conference_party: &str, caller: Identity) -> PartyUpdate {
    PartyUpdate {
        direction: Some(Direction::Outbound),
        from: person(HOST.0, HOST.1),
        to: caller,
        reason: Some(StatusReason::Conference),
        peer: Some(Peer {
            telephony_session_id: Some(SessionId::parse(CONF).unwrap()),
            party_id: Some(PartyId::parse(conference_party).unwrap()),
        }),
        ..party(original, StatusCode::Gone)
    }
}

fn host_party(code: StatusCode) -> PartyUpdate {
    PartyUpdate {
        direction: Some(Direction::Outbound),
        from: person(HOST.0, HOST.1),
        to_conference: true,
        role: Some(ConferenceRole::Host),
        ..party("p-conf-1", code)
    }
}

/// A conference-side participant party; RingCentral puts the host's leg in `from`.
fn conference_party(id: &str, code: StatusCode, original: Option<&str>) -> PartyUpdate {
    PartyUpdate {
        direction: Some(Direction::Inbound),
        from: person(HOST.0, HOST.1),
        to_conference: true,
        role: Some(ConferenceRole::Participant),
        peer: original.map(|original| Peer {
            telephony_session_id: None,
            party_id: Some(PartyId::parse(original).unwrap()),
        }),
        ..party(id, code)
    }
}

fn original_update(session: &str, sequence: u64, secs: i64, party: PartyUpdate) -> Input {
    Input::Notification {
        received_at: at(secs),
        notification: SessionUpdate {
            session_id: SessionId::parse(session).unwrap(),
            sequence: Some(sequence),
            event_time: Some(at(secs)),
            origin: Some(OriginType::Call),
            parties: vec![party],
        },
    }
}

fn conference_update(sequence: u64, secs: i64, parties: Vec<PartyUpdate>) -> Input {
    Input::Notification {
        received_at: at(secs),
        notification: SessionUpdate {
            session_id: SessionId::parse(CONF).unwrap(),
            sequence: Some(sequence),
            event_time: Some(at(secs)),
            origin: Some(OriginType::Conference),
            parties,
        },
    }
}

fn snapshot(secs: i64, parties: Vec<PartyUpdate>) -> Input {
    Input::Snapshot {
        requested_at: at(secs),
        session: SessionUpdate {
            session_id: SessionId::parse(CONF).unwrap(),
            sequence: None,
            event_time: None,
            origin: Some(OriginType::Conference),
            parties,
        },
    }
}

fn run(detector: &mut Detector, inputs: Vec<Input>) -> Vec<ConferenceEvent> {
    inputs
        .into_iter()
        .flat_map(|input| detector.apply(input))
        .collect()
}

fn types(events: &[ConferenceEvent]) -> Vec<String> {
    events
        .iter()
        .map(|event| match event.kind.participant_id() {
            Some(participant) => format!("{} {participant}", event.kind.type_name()),
            None => event.kind.type_name().to_owned(),
        })
        .collect()
}

fn left_reason(event: &ConferenceEvent) -> LeaveReason {
    match &event.kind {
        EventKind::ParticipantLeft { reason, .. } => *reason,
        other => panic!("not a leave: {other:?}"),
    }
}

fn conf_id() -> ConferenceId {
    ConferenceId::parse(CONF).unwrap()
}

fn key(participant: &str) -> ParticipantKey {
    ParticipantKey {
        conference: conf_id(),
        participant: ParticipantId::parse(participant).unwrap(),
    }
}

fn seed(name: &str) -> SessionUpdate {
    let path = format!(
        "{}/tests/fixtures/ringcentral/seed/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).unwrap();
    let notification: TelephonyNotification = serde_json::from_str(&text).unwrap();
    SessionUpdate::from_notification(&notification.body).unwrap()
}

fn from_seed(name: &str) -> Input {
    let notification = seed(name);
    Input::Notification {
        received_at: notification.event_time.unwrap(),
        notification,
    }
}

#[test]
fn seed_events_start_the_conference_join_and_leave_paco_vu() {
    let mut detector = Detector::default();
    let events = run(
        &mut detector,
        vec![
            from_seed("participant-added.json"),
            from_seed("participant-removed.json"),
        ],
    );
    assert_eq!(
        types(&events),
        [
            "conference_started",
            "participant_joined p-a0d7bfa2dd198z18deb4fcc72z184536c0000-2",
            "participant_left p-a0d7bfa2dd198z18deb4fcc72z184536c0000-2",
        ]
    );
    assert!(
        events
            .iter()
            .all(|e| e.conference_id.as_str() == "s-a0d7bfa2dd198z18deb4fcc72z184536c0000")
    );
    match &events[0].kind {
        EventKind::ConferenceStarted { host: Some(host) } => {
            assert_eq!(host.name.as_deref(), Some("Agent 122"))
        }
        other => panic!("{other:?}"),
    }
    match &events[1].kind {
        EventKind::ParticipantJoined {
            identity, on_call, ..
        } => {
            assert_eq!(identity.name.as_deref(), Some("Paco Vu"));
            assert_eq!(identity.phone_number.as_deref(), Some("11119"));
            assert_eq!(*on_call, 1);
        }
        other => panic!("{other:?}"),
    }
    match &events[2].kind {
        EventKind::ParticipantLeft {
            reason, joined_at, ..
        } => {
            assert_eq!(*reason, LeaveReason::HungUp);
            assert_eq!(events[2].at.secs_since(joined_at.unwrap()), 81);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn original_parties_alone_never_end_a_conference() {
    let mut detector = Detector::default();
    let events = run(
        &mut detector,
        vec![
            from_seed("participant-added.json"),
            from_seed("participant-removed.json"),
            Input::Tick {
                now: at(10_000_000),
            },
        ],
    );
    assert!(!types(&events).contains(&"conference_ended".to_owned()));
}

#[test]
fn join_from_original_party_takes_the_remote_side_as_identity() {
    let mut detector = Detector::default();
    let mut inbound = merged("p-a-1", "p-conf-2", Identity::default());
    inbound.direction = Some(Direction::Inbound);
    inbound.from = person("Dana Whitfield", "+14155550142");
    inbound.to = person(HOST.0, HOST.1);
    let events = run(&mut detector, vec![original_update("s-a", 3, 0, inbound)]);
    match (&events[0].kind, &events[1].kind) {
        (
            EventKind::ConferenceStarted { host: Some(host) },
            EventKind::ParticipantJoined { identity, .. },
        ) => {
            assert_eq!(host.name.as_deref(), Some(HOST.0));
            assert_eq!(identity.name.as_deref(), Some("Dana Whitfield"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn join_from_conference_side_with_host_in_from_has_unknown_identity() {
    let mut detector = Detector::default();
    let events = run(
        &mut detector,
        vec![conference_update(
            1,
            0,
            vec![
                host_party(StatusCode::Answered),
                conference_party("p-conf-2", StatusCode::Gone, Some("p-a-1")),
            ],
        )],
    );
    assert_eq!(
        types(&events),
        ["conference_started", "participant_joined p-conf-2"]
    );
    match &events[1].kind {
        EventKind::ParticipantJoined { identity, .. } => assert!(identity.is_unknown()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn join_from_conference_side_names_a_caller_who_is_not_the_host() {
    let mut detector = Detector::default();
    let mut caller = conference_party("p-conf-2", StatusCode::Answered, None);
    caller.from = person("Ravi Anand", "+442071838750");
    let events = run(
        &mut detector,
        vec![conference_update(
            1,
            0,
            vec![host_party(StatusCode::Answered), caller],
        )],
    );
    match &events[1].kind {
        EventKind::ParticipantJoined { identity, .. } => {
            assert_eq!(identity.name.as_deref(), Some("Ravi Anand"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn identity_learned_later_updates_the_roster_without_a_second_join() {
    let mut detector = Detector::default();
    let mut events = run(
        &mut detector,
        vec![conference_update(
            1,
            0,
            vec![
                host_party(StatusCode::Answered),
                conference_party("p-conf-2", StatusCode::Answered, Some("p-a-1")),
            ],
        )],
    );
    let roster = Roster::new();
    roster.sync(&detector, &detector.clone().take_dirty());
    assert!(
        roster
            .participant(&key("p-conf-2"))
            .unwrap()
            .identity
            .is_unknown()
    );
    events.extend(detector.apply(original_update(
        "s-a",
        5,
        1,
        merged("p-a-1", "p-conf-2", person("Paco Vu", "11119")),
    )));
    assert_eq!(
        types(&events),
        ["conference_started", "participant_joined p-conf-2"]
    );
    roster.sync(&detector, &detector.clone().take_dirty());
    let view = roster.participant(&key("p-conf-2")).unwrap();
    assert_eq!(view.identity.name.as_deref(), Some("Paco Vu"));
    assert_eq!(view.original_party.as_ref().unwrap().as_str(), "p-a-1");
    assert_eq!(view.original_session.as_ref().unwrap().as_str(), "s-a");
}

/// The host's leg of a plain call to `caller`, before any merge.
fn answered_call(original: &str, caller: Identity) -> PartyUpdate {
    PartyUpdate {
        direction: Some(Direction::Outbound),
        from: person(HOST.0, HOST.1),
        to: caller,
        ..party(original, StatusCode::Answered)
    }
}

#[test]
fn a_caller_whose_merge_update_was_lost_is_named_by_the_calls_earlier_update() {
    let mut detector = Detector::default();
    let events = run(
        &mut detector,
        vec![
            original_update(
                "s-a",
                3,
                0,
                answered_call("p-a-1", person("Paco Vu", "11119")),
            ),
            // The `Gone`/`Conference` update (sequence 4) never arrives.
            conference_update(
                1,
                2,
                vec![
                    host_party(StatusCode::Answered),
                    conference_party("p-conf-2", StatusCode::Answered, Some("p-a-1")),
                ],
            ),
        ],
    );
    assert_eq!(
        types(&events),
        ["conference_started", "participant_joined p-conf-2"]
    );
    match &events[1].kind {
        EventKind::ParticipantJoined { identity, .. } => {
            assert_eq!(identity.name.as_deref(), Some("Paco Vu"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_caller_whose_merge_update_was_lost_is_named_by_the_hang_up() {
    let mut detector = Detector::default();
    let mut events = run(
        &mut detector,
        vec![conference_update(
            1,
            0,
            vec![
                host_party(StatusCode::Answered),
                conference_party("p-conf-2", StatusCode::Answered, Some("p-a-1")),
            ],
        )],
    );
    let mut hang_up = answered_call("p-a-1", person("Paco Vu", "11119"));
    hang_up.code = Some(StatusCode::Disconnected);
    events.extend(detector.apply(original_update("s-a", 9, 60, hang_up)));
    assert_eq!(
        types(&events),
        [
            "conference_started",
            "participant_joined p-conf-2",
            "participant_left p-conf-2"
        ]
    );
    let view = detector.view(&conf_id()).unwrap();
    let paco = view
        .participant(&ParticipantId::parse("p-conf-2").unwrap())
        .unwrap();
    assert_eq!(paco.identity.name.as_deref(), Some("Paco Vu"));
    assert!(!paco.live);
}

#[test]
fn a_later_call_update_does_not_rename_a_caller_the_merge_named() {
    let mut detector = Detector::default();
    run(
        &mut detector,
        vec![
            conference_update(1, 0, vec![host_party(StatusCode::Answered)]),
            original_update(
                "s-a",
                4,
                1,
                merged("p-a-1", "p-conf-2", person("Paco Vu", "11119")),
            ),
            original_update(
                "s-a",
                5,
                2,
                answered_call("p-a-1", person("Someone Else", "555")),
            ),
        ],
    );
    let view = detector.view(&conf_id()).unwrap();
    let paco = view
        .participant(&ParticipantId::parse("p-conf-2").unwrap())
        .unwrap();
    assert_eq!(paco.identity.name.as_deref(), Some("Paco Vu"));
}

#[test]
fn host_from_conference_side_replaces_the_near_side_guess_and_is_not_a_participant() {
    let mut detector = Detector::default();
    let mut near = merged("p-a-1", "p-conf-2", person("Paco Vu", "11119"));
    near.from = id("Front desk");
    run(
        &mut detector,
        vec![
            original_update("s-a", 5, 0, near),
            conference_update(1, 1, vec![host_party(StatusCode::Answered)]),
        ],
    );
    let view = detector.view(&conf_id()).unwrap();
    assert_eq!(view.host.as_ref().unwrap().name.as_deref(), Some(HOST.0));
    assert_eq!(
        view.host.as_ref().unwrap().phone_number.as_deref(),
        Some(HOST.1)
    );
    assert_eq!(view.live().count(), 1);
    assert_eq!(view.peak, 1);
}

#[test]
fn start_is_announced_once_with_the_host_when_the_host_party_appears_first() {
    let mut detector = Detector::default();
    let events = run(
        &mut detector,
        vec![
            conference_update(1, 0, vec![host_party(StatusCode::Setup)]),
            conference_update(2, 1, vec![host_party(StatusCode::Answered)]),
            original_update(
                "s-a",
                5,
                2,
                merged("p-a-1", "p-conf-2", person("Paco Vu", "11119")),
            ),
        ],
    );
    assert_eq!(
        types(&events),
        ["conference_started", "participant_joined p-conf-2"]
    );
    match &events[0].kind {
        EventKind::ConferenceStarted { host } => {
            assert_eq!(host.as_ref().unwrap().name.as_deref(), Some(HOST.0))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn leave_is_announced_once_when_both_legs_disconnect() {
    let mut detector = Detector::default();
    let events = run(
        &mut detector,
        vec![
            original_update(
                "s-a",
                5,
                0,
                merged("p-a-1", "p-conf-2", person("Paco Vu", "11119")),
            ),
            conference_update(
                3,
                1,
                vec![conference_party(
                    "p-conf-2",
                    StatusCode::Answered,
                    Some("p-a-1"),
                )],
            ),
            conference_update(
                4,
                60,
                vec![conference_party(
                    "p-conf-2",
                    StatusCode::Disconnected,
                    Some("p-a-1"),
                )],
            ),
            original_update("s-a", 6, 61, party("p-a-1", StatusCode::Disconnected)),
        ],
    );
    assert_eq!(
        types(&events),
        [
            "conference_started",
            "participant_joined p-conf-2",
            "participant_left p-conf-2"
        ]
    );
    assert_eq!(left_reason(&events[2]), LeaveReason::HungUp);
}

#[test]
fn leave_from_original_party_alone() {
    let mut detector = Detector::default();
    let events = run(
        &mut detector,
        vec![
            original_update(
                "s-a",
                5,
                0,
                merged("p-a-1", "p-conf-2", person("Paco Vu", "11119")),
            ),
            original_update("s-a", 6, 30, party("p-a-1", StatusCode::Disconnected)),
        ],
    );
    assert_eq!(left_reason(&events[2]), LeaveReason::HungUp);
    assert_eq!(detector.view(&conf_id()).unwrap().live().count(), 0);
}

#[test]
fn leave_from_conference_side_alone() {
    let mut detector = Detector::default();
    let events = run(
        &mut detector,
        vec![
            conference_update(
                1,
                0,
                vec![
                    host_party(StatusCode::Answered),
                    conference_party("p-conf-2", StatusCode::Answered, None),
                ],
            ),
            conference_update(
                2,
                5,
                vec![conference_party("p-conf-2", StatusCode::Disconnected, None)],
            ),
        ],
    );
    assert_eq!(
        types(&events),
        [
            "conference_started",
            "participant_joined p-conf-2",
            "participant_left p-conf-2"
        ]
    );
}

#[test]
fn a_snapshot_that_lists_a_participant_disconnected_is_a_vanished_leave() {
    let mut detector = Detector::default();
    let events = run(
        &mut detector,
        vec![
            conference_update(
                1,
                0,
                vec![
                    host_party(StatusCode::Answered),
                    conference_party("p-conf-2", StatusCode::Answered, None),
                ],
            ),
            snapshot(
                30,
                vec![
                    host_party(StatusCode::Answered),
                    conference_party("p-conf-2", StatusCode::Disconnected, None),
                ],
            ),
        ],
    );
    assert_eq!(left_reason(&events[2]), LeaveReason::Vanished);
}

#[test]
fn two_consecutive_snapshots_without_a_settled_participant_make_it_leave() {
    let mut detector = Detector::new(DetectorConfig::default());
    let start = conference_update(
        1,
        0,
        vec![
            host_party(StatusCode::Answered),
            conference_party("p-conf-2", StatusCode::Answered, None),
            conference_party("p-conf-3", StatusCode::Answered, None),
        ],
    );
    let mut events = run(&mut detector, vec![start]);
    // A caller who joined just before the snapshot was requested is not counted against.
    events.extend(detector.apply(conference_update(
        2,
        45,
        vec![conference_party("p-conf-4", StatusCode::Answered, None)],
    )));
    let only_host_and_two = || {
        vec![
            host_party(StatusCode::Answered),
            conference_party("p-conf-2", StatusCode::Answered, None),
        ]
    };
    let first = detector.apply(snapshot(50, only_host_and_two()));
    assert!(
        first.is_empty(),
        "one missing snapshot is not enough: {first:?}"
    );
    // Two reads in quick succession (a discovery right after a poll) count once.
    let hurried = detector.apply(snapshot(55, only_host_and_two()));
    assert!(
        hurried.is_empty(),
        "misses must be an interval apart: {hurried:?}"
    );
    let second = detector.apply(snapshot(71, only_host_and_two()));
    assert_eq!(types(&second), ["participant_left p-conf-3"]);
    assert_eq!(left_reason(&second[0]), LeaveReason::Vanished);
    assert!(
        detector
            .view(&conf_id())
            .unwrap()
            .participant(&ParticipantId::parse("p-conf-4").unwrap())
            .unwrap()
            .live
    );
}

#[test]
fn being_listed_again_resets_the_missing_count() {
    let mut detector = Detector::default();
    run(
        &mut detector,
        vec![conference_update(
            1,
            0,
            vec![
                host_party(StatusCode::Answered),
                conference_party("p-conf-2", StatusCode::Answered, None),
            ],
        )],
    );
    let all = vec![
        host_party(StatusCode::Answered),
        conference_party("p-conf-2", StatusCode::Answered, None),
    ];
    let events = run(
        &mut detector,
        vec![
            snapshot(100, vec![host_party(StatusCode::Answered)]),
            snapshot(120, all),
            snapshot(140, vec![host_party(StatusCode::Answered)]),
        ],
    );
    assert!(events.is_empty(), "{events:?}");
}

#[test]
fn a_snapshot_never_rejoins_a_participant_who_left() {
    let mut detector = Detector::default();
    let events = run(
        &mut detector,
        vec![
            original_update(
                "s-a",
                5,
                0,
                merged("p-a-1", "p-conf-2", person("Paco Vu", "11119")),
            ),
            original_update("s-a", 6, 30, party("p-a-1", StatusCode::Disconnected)),
            snapshot(
                31,
                vec![
                    host_party(StatusCode::Answered),
                    conference_party("p-conf-2", StatusCode::Answered, Some("p-a-1")),
                ],
            ),
        ],
    );
    assert_eq!(
        types(&events),
        [
            "conference_started",
            "participant_joined p-conf-2",
            "participant_left p-conf-2"
        ]
    );
}

#[test]
fn a_snapshot_discovers_a_conference_already_running() {
    let text = std::fs::read_to_string(format!(
        "{}/tests/fixtures/ringcentral/js-widgets/conference-session.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let session: crate::ringcentral::wire::CallSession = serde_json::from_str(&text).unwrap();
    let mut detector = Detector::default();
    let events = detector.apply(Input::Snapshot {
        requested_at: at(0),
        session: SessionUpdate::from_snapshot(&session).unwrap(),
    });
    assert_eq!(
        types(&events),
        [
            "conference_started",
            "participant_joined cs1726225542272106109-2",
            "participant_joined cs1726225542272106109-3",
        ]
    );
    let view = detector.views().pop().unwrap();
    assert_eq!(
        view.host.unwrap().phone_number.as_deref(),
        Some("+12812923232")
    );
    // Both participants carry the host's line in `from`: RingCentral names nobody here.
    assert!(view.participants.iter().all(|p| p.identity.is_unknown()));
}

#[test]
fn a_kick_intent_makes_the_next_leave_a_removal_by_that_member() {
    let mut detector = Detector::default();
    let by = Actor {
        id: "42".into(),
        display: "mod".into(),
    };
    let events = run(
        &mut detector,
        vec![
            original_update(
                "s-a",
                5,
                0,
                merged("p-a-1", "p-conf-2", person("Paco Vu", "11119")),
            ),
            Input::KickIntent {
                at: at(10),
                participant: key("p-conf-2"),
                by: by.clone(),
                reason: Some("not on the list".into()),
            },
            original_update("s-a", 6, 11, party("p-a-1", StatusCode::Disconnected)),
        ],
    );
    match &events[2].kind {
        EventKind::ParticipantLeft {
            reason,
            removed_by,
            removal_reason,
            ..
        } => {
            assert_eq!(*reason, LeaveReason::Removed);
            assert_eq!(removed_by.as_ref(), Some(&by));
            assert_eq!(removal_reason.as_deref(), Some("not on the list"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_failed_kick_leaves_the_next_leave_a_plain_hang_up() {
    let mut detector = Detector::default();
    let events = run(
        &mut detector,
        vec![
            original_update(
                "s-a",
                5,
                0,
                merged("p-a-1", "p-conf-2", person("Paco Vu", "11119")),
            ),
            Input::KickIntent {
                at: at(10),
                participant: key("p-conf-2"),
                by: Actor {
                    id: "42".into(),
                    display: "mod".into(),
                },
                reason: None,
            },
            Input::KickFailed {
                at: at(11),
                participant: key("p-conf-2"),
            },
            original_update("s-a", 6, 20, party("p-a-1", StatusCode::Disconnected)),
        ],
    );
    assert_eq!(left_reason(&events[2]), LeaveReason::HungUp);
}

#[test]
fn end_when_every_party_disconnected_lets_remaining_callers_leave_first() {
    let mut detector = Detector::default();
    let events = run(
        &mut detector,
        vec![
            conference_update(1, 0, vec![host_party(StatusCode::Answered)]),
            original_update(
                "s-a",
                5,
                60,
                merged("p-a-1", "p-conf-2", person("Paco Vu", "11119")),
            ),
            original_update(
                "s-b",
                5,
                120,
                merged(
                    "p-b-1",
                    "p-conf-3",
                    person("Dana Whitfield", "+14155550142"),
                ),
            ),
            original_update("s-b", 6, 180, party("p-b-1", StatusCode::Disconnected)),
            conference_update(
                2,
                300,
                vec![
                    conference_party("p-conf-2", StatusCode::Disconnected, Some("p-a-1")),
                    conference_party("p-conf-3", StatusCode::Disconnected, Some("p-b-1")),
                    host_party(StatusCode::Disconnected),
                ],
            ),
        ],
    );
    assert_eq!(
        types(&events),
        [
            "conference_started",
            "participant_joined p-conf-2",
            "participant_joined p-conf-3",
            "participant_left p-conf-3",
            "participant_left p-conf-2",
            "conference_ended"
        ]
    );
    assert_eq!(left_reason(&events[3]), LeaveReason::HungUp);
    // Listed before the host in the same notification, Paco still left because it ended.
    assert_eq!(left_reason(&events[4]), LeaveReason::ConferenceEnded);
    match &events[5].kind {
        EventKind::ConferenceEnded {
            duration_secs,
            participants,
            peak,
        } => {
            assert_eq!(*duration_secs, Some(300));
            assert_eq!(*participants, 2);
            assert_eq!(*peak, 2);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn callers_disconnected_after_the_host_left_leave_because_the_conference_ended() {
    let mut detector = Detector::default();
    let events = run(
        &mut detector,
        vec![
            conference_update(
                1,
                0,
                vec![
                    host_party(StatusCode::Answered),
                    conference_party("p-conf-2", StatusCode::Answered, None),
                    conference_party("p-conf-3", StatusCode::Answered, None),
                ],
            ),
            conference_update(2, 60, vec![host_party(StatusCode::Disconnected)]),
            conference_update(
                3,
                61,
                vec![conference_party("p-conf-2", StatusCode::Disconnected, None)],
            ),
            conference_update(
                4,
                61,
                vec![conference_party("p-conf-3", StatusCode::Disconnected, None)],
            ),
        ],
    );
    assert_eq!(left_reason(&events[3]), LeaveReason::ConferenceEnded);
    assert_eq!(left_reason(&events[4]), LeaveReason::ConferenceEnded);
    assert_eq!(events.last().unwrap().kind.type_name(), "conference_ended");
}

#[test]
fn end_when_the_session_is_gone() {
    let mut detector = Detector::default();
    let events = run(
        &mut detector,
        vec![
            from_seed("participant-added.json"),
            Input::SessionGone {
                at: Timestamp::parse_rfc3339("2024-02-27T16:14:52.223Z").unwrap(),
                conference_id: ConferenceId::parse("s-a0d7bfa2dd198z18deb4fcc72z184536c0000")
                    .unwrap(),
            },
        ],
    );
    assert_eq!(
        types(&events)[2..],
        [
            "participant_left p-a0d7bfa2dd198z18deb4fcc72z184536c0000-2",
            "conference_ended"
        ]
    );
    assert_eq!(left_reason(&events[2]), LeaveReason::ConferenceEnded);
    match &events[3].kind {
        EventKind::ConferenceEnded { duration_secs, .. } => assert_eq!(*duration_secs, Some(600)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_ended_conference_takes_no_more_events() {
    let mut detector = Detector::default();
    let mut events = run(
        &mut detector,
        vec![
            conference_update(1, 0, vec![host_party(StatusCode::Answered)]),
            conference_update(2, 10, vec![host_party(StatusCode::Disconnected)]),
        ],
    );
    events.extend(run(
        &mut detector,
        vec![
            original_update(
                "s-a",
                5,
                11,
                merged("p-a-1", "p-conf-2", person("Paco Vu", "11119")),
            ),
            conference_update(3, 12, vec![host_party(StatusCode::Answered)]),
        ],
    ));
    assert_eq!(types(&events), ["conference_started", "conference_ended"]);
}

#[test]
fn older_and_repeated_sequences_are_dropped() {
    let mut detector = Detector::default();
    let events = run(
        &mut detector,
        vec![
            original_update("s-a", 11, 0, party("p-a-1", StatusCode::Disconnected)),
            original_update(
                "s-a",
                9,
                1,
                merged("p-a-1", "p-conf-2", person("Paco Vu", "11119")),
            ),
            original_update(
                "s-a",
                11,
                2,
                merged("p-a-1", "p-conf-2", person("Paco Vu", "11119")),
            ),
        ],
    );
    assert!(events.is_empty(), "{events:?}");
}

#[test]
fn a_participant_seen_gone_before_it_joined_never_joins() {
    let mut detector = Detector::default();
    let events = run(
        &mut detector,
        vec![
            conference_update(1, 0, vec![host_party(StatusCode::Answered)]),
            conference_update(
                7,
                5,
                vec![conference_party(
                    "p-conf-2",
                    StatusCode::Disconnected,
                    Some("p-a-1"),
                )],
            ),
            original_update(
                "s-a",
                5,
                6,
                merged("p-a-1", "p-conf-2", person("Paco Vu", "11119")),
            ),
        ],
    );
    assert_eq!(types(&events), ["conference_started"]);
}

#[test]
fn plain_calls_and_transfers_produce_nothing() {
    let mut detector = Detector::default();
    let dir = format!(
        "{}/tests/fixtures/ringcentral/captured",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut events = Vec::new();
    for file in [
        "pstn-to-ringcentral.jsonl",
        "ringcentral-to-pstn.jsonl",
        "ringcentral-to-ringcentral.jsonl",
    ] {
        let text = std::fs::read_to_string(format!("{dir}/{file}")).unwrap();
        for line in text.lines().filter(|line| !line.trim().is_empty()) {
            let notification: TelephonyNotification = serde_json::from_str(line).unwrap();
            let update = SessionUpdate::from_notification(&notification.body).unwrap();
            events.extend(detector.apply(Input::Notification {
                received_at: update.event_time.unwrap(),
                notification: update,
            }));
        }
    }
    let mut transfer = merged("p-t-1", "p-t-2", person("X", "1"));
    transfer.reason = Some(StatusReason::AttendedTransfer);
    events.extend(detector.apply(original_update("s-t", 3, 0, transfer)));
    let mut supervision = merged("p-v-1", "p-v-2", person("X", "1"));
    supervision.reason = Some(StatusReason::Supervising);
    events.extend(detector.apply(original_update("s-v", 3, 0, supervision)));
    assert!(events.is_empty(), "{events:?}");
    assert!(detector.views().is_empty());
}

#[test]
fn forgetting_keeps_tombstones_so_late_duplicates_never_bring_anyone_back() {
    let config = DetectorConfig::default();
    let mut detector = Detector::new(config.clone());
    let join = || {
        original_update(
            "s-a",
            5,
            0,
            merged("p-a-1", "p-conf-2", person("Paco Vu", "11119")),
        )
    };
    run(
        &mut detector,
        vec![
            conference_update(1, 0, vec![host_party(StatusCode::Answered)]),
            join(),
            conference_update(
                2,
                10,
                vec![
                    host_party(StatusCode::Disconnected),
                    conference_party("p-conf-2", StatusCode::Disconnected, Some("p-a-1")),
                ],
            ),
        ],
    );
    // Past the detail grace period: details are gone, the tombstone still refuses the join.
    let after_grace = 10 + config.forget_after_millis / 1000 + 1;
    detector.apply(Input::Tick {
        now: at(after_grace),
    });
    assert!(detector.view(&conf_id()).is_none());
    assert!(detector.apply(join()).is_empty());
    // 24 h later everything is forgotten: memory stays bounded.
    detector.apply(Input::Tick {
        now: at(10 + config.tombstone_millis / 1000 + 1),
    });
    let state = serde_json::to_value(&detector).unwrap();
    assert_eq!(state["conferences"], serde_json::json!({}));
    assert_eq!(state["parties"], serde_json::json!({}));
    assert_eq!(state["links"], serde_json::json!({}));
}

#[test]
fn a_live_caller_keeps_its_link_while_the_original_session_is_silent() {
    let mut detector = Detector::default();
    run(
        &mut detector,
        vec![original_update(
            "s-a",
            5,
            0,
            merged("p-a-1", "p-conf-2", person("Paco Vu", "11119")),
        )],
    );
    detector.apply(Input::Tick {
        now: at(2 * 24 * 3600),
    });
    let events = detector.apply(original_update(
        "s-a",
        6,
        2 * 24 * 3600 + 1,
        party("p-a-1", StatusCode::Disconnected),
    ));
    assert_eq!(types(&events), ["participant_left p-conf-2"]);
}

#[test]
fn state_survives_a_serde_round_trip_mid_conference() {
    let inputs = || {
        vec![
            conference_update(1, 0, vec![host_party(StatusCode::Answered)]),
            original_update(
                "s-a",
                5,
                10,
                merged("p-a-1", "p-conf-2", person("Paco Vu", "11119")),
            ),
            original_update("s-a", 5, 11, party("p-a-1", StatusCode::Disconnected)),
            original_update("s-a", 6, 20, party("p-a-1", StatusCode::Disconnected)),
            conference_update(2, 30, vec![host_party(StatusCode::Disconnected)]),
        ]
    };
    let mut whole = Detector::default();
    let expected = run(&mut whole, inputs());
    let mut first = Detector::default();
    let mut inputs = inputs();
    let rest = inputs.split_off(2);
    let mut events = run(&mut first, inputs);
    let saved = serde_json::to_string(&first).unwrap();
    let mut restored: Detector = serde_json::from_str::<Detector>(&saved)
        .unwrap()
        .with_config(DetectorConfig::default());
    events.extend(run(&mut restored, rest));
    assert_eq!(events, expected);
    assert_eq!(
        types(&events),
        [
            "conference_started",
            "participant_joined p-conf-2",
            "participant_left p-conf-2",
            "conference_ended"
        ]
    );
}

#[test]
fn mute_and_hold_from_the_conference_side_reach_the_view() {
    let mut detector = Detector::default();
    let mut muted = conference_party("p-conf-2", StatusCode::Hold, None);
    muted.muted = Some(true);
    run(
        &mut detector,
        vec![
            conference_update(
                1,
                0,
                vec![
                    host_party(StatusCode::Answered),
                    conference_party("p-conf-2", StatusCode::Answered, None),
                ],
            ),
            conference_update(2, 5, vec![muted]),
        ],
    );
    let view = detector.view(&conf_id()).unwrap();
    let participant = view.live().next().unwrap();
    assert!(participant.muted);
    assert!(participant.on_hold);
}

fn scoped(extensions: &[&str]) -> Detector {
    Detector::new(DetectorConfig {
        host_extensions: extensions.iter().map(|e| (*e).to_owned()).collect(),
        ..DetectorConfig::default()
    })
}

fn host_with_extension(extension: &str, code: StatusCode) -> PartyUpdate {
    let mut host = host_party(code);
    host.from.extension_id = Some(extension.to_owned());
    host
}

#[test]
fn scope_keeps_conferences_of_other_hosts_silent_and_unlisted() {
    let mut detector = scoped(&["101"]);
    let events = run(
        &mut detector,
        vec![
            conference_update(1, 0, vec![host_with_extension("202", StatusCode::Answered)]),
            original_update(
                "s-a",
                5,
                1,
                merged("p-a-1", "p-conf-2", person("Paco Vu", "11119")),
            ),
            conference_update(
                2,
                9,
                vec![host_with_extension("202", StatusCode::Disconnected)],
            ),
        ],
    );
    assert!(events.is_empty(), "{events:?}");
    assert!(detector.views().is_empty());
}

#[test]
fn scope_announces_conferences_of_listed_hosts() {
    let mut detector = scoped(&["101"]);
    let events = run(
        &mut detector,
        vec![
            conference_update(1, 0, vec![host_with_extension("101", StatusCode::Answered)]),
            original_update(
                "s-a",
                5,
                1,
                merged("p-a-1", "p-conf-2", person("Paco Vu", "11119")),
            ),
        ],
    );
    assert_eq!(
        types(&events),
        ["conference_started", "participant_joined p-conf-2"]
    );
}

#[test]
fn scope_holds_callers_until_the_host_is_known_then_announces_them() {
    let mut detector = scoped(&["101"]);
    let mut events = run(
        &mut detector,
        vec![
            conference_update(
                1,
                0,
                vec![conference_party("p-conf-2", StatusCode::Answered, None)],
            ),
            conference_update(
                2,
                1,
                vec![conference_party("p-conf-3", StatusCode::Answered, None)],
            ),
            conference_update(
                3,
                2,
                vec![conference_party("p-conf-3", StatusCode::Disconnected, None)],
            ),
        ],
    );
    assert!(events.is_empty(), "{events:?}");
    events.extend(detector.apply(conference_update(
        4,
        3,
        vec![host_with_extension("101", StatusCode::Answered)],
    )));
    assert_eq!(
        types(&events),
        ["conference_started", "participant_joined p-conf-2"]
    );
    // The caller joined when RingCentral said so, not when the host became known.
    assert_eq!(events[1].at, at(0));
}

#[test]
fn a_host_leaving_while_callers_stay_does_not_end_the_conference() {
    let mut detector = Detector::default();
    let events = run(
        &mut detector,
        vec![
            conference_update(1, 0, vec![host_party(StatusCode::Answered)]),
            original_update(
                "s-a",
                5,
                1,
                merged("p-a-1", "p-conf-2", person("Paco Vu", "11119")),
            ),
            // keepConferenceAlive: only the host's leg goes.
            conference_update(2, 5, vec![host_party(StatusCode::Disconnected)]),
        ],
    );
    assert_eq!(
        types(&events),
        ["conference_started", "participant_joined p-conf-2"]
    );
    assert_eq!(detector.view(&conf_id()).unwrap().live().count(), 1);
    // When the last caller leaves, the conference is over.
    let events = detector.apply(original_update(
        "s-a",
        6,
        30,
        party("p-a-1", StatusCode::Disconnected),
    ));
    assert_eq!(
        types(&events),
        ["participant_left p-conf-2", "conference_ended"]
    );
    assert_eq!(left_reason(&events[0]), LeaveReason::ConferenceEnded);
}

#[test]
fn a_finished_plain_call_is_forgotten_long_before_the_tombstones() {
    let config = DetectorConfig::default();
    let mut detector = Detector::new(config.clone());
    run(
        &mut detector,
        vec![
            original_update("s-plain", 2, 0, party("p-plain-1", StatusCode::Answered)),
            original_update(
                "s-plain",
                3,
                60,
                party("p-plain-1", StatusCode::Disconnected),
            ),
            original_update(
                "s-a",
                5,
                60,
                merged("p-a-1", "p-conf-2", person("Paco Vu", "11119")),
            ),
        ],
    );
    detector.apply(Input::Tick {
        now: at(60 + config.forget_after_millis / 1000 + 1),
    });
    let state = serde_json::to_value(&detector).unwrap();
    assert!(state["parties"].get("p-plain-1").is_none(), "{state}");
    // The merged caller's original party still links to the live participant.
    assert!(state["parties"].get("p-a-1").is_some(), "{state}");
}

#[test]
fn a_stale_snapshot_does_not_bring_a_disconnected_host_back() {
    let mut detector = Detector::default();
    let mut events = run(
        &mut detector,
        vec![
            conference_update(
                1,
                0,
                vec![
                    host_party(StatusCode::Answered),
                    conference_party("p-conf-2", StatusCode::Answered, None),
                ],
            ),
            conference_update(2, 10, vec![host_party(StatusCode::Disconnected)]),
            // Requested before the host left, answered after: it still shows the host on.
            snapshot(
                11,
                vec![
                    host_party(StatusCode::Answered),
                    conference_party("p-conf-2", StatusCode::Answered, None),
                ],
            ),
        ],
    );
    events.extend(detector.apply(conference_update(
        3,
        12,
        vec![conference_party("p-conf-2", StatusCode::Disconnected, None)],
    )));
    assert_eq!(
        types(&events),
        [
            "conference_started",
            "participant_joined p-conf-2",
            "participant_left p-conf-2",
            "conference_ended"
        ]
    );
}

// ----- durable rows ------------------------------------------------------------------------------

/// Conference `n` of many: its session, its host's leg and two callers merged into it.
fn conference_of_two(n: usize, secs: i64) -> Vec<Input> {
    let session = format!("s-conf-{n}");
    let conference = SessionId::parse(&session).unwrap();
    let host = PartyUpdate {
        id: PartyId::parse(&format!("p-{n}-host")).unwrap(),
        ..host_party(StatusCode::Answered)
    };
    let mut inputs = vec![Input::Notification {
        received_at: at(secs),
        notification: SessionUpdate {
            session_id: conference.clone(),
            sequence: Some(1),
            event_time: Some(at(secs)),
            origin: Some(OriginType::Conference),
            parties: vec![host],
        },
    }];
    for caller in 0..2 {
        let mut join = merged(
            &format!("p-{n}-{caller}-a"),
            &format!("p-{n}-{caller}-c"),
            person(&format!("Caller {n}.{caller}"), &format!("+1650555{n:04}")),
        );
        if let Some(peer) = join.peer.as_mut() {
            peer.telephony_session_id = Some(conference.clone());
        }
        inputs.push(original_update(&format!("s-{n}-{caller}"), 5, secs, join));
    }
    inputs
}

fn rows_of(detector: &mut Detector) -> Vec<(RowKind, String, String)> {
    detector
        .take_changes()
        .unwrap()
        .into_iter()
        .filter_map(|row| Some((row.kind, row.key, row.body?)))
        .collect()
}

#[test]
fn the_rows_restore_ten_thousand_live_conferences_and_a_commit_writes_only_what_changed() {
    let mut detector = Detector::default();
    for n in 0..10_000 {
        run(&mut detector, conference_of_two(n, 0));
    }
    let rows = rows_of(&mut detector);
    let restored = Detector::from_rows(DetectorConfig::default(), rows).unwrap();
    assert_eq!(restored.live_conferences().len(), 10_000);
    assert_eq!(
        restored
            .views()
            .iter()
            .map(|v| v.live().count())
            .sum::<usize>(),
        20_000
    );
    assert_eq!(
        serde_json::to_value(&restored).unwrap(),
        serde_json::to_value(&detector).unwrap()
    );

    // One caller hangs up: its party, its conference and nothing else.
    let events = detector.apply(original_update(
        "s-7-1",
        6,
        5,
        party("p-7-1-a", StatusCode::Disconnected),
    ));
    assert_eq!(types(&events), ["participant_left p-7-1-c"]);
    let mut changed: Vec<(RowKind, String)> = detector
        .take_changes()
        .unwrap()
        .into_iter()
        .map(|row| (row.kind, row.key))
        .collect();
    changed.sort();
    assert_eq!(
        changed,
        [
            (RowKind::Party, "p-7-1-a".to_owned()),
            (RowKind::Conference, "s-conf-7".to_owned()),
        ]
    );

    // Time passing with nothing to forget changes no row: an idle service writes nothing.
    detector.apply(Input::Tick { now: at(60) });
    assert!(!detector.has_changes());
    assert!(detector.take_changes().unwrap().is_empty());
}

#[test]
fn a_finished_plain_call_is_forgotten_after_the_grace_and_a_late_update_meets_its_mark() {
    let config = DetectorConfig::default();
    let mut detector = Detector::new(config.clone());
    let mut ringing = party("p-x-1", StatusCode::Proceeding);
    ringing.direction = Some(Direction::Inbound);
    ringing.from = person("Kim Ode", "+16505550111");
    let answered = PartyUpdate {
        code: Some(StatusCode::Answered),
        ..ringing.clone()
    };
    let hung_up = PartyUpdate {
        code: Some(StatusCode::Disconnected),
        ..ringing.clone()
    };
    run(
        &mut detector,
        vec![
            original_update("s-x", 1, 0, ringing),
            original_update("s-x", 2, 1, answered.clone()),
            original_update("s-x", 3, 2, hung_up),
        ],
    );
    let body = |detector: &mut Detector| {
        detector
            .take_changes()
            .unwrap()
            .into_iter()
            .find(|row| row.kind == RowKind::Party && row.key == "p-x-1")
            .map(|row| row.body)
    };
    let finished = body(&mut detector).unwrap().unwrap();
    assert!(finished.contains("\"sequence\":3"), "{finished}");

    // A late, older update meets the mark: dropped, nothing changes.
    assert!(
        detector
            .apply(original_update("s-x", 2, 3, answered))
            .is_empty()
    );
    assert!(!detector.has_changes());

    // Past `forget_after` the party's row goes.
    detector.apply(Input::Tick {
        now: at(2 + config.forget_after_millis / 1000 + 1),
    });
    assert_eq!(body(&mut detector), Some(None));
}

#[test]
fn a_caller_who_hung_up_before_the_conference_side_linked_them_is_still_named() {
    let mut detector = Detector::default();
    let mut answered = party("p-a-1", StatusCode::Answered);
    answered.direction = Some(Direction::Inbound);
    answered.from = person("Paco Vu", "11119");
    let hung_up = PartyUpdate {
        code: Some(StatusCode::Disconnected),
        ..answered.clone()
    };
    let events = run(
        &mut detector,
        vec![
            conference_update(1, 0, vec![host_party(StatusCode::Answered)]),
            // The conference side first shows the caller without saying which call it was.
            conference_update(
                2,
                1,
                vec![conference_party("p-conf-2", StatusCode::Answered, None)],
            ),
            original_update("s-a", 1, 1, answered),
            // The call ends before the conference side links it (its Gone/Conference was lost).
            original_update("s-a", 2, 5, hung_up),
            conference_update(
                3,
                6,
                vec![conference_party(
                    "p-conf-2",
                    StatusCode::Disconnected,
                    Some("p-a-1"),
                )],
            ),
        ],
    );
    let left = events
        .iter()
        .find_map(|event| match &event.kind {
            EventKind::ParticipantLeft { identity, .. } => Some(identity.clone()),
            _ => None,
        })
        .expect("the caller leaves");
    assert_eq!(left.name.as_deref(), Some("Paco Vu"), "{events:#?}");
}
