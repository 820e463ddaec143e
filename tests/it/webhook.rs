//! The real app over HTTP: `POST /webhooks/ringcentral` (the README's HTTP routes), the
//! operator API and local-mode announcements (the README's local mode), with the simulator playing RingCentral.
//!
//! Every app runs on 127.0.0.1:0 with its own temporary store and a 50 ms coalescing window;
//! announcements are read back from a memory sink. Waits poll with a deadline; the only plain
//! sleeps are the ones that wait past the coalescing window before asserting that nothing was
//! announced.

mod exposure;

use crate::support::{
    self, API_TOKEN, TestApp, TestConfig, assert_one_line, fixture_bytes, fixture_json,
    fixture_lines, spawn_app,
};
use ringside::simulator::{ConferenceScript, LeaveSignal, Person, play};
use ringside::store::{InboxCounts, NewInboxRow, Store};
use serde_json::{Value, json};
use std::time::Duration;

const ADDED: &str = "seed/participant-added.json";
const REMOVED: &str = "seed/participant-removed.json";
const MALFORMED: &str = "seed/participant-removed.malformed.json";

const STARTED_LINE: &str = "Conference hosted by Agent 122 started";
const JOINED_LINE: &str =
    "Paco Vu (•••1119) joined the conference hosted by Agent 122 — 1 on the call";
/// 16:04:52.223 to 16:06:13.166 is 80.943 s; durations are rounded to the nearest second.
const LEFT_LINE: &str = "Paco Vu (•••1119) left after 1m 21s";

const NOTHING: InboxCounts = InboxCounts {
    total: 0,
    unprocessed: 0,
    quarantined: 0,
};

/// The seed's join with another uuid (so that it is not a duplicate of anything).
fn seed_added_with_uuid(uuid: &str) -> Value {
    let mut notification = fixture_json(ADDED);
    notification["uuid"] = json!(uuid);
    notification
}

/// `value` padded with an unknown top-level field so that its JSON is exactly `len` bytes.
fn padded_to(mut value: Value, len: usize) -> Vec<u8> {
    value["padding"] = json!("");
    let base = serde_json::to_vec(&value).unwrap().len();
    assert!(base <= len, "{base} bytes already, cannot pad to {len}");
    value["padding"] = json!("x".repeat(len - base));
    let bytes = serde_json::to_vec(&value).unwrap();
    assert_eq!(bytes.len(), len);
    bytes
}

async fn assert_nothing_stored_or_announced(app: &TestApp) {
    let lines = app.settle().await;
    assert_eq!(app.counts().await, NOTHING, "something was stored");
    assert!(lines.is_empty(), "something was announced: {lines:#?}");
}

// ----- 1. handshake ------------------------------------------------------------------------

#[tokio::test]
async fn handshake_echoes_the_validation_token_as_json_in_under_one_kib_and_stores_nothing() {
    let app = spawn_app().await;
    let request = format!(
        "POST /webhooks/ringcentral HTTP/1.1\r\nHost: {}\r\nValidation-Token: abc\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        app.public_addr()
    );
    let response = app.raw_exchange(request.as_bytes()).await;

    assert_eq!(response.status(), 200, "{}", response.text());
    assert_eq!(response.header("Validation-Token").as_deref(), Some("abc"));
    assert_eq!(
        response.header("Content-Type").as_deref(),
        Some("application/json")
    );
    assert!(
        response.bytes.len() < 1024,
        "the whole handshake answer is {} bytes: {}",
        response.bytes.len(),
        response.text()
    );

    // The same through an ordinary client, without a Content-Length of its own making.
    let response = app
        .post_raw(Vec::new(), &[("Validation-Token", "abc")])
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["validation-token"], "abc");
    assert_eq!(response.headers()["content-type"], "application/json");

    assert_nothing_stored_or_announced(&app).await;
}

// ----- 2. verification token ---------------------------------------------------------------

