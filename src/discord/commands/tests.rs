//! The handlers on hand-built interactions, with a fake kicker and a settable clock.

use super::*;
use crate::conference::input::PartyUpdate;
use crate::conference::{Detector, Identity, Input, PartyId, SessionId, SessionUpdate, Timestamp};
use crate::pipeline::{KickOutcome, KickRequest};
use crate::present::escape;
use crate::present::words::MAX_CONTENT_CHARS;
use crate::ringcentral::wire::{ConferenceRole, Direction, OriginType, StatusCode};
use crate::store::test_support::open_temp;
use serde_json::{Value, json};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

pub(crate) const GUILD: u64 = 10;
pub(crate) const MOD_ROLE: u64 = 500;
const T0: i64 = 1_709_049_892_000;

/// A clock the test moves by hand.
#[derive(Debug, Default)]
pub(crate) struct TestClock(pub AtomicI64);

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

/// Records every request and answers with a fixed outcome.
#[derive(Debug)]
pub(crate) struct FakeKicker {
    pub requests: Mutex<Vec<KickRequest>>,
    pub outcome: KickOutcome,
}

impl Kicker for FakeKicker {
    fn kick(&self, request: KickRequest) -> Pin<Box<dyn Future<Output = KickOutcome> + Send + '_>> {
        self.requests.lock().unwrap().push(request);
        let outcome = self.outcome.clone();
        Box::pin(async move { outcome })
    }
}

fn person(name: &str, number: &str) -> Identity {
    Identity {
        name: Some(name.to_owned()),
        phone_number: Some(number.to_owned()),
        extension_id: None,
    }
}

fn party(id: &str, from: Identity, role: ConferenceRole) -> PartyUpdate {
    PartyUpdate {
        id: PartyId::parse(id).unwrap(),
        direction: Some(if role == ConferenceRole::Host {
            Direction::Outbound
        } else {
            Direction::Inbound
        }),
        from,
        to: Identity::default(),
        to_conference: true,
        code: Some(StatusCode::Answered),
        reason: None,
        peer: None,
        role: Some(role),
        muted: None,
    }
}

/// A live conference hosted by `host` with `callers` (name, number) on it.
fn conference(session: &str, host: (&str, &str), callers: &[(&str, &str)]) -> Input {
    let mut parties = vec![party(
        &format!("{session}-host"),
        person(host.0, host.1),
        ConferenceRole::Host,
    )];
    for (index, (name, number)) in callers.iter().enumerate() {
        parties.push(party(
            &format!("{session}-{}", index + 2),
            person(name, number),
            ConferenceRole::Participant,
        ));
    }
    Input::Notification {
        received_at: Timestamp(T0),
        notification: SessionUpdate {
            session_id: SessionId::parse(session).unwrap(),
            sequence: Some(1),
            event_time: Some(Timestamp(T0)),
            origin: Some(OriginType::Conference),
            parties,
        },
    }
}

pub(crate) fn roster_of(inputs: Vec<Input>) -> Roster {
    let mut detector = Detector::default();
    for input in inputs {
        detector.apply(input);
    }
    let roster = Roster::new();
    roster.rebuild(&detector);
    roster
}

pub(crate) fn seed_roster() -> Roster {
    roster_of(vec![conference(
        "s-conf",
        ("Agent 122", "+16505550100"),
        &[("Paco Vu", "+16505551119"), ("@everyone", "+16505550142")],
    )])
}

pub(crate) struct Harness {
    pub commands: Commands,
    pub kicker: Arc<FakeKicker>,
    pub clock: Arc<TestClock>,
    pub store: Store,
    _dir: tempfile::TempDir,
}

