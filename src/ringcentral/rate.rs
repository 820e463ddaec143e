//! RingCentral's rate groups (`docs/ringcentral.md` §6): a budget per group, and the penalty window after a
//! 429 during which no request of that group is sent at all (any request would restart it).

use axum::http::HeaderMap;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Wait after a 429 that carried no `Retry-After` (`docs/ringcentral.md` §6).
pub const DEFAULT_PENALTY: Duration = Duration::from_secs(30);
/// RingCentral's rate window.
pub const WINDOW: Duration = Duration::from_secs(60);
/// The longest penalty or window ringside believes a header about (an hour).
const MAX_HEADER_SECS: u64 = 3600;

/// The rate groups of the endpoints ringside calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateGroup {
    Auth,
    Light,
    Medium,
    Heavy,
}

impl RateGroup {
    pub const ALL: [RateGroup; 4] = [
        RateGroup::Auth,
        RateGroup::Light,
        RateGroup::Medium,
        RateGroup::Heavy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RateGroup::Auth => "auth",
            RateGroup::Light => "light",
            RateGroup::Medium => "medium",
            RateGroup::Heavy => "heavy",
        }
    }

    /// RingCentral's default limit per minute.
    pub fn default_limit(self) -> u32 {
        match self {
            RateGroup::Auth => 5,
            RateGroup::Light => 50,
            RateGroup::Medium => 40,
            RateGroup::Heavy => 10,
        }
    }

    fn index(self) -> usize {
        match self {
            RateGroup::Auth => 0,
            RateGroup::Light => 1,
            RateGroup::Medium => 2,
            RateGroup::Heavy => 3,
        }
    }
}

#[derive(Debug)]
struct GroupState {
    /// Requests per window, from configuration, then from `X-Rate-Limit-Limit`.
    limit: u32,
    window: Duration,
    /// What RingCentral last said remains (`X-Rate-Limit-Remaining`), and when it said so.
    remaining: Option<(u32, Instant)>,
    /// When ringside sent its recent requests of this group.
    sent: VecDeque<Instant>,
    penalty_until: Option<Instant>,
}

/// The budget and penalty state of every group, shared by all callers of one client.
#[derive(Debug)]
pub struct RateLimits {
    groups: Mutex<[GroupState; 4]>,
}

impl RateLimits {
    /// Defaults per group, with the Light budget from settings.
    pub fn new(light_per_minute: u32) -> Self {
        let state = |group: RateGroup| GroupState {
            limit: if group == RateGroup::Light {
                light_per_minute
            } else {
                group.default_limit()
            },
            window: WINDOW,
            remaining: None,
            sent: VecDeque::new(),
            penalty_until: None,
        };
        RateLimits {
            groups: Mutex::new(RateGroup::ALL.map(state)),
        }
    }

    fn with<T>(&self, group: RateGroup, f: impl FnOnce(&mut GroupState, Instant) -> T) -> T {
        let now = Instant::now();
        let mut groups = self
            .groups
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let state = &mut groups[group.index()];
        while state
            .sent
            .front()
            .is_some_and(|sent| now.duration_since(*sent) >= state.window)
        {
            state.sent.pop_front();
        }
        f(state, now)
    }

    /// `Some(until)` while the group is in a penalty window: send nothing.
    pub fn penalty(&self, group: RateGroup) -> Option<Instant> {
        self.with(group, |state, now| {
            state.penalty_until.filter(|until| *until > now)
        })
    }

    /// Records that a request of `group` is being sent.
    pub fn record_sent(&self, group: RateGroup) {
        self.with(group, |state, now| state.sent.push_back(now));
    }

    /// Starts (or extends) a penalty window after a 429.
    pub fn penalize(&self, group: RateGroup, retry_after: Option<Duration>) {
        let wait = retry_after.unwrap_or(DEFAULT_PENALTY);
        self.with(group, |state, now| {
            let until = now.checked_add(wait).unwrap_or(now + DEFAULT_PENALTY);
            state.penalty_until = Some(state.penalty_until.map_or(until, |old| old.max(until)));
        });
        metrics::counter!("ringside_ringcentral_429_total", "group" => group.as_str()).increment(1);
    }

