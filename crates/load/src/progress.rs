//! The live terminal line: users, RPS, errors and p50/p95/p99 of the last second.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::duration::format_duration;
use crate::stats::Point;

/// A cheap-to-clone handle on the progress line (hidden with `--quiet`).
#[derive(Clone)]
pub struct Progress {
    bar: ProgressBar,
    live: Option<Arc<Mutex<Option<Point>>>>,
}

impl Progress {
    /// A progress line on stderr, or a hidden one when `quiet`.
    pub fn new(quiet: bool, plan_name: &str) -> Self {
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
            let style = ProgressStyle::with_template("{spinner} {prefix} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            bar.set_style(style);
            bar.set_prefix(plan_name.to_string());
            bar.set_message("starting ...");
            bar
        };
        Self { bar, live: None }
    }

    /// Also publishes every one-second point into `live` (read by the web UI).
    pub fn with_live(mut self, live: Arc<Mutex<Option<Point>>>) -> Self {
        self.live = Some(live);
        self
    }

    /// Shows the last second's numbers.
    pub fn update(&self, p: &Point, elapsed: Duration, limit: Duration) {
        if let Some(live) = &self.live {
            *live.lock().unwrap_or_else(|e| e.into_inner()) = Some(p.clone());
        }
        if self.bar.is_hidden() {
            return;
        }
        let err_pct = if p.total_requests == 0 {
            0.0
        } else {
            p.total_failures as f64 * 100.0 / p.total_requests as f64
        };
        let g = &p.generator;
        let saturated = if crate::engine::watch::saturated(g, crate::engine::watch::cores()) {
            format!(
                " | GENERATOR BEHIND (CPU {:.1} cores, lag {:.0} ms): times include its delays",
                g.cpu_cores, g.lag_ms
            )
        } else {
            String::new()
        };
        self.bar.set_message(format!(
            "{}/{} | {} users | {:.0} req/s | {} errors ({err_pct:.2}%) | p50 {:.1} ms  p95 {:.1} ms  p99 {:.1} ms{saturated}",
            format_duration(Duration::from_secs(elapsed.as_secs())),
            format_duration(limit),
            p.users,
            p.rps,
            p.total_failures,
            p.pct(0.5),
            p.pct(0.95),
            p.pct(0.99),
        ));
        self.bar.tick();
    }

    /// Prints a line above the progress line.
    pub fn println(&self, line: &str) {
        if !self.bar.is_hidden() {
            self.bar.println(line);
        }
    }

    /// Removes the progress line.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
