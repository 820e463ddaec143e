//! The fake Discord's own tests: it accepts what serenity sends, refuses what Discord refuses,
//! and answers in shapes serenity reads.

use crate::support::discord::interactions::{self, Member, Signing};
use crate::support::discord::multipart::UPLOAD_LIMIT;
use crate::support::discord::openapi;
use crate::support::discord::{
    APPLICATION_ID, BOT_TOKEN, CHANNEL_ID, FakeDiscord, FakeOptions, GUILD_ID,
};
use reqwest::multipart;
use serde_json::{Value, json};
use serenity::all::{
    ChannelId, ClientBuilder, CommandOptionType, Context, CreateAllowedMentions,
    CreateAutocompleteResponse, CreateButton, CreateCommand, CreateCommandOption, CreateEmbed,
    CreateInteractionResponse, CreateInteractionResponseMessage, CreateMessage, CreateThread,
    EditInteractionResponse, EditMessage, EventHandler, GatewayIntents, GuildId, Http, HttpBuilder,
    Interaction, MessageFlags, Nonce, UserId,
};
use serenity::gateway::ShardManager;
use serenity::model::application::ButtonStyle;
use serenity::model::id::ApplicationId;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const DEADLINE: Duration = Duration::from_secs(10);

/// Serenity's `Http`, built exactly as ringside builds it.
fn serenity_http(fake: &FakeDiscord) -> Http {
    HttpBuilder::new(BOT_TOKEN)
        .client(
            reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("a client"),
        )
        .proxy(fake.base_url())
        .ratelimiter_disabled(true)
        .application_id(ApplicationId::new(APPLICATION_ID))
        .build()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(DEADLINE)
        .build()
        .expect("a client")
}

/// POSTs a raw body to the fake's message route of `channel`.
async fn post_message(fake: &FakeDiscord, channel: u64, body: &Value) -> reqwest::Response {
    client()
        .post(format!(
            "{}/api/v10/channels/{channel}/messages",
            fake.base_url()
        ))
        .header("authorization", format!("Bot {BOT_TOKEN}"))
        .json(body)
        .send()
        .await
        .expect("the fake answers")
}

fn announcement() -> CreateMessage {
    CreateMessage::new()
        .content("**Paco Vu** (•••• 1234) joined <t:1700000000:R>")
        .embed(
            CreateEmbed::new()
                .title("Conference")
                .description("2 callers")
                .field("Host", "Ana", true),
        )
        .allowed_mentions(CreateAllowedMentions::new())
        .flags(MessageFlags::SUPPRESS_NOTIFICATIONS)
        .nonce(Nonce::String("batch-0001".into()))
        .enforce_nonce(true)
}

#[test]
fn serenity_create_message_passes_validation() {
    let body = serde_json::to_value(announcement()).unwrap();
    openapi::spec()
        .validate_body("POST", "/channels/{channel_id}/messages", &body, true)
        .unwrap_or_else(|p| panic!("{body} refused at {}: {}", p.dotted(), p.message));
    // The buttons of a confirmation too.
    let with_buttons = serde_json::to_value(
        CreateInteractionResponseMessage::new()
            .content("Remove Paco Vu?")
            .ephemeral(true)
            .button(
                CreateButton::new("kick:yes:abc")
                    .style(ButtonStyle::Danger)
                    .label("Remove Paco Vu"),
            )
            .button(
                CreateButton::new("kick:no:abc")
                    .style(ButtonStyle::Secondary)
                    .label("Cancel"),
            ),
    )
    .unwrap();
    let callback = json!({"type": 4, "data": with_buttons});
    openapi::spec()
        .validate_body(
            "POST",
            "/interactions/{interaction_id}/{interaction_token}/callback",
            &callback,
            true,
        )
        .unwrap_or_else(|p| panic!("{callback} refused at {}: {}", p.dotted(), p.message));
}

#[test]
fn validator_reports_the_first_problem_with_its_path() {
    let spec = openapi::spec();
    let route = "/channels/{channel_id}/messages";
    let long = "x".repeat(2001);
    let p = spec
        .validate_body("POST", route, &json!({"content": long}), true)
        .unwrap_err();
    assert_eq!(p.path, vec!["content"]);
    assert_eq!(p.code, "BASE_TYPE_MAX_LENGTH");
    // 2000 chars of multi-byte text are fine: lengths count chars.
    let wide = "é".repeat(2000);
    assert!(
        spec.validate_body("POST", route, &json!({"content": wide}), true)
            .is_ok()
    );
    let p = spec
        .validate_body(
            "POST",
            route,
            &json!({"embeds": [{"title": "t", "fields": [{"name": "n", "value": 5}]}]}),
            true,
        )
        .unwrap_err();
    assert_eq!(p.dotted(), "embeds.0.fields.0.value");
    assert_eq!(
        p.errors_json(),
        json!({"embeds": {"0": {"fields": {"0": {"value": {"_errors": [
            {"code": p.code, "message": p.message}
        ]}}}}}})
    );
    // Of the nonce's branches (int64, string ≤ 25, null) the string one is reported.
    let p = spec
        .validate_body("POST", route, &json!({"nonce": "n".repeat(26)}), true)
        .unwrap_err();
    assert_eq!(
        (p.dotted().as_str(), p.code.as_str()),
        ("nonce", "BASE_TYPE_MAX_LENGTH")
    );
    assert!(
        spec.validate_body(
            "POST",
            route,
            &json!({"nonce": 12345, "enforce_nonce": true}),
            true
        )
        .is_ok()
    );
    // Explicit `additionalProperties: false`, `required`, `const`, `enum`, `oneOf`.
    let schema = json!({
        "type": "object",
        "properties": {
            "kind": {"const": 1},
            "color": {"enum": ["red", "blue"]},
            "id": {"oneOf": [{"type": "null"}, {"type": "string", "format": "snowflake"}]},
        },
        "required": ["kind"],
        "additionalProperties": false,
    });
    assert!(
        spec.validate(&schema, &json!({"kind": 1, "id": "12"}), false)
            .is_ok()
    );
    assert!(
        spec.validate(&schema, &json!({"kind": 1, "id": null}), false)
            .is_ok()
    );
    assert_eq!(
        spec.validate(&schema, &json!({"kind": 1, "extra": 0}), false)
            .unwrap_err()
            .dotted(),
        "extra"
    );
    assert_eq!(
        spec.validate(&schema, &json!({}), false).unwrap_err().code,
        "BASE_TYPE_REQUIRED"
    );
    assert_eq!(
        spec.validate(&schema, &json!({"kind": 2}), false)
            .unwrap_err()
            .code,
        "BASE_TYPE_CHOICES"
    );
    assert!(
        spec.validate(&schema, &json!({"kind": 1, "color": "green"}), false)
            .is_err()
    );
    assert!(
        spec.validate(&schema, &json!({"kind": 1, "id": "01"}), false)
            .is_err()
    );
    // Permissions as a digit string are accepted where the description says integer.
    let command = json!([{"name": "kick", "description": "d", "default_member_permissions": "8"}]);
    assert!(
        spec.validate_body(
            "PUT",
            "/applications/{application_id}/guilds/{guild_id}/commands",
            &command,
            true
        )
        .is_ok()
    );
}