    /// Feeds `X-Rate-Limit-Limit`, `-Remaining` and `-Window` from an answer.
    pub fn observe(&self, group: RateGroup, headers: &HeaderMap) {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.trim().parse::<u32>().ok())
        };
        let (limit, remaining, window) = (
            number("x-rate-limit-limit"),
            number("x-rate-limit-remaining"),
            number("x-rate-limit-window"),
        );
        self.with(group, |state, now| {
            if let Some(limit) = limit.filter(|limit| *limit > 0) {
                state.limit = limit;
            }
            if let Some(window) = window.filter(|window| *window > 0) {
                state.window = Duration::from_secs(u64::from(window).min(MAX_HEADER_SECS));
            }
            if let Some(remaining) = remaining {
                state.remaining = Some((remaining, now));
            }
        });
    }

    /// Requests of `group` ringside may still send in the current window, as far as it can
    /// tell: its own count against the limit, and RingCentral's last word when fresher.
    pub fn available(&self, group: RateGroup) -> u32 {
        self.with(group, |state, now| {
            let used = u32::try_from(state.sent.len()).unwrap_or(u32::MAX);
            let ours = state.limit.saturating_sub(used);
            match state.remaining {
                Some((remaining, at)) if now.duration_since(at) < state.window => {
                    let since = state.sent.iter().filter(|sent| **sent >= at).count();
                    ours.min(remaining.saturating_sub(u32::try_from(since).unwrap_or(u32::MAX)))
                }
                _ => ours,
            }
        })
    }

    /// The group's requests per window and the window.
    pub fn budget(&self, group: RateGroup) -> (u32, Duration) {
        self.with(group, |state, _| (state.limit, state.window))
    }

    /// When the oldest request in the window leaves it (when a slot frees up).
    pub fn next_slot(&self, group: RateGroup) -> Option<Instant> {
        self.with(group, |state, _| {
            state.sent.front().map(|sent| *sent + state.window)
        })
    }
}

/// `Retry-After` in seconds (RingCentral sends seconds).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(|seconds| Duration::from_secs(seconds.min(MAX_HEADER_SECS)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[tokio::test(start_paused = true)]
    async fn a_penalty_lasts_retry_after_or_thirty_seconds() {
        let limits = RateLimits::new(50);
        limits.penalize(RateGroup::Light, Some(Duration::from_secs(5)));
        assert!(limits.penalty(RateGroup::Light).is_some());
        assert!(limits.penalty(RateGroup::Heavy).is_none());
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(limits.penalty(RateGroup::Light).is_none());
        limits.penalize(RateGroup::Light, None);
        tokio::time::advance(Duration::from_secs(29)).await;
        assert!(limits.penalty(RateGroup::Light).is_some());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(limits.penalty(RateGroup::Light).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_counts_requests_in_a_sliding_window_and_heeds_the_headers() {
        let limits = RateLimits::new(3);
        for _ in 0..2 {
            limits.record_sent(RateGroup::Light);
        }
        assert_eq!(limits.available(RateGroup::Light), 1);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(limits.available(RateGroup::Light), 3);
        let mut headers = HeaderMap::new();
        headers.insert("x-rate-limit-limit", HeaderValue::from_static("10"));
        headers.insert("x-rate-limit-remaining", HeaderValue::from_static("2"));
        headers.insert("x-rate-limit-window", HeaderValue::from_static("60"));
        limits.observe(RateGroup::Light, &headers);
        assert_eq!(limits.budget(RateGroup::Light), (10, WINDOW));
        assert_eq!(limits.available(RateGroup::Light), 2);
        limits.record_sent(RateGroup::Light);
        assert_eq!(limits.available(RateGroup::Light), 1);
    }
}
