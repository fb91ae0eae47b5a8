//! Request statistics: HdrHistograms (microsecond resolution, exact merges) per request key and
//! overall, failures per (key, error), skipped steps, and the one-second time series.
//!
//! Every second closes a window into a [`Point`] that carries that second's counts and its
//! response-time histogram in HdrHistogram's portable encoding. Grading reads only those
//! points and the run totals, so several generators' seconds can be merged first and graded
//! the same way.
//!
//! Recording takes one short mutex section; with a handful of cores this is far cheaper than the
//! HTTP round trip it measures, and it keeps every number exact (no sampling).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use serde::{Deserialize, Serialize};

use crate::error::LoadError;
use crate::threshold::Metric;

/// The percentiles Locust reports, as fractions.
pub const QUANTILES: [f64; 11] = [
    0.50, 0.66, 0.75, 0.80, 0.90, 0.95, 0.98, 0.99, 0.999, 0.9999, 1.0,
];

/// Why a request failed (Locust's "failures").
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorKind {
    /// Could not connect, connection reset, protocol error.
    Connection(String),
    /// No complete response within the request timeout.
    Timeout,
    /// A status the step does not accept.
    Status(u16),
    /// The status was fine but a body or latency check failed.
    Check(String),
}

impl ErrorKind {
    /// Short category name used in reports (`connection`, `timeout`, `status`, `check`).
    pub fn category(&self) -> &'static str {
        match self {
            ErrorKind::Connection(_) => "connection",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Status(_) => "status",
            ErrorKind::Check(_) => "check",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ErrorKind::Connection(m) => write!(f, "connection error: {m}"),
            ErrorKind::Timeout => write!(f, "timeout"),
            ErrorKind::Status(c) => write!(f, "HTTP {c}"),
            ErrorKind::Check(m) => write!(f, "check failed: {m}"),
        }
    }
}

/// What a statistics key counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// HTTP requests (every row of Locust's table).
    #[default]
    Request,
    /// Completions of a polled step (`/checkout/ [done]`): from the accept to the answer that
    /// ended the polling. Not HTTP requests, so not in the aggregated row or the time series.
    Completion,
}

/// A statistics key: method, name and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// HTTP method.
    pub method: String,
    /// Request name (Locust's `name=`).
    pub name: String,
    /// What it counts.
    pub kind: KeyKind,
}

#[derive(Debug, Clone)]
struct Acc {
    hist: Histogram<u64>,
    count: u64,
    failures: u64,
    bytes: u64,
    sum_us: u128,
}

impl Acc {
    /// An empty accumulator with the same histogram settings as `template`.
    fn new(template: &Histogram<u64>) -> Self {
        Self {
            hist: Histogram::new_from(template),
            count: 0,
            failures: 0,
            bytes: 0,
            sum_us: 0,
        }
    }

    fn record(&mut self, us: u64, bytes: u64, failed: bool) {
        // `record` grows the auto-resizing histogram; saturating_record (which never resizes)
        // is only the fallback for a value beyond what the histogram can ever hold.
        let us_min = us.max(1);
        if self.hist.record(us_min).is_err() {
            self.hist.saturating_record(us_min);
        }
        self.count += 1;
        self.failures += u64::from(failed);
        self.bytes += bytes;
        self.sum_us += u128::from(us);
    }

    fn merge(&mut self, other: &Acc) {
        // Both histograms auto-resize, so add() cannot fail on range; ignore the impossible error.
        let _ = self.hist.add(&other.hist);
        self.count += other.count;
        self.failures += other.failures;
        self.bytes += other.bytes;
        self.sum_us += other.sum_us;
    }
}

/// A response-time histogram (microseconds) in HdrHistogram's V2 encoding, stored as base64 in
/// summary.json. It is what one generator's second weighs on the wire, and it merges exactly.
#[derive(Clone, PartialEq, Default)]
pub struct EncodedHistogram(pub Vec<u8>);

impl EncodedHistogram {
    /// Encodes `h`.
    pub fn encode(h: &Histogram<u64>) -> Self {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for a histogram that exists.
        let _ = V2Serializer::new().serialize(h, &mut out);
        EncodedHistogram(out)
    }

