//! Worker lifecycle: graceful shutdown with queued checkouts in flight, the reconciler, a
//! Redis outage.

use std::time::Duration;

use crate::support::*;
use pique_core::jobs::{JobSpec, Queue};
use pique_jobs::{Deps, Job, QueueSpec, WorkerOptions, relay};
use pique_store::{fulfilment, testing::TestDb};

/// Three queued checkouts whose Stripe call takes 1.5 s: stopping the worker while all
/// three are in flight lets them finish, and a new worker redoes none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_in_flight_checkouts_finish_and_none_runs_twice() -> TestResult {
    let db = TestDb::new().await?;
    let dir = tempfile::tempdir()?;
    let sim = stripe_sim::spawn(stripe_sim::SimConfig {
        latency_ms: 1500,
        ..stripe_sim::SimConfig::ephemeral()
    })
    .await?;
    let deps = Deps::new(
        db.pool.clone(),
        config(None, dir.path()),
        checkout(&db.pool, &sim.base_url()),
    )?;
    let tier = paid_order(&db.pool, 1).await?.ticket_id;
    let show: i64 = sqlx::query_scalar("SELECT show_id FROM tickets WHERE id = $1")
        .bind(tier)
        .fetch_one(&db.pool)
        .await?;
    let options = WorkerOptions {
        queues: vec![QueueSpec {
            queue: Queue::Checkout,
            concurrency: 4,
        }],
        name: "w".into(),
    };
    let worker = RunningWorker::start(deps.clone(), options);
    for i in 0..3 {
        let id = uuid::Uuid::now_v7();
        let request = serde_json::json!({
            "show_id": show,
            "tickets": [{"ticket_id": tier, "quantity": 1}],
            "order_email": format!("buyer{i}@example.com"),
            "order_name": "Queued Buyer",
        });
        pique_store::checkout::enqueue_request(&db.pool, id, &request).await?;
        let job = JobSpec::ProcessCheckout { checkout_id: id };
        deps.queues
            .push(Queue::Checkout, &Job::from_spec(&job))
            .await?;
    }
    let count = |sql: &'static str| {
        let pool = db.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap_or(-1)
        }
    };
    // Each job holds its seats before calling Stripe, so three pending orders mean three jobs
    // waiting on Stripe.
    let pending =
        || async { count("SELECT count(*) FROM orders WHERE status = 'pending'").await == 3 };
    assert!(eventually(Duration::from_secs(20), pending).await);
    let in_flight = count("SELECT count(*) FROM checkout_requests WHERE status = 'processing'");
    assert_eq!(in_flight.await, 3, "all three still waiting on Stripe");
    // Stop while all three are running: they finish before the worker returns.
    worker.stop().await;
    let completed = count("SELECT count(*) FROM checkout_requests WHERE status = 'completed'");
    assert_eq!(completed.await, 3, "in-flight jobs finished");
    assert_eq!(deps.queues.depth(Queue::Checkout).await?, 0);
    assert_eq!(
        deps.queues.vacuum(Queue::Checkout).await?,
        3,
        "finished tasks' data removed"
    );
    assert_eq!(deps.queues.vacuum(Queue::Checkout).await?, 0);

    // A new worker finds nothing to redo: Stripe saw one session per request.
    let options = WorkerOptions {
        queues: vec![QueueSpec {
            queue: Queue::Checkout,
            concurrency: 4,
        }],
        name: "w2".into(),
    };
    let again = RunningWorker::start(deps.clone(), options);
    tokio::time::sleep(Duration::from_secs(3)).await;
    again.stop().await;
    let stats = sim.state().stats();
    let sessions = stats
        .by_endpoint
        .get("POST /v1/checkout/sessions")
        .map_or(0, |e| e.count);
    assert_eq!(sessions, 3, "no job ran twice: {stats:?}");
    flush_namespace(&deps.queues).await;
    let _ = sim.shutdown().await;
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
