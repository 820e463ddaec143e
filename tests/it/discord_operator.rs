//! The Discord half of `ringside check` and `ringside demo --discord`, against the fake Discord
//! (every request validated against Discord's OpenAPI description).

use crate::support::discord::{CHANNEL_ID, FakeDiscord, FakeOptions};
use crate::support::{self, TestConfig, Transport};
use ringside::app;

/// `check`'s Discord lines as `(ok, text)`.
async fn discord_lines(config: &TestConfig) -> Vec<(bool, String)> {
    app::operator::check(&config.settings)
        .await
        .expect("check runs")
        .into_iter()
        .filter(|line| line.text.starts_with("discord"))
        .map(|line| (line.ok, line.text))
        .collect()
}

fn problems(lines: &[(bool, String)]) -> Vec<&str> {
    lines
        .iter()
        .filter(|(ok, _)| !ok)
        .map(|(_, text)| text.as_str())
        .collect()
}

#[tokio::test]
async fn check_reads_the_bot_the_application_the_channel_and_permissions() {
    let fake = FakeDiscord::start().await;
    let config = TestConfig::new().with_discord(&fake, Transport::Gateway);
    let lines = discord_lines(&config).await;
    assert!(problems(&lines).is_empty(), "{lines:#?}");
    let texts: Vec<&str> = lines.iter().map(|(_, text)| text.as_str()).collect();
    assert!(
        texts[0].starts_with("discord bot: signed in as "),
        "{texts:#?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("discord interactions: over the gateway")),
        "{texts:#?}"
    );
    assert!(
        texts.iter().any(|t| t.starts_with("discord channel: #")
            && t.ends_with(&format!("({CHANNEL_ID})"))),
        "{texts:#?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("discord permissions in #")
                && t.ends_with(": view, send, attach files")),
        "{texts:#?}"
    );
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
}

#[tokio::test]
async fn check_names_what_is_wrong_on_discords_side() {
    let fake = FakeDiscord::start().await;
    // No Send Messages for @everyone, an endpoint URL set while the gateway is configured.
    fake.set_everyone_permissions((1 << 10) | (1 << 15));
    fake.set_interactions_endpoint_url(Some("https://elsewhere.example/interactions".into()));
    let config = TestConfig::new().with_discord(&fake, Transport::Gateway);
    let lines = discord_lines(&config).await;
    let found = problems(&lines);
    assert_eq!(found.len(), 2, "{lines:#?}");
    assert!(
        found[0].starts_with(
            "discord interactions: the application sends them to https://elsewhere.example/interactions"
        ),
        "{found:#?}"
    );
    assert!(
        found[1].ends_with("the bot cannot send messages"),
        "{found:#?}"
    );

    // The endpoint transport: the application must send interactions to our public URL.
    let mut config = TestConfig::new().with_discord(&fake, Transport::Endpoint);
    config.settings.server.public_url = Some("https://ringside.example".into());
    fake.set_everyone_permissions((1 << 10) | (1 << 11));
    fake.set_interactions_endpoint_url(Some(
        "https://ringside.example/discord/interactions".into(),
    ));
    let lines = discord_lines(&config).await;
    // The end summary's picture needs Attach Files, unless the pictures are off.
    assert_eq!(
        problems(&lines),
        vec![
            "discord permissions in #conference-calls: the bot cannot attach the timeline picture (or set announce.timeline = false)"
        ],
        "{lines:#?}"
    );
    config.settings.announce.timeline = false;
    let lines = discord_lines(&config).await;
    assert!(problems(&lines).is_empty(), "{lines:#?}");
    assert!(
        lines.iter().any(|(_, t)| t
            == "discord interactions: sent to https://ringside.example/discord/interactions"),
        "{lines:#?}"
    );
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
}

#[tokio::test]
async fn check_reports_a_refused_token_without_showing_it() {
    let fake = FakeDiscord::start_with(FakeOptions {
        token: Some("another-bot-token.ringside.test".to_owned()),
        ..FakeOptions::default()
    })
    .await;
    let config = TestConfig::new().with_discord(&fake, Transport::Gateway);
    let lines = discord_lines(&config).await;
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(!lines[0].0);
    assert!(lines[0].1.contains("401"), "{lines:#?}");
    assert!(
        !lines[0].1.contains(support::discord::BOT_TOKEN),
        "{lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_with_discord_posts_the_scripted_conference_into_the_channel() {
    let fake = FakeDiscord::start().await;
    let config = TestConfig::new().with_discord(&fake, Transport::Gateway);
    app::demo::run(&config.settings, true, false)
        .await
        .expect("the demo runs");
    let posted = fake.contents(CHANNEL_ID).join("\n");
    for wanted in [
        "**Conference started** · host Agent 122",
        "**Paco Vu** (•••1119) joined",
        "**Dana Whitfield** (•••0142) joined",
        "**Ravi Anand** (•••8750) joined",
        &format!(
            "**Paco Vu** was removed by <@{}>",
            support::discord::BOT_USER_ID
        ),
        "**Dana Whitfield** left after",
        "**Conference ended**",
    ] {
        assert_eq!(posted.matches(wanted).count(), 1, "{wanted}:\n{posted}");
    }
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
}

#[tokio::test]
async fn check_says_which_alert_roles_an_alert_can_notify_and_prints_the_invite_url() {
    const MENTIONABLE: u64 = 1_100_000_000_000_000_501;
    const QUIET: u64 = 1_100_000_000_000_000_502;
    const GONE: u64 = 1_100_000_000_000_000_503;
    let fake = FakeDiscord::start().await;
    fake.add_role(MENTIONABLE, "Moderators", 0);
    fake.add_role(QUIET, "Ops", 0);
    fake.set_role_mentionable(MENTIONABLE);
    let mut config = TestConfig::new().with_discord(&fake, Transport::Gateway);
    config.settings.watch.alert_roles = vec![MENTIONABLE, QUIET, GONE];
    let lines = discord_lines(&config).await;
    let texts: Vec<&str> = lines.iter().map(|(_, text)| text.as_str()).collect();
    assert!(
        texts.contains(&"discord alert role @Moderators: mentionable, so alerts notify it"),
        "{texts:#?}"
    );
    let found = problems(&lines);
    assert_eq!(found.len(), 2, "{lines:#?}");
    assert!(
        found[0].starts_with(
            "discord alert role @Ops: not mentionable and the bot lacks Mention @everyone"
        ),
        "{found:#?}"
    );
    assert_eq!(
        found[1],
        format!("discord alert role {GONE}: no such role in the server (check watch.alert_roles)")
    );
    let invite = texts
        .iter()
        .find(|t| t.starts_with("discord invite URL for these settings: "))
        .expect("the invite URL");
    assert!(
        invite.ends_with("&permissions=166912"),
        "view, send, attach files and mention every role: {invite}"
    );

    // With the permission to mention every role, every alert role is notified.
    fake.set_everyone_permissions((1 << 10) | (1 << 11) | (1 << 15) | (1 << 17));
    let lines = discord_lines(&config).await;
    assert!(problems(&lines).is_empty(), "{lines:#?}");
    assert!(
        lines.iter().any(|(_, t)| t
            == "discord alert roles: the bot may mention every role (Mention @everyone, @here, and All Roles)"),
        "{lines:#?}"
    );
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
}