    /// Decodes the histogram; `None` when the bytes are not a V2 histogram.
    pub fn decode(&self) -> Option<Histogram<u64>> {
        Deserializer::new().deserialize(&mut self.0.as_slice()).ok()
    }
}

impl std::fmt::Debug for EncodedHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EncodedHistogram({} bytes)", self.0.len())
    }
}

impl Serialize for EncodedHistogram {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use base64::Engine as _;
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for EncodedHistogram {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use base64::Engine as _;
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map(EncodedHistogram)
            .map_err(serde::de::Error::custom)
    }
}

/// Final statistics of one request key (a row of Locust's stats.csv).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RequestStats {
    /// HTTP method (empty for the aggregated row).
    pub method: String,
    /// Request name (`Aggregated` for the total row).
    pub name: String,
    /// Requests completed.
    pub count: u64,
    /// Of which failed.
    pub failures: u64,
    /// Mean response time, ms.
    pub avg_ms: f64,
    /// Fastest response, ms.
    pub min_ms: f64,
    /// Slowest response, ms.
    pub max_ms: f64,
    /// Mean body size, bytes.
    pub avg_content_size: f64,
    /// Requests per second over the run.
    pub rps: f64,
    /// Failures per second over the run.
    pub failures_per_s: f64,
    /// Response-time percentiles in ms, in the order of [`QUANTILES`] (p50 ... p100).
    pub percentiles_ms: Vec<f64>,
    /// Steps with this key skipped because a variable was missing.
    pub skipped: u64,
    /// What the row counts.
    #[serde(default)]
    pub kind: KeyKind,
}

impl RequestStats {
    /// The percentile `q` (one of [`QUANTILES`], e.g. 0.95), ms.
    pub fn pct(&self, q: f64) -> f64 {
        QUANTILES
            .iter()
            .position(|x| (x - q).abs() < 1e-9)
            .and_then(|i| self.percentiles_ms.get(i).copied())
            .unwrap_or(f64::NAN)
    }

    /// Failures / requests (0 when nothing ran).
    pub fn error_rate(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.failures as f64 / self.count as f64
        }
    }

    fn from_acc(key: (&str, &str, KeyKind), acc: &Acc, secs: f64, skipped: u64) -> Self {
        let (method, name, kind) = key;
        let ms = |us: u64| us as f64 / 1000.0;
        let n = acc.count.max(1) as f64;
        let empty = acc.count == 0;
        Self {
            method: method.to_string(),
            name: name.to_string(),
            count: acc.count,
            failures: acc.failures,
            avg_ms: if empty {
                0.0
            } else {
                acc.sum_us as f64 / n / 1000.0
            },
            min_ms: if empty { 0.0 } else { ms(acc.hist.min()) },
            max_ms: if empty { 0.0 } else { ms(acc.hist.max()) },
            avg_content_size: acc.bytes as f64 / n,
            rps: acc.count as f64 / secs.max(1e-9),
            failures_per_s: acc.failures as f64 / secs.max(1e-9),
            percentiles_ms: QUANTILES
                .iter()
                .map(|q| {
                    if empty {
                        0.0
                    } else {
                        ms(acc.hist.value_at_quantile(*q))
                    }
                })
                .collect(),
            skipped,
            kind,
        }
    }
}

/// One row per (key, error) like Locust's failures.csv.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FailureRow {
    /// HTTP method.
    pub method: String,
    /// Request name.
    pub name: String,
    /// `connection`, `timeout`, `status` or `check`.
    pub category: String,
    /// The error text.
    pub error: String,
    /// How many times.
    pub occurrences: u64,
}

/// How the generator itself fared during one second (see `crate::engine::watch`).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct GeneratorSample {
    /// CPU the generator's process used, in cores (1.0 = one core busy for the second).
    pub cpu_cores: f64,
    /// Worst delay of the generator's scheduler in this second, ms: how late a timer that
    /// should have fired on time actually ran (time a response waited to be read).
    pub lag_ms: f64,
}

