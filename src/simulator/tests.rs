//! Tests of the simulator. They check its output against ringside's wire model (allowed in
//! tests only) and against the shapes of RingCentral's payloads.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;

use super::*;
use crate::ringcentral::wire::{
    ConferenceRole, Direction, NotificationKind, OriginType, StatusCode as WireCode, StatusReason,
    TelephonyNotification,
};

const BASE: OffsetDateTime = datetime!(2024-02-27 16:00:00.123456 UTC);

fn host() -> Person {
    Person::new("Agent 122", "+16505550122")
}

fn paco() -> Person {
    Person::with_extension("Paco Vu", "11119", "62288300119")
}

fn dana() -> Person {
    Person::new("Dana Whitfield", "+14155550142")
}

fn ravi() -> Person {
    Person::new("Ravi Anand", "+442071838750")
}

/// A script exercising everything: every leave signal, a plain call, and the end.
fn everything(seed: u64) -> ConferenceScript {
    let mut script = ConferenceScript::new(seed, host(), BASE);
    script.start();
    let mut callers = Vec::new();
    for (n, signal) in LeaveSignal::ALL.into_iter().enumerate() {
        script.advance(Duration::from_secs(60));
        let caller = script.call_and_merge(Person::new(
            format!("Caller {n}"),
            format!("+1415555010{n}"),
        ));
        callers.push((caller, signal));
    }
    script.advance(Duration::from_secs(30));
    script.two_party_call(ravi(), Duration::from_secs(45));
    let stays = script.call_and_merge(paco());
    for (caller, signal) in callers {
        script.advance(Duration::from_secs(90));
        script.hang_up(caller, signal);
    }
    script.advance(Duration::from_secs(120));
    script.end();
    assert_eq!(
        script.participant_id(stays),
        format!("{}-6", script.conference_id().replacen("s-", "p-", 1))
    );
    script
}

fn parse(scripted: &Scripted) -> TelephonyNotification {
    serde_json::from_value(scripted.body.clone()).expect("the wire model parses the notification")
}

/// `(telephonySessionId, party id, status code)` of a notification with one party.
fn summary(scripted: &Scripted) -> (String, String, String) {
    let body = &scripted.body["body"];
    let parties = body["parties"].as_array().expect("parties is an array");
    assert_eq!(parties.len(), 1, "one changed party per notification");
    (
        body["telephonySessionId"].as_str().unwrap().to_owned(),
        parties[0]["id"].as_str().unwrap().to_owned(),
        parties[0]["status"]["code"].as_str().unwrap().to_owned(),
    )
}

fn summaries(notifications: &[Scripted]) -> Vec<(String, String, String)> {
    notifications.iter().map(summary).collect()
}

fn entry(session: &str, party: &str, code: &str) -> (String, String, String) {
    (session.to_owned(), party.to_owned(), code.to_owned())
}

#[test]
fn every_notification_parses_and_has_the_required_fields() {
    let script = everything(7);
    assert!(script.notifications().len() > 20);
    for scripted in script.notifications() {
        let notification = parse(scripted);
        assert_eq!(
            NotificationKind::of(&notification.event),
            NotificationKind::TelephonySessions
        );
        assert!(
            notification.uuid.chars().all(|c| c.is_ascii_digit()),
            "uuid {}",
            notification.uuid
        );
        assert_eq!(
            notification.owner_id.as_deref().map(str::is_empty),
            Some(false)
        );
        assert_eq!(
            notification.subscription_id.as_deref().map(str::is_empty),
            Some(false)
        );
        let body = &notification.body;
        assert_eq!(
            body.telephony_session_id.as_deref(),
            Some(scripted.session_id.as_str())
        );
        let sequence = body
            .sequence
            .as_ref()
            .and_then(Value::as_u64)
            .expect("integer sequence >= 0");
        assert_eq!(sequence, scripted.sequence);
        assert!(body.origin.as_ref().and_then(|o| o.kind.as_ref()).is_some());
        assert!(!body.parties.is_empty());
        for party in &body.parties {
            assert!(party.id.as_deref().is_some_and(|id| id.starts_with("p-")));
            assert!(
                party
                    .status
                    .as_ref()
                    .and_then(|s| s.code.as_ref())
                    .is_some()
            );
            assert!(party.direction.is_some());
        }
        // Times: RFC 3339, milliseconds, `Z`, eventTime equal to the script clock.
        let event_time = body.event_time.as_deref().expect("eventTime");
        let timestamp = notification.timestamp.as_deref().expect("timestamp");
        for text in [event_time, timestamp] {
            assert_eq!(text.len(), "2024-02-27T16:04:52.223Z".len(), "{text}");
            assert!(text.ends_with('Z'));
            OffsetDateTime::parse(text, &Rfc3339).expect("RFC 3339");
        }
        assert_eq!(
            OffsetDateTime::parse(event_time, &Rfc3339).unwrap(),
            scripted.at
        );
        assert!(OffsetDateTime::parse(timestamp, &Rfc3339).unwrap() > scripted.at);
    }
}

