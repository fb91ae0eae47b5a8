//! Worker lifecycle: graceful shutdown, the checkout hook, the reconciler.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use crate::support::*;
use futures::FutureExt;
use pique_jobs::{Deps, Hooks, Job, QueueSpec, WorkerOptions, relay};
use pique_store::{fulfilment, testing::TestDb};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_in_flight_jobs_finish_and_the_checkout_hook_runs_each_job_once() -> TestResult
{
    let db = TestDb::new().await?;
    let dir = tempfile::tempdir()?;
    let cfg = config(None, dir.path());
    let started = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let (s, f) = (started.clone(), finished.clone());
    let hooks = Hooks {
        checkout: Some(Arc::new(move |_job: Job| {
            let (s, f) = (s.clone(), f.clone());
            async move {
                s.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(1500)).await;
                f.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
            .boxed()
        })),
        hold_sweeper: None,
    };
    let deps = Deps::new(db.pool.clone(), cfg, hooks)?;
    let options = WorkerOptions {
        queues: vec![QueueSpec {
            name: "checkout".into(),
            concurrency: 4,
        }],
        name: "w".into(),
    };
    let worker = RunningWorker::start(deps.clone(), options);
    for i in 0..3 {
        deps.queues
            .push(
                "checkout",
                &Job::new(
                    "process_checkout",
                    serde_json::json!({"i": i}),
                    format!("c{i}"),
                ),
            )
            .await?;
    }
    let s2 = started.clone();
    assert!(
        eventually(Duration::from_secs(10), || {
            let s = s2.clone();
            async move { s.load(Ordering::SeqCst) == 3 }
        })
        .await
    );
    // Stop while all three are running: they finish before the worker returns.
    worker.stop().await;
    assert_eq!(
        finished.load(Ordering::SeqCst),
        3,
        "in-flight jobs finished"
    );
    assert_eq!(deps.queues.depth("checkout").await?, 0);
    assert_eq!(
        deps.queues.vacuum("checkout").await?,
        3,
        "finished tasks' data removed"
    );
    assert_eq!(deps.queues.vacuum("checkout").await?, 0);

    // A new worker finds nothing to redo.
    let options = WorkerOptions {
        queues: vec![QueueSpec {
            name: "checkout".into(),
            concurrency: 4,
        }],
        name: "w2".into(),
    };
    let again = RunningWorker::start(deps.clone(), options);
    tokio::time::sleep(Duration::from_secs(3)).await;
    again.stop().await;
    assert_eq!(started.load(Ordering::SeqCst), 3, "no job ran twice");
    flush_namespace(&deps.queues).await;
    db.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconciler_rearms_jobs_of_paid_orders_missing_pdfs_or_email() -> TestResult {
    let db = TestDb::new().await?;
    let order = paid_order(&db.pool, 2).await?;
    // Paid ten minutes ago, and its jobs were never written (a bug, or a lost outbox row).
    sqlx::query("UPDATE orders SET paid_at = now() - interval '10 minutes' WHERE id = $1")
        .bind(order.order_id)
        .execute(&db.pool)
        .await?;
    let grace = Duration::from_secs(60);
    let window = Duration::from_secs(3600);
    let report = fulfilment::reconcile(&db.pool, grace, window).await?;
    assert_eq!((report.pdf_jobs, report.email_jobs), (2, 1));
    // Unrelayed rows are not touched again.
    assert_eq!(
        fulfilment::reconcile(&db.pool, grace, window).await?,
        Default::default()
    );

    let queues = pique_jobs::Queues::open(
        &redis_url(),
        &format!("test-{}", uuid::Uuid::new_v4().simple()),
    )?;
    assert_eq!(relay::relay_once(&db.pool, &queues, 100).await?.relayed, 3);
    // Relayed recently: probably queued or running, left alone.
    assert_eq!(
        fulfilment::reconcile(&db.pool, grace, window).await?,
        Default::default()
    );
    // Relayed long ago and still no PDF or email: re-armed under the same dedup keys.
    sqlx::query("UPDATE outbox SET relayed_at = now() - interval '5 minutes'")
        .execute(&db.pool)
        .await?;
    let report = fulfilment::reconcile(&db.pool, grace, window).await?;
    assert_eq!((report.pdf_jobs, report.email_jobs), (2, 1));
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&db.pool)
        .await?;
    assert_eq!(rows, 3, "same dedup keys, no new rows");
    flush_namespace(&queues).await;
    db.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_survive_a_redis_outage_and_orders_paid_meanwhile_are_fulfilled() -> TestResult {
    let db = TestDb::new().await?;
    let dir = tempfile::tempdir()?;
    let sink = pique_jobs::smtp_sink::SmtpSink::start().await?;
    let mut proxy = RedisProxy::start().await?;
    let mut cfg = config(Some(sink.url()), dir.path());
    cfg.redis_url = proxy.url();
    let deps = crate::support::deps(&db.pool, cfg);
    let worker = RunningWorker::start(deps.clone(), WorkerOptions::all("w", 2));
    tokio::time::sleep(Duration::from_millis(500)).await;

    proxy.cut();
    let order = paid_order(&db.pool, 1).await?;
    enqueue_fulfilment(&db.pool, order.order_id).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let unrelayed: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE relayed_at IS NULL")
        .fetch_one(&db.pool)
        .await?;
    assert_eq!(unrelayed, 2, "jobs wait in the outbox while Redis is down");
    assert!(sink.messages().is_empty());

    proxy.restore().await?;
    assert!(
        sink.wait_for(1, Duration::from_secs(30)).await,
        "fulfilled once Redis is back"
    );
    assert!(!worker.task.is_finished(), "worker still running");
    worker.stop().await;
    flush_namespace(&deps.queues).await;
    db.cleanup().await;
    Ok(())
}
