//! Minimal inline SVG line charts, so reports open offline with no JavaScript or CDN.

use std::fmt::Write;

/// Colours used for series, in order.
pub const PALETTE: [&str; 8] = [
    "#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563",
];

/// One line of a chart.
pub struct Series {
    /// Legend label.
    pub label: String,
    /// (x, y) points; x is seconds since start.
    pub points: Vec<(f64, f64)>,
}

/// Escapes text for HTML/SVG.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A "nice" axis maximum (1, 2, 2.5 or 5 times a power of ten) at or above `v`.
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * p >= v {
            return m * p;
        }
    }
    10.0 * p
}

fn fmt_tick(v: f64) -> String {
    if v >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn fmt_time(secs: f64) -> String {
    let s = secs.round() as i64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Renders a line chart with a legend, y axis in `unit`, x axis as elapsed time.
pub fn line_chart(title: &str, unit: &str, series: &[Series]) -> String {
    let (w, h) = (720.0, 240.0);
    let (left, right, top, bottom) = (56.0, 12.0, 36.0, 28.0);
    let pw = w - left - right;
    let ph = h - top - bottom;
    let all = series.iter().flat_map(|s| s.points.iter());
    let x_max = all.clone().map(|p| p.0).fold(1.0_f64, f64::max);
    let y_max = nice_max(
        all.map(|p| p.1)
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max),
    );
    let x = |v: f64| left + v / x_max * pw;
    let y = |v: f64| top + ph - (v / y_max).clamp(0.0, 1.0) * ph;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="chart" viewBox="0 0 {w} {h}" xmlns="http://www.w3.org/2000/svg" role="img"><title>{t}</title><text x="{left}" y="14" class="ct">{t}</text>"#,
        t = esc(title)
    );
    for i in 0..=4 {
        let v = y_max * f64::from(i) / 4.0;
        let yy = y(v);
        let _ = write!(
            out,
            r##"<line x1="{left}" x2="{x2}" y1="{yy:.1}" y2="{yy:.1}" stroke="#e5e7eb"/><text x="{tx}" y="{ty:.1}" class="ax" text-anchor="end">{l}</text>"##,
            x2 = left + pw,
            tx = left - 4.0,
            ty = yy + 4.0,
            l = esc(&format!(
                "{}{}",
                fmt_tick(v),
                if i == 4 { unit } else { "" }
            )),
        );
    }
    for i in 0..=5 {
        let v = x_max * f64::from(i) / 5.0;
        let _ = write!(
            out,
            r#"<text x="{xx:.1}" y="{yy}" class="ax" text-anchor="middle">{l}</text>"#,
            xx = x(v),
            yy = h - 8.0,
            l = fmt_time(v)
        );
    }
    let mut lx = left + 200.0;
    for (i, s) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let pts: Vec<String> = s
            .points
            .iter()
            .filter(|p| p.1.is_finite())
            .map(|p| format!("{:.1},{:.1}", x(p.0), y(p.1)))
            .collect();
        if !pts.is_empty() {
            let _ = write!(
                out,
                r#"<polyline fill="none" stroke="{color}" stroke-width="1.6" points="{}"/>"#,
                pts.join(" ")
            );
        }
        let _ = write!(
            out,
            r#"<rect x="{lx:.0}" y="6" width="10" height="10" fill="{color}"/><text x="{tx:.0}" y="15" class="ax">{l}</text>"#,
            tx = lx + 14.0,
            l = esc(&s.label)
        );
        lx += 24.0 + 7.0 * s.label.chars().count() as f64;
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_is_svg_with_escaped_labels() {
        let svg = line_chart(
            "RPS <total>",
            " req/s",
            &[Series {
                label: "a&b".into(),
                points: vec![(0.0, 1.0), (1.0, 3.0)],
            }],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("RPS &lt;total&gt;") && svg.contains("a&amp;b"));
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(0.3), 0.5);
    }
}
