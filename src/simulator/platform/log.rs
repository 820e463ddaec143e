//! The gate every request passes: bearer check, rate limit, rate headers and the request log.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;

use super::rate::{RateGroup, Verdict};
use super::state::{Shared, api_error, whole_seconds};

/// One request the platform answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// When it arrived.
    pub at: OffsetDateTime,
    /// `GET`, `POST`, …
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// Its rate-limit group (`None` for paths the fake does not serve).
    pub group: Option<RateGroup>,
    /// The answer's status code.
    pub status: u16,
    /// Whether it carried a live bearer token (always false on the OAuth endpoints, which
    /// take HTTP Basic).
    pub authorized: bool,
}

/// Middleware around every route.
pub(crate) async fn gate(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let at = OffsetDateTime::now_utc();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    let group = RateGroup::of(&method, &path);
    let needs_bearer = group.is_some() && !path.starts_with("/restapi/oauth/");
    let bearer = needs_bearer.then(|| shared.lock().tokens.check_bearer(request.headers()));
    let authorized = matches!(bearer, Some(Ok(())));

    let mut standing = None;
    let mut response = match (group, bearer) {
        (Some(group), Some(Err(refusal))) => {
            standing = Some(shared.lock().rate.peek(group));
            refusal.into_response()
        }
        (Some(group), _) => {
            let verdict = shared.lock().rate.check(group);
            match verdict {
                Verdict::Allowed { limit, remaining } => {
                    standing = Some((limit, remaining));
                    next.run(request).await
                }
                Verdict::Throttled { limit, retry_after } => {
                    standing = Some((limit, 0));
                    let mut response = api_error(
                        StatusCode::TOO_MANY_REQUESTS,
                        "CMN-301",
                        "Request rate exceeded",
                    );
                    if let Some(seconds) = retry_after {
                        response
                            .headers_mut()
                            .insert("retry-after", HeaderValue::from(seconds));
                    }
                    response
                }
            }
        }
        (None, _) => next.run(request).await,
    };

    if let (Some(group), Some((limit, remaining))) = (group, standing) {
        let window = whole_seconds(shared.lock().rate.window());
        let headers = response.headers_mut();
        headers.insert(
            HeaderName::from_static("x-rate-limit-group"),
            HeaderValue::from_static(group.as_str()),
        );
        headers.insert(
            HeaderName::from_static("x-rate-limit-limit"),
            HeaderValue::from(limit),
        );
        headers.insert(
            HeaderName::from_static("x-rate-limit-remaining"),
            HeaderValue::from(remaining),
        );
        headers.insert(
            HeaderName::from_static("x-rate-limit-window"),
            HeaderValue::from(window),
        );
    }

    let status = response.status().as_u16();
    tracing::debug!(%method, %path, status, group = group.map(RateGroup::as_str), "simulated platform answered");
    shared.lock().log.push(RequestRecord {
        at,
        method: method.to_string(),
        path,
        query,
        group,
        status,
        authorized,
    });
    response.into_response()
}
