//! A Discord stand-in for `ringside demo`: just enough of Discord's REST API (under `/api/v10`)
//! for ringside's Discord side to run unchanged, announcer and poster included — channel
//! messages (with `nonce` + `enforce_nonce` honoured), threads, and the bulk overwrite of the
//! guild's commands. What ringside posts is handed to the demo as a terminal preview
//! ([`preview`]), the way Discord would display it.
//!
//! It is not a test double: the integration tests use a fake that validates every request
//! against Discord's OpenAPI description (`tests/it/support/discord/`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// A message as it reached the channel (or a thread).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    pub channel_id: String,
    pub content: String,
}

#[derive(Default)]
struct Channels {
    next_id: u64,
    /// `(channel, nonce)` → message id, for `enforce_nonce`.
    nonces: HashMap<(String, String), u64>,
}

#[derive(Clone)]
struct DemoState {
    channels: Arc<Mutex<Channels>>,
    posted: mpsc::UnboundedSender<Posted>,
}

/// The running stand-in.
pub struct DemoDiscord {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl DemoDiscord {
    /// Starts on a free loopback port; each new message is sent to `posted`.
    pub async fn start(posted: mpsc::UnboundedSender<Posted>) -> std::io::Result<DemoDiscord> {
        let state = DemoState {
            channels: Arc::new(Mutex::new(Channels {
                next_id: 1_300_000_000_000_000_000,
                ..Channels::default()
            })),
            posted,
        };
        let router = Router::new()
            .route("/api/v10/channels/{channel}/messages", post(create_message))
            .route(
                "/api/v10/channels/{channel}/messages/{message}/threads",
                post(create_thread),
            )
            .route(
                "/api/v10/applications/{application}/guilds/{guild}/commands",
                put(set_commands),
            )
            .with_state(state);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(DemoDiscord {
            addr,
            stop: Some(stop),
        })
    }

    /// What `discord.api_url` is set to.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for DemoDiscord {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn next_id(channels: &Mutex<Channels>) -> u64 {
    let mut channels = channels
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    channels.next_id += 1;
    channels.next_id
}

async fn create_message(
    State(state): State<DemoState>,
    Path(channel): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    let content = body["content"].as_str().unwrap_or_default().to_owned();
    let nonce = match &body["nonce"] {
        Value::String(nonce) => Some(nonce.clone()),
        Value::Number(nonce) => Some(nonce.to_string()),
        _ => None,
    };
    let enforce = body["enforce_nonce"].as_bool().unwrap_or(false);
    let (id, new) = {
        let mut channels = state
            .channels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let known = nonce
            .as_ref()
            .filter(|_| enforce)
            .and_then(|nonce| channels.nonces.get(&(channel.clone(), nonce.clone())))
            .copied();
        match known {
            Some(id) => (id, false),
            None => {
                channels.next_id += 1;
                let id = channels.next_id;
                if let (Some(nonce), true) = (nonce, enforce) {
                    channels.nonces.insert((channel.clone(), nonce), id);
                }
                (id, true)
            }
        }
    };
    if new {
        let _ = state.posted.send(Posted {
            channel_id: channel.clone(),
            content: content.clone(),
        });
    }
    Json(json!({ "id": id.to_string(), "channel_id": channel, "content": content })).into_response()
}

async fn create_thread(
    State(state): State<DemoState>,
    Path((_channel, _message)): Path<(String, String)>,
) -> Response {
    let id = next_id(&state.channels);
    (
        StatusCode::CREATED,
        Json(json!({ "id": id.to_string(), "type": 11 })),
    )
        .into_response()
}

async fn set_commands() -> Response {
    // serenity reads the answer as the list of registered commands; the demo has no use for it.
    Json(json!([])).into_response()
}

/// `content` as Discord would display it, for a terminal: `**bold**` and backslash escapes
/// shown plainly, `<t:UNIX:style>` as a UTC time, `<@id>` through `mention`, and the
/// zero-width space that keeps `@everyone` inert removed from view.
pub fn preview(content: &str, mention: &dyn Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(content.len());
    let mut rest = content;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix('\\')
            && let Some(escaped) = after.chars().next()
        {
            out.push(escaped);
            rest = &after[escaped.len_utf8()..];
            continue;
        }
        if let Some(after) = rest.strip_prefix("**") {
            rest = after;
            continue;
        }
        if rest.starts_with('<')
            && let Some(end) = rest.find('>')
        {
            let inner = &rest[1..end];
            if let Some(rendered) = tag(inner, mention) {
                out.push_str(&rendered);
                rest = &rest[end + 1..];
                continue;
            }
        }
        if c != '\u{200B}' {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn tag(inner: &str, mention: &dyn Fn(&str) -> String) -> Option<String> {
    if let Some(id) = inner.strip_prefix('@')
        && !id.is_empty()
        && id.chars().all(|c| c.is_ascii_digit())
    {
        return Some(mention(id));
    }
    let mut parts = inner.split(':');
    if parts.next() != Some("t") {
        return None;
    }
    let unix: i64 = parts.next()?.parse().ok()?;
    let style = parts.next().unwrap_or("f");
    let at = time::OffsetDateTime::from_unix_timestamp(unix).ok()?;
    let clock = format!("{:02}:{:02} UTC", at.hour(), at.minute());
    Some(match style {
        "t" | "T" | "R" => clock,
        _ => format!("{} {} {} {clock}", at.day(), at.month(), at.year()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mention(id: &str) -> String {
        if id == "42" {
            "@moderator".into()
        } else {
            "@someone".into()
        }
    }

    #[test]
    fn previews_read_like_discord_shows_them() {
        assert_eq!(
            preview(
                "📞 **Conference started** · host Agent 122 · <t:1709049892:t>",
                &mention
            ),
            "📞 Conference started · host Agent 122 · 16:04 UTC"
        );
        assert_eq!(
            preview(
                "🚫 **Paco Vu** was removed by <@42> — not on the guest list",
                &mention
            ),
            "🚫 Paco Vu was removed by @moderator — not on the guest list"
        );
        assert_eq!(
            preview("**\\*\\*x\\*\\*** @\u{200B}everyone \\<#1\\>", &mention),
            "**x** @everyone <#1>"
        );
        assert_eq!(preview("<unknown> <t:x:R>", &mention), "<unknown> <t:x:R>");
    }

    #[tokio::test]
    async fn messages_are_posted_once_per_nonce() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let discord = DemoDiscord::start(tx).await.unwrap();
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let url = format!("{}/api/v10/channels/7/messages", discord.base_url());
        let body = json!({"content": "hello", "nonce": "n1", "enforce_nonce": true});
        let first: Value = client
            .post(&url)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let again: Value = client
            .post(&url)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(first["id"], again["id"]);
        assert_eq!(
            rx.recv().await,
            Some(Posted {
                channel_id: "7".into(),
                content: "hello".into()
            })
        );
        assert!(rx.try_recv().is_err(), "the resend was not posted again");
    }
}