pub(crate) fn harness_with(roster: Roster, access: Access, local_mode: bool) -> Harness {
    let (dir, store) = open_temp();
    let kicker = Arc::new(FakeKicker {
        requests: Mutex::default(),
        outcome: KickOutcome::Removed,
    });
    let clock = Arc::new(TestClock(AtomicI64::new(T0 + 60_000)));
    let commands = Commands::new(Deps {
        roster,
        kicker: if local_mode {
            None
        } else {
            Some(kicker.clone() as Arc<dyn Kicker>)
        },
        access,
        guild_id: GUILD,
        phone_numbers: PhoneNumbers::Masked,
        confirm_ttl: Duration::from_secs(60),
        store: store.clone(),
        clock: clock.clone(),
    });
    Harness {
        commands,
        kicker,
        clock,
        store,
        _dir: dir,
    }
}

pub(crate) fn default_access() -> Access {
    Access {
        list_roles: vec![],
        list_users: vec![],
        kick_roles: vec![MOD_ROLE],
        kick_users: vec![],
        kick_enabled: true,
        kick_limit_per_minute: 5,
    }
}

pub(crate) fn harness() -> Harness {
    harness_with(seed_roster(), default_access(), false)
}

/// A guild member as Discord sends it in an interaction.
pub(crate) fn member(user_id: u64, roles: &[u64], permissions: &str) -> Value {
    json!({
        "user": {"id": user_id.to_string(), "username": format!("user{user_id}"), "discriminator": "0",
                 "avatar": null, "global_name": format!("Member {user_id}")},
        "roles": roles.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
        "permissions": permissions,
        "deaf": false, "mute": false, "flags": 0,
        "joined_at": "2024-01-01T00:00:00+00:00",
        "nick": if user_id == 42 { Value::from("Moderator Mo") } else { Value::Null },
    })
}

pub(crate) fn moderator() -> Value {
    member(42, &[MOD_ROLE], "0")
}

pub(crate) fn plain_member() -> Value {
    member(43, &[], "0")
}

/// A CHAT_INPUT (type 2) or autocomplete (type 4) interaction from the guild.
pub(crate) fn command_json(kind: u8, name: &str, options: Value, member: Value) -> Value {
    json!({
        "id": "900", "application_id": "1", "type": kind,
        "data": {"id": "800", "name": name, "type": 1, "options": options},
        "guild_id": GUILD.to_string(), "channel_id": "20",
        "member": member,
        "token": "interaction-token", "version": 1, "locale": "en-US",
        "app_permissions": "0", "entitlements": [], "attachment_size_limit": 8_388_608,
    })
}

fn interaction(value: Value) -> Interaction {
    serde_json::from_value(value).expect("a valid interaction fixture")
}

fn command(name: &str, options: Value, member: Value) -> Interaction {
    interaction(command_json(2, name, options, member))
}

fn autocomplete(name: &str, option: &str, typed: &str, member: Value) -> Interaction {
    interaction(command_json(
        4,
        name,
        json!([{"name": option, "type": 3, "value": typed, "focused": true}]),
        member,
    ))
}

fn button(custom_id: &str, member: Value) -> Interaction {
    interaction(json!({
        "id": "901", "application_id": "1", "type": 3,
        "data": {"custom_id": custom_id, "component_type": 2},
        "guild_id": GUILD.to_string(), "channel_id": "20",
        "member": member,
        "message": {
            "id": "700", "channel_id": "20",
            "author": {"id": "1", "username": "ringside", "discriminator": "0", "avatar": null, "bot": true},
            "content": "Remove …?", "timestamp": "2024-01-01T00:00:00+00:00", "edited_timestamp": null,
            "tts": false, "mention_everyone": false, "mentions": [], "mention_roles": [],
            "attachments": [], "embeds": [], "pinned": false, "type": 0, "flags": 64
        },
        "token": "button-token", "version": 1, "locale": "en-US",
        "app_permissions": "0", "entitlements": [], "attachment_size_limit": 8_388_608,
    }))
}

/// The JSON Discord would get for a reply answered now.
fn now(reply: Reply) -> Value {
    match reply {
        Reply::Now(response) => serde_json::to_value(&response).unwrap(),
        Reply::Deferred { ack, .. } => panic!("expected Now, got Deferred with {ack:?}"),
    }
}

