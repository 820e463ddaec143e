//! `ringside backup FILE`: a consistent copy of the store, taken while the service runs.
//!
//! The copy is made with SQLite's online backup API inside one read transaction, so it is the
//! store as of one commit even while the service keeps writing (WAL lets the writer go on). A
//! file copy of the database would not be: it can catch a page half written, and it misses
//! what is still in the `-wal` file.
//!
//! What a backup must never do:
//! - change the store: the source is opened without creating it and without
//!   [`super::schema::migrate`], so a newer binary taking a backup before an upgrade leaves the
//!   running older service's schema alone;
//! - expose it: the copy holds the same secrets and callers' numbers as the store, so it is
//!   written `0600` from its first byte, into a temporary file in the destination's directory
//!   that is put in place once complete (`util::private_file`) — a failed backup leaves no
//!   half file behind;
//! - replace a file by accident: an existing destination is refused unless `replace` is set,
//!   and the store itself is never a destination.
//!
//! The copy is a self-contained file (journal mode `DELETE`, no `-wal` beside it), checked with
//! `PRAGMA quick_check` before it is renamed into place. Restoring it is copying it back to
//! `store.path` while ringside is stopped (docs/operations.md).

use crate::util::private_file::Staged;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long the backup waits for a lock held by the running service before it gives up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// The pause between two tries while the store is locked.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// What went wrong, naming the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("there is no store at {} (store.path)", .0.display())]
    NoStore(PathBuf),
    #[error("{} already exists; pass --force to replace it", .0.display())]
    Exists(PathBuf),
    #[error("{} is the store itself; choose another file", .0.display())]
    SameFile(PathBuf),
    #[error("cannot read the store at {}", path.display())]
    Source {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the copy of the store could not be made in {}", path.display())]
    Copy {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("the copy in {} failed SQLite's check: {problem}", path.display())]
    Check { path: PathBuf, problem: String },
}

/// What a finished backup holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    pub path: PathBuf,
    pub bytes: u64,
    /// The store's schema version (`PRAGMA user_version`) in the copy.
    pub schema_version: i64,
}

/// Copies the store at `store` into `destination`. Blocking: run it off the async workers.
pub fn backup(
    store: &Path,
    destination: &Path,
    replace: bool,
) -> Result<BackupReport, BackupError> {
    if !store.is_file() {
        return Err(BackupError::NoStore(store.to_owned()));
    }
    if same_file(store, destination) {
        return Err(BackupError::SameFile(destination.to_owned()));
    }
    if !replace && destination.symlink_metadata().is_ok() {
        return Err(BackupError::Exists(destination.to_owned()));
    }
    let source = open_source(store)?;
    let staged =
        Staged::beside(destination, "backup").map_err(|source| write_error(destination, source))?;
    copy_into(&source, staged.path())?;
    let bytes = std::fs::metadata(staged.path())
        .map_err(|source| write_error(staged.path(), source))?
        .len();
    let schema_version = {
        let copy = Connection::open_with_flags(staged.path(), OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|source| copy_error(staged.path(), source))?;
        super::schema::user_version(&copy).map_err(|source| copy_error(staged.path(), source))?
    };
    staged
        .place(destination, replace)
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => BackupError::Exists(destination.to_owned()),
            _ => write_error(destination, source),
        })?;
    Ok(BackupReport {
        path: destination.to_owned(),
        bytes,
        schema_version,
    })
}

