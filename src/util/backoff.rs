//! The one backoff: waits that double from a first wait up to a cap, each with jitter, so that
//! many clients retrying the same failure do not retry in step.

use super::random;
use std::time::Duration;

/// Successive waits between failed attempts: `first`, then twice that, … up to `max`, each
/// lengthened by up to a quarter at random. Never shorter than its base: a rate-limited
/// endpoint (RingCentral's Auth group allows five requests a minute) must not see a retry
/// sooner than the backoff promises.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub const fn new(first: Duration, max: Duration) -> Self {
        Backoff {
            first,
            max,
            failures: 0,
        }
    }

    /// The wait after one more failure.
    pub fn next_wait(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        jittered(self.base(self.failures))
    }

    /// The wait after `failures` failures in a row (1 is the first), without changing `self`.
    pub fn wait_after(&self, failures: u32) -> Duration {
        jittered(self.base(failures))
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// A success: the next failure waits `first` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    fn base(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(20);
        self.first.saturating_mul(1 << doublings).min(self.max)
    }
}

/// `base` plus up to a quarter of it, at random.
pub fn jittered(base: Duration) -> Duration {
    base + (base / 4).mul_f64(random::fraction())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap_with_up_to_a_quarter_more() {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(4));
        let bases = [500, 1000, 2000, 4000, 4000, 4000];
        for base in bases {
            let wait = backoff.next_wait();
            let base = Duration::from_millis(base);
            assert!(
                wait >= base && wait <= base + base / 4,
                "{wait:?} for {base:?}"
            );
        }
        assert_eq!(backoff.failures(), 6);
        backoff.reset();
        assert!(backoff.next_wait() <= Duration::from_millis(625));
        // Huge failure counts neither overflow nor exceed the cap (and its jitter).
        assert!(backoff.wait_after(u32::MAX) <= Duration::from_secs(5));
    }
}