/// One second of the run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Point {
    /// Seconds since the start.
    pub t: f64,
    /// Users running (busy users in the open model).
    pub users: u32,
    /// Requests completed per second in this window.
    pub rps: f64,
    /// Failures per second in this window.
    pub errors_per_s: f64,
    /// Percentiles of this second's responses, ms, in [`QUANTILES`] order (0 when idle).
    pub percentiles_ms: Vec<f64>,
    /// Requests so far.
    pub total_requests: u64,
    /// Failures so far.
    pub total_failures: u64,
    /// Median so far, ms.
    pub total_median_ms: f64,
    /// Mean so far, ms.
    pub total_avg_ms: f64,
    /// Fastest so far, ms.
    pub total_min_ms: f64,
    /// Slowest so far, ms.
    pub total_max_ms: f64,
    /// Mean body size so far.
    pub total_avg_content_size: f64,
    /// Requests completed in this window.
    #[serde(default)]
    pub requests: u64,
    /// Of which failed.
    #[serde(default)]
    pub failures: u64,
    /// This window's response times (absent when nothing completed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hist: Option<EncodedHistogram>,
    /// The generator's own load in this window.
    #[serde(default)]
    pub generator: GeneratorSample,
}

impl Point {
    /// This second's percentile `q` (one of [`QUANTILES`]).
    pub fn pct(&self, q: f64) -> f64 {
        QUANTILES
            .iter()
            .position(|x| (x - q).abs() < 1e-9)
            .and_then(|i| self.percentiles_ms.get(i).copied())
            .unwrap_or(0.0)
    }
}

/// Errors/p95 of an interval (a capacity step).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IntervalStats {
    /// Requests in the interval.
    pub count: u64,
    /// Failures in the interval.
    pub failures: u64,
    /// p95 in ms (0 when no requests).
    pub p95_ms: f64,
}

struct Inner {
    per_key: Vec<Acc>,
    total: Acc,
    window: Acc,
    interval: Acc,
    failures: HashMap<(usize, ErrorKind), u64>,
    skipped: Vec<u64>,
    unmet: Vec<u64>,
    series: Vec<Point>,
}

/// Shared, thread-safe statistics of a run.
pub struct Stats {
    keys: Vec<Key>,
    template: Histogram<u64>,
    inner: Mutex<Inner>,
}

