//! The announcer's messages to Discord ("batches"): one row per message, committed with its
//! body and nonce (and the outbox rows it carries) **before** it is posted, so a message resent
//! after a crash is the same message and Discord's `enforce_nonce` drops the copy.
//!
//! A batch ends `sent` (with Discord's message id) or `parked` (Discord refused it for good; the
//! error is kept for the operator); either way its outbox rows are marked delivered in the same
//! transaction, so they are not announced again at restart. Outbox rows linked to a pending batch
//! are left out of [`super::Store::undelivered`]: the batch carries them.
//!
//! An operator may ask for a parked batch to be sent again (`ringside parked resend`, from
//! another process on the same file): [`request_resend`] marks it, and the running announcer
//! [`take_resends`] it back to `pending` — same nonce, body and files, since the refused message
//! was never created — so from there it is delivered, and survives a crash, like any pending
//! batch. A pending batch that still has the error it was parked with is such a resend
//! ([`Batch::is_resend`]).
//!
//! Also here: which Discord thread each conference is announced in (thread mode), so a restart
//! keeps posting in the same thread.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::outbox;

/// Where a batch is posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchTarget {
    /// The channel (`channel_id`).
    Channel,
    /// The channel; then a thread for `conference_id` is created from the message.
    ThreadStart,
    /// The thread of `conference_id` if it has one, else the channel.
    Thread,
}

impl BatchTarget {
    pub fn as_str(self) -> &'static str {
        match self {
            BatchTarget::Channel => "channel",
            BatchTarget::ThreadStart => "thread_start",
            BatchTarget::Thread => "thread",
        }
    }

    fn parse(value: &str) -> BatchTarget {
        match value {
            "thread_start" => BatchTarget::ThreadStart,
            "thread" => BatchTarget::Thread,
            _ => BatchTarget::Channel,
        }
    }
}

/// How far a batch got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchState {
    Pending,
    Sent,
    Parked,
}

impl BatchState {
    fn parse(value: &str) -> BatchState {
        match value {
            "sent" => BatchState::Sent,
            "parked" => BatchState::Parked,
            _ => BatchState::Pending,
        }
    }
}

/// A message to commit before posting it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBatch {
    /// Unique per batch, at most 25 characters (Discord's limit); it is also inside `body`.
    pub nonce: String,
    pub channel_id: String,
    pub conference_id: Option<String>,
    pub target: BatchTarget,
    /// The name of the thread to create ([`BatchTarget::ThreadStart`]).
    pub thread_name: Option<String>,
    /// The JSON body of `POST /channels/{id}/messages`.
    pub body: String,
    /// The outbox rows this message announces.
    pub outbox_ids: Vec<i64>,
    /// Files uploaded with it (`files[n]` in order; the body's `attachments` names them).
    pub files: Vec<BatchFile>,
}

/// A file uploaded with a message: the timeline picture of an end summary.
#[derive(Clone, PartialEq, Eq)]
pub struct BatchFile {
    pub filename: String,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for BatchFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchFile")
            .field("filename", &self.filename)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// A kept message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub id: i64,
    pub nonce: String,
    pub channel_id: String,
    pub conference_id: Option<String>,
    pub target: BatchTarget,
    pub thread_name: Option<String>,
    pub body: String,
    pub created_at_ms: i64,
    pub state: BatchState,
    pub message_id: Option<String>,
    pub error: Option<String>,
    /// When it was sent or parked (`None` while pending).
    pub done_at_ms: Option<i64>,
    /// When an operator asked for this parked batch to be sent again, until the announcer takes
    /// it.
    pub resend_requested_at_ms: Option<i64>,
    pub files: Vec<BatchFile>,
}

impl Batch {
    /// Whether this pending batch is a parked one being sent again: it keeps the error it was
    /// parked with until it is sent (which clears it) or parked again (which replaces it).
    pub fn is_resend(&self) -> bool {
        self.state == BatchState::Pending && self.error.is_some()
    }
}

