//! Telephony sessions (`docs/ringcentral.md` §5): the state derived from the notifications the platform
//! generated, session and party GETs, and the Delete Call Party kick.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::controller::perform;
use super::state::{Inner, Shared, api_error};
use super::{ParticipantView, PlatformOptions};
use crate::simulator::{CallerRef, ConferenceScript, LeaveSignal};

/// How long after answering a kick its notifications go out (unless they go first).
const AFTER_ANSWER: Duration = Duration::from_millis(30);

/// One telephony session as the platform's notifications describe it.
#[derive(Debug, Clone)]
struct SessionState {
    id: String,
    origin: String,
    creation_time: String,
    /// Latest version of each party, in order of first appearance.
    parties: Vec<Value>,
}

/// Every session, built only by parsing notifications.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    by_id: HashMap<String, SessionState>,
}

fn text<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

fn code(party: &Value) -> &str {
    text(party, "/status/code").unwrap_or("")
}

impl Sessions {
    /// Merges a notification (whole webhook body) into the state, party by party.
    pub(crate) fn apply(&mut self, notification: &Value) {
        let Some(body) = notification.get("body") else {
            return;
        };
        let Some(id) = text(body, "/telephonySessionId") else {
            return;
        };
        let session = self
            .by_id
            .entry(id.to_owned())
            .or_insert_with(|| SessionState {
                id: id.to_owned(),
                origin: text(body, "/origin/type").unwrap_or("Call").to_owned(),
                creation_time: text(body, "/eventTime").unwrap_or_default().to_owned(),
                parties: Vec::new(),
            });
        for party in body
            .get("parties")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(party_id) = text(party, "/id") else {
                continue;
            };
            match session
                .parties
                .iter_mut()
                .find(|known| text(known, "/id") == Some(party_id))
            {
                Some(known) => *known = party.clone(),
                None => session.parties.push(party.clone()),
            }
        }
    }

    fn party(&self, session: &str, party: &str) -> Option<&Value> {
        self.by_id
            .get(session)?
            .parties
            .iter()
            .find(|known| text(known, "/id") == Some(party))
    }

    /// A party is on unless `Disconnected`, or `Gone` to a peer that is no longer on.
    fn party_on(&self, party: &Value) -> bool {
        match code(party) {
            "Disconnected" => false,
            "Gone" => match (
                text(party, "/status/peerId/telephonySessionId"),
                text(party, "/status/peerId/partyId"),
            ) {
                (Some(session), Some(peer)) => self
                    .party(session, peer)
                    .is_some_and(|peer| code(peer) != "Disconnected"),
                _ => true,
            },
            _ => true,
        }
    }

    /// Whether the session exists and someone is still on it.
    pub(crate) fn is_live(&self, id: &str) -> bool {
        self.by_id
            .get(id)
            .is_some_and(|session| session.parties.iter().any(|party| self.party_on(party)))
    }

    /// When the session began (its first notification's `eventTime`).
    pub(crate) fn creation_time(&self, id: &str) -> Option<&str> {
        self.by_id
            .get(id)
            .map(|session| session.creation_time.as_str())
    }

    /// Whether that party of a live session is still on.
    pub(crate) fn party_is_on(&self, session: &str, party: &str) -> bool {
        self.party(session, party)
            .is_some_and(|party| code(party) != "Disconnected")
    }

    /// The `CallSessionObject` a GET answers; `None` (404) when unknown or over.
    pub(crate) fn render(&self, id: &str, options: &PlatformOptions) -> Option<Value> {
        if !self.is_live(id) {
            return None;
        }
        let session = &self.by_id[id];
        let parties: Vec<Value> = session
            .parties
            .iter()
            .filter(|party| options.list_disconnected_parties || code(party) != "Disconnected")
            .map(|party| call_party(party, options.participant_view))
            .collect();
        let mut body = json!({
            "id": session.id,
            "origin": {"type": session.origin},
            "parties": parties,
            "creationTime": session.creation_time,
        });
        if session.origin == "Conference" {
            let token: String = session.id.bytes().map(|b| format!("{b:02x}")).collect();
            body["voiceCallToken"] = json!(format!("conf_{token}"));
        }
        Some(body)
    }

    fn render_party(&self, session: &str, party: &str, options: &PlatformOptions) -> Option<Value> {
        if !self.is_live(session) {
            return None;
        }
        let party = self.party(session, party)?;
        Some(call_party(party, options.participant_view))
    }
}

