//! The webhook inbox: every accepted notification, raw, keyed by its uuid.
//!
//! The `UNIQUE` uuid is the deduplication: a redelivery inserts nothing and is answered with
//! the first row's id, and because answers go out only after the commit, "inserted" means
//! "durable". Rows stay unprocessed until the detector has consumed them, so a restart replays
//! exactly what was not finished.

use rusqlite::{Connection, OptionalExtension, params};

/// A notification to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInboxRow {
    /// RingCentral's notification uuid (the deduplication key).
    pub uuid: String,
    /// What produced the row: `"telephony"` or `"reminder"`.
    pub kind: String,
    pub received_at_ms: i64,
    /// The body exactly as received.
    pub body: Vec<u8>,
}

/// The outcome of [`Store::insert_inbox`](super::Store::insert_inbox).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxInsert {
    /// A new row, committed.
    Inserted { id: i64 },
    /// The uuid was already stored (as row `id`); nothing was written.
    Duplicate { id: i64 },
}

impl InboxInsert {
    /// The row id, new or existing.
    pub fn id(self) -> i64 {
        match self {
            Self::Inserted { id } | Self::Duplicate { id } => id,
        }
    }
}

/// A stored, not yet processed notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxRow {
    pub id: i64,
    pub uuid: String,
    pub kind: String,
    pub received_at_ms: i64,
    pub body: Vec<u8>,
}

/// Row counts, for metrics and the status page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InboxCounts {
    /// Inbox rows, processed or not.
    pub total: u64,
    /// Inbox rows not yet processed.
    pub unprocessed: u64,
    /// Quarantine rows.
    pub quarantined: u64,
}

