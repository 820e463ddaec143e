//! The process-wide Prometheus recorder behind `GET /metrics`, and the catalogue of every metric
//! ringside emits.
//!
//! The `metrics` crate registers a series at its first use, so without help a scrape shows only
//! what already happened: an alert on a counter that has never moved has nothing to compare, and
//! nothing says what a name means. [`install`] therefore describes every entry of [`CATALOGUE`]
//! (`# HELP`, unit) and registers it before the first scrape: counters at 0 (for a label with a
//! closed set of values, one series per value), histograms with their buckets and no samples,
//! gauges at the value that is true before their code runs — or not at all when any value
//! would claim something false ([`Start::Later`]).
//!
//! The catalogue is the one list of names: its tests fail when a metric is emitted in `src/` and
//! missing here, listed here and no longer emitted, or missing from `docs/operations.md`, which
//! explains each one to operators (and where `deploy/prometheus/alerts.yml` and
//! `deploy/grafana/ringside.json` use them).
//!
//! This module emits nothing itself: the values belong to the code that owns them.

use metrics::Unit;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// What kind of series a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// How a metric exists before its code first touches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// At zero from the start: nothing counted yet, or a state that is honestly 0 (no store
    /// failure, nothing queued). Histograms: buckets with no samples.
    Zero,
    /// One series at zero for each value of the metric's one label; values seen later (none
    /// should be) appear with their first count.
    Each(&'static [&'static str]),
    /// At zero only when RingCentral is configured: 0 then means "not (yet) active"; without
    /// RingCentral there is no subscription to speak of, so no series.
    WithRingCentral,
    /// At zero only with WebSocket delivery: in webhook mode the series stays absent, so the
    /// alerts on it cannot fire there.
    WithWebSocket,
    /// Left to its code: its labels are not known ahead, or any starting value would be false
    /// (a last-message time of 0 is 1970).
    Later,
}

/// One metric: its name, kind, unit, labels and one line of meaning.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    pub unit: Unit,
    pub labels: &'static [&'static str],
    pub help: &'static str,
    pub start: Start,
}

/// Buckets for the request durations, in seconds: a healthy Discord or RingCentral answer takes
/// tens to hundreds of milliseconds; the request timeouts are seconds.
const REQUEST_BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// The names of ringside's supervised tasks (`app::supervise`), as `task` labels.
const CORE_TASKS: &[&str] = &[
    "store",
    "pipeline",
    "announcer",
    "public listener",
    "operator listener",
    "subscription",
    "websocket",
    "reconciler",
    "directory",
    "gateway",
];

/// The listeners' names, as `listener` labels.
const LISTENERS: &[&str] = &["public", "operator"];

/// RingCentral's rate groups (`ringcentral::rate::RateGroup`), as `group` labels.
const RATE_GROUPS: &[&str] = &["auth", "light", "medium", "heavy"];

/// The Discord routes ringside's poster sends to, as `route` labels.
const DISCORD_ROUTES: &[&str] = &[
    "POST /channels/{channel_id}/messages",
    "PATCH /channels/{channel_id}/messages/{message_id}",
    "POST /channels/{channel_id}/messages/{message_id}/threads",
];

const fn counter(
    name: &'static str,
    labels: &'static [&'static str],
    help: &'static str,
    start: Start,
) -> Metric {
    Metric {
        name,
        kind: Kind::Counter,
        unit: Unit::Count,
        labels,
        help,
        start,
    }
}

const fn gauge(name: &'static str, unit: Unit, help: &'static str, start: Start) -> Metric {
    Metric {
        name,
        kind: Kind::Gauge,
        unit,
        labels: &[],
        help,
        start,
    }
}

