//! report.html: one self-contained page (inline CSS and SVG, no network) with charts, the
//! per-endpoint table, failures, server metrics, graded criteria, thresholds and the plan.
//!
//! Written with maud: every value from a plan, a server or a run is escaped by the template,
//! so a request name or an error message cannot inject markup into the page.

use std::collections::BTreeSet;

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::Summary;
use super::svg::{Series, line_chart};
use crate::engine::CapacityResult;
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

/// The head of a report page: title and the shared styles.
pub fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width";
            title { (title) }
            style { (PreEscaped(CSS)) }
        }
    }
}

/// A badge for a verdict string (`PASS ...`, `FAIL ...`).
pub fn verdict_badge(verdict: &str) -> Markup {
    let class = if verdict.starts_with("PASS") {
        "pass"
    } else if verdict.starts_with("FAIL") {
        "fail"
    } else {
        "warn"
    };
    html! { span class={ "badge " (class) } { (verdict) } }
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// The Locust-like per-endpoint table.
pub fn requests_table(rows: &[RequestStats], total: &RequestStats) -> Markup {
    html! {
        table {
            tr {
                th { "Type" } th.l { "Name" } th { "# Requests" } th { "# Fails" } th { "Skipped" }
                th { "Median (ms)" } th { "Average (ms)" } th { "Min (ms)" } th { "Max (ms)" }
                th { "p90" } th { "p95" } th { "p99" } th { "Avg size (B)" } th { "RPS" }
                th { "Failures/s" }
            }
            @for r in rows.iter().chain(std::iter::once(total)) {
                tr {
                    td { (r.method) }
                    td.l { (r.name) }
                    td { (r.count) }
                    td { (r.failures) }
                    td { (r.skipped) }
                    td { (ms(r.pct(0.5))) }
                    td { (ms(r.avg_ms)) }
                    td { (ms(r.min_ms)) }
                    td { (ms(r.max_ms)) }
                    td { (ms(r.pct(0.9))) }
                    td { (ms(r.pct(0.95))) }
                    td { (ms(r.pct(0.99))) }
                    td { (format!("{:.0}", r.avg_content_size)) }
                    td { (format!("{:.1}", r.rps)) }
                    td { (format!("{:.2}", r.failures_per_s)) }
                }
            }
        }
    }
}

/// A distributed run's workers: users, requests, failures, CPU, state.
fn workers_section(d: &crate::distributed::DistributedReport) -> Markup {
    html! {
        table {
            tr {
                th.l { "Worker" } th.l { "Host" } th { "Weight" } th { "Users" } th { "Peak users" }
                th { "# Requests" } th { "# Fails" } th { "Reported by the worker" }
                th { "CPU avg (cores)" } th { "CPU max" } th.l { "State" }
            }
            @for w in &d.workers {
                tr {
                    td.l { (w.name) }
                    td.l { (w.host) }
                    td { (w.weight) }
                    td { (w.users) }
                    td { (w.peak_users) }
                    td { (w.requests) }
                    td { (w.failures) }
                    td { (w.reported_requests.map_or_else(|| "-".to_string(), |n| format!("{n} requests"))) }
                    td { (format!("{:.2}", w.cpu_avg)) }
                    td { (format!("{:.2}", w.cpu_max)) }
                    td.l {
                        @match w.lost_at_s {
                            Some(t) => (format!("lost at {t:.1} s")),
                            None => (w.state),
                        }
                    }
                }
            }
        }
        p.muted {
            (format!(
                "Master CPU: {:.2} cores on average, {:.2} at most. Lost workers: ",
                d.master_cpu_avg, d.master_cpu_max
            ))
            (d.policy) "."
        }
        @if !d.idle.is_empty() {
            p.muted { "Idle (not needed or joined late): " (d.idle.join(", ")) }
        }
        @for r in &d.refused {
            p.muted { "Refused: " (r) }
        }
    }
}

/// The graded criteria table.
pub fn grades_table(rows: &[GradeRow]) -> Markup {
    // Graded rows first (in table order), then the rows this plan shows for information.
    let ordered = rows
        .iter()
        .filter(|r| r.in_verdict)
        .chain(rows.iter().filter(|r| !r.in_verdict));
    html! {
        table {
            tr {
                th.l { "Table" } th.l { "Metric" } th { "Target" } th { "Acceptable" }
                th { "Threshold" } th { "Measured" } th.l { "Grade" } th.l { "Source" }
            }
            @for r in ordered {
                tr {
                    td.l { (r.table) }
                    td.l { (r.metric) }
                    td { (r.target) }
                    td { (r.acceptable) }
                    td { (r.threshold) }
                    td { (r.measured_text) }
                    td class={ "l " (grade_class(r.grade)) } { (r.grade.label()) }
                    td class="l muted" { (r.source) }
                }
            }
        }
    }
}

fn client_charts(s: &Summary) -> Markup {
    let ts = &s.timeseries;
    let pts = |f: &dyn Fn(&crate::stats::Point) -> f64| ts.iter().map(|p| (p.t, f(p))).collect();
    let generator_watched = ts
        .iter()
        .any(|p| p.generator.cpu_cores > 0.0 || p.generator.lag_ms > 0.0);
    html! {
        div.charts {
            (line_chart("Users", "", &[Series {
                label: "users".into(),
                points: pts(&|p| f64::from(p.users)),
            }]))
            (line_chart("Throughput", "/s", &[
                Series { label: "requests/s".into(), points: pts(&|p| p.rps) },
                Series { label: "errors/s".into(), points: pts(&|p| p.errors_per_s) },
            ]))
            (line_chart(
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
            ))
            (line_chart("Errors", "/s", &[Series {
                label: "errors/s".into(),
                points: pts(&|p| p.errors_per_s),
            }]))
            @if generator_watched {
                (line_chart("Load generator: CPU", " cores", &[Series {
                    label: "CPU (cores)".into(),
                    points: pts(&|p| p.generator.cpu_cores),
                }]))
                (line_chart("Load generator: scheduler lag", " ms", &[Series {
                    label: "worst timer lateness".into(),
                    points: pts(&|p| p.generator.lag_ms),
                }]))
            }
        }
    }
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

/// The server-side facts worth a line each: (name, value), absent ones left out.
fn server_facts(s: &Summary) -> Vec<(String, String)> {
    let sv = &s.server;
    let mut facts = Vec::new();
    let mut fact = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            facts.push((k.to_string(), v));
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
    facts
}

/// The server series charted together, per [`SERVER_CHARTS`] group that has any.
fn server_charts(s: &Summary) -> Vec<Markup> {
    let sv = &s.server;
    let keys: BTreeSet<&str> = sv
        .series
        .iter()
        .flat_map(|x| x.values.keys().map(String::as_str))
        .collect();
    let mut charts = Vec::new();
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
            charts.push(line_chart(title, unit, &series));
        }
    }
    charts
}