#[tokio::test]
async fn notifications_without_the_right_verification_token_get_401_and_store_nothing() {
    let app = spawn_app().await;
    let body = fixture_bytes(ADDED);

    let missing = app
        .post_raw(body.clone(), &[("Content-Type", "application/json")])
        .await;
    assert_eq!(missing.status(), 401);
    assert_one_line(&missing.text().await.unwrap());

    let wrong = app
        .post_raw(
            body.clone(),
            &[
                ("Content-Type", "application/json"),
                ("Verification-Token", "not-the-token"),
            ],
        )
        .await;
    assert_eq!(wrong.status(), 401);
    let reason = wrong.text().await.unwrap();
    assert_one_line(&reason);
    assert!(
        !reason.contains(support::VERIFICATION_TOKEN) && !reason.contains("not-the-token"),
        "the reason shows a token: {reason:?}"
    );

    // A wrong Validation-Token with a body is not a handshake either.
    let wrong_validation = app
        .post_raw(
            body.clone(),
            &[
                ("Content-Type", "application/json"),
                ("Validation-Token", "not-the-token"),
            ],
        )
        .await;
    assert_eq!(wrong_validation.status(), 401);

    // A prefix of the token is not the token.
    let prefix = &support::VERIFICATION_TOKEN[..support::VERIFICATION_TOKEN.len() - 1];
    let prefixed = app
        .post_raw(body.clone(), &[("Verification-Token", prefix)])
        .await;
    assert_eq!(prefixed.status(), 401);

    assert_nothing_stored_or_announced(&app).await;
}

#[tokio::test]
async fn the_right_token_is_accepted_as_verification_token_and_as_validation_token() {
    let app = spawn_app().await;
    let token = app.token();

    let verification = app
        .post_raw(
            fixture_bytes(ADDED),
            &[
                ("Content-Type", "application/json"),
                ("Verification-Token", token.as_str()),
            ],
        )
        .await;
    assert_eq!(verification.status(), 200);
    assert_eq!(app.counts().await.total, 1);

    // RingCentral's docs also name the header Validation-Token: with a body it is not a
    // handshake, and a value equal to the secret authenticates.
    let validation = app
        .post_raw(
            fixture_bytes(REMOVED),
            &[
                ("Content-Type", "application/json"),
                ("Validation-Token", token.as_str()),
            ],
        )
        .await;
    assert_eq!(validation.status(), 200);
    assert!(
        validation.headers().get("validation-token").is_none(),
        "a notification is not answered like a handshake"
    );

    let counts = app.wait_processed().await;
    assert_eq!(
        counts,
        InboxCounts {
            total: 2,
            unprocessed: 0,
            quarantined: 0
        }
    );
    let lines = app.wait_for_lines(3).await;
    assert_eq!(lines, [STARTED_LINE, JOINED_LINE, LEFT_LINE]);
}

// ----- 3. body size ------------------------------------------------------------------------

#[tokio::test]
async fn bodies_over_max_body_bytes_get_413_with_a_content_length_and_chunked_and_store_nothing() {
    let mut config = TestConfig::new();
    config.settings.server.max_body_bytes = 2048;
    let app = config.start().await;
    let token = app.token();
    let big = padded_to(seed_added_with_uuid("too-big-1"), 3000);

    let response = app.notify_bytes(big.clone()).await;
    assert_eq!(response.status(), 413);
    assert_one_line(&response.text().await.unwrap());

    // Chunked: no Content-Length, so the limit must hold while reading.
    let mut request = format!(
        "POST /webhooks/ringcentral HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nVerification-Token: {token}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        app.public_addr()
    )
    .into_bytes();
    for chunk in big.chunks(500) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let response = app.raw_exchange(&request).await;
    assert_eq!(response.status(), 413, "{}", response.text());
    assert_one_line(&response.body());

    assert_nothing_stored_or_announced(&app).await;

    // The limit is the setting: a body just under it is accepted.
    let fits = padded_to(seed_added_with_uuid("fits-1"), 2000);
    let response = app.notify_bytes(fits).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.wait_processed().await.total, 1);
}

// ----- 4. not notifications ----------------------------------------------------------------

