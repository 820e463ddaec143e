//! The graceful stop, as every long-running task sees it.
//!
//! One [`StopSender`] (held by the app) and a [`Shutdown`] per task, in the manner of
//! mini-redis's `src/shutdown.rs`: the task asks [`Shutdown::is_shutdown`] between steps, or
//! awaits [`Shutdown::recv`] (usually in a `select!` beside its work), or waits with
//! [`Shutdown::sleep`], which ends early on a stop. A sender that is dropped counts as a stop.

use std::time::Duration;
use tokio::sync::watch;

/// Asks every [`Shutdown`] made from it to stop.
#[derive(Debug)]
pub struct StopSender(watch::Sender<bool>);

/// A task's view of the graceful stop; cheap to clone.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// A sender and the first receiver.
pub fn channel() -> (StopSender, Shutdown) {
    let (sender, receiver) = watch::channel(false);
    (StopSender(sender), Shutdown(receiver))
}

impl StopSender {
    /// Asks for the stop (idempotent).
    pub fn stop(&self) {
        self.0.send_replace(true);
    }

    pub fn subscribe(&self) -> Shutdown {
        Shutdown(self.0.subscribe())
    }
}

impl Shutdown {
    /// A shutdown that never comes (tests, one-shot tools).
    pub fn never() -> Shutdown {
        let (sender, receiver) = watch::channel(false);
        // Leaked on purpose: a dropped sender would read as a stop.
        std::mem::forget(sender);
        Shutdown(receiver)
    }

    /// Whether the stop was asked for (or the sender is gone).
    pub fn is_shutdown(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }

    /// Resolves once the stop was asked for (at once if it already was).
    pub async fn recv(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    /// Sleeps `wait` unless the stop comes first; `true` when stopping.
    pub async fn sleep(&mut self, wait: Duration) -> bool {
        tokio::select! {
            () = self.recv() => true,
            () = tokio::time::sleep(wait) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_sleep_ends_early_on_a_stop_and_every_receiver_sees_it() {
        let (stop, mut shutdown) = channel();
        let mut other = stop.subscribe();
        assert!(!shutdown.is_shutdown());
        assert!(!shutdown.sleep(Duration::from_secs(1)).await);
        let sleeper = tokio::spawn(async move { shutdown.sleep(Duration::from_secs(3600)).await });
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.stop();
        assert!(sleeper.await.unwrap());
        other.recv().await;
        assert!(other.is_shutdown());
    }

    #[tokio::test]
    async fn a_dropped_sender_is_a_stop() {
        let (stop, mut shutdown) = channel();
        drop(stop);
        shutdown.recv().await;
        assert!(shutdown.is_shutdown());
        assert!(!Shutdown::never().is_shutdown());
    }
}
