//! The worker process: one apalis worker per queue over apalis-redis, plus the maintenance
//! loops, with graceful shutdown.
//!
//! Delivery is at least once: a job is acknowledged after its handler returns. If a worker
//! dies mid-job, its in-flight jobs stay in its Redis in-flight set, and a live worker's
//! heartbeat hands them back to the queue once the dead worker has missed
//! `missed_heartbeats` beats. Handlers are idempotent, so the redo is harmless.
//!
//! Failures are retried here rather than by apalis: a failed job is pushed again as a new
//! task with `attempt + 1` and an exponential, jittered delay ([`crate::retry`]); when the
//! policy is exhausted (or the error is permanent) it goes to the dead-letter set. The
//! handler then returns success to apalis, so apalis' own fixed retry schedule never applies.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use apalis::prelude::{BackendExt, BoxDynError, Data, Monitor, WorkerBuilder, WorkerBuilderExt};
use pique_core::jobs::Queue;
use tokio::sync::watch;

use crate::{JobError, deadletter, handlers::Deps, job::Job, maintenance, metrics};

/// One queue to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    /// The queue.
    pub queue: Queue,
    /// Jobs run at once (Celery's default is 4).
    pub concurrency: usize,
}

/// What a worker process serves.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The queues; `maintenance` also starts the relay, sweeper and reconciler loops.
    pub queues: Vec<QueueSpec>,
    /// Worker name, unique among live workers (apalis tracks in-flight jobs by name).
    /// Reusing the name of a dead worker lets the new one take its jobs back at once.
    pub name: String,
}

impl WorkerOptions {
    /// All four queues with `concurrency` each.
    pub fn all(name: impl Into<String>, concurrency: usize) -> Self {
        WorkerOptions {
            queues: Queue::ALL
                .iter()
                .map(|&queue| QueueSpec { queue, concurrency })
                .collect(),
            name: name.into(),
        }
    }
}

/// A default worker name: host and process id.
pub fn default_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "worker".to_string());
    format!("{host}-{}", std::process::id())
}

/// Per-queue state handed to every job.
#[derive(Clone)]
struct QueueRuntime {
    deps: Deps,
    queue: Queue,
}

/// Runs the workers until `shutdown` completes, then stops taking jobs, lets in-flight jobs
/// finish (up to `shutdown_grace`; jobs still running after that are recovered by other
/// workers as orphans), returns prefetched jobs to their queue and stops the loops.
pub async fn run(
    deps: Deps,
    options: WorkerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), JobError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let maintenance = options
        .queues
        .iter()
        .any(|q| q.queue == Queue::Maintenance)
        .then(|| tokio::spawn(maintenance::run(deps.clone(), stop_rx)));

    let grace = deps.config.shutdown_grace;
    // The terminator's timer must start when shutdown begins, not now: an async block
    // does not run until polled, and the monitor polls it only after the signal.
    let mut monitor = Monitor::new()
        .with_terminator(async move { tokio::time::sleep(grace).await })
        // A worker whose Redis connection failed (Redis restarting, network blip) is rebuilt
        // rather than left dead; the rebuilt one waits a moment first (see `before_start`).
        .should_restart(|ctx, error| {
            tracing::warn!(worker = ctx.name(), error = %error, "worker failed; restarting");
            !ctx.is_shutting_down()
        });
    for spec in &options.queues {
        let runtime = QueueRuntime {
            deps: deps.clone(),
            queue: spec.queue,
        };
        let worker_name = format!("{}:{}", options.name, spec.queue);
        let concurrency = spec.concurrency.max(1);
        let builds = Arc::new(AtomicUsize::new(0));
        monitor = monitor.register(move |_index| {
            // The first build starts at once; a rebuild after a failure waits, so a Redis
            // outage is retried about once a second instead of in a tight loop.
            let restart = builds.fetch_add(1, Ordering::SeqCst) > 0;
            let storage = runtime
                .deps
                .queues
                .storage(runtime.queue, concurrency)
                .before_start(move |_| async move {
                    if restart {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    Ok(())
                })
                .poll_with_interval(runtime.deps.config.poll_interval);
            WorkerBuilder::new(worker_name.clone())
                .backend(storage)
                .concurrency(concurrency)
                .data(runtime.clone())
                .build(run_job)
        });
    }
    let signal = async move {
        shutdown.await;
        tracing::info!("shutdown requested: finishing in-flight jobs");
        let _ = stop_tx.send(true);
        Ok(())
    };
    let result = monitor.run_with_signal(signal).await;
    if let Some(task) = maintenance
        && let Err(e) = task.await
    {
        tracing::error!(error = %e, "maintenance loop panicked");
    }
    result.map_err(|e| JobError::Queue(e.to_string()))
}

/// The apalis handler shared by every queue: dispatch, then retry or dead-letter.
async fn run_job(job: Job, runtime: Data<QueueRuntime>) -> Result<(), BoxDynError> {
    let queue = runtime.queue;
    let deps = &runtime.deps;
    if let Some(due) = job.due_at_ms {
        let waited_ms = chrono::Utc::now().timestamp_millis().saturating_sub(due);
        metrics::queue_wait(queue, waited_ms.max(0) as f64 / 1000.0);
    }
    let started = Instant::now();
    let result = crate::handlers::dispatch(deps, queue, &job).await;
    let seconds = started.elapsed().as_secs_f64();
    let error = match result {
        Ok(()) => {
            metrics::done(queue, seconds);
            return Ok(());
        }
        Err(e) => e,
    };
    if let JobError::Busy { retry_after, .. } = &error {
        // Not a failure: the same attempt runs again once the holder's claim has expired.
        tracing::info!(%queue, kind = %job.kind, key = %job.dedup_key, ?retry_after, "job busy elsewhere; deferred");
        deps.queues
            .push_all(queue, std::slice::from_ref(&job), Some(*retry_after))
            .await?;
        histogram_only(queue, seconds);
        return Ok(());
    }
    let failed = job.attempt + 1;
    let policy = &deps.config.retry;
    if error.is_permanent() || policy.exhausted(failed) {
        tracing::error!(%queue, kind = %job.kind, key = %job.dedup_key, attempts = failed, error = %error, "job dead-lettered");
        let dead = Job {
            attempt: failed,
            last_error: Some(error.to_string()),
            ..job
        };
        // If Redis refuses even this, returning the error lets apalis keep the job.
        deadletter::add(&deps.queues, queue, &dead, &error.to_string()).await?;
        histogram_only(queue, seconds);
        return Ok(());
    }
    let delay = policy.delay(failed);
    tracing::warn!(%queue, kind = %job.kind, key = %job.dedup_key, attempt = failed, ?delay, error = %error, "job failed; retrying");
    let next = Job {
        attempt: failed,
        last_error: Some(error.to_string()),
        ..job
    };
    deps.queues
        .push_all(queue, std::slice::from_ref(&next), Some(delay))
        .await?;
    metrics::retried(queue, seconds);
    Ok(())
}

fn histogram_only(queue: Queue, seconds: f64) {
    ::metrics::histogram!(metrics::names::DURATION, "queue" => queue.as_str()).record(seconds);
}
