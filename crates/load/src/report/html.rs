//! report.html: one self-contained page (inline CSS and SVG, no network) with charts, the
//! per-endpoint table, failures, server metrics, graded criteria, thresholds and the plan.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::Summary;
use super::svg::{Series, esc, line_chart};
use crate::grade::{Grade, GradeRow};
use crate::stats::RequestStats;

/// Styles shared by the run report and the comparison page.
pub const CSS: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1200px;color:#111827;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{border-bottom:1px solid #e5e7eb;padding:4px 6px;text-align:right;white-space:nowrap}
th:first-child,td:first-child,th.l,td.l{text-align:left}th{background:#f9fafb;position:sticky;top:0}
.badge{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:600;color:#fff}
.pass{background:#16a34a}.fail{background:#dc2626}.warn{background:#d97706}.muted{color:#6b7280}
.g-target{color:#15803d;font-weight:600}.g-acceptable{color:#65a30d;font-weight:600}.g-threshold{color:#d97706;font-weight:600}.g-fail{color:#dc2626;font-weight:600}.g-not{color:#6b7280}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:12px}.chart{width:100%;height:auto;border:1px solid #e5e7eb;border-radius:6px}
.ct{font:600 13px system-ui,sans-serif}.ax{font:11px system-ui,sans-serif;fill:#4b5563}
pre{background:#f9fafb;border:1px solid #e5e7eb;padding:10px;overflow:auto;font-size:12px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:0}dt{color:#6b7280}dd{margin:0}
"#;

fn grade_class(g: Grade) -> &'static str {
    match g {
        Grade::Target => "g-target",
        Grade::Acceptable => "g-acceptable",
        Grade::Threshold => "g-threshold",
        Grade::Fail => "g-fail",
        Grade::NotMeasured | Grade::NotGraded => "g-not",
    }
}

/// A badge for a verdict string (`PASS ...`, `FAIL ...`).
pub fn verdict_badge(verdict: &str) -> String {
    let class = if verdict.starts_with("PASS") {
        "pass"
    } else if verdict.starts_with("FAIL") {
        "fail"
    } else {
        "warn"
    };
    format!(r#"<span class="badge {class}">{}</span>"#, esc(verdict))
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// The Locust-like per-endpoint table.
pub fn requests_table(rows: &[RequestStats], total: &RequestStats) -> String {
    let mut out = String::from(
        "<table><tr><th>Type</th><th class=l>Name</th><th># Requests</th><th># Fails</th><th>Skipped</th>\
         <th>Median (ms)</th><th>Average (ms)</th><th>Min (ms)</th><th>Max (ms)</th><th>p90</th><th>p95</th><th>p99</th>\
         <th>Avg size (B)</th><th>RPS</th><th>Failures/s</th></tr>",
    );
    for r in rows.iter().chain(std::iter::once(total)) {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=l>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0}</td><td>{:.1}</td><td>{:.2}</td></tr>",
            esc(&r.method),
            esc(&r.name),
            r.count,
            r.failures,
            r.skipped,
            ms(r.pct(0.5)),
            ms(r.avg_ms),
            ms(r.min_ms),
            ms(r.max_ms),
            ms(r.pct(0.9)),
            ms(r.pct(0.95)),
            ms(r.pct(0.99)),
            r.avg_content_size,
            r.rps,
            r.failures_per_s
        );
    }
    out.push_str("</table>");
    out
}

/// A distributed run's workers: users, requests, failures, CPU, state.
fn workers_section(d: &crate::distributed::DistributedReport) -> String {
    let mut out = String::from(
        "<table><tr><th class=l>Worker</th><th class=l>Host</th><th>Weight</th><th>Users</th><th>Peak users</th>\
         <th># Requests</th><th># Fails</th><th>Reported by the worker</th><th>CPU avg (cores)</th><th>CPU max</th><th class=l>State</th></tr>",
    );
    for w in &d.workers {
        let state = match w.lost_at_s {
            Some(t) => format!("lost at {t:.1} s"),
            None => w.state.clone(),
        };
        let _ = write!(
            out,
            "<tr><td class=l>{}</td><td class=l>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td class=l>{}</td></tr>",
            esc(&w.name),
            esc(&w.host),
            w.weight,
            w.users,
            w.peak_users,
            w.requests,
            w.failures,
            w.reported_requests
                .map_or_else(|| "-".to_string(), |n| format!("{n} requests")),
            w.cpu_avg,
            w.cpu_max,
            esc(&state)
        );
    }
    out.push_str("</table>");
    let _ = write!(
        out,
        "<p class=muted>Master CPU: {:.2} cores on average, {:.2} at most. Lost workers: {}.</p>",
        d.master_cpu_avg,
        d.master_cpu_max,
        esc(&d.policy)
    );
    if !d.idle.is_empty() {
        let _ = write!(
            out,
            "<p class=muted>Idle (not needed or joined late): {}</p>",
            esc(&d.idle.join(", "))
        );
    }
    for r in &d.refused {
        let _ = write!(out, "<p class=muted>Refused: {}</p>", esc(r));
    }
    out
}

/// The graded criteria table.
pub fn grades_table(rows: &[GradeRow]) -> String {
    let mut out = String::from(
        "<table><tr><th class=l>Table</th><th class=l>Metric</th><th>Target</th><th>Acceptable</th><th>Threshold</th>\
         <th>Measured</th><th class=l>Grade</th><th class=l>Source</th></tr>",
    );
    // Graded rows first (in table order), then the rows this plan shows for information.
    let ordered = rows
        .iter()
        .filter(|r| r.in_verdict)
        .chain(rows.iter().filter(|r| !r.in_verdict));
    for r in ordered {
        let _ = write!(
            out,
            "<tr><td class=l>{}</td><td class=l>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l {}\">{}</td><td class=\"l muted\">{}</td></tr>",
            esc(&r.table),
            esc(&r.metric),
            esc(&r.target),
            esc(&r.acceptable),
            esc(&r.threshold),
            esc(&r.measured_text),
            grade_class(r.grade),
            r.grade.label(),
            esc(&r.source)
        );
    }
    out.push_str("</table>");
    out
}

fn client_charts(s: &Summary) -> String {
    let ts = &s.timeseries;
    let pts = |f: &dyn Fn(&crate::stats::Point) -> f64| ts.iter().map(|p| (p.t, f(p))).collect();
    let mut out = String::from("<div class=charts>");
    out.push_str(&line_chart(
        "Users",
        "",
        &[Series {
            label: "users".into(),
            points: pts(&|p| f64::from(p.users)),
        }],
    ));
    out.push_str(&line_chart(
        "Throughput",
        "/s",
        &[
            Series {
                label: "requests/s".into(),
                points: pts(&|p| p.rps),
            },
            Series {
                label: "errors/s".into(),
                points: pts(&|p| p.errors_per_s),
            },
        ],
    ));
    out.push_str(&line_chart(
        "Response time (per second)",
        " ms",
        &[0.5_f64, 0.95, 0.99]
            .iter()
            .map(|q| Series {
                label: format!("p{}", (q * 100.0).round()),
                points: ts
                    .iter()
                    .filter(|p| p.rps > 0.0)
                    .map(|p| (p.t, p.pct(*q)))
                    .collect(),
            })
            .collect::<Vec<_>>(),
    ));
    out.push_str(&line_chart(
        "Errors",
        "/s",
        &[Series {
            label: "errors/s".into(),
            points: pts(&|p| p.errors_per_s),
        }],
    ));
    if ts
        .iter()
        .any(|p| p.generator.cpu_cores > 0.0 || p.generator.lag_ms > 0.0)
    {
        out.push_str(&line_chart(
            "Load generator: CPU",
            " cores",
            &[Series {
                label: "CPU (cores)".into(),
                points: pts(&|p| p.generator.cpu_cores),
            }],
        ));
        out.push_str(&line_chart(
            "Load generator: scheduler lag",
            " ms",
            &[Series {
                label: "worst timer lateness".into(),
                points: pts(&|p| p.generator.lag_ms),
            }],
        ));
    }
    out.push_str("</div>");
    out
}

/// Groups of server series charted together: (title, unit, key prefixes).
const SERVER_CHARTS: &[(&str, &str, &[&str])] = &[
    ("Server requests/s (/metrics)", "/s", &["server_rps"]),
    (
        "DB pool connections",
        "",
        &["db_pool_in_use", "db_pool_idle", "db_pool_max"],
    ),
    (
        "PostgreSQL connections",
        "",
        &["pg_connections", "pg_active", "pg_idle"],
    ),
    ("Job queue depth", "", &["queue_depth:"]),
    ("Cache hit rate", "", &["cache_hit_rate"]),
    (
        "Checkout attempts & jobs done",
        "/s",
        &["checkout_attempts_per_s", "jobs_done_per_s"],
    ),
    ("Process CPU (cores)", "", &["cpu_cores"]),
    ("Resident memory (bytes)", "", &["rss_bytes"]),
    ("Redis clients", "", &["redis_connected_clients"]),
    ("Redis memory (bytes)", "", &["redis_used_memory"]),
];

fn server_section(s: &Summary) -> String {
    let sv = &s.server;
    let mut out = String::new();
    if sv.sources.is_empty() {
        out.push_str("<p class=muted>No server-side source answered (no /metrics, no --database-url, no --redis-url).</p>");
    } else {
        let _ = write!(out, "<p>Sources: {}</p>", esc(&sv.sources.join(", ")));
        if !sv.metrics_targets.is_empty() {
            let _ = write!(
                out,
                "<p class=muted>Metrics endpoints (the first is the API): {}</p>",
                esc(&sv.metrics_targets.join(", "))
            );
        }
    }
    let keys: BTreeSet<&str> = sv
        .series
        .iter()
        .flat_map(|x| x.values.keys().map(String::as_str))
        .collect();
    let mut charts = String::new();
    for (title, unit, prefixes) in SERVER_CHARTS {
        let series: Vec<Series> = keys
            .iter()
            .filter(|k| {
                // `cpu_cores` (the API), `cpu_cores@127.0.0.1:9091` (a worker), `queue_depth:pdf`.
                prefixes.iter().any(|p| {
                    k.starts_with(p)
                        && (p.ends_with(':') || *k == p || k[p.len()..].starts_with('@'))
                })
            })
            .map(|k| Series {
                label: (*k).to_string(),
                points: sv
                    .series
                    .iter()
                    .filter_map(|x| x.values.get(*k).map(|v| (x.t, *v)))
                    .collect(),
            })
            .collect();
        if !series.is_empty() {
            charts.push_str(&line_chart(title, unit, &series));
        }
    }
    if !charts.is_empty() {
        let _ = write!(out, "<div class=charts>{charts}</div>");
    }
    let mut facts = String::new();
    let mut fact = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            let _ = write!(facts, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(&v));
        }
    };
    let pct = |v: Option<f64>| v.map(|x| format!("{:.1}%", x * 100.0));
    fact("Cache hit rate (/metrics)", pct(sv.cache_hit_rate));
    fact("Redis hit rate", pct(sv.redis_hit_rate));
    fact("DB pool usage (peak)", pct(sv.db_pool_usage_max));
    fact(
        "PostgreSQL connection usage (peak)",
        pct(sv.pg_connection_usage_max),
    );
    fact("Redis memory usage (peak)", pct(sv.redis_memory_usage_max));
    fact(
        "Queue depth (peak)",
        sv.queue_depth_max.map(|v| {
            format!(
                "{v:.0} ({})",
                sv.queue_depth_source
                    .as_deref()
                    .unwrap_or("pique_queue_depth")
            )
        }),
    );
    fact("PDF p95", sv.pdf_p95_s.map(|v| format!("{v:.2} s")));
    fact(
        "Checkout p95 (server)",
        sv.checkout_p95_s.map(|v| format!("{v:.3} s")),
    );
    fact("Emails sent", sv.emails_sent.map(|v| format!("{v:.0}")));
    fact(
        "Email attempts failed",
        sv.emails_failed.map(|v| format!("{v:.0}")),
    );
    fact(
        "Job queue wait p95 (due to started)",
        sv.queue_wait_p95_s.map(|v| format!("{v:.3} s")),
    );
    fact("Stripe calls", sv.stripe_calls.map(|v| format!("{v:.0}")));
    fact(
        "Stripe p95",
        sv.stripe_p95_s.map(|v| format!("{:.1} ms", v * 1000.0)),
    );
    for (k, v) in &sv.stripe_errors {
        fact(&format!("Stripe errors ({k})"), Some(format!("{v:.0}")));
    }
    fact(
        "PostgreSQL deadlocks",
        sv.pg_deadlocks.map(|v| format!("{v:.0}")),
    );
    fact(
        "Redis keys evicted",
        sv.redis_evicted.map(|v| format!("{v:.0}")),
    );
    for (q, v) in &sv.jobs_done {
        fact(&format!("Jobs done ({q})"), Some(format!("{v:.0}")));
    }
    for (k, v) in &sv.checkout_attempts {
        fact(&format!("Checkout attempts {k}"), Some(format!("{v:.0}")));
    }
    if !facts.is_empty() {
        let _ = write!(out, "<dl>{facts}</dl>");
    }
    for n in &sv.notes {
        let _ = write!(out, "<p class=muted>{}</p>", esc(n));
    }
    out
}

/// Renders the whole report.
pub fn render(s: &Summary) -> String {
    let st = &s.settings;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport content=\"width=device-width\">\
         <title>{name} - pique-load report</title><style>{CSS}</style></head><body>",
        name = esc(&s.plan.name)
    );
    let thresholds_ok = s.exit_code == 0;
    let _ = write!(
        out,
        "<h1>{}</h1><p class=muted>{}</p><p>Grading: {} &nbsp; Thresholds: <span class=\"badge {}\">{}</span></p>",
        esc(&s.plan.name),
        esc(&s.plan.description),
        verdict_badge(&s.verdict),
        if thresholds_ok { "pass" } else { "fail" },
        if s.thresholds.is_empty() {
            "none defined"
        } else if thresholds_ok {
            "passed (exit 0)"
        } else {
            "failed (exit 1)"
        }
    );
    let mut dl = String::new();
    let mut item = |k: &str, v: &str| {
        let _ = write!(dl, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(v));
    };
    item("Host", &st.host);
    item("Label", st.label.as_deref().unwrap_or("-"));
    item(
        "Server profile",
        s.server
            .profile
            .as_deref()
            .unwrap_or("not reported (no pique /metrics)"),
    );
    item("Shape", &st.shape);
    if st.time_scale < 1.0 {
        item(
            "Time scale",
            &format!(
                "{} (durations of the shape and grading windows multiplied by it; think and wait times as written)",
                st.time_scale
            ),
        );
    }
    let g = &s.grading;
    item(
        "Graded as",
        &format!(
            "phase {}: {} criteria; load held = {} for {}",
            g.phase,
            g.criteria.len(),
            g.limits_text(),
            crate::duration::format_duration(std::time::Duration::from_secs_f64(g.hold_s))
        ),
    );
    item("Started (UTC)", &st.started_at);
    item(
        "Duration",
        &format!("{:.1} s ({})", st.duration_s, st.stop_reason),
    );
    item("Peak users", &st.peak_users.to_string());
    let g = &s.generator;
    if g.seconds > 0 {
        item(
            "Load generator",
            &if g.saturated {
                format!(
                    "{}: response times are the generator's, not the server's",
                    g.describe()
                )
            } else {
                format!(
                    "not saturated (CPU up to {:.1} of {} cores, scheduler lag up to {:.0} ms)",
                    g.cpu_max, g.cores, g.lag_max_ms
                )
            },
        );
    }
    item(
        "Requests",
        &format!(
            "{} ({} failed, {:.3}%), {:.1} req/s",
            s.aggregated.count,
            s.aggregated.failures,
            s.aggregated.error_rate() * 100.0,
            s.aggregated.rps
        ),
    );
    item(
        "Caps",
        &format!(
            "run_time {}, max_requests {}",
            st.run_time_cap.as_deref().unwrap_or("-"),
            st.max_requests.map_or("-".to_string(), |m| m.to_string())
        ),
    );
    if s.lag.late_iterations + s.lag.dropped_iterations > 0 || s.lag.max_lag_ms > 0.0 {
        item(
            "Open model lag",
            &format!(
                "{} late, {} dropped iterations, max lag {:.1} ms (latency counted from intended start)",
                s.lag.late_iterations, s.lag.dropped_iterations, s.lag.max_lag_ms
            ),
        );
    }
    if let Some(d) = &s.distributed {
        item(
            "Distributed",
            &format!(
                "{} of {} worker(s) in cluster `{}`{}",
                d.workers.iter().filter(|w| w.state != "lost").count(),
                d.workers_wanted,
                d.cluster,
                if d.degraded {
                    " - DEGRADED: a worker was lost, the load was smaller than planned from then on"
                } else {
                    ""
                }
            ),
        );
    }
    let _ = write!(out, "<dl>{dl}</dl>");

    out.push_str("<h2>Load over time</h2>");
    out.push_str(&client_charts(s));

    if !s.thresholds.is_empty() {
        out.push_str("<h2>Thresholds</h2><table><tr><th class=l>Scope</th><th class=l>Threshold</th><th>Measured</th><th class=l>Result</th></tr>");
        for t in &s.thresholds {
            let (class, label) = if t.skipped {
                ("g-not", "skipped")
            } else if t.passed {
                ("g-target", "pass")
            } else {
                ("g-fail", "FAIL")
            };
            let note = if t.note.is_empty() {
                String::new()
            } else {
                format!(" <span class=muted>{}</span>", esc(&t.note))
            };
            let _ = write!(
                out,
                "<tr><td class=l>{}</td><td class=l>{}</td><td>{}</td><td class=\"l {class}\">{label}{note}</td></tr>",
                esc(&t.scope),
                esc(&t.expr),
                t.measured.map_or("no data".into(), |v| format!("{v:.3}")),
            );
        }
        out.push_str("</table>");
    }

    out.push_str("<h2>Success criteria (original load-testing plan)</h2>");
    out.push_str(&grades_table(&s.grades));

    out.push_str("<h2>Requests</h2>");
    out.push_str(&requests_table(&s.requests, &s.aggregated));

    out.push_str("<h2>Failures</h2>");
    if s.failures.is_empty() {
        out.push_str("<p class=muted>None.</p>");
    } else {
        out.push_str("<table><tr><th class=l>Method</th><th class=l>Name</th><th class=l>Category</th><th class=l>Error</th><th>Occurrences</th></tr>");
        for f in &s.failures {
            let _ = write!(
                out,
                "<tr><td class=l>{}</td><td class=l>{}</td><td class=l>{}</td><td class=l>{}</td><td>{}</td></tr>",
                esc(&f.method),
                esc(&f.name),
                esc(&f.category),
                esc(&f.error),
                f.occurrences
            );
        }
        out.push_str("</table>");
    }

    if let Some(c) = &s.capacity {
        out.push_str("<h2>Capacity search</h2>");
        let not_reached = match &c.stopped_by {
            Some(why) => format!("not reached before the run stopped ({why})"),
            None => "not reached".into(),
        };
        let _ = write!(
            out,
            "<p>Breaking point: <b>{}</b>; last step that held: <b>{}</b>{}</p>",
            c.breaking_users
                .map_or(not_reached, |u| format!("{u} users")),
            c.last_good_users
                .map_or("none".into(), |u| format!("{u} users")),
            c.reason
                .as_deref()
                .map(|r| format!(" ({})", esc(r)))
                .unwrap_or_default()
        );
        out.push_str("<table><tr><th>Users</th><th>Requests</th><th>RPS</th><th>Error rate</th><th>p95 (ms)</th><th class=l>Result</th></tr>");
        for st in &c.steps {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.2}%</td><td>{}</td><td class=l>{}</td></tr>",
                st.users,
                st.requests,
                st.rps,
                st.error_rate * 100.0,
                ms(st.p95_ms),
                if st.broke { "broke" } else { "held" }
            );
        }
        out.push_str("</table>");
    }

    if let Some(d) = &s.distributed {
        out.push_str("<h2>Workers</h2>");
        out.push_str(&workers_section(d));
    }

    out.push_str("<h2>Server metrics</h2>");
    out.push_str(&server_section(s));

    out.push_str("<h2>Plan and settings</h2>");
    for w in &s.plan.warnings {
        let _ = write!(out, "<p class=muted>Warning: {}</p>", esc(w));
    }
    let _ = write!(
        out,
        "<p class=muted>{} &middot; written by {}{}</p><pre>{}</pre>",
        esc(&s.plan.origin),
        esc(&s.tool),
        if st.vars.is_empty() {
            String::new()
        } else {
            format!(
                " &middot; vars: {}",
                esc(&st
                    .vars
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", "))
            )
        },
        esc(&s.plan.source)
    );
    out.push_str("</body></html>\n");
    out
}