/// Every metric ringside emits, grouped by the part of ringside that owns it.
pub const CATALOGUE: &[Metric] = &[
    // Notifications in (`ringcentral::intake`, `webhook`, `websocket`).
    counter(
        "ringside_notifications_total",
        &["outcome"],
        "RingCentral notifications taken in, by outcome (accepted, duplicate, ignored, quarantined)",
        Start::Each(&["accepted", "duplicate", "ignored", "quarantined"]),
    ),
    counter(
        "ringside_notifications_rejected_total",
        &["reason"],
        "Webhook requests refused, by reason",
        Start::Each(&[
            "unauthorized",
            "too_large",
            "unreadable",
            "validation_token_too_long",
            "not_json",
            "not_notification",
            "store",
            "deadline",
        ]),
    ),
    counter(
        "ringside_webhook_handshakes_total",
        &[],
        "Webhook validation handshakes answered",
        Start::Zero,
    ),
    counter(
        "ringside_websocket_connects_total",
        &[],
        "Connections to RingCentral's WebSocket gateway that received their ConnectionDetails",
        Start::Zero,
    ),
    counter(
        "ringside_websocket_recoveries_total",
        &["outcome"],
        "WebSocket reconnects that tried to recover the session, by outcome",
        Start::Each(&["successful", "failed"]),
    ),
    counter(
        "ringside_websocket_heartbeats_total",
        &[],
        "Heartbeats sent on the WebSocket (about one a minute on a quiet connection)",
        Start::Zero,
    ),
    counter(
        "ringside_websocket_notifications_total",
        &[],
        "Notifications received over the WebSocket",
        Start::Zero,
    ),
    gauge(
        "ringside_websocket_connected",
        Unit::Count,
        "1 while the WebSocket to RingCentral is open, else 0 (WebSocket delivery only)",
        Start::WithWebSocket,
    ),
    gauge(
        "ringside_websocket_last_message_unix_seconds",
        Unit::Seconds,
        "Unix time of the last notification received over the WebSocket",
        Start::Later,
    ),
    gauge(
        "ringside_subscription_active",
        Unit::Count,
        "1 while the RingCentral subscription is active, else 0 (RingCentral mode only)",
        Start::WithRingCentral,
    ),
    counter(
        "ringside_subscription_recreated_total",
        &[],
        "Webhook subscriptions found inactive or gone and created again",
        Start::Zero,
    ),
    // The RingCentral API (`ringcentral::auth`, `client`, `rate`, `reconciler`, `directory`, `kick`).
    counter(
        "ringside_ringcentral_token_requests_total",
        &[],
        "Requests to RingCentral's token endpoint (JWT logins and refreshes)",
        Start::Zero,
    ),
    counter(
        "ringside_ringcentral_auth_failures_total",
        &[],
        "Failed attempts to get a RingCentral access token",
        Start::Zero,
    ),
    Metric {
        name: "ringside_ringcentral_request_seconds",
        kind: Kind::Histogram,
        unit: Unit::Seconds,
        labels: &["group"],
        help: "RingCentral request durations, by rate group",
        start: Start::Each(RATE_GROUPS),
    },
    counter(
        "ringside_ringcentral_429_total",
        &["group"],
        "RingCentral 429 answers, by rate group",
        Start::Each(RATE_GROUPS),
    ),
    counter(
        "ringside_reconcile_snapshots_total",
        &[],
        "Conference snapshots read by the reconciler",
        Start::Zero,
    ),
    counter(
        "ringside_reconcile_deferred_total",
        &[],
        "Reconciler rounds put off because RingCentral's rate group was closed",
        Start::Zero,
    ),
    counter(
        "ringside_directory_lookups_total",
        &["outcome"],
        "Extension directory lookups, by outcome",
        Start::Each(&["found", "not_found", "forbidden", "failed"]),
    ),
    counter(
        "ringside_kicks_total",
        &["outcome"],
        "Kicks carried out, by outcome",
        Start::Each(&["removed", "already_gone", "refused_host", "failed"]),
    ),
    // The pipeline (`pipeline::hub`).
    counter(
        "ringside_detector_events_total",
        &["type"],
        "Conference events the detector found, by type",
        Start::Each(&[
            "conference_started",
            "participant_joined",
            "participant_left",
            "conference_ended",
        ]),
    ),
    // Announcements (`discord::announcer`).
    counter(
        "ringside_announcements_sent_total",
        &[],
        "Announcements delivered (messages to Discord, or lines in local mode)",
        Start::Zero,
    ),
    counter(
        "ringside_announcements_retried_total",
        &[],
        "Announcement sends tried again (rate limit, lost thread, bad token, transient failure)",
        Start::Zero,
    ),
    counter(
        "ringside_announcements_failed_total",
        &[],
        "Announcement lines the local-mode sink could not write (kept in the outbox)",
        Start::Zero,
    ),
    counter(
        "ringside_announcements_parked_total",
        &[],
        "Announcements Discord refused for good, parked in the store",
        Start::Zero,
    ),
    gauge(
        "ringside_announcements_parked",
        Unit::Count,
        "Announcements parked in the store now and not yet taken for a resend (`ringside parked`)",
        Start::Later,
    ),
    counter(
        "ringside_announcements_resent_total",
        &[],
        "Parked announcements sent again after `ringside parked resend ID`, accepted by Discord",
        Start::Zero,
    ),
    gauge(
        "ringside_announcements_queued",
        Unit::Count,
        "Announcements waiting to be sent",
        Start::Zero,
    ),
    counter(
        "ringside_roster_card_requests_total",
        &["request", "outcome"],
        "Roster card posts and edits, by request and outcome",
        Start::Later,
    ),
    gauge(
        "ringside_roster_cards_followed",
        Unit::Count,
        "Roster cards kept up to date",
        Start::Zero,
    ),
    counter(
        "ringside_watch_alert_requests_total",
        &["request", "outcome"],
        "Watch-list alert posts and edits, by request and outcome",
        Start::Later,
    ),
    gauge(
        "ringside_watch_alerts_followed",
        Unit::Count,
        "Watch-list alerts followed (open and closed) for the conferences in the roster",
        Start::Zero,
    ),
    // Discord (`discord::poster`, `interactions`, `respond`, `commands`, `side`).
    counter(
        "ringside_discord_requests_total",
        &["route", "status"],
        "Discord REST requests, by route and HTTP status",
        Start::Later,
    ),
    Metric {
        name: "ringside_discord_request_seconds",
        kind: Kind::Histogram,
        unit: Unit::Seconds,
        labels: &["route"],
        help: "Discord REST request durations, by route",
        start: Start::Each(DISCORD_ROUTES),
    },
    counter(
        "ringside_discord_rate_limited_total",
        &["scope"],
        "Discord 429 answers, by scope",
        Start::Each(&["user", "global"]),
    ),
    counter(
        "ringside_discord_interactions_total",
        &["kind", "outcome"],
        "Discord interactions handled, by kind and outcome",
        Start::Later,
    ),
    counter(
        "ringside_discord_interaction_rejections_total",
        &["reason"],
        "Requests to the interactions endpoint refused, by reason",
        Start::Each(&[
            "too_large",
            "unreadable",
            "no_signature",
            "no_timestamp",
            "bad_timestamp",
            "stale_timestamp",
            "bad_signature",
            "replayed",
            "not_interaction",
        ]),
    ),
    counter(
        "ringside_discord_refusals_total",
        &["reason"],
        "Commands refused to a Discord user, by reason",
        Start::Each(&[
            "dm",
            "other_guild",
            "no_list_access",
            "no_kick_access",
            "kick_disabled",
            "kick_limit",
        ]),
    ),
    counter(
        "ringside_discord_command_registration_failures_total",
        &[],
        "Failed attempts to register the slash commands",
        Start::Zero,
    ),
    // The app (`app::*`, `store`).
    gauge(
        "ringside_store_failing",
        Unit::Count,
        "1 while the store cannot write, else 0",
        Start::Zero,
    ),
    gauge(
        "ringside_start_time_seconds",
        Unit::Seconds,
        "Unix time this ringside process started; a change means it restarted (after a core task died, exit 1, its supervisor starts it again)",
        Start::Later,
    ),
    counter(
        "ringside_core_task_failures_total",
        &["task"],
        "Core tasks that ended or panicked outside a shutdown (ringside then exits with status 1)",
        Start::Each(CORE_TASKS),
    ),
    counter(
        "ringside_connections_total",
        &["listener"],
        "Connections accepted, by listener",
        Start::Each(LISTENERS),
    ),
    counter(
        "ringside_accept_errors_total",
        &["listener"],
        "Failed accepts (for example out of file descriptors), by listener",
        Start::Each(LISTENERS),
    ),
    counter(
        "ringside_api_unauthorized_total",
        &[],
        "GET /api/conferences requests without a valid bearer token",
        Start::Zero,
    ),
    counter(
        "ringside_settings_reload_failures_total",
        &[],
        "Changes to the settings file that could not be loaded (the last good settings stay)",
        Start::Zero,
    ),
    gauge(
        "ringside_contacts_loaded",
        Unit::Count,
        "Names loaded from the contacts file",
        Start::Zero,
    ),
    counter(
        "ringside_contacts_problems_total",
        &[],
        "Problems found in the contacts file (unreadable lines, a missing file)",
        Start::Zero,
    ),
];

