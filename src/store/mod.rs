//! Durable state: the SQLite file and the one thread that touches it.
//!
//! This module owns everything ringside keeps across restarts (today the webhook inbox, the
//! quarantine and a small key/value table; later detector state, outbox, audit and
//! credentials). The file is opened in WAL mode with `synchronous = NORMAL` and used from a
//! single dedicated OS thread, `ringside-store`. Nothing in this module may run SQLite on an
//! async worker thread: [`Store`] methods only send a command over a bounded
//! [`tokio::sync::mpsc`] channel and await a [`tokio::sync::oneshot`] answer. (Only
//! [`Store::open`] touches the file from its caller's thread, once, at start-up.)
//!
//! The thread commits in groups: it waits for one command, takes every command already queued
//! (up to [`MAX_BATCH`]), runs all their writes in one `BEGIN IMMEDIATE … COMMIT` transaction
//! and answers them only after the commit, so an answer means "durable". Each write runs in
//! its own savepoint: a write whose statement fails is rolled back and gets its own error
//! without spoiling the rest of its batch; if the transaction itself fails, every write in the
//! batch gets [`StoreError::Transaction`]. Reads run after the commit, outside any write
//! transaction.
//!
//! A command is sent before it is awaited to completion: dropping a `Store` future after it
//! was first polled may still let its write happen.
//!
//! Values of the meta table may be secrets: they are never logged.
//!
//! The file holds secrets (the verification token, RingCentral's tokens) and callers' names and
//! numbers, so it is created `0600` before SQLite opens it (SQLite gives `-wal` and `-shm` the
//! main file's mode), missing directories are created `0700`, and looser modes on existing store
//! files are tightened at start. A directory ringside did not create is never changed.
//!
//! A store that cannot write (a full disk, a lock held elsewhere, an I/O error) is logged once
//! when it starts failing and once when it recovers ([`Store::failing`] tells readiness); each
//! caller gets its error and decides whether to retry.

mod alerts;
mod audit;
mod backup;
mod batches;
mod cards;
mod inbox;
mod meta;
mod outbox;
mod quarantine;
mod schema;
mod state;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

mod files;

pub use alerts::{AlertRow, AlertState};
pub use audit::AuditEntry;
pub use backup::{BackupError, BackupReport, backup};
pub use batches::{Batch, BatchFile, BatchState, BatchTarget, NewBatch, ResendRequest};
pub use cards::CardRow;
pub(crate) use files::create_private_dirs;
pub use inbox::{InboxCounts, InboxInsert, InboxRow, NewInboxRow};
pub use outbox::{NewOutboxRow, OutboxRow};
pub use quarantine::{NewQuarantineRow, QuarantineRow};
pub use schema::MIGRATIONS;
pub use state::{StateRow, StoredRow};

/// Where an older ringside kept the detector's state in one piece (moved into rows at start).
const LEGACY_DETECTOR_STATE_KEY: &str = "detector.state";

/// The most commands one group commit takes.
pub const MAX_BATCH: usize = 512;
/// How many commands may wait for the thread before senders wait (asynchronously) too.
const QUEUE_CAPACITY: usize = 1024;
/// How long SQLite waits for a lock held by another connection.
const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);
const THREAD_NAME: &str = "ringside-store";