#[test]
fn no_template_placeholder_survives() {
    fn walk(value: &Value, path: &str) {
        match value {
            Value::String(text) => assert!(!text.is_empty(), "empty placeholder at {path}"),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .for_each(|(i, v)| walk(v, &format!("{path}/{i}"))),
            Value::Object(map) => map
                .iter()
                .for_each(|(k, v)| walk(v, &format!("{path}/{k}"))),
            _ => {}
        }
    }
    for scripted in everything(3).notifications() {
        walk(&scripted.body, "");
    }
}

#[test]
fn sequences_strictly_increase_per_session() {
    let script = everything(11);
    let mut last: HashMap<&str, u64> = HashMap::new();
    for scripted in script.notifications() {
        if let Some(previous) = last.insert(&scripted.session_id, scripted.sequence) {
            assert!(
                scripted.sequence > previous,
                "{} went {previous} -> {}",
                scripted.session_id,
                scripted.sequence
            );
        }
    }
    // Conference, four leave callers, the plain call and Paco.
    assert_eq!(last.len(), 7);
}

#[test]
fn event_times_follow_the_script_clock() {
    let script = everything(5);
    let times: Vec<_> = script.notifications().iter().map(|n| n.at).collect();
    assert!(times.windows(2).all(|pair| pair[0] <= pair[1]));
    assert_eq!(times[0], datetime!(2024-02-27 16:00:00.123 UTC));
    // Four minutes of advance() before the first hang-up alone, plus the call lives.
    assert!(*times.last().unwrap() - times[0] > time::Duration::minutes(12));
}

#[test]
fn uuids_are_unique() {
    let mut seen = HashSet::new();
    for seed in 0..20 {
        for scripted in everything(seed).notifications() {
            let uuid = scripted.body["uuid"].as_str().unwrap().to_owned();
            assert!(
                seen.insert(uuid.clone()),
                "duplicate uuid {uuid} (seed {seed})"
            );
        }
    }
}

