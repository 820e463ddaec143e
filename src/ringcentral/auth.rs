//! Authentication: the one owner of RingCentral's access token (`docs/ringcentral.md` §4).
//!
//! JWT grant with HTTP Basic client credentials; the token is refreshed `margin` before it
//! expires, with the refresh token when RingCentral issued one, else by running the grant again
//! (also when the refresh token is refused). Concurrent callers queue on one lock, so they share
//! one refresh. The token pair is kept in the store and reused across restarts (RingCentral caps
//! parallel sessions per user). After a failure no request is sent before a growing back-off has
//! passed (the Auth group allows 5 requests a minute). Credentials and tokens never reach a log
//! or an error message.

use super::rate::{RateGroup, RateLimits};
use super::wire::{ErrorBody, TokenInfo};
use crate::config::RingCentralCredentials;
use crate::store::Store;
use crate::util::backoff::Backoff;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// The JWT bearer grant type.
pub const JWT_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The store key of the token pair.
const TOKEN_KEY: &str = "ringcentral.token";
/// The longest back-off between failed token requests.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    #[error("RingCentral refused the credentials ({status} {code}: {description})")]
    Refused {
        status: u16,
        code: String,
        description: String,
    },
    #[error("RingCentral token requests are paused for {}s after a failure", .0.as_secs().max(1))]
    Backoff(Duration),
    #[error("RingCentral token requests are paused for {}s after a 429", .0.as_secs().max(1))]
    RateLimited(Duration),
    #[error("the RingCentral token request timed out")]
    Timeout,
    #[error("cannot reach RingCentral for a token: {0}")]
    Network(String),
    #[error("unexpected token answer from RingCentral: {0}")]
    Decode(String),
}

/// The token pair as kept in the store (wall-clock expiry, so it survives restarts).
#[derive(Clone, Serialize, Deserialize)]
struct StoredToken {
    access_token: String,
    expires_at_ms: i64,
    /// When to refresh: `margin` before expiry, but never before half the token's life (a
    /// margin longer than the life RingCentral granted would refresh on every call).
    #[serde(default)]
    refresh_at_ms: i64,
    refresh_token: Option<String>,
    refresh_expires_at_ms: Option<i64>,
    scope: Option<String>,
    /// Which server and credentials this token belongs to.
    fingerprint: u64,
}

impl StoredToken {
    fn refresh_at(&self, margin: Duration) -> i64 {
        if self.refresh_at_ms > 0 {
            self.refresh_at_ms.min(self.expires_at_ms)
        } else {
            self.expires_at_ms.saturating_sub(millis(margin))
        }
    }
}

impl std::fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredToken")
            .field("expires_at_ms", &self.expires_at_ms)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    loaded: bool,
    token: Option<StoredToken>,
    failures: u32,
    next_attempt: Option<Instant>,
}

/// What a fresh grant returned (for `ringside check`).
pub struct Granted {
    pub access_token: SecretString,
    pub scope: Vec<String>,
}

/// The token owner. Cheap to share behind an `Arc`.
pub struct TokenOwner {
    http: reqwest::Client,
    server_url: String,
    credentials: RingCentralCredentials,
    store: Option<Store>,
    margin: Duration,
    retry_base: Duration,
    timeout: Duration,
    limits: Arc<RateLimits>,
    state: Mutex<State>,
    token_requests: AtomicU64,
}

