//! The roster card and the timeline picture end to end (the README's "The channel at a
//! glance"): the platform fake plays conferences, ringside posts one card per conference and
//! edits it in place, and the fake Discord validates every request — the multipart uploads of
//! the picture included — against Discord's OpenAPI description.
//!
//! The cards settle for `announce.roster_edit_ms = 300` here (the fastest accepted), so each
//! test waits for the card's edit after each step of its call. Waits poll with deadlines; nothing
//! asserts on elapsed time.

use crate::discord::{
    Env, SEED, assert_mentions_nothing, assert_no_violations, env_with, host, normalize, paco, rhea,
};
use crate::support::discord::{Attachment, CHANNEL_ID, FakeOptions};
use crate::support::{DEADLINE, Transport};
use ringside::config::Settings;
use ringside::simulator::{ConferenceController, LeaveSignal};
use serde_json::Value;
use std::time::Duration;

/// How a card begins; the lines never do.
const CARD: &str = "📋 ";

fn cards(settings: &mut Settings) {
    settings.announce.roster_card = true;
    settings.announce.roster_edit_ms = 300;
}

async fn cards_env(configure: impl FnOnce(&mut Settings)) -> Env {
    env_with(Transport::Gateway, FakeOptions::default(), |s| {
        cards(s);
        configure(s);
    })
    .await
}

/// The channel's roster cards: message id and content now.
fn cards_in_channel(env: &Env) -> Vec<(u64, String)> {
    env.fake
        .messages(CHANNEL_ID)
        .iter()
        .filter_map(|m| {
            let content = m["content"].as_str()?;
            let id = m["id"].as_str()?.parse().ok()?;
            content.starts_with(CARD).then(|| (id, content.to_owned()))
        })
        .collect()
}

/// The channel's messages that are not cards (the lines), normalized.
fn lines_in_channel(env: &Env) -> Vec<String> {
    env.fake
        .contents(CHANNEL_ID)
        .iter()
        .filter(|c| !c.starts_with(CARD))
        .map(|c| normalize(c))
        .collect()
}

/// Waits for the one card of the channel and answers its id.
async fn wait_card(env: &Env) -> u64 {
    env.fake
        .wait_for("the roster card", DEADLINE, |s| {
            s.channel_messages(CHANNEL_ID).iter().find_map(|m| {
                m["content"]
                    .as_str()
                    .is_some_and(|c| c.starts_with(CARD))
                    .then(|| m["id"].as_str()?.parse().ok())
                    .flatten()
            })
        })
        .await
}

/// Waits until the card's latest edit satisfies `done`; answers every edit so far.
async fn wait_edit(env: &Env, card: u64, what: &str, done: impl Fn(&str) -> bool) -> Vec<Value> {
    let what = format!("the card edited: {what}");
    env.fake
        .wait_for(&what, DEADLINE, |s| {
            let message = s.messages.get(&CHANNEL_ID)?.iter().find(|m| m.id == card)?;
            let last = message.edits.last()?;
            done(last["content"].as_str()?).then(|| message.edits.clone())
        })
        .await
}

/// A conference with its card posted and edited to show Paco on the call.
async fn card_with_paco(configure: impl FnOnce(&mut Settings)) -> (Env, ConferenceController, u64) {
    let env = cards_env(configure).await;
    let conference = env.platform.conference(SEED, host());
    conference.start().await;
    let card = wait_card(&env).await;
    conference.advance(Duration::from_secs(20));
    conference.call_and_merge(paco()).await;
    wait_edit(&env, card, "Paco on the call", |c| c.contains("Paco Vu")).await;
    (env, conference, card)
}