fn content(response: &Value) -> String {
    response["data"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn is_ephemeral(response: &Value) -> bool {
    response["data"]["flags"].as_u64().unwrap_or(0) & 64 == 64
}

fn assert_no_mentions(response: &Value) {
    assert_eq!(
        response["data"]["allowed_mentions"],
        json!({"parse": [], "users": [], "roles": []}),
        "{response}"
    );
}

fn custom_ids(response: &Value) -> Vec<String> {
    response["data"]["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .map(|button| button["custom_id"].as_str().unwrap().to_owned())
        .collect()
}

pub(crate) fn paco_key() -> String {
    participant_key(&ParticipantKey {
        conference: crate::conference::ConferenceId::parse("s-conf").unwrap(),
        participant: crate::conference::ParticipantId::parse("s-conf-2").unwrap(),
    })
}

/// Runs `/kick caller:<value>` as `member` and returns the confirmation's yes / no ids.
async fn confirmation(h: &Harness, value: &str, member: Value) -> (String, String) {
    let reply = now(h
        .commands
        .handle(command(
            "kick",
            json!([{"name": "caller", "type": 3, "value": value},
                   {"name": "reason", "type": 3, "value": "not on the guest list"}]),
            member,
        ))
        .await);
    let ids = custom_ids(&reply);
    assert_eq!(ids.len(), 2, "{reply}");
    (ids[0].clone(), ids[1].clone())
}

#[tokio::test]
async fn participants_lists_live_callers_with_inert_names_and_masked_numbers() {
    let h = harness();
    let reply = now(h
        .commands
        .handle(command("participants", json!([]), plain_member()))
        .await);
    let text = content(&reply);
    assert!(
        text.contains("Conference hosted by **Agent 122** (•••0100)"),
        "{text}"
    );
    assert!(
        text.contains("• Paco Vu (•••1119), joined <t:1709049892:R>"),
        "{text}"
    );
    assert!(text.contains("@\u{200B}everyone (•••0142)"), "{text}");
    assert!(!text.contains("@everyone"), "{text}");
    assert!(!text.contains("+1650"), "{text}");
    assert!(text.contains("2 callers"), "{text}");
    assert!(is_ephemeral(&reply));
    assert_no_mentions(&reply);
    assert_eq!(reply["type"], 4);
}

#[tokio::test]
async fn participants_public_true_is_shown_to_the_channel() {
    let h = harness();
    let reply = now(h
        .commands
        .handle(command(
            "participants",
            json!([{"name": "public", "type": 5, "value": true}]),
            plain_member(),
        ))
        .await);
    assert!(!is_ephemeral(&reply));
    assert_no_mentions(&reply);
}

#[tokio::test]
async fn participants_says_so_when_nobody_is_on_a_call() {
    let h = harness_with(Roster::new(), default_access(), false);
    let reply = now(h
        .commands
        .handle(command("participants", json!([]), plain_member()))
        .await);
    assert_eq!(content(&reply), "Nobody is on a conference call right now.");
}

/// `count` callers named `{before}{i}{after}` with distinct numbers.
fn many_callers(count: usize, before: &str, after: &str) -> Vec<(String, String)> {
    (0..count)
        .map(|i| (format!("{before}{i}{after}"), format!("+1650555{i:04}")))
        .collect()
}

#[tokio::test]
async fn participants_too_long_for_one_message_is_paginated_with_every_caller_once() {
    let names = many_callers(80, "Caller number ", " with a rather long name");
    let callers: Vec<(&str, &str)> = names
        .iter()
        .map(|(n, p)| (n.as_str(), p.as_str()))
        .collect();
    let roster = roster_of(vec![
        conference("s-big", ("Agent 1", "+16505550001"), &callers),
        conference(
            "s-other",
            ("Agent 2", "+16505550002"),
            &[
                ("Ann Other", "+15550001111"),
                ("Bo Other", "+15550002222"),
                ("Cy Other", "+15550003333"),
            ],
        ),
    ]);
    let h = harness_with(roster, default_access(), false);
    let first = now(h
        .commands
        .handle(command("participants", json!([]), plain_member()))
        .await);
    let mut seen: Vec<String> = Vec::new();
    let mut response = first;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages < 20, "paging never ends");
        let text = content(&response);
        assert!(text.chars().count() <= MAX_CONTENT_CHARS, "{}", text.len());
        assert!(text.contains(&format!("Page {pages} of ")), "{text}");
        seen.extend(
            text.lines()
                .filter(|l| l.starts_with("• "))
                .map(str::to_owned),
        );
        let ids = custom_ids(&response);
        assert_eq!(ids.len(), 2, "{response}");
        let next = &ids[1];
        let buttons = response["data"]["components"][0]["components"].clone();
        if buttons[1]["disabled"] == json!(true) {
            break;
        }
        response = now(h.commands.handle(button(next, plain_member())).await);
        assert_eq!(response["type"], 7, "a page turn updates the message");
    }
    assert!(pages >= 3, "{pages} pages");
    assert_eq!(seen.len(), 83, "every caller listed once across the pages");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 83, "nobody twice: {seen:?}");
}

