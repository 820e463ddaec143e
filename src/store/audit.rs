//! The audit log: every kick attempt and every refusal, with who, what and how it ended.

use rusqlite::{Connection, params};

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at_ms: i64,
    /// Who asked (a Discord user id, or `demo` / `operator`).
    pub actor_id: String,
    pub actor_name: String,
    /// `kick`, `kick_refused`, …
    pub action: String,
    pub conference_id: Option<String>,
    pub participant_id: Option<String>,
    /// `removed`, `already_gone`, `failed`, `refused`, …
    pub outcome: String,
    /// The reason in plain words.
    pub detail: String,
}

pub(super) fn insert(conn: &Connection, entry: &AuditEntry) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO audit (at_ms, actor_id, actor_name, action, conference_id, participant_id,
                            outcome, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        entry.at_ms,
        entry.actor_id,
        entry.actor_name,
        entry.action,
        entry.conference_id,
        entry.participant_id,
        entry.outcome,
        entry.detail
    ])?;
    Ok(conn.last_insert_rowid())
}

pub(super) fn prune(conn: &Connection, before_ms: i64) -> rusqlite::Result<u64> {
    let deleted = conn
        .prepare_cached("DELETE FROM audit WHERE at_ms < ?1")?
        .execute(params![before_ms])?;
    Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
}

pub(super) fn since(conn: &Connection, since_ms: i64) -> rusqlite::Result<Vec<AuditEntry>> {
    conn.prepare_cached(
        "SELECT at_ms, actor_id, actor_name, action, conference_id, participant_id, outcome,
                detail
         FROM audit WHERE at_ms >= ?1 ORDER BY at_ms, id",
    )?
    .query_map(params![since_ms], |row| {
        Ok(AuditEntry {
            at_ms: row.get(0)?,
            actor_id: row.get(1)?,
            actor_name: row.get(2)?,
            action: row.get(3)?,
            conference_id: row.get(4)?,
            participant_id: row.get(5)?,
            outcome: row.get(6)?,
            detail: row.get(7)?,
        })
    })?
    .collect()
}

#[cfg(test)]
mod tests {
    use super::AuditEntry;
    use crate::store::test_support::open_temp;

    fn entry(at_ms: i64, outcome: &str) -> AuditEntry {
        AuditEntry {
            at_ms,
            actor_id: "42".into(),
            actor_name: "mod".into(),
            action: "kick".into(),
            conference_id: Some("s-conf".into()),
            participant_id: Some("p-conf-2".into()),
            outcome: outcome.into(),
            detail: "reason".into(),
        }
    }

    #[tokio::test]
    async fn audit_entries_round_trip_in_time_order_from_a_date() {
        let (_dir, store) = open_temp();
        store.audit(entry(2_000, "removed")).await.unwrap();
        store.audit(entry(1_000, "refused")).await.unwrap();
        store.audit(entry(3_000, "failed")).await.unwrap();
        let all = store.audit_since(0).await.unwrap();
        let outcomes: Vec<&str> = all.iter().map(|e| e.outcome.as_str()).collect();
        assert_eq!(outcomes, ["refused", "removed", "failed"]);
        assert_eq!(store.audit_since(2_000).await.unwrap().len(), 2);
        assert_eq!(all[0], entry(1_000, "refused"));
        assert_eq!(store.prune_audit(2_000).await.unwrap(), 1);
        assert_eq!(store.audit_since(0).await.unwrap().len(), 2);
    }
}
