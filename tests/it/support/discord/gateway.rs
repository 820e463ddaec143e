//! The fake gateway: a websocket that serenity 0.12.5's shard accepts. It sends HELLO, records
//! IDENTIFY and answers it with READY, answers heartbeats, and forwards the dispatches tests push
//! (`FakeDiscord::send_interaction`) with increasing sequence numbers. Text frames only (serenity
//! reads binary frames as zlib).

use super::{Identify, Shared};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

static CONNECTIONS: AtomicU64 = AtomicU64::new(1);

/// What a connection is told to send.
#[derive(Debug)]
pub enum Outgoing {
    /// A dispatch `(t, d)`; the connection numbers it.
    Dispatch(String, Value),
    /// A close frame with this code, then the end of the connection.
    Close(u16),
}

pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    mut stop: tokio::sync::watch::Receiver<()>,
) {
    // Dropping the set (when the fake is dropped) ends every connection.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    continue;
                };
                let shared = shared.clone();
                connections.spawn(async move {
                    if let Ok(ws) = tokio_tungstenite::accept_async(stream).await {
                        connection(ws, shared).await;
                    }
                });
            }
            changed = stop.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn connection(
    ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    shared: Arc<Shared>,
) {
    let id = CONNECTIONS.fetch_add(1, Ordering::Relaxed);
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Outgoing>();
    let mut seq: u64 = 0;
    let interval = shared.lock().options.heartbeat_interval_ms;
    let hello = json!({"op": 10, "d": {"heartbeat_interval": interval}, "s": null, "t": null});
    if sink.send(Message::Text(hello.to_string())).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            incoming = stream.next() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                    Some(Ok(Message::Binary(_))) => {
                        shared.lock().violation("the gateway client sent a binary frame");
                        continue;
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                };
                let Ok(payload) = serde_json::from_str::<Value>(&text) else {
                    shared.lock().violation(format!("the gateway client sent non-JSON: {text}"));
                    continue;
                };
                let reply = match payload["op"].as_u64() {
                    Some(1) => {
                        shared.lock().heartbeats += 1;
                        Some(json!({"op": 11, "d": null, "s": null, "t": null}))
                    }
                    Some(2) => {
                        let ready = {
                            let mut state = shared.lock();
                            let d = &payload["d"];
                            state.identifies.push(Identify {
                                token: d["token"].as_str().map(str::to_owned),
                                intents: d["intents"].as_u64(),
                                compress: d["compress"].as_bool(),
                                payload: payload.clone(),
                            });
                            let given = d["token"].as_str().unwrap_or_default();
                            let given = given.strip_prefix("Bot ").unwrap_or(given);
                            let accepted = !given.is_empty()
                                && state.options.token.as_ref().is_none_or(|t| t == given);
                            if accepted {
                                state.gateway_connections.insert(id, tx.clone());
                                Some(ready(&state.options, &shared, d))
                            } else {
                                state.violation(format!("IDENTIFY with a wrong or no token: {d}"));
                                None
                            }
                        };
                        let Some(ready) = ready else {
                            // Discord's "Authentication failed".
                            let frame = CloseFrame {
                                code: CloseCode::from(4004),
                                reason: "Authentication failed.".into(),
                            };
                            let _ = sink.send(Message::Close(Some(frame))).await;
                            break;
                        };
                        seq += 1;
                        shared.lock().dispatches.push(("READY".into(), ready.clone()));
                        Some(json!({"op": 0, "t": "READY", "s": seq, "d": ready}))
                    }
                    Some(6) => {
                        // Resume: this fake keeps no sessions; ask for a new IDENTIFY.
                        Some(json!({"op": 9, "d": false, "s": null, "t": null}))
                    }
                    Some(3) | Some(4) | Some(8) => None,
                    other => {
                        shared.lock().violation(format!("gateway opcode {other:?}: {payload}"));
                        None
                    }
                };
                if let Some(reply) = reply {
                    if sink.send(Message::Text(reply.to_string())).await.is_err() {
                        break;
                    }
                }
            }
            Some(outgoing) = rx.recv() => {
                let (t, d) = match outgoing {
                    Outgoing::Dispatch(t, d) => (t, d),
                    Outgoing::Close(code) => {
                        let frame = CloseFrame {
                            code: CloseCode::from(code),
                            reason: "closed by the fake".into(),
                        };
                        let _ = sink.send(Message::Close(Some(frame))).await;
                        break;
                    }
                };
                seq += 1;
                shared.lock().dispatches.push((t.clone(), d.clone()));
                let frame = json!({"op": 0, "t": t, "s": seq, "d": d});
                if sink.send(Message::Text(frame.to_string())).await.is_err() {
                    break;
                }
            }
        }
    }
    shared.lock().gateway_connections.remove(&id);
}

fn ready(options: &super::FakeOptions, shared: &Shared, identify: &Value) -> Value {
    let shard = identify["shard"].clone();
    json!({
        "v": 10,
        "user": {
            "id": options.bot_user_id.to_string(),
            "username": options.bot_username,
            "discriminator": "0",
            "global_name": null,
            "avatar": null,
            "bot": true,
            "mfa_enabled": false,
            "verified": true,
            "flags": 0,
        },
        "guilds": [{"id": options.guild_id.to_string(), "unavailable": true}],
        "session_id": format!("fake-session-{}", super::now_ms()),
        "resume_gateway_url": format!("ws://{}", shared.gateway_addr),
        "shard": if shard.is_array() { shard } else { json!([0, 1]) },
        "application": {"id": options.application_id.to_string(), "flags": 0},
        "private_channels": [],
        "relationships": [],
    })
}
