//! Minimal inline SVG line charts, so reports open offline with no JavaScript or CDN.

use maud::{Markup, html};

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

/// One decimal, as coordinates are written.
fn c1(v: f64) -> String {
    format!("{v:.1}")
}

/// Renders a line chart with a legend, y axis in `unit`, x axis as elapsed time.
pub fn line_chart(title: &str, unit: &str, series: &[Series]) -> Markup {
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
    // Legend entries: (colour, label, x of the swatch).
    let mut legend = Vec::with_capacity(series.len());
    let mut lx = left + 200.0;
    for (i, s) in series.iter().enumerate() {
        legend.push((PALETTE[i % PALETTE.len()], s, lx));
        lx += 24.0 + 7.0 * s.label.chars().count() as f64;
    }
    html! {
        svg class="chart" viewBox=(format!("0 0 {w} {h}")) xmlns="http://www.w3.org/2000/svg" role="img" {
            title { (title) }
            text x=(left) y="14" class="ct" { (title) }
            @for i in 0..=4 {
                @let v = y_max * f64::from(i) / 4.0;
                @let yy = y(v);
                line x1=(left) x2=(left + pw) y1=(c1(yy)) y2=(c1(yy)) stroke="#e5e7eb" {}
                text x=(left - 4.0) y=(c1(yy + 4.0)) class="ax" text-anchor="end" {
                    (fmt_tick(v)) @if i == 4 { (unit) }
                }
            }
            @for i in 0..=5 {
                @let v = x_max * f64::from(i) / 5.0;
                text x=(c1(x(v))) y=(h - 8.0) class="ax" text-anchor="middle" { (fmt_time(v)) }
            }
            @for (color, s, lx) in &legend {
                @let points: Vec<String> = s
                    .points
                    .iter()
                    .filter(|p| p.1.is_finite())
                    .map(|p| format!("{},{}", c1(x(p.0)), c1(y(p.1))))
                    .collect();
                @if !points.is_empty() {
                    polyline fill="none" stroke=(color) stroke-width="1.6" points=(points.join(" ")) {}
                }
                rect x=(format!("{lx:.0}")) y="6" width="10" height="10" fill=(color) {}
                text x=(format!("{:.0}", lx + 14.0)) y="15" class="ax" { (s.label) }
            }
        }
    }
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
        )
        .into_string();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("RPS &lt;total&gt;") && svg.contains("a&amp;b"));
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(0.3), 0.5);
    }
}
