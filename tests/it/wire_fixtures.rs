//! The RingCentral wire model against real payloads, and the check that decides whether a parsed
//! notification is usable or must be quarantined.
//!
//! Fixtures live in `tests/fixtures/ringcentral/` (provenance in `tests/fixtures/README.md`).

use ringside::conference::ids::IdError;
use ringside::conference::input::{PartyUpdate, Peer};
use ringside::conference::{Identity, PartyId, SessionId, SessionUpdate, Timestamp, Unusable};
use ringside::ringcentral::wire::{
    CallSession, ConferenceCreated, ConferenceRole, Direction, Envelope, MobilePickupData,
    NotificationKind as EventKind, OriginType, Party, Status, StatusCode, StatusReason,
    TelephonyNotification,
};
use serde_json::error::Category;
use serde_json::{Value, json};
use std::path::PathBuf;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn fixture_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ringcentral")
        .join(relative)
}

fn read_fixture(relative: &str) -> String {
    let path = fixture_path(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Parses one notification and checks what every telephony notification fixture must satisfy.
fn usable_notification(source: &str, text: &str) -> (TelephonyNotification, SessionUpdate) {
    let notification: TelephonyNotification =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{source}: does not parse: {e}"));
    assert_eq!(
        EventKind::of(&notification.event),
        EventKind::TelephonySessions,
        "{source}: event {}",
        notification.event
    );
    let update = SessionUpdate::from_notification(&notification.body)
        .unwrap_or_else(|e| panic!("{source}: unusable: {e}"));
    (notification, update)
}

fn notification_fixture(relative: &str) -> (TelephonyNotification, SessionUpdate) {
    usable_notification(relative, &read_fixture(relative))
}

/// Every line of a captured stream, parsed and validated.
fn captured_stream(name: &str) -> Vec<(TelephonyNotification, SessionUpdate)> {
    let relative = format!("captured/{name}");
    read_fixture(&relative)
        .lines()
        .enumerate()
        .map(|(index, line)| usable_notification(&format!("{relative}:{}", index + 1), line))
        .collect()
}

fn session_id(value: &str) -> SessionId {
    SessionId::parse(value).expect("valid session id")
}

fn party_id(value: &str) -> PartyId {
    PartyId::parse(value).expect("valid party id")
}

fn identity(
    name: Option<&str>,
    phone_number: Option<&str>,
    extension_id: Option<&str>,
) -> Identity {
    Identity {
        name: name.map(str::to_owned),
        phone_number: phone_number.map(str::to_owned),
        extension_id: extension_id.map(str::to_owned),
    }
}

/// The participant-added seed as raw JSON, to build variants of a real notification from.
fn seed_value() -> Value {
    serde_json::from_str(&read_fixture("seed/participant-added.json")).expect("seed is JSON")
}

/// The seed with `body.<field>` replaced (or removed, for `None`), parsed as a notification. The
/// parse itself must succeed: what is wrong with the body is for the validation to find.
fn seed_with_body_field(field: &str, value: Option<Value>) -> TelephonyNotification {
    let mut seed = seed_value();
    let body = seed["body"].as_object_mut().expect("body is an object");
    match value {
        Some(value) => {
            body.insert(field.to_owned(), value);
        }
        None => {
            body.remove(field);
        }
    }
    serde_json::from_value(seed)
        .unwrap_or_else(|e| panic!("variant with body.{field} must still parse: {e}"))
}

fn validate_sequence(sequence: Value) -> Result<SessionUpdate, Unusable> {
    SessionUpdate::from_notification(&seed_with_body_field("sequence", Some(sequence)).body)
}

fn status(json: Value) -> Status {
    serde_json::from_value(json).expect("status parses")
}

// ---------------------------------------------------------------------------------------------
// 1. Notification fixtures
// ---------------------------------------------------------------------------------------------

#[test]
fn seed_participant_added_parses_with_its_conference_peer() {
    let (n, update) = notification_fixture("seed/participant-added.json");

    assert_eq!(n.uuid, "1025258805069352046");
    assert_eq!(
        n.event,
        "/restapi/v1.0/account/80964XXXX/extension/622953XXXXX/telephony/sessions"
    );
    assert_eq!(n.timestamp.as_deref(), Some("2024-02-27T16:04:52.558Z"));
    assert_eq!(
        n.subscription_id.as_deref(),
        Some("3ca0ec27-a916-4260-82ad-035752e61da2")
    );
    assert_eq!(n.owner_id.as_deref(), Some("6228832XXXX"));

    let body = &n.body;
    assert_eq!(body.sequence, Some(json!(9)));
    assert_eq!(body.session_id.as_deref(), Some("1229016182016"));
    assert_eq!(
        body.telephony_session_id.as_deref(),
        Some("s-a0d17b82ddacdz18deb4ee132z1878e190000")
    );
    assert_eq!(body.server_id.as_deref(), Some("10.13.23.184.TAM"));
    assert_eq!(body.event_time.as_deref(), Some("2024-02-27T16:04:52.223Z"));
    assert_eq!(
        body.origin.as_ref().and_then(|o| o.kind.clone()),
        Some(OriginType::Call)
    );
    assert_eq!(body.parties.len(), 1);

    let party = &body.parties[0];
    assert_eq!(
        party.id.as_deref(),
        Some("p-a0d17b82ddacdz18deb4ee132z1878e190000-1")
    );
    assert_eq!(party.account_id.as_deref(), Some("80964XXXX"));
    assert_eq!(party.extension_id.as_deref(), Some("622953XXXXX"));
    assert_eq!(party.direction, Some(Direction::Outbound));
    let to = party.to.as_ref().expect("to");
    assert_eq!(to.name.as_deref(), Some("Paco Vu"));
    assert_eq!(to.phone_number.as_deref(), Some("11119"));
    assert_eq!(to.extension_id.as_deref(), Some("622883XXXXX"));
    let from = party.from.as_ref().expect("from");
    assert_eq!(from.name.as_deref(), Some("Agent 122"));
    assert_eq!(from.phone_number.as_deref(), Some("+1650XXXXXXX"));
    assert_eq!(from.device_id.as_deref(), Some("80254586XXXX"));
    assert_eq!(party.missed_call, Some(false));
    assert_eq!(party.stand_alone, Some(false));
    assert_eq!(party.muted, Some(false));
    assert_eq!(party.conference_role, None);

    let status = party.status.as_ref().expect("status");
    assert_eq!(status.code, Some(StatusCode::Gone));
    assert_eq!(status.reason, Some(StatusReason::Conference));
    assert_eq!(status.rcc, Some(false));
    let peer = status.peer_id.as_ref().expect("peerId");
    assert_eq!(
        peer.telephony_session_id.as_deref(),
        Some("s-a0d7bfa2dd198z18deb4fcc72z184536c0000")
    );
    assert_eq!(peer.session_id.as_deref(), Some("0"));
    assert_eq!(
        peer.party_id.as_deref(),
        Some("p-a0d7bfa2dd198z18deb4fcc72z184536c0000-2")
    );

    // What the detector gets.
    let event_time = Timestamp::parse_rfc3339("2024-02-27T16:04:52.223Z").expect("rfc3339");
    assert_eq!(event_time, Timestamp(1_709_049_892_223));
    assert_eq!(
        update,
        SessionUpdate {
            session_id: session_id("s-a0d17b82ddacdz18deb4ee132z1878e190000"),
            sequence: Some(9),
            event_time: Some(event_time),
            origin: Some(OriginType::Call),
            parties: vec![PartyUpdate {
                id: party_id("p-a0d17b82ddacdz18deb4ee132z1878e190000-1"),
                direction: Some(Direction::Outbound),
                from: identity(Some("Agent 122"), Some("+1650XXXXXXX"), Some("622953XXXXX")),
                to: identity(Some("Paco Vu"), Some("11119"), Some("622883XXXXX")),
                to_conference: false,
                code: Some(StatusCode::Gone),
                reason: Some(StatusReason::Conference),
                peer: Some(Peer {
                    telephony_session_id: Some(session_id(
                        "s-a0d7bfa2dd198z18deb4fcc72z184536c0000"
                    )),
                    party_id: Some(party_id("p-a0d7bfa2dd198z18deb4fcc72z184536c0000-2")),
                }),
                role: None,
                muted: Some(false),
            }],
        }
    );
}

#[test]
fn seed_participant_removed_parses_as_a_disconnect_without_peer() {
    let (n, update) = notification_fixture("seed/participant-removed.json");

    assert_eq!(n.uuid, "6754846377425683265");
    assert_eq!(n.body.sequence, Some(json!(11)));
    assert_eq!(
        n.body.telephony_session_id.as_deref(),
        Some("s-a0d17b82ddacdz18deb4ee132z1878e190000")
    );
    let status = n.body.parties[0].status.as_ref().expect("status");
    assert_eq!(status.code, Some(StatusCode::Disconnected));
    assert_eq!(status.reason, None);
    assert_eq!(status.peer_id, None);

    assert_eq!(update.sequence, Some(11));
    assert_eq!(
        update.session_id,
        session_id("s-a0d17b82ddacdz18deb4ee132z1878e190000")
    );
    assert_eq!(
        update.event_time,
        Timestamp::parse_rfc3339("2024-02-27T16:06:13.166Z")
    );
    assert_eq!(update.event_time, Some(Timestamp(1_709_049_973_166)));
    assert_eq!(update.parties.len(), 1);
    let party = &update.parties[0];
    assert_eq!(
        party.id,
        party_id("p-a0d17b82ddacdz18deb4ee132z1878e190000-1")
    );
    assert_eq!(party.code, Some(StatusCode::Disconnected));
    assert_eq!(party.peer, None);
    assert_eq!(party.to.name.as_deref(), Some("Paco Vu"));
}

/// Checks one captured stream: its size, one session, increasing sequences, known codes.
fn assert_captured_stream(
    name: &str,
    lines: usize,
    telephony_session_id: &str,
    sequences: std::ops::RangeInclusive<u64>,
) -> Vec<(TelephonyNotification, SessionUpdate)> {
    let stream = captured_stream(name);
    assert_eq!(stream.len(), lines, "{name}: line count");

    let expected_session = session_id(telephony_session_id);
    for (index, (n, update)) in stream.iter().enumerate() {
        assert_eq!(update.session_id, expected_session, "{name}:{}", index + 1);
        assert_eq!(
            update.origin,
            Some(OriginType::Call),
            "{name}:{}",
            index + 1
        );
        assert!(
            update.event_time.is_some(),
            "{name}:{}: eventTime",
            index + 1
        );
        assert!(!update.parties.is_empty(), "{name}:{}: parties", index + 1);
        for party in &update.parties {
            assert!(
                party
                    .id
                    .as_str()
                    .starts_with(&format!("p-{}", &telephony_session_id[2..])),
                "{name}:{}: party {} belongs to the session",
                index + 1,
                party.id
            );
            let code = party
                .code
                .as_ref()
                .expect("every captured party has a status code");
            assert!(
                !matches!(code, StatusCode::Other(_)),
                "{name}:{}: unknown status code {code}",
                index + 1
            );
            assert!(
                !matches!(party.reason, Some(StatusReason::Other(_))),
                "{name}:{}: unknown reason",
                index + 1
            );
            assert!(
                matches!(
                    party.direction,
                    Some(Direction::Inbound | Direction::Outbound)
                ),
                "{name}:{}: direction",
                index + 1
            );
        }
        // The raw envelope keeps what the typed body drops.
        assert!(!n.uuid.is_empty());
    }

    let seen: Vec<u64> = stream
        .iter()
        .map(|(_, update)| update.sequence.expect("notifications carry a sequence"))
        .collect();
    assert!(
        seen.windows(2).all(|pair| pair[0] < pair[1]),
        "{name}: sequences not strictly increasing: {seen:?}"
    );
    assert_eq!(seen, sequences.collect::<Vec<_>>(), "{name}: sequences");

    let time_order: Vec<Timestamp> = stream
        .iter()
        .map(|(_, update)| update.event_time.expect("eventTime"))
        .collect();
    assert!(
        time_order.windows(2).all(|pair| pair[0] <= pair[1]),
        "{name}: eventTime goes backwards"
    );
    stream
}

#[test]
fn captured_pstn_to_ringcentral_stream_parses_line_by_line() {
    let stream = assert_captured_stream(
        "pstn-to-ringcentral.jsonl",
        11,
        "s-718107795d564867a6f635fd81e89940",
        2..=12,
    );
    let codes: Vec<StatusCode> = stream
        .iter()
        .map(|(_, update)| update.parties[0].code.clone().expect("code"))
        .collect();
    use StatusCode::*;
    assert_eq!(
        codes,
        vec![
            Setup,
            Setup,
            Answered,
            Disconnected,
            Setup,
            Proceeding,
            Answered,
            Hold,
            Answered,
            Disconnected,
            Disconnected
        ]
    );
    // Account-level and extension-level events share one stream.
    assert_eq!(
        stream[0].0.event,
        "/restapi/v1.0/account/809646016/telephony/sessions"
    );
    assert_eq!(
        stream[1].0.event,
        "/restapi/v1.0/account/809646016/extension/62242421016/telephony/sessions"
    );
    assert_eq!(
        stream[0].1.event_time,
        Timestamp::parse_rfc3339("2020-06-23T01:05:43.940Z")
    );
}

#[test]
fn captured_ringcentral_to_pstn_stream_parses_line_by_line() {
    let stream = assert_captured_stream(
        "ringcentral-to-pstn.jsonl",
        9,
        "s-c23b203d62db4f6aaee00717bafa99be",
        2..=10,
    );
    let last = &stream[8].1.parties[0];
    assert_eq!(last.id, party_id("p-c23b203d62db4f6aaee00717bafa99be-2"));
    assert_eq!(last.direction, Some(Direction::Inbound));
    assert_eq!(last.code, Some(StatusCode::Disconnected));
    assert_eq!(stream[5].1.parties[0].code, Some(StatusCode::Hold));
}

#[test]
fn captured_ringcentral_to_ringcentral_stream_parses_line_by_line() {
    let stream = assert_captured_stream(
        "ringcentral-to-ringcentral.jsonl",
        9,
        "s-f9badb80011344259059d6894a30ace2",
        2..=10,
    );
    assert_eq!(
        stream[0].0.event,
        "/restapi/v1.0/account/809646016/extension/979428016/telephony/sessions"
    );
    assert_eq!(stream[8].1.parties[0].code, Some(StatusCode::Disconnected));
}

#[test]
fn captured_mobile_pickup_data_with_srv_lvl_parses() {
    let stream = captured_stream("ringcentral-to-ringcentral.jsonl");
    let with_pickup: Vec<(u64, &MobilePickupData)> = stream
        .iter()
        .flat_map(|(n, update)| {
            n.body.parties.iter().filter_map(move |party| {
                let data = party.status.as_ref()?.mobile_pickup_data.as_ref()?;
                Some((update.sequence.expect("sequence"), data))
            })
        })
        .collect();
    assert_eq!(
        with_pickup.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
        vec![5, 6],
        "the Proceeding and Answered events of the inbound party carry mobilePickupData"
    );
    for (_, data) in with_pickup {
        assert_eq!(data.cc_mailboxes, vec!["809646016".to_owned()]);
        assert_eq!(
            data.to.as_deref(),
            Some("#1088016@sip.ringcentral.com:5060")
        );
        assert_eq!(data.sid.as_deref(), Some("35613554448848"));
        assert_eq!(data.srv_lvl.as_deref(), Some("-149699523"));
        assert_eq!(data.srv_lvl_ext.as_deref(), Some("406"));
    }
}

#[test]
fn mobile_pickup_data_accepts_the_spec_spelling_srvlvl() {
    let status = status(json!({
        "code": "Proceeding",
        "mobilePickupData": {"ccMailboxes": [], "srvlvl": "-1", "srvLvlExt": "7"}
    }));
    let data = status.mobile_pickup_data.expect("mobilePickupData");
    assert_eq!(data.srv_lvl.as_deref(), Some("-1"));
    assert_eq!(data.srv_lvl_ext.as_deref(), Some("7"));
    assert!(data.cc_mailboxes.is_empty());
}

#[test]
fn call_control_js_notifications_parse_with_their_sequences() {
    let cases = [
        (
            "call-control-js/telephonySessionInboundProceedingMessage.json",
            "8960776365327220391",
            3,
            "p-bb843f9bc3bd4366a83f9e953f2c9c58-2",
            Direction::Inbound,
            StatusCode::Proceeding,
        ),
        (
            "call-control-js/telephonySessionOutboundSetupMessage.json",
            "2425066947943057062",
            2,
            "p-bb843f9bc3bd4366a83f9e953f2c9c58-1",
            Direction::Outbound,
            StatusCode::Setup,
        ),
        (
            "call-control-js/telephonySessionOutboundDisconnectedMessage.json",
            "2650487604990941854",
            8,
            "p-bb843f9bc3bd4366a83f9e953f2c9c58-1",
            Direction::Outbound,
            StatusCode::Disconnected,
        ),
    ];
    for (file, uuid, sequence, party, direction, code) in cases {
        let (n, update) = notification_fixture(file);
        assert_eq!(n.uuid, uuid, "{file}");
        assert_eq!(n.body.session_id.as_deref(), Some("21529129004"), "{file}");
        assert_eq!(
            n.subscription_id.as_deref(),
            Some("4a2eee85-880d-4690-9959-85d9fc70728b"),
            "{file}"
        );
        assert_eq!(
            update.session_id,
            session_id("s-bb843f9bc3bd4366a83f9e953f2c9c58"),
            "{file}"
        );
        assert_eq!(update.sequence, Some(sequence), "{file}");
        assert_eq!(update.origin, Some(OriginType::Call), "{file}");
        assert!(update.event_time.is_some(), "{file}: eventTime");
        assert_eq!(update.parties.len(), 1, "{file}");
        assert_eq!(update.parties[0].id, party_id(party), "{file}");
        assert_eq!(update.parties[0].direction, Some(direction), "{file}");
        assert_eq!(update.parties[0].code, Some(code), "{file}");
        assert_eq!(update.parties[0].peer, None, "{file}");
    }
    let (_, proceeding) =
        notification_fixture("call-control-js/telephonySessionInboundProceedingMessage.json");
    assert_eq!(
        proceeding.parties[0].from,
        identity(Some("Embbnux Ji"), Some("+16504257106"), Some("170848004"))
    );
}

// ---------------------------------------------------------------------------------------------
// 2. REST fixtures
// ---------------------------------------------------------------------------------------------

#[test]
fn js_widgets_conference_session_parses_as_call_session() {
    let session: CallSession =
        serde_json::from_str(&read_fixture("js-widgets/conference-session.json"))
            .expect("CallSession");
    assert_eq!(
        session.id.as_deref(),
        Some("Y3MxNzI2MjI1NTQzODI0MzUzM0AxMC43NC4yLjIxOA")
    );
    assert_eq!(
        session.origin.as_ref().and_then(|o| o.kind.clone()),
        Some(OriginType::Conference)
    );
    assert_eq!(
        session.creation_time.as_deref(),
        Some("2018-08-02T01:48:29Z")
    );
    assert!(
        session
            .voice_call_token
            .as_deref()
            .is_some_and(|token| token.starts_with("conf_"))
    );
    assert_eq!(session.parties.len(), 3);

    let host = &session.parties[0];
    assert_eq!(host.id.as_deref(), Some("cs1726225542272106109-1"));
    assert_eq!(host.conference_role, Some(ConferenceRole::Host));
    assert_eq!(host.direction, Some(Direction::Outbound));
    let host_status = host.status.as_ref().expect("status");
    assert_eq!(host_status.code, Some(StatusCode::Answered));
    assert_eq!(host_status.peer_id, None);
    let owner = host.owner.as_ref().expect("owner");
    assert_eq!(owner.account_id.as_deref(), Some("160746006"));
    assert_eq!(owner.extension_id.as_deref(), Some("160751006"));

    let expected = [
        ("cs1726225542272106109-2", "cs1726225552836110557-1"),
        ("cs1726225542272106109-3", "cs1726225542272106107-1"),
    ];
    for (party, (id, peer_party)) in session.parties[1..].iter().zip(expected) {
        assert_eq!(party.id.as_deref(), Some(id));
        assert_eq!(party.conference_role, Some(ConferenceRole::Participant));
        assert_eq!(party.direction, Some(Direction::Inbound));
        let status = party.status.as_ref().expect("status");
        assert_eq!(status.code, Some(StatusCode::Gone), "{id}");
        assert_eq!(status.reason, None, "{id}");
        let peer = status.peer_id.as_ref().expect("peerId");
        assert_eq!(peer.party_id.as_deref(), Some(peer_party));
        assert_eq!(
            peer.session_id.as_deref(),
            Some("Y3MxNzI2MjI1NTQzODI0MzUzM0AxMC43NC4yLjIxOA")
        );
        assert_eq!(peer.telephony_session_id, None);
        let to = party.to.as_ref().expect("to");
        assert_eq!(to.phone_number.as_deref(), Some("conference"));
        assert_eq!(to.name.as_deref(), Some("Conference"));
    }

    let update = SessionUpdate::from_snapshot(&session).expect("usable snapshot");
    assert_eq!(
        update.session_id,
        session_id("Y3MxNzI2MjI1NTQzODI0MzUzM0AxMC43NC4yLjIxOA")
    );
    assert_eq!(update.sequence, None);
    assert_eq!(update.event_time, None);
    assert_eq!(update.origin, Some(OriginType::Conference));
    assert_eq!(update.parties.len(), 3);

    let host = &update.parties[0];
    assert_eq!(host.role, Some(ConferenceRole::Host));
    assert_eq!(host.code, Some(StatusCode::Answered));
    assert!(host.to_conference);
    // The literal `conference` is not a phone number.
    assert_eq!(host.to, identity(Some("Conference"), None, None));
    assert_eq!(
        host.from,
        identity(None, Some("+12812923232"), Some("160751006"))
    );
    assert_eq!(host.peer, None);
    assert_eq!(host.muted, Some(false));

    let peers: Vec<Option<PartyId>> = update.parties[1..]
        .iter()
        .map(|party| {
            assert_eq!(party.role, Some(ConferenceRole::Participant));
            assert_eq!(party.code, Some(StatusCode::Gone));
            assert!(party.to_conference);
            party.peer.as_ref().and_then(|peer| peer.party_id.clone())
        })
        .collect();
    assert_eq!(
        peers,
        vec![
            Some(party_id("cs1726225552836110557-1")),
            Some(party_id("cs1726225542272106107-1"))
        ]
    );
}

#[test]
fn call_control_js_inbound_session_parses_as_call_session() {
    let session: CallSession = serde_json::from_str(&read_fixture(
        "call-control-js/telephonySessionInbound.json",
    ))
    .expect("CallSession");
    assert_eq!(
        session.id.as_deref(),
        Some("s-279e175539444bdc96d16c1e2fe4dbe9")
    );
    assert_eq!(
        session.creation_time.as_deref(),
        Some("2019-09-10T02:50:14Z")
    );
    assert_eq!(session.parties.len(), 2);
    let first = &session.parties[0];
    assert_eq!(first.direction, Some(Direction::Outbound));
    assert_eq!(
        first.status.as_ref().and_then(|s| s.code.clone()),
        Some(StatusCode::Answered)
    );
    assert_eq!(first.owner, None);
    let second = &session.parties[1];
    assert_eq!(
        second.id.as_deref(),
        Some("p-279e175539444bdc96d16c1e2fe4dbe9-2")
    );
    assert_eq!(second.direction, Some(Direction::Inbound));
    assert_eq!(
        second.status.as_ref().and_then(|s| s.code.clone()),
        Some(StatusCode::Proceeding)
    );
    assert_eq!(
        second
            .owner
            .as_ref()
            .and_then(|o| o.extension_id.as_deref()),
        Some("170848004")
    );

    let update = SessionUpdate::from_snapshot(&session).expect("usable snapshot");
    assert_eq!(
        update.session_id,
        session_id("s-279e175539444bdc96d16c1e2fe4dbe9")
    );
    assert_eq!(update.sequence, None);
    assert_eq!(update.origin, Some(OriginType::Call));
    assert_eq!(
        update.parties[0].to,
        identity(Some("Embbnux Ji"), Some("+16504257106"), Some("170848004"))
    );
    assert_eq!(
        update.parties[0].from,
        identity(None, Some("+16579991394"), None)
    );
    assert!(!update.parties[0].to_conference);
}

#[test]
fn call_control_js_outbound_session_parses_as_call_session() {
    let session: CallSession = serde_json::from_str(&read_fixture(
        "call-control-js/telephonySessionOutbound.json",
    ))
    .expect("CallSession");
    assert_eq!(
        session.id.as_deref(),
        Some("s-bb843f9bc3bd4366a83f9e953f2c9c58")
    );
    let codes: Vec<Option<StatusCode>> = session
        .parties
        .iter()
        .map(|party| party.status.as_ref().and_then(|s| s.code.clone()))
        .collect();
    assert_eq!(
        codes,
        vec![Some(StatusCode::Answered), Some(StatusCode::Answered)]
    );
    assert_eq!(
        session.parties[0]
            .from
            .as_ref()
            .and_then(|f| f.device_id.as_deref()),
        Some("52294004")
    );

    let update = SessionUpdate::from_snapshot(&session).expect("usable snapshot");
    assert_eq!(update.sequence, None);
    assert_eq!(
        update
            .parties
            .iter()
            .map(|p| p.id.clone())
            .collect::<Vec<_>>(),
        vec![
            party_id("p-bb843f9bc3bd4366a83f9e953f2c9c58-1"),
            party_id("p-bb843f9bc3bd4366a83f9e953f2c9c58-2")
        ]
    );
}

#[test]
fn call_control_js_conference_creation_parses_with_empty_parties() {
    let created: ConferenceCreated =
        serde_json::from_str(&read_fixture("call-control-js/telephonyConference.json"))
            .expect("ConferenceCreated");
    let session = &created.session;
    assert_eq!(
        session.id.as_deref(),
        Some("s-e61274ee8dc34d329fafcb176e0c1111")
    );
    assert_eq!(
        session.origin.as_ref().and_then(|o| o.kind.clone()),
        Some(OriginType::Conference)
    );
    assert!(session.parties.is_empty());
    assert_eq!(
        session.creation_time.as_deref(),
        Some("2019-09-06T07:13:25Z")
    );
    assert_eq!(
        session.voice_call_token.as_deref(),
        Some("conf_732d6536313237346565386463333464333239666166636231373665306331")
    );

    let update = SessionUpdate::from_snapshot(session).expect("usable snapshot");
    assert_eq!(
        update.session_id,
        session_id("s-e61274ee8dc34d329fafcb176e0c1111")
    );
    assert_eq!(update.origin, Some(OriginType::Conference));
    assert!(update.parties.is_empty());
}

#[test]
fn call_control_js_bring_in_parses_as_a_participant_party() {
    let party: Party = serde_json::from_str(&read_fixture(
        "call-control-js/telephonyConferenceBringIn.json",
    ))
    .expect("Party");
    assert_eq!(
        party.id.as_deref(),
        Some("p-0e91aa797b624d7a9d42c012bdb7f9f1-2")
    );
    assert_eq!(party.conference_role, Some(ConferenceRole::Participant));
    assert_eq!(party.direction, Some(Direction::Inbound));
    assert_eq!(
        party.status.as_ref().and_then(|s| s.code.clone()),
        Some(StatusCode::Setup)
    );
    let to = party.to.as_ref().expect("to");
    assert_eq!(to.phone_number.as_deref(), Some("conference"));
    assert_eq!(to.name.as_deref(), Some("Conference"));
    let from = party.from.as_ref().expect("from");
    assert_eq!(from.phone_number.as_deref(), Some("+16504257106"));
    assert_eq!(from.extension_id.as_deref(), Some("170848004"));
    assert_eq!(from.device_id.as_deref(), Some("52932004"));
    assert_eq!(party.muted, Some(false));
    assert_eq!(party.stand_alone, Some(false));
}

#[test]
fn call_control_js_bridge_parses_as_a_gone_attended_transfer_party() {
    let party: Party =
        serde_json::from_str(&read_fixture("call-control-js/telephonySessionBridge.json"))
            .expect("Party");
    assert_eq!(
        party.id.as_deref(),
        Some("p-a4a0d82257c9fz1803a3e5601z9856ea0000-1")
    );
    assert_eq!(party.account_id.as_deref(), Some("153906004"));
    assert_eq!(party.direction, Some(Direction::Outbound));
    assert_eq!(
        party.to.as_ref().and_then(|t| t.name.as_deref()),
        Some("Something1 New1")
    );
    assert_eq!(
        party.from.as_ref().and_then(|f| f.name.as_deref()),
        Some("Klay test1")
    );
    assert_eq!(
        party.owner.as_ref().and_then(|o| o.account_id.as_deref()),
        Some("153906004")
    );
    let status = party.status.as_ref().expect("status");
    assert_eq!(status.code, Some(StatusCode::Gone));
    assert_eq!(status.reason, Some(StatusReason::AttendedTransfer));
    let peer = status.peer_id.as_ref().expect("peerId");
    assert_eq!(
        peer.party_id.as_deref(),
        Some("p-a4a0d812557c5z1803a3eee14z97f6290000-1")
    );
    assert_eq!(
        peer.session_id.as_deref(),
        Some("s-a4a0d812557c5z1803a3eee14z97f6290000")
    );
    assert_eq!(peer.telephony_session_id, None);
}

// ---------------------------------------------------------------------------------------------
// 3. The malformed seed
// ---------------------------------------------------------------------------------------------

#[test]
fn malformed_seed_fails_to_parse_with_the_defect_line_and_column() {
    let text = read_fixture("seed/participant-removed.malformed.json");
    // The defect as published: `"parties": 2` on line 13, then `{` on line 14 where `[ {` was
    // meant.
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[12], "\"parties\": 2");
    assert_eq!(lines[13], "{");

    // As JSON it is a syntax error where the `[` is missing: the `{` at line 14 column 1.
    let error = serde_json::from_str::<Envelope>(&text).expect_err("not JSON");
    assert_eq!(error.classify(), Category::Syntax, "{error}");
    assert_eq!((error.line(), error.column()), (14, 1), "{error}");
    assert!(error.to_string().contains("line 14 column 1"), "{error}");
    let as_value = serde_json::from_str::<Value>(&text).expect_err("not JSON");
    assert_eq!((as_value.line(), as_value.column()), (14, 1), "{as_value}");

    // Parsed straight into the typed notification, the typed reader stops one token earlier,
    // on the `2` where `parties` needs an array.
    let error = serde_json::from_str::<TelephonyNotification>(&text)
        .expect_err("the malformed seed must not parse");
    assert_eq!(error.classify(), Category::Data, "{error}");
    assert_eq!((error.line(), error.column()), (13, 12), "{error}");
    let message = error.to_string();
    assert!(message.contains("line 13 column 12"), "{message}");
    assert!(message.contains("expected a sequence"), "{message}");
}

// ---------------------------------------------------------------------------------------------
// 4. Open enums, unknown and missing fields
// ---------------------------------------------------------------------------------------------

#[test]
fn unknown_status_code_is_kept_verbatim() {
    let status = status(json!({"code": "Teleporting", "reason": "Wormhole"}));
    assert_eq!(
        status.code,
        Some(StatusCode::Other("Teleporting".to_owned()))
    );
    assert_eq!(
        status.reason,
        Some(StatusReason::Other("Wormhole".to_owned()))
    );
    assert_eq!(
        StatusCode::Other("Teleporting".to_owned()).to_string(),
        "Teleporting"
    );
    assert_eq!(
        serde_json::to_value(StatusCode::Other("Teleporting".to_owned())).expect("serialize"),
        json!("Teleporting")
    );

    let origin: ringside::ringcentral::wire::Origin =
        serde_json::from_value(json!({"type": "Hologram"})).expect("origin");
    assert_eq!(origin.kind, Some(OriginType::Other("Hologram".to_owned())));
    let role: ConferenceRole = serde_json::from_value(json!("Moderator")).expect("role");
    assert_eq!(role, ConferenceRole::Other("Moderator".to_owned()));
}

#[test]
fn open_enums_compare_case_insensitively() {
    assert_eq!(status(json!({"code": "gone"})).code, Some(StatusCode::Gone));
    assert_eq!(
        status(json!({"code": "DISCONNECTED"})).code,
        Some(StatusCode::Disconnected)
    );
    assert_eq!(
        status(json!({"reason": "CONFERENCE"})).reason,
        Some(StatusReason::Conference)
    );
    assert_eq!(
        status(json!({"reason": "attendedtransfer"})).reason,
        Some(StatusReason::AttendedTransfer)
    );
    let direction: Direction = serde_json::from_value(json!("inbound")).expect("direction");
    assert_eq!(direction, Direction::Inbound);
    let role: ConferenceRole = serde_json::from_value(json!("HOST")).expect("role");
    assert_eq!(role, ConferenceRole::Host);
    let origin: ringside::ringcentral::wire::Origin =
        serde_json::from_value(json!({"type": "conference"})).expect("origin");
    assert_eq!(origin.kind, Some(OriginType::Conference));
    // A recognised value is shown as RingCentral spells it, whatever case it came in.
    assert_eq!(StatusCode::parse("gone").as_str(), "Gone");
}

#[test]
fn guide_spellings_of_voicemail_codes_are_normalized() {
    assert_eq!(
        status(json!({"code": "Voicemail"})).code,
        Some(StatusCode::VoiceMail)
    );
    assert_eq!(
        status(json!({"code": "VMScreening"})).code,
        Some(StatusCode::VoiceMailScreening)
    );
    assert_eq!(
        status(json!({"code": "vmscreening"})).code,
        Some(StatusCode::VoiceMailScreening)
    );
    assert_eq!(
        status(json!({"code": "VoiceMailScreening"})).code,
        Some(StatusCode::VoiceMailScreening)
    );
    assert_eq!(
        StatusCode::parse("VMScreening"),
        StatusCode::VoiceMailScreening
    );
    assert_eq!(StatusCode::parse("Voicemail"), StatusCode::VoiceMail);
    assert_eq!(StatusCode::parse("Tds"), StatusCode::Tds);
}

#[test]
fn unknown_fields_are_ignored_at_every_level() {
    let mut seed = seed_value();
    seed["brandNewEnvelopeField"] = json!({"nested": [1, 2, 3]});
    seed["body"]["brandNewBodyField"] = json!("x");
    seed["body"]["parties"][0]["brandNewPartyField"] = json!(42);
    seed["body"]["parties"][0]["status"]["brandNewStatusField"] = json!(null);
    seed["body"]["parties"][0]["to"]["brandNewEndpointField"] = json!(true);
    seed["body"]["parties"][0]["status"]["peerId"]["brandNewPeerField"] = json!([]);
    seed["body"]["origin"]["subtype"] = json!("Whatever");

    let n: TelephonyNotification = serde_json::from_value(seed).expect("unknown fields ignored");
    let update = SessionUpdate::from_notification(&n.body).expect("usable");
    let (_, original) = notification_fixture("seed/participant-added.json");
    assert_eq!(update, original);
}

#[test]
fn missing_optional_fields_are_fine() {
    let n: TelephonyNotification = serde_json::from_value(json!({
        "uuid": "1",
        "event": "/restapi/v1.0/account/~/telephony/sessions",
        "body": {
            "sequence": 1,
            "telephonySessionId": "s-1",
            "parties": [{"id": "p-1-1"}]
        }
    }))
    .expect("minimal notification parses");
    assert_eq!(n.timestamp, None);
    assert_eq!(n.subscription_id, None);
    assert_eq!(n.owner_id, None);
    assert_eq!(n.body.event_time, None);
    assert!(n.body.origin.is_none());

    let update = SessionUpdate::from_notification(&n.body).expect("usable");
    assert_eq!(
        update,
        SessionUpdate {
            session_id: session_id("s-1"),
            sequence: Some(1),
            event_time: None,
            origin: None,
            parties: vec![PartyUpdate {
                id: party_id("p-1-1"),
                direction: None,
                from: Identity::default(),
                to: Identity::default(),
                to_conference: false,
                code: None,
                reason: None,
                peer: None,
                role: None,
                muted: None,
            }],
        }
    );

    // No parties at all is usable too, and so are nulls where values are optional.
    let n: TelephonyNotification = serde_json::from_value(json!({
        "uuid": "2",
        "event": "/restapi/v1.0/account/~/telephony/sessions",
        "timestamp": null,
        "body": {
            "sequence": 2,
            "telephonySessionId": "s-1",
            "eventTime": null,
            "parties": [{"id": "p-1-1", "status": {"code": null}, "to": null}]
        }
    }))
    .expect("nulls parse");
    let update = SessionUpdate::from_notification(&n.body).expect("usable");
    assert_eq!(update.parties[0].code, None);

    let n: TelephonyNotification = serde_json::from_value(json!({
        "uuid": "3",
        "event": "/restapi/v1.0/account/~/telephony/sessions",
        "body": {"sequence": 3, "telephonySessionId": "s-1"}
    }))
    .expect("no parties parses");
    assert!(
        SessionUpdate::from_notification(&n.body)
            .expect("usable")
            .parties
            .is_empty()
    );

    let empty: CallSession = serde_json::from_value(json!({})).expect("empty session parses");
    assert_eq!(
        SessionUpdate::from_snapshot(&empty),
        Err(Unusable::MissingSessionId)
    );
}

#[test]
fn unparseable_event_time_is_dropped_not_fatal() {
    let n = seed_with_body_field("eventTime", Some(json!("yesterday-ish")));
    let update = SessionUpdate::from_notification(&n.body).expect("usable");
    assert_eq!(update.event_time, None);
    assert_eq!(update.sequence, Some(9));
}

// ---------------------------------------------------------------------------------------------
// 5. Quarantine reasons
// ---------------------------------------------------------------------------------------------

#[test]
fn missing_telephony_session_id_is_unusable() {
    let n = seed_with_body_field("telephonySessionId", None);
    assert_eq!(
        SessionUpdate::from_notification(&n.body),
        Err(Unusable::MissingSessionId)
    );
    let n = seed_with_body_field("telephonySessionId", Some(Value::Null));
    assert_eq!(
        SessionUpdate::from_notification(&n.body),
        Err(Unusable::MissingSessionId)
    );
}

#[test]
fn empty_telephony_session_id_is_unusable() {
    let n = seed_with_body_field("telephonySessionId", Some(json!("")));
    assert_eq!(
        SessionUpdate::from_notification(&n.body),
        Err(Unusable::BadSessionId(IdError::Empty))
    );
    let n = seed_with_body_field("telephonySessionId", Some(json!("s-1\n2")));
    assert_eq!(
        SessionUpdate::from_notification(&n.body),
        Err(Unusable::BadSessionId(IdError::Control))
    );
}

#[test]
fn missing_sequence_is_unusable() {
    let n = seed_with_body_field("sequence", None);
    assert_eq!(
        SessionUpdate::from_notification(&n.body),
        Err(Unusable::MissingSequence)
    );
    assert_eq!(
        validate_sequence(Value::Null),
        Err(Unusable::MissingSequence)
    );
}

#[test]
fn negative_sequence_is_unusable() {
    assert_eq!(
        validate_sequence(json!(-1)),
        Err(Unusable::BadSequence("-1".to_owned()))
    );
}

#[test]
fn fractional_sequence_is_unusable() {
    assert_eq!(
        validate_sequence(json!(9.5)),
        Err(Unusable::BadSequence("9.5".to_owned()))
    );
    assert!(matches!(
        validate_sequence(json!(9.0)),
        Err(Unusable::BadSequence(_))
    ));
}

#[test]
fn sequence_range_is_zero_to_i64_max() {
    let above: Value = serde_json::from_str("9223372036854775808").expect("number");
    assert_eq!(
        validate_sequence(above),
        Err(Unusable::BadSequence("9223372036854775808".to_owned()))
    );
    let far_above: Value = serde_json::from_str("18446744073709551616").expect("number");
    assert!(matches!(
        validate_sequence(far_above),
        Err(Unusable::BadSequence(_))
    ));

    let max: Value = serde_json::from_str("9223372036854775807").expect("number");
    assert_eq!(
        validate_sequence(max).expect("i64::MAX is usable").sequence,
        Some(i64::MAX as u64)
    );
    assert_eq!(
        validate_sequence(json!(0)).expect("0 is usable").sequence,
        Some(0)
    );
}

#[test]
fn sequence_given_as_a_string_is_unusable() {
    assert_eq!(
        validate_sequence(json!("9")),
        Err(Unusable::BadSequence("\"9\"".to_owned()))
    );
    assert!(matches!(
        validate_sequence(json!(true)),
        Err(Unusable::BadSequence(_))
    ));
    assert!(matches!(
        validate_sequence(json!({"value": 9})),
        Err(Unusable::BadSequence(_))
    ));
}

#[test]
fn party_without_id_is_unusable_and_named_by_index() {
    let mut seed = seed_value();
    let first = seed["body"]["parties"][0].clone();
    let mut second = first.clone();
    second["id"] = json!("p-a0d17b82ddacdz18deb4ee132z1878e190000-2");
    let mut third = first.clone();
    third.as_object_mut().expect("party").remove("id");
    seed["body"]["parties"] = json!([first, second, third]);
    let n: TelephonyNotification = serde_json::from_value(seed.clone()).expect("parses");
    assert_eq!(
        SessionUpdate::from_notification(&n.body),
        Err(Unusable::MissingPartyId(2))
    );

    seed["body"]["parties"][1]["id"] = json!("");
    let n: TelephonyNotification = serde_json::from_value(seed).expect("parses");
    assert_eq!(
        SessionUpdate::from_notification(&n.body),
        Err(Unusable::BadPartyId(1, IdError::Empty))
    );

    // Same rule for snapshots.
    let session: CallSession = serde_json::from_value(json!({
        "id": "s-1",
        "parties": [{"id": "p-1"}, {"status": {"code": "Answered"}}]
    }))
    .expect("parses");
    assert_eq!(
        SessionUpdate::from_snapshot(&session),
        Err(Unusable::MissingPartyId(1))
    );
}

#[test]
fn unusable_display_is_one_line_naming_the_field() {
    let long: String = "9".repeat(100);
    let cases = [
        (Unusable::MissingSessionId, "body.telephonySessionId"),
        (
            Unusable::BadSessionId(IdError::Empty),
            "body.telephonySessionId",
        ),
        (Unusable::MissingSequence, "body.sequence"),
        (Unusable::BadSequence("-1".to_owned()), "body.sequence"),
        (Unusable::MissingPartyId(2), "body.parties[2].id"),
        (
            Unusable::BadPartyId(1, IdError::Control),
            "body.parties[1].id",
        ),
    ];
    for (unusable, field) in cases {
        let shown = unusable.to_string();
        assert!(shown.contains(field), "{shown:?} does not name {field}");
        assert!(!shown.contains('\n'), "{shown:?} is not one line");
    }
    assert_eq!(
        Unusable::BadSequence("-1".to_owned()).to_string(),
        "body.sequence -1 is not an integer from 0 to 9223372036854775807"
    );

    // The offending value is shown, but bounded.
    let Err(unusable) = validate_sequence(serde_json::from_str(&format!("\"{long}\"")).unwrap())
    else {
        panic!("a long string sequence must be unusable");
    };
    let shown = unusable.to_string();
    assert!(shown.contains("body.sequence"));
    assert!(shown.len() < 120, "{shown}");
}

// ---------------------------------------------------------------------------------------------
// 6. Event kinds
// ---------------------------------------------------------------------------------------------

#[test]
fn telephony_event_paths_are_recognised_at_account_and_extension_level() {
    for event in [
        "/restapi/v1.0/account/~/telephony/sessions",
        "/restapi/v1.0/account/809646016/telephony/sessions",
        "/restapi/v1.0/account/~/extension/~/telephony/sessions",
        "/restapi/v1.0/account/809646016/extension/62242421016/telephony/sessions",
        "/restapi/v1.0/account/~/telephony/sessions?direction=Inbound",
    ] {
        assert_eq!(
            EventKind::of(event),
            EventKind::TelephonySessions,
            "{event}"
        );
    }
}

#[test]
fn subscription_reminder_is_recognised() {
    assert_eq!(
        EventKind::of("/restapi/v1.0/subscription/~?threshold=60&interval=15"),
        EventKind::SubscriptionReminder
    );
}

#[test]
fn other_events_are_classified_as_other() {
    for event in [
        "/restapi/v1.0/account/~/extension/~/presence",
        "/restapi/v1.0/account/~/extension/~/message-store",
        "",
    ] {
        assert_eq!(EventKind::of(event), EventKind::Other, "{event:?}");
    }
}