/// What can go wrong with the store.
///
/// Display messages are one line and do not repeat their source; print the error chain (e.g.
/// `{:#}` with anyhow) for the cause.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file could not be created, opened or configured.
    #[error("cannot open the store at {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: OpenCause,
    },
    /// A schema migration failed; the file is left at its previous version.
    #[error("cannot migrate the store schema to version {version}")]
    Migration {
        version: i64,
        #[source]
        source: rusqlite::Error,
    },
    /// The file was written by a newer ringside.
    #[error("the store schema is at version {found}, newer than this build's {known}")]
    SchemaTooNew { found: i64, known: i64 },
    /// The store thread could not be started.
    #[error("cannot start the store thread")]
    Spawn(#[source] std::io::Error),
    /// This command's statement failed (its writes were rolled back, the batch's were not).
    #[error("a store statement failed")]
    Sqlite(#[from] rusqlite::Error),
    /// The group-commit transaction failed: none of the batch's writes happened.
    #[error("the store write transaction failed")]
    Transaction(#[source] Arc<rusqlite::Error>),
    /// The store thread is gone (closed, or it stopped).
    #[error("the store is closed")]
    Closed,
}

/// Why [`StoreError::Open`] happened.
#[derive(Debug, thiserror::Error)]
pub enum OpenCause {
    #[error("cannot create its directory")]
    CreateDir(#[source] std::io::Error),
    #[error("cannot create the file or make it private")]
    Permissions(#[source] std::io::Error),
    #[error("SQLite cannot open or configure it")]
    Sqlite(#[source] rusqlite::Error),
}

/// Group-commit counters since open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Write transactions committed.
    pub transactions: u64,
    /// Write commands those transactions carried.
    pub commands: u64,
}

#[derive(Default)]
struct Counters {
    transactions: AtomicU64,
    commands: AtomicU64,
    /// Why the last write transaction failed, while writes keep failing; `None` when the last
    /// one committed.
    failing: Mutex<Option<String>>,
}

impl Counters {
    /// Records how a write transaction ended; logs only when that changes.
    fn record(&self, failure: Option<String>) {
        let mut failing = self.failing.lock().unwrap_or_else(PoisonError::into_inner);
        match (&*failing, failure) {
            (None, Some(reason)) => {
                tracing::error!(%reason, "the store cannot write: notifications are answered 503 and announcements wait until it recovers");
                metrics::gauge!("ringside_store_failing").set(1.0);
                *failing = Some(reason);
            }
            (Some(_), None) => {
                tracing::info!("the store writes again");
                metrics::gauge!("ringside_store_failing").set(0.0);
                *failing = None;
            }
            (Some(_), Some(reason)) => *failing = Some(reason),
            (None, None) => {}
        }
    }
}

/// Handle to the store thread; cheap to clone, every clone talks to the same thread.
///
/// The thread stops when [`Store::close`] is called or when every clone is dropped (in both
/// cases after finishing the commands already queued).
#[derive(Clone)]
pub struct Store {
    commands: mpsc::Sender<Command>,
    counters: Arc<Counters>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
    /// Turns true when the store thread ends, however it ends (closed, or a panic).
    ended: tokio::sync::watch::Receiver<bool>,
}

/// Tells [`Store::ended`] when the thread ends, on return and on unwinding alike.
struct EndSignal(tokio::sync::watch::Sender<bool>);

impl Drop for EndSignal {
    fn drop(&mut self) {
        self.0.send_replace(true);
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating it and its directory if needed) the file at `path`, brings its schema up
    /// to date and starts the store thread. Blocking: call it at start-up, not from a task.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let failed = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        files::prepare(path).map_err(failed)?;
        let conn = Connection::open(path)
            .and_then(|conn| configure(&conn).map(|()| conn))
            .map_err(|e| failed(OpenCause::Sqlite(e)))?;
        schema::migrate(&conn)?;

        let (commands, queue) = mpsc::channel(QUEUE_CAPACITY);
        let counters = Arc::new(Counters::default());
        let (end_signal, ended) = tokio::sync::watch::channel(false);
        let thread = std::thread::Builder::new()
            .name(THREAD_NAME.to_owned())
            .spawn({
                let counters = Arc::clone(&counters);
                move || {
                    let _signal = EndSignal(end_signal);
                    run(conn, queue, &counters)
                }
            })
            .map_err(StoreError::Spawn)?;
        tracing::info!(
            path = %path.display(),
            schema_version = schema::current_version(),
            "store open"
        );
        Ok(Store {
            commands,
            counters,
            thread: Arc::new(Mutex::new(Some(thread))),
            ended,
        })
    }

    /// Stores a notification unless its uuid is already stored; answered after the commit.
    pub async fn insert_inbox(&self, row: NewInboxRow) -> Result<InboxInsert, StoreError> {
        self.insert_inbox_with_meta(row, None).await
    }

    /// [`Store::insert_inbox`], and in the same transaction the meta value `meta` (the
    /// WebSocket's session token travels with the notifications it delivered).
    pub async fn insert_inbox_with_meta(
        &self,
        row: NewInboxRow,
        meta: Option<(&'static str, String)>,
    ) -> Result<InboxInsert, StoreError> {
        self.write(move |conn| {
            let inserted = inbox::insert(conn, &row)?;
            if let Some((key, value)) = &meta {
                meta::set(conn, key, value)?;
            }
            Ok(inserted)
        })
        .await
    }

    /// Marks inbox rows processed (now); unknown or already processed ids are ignored.
    pub async fn mark_processed(&self, ids: Vec<i64>) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.write(move |conn| inbox::mark_processed(conn, &ids, now_ms()))
            .await
    }

    /// Marks inbox rows processed and, in the same transaction, writes the detector's rows they
    /// changed, so a crash never separates "processed" from the state it produced.
    ///
    /// The events they produced go to the outbox in the same transaction; the answer has the
    /// outbox id of each (`None` for an event already kept).
    pub async fn commit_processed(
        &self,
        ids: Vec<i64>,
        state: Vec<StateRow>,
        events: Vec<NewOutboxRow>,
    ) -> Result<Vec<Option<i64>>, StoreError> {
        if ids.is_empty() && state.is_empty() && events.is_empty() {
            return Ok(Vec::new());
        }
        self.write(move |conn| {
            inbox::mark_processed(conn, &ids, now_ms())?;
            state::write(conn, &state)?;
            outbox::insert(conn, &events)
        })
        .await
    }

    /// Outbox rows not yet announced, oldest first (resent at start).
    pub async fn undelivered(&self) -> Result<Vec<OutboxRow>, StoreError> {
        self.read(outbox::undelivered).await
    }

    /// Marks outbox rows announced.
    pub async fn mark_delivered(&self, ids: Vec<i64>) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.write(move |conn| outbox::mark_delivered(conn, &ids, now_ms()))
            .await
    }

    /// The detector's rows as last committed.
    pub async fn detector_rows(&self) -> Result<Vec<StoredRow>, StoreError> {
        self.read(state::all).await
    }

    /// The detector's state in one piece, as an older ringside kept it, if it is still there.
    pub async fn legacy_detector_state(&self) -> Result<Option<String>, StoreError> {
        self.read(|conn| meta::get(conn, LEGACY_DETECTOR_STATE_KEY))
            .await
    }

    /// Replaces every detector row with `rows` and drops the state an older ringside kept in
    /// one piece, in one transaction: moves that state into rows at start, or clears rows the
    /// detector could not restore, so a fresh start is not mixed with what could not be read.
    pub async fn replace_detector_rows(&self, rows: Vec<StateRow>) -> Result<(), StoreError> {
        self.write(move |conn| {
            state::clear(conn)?;
            state::write(conn, &rows)?;
            meta::delete(conn, LEGACY_DETECTOR_STATE_KEY)
        })
        .await
    }

    /// Every unprocessed inbox row, by id: what to replay at start.
    pub async fn unprocessed(&self) -> Result<Vec<InboxRow>, StoreError> {
        self.read(inbox::unprocessed).await
    }

    /// Quarantines an unusable body; answers the row id.
    pub async fn quarantine(&self, row: NewQuarantineRow) -> Result<i64, StoreError> {
        self.write(move |conn| quarantine::insert(conn, &row)).await
    }

    /// At most `limit` quarantined rows, newest first.
    pub async fn quarantined(&self, limit: usize) -> Result<Vec<QuarantineRow>, StoreError> {
        self.read(move |conn| quarantine::newest(conn, limit)).await
    }

    /// Commits announcer messages (bodies with their nonces) and the outbox rows each carries,
    /// in order, in one transaction: call it before posting them. Answers them as kept.
    pub async fn create_batches(&self, batches: Vec<NewBatch>) -> Result<Vec<Batch>, StoreError> {
        if batches.is_empty() {
            return Ok(Vec::new());
        }
        self.write(move |conn| batches::create(conn, &batches, now_ms()))
            .await
    }

    /// Marks a batch sent as Discord message `message_id`, and its outbox rows delivered.
    pub async fn batch_sent(&self, id: i64, message_id: String) -> Result<(), StoreError> {
        self.write(move |conn| {
            batches::finish(
                conn,
                id,
                BatchState::Sent,
                Some(&message_id),
                None,
                now_ms(),
            )
        })
        .await
        .map(|_| ())
    }

    /// Marks a batch parked (Discord refused it for good) with the reason, and its outbox rows
    /// delivered: they are reported ([`Store::parked_batches`]), not announced again.
    pub async fn batch_parked(&self, id: i64, error: String) -> Result<(), StoreError> {
        self.write(move |conn| {
            batches::finish(conn, id, BatchState::Parked, None, Some(&error), now_ms())
        })
        .await
        .map(|_| ())
    }

    /// Batches committed but not yet sent or parked, oldest first (resent at start).
    pub async fn pending_batches(&self) -> Result<Vec<Batch>, StoreError> {
        self.read(batches::pending).await
    }

    /// At most `limit` parked batches, newest first, with their files.
    pub async fn parked_batches(&self, limit: usize) -> Result<Vec<Batch>, StoreError> {
        self.read(move |conn| batches::parked(conn, limit)).await
    }

    /// How many batches are parked now (a resend taken by the announcer is no longer parked).
    pub async fn parked_count(&self) -> Result<u64, StoreError> {
        self.read(batches::parked_count).await
    }

    /// Asks the announcer to send parked batch `id` again (`ringside parked resend`); a batch
    /// that is not parked, or an unknown id, is answered as such and nothing changes.
    pub async fn request_resend(&self, id: i64) -> Result<ResendRequest, StoreError> {
        self.write(move |conn| batches::request_resend(conn, id, now_ms()))
            .await
    }

    /// Takes the parked batches an operator asked to send again back to pending and answers
    /// them, oldest first, with their stored nonce, body and files. Writes only when there is
    /// one: the announcer calls it every few seconds.
    pub async fn take_resends(&self) -> Result<Vec<Batch>, StoreError> {
        let ids = self.read(batches::resend_requested).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.write(move |conn| batches::take_resends(conn, &ids))
            .await
    }

    /// One batch by id, in any state (until pruned).
    pub async fn batch(&self, id: i64) -> Result<Option<Batch>, StoreError> {
        self.read(move |conn| batches::get(conn, id)).await
    }

    /// The Discord thread a conference is announced in (thread mode), if one was created.
    pub async fn conference_thread(
        &self,
        conference_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let conference_id = conference_id.to_owned();
        self.read(move |conn| batches::thread(conn, &conference_id))
            .await
    }

    /// Records the Discord thread a conference is announced in.
    pub async fn set_conference_thread(
        &self,
        conference_id: &str,
        thread_id: &str,
    ) -> Result<(), StoreError> {
        let (conference_id, thread_id) = (conference_id.to_owned(), thread_id.to_owned());
        self.write(move |conn| batches::set_thread(conn, &conference_id, &thread_id, now_ms()))
            .await
    }

    /// Keeps a conference's roster card as it is now.
    pub async fn save_card(&self, card: CardRow) -> Result<(), StoreError> {
        self.write(move |conn| cards::save(conn, &card, now_ms()))
            .await
    }

    /// Forgets a conference's roster card (its message is gone).
    pub async fn forget_card(&self, conference_id: &str) -> Result<(), StoreError> {
        let conference_id = conference_id.to_owned();
        self.write(move |conn| cards::forget(conn, &conference_id))
            .await
    }

    /// The roster cards still following their conference.
    pub async fn live_cards(&self) -> Result<Vec<CardRow>, StoreError> {
        self.read(cards::live).await
    }

    /// A conference's roster card, if it has one.
    pub async fn card(&self, conference_id: &str) -> Result<Option<CardRow>, StoreError> {
        let conference_id = conference_id.to_owned();
        self.read(move |conn| cards::get(conn, &conference_id))
            .await
    }

    /// Keeps a watch-list alert as it is now.
    pub async fn save_alert(&self, alert: AlertRow) -> Result<(), StoreError> {
        self.write(move |conn| alerts::save(conn, &alert, now_ms()))
            .await
    }

    /// Every watch-list alert kept (closed ones until they are pruned).
    pub async fn alerts(&self) -> Result<Vec<AlertRow>, StoreError> {
        self.read(alerts::all).await
    }

    /// One caller's watch-list alert in one conference, if they have one.
    pub async fn alert(
        &self,
        conference_id: &str,
        participant_id: &str,
    ) -> Result<Option<AlertRow>, StoreError> {
        let (conference_id, participant_id) = (conference_id.to_owned(), participant_id.to_owned());
        self.read(move |conn| alerts::get(conn, &conference_id, &participant_id))
            .await
    }

    /// Deletes processed inbox rows, quarantine rows and delivered outbox rows received before
    /// `before_ms`, announcer messages sent or parked before it, conference threads recorded
    /// before it, roster cards finished and watch-list alerts closed before it (never an
    /// unprocessed or undelivered row, never a pending message, never a live card or an open
    /// alert); answers how many rows went.
    pub async fn prune(&self, before_ms: i64) -> Result<u64, StoreError> {
        let deleted = self
            .write(move |conn| {
                let inbox = inbox::prune(conn, before_ms)?;
                let quarantine = quarantine::prune(conn, before_ms)?;
                let outbox = outbox::prune(conn, before_ms)?;
                let batches = batches::prune(conn, before_ms)?;
                let cards = cards::prune(conn, before_ms)?;
                let alerts = alerts::prune(conn, before_ms)?;
                Ok(inbox
                    .saturating_add(quarantine)
                    .saturating_add(outbox)
                    .saturating_add(batches)
                    .saturating_add(cards)
                    .saturating_add(alerts))
            })
            .await?;
        tracing::debug!(deleted, before_ms, "store pruned");
        Ok(deleted)
    }

    /// Deletes audit entries older than `before_ms`; answers how many went.
    pub async fn prune_audit(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.write(move |conn| audit::prune(conn, before_ms)).await
    }

    /// The meta value under `key`, if any.
    pub async fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_owned();
        self.read(move |conn| meta::get(conn, &key)).await
    }

    /// Stores `value` under `key`, replacing any previous value.
    pub async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.write(move |conn| meta::set(conn, &key, &value)).await
    }

    /// Appends to the audit log.
    pub async fn audit(&self, entry: AuditEntry) -> Result<i64, StoreError> {
        self.write(move |conn| audit::insert(conn, &entry)).await
    }

    /// Audit entries from `since_ms` on, oldest first.
    pub async fn audit_since(&self, since_ms: i64) -> Result<Vec<AuditEntry>, StoreError> {
        self.read(move |conn| audit::since(conn, since_ms)).await
    }

    /// Commits a one-row write: `Ok` means the file is writable right now (readiness probe).
    pub async fn check_writable(&self) -> Result<(), StoreError> {
        self.write(|conn| {
            conn.prepare_cached(
                "INSERT INTO probe (id, at_ms) VALUES (1, ?1)
                 ON CONFLICT (id) DO UPDATE SET at_ms = excluded.at_ms",
            )?
            .execute([now_ms()])?;
            Ok(())
        })
        .await
    }

    /// Inbox and quarantine row counts.
    pub async fn counts(&self) -> Result<InboxCounts, StoreError> {
        self.read(inbox::counts).await
    }

    /// Resolves when the store thread has ended (closed, or stopped by a bug).
    pub async fn ended(&self) {
        let mut ended = self.ended.clone();
        let _ = ended.wait_for(|ended| *ended).await;
    }

    /// Why writes fail, from the first failed write transaction until one commits again.
    pub fn failing(&self) -> Option<String> {
        self.counters
            .failing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Group-commit counters since open.
    pub fn stats(&self) -> StoreStats {
        StoreStats {
            transactions: self.counters.transactions.load(Ordering::Relaxed),
            commands: self.counters.commands.load(Ordering::Relaxed),
        }
    }

    /// Stops the thread after it has finished every command queued so far, closes the file
    /// cleanly and joins the thread. Other clones get [`StoreError::Closed`] afterwards.
    pub async fn close(self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Close(reply)).await?;
        let closed = answer.await.map_err(|_| StoreError::Closed)?;
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let joined = match thread {
            Some(thread) => matches!(
                tokio::task::spawn_blocking(move || thread.join()).await,
                Ok(Ok(()))
            ),
            None => true,
        };
        closed?;
        if joined {
            tracing::info!("store closed");
            Ok(())
        } else {
            Err(StoreError::Closed)
        }
    }

    async fn send(&self, command: Command) -> Result<(), StoreError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| StoreError::Closed)
    }

    /// Runs `work` inside the next group-commit transaction; answers after the commit.
    async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            work: Some(work),
            outcome: None,
            reply,
        };
        self.send(Command::Write(Box::new(job))).await?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `work` on the store thread outside any write transaction.
    async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = move |conn: &Connection| {
            // The asker may have given up; nothing to do then.
            let _ = reply.send(work(conn).map_err(StoreError::Sqlite));
        };
        self.send(Command::Read(Box::new(job))).await?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