#[tokio::test]
async fn bodies_that_are_not_notifications_get_400_with_a_one_line_reason_and_store_nothing() {
    let app = spawn_app().await;

    // The seed exactly as published: `"parties": 2` then `{` on line 14.
    let response = app.notify_bytes(fixture_bytes(MALFORMED)).await;
    assert_eq!(response.status(), 400);
    let reason = response.text().await.unwrap();
    assert_one_line(&reason);
    assert!(
        reason.contains("line 14"),
        "the reason should name the line of the error: {reason:?}"
    );

    let seed = fixture_bytes(ADDED);
    let mut nested = "[".repeat(10_000);
    nested.push_str(&"]".repeat(10_000));
    let mut without_uuid = fixture_json(ADDED);
    without_uuid.as_object_mut().unwrap().remove("uuid");
    let mut numeric_uuid = fixture_json(ADDED);
    numeric_uuid["uuid"] = json!(1025258805069352046u64);
    let mut without_event = fixture_json(ADDED);
    without_event.as_object_mut().unwrap().remove("event");
    let mut string_body = fixture_json(ADDED);
    string_body["body"] = json!("not an object");
    let mut array_body = fixture_json(ADDED);
    array_body["body"] = json!([fixture_json(ADDED)["body"].clone()]);
    let mut null_body = fixture_json(ADDED);
    null_body["body"] = Value::Null;

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated JSON", seed[..seed.len() / 2].to_vec()),
        ("10 000 nested arrays", nested.into_bytes()),
        (
            "a JSON array",
            format!("[{}]", String::from_utf8_lossy(&seed)).into_bytes(),
        ),
        ("an empty array", b"[]".to_vec()),
        ("a JSON string", b"\"hello\"".to_vec()),
        ("not JSON", b"hello".to_vec()),
        ("an empty body", Vec::new()),
        (
            "an object without uuid",
            serde_json::to_vec(&without_uuid).unwrap(),
        ),
        ("a numeric uuid", serde_json::to_vec(&numeric_uuid).unwrap()),
        (
            "an object without event",
            serde_json::to_vec(&without_event).unwrap(),
        ),
        ("body a string", serde_json::to_vec(&string_body).unwrap()),
        ("body an array", serde_json::to_vec(&array_body).unwrap()),
        ("body null", serde_json::to_vec(&null_body).unwrap()),
    ];
    for (what, body) in cases {
        let response = app.notify_bytes(body).await;
        let status = response.status();
        let reason = response.text().await.unwrap();
        assert_eq!(status, 400, "{what}: answered {status} {reason:?}");
        assert_one_line(&reason);
        assert!(reason.len() < 300, "{what}: reason too long: {reason:?}");
    }

    assert_nothing_stored_or_announced(&app).await;
}

// ----- 5. other kinds ----------------------------------------------------------------------

#[tokio::test]
async fn a_notification_of_another_kind_is_answered_200_and_ignored() {
    let app = spawn_app().await;
    let presence = json!({
        "uuid": "presence-1",
        "event": "/restapi/v1.0/account/~/extension/~/presence",
        "timestamp": "2024-02-27T16:04:52.558Z",
        "subscriptionId": "3ca0ec27-a916-4260-82ad-035752e61da2",
        "body": {
            "extensionId": 622953,
            "telephonyStatus": "OnHold",
            "presenceStatus": "Busy"
        }
    });
    app.notify_ok(&presence).await;
    // Even one that would not be a usable telephony notification.
    app.notify_ok(&json!({
        "uuid": "presence-2",
        "event": "/restapi/v1.0/account/~/extension/~/presence",
        "body": { "sequence": -1 }
    }))
    .await;

    assert_nothing_stored_or_announced(&app).await;
}

// ----- 6. quarantine -----------------------------------------------------------------------

