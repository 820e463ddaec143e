//! Log lines bounded in time: under a flood of refused requests (or failed accepts), ringside
//! writes at most one line per reason per period, carrying how many occurrences it stands for,
//! so the logs cannot grow with the attacker's request rate. Every occurrence is still counted
//! in metrics by the caller.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Per-reason gate: [`Throttle::admit`] answers whether a line may be written now.
#[derive(Debug)]
pub struct Throttle {
    period: Duration,
    /// One slot per reason seen; reasons are a fixed, small set of `&'static str`s.
    slots: Mutex<Vec<Slot>>,
}

#[derive(Debug)]
struct Slot {
    reason: &'static str,
    last_line: Instant,
    /// Occurrences since the last line written.
    unlogged: u64,
}

impl Throttle {
    pub const fn new(period: Duration) -> Self {
        Throttle {
            period,
            slots: Mutex::new(Vec::new()),
        }
    }

    /// Records one occurrence of `reason`. `Some(count)` when a line may be written now:
    /// `count` occurrences (this one included) happened since the last line for `reason`.
    pub fn admit(&self, reason: &'static str) -> Option<u64> {
        self.admit_at(reason, Instant::now())
    }

    fn admit_at(&self, reason: &'static str, now: Instant) -> Option<u64> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        match slots.iter_mut().find(|slot| slot.reason == reason) {
            None => {
                slots.push(Slot {
                    reason,
                    last_line: now,
                    unlogged: 0,
                });
                Some(1)
            }
            Some(slot) => {
                slot.unlogged = slot.unlogged.saturating_add(1);
                if now.saturating_duration_since(slot.last_line) >= self.period {
                    let count = slot.unlogged;
                    slot.unlogged = 0;
                    slot.last_line = now;
                    Some(count)
                } else {
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_reason_per_period_with_the_count_it_stands_for() {
        let throttle = Throttle::new(Duration::from_secs(1));
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        assert_eq!(throttle.admit_at("unauthorized", at(0)), Some(1));
        let written: Vec<Option<u64>> = (1..=10_000u64)
            .map(|i| throttle.admit_at("unauthorized", at(i / 10)))
            .collect();
        // 10,000 occurrences over one second: exactly one more line, standing for all of them.
        assert_eq!(written.iter().flatten().count(), 1);
        assert_eq!(written.iter().flatten().sum::<u64>(), 10_000);
        // Another reason has its own slot.
        assert_eq!(throttle.admit_at("too_large", at(500)), Some(1));
        assert_eq!(throttle.admit_at("too_large", at(600)), None);
        assert_eq!(throttle.admit_at("too_large", at(1_600)), Some(2));
    }
}
