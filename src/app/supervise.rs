//! Supervision of the core tasks: the store thread, the detector (pipeline), the announcer, the
//! subscription manager, the reconciler, the gateway client and the listeners.
//!
//! None of them ends on its own: permanent failures (a refused credential, a missing
//! permission) keep the task up and show in `/readyz` and the channel's health notice. If one
//! nevertheless ends or panics outside a shutdown, that is a bug or a broken machine, and a
//! half-running ringside would answer the webhook 200 while nothing is announced. So the death
//! is logged at error, `/readyz` answers 503 naming the task, and `ringside run` stops
//! gracefully and exits with status 1 — a supervisor (systemd, a container runtime) restarts it
//! with nothing lost: what was accepted is in the store.

use crate::pipeline::ReadinessCheck;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinError, JoinHandle};

/// Watches the core tasks; cheap to clone.
#[derive(Clone)]
pub struct Supervisor {
    stopping: Arc<AtomicBool>,
    dead: watch::Sender<Option<&'static str>>,
}

impl Default for Supervisor {
    fn default() -> Self {
        Supervisor {
            stopping: Arc::new(AtomicBool::new(false)),
            dead: watch::Sender::new(None),
        }
    }
}

impl Supervisor {
    /// From now on, tasks that end are stopping, not dying.
    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Watches `task`, named `name` in logs, metrics and `/readyz`. The answer is awaited like
    /// the task (its output, `None` if it panicked or was aborted) and aborts it too.
    pub fn watch<T: Send + 'static>(&self, name: &'static str, task: JoinHandle<T>) -> Watched<T> {
        let inner = task.abort_handle();
        let supervisor = self.clone();
        let outer = tokio::spawn(async move {
            let outcome = task.await;
            supervisor.ended(name, outcome.as_ref().err());
            outcome.ok()
        });
        Watched { outer, inner }
    }

    /// A task awaited and aborted like a watched one, whose end is nobody's concern (one-shot
    /// work such as registering the commands).
    pub fn unsupervised<T: Send + 'static>(task: JoinHandle<T>) -> Watched<T> {
        let inner = task.abort_handle();
        let outer = tokio::spawn(async move { task.await.ok() });
        Watched { outer, inner }
    }

    fn ended(&self, name: &'static str, error: Option<&JoinError>) {
        if self.stopping.load(Ordering::SeqCst) {
            return;
        }
        metrics::counter!("ringside_core_task_failures_total", "task" => name).increment(1);
        match error {
            Some(error) if error.is_panic() => tracing::error!(
                task = name,
                "a core task panicked: ringside stops and exits with status 1 so that its supervisor restarts it"
            ),
            _ => tracing::error!(
                task = name,
                "a core task ended: ringside stops and exits with status 1 so that its supervisor restarts it"
            ),
        }
        self.dead.send_if_modified(|dead| {
            if dead.is_none() {
                *dead = Some(name);
                true
            } else {
                false
            }
        });
    }

    /// The first core task that ended outside a shutdown, if any.
    pub fn dead(&self) -> Option<&'static str> {
        *self.dead.borrow()
    }

    /// Resolves with the first core task that ends outside a shutdown.
    pub async fn died(&self) -> &'static str {
        let mut dead = self.dead.subscribe();
        match dead.wait_for(Option::is_some).await {
            Ok(name) => name.unwrap_or("unknown"),
            // Unreachable while `self` holds the sender.
            Err(_) => std::future::pending().await,
        }
    }

    /// `/readyz`'s view: 503 naming the task once one died.
    pub fn readiness(&self) -> ReadinessCheck {
        let dead = self.dead.subscribe();
        Arc::new(move || (*dead.borrow()).map(|name| format!("core task {name} ended")))
    }
}

/// A supervised task: awaited like its [`JoinHandle`], aborted with it.
pub struct Watched<T> {
    outer: JoinHandle<Option<T>>,
    inner: AbortHandle,
}

impl<T> Watched<T> {
    pub fn abort(&self) {
        self.inner.abort();
        self.outer.abort();
    }

    /// The task itself, to end it as if it had died (the test hooks' way in).
    #[cfg(feature = "test-hooks")]
    pub(crate) fn inner_handle(&self) -> AbortHandle {
        self.inner.clone()
    }
}

impl<T> Future for Watched<T> {
    type Output = Result<Option<T>, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.outer).poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_task_that_ends_outside_a_stop_is_reported_by_name() {
        let supervisor = Supervisor::default();
        let ready = supervisor.readiness();
        let quick = supervisor.watch("announcer", tokio::spawn(async { 7 }));
        assert_eq!(quick.await.unwrap(), Some(7));
        assert_eq!(supervisor.died().await, "announcer");
        assert_eq!(ready().as_deref(), Some("core task announcer ended"));
    }

    #[tokio::test]
    async fn a_panic_is_a_death_and_the_first_death_is_kept() {
        let supervisor = Supervisor::default();
        let panicking = supervisor.watch("pipeline", tokio::spawn(async { panic!("a bug") }));
        assert!(panicking.await.unwrap().is_none());
        let later = supervisor.watch("reconciler", tokio::spawn(async {}));
        later.await.unwrap();
        assert_eq!(supervisor.dead(), Some("pipeline"));
    }

    #[tokio::test]
    async fn tasks_ending_during_a_stop_are_not_deaths() {
        let supervisor = Supervisor::default();
        let task = supervisor.watch(
            "gateway",
            tokio::spawn(tokio::time::sleep(Duration::from_millis(10))),
        );
        supervisor.stopping();
        task.await.unwrap();
        assert_eq!(supervisor.dead(), None);
        assert!(supervisor.readiness()().is_none());
    }
}
