//! The real app end to end (the README's "Connecting to Discord"): the RingCentral platform fake
//! plays conferences through the webhook, the fake Discord takes the announcements and delivers
//! interactions over both transports — the gateway (`INTERACTION_CREATE`, answered through the
//! callback route) and `POST /discord/interactions` (signed requests, answered in the body).
//!
//! Every test ends by asserting that the fake saw no request that breaks Discord's OpenAPI
//! description or its rate limits (`fake.violations()`). Waits poll with deadlines; nothing
//! asserts on elapsed time.

use crate::support::discord::interactions::{
    self, Member, Signing, autocomplete, button, command, focused_str, opt_str,
};
use crate::support::discord::{CHANNEL_ID, FakeDiscord, FakeOptions, GUILD_ID};
use crate::support::{self, DEADLINE, TestApp, TestConfig, Transport, eventually, start_platform};
use ringside::config::Settings;
use ringside::simulator::platform::{PlatformHandle, PlatformOptions, RequestRecord};
use ringside::simulator::{CallerRef, ConferenceController, LeaveSignal, Person};
use serde_json::{Value, json};
use std::time::Duration;

pub(crate) const SEED: u64 = 0x0d15_c0de;
/// A role `[access] kick_roles` names.
pub(crate) const MOD_ROLE: u64 = 1_100_000_000_000_000_300;
pub(crate) const MOD_ID: u64 = 1_100_000_000_000_000_401;
const OTHER_MOD_ID: u64 = 1_100_000_000_000_000_402;
const MEMBER_ID: u64 = 1_100_000_000_000_000_403;
const OTHER_GUILD: u64 = 1_100_000_000_000_000_999;
/// SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS.
const SILENT_FLAGS: u64 = (1 << 2) | (1 << 12);
/// EPHEMERAL.
pub(crate) const EPHEMERAL: u64 = 1 << 6;

pub(crate) fn host() -> Person {
    Person::with_extension("Agent 122", "122", "62295300122")
}

pub(crate) fn paco() -> Person {
    Person::new("Paco Vu", "+14155550142")
}

pub(crate) fn rhea() -> Person {
    Person::new("Rhea Stone", "+14155550177")
}

pub(crate) fn moderator() -> Member {
    Member::new(MOD_ID, "mod").roles(&[MOD_ROLE])
}

pub(crate) fn other_moderator() -> Member {
    Member::new(OTHER_MOD_ID, "othermod").roles(&[MOD_ROLE])
}

pub(crate) fn plain_member() -> Member {
    Member::new(MEMBER_ID, "someone")
}