/// A notification's party as the REST `CallParty`.
fn call_party(party: &Value, view: ParticipantView) -> Value {
    let mut out = json!({
        "id": party.get("id").cloned().unwrap_or(Value::Null),
        "direction": party.get("direction").cloned().unwrap_or(Value::Null),
        "from": party.get("from").cloned().unwrap_or_else(|| json!({})),
        "to": party.get("to").cloned().unwrap_or_else(|| json!({})),
        "status": {"code": code(party)},
        "muted": party.get("muted").and_then(Value::as_bool).unwrap_or(false),
        "standAlone": party.get("standAlone").and_then(Value::as_bool).unwrap_or(false),
    });
    if let Some(reason) = party.pointer("/status/reason") {
        out["status"]["reason"] = reason.clone();
    }
    if let Some(peer) = party.pointer("/status/peerId") {
        out["status"]["peerId"] = peer.clone();
    }
    if let Some(role) = party.get("conferenceRole") {
        out["conferenceRole"] = role.clone();
    }
    if let Some(extension) = party.get("extensionId") {
        out["owner"] = json!({
            "accountId": party.get("accountId").cloned().unwrap_or(Value::Null),
            "extensionId": extension,
        });
    }
    let connected_participant =
        text(party, "/conferenceRole") == Some("Participant") && code(party) == "Answered";
    if connected_participant {
        match view {
            ParticipantView::Answered => {
                if let Some(status) = out["status"].as_object_mut() {
                    status.remove("peerId");
                }
            }
            ParticipantView::GoneWithPeer => out["status"]["code"] = json!("Gone"),
        }
    }
    out
}

fn session_not_found() -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "TAS-102",
        "Telephony session not found",
    )
}

fn party_not_found() -> Response {
    api_error(StatusCode::NOT_FOUND, "TAS-103", "Call party not found")
}

/// `GET /restapi/v1.0/account/{account}/telephony/sessions/{session}`.
pub(crate) async fn get_session(
    State(shared): State<Arc<Shared>>,
    Path((_account, session)): Path<(String, String)>,
) -> Response {
    let rendered = shared.lock().sessions.render(&session, &shared.options);
    match rendered {
        Some(body) => Json(body).into_response(),
        None => session_not_found(),
    }
}

/// `GET …/sessions/{session}/parties/{party}`.
pub(crate) async fn get_party(
    State(shared): State<Arc<Shared>>,
    Path((_account, session, party)): Path<(String, String, String)>,
) -> Response {
    let rendered = shared
        .lock()
        .sessions
        .render_party(&session, &party, &shared.options);
    match rendered {
        Some(body) => Json(body).into_response(),
        None => party_not_found(),
    }
}

/// What a DELETE does to a conference's script.
#[derive(Debug, Clone, Copy)]
enum Action {
    /// Removes a merged caller (the conference-side party, then the original).
    Kick(CallerRef),
    /// Hangs up a plain call that was never merged.
    HangUp(CallerRef),
    /// The host leaves; the conference stays up.
    HostLeaves,
    /// The conference ends for everyone.
    End,
}

impl Action {
    fn apply(self, script: &mut ConferenceScript) {
        match self {
            Self::Kick(caller) => script.kick(caller),
            Self::HangUp(caller) => script.hang_up(caller, LeaveSignal::Both),
            Self::HostLeaves => script.host_leaves(),
            Self::End => script.end(),
        }
    }
}

enum Target {
    Found(usize, Action),
    /// The party exists and is on, but the fault switch hides it.
    Hidden,
    Missing,
}

