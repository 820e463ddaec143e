//! The schema, versioned in code.
//!
//! `PRAGMA user_version` holds how many entries of [`MIGRATIONS`] the file has had applied. At
//! open the missing ones run, in order, in one `BEGIN IMMEDIATE` transaction, so a file is
//! either fully at the new version or untouched. Adding a migration is appending one string to
//! [`MIGRATIONS`]; an applied entry is never edited.

use rusqlite::Connection;

use super::StoreError;

/// Every migration, oldest first; entry `i` takes the file from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: webhook inbox, quarantine, key/value meta and the readiness probe row.
    "CREATE TABLE inbox (
         id              INTEGER PRIMARY KEY AUTOINCREMENT,
         uuid            TEXT    NOT NULL UNIQUE,
         kind            TEXT    NOT NULL,
         received_at_ms  INTEGER NOT NULL,
         body            BLOB    NOT NULL,
         processed_at_ms INTEGER
     );
     CREATE INDEX inbox_unprocessed ON inbox (id) WHERE processed_at_ms IS NULL;
     CREATE INDEX inbox_processed_received ON inbox (received_at_ms)
         WHERE processed_at_ms IS NOT NULL;
     CREATE TABLE quarantine (
         id             INTEGER PRIMARY KEY AUTOINCREMENT,
         uuid           TEXT,
         received_at_ms INTEGER NOT NULL,
         reason         TEXT    NOT NULL,
         body           BLOB    NOT NULL
     );
     CREATE INDEX quarantine_received ON quarantine (received_at_ms);
     CREATE TABLE meta (
         key   TEXT PRIMARY KEY,
         value TEXT NOT NULL
     ) WITHOUT ROWID;
     CREATE TABLE probe (
         id    INTEGER PRIMARY KEY CHECK (id = 1),
         at_ms INTEGER NOT NULL
     );",
    // 2: the audit log of kicks and refusals.
    "CREATE TABLE audit (
         id             INTEGER PRIMARY KEY AUTOINCREMENT,
         at_ms          INTEGER NOT NULL,
         actor_id       TEXT    NOT NULL,
         actor_name     TEXT    NOT NULL,
         action         TEXT    NOT NULL,
         conference_id  TEXT,
         participant_id TEXT,
         outcome        TEXT    NOT NULL,
         detail         TEXT    NOT NULL
     );
     CREATE INDEX audit_at ON audit (at_ms);",
    // 3: the outbox of conference events, unique on the event id.
    "CREATE TABLE outbox (
         id              INTEGER PRIMARY KEY AUTOINCREMENT,
         event_id        TEXT    NOT NULL UNIQUE,
         conference_id   TEXT    NOT NULL,
         received_at_ms  INTEGER NOT NULL,
         event           TEXT    NOT NULL,
         delivered_at_ms INTEGER
     );
     CREATE INDEX outbox_undelivered ON outbox (id) WHERE delivered_at_ms IS NULL;
     CREATE INDEX outbox_delivered_received ON outbox (received_at_ms)
         WHERE delivered_at_ms IS NOT NULL;",
    // 4: the announcer's messages (batches) with their nonces, the outbox rows each one carries,
    // and the thread each conference is announced in.
    "CREATE TABLE batches (
         id            INTEGER PRIMARY KEY AUTOINCREMENT,
         nonce         TEXT    NOT NULL UNIQUE,
         channel_id    TEXT    NOT NULL,
         conference_id TEXT,
         target        TEXT    NOT NULL DEFAULT 'channel'
                       CHECK (target IN ('channel', 'thread_start', 'thread')),
         thread_name   TEXT,
         body          TEXT    NOT NULL,
         created_at_ms INTEGER NOT NULL,
         state         TEXT    NOT NULL DEFAULT 'pending'
                       CHECK (state IN ('pending', 'sent', 'parked')),
         message_id    TEXT,
         error         TEXT,
         done_at_ms    INTEGER
     );
     CREATE INDEX batches_pending ON batches (id) WHERE state = 'pending';
     CREATE INDEX batches_done ON batches (done_at_ms) WHERE state <> 'pending';
     CREATE TABLE batch_rows (
         batch_id  INTEGER NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
         outbox_id INTEGER NOT NULL,
         PRIMARY KEY (batch_id, outbox_id)
     ) WITHOUT ROWID;
     CREATE INDEX batch_rows_outbox ON batch_rows (outbox_id);
     CREATE TABLE conference_threads (
         conference_id TEXT    PRIMARY KEY,
         thread_id     TEXT    NOT NULL,
         created_at_ms INTEGER NOT NULL
     ) WITHOUT ROWID;",
    // 5: the detector's state as one row per party, conference and link (it was one JSON value
    // in `meta`, rewritten whole; a store that still has it moves it here at start).
    "CREATE TABLE detector_rows (
         kind TEXT NOT NULL,
         key  TEXT NOT NULL,
         body TEXT NOT NULL,
         PRIMARY KEY (kind, key)
     ) WITHOUT ROWID;",
    // 6: files uploaded with a batch (the timeline picture of an end summary), and each
    // conference's roster card: its nonce before it is posted, its message once it is.
    "CREATE TABLE batch_files (
         batch_id INTEGER NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
         position INTEGER NOT NULL,
         filename TEXT    NOT NULL,
         bytes    BLOB    NOT NULL,
         PRIMARY KEY (batch_id, position)
     ) WITHOUT ROWID;
     CREATE TABLE roster_cards (
         conference_id TEXT    PRIMARY KEY,
         channel_id    TEXT    NOT NULL,
         nonce         TEXT    NOT NULL,
         message_id    TEXT,
         state         TEXT    NOT NULL DEFAULT 'live' CHECK (state IN ('live', 'final')),
         updated_at_ms INTEGER NOT NULL
     ) WITHOUT ROWID;",
    // 7: the watch list's alerts, one per caller per conference.
    "CREATE TABLE watch_alerts (
         conference_id  TEXT    NOT NULL,
         participant_id TEXT    NOT NULL,
         channel_id     TEXT    NOT NULL,
         nonce          TEXT    NOT NULL,
         message_id     TEXT,
         state          TEXT    NOT NULL CHECK (state IN ('pending', 'posted', 'closed')),
         updated_at_ms  INTEGER NOT NULL,
         PRIMARY KEY (conference_id, participant_id)
     ) WITHOUT ROWID;
     CREATE INDEX watch_alerts_closed ON watch_alerts (updated_at_ms) WHERE state = 'closed';",
    // 8: an operator's request to send a parked announcement again (`ringside parked resend`),
    // which the running announcer looks for every few seconds: both lookups stay on small
    // partial indexes however many sent batches the retention keeps.
    "ALTER TABLE batches ADD COLUMN resend_requested_at_ms INTEGER;
     CREATE INDEX batches_parked ON batches (id) WHERE state = 'parked';
     CREATE INDEX batches_resend ON batches (id) WHERE resend_requested_at_ms IS NOT NULL;",
];

