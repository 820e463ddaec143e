//! The fake's REST API: every request under `/api/v10` is recorded, matched against the OpenAPI
//! description and validated, then answered by the routes ringside uses.
//!
//! Rate limits: every answer carries `X-RateLimit-*` headers from a bucket per route template
//! and major parameter. Message creation can be limited for real ([`super::FakeOptions::
//! channel_limit`]) and is the route the injections (`rate_limit_next`, `fail_next`,
//! `refuse_*`) apply to. A request to a bucket the fake answered 429 for, before the
//! `retry_after` it gave, is a violation. Editing a message is its own bucket, as on Discord.
//!
//! Bodies: JSON, or a `multipart/form-data` upload (`multipart`) whose `payload_json` is then
//! validated and handled exactly as a JSON body would be (nonces, buckets, injections), its
//! `files[n]` parts becoming the message's attachments. A body over Discord's upload limit is
//! answered 413 / 40005. Every refused body is a violation, answered 400 / 50035 Invalid Form
//! Body with the path of the problem, as Discord answers.

use super::multipart::{self, Part, UPLOAD_LIMIT};
use super::openapi::{self, RouteError, RouteMatch};
use super::{
    Attachment, Bucket, Callback, OriginalEdit, Recorded, Shared, State, StoredMessage, Thread,
};
use super::{error_body, error_message, interactions, timestamp_now};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

const API_PREFIX: &str = "/api/v10";
const MESSAGES: &str = "/channels/{channel_id}/messages";
const MESSAGE: &str = "/channels/{channel_id}/messages/{message_id}";

/// A body over [`UPLOAD_LIMIT`]: read no further, not kept.
struct TooLarge;

pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    mut stop: tokio::sync::watch::Receiver<()>,
) {
    let app = Router::new().fallback(handle).with_state(shared);
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            // Returns when the fake is dropped (the sender goes away).
            while stop.changed().await.is_ok() {}
        })
        .await;
}

/// An answer before the rate-limit headers are added.
struct Answer {
    status: u16,
    body: Option<Value>,
    retry_after: Option<f64>,
}

impl Answer {
    fn json(status: u16, body: Value) -> Answer {
        Answer {
            status,
            body: Some(body),
            retry_after: None,
        }
    }

    fn empty(status: u16) -> Answer {
        Answer {
            status,
            body: None,
            retry_after: None,
        }
    }

    fn error(status: u16, code: u64) -> Answer {
        Answer::json(status, error_body(code, error_message(code)))
    }

    fn not_found() -> Answer {
        Answer::json(404, json!({"message": "404: Not Found", "code": 0}))
    }

    fn rate_limited(retry_after: f64) -> Answer {
        Answer {
            status: 429,
            body: Some(json!({
                "message": "You are being rate limited.",
                "retry_after": retry_after,
                "global": false,
            })),
            retry_after: Some(retry_after),
        }
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn handle(
    AxumState(shared): AxumState<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let received = Instant::now();
    let body: Result<Bytes, TooLarge> = match Limited::new(body, UPLOAD_LIMIT).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(TooLarge),
        // The client went away mid-body: nobody reads an answer.
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    };
    let raw: &[u8] = body.as_deref().unwrap_or_default();
    let full_path = uri.path().to_owned();
    let path = full_path
        .strip_prefix(API_PREFIX)
        .unwrap_or(&full_path)
        .to_owned();
    let parsed: Option<Value> = if raw.is_empty() {
        None
    } else {
        serde_json::from_slice(raw).ok()
    };
    let mut record = Recorded {
        method: method.as_str().to_owned(),
        path: path.clone(),
        query: uri.query().map(str::to_owned),
        template: None,
        authorization: header(&headers, "authorization"),
        user_agent: header(&headers, "user-agent"),
        content_type: header(&headers, "content-type"),
        audit_log_reason: header(&headers, "x-audit-log-reason"),
        body: parsed.clone().unwrap_or(Value::Null),
        files: Vec::new(),
        raw_body: raw.to_vec(),
        status: 0,
        received,
    };
    let (answer, limit_headers, delay) = {
        let mut state = shared.lock();
        let (answer, bucket) = route(
            &mut state,
            &shared,
            &method,
            &full_path,
            &path,
            &headers,
            body.as_deref().map_err(|_| TooLarge),
            parsed,
            &mut record,
            received,
        );
        record.status = answer.status;
        state.requests.push(record);
        let delay = state
            .message_delay
            .filter(|_| answer.status == 200 && bucket.as_deref().is_some_and(is_message_create));
        let limit_headers = bucket.map(|key| rate_limit_headers(&mut state, &key, &answer));
        (answer, limit_headers, delay)
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }

    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match answer.body {
        Some(body) => (status, axum::Json(body)).into_response(),
        None => status.into_response(),
    };
    for (name, value) in limit_headers.into_iter().flatten() {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            response.headers_mut().insert(n, v);
        }
    }
    response
}