/// What [`request_resend`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResendRequest {
    /// The parked batch is now marked for the announcer.
    Requested,
    /// It was already marked (at `at_ms`); nothing changed.
    AlreadyRequested { at_ms: i64 },
    /// No batch has this id (never, or pruned).
    Unknown,
    /// The batch is not parked (sent, or pending: perhaps being sent again already).
    NotParked(BatchState),
}

const COLUMNS: &str = "id, nonce, channel_id, conference_id, target, thread_name, body, \
                       created_at_ms, state, message_id, error, done_at_ms, \
                       resend_requested_at_ms";

fn batch(row: &Row<'_>) -> rusqlite::Result<Batch> {
    Ok(Batch {
        id: row.get(0)?,
        nonce: row.get(1)?,
        channel_id: row.get(2)?,
        conference_id: row.get(3)?,
        target: BatchTarget::parse(&row.get::<_, String>(4)?),
        thread_name: row.get(5)?,
        body: row.get(6)?,
        created_at_ms: row.get(7)?,
        state: BatchState::parse(&row.get::<_, String>(8)?),
        message_id: row.get(9)?,
        error: row.get(10)?,
        done_at_ms: row.get(11)?,
        resend_requested_at_ms: row.get(12)?,
        files: Vec::new(),
    })
}

/// Loads each batch's files (few batches carry any).
fn with_files(conn: &Connection, mut batches: Vec<Batch>) -> rusqlite::Result<Vec<Batch>> {
    let mut select = conn.prepare_cached(
        "SELECT filename, bytes FROM batch_files WHERE batch_id = ?1 ORDER BY position",
    )?;
    for batch in &mut batches {
        batch.files = select
            .query_map(params![batch.id], |r| {
                Ok(BatchFile {
                    filename: r.get(0)?,
                    bytes: r.get(1)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
    }
    Ok(batches)
}

/// Inserts the batches in order with their links; answers them as kept.
pub(super) fn create(
    conn: &Connection,
    batches: &[NewBatch],
    now_ms: i64,
) -> rusqlite::Result<Vec<Batch>> {
    let mut insert = conn.prepare_cached(&format!(
        "INSERT INTO batches (nonce, channel_id, conference_id, target, thread_name, body,
                              created_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING {COLUMNS}"
    ))?;
    let mut link = conn.prepare_cached(
        "INSERT INTO batch_rows (batch_id, outbox_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
    )?;
    let mut file = conn.prepare_cached(
        "INSERT INTO batch_files (batch_id, position, filename, bytes) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut created = Vec::with_capacity(batches.len());
    for new in batches {
        let kept = insert.query_row(
            params![
                new.nonce,
                new.channel_id,
                new.conference_id,
                new.target.as_str(),
                new.thread_name,
                new.body,
                now_ms
            ],
            batch,
        )?;
        for outbox_id in &new.outbox_ids {
            link.execute(params![kept.id, outbox_id])?;
        }
        let mut kept = kept;
        for (position, attached) in new.files.iter().enumerate() {
            let position = i64::try_from(position).unwrap_or(i64::MAX);
            file.execute(params![
                kept.id,
                position,
                attached.filename,
                attached.bytes
            ])?;
        }
        kept.files = new.files.clone();
        created.push(kept);
    }
    Ok(created)
}

fn linked_rows(conn: &Connection, id: i64) -> rusqlite::Result<Vec<i64>> {
    conn.prepare_cached("SELECT outbox_id FROM batch_rows WHERE batch_id = ?1")?
        .query_map(params![id], |r| r.get(0))?
        .collect()
}

/// Marks a pending batch done (sent or parked) and its outbox rows delivered. Answers whether the
/// batch was pending.
pub(super) fn finish(
    conn: &Connection,
    id: i64,
    state: BatchState,
    message_id: Option<&str>,
    error: Option<&str>,
    now_ms: i64,
) -> rusqlite::Result<bool> {
    let state = match state {
        BatchState::Sent => "sent",
        BatchState::Parked => "parked",
        BatchState::Pending => return Ok(false),
    };
    let changed = conn
        .prepare_cached(
            "UPDATE batches SET state = ?2, message_id = ?3, error = ?4, done_at_ms = ?5
             WHERE id = ?1 AND state = 'pending'",
        )?
        .execute(params![id, state, message_id, error, now_ms])?;
    let rows = linked_rows(conn, id)?;
    outbox::mark_delivered(conn, &rows, now_ms)?;
    Ok(changed > 0)
}

/// Pending batches, oldest first.
pub(super) fn pending(conn: &Connection) -> rusqlite::Result<Vec<Batch>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM batches WHERE state = 'pending' ORDER BY id"
    ))?
    .query_map([], batch)?
    .collect::<rusqlite::Result<_>>()
    .and_then(|batches| with_files(conn, batches))
}

/// At most `limit` parked batches, newest first, with their files.
pub(super) fn parked(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<Batch>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM batches WHERE state = 'parked' ORDER BY id DESC LIMIT ?1"
    ))?
    .query_map(params![limit], batch)?
    .collect::<rusqlite::Result<_>>()
    .and_then(|batches| with_files(conn, batches))
}