#[test]
fn a_merged_call_looks_like_the_reference() {
    let mut script = ConferenceScript::new(1, host(), BASE);
    script.start();
    let caller = script.call_and_merge(paco());
    let (original_session, original_party) = script.original_ids(caller);
    let (original_session, original_party) =
        (original_session.to_owned(), original_party.to_owned());
    let conference = script.conference_id().to_owned();
    let participant = script.participant_id(caller).to_owned();
    let host_party = script.host_party_id().to_owned();
    assert_ne!(participant, host_party);

    assert_eq!(
        summaries(script.notifications()),
        vec![
            entry(&conference, &host_party, "Answered"),
            entry(&original_session, &original_party, "Setup"),
            entry(&original_session, &original_party, "Proceeding"),
            entry(&original_session, &original_party, "Answered"),
            entry(&original_session, &original_party, "Gone"),
            entry(&conference, &participant, "Answered"),
        ]
    );
    let parsed: Vec<_> = script.notifications().iter().map(parse).collect();

    // The conference Host party.
    let start = &parsed[0].body;
    assert_eq!(
        start.origin.as_ref().unwrap().kind,
        Some(OriginType::Conference)
    );
    assert_eq!(start.session_id.as_deref(), Some("0"));
    let host_leg = &start.parties[0];
    assert_eq!(host_leg.conference_role, Some(ConferenceRole::Host));
    assert_eq!(host_leg.direction, Some(Direction::Outbound));
    assert_eq!(
        host_leg.to.as_ref().unwrap().phone_number.as_deref(),
        Some("conference")
    );
    assert_eq!(
        host_leg.to.as_ref().unwrap().name.as_deref(),
        Some("Conference")
    );
    assert_eq!(
        host_leg.from.as_ref().unwrap().phone_number.as_deref(),
        Some("+16505550122")
    );

    // The original call: host leg Outbound, from = host, to = caller.
    let setup = &parsed[1].body;
    assert_eq!(setup.origin.as_ref().unwrap().kind, Some(OriginType::Call));
    assert_ne!(setup.session_id.as_deref(), Some("0"));
    let leg = &setup.parties[0];
    assert_eq!(leg.direction, Some(Direction::Outbound));
    let from = leg.from.as_ref().unwrap();
    assert_eq!(from.name.as_deref(), Some("Agent 122"));
    assert_eq!(from.extension_id, script.host().extension_id);
    assert!(from.device_id.is_some());
    let to = leg.to.as_ref().unwrap();
    assert_eq!(
        (to.phone_number.as_deref(), to.name.as_deref()),
        (Some("11119"), Some("Paco Vu"))
    );
    assert_eq!(to.extension_id.as_deref(), Some("62288300119"));

    // Gone/Conference, peer = the conference-side party (seed/participant-added.json).
    let gone = parsed[4].body.parties[0].status.as_ref().unwrap();
    assert_eq!(gone.code, Some(WireCode::Gone));
    assert_eq!(gone.reason, Some(StatusReason::Conference));
    let peer = gone.peer_id.as_ref().unwrap();
    assert_eq!(
        peer.telephony_session_id.as_deref(),
        Some(conference.as_str())
    );
    assert_eq!(peer.session_id.as_deref(), Some("0"));
    assert_eq!(peer.party_id.as_deref(), Some(participant.as_str()));

    // The conference-side Participant: from = host, peer back at the original party.
    let joined = &parsed[5].body.parties[0];
    assert_eq!(joined.conference_role, Some(ConferenceRole::Participant));
    assert_eq!(joined.direction, Some(Direction::Inbound));
    assert_eq!(
        joined.from.as_ref().unwrap().phone_number.as_deref(),
        Some("+16505550122")
    );
    assert_eq!(
        joined.to.as_ref().unwrap().phone_number.as_deref(),
        Some("conference")
    );
    let status = joined.status.as_ref().unwrap();
    assert_eq!(status.code, Some(WireCode::Answered));
    let back = status.peer_id.as_ref().unwrap();
    assert_eq!(back.party_id.as_deref(), Some(original_party.as_str()));
    assert_eq!(back.session_id.as_deref(), Some(conference.as_str()));
}

