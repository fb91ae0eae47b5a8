//! Distributed load: a master and worker processes of the real binary, coordinated through the
//! Redis on 127.0.0.1:6379 (each test under a cluster name of its own, so tests running at
//! the same time never see each other's workers), against a small HTTP server in the test
//! that counts what it answered.

// Test code: a failed unwrap is a failed test (helpers included, not only #[test] fns).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pique_load::stats::{EncodedHistogram, QUANTILES};
use serde_json::Value;

const REDIS: &str = "redis://127.0.0.1:6379/0";

/// An HTTP server on 127.0.0.1 that answers `/ping` and `/slow` and counts the answers.
struct Target {
    base: String,
    hits: Arc<AtomicU64>,
    _rt: tokio::runtime::Runtime,
}

fn target() -> Target {
    use axum::{Router, routing::get};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let hits = Arc::new(AtomicU64::new(0));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (h1, h2) = (hits.clone(), hits.clone());
    let app = Router::new()
        .route(
            "/ping",
            get(move || {
                h1.fetch_add(1, Ordering::SeqCst);
                async { "pong" }
            }),
        )
        .route(
            "/slow",
            get(move || {
                let h = h2.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(3)).await;
                    h.fetch_add(1, Ordering::SeqCst);
                    "slow"
                }
            }),
        );
    rt.spawn(async move { axum::serve(listener, app).await });
    Target {
        base,
        hits,
        _rt: rt,
    }
}

fn cluster(test: &str) -> String {
    format!("test-dist-{test}-{}", uuid::Uuid::new_v4().simple())
}