/// Settings of a [`TokenOwner`].
pub struct AuthOptions {
    pub server_url: String,
    pub credentials: RingCentralCredentials,
    pub margin: Duration,
    pub retry_base: Duration,
    pub timeout: Duration,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl TokenOwner {
    pub fn new(
        http: reqwest::Client,
        options: AuthOptions,
        store: Option<Store>,
        limits: Arc<RateLimits>,
    ) -> Self {
        TokenOwner {
            http,
            server_url: options.server_url,
            credentials: options.credentials,
            store,
            margin: options.margin,
            retry_base: options.retry_base,
            timeout: options.timeout,
            limits,
            state: Mutex::new(State::default()),
            token_requests: AtomicU64::new(0),
        }
    }

    /// How many token requests this owner sent.
    pub fn token_requests(&self) -> u64 {
        self.token_requests.load(Ordering::Relaxed)
    }

    /// Which server and credentials a stored token belongs to: FNV-1a, stable across builds
    /// (a token kept by one version must be found by the next).
    fn fingerprint(&self) -> u64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for part in [
            self.server_url.as_bytes(),
            self.credentials.client_id.as_bytes(),
            self.credentials.jwt.expose_secret().as_bytes(),
        ] {
            for byte in part.iter().chain(std::iter::once(&0xff)) {
                hash ^= u64::from(*byte);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        }
        hash
    }

    /// A valid access token: the current one, or a refreshed one. Callers that arrive during a
    /// refresh wait for it and share its result.
    pub async fn access_token(&self) -> Result<SecretString, AuthError> {
        let mut state = self.state.lock().await;
        if !state.loaded {
            state.token = self.load().await;
            state.loaded = true;
        }
        if let Some(token) = &state.token
            && token.refresh_at(self.margin) > now_ms()
        {
            return Ok(SecretString::from(token.access_token.clone()));
        }
        if let Some(next) = state.next_attempt {
            let now = Instant::now();
            if next > now {
                return Err(AuthError::Backoff(next - now));
            }
        }
        if let Some(until) = self.limits.penalty(RateGroup::Auth) {
            return Err(AuthError::RateLimited(until - Instant::now()));
        }
        let refresh = state
            .token
            .as_ref()
            .and_then(|token| {
                token
                    .refresh_token
                    .clone()
                    .map(|r| (r, token.refresh_expires_at_ms))
            })
            .filter(|(_, expires)| expires.is_none_or(|at| at > now_ms()))
            .map(|(refresh, _)| refresh);
        let mut result = match refresh {
            Some(refresh) => {
                let form = [
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh.as_str()),
                ];
                self.token_request(&form).await
            }
            None => Err(AuthError::Refused {
                status: 0,
                code: "no_refresh_token".into(),
                description: String::new(),
            }),
        };
        // A refused refresh token (4xx) falls back to the grant; a server error does not (the
        // grant would likely fail the same way, and the Auth group is small).
        if matches!(result, Err(AuthError::Refused { status, .. }) if status < 500) {
            let jwt = self.credentials.jwt.expose_secret().to_owned();
            let form = [("grant_type", JWT_GRANT), ("assertion", jwt.as_str())];
            result = self.token_request(&form).await;
        }
        match result {
            Ok(info) => {
                let token = self.stored(info);
                self.save(&token).await;
                state.token = Some(token.clone());
                state.failures = 0;
                state.next_attempt = None;
                Ok(SecretString::from(token.access_token))
            }
            Err(error) => {
                state.failures = state.failures.saturating_add(1);
                let backoff = Backoff::new(self.retry_base, MAX_BACKOFF).wait_after(state.failures);
                state.next_attempt = Some(Instant::now() + backoff);
                tracing::warn!(%error, retry_in_secs = backoff.as_secs(), "RingCentral authentication failed");
                metrics::counter!("ringside_ringcentral_auth_failures_total").increment(1);
                Err(error)
            }
        }
    }

    /// After a 401 with `token`: forget it so the next caller refreshes (once).
    pub async fn invalidate(&self, token: &SecretString) {
        let mut state = self.state.lock().await;
        if let Some(current) = &mut state.token
            && current.access_token == token.expose_secret()
        {
            current.expires_at_ms = 0;
            current.refresh_at_ms = 0;
        }
    }

    /// The permissions of the current token, once one was obtained.
    pub async fn scope(&self) -> Option<Vec<String>> {
        let state = self.state.lock().await;
        let scope = state.token.as_ref()?.scope.as_deref()?;
        Some(scope.split_whitespace().map(str::to_owned).collect())
    }

    /// Revokes the current token pair, if any (command-line tools end their session with it).
    pub async fn revoke_current(&self) -> Result<(), AuthError> {
        let token = {
            let mut state = self.state.lock().await;
            state
                .token
                .take()
                .map(|token| SecretString::from(token.access_token))
        };
        match token {
            Some(token) => self.revoke(&token).await,
            None => Ok(()),
        }
    }

