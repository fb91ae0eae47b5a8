//! The Grafana dashboards and the Prometheus configuration in `deploy/` against the metrics the
//! code really exports: every metric name a dashboard queries must be on the `/metrics` of a
//! running API with its workers (`pique demo`, which runs them all against real PostgreSQL and
//! Redis and sends a mixed load with payments) or of a running load generator
//! (`--prometheus-listen`). A renamed metric breaks this test, not a dashboard in production.

// Test code: a failed unwrap is a failed test (helpers included, not only #[test] fns).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// PromQL words that are not metric names (aggregations too: `sum by (le) (...)` puts a
/// label list, not a parenthesis, after `sum`).
#[rustfmt::skip]
const KEYWORDS: &[&str] = &[
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset", "le", "inf", "nan", "sum", "avg", "min", "max", "count", "group",
    "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values",
];

/// Metric names in a PromQL expression: identifiers that are not functions, keywords, label
/// names (inside `{}` or `by (...)`), strings or Grafana variables.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut s = String::new();
    let mut depth_brace = 0;
    let mut in_string = false;
    for c in expr.chars() {
        match c {
            '"' => in_string = !in_string,
            '{' if !in_string => depth_brace += 1,
            '}' if !in_string => depth_brace -= 1,
            _ if in_string || depth_brace > 0 => {}
            _ => s.push(c),
        }
    }
    // Label lists of aggregations, range selectors and Grafana variables.
    let mut cleaned = String::new();
    let mut rest = s.as_str();
    while let Some(i) = rest.find(['(', '[', '$']) {
        let (before, after) = rest.split_at(i);
        cleaned.push_str(before);
        let word = before
            .trim_end()
            .rsplit(|c: char| !c.is_alphanumeric() && c != '_')
            .next()
            .unwrap_or("");
        let close = match after.as_bytes()[0] {
            b'[' => Some(']'),
            b'(' if word == "by" || word == "without" => Some(')'),
            _ => None,
        };
        match (after.as_bytes()[0], close) {
            (_, Some(close)) => {
                let end = after.find(close).map_or(after.len(), |e| e + 1);
                rest = &after[end..];
            }
            (b'$', _) => {
                let end = after[1..]
                    .find(|c: char| !c.is_alphanumeric() && c != '_')
                    .map_or(after.len(), |e| e + 1);
                rest = &after[end..];
            }
            _ => {
                cleaned.push('(');
                rest = &after[1..];
            }
        }
    }
    cleaned.push_str(rest);
    let mut names = BTreeSet::new();
    let mut chars = cleaned.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if !(c.is_ascii_alphabetic() || c == '_' || c == ':') {
            continue;
        }
        let mut end = i + c.len_utf8();
        while let Some(&(j, d)) = chars.peek() {
            if d.is_ascii_alphanumeric() || d == '_' || d == ':' {
                end = j + d.len_utf8();
                chars.next();
            } else {
                break;
            }
        }
        let word = &cleaned[i..end];
        let called = cleaned[end..].trim_start().starts_with('(');
        let numeric_prefix =
            i > 0 && cleaned[..i].ends_with(|c: char| c.is_ascii_digit() || c == '.');
        if !called && !numeric_prefix && !KEYWORDS.contains(&word.to_ascii_lowercase().as_str()) {
            names.insert(word.to_string());
        }
    }
    names
}

/// Every `expr` in a dashboard, with its panel's title.
fn exprs(v: &Value, title: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            let title = m.get("title").and_then(Value::as_str).unwrap_or(title);
            if let Some(e) = m.get("expr").and_then(Value::as_str) {
                out.push((title.to_string(), e.to_string()));
            }
            m.values().for_each(|x| exprs(x, title, out));
        }
        Value::Array(a) => a.iter().for_each(|x| exprs(x, title, out)),
        _ => {}
    }
}

fn dashboards() -> Vec<(String, Value)> {
    let dir = format!("{ROOT}/deploy/grafana/dashboards");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .expect("deploy/grafana/dashboards")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read dashboard");
            let v: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Metric names on a `/metrics` page, without the `_bucket`/`_sum`/`_count` of histograms
/// (both forms are kept: queries use `_bucket`).
fn exported(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let name: String = line
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = name.strip_suffix(suffix) {
                names.insert(base.to_string());
            }
        }
        names.insert(name);
    }
    names
}

#[test]
fn promql_names_are_extracted() {
    let n = metric_names(
        r#"histogram_quantile(0.95, sum by (le, route) (rate(http_request_duration_seconds_bucket{job="api", route=~"/a|b"}[$__rate_interval]))) / max(pique_db_pool_max) + 1e3"#,
    );
    assert_eq!(
        n.into_iter().collect::<Vec<_>>(),
        ["http_request_duration_seconds_bucket", "pique_db_pool_max"]
    );
}