#[tokio::test]
async fn unusable_telephony_notifications_are_answered_200_and_quarantined_with_the_reason() {
    let app = spawn_app().await;

    type Mutation = fn(&mut Value);
    let cases: Vec<(&str, Mutation, &str)> = vec![
        (
            "no telephonySessionId",
            |n| {
                n["body"]
                    .as_object_mut()
                    .unwrap()
                    .remove("telephonySessionId");
            },
            "body.telephonySessionId is missing",
        ),
        (
            "no sequence",
            |n| {
                n["body"].as_object_mut().unwrap().remove("sequence");
            },
            "body.sequence is missing",
        ),
        (
            "sequence -1",
            |n| n["body"]["sequence"] = json!(-1),
            "body.sequence -1 ",
        ),
        (
            "sequence 1.5",
            |n| n["body"]["sequence"] = json!(1.5),
            "body.sequence 1.5 ",
        ),
        (
            "sequence \"9\"",
            |n| n["body"]["sequence"] = json!("9"),
            "body.sequence \"9\" ",
        ),
        (
            "sequence 2^63",
            |n| n["body"]["sequence"] = json!(9_223_372_036_854_775_808u64),
            "body.sequence 9223372036854775808 ",
        ),
        (
            "a party without id",
            |n| {
                n["body"]["parties"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("id");
            },
            "body.parties[0].id is missing",
        ),
        (
            "parties not an array",
            |n| n["body"]["parties"] = json!({ "id": "p-1" }),
            "body does not have the shape of a telephony session event",
        ),
    ];

    for (index, (what, mutate, reason)) in cases.iter().enumerate() {
        let uuid = format!("quarantine-{index}");
        let mut notification = seed_added_with_uuid(&uuid);
        mutate(&mut notification);
        let body = serde_json::to_vec(&notification).unwrap();
        let response = app.notify_bytes(body.clone()).await;
        assert_eq!(response.status(), 200, "{what}");

        let counts = app.counts().await;
        assert_eq!(
            counts,
            InboxCounts {
                total: 0,
                unprocessed: 0,
                quarantined: index as u64 + 1
            },
            "{what}: the inbox changed or no quarantine row"
        );
        let row = app.quarantined(1).await.remove(0);
        assert_eq!(row.uuid.as_deref(), Some(uuid.as_str()), "{what}");
        assert!(
            row.reason.starts_with(reason),
            "{what}: reason {:?} does not start with {reason:?}",
            row.reason
        );
        assert!(!row.reason.contains('\n'), "{what}: {:?}", row.reason);
        assert_eq!(row.body, body, "{what}: the body is kept as received");
    }

    let lines = app.settle().await;
    assert!(
        lines.is_empty(),
        "quarantined notifications announced: {lines:#?}"
    );
    assert!(
        app.running.roster.is_empty(),
        "quarantined notifications reached the detector"
    );
}

// ----- 7. open enums, missing optional fields ----------------------------------------------

#[tokio::test]
async fn unknown_enum_values_and_missing_optional_fields_are_accepted_and_processed() {
    let app = spawn_app().await;

    // The seed join, stripped to its required fields, from a session of an unknown origin.
    let mut join = fixture_json(ADDED);
    for key in ["timestamp", "subscriptionId", "ownerId"] {
        join.as_object_mut().unwrap().remove(key);
    }
    for key in ["sessionId", "serverId"] {
        join["body"].as_object_mut().unwrap().remove(key);
    }
    join["body"]["origin"]["type"] = json!("Hologram");
    let party = join["body"]["parties"][0].as_object_mut().unwrap();
    for key in [
        "accountId",
        "extensionId",
        "park",
        "missedCall",
        "standAlone",
        "muted",
    ] {
        party.remove(key);
    }
    party["status"].as_object_mut().unwrap().remove("rcc");
    party["to"].as_object_mut().unwrap().remove("extensionId");
    for key in ["extensionId", "deviceId"] {
        party["from"].as_object_mut().unwrap().remove(key);
    }
    app.notify_ok(&join).await;
    assert_eq!(app.wait_for_lines(2).await, [STARTED_LINE, JOINED_LINE]);

    // A status nobody knows yet on the same party, between the join and the hang-up.
    let mut teleporting = fixture_json(REMOVED);
    teleporting["uuid"] = json!("teleporting-1");
    teleporting["body"]["sequence"] = json!(10);
    teleporting["body"]["eventTime"] = json!("2024-02-27T16:05:30.000Z");
    teleporting["body"]["origin"]["type"] = json!("Hologram");
    teleporting["body"]["parties"][0]["status"]["code"] = json!("Teleporting");
    teleporting["body"]["parties"][0]["direction"] = json!("Sideways");
    app.notify_ok(&teleporting).await;
    let counts = app.wait_processed().await;
    assert_eq!(
        counts,
        InboxCounts {
            total: 2,
            unprocessed: 0,
            quarantined: 0
        },
        "unknown values must be stored in the inbox, not quarantined"
    );
    let lines = app.settle().await;
    assert_eq!(
        lines,
        [STARTED_LINE, JOINED_LINE],
        "an unknown status is not a leave"
    );

    // Processing goes on normally: the hang-up is announced.
    app.notify_ok(&fixture_json(REMOVED)).await;
    assert_eq!(
        app.wait_for_lines(3).await,
        [STARTED_LINE, JOINED_LINE, LEFT_LINE]
    );
    assert_eq!(app.wait_processed().await.total, 3);
}

// ----- 8. duplicates -----------------------------------------------------------------------

#[tokio::test]
async fn the_same_notification_posted_twice_is_stored_and_announced_once() {
    let app = spawn_app().await;
    let seed = fixture_json(ADDED);
    app.notify_ok(&seed).await;
    app.notify_ok(&seed).await;

    let lines = app.settle().await;
    assert_eq!(lines, [STARTED_LINE, JOINED_LINE]);
    assert_eq!(
        app.counts().await,
        InboxCounts {
            total: 1,
            unprocessed: 0,
            quarantined: 0
        }
    );

    // Once announced, a late redelivery stays silent too.
    app.notify_ok(&seed).await;
    let lines = app.settle().await;
    assert_eq!(lines, [STARTED_LINE, JOINED_LINE]);
    assert_eq!(app.counts().await.total, 1);
}

#[tokio::test]
async fn the_same_notification_posted_20_times_concurrently_is_stored_and_announced_once() {
    let app = spawn_app().await;
    let body = fixture_bytes(ADDED);
    let mut posts = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let client = app.client.clone();
        let url = app.webhook_url();
        let token = app.token();
        let body = body.clone();
        posts.spawn(async move {
            client
                .post(url)
                .header("Content-Type", "application/json")
                .header("Verification-Token", token)
                .body(body)
                .send()
                .await
                .expect("the webhook answers")
                .status()
        });
    }
    let mut statuses = Vec::new();
    while let Some(status) = posts.join_next().await {
        statuses.push(status.expect("the post task").as_u16());
    }
    assert_eq!(statuses, vec![200; 20]);

    let lines = app.settle().await;
    assert_eq!(lines, [STARTED_LINE, JOINED_LINE]);
    assert_eq!(
        app.counts().await,
        InboxCounts {
            total: 1,
            unprocessed: 0,
            quarantined: 0
        }
    );
}

