//! Transactional outbox: jobs written in the same transaction as the state change that causes
//! them, then relayed to the Redis queues by the maintenance worker.
//!
//! Writing side (checkout code, inside its transaction): [`enqueue`] and
//! [`enqueue_order_fulfilment`]. Both are idempotent through the `dedup_key` unique index, and
//! both send a `NOTIFY` on [`NOTIFY_CHANNEL`] (delivered only if the transaction commits) so an
//! idle relay wakes up at once instead of at its next tick.
//!
//! Relay side: [`claim_batch`] locks a batch of unrelayed rows with `FOR UPDATE SKIP LOCKED`,
//! so two relays never push the same row; the caller pushes them to Redis and then calls
//! [`ClaimedBatch::finish`], which marks the pushed rows relayed and counts a failed attempt on
//! the others in the same transaction. If the relay dies before `finish`, the transaction rolls
//! back and the rows are claimed again: a row may be pushed twice, never lost. Consumers are
//! idempotent (DESIGN section 9), so that is harmless.

use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use crate::StoreError;

/// Queue names, as checked by the `outbox.queue` constraint.
pub mod queues {
    /// PDF tickets.
    pub const PDF: &str = "pdf";
    /// Confirmation emails.
    pub const EMAIL: &str = "email";
    /// The `queue` checkout strategy's requests.
    pub const CHECKOUT: &str = "checkout";
    /// Periodic housekeeping.
    pub const MAINTENANCE: &str = "maintenance";
    /// Every queue, in a stable order.
    pub const ALL: [&str; 4] = [PDF, EMAIL, CHECKOUT, MAINTENANCE];
}

/// Job kinds written by this module.
pub mod kinds {
    /// `pdf` queue: render one attendee's ticket. Payload: [`super::RenderTicket`].
    pub const RENDER_TICKET: &str = "render_ticket";
    /// `email` queue: send an order's confirmation. Payload: [`super::OrderConfirmation`].
    pub const ORDER_CONFIRMATION: &str = "order_confirmation";
}

/// The `LISTEN`/`NOTIFY` channel that wakes the relay when a job is written.
pub const NOTIFY_CHANNEL: &str = "pique_outbox";

/// A job to write to the outbox.
#[derive(Debug, Clone)]
pub struct OutboxJob {
    /// One of [`queues::ALL`].
    pub queue: &'static str,
    /// What the consumer should do, e.g. [`kinds::RENDER_TICKET`].
    pub kind: &'static str,
    /// The job's arguments.
    pub payload: serde_json::Value,
    /// Writing a second job with the same key is a no-op.
    pub dedup_key: String,
}

/// Payload of a `pdf`/`render_ticket` job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderTicket {
    /// The attendee whose ticket to render.
    pub attendee_uuid: uuid::Uuid,
    /// Its order.
    pub order_id: i64,
}

/// Payload of an `email`/`order_confirmation` job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderConfirmation {
    /// The paid order.
    pub order_id: i64,
}

/// The dedup key of an attendee's PDF job.
pub fn pdf_dedup_key(attendee_uuid: uuid::Uuid) -> String {
    format!("pdf:{attendee_uuid}")
}

/// The dedup key of an order's email of `template`.
pub fn email_dedup_key(template: &str, order_id: i64) -> String {
    format!("email:{template}:{order_id}")
}

/// Inserts the job unless one with the same `dedup_key` exists (`ON CONFLICT DO NOTHING`).
///
/// Call it inside the transaction that makes the job necessary.
pub async fn enqueue(conn: &mut PgConnection, job: &OutboxJob) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO outbox (queue, kind, payload, dedup_key) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (dedup_key) DO NOTHING",
    )
    .bind(job.queue)
    .bind(job.kind)
    .bind(&job.payload)
    .bind(&job.dedup_key)
    .execute(&mut *conn)
    .await?;
    notify(conn, job.queue).await
}

/// Writes the fulfilment jobs of a just-paid order: one `pdf`/`render_ticket` job per attendee
/// (dedup `pdf:{attendee_uuid}`) and one `email`/`order_confirmation` job (dedup
/// `email:order_confirmation:{order_id}`).
///
/// Call it after the order's attendees are inserted, in the same transaction.
pub async fn enqueue_order_fulfilment(
    conn: &mut PgConnection,
    order_id: i64,
) -> Result<(), StoreError> {
    // One statement for all rows: the payment transaction stays short.
    sqlx::query(
        "INSERT INTO outbox (queue, kind, payload, dedup_key) \
         SELECT 'pdf', 'render_ticket', \
                jsonb_build_object('attendee_uuid', a.uuid, 'order_id', a.order_id), \
                'pdf:' || a.uuid::text \
           FROM attendees a WHERE a.order_id = $1 \
         UNION ALL \
         SELECT 'email', 'order_confirmation', jsonb_build_object('order_id', $1::bigint), \
                'email:order_confirmation:' || $1::text \
         ON CONFLICT (dedup_key) DO NOTHING",
    )
    .bind(order_id)
    .execute(&mut *conn)
    .await?;
    notify(conn, queues::PDF).await
}