/// `<t:1709049892:R>` → `<t>`: Discord timestamps depend on the scripted clock.
pub(crate) fn normalize(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("<t:") {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        match tail.find('>') {
            Some(end) => {
                out.push_str("<t>");
                rest = &tail[end + 1..];
            }
            None => {
                out.push_str(tail);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// An `allowed_mentions` that allows nothing (`parse` empty; `users` and `roles` empty if given).
pub(crate) fn assert_mentions_nothing(allowed: &Value) {
    assert_eq!(allowed["parse"], json!([]), "{allowed}");
    for list in ["users", "roles"] {
        assert!(
            allowed.get(list).is_none_or(|v| v == &json!([])),
            "{allowed}"
        );
    }
    assert!(
        allowed
            .get("replied_user")
            .is_none_or(|v| v == &json!(false))
    );
}

pub(crate) fn assert_no_violations(fake: &FakeDiscord) {
    let violations = fake.violations();
    assert!(
        violations.is_empty(),
        "the fake Discord saw violations: {violations:#?}"
    );
}

/// The platform fake, the fake Discord and ringside against both, subscription active and (in
/// gateway mode) the gateway identified.
pub(crate) struct Env {
    pub(crate) transport: Transport,
    pub(crate) platform: PlatformHandle,
    pub(crate) fake: FakeDiscord,
    pub(crate) app: TestApp,
}

pub(crate) async fn env_with(
    transport: Transport,
    fake_options: FakeOptions,
    configure: impl FnOnce(&mut Settings),
) -> Env {
    let platform = start_platform(PlatformOptions::default()).await;
    let fake = FakeDiscord::start_with(fake_options).await;
    let mut config = TestConfig::new()
        .against(&platform)
        .with_discord(&fake, transport);
    config.settings.access.kick_roles = vec![MOD_ROLE];
    // No periodic session reads while a test plays its conference: a read that lands between a
    // step's state change and its notification stamps the leave with the wall clock, which the
    // simulator's scripted clock runs ahead of, and the durations asserted would change.
    config.settings.ringcentral.reconcile_interval_secs = 30;
    configure(&mut config.settings);
    let app = config.start().await;
    app.wait_subscription_active().await;
    if transport == Transport::Gateway {
        fake.wait_identified(DEADLINE).await;
    }
    // Registered at start; waiting here keeps the order of requests in the tests simple.
    fake.wait_for("the commands registered", DEADLINE, |s| {
        (!s.registered_commands.is_empty()).then_some(())
    })
    .await;
    Env {
        transport,
        platform,
        fake,
        app,
    }
}

pub(crate) async fn env(transport: Transport) -> Env {
    env_with(transport, FakeOptions::default(), |_| {}).await
}

/// The app's answer to one interaction: the response body (`{"type": N, "data": …}`) and the
/// interaction's token (for its follow-up edits).
pub(crate) struct Answer {
    pub(crate) body: Value,
    pub(crate) token: String,
}

impl Answer {
    pub(crate) fn kind(&self) -> u64 {
        self.body["type"].as_u64().expect("a response type")
    }

    pub(crate) fn content(&self) -> String {
        self.body["data"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub(crate) fn flags(&self) -> u64 {
        self.body["data"]["flags"].as_u64().unwrap_or(0)
    }

    /// The custom ids of the buttons in the reply.
    pub(crate) fn custom_ids(&self) -> Vec<String> {
        self.body["data"]["components"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
            .filter_map(|button| button["custom_id"].as_str().map(str::to_owned))
            .collect()
    }

    /// The autocomplete choices: `(name, value)`.
    fn choices(&self) -> Vec<(String, String)> {
        self.body["data"]["choices"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                (
                    c["name"].as_str().unwrap_or_default().to_owned(),
                    c["value"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }
}

impl Env {
    /// Stops ringside gracefully and starts it again on the same store, against the same
    /// platform and Discord fakes; answers once it is subscribed (and, over the gateway,
    /// identified) again.
    pub(crate) async fn restart(self) -> Env {
        let Env {
            platform,
            fake,
            app,
            transport,
        } = self;
        let (config, _) = app.stop().await;
        let app = config.start().await;
        app.wait_subscription_active().await;
        if transport == Transport::Gateway {
            fake.wait_identified(DEADLINE).await;
        }
        Env {
            platform,
            fake,
            app,
            transport,
        }
    }

    /// Delivers `interaction` over this env's transport and answers the app's response.
    pub(crate) async fn interact(&self, interaction: Value) -> Answer {
        let id: u64 = interaction["id"].as_str().unwrap().parse().unwrap();
        let token = interaction["token"].as_str().unwrap().to_owned();
        match self.transport {
            Transport::Gateway => {
                assert_eq!(
                    self.fake.send_interaction(interaction),
                    1,
                    "one gateway connection"
                );
                let callback = self
                    .fake
                    .wait_for("the interaction's callback", DEADLINE, |s| {
                        s.callbacks.iter().find(|c| c.interaction_id == id).cloned()
                    })
                    .await;
                assert_eq!(callback.token, token);
                Answer {
                    body: callback.body,
                    token,
                }
            }
            Transport::Endpoint => {
                // Over HTTP the response body is the callback: Discord knows the original
                // response from then on, so the fake is told before the request goes out (a
                // deferred edit may reach it before this test reads the answer).
                self.fake.with_state(|s| {
                    s.originals.insert(token.clone(), json!({}));
                });
                let response = interactions::post_signed(
                    &self.app.client,
                    &self.app.interactions_url(),
                    &interaction,
                    Signing::default(),
                )
                .await;
                let status = response.status().as_u16();
                let text = response.text().await.unwrap_or_default();
                assert_eq!(status, 200, "the endpoint answered {status}: {text}");
                let body: Value = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("the answer is not JSON ({e}): {text}"));
                assert!(
                    self.fake.callbacks().iter().all(|c| c.interaction_id != id),
                    "an HTTP interaction must not also be answered through the callback route"
                );
                Answer { body, token }
            }
        }
    }

    /// Waits for the edit of the original response of the interaction with `token`.
    pub(crate) async fn wait_edit(&self, token: &str) -> Value {
        self.fake
            .wait_for("the edit of the original response", DEADLINE, |s| {
                s.original_edits
                    .iter()
                    .find(|e| e.token == token)
                    .map(|e| e.body.clone())
            })
            .await
    }

    /// The messages in the announcement channel, timestamps normalized.
    fn channel(&self) -> Vec<String> {
        self.fake
            .contents(CHANNEL_ID)
            .iter()
            .map(|c| normalize(c))
            .collect()
    }

    /// Waits for `count` channel messages; answers them all, normalized.
    async fn wait_channel(&self, count: usize) -> Vec<String> {
        self.fake.wait_messages(CHANNEL_ID, count, DEADLINE).await;
        self.channel()
    }

    /// Waits until a channel message contains `needle`; answers every message so far.
    async fn wait_channel_containing(&self, needle: &str) -> Vec<String> {
        let what = format!("a channel message containing {needle:?}");
        self.fake
            .wait_for(&what, DEADLINE, |s| {
                let list = s.channel_messages(CHANNEL_ID);
                list.iter()
                    .any(|m| m["content"].as_str().is_some_and(|c| c.contains(needle)))
                    .then_some(())
            })
            .await;
        self.channel()
    }

    pub(crate) fn deletes(&self) -> Vec<RequestRecord> {
        self.platform
            .requests()
            .into_iter()
            .filter(|r| r.method == "DELETE")
            .collect()
    }

    /// A started conference with Paco and Rhea merged in and live in the roster, their
    /// announcements sent.
    async fn live_call(&self) -> (ConferenceController, CallerRef, CallerRef) {
        let conference = self.platform.conference(SEED, host());
        conference.start().await;
        conference.advance(Duration::from_secs(20));
        let paco = conference.call_and_merge(paco()).await;
        conference.advance(Duration::from_secs(20));
        let rhea = conference.call_and_merge(rhea()).await;
        self.wait_live(&conference, &[paco, rhea]).await;
        self.wait_channel_containing("Rhea Stone").await;
        (conference, paco, rhea)
    }

    pub(crate) async fn wait_live(&self, conference: &ConferenceController, callers: &[CallerRef]) {
        let ids: Vec<String> = callers
            .iter()
            .map(|c| conference.participant_id(*c))
            .collect();
        let conference_id = conference.conference_id();
        eventually("the callers are live in the roster", DEADLINE, async || {
            let view = self
                .app
                .running
                .roster
                .live()
                .into_iter()
                .find(|v| v.id.as_str() == conference_id)?;
            ids.iter()
                .all(|id| {
                    view.live()
                        .any(|p| p.id.as_str() == id.as_str() && p.identity.name.is_some())
                })
                .then_some(())
        })
        .await;
    }
}

over_both_transports!(
    participants_lists_the_live_callers,
    kick_by_an_allowed_member_removes_the_right_party_and_the_channel_says_who,
    kick_by_a_member_without_access_is_refused_and_nothing_is_deleted,
    the_confirmation_pressed_by_another_member_does_nothing,
    a_caller_named_everyone_pings_nobody,
    an_interaction_from_another_guild_is_refused,
    commands_are_registered_at_start_by_bulk_overwrite,
);

// ----- Announcements ------------------------------------------------------------------------

#[tokio::test]
async fn a_conference_played_through_the_webhook_appears_as_channel_messages() {
    let env = env(Transport::Gateway).await;
    let conference = env.platform.conference(SEED, host());
    conference.start().await;
    env.wait_channel(1).await;
    conference.advance(Duration::from_secs(20));
    let paco = conference.call_and_merge(paco()).await;
    env.wait_channel(2).await;
    conference.advance(Duration::from_secs(20));
    conference.call_and_merge(rhea()).await;
    env.wait_channel(3).await;
    conference.advance(Duration::from_secs(65));
    conference.hang_up(paco, LeaveSignal::Both).await;
    env.wait_channel(4).await;
    conference.advance(Duration::from_secs(30));
    conference.end().await;
    let channel = env.wait_channel_containing("Conference ended").await;
    assert_eq!(
        channel,
        vec![
            "📞 **Conference started** · host Agent 122 · <t>",
            "➕ **Paco Vu** (•••0142) joined · 1 on the call",
            "➕ **Rhea Stone** (•••0177) joined · 2 on the call",
            "➖ **Paco Vu** left after 1m 40s · 1 on the call",
            "➖ **Rhea Stone** left after 1m 35s when the conference ended\n📴 **Conference ended** after 2m 57s · 2 callers · peak 2",
        ]
    );
    let requests = env.fake.message_requests(CHANNEL_ID);
    let mut nonces = Vec::new();
    for body in &requests {
        assert_mentions_nothing(&body["allowed_mentions"]);
        assert_eq!(body["flags"].as_u64(), Some(SILENT_FLAGS), "{body}");
        assert_eq!(body["enforce_nonce"], json!(true), "{body}");
        nonces.push(body["nonce"].to_string());
    }
    nonces.sort();
    nonces.dedup();
    assert_eq!(nonces.len(), requests.len(), "one nonce per message");
    assert_no_violations(&env.fake);
}

#[tokio::test]
async fn forty_joins_within_two_seconds_take_at_most_eight_messages_under_discords_bucket() {
    // Default announcing (no extra coalescing wait, the roster card on) against Discord's own
    // per-channel bucket.
    let env = env_with(
        Transport::Gateway,
        FakeOptions::default().with_discord_channel_bucket(),
        |s| {
            s.announce.coalesce_ms = 0;
            s.announce.roster_card = true;
        },
    )
    .await;
    let conference = env.platform.conference(SEED, host());
    conference.start().await;
    env.wait_channel(1).await;
    let names: Vec<String> = (1..=40).map(|n| format!("Caller {n:02}")).collect();
    // Ten waves of four, a wave every 180 ms: the joins arrive over most of two seconds. The
    // start and the first joins take the bucket's five messages at once; the rest wait
    // together for it to open again.
    let began = std::time::Instant::now();
    for (wave, chunk) in names.chunks(4).enumerate() {
        if wave > 0 {
            tokio::time::sleep(Duration::from_millis(180)).await;
        }
        let joins = chunk.iter().enumerate().map(|(i, name)| {
            let conference = conference.clone();
            let number = format!("+1415555{:04}", 2000 + wave * 4 + i);
            let person = Person::new(name.clone(), number);
            async move { conference.call_and_merge(person).await }
        });
        futures_util::future::join_all(joins).await;
    }
    let burst = began.elapsed();
    let channel = env
        .fake
        .wait_for("every join announced", 2 * DEADLINE, |s| {
            // The roster card is an extra message: the lines count as without it.
            let contents: Vec<String> = s
                .channel_messages(CHANNEL_ID)
                .iter()
                .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
                .filter(|c| !c.starts_with("📋 "))
                .collect();
            let joined = contents
                .iter()
                .map(|c| c.matches(" joined · ").count())
                .sum::<usize>();
            (joined >= 40).then_some(contents)
        })
        .await;
    let join_messages = &channel[1..];
    let limited = env
        .fake
        .requests()
        .iter()
        .filter(|r| r.status == 429)
        .count();
    println!(
        "40 joins posted over {burst:?} under Discord's channel bucket: {} messages, {limited} 429s",
        join_messages.len()
    );
    assert!(
        join_messages.len() <= 8,
        "40 joins delivered in {burst:?} took {} messages: {join_messages:#?}",
        join_messages.len()
    );
    let all = join_messages.join("\n");
    for name in &names {
        assert_eq!(
            all.matches(&format!("**{name}**")).count(),
            1,
            "{name} is announced exactly once: {join_messages:#?}"
        );
    }
    assert_eq!(all.matches(" joined · ").count(), 40, "{join_messages:#?}");
    assert!(
        join_messages.iter().all(|m| m.chars().count() <= 2000),
        "within Discord's limit"
    );
    assert_eq!(
        limited, 0,
        "the bucket's headers were heeded: no 429 was needed"
    );
    // The card settles on the whole burst, within the edit bucket too, with nothing lost.
    let card = env
        .fake
        .wait_for("the card showing all 40", 2 * DEADLINE, |s| {
            s.channel_messages(CHANNEL_ID).iter().find_map(|m| {
                let id: u64 = m["id"].as_str()?.parse().ok()?;
                let content = m["content"].as_str()?;
                (content.starts_with("📋 ") && content.contains("**40 on the call**")).then_some(id)
            })
        })
        .await;
    let edits = env.fake.edits(CHANNEL_ID, card);
    println!("the card took {} edits for the burst", edits.len());
    assert!(
        edits.len() <= 6,
        "edits settle on the burst instead of following each join: {}",
        edits.len()
    );
    assert!(
        env.fake.requests().iter().all(|r| r.status != 429),
        "no 429 for the card either"
    );
    assert_no_violations(&env.fake);
}

#[tokio::test]
async fn rate_limits_are_waited_out_with_nothing_lost_or_doubled() {
    let env = env(Transport::Gateway).await;
    // Two 429s in a row for the first message, and one more later.
    env.fake.rate_limit_next(2, 0.4);
    let conference = env.platform.conference(SEED, host());
    conference.start().await;
    env.wait_channel(1).await;
    env.fake.rate_limit_next(1, 0.3);
    conference.advance(Duration::from_secs(20));
    let paco = conference.call_and_merge(paco()).await;
    env.wait_channel(2).await;
    conference.advance(Duration::from_secs(20));
    conference.hang_up(paco, LeaveSignal::Both).await;
    let channel = env.wait_channel(3).await;
    assert_eq!(
        channel,
        vec![
            "📞 **Conference started** · host Agent 122 · <t>",
            "➕ **Paco Vu** (•••0142) joined · 1 on the call",
            "➖ **Paco Vu** left after 20s · 0 on the call",
        ]
    );
    let limited = env
        .fake
        .requests()
        .iter()
        .filter(|r| r.status == 429)
        .count();
    assert_eq!(limited, 3, "every injected 429 was met");
    // Nothing sent twice: three messages created, each from its own request body.
    let requests = env.fake.message_requests(CHANNEL_ID);
    assert_eq!(requests.len(), 3);
    // The same body and nonce were sent again after each 429 (a retry, not a new message).
    let posts: Vec<_> = env
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == format!("/channels/{CHANNEL_ID}/messages"))
        .collect();
    assert_eq!(posts.len(), 6, "3 messages + 3 retries");
    assert_eq!(posts[0].body, posts[2].body);
    assert_eq!(posts[3].body, posts[4].body);
    env.app.settle().await;
    assert_eq!(env.fake.contents(CHANNEL_ID).len(), 3, "nothing doubled");
    assert_no_violations(&env.fake);
}

#[tokio::test]
async fn a_parked_message_does_not_block_later_ones() {
    let env = env(Transport::Gateway).await;
    env.fake
        .refuse_next_message_containing("Paco Vu", 403, 50001);
    let conference = env.platform.conference(SEED, host());
    conference.start().await;
    env.wait_channel(1).await;
    conference.advance(Duration::from_secs(20));
    conference.call_and_merge(paco()).await;
    env.fake
        .wait_for("Paco's join refused", DEADLINE, |s| {
            s.requests.iter().any(|r| r.status == 403).then_some(())
        })
        .await;
    conference.advance(Duration::from_secs(20));
    conference.call_and_merge(rhea()).await;
    let channel = env.wait_channel(2).await;
    assert_eq!(
        channel,
        vec![
            "📞 **Conference started** · host Agent 122 · <t>",
            "➕ **Rhea Stone** (•••0177) joined · 2 on the call",
        ]
    );
    let parked = env
        .app
        .running
        .store
        .parked_batches(10)
        .await
        .expect("parked batches");
    assert_eq!(parked.len(), 1, "{parked:#?}");
    assert!(
        parked[0].body.to_string().contains("Paco Vu"),
        "{parked:#?}"
    );
    assert_no_violations(&env.fake);
}

// ----- Commands, over both transports -------------------------------------------------------

async fn participants_lists_the_live_callers(transport: Transport) {
    let env = env(transport).await;
    let empty = env
        .interact(command("participants", json!([]), &plain_member()))
        .await;
    assert_eq!(empty.kind(), 4);
    assert_eq!(empty.content(), "Nobody is on a conference call right now.");

    let (conference, paco, _rhea) = env.live_call().await;
    let listed = env
        .interact(command("participants", json!([]), &plain_member()))
        .await;
    assert_eq!(listed.kind(), 4, "{}", listed.body);
    assert_eq!(
        listed.flags() & EPHEMERAL,
        EPHEMERAL,
        "ephemeral by default"
    );
    assert_mentions_nothing(&listed.body["data"]["allowed_mentions"]);
    assert_eq!(
        normalize(&listed.content()),
        "Conference hosted by **Agent 122** (•••122), started <t> — 2 callers\n\
         • Paco Vu (•••0142), joined <t>\n\
         • Rhea Stone (•••0177), joined <t>"
    );

    conference.advance(Duration::from_secs(30));
    conference.hang_up(paco, LeaveSignal::Both).await;
    env.wait_channel_containing("Paco Vu** left").await;
    let public = env
        .interact(command(
            "participants",
            json!([interactions::opt_bool("public", true)]),
            &plain_member(),
        ))
        .await;
    assert_eq!(
        public.flags() & EPHEMERAL,
        0,
        "public: true is for everyone"
    );
    assert_eq!(
        normalize(&public.content()),
        "Conference hosted by **Agent 122** (•••122), started <t> — 1 caller\n\
         • Rhea Stone (•••0177), joined <t>"
    );
    assert_no_violations(&env.fake);
}

/// Runs `/kick` as `member` on the caller picked from autocomplete (typed `typed`) and answers
/// the confirmation.
async fn kick_confirmation(env: &Env, member: &Member, typed: &str, reason: &str) -> Answer {
    let suggested = env
        .interact(autocomplete(
            "kick",
            json!([focused_str("caller", typed)]),
            member,
        ))
        .await;
    assert_eq!(suggested.kind(), 8, "{}", suggested.body);
    let choices = suggested.choices();
    assert_eq!(choices.len(), 1, "{choices:?}");
    assert_eq!(choices[0].0, "Paco Vu (•••0142) · Agent 122's call");
    let key = choices[0].1.clone();
    assert!(key.starts_with("p:") && key.len() <= 100, "{key}");
    env.interact(command(
        "kick",
        json!([opt_str("caller", &key), opt_str("reason", reason)]),
        member,
    ))
    .await
}

/// The Message a confirmation's buttons sit on, as Discord sends it with a button click.
impl Env {
    /// `member` presses the button `custom_id` on `confirmation`'s message.
    pub(crate) async fn press(
        &self,
        confirmation: &Answer,
        custom_id: &str,
        member: &Member,
    ) -> Answer {
        self.interact(button(
            custom_id,
            member,
            confirmation_message(confirmation),
        ))
        .await
    }
}

fn confirmation_message(confirmation: &Answer) -> Value {
    interactions::message(
        1_200_000_000_000_000_777,
        &confirmation.content(),
        confirmation.body["data"]["components"].clone(),
    )
}

async fn kick_by_an_allowed_member_removes_the_right_party_and_the_channel_says_who(
    transport: Transport,
) {
    let env = env(transport).await;
    let (conference, paco, rhea) = env.live_call().await;
    let confirmation = kick_confirmation(&env, &moderator(), "pa", "not on the guest list").await;
    assert_eq!(confirmation.kind(), 4, "{}", confirmation.body);
    assert_eq!(confirmation.flags() & EPHEMERAL, EPHEMERAL);
    assert_eq!(
        normalize(&confirmation.content()),
        "Remove **Paco Vu** (•••0142) from Agent 122's call?\nReason: not on the guest list\nThis expires <t>."
    );
    let ids = confirmation.custom_ids();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids[0].starts_with("kick:yes:") && ids[1].starts_with("kick:no:"));
    assert!(
        env.deletes().is_empty(),
        "nothing removed before the button"
    );

    let pressed = env.press(&confirmation, &ids[0], &moderator()).await;
    assert_eq!(
        pressed.kind(),
        7,
        "the confirmation is updated: {}",
        pressed.body
    );
    assert_eq!(pressed.content(), "Removing Paco Vu…");
    let edit = env.wait_edit(&pressed.token).await;
    assert_eq!(edit["content"], "Removed Paco Vu from Agent 122's call.");
    assert_mentions_nothing(&edit["allowed_mentions"]);

    let deletes = env.deletes();
    assert_eq!(deletes.len(), 1, "one DELETE: {deletes:#?}");
    let party = conference.participant_id(paco);
    assert!(
        deletes[0].path.ends_with(&format!(
            "/telephony/sessions/{}/parties/{party}",
            conference.conference_id()
        )),
        "Paco's conference party: {}",
        deletes[0].path
    );
    assert!(!conference.is_present(paco));
    assert!(conference.is_present(rhea), "Rhea stays on");
    let channel = env.wait_channel_containing("was removed").await;
    let removal: Vec<&String> = channel.iter().filter(|m| m.contains("removed")).collect();
    assert_eq!(removal.len(), 1, "{channel:#?}");
    // How long Paco stayed depends on which told ringside first: the notification (scripted
    // clock) or the session read the kick asks for at once (ringside's clock, behind it).
    let (before, after) = removal[0]
        .split_once(" after ")
        .unwrap_or_else(|| panic!("a duration: {}", removal[0]));
    assert_eq!(before, format!("🚫 **Paco Vu** was removed by <@{MOD_ID}>"));
    assert!(
        after.ends_with("s — not on the guest list · 1 on the call"),
        "{}",
        removal[0]
    );
    let audit = env.app.running.store.audit_since(0).await.expect("audit");
    let kicks: Vec<_> = audit.iter().filter(|e| e.action == "kick").collect();
    assert_eq!(kicks.len(), 1, "{audit:#?}");
    assert_eq!(kicks[0].actor_id, MOD_ID.to_string());
    assert_eq!(kicks[0].participant_id.as_deref(), Some(party.as_str()));
    assert_no_violations(&env.fake);
}

async fn kick_by_a_member_without_access_is_refused_and_nothing_is_deleted(transport: Transport) {
    let env = env(transport).await;
    let (conference, paco, rhea) = env.live_call().await;
    let suggested = env
        .interact(autocomplete(
            "kick",
            json!([focused_str("caller", "")]),
            &plain_member(),
        ))
        .await;
    assert_eq!(suggested.kind(), 8);
    assert!(
        suggested.choices().is_empty(),
        "no callers offered to a member who may not kick: {}",
        suggested.body
    );
    let refused = env
        .interact(command(
            "kick",
            json!([opt_str("caller", "Paco Vu")]),
            &plain_member(),
        ))
        .await;
    assert_eq!(refused.kind(), 4, "{}", refused.body);
    assert_eq!(refused.flags() & EPHEMERAL, EPHEMERAL);
    assert!(
        refused.custom_ids().is_empty(),
        "no confirmation: {}",
        refused.body
    );
    assert_eq!(refused.content(), "You are not allowed to remove callers.");
    env.app.settle().await;
    assert!(env.deletes().is_empty(), "nothing deleted");
    assert!(conference.is_present(paco) && conference.is_present(rhea));
    let audit = env.app.running.store.audit_since(0).await.expect("audit");
    assert_eq!(audit.len(), 1, "{audit:#?}");
    assert_eq!(audit[0].action, "kick_refused");
    assert_eq!(audit[0].actor_id, MEMBER_ID.to_string());
    assert!(
        !env.channel().iter().any(|m| m.contains("removed")),
        "{:#?}",
        env.channel()
    );
    assert_no_violations(&env.fake);
}

async fn the_confirmation_pressed_by_another_member_does_nothing(transport: Transport) {
    let env = env(transport).await;
    let (conference, paco, _rhea) = env.live_call().await;
    let confirmation = kick_confirmation(&env, &moderator(), "Paco", "").await;
    let ids = confirmation.custom_ids();
    assert_eq!(ids.len(), 2, "{}", confirmation.body);

    let stranger = env.press(&confirmation, &ids[0], &other_moderator()).await;
    assert_eq!(
        stranger.kind(),
        4,
        "a reply of its own, not an update: {}",
        stranger.body
    );
    assert_eq!(stranger.flags() & EPHEMERAL, EPHEMERAL);
    assert_eq!(
        stranger.content(),
        "Only the member who ran /kick can confirm it."
    );
    let stranger_cancel = env.press(&confirmation, &ids[1], &plain_member()).await;
    assert_eq!(
        stranger_cancel.content(),
        "Only the member who ran /kick can confirm it."
    );
    env.app.settle().await;
    assert!(env.deletes().is_empty(), "nothing deleted");
    assert!(conference.is_present(paco));

    // The confirmation is still the invoker's to use.
    let own = env.press(&confirmation, &ids[1], &moderator()).await;
    assert_eq!(own.kind(), 7, "{}", own.body);
    assert_eq!(own.content(), "Cancelled; nobody was removed.");
    env.app.settle().await;
    assert!(env.deletes().is_empty(), "cancelled: nothing deleted");
    assert!(conference.is_present(paco));
    assert!(
        !env.channel().iter().any(|m| m.contains("removed")),
        "{:#?}",
        env.channel()
    );
    assert_no_violations(&env.fake);
}

async fn a_caller_named_everyone_pings_nobody(transport: Transport) {
    let env = env(transport).await;
    let conference = env.platform.conference(SEED, host());
    conference.start().await;
    conference.advance(Duration::from_secs(20));
    let everyone = conference
        .call_and_merge(Person::new("@everyone", "+14155550199"))
        .await;
    env.wait_live(&conference, &[everyone]).await;
    let channel = env.wait_channel_containing("joined").await;
    let join = channel
        .iter()
        .flat_map(|m| m.lines())
        .find(|line| line.contains("joined"))
        .expect("the join");
    assert_eq!(
        join,
        "➕ **@\u{200B}everyone** (•••0199) joined · 1 on the call"
    );
    for body in env.fake.message_requests(CHANNEL_ID) {
        assert_mentions_nothing(&body["allowed_mentions"]);
        assert!(!body["content"].as_str().unwrap().contains("@everyone"));
    }
    for message in env.fake.messages(CHANNEL_ID) {
        assert_eq!(message["mention_everyone"], json!(false));
    }

    let listed = env
        .interact(command("participants", json!([]), &plain_member()))
        .await;
    assert_mentions_nothing(&listed.body["data"]["allowed_mentions"]);
    assert!(
        listed.content().contains("• @\u{200B}everyone (•••0199)"),
        "{}",
        listed.content()
    );
    assert!(!listed.content().contains("@everyone"));
    assert_no_violations(&env.fake);
}

async fn an_interaction_from_another_guild_is_refused(transport: Transport) {
    let env = env(transport).await;
    let (conference, paco, _rhea) = env.live_call().await;
    let outsider = Member::new(MOD_ID, "mod")
        .roles(&[MOD_ROLE])
        .admin()
        .guild(OTHER_GUILD);
    let listed = env
        .interact(command("participants", json!([]), &outsider))
        .await;
    assert_eq!(listed.kind(), 4, "{}", listed.body);
    assert_eq!(listed.flags() & EPHEMERAL, EPHEMERAL);
    assert_eq!(
        listed.content(),
        "ringside's commands only work in the server it is set up for."
    );
    let suggested = env
        .interact(autocomplete(
            "kick",
            json!([focused_str("caller", "")]),
            &outsider,
        ))
        .await;
    assert!(suggested.choices().is_empty(), "{}", suggested.body);
    let kicked = env
        .interact(command(
            "kick",
            json!([opt_str("caller", "Paco Vu")]),
            &outsider,
        ))
        .await;
    assert!(kicked.custom_ids().is_empty(), "{}", kicked.body);
    assert_eq!(
        kicked.content(),
        "ringside's commands only work in the server it is set up for."
    );
    env.app.settle().await;
    assert!(env.deletes().is_empty());
    assert!(conference.is_present(paco));
    assert_no_violations(&env.fake);
}

async fn commands_are_registered_at_start_by_bulk_overwrite(transport: Transport) {
    let env = env(transport).await;
    let puts: Vec<_> = env
        .fake
        .requests()
        .into_iter()
        .filter(|r| {
            r.template
                .as_deref()
                .is_some_and(|t| t.ends_with("/commands"))
        })
        .collect();
    assert_eq!(puts.len(), 1, "one bulk overwrite: {puts:#?}");
    assert_eq!(puts[0].method, "PUT");
    assert_eq!(
        puts[0].path,
        format!(
            "/applications/{}/guilds/{GUILD_ID}/commands",
            support::discord::APPLICATION_ID
        )
    );
    let body = puts[0].body.as_array().expect("a list of commands").clone();
    let names: Vec<&str> = body.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["participants", "kick"]);
    let kick = &body[1];
    assert!(
        kick.get("default_member_permissions")
            .is_none_or(Value::is_null),
        "/kick is registered without default_member_permissions: {kick}"
    );
    let caller = &kick["options"][0];
    assert_eq!(caller["name"], "caller");
    assert_eq!(caller["required"], json!(true));
    assert_eq!(caller["autocomplete"], json!(true));
    assert_eq!(env.fake.registered_commands().len(), 2);
    // A command the app registered is one it answers.
    let answer = env
        .interact(command("participants", json!([]), &plain_member()))
        .await;
    assert_eq!(answer.kind(), 4);
    // Ready in either mode (the endpoint has no connection to report).
    let ready = eventually("ready", DEADLINE, async || {
        let (status, body) = env.app.readyz().await;
        (status == 200).then_some(body)
    })
    .await;
    assert_eq!(ready, "ready\n");
    assert_no_violations(&env.fake);
}

// ----- The HTTP endpoint's own checks -------------------------------------------------------

/// An endpoint-mode app with RingCentral in local mode (the checks need no conference).
async fn endpoint_app(fake: &FakeDiscord) -> TestApp {
    TestConfig::new()
        .with_discord(fake, Transport::Endpoint)
        .start()
        .await
}

#[tokio::test]
async fn ping_gets_pong() {
    let fake = FakeDiscord::start().await;
    let app = endpoint_app(&fake).await;
    let response = interactions::post_signed(
        &app.client,
        &app.interactions_url(),
        &interactions::ping(),
        Signing::default(),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body, json!({"type": 1}));
    assert!(fake.callbacks().is_empty());
    app.stop().await;
    assert_no_violations(&fake);
}

#[tokio::test]
async fn a_bad_signature_gets_401_and_is_not_handled() {
    let fake = FakeDiscord::start().await;
    let app = endpoint_app(&fake).await;
    let cases = [
        (
            "signed with another key",
            Signing {
                wrong_key: true,
                ..Signing::default()
            },
        ),
        (
            "a body other than the one signed",
            Signing {
                tampered_body: true,
                ..Signing::default()
            },
        ),
        (
            "unsigned",
            Signing {
                unsigned: true,
                ..Signing::default()
            },
        ),
    ];
    for (what, how) in cases {
        for interaction in [
            interactions::ping(),
            command("participants", json!([]), &plain_member()),
        ] {
            let response =
                interactions::post_signed(&app.client, &app.interactions_url(), &interaction, how)
                    .await;
            assert_eq!(response.status(), 401, "{what}");
            let text = response.text().await.unwrap();
            support::assert_one_line(&text);
            assert!(
                !text.contains("\"type\""),
                "{what}: no interaction answer: {text}"
            );
        }
    }
    let audit = app.running.store.audit_since(0).await.expect("audit");
    assert!(audit.is_empty(), "nothing handled: {audit:#?}");
    app.stop().await;
    assert!(fake.callbacks().is_empty());
    assert!(fake.original_edits().is_empty());
    assert_no_violations(&fake);
}

#[tokio::test]
async fn a_stale_timestamp_gets_401() {
    let fake = FakeDiscord::start().await;
    let app = endpoint_app(&fake).await;
    for age_secs in [301, 3600] {
        let response = interactions::post_signed(
            &app.client,
            &app.interactions_url(),
            &interactions::ping(),
            Signing {
                age_secs,
                ..Signing::default()
            },
        )
        .await;
        assert_eq!(response.status(), 401, "{age_secs} s old");
        support::assert_one_line(&response.text().await.unwrap());
    }
    // Within the window it is answered.
    let fresh = interactions::post_signed(
        &app.client,
        &app.interactions_url(),
        &interactions::ping(),
        Signing {
            age_secs: 60,
            ..Signing::default()
        },
    )
    .await;
    assert_eq!(fresh.status(), 200);
    app.stop().await;
    assert_no_violations(&fake);
}

// ----- /readyz ------------------------------------------------------------------------------

#[tokio::test]
async fn readyz_follows_the_gateway_connection() {
    let env = env(Transport::Gateway).await;
    let ready = eventually("ready once the gateway is up", DEADLINE, async || {
        let (status, body) = env.app.readyz().await;
        (status == 200).then_some(body)
    })
    .await;
    assert_eq!(ready, "ready\n");

    // The fake closes the connection ("unknown error"): not ready until serenity is back.
    assert_eq!(env.fake.disconnect_gateway(4000), 1);
    let body = eventually("not ready while reconnecting", DEADLINE, async || {
        let (status, body) = env.app.readyz().await;
        (status == 503).then_some(body)
    })
    .await;
    assert_eq!(body, "not ready: Discord gateway not connected\n");
    eventually("ready again after reconnecting", DEADLINE, async || {
        let (status, _) = env.app.readyz().await;
        (status == 200 && env.fake.gateway_connections() == 1).then_some(())
    })
    .await;
    assert_eq!(env.fake.identifies().len(), 2, "identified again");
    let answer = env
        .interact(command("participants", json!([]), &plain_member()))
        .await;
    assert_eq!(
        answer.content(),
        "Nobody is on a conference call right now."
    );
    assert_no_violations(&env.fake);

    let Env {
        fake,
        app,
        platform,
        ..
    } = env;
    // Discord goes away: the gateway connection drops and cannot come back.
    drop(fake);
    let (status, body) = eventually("not ready once the gateway is gone", DEADLINE, async || {
        let (status, body) = app.readyz().await;
        (status == 503).then_some((status, body))
    })
    .await;
    assert_eq!(status, 503);
    assert_eq!(body, "not ready: Discord gateway not connected\n");
    drop(platform);
}

#[tokio::test]
async fn readyz_names_discord_before_the_gateway_is_ready() {
    // A Discord that accepts connections and never answers: the gateway never gets READY.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            open.push(stream);
        }
    });
    let platform = start_platform(PlatformOptions::default()).await;
    let fake = FakeDiscord::start().await;
    let mut config = TestConfig::new()
        .against(&platform)
        .with_discord(&fake, Transport::Gateway);
    config.settings.discord.api_url = silent_url;
    let app = config.start().await;
    app.wait_subscription_active().await;
    for _ in 0..3 {
        let (status, body) = app.readyz().await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body, "not ready: Discord gateway not connected\n");
    }
    held.abort();
    assert!(
        fake.requests().is_empty(),
        "everything went to the silent Discord"
    );
    assert_no_violations(&fake);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_during_a_kick_still_answers_the_moderator_truthfully() {
    let env = env(Transport::Endpoint).await;
    let (conference, paco, _rhea) = env.live_call().await;
    // RingCentral takes its time answering the DELETE, so the kick is still under way when the
    // stop begins.
    env.platform.delay_kick_answers(Duration::from_millis(1500));
    let confirmation = kick_confirmation(&env, &moderator(), "pa", "not on the guest list").await;
    let ids = confirmation.custom_ids();
    let pressed = env.press(&confirmation, &ids[0], &moderator()).await;
    assert_eq!(pressed.content(), "Removing Paco Vu…");
    eventually("the DELETE reaches RingCentral", DEADLINE, async || {
        (!env.deletes().is_empty()).then_some(())
    })
    .await;
    // Stop while RingCentral has not answered yet.
    let Env { app, fake, .. } = env;
    app.stop().await;
    let edits = fake.original_edits();
    let edit = edits
        .iter()
        .find(|e| e.token == pressed.token)
        .unwrap_or_else(|| panic!("the kick's reply was not edited before the stop: {edits:#?}"));
    // Whether the kick got in before the stop or was turned away by it, the moderator is told,
    // and what they are told is what happened.
    match edit.body["content"].as_str().unwrap_or_default() {
        "Removed Paco Vu from Agent 122's call." => assert!(!conference.is_present(paco)),
        "RingCentral did not remove Paco Vu: ringside is shutting down." => {
            assert!(conference.is_present(paco))
        }
        other => panic!("unexpected reply: {other}"),
    }
    assert_no_violations(&fake);
}
