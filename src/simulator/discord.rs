//! A Discord stand-in for `ringside demo`: just enough of Discord's REST API (under `/api/v10`)
//! for ringside's Discord side to run unchanged, announcer and poster included — channel
//! messages (with `nonce` + `enforce_nonce` honoured, as JSON or as a multipart upload with
//! files), their edits (the roster card), threads, and the bulk overwrite of the guild's
//! commands. What ringside posts is handed to the demo as a terminal preview
//! ([`preview`]), the way Discord would display it.
//!
//! It is not a test double: the integration tests use a fake that validates every request
//! against Discord's OpenAPI description (`tests/it/support/discord/`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post, put};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// A message as it reached the channel (or a thread), or an edit of one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Posted {
    pub channel_id: String,
    pub content: String,
    /// The message this edits (a roster card); `None` for a new message.
    pub edit_of: Option<String>,
    /// Files uploaded with it: name and bytes.
    pub files: Files,
    /// Its buttons: label, custom id, and whether it is turned off.
    pub buttons: Vec<(String, String, bool)>,
}

/// The buttons of a message body's action rows.
fn buttons(body: &Value) -> Vec<(String, String, bool)> {
    body["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .map(|button| {
            (
                button["label"].as_str().unwrap_or("?").to_owned(),
                button["custom_id"].as_str().unwrap_or_default().to_owned(),
                button["disabled"].as_bool().unwrap_or(false),
            )
        })
        .collect()
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
                "/api/v10/channels/{channel}/messages/{message}",
                patch(edit_message),
            )
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

/// Uploaded files: name and bytes.
type Files = Vec<(String, Vec<u8>)>;

/// A request's JSON body, and its files when it came as a multipart upload (`payload_json` and
/// `files[n]`, as Discord takes them).
fn read_body(headers: &HeaderMap, raw: &[u8]) -> Option<(Value, Files)> {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(boundary) = content_type
        .strip_prefix("multipart/form-data")
        .and_then(|rest| rest.split("boundary=").nth(1))
    else {
        return serde_json::from_slice(raw)
            .ok()
            .map(|body| (body, Vec::new()));
    };
    let boundary = boundary.trim_matches('"');
    let mut body = None;
    let mut files = Vec::new();
    for (name, filename, bytes) in parts(raw, boundary.as_bytes()) {
        match (name.as_str(), filename) {
            ("payload_json", _) => body = serde_json::from_slice(&bytes).ok(),
            (_, Some(filename)) => files.push((filename, bytes)),
            _ => {}
        }
    }
    body.map(|body| (body, files))
}

/// The parts of a multipart body: each one's name, file name and bytes.
fn parts(raw: &[u8], boundary: &[u8]) -> Vec<(String, Option<String>, Vec<u8>)> {
    let delimiter = [b"--".as_slice(), boundary].concat();
    let mut found = Vec::new();
    let mut rest = raw;
    while let Some(start) = find(rest, &delimiter) {
        rest = &rest[start + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let Some(end) = find(rest, &delimiter) else {
            break;
        };
        let part = rest[..end].strip_prefix(b"\r\n").unwrap_or(&rest[..end]);
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        if let Some(split) = find(part, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&part[..split]);
            let disposition = head
                .split("\r\n")
                .find(|line| {
                    line.to_ascii_lowercase()
                        .starts_with("content-disposition:")
                })
                .unwrap_or_default();
            let field = |key: &str| {
                disposition
                    .split(';')
                    .map(str::trim)
                    .find_map(|item| item.strip_prefix(key))
                    .map(|value| value.trim_matches('"').to_owned())
            };
            if let Some(name) = field("name=") {
                found.push((name, field("filename="), part[split + 4..].to_vec()));
            }
        }
    }
    found
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Discord's answer to a body it cannot read.
fn invalid_json() -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"code": 50109, "message": "The request body contains invalid JSON."})),
    )
        .into_response()
}

async fn create_message(
    State(state): State<DemoState>,
    Path(channel): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let Some((body, files)) = read_body(&headers, &raw) else {
        return invalid_json();
    };
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
            edit_of: None,
            files,
            buttons: buttons(&body),
        });
    }
    Json(json!({ "id": id.to_string(), "channel_id": channel, "content": content })).into_response()
}

async fn edit_message(
    State(state): State<DemoState>,
    Path((channel, message)): Path<(String, String)>,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let Some((body, files)) = read_body(&headers, &raw) else {
        return invalid_json();
    };
    let content = body["content"].as_str().unwrap_or_default().to_owned();
    let _ = state.posted.send(Posted {
        channel_id: channel.clone(),
        content: content.clone(),
        edit_of: Some(message.clone()),
        files,
        buttons: buttons(&body),
    });
    Json(json!({ "id": message, "channel_id": channel, "content": content })).into_response()
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
    if let Some(id) = inner.strip_prefix("@&")
        && !id.is_empty()
        && id.chars().all(|c| c.is_ascii_digit())
    {
        return Some("@moderators".to_owned());
    }
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
                content: "hello".into(),
                ..Posted::default()
            })
        );
        assert!(rx.try_recv().is_err(), "the resend was not posted again");

        // An edit with a picture, uploaded the way ringside's poster uploads it.
        let form = reqwest::multipart::Form::new()
            .part(
                "payload_json",
                reqwest::multipart::Part::text(
                    json!({"content": "edited", "attachments": [{"id": 0, "filename": "t.png"}]})
                        .to_string(),
                )
                .mime_str("application/json")
                .unwrap(),
            )
            .part(
                "files[0]",
                reqwest::multipart::Part::bytes(b"\x89PNG\r\n--x".to_vec())
                    .file_name("t.png")
                    .mime_str("image/png")
                    .unwrap(),
            );
        let id = first["id"].as_str().unwrap();
        client
            .patch(format!("{url}/{id}"))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(
            rx.recv().await,
            Some(Posted {
                channel_id: "7".into(),
                content: "edited".into(),
                edit_of: Some(id.to_owned()),
                files: vec![("t.png".into(), b"\x89PNG\r\n--x".to_vec())],
                buttons: Vec::new(),
            })
        );
    }
}