/// The page cache's bound, in KiB (SQLite's `cache_size` takes KiB when negative): 1,024 pages
/// of 4 KiB. A write touches the last leaves of the inbox and the outbox, one path down the
/// uuid index and the meta row; 4 MiB holds every index's interior pages and the hot leaves even
/// with a long retention's inbox, and a cold page is one read from the OS's file cache away. More
/// would mostly keep pages of values rewritten whole (the detector state) and count in ringside's
/// resident memory, which must stay under 100 MB at 10,000 live conferences (`benches/README.md`).
const CACHE_KIB: i64 = 4 * 1024;
const _: () = assert!(CACHE_KIB <= 16 * 1024, "at most 16 MiB of page cache");

/// Per-connection settings. `busy_timeout` comes first so the switch to WAL waits for other
/// connections instead of failing. The page cache is bounded ([`CACHE_KIB`]) and memory-mapped
/// I/O stays off (`mmap_size = 0`, whatever the build's default): mapped pages of the file would
/// count in the resident set, unbounded by the cache. The store thread's connection is the only
/// one ringside opens.
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
    conn.pragma_update(None, "mmap_size", 0)?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(%mode, "SQLite kept another journal mode than WAL");
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// What the store thread is asked to do. No `Debug`: commands may carry secrets.
enum Command {
    Write(Box<dyn WriteJob>),
    Read(Box<dyn FnOnce(&Connection) + Send>),
    Close(oneshot::Sender<Result<(), StoreError>>),
}