    /// A fresh JWT grant that is neither stored nor shared (for `ringside check`).
    pub async fn fresh_grant(&self) -> Result<Granted, AuthError> {
        let jwt = self.credentials.jwt.expose_secret().to_owned();
        let info = self
            .token_request(&[("grant_type", JWT_GRANT), ("assertion", jwt.as_str())])
            .await?;
        Ok(Granted {
            access_token: SecretString::from(info.access_token),
            scope: info
                .scope
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
        })
    }

    /// Revokes a token pair (`POST /restapi/oauth/revoke`); errors are not retried.
    pub async fn revoke(&self, token: &SecretString) -> Result<(), AuthError> {
        self.limits.record_sent(RateGroup::Auth);
        let response = self
            .http
            .post(format!("{}/restapi/oauth/revoke", self.server_url))
            .basic_auth(
                &self.credentials.client_id,
                Some(self.credentials.client_secret.expose_secret()),
            )
            .form(&[("token", token.expose_secret())])
            .timeout(self.timeout)
            .send()
            .await
            .map_err(transport)?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(refusal(response).await)
        }
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> Result<TokenInfo, AuthError> {
        self.limits.record_sent(RateGroup::Auth);
        self.token_requests.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("ringside_ringcentral_token_requests_total").increment(1);
        let started = Instant::now();
        let response = self
            .http
            .post(format!("{}/restapi/oauth/token", self.server_url))
            .basic_auth(
                &self.credentials.client_id,
                Some(self.credentials.client_secret.expose_secret()),
            )
            .form(form)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(transport)?;
        metrics::histogram!("ringside_ringcentral_request_seconds", "group" => "auth")
            .record(started.elapsed().as_secs_f64());
        self.limits.observe(RateGroup::Auth, response.headers());
        if response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
            let wait = super::rate::retry_after(response.headers());
            self.limits.penalize(RateGroup::Auth, wait);
            return Err(AuthError::RateLimited(
                wait.unwrap_or(super::rate::DEFAULT_PENALTY),
            ));
        }
        if !response.status().is_success() {
            return Err(refusal(response).await);
        }
        let bytes = response.bytes().await.map_err(transport)?;
        serde_json::from_slice::<TokenInfo>(&bytes)
            .map_err(|error| AuthError::Decode(error.to_string()))
    }

    fn stored(&self, info: TokenInfo) -> StoredToken {
        let now = now_ms();
        let seconds = |s: u64| {
            i64::try_from(s)
                .unwrap_or(i64::MAX / 1000)
                .saturating_mul(1000)
        };
        let life = seconds(info.expires_in.unwrap_or(3600));
        let refresh_after = life.saturating_sub(millis(self.margin)).max(life / 2);
        StoredToken {
            access_token: info.access_token,
            expires_at_ms: now.saturating_add(life),
            refresh_at_ms: now.saturating_add(refresh_after),
            refresh_token: info.refresh_token,
            refresh_expires_at_ms: info
                .refresh_token_expires_in
                .map(|s| now.saturating_add(seconds(s))),
            scope: info.scope,
            fingerprint: self.fingerprint(),
        }
    }

    async fn load(&self) -> Option<StoredToken> {
        let store = self.store.as_ref()?;
        let text = store.get_meta(TOKEN_KEY).await.ok()??;
        let token: StoredToken = serde_json::from_str(&text).ok()?;
        (token.fingerprint == self.fingerprint()).then_some(token)
    }

    async fn save(&self, token: &StoredToken) {
        let Some(store) = &self.store else { return };
        let Ok(text) = serde_json::to_string(token) else {
            return;
        };
        if let Err(error) = store.set_meta(TOKEN_KEY, &text).await {
            tracing::warn!(%error, "could not keep the RingCentral token in the store");
        }
    }
}

fn transport(error: reqwest::Error) -> AuthError {
    if error.is_timeout() {
        AuthError::Timeout
    } else {
        AuthError::Network(error.without_url().to_string())
    }
}

async fn refusal(response: reqwest::Response) -> AuthError {
    let status = response.status().as_u16();
    let body: ErrorBody = response
        .bytes()
        .await
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    AuthError::Refused {
        status,
        code: body
            .oauth_error
            .or(body.error_code)
            .unwrap_or_else(|| "unknown".into()),
        description: body
            .oauth_error_description
            .or(body.message)
            .unwrap_or_default(),
    }
}
