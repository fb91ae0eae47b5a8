//! A whole worker process: metrics endpoint plus the workers, until a shutdown signal.
//! (`pique worker` is a thin wrapper around [`run`].)

use std::net::SocketAddr;

use pique_core::jobs::Queue;
use pique_store::PgPool;
use tokio::sync::watch;

use crate::{JobError, JobsConfig, QueueSpec, WorkerOptions, handlers::Deps, metrics};

/// Parses `--queues` and `--concurrency`. `concurrency` is either one number for every queue
/// (`4`) or per-queue values (`pdf=8,email=2`, others keep `default`).
pub fn queue_specs(
    queues: &[String],
    concurrency: &str,
    default: usize,
) -> Result<Vec<QueueSpec>, JobError> {
    let mut all = default;
    let mut per_queue: Vec<(String, usize)> = Vec::new();
    for part in concurrency
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let bad = || JobError::Invalid(format!("--concurrency {part:?}: expected N or QUEUE=N"));
        match part.split_once('=') {
            Some((q, n)) => {
                per_queue.push((q.trim().to_string(), n.trim().parse().map_err(|_| bad())?))
            }
            None => all = part.parse().map_err(|_| bad())?,
        }
    }
    let mut specs = Vec::new();
    for name in queues.iter().map(|q| q.trim()).filter(|q| !q.is_empty()) {
        let queue: Queue = name.parse().map_err(|_| {
            JobError::Invalid(format!(
                "unknown queue {name:?} (expected pdf, email, checkout, maintenance)"
            ))
        })?;
        let n = per_queue
            .iter()
            .rev()
            .find(|(q, _)| q == name)
            .map(|(_, n)| *n)
            .unwrap_or(all);
        if n == 0 {
            return Err(JobError::Invalid(format!(
                "queue {name}: concurrency must be at least 1"
            )));
        }
        specs.push(QueueSpec {
            queue,
            concurrency: n,
        });
    }
    if specs.is_empty() {
        return Err(JobError::Invalid("no queue to serve".into()));
    }
    Ok(specs)
}

/// Runs the workers described by `options`, and `/metrics` on `metrics_bind` (if the
/// process has no metrics recorder yet), until `shutdown` completes. `checkout` must be on
/// `pool`: one pool per process.
pub async fn run(
    pool: PgPool,
    config: JobsConfig,
    checkout: pique_checkout::Checkout,
    options: WorkerOptions,
    metrics_bind: Option<SocketAddr>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), JobError> {
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let metrics_task = match (metrics_bind, metrics::install_recorder()) {
        (Some(bind), Ok(handle)) => {
            let mut rx = stop_rx.clone();
            let stopped = async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            Some(tokio::spawn(metrics::serve(bind, handle, stopped)))
        }
        (Some(_), Err(e)) => {
            tracing::warn!(error = %e, "metrics recorder already installed; not serving worker /metrics");
            None
        }
        (None, _) => None,
    };
    let deps = Deps::new(pool, config, checkout)?;
    tracing::info!(
        name = %options.name,
        queues = ?options.queues.iter().map(|q| format!("{}x{}", q.queue, q.concurrency)).collect::<Vec<_>>(),
        namespace = deps.queues.namespace(),
        "pique worker starting"
    );
    let signal = async move {
        tokio::select! {
            _ = shutdown => {}
            _ = stop_rx.wait_for(|s| *s) => {}
        }
    };
    let result = crate::worker::run(deps, options, signal).await;
    let _ = stop_tx.send(true);
    if let Some(task) = metrics_task {
        match task.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "metrics server failed"),
            Err(e) => tracing::warn!(error = %e, "metrics server panicked"),
            Ok(Ok(())) => {}
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(q: &str) -> Vec<String> {
        q.split(',').map(String::from).collect()
    }

    #[test]
    fn concurrency_is_global_or_per_queue() {
        let specs = queue_specs(&names("pdf,email"), "4", 4).expect("ok");
        assert_eq!(
            specs.iter().map(|s| s.concurrency).collect::<Vec<_>>(),
            vec![4, 4]
        );
        let specs = queue_specs(&names("pdf,email,maintenance"), "2,pdf=8", 4).expect("ok");
        assert_eq!(
            specs.iter().map(|s| s.concurrency).collect::<Vec<_>>(),
            vec![8, 2, 2]
        );
        assert!(queue_specs(&names("pdf,bogus"), "4", 4).is_err());
        assert!(queue_specs(&names("pdf"), "pdf=0", 4).is_err());
        assert!(queue_specs(&names("pdf"), "x", 4).is_err());
    }
}