#[tokio::test]
async fn invalid_bodies_get_400_and_a_violation() {
    let fake = FakeDiscord::start().await;
    let cases = [
        (json!({"content": "x".repeat(2001)}), "content"),
        (
            json!({"content": "hi", "allowed_mention": {"parse": []}}),
            "allowed_mention",
        ),
        (json!({"content": 5}), "content"),
        (json!({"content": "hi", "flags": "loud"}), "flags"),
    ];
    for (i, (body, field)) in cases.iter().enumerate() {
        let response = post_message(&fake, CHANNEL_ID, body).await;
        assert_eq!(response.status(), 400, "{body}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["code"], 50035, "{answer}");
        assert_eq!(answer["message"], "Invalid Form Body");
        assert!(
            answer["errors"][field]["_errors"][0]["code"].is_string(),
            "{answer}"
        );
        let violations = fake.violations();
        assert_eq!(violations.len(), i + 1, "{violations:#?}");
        assert!(violations[i].contains(field), "{violations:#?}");
    }
    assert!(fake.messages(CHANNEL_ID).is_empty());
}

#[tokio::test]
async fn unknown_routes_get_404_and_a_violation() {
    let fake = FakeDiscord::start().await;
    for (method, path) in [
        ("POST", "/api/v10/channels/1/mesages"),
        ("DELETE", "/api/v10/gateway"),
        ("GET", "/api/v9/users/@me"),
    ] {
        let response = client()
            .request(
                method.parse().unwrap(),
                format!("{}{path}", fake.base_url()),
            )
            .header("authorization", format!("Bot {BOT_TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{method} {path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, json!({"message": "404: Not Found", "code": 0}));
    }
    assert_eq!(fake.violations().len(), 3, "{:#?}", fake.violations());
    assert_eq!(fake.requests().len(), 3);
}

#[tokio::test]
async fn messages_are_stored_in_order_and_answered_as_serenity_messages() {
    let fake = FakeDiscord::start().await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let response = post_message(&fake, CHANNEL_ID, &json!({"content": format!("m{n}")})).await;
        assert_eq!(response.status(), 200);
        for h in [
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
            "x-ratelimit-reset-after",
            "x-ratelimit-bucket",
        ] {
            assert!(response.headers().contains_key(h), "{h} missing");
        }
        let message: serenity::all::Message = response.json().await.unwrap();
        assert_eq!(message.content, format!("m{n}"));
        assert_eq!(message.channel_id.get(), CHANNEL_ID);
        ids.push(message.id.get());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert_eq!(fake.contents(CHANNEL_ID), vec!["m0", "m1", "m2"]);
    assert_eq!(fake.all_messages().len(), 3);
    // Unknown channels are Discord's 404 Unknown Channel.
    let response = post_message(&fake, 42, &json!({"content": "x"})).await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], 10003);
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
}

#[tokio::test]
async fn the_same_nonce_with_enforce_nonce_creates_one_message() {
    let fake = FakeDiscord::start().await;
    let body = serde_json::to_value(announcement()).unwrap();
    let first: Value = post_message(&fake, CHANNEL_ID, &body)
        .await
        .json()
        .await
        .unwrap();
    let second: Value = post_message(&fake, CHANNEL_ID, &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["id"], second["id"]);
    assert_eq!(fake.messages(CHANNEL_ID).len(), 1);
    // Without enforce_nonce, or with another nonce, a new message.
    let mut loose = body.clone();
    loose["enforce_nonce"] = json!(false);
    post_message(&fake, CHANNEL_ID, &loose).await;
    let mut other = body.clone();
    other["nonce"] = json!("batch-0002");
    post_message(&fake, CHANNEL_ID, &other).await;
    assert_eq!(fake.messages(CHANNEL_ID).len(), 3);
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
}

#[tokio::test]
async fn an_injected_429_then_success_and_a_premature_retry_is_flagged() {
    let fake = FakeDiscord::start().await;
    fake.rate_limit_next(1, 0.3);
    let response = post_message(&fake, CHANNEL_ID, &json!({"content": "a"})).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(response.headers()["x-ratelimit-remaining"], "0");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"message": "You are being rate limited.", "retry_after": 0.3, "global": false})
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    let response = post_message(&fake, CHANNEL_ID, &json!({"content": "a"})).await;
    assert_eq!(response.status(), 200);
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());

    // Now one that does not wait.
    fake.rate_limit_next(1, 5.0);
    assert_eq!(
        post_message(&fake, CHANNEL_ID, &json!({"content": "b"}))
            .await
            .status(),
        429
    );
    let response = post_message(&fake, CHANNEL_ID, &json!({"content": "b"})).await;
    assert_eq!(response.status(), 429);
    let violations = fake.violations();
    assert_eq!(violations.len(), 1, "{violations:#?}");
    assert!(violations[0].contains("request before retry_after"));
    assert_eq!(fake.contents(CHANNEL_ID), vec!["a"]);
}

#[tokio::test]
async fn an_enforced_channel_limit_answers_429_until_the_window_resets() {
    let fake = FakeDiscord::start_with(FakeOptions {
        channel_limit: Some((2, Duration::from_millis(400))),
        ..FakeOptions::default()
    })
    .await;
    let r1 = post_message(&fake, CHANNEL_ID, &json!({"content": "1"})).await;
    assert_eq!(r1.headers()["x-ratelimit-limit"], "2");
    assert_eq!(r1.headers()["x-ratelimit-remaining"], "1");
    let r2 = post_message(&fake, CHANNEL_ID, &json!({"content": "2"})).await;
    assert_eq!(r2.headers()["x-ratelimit-remaining"], "0");
    let r3 = post_message(&fake, CHANNEL_ID, &json!({"content": "3"})).await;
    assert_eq!(r3.status(), 429);
    let retry_after = r3.json::<Value>().await.unwrap()["retry_after"]
        .as_f64()
        .unwrap();
    tokio::time::sleep(Duration::from_secs_f64(retry_after + 0.02)).await;
    let r4 = post_message(&fake, CHANNEL_ID, &json!({"content": "3"})).await;
    assert_eq!(r4.status(), 200);
    assert_eq!(fake.contents(CHANNEL_ID), vec!["1", "2", "3"]);
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
}