fn server_section(s: &Summary) -> Markup {
    let sv = &s.server;
    let charts = server_charts(s);
    let facts = server_facts(s);
    html! {
        @if sv.sources.is_empty() {
            p.muted { "No server-side source answered (no /metrics, no --database-url, no --redis-url)." }
        } @else {
            p { "Sources: " (sv.sources.join(", ")) }
            @if !sv.metrics_targets.is_empty() {
                p.muted { "Metrics endpoints (the first is the API): " (sv.metrics_targets.join(", ")) }
            }
        }
        @if !charts.is_empty() {
            div.charts { @for c in charts { (c) } }
        }
        @if !facts.is_empty() {
            dl { @for (k, v) in &facts { dt { (k) } dd { (v) } } }
        }
        @for n in &sv.notes {
            p.muted { (n) }
        }
    }
}

/// The run's settings as (name, value) lines.
fn settings(s: &Summary) -> Vec<(&'static str, String)> {
    let st = &s.settings;
    let mut items: Vec<(&'static str, String)> = Vec::new();
    let mut item = |k: &'static str, v: String| items.push((k, v));
    if st.hosts.len() > 1 {
        item("Hosts (users round-robin)", st.hosts.join(", "));
    } else {
        item("Host", st.host.clone());
    }
    item("Label", st.label.clone().unwrap_or_else(|| "-".into()));
    item(
        "Server profile",
        s.server
            .profile
            .clone()
            .unwrap_or_else(|| "not reported (no pique /metrics)".into()),
    );
    item("Shape", st.shape.clone());
    if st.time_scale < 1.0 {
        item(
            "Time scale",
            format!(
                "{} (durations of the shape and grading windows multiplied by it; think and wait times as written)",
                st.time_scale
            ),
        );
    }
    let g = &s.grading;
    item(
        "Graded as",
        format!(
            "phase {}: {} criteria; load held = {} for {}",
            g.phase,
            g.criteria.len(),
            g.limits_text(),
            crate::duration::format_duration(std::time::Duration::from_secs_f64(g.hold_s))
        ),
    );
    item("Started (UTC)", st.started_at.clone());
    item(
        "Duration",
        format!("{:.1} s ({})", st.duration_s, st.stop_reason),
    );
    item("Peak users", st.peak_users.to_string());
    let g = &s.generator;
    if g.seconds > 0 {
        item(
            "Load generator",
            if g.saturated {
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
        format!(
            "{} ({} failed, {:.3}%), {:.1} req/s",
            s.aggregated.count,
            s.aggregated.failures,
            s.aggregated.error_rate() * 100.0,
            s.aggregated.rps
        ),
    );
    item(
        "Caps",
        format!(
            "run_time {}, max_requests {}",
            st.run_time_cap.as_deref().unwrap_or("-"),
            st.max_requests.map_or("-".to_string(), |m| m.to_string())
        ),
    );
    if s.lag.late_iterations + s.lag.dropped_iterations > 0 || s.lag.max_lag_ms > 0.0 {
        item(
            "Open model lag",
            format!(
                "{} late, {} dropped iterations, max lag {:.1} ms (latency counted from intended start)",
                s.lag.late_iterations, s.lag.dropped_iterations, s.lag.max_lag_ms
            ),
        );
    }
    if let Some(d) = &s.distributed {
        item(
            "Distributed",
            format!(
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
    items
}

fn thresholds_section(s: &Summary) -> Markup {
    html! {
        h2 { "Thresholds" }
        table {
            tr { th.l { "Scope" } th.l { "Threshold" } th { "Measured" } th.l { "Result" } }
            @for t in &s.thresholds {
                @let (class, label) = if t.skipped {
                    ("g-not", "skipped")
                } else if t.passed {
                    ("g-target", "pass")
                } else {
                    ("g-fail", "FAIL")
                };
                tr {
                    td.l { (t.scope) }
                    td.l { (t.expr) }
                    td { (t.measured.map_or("no data".into(), |v| format!("{v:.3}"))) }
                    td class={ "l " (class) } {
                        (label)
                        @if !t.note.is_empty() { " " span.muted { (t.note) } }
                    }
                }
            }
        }
    }
}

fn capacity_section(c: &CapacityResult) -> Markup {
    let not_reached = match &c.stopped_by {
        Some(why) => format!("not reached before the run stopped ({why})"),
        None => "not reached".into(),
    };
    html! {
        h2 { "Capacity search" }
        p {
            "Breaking point: "
            b { (c.breaking_users.map_or(not_reached, |u| format!("{u} users"))) }
            "; last step that held: "
            b { (c.last_good_users.map_or("none".into(), |u| format!("{u} users"))) }
            @if let Some(r) = &c.reason { " (" (r) ")" }
        }
        table {
            tr {
                th { "Users" } th { "Requests" } th { "RPS" } th { "Error rate" } th { "p95 (ms)" }
                th.l { "Result" }
            }
            @for st in &c.steps {
                tr {
                    td { (st.users) }
                    td { (st.requests) }
                    td { (format!("{:.1}", st.rps)) }
                    td { (format!("{:.2}%", st.error_rate * 100.0)) }
                    td { (ms(st.p95_ms)) }
                    td.l { @if st.broke { "broke" } @else { "held" } }
                }
            }
        }
    }
}

/// Renders the whole report.
pub fn render(s: &Summary) -> String {
    let st = &s.settings;
    let thresholds_ok = s.exit_code == 0;
    let thresholds = if s.thresholds.is_empty() {
        "none defined"
    } else if thresholds_ok {
        "passed (exit 0)"
    } else {
        "failed (exit 1)"
    };
    let vars = st
        .vars
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            (head(&format!("{} - pique-load report", s.plan.name)))
            body {
                h1 { (s.plan.name) }
                p.muted { (s.plan.description) }
                p {
                    "Grading: " (verdict_badge(&s.verdict)) "\u{a0} Thresholds: "
                    span class={ "badge " (if thresholds_ok { "pass" } else { "fail" }) } { (thresholds) }
                }
                dl { @for (k, v) in settings(s) { dt { (k) } dd { (v) } } }

                h2 { "Load over time" }
                (client_charts(s))

                @if !s.thresholds.is_empty() { (thresholds_section(s)) }

                h2 { "Success criteria (original load-testing plan)" }
                (grades_table(&s.grades))

                h2 { "Requests" }
                (requests_table(&s.requests, &s.aggregated))

                h2 { "Failures" }
                @if s.failures.is_empty() {
                    p.muted { "None." }
                } @else {
                    table {
                        tr {
                            th.l { "Method" } th.l { "Name" } th.l { "Category" } th.l { "Error" }
                            th { "Occurrences" }
                        }
                        @for f in &s.failures {
                            tr {
                                td.l { (f.method) }
                                td.l { (f.name) }
                                td.l { (f.category) }
                                td.l { (f.error) }
                                td { (f.occurrences) }
                            }
                        }
                    }
                }

                @if let Some(c) = &s.capacity { (capacity_section(c)) }

                @if let Some(d) = &s.distributed {
                    h2 { "Workers" }
                    (workers_section(d))
                }

                h2 { "Server metrics" }
                (server_section(s))

                h2 { "Plan and settings" }
                @for w in &s.plan.warnings {
                    p.muted { "Warning: " (w) }
                }
                p.muted {
                    (s.plan.origin) " \u{b7} written by " (s.tool)
                    @if !vars.is_empty() { " \u{b7} vars: " (vars) }
                }
                pre { (s.plan.source) }
            }
        }
    };
    let mut out = page.into_string();
    out.push('\n');
    out
}