impl Stats {
    /// Statistics for the given keys.
    pub fn new(keys: Vec<Key>) -> Result<Self, LoadError> {
        let n = keys.len();
        // Auto-resizing with 3 significant digits: small until slow responses show up.
        let template =
            Histogram::new(3).map_err(|e| LoadError::Internal(format!("histogram: {e}")))?;
        let acc = || Acc::new(&template);
        let inner = Inner {
            per_key: (0..n).map(|_| acc()).collect(),
            total: acc(),
            window: acc(),
            interval: acc(),
            failures: HashMap::new(),
            skipped: vec![0; n],
            unmet: vec![0; n],
            series: Vec::new(),
        };
        Ok(Self {
            keys,
            template,
            inner: Mutex::new(inner),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the counters inconsistent in a way that
        // matters more than losing the run, so recover the data instead of propagating poison.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records one completed request (or one completion, for a completion key).
    pub fn record(&self, key: usize, latency: Duration, bytes: u64, error: Option<ErrorKind>) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let failed = error.is_some();
        let request = self
            .keys
            .get(key)
            .is_none_or(|k| k.kind == KeyKind::Request);
        let mut g = self.lock();
        if let Some(acc) = g.per_key.get_mut(key) {
            acc.record(us, bytes, failed);
        }
        if request {
            g.total.record(us, bytes, failed);
            g.window.record(us, bytes, failed);
            g.interval.record(us, bytes, failed);
        }
        if let Some(e) = error {
            *g.failures.entry((key, e)).or_insert(0) += 1;
        }
    }

    /// Counts a step skipped because a variable it needs is not set.
    pub fn skip(&self, key: usize) {
        if let Some(s) = self.lock().skipped.get_mut(key) {
            *s += 1;
        }
    }

    /// Counts a step not run because a variable of its `when` was not set (a payment step
    /// without `stripe_base`, a status poll after a checkout that was not queued).
    pub fn unmet(&self, key: usize) {
        if let Some(s) = self.lock().unmet.get_mut(key) {
            *s += 1;
        }
    }

    /// How often steps with this key were not run for an unset `when` variable.
    pub fn unmet_count(&self, key: usize) -> u64 {
        self.lock().unmet.get(key).copied().unwrap_or(0)
    }

    /// Requests completed so far.
    pub fn total_requests(&self) -> u64 {
        self.lock().total.count
    }

    /// Closes the current window (normally one second) and appends it to the time series.
    pub fn tick(&self, t: f64, users: u32, window_secs: f64, generator: GeneratorSample) -> Point {
        let mut g = self.lock();
        let w = std::mem::replace(&mut g.window, Acc::new(&self.template));
        let secs = window_secs.max(1e-3);
        let ms = |us: u64| us as f64 / 1000.0;
        let total = &g.total;
        let point = Point {
            t,
            users,
            rps: w.count as f64 / secs,
            errors_per_s: w.failures as f64 / secs,
            percentiles_ms: QUANTILES
                .iter()
                .map(|q| {
                    if w.count == 0 {
                        0.0
                    } else {
                        ms(w.hist.value_at_quantile(*q))
                    }
                })
                .collect(),
            total_requests: total.count,
            total_failures: total.failures,
            total_median_ms: ms(total.hist.value_at_quantile(0.5)),
            total_avg_ms: if total.count == 0 {
                0.0
            } else {
                total.sum_us as f64 / total.count as f64 / 1000.0
            },
            total_min_ms: if total.count == 0 {
                0.0
            } else {
                ms(total.hist.min())
            },
            total_max_ms: ms(total.hist.max()),
            total_avg_content_size: total.bytes as f64 / total.count.max(1) as f64,
            requests: w.count,
            failures: w.failures,
            hist: (w.count > 0).then(|| EncodedHistogram::encode(&w.hist)),
            generator,
        };
        g.series.push(point.clone());
        point
    }

    /// Time of the last closed window (0 before the first).
    pub fn last_tick_t(&self) -> f64 {
        self.lock().series.last().map_or(0.0, |p| p.t)
    }

    /// A copy of the time series so far (what a live view or a grader reads mid-run).
    pub fn series(&self) -> Vec<Point> {
        self.lock().series.clone()
    }

    /// Statistics since the previous call (used to judge capacity steps), then resets them.
    pub fn take_interval(&self) -> IntervalStats {
        let mut g = self.lock();
        let w = std::mem::replace(&mut g.interval, Acc::new(&self.template));
        IntervalStats {
            count: w.count,
            failures: w.failures,
            p95_ms: if w.count == 0 {
                0.0
            } else {
                w.hist.value_at_quantile(0.95) as f64 / 1000.0
            },
        }
    }

    /// Final per-key rows, the aggregated row, per-method aggregates (GET, POST ...) and the
    /// time series.
    pub fn finish(&self, run_secs: f64) -> Finished {
        let table = self.table(run_secs);
        Finished {
            requests: table.requests,
            aggregated: table.aggregated,
            methods: table.methods,
            failures: table.failures,
            series: self.series(),
        }
    }

    /// The statistics keys, indexed like [`Stats::record`]'s `key`.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// For each key: requests, failures and the response-time histogram (microseconds) so far.
    /// What an exporter diffs from one second to the next.
    pub fn totals(&self) -> Vec<KeyTotals> {
        self.lock()
            .per_key
            .iter()
            .map(|a| KeyTotals {
                count: a.count,
                failures: a.failures,
                hist: a.hist.clone(),
            })
            .collect()
    }

    /// Steps not run so far, per key with any: skipped for a missing variable, or not run for
    /// an unset `when` variable.
    pub fn not_run(&self) -> Vec<NotRun> {
        let g = self.lock();
        self.keys
            .iter()
            .enumerate()
            .filter_map(|(i, k)| {
                let skipped = g.skipped.get(i).copied().unwrap_or(0);
                let unmet = g.unmet.get(i).copied().unwrap_or(0);
                (skipped + unmet > 0).then(|| NotRun {
                    method: k.method.clone(),
                    name: k.name.clone(),
                    skipped,
                    unmet,
                })
            })
            .collect()
    }

    /// Per-key rows, the aggregated row, per-method aggregates and failures so far, with rates
    /// over `run_secs` (what the final report and a live view show).
    pub fn table(&self, run_secs: f64) -> Table {
        let g = self.lock();
        let mut by_method: Vec<(String, Acc)> = Vec::new();
        let mut requests = Vec::new();
        for (i, key) in self.keys.iter().enumerate() {
            let acc = &g.per_key[i];
            let skipped = g.skipped[i];
            if acc.count > 0 || skipped > 0 {
                requests.push(RequestStats::from_acc(
                    (&key.method, &key.name, key.kind),
                    acc,
                    run_secs,
                    skipped,
                ));
            }
            if key.kind != KeyKind::Request {
                continue;
            }
            match by_method.iter_mut().find(|(m, _)| *m == key.method) {
                Some((_, a)) => a.merge(acc),
                None => by_method.push((key.method.clone(), acc.clone())),
            }
        }
        let skipped_total = g.skipped.iter().sum();
        let aggregated = RequestStats::from_acc(
            ("", "Aggregated", KeyKind::Request),
            &g.total,
            run_secs,
            skipped_total,
        );
        let methods = by_method
            .iter()
            .filter(|(_, a)| a.count > 0)
            .map(|(m, a)| RequestStats::from_acc((m, m, KeyKind::Request), a, run_secs, 0))
            .collect();
        let mut failures: Vec<FailureRow> = g
            .failures
            .iter()
            .map(|((key, err), n)| {
                let (method, name) = self
                    .keys
                    .get(*key)
                    .map(|k| (k.method.clone(), k.name.clone()))
                    .unwrap_or_default();
                FailureRow {
                    method,
                    name,
                    category: err.category().to_string(),
                    error: err.to_string(),
                    occurrences: *n,
                }
            })
            .collect();
        failures.sort_by(|a, b| {
            b.occurrences
                .cmp(&a.occurrences)
                .then(a.name.cmp(&b.name))
                .then(a.error.cmp(&b.error))
        });
        Table {
            requests,
            aggregated,
            methods,
            failures,
        }
    }

    /// The requests of several keys merged into one row named `name` (e.g. every POST to
    /// `/checkout/`); `None` when none of them ran.
    pub fn group(
        &self,
        keys: &[usize],
        method: &str,
        name: &str,
        run_secs: f64,
    ) -> Option<RequestStats> {
        let g = self.lock();
        let mut acc = Acc::new(&self.template);
        let mut kind = KeyKind::Request;
        for k in keys {
            acc.merge(g.per_key.get(*k)?);
            if let Some(key) = self.keys.get(*k) {
                kind = key.kind;
            }
        }
        (acc.count > 0).then(|| RequestStats::from_acc((method, name, kind), &acc, run_secs, 0))
    }

    /// Everything counted so far (see [`Delta::between`]).
    pub fn snapshot(&self) -> Snapshot {
        let g = self.lock();
        Snapshot {
            template: Histogram::new_from(&self.template),
            per_key: g.per_key.clone(),
            failures: g.failures.clone(),
            skipped: g.skipped.clone(),
            unmet: g.unmet.clone(),
        }
    }

    /// Adds another generator's [`Delta`] as if its requests had been recorded here: per key,
    /// in the totals, the current second and the current capacity interval. Histograms are
    /// added bucket by bucket, so percentiles stay exact. A delta naming a key this plan does
    /// not have (another plan) is an error and changes nothing.
    pub fn absorb(&self, delta: &Delta) -> Result<(), LoadError> {
        let n = self.keys.len();
        let bad = delta
            .keys
            .iter()
            .map(|k| k.key)
            .chain(delta.failures.iter().map(|f| f.0))
            .chain(delta.skipped.iter().chain(&delta.unmet).map(|s| s.0))
            .find(|k| *k >= n);
        if let Some(k) = bad {
            return Err(LoadError::Distributed(format!(
                "a delta names statistics key {k}, the plan has {n}"
            )));
        }
        let mut decoded = Vec::with_capacity(delta.keys.len());
        for k in &delta.keys {
            let hist = k.hist.decode().ok_or_else(|| {
                LoadError::Distributed(format!("key {}: not a V2 histogram", k.key))
            })?;
            decoded.push(Acc {
                hist,
                count: k.count,
                failures: k.failures,
                bytes: k.bytes,
                sum_us: u128::from(k.sum_us),
            });
        }
        let mut g = self.lock();
        for (k, acc) in delta.keys.iter().zip(&decoded) {
            g.per_key[k.key].merge(acc);
            if self.keys[k.key].kind == KeyKind::Request {
                g.total.merge(acc);
                g.window.merge(acc);
                g.interval.merge(acc);
            }
        }
        for (key, err, count) in &delta.failures {
            *g.failures.entry((*key, err.clone())).or_insert(0) += count;
        }
        for (key, count) in &delta.skipped {
            g.skipped[*key] += count;
        }
        for (key, count) in &delta.unmet {
            g.unmet[*key] += count;
        }
        Ok(())
    }

    /// Measures a threshold metric over the given keys (`None` = all requests). Percentiles come
    /// straight from the merged histogram, so any percentile works, not only Locust's list.
    pub fn measure(&self, keys: Option<&[usize]>, metric: Metric, run_secs: f64) -> Option<f64> {
        let g = self.lock();
        let merged;
        let acc = match keys {
            None => &g.total,
            Some(keys) => {
                let mut a = Acc::new(&self.template);
                for k in keys {
                    a.merge(g.per_key.get(*k)?);
                }
                merged = a;
                &merged
            }
        };
        let ms = |us: u64| us as f64 / 1000.0;
        let has = acc.count > 0;
        match metric {
            Metric::Percentile(p) => has.then(|| ms(acc.hist.value_at_quantile(p / 100.0))),
            Metric::Avg => has.then(|| acc.sum_us as f64 / acc.count as f64 / 1000.0),
            Metric::Min => has.then(|| ms(acc.hist.min())),
            Metric::Max => has.then(|| ms(acc.hist.max())),
            Metric::ErrorRate => has.then(|| acc.failures as f64 / acc.count as f64),
            Metric::Rps => has.then(|| acc.count as f64 / run_secs.max(1e-9)),
            Metric::Failures => has.then_some(acc.failures as f64),
            Metric::Requests => has.then_some(acc.count as f64),
        }
    }
}

/// Everything a [`Stats`] counted so far, per key: what a load worker diffs from one second
/// to the next to stream [`Delta`]s (see [`Stats::snapshot`]).
#[derive(Debug, Clone)]
pub struct Snapshot {
    template: Histogram<u64>,
    per_key: Vec<Acc>,
    failures: HashMap<(usize, ErrorKind), u64>,
    skipped: Vec<u64>,
    unmet: Vec<u64>,
}

impl Snapshot {
    /// Requests (not completions) counted, of which failed, and their response times merged
    /// into one histogram.
    pub fn requests(&self, keys: &[Key]) -> (u64, u64, Histogram<u64>) {
        let mut total = Acc::new(&self.template);
        for (acc, key) in self.per_key.iter().zip(keys) {
            if key.kind == KeyKind::Request {
                total.merge(acc);
            }
        }
        (total.count, total.failures, total.hist)
    }
}

/// One key's requests in a [`Delta`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeyDelta {
    /// Index into [`Stats::keys`] (the plan's keys, the same on every generator).
    pub key: usize,
    /// Requests (or completions).
    pub count: u64,
    /// Of which failed.
    pub failures: u64,
    /// Body bytes.
    pub bytes: u64,
    /// Sum of response times, µs (for the exact mean).
    pub sum_us: u64,
    /// Their response times, µs, HdrHistogram V2 encoded.
    pub hist: EncodedHistogram,
}

/// What one generator counted between two [`Snapshot`]s: the unit a load worker streams to
/// its master every second. Merging deltas with [`Stats::absorb`] is exact: the master's
/// histograms hold every sample of every worker.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Delta {
    /// Keys with requests in the interval.
    pub keys: Vec<KeyDelta>,
    /// New failures: (key, error, occurrences).
    pub failures: Vec<(usize, ErrorKind, u64)>,
    /// Steps skipped for a missing variable: (key, count).
    pub skipped: Vec<(usize, u64)>,
    /// Steps not run for an unset `when` variable: (key, count).
    pub unmet: Vec<(usize, u64)>,
}

