//! The `maintenance` loops: outbox relay, hold sweeper, reconciler, Redis vacuum, queue
//! sampling.
//!
//! They run in every worker that serves the `maintenance` queue. Running them in several
//! workers at once is safe: the relay and the sweeper claim rows with `SKIP LOCKED`, and the
//! reconciler's writes are upserts on the outbox dedup keys.

use std::time::Duration;

use pique_core::jobs::Queue;
use pique_store::fulfilment::{self, ReconcileReport};
use tokio::sync::watch;

use crate::{JobError, deadletter, handlers::Deps, metrics, relay};

/// One reconciler pass: paid orders older than the grace period with missing PDFs or email
/// get their outbox jobs re-armed (the relay then pushes them).
pub async fn reconcile(deps: &Deps) -> Result<ReconcileReport, JobError> {
    let report = fulfilment::reconcile(
        &deps.pool,
        deps.config.reconcile_grace,
        deps.config.reconcile_window,
    )
    .await?;
    if report != ReconcileReport::default() {
        tracing::info!(
            pdf_jobs = report.pdf_jobs,
            email_jobs = report.email_jobs,
            "reconciler re-armed jobs"
        );
    }
    Ok(report)
}

/// Runs the hold sweeper: releases lapsed holds and expires their Stripe sessions.
pub async fn sweep_holds(deps: &Deps) -> Result<u64, JobError> {
    let n = deps.checkout.sweep().await?;
    if n > 0 {
        tracing::info!(released = n, "hold sweeper released lapsed holds");
    }
    Ok(n)
}

/// Samples queue depth and dead-letter counts into the gauges.
pub async fn sample_queues(deps: &Deps) -> Result<(), JobError> {
    for &queue in Queue::ALL {
        let waiting = deps.queues.depth(queue).await?;
        let dead = deadletter::count(&deps.queues, queue).await?;
        metrics::depth(queue, waiting, dead);
    }
    Ok(())
}

/// Runs the relay and the periodic tasks until `stop` turns true.
pub async fn run(deps: Deps, stop: watch::Receiver<bool>) {
    let relay = tokio::spawn(relay::run(
        deps.pool.clone(),
        deps.queues.clone(),
        deps.config.relay_interval,
        deps.config.relay_batch,
        stop.clone(),
    ));
    let periodic = tokio::spawn(periodic(deps.clone(), stop.clone()));
    let sampler = tokio::spawn(sampler(deps, stop));
    for task in [relay, periodic, sampler] {
        if let Err(e) = task.await {
            tracing::error!(error = %e, "maintenance task panicked");
        }
    }
}

async fn periodic(deps: Deps, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        if let Err(e) = sweep_holds(&deps).await {
            tracing::warn!(error = %e, "hold sweeper failed");
        }
        if let Err(e) = reconcile(&deps).await {
            tracing::warn!(error = %e, "reconciler failed");
        }
        for &queue in Queue::ALL {
            match deps.queues.vacuum(queue).await {
                Ok(n) if n > 0 => tracing::debug!(%queue, removed = n, "vacuumed finished tasks"),
                Ok(_) => {}
                Err(e) => tracing::debug!(%queue, error = %e, "vacuum failed"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(deps.config.maintenance_interval) => {}
            _ = stop.changed() => {}
        }
    }
}

async fn sampler(deps: Deps, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        if let Err(e) = sample_queues(&deps).await {
            tracing::debug!(error = %e, "queue sampling failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = stop.changed() => {}
        }
    }
}
