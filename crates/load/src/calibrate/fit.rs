//! From measurements to a profile: pure functions, no I/O.
//!
//! What is measured, per route: closed-loop runs at concurrency 1 (one request at a time: the
//! route's service time), at the worker's thread count, at every thread of every worker busy,
//! and at twice that. What is fitted, per route, for a Gunicorn deployment of `W` workers x
//! `T` threads on `C` cores:
//!
//! - **service time** `S` = the mean of the latencies at concurrency 1 (from their median and
//!   spread, so a few outliers do not move it), minus the network round trip, and at most
//!   what the saturated rate allows (`W*T / X`);
//! - **throughput when saturated** `X`, after taking out restart pauses (below);
//! - if `X` stays clearly below what the threads allow (`W*T / S`), the route is bound by the
//!   interpreter lock, and its **CPU part** is `min(W, C) / X`; otherwise the threads bind and
//!   the CPU part is only known to be at most that (the file says so);
//! - the **I/O part** is `S - cpu`;
//! - the **spread** (lognormal sigma) is that of the latencies at concurrency 1.
//!
//! **Restarts.** When a worker restarts (`max_requests`) and no other worker covers for it,
//! no response completes for the restart's duration: a gap between completions far longer
//! than the usual one. Such gaps are taken out of the throughput, and their median length is
//! the fitted `restart_secs`. With several workers the others keep serving, no gap appears,
//! and the restarts' cost stays folded into the CPU parts.

use std::fmt::Write;

use pique_core::profile::{CacheState, Dist, Gunicorn, Profile, RouteCost, round3};

/// The 95th percentile of the standard normal distribution.
const Z95: f64 = 1.644_853_626_951_472;

/// A completion gap is a restart pause when it is this many times the median gap...
const STALL_FACTOR: f64 = 10.0;
/// ...and at least this long, in seconds.
const STALL_MIN_SECS: f64 = 0.25;

/// One request as measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Seconds since the level started, when the request was sent.
    pub start: f64,
    /// Seconds since the level started, when its last byte arrived.
    pub end: f64,
    /// HTTP status; 0 when no response came.
    pub status: u16,
    /// What the cache did, from the response's `x-cache` (or how the request was built).
    pub cache: CacheState,
}

impl Sample {
    /// Latency in seconds.
    pub fn latency(&self) -> f64 {
        (self.end - self.start).max(0.0)
    }

    fn ok(&self) -> bool {
        (200..500).contains(&self.status)
    }
}

/// A closed-loop run at one concurrency.
#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    /// Clients, each sending its next request when the previous one completes.
    pub concurrency: u32,
    /// Seconds from the first request sent to the last response received.
    pub duration: f64,
    /// Every request.
    pub samples: Vec<Sample>,
}

/// Every level of one route (and cache outcome).
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// `GET`.
    pub method: String,
    /// The route pattern the profile entry is written for, e.g. `/api/v1/shows/{id}/`.
    pub pattern: String,
    /// An example of the paths requested.
    pub example: String,
    /// Which cache outcome the probe measures (`any` when the route is not cached or cannot
    /// be told apart).
    pub cache: CacheState,
    /// Levels, lowest concurrency first.
    pub levels: Vec<Level>,
}

/// What a level showed.
#[derive(Debug, Clone, PartialEq)]
pub struct LevelStats {
    /// Clients.
    pub concurrency: u32,
    /// Answered requests (statuses below 500) of the probe's cache outcome.
    pub ok: usize,
    /// Requests that failed (no response, or 5xx).
    pub failed: usize,
    /// Requests per second over the whole level.
    pub rate: f64,
    /// Requests per second with restart pauses taken out.
    pub running_rate: f64,
    /// Latency percentiles over every answered request, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, milliseconds.
    pub p99_ms: f64,
    /// Median latency of requests that did not wait out a pause, milliseconds.
    pub unstalled_p50_ms: f64,
    /// Lognormal sigma of the latencies of requests that did not wait out a pause (from
    /// their p95 over their median, which a few outliers do not move).
    pub sigma: f64,
    /// Restart pauses seen (seconds each, beyond the usual gap).
    pub stalls: Vec<f64>,
}