// ----- 9. announcements from real payloads -------------------------------------------------

#[tokio::test]
async fn the_seed_pair_announces_start_join_and_leave_with_the_exact_text() {
    let app = spawn_app().await;
    app.notify_ok(&fixture_json(ADDED)).await;
    app.notify_ok(&fixture_json(REMOVED)).await;

    assert_eq!(
        app.wait_for_lines(3).await,
        [STARTED_LINE, JOINED_LINE, LEFT_LINE]
    );
    // Nothing more: in particular no end (nothing says the conference ended).
    assert_eq!(app.settle().await, [STARTED_LINE, JOINED_LINE, LEFT_LINE]);
    let (_, lines) = app.stop().await;
    assert_eq!(lines, [STARTED_LINE, JOINED_LINE, LEFT_LINE]);
}

#[tokio::test]
async fn the_seed_pair_announces_the_same_when_the_two_arrive_in_separate_windows() {
    let app = spawn_app().await;
    app.notify_ok(&fixture_json(ADDED)).await;
    assert_eq!(app.wait_for_lines(2).await, [STARTED_LINE, JOINED_LINE]);
    app.notify_ok(&fixture_json(REMOVED)).await;
    assert_eq!(
        app.wait_for_lines(3).await,
        [STARTED_LINE, JOINED_LINE, LEFT_LINE]
    );
    assert_eq!(app.settle().await.len(), 3);
}

#[tokio::test]
async fn the_captured_plain_calls_announce_nothing() {
    for file in [
        "captured/pstn-to-ringcentral.jsonl",
        "captured/ringcentral-to-pstn.jsonl",
        "captured/ringcentral-to-ringcentral.jsonl",
    ] {
        let app = spawn_app().await;
        let notifications = fixture_lines(file);
        for notification in &notifications {
            app.notify_ok(notification).await;
        }
        let lines = app.settle().await;
        assert_eq!(
            app.counts().await,
            InboxCounts {
                total: notifications.len() as u64,
                unprocessed: 0,
                quarantined: 0
            },
            "{file}: every notification is stored and processed"
        );
        assert!(lines.is_empty(), "{file} announced {lines:#?}");
        assert!(
            app.running.roster.live().is_empty(),
            "{file}: a plain call is listed as a conference"
        );
        let (_, lines) = app.stop().await;
        assert!(lines.is_empty(), "{file} announced at stop: {lines:#?}");
    }
}

// ----- 10. inbox replay at start -----------------------------------------------------------

