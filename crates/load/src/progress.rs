//! The live terminal display: users, requests/s, response times, failures, elapsed and
//! remaining time. On a terminal it is a few lines redrawn in place by indicatif; otherwise
//! (CI logs, a pipe) a plain line every few seconds, which reads well in a log file.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::stats::Point;

/// Seconds between two plain lines when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

#[derive(Clone)]
enum Display {
    Hidden,
    /// Redrawn in place on a terminal.
    Live(ProgressBar),
    /// A line every [`PLAIN_EVERY`]; holds when the last one was printed.
    Plain(Arc<Mutex<Option<Duration>>>),
}

/// A cheap-to-clone handle on the display (hidden with `--quiet`).
#[derive(Clone)]
pub struct Progress {
    plan: Arc<str>,
    display: Display,
    /// Appended to every update (a distributed run's workers, e.g. `workers 2/3 DEGRADED`).
    note: Arc<Mutex<String>>,
}

impl Progress {
    /// A display on stderr: live on a terminal, plain lines otherwise, nothing when `quiet`.
    pub fn new(quiet: bool, plan_name: &str) -> Self {
        let display = if quiet {
            Display::Hidden
        } else if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(1), ProgressDrawTarget::stderr_with_hz(4));
            let style = ProgressStyle::with_template(
                "{spinner:.green} {prefix:.bold}  [{bar:30.cyan/blue}]  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(plan_name.to_string());
            bar.set_message("starting ...");
            bar.enable_steady_tick(Duration::from_millis(250));
            Display::Live(bar)
        } else {
            Display::Plain(Arc::new(Mutex::new(None)))
        };
        Self {
            plan: plan_name.into(),
            display,
            note: Arc::default(),
        }
    }

    /// Sets the note shown with every later update.
    pub fn set_note(&self, note: &str) {
        *self.note.lock().unwrap_or_else(|e| e.into_inner()) = note.to_string();
    }

    /// Shows the last second's numbers; `limit` is how long the run lasts unless stopped.
    pub fn update(&self, p: &Point, elapsed: Duration, limit: Duration) {
        let note = self.note.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match &self.display {
            Display::Hidden => {}
            Display::Live(bar) => {
                bar.set_length(limit.as_secs().max(1));
                bar.set_position(elapsed.as_secs().min(limit.as_secs()));
                let mut message = live_message(p, elapsed, limit);
                if !note.is_empty() {
                    message.push_str("\n  ");
                    message.push_str(&note);
                }
                bar.set_message(message);
            }
            Display::Plain(last) => {
                let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
                if last.is_some_and(|t| elapsed < t + PLAIN_EVERY) {
                    return;
                }
                *last = Some(elapsed);
                let mut line = plain_line(&self.plan, p, elapsed, limit);
                if !note.is_empty() {
                    line.push_str(" | ");
                    line.push_str(&note);
                }
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
        }
    }

    /// Prints a line above the live display (or as a plain line).
    pub fn println(&self, line: &str) {
        match &self.display {
            Display::Hidden => {}
            Display::Live(bar) => bar.println(line),
            Display::Plain(_) => {
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
        }
    }

    /// Removes the live display.
    pub fn finish(&self) {
        if let Display::Live(bar) = &self.display {
            bar.finish_and_clear();
        }
    }
}

/// `1:05` or `1:02:05`.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

fn failures(p: &Point) -> String {
    let pct = if p.total_requests == 0 {
        0.0
    } else {
        p.total_failures as f64 * 100.0 / p.total_requests as f64
    };
    format!("{} ({pct:.2}%)", p.total_failures)
}

/// A warning when the generator itself fell behind this second (its CPU or scheduler was
/// saturated): its response times then include its own delays.
fn behind(p: &Point) -> String {
    let g = &p.generator;
    if crate::engine::watch::saturated(g, crate::engine::watch::cores()) {
        format!(
            "GENERATOR BEHIND (CPU {:.1} cores, lag {:.0} ms): times include its delays",
            g.cpu_cores, g.lag_ms
        )
    } else {
        String::new()
    }
}

/// The live display's text after the bar (three lines, four when the generator fell behind).
fn live_message(p: &Point, elapsed: Duration, limit: Duration) -> String {
    let left = limit.saturating_sub(elapsed);
    let warning = behind(p);
    let warning = if warning.is_empty() {
        warning
    } else {
        format!("\n  {warning}")
    };
    format!(
        "{} / {}  ({} left)\n  users {:<8} requests/s {:<10.1} requests {:<10} failures {}\n  \
         p50 {:.1} ms   p95 {:.1} ms   p99 {:.1} ms   (this second){warning}",
        clock(elapsed),
        clock(limit),
        clock(left),
        p.users,
        p.rps,
        p.total_requests,
        failures(p),
        p.pct(0.5),
        p.pct(0.95),
        p.pct(0.99),
    )
}

/// One plain line, for logs.
fn plain_line(plan: &str, p: &Point, elapsed: Duration, limit: Duration) -> String {
    let warning = behind(p);
    let warning = if warning.is_empty() {
        warning
    } else {
        format!(" | {warning}")
    };
    format!(
        "[{plan} {}/{}, {} left] {} users | {:.1} req/s | p50 {:.1} ms  p95 {:.1} ms  p99 {:.1} ms | \
         {} requests | failures {}{warning}",
        clock(elapsed),
        clock(limit),
        clock(limit.saturating_sub(elapsed)),
        p.users,
        p.rps,
        p.pct(0.5),
        p.pct(0.95),
        p.pct(0.99),
        p.total_requests,
        failures(p),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{GeneratorSample, QUANTILES};

    fn point() -> Point {
        Point {
            t: 12.0,
            users: 20,
            rps: 312.44,
            errors_per_s: 0.0,
            percentiles_ms: QUANTILES.iter().map(|q| q * 100.0).collect(),
            total_requests: 3742,
            total_failures: 3,
            total_median_ms: 4.0,
            total_avg_ms: 5.0,
            total_min_ms: 1.0,
            total_max_ms: 90.0,
            total_avg_content_size: 10.0,
            requests: 312,
            failures: 0,
            hist: None,
            generator: GeneratorSample::default(),
        }
    }

    #[test]
    fn shows_users_rates_times_failures_and_time_left() {
        let (elapsed, limit) = (Duration::from_secs(12), Duration::from_secs(3725));
        let line = plain_line("mixed", &point(), elapsed, limit);
        assert_eq!(
            line,
            "[mixed 0:12/1:02:05, 1:01:53 left] 20 users | 312.4 req/s | p50 50.0 ms  p95 95.0 ms  \
             p99 99.0 ms | 3742 requests | failures 3 (0.08%)"
        );
        let live = live_message(&point(), elapsed, Duration::from_secs(20));
        assert_eq!(live.lines().count(), 3, "{live}");
        assert!(live.starts_with("0:12 / 0:20  (0:08 left)"), "{live}");
        assert!(
            live.contains("users 20") && live.contains("p95 95.0 ms"),
            "{live}"
        );
    }
}