#[test]
fn dashboards_query_the_provisioned_prometheus_and_its_jobs() {
    let prom: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(format!("{ROOT}/deploy/prometheus/prometheus.yml"))
            .expect("prometheus.yml"),
    )
    .expect("prometheus.yml parses");
    let jobs: BTreeSet<String> = prom["scrape_configs"]
        .as_sequence()
        .expect("scrape_configs")
        .iter()
        .filter_map(|j| j["job_name"].as_str().map(String::from))
        .collect();
    assert_eq!(
        jobs,
        ["api", "lb", "load", "workers"].map(String::from).into(),
        "one job per kind of process"
    );
    let ds: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(format!(
            "{ROOT}/deploy/grafana/provisioning/datasources/prometheus.yml"
        ))
        .expect("datasource"),
    )
    .expect("datasource parses");
    let uid = ds["datasources"][0]["uid"]
        .as_str()
        .expect("uid")
        .to_string();
    assert_eq!(ds["datasources"][0]["url"], "http://prometheus:9090");
    let boards = dashboards();
    let titles: Vec<&str> = boards
        .iter()
        .filter_map(|(_, b)| b["title"].as_str())
        .collect();
    assert_eq!(
        titles,
        ["pique API", "pique load generator", "pique workers"]
    );
    for (file, board) in &boards {
        let mut found = Vec::new();
        exprs(board, "", &mut found);
        assert!(found.len() >= 6, "{file}: {} queries", found.len());
        for panel in board["panels"].as_array().expect("panels") {
            assert_eq!(
                panel["datasource"]["uid"],
                uid.as_str(),
                "{file}: {}",
                panel["title"]
            );
        }
        for (title, e) in &found {
            for job in e.split("job=\"").skip(1) {
                let job = job.split('"').next().unwrap_or("");
                assert!(
                    jobs.contains(job),
                    "{file}: {title}: job {job:?} is not scraped"
                );
            }
        }
    }
}

/// `pique demo --keep-running`, killed when the test ends.
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(40);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const GENERATOR_PLAN: &str = r#"
name = "names"
run_time = "3s"
[[stages]]
duration = "3s"
users = 2
spawn_rate = 10
[[users]]
name = "U"
wait = { constant = 0.1 }
[[users.tasks]]
steps = [{ path = "/api/v1/shows/", name = "/api/v1/shows/ [list]" }, { path = "/no-such-page/" }]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_a_dashboard_uses_is_exported_by_a_running_process() {
    let mut wanted: BTreeSet<(String, String)> = BTreeSet::new();
    for (file, board) in dashboards() {
        let mut found = Vec::new();
        exprs(&board, "", &mut found);
        for (title, e) in found {
            for name in metric_names(&e) {
                wanted.insert((name, format!("{file}: {title}")));
            }
        }
    }
    assert!(wanted.len() > 20, "{wanted:?}");

    // The API and its workers: the demo runs them all, with a mixed load including payments
    // (so PDFs and e-mails), then keeps running.
    let out_dir = tempfile::tempdir().expect("tempdir");
    let redis =
        std::env::var("PIQUE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    let mut child = Command::new(env!("CARGO_BIN_EXE_pique"))
        .args([
            "demo",
            "--keep-running",
            "--run-time",
            "8s",
            "--users",
            "20",
            "--out",
        ])
        .arg(out_dir.path())
        .env("DATABASE_URL", pique_store::testing::server_url())
        .env("REDIS_URL", &redis)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start pique demo");
    let stdout = child.stdout.take().expect("stdout");
    let demo = Demo(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line
                .strip_prefix("Still running at ")
                .and_then(|r| r.split(';').next())
            {
                let _ = tx.send(url.to_string());
            }
        }
    });
    let api = rx
        .recv_timeout(Duration::from_secs(240))
        .expect("the demo's load run to end with `Still running at URL`");

    // The load generator, with its exporter served over HTTP like --prometheus-listen.
    let exporter = pique_load::Exporter::new().expect("exporter");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let generator_metrics = format!("http://{}/metrics", listener.local_addr().expect("addr"));
    tokio::spawn(Arc::clone(&exporter).serve(listener, std::future::pending()));
    let plan = pique_load::Plan::from_toml_str(GENERATOR_PLAN, "names.toml").expect("plan");
    let control = pique_load::RunControl {
        observers: pique_load::Observers::default().with(exporter.clone()),
        ..Default::default()
    };
    let opts = pique_load::RunOptions {
        hosts: vec![api.clone()],
        out_dir: out_dir.path().join("gen"),
        quiet: true,
        ..Default::default()
    };
    pique_load::run_plan_controlled(&plan, &opts, &control)
        .await
        .expect("generator run");

    let http = reqwest::Client::new();
    let generator = exported(
        &http
            .get(&generator_metrics)
            .send()
            .await
            .expect("generator /metrics")
            .text()
            .await
            .expect("text"),
    );
    // Workers finish the paid orders' PDFs and e-mails after the load: wait for them.
    let deadline = Instant::now() + Duration::from_secs(90);
    let missing = loop {
        let text = http
            .get(format!("{api}/metrics"))
            .send()
            .await
            .expect("API /metrics")
            .text()
            .await
            .expect("text");
        let have: BTreeSet<String> = exported(&text).union(&generator).cloned().collect();
        let missing: Vec<String> = wanted
            .iter()
            .filter(|(name, _)| !have.contains(name))
            .map(|(name, panel)| format!("{name} ({panel})"))
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    drop(demo);
    assert!(
        missing.is_empty(),
        "dashboards query metrics no running process exports:\n  {}",
        missing.join("\n  ")
    );
}