#[tokio::test]
async fn unprocessed_inbox_rows_are_replayed_at_start_and_not_again_after_a_graceful_stop() {
    let config = TestConfig::new();
    let path = config.settings.store.path.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(&path))
        .await
        .unwrap()
        .expect("open the store");
    let seed = fixture_json(ADDED);
    store
        .insert_inbox(NewInboxRow {
            uuid: seed["uuid"].as_str().unwrap().to_owned(),
            kind: "telephony".to_owned(),
            received_at_ms: time::OffsetDateTime::now_utc().unix_timestamp() * 1000,
            body: fixture_bytes(ADDED),
        })
        .await
        .expect("insert the row");
    store.close().await.expect("close the store");

    let app = config.start().await;
    assert_eq!(app.wait_for_lines(2).await, [STARTED_LINE, JOINED_LINE]);
    assert_eq!(
        app.wait_processed().await,
        InboxCounts {
            total: 1,
            unprocessed: 0,
            quarantined: 0
        }
    );
    // A redelivery of the replayed notification is a duplicate.
    app.notify_ok(&seed).await;
    let (config, lines) = app.stop().await;
    assert_eq!(lines, [STARTED_LINE, JOINED_LINE]);

    let app = config.start().await;
    let lines = app.settle().await;
    assert!(
        lines.is_empty(),
        "replayed again after a graceful stop: {lines:#?}"
    );
    assert_eq!(
        app.counts().await,
        InboxCounts {
            total: 1,
            unprocessed: 0,
            quarantined: 0
        }
    );
    let (_, lines) = app.stop().await;
    assert!(lines.is_empty(), "{lines:#?}");
}

// ----- 11. operator API --------------------------------------------------------------------

fn seed_conferences_json() -> Value {
    json!({
        "conferences": [{
            "conference_id": "s-a0d7bfa2dd198z18deb4fcc72z184536c0000",
            "started_at": "2024-02-27T16:04:52.223Z",
            "host": { "name": "Agent 122", "phone_number": "+1650XXXXXXX" },
            "participants": [{
                "participant_id": "p-a0d7bfa2dd198z18deb4fcc72z184536c0000-2",
                "name": "Paco Vu",
                "phone_number": "11119",
                "joined_at": "2024-02-27T16:04:52.223Z",
                "muted": false,
                "on_hold": false
            }]
        }]
    })
}

/// Polls `GET /api/conferences` until it lists a conference.
async fn wait_for_conferences(app: &TestApp) -> Value {
    let deadline = tokio::time::Instant::now() + support::DEADLINE;
    loop {
        let response = app.admin_get("/api/conferences", Some(API_TOKEN)).await;
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let value: Value = response.json().await.expect("JSON");
        if value["conferences"]
            .as_array()
            .is_some_and(|list| !list.is_empty())
        {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no conference listed: {value}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn api_conferences_needs_the_bearer_token_and_lists_the_seed_conference() {
    let app = spawn_app().await;
    assert!(app.running.admin_addr.is_some());

    let response = app.admin_get("/api/conferences", None).await;
    assert_eq!(response.status(), 401);
    assert_one_line(&response.text().await.unwrap());
    let response = app.admin_get("/api/conferences", Some("wrong")).await;
    assert_eq!(response.status(), 401);
    let response = app
        .client
        .get(format!("http://{}/api/conferences", app.admin_addr()))
        .header("Authorization", API_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        401,
        "the token without the Bearer scheme"
    );

    let response = app.admin_get("/api/conferences", Some(API_TOKEN)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "conferences": [] })
    );

    app.notify_ok(&fixture_json(ADDED)).await;
    assert_eq!(wait_for_conferences(&app).await, seed_conferences_json());

    // The operator routes are not on the public listener, and the webhook not on the operator's.
    assert_eq!(app.public_get("/api/conferences").await.status(), 404);
    assert_eq!(app.public_get("/healthz").await.status(), 200);
    let response = app
        .client
        .post(format!("http://{}/webhooks/ringcentral", app.admin_addr()))
        .header("Validation-Token", "abc")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);

    // After the leave the participant is no longer listed; the conference still is.
    app.notify_ok(&fixture_json(REMOVED)).await;
    app.wait_processed().await;
    let mut expected = seed_conferences_json();
    expected["conferences"][0]["participants"] = json!([]);
    let response = app.admin_get("/api/conferences", Some(API_TOKEN)).await;
    assert_eq!(response.json::<Value>().await.unwrap(), expected);
}

