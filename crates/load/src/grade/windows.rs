//! Load that held: stretches of the one-second series, their merged response times and errors.
//!
//! Everything here reads only [`Point`]s (one per second: users, requests, failures and that
//! second's response-time histogram), so it grades the merged seconds of any number of
//! generators the same way. A stretch "held" when its p95 and error rate stayed inside the
//! limits (by default the Performance Targets' Target column: p95 < 500 ms, errors < 0.1 %).

use std::collections::VecDeque;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::stats::Point;

/// When a stretch of load counts as held.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// p95 must stay below this, ms.
    pub p95_ms: f64,
    /// Failures / requests must stay below this.
    pub error_rate: f64,
}

/// Merged statistics of consecutive seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// Start, seconds since the run started.
    pub start: f64,
    /// End, seconds since the run started.
    pub end: f64,
    /// Fewest users at any second of the span.
    pub min_users: u32,
    /// Most users at any second of the span.
    pub max_users: u32,
    /// Requests completed.
    pub requests: u64,
    /// Of which failed.
    pub failures: u64,
    /// p95 of the span's responses, ms (`None` without responses).
    pub p95_ms: Option<f64>,
}

impl Span {
    /// Length in seconds.
    pub fn secs(&self) -> f64 {
        (self.end - self.start).max(0.0)
    }

    /// Failures / requests (0 without requests).
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.failures as f64 / self.requests as f64
        }
    }

    /// Requests per second over the span.
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.secs().max(1e-9)
    }

    /// Whether the span had responses and stayed inside `limits`.
    pub fn held(&self, limits: Limits) -> bool {
        self.p95_ms.is_some_and(|p| p < limits.p95_ms) && self.error_rate() < limits.error_rate
    }

    /// Why the span did not hold, in words (empty when it held).
    pub fn why_not(&self, limits: Limits) -> String {
        let mut why = Vec::new();
        match self.p95_ms {
            None => why.push("no responses".to_string()),
            Some(p) if p >= limits.p95_ms => why.push(format!("p95 {p:.0} ms")),
            Some(_) => {}
        }
        if self.error_rate() >= limits.error_rate {
            why.push(format!("errors {:.2}%", self.error_rate() * 100.0));
        }
        why.join(", ")
    }
}

/// How many one-second points a window of `d` needs (at least one: windows shorter than the
/// sampling period are rounded up to it).
pub fn points_for(d: Duration) -> usize {
    (d.as_secs_f64() - 1e-6).ceil().max(1.0) as usize
}

fn start_of(series: &[Point], i: usize) -> f64 {
    if i == 0 { 0.0 } else { series[i - 1].t }
}

fn decode(p: &Point) -> Option<Histogram<u64>> {
    p.hist.as_ref().and_then(|h| h.decode())
}

fn p95(h: &Histogram<u64>) -> Option<f64> {
    (!h.is_empty()).then(|| h.value_at_quantile(0.95) as f64 / 1000.0)
}

fn empty() -> Histogram<u64> {
    // 3 significant digits like the recorder; auto-resizing, so any second can be added.
    Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant digits are valid"))
}

/// Merged statistics of the points `a..=b`.
pub fn span(series: &[Point], a: usize, b: usize) -> Span {
    let mut hist = empty();
    let (mut requests, mut failures) = (0, 0);
    let (mut min_users, mut max_users) = (u32::MAX, 0);
    for p in &series[a..=b] {
        if let Some(h) = decode(p) {
            let _ = hist.add(&h);
        }
        requests += p.requests;
        failures += p.failures;
        min_users = min_users.min(p.users);
        max_users = max_users.max(p.users);
    }
    Span {
        start: start_of(series, a),
        end: series[b].t,
        min_users,
        max_users,
        requests,
        failures,
        p95_ms: p95(&hist),
    }
}

