//! Commands for running ringside as a service: `ringside healthcheck` (what a container's
//! `HEALTHCHECK` runs — a slim image has no curl) and `ringside backup FILE` (an online copy of
//! the store, `store::backup`). Both run beside the service; neither changes it.

use crate::config::Settings;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

/// How long the health check waits for `/healthz`, connection included. A container engine
/// kills a check that runs past its own timeout (the Dockerfile's is longer), so this one
/// answers first with a reason.
const HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// Asks the public listener's `GET /healthz`; `Ok` with its address when it answers 200.
pub async fn healthcheck(settings: &Settings) -> anyhow::Result<String> {
    let url = format!("http://{}/healthz", reachable(settings.server.listen));
    let client = reqwest::Client::builder()
        .timeout(HEALTHCHECK_TIMEOUT)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|error| anyhow::anyhow!("{url} did not answer: {}", reason(&error)))?;
    let status = response.status();
    if status == reqwest::StatusCode::OK {
        Ok(format!("ok: {url} answered 200"))
    } else {
        Err(anyhow::anyhow!("{url} answered {status}"))
    }
}

/// The address to connect to for a listener bound to `listen`: a wildcard bind (`0.0.0.0`,
/// `::`, as in a container) is reached on loopback.
fn reachable(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

fn reason(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection refused or unreachable (is ringside running?)"
    } else {
        "the request failed"
    }
}

/// Copies the store at `store.path` to `destination`, 0600; the line to print when done.
pub async fn backup(
    settings: &Settings,
    destination: &Path,
    replace: bool,
) -> anyhow::Result<String> {
    let store = settings.store.path.clone();
    let destination = destination.to_owned();
    let report =
        tokio::task::spawn_blocking(move || crate::store::backup(&store, &destination, replace))
            .await??;
    Ok(format!(
        "backed up the store to {} ({} bytes, schema version {}, readable by this user only)",
        report.path.display(),
        report.bytes,
        report.schema_version
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_listener_is_checked_on_loopback_and_others_as_bound() {
        let check = |listen: &str| reachable(listen.parse().unwrap()).to_string();
        assert_eq!(check("0.0.0.0:8080"), "127.0.0.1:8080");
        assert_eq!(check("[::]:8080"), "[::1]:8080");
        assert_eq!(check("127.0.0.1:9000"), "127.0.0.1:9000");
        assert_eq!(check("10.1.2.3:80"), "10.1.2.3:80");
    }
}