#[tokio::test]
async fn with_admin_listen_equal_to_listen_everything_is_served_on_one_port() {
    let app = TestConfig::new().on_one_port().start().await;
    assert_eq!(app.running.admin_addr, None);
    assert_eq!(app.public_addr(), app.config.settings.server.listen);

    assert_eq!(app.public_get("/healthz").await.status(), 200);
    assert_eq!(
        app.admin_get("/api/conferences", None).await.status(),
        401,
        "the operator API is on the shared port, still behind the token"
    );
    app.notify_ok(&fixture_json(ADDED)).await;
    assert_eq!(wait_for_conferences(&app).await, seed_conferences_json());
    assert_eq!(app.wait_for_lines(2).await, [STARTED_LINE, JOINED_LINE]);
}

/// `server.listen` and `server.admin_listen` both `127.0.0.1:0` (the way the defaults are usually
/// overridden in tests and containers) ask for two listeners on two random ports; ringside
/// compares the configured addresses, finds them equal and serves the operator API on the
/// public listener.
#[tokio::test]
async fn listen_and_admin_listen_both_on_port_0_get_two_listeners() {
    let mut config = TestConfig::new();
    config.settings.server.listen = ([127, 0, 0, 1], 0).into();
    config.settings.server.admin_listen = ([127, 0, 0, 1], 0).into();
    let app = config.start().await;
    assert_eq!(
        app.public_get("/api/conferences").await.status(),
        404,
        "the operator API is served on the public listener"
    );
    let admin = app
        .running
        .admin_addr
        .expect("an operator listener of its own");
    assert_ne!(admin, app.public_addr());
}

