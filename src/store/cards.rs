//! Each conference's roster card: its nonce, kept before the card is first posted (a repost after
//! a crash is deduplicated by Discord), then its message id, so a restart edits the same card.
//! A card whose conference ended and got its final edit is `final`; it is kept a while for the
//! operator and pruned with the sent batches.

use rusqlite::{Connection, OptionalExtension, Row, params};

/// One conference's card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardRow {
    pub conference_id: String,
    pub channel_id: String,
    /// The nonce of the card's creation (and of its reposts: the same card).
    pub nonce: String,
    /// The card's message, once Discord created it.
    pub message_id: Option<String>,
    /// The conference ended and the card shows its final record.
    pub finished: bool,
}

const COLUMNS: &str = "conference_id, channel_id, nonce, message_id, state";

fn card(row: &Row<'_>) -> rusqlite::Result<CardRow> {
    Ok(CardRow {
        conference_id: row.get(0)?,
        channel_id: row.get(1)?,
        nonce: row.get(2)?,
        message_id: row.get(3)?,
        finished: row.get::<_, String>(4)? == "final",
    })
}

/// Keeps a card as it is now (inserted, or replacing the conference's card).
pub(super) fn save(conn: &Connection, card: &CardRow, now_ms: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO roster_cards (conference_id, channel_id, nonce, message_id, state,
                                   updated_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (conference_id) DO UPDATE SET
             channel_id = excluded.channel_id, nonce = excluded.nonce,
             message_id = excluded.message_id, state = excluded.state,
             updated_at_ms = excluded.updated_at_ms",
    )?
    .execute(params![
        card.conference_id,
        card.channel_id,
        card.nonce,
        card.message_id,
        if card.finished { "final" } else { "live" },
        now_ms
    ])?;
    Ok(())
}

/// Forgets a conference's card (its message was deleted: a new one replaces it).
pub(super) fn forget(conn: &Connection, conference_id: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM roster_cards WHERE conference_id = ?1")?
        .execute(params![conference_id])?;
    Ok(())
}

/// The cards still following their conference (not final), in no particular order.
pub(super) fn live(conn: &Connection) -> rusqlite::Result<Vec<CardRow>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM roster_cards WHERE state = 'live'"
    ))?
    .query_map([], card)?
    .collect()
}

/// One conference's card, if it has one.
pub(super) fn get(conn: &Connection, conference_id: &str) -> rusqlite::Result<Option<CardRow>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM roster_cards WHERE conference_id = ?1"
    ))?
    .query_row(params![conference_id], card)
    .optional()
}

/// Deletes final cards last changed before `before_ms`; a live card is never pruned.
pub(super) fn prune(conn: &Connection, before_ms: i64) -> rusqlite::Result<u64> {
    let deleted = conn
        .prepare_cached("DELETE FROM roster_cards WHERE state = 'final' AND updated_at_ms < ?1")?
        .execute(params![before_ms])?;
    Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::CardRow;
    use crate::store::Store;

    fn card(conference: &str, message: Option<&str>, finished: bool) -> CardRow {
        CardRow {
            conference_id: conference.into(),
            channel_id: "100".into(),
            nonce: format!("card-{conference}"),
            message_id: message.map(str::to_owned),
            finished,
        }
    }

    #[tokio::test]
    async fn a_card_keeps_its_message_across_a_restart_until_it_is_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ringside.db");
        let store = Store::open(&path).unwrap();
        store.save_card(card("s-1", None, false)).await.unwrap();
        store
            .save_card(card("s-1", Some("9001"), false))
            .await
            .unwrap();
        store
            .save_card(card("s-2", Some("9002"), true))
            .await
            .unwrap();
        store.close().await.unwrap();

        let store = Store::open(&path).unwrap();
        assert_eq!(
            store.live_cards().await.unwrap(),
            vec![card("s-1", Some("9001"), false)],
            "the live card comes back with its message; the final one is not followed"
        );
        assert_eq!(
            store.card("s-2").await.unwrap(),
            Some(card("s-2", Some("9002"), true))
        );
        store.forget_card("s-1").await.unwrap();
        assert_eq!(store.card("s-1").await.unwrap(), None);
        assert_eq!(store.prune(i64::MAX).await.unwrap(), 1, "the final card");
        assert_eq!(store.card("s-2").await.unwrap(), None);
    }
}
