//! Rate limits per group (`docs/ringcentral.md` §6): a sliding window of requests, and a penalty after
//! going over the limit that every request made during it restarts.

use std::collections::VecDeque;
use std::time::Duration;

use axum::http::Method;
use tokio::time::Instant;

use super::PlatformOptions;
use super::state::whole_seconds;

/// RingCentral's rate-limit groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RateGroup {
    /// 50 requests a minute by default.
    Light,
    /// 40 requests a minute by default.
    Medium,
    /// 10 requests a minute by default.
    Heavy,
    /// 5 requests a minute by default (token, revoke).
    Auth,
}

impl RateGroup {
    /// Every group.
    pub const ALL: [RateGroup; 4] = [Self::Light, Self::Medium, Self::Heavy, Self::Auth];

    /// The value of `X-Rate-Limit-Group`: lower case.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Light => "light",
            Self::Medium => "medium",
            Self::Heavy => "heavy",
            Self::Auth => "auth",
        }
    }

    /// RingCentral's default limit per 60 s.
    pub fn default_limit(self) -> u32 {
        match self {
            Self::Light => 50,
            Self::Medium => 40,
            Self::Heavy => 10,
            Self::Auth => 5,
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Self::Light => 0,
            Self::Medium => 1,
            Self::Heavy => 2,
            Self::Auth => 3,
        }
    }

    /// The group of an endpoint (`docs/ringcentral.md` §6 table); `None` for paths the fake does not serve.
    pub(crate) fn of(method: &Method, path: &str) -> Option<Self> {
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
        match segments.as_slice() {
            ["restapi", "oauth", "token" | "revoke" | "wstoken"] if method == Method::POST => {
                Some(Self::Auth)
            }
            ["restapi", "v1.0", "subscription"] => match *method {
                Method::POST => Some(Self::Medium),
                Method::GET => Some(Self::Light),
                _ => None,
            },
            ["restapi", "v1.0", "subscription", _] => match *method {
                Method::GET => Some(Self::Light),
                Method::PUT | Method::DELETE => Some(Self::Medium),
                _ => None,
            },
            ["restapi", "v1.0", "subscription", _, "renew"] if method == Method::POST => {
                Some(Self::Light)
            }
            ["restapi", "v1.0", "account", _, "telephony", "sessions", _]
            | [
                "restapi",
                "v1.0",
                "account",
                _,
                "telephony",
                "sessions",
                _,
                "parties",
                _,
            ] if method == Method::GET || method == Method::DELETE => Some(Self::Light),
            ["restapi", "v1.0", "account", _, "presence"] if method == Method::GET => {
                Some(Self::Heavy)
            }
            ["restapi", "v1.0", "account", _, "extension", _]
            | ["restapi", "v1.0", "account", _, "extension", _, "presence"]
                if method == Method::GET =>
            {
                Some(Self::Light)
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for RateGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the limiter decided about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Let through; `remaining` requests left in the window.
    Allowed { limit: u32, remaining: u32 },
    /// 429; `retry_after` seconds when the header is sent.
    Throttled {
        limit: u32,
        retry_after: Option<u64>,
    },
}

#[derive(Debug)]
struct Group {
    limit: u32,
    hits: VecDeque<Instant>,
    penalty: Option<Penalty>,
}

#[derive(Debug, Clone, Copy)]
struct Penalty {
    until: Instant,
    length: Duration,
    retry_after: bool,
}

/// The four groups' windows and penalties.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    groups: [Group; 4],
    window: Duration,
    penalty: Duration,
}

impl RateLimiter {
    pub(crate) fn new(options: &PlatformOptions) -> Self {
        let group = |group: RateGroup| Group {
            limit: options.limits[group.index()],
            hits: VecDeque::new(),
            penalty: None,
        };
        Self {
            groups: RateGroup::ALL.map(group),
            window: options.window,
            penalty: options.penalty,
        }
    }

    pub(crate) fn window(&self) -> Duration {
        self.window
    }

    pub(crate) fn set_limit(&mut self, group: RateGroup, limit: u32) {
        self.groups[group.index()].limit = limit;
    }

    pub(crate) fn throttle(&mut self, group: RateGroup, length: Duration, retry_after: bool) {
        self.groups[group.index()].penalty = Some(Penalty {
            until: Instant::now() + length,
            length,
            retry_after,
        });
    }

    /// Counts a request in `group` and decides it.
    pub(crate) fn check(&mut self, group: RateGroup) -> Verdict {
        let now = Instant::now();
        let default_penalty = self.penalty;
        let window = self.window;
        let state = &mut self.groups[group.index()];
        if let Some(penalty) = state.penalty.as_mut() {
            if now < penalty.until {
                // `docs/ringcentral.md` §6: any request during the penalty restarts it.
                penalty.until = now + penalty.length;
                return Verdict::Throttled {
                    limit: state.limit,
                    retry_after: penalty
                        .retry_after
                        .then(|| whole_seconds(penalty.length).max(1)),
                };
            }
            state.penalty = None;
        }
        prune(&mut state.hits, now, window);
        let used = u32::try_from(state.hits.len()).unwrap_or(u32::MAX);
        if used >= state.limit {
            state.penalty = Some(Penalty {
                until: now + default_penalty,
                length: default_penalty,
                retry_after: true,
            });
            return Verdict::Throttled {
                limit: state.limit,
                retry_after: Some(whole_seconds(default_penalty).max(1)),
            };
        }
        state.hits.push_back(now);
        Verdict::Allowed {
            limit: state.limit,
            remaining: state.limit - used - 1,
        }
    }

    /// The group's standing without counting a request (for answers refused before the
    /// limiter, such as a 401).
    pub(crate) fn peek(&mut self, group: RateGroup) -> (u32, u32) {
        let now = Instant::now();
        let window = self.window;
        let state = &mut self.groups[group.index()];
        prune(&mut state.hits, now, window);
        let used = u32::try_from(state.hits.len()).unwrap_or(u32::MAX);
        (state.limit, state.limit.saturating_sub(used))
    }
}

fn prune(hits: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while hits
        .front()
        .is_some_and(|&hit| now.duration_since(hit) >= window)
    {
        hits.pop_front();
    }
}

#[cfg(test)]
mod group_tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_request_during_the_penalty_restarts_it() {
        let options = PlatformOptions::new()
            .limit(RateGroup::Light, 2)
            .penalty(Duration::from_millis(1000))
            .rate_window(Duration::from_millis(1200));
        let mut limiter = RateLimiter::new(&options);
        let allowed = |verdict: Verdict| matches!(verdict, Verdict::Allowed { .. });
        assert!(allowed(limiter.check(RateGroup::Light)));
        assert!(allowed(limiter.check(RateGroup::Light)));
        assert!(!allowed(limiter.check(RateGroup::Light)), "over the limit");
        // Other groups are not affected.
        assert!(allowed(limiter.check(RateGroup::Medium)));
        // 700 ms in: still penalised, and this request restarts the 1 s penalty.
        tokio::time::advance(Duration::from_millis(700)).await;
        assert!(!allowed(limiter.check(RateGroup::Light)));
        // 1400 ms in: past the original penalty, but inside the restarted one.
        tokio::time::advance(Duration::from_millis(700)).await;
        assert!(!allowed(limiter.check(RateGroup::Light)));
        // 1 ms before the restarted penalty ends, still refused (and restarted again).
        tokio::time::advance(Duration::from_millis(999)).await;
        assert!(!allowed(limiter.check(RateGroup::Light)));
        // Left alone for longer than the penalty (and the window): allowed again.
        tokio::time::advance(Duration::from_millis(1600)).await;
        assert!(allowed(limiter.check(RateGroup::Light)));
    }

    #[test]
    fn endpoints_fall_in_the_reference_groups() {
        let cases = [
            (Method::POST, "/restapi/oauth/token", Some(RateGroup::Auth)),
            (Method::POST, "/restapi/oauth/revoke", Some(RateGroup::Auth)),
            (
                Method::POST,
                "/restapi/v1.0/subscription",
                Some(RateGroup::Medium),
            ),
            (
                Method::GET,
                "/restapi/v1.0/subscription",
                Some(RateGroup::Light),
            ),
            (
                Method::GET,
                "/restapi/v1.0/subscription/x",
                Some(RateGroup::Light),
            ),
            (
                Method::PUT,
                "/restapi/v1.0/subscription/x",
                Some(RateGroup::Medium),
            ),
            (
                Method::DELETE,
                "/restapi/v1.0/subscription/x",
                Some(RateGroup::Medium),
            ),
            (
                Method::POST,
                "/restapi/v1.0/subscription/x/renew",
                Some(RateGroup::Light),
            ),
            (
                Method::GET,
                "/restapi/v1.0/account/~/telephony/sessions/s-1",
                Some(RateGroup::Light),
            ),
            (
                Method::DELETE,
                "/restapi/v1.0/account/~/telephony/sessions/s-1/parties/p-1",
                Some(RateGroup::Light),
            ),
            (
                Method::GET,
                "/restapi/v1.0/account/~/presence",
                Some(RateGroup::Heavy),
            ),
            (
                Method::GET,
                "/restapi/v1.0/account/~/extension/~/presence",
                Some(RateGroup::Light),
            ),
            (
                Method::GET,
                "/restapi/v1.0/account/~/extension/62288",
                Some(RateGroup::Light),
            ),
            (Method::GET, "/nowhere", None),
        ];
        for (method, path, group) in cases {
            assert_eq!(RateGroup::of(&method, path), group, "{method} {path}");
        }
    }
}
