//! The load generator's own metrics for Prometheus (`--prometheus-listen ADDR`): users,
//! requests, failures and response-time histograms per request name, so a Grafana dashboard
//! shows the load next to the server's metrics.
//!
//! The exporter is an [`Observer`]: every second it adds what the run's statistics gained since
//! the previous second (exact counts; response times as HdrHistogram values, at most 0.1 %
//! off). It keeps its own recorder rather than the process's global one, so a generator
//! running in the same process as the API (`pique demo`) never mixes its series into the
//! API's `/metrics`.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::header;
use axum::routing::get;
use hdrhistogram::Histogram;
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use crate::error::LoadError;
use crate::observe::{Observer, RunStarted, Second};
use crate::run::RunOutcome;
use crate::stats::{Key, KeyKind};

/// Metric names, in one place for the dashboards and their test.
pub mod names {
    /// Gauge: users running now (busy users in the open model).
    pub const USERS: &str = "pique_load_users";
    /// Gauge: 1 while a run sends load, 0 between runs.
    pub const RUNNING: &str = "pique_load_running";
    /// Counter, labels `method`, `name`: requests completed.
    pub const REQUESTS: &str = "pique_load_requests_total";
    /// Counter, labels `method`, `name`: requests that failed (status, check, timeout,
    /// connection).
    pub const FAILURES: &str = "pique_load_failures_total";
    /// Histogram, labels `method`, `name`: response times as the generator measured them
    /// (from the intended start in the open model).
    pub const DURATION: &str = "pique_load_request_duration_seconds";

    /// Every name above.
    pub const ALL: [&str; 5] = [USERS, RUNNING, REQUESTS, FAILURES, DURATION];
}

/// Buckets of [`names::DURATION`], in seconds: fine around the plans' 200 ms / 500 ms / 1 s
/// targets, up to the default 60 s request timeout.
const BUCKETS: [f64; 18] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 3.0, 5.0, 10.0,
    30.0, 60.0,
];

/// What was exported of one key so far.
#[derive(Default)]
struct Exported {
    count: u64,
    failures: u64,
    hist: Option<Histogram<u64>>,
}

#[derive(Default)]
struct Progress {
    keys: Vec<Key>,
    exported: Vec<Exported>,
}

/// The generator's Prometheus metrics; serve them with [`Exporter::router`].
pub struct Exporter {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    progress: Mutex<Progress>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Exporter")
    }
}

impl Exporter {
    /// A fresh exporter with every gauge at 0.
    pub fn new() -> Result<Arc<Self>, LoadError> {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(names::DURATION.into()), &BUCKETS)
            .map_err(|e| LoadError::Internal(format!("prometheus buckets: {e}")))?
            .build_recorder();
        let handle = recorder.handle();
        let exporter = Arc::new(Self {
            recorder,
            handle,
            progress: Mutex::new(Progress::default()),
        });
        exporter.with(|| {
            describe();
            metrics::gauge!(names::USERS).set(0.0);
            metrics::gauge!(names::RUNNING).set(0.0);
        });
        Ok(exporter)
    }

    fn with<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.recorder, f)
    }

    /// The metrics in Prometheus' text format.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// `GET /metrics`.
    pub fn router(self: &Arc<Self>) -> Router {
        let exporter = self.clone();
        Router::new().route(
            "/metrics",
            get(move || {
                let exporter = exporter.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        exporter.render(),
                    )
                }
            }),
        )
    }

    /// A new exporter served at `http://addr/metrics` for as long as the process runs.
    pub async fn listen(addr: std::net::SocketAddr) -> Result<Arc<Self>, LoadError> {
        let exporter = Self::new()?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| LoadError::io(format!("--prometheus-listen {addr}"), e))?;
        tokio::spawn(exporter.clone().serve(listener, std::future::pending()));
        Ok(exporter)
    }

    /// Serves `/metrics` on `listener` until `shutdown` completes.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), LoadError> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| LoadError::io("prometheus listener", e))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn describe() {
    metrics::describe_gauge!(names::USERS, "Users the load generator runs now");
    metrics::describe_gauge!(names::RUNNING, "1 while a load run sends requests");
    metrics::describe_counter!(names::REQUESTS, "Requests the load generator completed");
    metrics::describe_counter!(names::FAILURES, "Requests that failed");
    metrics::describe_histogram!(
        names::DURATION,
        metrics::Unit::Seconds,
        "Response times measured by the load generator"
    );
}