#[test]
fn the_original_leg_has_the_seed_fixture_keys() {
    let mut script = ConferenceScript::new(2, host(), BASE);
    let caller = script.call_and_merge(paco());
    let gone = script
        .notifications()
        .iter()
        .find(|n| n.body["body"]["parties"][0]["status"]["code"] == "Gone")
        .expect("a Gone notification");
    let keys = |value: &Value| -> Vec<String> {
        let mut keys: Vec<_> = value.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    // The key sets of seed/participant-added.json.
    assert_eq!(
        keys(&gone.body),
        [
            "body",
            "event",
            "ownerId",
            "subscriptionId",
            "timestamp",
            "uuid"
        ]
    );
    assert_eq!(
        keys(&gone.body["body"]),
        [
            "eventTime",
            "origin",
            "parties",
            "sequence",
            "serverId",
            "sessionId",
            "telephonySessionId"
        ]
    );
    let party = &gone.body["body"]["parties"][0];
    assert_eq!(
        keys(party),
        [
            "accountId",
            "direction",
            "extensionId",
            "from",
            "id",
            "missedCall",
            "muted",
            "park",
            "standAlone",
            "status",
            "to"
        ]
    );
    assert_eq!(keys(&party["status"]), ["code", "peerId", "rcc", "reason"]);
    assert_eq!(party["status"]["rcc"], false);
    assert_eq!(party["park"], serde_json::json!({}));
    assert_eq!(party["id"], script.original_ids(caller).1);
}

#[test]
fn each_leave_signal_emits_exactly_its_notifications() {
    for signal in LeaveSignal::ALL {
        let mut script = ConferenceScript::new(9, host(), BASE);
        script.start();
        let caller = script.call_and_merge(dana());
        script.advance(Duration::from_secs(300));
        let before = script.notifications().len();
        script.hang_up(caller, signal);
        let (session, party) = script.original_ids(caller);
        let original = entry(session, party, "Disconnected");
        let conference_side = entry(
            script.conference_id(),
            script.participant_id(caller),
            "Disconnected",
        );
        let expected = match signal {
            LeaveSignal::Both => vec![original, conference_side],
            LeaveSignal::OriginalOnly => vec![original],
            LeaveSignal::ConferenceOnly => vec![conference_side],
            LeaveSignal::Silent => vec![],
        };
        assert_eq!(
            summaries(&script.notifications()[before..]),
            expected,
            "{signal:?}"
        );
        for scripted in &script.notifications()[before..] {
            let status = &scripted.body["body"]["parties"][0]["status"];
            assert!(
                status.get("peerId").is_none() && status.get("reason").is_none(),
                "{signal:?}"
            );
        }

        // The caller is gone: ending the conference sends nothing more about them.
        let before_end = script.notifications().len();
        script.end();
        assert_eq!(
            summaries(&script.notifications()[before_end..]),
            vec![entry(
                script.conference_id(),
                script.host_party_id(),
                "Disconnected"
            )],
            "{signal:?}"
        );
    }
}

#[test]
fn end_disconnects_the_host_then_participants_then_originals() {
    for originals in [true, false] {
        let mut script = ConferenceScript::new(4, host(), BASE);
        script.set_original_disconnects_on_end(originals);
        let first = script.call_and_merge(paco());
        let second = script.call_and_merge(dana());
        let third = script.call_and_merge(ravi());
        script.hang_up(second, LeaveSignal::Both);
        script.advance(Duration::from_secs(600));
        let before = script.notifications().len();
        script.end();

        let conference = script.conference_id();
        let mut expected = vec![
            entry(conference, script.host_party_id(), "Disconnected"),
            entry(conference, script.participant_id(first), "Disconnected"),
            entry(conference, script.participant_id(third), "Disconnected"),
        ];
        if originals {
            for caller in [first, third] {
                let (session, party) = script.original_ids(caller);
                expected.push(entry(session, party, "Disconnected"));
            }
        }
        assert_eq!(
            summaries(&script.notifications()[before..]),
            expected,
            "originals {originals}"
        );
    }
}

#[test]
fn a_plain_call_never_mentions_the_conference() {
    let mut script = ConferenceScript::new(8, host(), BASE);
    script.start();
    let before = script.notifications().len();
    let caller = script.two_party_call(ravi(), Duration::from_secs(75));
    let (session, party) = script.original_ids(caller);
    assert_eq!(
        summaries(&script.notifications()[before..]),
        ["Setup", "Proceeding", "Answered", "Disconnected"].map(|code| entry(session, party, code))
    );
    for scripted in &script.notifications()[before..] {
        let text = scripted.body.to_string();
        assert!(!text.contains(script.conference_id()), "{text}");
        assert!(
            !text.contains("conferenceRole") && !text.contains("peerId") && !text.contains("Gone")
        );
        assert_eq!(scripted.body["body"]["origin"]["type"], "Call");
    }
    // The talk time shows in eventTime.
    let notes = &script.notifications()[before..];
    assert!(notes[3].at - notes[2].at >= time::Duration::seconds(75));
    script.end();
    assert_eq!(
        script.notifications().len(),
        before + 5,
        "ending sends only the host's Disconnected"
    );
}

#[test]
fn callers_without_names_or_extensions_leave_those_fields_out() {
    let mut script = ConferenceScript::new(6, host(), BASE);
    let caller = script.call(Person::new("", "+15555550100"));
    let to = &script.notifications()[0].body["body"]["parties"][0]["to"];
    assert_eq!(to, &serde_json::json!({ "phoneNumber": "+15555550100" }));
    script.hang_up(caller, LeaveSignal::Both);
}

#[test]
fn same_seed_same_output_and_other_seeds_differ() {
    let one = everything(42).into_notifications();
    let two = everything(42).into_notifications();
    assert_eq!(one, two);
    let other = everything(43).into_notifications();
    assert_ne!(one[0].session_id, other[0].session_id);
    assert_ne!(one[0].body["uuid"], other[0].body["uuid"]);
}

#[test]
fn demo_script_has_three_joins_minutes_apart_a_leave_a_kick_and_an_end() {
    let demo = demo_script(BASE);
    let script = &demo.script;
    let names: Vec<_> = demo
        .callers
        .iter()
        .map(|(person, _)| person.name.as_str())
        .collect();
    assert_eq!(names, ["Paco Vu", "Dana Whitfield", "Ravi Anand"]);
    assert_eq!(script.host().name, "Agent 122");

    let conference = script.conference_id();
    let joins: Vec<_> = script
        .notifications()
        .iter()
        .filter(|n| n.session_id == conference && summary(n).2 == "Answered")
        .map(|n| (n.at, summary(n).1))
        .collect();
    assert_eq!(joins.len(), 4, "host plus three participants");
    for pair in joins[1..].windows(2) {
        assert!(pair[1].0 - pair[0].0 >= time::Duration::minutes(2));
    }

    let kick = &script.notifications()[demo.kick.clone()];
    assert_eq!(kick.len(), 2);
    assert_eq!(
        summary(&kick[0]),
        entry(
            conference,
            script.participant_id(demo.kicked),
            "Disconnected"
        )
    );
    let (session, party) = script.original_ids(demo.kicked);
    assert_eq!(summary(&kick[1]), entry(session, party, "Disconnected"));

    let (session, party) = script.original_ids(demo.leaves);
    let leave_index = script
        .notifications()
        .iter()
        .position(|n| summary(n) == entry(session, party, "Disconnected"))
        .expect("the leaver's original party disconnects");
    assert!(leave_index >= demo.kick.end);
    let last = script.notifications().last().unwrap();
    assert_eq!(summary(last).1, script.original_ids(demo.callers[2].1).1);
    assert_eq!(
        demo_script(BASE).script.notifications(),
        script.notifications()
    );
}

// --- delivery -------------------------------------------------------------------------------

#[derive(Clone, Default)]
struct Hook {
    received: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    fail_at: Option<usize>,
}

async fn receive(
    State(hook): State<Hook>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::http::StatusCode {
    let mut received = hook.received.lock().unwrap();
    received.push((headers, body));
    if hook.fail_at == Some(received.len() - 1) {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    } else {
        axum::http::StatusCode::OK
    }
}

async fn spawn_hook(fail_at: Option<usize>) -> (String, Hook) {
    let hook = Hook {
        received: Arc::default(),
        fail_at,
    };
    let app = Router::new()
        .route("/webhook", post(receive))
        .with_state(hook.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}/webhook"), hook)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

#[tokio::test]
async fn deliver_posts_the_body_with_the_verification_token() {
    let (url, hook) = spawn_hook(None).await;
    let script = everything(1);
    let body = &script.notifications()[0].body;
    let status = deliver(&client(), &url, "token-123", body).await.unwrap();
    assert_eq!(status, reqwest::StatusCode::OK);

    let received = hook.received.lock().unwrap();
    assert_eq!(received.len(), 1);
    let (headers, bytes) = &received[0];
    assert_eq!(headers["verification-token"], "token-123");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let sent: Value = serde_json::from_slice(bytes).unwrap();
    assert_eq!(&sent, body);
}

#[tokio::test]
async fn play_delivers_everything_in_order() {
    let (url, hook) = spawn_hook(None).await;
    let script = everything(2);
    let report = play(
        &client(),
        &url,
        "tok",
        script.notifications(),
        Duration::from_millis(1),
    )
    .await
    .unwrap();
    assert_eq!(report.sent, script.notifications().len());
    assert_eq!(
        report.count(reqwest::StatusCode::OK),
        script.notifications().len()
    );

    let received = hook.received.lock().unwrap();
    let uuids: Vec<Value> = received
        .iter()
        .map(|(_, bytes)| serde_json::from_slice::<Value>(bytes).unwrap()["uuid"].clone())
        .collect();
    let expected: Vec<Value> = script
        .notifications()
        .iter()
        .map(|n| n.body["uuid"].clone())
        .collect();
    assert_eq!(uuids, expected);
}

#[tokio::test]
async fn play_stops_at_the_first_non_200() {
    let (url, hook) = spawn_hook(Some(2)).await;
    let script = everything(3);
    let error = play(
        &client(),
        &url,
        "tok",
        script.notifications(),
        Duration::ZERO,
    )
    .await
    .unwrap_err();
    match error {
        SimError::Rejected {
            index,
            status,
            report,
        } => {
            assert_eq!(index, 2);
            assert_eq!(status, reqwest::StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(report.sent, 3);
            assert_eq!(report.count(reqwest::StatusCode::OK), 2);
            assert_eq!(report.count(reqwest::StatusCode::SERVICE_UNAVAILABLE), 1);
        }
        other => panic!("expected a rejection, got {other}"),
    }
    assert_eq!(hook.received.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn deliver_fails_when_nothing_listens() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let result = deliver(
        &client(),
        &format!("http://{address}/"),
        "tok",
        &Value::Null,
    )
    .await;
    assert!(matches!(result, Err(SimError::Http(_))));
}