#[tokio::test]
async fn a_page_past_the_end_shows_the_last_and_paging_needs_list_access() {
    let names = many_callers(60, "Caller ", " with a long long name");
    let callers: Vec<(&str, &str)> = names
        .iter()
        .map(|(n, p)| (n.as_str(), p.as_str()))
        .collect();
    let roster = roster_of(vec![conference(
        "s-big",
        ("Agent 1", "+16505550001"),
        &callers,
    )]);
    let mut access = default_access();
    access.list_roles = vec![MOD_ROLE];
    let h = harness_with(roster, access, false);
    let last = now(h
        .commands
        .handle(button("participants:page:99:all", moderator()))
        .await);
    let text = content(&last);
    assert!(text.contains("Caller 59 "), "{text}");
    let total = text
        .rsplit("of ")
        .next()
        .unwrap()
        .trim_end_matches('_')
        .to_owned();
    assert!(
        text.ends_with(&format!("_Page {total} of {total}_")),
        "{text}"
    );
    let refused = now(h
        .commands
        .handle(button("participants:page:2:all", plain_member()))
        .await);
    assert!(is_ephemeral(&refused), "{refused}");
    assert!(!content(&refused).contains("Caller"), "{refused}");
}

#[tokio::test]
async fn participants_for_one_conference_via_its_autocomplete_key() {
    let roster = roster_of(vec![
        conference(
            "s-a",
            ("Agent 1", "+16505550001"),
            &[("Ann", "+15550001111")],
        ),
        conference(
            "s-b",
            ("Agent 2", "+16505550002"),
            &[("Bob", "+15550002222")],
        ),
    ]);
    let h = harness_with(roster, default_access(), false);
    let choices = now(h
        .commands
        .handle(autocomplete(
            "participants",
            "conference",
            "agent 2",
            plain_member(),
        ))
        .await);
    let found = choices["data"]["choices"].as_array().unwrap().clone();
    assert_eq!(found.len(), 1, "{choices}");
    assert_eq!(found[0]["name"], "Agent 2's call · 1 on the call");
    let key = found[0]["value"].as_str().unwrap();
    let reply = now(h
        .commands
        .handle(command(
            "participants",
            json!([{"name": "conference", "type": 3, "value": key}]),
            plain_member(),
        ))
        .await);
    let text = content(&reply);
    assert!(text.contains("Bob") && !text.contains("Ann"), "{text}");
}

