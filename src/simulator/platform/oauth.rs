//! OAuth (`docs/ringcentral.md` §4): the JWT and refresh grants, revocation and bearer checks.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::time::Instant;

use super::state::{
    Shared, api_error, base64_decode, form_decode, oauth_error, random_hex, whole_seconds,
};

/// The JWT grant's `grant_type`.
pub(crate) const JWT_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// How many token requests the platform got, by grant type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenRequests {
    /// `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`, successful or not.
    pub jwt: u32,
    /// `grant_type=refresh_token`, successful or not.
    pub refresh: u32,
    /// Any other (or no) grant type.
    pub other: u32,
    /// Tokens issued (successful grants of any type).
    pub issued: u32,
    /// `POST /restapi/oauth/revoke` calls.
    pub revoked: u32,
}

impl TokenRequests {
    /// Every grant request.
    pub fn total(&self) -> u32 {
        self.jwt + self.refresh + self.other
    }
}

#[derive(Debug, Clone)]
struct AccessToken {
    expires_at: Instant,
    refresh: Option<String>,
    /// The OAuth session: a JWT grant starts one, a refresh continues it.
    session: u64,
}

#[derive(Debug, Clone)]
struct RefreshToken {
    access: String,
    expires_at: Instant,
    session: u64,
}

/// Issued tokens. An expired access token stays known (to answer `OAU-128`); a revoked or
/// refreshed-away one is forgotten (`OAU-129`).
#[derive(Debug, Default)]
pub(crate) struct TokenStore {
    access: HashMap<String, AccessToken>,
    refresh: HashMap<String, RefreshToken>,
    pub(crate) requests: TokenRequests,
    sessions: u64,
}

impl TokenStore {
    pub(crate) fn expire_all(&mut self) {
        let now = Instant::now();
        for token in self.access.values_mut() {
            token.expires_at = now;
        }
    }

    /// Checks `Authorization: Bearer …`.
    pub(crate) fn check_bearer(&self, headers: &HeaderMap) -> Result<(), BearerRefusal> {
        self.check_bearer_session(headers).map(|_| ())
    }

    /// Checks `Authorization: Bearer …` and answers the token's OAuth session.
    pub(crate) fn check_bearer_session(&self, headers: &HeaderMap) -> Result<u64, BearerRefusal> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err(BearerRefusal::Missing);
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|text| {
                let (scheme, rest) = text.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .unwrap_or_default();
        match self.access.get(token) {
            Some(found) if Instant::now() < found.expires_at => Ok(found.session),
            Some(_) => Err(BearerRefusal::Expired),
            None => Err(BearerRefusal::Corrupted),
        }
    }

    fn issue(&mut self, shared: &Shared, session: Option<u64>) -> serde_json::Value {
        let session = session.unwrap_or_else(|| {
            self.sessions += 1;
            self.sessions
        });
        let options = &shared.options;
        let access = random_hex(24);
        let now = Instant::now();
        let refresh = options.issue_refresh_tokens.then(|| random_hex(24));
        self.access.insert(
            access.clone(),
            AccessToken {
                expires_at: now + options.access_token_ttl,
                refresh: refresh.clone(),
                session,
            },
        );
        self.requests.issued += 1;
        let mut body = json!({
            "access_token": access,
            "token_type": "bearer",
            "expires_in": whole_seconds(options.access_token_ttl),
            "scope": options.scope,
            "owner_id": options.owner_id,
            "endpoint_id": "sim-endpoint-0001",
        });
        if let Some(refresh) = refresh {
            self.refresh.insert(
                refresh.clone(),
                RefreshToken {
                    access,
                    expires_at: now + options.refresh_token_ttl,
                    session,
                },
            );
            body["refresh_token"] = json!(refresh);
            body["refresh_token_expires_in"] = json!(whole_seconds(options.refresh_token_ttl));
        }
        body
    }

    /// Forgets the pair `token` (access or refresh) belongs to. False when unknown.
    fn revoke(&mut self, token: &str) -> bool {
        if let Some(found) = self.access.remove(token) {
            if let Some(refresh) = found.refresh {
                self.refresh.remove(&refresh);
            }
            return true;
        }
        if let Some(found) = self.refresh.remove(token) {
            self.access.remove(&found.access);
            return true;
        }
        false
    }
}

/// Why a request's bearer token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BearerRefusal {
    /// No `Authorization` header.
    Missing,
    /// A token that expired (`OAU-128`).
    Expired,
    /// An unknown, revoked or malformed token (`OAU-129`).
    Corrupted,
}

impl IntoResponse for BearerRefusal {
    fn into_response(self) -> Response {
        match self {
            Self::Missing => unauthorized("OAU-123", "Authorization header is not specified"),
            Self::Expired => unauthorized("OAU-128", "Access token expired"),
            Self::Corrupted => unauthorized("OAU-129", "Access token corrupted"),
        }
    }
}

fn unauthorized(code: &str, message: &str) -> Response {
    let mut response = api_error(StatusCode::UNAUTHORIZED, code, message);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Bearer realm=\"RingCentral\""),
    );
    response
}

/// Checks HTTP Basic `client_id:client_secret`.
fn client_ok(shared: &Shared, headers: &HeaderMap) -> bool {
    let Some(credentials) = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| {
            let (scheme, rest) = text.split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then_some(rest.trim())
        })
        .and_then(base64_decode)
        .and_then(|bytes| String::from_utf8(bytes).ok())
    else {
        return false;
    };
    let Some((id, secret)) = credentials.split_once(':') else {
        return false;
    };
    id == shared.options.client_id && secret == shared.options.client_secret
}

fn invalid_client() -> Response {
    oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "OAU-153",
        "Invalid client: the client id or secret is wrong",
    )
}

/// `POST /restapi/oauth/token`.
pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = form_decode(&String::from_utf8_lossy(&body));
    let grant = form.get("grant_type").map(String::as_str).unwrap_or("");
    let mut inner = shared.lock();
    let store = &mut inner.tokens;
    match grant {
        JWT_GRANT => store.requests.jwt += 1,
        "refresh_token" => store.requests.refresh += 1,
        _ => store.requests.other += 1,
    }
    if !client_ok(&shared, &headers) {
        return invalid_client();
    }
    match grant {
        JWT_GRANT => {
            if form.get("assertion").map(String::as_str) != Some(shared.options.jwt.as_str()) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "OAU-213",
                    "Token is not valid: the JWT assertion is not accepted",
                );
            }
            Json(store.issue(&shared, None)).into_response()
        }
        "refresh_token" => {
            let presented = form.get("refresh_token").map(String::as_str).unwrap_or("");
            // Single use: the old refresh token and its access token die now.
            match store.refresh.remove(presented) {
                Some(old) if Instant::now() < old.expires_at => {
                    store.access.remove(&old.access);
                    Json(store.issue(&shared, Some(old.session))).into_response()
                }
                _ => oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "OAU-211",
                    "Token is revoked or expired",
                ),
            }
        }
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "OAU-250",
            "Unsupported grant type",
        ),
    }
}

/// `POST /restapi/oauth/revoke` (form `token=`): ends the whole token pair. Unknown tokens are
/// accepted too (RFC 7009).
pub(crate) async fn revoke(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !client_ok(&shared, &headers) {
        return invalid_client();
    }
    let form = form_decode(&String::from_utf8_lossy(&body));
    let mut inner = shared.lock();
    inner.tokens.requests.revoked += 1;
    if let Some(token) = form.get("token") {
        inner.tokens.revoke(token);
    }
    StatusCode::OK.into_response()
}