struct Proc {
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Proc {
    fn output(&self) -> String {
        format!(
            "{}{}",
            std::fs::read_to_string(&self.out).unwrap_or_default(),
            std::fs::read_to_string(&self.err).unwrap_or_default()
        )
    }
    /// Waits until the output contains `needle` (panics after `within`).
    fn wait_for(&self, needle: &str, within: Duration) -> Instant {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if self.output().contains(needle) {
                return Instant::now();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no {needle:?} within {within:?}:\n{}", self.output());
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(dir: &Path, label: &str, args: &[&str]) -> Proc {
    let out = dir.join(format!("{label}.out"));
    let err = dir.join(format!("{label}.err"));
    let child = Command::new(env!("CARGO_BIN_EXE_pique"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::from(std::fs::File::create(&out).expect("out")))
        .stderr(Stdio::from(std::fs::File::create(&err).expect("err")))
        .spawn()
        .expect("spawn pique");
    Proc { child, out, err }
}

fn worker(dir: &Path, cluster: &str, name: &str, extra: &[&str]) -> Proc {
    let mut args = vec![
        "load",
        "worker",
        "--redis-url",
        REDIS,
        "--cluster",
        cluster,
        "--name",
        name,
    ];
    args.extend_from_slice(extra);
    let p = spawn(dir, name, &args);
    p.wait_for("waiting for a run", Duration::from_secs(20));
    p
}

fn master(
    dir: &Path,
    cluster: &str,
    plan: &Path,
    host: &str,
    workers: u32,
    extra: &[&str],
) -> Proc {
    let n = workers.to_string();
    let out = dir.join("runs");
    let mut args = vec![
        "load",
        "run",
        plan.to_str().expect("utf-8"),
        "--host",
        host,
        "--workers",
        &n,
        "--redis-url",
        REDIS,
        "--cluster",
        cluster,
        "--out",
        out.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(extra);
    spawn(dir, "master", &args)
}

fn finish(mut p: Proc, within: Duration) -> (Option<i32>, String) {
    let until = Instant::now() + within;
    loop {
        if let Some(status) = p.child.try_wait().expect("wait") {
            return (status.code(), p.output());
        }
        if Instant::now() > until {
            let out = p.output();
            let _ = p.child.kill();
            panic!("still running after {within:?}:\n{out}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn plan(dir: &Path, shape: &str) -> PathBuf {
    let text = format!(
        "name = \"dist\"\n{shape}\n\
         [[users]]\nname = \"reader\"\nwait = {{ constant = 0.02 }}\n\
         [[users.tasks]]\nname = \"ping\"\nweight = 3\nsteps = [{{ path = \"/ping\" }}]\n\
         [[users.tasks]]\nname = \"slow\"\nweight = 1\nsteps = [{{ path = \"/slow\" }}]\n"
    );
    let path = dir.join("plan.toml");
    std::fs::write(&path, text).expect("write plan");
    path
}

fn summary(dir: &Path) -> (PathBuf, Value) {
    let runs = dir.join("runs");
    let run = std::fs::read_dir(&runs)
        .expect("runs dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.join("summary.json").exists())
        .expect("a run directory");
    let text = std::fs::read_to_string(run.join("summary.json")).expect("summary");
    (run, serde_json::from_str(&text).expect("summary parses"))
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// The Aggregated row of stats.csv: (count, failures, percentile columns as written).
fn aggregated_csv(run: &Path) -> (u64, u64, Vec<String>) {
    let text = std::fs::read_to_string(run.join("stats.csv")).expect("stats.csv");
    let line = text
        .lines()
        .find(|l| l.starts_with(",Aggregated,"))
        .expect("Aggregated row");
    let cols: Vec<String> = line.split(',').map(String::from).collect();
    (
        cols[2].parse().expect("count"),
        cols[3].parse().expect("failures"),
        cols[11..22].to_vec(),
    )
}

#[test]
fn three_workers_sum_to_the_total_and_merge_percentiles_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = target();
    let c = cluster("sum");
    let _w: Vec<Proc> = ["w1", "w2", "w3"]
        .iter()
        .map(|n| worker(dir.path(), &c, n, &[]))
        .collect();
    let plan = plan(
        dir.path(),
        "[[stages]]\nduration = \"4s\"\nusers = 7\nspawn_rate = 20\n",
    );
    let (code, out) = finish(
        master(dir.path(), &c, &plan, &t.base, 3, &[]),
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(0), "{out}");
    let (run, s) = summary(dir.path());
    let d = &s["distributed"];
    let workers = d["workers"].as_array().expect("workers");
    assert_eq!(workers.len(), 3, "{d}");
    assert_eq!(d["degraded"], false);

    // Totals: the merged count is what the server answered and the sum of the workers'.
    let total = u(&s["aggregated"]["count"]);
    assert!(total > 50, "{total}");
    assert_eq!(u(&s["aggregated"]["failures"]), 0);
    assert_eq!(total, t.hits.load(Ordering::SeqCst));
    let streamed: u64 = workers.iter().map(|w| u(&w["requests"])).sum();
    let reported: u64 = workers.iter().map(|w| u(&w["reported_requests"])).sum();
    assert_eq!((streamed, reported), (total, total));
    // Users split 3/2/2 by equal weights, all of them ran.
    let mut users: Vec<u64> = workers.iter().map(|w| u(&w["users"])).collect();
    users.sort_unstable();
    assert_eq!(users, vec![2, 2, 3]);
    assert_eq!(u(&s["settings"]["peak_users"]), 7);
    for w in workers {
        assert_eq!(w["state"], "finished", "{w}");
        assert!(u(&w["requests"]) > 0, "{w}");
    }

    // Percentiles: one histogram of every worker's own samples gives exactly the report's.
    let mut merged = None;
    for w in workers {
        let e: EncodedHistogram = serde_json::from_value(w["hist"].clone()).expect("hist");
        let mut h = e.decode().expect("V2 histogram");
        match &mut merged {
            None => {
                // A decoded histogram keeps its range; let it grow to take the others'.
                h.auto(true);
                merged = Some(h);
            }
            Some(m) => m.add(&h).expect("add"),
        }
    }
    let merged = merged.expect("histograms");
    assert_eq!(merged.len(), total);
    let report: Vec<f64> = s["aggregated"]["percentiles_ms"]
        .as_array()
        .expect("percentiles")
        .iter()
        .map(|v| v.as_f64().expect("ms"))
        .collect();
    let expected: Vec<f64> = QUANTILES
        .iter()
        .map(|q| merged.value_at_quantile(*q) as f64 / 1000.0)
        .collect();
    assert_eq!(report, expected);
    let (csv_count, csv_failures, csv_pcts) = aggregated_csv(&run);
    assert_eq!((csv_count, csv_failures), (total, 0));
    let written: Vec<String> = expected
        .iter()
        .map(|v| pique_load::report::csv::num(*v))
        .collect();
    assert_eq!(csv_pcts, written);
    // The per-second series accounts for every request, and the per-worker table is written.
    let series: u64 = s["timeseries"]
        .as_array()
        .expect("series")
        .iter()
        .map(|p| u(&p["requests"]))
        .sum();
    assert_eq!(series, total);
    let workers_csv = std::fs::read_to_string(run.join("workers.csv")).expect("workers.csv");
    assert_eq!(workers_csv.lines().count(), 4, "{workers_csv}");
    let html = std::fs::read_to_string(run.join("report.html")).expect("report");
    assert!(html.contains("<h2>Workers</h2>") && html.contains("w2"));
}

#[test]
fn a_killed_worker_is_reported_and_the_run_finishes_degraded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = target();
    let c = cluster("kill");
    let mut ws: Vec<Proc> = ["k1", "k2", "k3"]
        .iter()
        .map(|n| worker(dir.path(), &c, n, &[]))
        .collect();
    let plan = plan(
        dir.path(),
        "[[stages]]\nduration = \"9s\"\nusers = 6\nspawn_rate = 20\n",
    );
    let m = master(dir.path(), &c, &plan, &t.base, 3, &[]);
    ws[1].wait_for("run ", Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(2));
    let _ = ws[1].child.kill();
    let killed = Instant::now();
    let noticed = m.wait_for("worker k2 lost", Duration::from_secs(8));
    assert!(noticed - killed < Duration::from_secs(5) + Duration::from_millis(500));
    let (code, out) = finish(m, Duration::from_secs(60));
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("DEGRADED"),
        "the progress line says so:\n{out}"
    );
    let (run, s) = summary(dir.path());
    let d = &s["distributed"];
    assert_eq!(d["degraded"], true);
    let rows = d["workers"].as_array().expect("workers");
    let k2 = rows.iter().find(|w| w["name"] == "k2").expect("k2 row");
    assert_eq!(k2["state"], "lost");
    assert!(k2["lost_at_s"].as_f64().expect("lost at") < 9.0, "{k2}");
    assert!(k2["reported_requests"].is_null());
    for w in rows.iter().filter(|w| w["name"] != "k2") {
        assert_eq!(w["state"], "finished", "{w}");
    }
    // What the lost worker streamed before it died still counts, exactly once.
    let streamed: u64 = rows.iter().map(|w| u(&w["requests"])).sum();
    assert_eq!(streamed, u(&s["aggregated"]["count"]));
    assert!(u(&k2["requests"]) > 0);
    let html = std::fs::read_to_string(run.join("report.html")).expect("report");
    assert!(html.contains("DEGRADED") && html.contains("lost at"));
}

#[test]
fn late_workers_start_the_run_and_extra_ones_wait() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = target();
    let c = cluster("late");
    let _early = worker(dir.path(), &c, "early", &[]);
    let plan = plan(
        dir.path(),
        "[[stages]]\nduration = \"4s\"\nusers = 4\nspawn_rate = 20\n",
    );
    let m = master(dir.path(), &c, &plan, &t.base, 2, &[]);
    m.wait_for("1/2 ready", Duration::from_secs(20));
    // The second worker joins after the master started waiting: the run starts with it.
    let late = worker(dir.path(), &c, "late", &[]);
    late.wait_for("run ", Duration::from_secs(20));
    // A third joins during the run: it is not given load and waits for the next run.
    let extra = worker(dir.path(), &c, "extra", &[]);
    let (code, out) = finish(m, Duration::from_secs(60));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("worker extra joined during the run"), "{out}");
    let (_, s) = summary(dir.path());
    let d = &s["distributed"];
    let names: Vec<&str> = d["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .map(|w| w["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, vec!["early", "late"]);
    let idle: Vec<&str> = d["idle"]
        .as_array()
        .expect("idle")
        .iter()
        .map(|v| v.as_str().expect("id"))
        .collect();
    assert!(idle.len() == 1 && idle[0].starts_with("extra-"), "{idle:?}");
    assert!(!extra.output().contains("run "), "{}", extra.output());

    // More workers than asked for: the earliest run, the others wait.
    let dir2 = tempfile::tempdir().expect("tempdir");
    let plan2 = super_plan(dir2.path());
    let m = master(dir2.path(), &c, &plan2, &t.base, 1, &[]);
    let (code, out) = finish(m, Duration::from_secs(60));
    assert_eq!(code, Some(0), "{out}");
    let (_, s) = summary(dir2.path());
    let d = &s["distributed"];
    assert_eq!(d["workers"][0]["name"], "early", "{d}");
    assert_eq!(d["idle"].as_array().map(Vec::len), Some(2), "{d}");
}

fn super_plan(dir: &Path) -> PathBuf {
    plan(
        dir,
        "[[stages]]\nduration = \"2s\"\nusers = 2\nspawn_rate = 20\n",
    )
}

#[test]
fn a_worker_of_another_version_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = target();
    let c = cluster("version");
    let old = worker(dir.path(), &c, "old", &["--announce-version", "0.0.0-old"]);
    let plan = super_plan(dir.path());
    let (code, out) = finish(
        master(
            dir.path(),
            &c,
            &plan,
            &t.base,
            1,
            &["--workers-timeout", "3s"],
        ),
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("refused") && out.contains("0.0.0-old") && out.contains("0 ready"),
        "{out}"
    );
    let (code, wout) = finish(old, Duration::from_secs(10));
    assert_ne!(code, Some(0), "{wout}");
    assert!(
        wout.contains("refused by the master") && wout.contains("0.0.0-old"),
        "{wout}"
    );
    assert_eq!(t.hits.load(Ordering::SeqCst), 0, "no load without workers");
}

#[test]
fn workers_stop_within_five_seconds_when_the_master_dies_and_serve_the_next_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = target();
    let c = cluster("orphan");
    let w = worker(dir.path(), &c, "o1", &[]);
    let long = plan(
        dir.path(),
        "[[stages]]\nduration = \"60s\"\nusers = 3\nspawn_rate = 20\n",
    );
    let mut m = master(dir.path(), &c, &long, &t.base, 1, &[]);
    w.wait_for("run ", Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(2));
    assert!(t.hits.load(Ordering::SeqCst) > 0);
    let _ = m.child.kill();
    let _ = m.child.wait();
    let killed = Instant::now();
    let stopped = w.wait_for("done:", Duration::from_secs(10));
    assert!(
        stopped - killed <= Duration::from_secs(5),
        "{:?}",
        stopped - killed
    );
    assert!(w.output().contains("the master is gone"));
    let after = t.hits.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        t.hits.load(Ordering::SeqCst),
        after,
        "no requests after the stop"
    );

    // The same worker serves the next master.
    let dir2 = tempfile::tempdir().expect("tempdir");
    let short = super_plan(dir2.path());
    let (code, out) = finish(
        master(dir2.path(), &c, &short, &t.base, 1, &[]),
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(0), "{out}");
    let (_, s) = summary(dir2.path());
    assert_eq!(s["distributed"]["workers"][0]["name"], "o1");
    assert!(u(&s["aggregated"]["count"]) > 0);
}

#[test]
fn open_model_and_capacity_search_run_distributed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = target();
    let c = cluster("shapes");
    let _ws: Vec<Proc> = ["s1", "s2"]
        .iter()
        .map(|n| worker(dir.path(), &c, n, &[]))
        .collect();
    // Open model: 40 iterations/s for 3 s, split 20/20.
    let open = plan(
        dir.path(),
        "[arrival]\nmax_users = 20\n[[arrival.stages]]\nduration = \"3s\"\nrate = 40\n",
    );
    let (code, out) = finish(
        master(dir.path(), &c, &open, &t.base, 2, &[]),
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(0), "{out}");
    let (_, s) = summary(dir.path());
    let total = u(&s["aggregated"]["count"]);
    assert!(
        (110..=122).contains(&total),
        "120 iterations expected, got {total}"
    );
    for w in s["distributed"]["workers"].as_array().expect("workers") {
        let n = u(&w["requests"]);
        assert!((55..=61).contains(&n), "each worker runs half: {w}");
    }

    // Capacity: the master steps 2 -> 4 -> 6 users over both workers and judges each step.
    let dir2 = tempfile::tempdir().expect("tempdir");
    let cap = plan(
        dir2.path(),
        "[capacity]\nstart_users = 2\nstep_users = 2\nstep_every = \"2s\"\nmax_users = 6\nstop_error_rate = 0.05\n",
    );
    let (code, out) = finish(
        master(dir2.path(), &c, &cap, &t.base, 2, &[]),
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(0), "{out}");
    let (_, s) = summary(dir2.path());
    let steps: Vec<u64> = s["capacity"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|st| u(&st["users"]))
        .collect();
    assert_eq!(steps, vec![2, 4, 6], "{}", s["capacity"]);
    assert_eq!(s["capacity"]["last_good_users"], 6);
    assert!(s["capacity"]["steps"][2]["requests"].as_u64().unwrap_or(0) > 0);
    let peaks: u64 = s["distributed"]["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .map(|w| u(&w["peak_users"]))
        .sum();
    assert_eq!(peaks, 6);
}