/// Percentile `q` (0..=1) of sorted values (nearest rank).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// Gaps between completions (with the level's start and end as bounds) that are restart
/// pauses: each returned as its excess over the median gap, in seconds.
pub fn stalls(level: &Level) -> Vec<f64> {
    let mut events = vec![0.0];
    events.extend(sorted(level.samples.iter().map(|s| s.end).collect()));
    events.push(level.duration.max(events.last().copied().unwrap_or(0.0)));
    let gaps: Vec<f64> = events.windows(2).map(|w| w[1] - w[0]).collect();
    let median = percentile(&sorted(gaps.clone()), 0.5);
    let threshold = (STALL_FACTOR * median).max(STALL_MIN_SECS);
    gaps.into_iter()
        .filter(|g| *g > threshold)
        .map(|g| g - median)
        .collect()
}

/// Summarises a level; only samples of `cache` count (all when it is `Any`).
pub fn level_stats(level: &Level, cache: CacheState) -> LevelStats {
    let wanted = |s: &&Sample| cache == CacheState::Any || s.cache == cache;
    let answered: Vec<&Sample> = level
        .samples
        .iter()
        .filter(|s| s.ok())
        .filter(wanted)
        .collect();
    let failed = level.samples.iter().filter(|s| !s.ok()).count();
    let latencies = sorted(answered.iter().map(|s| s.latency()).collect());
    let stalls = stalls(level);
    let paused: f64 = stalls.iter().sum();
    let duration = level.duration.max(1e-9);
    // A request that waited out a pause is not a measure of service time.
    let median = percentile(&latencies, 0.5);
    let cutoff = (STALL_FACTOR * median).max(STALL_MIN_SECS);
    let clean: Vec<f64> = latencies.iter().copied().filter(|l| *l <= cutoff).collect();
    let (p50, p95) = (percentile(&clean, 0.5), percentile(&clean, 0.95));
    let sigma = if p50 > 0.0 && p95 > p50 {
        (p95 / p50).ln() / Z95
    } else {
        0.0
    };
    LevelStats {
        concurrency: level.concurrency,
        ok: answered.len(),
        failed,
        rate: answered.len() as f64 / duration,
        running_rate: answered.len() as f64 / (duration - paused).max(duration * 0.05),
        p50_ms: median * 1000.0,
        p99_ms: percentile(&latencies, 0.99) * 1000.0,
        unstalled_p50_ms: p50 * 1000.0,
        sigma,
        stalls,
    }
}

/// Which limit a route ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// The interpreter lock: the CPU part is measured.
    Lock,
    /// The threads: the CPU part is an upper bound.
    Threads,
}

/// The fitted cost of one probe.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteFit {
    /// Mean service time at concurrency 1 (round trip taken out), ms.
    pub service_ms: f64,
    /// Saturated requests per second, pauses taken out.
    pub saturated_rate: f64,
    /// Mean CPU part, ms.
    pub cpu_ms: f64,
    /// Mean I/O part, ms.
    pub io_ms: f64,
    /// Lognormal sigma of both parts.
    pub sigma: f64,
    /// What bound the saturated rate.
    pub bound: Bound,
}

/// Highest sigma written (a p99 about 10 times the median); beyond it the spread at
/// concurrency 1 is the measuring machine's noise, not the route's.
const MAX_SIGMA: f64 = 1.0;

/// Fits one route from its levels' stats; `None` without a usable concurrency-1 level or
/// saturated level.
pub fn fit_route(stats: &[LevelStats], g: &Gunicorn, rtt_ms: f64) -> Option<RouteFit> {
    let single = stats.iter().find(|s| s.concurrency == 1 && s.ok > 0)?;
    let lanes = g.workers * g.threads_per_worker();
    let saturated = stats
        .iter()
        .filter(|s| s.concurrency >= lanes && s.ok > 0)
        .map(|s| s.running_rate)
        .reduce(f64::max)
        .or_else(|| {
            stats
                .iter()
                .filter(|s| s.ok > 0)
                .max_by_key(|s| s.concurrency)
                .map(|s| s.running_rate)
        })?;
    if saturated.is_nan() || saturated <= 0.0 {
        return None;
    }
    let sigma = single.sigma.clamp(0.0, MAX_SIGMA);
    // The lognormal's mean from the median at concurrency 1, round trip taken out...
    let measured_ms = (single.unstalled_p50_ms - rtt_ms).max(0.01) * (sigma * sigma / 2.0).exp();
    // ...but never longer than the saturated rate allows: with `lanes` threads serving X
    // requests per second, a request holds its thread at most lanes / X (a slow measurement
    // at concurrency 1 must not make the threads the bound).
    let service_ms = measured_ms.min(1000.0 * f64::from(lanes) / saturated);
    let lock_ms = 1000.0 * f64::from(g.usable_cores()) / saturated;
    let bound = if service_ms * saturated < 0.85 * 1000.0 * f64::from(lanes) {
        Bound::Lock
    } else {
        Bound::Threads
    };
    let cpu_ms = lock_ms.min(service_ms);
    Some(RouteFit {
        service_ms,
        saturated_rate: saturated,
        cpu_ms,
        io_ms: (service_ms - cpu_ms).max(0.0),
        sigma,
        bound,
    })
}

