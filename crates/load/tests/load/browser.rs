//! The web UI in a real browser: Debian's chromium, driven through chromedriver (WebDriver)
//! with fantoccini. It opens the UI, starts a run against a test server, sees the table fill,
//! changes the users, reloads and finds the chart history, stops, and opens the report,
//! saving screenshots on the way.
//!
//! chromium and chromedriver must be installed (`apt-get install chromium chromium-driver`;
//! `.ci/run` does it). Without them the test fails, saying so, unless
//! `PIQUE_SKIP_BROWSER_TESTS=1` asks to skip it. Screenshots go to `PIQUE_UI_SCREENSHOTS`
//! (default: this test binary's temporary directory under `target/`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use pique_load::{Observers, RunOptions, UiConfig};
use serde_json::{Value, json};

/// Kills chromedriver (and so its browser) when the test ends, however it ends.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn find(env: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    candidates.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Polls `check` until it gives `Some`, for at most `secs` seconds.
async fn wait_for<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn text(c: &Client, css: &str) -> String {
    match c.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.unwrap_or(Value::Null)
}

async fn screenshot(c: &Client, dir: &Path, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    std::fs::create_dir_all(dir).expect("screenshot dir");
    let path = dir.join(name);
    std::fs::write(&path, png).expect("write screenshot");
    eprintln!("screenshot: {}", path.display());
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

async fn fill(c: &Client, css: &str, value: &str) {
    let e = c.find(Locator::Css(css)).await.expect(css);
    e.clear().await.expect("clear");
    e.send_keys(value).await.expect("type");
}

const PLAN: &str = r#"
name = "browse"
description = "Two users reading shows, one request that always fails"
run_time = "60s"
[[stages]]
duration = "60s"
users = 2
spawn_rate = 10
[thresholds]
"*" = ["p95 < 2s"]
[[users]]
name = "Reader"
wait = { constant = 0.05 }
[[users.tasks]]
steps = [
  { path = "/shows/", name = "/shows/ [list]", capture = [{ var = "show", pointer = "", pick = "random", then = "/id" }] },
  { path = "/shows/{{show}}/", name = "/shows/[id]/" },
  { path = "/dist", name = "/dist" },
  { path = "/nope", name = "/nope" },
]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_runs_steers_and_reports_a_plan_in_chromium() {
    let skip = std::env::var("PIQUE_SKIP_BROWSER_TESTS").is_ok_and(|v| v == "1");
    let chromium = find(
        "PIQUE_CHROMIUM",
        &["chromium", "chromium-browser", "google-chrome"],
    );
    let chromedriver = find("PIQUE_CHROMEDRIVER", &["chromedriver"]);
    let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
        if skip {
            eprintln!("skipped: no chromium/chromedriver and PIQUE_SKIP_BROWSER_TESTS=1");
            return;
        }
        panic!(
            "the browser test needs chromium and chromedriver: `apt-get install chromium \
             chromium-driver` (Debian), or PIQUE_CHROMIUM / PIQUE_CHROMEDRIVER with their \
             paths; PIQUE_SKIP_BROWSER_TESTS=1 skips it"
        );
    };

    let srv = crate::common::start().await;
    let work = tempfile::tempdir().expect("tempdir");
    let plans = work.path().join("plans");
    std::fs::create_dir_all(&plans).expect("plans dir");
    let plan_path = plans.join("browse.toml");
    std::fs::write(&plan_path, PLAN).expect("plan");
    let out = work.path().join("runs");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let ui = format!("http://{}", listener.local_addr().expect("addr"));
    let app = pique_load::ui::app(UiConfig {
        plan_path: plan_path.clone(),
        plans_dir: plans.clone(),
        opts: RunOptions {
            hosts: vec![srv.url()],
            out_dir: out.clone(),
            ..RunOptions::default()
        },
        observers: Observers::default(),
    });
    tokio::spawn(async move { axum::serve(listener, app).await });

    let port = free_port();
    let _driver = Driver(
        Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", chromedriver.display())),
    );
    let webdriver = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    wait_for(30, "chromedriver to answer", || async {
        http.get(format!("{webdriver}/status")).send().await.ok()
    })
    .await;
    let profile = tempfile::tempdir().expect("profile dir");
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1440,1000",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        },
    });
    let Value::Object(caps) = caps else {
        unreachable!()
    };
    let c = ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&webdriver)
        .await
        .expect("a chromium session through chromedriver");
    let shots = std::env::var_os("PIQUE_UI_SCREENSHOTS")
        .map_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")), PathBuf::from);

    // The form offers the plan, prefilled from its file.
    c.goto(&ui).await.expect("open the UI");
    wait_for(20, "the plan in the form", || async {
        let t = text(&c, "#plan").await;
        t.contains("browse").then_some(())
    })
    .await;
    assert_eq!(text(&c, "#start").await, "Start");
    assert_eq!(text(&c, "#status").await.to_lowercase(), "idle");
    fill(&c, "#users", "2").await;
    fill(&c, "#spawn-rate", "10").await;
    click(&c, "#start").await;

    // The table fills: a row per request name, the aggregated row, failures counted.
    wait_for(30, "the statistics table to fill", || async {
        let rows = js(
            &c,
            "return document.querySelectorAll('#stats-table tbody tr').length",
        )
        .await;
        let total = text(&c, "#stats-table tfoot").await;
        (rows.as_u64() == Some(4) && total.contains("Aggregated")).then_some(())
    })
    .await;
    let body = text(&c, "#stats-table tbody").await;
    for name in ["/shows/ [list]", "/shows/[id]/", "/dist", "/nope"] {
        assert!(body.contains(name), "{name} not in {body}");
    }
    assert_eq!(text(&c, "#status").await.to_lowercase(), "running");
    wait_for(20, "failures to be counted", || async {
        let n = text(&c, "#fail-count").await;
        (!n.is_empty() && n != "0").then_some(())
    })
    .await;
    // Sorting by a column reorders the rows (descending first for numbers).
    click(&c, "#stats-table th[data-key='avg_ms']").await;
    wait_for(20, "rows sorted by average, slowest first", || async {
        let avgs = js(
            &c,
            "return [...document.querySelectorAll('#stats-table tbody tr td:nth-child(9)')]\
             .map(td => parseFloat(td.textContent.replace(/,/g, '')))",
        )
        .await;
        let avgs: Vec<f64> = avgs
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default();
        (avgs.len() == 4 && avgs.windows(2).all(|w| w[0] >= w[1])).then_some(())
    })
    .await;

    // Change the users while it runs.
    wait_for(20, "the users form", || async {
        c.find(Locator::Css("#steer-users"))
            .await
            .ok()?
            .is_displayed()
            .await
            .ok()?
            .then_some(())
    })
    .await;
    fill(&c, "#steer-users", "5").await;
    fill(&c, "#steer-rate", "50").await;
    assert_eq!(text(&c, "#steer-apply").await, "Apply");
    click(&c, "#steer-apply").await;
    wait_for(30, "5 users", || async {
        (text(&c, "#h-users").await == "5").then_some(())
    })
    .await;
    wait_for(30, "a few seconds of history", || async {
        let n = js(&c, "return window.pique.state.history.t.length").await;
        (n.as_u64().unwrap_or(0) >= 4).then_some(())
    })
    .await;
    screenshot(&c, &shots, "ui.png").await;

    // Reload: the charts show the whole run so far, from the server's history.
    let before = js(&c, "return window.pique.state.history.t.length")
        .await
        .as_u64()
        .unwrap_or(0);
    c.refresh().await.expect("reload");
    click(&c, ".tabs button[data-tab='charts']").await;
    let points = wait_for(20, "the chart history after the reload", || async {
        let n: u64 = text(&c, "#chart-points").await.parse().ok()?;
        (n >= before).then_some(n)
    })
    .await;
    assert!(points >= 4, "{points}");
    let canvases = js(
        &c,
        "return document.querySelectorAll('.pane.active canvas').length",
    )
    .await;
    assert!(canvases.as_u64().unwrap_or(0) >= 3, "{canvases}");
    let users = js(&c, "return window.pique.state.history.users").await;
    let users: Vec<u64> = users
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    assert_eq!(users.first(), Some(&2), "{users:?}");
    assert_eq!(users.last(), Some(&5), "{users:?}");
    screenshot(&c, &shots, "ui-charts.png").await;

    // Failures and grading so far.
    click(&c, ".tabs button[data-tab='failures']").await;
    wait_for(20, "the failures table", || async {
        let failures = text(&c, "#failures-table").await;
        (failures.contains("/nope") && failures.contains("HTTP 404")).then_some(())
    })
    .await;
    click(&c, ".tabs button[data-tab='grading']").await;
    wait_for(30, "grading so far", || async {
        text(&c, "#graded-at")
            .await
            .contains("so far")
            .then_some(())
    })
    .await;
    wait_for(20, "the thresholds", || async {
        text(&c, "#thresholds-table")
            .await
            .contains("p95 < 2s")
            .then_some(())
    })
    .await;

    // Stop, then the report.
    click(&c, "#stop").await;
    wait_for(30, "the run to finish", || async {
        (text(&c, "#status").await.to_lowercase() == "finished").then_some(())
    })
    .await;
    assert!(text(&c, "#graded-at").await.contains("final"));
    let banner = text(&c, "#banner").await;
    assert!(banner.contains("stopped by the user"), "{banner}");
    let href = c
        .find(Locator::Css("#open-report"))
        .await
        .expect("report link")
        .attr("href")
        .await
        .expect("href")
        .expect("an href");
    click(&c, ".tabs button[data-tab='downloads']").await;
    wait_for(20, "the downloads", || async {
        let downloads = text(&c, "#downloads").await;
        ["report.html", "stats.csv", "failures.csv", "summary.json"]
            .iter()
            .all(|f| downloads.contains(f))
            .then_some(())
    })
    .await;
    c.goto(&format!("{ui}{href}"))
        .await
        .expect("open the report");
    let report = text(&c, "body").await;
    assert!(
        report.contains("browse") && report.contains("/shows/[id]/"),
        "{report}"
    );
    screenshot(&c, &shots, "ui-report.png").await;
    let stats = http
        .get(format!("{ui}/files/stats.csv"))
        .send()
        .await
        .expect("stats.csv");
    assert_eq!(stats.status(), 200);
    assert!(
        stats
            .headers()
            .get("content-disposition")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("attachment")),
        "{:?}",
        stats.headers()
    );
    c.close().await.expect("close the browser");
}
