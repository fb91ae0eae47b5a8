//! The generator watching itself: the CPU its process uses and how late its scheduler runs
//! timers, every second. A response that arrives while every runtime thread is busy waits to
//! be read, and that wait lands in the response time; when that happens the run's response
//! times describe the generator, not the server, and the verdict says so instead of grading.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::stats::{GeneratorSample, Point};

/// How often the lag probe wakes up.
const PROBE: Duration = Duration::from_millis(10);

/// A second is saturated when the generator used this share of its cores ...
pub const SATURATED_CPU_SHARE: f64 = 0.9;
/// ... or its timers ran this late.
pub const SATURATED_LAG_MS: f64 = 50.0;

/// The process's CPU time so far (user + system), when the platform tells.
fn process_cpu() -> Option<Duration> {
    #[cfg(unix)]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
        Some(Duration::new(
            u64::try_from(t.tv_sec).ok()?,
            u32::try_from(t.tv_nsec).ok()?,
        ))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Per-second readings of the generator's own load.
pub(crate) struct Watch {
    /// Worst timer lateness since the last sample, µs.
    lag_max_us: AtomicU64,
    /// CPU time and wall time at the last sample.
    last: Mutex<(Instant, Option<Duration>)>,
}

impl Watch {
    /// Starts the lag probe; it stops with `stop`.
    pub fn start(stop: CancellationToken) -> Arc<Watch> {
        let watch = Arc::new(Watch {
            lag_max_us: AtomicU64::new(0),
            last: Mutex::new((Instant::now(), process_cpu())),
        });
        let w = watch.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PROBE);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                let due = tokio::select! {
                    due = tick.tick() => due,
                    _ = stop.cancelled() => return,
                };
                let late = Instant::now().saturating_duration_since(due);
                let us = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
                w.lag_max_us.fetch_max(us, Ordering::Relaxed);
            }
        });
        watch
    }

    /// The generator's load since the previous sample.
    pub fn sample(&self) -> GeneratorSample {
        let now = Instant::now();
        let cpu = process_cpu();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let wall = now.duration_since(last.0).as_secs_f64().max(1e-3);
        let cpu_cores = match (cpu, last.1) {
            (Some(c), Some(l)) => c.saturating_sub(l).as_secs_f64() / wall,
            _ => 0.0,
        };
        *last = (now, cpu);
        GeneratorSample {
            cpu_cores,
            lag_ms: self.lag_max_us.swap(0, Ordering::Relaxed) as f64 / 1000.0,
        }
    }
}

/// Cores the generator may use.
pub fn cores() -> f64 {
    std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64)
}

/// Whether one second's sample shows a saturated generator.
pub fn saturated(s: &GeneratorSample, cores: f64) -> bool {
    s.cpu_cores >= SATURATED_CPU_SHARE * cores || s.lag_ms >= SATURATED_LAG_MS
}

/// How the generator fared over the whole run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct GeneratorHealth {
    /// Cores available to the generator.
    pub cores: f64,
    /// Seconds sampled.
    pub seconds: usize,
    /// Of which the generator was behind (saturated CPU or late timers).
    pub saturated_seconds: usize,
    /// Share of the run's responses timed during those seconds.
    #[serde(default)]
    pub requests_share: f64,
    /// Most CPU used in a second, cores.
    pub cpu_max: f64,
    /// Worst scheduler lag, ms.
    pub lag_max_ms: f64,
    /// Whether the generator's own delays may show in the response times: at least 1 % of
    /// the responses (enough to move a p99) were timed while it was behind.
    pub saturated: bool,
}

/// Responses timed while behind, as a share of all, from which the run counts as behind.
const BEHIND_SHARE: f64 = 0.01;

impl GeneratorHealth {
    /// Summarises the series' generator samples.
    pub fn of(series: &[Point], cores: f64) -> Self {
        let behind: Vec<&Point> = series
            .iter()
            .filter(|p| saturated(&p.generator, cores))
            .collect();
        let total: u64 = series.iter().map(|p| p.requests).sum();
        let during: u64 = behind.iter().map(|p| p.requests).sum();
        let requests_share = if total == 0 {
            0.0
        } else {
            during as f64 / total as f64
        };
        GeneratorHealth {
            cores,
            seconds: series.len(),
            saturated_seconds: behind.len(),
            requests_share,
            cpu_max: series
                .iter()
                .map(|p| p.generator.cpu_cores)
                .fold(0.0, f64::max),
            lag_max_ms: series
                .iter()
                .map(|p| p.generator.lag_ms)
                .fold(0.0, f64::max),
            saturated: !behind.is_empty() && requests_share >= BEHIND_SHARE,
        }
    }

    /// "in 12 of 30 s (40% of the responses): CPU up to 1.9 of 2 cores, scheduler lag up to
    /// 150 ms".
    pub fn describe(&self) -> String {
        format!(
            "in {} of {} s ({:.0}% of the responses): CPU up to {:.2} of {} cores, scheduler \
             lag up to {:.0} ms",
            self.saturated_seconds,
            self.seconds,
            self.requests_share * 100.0,
            self.cpu_max,
            self.cores,
            self.lag_max_ms
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_busy_runtime_shows_lag_and_cpu() {
        let stop = CancellationToken::new();
        let watch = Watch::start(stop.clone());
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = watch.sample();
        // Block both runtime threads for 150 ms: the probe cannot run.
        let busy = || {
            tokio::task::spawn(async {
                let until = std::time::Instant::now() + Duration::from_millis(150);
                while std::time::Instant::now() < until {
                    std::hint::spin_loop();
                }
            })
        };
        let (a, b) = (busy(), busy());
        let _ = (a.await, b.await);
        tokio::time::sleep(Duration::from_millis(30)).await;
        let s = watch.sample();
        assert!(s.lag_ms >= 100.0, "{s:?}");
        // Some CPU was counted (how much depends on what else the machine runs).
        assert!(s.cpu_cores > 0.0, "{s:?}");
        stop.cancel();
    }

    #[test]
    fn a_run_is_behind_when_enough_responses_were_timed_while_it_was() {
        let point = |cpu: f64, lag: f64, requests: u64| Point {
            generator: GeneratorSample {
                cpu_cores: cpu,
                lag_ms: lag,
            },
            requests,
            ..crate::grade::windows::test_point(1.0, 1)
        };
        let calm: Vec<Point> = (0..100).map(|_| point(0.3, 2.0, 100)).collect();
        assert!(!GeneratorHealth::of(&calm, 2.0).saturated);
        let mut hot = calm.clone();
        for p in hot.iter_mut().take(5) {
            *p = point(1.95, 3.0, 100);
        }
        let h = GeneratorHealth::of(&hot, 2.0);
        assert!(h.saturated && h.saturated_seconds == 5, "{h:?}");
        // A late second with a handful of responses cannot move a p99 of ten thousand.
        let mut blip = calm;
        blip[3] = point(0.2, 400.0, 20);
        let h = GeneratorHealth::of(&blip, 2.0);
        assert!(!h.saturated && h.saturated_seconds == 1, "{h:?}");
    }
}