/// How many batches are parked now.
pub(super) fn parked_count(conn: &Connection) -> rusqlite::Result<u64> {
    conn.prepare_cached("SELECT COUNT(*) FROM batches WHERE state = 'parked'")?
        .query_row([], |r| r.get::<_, i64>(0))
        .map(|count| u64::try_from(count).unwrap_or(0))
}

/// Marks parked batch `id` to be sent again; anything else is answered and left as it is.
pub(super) fn request_resend(
    conn: &Connection,
    id: i64,
    now_ms: i64,
) -> rusqlite::Result<ResendRequest> {
    let found = conn
        .prepare_cached("SELECT state, resend_requested_at_ms FROM batches WHERE id = ?1")?
        .query_row(params![id], |r| {
            Ok((
                BatchState::parse(&r.get::<_, String>(0)?),
                r.get::<_, Option<i64>>(1)?,
            ))
        })
        .optional()?;
    match found {
        None => Ok(ResendRequest::Unknown),
        Some((BatchState::Parked, Some(at_ms))) => Ok(ResendRequest::AlreadyRequested { at_ms }),
        Some((BatchState::Parked, None)) => {
            conn.prepare_cached(
                "UPDATE batches SET resend_requested_at_ms = ?2 WHERE id = ?1 AND state = 'parked'",
            )?
            .execute(params![id, now_ms])?;
            Ok(ResendRequest::Requested)
        }
        Some((state, _)) => Ok(ResendRequest::NotParked(state)),
    }
}

/// The parked batches an operator asked to send again, oldest first (the announcer's poll: a
/// read on the partial index, so an idle ringside writes nothing).
pub(super) fn resend_requested(conn: &Connection) -> rusqlite::Result<Vec<i64>> {
    conn.prepare_cached(
        "SELECT id FROM batches
         WHERE resend_requested_at_ms IS NOT NULL AND state = 'parked' ORDER BY id",
    )?
    .query_map([], |r| r.get(0))?
    .collect()
}

/// Takes the requested batches among `ids` back to `pending` (still carrying their error, see
/// [`Batch::is_resend`]) and answers them with their files, in order; one already taken is left
/// out.
pub(super) fn take_resends(conn: &Connection, ids: &[i64]) -> rusqlite::Result<Vec<Batch>> {
    let mut take = conn.prepare_cached(&format!(
        "UPDATE batches SET state = 'pending', resend_requested_at_ms = NULL, done_at_ms = NULL
         WHERE id = ?1 AND state = 'parked' AND resend_requested_at_ms IS NOT NULL
         RETURNING {COLUMNS}"
    ))?;
    let mut taken = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(found) = take.query_row(params![id], batch).optional()? {
            taken.push(found);
        }
    }
    with_files(conn, taken)
}