/// How one write went inside the transaction.
enum Applied {
    Done,
    /// Its statement failed; `storage` when the failure is the file's, not the statement's
    /// (a full disk, an I/O error, a lock held elsewhere).
    Failed {
        storage: Option<String>,
    },
}

/// A write waiting for its batch's commit.
trait WriteJob: Send {
    /// Runs the work inside the open transaction.
    fn apply(&mut self, conn: &Connection) -> Applied;
    /// Answers: the batch's failure if there was one, else the work's own outcome.
    fn answer(self: Box<Self>, batch_failure: Option<&Arc<rusqlite::Error>>);
}

struct Job<T, F> {
    work: Option<F>,
    outcome: Option<rusqlite::Result<T>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> WriteJob for Job<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> rusqlite::Result<T> + Send,
{
    fn apply(&mut self, conn: &Connection) -> Applied {
        let Some(work) = self.work.take() else {
            return Applied::Failed { storage: None };
        };
        let outcome = work(conn);
        let applied = match &outcome {
            Ok(_) => Applied::Done,
            Err(error) => Applied::Failed {
                storage: storage_failure(error),
            },
        };
        self.outcome = Some(outcome);
        applied
    }

    fn answer(self: Box<Self>, batch_failure: Option<&Arc<rusqlite::Error>>) {
        let answer = match (batch_failure, self.outcome) {
            (Some(failure), _) => Err(StoreError::Transaction(Arc::clone(failure))),
            (None, Some(outcome)) => outcome.map_err(StoreError::Sqlite),
            // Not reachable: a committed batch applied every job.
            (None, None) => Err(StoreError::Closed),
        };
        // The asker may have given up; the write stands regardless.
        let _ = self.reply.send(answer);
    }
}

/// The store thread: group commits until closed or every sender is gone.
fn run(conn: Connection, mut queue: mpsc::Receiver<Command>, counters: &Counters) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut writes: Vec<Box<dyn WriteJob>> = Vec::with_capacity(MAX_BATCH);
    let mut reads = Vec::new();
    let mut closers = Vec::new();

    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(command) => batch.push(command),
                Err(_) => break,
            }
        }
        for command in batch.drain(..) {
            match command {
                Command::Write(job) => writes.push(job),
                Command::Read(job) => reads.push(job),
                Command::Close(reply) => {
                    // Refuse new commands; those already queued are still served.
                    queue.close();
                    closers.push(reply);
                }
            }
        }
        commit(&conn, &mut writes, counters);
        for read in reads.drain(..) {
            read(&conn);
        }
    }

    if let Err(error) = conn.execute_batch("PRAGMA optimize") {
        tracing::debug!(%error, "store: PRAGMA optimize failed");
    }
    let mut closed = conn.close().map_err(|(_, error)| StoreError::Sqlite(error));
    if let Err(error) = &closed {
        tracing::error!(%error, "store: closing the database failed");
    }
    for reply in closers {
        let answer = std::mem::replace(&mut closed, Ok(()));
        let _ = reply.send(answer);
    }
}