#[allow(clippy::too_many_arguments)]
fn route(
    state: &mut State,
    shared: &Shared,
    method: &Method,
    full_path: &str,
    path: &str,
    headers: &HeaderMap,
    raw: Result<&[u8], TooLarge>,
    parsed: Option<Value>,
    record: &mut Recorded,
    received: Instant,
) -> (Answer, Option<String>) {
    let spec = openapi::spec();
    if !full_path.starts_with(API_PREFIX) {
        state.violation(format!(
            "{method} {full_path}: not under {API_PREFIX} (unknown route)"
        ));
        return (Answer::not_found(), None);
    }
    let matched = match spec.route(method.as_str(), path) {
        Ok(m) => m,
        Err(RouteError::UnknownPath) => {
            state.violation(format!("{method} {path}: unknown route"));
            return (Answer::not_found(), None);
        }
        Err(RouteError::MethodNotAllowed(template)) => {
            state.violation(format!(
                "{method} {path}: {template} exists, but not with {method}"
            ));
            return (Answer::not_found(), None);
        }
    };
    record.template = Some(matched.template.clone());
    let bucket_key = bucket_key(method, &matched);

    // A client that was told to wait must wait.
    if let Some(bucket) = state.buckets.get_mut(&bucket_key) {
        if let Some(until) = bucket.blocked_until {
            if received < until {
                let early = until - received;
                state.violation(format!(
                    "{method} {path}: request before retry_after ({} ms early)",
                    early.as_millis()
                ));
                return (
                    Answer::rate_limited(round_ms(early.as_secs_f64())),
                    Some(bucket_key),
                );
            }
            bucket.blocked_until = None;
        }
    }

    if let Err(problem) = spec.check_params(&matched) {
        state.violation(format!(
            "{method} {path}: bad path parameter {}: {}",
            problem.dotted(),
            problem.message
        ));
        return (invalid_form(&problem), Some(bucket_key));
    }

    let needs_bot_token = !matched.template.starts_with("/interactions/")
        && !matched.template.starts_with("/webhooks/");
    if needs_bot_token {
        let expected = state.options.token.clone();
        match &record.authorization {
            Some(auth)
                if auth.starts_with("Bot ")
                    && auth.len() > 4
                    && expected.as_ref().is_none_or(|t| auth[4..] == **t) => {}
            Some(_) => {
                state.violation(format!(
                    "{method} {path}: Authorization is not `Bot <the bot's token>`"
                ));
                return (
                    Answer::json(401, json!({"message": "401: Unauthorized", "code": 0})),
                    None,
                );
            }
            None => {
                state.violation(format!("{method} {path}: no Authorization header"));
                return (
                    Answer::json(401, json!({"message": "401: Unauthorized", "code": 0})),
                    None,
                );
            }
        }
    }

    let Ok(raw) = raw else {
        state.violation(format!(
            "{method} {path}: a body over Discord's upload limit of {UPLOAD_LIMIT} bytes"
        ));
        return (Answer::error(413, 40005), Some(bucket_key));
    };
    let content_type = record.content_type.clone().unwrap_or_default();
    let (body, files) = if multipart::is_multipart(&content_type) {
        match read_form(state, method, path, &matched, &content_type, raw) {
            Ok(upload) => (upload.payload, upload.files),
            Err(answer) => return (answer, Some(bucket_key)),
        }
    } else {
        match read_json(state, method, path, &matched, headers, raw, parsed) {
            Ok(body) => (body, Vec::new()),
            Err(answer) => return (answer, Some(bucket_key)),
        }
    };
    record.body = body.clone();
    record.files = files.clone();
    // Attachments: only the message routes are held to the files they describe.
    if [MESSAGES, MESSAGE].contains(&matched.template.as_str()) && body.is_object() {
        let may_keep = matched.template == MESSAGE;
        if let Err(problem) = multipart::check_attachments(&body, &files, may_keep) {
            return (
                refused(state, method, path, "invalid attachments", &problem),
                Some(bucket_key),
            );
        }
    }

    let answer = match (method.as_str(), matched.template.as_str()) {
        ("POST", MESSAGES) => create_message(state, &matched, &bucket_key, body, files, received),
        ("POST", "/channels/{channel_id}/messages/{message_id}/threads") => {
            create_thread(state, &matched, &body)
        }
        ("PATCH", MESSAGE) => edit_message(state, method, path, &matched, body, files),
        ("DELETE", MESSAGE) => {
            let (channel_id, message_id) = (matched.id("channel_id"), matched.id("message_id"));
            if !state.known_channels.contains(&channel_id) {
                Answer::error(404, 10003)
            } else if state.remove_message(channel_id, message_id) {
                Answer::empty(204)
            } else {
                Answer::error(404, 10008)
            }
        }
        ("GET", MESSAGE) => {
            let (channel_id, message_id) = (matched.id("channel_id"), matched.id("message_id"));
            match find_message(state, channel_id, message_id) {
                Some(m) => Answer::json(200, m.json.clone()),
                None => Answer::error(404, 10008),
            }
        }
        ("GET", "/channels/{channel_id}") => get_channel(state, matched.id("channel_id")),
        ("GET", "/guilds/{guild_id}") => get_guild(state, matched.id("guild_id")),
        ("GET", "/guilds/{guild_id}/members/{user_id}") => {
            get_member(state, matched.id("guild_id"), matched.id("user_id"))
        }
        ("GET", "/users/@me") => Answer::json(200, current_user(state)),
        // Serenity's `get_current_application_info` reads the OAuth2 one.
        ("GET", "/applications/@me") | ("GET", "/oauth2/applications/@me") => {
            Answer::json(200, application(state))
        }
        ("GET", "/gateway") => Answer::json(200, json!({"url": gateway_url(shared)})),
        ("GET", "/gateway/bot") => Answer::json(
            200,
            json!({
                "url": gateway_url(shared),
                "shards": 1,
                "session_start_limit": {
                    "total": 1000, "remaining": 999, "reset_after": 86_400_000, "max_concurrency": 1
                }
            }),
        ),
        ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands") => {
            put_commands(state, &matched, body)
        }
        ("POST", "/interactions/{interaction_id}/{interaction_token}/callback") => {
            callback(state, &matched, body, received)
        }
        ("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/@original") => {
            edit_original(state, &matched, body, received)
        }
        ("GET", "/webhooks/{webhook_id}/{webhook_token}/messages/@original") => {
            get_original(state, &matched)
        }
        ("DELETE", "/webhooks/{webhook_id}/{webhook_token}/messages/@original") => {
            if state
                .originals
                .remove(matched.param("webhook_token"))
                .is_some()
            {
                Answer::empty(204)
            } else {
                Answer::error(404, 10008)
            }
        }
        (m, template) => {
            state.violation(format!(
                "{m} {path}: {template} is a Discord route the fake does not implement"
            ));
            Answer::not_found()
        }
    };
    (answer, Some(bucket_key))
}