/// The restart pause: the median of the pauses seen, if any.
pub fn fit_restart(all: &[LevelStats]) -> Option<f64> {
    let pauses = sorted(all.iter().flat_map(|s| s.stalls.iter().copied()).collect());
    (!pauses.is_empty()).then(|| percentile(&pauses, 0.5))
}

/// Everything calibrate measured, with what it knew of the deployment.
#[derive(Debug, Clone)]
pub struct Measurements {
    /// The target's base URL.
    pub host: String,
    /// When the measurement started (RFC 3339).
    pub started_at: String,
    /// Network round trip (fastest TCP connect), ms.
    pub rtt_ms: f64,
    /// Per route.
    pub probes: Vec<Probe>,
}

/// A fitted profile and the figures behind it.
#[derive(Debug, Clone)]
pub struct Fitted {
    /// The profile.
    pub profile: Profile,
    /// Per probe: its level stats and fit (when one was possible).
    pub routes: Vec<(Probe, Vec<LevelStats>, Option<RouteFit>)>,
    /// Restart pause fitted from the gaps, if any were seen.
    pub restart_secs: Option<f64>,
    /// Requests per worker life estimated from the pauses (when not given).
    pub estimated_max_requests: Option<u32>,
}

/// Fits a profile named `name` for a deployment configured as `deployment` (whose
/// `restart_secs`, and `max_requests` when 0, come from the measurements).
pub fn fit(
    m: &Measurements,
    name: &str,
    deployment: &Gunicorn,
    app: pique_core::profile::AppSettings,
) -> Fitted {
    let mut g = deployment.clone();
    let routes: Vec<(Probe, Vec<LevelStats>, Option<RouteFit>)> = m
        .probes
        .iter()
        .map(|p| {
            let stats: Vec<LevelStats> = p.levels.iter().map(|l| level_stats(l, p.cache)).collect();
            let fit = fit_route(&stats, &g, m.rtt_ms);
            (p.clone(), stats, fit)
        })
        .collect();
    let all: Vec<LevelStats> = routes.iter().flat_map(|(_, s, _)| s.clone()).collect();
    let restart_secs = fit_restart(&all);
    let mut estimated_max_requests = None;
    if let Some(pause) = restart_secs {
        g.restart_secs = round3(pause);
        if g.max_requests == 0 {
            // Pauses only show with one worker: requests per pause is the life's length.
            let requests: usize = all.iter().map(|s| s.ok + s.failed).sum();
            let pauses = all.iter().map(|s| s.stalls.len()).sum::<usize>().max(1);
            let n = (requests / pauses) as u32;
            if n > 0 {
                g.max_requests = n;
                g.max_requests_jitter = 0;
                estimated_max_requests = Some(n);
            }
        }
    } else {
        g.restart_secs = 0.0;
    }
    let entry = |p: &Probe, f: &RouteFit| RouteCost {
        method: Some(p.method.clone()),
        path: p.pattern.clone(),
        cache: p.cache,
        cpu: Dist::with_mean(f.cpu_ms, f.sigma),
        io: Dist::with_mean(f.io_ms, f.sigma),
    };
    let mut costs: Vec<RouteCost> = routes
        .iter()
        .filter_map(|(p, _, f)| f.as_ref().map(|f| entry(p, f)))
        .collect();
    // Every other route: priced like show detail (a view with a few queries), else like the
    // median measured route.
    let default = routes
        .iter()
        .find(|(p, _, f)| p.pattern == "/api/v1/shows/{id}/" && f.is_some())
        .or_else(|| {
            let mut fitted: Vec<_> = routes.iter().filter(|(_, _, f)| f.is_some()).collect();
            fitted.sort_by(|a, b| {
                let cpu = |x: &&(Probe, Vec<LevelStats>, Option<RouteFit>)| {
                    x.2.as_ref().map_or(0.0, |f| f.cpu_ms)
                };
                cpu(a).total_cmp(&cpu(b))
            });
            fitted.get(fitted.len() / 2).copied()
        });
    if let Some((p, _, Some(f))) = default {
        let mut any = entry(p, f);
        any.method = None;
        any.path = "*".into();
        any.cache = CacheState::Any;
        costs.push(any);
    }
    let profile = Profile {
        name: name.into(),
        description: format!(
            "Calibrated from {} ({}); gunicorn {}x{}",
            m.host,
            m.started_at,
            g.workers,
            g.threads_per_worker()
        ),
        origin: String::new(),
        app,
        gunicorn: Some(g),
        routes: costs,
    };
    Fitted {
        profile,
        routes,
        restart_secs,
        estimated_max_requests,
    }
}

