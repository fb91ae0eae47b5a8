//! `compare`: two runs side by side (Django vs Rust, strategy vs strategy) as HTML, plus a
//! Markdown table next to it for terminals and pull requests.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use maud::{DOCTYPE, html};

use crate::error::LoadError;
use crate::report::Summary;
use crate::report::html::{head, verdict_badge};
use crate::report::json;
use crate::report::svg::{Series, line_chart};
use crate::stats::RequestStats;

fn title(s: &Summary) -> String {
    let tags: Vec<&str> = [s.settings.label.as_deref(), s.server.profile.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    if tags.is_empty() {
        format!("{} @ {}", s.plan.name, s.settings.host)
    } else {
        format!(
            "{} [{}] @ {}",
            s.plan.name,
            tags.join("; "),
            s.settings.host
        )
    }
}

fn ratio(a: f64, b: f64) -> String {
    if a > 0.0 && b.is_finite() {
        format!("{:.2}x", b / a)
    } else {
        "-".into()
    }
}

/// Overview rows: (metric, A, B, B/A) as text.
fn overview(a: &Summary, b: &Summary) -> Vec<[String; 4]> {
    let (x, y) = (&a.aggregated, &b.aggregated);
    let row = |m: &str, va: f64, vb: f64, fmt: &dyn Fn(f64) -> String| {
        [m.to_string(), fmt(va), fmt(vb), ratio(va, vb)]
    };
    let msf = |v: f64| format!("{v:.1} ms");
    vec![
        row("Requests", x.count as f64, y.count as f64, &|v| {
            format!("{v:.0}")
        }),
        row("Requests/s", x.rps, y.rps, &|v| format!("{v:.1}")),
        row("Error rate", x.error_rate(), y.error_rate(), &|v| {
            format!("{:.3}%", v * 100.0)
        }),
        row("Average", x.avg_ms, y.avg_ms, &msf),
        row("Median", x.pct(0.5), y.pct(0.5), &msf),
        row("p95", x.pct(0.95), y.pct(0.95), &msf),
        row("p99", x.pct(0.99), y.pct(0.99), &msf),
        row("Max", x.max_ms, y.max_ms, &msf),
        row(
            "Peak users",
            f64::from(a.settings.peak_users),
            f64::from(b.settings.peak_users),
            &|v| format!("{v:.0}"),
        ),
        [
            "Verdict".into(),
            a.verdict.clone(),
            b.verdict.clone(),
            String::new(),
        ],
    ]
}

/// The overview as a Markdown table.
pub fn markdown(a: &Summary, b: &Summary) -> String {
    let mut out = format!(
        "| Metric | A: {} | B: {} | B/A |\n|---|---:|---:|---:|\n",
        title(a),
        title(b)
    );
    for r in overview(a, b) {
        let _ = writeln!(out, "| {} | {} | {} | {} |", r[0], r[1], r[2], r[3]);
    }
    out.push_str("\n| Request | A p95 (ms) | B p95 (ms) | A req/s | B req/s | A fail % | B fail % |\n|---|---:|---:|---:|---:|---:|---:|\n");
    for (name, ra, rb) in names(a, b) {
        let f =
            |r: Option<&RequestStats>, g: &dyn Fn(&RequestStats) -> String| r.map_or("-".into(), g);
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {} | {} |",
            f(ra, &|r| format!("{:.1}", r.pct(0.95))),
            f(rb, &|r| format!("{:.1}", r.pct(0.95))),
            f(ra, &|r| format!("{:.1}", r.rps)),
            f(rb, &|r| format!("{:.1}", r.rps)),
            f(ra, &|r| format!("{:.2}", r.error_rate() * 100.0)),
            f(rb, &|r| format!("{:.2}", r.error_rate() * 100.0)),
        );
    }
    out
}

/// Request names of both runs, each with its row in A and in B.
fn names<'a>(
    a: &'a Summary,
    b: &'a Summary,
) -> Vec<(String, Option<&'a RequestStats>, Option<&'a RequestStats>)> {
    let key = |r: &RequestStats| format!("{} {}", r.method, r.name);
    let all: BTreeSet<String> = a.requests.iter().chain(&b.requests).map(key).collect();
    all.into_iter()
        .map(|k| {
            let ra = a.requests.iter().find(|r| key(r) == k);
            let rb = b.requests.iter().find(|r| key(r) == k);
            (k, ra, rb)
        })
        .collect()
}