/// A JSON body (or none), validated against the operation's `application/json` schema.
fn read_json(
    state: &mut State,
    method: &Method,
    path: &str,
    matched: &RouteMatch,
    headers: &HeaderMap,
    raw: &[u8],
    parsed: Option<Value>,
) -> Result<Value, Answer> {
    let spec = openapi::spec();
    let body_schema = spec.body_schema(method.as_str(), &matched.template);
    let body = match (parsed, raw.is_empty()) {
        (Some(v), _) => v,
        (None, true) => Value::Null,
        (None, false) => {
            state.violation(format!("{method} {path}: the body is not JSON"));
            return Err(Answer::json(
                400,
                json!({"code": 50109, "message": "The request body contains invalid JSON."}),
            ));
        }
    };
    if body_schema.is_some() {
        let is_json =
            header(headers, "content-type").is_some_and(|c| c.starts_with("application/json"));
        if !raw.is_empty() && !is_json {
            state.violation(format!(
                "{method} {path}: a JSON body without `Content-Type: application/json`"
            ));
        }
        let closed = state.options.closed_objects;
        let checked = if raw.is_empty() {
            let required = spec
                .operation(method.as_str(), &matched.template)
                .and_then(|op| op["requestBody"]["required"].as_bool())
                .unwrap_or(false);
            if required {
                Err(openapi::Problem::at(
                    &[],
                    "BASE_TYPE_REQUIRED",
                    "This field is required",
                ))
            } else {
                Ok(())
            }
        } else {
            spec.validate_body(method.as_str(), &matched.template, &body, closed)
                .and_then(|()| extra_checks(&matched.template, &body))
        };
        if let Err(problem) = checked {
            return Err(refused(state, method, path, "invalid body", &problem));
        }
    }
    Ok(body)
}

/// A `multipart/form-data` body: its parts by Discord's rules (`multipart::read_upload`), its
/// `payload_json` against the operation's form schema, as a JSON body would be.
fn read_form(
    state: &mut State,
    method: &Method,
    path: &str,
    matched: &RouteMatch,
    content_type: &str,
    raw: &[u8],
) -> Result<multipart::Upload, Answer> {
    let spec = openapi::spec();
    let Some(form) = spec.multipart_body(method.as_str(), &matched.template) else {
        let problem = openapi::Problem::at(
            &[],
            "BASE_TYPE_BAD",
            format!("{} takes no multipart/form-data body.", matched.template),
        );
        return Err(refused(
            state,
            method,
            path,
            "invalid multipart body",
            &problem,
        ));
    };
    let closed = state.options.closed_objects;
    multipart::read_upload(content_type, raw, &form.file_fields)
        .and_then(|upload| {
            spec.validate_payload(&form, &upload.payload, closed)
                .and_then(|()| extra_checks(&matched.template, &upload.payload))
                .map(|()| upload)
        })
        .map_err(|problem| refused(state, method, path, "invalid multipart body", &problem))
}

