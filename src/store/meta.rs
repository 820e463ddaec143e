//! A small key/value table for the service's own settings (e.g. the generated webhook
//! verification token).
//!
//! Values may be secrets: nothing here logs a value, and the commands carrying them have no
//! `Debug`.

use rusqlite::{Connection, OptionalExtension, params};

/// The value stored under `key`, if any.
pub(super) fn get(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row(params![key], |row| row.get(0))
        .optional()
}

/// Stores `value` under `key`, replacing what was there.
pub(super) fn set(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![key, value])?;
    Ok(())
}

/// Removes `key` and its value, if there.
pub(super) fn delete(conn: &Connection, key: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM meta WHERE key = ?1")?
        .execute(params![key])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::store::test_support::open_temp;

    #[tokio::test]
    async fn meta_round_trips_and_a_set_overwrites() {
        let (_dir, store) = open_temp();
        assert_eq!(store.get_meta("webhook.token").await.unwrap(), None);

        store.set_meta("webhook.token", "first").await.unwrap();
        store.set_meta("other", "untouched").await.unwrap();
        assert_eq!(
            store.get_meta("webhook.token").await.unwrap().as_deref(),
            Some("first")
        );

        store.set_meta("webhook.token", "second").await.unwrap();
        assert_eq!(
            store.get_meta("webhook.token").await.unwrap().as_deref(),
            Some("second")
        );
        assert_eq!(
            store.get_meta("other").await.unwrap().as_deref(),
            Some("untouched")
        );
    }
}
