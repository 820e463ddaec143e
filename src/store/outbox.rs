//! The outbox: every conference event the detector produced, written in the same transaction as
//! the detector state and the inbox marks that produced it, and marked delivered once the sink
//! took it. Unique on the event id, so an event produced again (a replay after a crash) is not
//! announced twice once it was committed.

use rusqlite::{Connection, OptionalExtension, params};

/// An event to keep until it is announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutboxRow {
    pub event_id: String,
    pub conference_id: String,
    pub received_at_ms: i64,
    /// The event, serialized.
    pub event: String,
}

/// A kept event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub event_id: String,
    pub conference_id: String,
    pub received_at_ms: i64,
    pub event: String,
}

/// Inserts the rows; answers the id of each new one (`None` for an event id already kept).
pub(super) fn insert(
    conn: &Connection,
    rows: &[NewOutboxRow],
) -> rusqlite::Result<Vec<Option<i64>>> {
    let mut statement = conn.prepare_cached(
        "INSERT INTO outbox (event_id, conference_id, received_at_ms, event)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (event_id) DO NOTHING RETURNING id",
    )?;
    rows.iter()
        .map(|row| {
            statement
                .query_row(
                    params![
                        row.event_id,
                        row.conference_id,
                        row.received_at_ms,
                        row.event
                    ],
                    |r| r.get(0),
                )
                .optional()
        })
        .collect()
}

/// Marks rows delivered (already delivered ones keep their time).
pub(super) fn mark_delivered(conn: &Connection, ids: &[i64], now_ms: i64) -> rusqlite::Result<()> {
    let mut statement = conn.prepare_cached(
        "UPDATE outbox SET delivered_at_ms = ?1 WHERE id = ?2 AND delivered_at_ms IS NULL",
    )?;
    for id in ids {
        statement.execute(params![now_ms, id])?;
    }
    Ok(())
}

pub(super) fn undelivered(conn: &Connection) -> rusqlite::Result<Vec<OutboxRow>> {
    conn.prepare_cached(
        "SELECT id, event_id, conference_id, received_at_ms, event FROM outbox
         WHERE delivered_at_ms IS NULL
           AND NOT EXISTS (SELECT 1 FROM batch_rows WHERE batch_rows.outbox_id = outbox.id)
         ORDER BY id",
    )?
    .query_map([], |r| {
        Ok(OutboxRow {
            id: r.get(0)?,
            event_id: r.get(1)?,
            conference_id: r.get(2)?,
            received_at_ms: r.get(3)?,
            event: r.get(4)?,
        })
    })?
    .collect()
}

/// Deletes delivered rows received before `before_ms`.
pub(super) fn prune(conn: &Connection, before_ms: i64) -> rusqlite::Result<u64> {
    let deleted = conn
        .prepare_cached(
            "DELETE FROM outbox WHERE delivered_at_ms IS NOT NULL AND received_at_ms < ?1",
        )?
        .execute(params![before_ms])?;
    Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::NewOutboxRow;
    use crate::store::test_support::open_temp;

    fn row(event_id: &str, at: i64) -> NewOutboxRow {
        NewOutboxRow {
            event_id: event_id.into(),
            conference_id: "s-conf".into(),
            received_at_ms: at,
            event: format!("{{\"id\":\"{event_id}\"}}"),
        }
    }

    #[tokio::test]
    async fn an_event_is_kept_once_until_delivered_and_pruned_after() {
        let (_dir, store) = open_temp();
        let first = store
            .commit_processed(
                vec![],
                vec![],
                vec![row("joined:a:1", 10), row("left:a:1", 20)],
            )
            .await
            .unwrap();
        assert!(first.iter().all(Option::is_some));
        // The same event again (a replay after a crash) is not kept twice.
        let again = store
            .commit_processed(vec![], vec![], vec![row("joined:a:1", 10)])
            .await
            .unwrap();
        assert_eq!(again, vec![None]);
        let undelivered = store.undelivered().await.unwrap();
        assert_eq!(undelivered.len(), 2);
        assert_eq!(undelivered[0].event_id, "joined:a:1");
        store.mark_delivered(vec![undelivered[0].id]).await.unwrap();
        let left = store.undelivered().await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].event_id, "left:a:1");
        assert_eq!(
            store.prune(15).await.unwrap(),
            1,
            "the delivered, older row"
        );
        assert_eq!(store.undelivered().await.unwrap().len(), 1);
    }
}
