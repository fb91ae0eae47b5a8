//! Checkout latency per strategy: 50 concurrent buyers (closed loop) against the real app on
//! a fresh PostgreSQL database, Redis and an in-process stripe-sim, at 0 ms and 300 ms of
//! Stripe latency.
//!
//! ```sh
//! cargo run -p pique-api --example checkout_bench                 # all strategies, 0 and 300 ms
//! cargo run -p pique-api --example checkout_bench -- reservation 0 # one strategy, one latency
//! ```
//! Env: `BENCH_BUYERS` (50), `BENCH_CHECKOUTS` (checkouts per configuration, 1000),
//! `BENCH_SHOWS` (1: every buyer wants the same tier, the worst case; N: buyer `i` buys from
//! show `i % N`, each with its own tier, as when several shows are on sale at once).
//!
//! For `queue`, "accept" is `POST /checkout/` (202) and "done" is until the polled status is
//! decided (the Stripe session exists), polling every 20 ms as a client would.

#[path = "../tests/support/mod.rs"]
mod support;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use pique_core::jobs::Queue;
use pique_jobs::{Deps, JobsConfig, QueueSpec, WorkerOptions};
use support::*;

struct Figures {
    strategy: String,
    latency_ms: u64,
    n: u64,
    errors: usize,
    accept: Histogram<u64>,
    done: Option<Histogram<u64>>,
    secs: f64,
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

async fn start_worker(app: &TestApp) -> Result<tokio::sync::oneshot::Sender<()>, TestError> {
    let mut cfg = JobsConfig::from_core(&app.state.config);
    cfg.namespace = format!("{}-jobs", app.prefix);
    cfg.poll_interval = Duration::from_millis(20);
    cfg.relay_interval = Duration::from_millis(100);
    let deps = Deps::new(app.pool.clone(), cfg, app.state.checkout.clone())?;
    let options = WorkerOptions {
        queues: vec![
            QueueSpec {
                queue: Queue::Checkout,
                concurrency: 16,
            },
            QueueSpec {
                queue: Queue::Maintenance,
                concurrency: 1,
            },
        ],
        name: format!("bench-{}", app.prefix),
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = pique_jobs::worker::run(deps, options, async move {
            let _ = rx.await;
        })
        .await;
    });
    Ok(tx)
}

async fn run_one(
    strategy: &str,
    latency_ms: u64,
    buyers: usize,
    checkouts: usize,
    shows: usize,
) -> Result<Figures, TestError> {
    let app = TestApp::spawn_with_sim(
        &[
            ("CHECKOUT_STRATEGY", strategy),
            ("PIQUE_DB_MAX_CONNECTIONS", "40"),
        ],
        |c| {
            c.latency_ms = latency_ms;
            c.webhook_url = None;
        },
    )
    .await?;
    let mut targets = Vec::new();
    for i in 0..shows.max(1) {
        let show = show(&app.pool, &format!("bench-{i}")).await?;
        let ticket = tier(
            &app.pool,
            show,
            "General Admission",
            1_000_000,
            "25.00",
            false,
        )
        .await?;
        targets.push((show, ticket));
    }
    let targets = &targets;
    let stop = if strategy == "queue" {
        Some(start_worker(&app).await?)
    } else {
        None
    };
    // Warm up connections (pool, Redis, Stripe client) outside the measurement.
    for &(show, ticket) in targets {
        let _ = app
            .post("/checkout/", &checkout_body(show, ticket, 1))
            .await?;
    }
    let accept = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1,
        120_000_000,
        3,
    )?));
    let done = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1,
        120_000_000,
        3,
    )?));
    let errors = Arc::new(AtomicUsize::new(0));
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let app_ref = &app;
    let tasks = (0..buyers).map(|buyer| {
        let (accept, done, errors, next) =
            (accept.clone(), done.clone(), errors.clone(), next.clone());
        let (show, ticket) = targets[buyer % targets.len()];
        async move {
            while next.fetch_add(1, Ordering::Relaxed) < checkouts {
                let t0 = Instant::now();
                let result = app_ref
                    .post("/checkout/", &checkout_body(show, ticket, 1))
                    .await;
                let accepted = t0.elapsed();
                let ok = match result {
                    Ok((201, _)) => true,
                    Ok((202, body)) => {
                        let id = body["checkout_id"].as_str().unwrap_or_default().to_string();
                        let mut decided = false;
                        while t0.elapsed() < Duration::from_secs(60) {
                            if let Ok((200, s)) =
                                app_ref.get(&format!("/checkout/status/{id}/")).await
                                && s["status"] != "processing"
                            {
                                decided = s["status"] == "completed";
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        decided
                    }
                    _ => false,
                };
                if !ok {
                    errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
                if let Ok(mut h) = accept.lock() {
                    let _ = h.record(us(accepted));
                }
                if let Ok(mut h) = done.lock() {
                    let _ = h.record(us(t0.elapsed()));
                }
            }
        }
    });
    futures::future::join_all(tasks).await;
    let secs = started.elapsed().as_secs_f64();
    assert_invariants(&app.pool).await?;
    if let Some(tx) = stop {
        let _ = tx.send(());
    }
    app.cleanup().await;
    let accept = accept.lock().map_err(|_| "poisoned")?.clone();
    let done = done.lock().map_err(|_| "poisoned")?.clone();
    Ok(Figures {
        strategy: strategy.to_string(),
        latency_ms,
        n: accept.len(),
        errors: errors.load(Ordering::Relaxed),
        accept,
        done: (strategy == "queue").then_some(done),
        secs,
    })
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), TestError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let strategies: Vec<String> = match args.first() {
        Some(s) => vec![s.clone()],
        None => vec!["reservation".into(), "redis-lock".into(), "queue".into()],
    };
    let latencies: Vec<u64> = match args.get(1) {
        Some(l) => vec![l.parse()?],
        None => vec![0, 300],
    };
    let buyers: usize = std::env::var("BENCH_BUYERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let checkouts: usize = std::env::var("BENCH_CHECKOUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let shows: usize = std::env::var("BENCH_SHOWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    println!(
        "{buyers} concurrent buyers on {shows} show(s) with one tier each, {checkouts} checkouts per row \
         (client, API, PostgreSQL, Redis and stripe-sim on this machine)"
    );
    println!(
        "{:<12} {:>9} {:>6} {:>6} {:>9} {:>9} {:>9} {:>11} {:>11} {:>8}",
        "strategy",
        "stripe ms",
        "n",
        "errors",
        "p50 ms",
        "p99 ms",
        "max ms",
        "done p50",
        "done p99",
        "per s"
    );
    for strategy in &strategies {
        for &latency in &latencies {
            let f = run_one(strategy, latency, buyers, checkouts, shows).await?;
            let (dp50, dp99) = match &f.done {
                Some(d) => (format!("{:.1}", ms(d, 0.5)), format!("{:.1}", ms(d, 0.99))),
                None => ("-".into(), "-".into()),
            };
            println!(
                "{:<12} {:>9} {:>6} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>11} {:>11} {:>8.0}",
                f.strategy,
                f.latency_ms,
                f.n,
                f.errors,
                ms(&f.accept, 0.5),
                ms(&f.accept, 0.99),
                f.accept.max() as f64 / 1000.0,
                dp50,
                dp99,
                f.n as f64 / f.secs
            );
        }
    }
    Ok(())
}