fn render(a: &Summary, b: &Summary) -> String {
    let series = |s: &Summary, tag: &str, f: &dyn Fn(&crate::stats::Point) -> f64| Series {
        label: tag.to_string(),
        points: s.timeseries.iter().map(|p| (p.t, f(p))).collect(),
    };
    let both = |f: &dyn Fn(&crate::stats::Point) -> f64| [series(a, "A", f), series(b, "B", f)];
    let f = |r: Option<&RequestStats>, g: &dyn Fn(&RequestStats) -> String| r.map_or("-".into(), g);
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            (head(&format!("Compare: {} vs {}", a.plan.name, b.plan.name)))
            body {
                h1 { "Run comparison" }
                dl {
                    dt { "A" }
                    dd { (title(a)) " \u{b7} " (a.settings.started_at) " \u{b7} " (verdict_badge(&a.verdict)) }
                    dt { "B" }
                    dd { (title(b)) " \u{b7} " (b.settings.started_at) " \u{b7} " (verdict_badge(&b.verdict)) }
                }
                h2 { "Overview" }
                table {
                    tr { th.l { "Metric" } th { "A" } th { "B" } th { "B/A" } }
                    @for r in overview(a, b) {
                        tr { td.l { (r[0]) } td { (r[1]) } td { (r[2]) } td { (r[3]) } }
                    }
                }
                h2 { "Over time" }
                div.charts {
                    (line_chart("Requests/s", "/s", &both(&|p| p.rps)))
                    (line_chart("p95 per second", " ms", &both(&|p| p.pct(0.95))))
                    (line_chart("Users", "", &both(&|p| f64::from(p.users))))
                    (line_chart("Errors/s", "/s", &both(&|p| p.errors_per_s)))
                }
                h2 { "Per request" }
                table {
                    tr {
                        th.l { "Request" } th { "A count" } th { "B count" } th { "A avg" }
                        th { "B avg" } th { "A p95" } th { "B p95" } th { "B/A p95" } th { "A p99" }
                        th { "B p99" } th { "A fail %" } th { "B fail %" }
                    }
                    @for (name, ra, rb) in names(a, b) {
                        tr {
                            td.l { (name) }
                            td { (f(ra, &|r| r.count.to_string())) }
                            td { (f(rb, &|r| r.count.to_string())) }
                            td { (f(ra, &|r| format!("{:.1}", r.avg_ms))) }
                            td { (f(rb, &|r| format!("{:.1}", r.avg_ms))) }
                            td { (f(ra, &|r| format!("{:.1}", r.pct(0.95)))) }
                            td { (f(rb, &|r| format!("{:.1}", r.pct(0.95)))) }
                            td {
                                @match (ra, rb) {
                                    (Some(x), Some(y)) => (ratio(x.pct(0.95), y.pct(0.95))),
                                    _ => "-",
                                }
                            }
                            td { (f(ra, &|r| format!("{:.1}", r.pct(0.99)))) }
                            td { (f(rb, &|r| format!("{:.1}", r.pct(0.99)))) }
                            td { (f(ra, &|r| format!("{:.2}", r.error_rate() * 100.0))) }
                            td { (f(rb, &|r| format!("{:.2}", r.error_rate() * 100.0))) }
                        }
                    }
                }
                h2 { "Success criteria" }
                table {
                    tr {
                        th.l { "Metric" } th { "Target" } th { "A measured" } th.l { "A grade" }
                        th { "B measured" } th.l { "B grade" }
                    }
                    @for ga in &a.grades {
                        @let gb = b.grades.iter().find(|g| g.id == ga.id);
                        tr {
                            td.l { (ga.metric) }
                            td { (ga.target) }
                            td { (ga.measured_text) }
                            td.l { (ga.grade.label()) }
                            td { (gb.map_or("-", |g| g.measured_text.as_str())) }
                            td.l { (gb.map_or("-", |g| g.grade.label())) }
                        }
                    }
                }
            }
        }
    };
    let mut out = page.into_string();
    out.push('\n');
    out
}

/// Compares two runs (directories or summary.json files) and writes `out` (HTML) and
/// `out` with a `.md` extension (Markdown tables); returns the HTML path.
pub fn compare(a: &Path, b: &Path, out: &Path) -> Result<PathBuf, LoadError> {
    let sa = json::read(a)?;
    let sb = json::read(b)?;
    let out = if out.is_dir() {
        out.join("compare.html")
    } else {
        out.to_path_buf()
    };
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| LoadError::io(format!("create {}", parent.display()), e))?;
    }
    std::fs::write(&out, render(&sa, &sb))
        .map_err(|e| LoadError::io(format!("write {}", out.display()), e))?;
    let md = out.with_extension("md");
    std::fs::write(&md, markdown(&sa, &sb))
        .map_err(|e| LoadError::io(format!("write {}", md.display()), e))?;
    Ok(out)
}
