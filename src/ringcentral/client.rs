//! The typed RingCentral REST client: the few platform calls ringside makes (`docs/ringcentral.md` §3–§6).
//!
//! Every call has a timeout; answers become typed values or a [`RcError`] built from
//! RingCentral's error body; a 401 refreshes the token and retries once; a 429 starts the
//! group's penalty window (`Retry-After`, 30 s when absent) and no request of that group is sent
//! until it has passed; `X-Rate-Limit-*` headers feed the group's budget.

use super::auth::{AuthError, TokenOwner};
use super::rate::{RateGroup, RateLimits};
use super::wire::{
    CallSession, CreateSubscription, ErrorBody, ExtensionRecord, PresenceList, PresenceRecord,
    SubscriptionInfo, SubscriptionList,
};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, thiserror::Error)]
pub enum RcError {
    #[error("RingCentral {group} requests are paused for {}s after a 429", .retry_in.as_secs().max(1))]
    Penalty {
        group: &'static str,
        retry_in: Duration,
    },
    #[error("RingCentral answered 429 for a {group} request (retry after {}s)", .retry_after.as_secs())]
    RateLimited {
        group: &'static str,
        retry_after: Duration,
    },
    #[error("RingCentral has no such resource ({})", code.as_deref().unwrap_or("404"))]
    NotFound { code: Option<String> },
    #[error("RingCentral refused the request: {status} {}: {message}", code.as_deref().unwrap_or("-"))]
    Api {
        status: u16,
        code: Option<String>,
        message: String,
    },
    #[error("RingCentral did not answer within {}s", .0.as_secs())]
    Timeout(Duration),
    #[error("cannot reach RingCentral: {0}")]
    Network(String),
    #[error("unexpected answer from RingCentral: {0}")]
    Decode(String),
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl RcError {
    pub fn status(&self) -> Option<u16> {
        match self {
            RcError::NotFound { .. } => Some(404),
            RcError::Api { status, .. } => Some(*status),
            RcError::RateLimited { .. } => Some(429),
            _ => None,
        }
    }
}

/// The most digits an extension id may have: RingCentral's ids are int64 (19 digits); one more
/// leaves room without letting an arbitrary string into a URL path.
pub const MAX_EXTENSION_ID_DIGITS: usize = 20;

/// Whether `id` may be put in an extension path: `~` (the JWT user's own extension) or 1 to
/// [`MAX_EXTENSION_ID_DIGITS`] ASCII digits. Ids come from notifications, i.e. the network.
pub fn valid_extension_id(id: &str) -> bool {
    id == "~"
        || ((1..=MAX_EXTENSION_ID_DIGITS).contains(&id.len())
            && id.bytes().all(|byte| byte.is_ascii_digit()))
}

/// What ringside keeps of an extension (`docs/ringcentral.md` §12.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionInfo {
    /// The id, as text (RingCentral answers a number).
    pub id: String,
    /// [`ExtensionRecord::display_name`]: `None` when nothing names it.
    pub name: Option<String>,
    pub extension_number: Option<String>,
    pub kind: Option<String>,
    pub status: Option<String>,
}

/// A WebSocket token and the gateway it opens (the token is a secret: no `Debug`).
pub struct WsToken {
    pub token: secrecy::SecretString,
    pub uri: String,
}

#[derive(serde::Deserialize)]
struct WsTokenAnswer {
    ws_access_token: String,
    uri: String,
}

/// The client. Clone the `Arc` to share it.
pub struct RcClient {
    http: reqwest::Client,
    base: String,
    auth: Arc<TokenOwner>,
    limits: Arc<RateLimits>,
    timeout: Duration,
}

/// A body for `DELETE …/parties/{id}`.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct DeleteParty {
    keep_conference_alive: bool,
}

impl RcClient {
    pub fn new(
        http: reqwest::Client,
        base: String,
        auth: Arc<TokenOwner>,
        limits: Arc<RateLimits>,
        timeout: Duration,
    ) -> Self {
        RcClient {
            http,
            base,
            auth,
            limits,
            timeout,
        }
    }

    pub fn auth(&self) -> &Arc<TokenOwner> {
        &self.auth
    }

    pub fn limits(&self) -> &Arc<RateLimits> {
        &self.limits
    }

    /// `GET /restapi/v1.0/subscription`.
    pub async fn list_subscriptions(&self) -> Result<Vec<SubscriptionInfo>, RcError> {
        let list: SubscriptionList = self
            .json(
                RateGroup::Light,
                Method::GET,
                &["restapi", "v1.0", "subscription"],
                None,
                None,
            )
            .await?;
        Ok(list.records)
    }