/// An edit's content, timestamps and durations normalized (the platform fake's clock moves with
/// the test's waits as well as its script).
fn content(edit: &Value) -> String {
    let text = normalize(edit["content"].as_str().unwrap_or_default());
    text.lines()
        .map(|line| {
            let line = match line.split_once(" · lasted ") {
                Some((head, _)) => format!("{head} · lasted <d>"),
                None => line.to_owned(),
            };
            match (line.rfind(" ("), line.ends_with(')')) {
                (Some(open), true) if line.starts_with('•') && line.contains('–') => {
                    format!("{} (<d>)", &line[..open])
                }
                _ => line,
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Decodes a PNG the fake received; answers its size.
fn decode(attachment: &Attachment) -> (u32, u32) {
    let decoder = png::Decoder::new(std::io::Cursor::new(attachment.bytes.as_slice()));
    let mut reader = decoder.read_info().expect("a PNG header");
    let mut pixels = vec![0; reader.output_buffer_size().expect("a size")];
    let info = reader.next_frame(&mut pixels).expect("the PNG decodes");
    assert_eq!(info.color_type, png::ColorType::Rgba);
    (info.width, info.height)
}

#[tokio::test]
async fn the_card_follows_the_roster_after_each_event_and_ends_as_the_calls_record() {
    let env = cards_env(|_| {}).await;
    let conference = env.platform.conference(SEED, host());
    conference.start().await;
    let card = wait_card(&env).await;
    let posted = env
        .fake
        .message_requests(CHANNEL_ID)
        .into_iter()
        .find(|r| r["content"].as_str().is_some_and(|c| c.starts_with(CARD)))
        .expect("the card's creation");
    assert_eq!(
        normalize(posted["content"].as_str().unwrap()),
        "📋 **Conference** · host Agent 122 · started <t>\n**0 on the call**",
        "posted naming no caller"
    );
    assert_mentions_nothing(&posted["allowed_mentions"]);
    assert!(posted["nonce"].is_string() && posted["enforce_nonce"] == Value::Bool(true));

    conference.advance(Duration::from_secs(20));
    let paco = conference.call_and_merge(paco()).await;
    wait_edit(&env, card, "Paco on the call", |c| c.contains("Paco Vu")).await;
    conference.advance(Duration::from_secs(20));
    conference.call_and_merge(rhea()).await;
    wait_edit(&env, card, "Rhea on the call", |c| c.contains("Rhea Stone")).await;
    conference.advance(Duration::from_secs(30));
    conference.hang_up(paco, LeaveSignal::Both).await;
    wait_edit(&env, card, "Paco gone", |c| !c.contains("Paco Vu")).await;
    conference.advance(Duration::from_secs(60));
    conference.end().await;
    let edits = wait_edit(&env, card, "the record", |c| c.contains("Conference ended")).await;

    for edit in &edits {
        println!(
            "the card, edited:\n{}\n",
            edit["content"].as_str().unwrap_or_default()
        );
    }
    let states: Vec<String> = edits.iter().map(content).collect();
    assert_eq!(
        states,
        vec![
            "📋 **Conference** · host Agent 122 · started <t>\n**1 on the call** · peak 1\n\
             • **Paco Vu** (•••0142) · joined <t>",
            "📋 **Conference** · host Agent 122 · started <t>\n**2 on the call** · peak 2\n\
             • **Paco Vu** (•••0142) · joined <t>\n• **Rhea Stone** (•••0177) · joined <t>",
            "📋 **Conference** · host Agent 122 · started <t>\n**1 on the call** · peak 2\n\
             • **Rhea Stone** (•••0177) · joined <t>",
            "📋 **Conference ended** · host Agent 122 · started <t> · lasted <d>\n\
             **2 callers** · peak 2\n\
             • **Paco Vu** (•••0142) · <t>–<t> (<d>)\n\
             • **Rhea Stone** (•••0177) · <t>–<t> (<d>)",
        ],
        "one edit per settled change, each the roster after it"
    );
    for edit in &edits {
        assert_mentions_nothing(&edit["allowed_mentions"]);
    }
    assert_eq!(cards_in_channel(&env).len(), 1, "one card per conference");
    // The lines are as they were: the card named nobody in a posted message.
    let lines = lines_in_channel(&env).join("\n");
    assert_eq!(lines.matches("**Paco Vu** (•••0142) joined").count(), 1);
    assert_no_violations(&env.fake);
}

#[tokio::test]
async fn after_a_restart_the_same_card_is_edited() {
    let (env, conference, card) = card_with_paco(|_| {}).await;

    let env = env.restart().await;
    conference.advance(Duration::from_secs(20));
    conference.call_and_merge(rhea()).await;
    wait_edit(&env, card, "Rhea on the same card", |c| {
        c.contains("Rhea Stone") && c.contains("Paco Vu")
    })
    .await;
    let ids: Vec<u64> = cards_in_channel(&env).iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, vec![card], "no second card after the restart");
    let card_posts = env
        .fake
        .requests()
        .iter()
        .filter(|r| {
            r.method == "POST"
                && r.body["content"]
                    .as_str()
                    .is_some_and(|c| c.starts_with(CARD))
        })
        .count();
    assert_eq!(card_posts, 1, "the card was posted once");
    assert_no_violations(&env.fake);
}

#[tokio::test]
async fn a_deleted_card_is_replaced_once_and_never_edited_in_a_loop() {
    let (env, conference, first) = card_with_paco(|_| {}).await;

    // A moderator deletes the card in their Discord client.
    assert!(env.fake.delete_message(CHANNEL_ID, first));
    conference.advance(Duration::from_secs(20));
    conference.call_and_merge(rhea()).await;
    let second = env
        .fake
        .wait_for("a new card", DEADLINE, |s| {
            s.channel_messages(CHANNEL_ID).iter().find_map(|m| {
                let id: u64 = m["id"].as_str()?.parse().ok()?;
                (id != first && m["content"].as_str()?.starts_with(CARD)).then_some(id)
            })
        })
        .await;
    wait_edit(&env, second, "both on the new card", |c| {
        c.contains("Rhea Stone") && c.contains("Paco Vu")
    })
    .await;
    env.app.settle().await;
    let unknown: Vec<_> = env
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.status == 404)
        .collect();
    assert_eq!(unknown.len(), 1, "one 404 for the deleted card, then none");
    assert!(unknown[0].path.ends_with(&format!("/messages/{first}")));
    assert_eq!(cards_in_channel(&env).len(), 1, "exactly one card again");
    assert_no_violations(&env.fake);
}

#[tokio::test]
async fn the_end_summary_carries_one_timeline_picture_of_the_call() {
    let env = cards_env(|_| {}).await;
    let conference = env.platform.conference(SEED, host());
    conference.start().await;
    conference.advance(Duration::from_secs(20));
    let paco = conference.call_and_merge(paco()).await;
    conference.advance(Duration::from_secs(20));
    conference.call_and_merge(rhea()).await;
    conference.advance(Duration::from_secs(40));
    conference.hang_up(paco, LeaveSignal::Both).await;
    conference.advance(Duration::from_secs(60));
    conference.end().await;
    let card = wait_card(&env).await;
    wait_edit(&env, card, "the record", |c| c.contains("Conference ended")).await;
    let end = env
        .fake
        .wait_for("the end summary", DEADLINE, |s| {
            s.channel_messages(CHANNEL_ID).iter().find_map(|m| {
                let content = m["content"].as_str()?;
                (content.contains("**Conference ended**") && !content.starts_with(CARD))
                    .then(|| m["id"].as_str()?.parse::<u64>().ok())
                    .flatten()
            })
        })
        .await;
    let attachments = env.fake.attachments(CHANNEL_ID, end);
    assert_eq!(attachments.len(), 1, "{attachments:?}");
    assert_eq!(attachments[0].filename, "timeline.png");
    assert_eq!(attachments[0].content_type, "image/png");
    let (width, height) = decode(&attachments[0]);
    assert!((200..=4000).contains(&width) && (200..=4000).contains(&height));
    // Exactly one picture in the whole channel: the card's record carries none while the lines
    // are on.
    let pictures: usize = env
        .fake
        .messages(CHANNEL_ID)
        .iter()
        .filter_map(|m| m["id"].as_str()?.parse().ok())
        .map(|id| env.fake.attachments(CHANNEL_ID, id).len())
        .sum();
    assert_eq!(pictures, 1);
    // Its upload was a multipart form whose payload names the file and keeps the nonce.
    let upload = env
        .fake
        .requests()
        .into_iter()
        .find(|r| {
            r.method == "POST"
                && r.content_type
                    .as_deref()
                    .is_some_and(|c| c.starts_with("multipart/form-data"))
        })
        .expect("a multipart upload");
    assert_eq!(upload.body["attachments"][0]["filename"], "timeline.png");
    assert!(upload.body["nonce"].is_string() && upload.body["enforce_nonce"] == Value::Bool(true));
    assert_mentions_nothing(&upload.body["allowed_mentions"]);
    assert_no_violations(&env.fake);
}

#[tokio::test]
async fn with_the_lines_off_the_card_alone_speaks_and_its_record_carries_the_picture() {
    let (env, conference, card) = card_with_paco(|s| s.announce.feed = false).await;
    conference.advance(Duration::from_secs(60));
    conference.end().await;
    let edits = wait_edit(&env, card, "the record", |c| c.contains("Conference ended")).await;
    env.app.settle().await;
    assert_eq!(
        env.fake.contents(CHANNEL_ID).len(),
        1,
        "no lines: only the card {:?}",
        env.fake.contents(CHANNEL_ID)
    );
    let last = edits.last().unwrap();
    assert_eq!(last["attachments"][0]["filename"], "timeline.png");
    let attachments = env.fake.attachments(CHANNEL_ID, card);
    assert_eq!(attachments.len(), 1);
    decode(&attachments[0]);
    assert_no_violations(&env.fake);
}

#[tokio::test]
async fn in_thread_mode_the_card_stays_in_the_channel() {
    let (env, _conference, card) =
        card_with_paco(|s| s.announce.thread_per_conference = true).await;
    let thread = env
        .fake
        .wait_for("the conference's thread", DEADLINE, |s| {
            s.threads.first().map(|t| t.id)
        })
        .await;
    env.fake
        .wait_for("Paco's line in the thread", DEADLINE, |s| {
            s.channel_messages(thread)
                .iter()
                .any(|m| m["content"].as_str().is_some_and(|c| c.contains("joined")))
                .then_some(())
        })
        .await;
    assert!(
        env.fake
            .contents(thread)
            .iter()
            .all(|c| !c.starts_with(CARD)),
        "no card in the thread"
    );
    let ids: Vec<u64> = cards_in_channel(&env).iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, vec![card], "the card is in the channel");
    assert_no_violations(&env.fake);
}

#[tokio::test]
async fn a_card_discord_refuses_is_given_up_for_its_conference_and_the_lines_go_on() {
    let env = cards_env(|_| {}).await;
    // Missing Permissions for the card's creation only.
    env.fake.refuse_next_message_where(
        |_, body| {
            body["content"]
                .as_str()
                .is_some_and(|c| c.starts_with(CARD))
        },
        403,
        50013,
    );
    let conference = env.platform.conference(SEED, host());
    conference.start().await;
    env.fake
        .wait_for("the card's refused post", DEADLINE, |s| {
            s.requests
                .iter()
                .any(|r| r.status == 403 && r.method == "POST")
                .then_some(())
        })
        .await;
    conference.advance(Duration::from_secs(20));
    conference.call_and_merge(paco()).await;
    conference.advance(Duration::from_secs(20));
    conference.call_and_merge(rhea()).await;
    env.fake
        .wait_for("Rhea's line", DEADLINE, |s| {
            s.channel_messages(CHANNEL_ID)
                .iter()
                .any(|m| {
                    m["content"]
                        .as_str()
                        .is_some_and(|c| c.contains("Rhea Stone"))
                })
                .then_some(())
        })
        .await;
    // Only time can show that nothing more is tried: three settling windows of the cards.
    tokio::time::sleep(Duration::from_millis(3 * 300 + 600)).await;
    let card_requests: Vec<_> = env
        .fake
        .requests()
        .into_iter()
        .filter(|r| {
            r.method == "PATCH"
                || r.body["content"]
                    .as_str()
                    .is_some_and(|c| c.starts_with(CARD))
        })
        .collect();
    assert_eq!(
        card_requests.len(),
        1,
        "the refused card was not tried again: {card_requests:#?}"
    );
    assert!(cards_in_channel(&env).is_empty());
    assert_eq!(
        lines_in_channel(&env)
            .join("\n")
            .matches(" joined · ")
            .count(),
        2,
        "the lines went on"
    );
    // The refusal was Discord's answer to a valid request: the fake records no violation.
    assert_no_violations(&env.fake);
}
