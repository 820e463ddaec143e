//! The watch list's alerts: one per caller per conference. The row is kept with its nonce
//! before the alert is first posted (a repost after a crash is deduplicated by Discord), then
//! with its message id, so a restart neither posts it twice nor loses the message to edit when
//! the caller leaves. A `closed` alert (edited to say the caller left or was removed) is kept a
//! while, so a caller who rejoins the same conference gets no second one, and pruned with the
//! sent batches.

use rusqlite::{Connection, OptionalExtension, Row, params};

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    /// Its nonce is kept; it may not be in the channel yet.
    Pending,
    /// In the channel (`message_id`), its Remove button on.
    Posted,
    /// Edited to say the caller left or was removed, its button off; nothing more to do.
    Closed,
}

impl AlertState {
    fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Posted => "posted",
            AlertState::Closed => "closed",
        }
    }

    fn parse(text: &str) -> AlertState {
        match text {
            "pending" => AlertState::Pending,
            "posted" => AlertState::Posted,
            // Anything else has nothing left to do.
            _ => AlertState::Closed,
        }
    }
}

/// One caller's alert in one conference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRow {
    pub conference_id: String,
    pub participant_id: String,
    pub channel_id: String,
    /// The nonce of the alert's creation (and of its repost after a crash: the same message).
    pub nonce: String,
    /// The alert's message, once Discord created it.
    pub message_id: Option<String>,
    pub state: AlertState,
}

const COLUMNS: &str = "conference_id, participant_id, channel_id, nonce, message_id, state";

fn alert(row: &Row<'_>) -> rusqlite::Result<AlertRow> {
    Ok(AlertRow {
        conference_id: row.get(0)?,
        participant_id: row.get(1)?,
        channel_id: row.get(2)?,
        nonce: row.get(3)?,
        message_id: row.get(4)?,
        state: AlertState::parse(&row.get::<_, String>(5)?),
    })
}

/// Keeps an alert as it is now (inserted, or replacing the caller's alert in that conference).
pub(super) fn save(conn: &Connection, alert: &AlertRow, now_ms: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO watch_alerts (conference_id, participant_id, channel_id, nonce, message_id,
                                   state, updated_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (conference_id, participant_id) DO UPDATE SET
             channel_id = excluded.channel_id, nonce = excluded.nonce,
             message_id = excluded.message_id, state = excluded.state,
             updated_at_ms = excluded.updated_at_ms",
    )?
    .execute(params![
        alert.conference_id,
        alert.participant_id,
        alert.channel_id,
        alert.nonce,
        alert.message_id,
        alert.state.as_str(),
        now_ms
    ])?;
    Ok(())
}

/// Every alert of the conferences still followed, closed ones included (they say "already
/// alerted"), in no particular order.
pub(super) fn all(conn: &Connection) -> rusqlite::Result<Vec<AlertRow>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM watch_alerts"))?
        .query_map([], alert)?
        .collect()
}

/// One caller's alert in one conference, if they have one.
pub(super) fn get(
    conn: &Connection,
    conference_id: &str,
    participant_id: &str,
) -> rusqlite::Result<Option<AlertRow>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM watch_alerts WHERE conference_id = ?1 AND participant_id = ?2"
    ))?
    .query_row(params![conference_id, participant_id], alert)
    .optional()
}

/// Deletes closed alerts last changed before `before_ms`; an open one is never pruned.
pub(super) fn prune(conn: &Connection, before_ms: i64) -> rusqlite::Result<u64> {
    let deleted = conn
        .prepare_cached("DELETE FROM watch_alerts WHERE state = 'closed' AND updated_at_ms < ?1")?
        .execute(params![before_ms])?;
    Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::{AlertRow, AlertState};
    use crate::store::Store;

    fn alert(participant: &str, message: Option<&str>, state: AlertState) -> AlertRow {
        AlertRow {
            conference_id: "s-1".into(),
            participant_id: participant.into(),
            channel_id: "100".into(),
            nonce: format!("w-{participant}"),
            message_id: message.map(str::to_owned),
            state,
        }
    }

    #[tokio::test]
    async fn an_alert_keeps_its_nonce_and_message_across_a_restart_until_closed_and_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ringside.db");
        let store = Store::open(&path).unwrap();
        store
            .save_alert(alert("p-1", None, AlertState::Pending))
            .await
            .unwrap();
        store
            .save_alert(alert("p-2", None, AlertState::Pending))
            .await
            .unwrap();
        store
            .save_alert(alert("p-2", Some("9002"), AlertState::Posted))
            .await
            .unwrap();
        store.close().await.unwrap();

        let store = Store::open(&path).unwrap();
        let mut all = store.alerts().await.unwrap();
        all.sort_by(|a, b| a.participant_id.cmp(&b.participant_id));
        assert_eq!(
            all,
            vec![
                alert("p-1", None, AlertState::Pending),
                alert("p-2", Some("9002"), AlertState::Posted)
            ],
            "the pending alert keeps its nonce for the repost; the posted one its message"
        );
        assert_eq!(store.prune(i64::MAX).await.unwrap(), 0, "open alerts stay");
        store
            .save_alert(alert("p-2", Some("9002"), AlertState::Closed))
            .await
            .unwrap();
        assert_eq!(
            store.alert("s-1", "p-2").await.unwrap(),
            Some(alert("p-2", Some("9002"), AlertState::Closed))
        );
        assert_eq!(store.prune(i64::MAX).await.unwrap(), 1, "the closed alert");
        assert_eq!(store.alert("s-1", "p-2").await.unwrap(), None);
        assert!(store.alert("s-1", "p-1").await.unwrap().is_some());
    }
}