#[tokio::test]
async fn discords_channel_bucket_takes_five_messages_per_five_seconds_with_true_headers() {
    let fake = FakeDiscord::start_with(FakeOptions::default().with_discord_channel_bucket()).await;
    let header = |response: &reqwest::Response, name: &str| -> String {
        response.headers()[name].to_str().unwrap().to_owned()
    };
    let mut bucket = None;
    for expected_remaining in (0..5).rev() {
        let response = post_message(&fake, CHANNEL_ID, &json!({"content": "hi"})).await;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "x-ratelimit-limit"), "5");
        assert_eq!(
            header(&response, "x-ratelimit-remaining"),
            expected_remaining.to_string()
        );
        let reset_after: f64 = header(&response, "x-ratelimit-reset-after")
            .parse()
            .unwrap();
        assert!(reset_after > 0.0 && reset_after <= 5.0, "{reset_after}");
        let reset: f64 = header(&response, "x-ratelimit-reset").parse().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            (reset - (now + reset_after)).abs() < 1.0,
            "{reset} vs {now}"
        );
        let name = header(&response, "x-ratelimit-bucket");
        assert_eq!(
            *bucket.get_or_insert_with(|| name.clone()),
            name,
            "one bucket"
        );
    }
    let limited = post_message(&fake, CHANNEL_ID, &json!({"content": "sixth"})).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(header(&limited, "x-ratelimit-scope"), "user");
    assert_eq!(header(&limited, "x-ratelimit-remaining"), "0");
    assert_eq!(header(&limited, "x-ratelimit-limit"), "5");
    assert_eq!(Some(header(&limited, "x-ratelimit-bucket")), bucket);
    assert!(limited.headers().contains_key("retry-after"));
    let body: Value = limited.json().await.unwrap();
    let retry_after = body["retry_after"].as_f64().unwrap();
    assert!(retry_after > 0.0 && retry_after <= 5.0, "{body}");
    assert_eq!(body["global"], json!(false));
    assert_eq!(
        fake.contents(CHANNEL_ID).len(),
        5,
        "the sixth was not created"
    );
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
}

#[tokio::test]
async fn refusals_and_failures_are_injected_on_demand() {
    let fake = FakeDiscord::start().await;
    fake.fail_next(2, 500);
    assert_eq!(
        post_message(&fake, CHANNEL_ID, &json!({"content": "a"}))
            .await
            .status(),
        500
    );
    assert_eq!(
        post_message(&fake, CHANNEL_ID, &json!({"content": "a"}))
            .await
            .status(),
        500
    );
    assert_eq!(
        post_message(&fake, CHANNEL_ID, &json!({"content": "a"}))
            .await
            .status(),
        200
    );

    fake.refuse_next_message_containing("poison", 400, 50035);
    let refused = post_message(&fake, CHANNEL_ID, &json!({"content": "poison pill"})).await;
    assert_eq!(refused.status(), 400);
    assert_eq!(
        post_message(&fake, CHANNEL_ID, &json!({"content": "b"}))
            .await
            .status(),
        200
    );
    assert_eq!(
        post_message(&fake, CHANNEL_ID, &json!({"content": "poison 2"}))
            .await
            .status(),
        200
    );

    fake.refuse_channel(CHANNEL_ID, 403, 50001);
    let response = post_message(&fake, CHANNEL_ID, &json!({"content": "c"})).await;
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"code": 50001, "message": "Missing Access"}));
    fake.accept_channel(CHANNEL_ID);
    assert_eq!(
        post_message(&fake, CHANNEL_ID, &json!({"content": "d"}))
            .await
            .status(),
        200
    );
    assert_eq!(fake.contents(CHANNEL_ID), vec!["a", "b", "poison 2", "d"]);
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
}

