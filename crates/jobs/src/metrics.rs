//! The workers' Prometheus metrics and their `/metrics` endpoint.

use std::net::SocketAddr;

use ::metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use pique_core::jobs::Queue;

use crate::JobError;

/// Metric names, in one place for dashboards and the load generator's grader.
pub mod names {
    /// Counter, label `queue`: jobs pushed to Redis.
    pub const ENQUEUED: &str = "pique_jobs_enqueued_total";
    /// Counter, label `queue`: jobs that succeeded.
    pub const DONE: &str = "pique_jobs_done_total";
    /// Counter, label `queue`: failed attempts scheduled for a retry.
    pub const RETRIED: &str = "pique_jobs_retried_total";
    /// Counter, label `queue`: jobs moved to the dead-letter set.
    pub const DEAD: &str = "pique_jobs_dead_total";
    /// Histogram, label `queue`: time spent in a job handler.
    pub const DURATION: &str = "pique_job_duration_seconds";
    /// Histogram, label `queue`: from when a job was due (pushed, or its retry delay over) to
    /// when a worker started it (Celery's "queue processing time").
    pub const QUEUE_WAIT: &str = "pique_job_queue_wait_seconds";
    /// Gauge, label `queue`: jobs waiting (sampled by the maintenance loop).
    pub const DEPTH: &str = "pique_queue_depth";
    /// Gauge, label `queue`: dead-lettered jobs (sampled).
    pub const DEAD_LETTERS: &str = "pique_dead_letters";
    /// Gauge: outbox rows not yet relayed to Redis (sampled).
    pub const OUTBOX_PENDING: &str = "pique_outbox_pending";
    /// Counter: emails handed to the transport.
    pub const EMAILS_SENT: &str = "pique_emails_sent_total";
    /// Counter: PDF tickets generated.
    pub const PDFS: &str = "pique_pdfs_generated_total";
    /// Histogram: time to render one PDF ticket.
    pub const PDF_DURATION: &str = "pique_pdf_duration_seconds";
}

/// Counts `n` jobs pushed to `queue`.
pub fn enqueued(queue: Queue, n: u64) {
    counter!(names::ENQUEUED, "queue" => queue.as_str()).increment(n);
}

/// Counts a successful job and its duration.
pub fn done(queue: Queue, seconds: f64) {
    counter!(names::DONE, "queue" => queue.as_str()).increment(1);
    histogram!(names::DURATION, "queue" => queue.as_str()).record(seconds);
}

/// Records how long a job waited in `queue` before a worker started it.
pub fn queue_wait(queue: Queue, seconds: f64) {
    histogram!(names::QUEUE_WAIT, "queue" => queue.as_str()).record(seconds);
}

/// Counts a failed attempt that will be retried, and its duration.
pub fn retried(queue: Queue, seconds: f64) {
    counter!(names::RETRIED, "queue" => queue.as_str()).increment(1);
    histogram!(names::DURATION, "queue" => queue.as_str()).record(seconds);
}

/// Counts a dead-lettered job.
pub fn dead(queue: Queue) {
    counter!(names::DEAD, "queue" => queue.as_str()).increment(1);
}

/// Records the sampled depth and dead-letter count of `queue`.
pub fn depth(queue: Queue, waiting: u64, dead: u64) {
    gauge!(names::DEPTH, "queue" => queue.as_str()).set(waiting as f64);
    gauge!(names::DEAD_LETTERS, "queue" => queue.as_str()).set(dead as f64);
}

/// Records the sampled number of unrelayed outbox rows.
pub fn outbox_pending(n: i64) {
    gauge!(names::OUTBOX_PENDING).set(n as f64);
}

/// Counts a sent email.
pub fn email_sent() {
    counter!(names::EMAILS_SENT).increment(1);
}

/// Counts a generated PDF and its render time.
pub fn pdf_generated(seconds: f64) {
    counter!(names::PDFS).increment(1);
    histogram!(names::PDF_DURATION).record(seconds);
}

/// Installs the Prometheus recorder for this process, with histogram buckets suited to job
/// durations. Fails if another recorder is installed (e.g. the API's, in `pique demo`).
pub fn install_recorder() -> Result<PrometheusHandle, JobError> {
    const BUCKETS: &[f64] = &[
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ];
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_string()), BUCKETS)
        .map_err(|e| JobError::Metrics(e.to_string()))?
        .install_recorder()
        .map_err(|e| JobError::Metrics(e.to_string()))
}

/// The `/metrics` router.
pub fn router(handle: PrometheusHandle) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let handle = handle.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    handle.render(),
                )
            }
        }),
    )
}

/// Serves `/metrics` on `bind` until `shutdown` completes.
pub async fn serve(
    bind: SocketAddr,
    handle: PrometheusHandle,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), JobError> {
    let listener = tokio::net::TcpListener::bind(bind).await?;
    tracing::info!(%bind, "worker metrics listening");
    axum::serve(listener, router(handle))
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