/// The profile as a TOML file whose comments say what was measured and how each number
/// follows from it.
pub fn to_toml(f: &Fitted, m: &Measurements) -> String {
    let p = &f.profile;
    let mut out = String::new();
    let _ = writeln!(out, "# {}: written by `pique profile calibrate`.", p.name);
    let _ = writeln!(out, "#\n# Target: {}  (measured {})", m.host, m.started_at);
    let _ = writeln!(
        out,
        "# Network round trip (fastest TCP connect): {:.2} ms, taken out of service times.",
        m.rtt_ms
    );
    let _ = writeln!(
        out,
        "#\n# Every route was measured with closed-loop clients (each sends its next GET when the\n\
         # previous answer has arrived) at several concurrencies. Per route below: requests per\n\
         # second (with restart pauses taken out), latency p50/p99, and pauses seen.\n#"
    );
    for (probe, stats, fit) in &f.routes {
        let cache = match probe.cache {
            CacheState::Any => String::new(),
            CacheState::Hit => " [cache hit]".into(),
            CacheState::Miss => " [cache miss]".into(),
        };
        let _ = writeln!(
            out,
            "# {} {}{cache}   e.g. {}",
            probe.method, probe.pattern, probe.example
        );
        for s in stats {
            let _ = writeln!(
                out,
                "#   {:>3} clients: {:>5} ok {:>3} failed  {:>7.1} req/s ({:>7.1} running)  p50 {:>7.2} ms  p99 {:>7.2} ms  pauses {}",
                s.concurrency,
                s.ok,
                s.failed,
                s.rate,
                s.running_rate,
                s.p50_ms,
                s.p99_ms,
                s.stalls.len()
            );
        }
        match fit {
            Some(fit) => {
                let _ = writeln!(
                    out,
                    "#   -> service {:.2} ms at 1 client; saturated {:.1} req/s; {}; cpu {:.2} ms, io {:.2} ms (means), sigma {:.2}",
                    fit.service_ms,
                    fit.saturated_rate,
                    match fit.bound {
                        Bound::Lock =>
                            "bound by the interpreter lock, so cpu = cores in use / saturated rate",
                        Bound::Threads =>
                            "bound by the threads, so cpu is at most cores in use / saturated rate",
                    },
                    fit.cpu_ms,
                    fit.io_ms,
                    fit.sigma
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "#   -> not fitted (no answered request at 1 client or when saturated)"
                );
            }
        }
    }
    let _ = writeln!(out, "#");
    match (f.restart_secs, f.estimated_max_requests) {
        (Some(pause), Some(n)) => {
            let _ = writeln!(
                out,
                "# Restarts: pauses with no response completing had a median of {pause:.3} s (restart_secs);\n\
                 # one every {n} requests on average (max_requests, estimated; not given)."
            );
        }
        (Some(pause), None) => {
            let _ = writeln!(
                out,
                "# Restarts: pauses with no response completing had a median of {pause:.3} s (restart_secs)."
            );
        }
        (None, _) => {
            let _ = writeln!(
                out,
                "# Restarts: no pause seen (several workers cover for each other, or no restart happened\n\
                 # during the measurement); their cost is folded into the CPU parts, restart_secs = 0."
            );
        }
    }
    let _ = writeln!(
        out,
        "# Routes not listed (and every POST: calibrate only reads) cost what `*` says: show detail's\n\
         # figures when it was measured. Gunicorn's settings below are the ones given on the command\n\
         # line, not measured.\n"
    );
    write_profile(&mut out, p);
    out
}

