//! The checkout plans against the real replica, under each checkout strategy: `pique serve`
//! (and, for the queue strategy, `pique worker` for the queued checkouts) with `pique
//! stripe-sim`, driven by `pique load run` on the shipped plan files, unchanged.
//!
//! Each strategy gets its own database and its own Redis database number; the three run one
//! after another (each is a whole system on a small machine).

// Test code: a failed unwrap is a failed test (helpers included, not only #[test] fns).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pique_store::testing::TestDb;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port()
}

struct Replica {
    api: String,
    stripe: String,
    _procs: Vec<Proc>,
    db: TestDb,
}

fn pique(db: &TestDb, redis: &str, strategy: &str, stripe: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pique"));
    c.env("DATABASE_URL", &db.url)
        .env("REDIS_URL", redis)
        .env("CHECKOUT_STRATEGY", strategy)
        .env("STRIPE_API_BASE", stripe)
        .env("PIQUE_RATE_LIMIT", "off")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    c
}

async fn wait_for(url: &str) {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !http
        .get(url)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "{url} did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A seeded replica with stripe-sim, and a worker for the queued checkouts when `strategy` is
/// `queue`.
async fn replica(strategy: &str, redis_db: u8) -> Replica {
    let db = TestDb::new().await.expect("db");
    let base =
        std::env::var("PIQUE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    let mut redis = url::Url::parse(&base).expect("PIQUE_TEST_REDIS_URL");
    redis.set_path(&format!("/{redis_db}"));
    let redis = redis.to_string();
    let client = redis::Client::open(redis.as_str()).expect("redis url");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    redis::cmd("FLUSHDB")
        .query_async::<()>(&mut con)
        .await
        .expect("flush");
    let stripe = format!("http://127.0.0.1:{}", free_port());
    let api = format!("http://127.0.0.1:{}", free_port());
    let seed = pique(&db, &redis, strategy, &stripe)
        .args(["seed", "--preset", "small"])
        .output()
        .expect("seed");
    assert!(
        seed.status.success(),
        "{}",
        String::from_utf8_lossy(&seed.stderr)
    );
    let mut procs = vec![Proc(
        pique(&db, &redis, strategy, &stripe)
            .args(["stripe-sim", "--bind", stripe.trim_start_matches("http://")])
            .env("STRIPE_WEBHOOK_URL", format!("{api}/stripe/webhook/"))
            .spawn()
            .expect("stripe-sim"),
    )];
    procs.push(Proc(
        pique(&db, &redis, strategy, &stripe)
            .args(["serve", "--bind", api.trim_start_matches("http://")])
            .spawn()
            .expect("serve"),
    ));
    if strategy == "queue" {
        procs.push(Proc(
            pique(&db, &redis, strategy, &stripe)
                .args(["worker", "--queues", "checkout,maintenance"])
                .args(["--metrics-bind", &format!("127.0.0.1:{}", free_port())])
                .spawn()
                .expect("worker"),
        ));
    }
    wait_for(&format!("{stripe}/_sim/config")).await;
    wait_for(&format!("{api}/health/")).await;
    warm_cache(&api).await;
    Replica {
        api,
        stripe,
        _procs: procs,
        db,
    }
}

/// Reads every show once, as a running deployment's cache would have: a few seconds of a
/// time-scaled plan cannot warm a cold cache, and the checkout phase grades the hit rate.
async fn warm_cache(api: &str) {
    let http = reqwest::Client::new();
    let shows: Vec<serde_json::Value> = http
        .get(format!("{api}/api/v1/shows/"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    for show in &shows {
        let id = &show["id"];
        http.get(format!("{api}/api/v1/shows/{id}/"))
            .send()
            .await
            .expect("detail");
    }
}

/// `pique load run PLAN` against the replica; the exit code and summary.json. A run whose
/// generator fell behind and withheld its verdict is taken again (up to three times).
fn load(r: &Replica, plan: &str, args: &[&str], out: &Path) -> (i32, serde_json::Value) {
    for attempt in 1..=3 {
        let dir = out.join(format!("{}-{attempt}", plan.replace('/', "-")));
        let run = Command::new(env!("CARGO_BIN_EXE_pique"))
            .args(["load", "run"])
            .arg(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("loadtests")
                    .join(plan),
            )
            .args(["--host", &r.api, "--quiet", "--out"])
            .arg(&dir)
            .args(args)
            .env("RUST_LOG", "warn")
            .output()
            .expect("pique load run");
        let text = String::from_utf8_lossy(&run.stdout).into_owned();
        let report = text
            .lines()
            .find_map(|l| l.strip_prefix("report: "))
            .unwrap_or_else(|| panic!("{plan}: {text}{}", String::from_utf8_lossy(&run.stderr)));
        let summary_path = Path::new(report.trim()).with_file_name("summary.json");
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(summary_path).expect("summary"))
                .expect("json");
        let graded = !summary["verdict"]
            .as_str()
            .unwrap_or_default()
            .starts_with("NOT GRADED");
        if graded || attempt == 3 {
            return (run.status.code().unwrap_or(-1), summary);
        }
    }
    unreachable!()
}

fn row<'a>(s: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    s["requests"].as_array()?.iter().find(|r| r["name"] == name)
}

fn grade<'a>(s: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    s["grades"]
        .as_array()
        .and_then(|g| g.iter().find(|r| r["id"] == id))
        .unwrap_or_else(|| panic!("no row {id}"))
}

/// No step of the checkout flow failed: every checkout got a session (at once, or after the
/// queue), every payment was recorded. The one allowed refusal is a sold-out tier (409) on the
/// checkout itself: the plans run one after another on one database, so a popular tier can sell
/// out (unpaid holds keep their seats for 30 minutes), and a buyer then stops, as a real one would.
fn flow_held(s: &serde_json::Value, plan: &str) {
    const FLOW: [&str; 4] = [
        "/checkout/ [session]",
        "/checkout/ [done]",
        "stripe-sim: complete payment",
        "/success/",
    ];
    let failures = s["failures"].as_array().cloned().unwrap_or_default();
    let unexpected: Vec<_> = failures
        .iter()
        .filter(|f| FLOW.iter().any(|n| f["name"] == *n))
        .filter(|f| !(f["name"] == "/checkout/ [session]" && f["error"] == "HTTP 409"))
        .collect();
    assert!(unexpected.is_empty(), "{plan}: {unexpected:#?}");
    // The failures list and the per-request counters agree: nothing failed outside the list.
    for name in FLOW {
        if let Some(r) = row(s, name) {
            let listed: u64 = failures
                .iter()
                .filter(|f| f["name"] == name)
                .filter_map(|f| f["occurrences"].as_u64())
                .sum();
            assert_eq!(r["failures"].as_u64(), Some(listed), "{plan}: {name}");
        }
    }
}

async fn checkout_plans_pass(strategy: &str, redis_db: u8) {
    let _serial = SERIAL.lock().await;
    let r = replica(strategy, redis_db).await;
    let out = tempfile::tempdir().expect("tempdir");
    let stripe = format!("stripe_base={}", r.stripe);

    // The full checkout plan, 15 min at 0.01: graded on the checkout phase's criteria.
    let (code, s) = load(
        &r,
        "checkout.toml",
        &["--time-scale", "0.01", "--var", &stripe],
        out.path(),
    );
    assert_eq!(code, 0, "{strategy}: {:#}", s["thresholds"]);
    assert!(
        s["verdict"].as_str().is_some_and(|v| v.starts_with("PASS")),
        "{strategy}: {} {:#} failures: {:#} requests: {:#}",
        s["verdict"],
        s["grades"],
        s["failures"],
        s["requests"]
    );
    flow_held(&s, "checkout.toml");
    assert!(grade(&s, "checkout_completion")["measured"].as_f64() > Some(0.95));
    let queued = row(&s, "/checkout/ [done]").is_some();
    assert_eq!(
        queued,
        strategy == "queue",
        "{strategy}: polled only when queued"
    );

    // Without stripe-sim (as against Django): the payment steps and their threshold are
    // skipped, not failed.
    let (code, s) = load(&r, "checkout.toml", &["--time-scale", "0.01"], out.path());
    assert_eq!(
        code, 0,
        "{strategy} without stripe_base: {:#}",
        s["thresholds"]
    );
    let success = s["thresholds"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["scope"] == "/success/"))
        .expect("/success/ threshold");
    assert_eq!(success["skipped"], true, "{success}");
    assert_eq!(grade(&s, "payment_success")["grade"], "not_measured");
    flow_held(&s, "checkout.toml without stripe_base");

    // The smoke twins of the plans with a checkout flow (the mixed smoke's 8 users include no
    // paying buyer: its 5 % class needs 20 users to get one).
    for plan in [
        "smoke/checkout.toml",
        "smoke/mixed.toml",
        "smoke/spike.toml",
    ] {
        let (code, s) = load(&r, plan, &["--var", &stripe], out.path());
        assert_eq!(code, 0, "{strategy} {plan}: {:#}", s["thresholds"]);
        flow_held(&s, plan);
        let checkouts = row(&s, "/checkout/ [session]").and_then(|x| x["count"].as_u64());
        assert!(checkouts > Some(0), "{strategy} {plan}: no checkout");
        if plan != "smoke/mixed.toml" {
            assert!(
                row(&s, "/success/").is_some_and(|x| x["count"].as_u64() > Some(0)),
                "{strategy} {plan}: nothing paid"
            );
        }
    }
    // Stop the API and the worker before stripe-sim, which they call.
    let Replica {
        _procs: mut procs,
        db,
        ..
    } = r;
    procs.reverse();
    drop(procs);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn checkout_plans_pass_under_the_reservation_strategy() {
    checkout_plans_pass("reservation", 12).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn checkout_plans_pass_under_the_redis_lock_strategy() {
    checkout_plans_pass("redis-lock", 13).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn checkout_plans_pass_under_the_queue_strategy() {
    checkout_plans_pass("queue", 14).await;
}
