//! The detector's durable state as rows: one per party, conference and link, each an opaque JSON
//! body under its kind and key. The store never reads a body; the detector does, at start.
//!
//! Rows are written in the same transaction as the processed marks of the notifications that
//! changed them (and the events those produced), so a crash never separates the two.

use rusqlite::{Connection, params};

/// One row to write: its body, or `None` to delete it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRow {
    pub kind: &'static str,
    pub key: String,
    pub body: Option<String>,
}

/// A stored row: kind, key and body.
pub type StoredRow = (String, String, String);

/// Writes (or deletes) each row.
pub(super) fn write(conn: &Connection, rows: &[StateRow]) -> rusqlite::Result<()> {
    let mut upsert = conn.prepare_cached(
        "INSERT INTO detector_rows (kind, key, body) VALUES (?1, ?2, ?3)
         ON CONFLICT (kind, key) DO UPDATE SET body = excluded.body",
    )?;
    let mut delete =
        conn.prepare_cached("DELETE FROM detector_rows WHERE kind = ?1 AND key = ?2")?;
    for row in rows {
        match &row.body {
            Some(body) => upsert.execute(params![row.kind, row.key, body])?,
            None => delete.execute(params![row.kind, row.key])?,
        };
    }
    Ok(())
}

/// Deletes every row.
pub(super) fn clear(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM detector_rows", [])?;
    Ok(())
}

/// Every row.
pub(super) fn all(conn: &Connection) -> rusqlite::Result<Vec<StoredRow>> {
    let mut statement = conn.prepare_cached("SELECT kind, key, body FROM detector_rows")?;
    let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::StateRow;
    use crate::store::test_support::open_temp;

    fn row(kind: &'static str, key: &str, body: Option<&str>) -> StateRow {
        StateRow {
            kind,
            key: key.to_owned(),
            body: body.map(str::to_owned),
        }
    }

    #[tokio::test]
    async fn rows_are_written_replaced_and_deleted_with_the_processed_marks() {
        let (_dir, store) = open_temp();
        store
            .commit_processed(
                Vec::new(),
                vec![
                    row("party", "p1", Some("{\"a\":1}")),
                    row("conference", "c1", Some("{}")),
                    row("party", "p2", Some("{\"b\":2}")),
                ],
                Vec::new(),
            )
            .await
            .unwrap();
        store
            .commit_processed(
                Vec::new(),
                vec![
                    row("party", "p1", Some("{\"a\":3}")),
                    row("party", "p2", None),
                    row("link", "gone-already", None),
                ],
                Vec::new(),
            )
            .await
            .unwrap();
        let mut rows = store.detector_rows().await.unwrap();
        rows.sort();
        assert_eq!(
            rows,
            [
                ("conference".into(), "c1".into(), "{}".into()),
                ("party".into(), "p1".into(), "{\"a\":3}".into()),
            ]
        );
    }
}
