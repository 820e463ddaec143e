//! The settings file, read again when it changes, for what may change without a restart: the
//! watch list (`[watch]`, handed to the roster) and who may do what (`[access]`, handed to the
//! commands). Everything else still needs a restart.
//!
//! The file is looked at like the contacts file ([`super::contacts::POLL_INTERVAL`], its
//! modification time and size). Settings that do not load (a typo, a bad value) are one warning
//! naming the key, and the watch list and access in force are kept.

use super::contacts::{POLL_INTERVAL, Stamp, stamp};
use crate::conference::{Roster, WatchList};
use crate::config::Settings;
use crate::discord::commands::Commands;
use crate::util::shutdown::Shutdown;
use std::path::PathBuf;
use tokio::task::JoinHandle;

/// Starts following the settings file; `None` when the settings came from no file.
pub fn start(
    settings: &Settings,
    roster: &Roster,
    commands: Option<Commands>,
    shutdown: Shutdown,
) -> Option<JoinHandle<()>> {
    let path = settings.file.clone()?;
    let first = std::fs::metadata(&path).ok().map(|m| stamp(&m));
    Some(tokio::spawn(follow(
        path,
        roster.clone(),
        commands,
        first,
        shutdown,
    )))
}

async fn follow(
    path: PathBuf,
    roster: Roster,
    commands: Option<Commands>,
    mut last: Option<Stamp>,
    mut shutdown: Shutdown,
) {
    while !shutdown.sleep(POLL_INTERVAL).await {
        let Ok(metadata) = tokio::fs::metadata(&path).await else {
            // A file being replaced, or gone: what is in force stays until it is back.
            continue;
        };
        let now = stamp(&metadata);
        if last == Some(now) {
            continue;
        }
        last = Some(now);
        let file = path.clone();
        let loaded = match tokio::task::spawn_blocking(move || Settings::load(Some(&file))).await {
            Ok(loaded) => loaded,
            Err(error) => {
                tracing::warn!(%error, "settings: reading the file failed");
                continue;
            }
        };
        match loaded {
            Ok(settings) => {
                roster.set_watch_list(WatchList::new(&settings.watch));
                if let Some(commands) = &commands {
                    commands.set_access(settings.access.clone());
                }
                tracing::info!(
                    numbers = settings.watch.numbers.len(),
                    names = settings.watch.names.len(),
                    "settings reloaded: the watch list and access are the file's"
                );
            }
            Err(error) => {
                metrics::counter!("ringside_settings_reload_failures_total").increment(1);
                tracing::warn!(
                    "{error}; the watch list and access in force are kept until the file loads"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Waits (at most 10 s, in the poll's steps) until the roster's alert roles are `wanted`.
    async fn alert_roles_become(roster: &Roster, wanted: &[u64]) {
        for _ in 0..100 {
            if roster.alert_roles() == wanted {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("alert roles {:?}, not {wanted:?}", roster.alert_roles());
    }

    fn watch_file(roles: &str) -> String {
        format!("[watch]\nnumbers = [\"+14155550142\"]\nalert_roles = [{roles}]\n")
    }

    #[tokio::test]
    async fn a_changed_settings_file_replaces_the_watch_list_and_a_broken_one_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ringside.toml");
        std::fs::write(&path, watch_file("\"111\"")).unwrap();
        let settings = Settings::load(Some(&path)).unwrap();
        assert_eq!(settings.file.as_deref(), Some(path.as_path()));
        let roster = Roster::new();
        roster.set_watch_list(WatchList::new(&settings.watch));
        assert_eq!(roster.alert_roles(), vec![111]);
        let (stop, shutdown) = crate::util::shutdown::channel();
        let task = start(&settings, &roster, None, shutdown).expect("a file to follow");

        // A longer file: its size changes even within the file system's time resolution.
        std::fs::write(&path, watch_file("\"222\", 333")).unwrap();
        alert_roles_become(&roster, &[222, 333]).await;

        // A file that no longer loads: what is in force stays.
        std::fs::write(&path, "[watch]\nnumbers = [\"not a number at all\"]\n").unwrap();
        tokio::time::sleep(POLL_INTERVAL * 2).await;
        assert_eq!(roster.alert_roles(), vec![222, 333]);

        // Fixed again: followed again.
        std::fs::write(&path, watch_file("\"444\"")).unwrap();
        alert_roles_become(&roster, &[444]).await;
        stop.stop();
        task.await.unwrap();
    }
}