    /// `POST /restapi/v1.0/subscription`.
    pub async fn create_subscription(
        &self,
        request: &CreateSubscription,
    ) -> Result<SubscriptionInfo, RcError> {
        let body = serde_json::to_value(request).map_err(|e| RcError::Decode(e.to_string()))?;
        self.json(
            RateGroup::Medium,
            Method::POST,
            &["restapi", "v1.0", "subscription"],
            None,
            Some(body),
        )
        .await
    }

    /// `GET /restapi/v1.0/subscription/{id}`.
    pub async fn get_subscription(&self, id: &str) -> Result<SubscriptionInfo, RcError> {
        self.json(
            RateGroup::Light,
            Method::GET,
            &["restapi", "v1.0", "subscription", id],
            None,
            None,
        )
        .await
    }

    /// `POST /restapi/v1.0/subscription/{id}/renew`.
    pub async fn renew_subscription(&self, id: &str) -> Result<SubscriptionInfo, RcError> {
        self.json(
            RateGroup::Light,
            Method::POST,
            &["restapi", "v1.0", "subscription", id, "renew"],
            None,
            None,
        )
        .await
    }

    /// `POST /restapi/oauth/wstoken`: a single-use token for RingCentral's WebSocket gateway and
    /// its address (Auth group: a 429 pauses the token endpoint too; a 401 refreshes the access
    /// token and tries once more).
    pub async fn ws_token(&self) -> Result<WsToken, RcError> {
        let answer: WsTokenAnswer = self
            .json(
                RateGroup::Auth,
                Method::POST,
                &["restapi", "oauth", "wstoken"],
                None,
                Some(serde_json::json!({})),
            )
            .await?;
        Ok(WsToken {
            token: secrecy::SecretString::from(answer.ws_access_token),
            uri: answer.uri,
        })
    }

    /// `DELETE /restapi/v1.0/subscription/{id}`.
    pub async fn delete_subscription(&self, id: &str) -> Result<(), RcError> {
        self.send(
            RateGroup::Medium,
            Method::DELETE,
            &["restapi", "v1.0", "subscription", id],
            None,
            None,
        )
        .await
        .map(drop)
    }

    /// `GET /restapi/v1.0/account/~/telephony/sessions/{id}`.
    pub async fn get_session(&self, id: &str) -> Result<CallSession, RcError> {
        self.json(
            RateGroup::Light,
            Method::GET,
            &[
                "restapi",
                "v1.0",
                "account",
                "~",
                "telephony",
                "sessions",
                id,
            ],
            None,
            None,
        )
        .await
    }

    /// `DELETE /restapi/v1.0/account/~/telephony/sessions/{session}/parties/{party}`.
    pub async fn delete_party(
        &self,
        session: &str,
        party: &str,
        keep_conference_alive: Option<bool>,
    ) -> Result<(), RcError> {
        let body = keep_conference_alive.map(|keep| {
            serde_json::json!(DeleteParty {
                keep_conference_alive: keep
            })
        });
        self.send(
            RateGroup::Light,
            Method::DELETE,
            &[
                "restapi",
                "v1.0",
                "account",
                "~",
                "telephony",
                "sessions",
                session,
                "parties",
                party,
            ],
            None,
            body,
        )
        .await
        .map(drop)
    }

    /// `GET /restapi/v1.0/account/~/extension/{id}` (Light; needs the app's ReadAccounts and the
    /// user's ReadExtensions). `id` is checked first ([`valid_extension_id`]): a bad one is a
    /// [`RcError::Decode`] and nothing is sent.
    pub async fn extension(&self, id: &str) -> Result<ExtensionInfo, RcError> {
        if !valid_extension_id(id) {
            return Err(RcError::Decode(format!(
                "not an extension id ({} characters)",
                id.len()
            )));
        }
        let record: ExtensionRecord = self
            .json(
                RateGroup::Light,
                Method::GET,
                &["restapi", "v1.0", "account", "~", "extension", id],
                None,
                None,
            )
            .await?;
        Ok(ExtensionInfo {
            name: record.display_name(),
            id: record.id.unwrap_or_else(|| id.to_owned()),
            extension_number: record.extension_number,
            kind: record.kind,
            status: record.status,
        })
    }

    /// `GET /restapi/v1.0/account/~/presence?detailedTelephonyState=true` (Heavy; needs the
    /// ReadPresence permission).
    pub async fn account_presence(&self) -> Result<Vec<PresenceRecord>, RcError> {
        let list: PresenceList = self
            .json(
                RateGroup::Heavy,
                Method::GET,
                &["restapi", "v1.0", "account", "~", "presence"],
                Some(&[("detailedTelephonyState", "true"), ("perPage", "1000")]),
                None,
            )
            .await?;
        Ok(list.records)
    }

