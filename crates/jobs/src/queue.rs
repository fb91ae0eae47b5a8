//! The Redis queues: names, storages for the workers, and pushing jobs.

use std::time::Duration;

use apalis::prelude::TaskBuilder;
use apalis_redis::{RedisStorage, RedisTask};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use pique_core::jobs::Queue;

use crate::{JobError, job::Job, metrics};

/// A handle on the queues of one namespace. Cheap to clone (one multiplexed connection).
#[derive(Clone)]
pub struct Queues {
    conn: ConnectionManager,
    namespace: String,
    heartbeat: Duration,
    missed_heartbeats: usize,
}

impl std::fmt::Debug for Queues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queues")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Queues {
    /// Opens a lazily connected handle: creating it succeeds even while Redis is down, and
    /// each command fails fast (about 2 s) until Redis answers again.
    pub fn open(redis_url: &str, namespace: &str) -> Result<Self, JobError> {
        let client = redis::Client::open(redis_url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = client.get_connection_manager_lazy(config)?;
        Ok(Queues {
            conn,
            namespace: namespace.to_string(),
            heartbeat: Duration::from_secs(5),
            missed_heartbeats: 6,
        })
    }

    /// Sets the worker liveness settings used by [`Queues::storage`].
    pub fn with_liveness(mut self, heartbeat: Duration, missed_heartbeats: usize) -> Self {
        self.heartbeat = heartbeat;
        self.missed_heartbeats = missed_heartbeats.max(1);
        self
    }

    /// The namespace (key prefix).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// A connection for other Redis commands.
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// The apalis queue name of `queue`: `{namespace}:{queue}`.
    pub fn key(&self, queue: Queue) -> String {
        format!("{}:{queue}", self.namespace)
    }

    /// The apalis-redis configuration of `queue`.
    pub fn redis_config(&self, queue: Queue) -> apalis_redis::Config {
        apalis_redis::Config::default()
            .queue(self.key(queue))
            .heartbeat_interval(self.heartbeat)
            .missed_heartbeats(self.missed_heartbeats)
            // Nobody subscribes to the task events; publishing them is wasted work.
            // (`persist_results` must stay on: it is also what acknowledges a task.)
            .emit_events(false)
    }

    /// A storage for a worker consuming `queue`, fetching `batch` jobs at a time.
    pub fn storage(&self, queue: Queue, batch: usize) -> RedisStorage<Job> {
        RedisStorage::new(self.conn.clone())
            .with_config(self.redis_config(queue).batch_size(batch.max(1)))
    }

    /// Pushes jobs to `queue`, to run after `delay` (rounded to seconds by apalis-redis).
    pub async fn push_all(
        &self,
        queue: Queue,
        jobs: &[Job],
        delay: Option<Duration>,
    ) -> Result<(), JobError> {
        if jobs.is_empty() {
            return Ok(());
        }
        let mut tasks: Vec<RedisTask> = Vec::with_capacity(jobs.len());
        for job in stamped(jobs, chrono::Utc::now().timestamp_millis(), delay) {
            // The storage's codec is JSON, so the compact form is the job's JSON bytes.
            let mut builder = TaskBuilder::new(serde_json::to_vec(&job)?);
            if let Some(delay) = delay {
                builder = builder.run_after(delay);
            }
            tasks.push(builder.build());
        }
        let mut conn = self.conn.clone();
        apalis_redis::queries::push_tasks(&mut conn, &self.redis_config(queue), &tasks)
            .await
            .map_err(|e| JobError::Queue(e.to_string()))?;
        metrics::enqueued(queue, jobs.len() as u64);
        Ok(())
    }

    /// Pushes one job to `queue`.
    pub async fn push(&self, queue: Queue, job: &Job) -> Result<(), JobError> {
        self.push_all(queue, std::slice::from_ref(job), None).await
    }

    /// Jobs waiting in `queue`: ready plus scheduled (retries), not counting running ones.
    pub async fn depth(&self, queue: Queue) -> Result<u64, JobError> {
        let config = self.redis_config(queue);
        let mut conn = self.conn.clone();
        let (active, scheduled): (u64, u64) = redis::pipe()
            .cmd("LLEN")
            .arg(config.active_jobs_list())
            .cmd("ZCARD")
            .arg(config.scheduled_jobs_set())
            .query_async(&mut conn)
            .await?;
        Ok(active + scheduled)
    }

    /// Deletes the stored data of finished tasks of `queue` (apalis-redis keeps the payload,
    /// a metadata hash and a `done` set entry of every task forever); returns how many.
    /// Tasks still queued, scheduled or running are kept, and so are `Failed` ones, which
    /// apalis-redis reschedules.
    pub async fn vacuum(&self, queue: Queue) -> Result<u64, JobError> {
        const SCRIPT: &str = r#"
            local deleted = 0
            local ids = redis.call("hkeys", KEYS[1])
            for _, id in ipairs(ids) do
              local meta = KEYS[2] .. ":" .. id
              local status = redis.call("hget", meta, "status")
              if status == "Done" or status == "Killed" then
                redis.call("hdel", KEYS[1], id)
                redis.call("del", meta)
                redis.call("srem", KEYS[3], id)
                deleted = deleted + 1
              end
            end
            return deleted
        "#;
        let config = self.redis_config(queue);
        let mut conn = self.conn.clone();
        let n: u64 = redis::Script::new(SCRIPT)
            .key(config.job_data_hash())
            .key(config.job_meta_hash())
            .key(config.done_jobs_set())
            .invoke_async(&mut conn)
            .await?;
        Ok(n)
    }

    /// Whether Redis answers.
    pub async fn ping(&self) -> bool {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .is_ok()
    }
}

/// `jobs` marked due at `now_ms` plus `delay`, so the worker can time their wait in the queue.
fn stamped(jobs: &[Job], now_ms: i64, delay: Option<Duration>) -> Vec<Job> {
    let due = now_ms
        .saturating_add(delay.map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)));
    jobs.iter()
        .map(|job| Job {
            due_at_ms: Some(due),
            ..job.clone()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushed_jobs_carry_when_they_are_due() {
        let job = Job::new("render_ticket", serde_json::json!({"id": 1}), "pdf:1");
        let now = stamped(std::slice::from_ref(&job), 1_000, None);
        assert_eq!(now[0].due_at_ms, Some(1_000));
        let later = stamped(&[job], 1_000, Some(Duration::from_secs(4)));
        assert_eq!(later[0].due_at_ms, Some(5_000));
        // Old payloads without the field still decode.
        let old: Job =
            serde_json::from_str(r#"{"kind":"k","payload":null,"dedup_key":"d"}"#).unwrap();
        assert_eq!(old.due_at_ms, None);
    }
}