/// Records a refused body as a violation and answers it as Discord does: 400 / 50035.
fn refused(
    state: &mut State,
    method: &Method,
    path: &str,
    what: &str,
    problem: &openapi::Problem,
) -> Answer {
    state.violation(format!(
        "{method} {path}: {what} at {}: {} ({})",
        problem.dotted(),
        problem.message,
        problem.code
    ));
    invalid_form(problem)
}

/// Checks the description cannot express: the 6000-character total across a message's embeds.
fn extra_checks(template: &str, body: &Value) -> Result<(), openapi::Problem> {
    let carries_embeds = template == "/channels/{channel_id}/messages"
        || template.ends_with("/messages/@original")
        || template.ends_with("/callback");
    let embeds = if template.ends_with("/callback") {
        &body["data"]["embeds"]
    } else {
        &body["embeds"]
    };
    if carries_embeds {
        let total: usize = embeds
            .as_array()
            .into_iter()
            .flatten()
            .map(embed_chars)
            .sum();
        if total > 6000 {
            return Err(openapi::Problem {
                path: vec!["embeds".into()],
                code: "MAX_EMBED_SIZE_EXCEEDED".into(),
                message: format!("Embed size exceeds maximum size of 6000 ({total})"),
            });
        }
    }
    Ok(())
}

