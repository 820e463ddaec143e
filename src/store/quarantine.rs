//! Quarantine: webhook bodies ringside accepted (a 4xx would get the subscription blacklisted)
//! but could not use, kept raw with the reason for an operator to look at.

use rusqlite::{Connection, params};

/// A body to quarantine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewQuarantineRow {
    /// The notification's uuid, when it had a readable one.
    pub uuid: Option<String>,
    pub received_at_ms: i64,
    /// Why the body was unusable (one line, for operators).
    pub reason: String,
    pub body: Vec<u8>,
}

/// A quarantined body as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineRow {
    pub id: i64,
    pub uuid: Option<String>,
    pub received_at_ms: i64,
    pub reason: String,
    pub body: Vec<u8>,
}

/// Stores a row; answers its id.
pub(super) fn insert(conn: &Connection, row: &NewQuarantineRow) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO quarantine (uuid, received_at_ms, reason, body)
         VALUES (?1, ?2, ?3, ?4) RETURNING id",
    )?
    .query_row(
        params![row.uuid, row.received_at_ms, row.reason, row.body],
        |r| r.get(0),
    )
}

/// At most `limit` rows, newest (by `received_at_ms`, then id) first.
pub(super) fn newest(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<QuarantineRow>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "SELECT id, uuid, received_at_ms, reason, body FROM quarantine
         ORDER BY received_at_ms DESC, id DESC LIMIT ?1",
    )?
    .query_map(params![limit], |r| {
        Ok(QuarantineRow {
            id: r.get(0)?,
            uuid: r.get(1)?,
            received_at_ms: r.get(2)?,
            reason: r.get(3)?,
            body: r.get(4)?,
        })
    })?
    .collect()
}

/// Deletes rows received before `before_ms`; answers how many.
pub(super) fn prune(conn: &Connection, before_ms: i64) -> rusqlite::Result<u64> {
    let deleted = conn
        .prepare_cached("DELETE FROM quarantine WHERE received_at_ms < ?1")?
        .execute(params![before_ms])?;
    Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::open_temp;

    fn row(uuid: Option<&str>, at: i64, reason: &str) -> NewQuarantineRow {
        NewQuarantineRow {
            uuid: uuid.map(str::to_owned),
            received_at_ms: at,
            reason: reason.to_owned(),
            body: format!("{{\"at\":{at}}}").into_bytes(),
        }
    }

    #[tokio::test]
    async fn quarantine_round_trips_newest_first_within_the_limit() {
        let (_dir, store) = open_temp();
        let old = store
            .quarantine(row(Some("u-1"), 1_000, "no body.parties"))
            .await
            .unwrap();
        let new = store
            .quarantine(row(None, 3_000, "not JSON"))
            .await
            .unwrap();
        let middle = store
            .quarantine(row(Some("u-3"), 2_000, "unknown event"))
            .await
            .unwrap();
        assert!(old < new && new < middle);

        let all = store.quarantined(10).await.unwrap();
        assert_eq!(
            all,
            vec![
                QuarantineRow {
                    id: new,
                    uuid: None,
                    received_at_ms: 3_000,
                    reason: "not JSON".to_owned(),
                    body: b"{\"at\":3000}".to_vec(),
                },
                QuarantineRow {
                    id: middle,
                    uuid: Some("u-3".to_owned()),
                    received_at_ms: 2_000,
                    reason: "unknown event".to_owned(),
                    body: b"{\"at\":2000}".to_vec(),
                },
                QuarantineRow {
                    id: old,
                    uuid: Some("u-1".to_owned()),
                    received_at_ms: 1_000,
                    reason: "no body.parties".to_owned(),
                    body: b"{\"at\":1000}".to_vec(),
                },
            ]
        );

        let two: Vec<i64> = store
            .quarantined(2)
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(two, vec![new, middle]);
        assert!(store.quarantined(0).await.unwrap().is_empty());
    }
}
