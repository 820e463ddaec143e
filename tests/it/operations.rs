//! The monitoring files in `deploy/` (docs/operations.md) against the real app: every metric the
//! Prometheus alert rules and the Grafana dashboard name is one ringside serves on `/metrics`,
//! so a renamed metric cannot leave an alert that never fires or a panel that stays empty.

use crate::support::{DEADLINE, TestApp, TestConfig, eventually, start_platform};
use ringside::app::metrics::{CATALOGUE, Start};
use ringside::simulator::Person;
use ringside::simulator::platform::PlatformOptions;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

const RULES: &str = "deploy/prometheus/alerts.yml";
const DASHBOARD: &str = "deploy/grafana/ringside.json";

/// A histogram is served as `_bucket`, `_sum` and `_count` series; its name is what is left.
fn base_name(name: &str) -> &str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name)
}

/// Every `ringside_[a-z0-9_]+` in `text` (`up` and other Prometheus names are not ringside's).
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (at, _) in text.match_indices("ringside_") {
        let name: String = text[at..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        names.insert(base_name(&name).to_owned());
    }
    names
}

fn names_in(relative: &str) -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    metric_names(&text)
}

/// The names the rules and the dashboard use, checked to be a real selection of each file.
fn monitored() -> BTreeSet<String> {
    let rules = names_in(RULES);
    let dashboard = names_in(DASHBOARD);
    assert!(
        rules.contains("ringside_subscription_active") && rules.len() >= 8,
        "{RULES}: {rules:?}"
    );
    assert!(
        dashboard.contains("ringside_discord_request_seconds") && dashboard.len() >= 20,
        "{DASHBOARD}: {dashboard:?}"
    );
    rules.union(&dashboard).cloned().collect()
}

/// The metric names on a `/metrics` page.
fn served(page: &str) -> BTreeSet<String> {
    page.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(|name| base_name(name).to_owned())
        .collect()
}

async fn scrape(app: &TestApp) -> String {
    let response = app.admin_get("/metrics", None).await;
    assert_eq!(response.status(), 200);
    response.text().await.unwrap_or_default()
}

#[test]
fn the_names_are_read_like_prometheus_reads_them() {
    let text = r#"rate(ringside_a_total[5m]) histogram_quantile(0.9, ringside_b_seconds_bucket) up{job="ringside"} ringside_ringcentral_429_total"#;
    let names: Vec<_> = metric_names(text).into_iter().collect();
    assert_eq!(
        names,
        [
            "ringside_a_total",
            "ringside_b_seconds",
            "ringside_ringcentral_429_total"
        ]
    );
}

#[test]
fn every_metric_the_alerts_and_the_dashboard_use_is_in_the_catalogue() {
    let catalogued: BTreeSet<_> = CATALOGUE.iter().map(|metric| metric.name).collect();
    let unknown: Vec<_> = monitored()
        .into_iter()
        .filter(|name| !catalogued.contains(name.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "not metrics ringside emits: {unknown:?}"
    );
}

/// Metrics that exist from the start are on the first scrape; those left to their code
/// ([`Start::Later`]) appear once one call has been seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_alerts_and_the_dashboard_use_is_on_metrics() {
    let wanted = monitored();
    let later: BTreeSet<_> = CATALOGUE
        .iter()
        .filter(|metric| metric.start == Start::Later)
        .map(|metric| metric.name.to_owned())
        .collect();
    let platform = start_platform(PlatformOptions::new()).await;
    let app = TestConfig::new().against_websocket(&platform).start().await;

    let first = served(&scrape(&app).await);
    let missing: Vec<_> = wanted
        .iter()
        .filter(|name| !first.contains(*name) && !later.contains(*name))
        .collect();
    assert!(missing.is_empty(), "not on the first scrape: {missing:?}");

    app.wait_subscription_active().await;
    let conference = platform.conference(
        0x0b5e_7a11,
        Person::with_extension("Agent 122", "122", "62295300122"),
    );
    conference.start().await;
    conference.advance(Duration::from_secs(20));
    conference
        .call_and_merge(Person::new("Paco Vu", "+14155550142"))
        .await;
    app.wait_for_line("Paco Vu").await;
    let what = format!(
        "after a call, every monitored metric is served (of them, these wait for their code: {later:?})"
    );
    eventually(&what, DEADLINE, async || {
        let page = served(&scrape(&app).await);
        wanted.is_subset(&page).then_some(())
    })
    .await;
    app.stop().await;
}
