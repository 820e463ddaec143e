//! How far the pipeline has got: counters of what came in and what went out, so that a caller
//! (the tests, the demo) can wait until everything handed to ringside so far has been announced,
//! instead of sleeping and hoping.
//!
//! `accepted` counts notifications handed to the pipeline and `applied` those it has applied;
//! `produced` counts announcements handed to the announcer and `announced` those it has finished
//! with (written to the sink, or delivered to Discord or parked). Idle means both pairs are equal.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Shared counters; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Progress(Arc<Counters>);

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    applied: AtomicU64,
    produced: AtomicU64,
    announced: AtomicU64,
}

/// How often [`Progress::idle`] looks again.
const POLL: Duration = Duration::from_millis(5);

fn add(counter: &AtomicU64, count: usize) {
    counter.fetch_add(u64::try_from(count).unwrap_or(u64::MAX), Ordering::SeqCst);
}

impl Progress {
    pub fn accepted(&self, count: usize) {
        add(&self.0.accepted, count);
    }

    pub fn applied(&self, count: usize) {
        add(&self.0.applied, count);
    }

    pub fn produced(&self, count: usize) {
        add(&self.0.produced, count);
    }

    pub fn announced(&self, count: usize) {
        add(&self.0.announced, count);
    }

    /// How many notifications have been handed to the pipeline so far.
    pub fn accepted_total(&self) -> u64 {
        self.0.accepted.load(Ordering::SeqCst)
    }

    /// Everything accepted was applied, and everything it produced was announced.
    pub fn is_idle(&self) -> bool {
        let c = &self.0;
        // Read outputs before inputs: an input counted after its output was read only makes
        // this say "busy" once more.
        let announced = c.announced.load(Ordering::SeqCst);
        let applied = c.applied.load(Ordering::SeqCst);
        let produced = c.produced.load(Ordering::SeqCst);
        let accepted = c.accepted.load(Ordering::SeqCst);
        applied >= accepted && announced >= produced
    }

    /// Resolves once [`Progress::is_idle`] holds.
    pub async fn idle(&self) {
        while !self.is_idle() {
            tokio::time::sleep(POLL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_once_every_input_and_output_is_accounted_for() {
        let progress = Progress::default();
        assert!(progress.is_idle());
        progress.accepted(2);
        progress.applied(1);
        assert!(!progress.is_idle());
        progress.applied(1);
        progress.produced(3);
        assert!(!progress.is_idle());
        let waiter = tokio::spawn({
            let progress = progress.clone();
            async move { progress.idle().await }
        });
        progress.announced(3);
        waiter.await.unwrap();
        assert!(progress.is_idle());
    }
}