/// Finds what `DELETE …/sessions/{session}/parties/{party}` removes.
fn find_party(inner: &Inner, session: &str, party: &str, keep_alive: bool) -> Target {
    for (index, entry) in inner.conferences.iter().enumerate() {
        let script = &entry.script;
        if script.conference_id() == session {
            if party == script.host_party_id() {
                return if script.host_present() {
                    Target::Found(
                        index,
                        if keep_alive {
                            Action::HostLeaves
                        } else {
                            Action::End
                        },
                    )
                } else {
                    Target::Missing
                };
            }
            let found = script.callers().find(|&caller| {
                script.conference_party(caller) == Some(party) && script.is_present(caller)
            });
            return match found {
                Some(_) if inner.faults.hidden.contains(party) => Target::Hidden,
                Some(caller) if inner.sessions.party_is_on(session, party) => {
                    Target::Found(index, Action::Kick(caller))
                }
                _ => Target::Missing,
            };
        }
        for caller in script.callers() {
            let (original_session, original_party) = script.original_ids(caller);
            if original_session == session && original_party == party && script.is_present(caller) {
                let action = if script.conference_party(caller).is_some() {
                    Action::Kick(caller)
                } else {
                    Action::HangUp(caller)
                };
                return Target::Found(index, action);
            }
        }
    }
    Target::Missing
}

/// `DELETE …/sessions/{session}/parties/{party}` (optional body `{"keepConferenceAlive":bool}`).
pub(crate) async fn delete_party(
    State(shared): State<Arc<Shared>>,
    Path((_account, session, party)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let keep_alive = if body.iter().all(u8::is_ascii_whitespace) {
        false
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(value) => value
                .get("keepConferenceAlive")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            Err(_) => {
                return api_error(
                    StatusCode::BAD_REQUEST,
                    "CMN-101",
                    "Parameter [body] value is invalid",
                );
            }
        }
    };
    let (done, delay, before) = {
        let mut inner = shared.lock();
        if inner.faults.forbidden.contains(&party) {
            return api_error(
                StatusCode::FORBIDDEN,
                "CMN-408",
                "In order to call this API endpoint, user needs to have [CallControl] permission for requested resource.",
            );
        }
        let (index, action) = match find_party(&inner, &session, &party, keep_alive) {
            Target::Found(index, action) => (index, action),
            Target::Hidden | Target::Missing => return party_not_found(),
        };
        let before = inner.faults.leave_before_answer;
        let delay = inner.faults.answer_delay;
        let not_before = (!before).then(|| Instant::now() + AFTER_ANSWER);
        let ((), done) = perform(
            &shared,
            &mut inner,
            index,
            |script| action.apply(script),
            |_, _| true,
            not_before,
        );
        (done, delay, before)
    };
    if before {
        let _ = done.await;
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `DELETE …/sessions/{session}`: ends a conference for everyone, or hangs up a plain call.
pub(crate) async fn delete_session(
    State(shared): State<Arc<Shared>>,
    Path((_account, session)): Path<(String, String)>,
) -> Response {
    let done = {
        let mut inner = shared.lock();
        let mut found = None;
        for (index, entry) in inner.conferences.iter().enumerate() {
            let script = &entry.script;
            if script.conference_id() == session && script.is_live() {
                found = Some((index, Action::End));
                break;
            }
            if let Some(caller) = script.callers().find(|&caller| {
                script.original_ids(caller).0 == session
                    && script.is_present(caller)
                    && script.conference_party(caller).is_none()
            }) {
                found = Some((index, Action::HangUp(caller)));
                break;
            }
        }
        let Some((index, action)) = found else {
            return session_not_found();
        };
        let ((), done) = perform(
            &shared,
            &mut inner,
            index,
            |script| action.apply(script),
            |_, _| true,
            Some(Instant::now() + AFTER_ANSWER),
        );
        done
    };
    drop(done);
    StatusCode::NO_CONTENT.into_response()
}