impl Delta {
    /// What `current` counted beyond `previous` (everything, without a previous snapshot).
    pub fn between(previous: Option<&Snapshot>, current: &Snapshot) -> Delta {
        let mut delta = Delta::default();
        for (i, acc) in current.per_key.iter().enumerate() {
            let before = previous.and_then(|p| p.per_key.get(i));
            let count = acc.count - before.map_or(0, |b| b.count);
            if count == 0 {
                continue;
            }
            let mut hist = acc.hist.clone();
            if let Some(b) = before {
                // The current histogram holds every sample of the previous one, so the
                // subtraction cannot underflow.
                let _ = hist.subtract(&b.hist);
            }
            delta.keys.push(KeyDelta {
                key: i,
                count,
                failures: acc.failures - before.map_or(0, |b| b.failures),
                bytes: acc.bytes - before.map_or(0, |b| b.bytes),
                sum_us: u64::try_from(acc.sum_us - before.map_or(0, |b| b.sum_us))
                    .unwrap_or(u64::MAX),
                hist: EncodedHistogram::encode(&hist),
            });
        }
        for ((key, err), n) in &current.failures {
            let was = previous
                .and_then(|p| p.failures.get(&(*key, err.clone())))
                .copied()
                .unwrap_or(0);
            if *n > was {
                delta.failures.push((*key, err.clone(), n - was));
            }
        }
        let diff = |now: &[u64], before: Option<&Vec<u64>>| -> Vec<(usize, u64)> {
            now.iter()
                .enumerate()
                .filter_map(|(i, n)| {
                    let was = before.and_then(|b| b.get(i)).copied().unwrap_or(0);
                    (*n > was).then_some((i, n - was))
                })
                .collect()
        };
        delta.skipped = diff(&current.skipped, previous.map(|p| &p.skipped));
        delta.unmet = diff(&current.unmet, previous.map(|p| &p.unmet));
        delta
    }