pub(super) fn insert(conn: &Connection, row: &NewInboxRow) -> rusqlite::Result<InboxInsert> {
    let inserted: Option<i64> = conn
        .prepare_cached(
            "INSERT INTO inbox (uuid, kind, received_at_ms, body) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (uuid) DO NOTHING RETURNING id",
        )?
        .query_row(
            params![row.uuid, row.kind, row.received_at_ms, row.body],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = inserted {
        return Ok(InboxInsert::Inserted { id });
    }
    let id = conn
        .prepare_cached("SELECT id FROM inbox WHERE uuid = ?1")?
        .query_row(params![row.uuid], |r| r.get(0))?;
    Ok(InboxInsert::Duplicate { id })
}

/// Marks rows processed at `now_ms`; unknown or already processed ids are left alone.
///
/// The detector applies rows in id order, so a batch's ids are usually one unbroken run: each
/// run is one ranged UPDATE rather than one per row. Only the listed ids are marked (a run has
/// no gap by construction), so a row the detector has not applied is never marked with them.
pub(super) fn mark_processed(conn: &Connection, ids: &[i64], now_ms: i64) -> rusqlite::Result<()> {
    let mut statement = conn.prepare_cached(
        "UPDATE inbox SET processed_at_ms = ?1
         WHERE id BETWEEN ?2 AND ?3 AND processed_at_ms IS NULL",
    )?;
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut runs = sorted.into_iter().peekable();
    while let Some(first) = runs.next() {
        let mut last = first;
        while runs
            .next_if(|&next| next == last.saturating_add(1))
            .is_some()
        {
            last += 1;
        }
        statement.execute(params![now_ms, first, last])?;
    }
    Ok(())
}

/// Every unprocessed row, by id (arrival order).
pub(super) fn unprocessed(conn: &Connection) -> rusqlite::Result<Vec<InboxRow>> {
    conn.prepare_cached(
        "SELECT id, uuid, kind, received_at_ms, body FROM inbox
         WHERE processed_at_ms IS NULL ORDER BY id",
    )?
    .query_map([], |r| {
        Ok(InboxRow {
            id: r.get(0)?,
            uuid: r.get(1)?,
            kind: r.get(2)?,
            received_at_ms: r.get(3)?,
            body: r.get(4)?,
        })
    })?
    .collect()
}

/// Deletes processed rows received before `before_ms`; answers how many.
pub(super) fn prune(conn: &Connection, before_ms: i64) -> rusqlite::Result<u64> {
    let deleted = conn
        .prepare_cached(
            "DELETE FROM inbox WHERE processed_at_ms IS NOT NULL AND received_at_ms < ?1",
        )?
        .execute(params![before_ms])?;
    Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
}

pub(super) fn counts(conn: &Connection) -> rusqlite::Result<InboxCounts> {
    // One statement, so the three numbers come from one snapshot.
    conn.prepare_cached(
        "SELECT (SELECT count(*) FROM inbox),
                (SELECT count(*) FROM inbox WHERE processed_at_ms IS NULL),
                (SELECT count(*) FROM quarantine)",
    )?
    .query_row([], |r| {
        let count = |i: usize| r.get::<_, i64>(i).map(|n| u64::try_from(n).unwrap_or(0));
        Ok(InboxCounts {
            total: count(0)?,
            unprocessed: count(1)?,
            quarantined: count(2)?,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::open_temp;
    use crate::store::{NewQuarantineRow, Store};

    fn row(uuid: &str, at: i64) -> NewInboxRow {
        NewInboxRow {
            uuid: uuid.to_owned(),
            kind: "telephony".to_owned(),
            received_at_ms: at,
            body: format!("{{\"uuid\":\"{uuid}\"}}").into_bytes(),
        }
    }

    #[tokio::test]
    async fn a_duplicate_uuid_is_answered_duplicate_with_the_first_id_and_stored_once() {
        let (_dir, store) = open_temp();
        let first = store.insert_inbox(row("u-1", 10)).await.unwrap();
        let InboxInsert::Inserted { id } = first else {
            panic!("first insert answered {first:?}");
        };
        store.insert_inbox(row("u-2", 11)).await.unwrap();

        let mut again = row("u-1", 99);
        again.body = b"redelivered".to_vec();
        assert_eq!(
            store.insert_inbox(again).await.unwrap(),
            InboxInsert::Duplicate { id }
        );

        let rows = store.unprocessed().await.unwrap();
        let u1: Vec<&InboxRow> = rows.iter().filter(|r| r.uuid == "u-1").collect();
        assert_eq!(u1.len(), 1);
        assert_eq!(u1[0].id, id);
        assert_eq!(u1[0].received_at_ms, 10, "the first delivery is kept");
        assert_eq!(store.counts().await.unwrap().total, 2);
    }

    #[tokio::test]
    async fn marking_runs_of_ids_marks_exactly_the_listed_ones() {
        let (_dir, store) = open_temp();
        let mut ids = Vec::new();
        for i in 0..8 {
            ids.push(
                store
                    .insert_inbox(row(&format!("r-{i}"), i))
                    .await
                    .unwrap()
                    .id(),
            );
        }
        // Two runs and a single, out of order and repeated; ids[3] and ids[6] are not listed.
        let listed = vec![ids[5], ids[0], ids[1], ids[2], ids[7], ids[4], ids[1]];
        store.mark_processed(listed).await.unwrap();
        let open: Vec<i64> = store
            .unprocessed()
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(open, [ids[3], ids[6]]);
    }

    #[tokio::test]
    async fn unprocessed_rows_survive_reopening_in_id_order_without_processed_ones() {
        let (dir, store) = open_temp();
        let path = dir.path().join("ringside.db");
        let mut ids = Vec::new();
        for (i, uuid) in ["a", "b", "c", "d"].into_iter().enumerate() {
            let mut new = row(uuid, 100 + i as i64);
            if uuid == "c" {
                new.kind = "reminder".to_owned();
            }
            ids.push(store.insert_inbox(new).await.unwrap().id());
        }
        store.mark_processed(vec![ids[1]]).await.unwrap();
        // No close: simulates a crash after the commits were answered.
        drop(store);

        let store = Store::open(&path).unwrap();
        let rows = store.unprocessed().await.unwrap();
        assert_eq!(
            rows.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![ids[0], ids[2], ids[3]]
        );
        assert_eq!(
            rows.iter().map(|r| r.uuid.as_str()).collect::<Vec<_>>(),
            ["a", "c", "d"]
        );
        assert_eq!(rows[1].kind, "reminder");
        assert_eq!(rows[0].body, b"{\"uuid\":\"a\"}");
        assert_eq!(rows[2].received_at_ms, 103);
    }

    #[tokio::test]
    async fn marking_processed_twice_or_unknown_ids_is_harmless() {
        let (_dir, store) = open_temp();
        let id = store.insert_inbox(row("x", 1)).await.unwrap().id();
        store.mark_processed(vec![id, id + 1000]).await.unwrap();
        store.mark_processed(vec![id]).await.unwrap();
        store.mark_processed(Vec::new()).await.unwrap();
        assert!(store.unprocessed().await.unwrap().is_empty());
        assert_eq!(
            store.counts().await.unwrap(),
            InboxCounts {
                total: 1,
                unprocessed: 0,
                quarantined: 0
            }
        );
    }

    #[tokio::test]
    async fn prune_deletes_only_processed_and_quarantined_rows_received_before_the_cutoff() {
        let (_dir, store) = open_temp();
        let old_done = store.insert_inbox(row("old-done", 100)).await.unwrap().id();
        let old_open = store.insert_inbox(row("old-open", 100)).await.unwrap().id();
        let new_done = store.insert_inbox(row("new-done", 500)).await.unwrap().id();
        store.insert_inbox(row("new-open", 500)).await.unwrap();
        store
            .mark_processed(vec![old_done, new_done])
            .await
            .unwrap();
        for at in [100, 500] {
            store
                .quarantine(NewQuarantineRow {
                    uuid: None,
                    received_at_ms: at,
                    reason: "bad".to_owned(),
                    body: Vec::new(),
                })
                .await
                .unwrap();
        }

        assert_eq!(
            store.prune(500).await.unwrap(),
            2,
            "old-done and one quarantine row"
        );
        assert_eq!(
            store.counts().await.unwrap(),
            InboxCounts {
                total: 3,
                unprocessed: 2,
                quarantined: 1
            }
        );
        let open: Vec<i64> = store
            .unprocessed()
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(open[0], old_open, "an old unprocessed row is never pruned");
        assert_eq!(store.quarantined(10).await.unwrap()[0].received_at_ms, 500);

        // A redelivery of a kept processed row still deduplicates.
        assert!(matches!(
            store.insert_inbox(row("new-done", 600)).await.unwrap(),
            InboxInsert::Duplicate { id } if id == new_done
        ));
        assert_eq!(store.prune(500).await.unwrap(), 0);
    }
}