#[tokio::test]
async fn healthz_answers_200() {
    let app = spawn_app().await;
    let response = app.public_get("/healthz").await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn readyz_answers_200_while_the_store_takes_writes() {
    let app = spawn_app().await;
    let response = app.admin_get("/readyz", None).await;
    assert_eq!(response.status(), 200);
}

/// The value of one counter line (`name{labels} value`) in a Prometheus text page, 0 if absent.
fn counter(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_refused_and_quarantined_notifications() {
    let app = spawn_app().await;
    let page = || async { app.admin_get("/metrics", None).await.text().await.unwrap() };
    let refused = r#"ringside_notifications_rejected_total{reason="unauthorized"}"#;
    let quarantined = r#"ringside_notifications_total{outcome="quarantined"}"#;
    let before = page().await;
    let response = app
        .post_raw(b"{}".to_vec(), &[("Verification-Token", "wrong")])
        .await;
    assert_eq!(response.status(), 401);
    let mut unusable = fixture_json(ADDED);
    unusable["uuid"] = serde_json::json!("metrics-quarantine-1");
    unusable["body"]
        .as_object_mut()
        .unwrap()
        .remove("telephonySessionId");
    assert_eq!(app.notify(&unusable).await.status(), 200);
    let after = page().await;
    // Other tests in this binary share the process-wide recorder: compare, don't pin.
    assert!(
        counter(&after, refused) >= counter(&before, refused) + 1.0,
        "{after}"
    );
    assert!(
        counter(&after, quarantined) >= counter(&before, quarantined) + 1.0,
        "{after}"
    );
}

// ----- 12. the simulator through the real webhook ------------------------------------------

fn simulator_host() -> Person {
    Person::with_extension("Dana Host", "+16505550100", "62295300101")
}

async fn play_script(app: &TestApp, script: &ConferenceScript) {
    let report = play(
        &app.client,
        &app.webhook_url(),
        &app.token(),
        script.notifications(),
        Duration::ZERO,
    )
    .await
    .expect("every notification is answered 200");
    assert_eq!(report.sent, script.notifications().len());
}

fn count_starting(lines: &[String], prefix: &str) -> usize {
    lines.iter().filter(|line| line.starts_with(prefix)).count()
}

#[tokio::test]
async fn simulated_unconfirmed_leave_variants_each_announce_one_leave_and_a_silent_one_stays_listed()
 {
    let app = spawn_app().await;
    let mut script = ConferenceScript::new(41, simulator_host(), time::OffsetDateTime::now_utc());
    script.start();
    let original_only = script.call_and_merge(Person::new("Ana Ruiz", "+14155550142"));
    let conference_only = script.call_and_merge(Person::new("Bo Chen", "+14155550177"));
    let silent = script.call_and_merge(Person::new("Cy Oduya", "+14155550199"));
    script.advance(Duration::from_secs(90));
    script.hang_up(original_only, LeaveSignal::OriginalOnly);
    script.advance(Duration::from_secs(30));
    script.hang_up(conference_only, LeaveSignal::ConferenceOnly);
    script.advance(Duration::from_secs(30));
    script.hang_up(silent, LeaveSignal::Silent);
    play_script(&app, &script).await;

    let lines = app.wait_for_lines(6).await;
    let lines_after = app.settle().await;
    assert_eq!(lines, lines_after, "more than six lines");
    assert_eq!(
        lines[0], "Conference hosted by Dana Host started",
        "{lines:#?}"
    );
    for (who, on_call) in [
        ("Ana Ruiz (•••0142)", 1),
        ("Bo Chen (•••0177)", 2),
        ("Cy Oduya (•••0199)", 3),
    ] {
        let joined =
            format!("{who} joined the conference hosted by Dana Host — {on_call} on the call");
        assert_eq!(
            lines.iter().filter(|line| **line == joined).count(),
            1,
            "{joined:?} in {lines:#?}"
        );
    }
    assert_eq!(
        count_starting(&lines, "Ana Ruiz (•••0142) left after "),
        1,
        "{lines:#?}"
    );
    assert_eq!(
        count_starting(&lines, "Bo Chen (•••0177) left after "),
        1,
        "{lines:#?}"
    );
    assert_eq!(
        count_starting(&lines, "Cy Oduya"),
        1,
        "only the join: {lines:#?}"
    );

    let live = app.running.roster.live();
    assert_eq!(live.len(), 1, "{live:#?}");
    assert_eq!(live[0].id.as_str(), script.conference_id());
    let listed: Vec<&str> = live[0].live().map(|p| p.id.as_str()).collect();
    assert_eq!(listed, [script.participant_id(silent)]);

    let (_, lines_at_stop) = app.stop().await;
    assert_eq!(lines_at_stop, lines);
}

#[tokio::test]
async fn a_simulated_conference_that_ends_announces_the_end_summary() {
    let app = spawn_app().await;
    let mut script = ConferenceScript::new(7, simulator_host(), time::OffsetDateTime::now_utc());
    script.start();
    let stays = script.call_and_merge(Person::new("Ana Ruiz", "+14155550142"));
    let leaves = script.call_and_merge(Person::new("Bo Chen", "+14155550177"));
    script.advance(Duration::from_secs(60));
    script.hang_up(leaves, LeaveSignal::Both);
    script.advance(Duration::from_secs(60));
    script.end();
    let _ = stays;
    play_script(&app, &script).await;

    let lines = app.wait_for_lines(6).await;
    assert_eq!(app.settle().await, lines, "more than six lines");
    assert_eq!(lines[0], "Conference hosted by Dana Host started");
    assert_eq!(
        count_starting(&lines, "Bo Chen (•••0177) left after "),
        1,
        "{lines:#?}"
    );
    let ana_left: Vec<&String> = lines
        .iter()
        .filter(|line| line.starts_with("Ana Ruiz (•••0142) left after "))
        .collect();
    // Her conference-side party goes Disconnected before the host's, so whether this reads
    // "left after …" or "left after … when the conference ended" is the detector's call.
    assert_eq!(ana_left.len(), 1, "{lines:#?}");
    let end = lines.last().unwrap();
    assert!(
        end.starts_with("Conference hosted by Dana Host ended after ")
            && end.ends_with(" — 2 callers, at most 2 at once"),
        "the end summary: {lines:#?}"
    );
    assert!(app.running.roster.live().is_empty());
}

#[tokio::test]
async fn a_simulated_plain_two_party_call_announces_nothing() {
    let app = spawn_app().await;
    let mut script = ConferenceScript::new(3, simulator_host(), time::OffsetDateTime::now_utc());
    script.two_party_call(
        Person::new("Ana Ruiz", "+14155550142"),
        Duration::from_secs(75),
    );
    play_script(&app, &script).await;

    let lines = app.settle().await;
    assert!(lines.is_empty(), "{lines:#?}");
    let counts = app.counts().await;
    assert_eq!(counts.total, script.notifications().len() as u64);
    assert_eq!(counts.quarantined, 0);
    assert!(app.running.roster.live().is_empty());
}
