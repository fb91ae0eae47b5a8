//! Engine behaviour against a real local HTTP server (no mocks).

use std::time::Duration;

use pique_load::run_plan;

fn count(o: &pique_load::RunOutcome, name: &str) -> u64 {
    o.summary
        .requests
        .iter()
        .filter(|r| r.name == name)
        .map(|r| r.count)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn class_and_task_weights_give_the_expected_mix() {
    let srv = crate::common::start().await;
    let dir = tempfile::tempdir().unwrap();
    let plan = crate::common::plan(
        r#"
name = "mix"
run_time = "2s"
[[stages]]
duration = "2s"
users = 8
spawn_rate = 100
[[users]]
name = "A"
weight = 3
wait = { constant = 0.01 }
[[users.tasks]]
weight = 3
steps = [{ path = "/c/a1" }]
[[users.tasks]]
weight = 1
steps = [{ path = "/c/a2" }]
[[users]]
name = "B"
weight = 1
wait = { constant = 0.01 }
[[users.tasks]]
steps = [{ path = "/c/b" }]
"#,
    );
    let out = run_plan(&plan, &crate::common::opts(&srv, dir.path()))
        .await
        .unwrap();
    let (a1, a2, b) = (
        count(&out, "/c/a1"),
        count(&out, "/c/a2"),
        count(&out, "/c/b"),
    );
    assert_eq!(srv.state.hits("a1"), a1);
    let class_ratio = (a1 + a2) as f64 / b as f64;
    let task_ratio = a1 as f64 / a2 as f64;
    assert!(
        (class_ratio - 3.0).abs() < 0.45,
        "class ratio {class_ratio} ({a1}+{a2} vs {b})"
    );
    assert!(
        (task_ratio - 3.0).abs() < 0.6,
        "task ratio {task_ratio} ({a1} vs {a2})"
    );
    assert_eq!(out.summary.settings.peak_users, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_and_think_times_are_respected() {
    let srv = crate::common::start().await;
    let dir = tempfile::tempdir().unwrap();
    // One user, 0.25 s between tasks, for 1.1 s: tasks at 0, .25, .5, .75, 1.0.
    let plan = crate::common::plan(
        r#"
name = "think"
run_time = "1.1s"
[[stages]]
duration = "1.1s"
users = 2
spawn_rate = 100
[[users]]
name = "Waiter"
wait = { constant = 0.25 }
[[users.tasks]]
steps = [{ path = "/c/w" }]
[[users]]
name = "Thinker"
[[users.tasks]]
steps = [{ path = "/c/t1", think = 0.5 }, { path = "/c/t2", think = 0.5 }]
"#,
    );
    let out = run_plan(&plan, &crate::common::opts(&srv, dir.path()))
        .await
        .unwrap();
    let w = count(&out, "/c/w");
    assert!((4..=5).contains(&w), "waiter made {w} requests");
    // Thinker: t1 at 0, t2 at .5, t1 at 1.0 -> 3 requests.
    let t = count(&out, "/c/t1") + count(&out, "/c/t2");
    assert!((2..=3).contains(&t), "thinker made {t} requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrival_rate_is_held() {
    let srv = crate::common::start().await;
    let dir = tempfile::tempdir().unwrap();
    let plan = crate::common::plan(
        r#"
name = "arrival"
[arrival]
max_users = 50
stages = [{ duration = "2s", rate = 40 }, { duration = "1s", rate = 40, ramp_to = 80 }]
[[users]]
name = "U"
[[users.tasks]]
steps = [{ path = "/c/arr" }]
"#,
    );
    let out = run_plan(&plan, &crate::common::opts(&srv, dir.path()))
        .await
        .unwrap();
    let n = count(&out, "/c/arr") as f64;
    let expected = 40.0 * 2.0 + 60.0;
    assert!(
        (n - expected).abs() <= expected * 0.1,
        "{n} arrivals, expected {expected}"
    );
    assert_eq!(out.summary.lag.dropped_iterations, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captured_values_flow_into_later_steps() {
    let srv = crate::common::start().await;
    let dir = tempfile::tempdir().unwrap();
    let plan = crate::common::plan(
        r#"
name = "capture"
run_time = "1.5s"
params = ["stripe_base"]
[[stages]]
duration = "1.5s"
users = 3
spawn_rate = 100
[[users]]
name = "Buyer"
wait = { constant = 0.05 }
[[users.on_start]]
path = "/shows/"
capture = [{ var = "shows" }]
[[users.tasks]]
[[users.tasks.steps]]
path = "/shows/{{show_id}}/"
name = "/shows/[id]/"
set = { show_id = "{{pick shows /id}}" }
capture = [{ var = "ticket_id", pointer = "/tickets", pick = "random", where = { "/is_donation_based" = false }, then = "/id" }]
[[users.tasks.steps]]
method = "POST"
path = "/checkout/"
body = { show_id = "{{show_id}}", tickets = [{ ticket_id = "{{ticket_id}}", quantity = 2 }], order_email = "{{random.email}}" }
capture = [{ var = "session_id", pointer = "/session_id" }]
checks = { status = [200], json = [{ pointer = "/session_id", exists = true }] }
[[users.tasks.steps]]
method = "POST"
path = "{{stripe_base}}/never"
when = "stripe_base"
[[users.tasks.steps]]
method = "POST"
path = "/success/"
body = { session_id = "{{session_id}}" }
"#,
    );
    let out = run_plan(&plan, &crate::common::opts(&srv, dir.path()))
        .await
        .unwrap();
    let st = &srv.state;
    assert_eq!(
        st.bad_captures.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    let good = st.good_checkouts.load(std::sync::atomic::Ordering::Relaxed);
    assert!(good >= 10, "only {good} checkouts");
    assert_eq!(
        st.good_successes.load(std::sync::atomic::Ordering::Relaxed),
        count(&out, "/success/")
    );
    assert_eq!(
        out.summary.aggregated.failures, 0,
        "{:?}",
        out.summary.failures
    );
    // The stripe step never ran (no stripe_base) and is not counted as skipped.
    assert_eq!(count(&out, "{{stripe_base}}/never"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_variables_skip_and_count() {
    let srv = crate::common::start().await;
    let dir = tempfile::tempdir().unwrap();
    let plan = crate::common::plan(
        r#"
name = "skip"
max_requests = 30
run_time = "2s"
[[stages]]
duration = "2s"
users = 1
spawn_rate = 10
[[users]]
name = "U"
wait = { constant = 0.01 }
[[users.tasks]]
steps = [{ path = "/c/x", capture = [{ var = "never", pointer = "/nope" }] }, { path = "/c/{{never}}" }]
"#,
    );
    let out = run_plan(&plan, &crate::common::opts(&srv, dir.path()))
        .await
        .unwrap();
    let skipped = out
        .summary
        .requests
        .iter()
        .find(|r| r.name == "/c/{{never}}")
        .map(|r| r.skipped)
        .unwrap_or(0);
    assert!(skipped >= 10, "skipped {skipped}");
    assert!(out.summary.aggregated.count <= 30);
    assert_eq!(out.summary.settings.stop_reason, "max_requests reached");
}

const SLOW_PLAN: &str = r#"
name = "slow"
max_requests = 40
run_time = "3s"
[[stages]]
duration = "3s"
users = 4
spawn_rate = 100
[[users]]
name = "U"
[[users.tasks]]
steps = [{ path = "/slow", name = "slow" }]
[thresholds]
"*" = ["LIMIT", "error_rate < 1%"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thresholds_flip_the_exit_code() {
    let srv = crate::common::start().await;
    let dir = tempfile::tempdir().unwrap();
    let fail = crate::common::plan(&SLOW_PLAN.replace("LIMIT", "p95 < 50ms"));
    let out = run_plan(&fail, &crate::common::opts(&srv, dir.path()))
        .await
        .unwrap();
    assert_eq!(out.exit_code, 1);
    assert!(!out.summary.thresholds[0].passed);
    let pass = crate::common::plan(&SLOW_PLAN.replace("LIMIT", "p95 < 500ms"));
    let out = run_plan(&pass, &crate::common::opts(&srv, dir.path()))
        .await
        .unwrap();
    assert_eq!(out.exit_code, 0, "{:?}", out.summary.thresholds);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn percentiles_match_an_injected_distribution() {
    let srv = crate::common::start().await;
    let dir = tempfile::tempdir().unwrap();
    let plan = crate::common::plan(
        r#"
name = "dist"
max_requests = 600
run_time = "5s"
[[stages]]
duration = "5s"
users = 10
spawn_rate = 1000
[[users]]
name = "U"
[[users.tasks]]
steps = [{ path = "/dist" }]
"#,
    );
    let out = run_plan(&plan, &crate::common::opts(&srv, dir.path()))
        .await
        .unwrap();
    let r = &out.summary.aggregated;
    let (p50, p95, p99) = (r.pct(0.5), r.pct(0.95), r.pct(0.99));
    assert!((4.9..9.0).contains(&p50), "p50 {p50}");
    assert!((49.0..65.0).contains(&p95), "p95 {p95}");
    assert!((49.0..70.0).contains(&p99), "p99 {p99}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_model_latency_includes_a_server_stall() {
    let srv = crate::common::start().await;
    let dir = tempfile::tempdir().unwrap();
    let state = srv.state.clone();
    // The whole server freezes for 1 s, starting 1 s into the run.
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let _w = state.stall.write().await;
        tokio::time::sleep(Duration::from_millis(1000)).await;
    });
    let plan = crate::common::plan(
        r#"
name = "stall"
[arrival]
max_users = 20
stages = [{ duration = "3s", rate = 100 }]
[[users]]
name = "U"
[[users.tasks]]
steps = [{ path = "/stallable" }]
"#,
    );
    let out = run_plan(&plan, &crate::common::opts(&srv, dir.path()))
        .await
        .unwrap();
    let r = &out.summary.aggregated;
    // ~100 of ~300 requests were due during the stall; timed from their intended start they
    // waited up to 1 s, so the p99 sits near a second (a closed-model tool would report ~1 ms).
    assert!(r.pct(0.99) > 800.0, "p99 {} ms", r.pct(0.99));
    assert!(r.pct(0.9) > 300.0, "p90 {} ms", r.pct(0.9));
    assert!(
        out.summary.lag.late_iterations > 20,
        "{:?}",
        out.summary.lag
    );
    assert!((270..=330).contains(&r.count), "{} requests", r.count);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_search_finds_the_breaking_point() {
    let srv = crate::common::start().await;
    let dir = tempfile::tempdir().unwrap();
    let plan = crate::common::plan(
        r#"
name = "capacity"
[capacity]
start_users = 2
step_users = 2
step_every = "0.5s"
max_users = 10
stop_error_rate = 0.05
[[users]]
name = "U"
[[users.tasks]]
steps = [{ path = "/limited" }]
"#,
    );
    let out = run_plan(&plan, &crate::common::opts(&srv, dir.path()))
        .await
        .unwrap();
    let cap = out.summary.capacity.as_ref().unwrap();
    assert_eq!(cap.breaking_users, Some(6), "{cap:?}");
    assert_eq!(cap.last_good_users, Some(4));
    let users = out
        .summary
        .grades
        .iter()
        .find(|g| g.id == "concurrent_users")
        .unwrap();
    assert_eq!(users.measured, Some(4.0));
}

/// A raw HTTP/1.1 server that answers one request per connection and then closes it: with
/// `Connection: close` when `announce` is set (as gunicorn's sync workers do), silently
/// otherwise (as a server whose keep-alive timeout has just run out).
async fn one_shot_server(announce: bool) -> (String, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use std::sync::atomic::{AtomicU64, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let served = std::sync::Arc::new(AtomicU64::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let counter = served.clone();
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let head = if announce {
                    "Connection: close\r\n"
                } else {
                    ""
                };
                let resp = format!("HTTP/1.1 200 OK\r\n{head}Content-Length: 2\r\n\r\nok");
                if sock.write_all(resp.as_bytes()).await.is_ok() {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                let _ = sock.shutdown().await;
            });
        }
    });
    (url, served)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_closed_by_the_server_are_replaced_without_errors() {
    for announce in [true, false] {
        let (url, served) = one_shot_server(announce).await;
        let dir = tempfile::tempdir().unwrap();
        let plan = crate::common::steady_plan("x", 4, 300, "/x");
        let opts = crate::common::opts_for(url, dir.path());
        let out = run_plan(&plan, &opts).await.unwrap();
        let r = &out.summary.aggregated;
        assert!(
            r.count >= 300,
            "announce={announce}: only {} requests",
            r.count
        );
        assert_eq!(
            r.failures, 0,
            "announce={announce}: {:?}",
            out.summary.failures
        );
        // Each recorded request was answered once (no silent duplicates from retries); up to
        // one request per user may still have been in flight when the cap stopped the run.
        let served = served.load(std::sync::atomic::Ordering::Relaxed);
        assert!(
            (r.count..=r.count + 4).contains(&served),
            "announce={announce}: {served} served for {} recorded",
            r.count
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_targets_go_through_tls() {
    // A plain-HTTP server addressed as https://: the engine must attempt a TLS handshake (and
    // report that it failed) rather than send cleartext or reject the scheme.
    let srv = crate::common::start().await;
    let dir = tempfile::tempdir().unwrap();
    let plan = crate::common::steady_plan("tls", 1, 5, "/c/tls");
    let opts = crate::common::opts_for(format!("https://{}", srv.addr), dir.path());
    let out = run_plan(&plan, &opts).await.unwrap();
    assert_eq!(
        srv.state.hits("tls"),
        0,
        "no cleartext request reached the server"
    );
    let failures = &out.summary.failures;
    assert!(!failures.is_empty());
    assert!(
        failures
            .iter()
            .all(|f| f.category == "connection" && f.error.contains("TLS handshake")),
        "{failures:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_hosts_are_reached() {
    let srv = crate::common::start_on("[::1]:0").await;
    let dir = tempfile::tempdir().unwrap();
    let plan = crate::common::steady_plan("v6", 2, 20, "/c/v6");
    let out = run_plan(&plan, &crate::common::opts(&srv, dir.path()))
        .await
        .unwrap();
    assert!(srv.url().starts_with("http://[::1]:"), "{}", srv.url());
    assert_eq!(
        out.summary.aggregated.failures, 0,
        "{:?}",
        out.summary.failures
    );
    assert!(srv.state.hits("v6") >= 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_polling_step_waits_for_the_queued_answer_and_times_the_completion() {
    let srv = crate::common::start().await;
    let dir = tempfile::tempdir().unwrap();
    let plan = |query: &str| {
        crate::common::plan(&format!(
            r#"
name = "poll"
run_time = "2.5s"
[[stages]]
duration = "2.5s"
users = 2
spawn_rate = 100
[[users]]
name = "Buyer"
wait = {{ constant = 0.05 }}
[[users.tasks]]
stop_on_failure = true
[[users.tasks.steps]]
method = "POST"
path = "/queued/"
name = "/queued/ [accept]"
capture = [{{ var = "checkout_id", pointer = "/checkout_id" }}, {{ var = "session_id", pointer = "/session_id" }}]
checks = {{ status = [201, 202] }}
[[users.tasks.steps]]
path = "/queued/status/{{{{checkout_id}}}}/{query}"
name = "/queued/ [done]"
poll_name = "/queued/status/[id]/"
when = "checkout_id"
until = {{ pointer = "/status", not_in = ["processing"] }}
every = "50ms"
timeout = "5s"
capture = [{{ var = "session_id", pointer = "/session_id" }}]
checks = {{ json = [{{ pointer = "/status", equals = "completed" }}] }}
[[users.tasks.steps]]
method = "POST"
path = "/success/"
body = {{ session_id = "{{{{session_id}}}}" }}
[thresholds]
"/queued/ [done]" = ["p95 < 2s"]
"#
        ))
    };
    let out = run_plan(&plan(""), &crate::common::opts(&srv, dir.path()))
        .await
        .unwrap();
    let row = |name: &str| {
        out.summary
            .requests
            .iter()
            .find(|r| r.name == name)
            .cloned()
            .unwrap_or_else(|| panic!("no row {name}: {:?}", out.summary.requests))
    };
    let (accept, done, polls) = (
        row("/queued/ [accept]"),
        row("/queued/ [done]"),
        row("/queued/status/[id]/"),
    );
    assert_eq!(done.kind, pique_load::stats::KeyKind::Completion);
    assert!(done.count >= 4, "{done:?}");
    assert_eq!(done.failures, 0, "{:?}", out.summary.failures);
    // Each completion waited for the 300 ms of processing, polled every 50 ms.
    assert!(done.min_ms >= 290.0, "{done:?}");
    assert!(polls.count >= done.count * 4, "{polls:?}");
    assert!(accept.count >= done.count);
    // The session captured from the completed answer reached /success/.
    assert_eq!(
        srv.state
            .good_successes
            .load(std::sync::atomic::Ordering::Relaxed),
        count(&out, "/success/")
    );
    assert_eq!(
        srv.state
            .bad_captures
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    // Completions are not requests: the aggregated row counts the HTTP requests only.
    assert_eq!(
        out.summary.aggregated.count,
        accept.count + polls.count + count(&out, "/success/")
    );
    assert_eq!(out.exit_code, 0, "{:?}", out.summary.thresholds);

    // A failed completion fails the completion row, not the polls, and ends the task.
    let out = run_plan(
        &plan("?fail_even=1"),
        &crate::common::opts(&srv, dir.path()),
    )
    .await
    .unwrap();
    let done = out
        .summary
        .requests
        .iter()
        .find(|r| r.name == "/queued/ [done]")
        .unwrap();
    assert!(done.failures > 0 && done.failures < done.count, "{done:?}");
    assert!(
        out.summary
            .failures
            .iter()
            .any(|f| f.name == "/queued/ [done]" && f.error.contains("/status")),
        "{:?}",
        out.summary.failures
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thresholds_of_steps_that_cannot_run_are_skipped_not_failed() {
    let srv = crate::common::start().await;
    let dir = tempfile::tempdir().unwrap();
    let plan = crate::common::plan(
        r#"
name = "skip thresholds"
max_requests = 40
run_time = "1s"
params = ["stripe_base"]
[[stages]]
duration = "1s"
users = 2
spawn_rate = 100
[[users]]
name = "U"
wait = { constant = 0.02 }
[[users.tasks]]
[[users.tasks.steps]]
path = "/c/ok"
capture = [{ var = "never", pointer = "/nope" }]
[[users.tasks.steps]]
method = "POST"
path = "{{stripe_base}}/pay"
name = "pay"
when = "stripe_base"
[[users.tasks.steps]]
path = "/c/{{never}}"
name = "needs a capture"
[[users.tasks.steps]]
path = "/c/poll"
name = "after a capture"
when = "never"
[thresholds]
"pay" = ["p95 < 1s"]
"after a capture" = ["p95 < 1s"]
"needs a capture" = ["p95 < 1s"]
"#,
    );
    let out = run_plan(&plan, &crate::common::opts(&srv, dir.path()))
        .await
        .unwrap();
    let t = |scope: &str| {
        out.summary
            .thresholds
            .iter()
            .find(|t| t.scope == scope)
            .unwrap()
            .clone()
    };
    let pay = t("pay");
    assert!(pay.skipped && !pay.passed, "{pay:?}");
    assert!(pay.note.contains("--var stripe_base"), "{}", pay.note);
    let polled = t("after a capture");
    assert!(polled.skipped, "{polled:?}");
    // This one should have run (it has no `when`) and did not: a failure, with the reason.
    let missing = t("needs a capture");
    assert!(!missing.skipped && !missing.passed, "{missing:?}");
    assert!(
        missing.note.contains("missing variable"),
        "{}",
        missing.note
    );
    assert_eq!(out.exit_code, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capacity_search_stopped_by_run_time_reports_its_steps() {
    let srv = crate::common::start().await;
    let dir = tempfile::tempdir().unwrap();
    let plan = crate::common::plan(
        r#"
name = "capacity cut short"
[capacity]
start_users = 1
step_users = 1
step_every = "0.4s"
max_users = 100
stop_error_rate = 0.05
[[users]]
name = "U"
wait = { constant = 0.02 }
[[users.tasks]]
steps = [{ path = "/c/cap" }]
"#,
    );
    let mut opts = crate::common::opts(&srv, dir.path());
    opts.run_time = Some(Duration::from_millis(2100));
    let out = run_plan(&plan, &opts).await.unwrap();
    let cap = out.summary.capacity.as_ref().unwrap();
    assert!((4..=5).contains(&cap.steps.len()), "{cap:?}");
    assert_eq!(cap.breaking_users, None);
    assert_eq!(cap.last_good_users, Some(cap.steps.len() as u32));
    assert_eq!(cap.stopped_by.as_deref(), Some("run_time reached"));
    assert!(
        cap.steps
            .windows(2)
            .all(|w| w[0].end_s <= w[1].start_s + 0.05)
    );
    let users = out
        .summary
        .grades
        .iter()
        .find(|g| g.id == "concurrent_users")
        .unwrap();
    assert_eq!(users.measured, Some(f64::from(cap.steps.len() as u32)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_scale_shrinks_the_shape_and_the_grading_windows_together() {
    let srv = crate::common::start().await;
    let dir = tempfile::tempdir().unwrap();
    // A 2 h 10 s soak: 10 s ramp at 10 users/s, then 2 h. At 0.001 it runs 7.21 s, ramps in
    // 0.01 s and must hold its users for 7.2 s.
    let plan = crate::common::plan(
        r#"
name = "soak scaled"
[[stages]]
duration = "10s"
users = 10
spawn_rate = 1
[[stages]]
duration = "2h"
users = 10
spawn_rate = 1
[grading]
phase = "soak"
[[users]]
name = "U"
wait = { constant = 0.1 }
[[users.tasks]]
steps = [{ path = "/c/soak" }]
"#,
    );
    let mut opts = crate::common::opts(&srv, dir.path());
    opts.time_scale = 0.001;
    let out = run_plan(&plan, &opts).await.unwrap();
    let s = &out.summary;
    assert_eq!(s.settings.time_scale, 0.001);
    assert!(
        (7.0..8.5).contains(&s.settings.duration_s),
        "{}",
        s.settings.duration_s
    );
    assert!((s.grading.sustain_s - 7.2).abs() < 1e-9);
    let sustained = s.grades.iter().find(|g| g.id == "sustained").unwrap();
    assert_eq!(sustained.measured, Some(10.0), "{sustained:?}");
    assert!(sustained.in_verdict);
    assert_eq!(sustained.grade, pique_load::grade::Grade::Fail); // 10 users < 75
    assert!(s.verdict.contains("Sustained Load"), "{}", s.verdict);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_hosts_share_the_users_round_robin() {
    let servers = [
        crate::common::start().await,
        crate::common::start().await,
        crate::common::start().await,
    ];
    let dir = tempfile::tempdir().unwrap();
    // Four users on three hosts: users 0 and 3 on the first, 1 on the second, 2 on the third.
    // The task's path is a template, so both the pre-parsed and the rendered URL are covered.
    let plan = crate::common::plan(
        r#"
name = "hosts"
run_time = "1.5s"
[[stages]]
duration = "1.5s"
users = 4
spawn_rate = 100
[[users]]
name = "U"
wait = { constant = 0.02 }
[[users.on_start]]
path = "/c/start"
[[users.tasks]]
[[users.tasks.steps]]
path = "/c/{{route}}"
name = "/c/[route]"
set = { route = "task" }
"#,
    );
    let mut opts = crate::common::opts(&servers[0], dir.path());
    opts.hosts = servers.iter().map(|s| format!("{}/", s.url())).collect();
    let out = run_plan(&plan, &opts).await.unwrap();

    let starts: Vec<u64> = servers.iter().map(|s| s.state.hits("start")).collect();
    assert_eq!(starts, vec![2, 1, 1], "one user per host in turn");
    let tasks: Vec<u64> = servers.iter().map(|s| s.state.hits("task")).collect();
    assert!(tasks.iter().all(|&n| n > 0), "every host served: {tasks:?}");
    assert_eq!(
        tasks.iter().sum::<u64>(),
        count(&out, "/c/[route]"),
        "every recorded request reached one of the hosts"
    );
    // The first host carries two users, the others one each.
    assert!(
        tasks[0] > tasks[1] && tasks[0] > tasks[2],
        "two users' requests on the first host: {tasks:?}"
    );

    let urls: Vec<String> = servers.iter().map(|s| s.url()).collect();
    assert_eq!(out.summary.settings.hosts, urls);
    assert_eq!(out.summary.settings.host, urls.join(", "));
    let html = std::fs::read_to_string(&out.report_path).unwrap();
    assert!(html.contains("Hosts (users round-robin)"));
    for u in &urls {
        assert!(html.contains(u.as_str()), "{u} in the report");
    }
}