/// Every window of `n` consecutive points, in order (empty when the series is shorter). The
/// merged histogram slides along (add the second that enters, subtract the one that leaves),
/// so this is linear in the length of the run.
pub fn windows(series: &[Point], n: usize) -> Vec<Span> {
    let n = n.max(1);
    if series.len() < n {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(series.len() + 1 - n);
    let mut hist = empty();
    let mut decoded: VecDeque<Option<Histogram<u64>>> = VecDeque::with_capacity(n + 1);
    // Indices of points in the window with increasing users: the front is the minimum.
    let mut mins: VecDeque<usize> = VecDeque::new();
    let mut maxs: VecDeque<usize> = VecDeque::new();
    let (mut requests, mut failures) = (0u64, 0u64);
    for (i, p) in series.iter().enumerate() {
        let h = decode(p);
        if let Some(h) = &h {
            let _ = hist.add(h);
        }
        decoded.push_back(h);
        requests += p.requests;
        failures += p.failures;
        while mins.back().is_some_and(|&j| series[j].users >= p.users) {
            mins.pop_back();
        }
        mins.push_back(i);
        while maxs.back().is_some_and(|&j| series[j].users <= p.users) {
            maxs.pop_back();
        }
        maxs.push_back(i);
        if i >= n {
            let old = &series[i - n];
            if let Some(Some(h)) = decoded.pop_front()
                && hist.subtract(&h).is_err()
            {
                // Cannot happen (the window contains what it subtracts); rebuild to stay exact.
                hist = empty();
                for h in decoded.iter().flatten() {
                    let _ = hist.add(h);
                }
            }
            requests -= old.requests;
            failures -= old.failures;
            while mins.front().is_some_and(|&j| j + n <= i) {
                mins.pop_front();
            }
            while maxs.front().is_some_and(|&j| j + n <= i) {
                maxs.pop_front();
            }
        }
        if i + 1 >= n {
            let first = i + 1 - n;
            out.push(Span {
                start: start_of(series, first),
                end: p.t,
                min_users: mins.front().map_or(0, |&j| series[j].users),
                max_users: maxs.front().map_or(0, |&j| series[j].users),
                requests,
                failures,
                p95_ms: p95(&hist),
            });
        }
    }
    out
}

/// The windows of `hold` (whole seconds, at least one) that really lasted that long: the run's
/// last point covers only the fraction of a second before the stop, and alone it would turn
/// two requests in 5 ms into "400 requests/s held".
pub fn full_windows(series: &[Point], hold: Duration) -> Vec<Span> {
    let n = points_for(hold);
    let need = (hold.as_secs_f64().min(n as f64) - 0.5).max(0.5);
    windows(series, n)
        .into_iter()
        .filter(|w| w.secs() >= need)
        .collect()
}

/// The most users held for `hold` inside `limits`, with the window that held them.
pub fn held_users(series: &[Point], hold: Duration, limits: Limits) -> Option<Span> {
    full_windows(series, hold)
        .into_iter()
        .filter(|w| w.held(limits) && w.min_users > 0)
        .max_by_key(|w| w.min_users)
}

/// The highest request rate held for `hold` inside `limits`, with its window.
pub fn held_throughput(series: &[Point], hold: Duration, limits: Limits) -> Option<Span> {
    full_windows(series, hold)
        .into_iter()
        .filter(|w| w.held(limits))
        .max_by(|a, b| a.rps().total_cmp(&b.rps()))
}

/// A spike: how many users were running within `within` of the first user, and how the
/// spike went (from its start until `within` after the peak was first reached).
#[derive(Debug, Clone, PartialEq)]
pub struct Spike {
    /// When the first user started, s.
    pub start: f64,
    /// Most users running within `within` of the start.
    pub reached: u32,
    /// When that many were first running, s.
    pub reached_at: f64,
    /// The spike: from its start to `within` after `reached_at`.
    pub during: Span,
}

/// Measures the spike at the start of the run (spike plans start from zero users).
pub fn spike(series: &[Point], within: Duration) -> Option<Spike> {
    let first = series.iter().position(|p| p.users > 0)?;
    let start = start_of(series, first);
    // Rounded up to whole samples, plus half a sample: a tick that ran a little late (a busy
    // machine) still counts as the second it was due.
    let window = (points_for(within) as f64).max(within.as_secs_f64()) + 0.5;
    let last_in = series
        .iter()
        .rposition(|p| p.t <= start + window + 1e-6)
        .filter(|&i| i >= first)
        .unwrap_or(first);
    let reached = series[first..=last_in].iter().map(|p| p.users).max()?;
    let at = (first..=last_in).find(|&i| series[i].users >= reached)?;
    let reached_at = series[at].t;
    let end = series
        .iter()
        .rposition(|p| p.t <= reached_at + window + 1e-6)
        .unwrap_or(at)
        .max(at);
    Some(Spike {
        start,
        reached,
        reached_at,
        during: span(series, first, end),
    })
}

/// Users held without a gap for at least `need`, counted from when they were reached.
#[derive(Debug, Clone, PartialEq)]
pub struct Sustained {
    /// The user level held.
    pub users: u32,
    /// The stretch at or above that level.
    pub stretch: Span,
}

/// The longest stretch of consecutive points with at least `level` users.
pub fn longest_at(series: &[Point], level: u32) -> Option<Span> {
    let mut best: Option<(usize, usize)> = None;
    let mut run_start = None;
    for (i, p) in series.iter().enumerate() {
        if p.users >= level {
            let s = *run_start.get_or_insert(i);
            let longer = best.is_none_or(|(a, b)| {
                series[i].t - start_of(series, s) > series[b].t - start_of(series, a)
            });
            if longer {
                best = Some((s, i));
            }
        } else {
            run_start = None;
        }
    }
    best.map(|(a, b)| span(series, a, b))
}

/// The most users held for `need` without a gap. One second of slack absorbs the sampling: a
/// level reached between two ticks is only seen at the next one.
pub fn sustained(series: &[Point], need: Duration) -> Option<Sustained> {
    let mut levels: Vec<u32> = series.iter().map(|p| p.users).filter(|u| *u > 0).collect();
    levels.sort_unstable();
    levels.dedup();
    let need = need.as_secs_f64() - 1.0;
    levels.iter().rev().find_map(|&level| {
        let stretch = longest_at(series, level)?;
        (stretch.secs() >= need).then_some(Sustained {
            users: level,
            stretch,
        })
    })
}

/// A point at second `t` with `users` users and no responses (for tests elsewhere).
#[cfg(test)]
pub(crate) fn test_point(t: f64, users: u32) -> Point {
    tests::point(t, users, 0, 0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{EncodedHistogram, GeneratorSample};

    /// A point at second `t` with `users` users and `n` responses of `ms` ms, `fail` failed.
    pub(super) fn point(t: f64, users: u32, n: u64, ms: u64, fail: u64) -> Point {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for _ in 0..n {
            h.record(ms * 1000).unwrap();
        }
        Point {
            t,
            users,
            rps: n as f64,
            errors_per_s: fail as f64,
            percentiles_ms: vec![],
            total_requests: 0,
            total_failures: 0,
            total_median_ms: 0.0,
            total_avg_ms: 0.0,
            total_min_ms: 0.0,
            total_max_ms: 0.0,
            total_avg_content_size: 0.0,
            requests: n,
            failures: fail,
            hist: (n > 0).then(|| EncodedHistogram::encode(&h)),
            generator: GeneratorSample::default(),
        }
    }

    const LIMITS: Limits = Limits {
        p95_ms: 500.0,
        error_rate: 0.001,
    };

    #[test]
    fn sliding_windows_match_direct_merges() {
        let series: Vec<Point> = (1..=20)
            .map(|t| {
                point(
                    f64::from(t),
                    t * 10,
                    100,
                    u64::from(t) * 40,
                    u64::from(t % 3 == 0),
                )
            })
            .collect();
        let ws = windows(&series, 5);
        assert_eq!(ws.len(), 16);
        for (i, w) in ws.iter().enumerate() {
            assert_eq!(*w, span(&series, i, i + 4), "window {i}");
        }
        assert_eq!(ws[0].min_users, 10);
        assert_eq!(ws[0].max_users, 50);
        assert_eq!((ws[0].start, ws[0].end), (0.0, 5.0));
    }

    #[test]
    fn held_users_are_the_most_users_a_window_kept_inside_the_targets() {
        // 0-10 s ramp to 100 users (fast), 10-40 s 100 users (fast), 40-60 s 200 users (slow).
        let mut series = Vec::new();
        for t in 1..=60u32 {
            let users = if t <= 10 {
                t * 10
            } else if t <= 40 {
                100
            } else {
                200
            };
            let ms = if t <= 40 { 20 } else { 900 };
            series.push(point(f64::from(t), users, 50, ms, 0));
        }
        let held = held_users(&series, Duration::from_secs(10), LIMITS).unwrap();
        assert_eq!(held.min_users, 100);
        // The 200 users existed, but never held the target.
        assert_eq!(series.iter().map(|p| p.users).max(), Some(200));
        // Held for longer than the run: not measurable.
        assert!(held_users(&series, Duration::from_secs(61), LIMITS).is_none());
        // Errors break a window too.
        series[20] = point(21.0, 100, 50, 20, 5);
        let held = held_users(&series, Duration::from_secs(30), LIMITS);
        assert!(held.is_none(), "{held:?}");
    }

    #[test]
    fn the_partial_last_second_is_no_window_of_its_own() {
        let mut series: Vec<Point> = (1..=5)
            .map(|t| point(f64::from(t), 10, 100, 5, 1))
            .collect();
        // The stop, 5 ms after the last tick: two quick answers, no failure.
        series.push(point(5.005, 10, 2, 5, 0));
        let limits = Limits {
            p95_ms: 500.0,
            error_rate: 0.001,
        };
        assert!(held_throughput(&series, Duration::from_millis(600), limits).is_none());
        assert!(held_users(&series, Duration::from_millis(600), limits).is_none());
        assert_eq!(full_windows(&series, Duration::from_secs(2)).len(), 4);
    }

    #[test]
    fn sustained_counts_from_when_the_level_was_reached() {
        // 10 s ramp, then 100 users for 7200 s: the ramp is not part of the 2 h.
        let mut series = Vec::new();
        for t in 1..=7210u32 {
            let users = (t * 10).min(100);
            series.push(point(f64::from(t), users, 0, 0, 0));
        }
        let s = sustained(&series, Duration::from_secs(7200)).unwrap();
        assert_eq!(s.users, 100);
        assert!((s.stretch.start - 9.0).abs() < 1e-9, "{:?}", s.stretch);
        // A 2 h run whose ramp eats into the 2 h does not hold 100 users for 2 h ...
        let short = &series[..7200];
        assert!(sustained(short, Duration::from_secs(7200)).is_some_and(|s| s.users < 100));
        // ... and a gap restarts the count.
        series[3000].users = 50;
        assert!(sustained(&series, Duration::from_secs(7200)).is_some_and(|s| s.users <= 50));
    }

    #[test]
    fn spike_is_users_reached_within_the_window_and_how_the_spike_went() {
        // 0 -> 500 users over 60 s, fast, then 500 users slow.
        let series: Vec<Point> = (1..=120u32)
            .map(|t| {
                let users = (t * 500 / 60).min(500);
                let ms = if t <= 60 { 50 } else { 800 };
                point(f64::from(t), users, 100, ms, 0)
            })
            .collect();
        let s = spike(&series, Duration::from_secs(60)).unwrap();
        assert_eq!(s.reached, 500);
        assert_eq!(s.reached_at, 60.0);
        assert_eq!(s.during.end, 120.0);
        assert!(!s.during.held(LIMITS), "{:?}", s.during);
        let early = spike(&series, Duration::from_secs(30)).unwrap();
        assert_eq!(early.reached, 250);
        assert!(early.during.held(LIMITS));
    }
}