#[tokio::test]
async fn serenity_http_built_like_ringside_does_its_work_with_no_violations() {
    let fake = FakeDiscord::start().await;
    fake.add_role(GUILD_ID + 1, "Moderators", 1 << 1);
    fake.set_bot_roles(vec![GUILD_ID + 1]);
    fake.set_overwrites(
        CHANNEL_ID,
        vec![json!({"id": GUILD_ID.to_string(), "type": 0, "allow": "0", "deny": "2048"})],
    );
    fake.set_interactions_endpoint_url(Some(
        "https://ringside.example/discord/interactions".into(),
    ));
    let http = serenity_http(&fake);

    let commands = GuildId::new(GUILD_ID)
        .set_commands(
            &http,
            vec![
                CreateCommand::new("participants")
                    .description("Who is on the call")
                    .add_option(
                        CreateCommandOption::new(CommandOptionType::String, "conference", "Which")
                            .set_autocomplete(true),
                    )
                    .add_option(CreateCommandOption::new(
                        CommandOptionType::Boolean,
                        "public",
                        "Show everyone",
                    )),
                CreateCommand::new("kick")
                    .description("Remove a caller")
                    .add_option(
                        CreateCommandOption::new(CommandOptionType::String, "caller", "Who")
                            .required(true)
                            .set_autocomplete(true)
                            .max_length(100),
                    )
                    .add_option(
                        CreateCommandOption::new(CommandOptionType::String, "reason", "Why")
                            .max_length(200),
                    ),
            ],
        )
        .await
        .expect("set_commands");
    assert_eq!(commands.len(), 2);
    assert_eq!(fake.registered_commands().len(), 2);
    assert_eq!(fake.registered_commands()[1]["name"], "kick");

    let me = http.get_current_user().await.expect("get_current_user");
    assert!(me.bot);
    let channel = http
        .get_channel(ChannelId::new(CHANNEL_ID))
        .await
        .expect("get_channel")
        .guild()
        .expect("a guild channel");
    assert_eq!(channel.permission_overwrites.len(), 1);
    let guild = http
        .get_guild(GuildId::new(GUILD_ID))
        .await
        .expect("get_guild");
    assert_eq!(guild.roles.len(), 2);
    let member = http
        .get_member(GuildId::new(GUILD_ID), UserId::new(me.id.get()))
        .await
        .expect("get_member");
    assert_eq!(member.roles.len(), 1);
    // The shapes carry what ringside's `check` computes permissions from: @everyone's bits,
    // the bot's role, and the channel overwrite that denies SEND_MESSAGES.
    #[allow(deprecated)]
    let granted = guild.user_permissions_in(&channel, &member);
    assert!(granted.view_channel());
    assert!(granted.kick_members(), "from the Moderators role");
    assert!(!granted.send_messages(), "denied by the overwrite");
    let app = http
        .get_current_application_info()
        .await
        .expect("get_current_application_info");
    assert_eq!(app.id.get(), APPLICATION_ID);
    assert_eq!(
        app.interactions_endpoint_url.as_deref(),
        Some("https://ringside.example/discord/interactions")
    );
    let gateway = http.get_gateway().await.expect("get_gateway");
    assert_eq!(gateway.url, fake.gateway_url());
    let gateway_bot = http.get_bot_gateway().await.expect("get_bot_gateway");
    assert_eq!(gateway_bot.shards, 1);

    let sent = ChannelId::new(CHANNEL_ID)
        .send_message(&http, announcement())
        .await
        .expect("send_message");
    assert_eq!(fake.contents(CHANNEL_ID), vec![sent.content.clone()]);
    let thread = ChannelId::new(CHANNEL_ID)
        .create_thread_from_message(&http, sent.id, CreateThread::new("Conference 1"))
        .await
        .expect("create_thread_from_message");
    ChannelId::new(thread.id.get())
        .send_message(&http, CreateMessage::new().content("in the thread"))
        .await
        .expect("a message in the thread");
    assert_eq!(fake.contents(thread.id.get()), vec!["in the thread"]);
    let edited = ChannelId::new(CHANNEL_ID)
        .edit_message(&http, sent.id, EditMessage::new().content("edited"))
        .await
        .expect("edit_message");
    assert_eq!(edited.content, "edited");
    assert_eq!(fake.contents(CHANNEL_ID), vec!["edited"]);

    let raw = interactions::command(
        "kick",
        json!([interactions::opt_str("caller", "abc")]),
        &Member::new(42, "mod").admin(),
    );
    let Interaction::Command(cmd) = serde_json::from_value(raw).unwrap() else {
        panic!("a command");
    };
    cmd.create_response(
        &http,
        CreateInteractionResponse::Defer(CreateInteractionResponseMessage::new().ephemeral(true)),
    )
    .await
    .expect("create_response");
    let edited = cmd
        .edit_response(&http, EditInteractionResponse::new().content("Removed"))
        .await
        .expect("edit_response");
    assert_eq!(edited.content, "Removed");
    assert_eq!(fake.callbacks().len(), 1);
    assert_eq!(fake.callbacks()[0].body["type"], 5);
    assert_eq!(fake.original_edits().len(), 1);
    assert_eq!(fake.original(&cmd.token).unwrap()["content"], "Removed");

    let requests = fake.requests();
    assert!(requests.iter().all(|r| r.status < 300), "{requests:#?}");
    assert!(
        requests
            .iter()
            .filter(|r| !r.path.starts_with("/interactions") && !r.path.starts_with("/webhooks"))
            .all(|r| r.authorization.as_deref() == Some(&format!("Bot {BOT_TOKEN}") as &str))
    );
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
}

#[tokio::test]
async fn a_second_callback_and_an_edit_before_any_callback_are_violations() {
    let fake = FakeDiscord::start().await;
    let http = serenity_http(&fake);
    let raw = interactions::command("participants", json!([]), &Member::new(42, "someone"));
    let Interaction::Command(cmd) = serde_json::from_value(raw).unwrap() else {
        panic!("a command");
    };
    assert!(
        cmd.edit_response(&http, EditInteractionResponse::new().content("early"))
            .await
            .is_err()
    );
    let reply =
        CreateInteractionResponse::Message(CreateInteractionResponseMessage::new().content("none"));
    cmd.create_response(&http, reply.clone()).await.unwrap();
    assert!(cmd.create_response(&http, reply).await.is_err());
    let violations = fake.violations();
    assert_eq!(violations.len(), 2, "{violations:#?}");
}

struct Forward(mpsc::UnboundedSender<Interaction>);

#[serenity::async_trait]
impl EventHandler for Forward {
    async fn interaction_create(&self, _ctx: Context, interaction: Interaction) {
        let _ = self.0.send(interaction);
    }
}

/// A serenity gateway client against the fake: interactions its handler receives, the shard
/// manager, the running task.
async fn gateway_client(
    fake: &FakeDiscord,
) -> (
    mpsc::UnboundedReceiver<Interaction>,
    Arc<ShardManager>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut client = ClientBuilder::new_with_http(serenity_http(fake), GatewayIntents::empty())
        .event_handler(Forward(tx))
        .await
        .expect("a client");
    let shards = client.shard_manager.clone();
    let running = tokio::spawn(async move {
        let _ = client.start().await;
    });
    (rx, shards, running)
}

#[tokio::test]
async fn a_serenity_gateway_client_receives_a_pushed_interaction() {
    let fake = FakeDiscord::start().await;
    let (mut rx, shards, running) = gateway_client(&fake).await;

    let identify = fake.wait_identified(DEADLINE).await;
    assert_eq!(
        identify.token.as_deref(),
        Some(&format!("Bot {BOT_TOKEN}") as &str)
    );
    assert_eq!(identify.intents, Some(0));

    let member = Member::new(42, "mod").admin();
    let raw = interactions::command("participants", json!([]), &member);
    let id = raw["id"].as_str().unwrap().to_owned();
    // READY goes out before anything pushed after IDENTIFY: one push is enough.
    assert_eq!(fake.send_interaction(raw.clone()), 1);
    let received = tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("the handler receives the interaction in time")
        .expect("the handler is alive");
    let Interaction::Command(cmd) = received else {
        panic!("a command: {received:?}");
    };
    assert_eq!(cmd.id.get().to_string(), id);
    assert_eq!(cmd.data.name, "participants");
    assert_eq!(
        cmd.data.id.get(),
        interactions::command_id("participants"),
        "the id a registration gives it"
    );
    let dispatches = fake.with_state(|s| s.dispatches.clone());
    assert_eq!(dispatches[0].0, "READY");
    assert_eq!(dispatches[1].0, "INTERACTION_CREATE");
    shards.shutdown_all().await;
    running.abort();
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
}