    /// Requests (not completions) in the delta.
    pub fn requests(&self, keys: &[Key]) -> (u64, u64) {
        self.keys
            .iter()
            .filter(|k| {
                keys.get(k.key)
                    .is_none_or(|key| key.kind == KeyKind::Request)
            })
            .fold((0, 0), |(c, f), k| (c + k.count, f + k.failures))
    }
}

/// One key's totals so far (see [`Stats::totals`]).
#[derive(Debug, Clone)]
pub struct KeyTotals {
    /// Requests (or completions) recorded.
    pub count: u64,
    /// Of which failed.
    pub failures: u64,
    /// Their response times, microseconds.
    pub hist: Histogram<u64>,
}

/// Steps of one key that did not send a request (see [`Stats::not_run`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NotRun {
    /// HTTP method.
    pub method: String,
    /// Request name.
    pub name: String,
    /// Skipped because a template needed a variable the user did not have.
    pub skipped: u64,
    /// Not run because a variable of the step's `when` was not set.
    pub unmet: u64,
}

/// The statistics table at a moment (see [`Stats::table`]).
#[derive(Debug, Clone)]
pub struct Table {
    /// One row per request key that ran or was skipped.
    pub requests: Vec<RequestStats>,
    /// All requests together.
    pub aggregated: RequestStats,
    /// All requests of each method together (name = method).
    pub methods: Vec<RequestStats>,
    /// Failures by (key, error), most frequent first.
    pub failures: Vec<FailureRow>,
}