/// One batch by id.
pub(super) fn get(conn: &Connection, id: i64) -> rusqlite::Result<Option<Batch>> {
    let found = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM batches WHERE id = ?1"))?
        .query_row(params![id], batch)
        .optional()?;
    Ok(with_files(conn, found.into_iter().collect())?.pop())
}

/// The thread a conference is announced in, if any.
pub(super) fn thread(conn: &Connection, conference_id: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT thread_id FROM conference_threads WHERE conference_id = ?1")?
        .query_row(params![conference_id], |r| r.get(0))
        .optional()
}

pub(super) fn set_thread(
    conn: &Connection,
    conference_id: &str,
    thread_id: &str,
    now_ms: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO conference_threads (conference_id, thread_id, created_at_ms)
         VALUES (?1, ?2, ?3)
         ON CONFLICT (conference_id) DO UPDATE SET thread_id = excluded.thread_id",
    )?
    .execute(params![conference_id, thread_id, now_ms])?;
    Ok(())
}

/// Deletes sent and parked batches finished before `before_ms` (with their links) and threads
/// recorded before it; never a pending batch, nor one an operator asked to send again.
pub(super) fn prune(conn: &Connection, before_ms: i64) -> rusqlite::Result<u64> {
    let batches = conn
        .prepare_cached(
            "DELETE FROM batches
             WHERE state <> 'pending' AND done_at_ms < ?1 AND resend_requested_at_ms IS NULL",
        )?
        .execute(params![before_ms])?;
    let threads = conn
        .prepare_cached("DELETE FROM conference_threads WHERE created_at_ms < ?1")?
        .execute(params![before_ms])?;
    Ok(u64::try_from(batches.saturating_add(threads)).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::{BatchFile, BatchState, BatchTarget, NewBatch, ResendRequest};
    use crate::store::NewOutboxRow;
    use crate::store::test_support::open_temp;

    fn event(event_id: &str) -> NewOutboxRow {
        NewOutboxRow {
            event_id: event_id.into(),
            conference_id: "s-conf".into(),
            received_at_ms: 10,
            event: "{}".into(),
        }
    }

    fn new(nonce: &str, outbox_ids: Vec<i64>) -> NewBatch {
        NewBatch {
            nonce: nonce.into(),
            channel_id: "100".into(),
            conference_id: Some("s-conf".into()),
            target: BatchTarget::Channel,
            thread_name: None,
            body: format!("{{\"nonce\":\"{nonce}\"}}"),
            outbox_ids,
            files: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_batch_holds_its_rows_until_sent_and_then_delivers_them() {
        let (_dir, store) = open_temp();
        let ids: Vec<i64> = store
            .commit_processed(vec![], vec![], vec![event("a"), event("b"), event("c")])
            .await
            .unwrap()
            .into_iter()
            .flatten()
            .collect();
        let created = store
            .create_batches(vec![new("n-1", vec![ids[0], ids[1]])])
            .await
            .unwrap();
        assert_eq!(created.len(), 1);
        assert_eq!(created[0].state, BatchState::Pending);
        // The linked rows are the batch's now; the unlinked one is still an undelivered event.
        let undelivered = store.undelivered().await.unwrap();
        assert_eq!(undelivered.len(), 1);
        assert_eq!(undelivered[0].event_id, "c");
        assert_eq!(store.pending_batches().await.unwrap(), created);

        store
            .batch_sent(created[0].id, "9001".into())
            .await
            .unwrap();
        assert!(store.pending_batches().await.unwrap().is_empty());
        let sent = store.batch(created[0].id).await.unwrap().unwrap();
        assert_eq!(sent.state, BatchState::Sent);
        assert_eq!(sent.message_id.as_deref(), Some("9001"));
        assert!(sent.done_at_ms.is_some());
        // Its rows are delivered: pruning (everything before the far future) takes them.
        assert_eq!(store.undelivered().await.unwrap().len(), 1);
        assert_eq!(store.prune(i64::MAX).await.unwrap(), 3, "2 rows + 1 batch");
        assert!(store.batch(created[0].id).await.unwrap().is_none());
        assert_eq!(store.undelivered().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_parked_batch_is_reported_and_its_rows_do_not_come_back() {
        let (_dir, store) = open_temp();
        let ids: Vec<i64> = store
            .commit_processed(vec![], vec![], vec![event("a")])
            .await
            .unwrap()
            .into_iter()
            .flatten()
            .collect();
        let created = store
            .create_batches(vec![new("n-1", ids), new("n-2", vec![])])
            .await
            .unwrap();
        assert!(created[0].id < created[1].id);
        store
            .batch_parked(created[0].id, "403 Missing Access".into())
            .await
            .unwrap();
        assert!(store.undelivered().await.unwrap().is_empty());
        let pending = store.pending_batches().await.unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].nonce, "n-2");
        let parked = store.parked_batches(10).await.unwrap();
        assert_eq!(parked.len(), 1);
        assert_eq!(parked[0].error.as_deref(), Some("403 Missing Access"));
        // A pending batch is never pruned.
        store.prune(i64::MAX).await.unwrap();
        assert_eq!(store.pending_batches().await.unwrap().len(), 1);
        assert!(store.parked_batches(10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn nonces_are_unique_and_a_failed_create_keeps_nothing() {
        let (_dir, store) = open_temp();
        store
            .create_batches(vec![new("n-1", vec![])])
            .await
            .unwrap();
        assert!(
            store
                .create_batches(vec![new("n-2", vec![]), new("n-1", vec![])])
                .await
                .is_err()
        );
        let pending = store.pending_batches().await.unwrap();
        assert_eq!(pending.len(), 1);
    }

    fn parked_with_a_picture(nonce: &str) -> NewBatch {
        let mut batch = new(nonce, vec![]);
        batch.files = vec![BatchFile {
            filename: "timeline.png".into(),
            bytes: vec![1, 2, 3],
        }];
        batch
    }

    #[tokio::test]
    async fn a_resend_takes_a_parked_batch_back_to_pending_with_its_nonce_body_and_files() {
        let (_dir, store) = open_temp();
        let created = store
            .create_batches(vec![parked_with_a_picture("n-1")])
            .await
            .unwrap();
        let id = created[0].id;
        store
            .batch_parked(id, "403 Missing Access".into())
            .await
            .unwrap();
        assert_eq!(store.parked_count().await.unwrap(), 1);
        // Nothing asked yet: the announcer's poll takes nothing.
        assert!(store.take_resends().await.unwrap().is_empty());

        assert_eq!(
            store.request_resend(id).await.unwrap(),
            ResendRequest::Requested
        );
        let listed = store.parked_batches(10).await.unwrap();
        let requested_at = listed[0]
            .resend_requested_at_ms
            .expect("the request is shown");
        assert_eq!(listed[0].files, created[0].files);
        // Asking twice changes nothing.
        assert_eq!(
            store.request_resend(id).await.unwrap(),
            ResendRequest::AlreadyRequested {
                at_ms: requested_at
            }
        );

        let taken = store.take_resends().await.unwrap();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].nonce, "n-1");
        assert_eq!(taken[0].body, created[0].body);
        assert_eq!(taken[0].files, created[0].files);
        assert_eq!(taken[0].state, BatchState::Pending);
        assert!(taken[0].is_resend());
        assert_eq!(taken[0].resend_requested_at_ms, None);
        // It is pending now, like any batch a crash would leave: not parked, not taken twice.
        assert_eq!(store.parked_count().await.unwrap(), 0);
        assert!(store.parked_batches(10).await.unwrap().is_empty());
        assert!(store.take_resends().await.unwrap().is_empty());
        assert_eq!(store.pending_batches().await.unwrap(), taken);

        // Refused again: parked again with the new error, and it can be asked for again.
        store
            .batch_parked(id, "404 Unknown Channel".into())
            .await
            .unwrap();
        let parked = store.parked_batches(10).await.unwrap();
        assert_eq!(parked[0].error.as_deref(), Some("404 Unknown Channel"));
        assert!(parked[0].done_at_ms.is_some());
        assert_eq!(
            store.request_resend(id).await.unwrap(),
            ResendRequest::Requested
        );
        let taken = store.take_resends().await.unwrap();
        store.batch_sent(id, "9001".into()).await.unwrap();
        let sent = store.batch(id).await.unwrap().unwrap();
        assert_eq!(sent.state, BatchState::Sent);
        assert_eq!(sent.error, None);
        assert!(!sent.is_resend() && taken[0].is_resend());
    }

    #[tokio::test]
    async fn a_resend_of_an_unknown_a_pending_or_a_sent_batch_is_refused_and_changes_nothing() {
        let (_dir, store) = open_temp();
        let created = store
            .create_batches(vec![new("n-1", vec![]), new("n-2", vec![])])
            .await
            .unwrap();
        store
            .batch_sent(created[0].id, "9001".into())
            .await
            .unwrap();
        let before = [
            store.batch(created[0].id).await.unwrap(),
            store.batch(created[1].id).await.unwrap(),
        ];
        assert_eq!(
            store.request_resend(created[0].id).await.unwrap(),
            ResendRequest::NotParked(BatchState::Sent)
        );
        assert_eq!(
            store.request_resend(created[1].id).await.unwrap(),
            ResendRequest::NotParked(BatchState::Pending)
        );
        assert_eq!(
            store.request_resend(created[1].id + 100).await.unwrap(),
            ResendRequest::Unknown
        );
        let after = [
            store.batch(created[0].id).await.unwrap(),
            store.batch(created[1].id).await.unwrap(),
        ];
        assert_eq!(before, after);
        assert!(store.take_resends().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn polling_for_resends_with_none_asked_writes_nothing() {
        let (_dir, store) = open_temp();
        let created = store
            .create_batches(vec![new("n-1", vec![])])
            .await
            .unwrap();
        store
            .batch_parked(created[0].id, "403 Missing Access".into())
            .await
            .unwrap();
        let before = store.stats();
        for _ in 0..3 {
            assert!(store.take_resends().await.unwrap().is_empty());
        }
        assert_eq!(store.stats(), before);
    }

    #[tokio::test]
    async fn a_parked_batch_asked_for_again_is_not_pruned_before_it_is_taken() {
        let (_dir, store) = open_temp();
        let created = store
            .create_batches(vec![new("n-1", vec![]), new("n-2", vec![])])
            .await
            .unwrap();
        for kept in &created {
            store
                .batch_parked(kept.id, "403 Missing Access".into())
                .await
                .unwrap();
        }
        store.request_resend(created[1].id).await.unwrap();
        assert_eq!(store.prune(i64::MAX).await.unwrap(), 1);
        let left = store.parked_batches(10).await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].nonce, "n-2");
    }

    #[tokio::test]
    async fn a_conference_keeps_its_thread_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ringside.db");
        let store = crate::store::Store::open(&path).unwrap();
        assert_eq!(store.conference_thread("s-conf").await.unwrap(), None);
        store.set_conference_thread("s-conf", "555").await.unwrap();
        store.close().await.unwrap();
        let store = crate::store::Store::open(&path).unwrap();
        assert_eq!(
            store.conference_thread("s-conf").await.unwrap().as_deref(),
            Some("555")
        );
    }
}