/// Sends the wake-up notification; Postgres delivers it only when the transaction commits.
async fn notify(conn: &mut PgConnection, queue: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(NOTIFY_CHANNEL)
        .bind(queue)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// An outbox row waiting to be relayed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    /// Row id.
    pub id: i64,
    /// Target queue.
    pub queue: String,
    /// Job kind.
    pub kind: String,
    /// Job arguments.
    pub payload: serde_json::Value,
    /// Idempotency key.
    pub dedup_key: String,
    /// Failed relay attempts so far.
    pub attempts: i32,
    /// When the job was written.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Rows locked by one relay until [`ClaimedBatch::finish`] (or drop, which releases them).
pub struct ClaimedBatch {
    tx: Transaction<'static, Postgres>,
    /// The claimed rows, oldest first.
    pub rows: Vec<OutboxRow>,
}

/// Claims up to `limit` unrelayed rows, oldest first, skipping rows another relay holds.
pub async fn claim_batch(pool: &PgPool, limit: i64) -> Result<ClaimedBatch, StoreError> {
    let mut tx = pool.begin().await?;
    let rows = sqlx::query_as::<_, OutboxRow>(
        "SELECT id, queue, kind, payload, dedup_key, attempts, created_at FROM outbox \
         WHERE relayed_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    Ok(ClaimedBatch { tx, rows })
}

impl ClaimedBatch {
    /// Marks `relayed` ids as relayed and counts one failed attempt on `failed` ids, then
    /// commits, releasing the locks.
    pub async fn finish(mut self, relayed: &[i64], failed: &[i64]) -> Result<(), StoreError> {
        if !relayed.is_empty() {
            sqlx::query("UPDATE outbox SET relayed_at = now() WHERE id = ANY($1)")
                .bind(relayed)
                .execute(&mut *self.tx)
                .await?;
        }
        if !failed.is_empty() {
            sqlx::query("UPDATE outbox SET attempts = attempts + 1 WHERE id = ANY($1)")
                .bind(failed)
                .execute(&mut *self.tx)
                .await?;
        }
        self.tx.commit().await?;
        Ok(())
    }
}

/// Number of rows not yet relayed (a gauge: a growing value means Redis or the relay is down).
pub async fn pending_count(pool: &PgPool) -> Result<i64, StoreError> {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE relayed_at IS NULL")
        .fetch_one(pool)
        .await?;
    Ok(n)
}

/// Re-arms a job for the reconciler: inserts it if missing, or marks an existing row
/// unrelayed again if it was relayed more than `older_than` ago (a job relayed recently is
/// probably still queued or running, so it is left alone). Returns whether a row was written.
pub async fn rearm(
    conn: &mut PgConnection,
    job: &OutboxJob,
    older_than: std::time::Duration,
) -> Result<bool, StoreError> {
    let secs = older_than.as_secs_f64();
    let done = sqlx::query(
        "INSERT INTO outbox (queue, kind, payload, dedup_key) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (dedup_key) DO UPDATE SET relayed_at = NULL \
         WHERE outbox.relayed_at IS NOT NULL \
           AND outbox.relayed_at < now() - make_interval(secs => $5)",
    )
    .bind(job.queue)
    .bind(job.kind)
    .bind(&job.payload)
    .bind(&job.dedup_key)
    .bind(secs)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() > 0 {
        notify(conn, job.queue).await?;
    }
    Ok(done.rows_affected() > 0)
}

/// A `LISTEN` on [`NOTIFY_CHANNEL`]: lets the relay sleep until a job is written.
pub struct OutboxListener(sqlx::postgres::PgListener);

impl OutboxListener {
    /// Opens a dedicated connection and starts listening.
    pub async fn connect(pool: &PgPool) -> Result<Self, StoreError> {
        let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
        listener.listen(NOTIFY_CHANNEL).await?;
        Ok(Self(listener))
    }

    /// Waits for the next notification (reconnecting transparently if the connection drops).
    pub async fn recv(&mut self) -> Result<(), StoreError> {
        self.0.recv().await?;
        Ok(())
    }
}