/// Everything [`Stats::finish`] computes.
#[derive(Debug, Clone)]
pub struct Finished {
    /// One row per request key that ran or was skipped.
    pub requests: Vec<RequestStats>,
    /// All requests together.
    pub aggregated: RequestStats,
    /// All requests of each method together (name = method).
    pub methods: Vec<RequestStats>,
    /// Failures by (key, error), most frequent first.
    pub failures: Vec<FailureRow>,
    /// The one-second time series.
    pub series: Vec<Point>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(method: &str, name: &str, kind: KeyKind) -> Key {
        Key {
            method: method.into(),
            name: name.into(),
            kind,
        }
    }

    #[test]
    fn percentiles_and_failures_are_exact_enough() {
        let s = Stats::new(vec![
            key("GET", "/a", KeyKind::Request),
            key("POST", "/b", KeyKind::Request),
            key("GET", "/b [done]", KeyKind::Completion),
        ])
        .unwrap();
        for i in 0..1000u64 {
            let ms = if i % 10 == 0 { 50 } else { 5 };
            s.record(0, Duration::from_millis(ms), 10, None);
        }
        s.record(1, Duration::from_millis(1), 0, Some(ErrorKind::Status(500)));
        s.record(1, Duration::from_millis(1), 0, Some(ErrorKind::Status(500)));
        s.record(2, Duration::from_secs(2), 0, None);
        let p = s.tick(1.0, 3, 1.0, GeneratorSample::default());
        assert_eq!(p.rps, 1002.0);
        assert_eq!((p.requests, p.failures), (1002, 2));
        let h = p.hist.as_ref().and_then(EncodedHistogram::decode).unwrap();
        assert_eq!(h.len(), 1002, "completions are not requests");
        let f = s.finish(2.0);
        let a = &f.requests[0];
        assert!((a.pct(0.5) - 5.0).abs() < 0.01, "{a:?}");
        assert!((a.pct(0.95) - 50.0).abs() < 0.1);
        assert!((a.avg_ms - 9.5).abs() < 1e-9);
        assert_eq!(f.failures[0].occurrences, 2);
        assert_eq!(f.failures[0].error, "HTTP 500");
        assert_eq!(f.aggregated.count, 1002);
        assert_eq!(f.methods.len(), 2);
        assert_eq!(f.requests[2].kind, KeyKind::Completion);
        assert_eq!(f.requests[2].count, 1);
    }