/// The schema version this build writes: the number of migrations.
pub fn current_version() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

/// Reads `PRAGMA user_version`.
pub fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// Brings the file up to [`current_version`]; does nothing when it already is there.
///
/// Refuses a file written by a newer build ([`StoreError::SchemaTooNew`]) instead of guessing.
pub fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let known = current_version();
    // Cheap check outside a transaction: the usual case is "nothing to do".
    let found = user_version(conn).map_err(StoreError::Sqlite)?;
    if found == known {
        return Ok(());
    }
    if found > known {
        return Err(StoreError::SchemaTooNew { found, known });
    }

    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(StoreError::Sqlite)?;
    let result = apply_missing(conn, known);
    let result = result.and_then(|()| conn.execute_batch("COMMIT").map_err(StoreError::Sqlite));
    if result.is_err() && !conn.is_autocommit() {
        if let Err(error) = conn.execute_batch("ROLLBACK") {
            tracing::error!(%error, "rolling back a failed migration failed");
        }
    }
    result
}

/// Inside the migration transaction: re-reads the version (another process may have migrated
/// meanwhile) and applies what is missing.
fn apply_missing(conn: &Connection, known: i64) -> Result<(), StoreError> {
    let found = user_version(conn).map_err(StoreError::Sqlite)?;
    if found > known {
        return Err(StoreError::SchemaTooNew { found, known });
    }
    let first = usize::try_from(found).unwrap_or(0);
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(first) {
        let version = i64::try_from(index + 1).unwrap_or(i64::MAX);
        conn.execute_batch(sql)
            .and_then(|()| conn.pragma_update(None, "user_version", version))
            .map_err(|source| StoreError::Migration { version, source })?;
        tracing::info!(version, "store schema migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[tokio::test]
    async fn migrations_are_idempotent_and_user_version_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ringside.db");

        let store = Store::open(&path).unwrap();
        store.set_meta("kept", "yes").await.unwrap();
        store.close().await.unwrap();

        // A second open finds nothing to do and keeps the data.
        let store = Store::open(&path).unwrap();
        assert_eq!(
            store.get_meta("kept").await.unwrap().as_deref(),
            Some("yes")
        );
        store.close().await.unwrap();

        let conn = Connection::open(&path).unwrap();
        assert_eq!(user_version(&conn).unwrap(), MIGRATIONS.len() as i64);
        // Running the migrator again directly is a no-op too.
        migrate(&conn).unwrap();
        assert_eq!(user_version(&conn).unwrap(), MIGRATIONS.len() as i64);
    }

    #[tokio::test]
    async fn a_file_from_a_newer_build_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ringside.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", current_version() + 1)
                .unwrap();
        }
        match Store::open(&path) {
            Err(StoreError::SchemaTooNew { found, known }) => {
                assert_eq!(found, current_version() + 1);
                assert_eq!(known, current_version());
            }
            Err(other) => panic!("unexpected error: {other}"),
            Ok(_) => panic!("a newer schema was accepted"),
        }
    }

    /// Migration 8 added the resend request: a batch parked by an older ringside loads, with
    /// its parked time and error, and no request.
    #[tokio::test]
    async fn a_batch_parked_before_resends_existed_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ringside.db");
        {
            let conn = Connection::open(&path).unwrap();
            for sql in &MIGRATIONS[..7] {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", 7).unwrap();
            conn.execute_batch(
                "INSERT INTO batches (nonce, channel_id, body, created_at_ms, state, error,
                                      done_at_ms)
                 VALUES ('n-old', '100', '{\"content\":\"hi\"}', 1000, 'parked',
                         '403 Missing Access', 2000);",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let parked = store.parked_batches(10).await.unwrap();
        assert_eq!(parked.len(), 1);
        assert_eq!(parked[0].nonce, "n-old");
        assert_eq!(parked[0].error.as_deref(), Some("403 Missing Access"));
        assert_eq!(parked[0].done_at_ms, Some(2000));
        assert_eq!(parked[0].resend_requested_at_ms, None);
        assert_eq!(store.parked_count().await.unwrap(), 1);
    }

    #[test]
    fn a_fresh_file_gets_every_table() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        let mut tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        tables.sort();
        assert_eq!(
            tables,
            [
                "audit",
                "batch_files",
                "batch_rows",
                "batches",
                "conference_threads",
                "detector_rows",
                "inbox",
                "meta",
                "outbox",
                "probe",
                "quarantine",
                "roster_cards",
                "watch_alerts"
            ]
        );
    }
}
