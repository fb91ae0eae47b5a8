//! Transactional outbox: jobs written in the same transaction as the state change that causes
//! them, then relayed to the Redis queues by the maintenance worker.
//!
//! Writing side (inside the caller's transaction): [`enqueue`] and [`enqueue_order_fulfilment`].
//! Jobs are [`JobSpec`]s, the contract the workers read; the `dedup_key` unique index makes
//! writing a job twice a no-op. Both send a `NOTIFY` on [`NOTIFY_CHANNEL`] (delivered only if
//! the transaction commits) so an idle relay wakes up at once instead of at its next tick.
//!
//! Relay side: [`claim_batch`] locks a batch of unrelayed rows with `FOR UPDATE SKIP LOCKED`,
//! so two relays never push the same row; the caller pushes them to Redis and then calls
//! [`ClaimedBatch::finish`], which marks the pushed rows relayed and counts a failed attempt on
//! the others in the same transaction. If the relay dies before `finish`, the transaction rolls
//! back and the rows are claimed again: a row may be pushed twice, never lost. Consumers are
//! idempotent, so that is harmless.

use pique_core::jobs::{JobSpec, Queue};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::StoreError;

/// The `LISTEN`/`NOTIFY` channel that wakes the relay when a job is written.
pub const NOTIFY_CHANNEL: &str = "pique_outbox";

/// The columns of `jobs`, for one `UNNEST` insert.
struct Columns {
    queues: Vec<Queue>,
    kinds: Vec<&'static str>,
    payloads: Vec<serde_json::Value>,
    keys: Vec<String>,
}

fn columns(jobs: &[JobSpec]) -> Columns {
    Columns {
        queues: jobs.iter().map(JobSpec::queue).collect(),
        kinds: jobs.iter().map(JobSpec::kind).collect(),
        payloads: jobs.iter().map(JobSpec::payload).collect(),
        keys: jobs.iter().map(JobSpec::dedup_key).collect(),
    }
}

/// Writes `jobs`, skipping those whose dedup key is already there. Call it inside the
/// transaction that makes them necessary.
pub async fn enqueue(conn: &mut PgConnection, jobs: &[JobSpec]) -> Result<(), StoreError> {
    if jobs.is_empty() {
        return Ok(());
    }
    let c = columns(jobs);
    sqlx::query!(
        "INSERT INTO outbox (queue, kind, payload, dedup_key) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::jsonb[], $4::text[]) \
         ON CONFLICT (dedup_key) DO NOTHING",
        &c.queues as &[Queue],
        &c.kinds as &[&str],
        &c.payloads,
        &c.keys,
    )
    .execute(&mut *conn)
    .await?;
    notify(conn, jobs[0].queue()).await
}

/// Writes the fulfilment jobs of paid order `order_id` for its attendees: one PDF per
/// attendee and the confirmation email (see [`JobSpec::fulfilment`]).
pub async fn enqueue_order_fulfilment(
    conn: &mut PgConnection,
    order_id: i64,
) -> Result<(), StoreError> {
    let attendees: Vec<Uuid> = sqlx::query_scalar!(
        "SELECT uuid FROM attendees WHERE order_id = $1 ORDER BY order_line_id, seq",
        order_id
    )
    .fetch_all(&mut *conn)
    .await?;
    enqueue(conn, &JobSpec::fulfilment(order_id, &attendees)).await
}

/// Re-arms jobs for the reconciler: inserts the missing ones, and marks existing rows
/// unrelayed again if they were relayed more than `older_than` ago (a job relayed recently
/// is probably still queued or running, so it is left alone). Returns how many rows were
/// written.
pub async fn rearm(
    conn: &mut PgConnection,
    jobs: &[JobSpec],
    older_than: std::time::Duration,
) -> Result<u64, StoreError> {
    if jobs.is_empty() {
        return Ok(0);
    }
    let c = columns(jobs);
    let done = sqlx::query!(
        "INSERT INTO outbox (queue, kind, payload, dedup_key) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::jsonb[], $4::text[]) \
         ON CONFLICT (dedup_key) DO UPDATE SET relayed_at = NULL \
         WHERE outbox.relayed_at IS NOT NULL \
           AND outbox.relayed_at < now() - make_interval(secs => $5)",
        &c.queues as &[Queue],
        &c.kinds as &[&str],
        &c.payloads,
        &c.keys,
        older_than.as_secs_f64(),
    )
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() > 0 {
        notify(conn, jobs[0].queue()).await?;
    }
    Ok(done.rows_affected())
}

/// The dedup keys among `keys` that have no outbox row.
pub async fn missing_keys(pool: &PgPool, keys: &[String]) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT k AS "key!" FROM UNNEST($1::text[]) AS k
            WHERE NOT EXISTS (SELECT 1 FROM outbox x WHERE x.dedup_key = k)"#,
        keys
    )
    .fetch_all(pool)
    .await?)
}

/// Sends the wake-up notification; Postgres delivers it only when the transaction commits.
async fn notify(conn: &mut PgConnection, queue: Queue) -> Result<(), StoreError> {
    sqlx::query_scalar!(
        "SELECT 1 AS notified FROM pg_notify($1, $2)",
        NOTIFY_CHANNEL,
        queue.as_str()
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(())
}

/// An outbox row waiting to be relayed.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    /// Row id.
    pub id: i64,
    /// Target queue.
    pub queue: Queue,
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
    let rows = sqlx::query_as!(
        OutboxRow,
        r#"SELECT id, queue AS "queue: Queue", kind, payload, dedup_key, attempts, created_at
             FROM outbox WHERE relayed_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED"#,
        limit
    )
    .fetch_all(&mut *tx)
    .await?;
    Ok(ClaimedBatch { tx, rows })
}

impl ClaimedBatch {
    /// Marks `relayed` ids as relayed and counts one failed attempt on `failed` ids, then
    /// commits, releasing the locks.
    pub async fn finish(mut self, relayed: &[i64], failed: &[i64]) -> Result<(), StoreError> {
        if !relayed.is_empty() {
            sqlx::query!(
                "UPDATE outbox SET relayed_at = now() WHERE id = ANY($1)",
                relayed
            )
            .execute(&mut *self.tx)
            .await?;
        }
        if !failed.is_empty() {
            sqlx::query!(
                "UPDATE outbox SET attempts = attempts + 1 WHERE id = ANY($1)",
                failed
            )
            .execute(&mut *self.tx)
            .await?;
        }
        self.tx.commit().await?;
        Ok(())
    }
}

/// Number of rows not yet relayed (a gauge: a growing value means Redis or the relay is down).
pub async fn pending_count(pool: &PgPool) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM outbox WHERE relayed_at IS NULL"#)
            .fetch_one(pool)
            .await?,
    )
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
