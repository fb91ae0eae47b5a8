//! The web UI's server side over plain HTTP: plans offered, Start/Stop/users, the live state
//! over server-sent events, downloads; changing users in the engine; the Prometheus exporter.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pique_load::engine::Steer;
use pique_load::{Exporter, Observers, RunControl, RunOptions, UiConfig};
use serde_json::{Value, json};

use crate::common;

async fn until<T>(secs: u64, what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn closed_plan(host: &str) -> String {
    format!(
        r#"
name = "steady"
host = "{host}"
run_time = "30s"
[[stages]]
duration = "30s"
users = 2
spawn_rate = 100
[thresholds]
"*" = ["error_rate < 50%"]
[[users]]
name = "U"
wait = {{ constant = 0.02 }}
[[users.tasks]]
steps = [{{ path = "/c/a", name = "/c/a" }}, {{ path = "/nope", name = "/nope" }}]
"#
    )
}

/// Reads server-sent events from `resp` until `want` events were seen; returns (kind, data).
async fn read_events(resp: &mut reqwest::Response, want: usize) -> Vec<(String, Value)> {
    let mut buf = String::new();
    let mut out = Vec::new();
    while out.len() < want {
        let chunk = tokio::time::timeout(Duration::from_secs(20), resp.chunk())
            .await
            .expect("an event within 20 s")
            .expect("stream")
            .expect("stream still open");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut kind = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(k) = line.strip_prefix("event:") {
                    kind = k.trim().to_string();
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim_start());
                }
            }
            if !kind.is_empty() {
                out.push((kind, serde_json::from_str(&data).expect("JSON data")));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_starts_streams_steers_stops_and_serves_the_files() {
    let srv = common::start().await;
    let work = tempfile::tempdir().unwrap();
    let plans = work.path().join("plans");
    std::fs::create_dir_all(plans.join("smoke")).unwrap();
    let main = plans.join("steady.toml");
    std::fs::write(&main, closed_plan(&srv.url())).unwrap();
    std::fs::write(
        plans.join("smoke/other.toml"),
        closed_plan(&srv.url()).replace("steady", "other"),
    )
    .unwrap();
    std::fs::write(plans.join("broken.toml"), "name = ").unwrap();
    let out = work.path().join("runs");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ui = format!("http://{}", listener.local_addr().unwrap());
    let app = pique_load::ui::app(UiConfig {
        plan_path: main.clone(),
        plans_dir: plans.clone(),
        opts: RunOptions {
            out_dir: out.clone(),
            ..RunOptions::default()
        },
        observers: Observers::default(),
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();

    // Every plan of the directory and its smoke/ directory, the command line's first.
    let offered: Value = http
        .get(format!("{ui}/api/plans"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = offered["plans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "{offered}");
    assert!(ids[0].ends_with("steady.toml"));
    let broken = offered["plans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"].as_str().unwrap().ends_with("broken.toml"))
        .unwrap();
    assert!(broken["error"].is_string(), "{broken}");
    assert_eq!(offered["plans"][0]["users"], 2);
    assert_eq!(offered["plans"][0]["model"], "closed");

    // Nothing to stop or steer yet; files only after a run; plans only from the list.
    let post = |path: &str, body: Value| http.post(format!("{ui}{path}")).json(&body).send();
    assert_eq!(post("/api/stop", json!({})).await.unwrap().status(), 409);
    assert_eq!(
        post("/api/users", json!({"users": 3}))
            .await
            .unwrap()
            .status(),
        409
    );
    assert_eq!(
        http.get(format!("{ui}/files/report.html"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let r = post("/api/start", json!({"plan": "/etc/passwd"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let detail: Value = r.json().await.unwrap();
    assert!(
        detail["detail"].as_str().unwrap().contains("no plan"),
        "{detail}"
    );
    let r = post("/api/start", json!({"host": "ftp://x", "run_time": "30s"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        post("/api/start", json!({"run_time": "soon"}))
            .await
            .unwrap()
            .status(),
        400
    );

    // A first client follows the stream from the start.
    let mut first = http.get(format!("{ui}/api/events")).send().await.unwrap();
    assert_eq!(
        first.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let idle = read_events(&mut first, 1).await;
    assert_eq!(idle[0].0, "snapshot");
    assert_eq!(idle[0].1["status"], "idle");

    assert_eq!(post("/api/start", json!({})).await.unwrap().status(), 202);
    assert_eq!(
        post("/api/start", json!({})).await.unwrap().status(),
        409,
        "one run at a time"
    );
    let events = read_events(&mut first, 3).await;
    assert_eq!(events[0].0, "snapshot", "{events:?}");
    assert_eq!(events[0].1["status"], "running");
    assert_eq!(events[0].1["run"]["plan"], "steady");
    let second = events
        .iter()
        .find(|(k, _)| k == "second")
        .expect("a second")
        .1
        .clone();
    assert_eq!(second["point"]["users"], 2, "{second}");
    let rows = second["requests"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{second}");
    assert!(second["aggregated"]["count"].as_u64().unwrap() > 0);

    // Steering: the users follow.
    let r = post("/api/users", json!({"users": 4, "spawn_rate": 100}))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        post("/api/users", json!({"users": 0}))
            .await
            .unwrap()
            .status(),
        400
    );
    until(20, "4 users", async || {
        let s: Value = http
            .get(format!("{ui}/api/state"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (s["history"]["users"].as_array()?.last()? == 4).then_some(())
    })
    .await;

    // A second client (a reload) gets the whole history in its first event.
    let mut late = http.get(format!("{ui}/api/events")).send().await.unwrap();
    let snap = read_events(&mut late, 1).await;
    let users = snap[0].1["history"]["users"].as_array().unwrap().clone();
    assert!(users.len() >= 2, "{users:?}");
    assert_eq!(users[0], 2);
    assert_eq!(snap[0].1["steer"]["users"], 4);
    assert_eq!(snap[0].1["failures"][0]["error"], "HTTP 404");

    // Graded so far.
    until(30, "grading so far", async || {
        let s: Value = http
            .get(format!("{ui}/api/state"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let g = s.get("grading").filter(|g| !g.is_null())?.clone();
        Some(g)
    })
    .await;

    assert_eq!(post("/api/stop", json!({})).await.unwrap().status(), 202);
    let done = until(30, "the run to finish", async || {
        let s: Value = http
            .get(format!("{ui}/api/state"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (s["status"] == "finished").then_some(s)
    })
    .await;
    assert_eq!(done["outcome"]["stop_reason"], "stopped by the user");
    assert_eq!(done["grading"]["last"], true);
    assert_eq!(
        done["outcome"]["exit_code"], 1,
        "half the requests fail: {}",
        done["grading"]["thresholds"]
    );
    let files: Vec<&str> = done["outcome"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        files,
        [
            "report.html",
            "stats.csv",
            "stats_history.csv",
            "failures.csv",
            "summary.json"
        ]
    );
    let report = http
        .get(format!("{ui}/files/report.html"))
        .send()
        .await
        .unwrap();
    assert_eq!(report.status(), 200);
    assert!(report.text().await.unwrap().contains("/c/a"));
    let csv = http
        .get(format!("{ui}/files/failures.csv"))
        .send()
        .await
        .unwrap();
    let disposition = csv.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        disposition.starts_with("attachment; filename=\""),
        "{disposition}"
    );
    assert!(csv.text().await.unwrap().contains("HTTP 404"));
    for bad in ["../steady.toml", "..%2F..%2Fsteady.toml", "stats.txt"] {
        let r = http.get(format!("{ui}/files/{bad}")).send().await.unwrap();
        assert_eq!(r.status(), 404, "{bad}");
    }
    // The first client saw the end too.
    let tail = read_events(&mut first, 1).await;
    assert!(!tail.is_empty());

    // Another plan from the list runs next.
    let other = ids.iter().find(|i| i.ends_with("other.toml")).unwrap();
    let r = post(
        "/api/start",
        json!({"plan": other, "users": 1, "run_time": "2s"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 202);
    let s = until(30, "the second run to finish", async || {
        let s: Value = http
            .get(format!("{ui}/api/state"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (s["status"] == "finished" && s["run"]["number"] == 2).then_some(s)
    })
    .await;
    assert_eq!(s["run"]["plan"], "other");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steering_moves_closed_users_and_the_open_models_cap() {
    let srv = common::start().await;
    let dir = tempfile::tempdir().unwrap();

    // Closed model: 2 users, then 6 at once, then 1.
    let plan = common::plan(&closed_plan(&srv.url()).replace("\"30s\"", "\"5s\""));
    let control = RunControl::default();
    let run = {
        let (plan, opts, control) = (
            plan.clone(),
            common::opts(&srv, dir.path()),
            control.clone(),
        );
        tokio::spawn(async move { pique_load::run_plan_controlled(&plan, &opts, &control).await })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    control.steering.set(Steer {
        users: 6,
        spawn_rate: None,
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    control.steering.set(Steer {
        users: 1,
        spawn_rate: None,
    });
    let outcome = run.await.unwrap().unwrap();
    let users: Vec<u32> = outcome.summary.timeseries.iter().map(|p| p.users).collect();
    assert_eq!(users.first(), Some(&2), "{users:?}");
    assert!(users.contains(&6), "{users:?}");
    assert_eq!(users[users.len() - 2], 1, "{users:?}");
    assert_eq!(outcome.summary.settings.peak_users, 6);

    // Open model: 40 iterations/s of 100 ms need 4 users; the cap of 1 holds them back until
    // it is raised.
    let plan = common::plan(&format!(
        r#"
name = "open"
host = "{}"
[arrival]
max_users = 1
stages = [{{ duration = "4s", rate = 40 }}]
[[users]]
name = "U"
[[users.tasks]]
steps = [{{ path = "/slow" }}]
"#,
        srv.url()
    ));
    let control = RunControl::default();
    let run = {
        let (opts, control) = (common::opts(&srv, dir.path()), control.clone());
        tokio::spawn(async move { pique_load::run_plan_controlled(&plan, &opts, &control).await })
    };
    tokio::time::sleep(Duration::from_millis(1800)).await;
    control.steering.set(Steer {
        users: 8,
        spawn_rate: None,
    });
    let outcome = run.await.unwrap().unwrap();
    let series = &outcome.summary.timeseries;
    let before: u32 = series
        .iter()
        .filter(|p| p.t <= 1.5)
        .map(|p| p.users)
        .max()
        .unwrap();
    let after: u32 = series
        .iter()
        .filter(|p| p.t >= 2.5)
        .map(|p| p.users)
        .max()
        .unwrap();
    assert!(before <= 1, "{series:?}");
    assert!(after >= 3, "the raised cap lets more users work: {after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exporter_serves_users_requests_failures_and_latency_per_name() {
    let srv = common::start().await;
    let dir = tempfile::tempdir().unwrap();
    let exporter = Exporter::new().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = format!("http://{}/metrics", listener.local_addr().unwrap());
    tokio::spawn(exporter.clone().serve(listener, std::future::pending()));
    let plan = common::plan(&closed_plan(&srv.url()).replace("\"30s\"", "\"3s\""));
    let control = RunControl {
        observers: Observers::default().with(exporter.clone()),
        ..RunControl::default()
    };
    let run = {
        let (opts, control) = (common::opts(&srv, dir.path()), control.clone());
        tokio::spawn(async move { pique_load::run_plan_controlled(&plan, &opts, &control).await })
    };
    let http = reqwest::Client::new();
    let during = until(20, "2 users on /metrics", async || {
        let text = http.get(&metrics).send().await.ok()?.text().await.ok()?;
        text.contains("pique_load_users 2").then_some(text)
    })
    .await;
    assert!(during.contains("pique_load_running 1"), "{during}");
    assert!(
        during.contains("pique_load_requests_total{method=\"GET\",name=\"/c/a\"}"),
        "{during}"
    );
    let outcome = run.await.unwrap().unwrap();
    let text = http
        .get(&metrics)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let samples = pique_load::scrape::parse_prometheus(&text);
    let sum = |name: &str, filter: &[(&str, &str)]| pique_load::scrape::sum(&samples, name, filter);
    // Every request of the run up to its last full second is exported; the partial second at
    // the end closes after the last export.
    let exported = sum("pique_load_requests_total", &[("name", "/c/a")]).unwrap();
    let counted = outcome
        .summary
        .requests
        .iter()
        .find(|r| r.name == "/c/a")
        .unwrap()
        .count as f64;
    assert!(
        exported > 0.0 && exported <= counted,
        "{exported} of {counted}"
    );
    let fails = sum("pique_load_failures_total", &[("name", "/nope")]).unwrap();
    assert!(fails > 0.0);
    assert_eq!(
        sum("pique_load_failures_total", &[("name", "/c/a")]),
        Some(0.0),
        "every name is exported from the start"
    );
    let inf = sum(
        "pique_load_request_duration_seconds_bucket",
        &[("name", "/c/a"), ("le", "+Inf")],
    );
    assert_eq!(inf, Some(exported));
    assert!(text.contains("pique_load_running 0"), "{text}");
    let _ = Arc::clone(&exporter);
}
