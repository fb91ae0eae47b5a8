//! Output files: report.html, Locust-format CSVs, summary.json, grading, compare.

use std::sync::atomic::Ordering;

use pique_load::grade::Grade;
use pique_load::report::csv::STATS_HEADER;
use pique_load::{Summary, compare, run_plan};

const PLAN: &str = r#"
name = "report test"
max_requests = 60
run_time = "3s"
[[stages]]
duration = "3s"
users = 3
spawn_rate = 100
[[users]]
name = "U"
wait = { constant = 0.01 }
[[users.tasks]]
steps = [{ path = "/c/ok" }, { method = "POST", path = "/success/", body = { session_id = "nope" } }]
[thresholds]
"*" = ["p95 < 2s"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_writes_every_output_and_grades_honestly() {
    let srv = crate::common::start().await;
    let dir = tempfile::tempdir().unwrap();
    let plan = crate::common::plan(PLAN);
    let out = run_plan(&plan, &crate::common::opts(&srv, dir.path()))
        .await
        .unwrap();
    let run = &out.run_dir;
    assert!(run.starts_with(dir.path()));
    assert!(
        run.file_name()
            .unwrap()
            .to_string_lossy()
            .ends_with("-report-test")
    );

    let html = std::fs::read_to_string(&out.report_path).unwrap();
    assert!(
        html.contains("<svg") && html.contains("Success criteria") && html.contains("report test")
    );
    assert!(
        !html.contains("http://") || !html.contains("<script src"),
        "no external resources"
    );

    let stats = std::fs::read_to_string(run.join("stats.csv")).unwrap();
    let mut lines = stats.lines();
    assert_eq!(lines.next().unwrap(), STATS_HEADER.join(","));
    assert_eq!(
        STATS_HEADER.join(","),
        "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%"
    );
    let last = stats.lines().last().unwrap();
    assert!(last.starts_with(",Aggregated,"), "{last}");
    assert!(stats.lines().any(|l| l.starts_with("GET,/c/ok,")));

    let history = std::fs::read_to_string(run.join("stats_history.csv")).unwrap();
    assert!(history.starts_with("Timestamp,User Count,Type,Name,Requests/s"));
    let failures = std::fs::read_to_string(run.join("failures.csv")).unwrap();
    assert!(failures.starts_with("Method,Name,Error,Occurrences"));
    assert!(failures.contains("POST,/success/,HTTP 400,"), "{failures}");

    let summary: Summary =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    // JSON floats round-trip to within an ulp; compare what matters exactly.
    assert_eq!(summary.requests.len(), out.summary.requests.len());
    assert_eq!(summary.aggregated.count, out.summary.aggregated.count);
    assert_eq!(summary.verdict, out.summary.verdict);
    assert_eq!(summary.grades.len(), out.summary.grades.len());
    assert!((summary.aggregated.avg_ms - out.summary.aggregated.avg_ms).abs() < 1e-9);
    assert_eq!(summary.exit_code, 0);
    assert!(summary.aggregated.count <= 60);
    let grade = |id: &str| summary.grades.iter().find(|g| g.id == id).unwrap();
    // The test server has no /metrics (404): server-side rows are not measured, never invented.
    for id in [
        "cache_hit_rate",
        "queue_length",
        "db_connections",
        "pdf_time",
        "db_query_time",
    ] {
        assert_eq!(grade(id).grade, Grade::NotMeasured, "{id}");
        assert_eq!(grade(id).measured, None);
    }
    assert!(
        summary.server.notes.iter().any(|n| n.contains("404")),
        "{:?}",
        summary.server.notes
    );
    assert!(grade("get_avg").measured.is_some());
    // Without a phase the plan grades response times, errors and the server rows; the others
    // are measured and shown, never failed.
    let payment = grade("payment_success");
    assert_eq!(payment.grade, Grade::NotGraded);
    assert!(!payment.in_verdict && payment.measured.is_some());
    assert_eq!(out.verdict, "FAIL (Error Rate)"); // 50% errors
    assert_eq!(grade("spike").measured, Some(3.0));
    assert_eq!(grade("spike").grade, Grade::NotGraded);

    // Compare the run with a second one.
    srv.state.metrics.store(true, Ordering::Relaxed);
    let out2 = run_plan(&plan, &crate::common::opts(&srv, dir.path()))
        .await
        .unwrap();
    let grade2 = |id: &str| {
        out2.summary
            .grades
            .iter()
            .find(|g| g.id == id)
            .unwrap()
            .clone()
    };
    assert_eq!(grade2("queue_length").measured, Some(3.0));
    assert_eq!(grade2("queue_length").grade, Grade::Target);
    assert_eq!(grade2("db_connections").measured, Some(0.2));
    // The report says which profile the server ran.
    assert_eq!(out.summary.server.profile, None);
    assert_eq!(
        out2.summary.server.profile.as_deref(),
        Some("django-railway (gunicorn gthread 1x2)")
    );
    let html = std::fs::read_to_string(&out2.report_path).unwrap();
    assert!(html.contains("django-railway (gunicorn gthread 1x2)"));
    let page = compare(run, &out2.run_dir, &dir.path().join("cmp/compare.html")).unwrap();
    let cmp = std::fs::read_to_string(&page).unwrap();
    assert!(cmp.contains("Run comparison") && cmp.contains("/c/ok"));
    assert!(page.with_extension("md").exists());

    // `pique load report RUN_DIR` re-renders from summary.json alone.
    std::fs::remove_file(run.join("report.html")).unwrap();
    let again = pique_load::rerender(run).unwrap();
    assert!(again.exists());
}

#[test]
fn run_plan_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let plan = crate::common::plan(PLAN);
    let opts = pique_load::RunOptions::default();
    assert_send(&run_plan(&plan, &opts));
}