/// Which optional parts of ringside run, for the metrics that exist only with them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Parts {
    pub ringcentral: bool,
    pub websocket: bool,
}

/// Installs the recorder (once per process), then describes and registers the catalogue for
/// `parts`. Registering never changes a value already there, so calling it again (a test that
/// starts ringside twice) is harmless. `None` if another recorder was installed first (then
/// `/metrics` says it is unavailable rather than serving nothing).
pub fn install(parts: Parts) -> Option<PrometheusHandle> {
    let handle = handle()?;
    for metric in CATALOGUE {
        register(metric, parts);
    }
    Some(handle)
}

/// The installed recorder's handle, installing it on first use.
pub fn handle() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let installed = builder().and_then(PrometheusBuilder::install_recorder);
            match installed {
                Ok(handle) => {
                    describe();
                    Some(handle)
                }
                Err(error) => {
                    tracing::warn!(%error, "metrics recorder not installed");
                    None
                }
            }
        })
        .clone()
}

/// A builder whose histograms have buckets (so `histogram_quantile` works over any window)
/// rather than the exporter's default summaries.
fn builder() -> Result<PrometheusBuilder, BuildError> {
    CATALOGUE
        .iter()
        .filter(|metric| metric.kind == Kind::Histogram)
        .try_fold(PrometheusBuilder::new(), |builder, metric| {
            builder.set_buckets_for_metric(Matcher::Full(metric.name.to_owned()), REQUEST_BUCKETS)
        })
}