/// Runs `jobs` in one transaction and answers each of them; leaves `jobs` empty.
fn commit(conn: &Connection, jobs: &mut Vec<Box<dyn WriteJob>>, counters: &Counters) {
    if jobs.is_empty() {
        return;
    }
    let (result, storage) = transaction(conn, jobs);
    let failure = result.err().map(Arc::new);
    match &failure {
        None => {
            counters.transactions.fetch_add(1, Ordering::Relaxed);
            let commands = u64::try_from(jobs.len()).unwrap_or(u64::MAX);
            counters.commands.fetch_add(commands, Ordering::Relaxed);
        }
        Some(error) => {
            tracing::debug!(%error, commands = jobs.len(), "store write transaction failed");
            if !conn.is_autocommit()
                && let Err(error) = conn.execute_batch("ROLLBACK")
            {
                tracing::debug!(%error, "store: rolling back a failed transaction failed");
            }
        }
    }
    counters.record(failure.as_ref().map(|error| error.to_string()).or(storage));
    for job in jobs.drain(..) {
        job.answer(failure.as_ref());
    }
}

/// The transaction's outcome, and the first write that failed for the file's sake.
fn transaction(
    conn: &Connection,
    jobs: &mut [Box<dyn WriteJob>],
) -> (rusqlite::Result<()>, Option<String>) {
    let mut storage = None;
    let result = (|| {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        for job in jobs.iter_mut() {
            conn.execute_batch("SAVEPOINT job")?;
            match job.apply(conn) {
                Applied::Done => conn.execute_batch("RELEASE job")?,
                Applied::Failed { storage: failed } => {
                    storage = storage.take().or(failed);
                    conn.execute_batch("ROLLBACK TO job; RELEASE job")?;
                }
            }
        }
        conn.execute_batch("COMMIT")
    })();
    (result, storage)
}