/// A TOML string literal.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn dist(d: &Dist) -> String {
    match d.p99_ms {
        Some(p99) => format!("{{ p50_ms = {}, p99_ms = {} }}", d.p50_ms, p99),
        None => format!("{{ p50_ms = {} }}", d.p50_ms),
    }
}

/// The profile's TOML, laid out as the shipped files are (one line per distribution).
fn write_profile(out: &mut String, p: &Profile) {
    let _ = writeln!(out, "name = {}", quoted(&p.name));
    let _ = writeln!(out, "description = {}", quoted(&p.description));
    let _ = writeln!(out, "\n[app]\nrate_limit = {}", p.app.rate_limit);
    if let Some(strategy) = p.app.checkout_strategy {
        let _ = writeln!(out, "checkout_strategy = {}", quoted(strategy.as_str()));
    }
    if let Some(g) = &p.gunicorn {
        let _ = writeln!(out, "\n[gunicorn]");
        match toml::to_string(g) {
            Ok(body) => out.push_str(&body),
            Err(e) => {
                let _ = writeln!(out, "# could not write the settings: {e}");
            }
        }
    }
    for r in &p.routes {
        let _ = writeln!(out, "\n[[routes]]");
        if let Some(m) = &r.method {
            let _ = writeln!(out, "method = {}", quoted(m));
        }
        let _ = writeln!(out, "path = {}", quoted(&r.path));
        match r.cache {
            CacheState::Any => {}
            CacheState::Hit => out.push_str("cache = \"hit\"\n"),
            CacheState::Miss => out.push_str("cache = \"miss\"\n"),
        }
        let _ = writeln!(out, "cpu = {}", dist(&r.cpu));
        let _ = writeln!(out, "io = {}", dist(&r.io));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gunicorn(workers: u32, threads: u32) -> Gunicorn {
        Profile::from_toml(
            &format!("name = \"g\"\n[gunicorn]\nworkers = {workers}\nthreads = {threads}\n"),
            "test",
        )
        .expect("valid")
        .gunicorn
        .expect("model")
    }

    /// A level where `n` closed-loop clients share one lock of `cpu` seconds per request with
    /// `io` seconds outside it (one worker), over `duration` seconds, with optional pauses
    /// `(at, length)` during which nothing completes.
    fn simulate(n: u32, cpu: f64, io: f64, duration: f64, pauses: &[(f64, f64)]) -> Level {
        // Lock-bound when n * cpu > cpu + io: completions every cpu; else every (cpu+io)/n.
        let interval = cpu.max((cpu + io) / f64::from(n));
        let latency = f64::from(n) * interval;
        let mut samples = Vec::new();
        let mut t = interval;
        while t <= duration {
            if let Some(&(at, len)) = pauses.iter().find(|(at, len)| t > *at && t < at + len) {
                t = at + len + interval;
                continue;
            }
            samples.push(Sample {
                start: (t - latency).max(0.0),
                end: t,
                status: 200,
                cache: CacheState::Any,
            });
            t += interval;
        }
        Level {
            concurrency: n,
            duration,
            samples,
        }
    }

    #[test]
    fn a_lock_bound_route_yields_its_cpu_and_io_parts() {
        let g = gunicorn(1, 2);
        // 4 ms CPU + 2 ms I/O: 166 req/s alone, lock-bound at 250/s with 2 threads.
        let levels = [
            simulate(1, 0.004, 0.002, 3.0, &[]),
            simulate(2, 0.004, 0.002, 3.0, &[]),
            simulate(4, 0.004, 0.002, 3.0, &[]),
        ];
        let stats: Vec<LevelStats> = levels
            .iter()
            .map(|l| level_stats(l, CacheState::Any))
            .collect();
        let fit = fit_route(&stats, &g, 0.0).expect("fits");
        assert_eq!(fit.bound, Bound::Lock);
        assert!((fit.cpu_ms - 4.0).abs() < 0.1, "{fit:?}");
        assert!((fit.io_ms - 2.0).abs() < 0.1, "{fit:?}");
        // The round trip comes out of the service time, not the CPU part.
        let fit = fit_route(&stats, &g, 0.5).expect("fits");
        assert!((fit.io_ms - 1.5).abs() < 0.1, "{fit:?}");
    }

    #[test]
    fn a_thread_bound_route_gives_an_upper_bound() {
        let g = gunicorn(1, 2);
        // 1 ms CPU + 9 ms I/O: 2 threads allow 200/s, the lock 1000/s.
        let levels = [
            simulate(1, 0.001, 0.009, 3.0, &[]),
            simulate(2, 0.001, 0.009, 3.0, &[]),
        ];
        let stats: Vec<LevelStats> = levels
            .iter()
            .map(|l| level_stats(l, CacheState::Any))
            .collect();
        let fit = fit_route(&stats, &g, 0.0).expect("fits");
        assert_eq!(fit.bound, Bound::Threads);
        assert!(fit.cpu_ms >= 1.0 && fit.cpu_ms <= 10.0, "{fit:?}");
    }

    #[test]
    fn restart_pauses_are_found_and_taken_out_of_the_rate() {
        // 5 ms per request, one 1.5 s pause in a 4 s level.
        let level = simulate(2, 0.005, 0.0, 4.0, &[(1.0, 1.5)]);
        let s = level_stats(&level, CacheState::Any);
        assert_eq!(s.stalls.len(), 1);
        assert!((s.stalls[0] - 1.5).abs() < 0.02, "{:?}", s.stalls);
        assert!((s.running_rate - 200.0).abs() < 5.0, "{}", s.running_rate);
        assert!(s.rate < 130.0, "{}", s.rate);
        assert_eq!(
            fit_restart(&[s]),
            Some(level_stats(&level, CacheState::Any).stalls[0])
        );
        // No pause: nothing found.
        let calm = level_stats(&simulate(2, 0.005, 0.0, 4.0, &[]), CacheState::Any);
        assert!(calm.stalls.is_empty());
        assert_eq!(fit_restart(&[calm]), None);
    }

    #[test]
    fn only_the_probes_cache_outcome_counts() {
        let mut level = simulate(1, 0.004, 0.0, 1.0, &[]);
        for (i, s) in level.samples.iter_mut().enumerate() {
            s.cache = if i % 2 == 0 {
                CacheState::Hit
            } else {
                CacheState::Miss
            };
        }
        let all = level_stats(&level, CacheState::Any).ok;
        let hits = level_stats(&level, CacheState::Hit).ok;
        assert_eq!(hits, all.div_ceil(2));
    }

    #[test]
    fn the_written_file_parses_back_to_the_fitted_profile() {
        let g = gunicorn(1, 2);
        let probe = |pattern: &str, cache, cpu| {
            let mut levels = vec![
                simulate(1, cpu, 0.002, 2.0, &[]),
                simulate(2, cpu, 0.002, 2.0, &[(0.5, 0.8)]),
            ];
            for s in levels.iter_mut().flat_map(|l| l.samples.iter_mut()) {
                s.cache = cache;
            }
            Probe {
                method: "GET".into(),
                pattern: pattern.into(),
                example: pattern.replace("{id}", "1"),
                cache,
                levels,
            }
        };
        let m = Measurements {
            host: "http://127.0.0.1:8080".into(),
            started_at: "2025-01-01T00:00:00Z".into(),
            rtt_ms: 0.05,
            probes: vec![
                probe("/api/v1/shows/{id}/", CacheState::Any, 0.004),
                probe("/api/v1/shows/", CacheState::Hit, 0.005),
                probe("/api/v1/shows/", CacheState::Miss, 0.040),
            ],
        };
        let fitted = fit(&m, "mine", &g, Default::default());
        let text = to_toml(&fitted, &m);
        let back = Profile::from_toml(&text, "written").expect("the file is a valid profile");
        assert_eq!(back.routes, fitted.profile.routes);
        assert_eq!(back.gunicorn, fitted.profile.gunicorn);
        let restart = back
            .gunicorn
            .as_ref()
            .map(|g| g.restart_secs)
            .unwrap_or_default();
        assert!((restart - 0.8).abs() < 0.05, "{restart}");
        // Priced like the measurements: the miss costs ~40 ms of CPU, any other route ~4 ms.
        let cpu = |route: &str, cache| {
            back.cost("GET", route, cache)
                .expect("priced")
                .cpu
                .mean_ms()
        };
        assert!((cpu("/api/v1/shows/", CacheState::Miss) - 40.0).abs() < 2.0);
        assert!((cpu("/api/v1/venues/", CacheState::Any) - 4.0).abs() < 0.5);
        assert!(text.contains("# GET /api/v1/shows/ [cache miss]"), "{text}");
    }
}