#[tokio::test]
async fn kick_autocomplete_offers_callers_but_never_the_host_and_only_to_kickers() {
    let h = harness();
    let reply = now(h
        .commands
        .handle(autocomplete("kick", "caller", "", moderator()))
        .await);
    let choices = reply["data"]["choices"].as_array().unwrap().clone();
    assert_eq!(reply["type"], 8);
    let names: Vec<&str> = choices
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Paco Vu (•••1119) · Agent 122's call",
            "@\u{200B}everyone (•••0142) · Agent 122's call"
        ]
    );
    assert_eq!(choices[0]["value"], paco_key());
    for choice in &choices {
        assert!(choice["value"].as_str().unwrap().len() <= 100);
    }
    // Filtered by name or digits.
    let by_digits = now(h
        .commands
        .handle(autocomplete("kick", "caller", "1119", moderator()))
        .await);
    assert_eq!(by_digits["data"]["choices"].as_array().unwrap().len(), 1);
    let host = now(h
        .commands
        .handle(autocomplete("kick", "caller", "agent", moderator()))
        .await);
    assert_eq!(host["data"]["choices"], json!([]));
    // A member who may not kick sees nothing.
    let other = now(h
        .commands
        .handle(autocomplete("kick", "caller", "", plain_member()))
        .await);
    assert_eq!(other["data"]["choices"], json!([]));
}