    #[test]
    fn deltas_streamed_and_absorbed_equal_one_histogram_of_every_sample() {
        let keys = || {
            vec![
                key("GET", "/a", KeyKind::Request),
                key("GET", "/a [done]", KeyKind::Completion),
            ]
        };
        let workers: Vec<Stats> = (0..3).map(|_| Stats::new(keys()).unwrap()).collect();
        let master = Stats::new(keys()).unwrap();
        let single = Stats::new(keys()).unwrap();
        let mut previous: Vec<Option<Snapshot>> = vec![None, None, None];
        for second in 0..4u64 {
            for (w, stats) in workers.iter().enumerate() {
                for i in 0..(50 + 40 * w as u64) {
                    let us = 200 + (i * 37 + second * 1000 + w as u64 * 7919) % 90_000;
                    let err = (i % 17 == 0).then_some(ErrorKind::Status(503));
                    stats.record(0, Duration::from_micros(us), 10, err.clone());
                    single.record(0, Duration::from_micros(us), 10, err);
                }
                stats.record(1, Duration::from_millis(5), 0, None);
                single.record(1, Duration::from_millis(5), 0, None);
                stats.skip(0);
                single.skip(0);
                let now = stats.snapshot();
                let delta = Delta::between(previous[w].as_ref(), &now);
                // Through JSON, as on the wire.
                let wire: Delta =
                    serde_json::from_str(&serde_json::to_string(&delta).unwrap()).unwrap();
                master.absorb(&wire).unwrap();
                previous[w] = Some(now);
            }
            master.tick(second as f64 + 1.0, 3, 1.0, GeneratorSample::default());
        }
        let (a, b) = (master.finish(4.0), single.finish(4.0));
        assert_eq!(a.aggregated, b.aggregated);
        assert_eq!(a.requests, b.requests);
        assert_eq!(a.failures, b.failures);
        assert_eq!(a.aggregated.count, 4 * (50 + 90 + 130));
        assert_eq!(
            a.series.iter().map(|p| p.requests).sum::<u64>(),
            a.aggregated.count
        );
        let bad = Delta {
            skipped: vec![(9, 1)],
            ..Delta::default()
        };
        assert!(master.absorb(&bad).is_err());
    }

    #[test]
    fn encoded_histograms_round_trip_through_json() {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for v in [1u64, 500, 20_000, 1_500_000] {
            h.record(v).unwrap();
        }
        let e = EncodedHistogram::encode(&h);
        let json = serde_json::to_string(&e).unwrap();
        let back: EncodedHistogram = serde_json::from_str(&json).unwrap();
        let d = back.decode().unwrap();
        assert_eq!(d.len(), 4);
        assert_eq!(d.value_at_quantile(1.0), h.value_at_quantile(1.0));
    }
}
