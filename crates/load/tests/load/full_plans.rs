//! Every full-size plan in loadtests/, run as shipped with `--time-scale` against the stand-in
//! (tests/common/standin.rs): PASS on the criteria it grades when the stand-in meets the
//! original plan's targets, and FAIL on exactly the criteria that broke when it does not.
//! Nothing is decided in advance: the same plan file gets both verdicts from what it measured.
//!
//! The runs are serialised: each drives tens to hundreds of users, and two at once on a small
//! machine would starve each other (and the generator's self-watch would rightly refuse to
//! grade).

use std::collections::BTreeSet;
use std::path::PathBuf;

use pique_load::grade::Grade;
use pique_load::{Plan, RunOptions, RunOutcome, run_plan};

use crate::common::standin::{self, Knobs, StandIn};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn plan(file: &str) -> Plan {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../loadtests")
        .join(file);
    Plan::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

struct Run<'a> {
    file: &'a str,
    scale: f64,
    users: Option<u32>,
    stripe: bool,
}

impl Run<'_> {
    async fn against(&self, srv: &StandIn, dir: &std::path::Path) -> RunOutcome {
        let mut opts = RunOptions {
            hosts: vec![srv.url()],
            out_dir: dir.to_path_buf(),
            quiet: true,
            time_scale: self.scale,
            users: self.users,
            ..RunOptions::default()
        };
        if self.stripe {
            opts.vars.push(("stripe_base".into(), srv.url()));
        }
        run_plan(&plan(self.file), &opts)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", self.file))
    }
}

/// Ids of the graded rows that failed.
fn failed(out: &RunOutcome) -> BTreeSet<String> {
    out.summary
        .grades
        .iter()
        .filter(|g| g.in_verdict && g.grade == Grade::Fail)
        .map(|g| g.id.clone())
        .collect()
}

fn row<'a>(out: &'a RunOutcome, id: &str) -> &'a pique_load::grade::GradeRow {
    out.summary.grades.iter().find(|g| g.id == id).unwrap()
}

fn explain(out: &RunOutcome) -> String {
    let rows: Vec<String> = out
        .summary
        .grades
        .iter()
        .filter(|g| g.in_verdict)
        .map(|g| format!("{}: {} ({})", g.id, g.measured_text, g.grade.label()))
        .collect();
    format!(
        "{}\n{}\nfailures: {:?}\nthresholds: {:?}",
        out.verdict,
        rows.join("\n"),
        out.summary.failures,
        out.summary.thresholds
    )
}

/// Runs `run` against a fresh stand-in set up by `knobs`. When the generator reports that it
/// fell behind (a busy machine starves it) and withholds the verdict, the measurement is not
/// valid, so it is taken again, up to three times.
async fn graded(
    run: &Run<'_>,
    knobs: fn(&mut Knobs),
    dir: &std::path::Path,
) -> (RunOutcome, StandIn) {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let srv = standin::start().await;
        srv.set(knobs);
        let out = run.against(&srv, dir).await;
        if !out.verdict.starts_with("NOT GRADED") || attempt == 3 {
            return (out, srv);
        }
        eprintln!(
            "{}: attempt {attempt} not graded, again: {}",
            run.file, out.verdict
        );
    }
}

