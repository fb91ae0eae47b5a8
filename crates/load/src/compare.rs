//! `compare`: two runs side by side (Django vs Rust, strategy vs strategy) as HTML, plus a
//! Markdown table next to it for terminals and pull requests.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::error::LoadError;
use crate::report::Summary;
use crate::report::html::{CSS, verdict_badge};
use crate::report::json;
use crate::report::svg::{Series, esc, line_chart};
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
    let mut out = format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Compare: {} vs {}</title><style>{CSS}</style></head><body>",
        esc(&a.plan.name),
        esc(&b.plan.name)
    );
    let _ = write!(
        out,
        "<h1>Run comparison</h1><dl><dt>A</dt><dd>{} &middot; {} &middot; {}</dd><dt>B</dt><dd>{} &middot; {} &middot; {}</dd></dl>",
        esc(&title(a)),
        esc(&a.settings.started_at),
        verdict_badge(&a.verdict),
        esc(&title(b)),
        esc(&b.settings.started_at),
        verdict_badge(&b.verdict)
    );
    out.push_str(
        "<h2>Overview</h2><table><tr><th class=l>Metric</th><th>A</th><th>B</th><th>B/A</th></tr>",
    );
    for r in overview(a, b) {
        let _ = write!(
            out,
            "<tr><td class=l>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r[0]),
            esc(&r[1]),
            esc(&r[2]),
            esc(&r[3])
        );
    }
    out.push_str("</table>");

    let series = |s: &Summary, tag: &str, f: &dyn Fn(&crate::stats::Point) -> f64| Series {
        label: tag.to_string(),
        points: s.timeseries.iter().map(|p| (p.t, f(p))).collect(),
    };
    out.push_str("<h2>Over time</h2><div class=charts>");
    out.push_str(&line_chart(
        "Requests/s",
        "/s",
        &[series(a, "A", &|p| p.rps), series(b, "B", &|p| p.rps)],
    ));
    out.push_str(&line_chart(
        "p95 per second",
        " ms",
        &[
            series(a, "A", &|p| p.pct(0.95)),
            series(b, "B", &|p| p.pct(0.95)),
        ],
    ));
    out.push_str(&line_chart(
        "Users",
        "",
        &[
            series(a, "A", &|p| f64::from(p.users)),
            series(b, "B", &|p| f64::from(p.users)),
        ],
    ));
    out.push_str(&line_chart(
        "Errors/s",
        "/s",
        &[
            series(a, "A", &|p| p.errors_per_s),
            series(b, "B", &|p| p.errors_per_s),
        ],
    ));
    out.push_str("</div>");

    out.push_str("<h2>Per request</h2><table><tr><th class=l>Request</th><th>A count</th><th>B count</th><th>A avg</th><th>B avg</th><th>A p95</th><th>B p95</th><th>B/A p95</th><th>A p99</th><th>B p99</th><th>A fail %</th><th>B fail %</th></tr>");
    for (name, ra, rb) in names(a, b) {
        let f =
            |r: Option<&RequestStats>, g: &dyn Fn(&RequestStats) -> String| r.map_or("-".into(), g);
        let _ = write!(
            out,
            "<tr><td class=l>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&name),
            f(ra, &|r| r.count.to_string()),
            f(rb, &|r| r.count.to_string()),
            f(ra, &|r| format!("{:.1}", r.avg_ms)),
            f(rb, &|r| format!("{:.1}", r.avg_ms)),
            f(ra, &|r| format!("{:.1}", r.pct(0.95))),
            f(rb, &|r| format!("{:.1}", r.pct(0.95))),
            match (ra, rb) {
                (Some(x), Some(y)) => ratio(x.pct(0.95), y.pct(0.95)),
                _ => "-".into(),
            },
            f(ra, &|r| format!("{:.1}", r.pct(0.99))),
            f(rb, &|r| format!("{:.1}", r.pct(0.99))),
            f(ra, &|r| format!("{:.2}", r.error_rate() * 100.0)),
            f(rb, &|r| format!("{:.2}", r.error_rate() * 100.0)),
        );
    }
    out.push_str("</table>");

    out.push_str("<h2>Success criteria</h2><table><tr><th class=l>Metric</th><th>Target</th><th>A measured</th><th class=l>A grade</th><th>B measured</th><th class=l>B grade</th></tr>");
    for ga in &a.grades {
        let gb = b.grades.iter().find(|g| g.id == ga.id);
        let _ = write!(
            out,
            "<tr><td class=l>{}</td><td>{}</td><td>{}</td><td class=l>{}</td><td>{}</td><td class=l>{}</td></tr>",
            esc(&ga.metric),
            esc(&ga.target),
            esc(&ga.measured_text),
            ga.grade.label(),
            gb.map_or("-".into(), |g| esc(&g.measured_text)),
            gb.map_or("-", |g| g.grade.label()),
        );
    }
    out.push_str("</table></body></html>\n");
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