/// The running store, opened for reading only: never created, never migrated.
fn open_source(store: &Path) -> Result<Connection, BackupError> {
    let failed = |source| BackupError::Source {
        path: store.to_owned(),
        source,
    };
    // Read-write without CREATE: a read-only connection cannot take part in WAL recovery when
    // the service is not running and left a `-wal` behind. Nothing is written through it.
    let conn = Connection::open_with_flags(
        store,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(failed)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(failed)?;
    Ok(conn)
}

/// Copies every page in one step (one read transaction: one consistent state), then makes the
/// copy a single self-contained file and checks it.
fn copy_into(source: &Connection, path: &Path) -> Result<(), BackupError> {
    let failed = |source| copy_error(path, source);
    let mut copy = Connection::open(path).map_err(failed)?;
    copy.busy_timeout(BUSY_TIMEOUT).map_err(failed)?;
    {
        use rusqlite::backup::{Backup, StepResult};
        let backup = Backup::new(source, &mut copy).map_err(failed)?;
        // -1: every page in one step, so in one read transaction (a copy made in several steps
        // restarts whenever the service commits in between).
        let mut waited = Duration::ZERO;
        loop {
            match backup.step(-1).map_err(failed)? {
                StepResult::Done => break,
                StepResult::Busy | StepResult::Locked | StepResult::More
                    if waited < BUSY_TIMEOUT =>
                {
                    std::thread::sleep(RETRY_PAUSE);
                    waited += RETRY_PAUSE;
                }
                _ => {
                    return Err(failed(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                        Some("the store stayed locked".to_owned()),
                    )));
                }
            }
        }
    }
    let _mode: String = copy
        .pragma_update_and_check(None, "journal_mode", "DELETE", |row| row.get(0))
        .map_err(failed)?;
    let verdict: String = copy
        .pragma_query_value(None, "quick_check", |row| row.get(0))
        .map_err(failed)?;
    if verdict != "ok" {
        return Err(BackupError::Check {
            path: path.to_owned(),
            problem: verdict,
        });
    }
    copy.close().map_err(|(_, source)| failed(source))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn write_error(path: &Path, source: std::io::Error) -> BackupError {
    BackupError::Write {
        path: path.to_owned(),
        source,
    }
}

fn copy_error(path: &Path, source: rusqlite::Error) -> BackupError {
    BackupError::Copy {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::test_support::{inbox_row as row, open_temp};

    #[tokio::test]
    async fn a_backup_taken_while_the_store_is_open_holds_every_commit_and_is_private() {
        let (dir, store) = open_temp();
        let source = dir.path().join("ringside.db");
        for n in 0..50 {
            store.insert_inbox(row(&format!("u{n}"))).await.unwrap();
        }
        let destination = dir.path().join("copy.sqlite3");
        let report = backup(&source, &destination, false).unwrap();
        assert_eq!(
            report.schema_version,
            crate::store::schema::current_version()
        );
        assert!(report.bytes > 0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&destination)
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600);
        }
        // Self-contained: no -wal beside it, and the store opened from it has every row.
        let mut wal = destination.as_os_str().to_owned();
        wal.push("-wal");
        assert!(!PathBuf::from(wal).exists());
        let copy = Store::open(&destination).unwrap();
        assert_eq!(copy.unprocessed().await.unwrap().len(), 50);
        copy.close().await.unwrap();
        // The store itself goes on taking writes.
        store.insert_inbox(row("after")).await.unwrap();
        store.close().await.unwrap();
    }

    #[tokio::test]
    async fn an_existing_file_is_refused_without_replace_and_left_as_it_was() {
        let (dir, store) = open_temp();
        let source = dir.path().join("ringside.db");
        let destination = dir.path().join("copy.sqlite3");
        std::fs::write(&destination, b"keep me").unwrap();
        let error = backup(&source, &destination, false).unwrap_err();
        assert!(matches!(error, BackupError::Exists(_)), "{error}");
        assert!(error.to_string().contains("--force"));
        assert_eq!(std::fs::read(&destination).unwrap(), b"keep me");
        backup(&source, &destination, true).unwrap();
        assert_ne!(std::fs::read(&destination).unwrap(), b"keep me");
        // Nothing but the store and the copy is left in the directory.
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| !name.starts_with("ringside.db"))
            .collect();
        names.sort();
        assert_eq!(names, ["copy.sqlite3"]);
        store.close().await.unwrap();
    }

    #[tokio::test]
    async fn the_store_is_never_its_own_destination_and_a_missing_store_is_not_created() {
        let (dir, store) = open_temp();
        let source = dir.path().join("ringside.db");
        let error = backup(&source, &source, true).unwrap_err();
        assert!(matches!(error, BackupError::SameFile(_)), "{error}");
        let missing = dir.path().join("nothing-here.sqlite3");
        let error = backup(&missing, &dir.path().join("copy"), false).unwrap_err();
        assert!(matches!(error, BackupError::NoStore(_)), "{error}");
        assert!(!missing.exists());
        store.close().await.unwrap();
    }
}