#[tokio::test]
async fn kick_confirmed_by_the_invoker_calls_the_kicker_with_participant_and_actor() {
    let h = harness();
    let reply = now(h
        .commands
        .handle(command(
            "kick",
            json!([{"name": "caller", "type": 3, "value": paco_key()},
                   {"name": "reason", "type": 3, "value": "not on the guest list"}]),
            moderator(),
        ))
        .await);
    let text = content(&reply);
    assert!(
        text.starts_with("Remove **Paco Vu** (•••1119) from Agent 122's call?"),
        "{text}"
    );
    assert!(is_ephemeral(&reply));
    assert_no_mentions(&reply);
    let buttons = &reply["data"]["components"][0]["components"];
    assert_eq!(buttons[0]["label"], "Remove Paco Vu");
    assert_eq!(buttons[0]["style"], 4);
    assert_eq!(buttons[1]["label"], "Cancel");
    assert_eq!(buttons[1]["style"], 2);
    let ids = custom_ids(&reply);
    assert!(ids[0].starts_with("kick:yes:") && ids[1].starts_with("kick:no:"));
    assert!(h.kicker.requests.lock().unwrap().is_empty());

    match h.commands.handle(button(&ids[0], moderator())).await {
        Reply::Deferred { ack, work } => {
            let ack = serde_json::to_value(&ack).unwrap();
            assert_eq!(ack["type"], 7);
            assert_eq!(content(&ack), "Removing Paco Vu…");
            assert_eq!(ack["data"]["components"], json!([]));
            let edit = serde_json::to_value(work.await).unwrap();
            assert_eq!(edit["content"], "Removed Paco Vu from Agent 122's call.");
            assert_eq!(
                edit["allowed_mentions"],
                json!({"parse": [], "users": [], "roles": []})
            );
        }
        other => panic!("expected Deferred, got {other:?}"),
    }
    let requests = h.kicker.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].participant.conference.as_str(), "s-conf");
    assert_eq!(requests[0].participant.participant.as_str(), "s-conf-2");
    assert_eq!(requests[0].by.id, "42");
    assert_eq!(requests[0].by.display, "Moderator Mo");
    assert_eq!(requests[0].reason.as_deref(), Some("not on the guest list"));
    // The confirmation is used up: a second press does nothing.
    let again = now(h.commands.handle(button(&ids[0], moderator())).await);
    assert!(content(&again).contains("expired or was already used"));
    assert_eq!(h.kicker.requests.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmation_pressed_twice_at_once_removes_once() {
    let h = harness();
    let (yes, _) = confirmation(&h, &paco_key(), moderator()).await;
    let first = h.commands.clone();
    let second = h.commands.clone();
    let (a, b) = tokio::join!(
        tokio::spawn({
            let yes = yes.clone();
            async move { first.handle(button(&yes, moderator())).await }
        }),
        tokio::spawn(async move { second.handle(button(&yes, moderator())).await }),
    );
    let mut deferred = 0;
    for reply in [a.unwrap(), b.unwrap()] {
        match reply {
            Reply::Deferred { work, .. } => {
                deferred += 1;
                let _ = work.await;
            }
            Reply::Now(response) => {
                // Whichever way the second press lost the race, it says so and removes nobody.
                let response = serde_json::to_value(&response).unwrap();
                assert!(content(&response).contains("already used"), "{response}");
            }
        }
    }
    assert_eq!(deferred, 1);
    assert_eq!(h.kicker.requests.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn kick_by_exact_typed_name_resolves_the_caller() {
    let h = harness();
    let (yes, _) = confirmation(&h, "paco vu", moderator()).await;
    assert!(matches!(
        h.commands.handle(button(&yes, moderator())).await,
        Reply::Deferred { .. }
    ));
}

#[tokio::test]
async fn kick_by_a_member_without_access_is_refused_audited_and_never_reaches_the_kicker() {
    let h = harness();
    let reply = now(h
        .commands
        .handle(command(
            "kick",
            json!([{"name": "caller", "type": 3, "value": paco_key()}]),
            plain_member(),
        ))
        .await);
    assert_eq!(content(&reply), "You are not allowed to remove callers.");
    assert!(is_ephemeral(&reply));
    assert!(custom_ids(&reply).is_empty());
    assert!(h.kicker.requests.lock().unwrap().is_empty());
    let audit = h.store.audit_since(0).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "kick_refused");
    assert_eq!(audit[0].outcome, "refused");
    assert_eq!(audit[0].actor_id, "43");
    assert_eq!(audit[0].detail, "You are not allowed to remove callers.");
}

#[tokio::test]
async fn an_administrator_may_kick_without_being_listed() {
    let h = harness();
    let admin = member(44, &[], "8");
    let (yes, _) = confirmation(&h, &paco_key(), admin.clone()).await;
    assert!(matches!(
        h.commands.handle(button(&yes, admin)).await,
        Reply::Deferred { .. }
    ));
}

#[tokio::test]
async fn kick_disabled_refuses_everyone() {
    let access = Access {
        kick_enabled: false,
        ..default_access()
    };
    let h = harness_with(seed_roster(), access, false);
    let reply = now(h
        .commands
        .handle(command(
            "kick",
            json!([{"name": "caller", "type": 3, "value": paco_key()}]),
            member(44, &[MOD_ROLE], "8"),
        ))
        .await);
    assert_eq!(content(&reply), "Removing callers is turned off.");
}

#[tokio::test]
async fn another_members_button_press_changes_nothing() {
    let h = harness();
    let (yes, no) = confirmation(&h, &paco_key(), moderator()).await;
    let other_mod = member(45, &[MOD_ROLE], "0");
    for id in [&yes, &no] {
        let reply = now(h.commands.handle(button(id, other_mod.clone())).await);
        assert_eq!(reply["type"], 4, "a new ephemeral message, not an update");
        assert_eq!(
            content(&reply),
            "Only the member who ran /kick can confirm it."
        );
        assert!(is_ephemeral(&reply));
    }
    assert!(h.kicker.requests.lock().unwrap().is_empty());
    assert_eq!(h.commands.pending_confirmations(), 1);
    // Still pending for the invoker.
    assert!(matches!(
        h.commands.handle(button(&yes, moderator())).await,
        Reply::Deferred { .. }
    ));
}

#[tokio::test]
async fn an_expired_confirmation_says_so_and_kicks_nobody() {
    let h = harness();
    let (yes, _) = confirmation(&h, &paco_key(), moderator()).await;
    h.clock.0.fetch_add(60_000, Ordering::SeqCst);
    let reply = now(h.commands.handle(button(&yes, moderator())).await);
    assert_eq!(reply["type"], 7);
    assert_eq!(
        content(&reply),
        "This confirmation has expired. Run /kick again."
    );
    assert_eq!(reply["data"]["components"], json!([]));
    assert!(h.kicker.requests.lock().unwrap().is_empty());
}

#[tokio::test]
async fn cancel_updates_the_message_and_removes_the_buttons() {
    let h = harness();
    let (_, no) = confirmation(&h, &paco_key(), moderator()).await;
    let reply = now(h.commands.handle(button(&no, moderator())).await);
    assert_eq!(reply["type"], 7);
    assert_eq!(content(&reply), "Cancelled; nobody was removed.");
    assert_eq!(reply["data"]["components"], json!([]));
    assert_eq!(h.commands.pending_confirmations(), 0);
    assert!(h.kicker.requests.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_host_is_refused_by_name() {
    let h = harness();
    let reply = now(h
        .commands
        .handle(command(
            "kick",
            json!([{"name": "caller", "type": 3, "value": "Agent 122"}]),
            moderator(),
        ))
        .await);
    assert_eq!(
        content(&reply),
        "Agent 122 is the host of the call and cannot be removed."
    );
    assert!(custom_ids(&reply).is_empty());
}

#[tokio::test]
async fn a_caller_who_left_before_the_confirmation_is_not_kicked() {
    let h = harness();
    let (yes, _) = confirmation(&h, &paco_key(), moderator()).await;
    // The roster no longer has the call (e.g. it ended and was forgotten).
    let h2 = Harness {
        commands: Commands {
            inner: Arc::new(Inner {
                roster: Roster::new(),
                kicker: h.commands.inner.kicker.clone(),
                policy: h.commands.inner.policy.clone(),
                style: PhoneNumbers::Masked,
                confirm_ttl_ms: 60_000,
                store: h.store.clone(),
                clock: h.clock.clone(),
                pending: h.commands.inner.pending.clone(),
            }),
        },
        ..h
    };
    let reply = now(h2.commands.handle(button(&yes, moderator())).await);
    assert_eq!(content(&reply), "That call has ended; nobody was removed.");
    assert!(h2.kicker.requests.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_kick_limit_stops_a_member_after_n_kicks_a_minute() {
    let access = Access {
        kick_limit_per_minute: 2,
        ..default_access()
    };
    let h = harness_with(seed_roster(), access, false);
    for _ in 0..2 {
        let (yes, _) = confirmation(&h, &paco_key(), moderator()).await;
        assert!(matches!(
            h.commands.handle(button(&yes, moderator())).await,
            Reply::Deferred { .. }
        ));
    }
    let reply = now(h
        .commands
        .handle(command(
            "kick",
            json!([{"name": "caller", "type": 3, "value": paco_key()}]),
            moderator(),
        ))
        .await);
    assert_eq!(
        content(&reply),
        "Too many removals: at most 2 a minute. Try again in 60s."
    );
    let audit = h.store.audit_since(0).await.unwrap();
    assert_eq!(audit.last().unwrap().action, "kick_refused");
    // A minute later it works again.
    h.clock.0.fetch_add(60_000, Ordering::SeqCst);
    confirmation(&h, &paco_key(), moderator()).await;
}

#[tokio::test]
async fn kick_in_local_mode_explains_it_needs_ringcentral() {
    let h = harness_with(seed_roster(), default_access(), true);
    let reply = now(h
        .commands
        .handle(command(
            "kick",
            json!([{"name": "caller", "type": 3, "value": paco_key()}]),
            moderator(),
        ))
        .await);
    assert!(content(&reply).contains("needs RingCentral credentials"));
}

#[tokio::test]
async fn other_guilds_and_dms_are_refused() {
    let h = harness();
    let mut elsewhere = command_json(2, "participants", json!([]), plain_member());
    elsewhere["guild_id"] = json!("99");
    let reply = now(h.commands.handle(interaction(elsewhere)).await);
    assert_eq!(
        content(&reply),
        "ringside's commands only work in the server it is set up for."
    );
    let mut dm = command_json(2, "participants", json!([]), Value::Null);
    dm.as_object_mut().unwrap().remove("member");
    dm.as_object_mut().unwrap().remove("guild_id");
    dm["user"] = plain_member()["user"].clone();
    let reply = now(h.commands.handle(interaction(dm)).await);
    assert_eq!(
        content(&reply),
        "ringside's commands only work inside its server."
    );
}

#[tokio::test]
async fn failed_and_already_gone_outcomes_read_plainly() {
    assert_eq!(
        kick::outcome_text(
            &KickOutcome::Failed {
                reason: "RingCentral refused: insufficient permissions.".into()
            },
            "Paco Vu",
            "Agent 122's call"
        ),
        "RingCentral did not remove Paco Vu: RingCentral refused\\: insufficient permissions."
    );
    assert_eq!(
        kick::outcome_text(&KickOutcome::AlreadyGone, "Paco Vu", "x"),
        "Paco Vu had already left the call."
    );
    assert_eq!(
        kick::outcome_text(&KickOutcome::Host, "Paco Vu", "x"),
        "The host cannot be removed."
    );
}

#[test]
fn definitions_register_guild_only_commands_without_default_permissions() {
    let defs = serde_json::to_value(definitions()).unwrap();
    assert_eq!(defs[0]["name"], "participants");
    assert_eq!(defs[1]["name"], "kick");
    for def in defs.as_array().unwrap() {
        assert_eq!(def["contexts"], json!([0]));
        assert!(
            def.get("default_member_permissions")
                .is_none_or(Value::is_null)
        );
    }
    assert_eq!(defs[1]["options"][0]["required"], true);
    assert_eq!(defs[1]["options"][0]["autocomplete"], true);
    assert_eq!(defs[1]["options"][1]["max_length"], 200);
    assert_eq!(defs[0]["options"][0]["autocomplete"], true);
    assert_eq!(defs[0]["options"][1]["type"], 5);
}

#[test]
fn keys_are_short_and_stable() {
    assert_eq!(paco_key(), paco_key());
    assert_eq!(paco_key().len(), 18);
    assert!(paco_key().starts_with("p:"));
}

#[test]
fn labels_shown_literally_carry_no_markdown_backslashes() {
    let escaped = escape::text("Mary-Jane **x** \\ @here").unwrap();
    assert_eq!(escaped, "Mary\\-Jane \\*\\*x\\*\\* \\\\ @\u{200B}here");
    assert_eq!(plain(&escaped), "Mary-Jane **x** \\ @\u{200B}here");
}

#[tokio::test]
async fn an_alerts_remove_button_refuses_a_member_without_kick_access_and_audits_it() {
    let h = harness();
    let remove = format!("{WATCH_REMOVE}{}", paco_key());
    let reply = now(h.commands.handle(button(&remove, plain_member())).await);
    assert_eq!(content(&reply), "You are not allowed to remove callers.");
    assert!(is_ephemeral(&reply), "only the presser sees it");
    assert!(custom_ids(&reply).is_empty());
    assert_eq!(h.commands.pending_confirmations(), 0);
    assert!(h.kicker.requests.lock().unwrap().is_empty());
    let audit = h.store.audit_since(0).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "kick_refused");
    assert_eq!(audit[0].actor_id, "43");
}

#[tokio::test]
async fn an_alerts_remove_button_asks_the_presser_for_the_kick_confirmation_bound_to_them() {
    let h = harness();
    let remove = format!("{WATCH_REMOVE}{}", paco_key());
    let reply = now(h.commands.handle(button(&remove, moderator())).await);
    assert_eq!(reply["type"], 4, "a new ephemeral message, the alert stays");
    assert!(is_ephemeral(&reply));
    assert!(content(&reply).starts_with("Remove "), "{reply}");
    let ids = custom_ids(&reply);
    assert_eq!(ids.len(), 2, "{reply}");
    assert!(ids[0].starts_with(KICK_YES));
    let other_mod = member(45, &[MOD_ROLE], "0");
    let refused = now(h.commands.handle(button(&ids[0], other_mod)).await);
    assert_eq!(
        content(&refused),
        "Only the member who ran /kick can confirm it."
    );
    assert!(h.kicker.requests.lock().unwrap().is_empty());
    assert!(matches!(
        h.commands.handle(button(&ids[0], moderator())).await,
        Reply::Deferred { .. }
    ));
}