fn embed_chars(embed: &Value) -> usize {
    let len = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
    len(&embed["title"])
        + len(&embed["description"])
        + len(&embed["footer"]["text"])
        + len(&embed["author"]["name"])
        + embed["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| len(&f["name"]) + len(&f["value"]))
            .sum::<usize>()
}

fn invalid_form(problem: &openapi::Problem) -> Answer {
    Answer::json(
        400,
        json!({"code": 50035, "message": "Invalid Form Body", "errors": problem.errors_json()}),
    )
}

fn gateway_url(shared: &Shared) -> String {
    format!("ws://{}", shared.gateway_addr)
}

/// Route template plus its major parameter, as Discord buckets requests.
fn bucket_key(method: &Method, matched: &RouteMatch) -> String {
    let major = ["channel_id", "guild_id", "webhook_id", "interaction_id"]
        .iter()
        .find_map(|name| {
            matched
                .params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        })
        .unwrap_or_default();
    format!("{method} {} {major}", matched.template)
}

fn round_ms(secs: f64) -> f64 {
    (secs * 1000.0).ceil() / 1000.0
}

/// Counts the request in its bucket and produces the headers for it.
fn rate_limit_headers(state: &mut State, key: &str, answer: &Answer) -> Vec<(String, String)> {
    let now = Instant::now();
    let (limit, window) = bucket_policy(state, key);
    let bucket = state
        .buckets
        .entry(key.to_owned())
        .or_insert_with(|| new_bucket(key, limit, window, now));
    if now >= bucket.window_start + bucket.window {
        bucket.window_start = now;
        bucket.used = 0;
    }
    if answer.status != 429 {
        bucket.used = bucket.used.saturating_add(1);
    }
    let reset_after = (bucket.window_start + bucket.window).saturating_duration_since(now);
    let reset_after = answer.retry_after.map_or(reset_after.as_secs_f64(), |r| {
        r.max(reset_after.as_secs_f64())
    });
    let remaining = if answer.status == 429 {
        0
    } else {
        bucket.limit.saturating_sub(bucket.used)
    };
    let epoch_now = super::now_ms() as f64 / 1000.0;
    let mut headers = vec![
        ("x-ratelimit-limit".to_owned(), bucket.limit.to_string()),
        ("x-ratelimit-remaining".to_owned(), remaining.to_string()),
        (
            "x-ratelimit-reset".to_owned(),
            format!("{:.3}", epoch_now + reset_after),
        ),
        (
            "x-ratelimit-reset-after".to_owned(),
            format!("{:.3}", round_ms(reset_after)),
        ),
        ("x-ratelimit-bucket".to_owned(), bucket.hash.clone()),
    ];
    if let Some(retry_after) = answer.retry_after {
        bucket.blocked_until = Some(now + Duration::from_secs_f64(retry_after));
        headers.push((
            "retry-after".to_owned(),
            (retry_after.ceil() as u64).max(1).to_string(),
        ));
        headers.push(("x-ratelimit-scope".to_owned(), "user".to_owned()));
    }
    headers
}

fn is_message_create(key: &str) -> bool {
    key.starts_with("POST /channels/{channel_id}/messages ")
}

fn bucket_policy(state: &State, key: &str) -> (u32, Duration) {
    match state.options.channel_limit {
        Some((count, window)) if is_message_create(key) => (count, window),
        _ => (state.options.advertised_limit, Duration::from_secs(1)),
    }
}

fn new_bucket(key: &str, limit: u32, window: Duration, now: Instant) -> Bucket {
    // Discord's bucket hash names the route, not the major parameter.
    let route = key.rsplit_once(' ').map_or(key, |(r, _)| r);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in route.bytes() {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    Bucket {
        hash: format!("{hash:016x}"),
        limit,
        window,
        window_start: now,
        used: 0,
        blocked_until: None,
    }
}

fn create_message(
    state: &mut State,
    matched: &RouteMatch,
    key: &str,
    body: Value,
    files: Vec<Part>,
    received: Instant,
) -> Answer {
    let channel_id = matched.id("channel_id");
    if !state.known_channels.contains(&channel_id) {
        return Answer::error(404, 10003);
    }
    if let Some((count, status)) = state.fail_next {
        state.fail_next = (count > 1).then(|| (count - 1, status));
        return Answer::json(
            status,
            json!({"message": format!("{status}: Internal Server Error"), "code": 0}),
        );
    }
    if let Some((count, retry_after)) = state.rate_limit_next {
        state.rate_limit_next = (count > 1).then(|| (count - 1, retry_after));
        return Answer::rate_limited(retry_after);
    }
    if let Some((status, code)) = state.refused_channels.get(&channel_id) {
        return Answer::error(*status, *code);
    }
    if let Some(i) = state
        .refusals
        .iter()
        .position(|r| (r.matches)(channel_id, &body))
    {
        let refusal = state.refusals.remove(i);
        return Answer::error(refusal.status, refusal.code);
    }
    if let Some((limit, window)) = state.options.channel_limit {
        let bucket = state
            .buckets
            .entry(key.to_owned())
            .or_insert_with(|| new_bucket(key, limit, window, received));
        if received >= bucket.window_start + bucket.window {
            bucket.window_start = received;
            bucket.used = 0;
        }
        if bucket.used >= bucket.limit {
            let wait = (bucket.window_start + bucket.window).saturating_duration_since(received);
            return Answer::rate_limited(round_ms(wait.as_secs_f64()).max(0.001));
        }
    }

    let nonce_key = (body["enforce_nonce"] == json!(true) && !body["nonce"].is_null())
        .then(|| (channel_id, body["nonce"].to_string()));
    if let Some(k) = &nonce_key {
        let window = state.options.nonce_window;
        if let Some((id, at)) = state.nonces.get(k) {
            if received.duration_since(*at) <= window {
                let id = *id;
                if let Some(existing) = state
                    .messages
                    .get(&channel_id)
                    .and_then(|list| list.iter().find(|m| m.id == id))
                {
                    return Answer::json(200, existing.json.clone());
                }
            }
        }
    }

    let id = state.next_id();
    let mut json = message_json(state, id, channel_id, &body);
    let attachments = uploaded(state, &body, files);
    json["attachments"] = attachments_json(channel_id, &attachments);
    state
        .messages
        .entry(channel_id)
        .or_default()
        .push(StoredMessage {
            id,
            channel_id,
            json: json.clone(),
            request: body,
            edits: Vec::new(),
            attachments,
        });
    state.message_order.push((channel_id, id));
    if let Some(k) = nonce_key {
        state.nonces.insert(k, (id, received));
    }
    Answer::json(200, json)
}

fn find_message(state: &State, channel_id: u64, message_id: u64) -> Option<&StoredMessage> {
    state
        .messages
        .get(&channel_id)?
        .iter()
        .find(|m| m.id == message_id)
}

/// Edits a stored message in place: the fields of the body replace the message's; the edit
/// bodies are kept in order in `StoredMessage::edits`. With `attachments`, the message keeps the
/// attachments the entries name and gains the uploaded files (Discord's rule since API v10);
/// without, it keeps all it had and gains the files.
fn edit_message(
    state: &mut State,
    method: &Method,
    path: &str,
    matched: &RouteMatch,
    body: Value,
    files: Vec<Part>,
) -> Answer {
    let (channel_id, message_id) = (matched.id("channel_id"), matched.id("message_id"));
    if !state.known_channels.contains(&channel_id) {
        return Answer::error(404, 10003);
    }
    let Some(kept) = find_message(state, channel_id, message_id).map(|m| m.attachments.clone())
    else {
        return Answer::error(404, 10008);
    };
    let kept = match body.get("attachments") {
        None => kept,
        Some(entries) => {
            let entries = entries.as_array().map(Vec::as_slice).unwrap_or_default();
            let uploaded: Vec<u64> = files
                .iter()
                .filter_map(|f| multipart::file_index(&f.name))
                .collect();
            for (i, entry) in entries.iter().enumerate() {
                let id = multipart::attachment_id(entry);
                let known =
                    id.is_some_and(|id| uploaded.contains(&id) || kept.iter().any(|a| a.id == id));
                if !known {
                    let problem = openapi::Problem::at(
                        &["attachments".to_owned(), i.to_string(), "id".to_owned()],
                        "BASE_TYPE_BAD",
                        format!(
                            "Attachment id {} names neither a files[n] part nor an attachment of the message.",
                            entry["id"]
                        ),
                    );
                    return refused(state, method, path, "invalid attachments", &problem);
                }
            }
            kept.into_iter()
                .filter(|a| {
                    entries
                        .iter()
                        .any(|e| multipart::attachment_id(e) == Some(a.id))
                })
                .collect()
        }
    };
    let mut attachments = kept;
    attachments.extend(uploaded(state, &body, files));
    let Some(stored) = state
        .messages
        .get_mut(&channel_id)
        .and_then(|list| list.iter_mut().find(|m| m.id == message_id))
    else {
        return Answer::error(404, 10008);
    };
    for field in ["content", "embeds", "components", "flags"] {
        if let Some(value) = body.get(field) {
            stored.json[field] = if value.is_null() {
                match field {
                    "content" => json!(""),
                    "flags" => json!(0),
                    _ => json!([]),
                }
            } else {
                value.clone()
            };
        }
    }
    stored.json["attachments"] = attachments_json(channel_id, &attachments);
    stored.json["edited_timestamp"] = json!(timestamp_now());
    stored.attachments = attachments;
    stored.edits.push(body);
    Answer::json(200, stored.json.clone())
}

/// The uploaded files as attachments, each with a fresh id; an `attachments` entry naming the
/// file (`id` = its `n`) gives its `filename` and `description`.
fn uploaded(state: &mut State, body: &Value, files: Vec<Part>) -> Vec<Attachment> {
    let entries = body["attachments"].as_array().cloned().unwrap_or_default();
    files
        .into_iter()
        .map(|file| {
            let n = multipart::file_index(&file.name);
            let entry = entries
                .iter()
                .find(|e| n.is_some() && multipart::attachment_id(e) == n);
            let named = |field: &str| {
                entry
                    .and_then(|e| e[field].as_str())
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
            };
            Attachment {
                id: state.next_id(),
                filename: named("filename").or(file.filename).unwrap_or_default(),
                content_type: file.content_type.unwrap_or_default(),
                description: named("description"),
                bytes: file.data,
            }
        })
        .collect()
}

/// `attachments` of a Message, as Discord describes each file (the description's
/// `MessageAttachmentResponse`: `id`, `filename`, `size`, `url` and `proxy_url` required).
fn attachments_json(channel_id: u64, attachments: &[Attachment]) -> Value {
    attachments
        .iter()
        .map(|a| {
            let at = format!("attachments/{channel_id}/{}/{}", a.id, a.filename);
            let mut json = json!({
                "id": a.id.to_string(),
                "filename": a.filename,
                "size": a.bytes.len(),
                "url": format!("https://cdn.discordapp.com/{at}"),
                "proxy_url": format!("https://media.discordapp.net/{at}"),
                "content_type": a.content_type,
            });
            if let Some(description) = &a.description {
                json["description"] = json!(description);
            }
            json
        })
        .collect()
}

/// A Message as Discord returns it, from a create or edit body.
pub fn message_json(state: &State, id: u64, channel_id: u64, body: &Value) -> Value {
    let embeds: Vec<Value> = body["embeds"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut e| {
            if e.get("type").is_none() {
                e["type"] = json!("rich");
            }
            e
        })
        .collect();
    json!({
        "id": id.to_string(),
        "channel_id": channel_id.to_string(),
        "guild_id": state.options.guild_id.to_string(),
        "author": bot_user(state),
        "content": body["content"].as_str().unwrap_or_default(),
        "timestamp": timestamp_now(),
        "edited_timestamp": null,
        "tts": body["tts"].as_bool().unwrap_or(false),
        "mention_everyone": false,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": embeds,
        "pinned": false,
        "type": 0,
        "flags": body["flags"].as_u64().unwrap_or(0),
        "nonce": body["nonce"].clone(),
        "components": body["components"].as_array().cloned().unwrap_or_default(),
    })
}

fn bot_user(state: &State) -> Value {
    json!({
        "id": state.options.bot_user_id.to_string(),
        "username": state.options.bot_username,
        "discriminator": "0",
        "global_name": null,
        "avatar": null,
        "bot": true,
    })
}

fn current_user(state: &State) -> Value {
    let mut user = bot_user(state);
    user["mfa_enabled"] = json!(false);
    user["verified"] = json!(true);
    user["flags"] = json!(0);
    user["locale"] = json!("en-US");
    user
}

fn application(state: &State) -> Value {
    json!({
        "id": state.options.application_id.to_string(),
        "name": state.options.bot_username,
        "icon": null,
        "description": "",
        "bot_public": false,
        "bot_require_code_grant": false,
        "owner": {
            "id": "1100000000000000999",
            "username": "owner",
            "discriminator": "0",
            "global_name": null,
            "avatar": null,
        },
        "verify_key": interactions::public_key_hex(),
        "team": null,
        "flags": 0,
        "summary": "",
        "interactions_endpoint_url": state.options.interactions_endpoint_url,
        "bot": bot_user(state),
    })
}

fn channel_json(state: &State, channel_id: u64) -> Value {
    if let Some(thread) = state.threads.iter().find(|t| t.id == channel_id) {
        return json!({
            "id": thread.id.to_string(),
            "type": 11,
            "guild_id": state.options.guild_id.to_string(),
            "parent_id": thread.parent_id.to_string(),
            "owner_id": state.options.bot_user_id.to_string(),
            "name": thread.name,
            "position": 0,
            "permission_overwrites": [],
            "nsfw": false,
            "last_message_id": null,
            "rate_limit_per_user": 0,
            "flags": 0,
            "message_count": 0,
            "member_count": 1,
            "total_message_sent": 0,
            "thread_metadata": {
                "archived": false,
                "auto_archive_duration": 1440,
                "archive_timestamp": timestamp_now(),
                "locked": false,
            },
        });
    }
    json!({
        "id": channel_id.to_string(),
        "type": 0,
        "guild_id": state.options.guild_id.to_string(),
        "name": "conference-calls",
        "position": 0,
        "permission_overwrites": state.overwrites.get(&channel_id).cloned().unwrap_or_default(),
        "nsfw": false,
        "topic": null,
        "last_message_id": null,
        "parent_id": null,
        "rate_limit_per_user": 0,
        "flags": 0,
    })
}

fn get_channel(state: &State, channel_id: u64) -> Answer {
    if state.known_channels.contains(&channel_id) {
        Answer::json(200, channel_json(state, channel_id))
    } else {
        Answer::error(404, 10003)
    }
}

fn role_json(id: u64, name: &str, permissions: u64, position: u64, mentionable: bool) -> Value {
    json!({
        "id": id.to_string(),
        "name": name,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": null, "tertiary_color": null},
        "hoist": false,
        "icon": null,
        "unicode_emoji": null,
        "position": position,
        "permissions": permissions.to_string(),
        "managed": false,
        "mentionable": mentionable,
        "flags": 0,
    })
}

fn get_guild(state: &State, guild_id: u64) -> Answer {
    if guild_id != state.options.guild_id {
        return Answer::error(404, 10004);
    }
    let mut roles = vec![role_json(
        guild_id,
        "@everyone",
        state.options.everyone_permissions,
        0,
        false,
    )];
    for (i, (id, name, permissions)) in state.roles.iter().enumerate() {
        let mentionable = state.mentionable_roles.contains(id);
        roles.push(role_json(
            *id,
            name,
            *permissions,
            i as u64 + 1,
            mentionable,
        ));
    }
    Answer::json(
        200,
        json!({
            "id": guild_id.to_string(),
            "name": "Ringside Test Guild",
            "icon": null,
            "splash": null,
            "discovery_splash": null,
            "owner_id": "1100000000000000999",
            "afk_channel_id": null,
            "afk_timeout": 300,
            "widget_enabled": false,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": roles,
            "emojis": [],
            "features": [],
            "mfa_level": 0,
            "application_id": null,
            "system_channel_id": null,
            "system_channel_flags": 0,
            "rules_channel_id": null,
            "vanity_url_code": null,
            "description": null,
            "banner": null,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "public_updates_channel_id": null,
            "nsfw_level": 0,
            "stickers": [],
            "premium_progress_bar_enabled": false,
            "max_members": 500000,
        }),
    )
}

fn get_member(state: &State, guild_id: u64, user_id: u64) -> Answer {
    if guild_id != state.options.guild_id {
        return Answer::error(404, 10004);
    }
    if user_id != state.options.bot_user_id {
        return Answer::error(404, 10007);
    }
    Answer::json(
        200,
        json!({
            "user": bot_user(state),
            "nick": null,
            "avatar": null,
            "roles": state.bot_roles.iter().map(u64::to_string).collect::<Vec<_>>(),
            "joined_at": "2025-01-01T00:00:00.000000+00:00",
            "premium_since": null,
            "deaf": false,
            "mute": false,
            "flags": 0,
            "pending": false,
        }),
    )
}

fn create_thread(state: &mut State, matched: &RouteMatch, body: &Value) -> Answer {
    let channel_id = matched.id("channel_id");
    let message_id = matched.id("message_id");
    if !state.known_channels.contains(&channel_id) {
        return Answer::error(404, 10003);
    }
    let exists = state
        .messages
        .get(&channel_id)
        .is_some_and(|list| list.iter().any(|m| m.id == message_id));
    if !exists {
        return Answer::error(404, 10008);
    }
    if state.threads.iter().any(|t| t.id == message_id) {
        return Answer::json(
            400,
            error_body(160004, "A thread has already been created for this message"),
        );
    }
    // Discord gives a thread started from a message the message's id.
    state.threads.push(Thread {
        id: message_id,
        parent_id: channel_id,
        message_id,
        name: body["name"].as_str().unwrap_or_default().to_owned(),
    });
    state.known_channels.insert(message_id);
    Answer::json(201, channel_json(state, message_id))
}

fn put_commands(state: &mut State, matched: &RouteMatch, body: Value) -> Answer {
    let app = matched.id("application_id");
    if app != state.options.application_id {
        state.violation(format!(
            "PUT commands for application {app}, the bot's is {}",
            state.options.application_id
        ));
        return Answer::error(403, 50001);
    }
    let guild_id = matched.id("guild_id");
    if guild_id != state.options.guild_id {
        return Answer::error(404, 10004);
    }
    let mut out = Vec::new();
    for command in body.as_array().cloned().unwrap_or_default() {
        let name = command["name"].as_str().unwrap_or_default().to_owned();
        // The id `interactions::command` puts in `data.id`, so pushed commands match.
        let id = interactions::command_id(&name).to_string();
        let version = state.next_id().to_string();
        let mut c = command.clone();
        c["id"] = json!(id);
        c["application_id"] = json!(app.to_string());
        c["guild_id"] = json!(guild_id.to_string());
        c["version"] = json!(version);
        for (field, default) in [
            ("type", json!(1)),
            ("description", json!("")),
            ("options", json!([])),
            ("default_member_permissions", Value::Null),
            ("nsfw", json!(false)),
        ] {
            if c.get(field).is_none_or(Value::is_null) {
                c[field] = default;
            }
        }
        out.push(c);
    }
    state.command_puts.push(body);
    state.registered_commands = out.clone();
    Answer::json(200, Value::Array(out))
}

fn callback(state: &mut State, matched: &RouteMatch, body: Value, received: Instant) -> Answer {
    let interaction_id = matched.id("interaction_id");
    let token = matched.param("interaction_token").to_owned();
    if state
        .callbacks
        .iter()
        .any(|c| c.interaction_id == interaction_id)
    {
        state.violation(format!(
            "second callback for interaction {interaction_id}: {body}"
        ));
        return Answer::error(400, 40060);
    }
    let original = match body["type"].as_u64() {
        Some(4) => Some(body["data"].clone()),
        Some(5) => Some(json!({"content": "", "flags": body["data"]["flags"].clone()})),
        Some(6) | Some(7) => Some(body["data"].clone()),
        _ => None,
    };
    if let Some(mut data) = original {
        if data.is_null() {
            data = json!({});
        }
        state.originals.insert(token.clone(), data);
    }
    let after_dispatch = state
        .dispatched
        .get(&interaction_id)
        .map(|at| received.duration_since(*at));
    state.callbacks.push(Callback {
        interaction_id,
        token,
        body,
        received,
        after_dispatch,
    });
    Answer::empty(204)
}

fn original_message(state: &State, token: &str, data: &Value) -> Value {
    // A stable id per token.
    let id = 1_200_000_000_000_000_000u64
        + token.bytes().fold(0u64, |h, b| {
            h.wrapping_mul(31).wrapping_add(u64::from(b)) % 1_000_000_000
        });
    let mut message = message_json(state, id, state.options.channel_id, data);
    message["webhook_id"] = json!(state.options.application_id.to_string());
    message["application_id"] = json!(state.options.application_id.to_string());
    message
}

fn edit_original(
    state: &mut State,
    matched: &RouteMatch,
    body: Value,
    received: Instant,
) -> Answer {
    let app = matched.id("webhook_id");
    let token = matched.param("webhook_token").to_owned();
    if app != state.options.application_id {
        state.violation(format!(
            "edit of @original under application {app}, the bot's is {}",
            state.options.application_id
        ));
        return Answer::error(404, 10015);
    }
    let Some(current) = state.originals.get(&token).cloned() else {
        state.violation(format!(
            "edit of @original for token {token} before any callback acknowledged it"
        ));
        return Answer::error(404, 10015);
    };
    let mut merged = if current.is_object() {
        current
    } else {
        json!({})
    };
    if let Some(fields) = body.as_object() {
        for (k, v) in fields {
            merged[k] = v.clone();
        }
    }
    state.originals.insert(token.clone(), merged.clone());
    state.original_edits.push(OriginalEdit {
        application_id: app,
        token: token.clone(),
        body,
        received,
    });
    let mut message = original_message(state, &token, &merged);
    message["edited_timestamp"] = json!(timestamp_now());
    Answer::json(200, message)
}

fn get_original(state: &State, matched: &RouteMatch) -> Answer {
    let token = matched.param("webhook_token");
    match state.originals.get(token) {
        Some(data) => Answer::json(200, original_message(state, token, data)),
        None => Answer::error(404, 10008),
    }
}
