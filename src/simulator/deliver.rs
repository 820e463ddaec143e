//! Delivering scripted notifications to a webhook over HTTP, as RingCentral does.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, USER_AGENT};

use super::{Scripted, SimError};

/// How long one delivery may take before it counts as failed.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// What [`play`] delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlayReport {
    /// Notifications POSTed (including a rejected last one).
    pub sent: usize,
    /// How many answers had each HTTP status code.
    pub by_status: BTreeMap<u16, usize>,
}

impl PlayReport {
    /// How many answers had `status`.
    pub fn count(&self, status: StatusCode) -> usize {
        self.by_status.get(&status.as_u16()).copied().unwrap_or(0)
    }

    fn record(&mut self, status: StatusCode) {
        self.sent += 1;
        *self.by_status.entry(status.as_u16()).or_default() += 1;
    }
}

/// POSTs one notification to `url` the way RingCentral does: a JSON body
/// (`content-type: application/json; charset=UTF-8`, `user-agent: RingCentral-Webhook/8.3`)
/// and the subscription's token in `Verification-Token` (`docs/ringcentral.md` §3.3). Gives up after 5 s.
/// Returns the webhook's status, whatever it is.
pub async fn deliver(
    client: &reqwest::Client,
    url: &str,
    verification_token: &str,
    body: &serde_json::Value,
) -> Result<StatusCode, SimError> {
    let bytes = serde_json::to_vec(body).expect("a JSON value always serializes");
    let response = client
        .post(url)
        .header("Verification-Token", verification_token)
        .header(CONTENT_TYPE, "application/json; charset=UTF-8")
        .header(USER_AGENT, "RingCentral-Webhook/8.3")
        .timeout(DELIVERY_TIMEOUT)
        .body(bytes)
        .send()
        .await?;
    Ok(response.status())
}

/// Delivers `script` in order, sleeping `pace` between notifications. Stops at the first
/// answer other than 200 with [`SimError::Rejected`], and at the first transport error.
pub async fn play(
    client: &reqwest::Client,
    url: &str,
    verification_token: &str,
    script: &[Scripted],
    pace: Duration,
) -> Result<PlayReport, SimError> {
    let mut report = PlayReport::default();
    for (index, notification) in script.iter().enumerate() {
        if index > 0 && !pace.is_zero() {
            tokio::time::sleep(pace).await;
        }
        let status = deliver(client, url, verification_token, &notification.body).await?;
        report.record(status);
        tracing::debug!(
            index,
            session = %notification.session_id,
            sequence = notification.sequence,
            %status,
            "simulator delivered a notification"
        );
        if status != StatusCode::OK {
            return Err(SimError::Rejected {
                index,
                status,
                report,
            });
        }
    }
    Ok(report)
}