/// The reason, when a statement failed because of the file rather than the statement: a full
/// disk, an I/O error, a read-only or locked file.
fn storage_failure(error: &rusqlite::Error) -> Option<String> {
    use rusqlite::ErrorCode;
    match error {
        rusqlite::Error::SqliteFailure(failure, _)
            if matches!(
                failure.code,
                ErrorCode::DiskFull
                    | ErrorCode::SystemIoFailure
                    | ErrorCode::ReadOnly
                    | ErrorCode::DatabaseBusy
                    | ErrorCode::DatabaseLocked
                    | ErrorCode::CannotOpen
                    | ErrorCode::DatabaseCorrupt
                    | ErrorCode::NotADatabase
                    | ErrorCode::OutOfMemory
                    | ErrorCode::PermissionDenied
                    | ErrorCode::FileLockingProtocolFailed
            ) =>
        {
            Some(error.to_string())
        }
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::Store;

    /// A store on a fresh file in a temporary directory (kept alive by the returned guard).
    pub(crate) fn open_temp() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("ringside.db")).unwrap();
        (dir, store)
    }

    /// A telephony notification whose body is its uuid.
    pub(crate) fn inbox_row(uuid: &str) -> super::NewInboxRow {
        super::NewInboxRow {
            uuid: uuid.to_owned(),
            kind: "telephony".to_owned(),
            received_at_ms: 1,
            body: uuid.as_bytes().to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::test_support::{inbox_row as row, open_temp};
    use super::*;

    /// Parks the store thread in a read until the returned sender is dropped or sent to.
    async fn hold_thread(store: &Store) -> std::sync::mpsc::Sender<()> {
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let (entered, inside) = oneshot::channel();
        let store = store.clone();
        tokio::spawn(async move {
            store
                .read(move |_| {
                    let _ = entered.send(());
                    let _ = gate.recv();
                    Ok(())
                })
                .await
        });
        inside.await.unwrap();
        release
    }

    /// Waits until `n` commands wait in the queue.
    async fn wait_queued(store: &Store, n: usize) {
        while store.commands.max_capacity() - store.commands.capacity() < n {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_thousand_concurrent_inserts_get_distinct_ids_in_fewer_transactions() {
        let (_dir, store) = open_temp();
        let tasks: Vec<_> = (0..1000)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move { store.insert_inbox(row(&format!("u-{i}"))).await })
            })
            .collect();
        let mut ids = HashSet::new();
        for task in tasks {
            match task.await.unwrap().unwrap() {
                InboxInsert::Inserted { id } => assert!(ids.insert(id), "id {id} given twice"),
                other => panic!("a fresh uuid was answered {other:?}"),
            }
        }
        assert_eq!(ids.len(), 1000);
        let stats = store.stats();
        assert_eq!(stats.commands, 1000);
        assert!(
            stats.transactions < stats.commands,
            "no batching happened: {stats:?}"
        );
        assert_eq!(store.counts().await.unwrap().unprocessed, 1000);
    }

    #[tokio::test]
    async fn a_failing_write_fails_alone_and_its_batch_still_commits_once() {
        let (_dir, store) = open_temp();
        let release = hold_thread(&store).await;

        let a = tokio::spawn({
            let store = store.clone();
            async move { store.insert_inbox(row("a")).await }
        });
        wait_queued(&store, 1).await;
        let bad = tokio::spawn({
            let store = store.clone();
            async move {
                store
                    .write(|conn| conn.execute("INSERT INTO no_such_table VALUES (1)", []))
                    .await
            }
        });
        wait_queued(&store, 2).await;
        let b = tokio::spawn({
            let store = store.clone();
            async move { store.insert_inbox(row("b")).await }
        });
        wait_queued(&store, 3).await;
        drop(release);

        assert!(matches!(a.await.unwrap(), Ok(InboxInsert::Inserted { .. })));
        assert!(matches!(bad.await.unwrap(), Err(StoreError::Sqlite(_))));
        assert!(matches!(b.await.unwrap(), Ok(InboxInsert::Inserted { .. })));
        assert_eq!(
            store.stats(),
            StoreStats {
                transactions: 1,
                commands: 3
            }
        );
        assert_eq!(store.counts().await.unwrap().total, 2);
    }

    #[tokio::test]
    async fn a_failed_transaction_fails_every_write_in_the_batch() {
        let (_dir, store) = open_temp();
        let release = hold_thread(&store).await;

        let a = tokio::spawn({
            let store = store.clone();
            async move { store.insert_inbox(row("a")).await }
        });
        wait_queued(&store, 1).await;
        // Ends the transaction behind the thread's back, so its own bookkeeping fails.
        let saboteur = tokio::spawn({
            let store = store.clone();
            async move { store.write(|conn| conn.execute_batch("ROLLBACK")).await }
        });
        wait_queued(&store, 2).await;
        let b = tokio::spawn({
            let store = store.clone();
            async move { store.set_meta("k", "v").await }
        });
        wait_queued(&store, 3).await;
        drop(release);

        assert!(matches!(a.await.unwrap(), Err(StoreError::Transaction(_))));
        assert!(matches!(
            saboteur.await.unwrap(),
            Err(StoreError::Transaction(_))
        ));
        assert!(matches!(b.await.unwrap(), Err(StoreError::Transaction(_))));
        assert_eq!(store.stats().transactions, 0);

        // Nothing of the batch stayed, and the store carries on.
        assert_eq!(store.counts().await.unwrap().total, 0);
        assert_eq!(store.get_meta("k").await.unwrap(), None);
        store.insert_inbox(row("c")).await.unwrap();
        assert_eq!(store.counts().await.unwrap().total, 1);
    }

    #[tokio::test]
    async fn close_finishes_queued_writes_then_refuses_commands() {
        let (dir, store) = open_temp();
        let other = store.clone();
        let release = hold_thread(&store).await;

        let writes: Vec<_> = (0..10)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move { store.insert_inbox(row(&format!("q-{i}"))).await })
            })
            .collect();
        wait_queued(&store, 10).await;
        let closing = tokio::spawn(store.close());
        wait_queued(&other, 11).await;
        drop(release);

        closing.await.unwrap().unwrap();
        for write in writes {
            write.await.unwrap().unwrap();
        }
        assert!(matches!(
            other.insert_inbox(row("late")).await,
            Err(StoreError::Closed)
        ));
        assert!(matches!(other.counts().await, Err(StoreError::Closed)));

        let store = Store::open(&dir.path().join("ringside.db")).unwrap();
        assert_eq!(store.counts().await.unwrap().total, 10);
    }

    #[test]
    fn the_page_cache_is_bounded_and_nothing_is_memory_mapped() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("ringside.db")).unwrap();
        configure(&conn).unwrap();
        let cache: i64 = conn
            .pragma_query_value(None, "cache_size", |r| r.get(0))
            .unwrap();
        assert_eq!(cache, -CACHE_KIB);
        let mmap: i64 = conn
            .pragma_query_value(None, "mmap_size", |r| r.get(0))
            .unwrap();
        assert_eq!(mmap, 0);
    }

    /// The hourly prune runs whether or not there was traffic: with nothing old enough it must
    /// not add a frame to the WAL (an idle ringside writes nothing).
    #[tokio::test]
    async fn pruning_with_nothing_old_enough_leaves_the_files_as_they_were() {
        let (dir, store) = open_temp();
        store.insert_inbox(row("kept")).await.unwrap();
        let files = || {
            ["ringside.db", "ringside.db-wal"]
                .map(|name| std::fs::read(dir.path().join(name)).unwrap_or_default())
        };
        let before = files();
        assert_eq!(store.prune(0).await.unwrap(), 0);
        assert_eq!(store.prune_audit(0).await.unwrap(), 0);
        assert!(files() == before, "an empty prune wrote to the store");
    }

    #[tokio::test]
    async fn check_writable_commits_a_write() {
        let (_dir, store) = open_temp();
        store.check_writable().await.unwrap();
        store.check_writable().await.unwrap();
        assert_eq!(store.stats().transactions, 2);
    }

    #[tokio::test]
    async fn opening_under_a_regular_file_fails_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let path = file.join("sub").join("ringside.db");

        match Store::open(&path) {
            Err(error @ StoreError::Open { .. }) => {
                assert!(
                    error.to_string().contains(&path.display().to_string()),
                    "{error}"
                );
                let StoreError::Open { path: named, .. } = error else {
                    unreachable!()
                };
                assert_eq!(named, path);
            }
            Err(other) => panic!("unexpected error: {other}"),
            Ok(_) => panic!("opened a store under a regular file"),
        }
    }
}
