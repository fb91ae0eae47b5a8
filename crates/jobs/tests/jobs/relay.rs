//! The outbox relay against a Redis that is down, then back.

use crate::support::*;
use pique_core::jobs::Queue;
use pique_jobs::{Queues, relay};
use pique_store::testing::TestDb;

async fn unrelayed(pool: &pique_store::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE relayed_at IS NULL")
        .fetch_one(pool)
        .await
        .expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_wait_in_the_outbox_while_redis_is_down_and_flow_once_it_is_back() -> TestResult {
    let db = TestDb::new().await?;
    let order = paid_order(&db.pool, 2).await?;
    enqueue_fulfilment(&db.pool, order.order_id).await?;
    // Writing the same jobs again is a no-op (dedup keys).
    enqueue_fulfilment(&db.pool, order.order_id).await?;
    assert_eq!(unrelayed(&db.pool).await, 3);

    let namespace = format!("test-{}", uuid::Uuid::new_v4().simple());
    let down = Queues::open("redis://127.0.0.1:1/0", &namespace)?;
    let report = relay::relay_once(&db.pool, &down, 100).await?;
    assert_eq!((report.relayed, report.failed), (0, 3));
    assert!(report.error.is_some());
    assert_eq!(unrelayed(&db.pool).await, 3, "nothing lost");
    let attempts: i32 = sqlx::query_scalar("SELECT min(attempts) FROM outbox")
        .fetch_one(&db.pool)
        .await?;
    assert_eq!(attempts, 1);

    let up = Queues::open(&redis_url(), &namespace)?;
    let report = relay::relay_once(&db.pool, &up, 100).await?;
    assert_eq!((report.relayed, report.failed), (3, 0));
    assert_eq!(unrelayed(&db.pool).await, 0);
    assert_eq!(up.depth(Queue::Pdf).await?, 2);
    assert_eq!(up.depth(Queue::Email).await?, 1);
    assert_eq!(
        relay::relay_once(&db.pool, &up, 100).await?.relayed,
        0,
        "relayed once"
    );
    flush_namespace(&up).await;
    db.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_never_push_the_same_row() -> TestResult {
    let db = TestDb::new().await?;
    for _ in 0..10 {
        let order = paid_order(&db.pool, 3).await?;
        enqueue_fulfilment(&db.pool, order.order_id).await?;
    }
    let namespace = format!("test-{}", uuid::Uuid::new_v4().simple());
    let queues = Queues::open(&redis_url(), &namespace)?;
    let mut total = 0;
    loop {
        let (a, b) = tokio::join!(
            relay::relay_once(&db.pool, &queues, 7),
            relay::relay_once(&db.pool, &queues, 7)
        );
        let n = a?.relayed + b?.relayed;
        if n == 0 {
            break;
        }
        total += n;
    }
    assert_eq!(total, 40);
    assert_eq!(
        queues.depth(Queue::Pdf).await? + queues.depth(Queue::Email).await?,
        40
    );
    flush_namespace(&queues).await;
    db.cleanup().await;
    Ok(())
}