fn describe() {
    for metric in CATALOGUE {
        let (name, unit, help) = (metric.name, metric.unit, metric.help);
        match metric.kind {
            Kind::Counter => metrics::describe_counter!(name, unit, help),
            Kind::Gauge => metrics::describe_gauge!(name, unit, help),
            Kind::Histogram => metrics::describe_histogram!(name, unit, help),
        }
    }
}

/// Creates `metric`'s starting series. Counters and gauges are moved by 0, never set: a value
/// the code already wrote stays.
fn register(metric: &Metric, parts: Parts) {
    let wanted = match metric.start {
        Start::Zero | Start::Each(_) => true,
        Start::WithRingCentral => parts.ringcentral,
        Start::WithWebSocket => parts.ringcentral && parts.websocket,
        Start::Later => false,
    };
    if !wanted {
        return;
    }
    let name = metric.name;
    let touch = |labels: Vec<metrics::Label>| match metric.kind {
        Kind::Counter => metrics::counter!(name, labels).increment(0),
        Kind::Gauge => metrics::gauge!(name, labels).increment(0.0),
        // A histogram handle registers the series; recording nothing leaves it empty.
        Kind::Histogram => {
            let _ = metrics::histogram!(name, labels);
        }
    };
    match (metric.start, metric.labels) {
        (Start::Each(values), [label]) => {
            for value in values {
                touch(vec![metrics::Label::new(*label, *value)]);
            }
        }
        _ => touch(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    fn root() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    /// Every `.rs` file under `src/` but this one, with its text.
    fn sources() -> Vec<(PathBuf, String)> {
        fn walk(dir: &Path, found: &mut Vec<(PathBuf, String)>) {
            let mut entries: Vec<_> = std::fs::read_dir(dir)
                .unwrap()
                .map(|entry| entry.unwrap().path())
                .collect();
            entries.sort();
            for path in entries {
                if path.is_dir() {
                    walk(&path, found);
                } else if path.extension().is_some_and(|ext| ext == "rs")
                    && !path.ends_with("app/metrics.rs")
                {
                    let text = std::fs::read_to_string(&path).unwrap();
                    found.push((path, text));
                }
            }
        }
        let mut found = Vec::new();
        walk(&root().join("src"), &mut found);
        found
    }

    /// The names given to `counter!(`, `gauge!(` and `histogram!(` in `text`, across line
    /// breaks (rustfmt splits long calls).
    fn emitted(text: &str) -> Vec<String> {
        let mut names = Vec::new();
        for macro_name in ["counter!(", "gauge!(", "histogram!("] {
            for (at, _) in text.match_indices(macro_name) {
                let rest = text[at + macro_name.len()..].trim_start();
                if let Some(quoted) = rest.strip_prefix('"')
                    && let Some(end) = quoted.find('"')
                {
                    names.push(quoted[..end].to_owned());
                }
            }
        }
        names
    }

    fn emitted_in_src() -> BTreeSet<String> {
        sources()
            .iter()
            .flat_map(|(_, text)| emitted(text))
            .collect()
    }

    fn catalogued() -> BTreeSet<String> {
        CATALOGUE
            .iter()
            .map(|metric| metric.name.to_owned())
            .collect()
    }

    #[test]
    fn the_scan_finds_names_split_over_lines() {
        let text = "metrics::counter!(\n    \"ringside_a_total\",\n    \"x\" => y)\nmetrics::gauge!(\"ringside_b\").set(1.0)";
        assert_eq!(emitted(text), ["ringside_a_total", "ringside_b"]);
    }

    #[test]
    fn every_metric_emitted_in_src_is_in_the_catalogue() {
        let missing: Vec<_> = emitted_in_src()
            .difference(&catalogued())
            .cloned()
            .collect();
        assert!(missing.is_empty(), "not in CATALOGUE: {missing:?}");
    }

    #[test]
    fn every_catalogue_entry_is_still_emitted_in_src() {
        let stale: Vec<_> = catalogued()
            .difference(&emitted_in_src())
            .cloned()
            .collect();
        assert!(
            stale.is_empty(),
            "in CATALOGUE but emitted nowhere: {stale:?}"
        );
    }

    #[test]
    fn the_catalogue_names_each_metric_once_with_its_kind_in_its_name() {
        assert_eq!(catalogued().len(), CATALOGUE.len());
        for metric in CATALOGUE {
            let counted = metric.name.ends_with("_total");
            assert_eq!(counted, metric.kind == Kind::Counter, "{}", metric.name);
            if let Start::Each(_) = metric.start {
                assert_eq!(
                    metric.labels.len(),
                    1,
                    "{}: Each needs one label",
                    metric.name
                );
            }
        }
    }

    #[test]
    fn every_label_value_registered_ahead_is_written_in_src() {
        let text: String = sources().into_iter().map(|(_, text)| text).collect();
        for metric in CATALOGUE {
            if let Start::Each(values) = metric.start {
                for value in values {
                    assert!(
                        text.contains(&format!("\"{value}\"")),
                        "{}: label value {value:?} appears nowhere in src",
                        metric.name
                    );
                }
            }
        }
    }

    #[test]
    fn every_catalogue_entry_is_explained_in_docs_operations_md() {
        let docs = std::fs::read_to_string(root().join("docs/operations.md")).unwrap();
        let missing: Vec<_> = CATALOGUE
            .iter()
            .filter(|metric| !docs.contains(&format!("`{}`", metric.name)))
            .map(|metric| metric.name)
            .collect();
        assert!(missing.is_empty(), "not in docs/operations.md: {missing:?}");
    }
}