#[tokio::test]
async fn heartbeats_are_acknowledged_so_the_shard_stays_connected() {
    let fake = FakeDiscord::start_with(FakeOptions {
        heartbeat_interval_ms: 100,
        ..FakeOptions::default()
    })
    .await;
    let (_rx, shards, running) = gateway_client(&fake).await;
    fake.wait_identified(DEADLINE).await;
    fake.wait_for("five heartbeats", DEADLINE, |s| {
        (s.heartbeats >= 5).then_some(())
    })
    .await;
    assert_eq!(fake.identifies().len(), 1, "no reconnect for a missing ACK");
    shards.shutdown_all().await;
    running.abort();
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
}

#[tokio::test]
async fn a_wrong_token_gets_401_and_a_violation() {
    let fake = FakeDiscord::start().await;
    let response = client()
        .get(format!("{}/api/v10/users/@me", fake.base_url()))
        .header("authorization", "Bot not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = client()
        .get(format!("{}/api/v10/users/@me", fake.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(fake.violations().len(), 2, "{:#?}", fake.violations());
}

#[tokio::test]
async fn a_dropped_gateway_connection_is_identified_again() {
    let fake = FakeDiscord::start().await;
    let (_rx, shards, running) = gateway_client(&fake).await;
    fake.wait_identified(DEADLINE).await;
    // Closed with 4000 ("unknown error"), serenity's shard reconnects (after about 5 s).
    assert_eq!(fake.disconnect_gateway(4000), 1);
    fake.wait_for("a second IDENTIFY", DEADLINE, |s| {
        (s.identifies.len() >= 2 && !s.gateway_connections.is_empty()).then_some(())
    })
    .await;
    shards.shutdown_all().await;
    running.abort();
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
}

#[test]
fn each_builder_deserializes_into_the_right_interaction_variant() {
    let member = Member::new(42, "paco")
        .global_name("Paco")
        .roles(&[7, 8])
        .permissions(interactions::ORDINARY);
    match serde_json::from_value(interactions::command(
        "kick",
        json!([
            interactions::opt_str("caller", "abc"),
            interactions::opt_str("reason", "spam")
        ]),
        &member,
    ))
    .unwrap()
    {
        Interaction::Command(cmd) => {
            assert_eq!(cmd.data.name, "kick");
            assert_eq!(cmd.data.options.len(), 2);
            let m = cmd.member.expect("a member");
            assert_eq!(m.roles.len(), 2);
            assert_eq!(cmd.user.id.get(), 42);
            assert_eq!(cmd.guild_id.unwrap().get(), GUILD_ID);
            assert!(m.permissions.is_some());
        }
        other => panic!("not a command: {other:?}"),
    }
    match serde_json::from_value(interactions::autocomplete(
        "kick",
        json!([interactions::focused_str("caller", "pa")]),
        &member.clone().guild(999),
    ))
    .unwrap()
    {
        Interaction::Autocomplete(cmd) => {
            let focused = cmd.data.autocomplete().expect("a focused option");
            assert_eq!(focused.value, "pa");
            assert_eq!(cmd.guild_id.unwrap().get(), 999);
        }
        other => panic!("not an autocomplete: {other:?}"),
    }
    let message = interactions::message(5, "Remove Paco?", json!([]));
    match serde_json::from_value(interactions::button("kick:yes:abc", &member, message)).unwrap() {
        Interaction::Component(c) => {
            assert_eq!(c.data.custom_id, "kick:yes:abc");
            assert_eq!(c.message.content, "Remove Paco?");
            assert_eq!(c.user.id.get(), 42);
        }
        other => panic!("not a component: {other:?}"),
    }
    assert!(matches!(
        serde_json::from_value(interactions::ping()).unwrap(),
        Interaction::Ping(_)
    ));
    let dm = interactions::in_dm(interactions::command("participants", json!([]), &member));
    match serde_json::from_value(dm).unwrap() {
        Interaction::Command(cmd) => {
            assert!(cmd.guild_id.is_none());
            assert!(cmd.member.is_none());
            assert_eq!(cmd.user.id.get(), 42);
        }
        other => panic!("not a command: {other:?}"),
    }
}

#[test]
fn a_signed_body_verifies_with_serenitys_verifier() {
    let verifier =
        serenity::interactions_endpoint::Verifier::try_new(interactions::public_key_bytes())
            .expect("a key");
    let body = serde_json::to_vec(&interactions::ping()).unwrap();
    let signature = interactions::sign("1700000000", &body);
    assert!(verifier.verify(&signature, "1700000000", &body).is_ok());
    assert!(verifier.verify(&signature, "1700000001", &body).is_err());
    let mut tampered = body.clone();
    tampered.push(b' ');
    assert!(
        verifier
            .verify(&signature, "1700000000", &tampered)
            .is_err()
    );
    assert_eq!(interactions::public_key_hex().len(), 64);
}

#[tokio::test]
async fn callback_bodies_of_each_kind_are_validated() {
    let fake = FakeDiscord::start().await;
    let http = serenity_http(&fake);
    let member = Member::new(42, "mod").admin();

    let Interaction::Autocomplete(ac) = serde_json::from_value(interactions::autocomplete(
        "kick",
        json!([interactions::focused_str("caller", "pa")]),
        &member,
    ))
    .unwrap() else {
        panic!("an autocomplete");
    };
    ac.create_response(
        &http,
        CreateInteractionResponse::Autocomplete(
            CreateAutocompleteResponse::new().add_string_choice("Paco Vu (•••• 1234)", "c:1"),
        ),
    )
    .await
    .expect("an autocomplete answer");

    let Interaction::Component(click) = serde_json::from_value(interactions::button(
        "kick:yes:c:1",
        &member,
        interactions::message(5, "Remove Paco Vu?", json!([])),
    ))
    .unwrap() else {
        panic!("a component");
    };
    click
        .create_response(
            &http,
            CreateInteractionResponse::UpdateMessage(
                CreateInteractionResponseMessage::new()
                    .content("Removed Paco Vu")
                    .components(vec![]),
            ),
        )
        .await
        .expect("an update");
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
    assert_eq!(fake.callbacks().len(), 2);
    assert_eq!(fake.callbacks()[0].body["type"], 8);
    assert_eq!(fake.callbacks()[1].body["type"], 7);

    // 26 choices: Discord's limit is 25.
    let Interaction::Autocomplete(ac) = serde_json::from_value(interactions::autocomplete(
        "kick",
        json!([interactions::focused_str("caller", "")]),
        &member,
    ))
    .unwrap() else {
        panic!("an autocomplete");
    };
    let mut many = CreateAutocompleteResponse::new();
    for n in 0..26 {
        many = many.add_string_choice(format!("caller {n}"), format!("c:{n}"));
    }
    let refused = ac
        .create_response(&http, CreateInteractionResponse::Autocomplete(many))
        .await;
    assert!(refused.is_err());
    let violations = fake.violations();
    assert_eq!(violations.len(), 1, "{violations:#?}");
    assert!(violations[0].contains("data.choices"), "{violations:#?}");
}

#[tokio::test]
async fn wait_messages_polls_until_the_messages_arrive() {
    let fake = FakeDiscord::start().await;
    let url = fake.base_url();
    tokio::spawn(async move {
        for n in 0..2 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            client()
                .post(format!("{url}/api/v10/channels/{CHANNEL_ID}/messages"))
                .header("authorization", format!("Bot {BOT_TOKEN}"))
                .json(&json!({"content": format!("late {n}")}))
                .send()
                .await
                .unwrap();
        }
    });
    let messages = fake.wait_messages(CHANNEL_ID, 2, DEADLINE).await;
    assert_eq!(messages[1]["content"], "late 1");
}

#[tokio::test]
#[should_panic(expected = "timed out")]
async fn wait_messages_gives_up_at_its_deadline() {
    let fake = FakeDiscord::start().await;
    fake.wait_messages(CHANNEL_ID, 1, Duration::from_millis(50))
        .await;
}

/// A stand-in interactions endpoint: 200 when serenity's verifier accepts the request and its
/// timestamp is under 5 minutes old, 401 otherwise.
async fn verifying_endpoint() -> String {
    use axum::http::{HeaderMap, StatusCode};
    async fn verify(headers: HeaderMap, body: axum::body::Bytes) -> StatusCode {
        let verifier =
            serenity::interactions_endpoint::Verifier::try_new(interactions::public_key_bytes())
                .unwrap();
        let get = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let timestamp = get("x-signature-timestamp");
        let fresh = timestamp
            .parse::<u64>()
            .is_ok_and(|t| interactions::timestamp_now().saturating_sub(t) <= 300);
        if fresh
            && verifier
                .verify(&get("x-signature-ed25519"), &timestamp, &body)
                .is_ok()
        {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/i", axum::routing::post(verify));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/i")
}

#[tokio::test]
async fn post_signed_signs_right_or_wrong_as_asked() {
    let url = verifying_endpoint().await;
    let c = client();
    let ping = interactions::ping();
    let status = |how| {
        let (c, url, ping) = (c.clone(), url.clone(), ping.clone());
        async move {
            interactions::post_signed(&c, &url, &ping, how)
                .await
                .status()
        }
    };
    assert_eq!(status(Signing::default()).await, 200);
    for how in [
        Signing {
            wrong_key: true,
            ..Signing::default()
        },
        Signing {
            tampered_body: true,
            ..Signing::default()
        },
        Signing {
            unsigned: true,
            ..Signing::default()
        },
        Signing {
            age_secs: 600,
            ..Signing::default()
        },
    ] {
        assert_eq!(status(how).await, 401, "{how:?}");
    }
}

/// A PNG's signature then bytes that look like form syntax, so a parser that splits on less than
/// the whole delimiter is caught.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\r\n--not-the-boundary\r\n\x00\xff timeline";

/// A card's `payload_json` as ringside sends it with its timeline.
fn card_payload(content: &str, nonce: &str) -> Value {
    json!({
        "content": content,
        "nonce": nonce,
        "enforce_nonce": true,
        "allowed_mentions": {"parse": []},
        "flags": 4096,
        "attachments": [{"id": 0, "filename": "timeline.png"}],
    })
}

fn payload_part(payload: &Value) -> multipart::Part {
    multipart::Part::text(payload.to_string())
        .mime_str("application/json")
        .expect("a MIME type")
}

fn png_part(filename: &str) -> multipart::Part {
    multipart::Part::bytes(PNG.to_vec())
        .file_name(filename.to_owned())
        .mime_str("image/png")
        .expect("a MIME type")
}

/// `payload_json` and a `files[0]` PNG, the form ringside sends.
fn card_form(payload: &Value) -> multipart::Form {
    multipart::Form::new()
        .part("payload_json", payload_part(payload))
        .part("files[0]", png_part("timeline.png"))
}

/// Sends a form to `path` (after `/api/v10`) with the bot's token.
async fn send_form(
    fake: &FakeDiscord,
    method: reqwest::Method,
    path: &str,
    form: multipart::Form,
) -> reqwest::Response {
    client()
        .request(method, format!("{}/api/v10{path}", fake.base_url()))
        .header("authorization", format!("Bot {BOT_TOKEN}"))
        .multipart(form)
        .send()
        .await
        .expect("the fake answers")
}

fn messages_path(channel: u64) -> String {
    format!("/channels/{channel}/messages")
}

fn message_path(channel: u64, message: &str) -> String {
    format!("/channels/{channel}/messages/{message}")
}

#[test]
fn the_multipart_parser_reads_quoted_boundaries_extended_names_and_binary_data() {
    use crate::support::discord::multipart::{boundary, parse};
    let content_type = "multipart/form-data; charset=utf-8; boundary=\"a b:c\"";
    assert_eq!(boundary(content_type).unwrap(), "a b:c");
    let mut body = b"preamble\r\n--a b:c\r\n\
        Content-Disposition: form-data; name*=utf-8''files%5B0%5D; filename=\"x\\\"y.png\"\r\n\
        content-type: image/png\r\n\r\n"
        .to_vec();
    body.extend_from_slice(PNG);
    body.extend_from_slice(b"\r\n--a b:c--\r\nepilogue");
    let parts = parse(&body, "a b:c").unwrap();
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].name, "files[0]");
    assert_eq!(parts[0].filename.as_deref(), Some("x\"y.png"));
    assert_eq!(parts[0].content_type.as_deref(), Some("image/png"));
    assert_eq!(parts[0].data, PNG);
}

#[test]
fn a_multipart_body_cut_short_or_without_a_disposition_is_malformed() {
    use crate::support::discord::multipart::{boundary, parse};
    let cut = b"--b\r\nContent-Disposition: form-data; name=\"payload_json\"\r\n\r\n{}";
    assert!(parse(cut, "b").is_err());
    assert!(parse(b"--b\r\n\r\nno disposition\r\n--b--", "b").is_err());
    assert!(parse(b"no boundary at all", "b").is_err());
    assert!(boundary("multipart/form-data").is_err());
    assert!(boundary("multipart/form-data; boundary=").is_err());
}

#[tokio::test]
async fn a_multipart_create_is_stored_with_its_bytes_and_deduplicated_by_its_nonce() {
    let fake = FakeDiscord::start().await;
    let payload = card_payload("**Paco Vu** joined", "card-0001");
    let path = messages_path(CHANNEL_ID);
    let first = send_form(&fake, reqwest::Method::POST, &path, card_form(&payload)).await;
    assert_eq!(first.status(), 200);
    assert!(first.headers().contains_key("x-ratelimit-bucket"));
    let first: serenity::all::Message = first.json().await.unwrap();
    assert_eq!(first.content, "**Paco Vu** joined");
    assert_eq!(first.attachments.len(), 1);
    assert_eq!(first.attachments[0].filename, "timeline.png");
    assert_eq!(first.attachments[0].size as usize, PNG.len());
    assert_eq!(
        first.attachments[0].content_type.as_deref(),
        Some("image/png")
    );
    // A resend with the same nonce answers the same message and stores no second one.
    let second = send_form(&fake, reqwest::Method::POST, &path, card_form(&payload)).await;
    assert_eq!(second.status(), 200);
    let second: serenity::all::Message = second.json().await.unwrap();
    assert_eq!(second.id, first.id);
    assert_eq!(fake.messages(CHANNEL_ID).len(), 1);

    let stored = fake.attachments(CHANNEL_ID, first.id.get());
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (stored[0].filename.as_str(), stored[0].content_type.as_str()),
        ("timeline.png", "image/png")
    );
    assert_eq!(stored[0].bytes, PNG);
    assert_eq!(stored[0].id, first.attachments[0].id.get());
    assert_eq!(fake.message_requests(CHANNEL_ID), vec![payload.clone()]);
    let recorded = fake.requests().pop().unwrap();
    assert_eq!(recorded.body["content"], "**Paco Vu** joined");
    assert_eq!(recorded.files.len(), 1);
    assert_eq!(recorded.files[0].name, "files[0]");
    assert_eq!(recorded.files[0].data, PNG);
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
}