    async fn json<T: DeserializeOwned>(
        &self,
        group: RateGroup,
        method: Method,
        path: &[&str],
        query: Option<&[(&str, &str)]>,
        body: Option<serde_json::Value>,
    ) -> Result<T, RcError> {
        let bytes = self.send(group, method, path, query, body).await?;
        serde_json::from_slice(&bytes).map_err(|error| RcError::Decode(error.to_string()))
    }

    fn url(&self, path: &[&str]) -> Result<reqwest::Url, RcError> {
        let mut url = reqwest::Url::parse(&self.base)
            .map_err(|error| RcError::Network(format!("bad server_url: {error}")))?;
        url.path_segments_mut()
            .map_err(|()| RcError::Network("server_url cannot be a base".into()))?
            .pop_if_empty()
            .extend(path);
        Ok(url)
    }

    /// One call: penalty check, token, send with a timeout, one retry after a 401.
    async fn send(
        &self,
        group: RateGroup,
        method: Method,
        path: &[&str],
        query: Option<&[(&str, &str)]>,
        body: Option<serde_json::Value>,
    ) -> Result<axum::body::Bytes, RcError> {
        let url = self.url(path)?;
        for attempt in 0..2 {
            if let Some(until) = self.limits.penalty(group) {
                return Err(RcError::Penalty {
                    group: group.as_str(),
                    retry_in: until.saturating_duration_since(Instant::now()),
                });
            }
            let token = self.auth.access_token().await?;
            // A 429 may have arrived for another request while this one waited for a token.
            if let Some(until) = self.limits.penalty(group) {
                return Err(RcError::Penalty {
                    group: group.as_str(),
                    retry_in: until.saturating_duration_since(Instant::now()),
                });
            }
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(token.expose_secret())
                .timeout(self.timeout);
            if let Some(query) = query {
                request = request.query(query);
            }
            if let Some(body) = &body {
                request = request.json(body);
            }
            self.limits.record_sent(group);
            let started = Instant::now();
            let response = request.send().await.map_err(|error| {
                if error.is_timeout() {
                    RcError::Timeout(self.timeout)
                } else {
                    RcError::Network(error.without_url().to_string())
                }
            })?;
            metrics::histogram!("ringside_ringcentral_request_seconds", "group" => group.as_str())
                .record(started.elapsed().as_secs_f64());
            self.limits.observe(group, response.headers());
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && attempt == 0 {
                tracing::info!("RingCentral answered 401; refreshing the token and retrying once");
                self.auth.invalidate(&token).await;
                continue;
            }
            if status == StatusCode::TOO_MANY_REQUESTS {
                let wait = super::rate::retry_after(response.headers());
                self.limits.penalize(group, wait);
                tracing::warn!(
                    group = group.as_str(),
                    retry_after_secs = wait.map(|w| w.as_secs()),
                    "RingCentral rate limit hit"
                );
                return Err(RcError::RateLimited {
                    group: group.as_str(),
                    retry_after: wait.unwrap_or(super::rate::DEFAULT_PENALTY),
                });
            }
            let bytes = response
                .bytes()
                .await
                .map_err(|error| RcError::Network(error.without_url().to_string()))?;
            if status.is_success() {
                return Ok(bytes);
            }
            let error: ErrorBody = serde_json::from_slice(&bytes).unwrap_or_default();
            let code = error.error_code.clone().or_else(|| {
                error
                    .errors
                    .first()
                    .and_then(|item| item.error_code.clone())
            });
            if status == StatusCode::NOT_FOUND {
                return Err(RcError::NotFound { code });
            }
            let message = error
                .message
                .or_else(|| error.errors.first().and_then(|item| item.message.clone()))
                .or(error.oauth_error_description)
                .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
            return Err(RcError::Api {
                status: status.as_u16(),
                code,
                message,
            });
        }
        Err(RcError::Api {
            status: 401,
            code: None,
            message: "unauthorized after a token refresh".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tilde_or_a_bounded_run_of_digits_is_put_in_an_extension_path() {
        for good in [
            "~",
            "1",
            "62295300122",
            &"9".repeat(MAX_EXTENSION_ID_DIGITS),
        ] {
            assert!(valid_extension_id(good), "{good:?}");
        }
        for bad in [
            "",
            "~~",
            "../subscription",
            "123/presence",
            "12 3",
            "%2e%2e",
            "１２３",
            "-1",
            "1e9",
            &"9".repeat(MAX_EXTENSION_ID_DIGITS + 1),
        ] {
            assert!(!valid_extension_id(bad), "{bad:?}");
        }
    }
}
