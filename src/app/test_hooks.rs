//! Test support, compiled only with the `test-hooks` feature (which only `cargo test` turns on,
//! through the dev-dependency on ringside itself): a way for the supervision tests to end a core
//! task as a bug would. Nothing here exists in a release build.

use super::Running;
use crate::store::Store;
use std::time::Duration;
use tokio::task::AbortHandle;

/// How a named core task is ended.
pub enum Ending {
    Abort(AbortHandle),
    /// Closing the store ends its thread, as a panic on it would.
    Store(Store),
}

impl Ending {
    pub async fn end(self) {
        match self {
            Ending::Abort(task) => task.abort(),
            Ending::Store(store) => {
                let _ = store.close().await;
            }
        }
    }
}

impl Running {
    /// How to end the named core task (`store`, `pipeline`, `announcer`, `subscription`,
    /// `reconciler`, `gateway`, `public listener`, `operator listener`), if it runs.
    pub fn ending_for_test(&self, name: &str) -> Option<Ending> {
        match name {
            "store" => Some(Ending::Store(self.store.clone())),
            "pipeline" => Some(Ending::Abort(self.tasks.pipeline.inner_handle())),
            "announcer" => Some(Ending::Abort(self.tasks.announcer.inner_handle())),
            _ => self
                .tasks
                .background
                .iter()
                .map(|(task, watched)| (*task, watched.inner_handle()))
                .chain(
                    self.tasks
                        .servers
                        .iter()
                        .map(|(task, watched)| (*task, watched.inner_handle())),
                )
                .find(|(task, _)| *task == name)
                .map(|(_, handle)| Ending::Abort(handle)),
        }
    }

    /// Ends the named core task now; `false` when no such task runs.
    pub async fn end_task_for_test(&self, name: &str) -> bool {
        match self.ending_for_test(name) {
            Some(ending) => {
                ending.end().await;
                true
            }
            None => false,
        }
    }
}

/// `RINGSIDE_TEST_END_TASK=NAME` (read by `ringside run`): the named core task is ended half a
/// second after start, for the tests of the binary's exit status.
pub(super) fn arm(running: &Running) {
    let Ok(name) = std::env::var("RINGSIDE_TEST_END_TASK") else {
        return;
    };
    match running.ending_for_test(&name) {
        Some(ending) => {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(500)).await;
                ending.end().await;
            });
        }
        None => tracing::error!(task = %name, "RINGSIDE_TEST_END_TASK names no running task"),
    }
}