/// Runs `run` against a healthy stand-in (PASS; `measured` rows must have a value) and against
/// one broken by `break_it` (FAIL on exactly `fails`).
async fn pass_then_fail(run: Run<'_>, measured: &[&str], break_it: fn(&mut Knobs), fails: &[&str]) {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let (good, _) = graded(&run, |_| {}, dir.path()).await;
    assert!(
        good.verdict.starts_with("PASS"),
        "{}: {}",
        run.file,
        explain(&good)
    );
    assert_eq!(good.exit_code, 0, "{}: {}", run.file, explain(&good));
    for id in measured {
        let r = row(&good, id);
        assert!(
            r.in_verdict && r.measured.is_some(),
            "{}: {id}: {r:?}",
            run.file
        );
    }

    let (bad, _) = graded(&run, break_it, dir.path()).await;
    let want: BTreeSet<String> = fails.iter().map(|s| s.to_string()).collect();
    assert_eq!(failed(&bad), want, "{}: {}", run.file, explain(&bad));
    assert!(bad.verdict.starts_with("FAIL"), "{}", bad.verdict);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baseline() {
    pass_then_fail(
        Run {
            file: "baseline.toml",
            scale: 0.004,
            users: None,
            stripe: false,
        },
        &[
            "get_avg",
            "p95",
            "error_rate",
            "concurrent_users",
            "normal_load",
            "db_query_time",
            "cache_hit_rate",
            "cpu",
        ],
        |k| k.latency = std::time::Duration::from_millis(1200),
        // p99 1.2 s is still acceptable (< 1.5 s); held users need p95 < 500 ms.
        &["get_avg", "p95", "concurrent_users", "normal_load"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_heavy() {
    pass_then_fail(
        Run {
            file: "read-heavy.toml",
            scale: 0.01,
            users: None,
            stripe: false,
        },
        &["throughput", "p95", "error_rate"],
        |k| k.fail_every = 50,
        &["error_rate", "throughput"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout() {
    let run = || Run {
        file: "checkout.toml",
        scale: 0.01,
        users: None,
        stripe: true,
    };
    pass_then_fail(
        run(),
        &[
            "checkouts_per_min",
            "checkout_completion",
            "checkout_session",
            "payment_success",
            "stripe_timeouts",
            "post_avg",
        ],
        |k| {
            k.checkout_latency = std::time::Duration::from_secs(4);
            k.stripe_timeouts_per_100 = 50;
        },
        &[
            "checkout_session",
            "post_avg",
            "p95",
            "p99",
            "stripe_timeouts",
        ],
    )
    .await;

    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    // The queue strategy: 202, then the status is polled; the same plan passes.
    let (queued, srv) = graded(&run(), |k| k.queued = true, dir.path()).await;
    assert!(queued.verdict.starts_with("PASS"), "{}", explain(&queued));
    assert_eq!(queued.exit_code, 0, "{}", explain(&queued));
    assert!(srv.paid() > 0);
    assert!(row(&queued, "checkout_session").source.contains("queued"));
    let done = queued
        .summary
        .requests
        .iter()
        .find(|r| r.name == "/checkout/ [done]")
        .unwrap();
    assert!(done.count > 0 && done.failures == 0, "{done:?}");

    // Against a host without stripe-sim (Django), leave stripe_base unset: the payment steps
    // and their threshold are skipped, the rest graded, and the run passes.
    let mut no_stripe = run();
    no_stripe.stripe = false;
    let (out, srv) = graded(&no_stripe, |_| {}, dir.path()).await;
    assert_eq!(out.exit_code, 0, "{}", explain(&out));
    assert!(out.verdict.starts_with("PASS"), "{}", explain(&out));
    let success = out
        .summary
        .thresholds
        .iter()
        .find(|t| t.scope == "/success/")
        .unwrap();
    assert!(success.skipped, "{success:?}");
    assert_eq!(row(&out, "payment_success").grade, Grade::NotMeasured);
    assert_eq!(srv.paid(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spike() {
    pass_then_fail(
        Run {
            file: "spike.toml",
            scale: 0.01,
            users: None,
            stripe: true,
        },
        &["spike", "peak_load", "p95", "error_rate"],
        // Every 20th API request fails: 5 % of the run, and some of every second's requests.
        |k| k.fail_every = 20,
        &["error_rate", "spike", "peak_load"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak() {
    pass_then_fail(
        Run {
            file: "soak.toml",
            scale: 0.001,
            users: None,
            stripe: true,
        },
        &["sustained", "normal_load", "memory_growth", "queue_length"],
        |k| {
            k.latency = std::time::Duration::from_millis(650);
            k.rss_growth_per_s = 0.05;
            k.queue_depth = 60;
        },
        // p95 650 ms is acceptable (< 750 ms) and p99 on target (< 1 s), but the 100 users
        // no longer hold the 500 ms target: Sustained Load degraded.
        &[
            "get_avg",
            "sustained",
            "normal_load",
            "memory_growth",
            "queue_length",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity() {
    pass_then_fail(
        Run {
            file: "capacity.toml",
            scale: 0.0015,
            // The search up to 520 users (the stand-in never breaks): beyond the 500-user
            // Peak Load target, at half the plan's 1,000.
            users: Some(520),
            stripe: true,
        },
        &[
            "concurrent_users",
            "normal_load",
            "peak_load",
            "connection_exhaustion",
        ],
        |k| {
            k.latency = std::time::Duration::from_millis(600);
            k.max_in_flight = 3;
            k.db_pool_in_use = 20;
        },
        &[
            "concurrent_users",
            "normal_load",
            "peak_load",
            "connection_exhaustion",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed() {
    pass_then_fail(
        Run {
            file: "mixed.toml",
            scale: 0.001,
            users: None,
            stripe: true,
        },
        &[
            "concurrent_users",
            "checkouts_per_min",
            "payment_success",
            "queue_latency",
            "email_delivery",
            "pdf_time",
            "stripe_timeouts",
        ],
        |k| {
            k.email_failures_per_100 = 20;
            k.pdf_time = std::time::Duration::from_millis(2500);
            k.queue_wait = std::time::Duration::from_millis(1500);
        },
        &["email_delivery", "pdf_time", "queue_latency"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locust_sample() {
    pass_then_fail(
        Run {
            file: "locust-sample.toml",
            scale: 0.01,
            users: None,
            stripe: false,
        },
        &["get_avg", "post_avg", "p95"],
        |k| k.latency = std::time::Duration::from_millis(1200),
        &["get_avg", "post_avg", "p95"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k6_sample() {
    pass_then_fail(
        Run {
            file: "k6-sample.toml",
            scale: 0.01,
            users: None,
            stripe: false,
        },
        &["get_avg", "p95", "error_rate"],
        |k| k.fail_every = 50,
        &["error_rate"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artillery_sample() {
    pass_then_fail(
        Run {
            file: "artillery-sample.yml",
            scale: 0.05,
            users: None,
            stripe: false,
        },
        &[
            "get_avg",
            "post_avg",
            "p95",
            "error_rate",
            "cpu",
            "db_query_time",
            "cache_hit_rate",
        ],
        |k| {
            k.cpu_cores = 1.0;
            k.db_query = std::time::Duration::from_millis(300);
            k.cache_hits_per_miss = 1;
        },
        &["cpu", "db_query_time", "cache_hit_rate"],
    )
    .await;
}