impl Observer for Exporter {
    fn started(&self, run: &RunStarted) {
        let mut p = self.lock();
        p.keys = run.keys.clone();
        p.exported = run.keys.iter().map(|_| Exported::default()).collect();
        drop(p);
        self.with(|| {
            metrics::gauge!(names::RUNNING).set(1.0);
            metrics::gauge!(names::USERS).set(0.0);
            // Every request name is on /metrics from the start, at 0 until it counts: a rate
            // over a series that appears late misses its first increase.
            for key in run.keys.iter().filter(|k| k.kind == KeyKind::Request) {
                let labels = [("method", key.method.clone()), ("name", key.name.clone())];
                metrics::counter!(names::REQUESTS, &labels).increment(0);
                metrics::counter!(names::FAILURES, &labels).increment(0);
            }
        });
    }

    fn second(&self, s: &Second<'_>) {
        let totals = s.stats.totals();
        let mut p = self.lock();
        let Progress { keys, exported } = &mut *p;
        self.with(|| {
            metrics::gauge!(names::USERS).set(f64::from(s.point.users));
            for ((key, now), done) in keys.iter().zip(&totals).zip(exported.iter_mut()) {
                if key.kind != KeyKind::Request || now.count == done.count {
                    continue;
                }
                let labels = [("method", key.method.clone()), ("name", key.name.clone())];
                metrics::counter!(names::REQUESTS, &labels).increment(now.count - done.count);
                if now.failures > done.failures {
                    metrics::counter!(names::FAILURES, &labels)
                        .increment(now.failures - done.failures);
                }
                let mut gained = now.hist.clone();
                if let Some(before) = &done.hist {
                    // `now` holds everything `before` does, so this cannot underflow.
                    let _ = gained.subtract(before);
                }
                let h = metrics::histogram!(names::DURATION, &labels);
                for v in gained.iter_recorded() {
                    let secs = gained.median_equivalent(v.value_iterated_to()) as f64 / 1e6;
                    let n = usize::try_from(v.count_at_value()).unwrap_or(usize::MAX);
                    h.record_many(secs, n);
                }
                *done = Exported {
                    count: now.count,
                    failures: now.failures,
                    hist: Some(now.hist.clone()),
                };
            }
        });
        drop(p);
        // Fold the recorded values into the histograms now, so memory stays flat even when
        // nobody scrapes.
        self.handle.run_upkeep();
    }

    fn finished(&self, _outcome: Result<&RunOutcome, &LoadError>) {
        self.with(|| {
            metrics::gauge!(names::RUNNING).set(0.0);
            metrics::gauge!(names::USERS).set(0.0);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scrape::{parse_prometheus, sum};
    use crate::stats::{GeneratorSample, Stats};
    use std::time::Duration;

    #[test]
    fn exports_what_each_second_added() {
        let keys = vec![
            Key {
                method: "GET".into(),
                name: "/a".into(),
                kind: KeyKind::Request,
            },
            Key {
                method: "GET".into(),
                name: "/a [done]".into(),
                kind: KeyKind::Completion,
            },
        ];
        let stats = Arc::new(Stats::new(keys.clone()).unwrap());
        let exporter = Exporter::new().unwrap();
        let mut p = exporter.lock();
        p.keys = keys;
        p.exported = vec![Exported::default(), Exported::default()];
        drop(p);
        let second = |users| {
            let point = stats.tick(1.0, users, 1.0, GeneratorSample::default());
            exporter.second(&Second {
                point: &point,
                stats: &stats,
                capacity: None,
            });
        };
        for _ in 0..9 {
            stats.record(0, Duration::from_millis(4), 10, None);
        }
        stats.record(
            0,
            Duration::from_millis(700),
            0,
            Some(crate::stats::ErrorKind::Status(500)),
        );
        stats.record(1, Duration::from_secs(2), 0, None);
        second(3);
        stats.record(0, Duration::from_millis(4), 10, None);
        second(4);
        let text = exporter.render();
        let m = parse_prometheus(&text);
        assert_eq!(
            sum(&m, names::REQUESTS, &[("name", "/a")]),
            Some(11.0),
            "{text}"
        );
        assert_eq!(sum(&m, names::FAILURES, &[("name", "/a")]), Some(1.0));
        assert_eq!(sum(&m, names::REQUESTS, &[("name", "/a [done]")]), None);
        assert_eq!(sum(&m, names::USERS, &[]), Some(4.0));
        let bucket = |le: &str| {
            sum(
                &m,
                "pique_load_request_duration_seconds_bucket",
                &[("name", "/a"), ("le", le)],
            )
        };
        assert_eq!(bucket("0.005"), Some(10.0));
        assert_eq!(bucket("0.5"), Some(10.0));
        assert_eq!(bucket("0.75"), Some(11.0));
        assert!(
            !text.contains("[done]"),
            "completions are not requests: {text}"
        );
    }
}