#[tokio::test]
async fn a_multipart_create_that_breaks_the_upload_rules_is_a_violation_answered_400() {
    let fake = FakeDiscord::start().await;
    let card = || card_payload("joined", "card-0001");
    let with = |field: &str, value: Value| {
        let mut payload = card();
        payload[field] = value;
        payload
    };
    let no_filename = multipart::Part::bytes(PNG.to_vec())
        .mime_str("image/png")
        .unwrap();
    let no_type = multipart::Part::bytes(PNG.to_vec()).file_name("timeline.png");
    let mut eleven = multipart::Form::new().part("payload_json", payload_part(&card()));
    for n in 0..11 {
        eleven = eleven.part(format!("files[{n}]"), png_part("timeline.png"));
    }
    let cases: Vec<(&str, multipart::Form, &str)> = vec![
        (
            "an entry naming no file",
            card_form(&with(
                "attachments",
                json!([{"id": 1, "filename": "timeline.png"}]),
            )),
            "attachments.0.id",
        ),
        (
            "a file no entry describes",
            card_form(&with("attachments", json!([]))),
            "attachments",
        ),
        (
            "no payload_json",
            multipart::Form::new().part("files[0]", png_part("timeline.png")),
            "payload_json",
        ),
        (
            "payload_json not JSON",
            multipart::Form::new()
                .text("payload_json", "{content:")
                .part("files[0]", png_part("timeline.png")),
            "payload_json",
        ),
        (
            "content over 2000 chars",
            card_form(&with("content", json!("x".repeat(2001)))),
            "content",
        ),
        (
            "an unknown field",
            card_form(&with("allowed_mention", json!({"parse": []}))),
            "allowed_mention",
        ),
        (
            "a file without a filename",
            multipart::Form::new()
                .part("payload_json", payload_part(&card()))
                .part("files[0]", no_filename),
            "files[0]",
        ),
        (
            "a file without a Content-Type",
            multipart::Form::new()
                .part("payload_json", payload_part(&card()))
                .part("files[0]", no_type),
            "files[0]",
        ),
        ("eleven files", eleven, "files"),
        (
            "a field as its own part",
            card_form(&card()).text("content", "joined"),
            "content",
        ),
    ];
    let path = messages_path(CHANNEL_ID);
    for (i, (case, form, at)) in cases.into_iter().enumerate() {
        let response = send_form(&fake, reqwest::Method::POST, &path, form).await;
        assert_eq!(response.status(), 400, "{case}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["code"], 50035, "{case}: {answer}");
        let violations = fake.violations();
        assert_eq!(violations.len(), i + 1, "{case}: {violations:#?}");
        assert!(
            violations[i].contains(&format!(" at {at}: ")),
            "{case}: {violations:#?}"
        );
    }
    // A body cut short.
    let response = client()
        .post(format!("{}/api/v10{path}", fake.base_url()))
        .header("authorization", format!("Bot {BOT_TOKEN}"))
        .header("content-type", "multipart/form-data; boundary=b")
        .body("--b\r\nContent-Disposition: form-data; name=\"payload_json\"\r\n\r\n{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let violations = fake.violations();
    assert!(
        violations
            .last()
            .is_some_and(|v| v.contains("Malformed multipart body")),
        "{violations:#?}"
    );
    assert!(fake.messages(CHANNEL_ID).is_empty());
}

#[tokio::test]
async fn a_body_over_the_upload_limit_is_413_request_entity_too_large() {
    let fake = FakeDiscord::start().await;
    let huge = multipart::Part::bytes(vec![0u8; UPLOAD_LIMIT])
        .file_name("timeline.png")
        .mime_str("image/png")
        .unwrap();
    let form = multipart::Form::new()
        .part("payload_json", payload_part(&card_payload("joined", "n")))
        .part("files[0]", huge);
    let response = send_form(
        &fake,
        reqwest::Method::POST,
        &messages_path(CHANNEL_ID),
        form,
    )
    .await;
    assert_eq!(response.status(), 413);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["code"], 40005, "{answer}");
    assert_eq!(fake.violations().len(), 1, "{:#?}", fake.violations());
    assert!(fake.messages(CHANNEL_ID).is_empty());
}

#[tokio::test]
async fn a_multipart_edit_adds_a_file_and_keeps_only_the_listed_attachments() {
    let fake = FakeDiscord::start().await;
    let created: Value = post_message(&fake, CHANNEL_ID, &json!({"content": "joined"}))
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let message_id: u64 = id.parse().unwrap();
    let path = message_path(CHANNEL_ID, &id);
    let edit = |content: &str, attachments: Value| json!({"content": content, "allowed_mentions": {"parse": []}, "attachments": attachments});

    // An edit adds the timeline.
    let first = edit(
        "joined, 1 caller",
        json!([{"id": 0, "filename": "timeline.png"}]),
    );
    let response = send_form(&fake, reqwest::Method::PATCH, &path, card_form(&first)).await;
    assert_eq!(response.status(), 200);
    let answer: serenity::all::Message = response.json().await.unwrap();
    assert_eq!(answer.attachments.len(), 1);
    assert!(answer.edited_timestamp.is_some());
    let timeline = fake.attachments(CHANNEL_ID, message_id);
    assert_eq!(timeline.len(), 1);
    assert_eq!(timeline[0].bytes, PNG);

    // Listing it keeps it beside a new file.
    let second = edit(
        "joined, 2 callers",
        json!([{"id": timeline[0].id.to_string()}, {"id": 0, "filename": "later.png"}]),
    );
    let form = multipart::Form::new()
        .part("payload_json", payload_part(&second))
        .part("files[0]", png_part("upload.png"));
    let response = send_form(&fake, reqwest::Method::PATCH, &path, form).await;
    assert_eq!(response.status(), 200);
    let both = fake.attachments(CHANNEL_ID, message_id);
    let names: Vec<&str> = both.iter().map(|a| a.filename.as_str()).collect();
    assert_eq!(names, vec!["timeline.png", "later.png"]);

    // Not listing them replaces them.
    let third = edit(
        "joined, 3 callers",
        json!([{"id": 0, "filename": "timeline.png"}]),
    );
    let response = send_form(&fake, reqwest::Method::PATCH, &path, card_form(&third)).await;
    assert_eq!(response.status(), 200);
    let now = fake.attachments(CHANNEL_ID, message_id);
    assert_eq!(now.len(), 1);
    assert!(both.iter().all(|a| a.id != now[0].id));
    let stored = fake.messages(CHANNEL_ID);
    assert_eq!(stored[0]["content"], "joined, 3 callers");
    assert_eq!(stored[0]["attachments"].as_array().unwrap().len(), 1);
    assert_eq!(
        fake.edits(CHANNEL_ID, message_id),
        vec![first, second, third]
    );

    // An entry naming an attachment the message does not have is a violation.
    let stale = edit("joined", json!([{"id": both[1].id.to_string()}]));
    let response = send_form(
        &fake,
        reqwest::Method::PATCH,
        &path,
        multipart::Form::new().part("payload_json", payload_part(&stale)),
    )
    .await;
    assert_eq!(response.status(), 400);
    let violations = fake.violations();
    assert_eq!(violations.len(), 1, "{violations:#?}");
    assert!(
        violations[0].contains("attachments.0.id"),
        "{violations:#?}"
    );
    assert_eq!(fake.edits(CHANNEL_ID, message_id).len(), 3);
}

#[tokio::test]
async fn an_edit_of_a_deleted_message_is_404_unknown_message() {
    let fake = FakeDiscord::start().await;
    let mut ids = Vec::new();
    for content in ["deleted by request", "deleted by a moderator"] {
        let created: Value = post_message(&fake, CHANNEL_ID, &json!({"content": content}))
            .await
            .json()
            .await
            .unwrap();
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    let delete = |id: &str| {
        client()
            .delete(format!(
                "{}/api/v10{}",
                fake.base_url(),
                message_path(CHANNEL_ID, id)
            ))
            .header("authorization", format!("Bot {BOT_TOKEN}"))
            .send()
    };
    assert_eq!(delete(&ids[0]).await.unwrap().status(), 204);
    assert!(fake.delete_message(CHANNEL_ID, ids[1].parse().unwrap()));
    assert!(fake.messages(CHANNEL_ID).is_empty());
    assert!(fake.all_messages().is_empty());

    let payload =
        json!({"content": "edited", "attachments": [{"id": 0, "filename": "timeline.png"}]});
    for id in &ids {
        let path = message_path(CHANNEL_ID, id);
        let response = send_form(&fake, reqwest::Method::PATCH, &path, card_form(&payload)).await;
        assert_eq!(response.status(), 404);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer, json!({"code": 10008, "message": "Unknown Message"}));
    }
    let again = delete(&ids[0]).await.unwrap();
    assert_eq!(again.status(), 404);
    assert_eq!(again.json::<Value>().await.unwrap()["code"], 10008);
    assert!(!fake.delete_message(CHANNEL_ID, ids[1].parse().unwrap()));
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
}

#[tokio::test]
async fn editing_a_message_is_a_bucket_apart_from_creating_one() {
    let fake = FakeDiscord::start_with(FakeOptions {
        channel_limit: Some((1, Duration::from_secs(60))),
        ..FakeOptions::default()
    })
    .await;
    let path = messages_path(CHANNEL_ID);
    let created = send_form(
        &fake,
        reqwest::Method::POST,
        &path,
        card_form(&card_payload("joined", "card-0001")),
    )
    .await;
    assert_eq!(created.status(), 200);
    let create_bucket = created.headers()["x-ratelimit-bucket"].clone();
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let limited = send_form(
        &fake,
        reqwest::Method::POST,
        &path,
        card_form(&card_payload("joined", "card-0002")),
    )
    .await;
    assert_eq!(limited.status(), 429, "the create bucket is spent");

    // The create bucket is spent and blocked; the edit route still answers.
    let edit = json!({"content": "joined, 2 callers", "attachments": [{"id": 0, "filename": "timeline.png"}]});
    let edited = send_form(
        &fake,
        reqwest::Method::PATCH,
        &message_path(CHANNEL_ID, &id),
        card_form(&edit),
    )
    .await;
    assert_eq!(edited.status(), 200);
    assert_ne!(edited.headers()["x-ratelimit-bucket"], create_bucket);
    assert_eq!(edited.headers()["x-ratelimit-remaining"], "4");
    assert_eq!(fake.contents(CHANNEL_ID), vec!["joined, 2 callers"]);
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
}

#[tokio::test]
async fn injections_apply_to_a_multipart_create_as_to_a_json_one() {
    let fake = FakeDiscord::start().await;
    let path = messages_path(CHANNEL_ID);
    let send = |nonce: &str| {
        send_form(
            &fake,
            reqwest::Method::POST,
            &path,
            card_form(&card_payload("joined", nonce)),
        )
    };
    fake.fail_next(1, 502);
    assert_eq!(send("card-0001").await.status(), 502);
    fake.refuse_next_message_containing("joined", 403, 50013);
    assert_eq!(send("card-0001").await.status(), 403);
    assert_eq!(send("card-0001").await.status(), 200);
    assert_eq!(fake.messages(CHANNEL_ID).len(), 1);
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
}
