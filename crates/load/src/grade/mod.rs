//! Grading against the original load-testing plan's success criteria.
//!
//! The criteria are data ([`CRITERIA`]); each plan grades the rows of its phase ([`Phase`]) or
//! the list it names, and shows the others as "not graded by this plan". Every row gets the
//! measured value and a grade, or "not measured" when the run had no source for it: nothing is
//! estimated, and a row without a measurement never passes or fails.
//!
//! Grading is a pure function of [`GradeInput`]: run totals, the one-second series, the server
//! summary and the capacity steps. No engine state is read, so merged data from several
//! generators grades the same way.

pub mod criteria;
pub mod windows;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use criteria::{CRITERIA, Cmp, Criterion, Phase, Unit, criterion};
use windows::{Limits, Span};

use crate::duration::format_duration;
use crate::engine::CapacityResult;
use crate::scrape::ServerSummary;
use crate::stats::{Point, RequestStats};

/// A row's grade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grade {
    /// Meets the Target column.
    Target,
    /// Meets the Acceptable column.
    Acceptable,
    /// Meets the Threshold column.
    Threshold,
    /// Misses every level.
    Fail,
    /// The run had no source for this value.
    NotMeasured,
    /// The plan does not grade this row (it is shown for information).
    NotGraded,
}

impl Grade {
    /// Lower-case label used in reports.
    pub fn label(self) -> &'static str {
        match self {
            Grade::Target => "target",
            Grade::Acceptable => "acceptable",
            Grade::Threshold => "threshold",
            Grade::Fail => "fail",
            Grade::NotMeasured => "not measured",
            Grade::NotGraded => "not graded by this plan",
        }
    }
}

/// A graded row, as written to summary.json and the report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GradeRow {
    /// Criterion id.
    pub id: String,
    /// Table or phase of the original plan.
    pub table: String,
    /// Row label.
    pub metric: String,
    /// The Target column as text (`< 200 ms`).
    pub target: String,
    /// The Acceptable column as text (empty when the table has none).
    pub acceptable: String,
    /// The Threshold column as text (empty when the table has none).
    pub threshold: String,
    /// The measured value (None: not measured).
    pub measured: Option<f64>,
    /// The measured value as text, or why it was not measured.
    pub measured_text: String,
    /// Where the value came from.
    pub source: String,
    /// The grade.
    pub grade: Grade,
    /// Whether the plan grades this row (it counts towards the verdict).
    pub in_verdict: bool,
    /// Whether the grade depends on response times the generator measured (a generator that
    /// fell behind can have made it worse than the server is).
    #[serde(default)]
    pub latency_bound: bool,
}

/// How a plan is graded, resolved from its `[grading]` table and the run's time scale.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Rules {
    /// The phase whose default criteria apply.
    pub phase: Phase,
    /// Ids of the graded criteria.
    pub criteria: Vec<String>,
    /// How long load must hold to count (concurrent users, normal and peak load, throughput),
    /// seconds, already scaled.
    pub hold_s: f64,
    /// How long the Sustained Load row needs (2 h in the original plan), seconds, scaled.
    pub sustain_s: f64,
    /// The spike's window (one minute in the original plan), seconds, scaled.
    pub spike_within_s: f64,
    /// Load holds while p95 stays below this, ms.
    pub held_p95_ms: f64,
    /// ... and the error rate below this fraction.
    pub held_error_rate: f64,
    /// The plan's target user count (most users its shape asks for).
    pub target_users: Option<u32>,
    /// The run's time scale (1 = as written).
    pub time_scale: f64,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            phase: Phase::General,
            criteria: Phase::General
                .criteria()
                .into_iter()
                .map(String::from)
                .collect(),
            hold_s: 60.0,
            sustain_s: 7200.0,
            spike_within_s: 60.0,
            held_p95_ms: 500.0,
            held_error_rate: 0.001,
            target_users: None,
            time_scale: 1.0,
        }
    }
}

impl Rules {
    fn limits(&self) -> Limits {
        Limits {
            p95_ms: self.held_p95_ms,
            error_rate: self.held_error_rate,
        }
    }

    fn hold(&self) -> Duration {
        Duration::from_secs_f64(self.hold_s)
    }

    /// "p95 < 500 ms and errors < 0.1%", for explanations.
    pub fn limits_text(&self) -> String {
        format!(
            "p95 < {} and errors < {}",
            Unit::Ms.fmt(self.held_p95_ms),
            Unit::Percent.fmt(self.held_error_rate)
        )
    }
}

/// Everything grading looks at.
pub struct GradeInput<'a> {
    /// All requests.
    pub aggregated: &'a RequestStats,
    /// Per-method aggregates.
    pub methods: &'a [RequestStats],
    /// POST requests to `/checkout/`, merged (the accepts, for a queued checkout).
    pub checkout: Option<&'a RequestStats>,
    /// Completions of polled checkouts (`/checkout/ [done]`), merged.
    pub checkout_done: Option<&'a RequestStats>,
    /// POST requests to `/success/`, merged.
    pub success: Option<&'a RequestStats>,
    /// Run length, s.
    pub run_secs: f64,
    /// One-second series.
    pub series: &'a [Point],
    /// Server-side metrics.
    pub server: &'a ServerSummary,
    /// Capacity search result.
    pub capacity: Option<&'a CapacityResult>,
    /// How to grade.
    pub rules: &'a Rules,
}

/// One measurement: the value, where it came from, and optionally a better description or a
/// grade decided by more than the value (a spike reached 500 users but failed its latency).
struct Measured {
    value: f64,
    source: String,
    text: Option<String>,
    forced: Option<Grade>,
    /// The value depends on client-side response times (for the load rows: the window that
    /// decided missed its p95, not only its error rate).
    latency_bound: bool,
}

impl Measured {
    fn new(value: f64, source: impl Into<String>) -> Self {
        Measured {
            value,
            source: source.into(),
            text: None,
            forced: None,
            latency_bound: false,
        }
    }

    fn latency_bound(mut self, yes: bool) -> Self {
        self.latency_bound = yes;
        self
    }

    fn text(mut self, text: String) -> Self {
        self.text = Some(text);
        self
    }

    fn forced(mut self, grade: Grade) -> Self {
        self.forced = Some(grade);
        self
    }
}

type Measure = Result<Measured, String>;

fn level_text(c: &Criterion, v: Option<f64>) -> String {
    let Some(v) = v else { return String::new() };
    match c.cmp {
        Cmp::Below => format!("< {}", c.unit.fmt(v)),
        Cmp::AtLeast => format!(">= {}", c.unit.fmt(v)),
        Cmp::Above => format!("> {}", c.unit.fmt(v)),
        Cmp::AtMost if v == 0.0 => "none".into(),
        Cmp::AtMost => format!("<= {}", c.unit.fmt(v)),
    }
}

/// Grades `value` against `c`'s levels.
pub fn grade_value(c: &Criterion, value: f64) -> Grade {
    let meets = |level: f64| match c.cmp {
        Cmp::Below => value < level,
        Cmp::AtLeast => value >= level,
        Cmp::Above => value > level,
        Cmp::AtMost => value <= level,
    };
    if meets(c.target) {
        Grade::Target
    } else if c.acceptable.is_some_and(meets) {
        Grade::Acceptable
    } else if c.threshold.is_some_and(meets) {
        Grade::Threshold
    } else {
        Grade::Fail
    }
}

fn secs(s: f64) -> String {
    format_duration(Duration::from_secs_f64(s.max(0.0)))
}

fn span_text(s: &Span) -> String {
    format!(
        "p95 {}, errors {}",
        s.p95_ms.map_or("-".into(), |p| Unit::Ms.fmt(p)),
        Unit::Percent.fmt(s.error_rate())
    )
}

/// Concurrent users, normal and peak load: the last capacity step that held, or the most users
/// a window of the hold time kept inside the limits.
fn held_users(i: &GradeInput<'_>) -> Measure {
    if let Some(c) = i.capacity {
        return match (c.last_good_users, c.breaking_users) {
            (Some(u), _) => Ok(Measured::new(
                f64::from(u),
                "capacity search: the last step that held",
            )),
            (None, Some(_)) => Ok(Measured::new(
                0.0,
                "capacity search: the first step already broke",
            )),
            (None, None) => Err("the capacity search finished no step".into()),
        };
    }
    let r = i.rules;
    let hold = secs(r.hold_s);
    let source = format!("most users held for {hold} with {}", r.limits_text());
    let ws = windows::full_windows(i.series, r.hold());
    if ws.is_empty() {
        return Err(format!("run shorter than the hold time ({hold})"));
    }
    match windows::held_users(i.series, r.hold(), r.limits()) {
        Some(w) => {
            // A window with more users missed the p95: the generator may have been the cause.
            let slow = ws
                .iter()
                .any(|x| x.min_users > w.min_users && x.p95_ms.is_some_and(|p| p >= r.held_p95_ms));
            Ok(Measured::new(f64::from(w.min_users), source)
                .text(format!(
                    "{} users ({} to {}; {})",
                    w.min_users,
                    secs(w.start),
                    secs(w.end),
                    span_text(&w)
                ))
                .latency_bound(slow))
        }
        None => {
            let busiest = ws.iter().max_by_key(|w| w.min_users);
            let slow = ws
                .iter()
                .any(|w| w.p95_ms.is_some_and(|p| p >= r.held_p95_ms));
            let why = busiest.map(|w| w.why_not(r.limits())).unwrap_or_default();
            Ok(Measured::new(0.0, source)
                .text(format!("0 users held ({why})"))
                .latency_bound(slow))
        }
    }
}

fn throughput(i: &GradeInput<'_>) -> Measure {
    let r = i.rules;
    let hold = secs(r.hold_s);
    let source = format!("most requests/s held for {hold} with {}", r.limits_text());
    let ws = windows::full_windows(i.series, r.hold());
    if ws.is_empty() {
        return Err(format!("run shorter than the hold time ({hold})"));
    }
    match windows::held_throughput(i.series, r.hold(), r.limits()) {
        Some(w) => {
            let slow = ws
                .iter()
                .any(|x| x.rps() > w.rps() && x.p95_ms.is_some_and(|p| p >= r.held_p95_ms));
            Ok(Measured::new(w.rps(), source)
                .text(format!(
                    "{} ({} to {}; {})",
                    Unit::Rps.fmt(w.rps()),
                    secs(w.start),
                    secs(w.end),
                    span_text(&w)
                ))
                .latency_bound(slow))
        }
        None => {
            let busiest = ws.iter().max_by(|a, b| a.rps().total_cmp(&b.rps()));
            let slow = ws
                .iter()
                .any(|w| w.p95_ms.is_some_and(|p| p >= r.held_p95_ms));
            let why = busiest.map(|w| w.why_not(r.limits())).unwrap_or_default();
            Ok(Measured::new(0.0, source)
                .text(format!("0 req/s held ({why})"))
                .latency_bound(slow))
        }
    }
}

fn spike(i: &GradeInput<'_>) -> Measure {
    let r = i.rules;
    let within = Duration::from_secs_f64(r.spike_within_s);
    let s = windows::spike(i.series, within).ok_or("no users ran")?;
    let source = format!(
        "users running {} after the first one started; the spike (until {} after the peak) \
         must keep {}",
        format_duration(within),
        format_duration(within),
        r.limits_text()
    );
    let text = format!(
        "{} users after {} ({} during the spike)",
        s.reached,
        secs(s.reached_at - s.start),
        span_text(&s.during)
    );
    let slow = s.during.p95_ms.is_some_and(|p| p >= r.held_p95_ms);
    let m = Measured::new(f64::from(s.reached), source).latency_bound(slow);
    Ok(if s.during.held(r.limits()) {
        m.text(text)
    } else {
        m.text(format!(
            "{text}: not handled ({})",
            s.during.why_not(r.limits())
        ))
        .forced(Grade::Fail)
    })
}

fn sustained(i: &GradeInput<'_>) -> Measure {
    let r = i.rules;
    let need = Duration::from_secs_f64(r.sustain_s);
    if i.run_secs + 1.0 < r.sustain_s {
        return Err(format!(
            "run ({}) shorter than {}",
            secs(i.run_secs),
            format_duration(need)
        ));
    }
    let source = format!(
        "most users held without a gap for {}, counted from when they were reached, keeping {}",
        format_duration(need),
        r.limits_text()
    );
    let at_target = r
        .target_users
        .and_then(|u| windows::longest_at(i.series, u).map(|s| (u, s)))
        .map(|(u, s)| {
            format!(
                "; longest at the plan's {u} users: {} from {}",
                secs(s.secs()),
                secs(s.start)
            )
        })
        .unwrap_or_default();
    let Some(s) = windows::sustained(i.series, need) else {
        return Ok(Measured::new(0.0, source).text(format!("0 users{at_target}")));
    };
    let text = format!(
        "{} users for {} from {} ({}){at_target}",
        s.users,
        secs(s.stretch.secs()),
        secs(s.stretch.start),
        span_text(&s.stretch)
    );
    let slow = s.stretch.p95_ms.is_some_and(|p| p >= r.held_p95_ms);
    let m = Measured::new(f64::from(s.users), source).latency_bound(slow);
    Ok(if s.stretch.held(r.limits()) {
        m.text(text)
    } else {
        m.text(format!(
            "{text}: degraded ({})",
            s.stretch.why_not(r.limits())
        ))
        .forced(Grade::Fail)
    })
}

/// Checkouts that produced a session: successful POSTs, where a queued one (answered 202 and
/// polled) counts once its completion succeeded.
/// Checkouts that produced a session. A queued checkout (`202`, then polled to `/checkout/
/// [done]`) counts once its polling ended with a session; one still being polled when the run
/// stopped has no outcome yet and counts neither way, or a queue slower than the run's last
/// second would read as abandoned checkouts.
fn checkouts_created(i: &GradeInput<'_>) -> Option<u64> {
    let posted = i.checkout.map_or(0, |c| c.count - c.failures);
    if posted == 0 {
        return None;
    }
    match i.checkout_done.filter(|d| d.count > 0) {
        Some(done) => Some(done.count - done.failures).filter(|n| *n > 0),
        None => Some(posted),
    }
}

fn stripe_timeouts(server: &ServerSummary) -> Measure {
    let calls = server
        .stripe_calls
        .ok_or("target exports no Stripe timings (pique_stripe_request_duration_seconds)")?;
    if calls <= 0.0 {
        return Err("no Stripe calls during the run".into());
    }
    let timeouts = server.stripe_errors.get("timeout").copied().unwrap_or(0.0);
    let others: f64 = server
        .stripe_errors
        .iter()
        .filter(|(k, _)| *k != "timeout")
        .map(|(_, v)| *v)
        .sum();
    Ok(Measured::new(
        timeouts,
        "pique_stripe_errors_total{kind=\"timeout\"} over the run",
    )
    .text(format!(
        "{timeouts:.0} of {calls:.0} calls (p95 {}, {others:.0} other errors)",
        server
            .stripe_p95_s
            .map_or("-".into(), |p| Unit::Ms.fmt(p * 1000.0))
    )))
}

/// The slope of resident memory over the run (after a warm-up of the first fifth), per hour
/// (per scaled hour under `--time-scale`), as a share of the mean: the worst process.
fn memory_growth(i: &GradeInput<'_>) -> Measure {
    let warmup = i.run_secs * 0.2;
    let mut worst: Option<(f64, String, f64, f64)> = None;
    let keys: std::collections::BTreeSet<&String> = i
        .server
        .series
        .iter()
        .flat_map(|x| x.values.keys())
        .filter(|k| *k == "rss_bytes" || k.starts_with("rss_bytes@"))
        .collect();
    for key in keys {
        let points: Vec<(f64, f64)> = i
            .server
            .series
            .iter()
            .filter(|x| x.t >= warmup)
            .filter_map(|x| x.values.get(key).map(|v| (x.t, *v)))
            .collect();
        if points.len() < 4 {
            continue;
        }
        let n = points.len() as f64;
        let (mt, mv) = (
            points.iter().map(|p| p.0).sum::<f64>() / n,
            points.iter().map(|p| p.1).sum::<f64>() / n,
        );
        let cov: f64 = points.iter().map(|p| (p.0 - mt) * (p.1 - mv)).sum();
        let var: f64 = points.iter().map(|p| (p.0 - mt).powi(2)).sum();
        if var <= 0.0 || mv <= 0.0 {
            continue;
        }
        let per_hour = cov / var * 3600.0 * i.rules.time_scale;
        let share = per_hour / mv;
        let process = key.strip_prefix("rss_bytes@").unwrap_or("api").to_string();
        if worst.as_ref().is_none_or(|w| share > w.0) {
            worst = Some((share, process, per_hour, mv));
        }
    }
    let (share, process, per_hour, mean) =
        worst.ok_or("fewer than 4 samples of process_resident_memory_bytes after the warm-up")?;
    let crit = criterion("memory_growth");
    let leak = crit.is_some_and(|c| grade_value(c, share) == Grade::Fail);
    let hour = if i.rules.time_scale < 1.0 {
        "scaled hour"
    } else {
        "hour"
    };
    Ok(Measured::new(
        share,
        "slope of process_resident_memory_bytes after the first fifth of the run, worst process",
    )
    .text(format!(
        "{} ({process}: {:+.1} MB per {hour} of {:.0} MB){}",
        Unit::PercentPerHour.fmt(share),
        per_hour / 1e6,
        mean / 1e6,
        if leak {
            "; leak suspected"
        } else {
            "; no leak"
        }
    )))
}

/// Capacity: the users of the first step during which database or Redis connections ran out.
fn connection_exhaustion(i: &GradeInput<'_>) -> Measure {
    let c = i.capacity.ok_or("not a capacity search")?;
    let watched = i.server.series.iter().any(|x| {
        x.values.keys().any(|k| {
            k.starts_with("db_pool_usage")
                || k == "pg_connection_usage"
                || k == "redis_rejected_connections"
        })
    });
    if !watched {
        return Err("no connection source (pool metrics, --database-url or --redis-url)".into());
    }
    let last = c
        .steps
        .last()
        .ok_or("the capacity search finished no step")?;
    let source = "first capacity step with the DB pool full, PostgreSQL at max_connections or                   Redis rejecting connections";
    for step in &c.steps {
        let kinds: std::collections::BTreeSet<&str> = i
            .server
            .series
            .iter()
            .filter(|x| x.t >= step.start_s && x.t <= step.end_s + 0.5)
            .flat_map(|x| x.values.keys())
            .filter_map(|k| k.strip_prefix("connections_exhausted:"))
            .collect();
        if !kinds.is_empty() {
            let list: Vec<&str> = kinds.into_iter().collect();
            return Ok(Measured::new(f64::from(step.users), source).text(format!(
                "{} users ({} ran out)",
                step.users,
                list.join(", ")
            )));
        }
    }
    Ok(Measured::new(f64::from(last.users), source)
        .text(format!("did not run out (up to {} users)", last.users))
        .forced(Grade::Target))
}

/// Measures one criterion: the value and its source, or why it was not measured.
fn measure(id: &str, i: &GradeInput<'_>) -> Measure {
    let method = |m: &str| i.methods.iter().find(|s| s.method == m && s.count > 0);
    let client = "client-side, all requests";
    let no_requests = || "no requests completed".to_string();
    match id {
        "get_avg" => method("GET")
            .map(|s| Measured::new(s.avg_ms, "client-side, GET requests"))
            .ok_or_else(|| "no GET requests".into()),
        "post_avg" => method("POST")
            .map(|s| Measured::new(s.avg_ms, "client-side, POST requests"))
            .ok_or_else(|| "no POST requests".into()),
        "p95" if i.aggregated.count > 0 => Ok(Measured::new(i.aggregated.pct(0.95), client)),
        "p99" if i.aggregated.count > 0 => Ok(Measured::new(i.aggregated.pct(0.99), client)),
        "error_rate" if i.aggregated.count > 0 => {
            Ok(Measured::new(i.aggregated.error_rate(), client))
        }
        "p95" | "p99" | "error_rate" => Err(no_requests()),
        "throughput" => throughput(i),
        "concurrent_users" | "normal_load" | "peak_load" => held_users(i),
        "spike" => spike(i),
        "sustained" => sustained(i),
        "checkouts_per_min" => {
            let created = checkouts_created(i).ok_or("no successful POST /checkout/")?;
            Ok(Measured::new(
                created as f64 / (i.run_secs / 60.0),
                "checkouts that produced a session, per minute",
            ))
        }
        "checkout_completion" => {
            let created = checkouts_created(i).ok_or("no successful checkout")?;
            let s = i
                .success
                .filter(|s| s.count > 0)
                .ok_or("no POST /success/ requests (set stripe_base)")?;
            Ok(Measured::new(
                (s.count - s.failures) as f64 / created as f64,
                "successful /success/ per checkout that produced a session",
            ))
        }
        "checkout_session" => match (i.checkout_done.filter(|d| d.count > 0), i.checkout) {
            (Some(d), _) => Ok(Measured::new(
                d.pct(0.95),
                "client-side p95 of queued checkouts, from POST /checkout/ to completion",
            )),
            (None, Some(c)) if c.count > 0 => Ok(Measured::new(
                c.pct(0.95),
                "client-side p95 of POST /checkout/",
            )),
            _ => Err("no POST /checkout/ requests".into()),
        },
        "payment_success" => i
            .success
            .filter(|c| c.count > 0)
            .map(|c| Measured::new(c.pct(0.95), "client-side p95 of POST /success/"))
            .ok_or_else(|| "no POST /success/ requests".into()),
        "db_query_time" => i
            .server
            .db_query_avg_ms
            .map(|v| Measured::new(v, "pique_db_query_duration_seconds (mean)"))
            .ok_or_else(|| "target exports no DB query timing".into()),
        "cache_hit_rate" => match (i.server.cache_hit_rate, i.server.redis_hit_rate) {
            (Some(v), _) => Ok(Measured::new(v, "pique_cache_hits_total / lookups")),
            (None, Some(v)) => Ok(Measured::new(v, "Redis keyspace_hits / lookups")),
            _ => Err("no /metrics cache counters and no --redis-url".into()),
        },
        "cpu" => i
            .server
            .cpu_cores_max
            .map(|v| Measured::new(v, "process_cpu_seconds_total rate (peak)"))
            .ok_or_else(|| "target exports no process CPU metric".into()),
        "db_connections" => match (i.server.pg_connection_usage_max, i.server.db_pool_usage_max) {
            (Some(v), _) => Ok(Measured::new(
                v,
                "pg_stat_activity / max_connections (peak)",
            )),
            (None, Some(v)) => Ok(Measured::new(v, "pique_db_pool in_use / max (peak)")),
            _ => Err("no --database-url and no pool metrics".into()),
        },
        "redis_memory" => i
            .server
            .redis_memory_usage_max
            .map(|v| Measured::new(v, "Redis used_memory / maxmemory (peak)"))
            .ok_or_else(|| "no --redis-url, or Redis has no maxmemory".into()),
        "queue_length" => match (i.server.queue_depth_max, &i.server.queue_depth_source) {
            (Some(v), Some(src)) => Ok(Measured::new(v, src.clone())),
            (Some(v), None) => Ok(Measured::new(v, "pique_queue_depth (peak, any queue)")),
            _ => Err(
                "no queue depth: the target exports none (give each worker's --metrics-url) and \
                 --redis-url is not a Celery broker"
                    .into(),
            ),
        },
        "container_memory" => Err("no container memory source".into()),
        "pdf_time" => i
            .server
            .pdf_p95_s
            .map(|v| Measured::new(v, "pique_pdf_duration_seconds p95 over the run"))
            .ok_or_else(|| {
                "no PDF timings on /metrics (give the PDF worker's --metrics-url)".into()
            }),
        "stripe_timeouts" => stripe_timeouts(i.server),
        "queue_latency" => i
            .server
            .queue_wait_p95_s
            .map(|v| {
                Measured::new(
                    v,
                    "pique_job_queue_wait_seconds p95 (job due to started), all queues",
                )
            })
            .ok_or_else(|| {
                "no job queue timings on /metrics (give each worker's --metrics-url)".into()
            }),
        "email_delivery" => match (i.server.email_delivery, i.server.emails_failed) {
            (Some(v), Some(failed)) => Ok(Measured::new(
                v,
                "pique_emails_sent_total / (sent + failed attempts of the email queue)",
            )
            .text(format!(
                "{} ({:.0} sent, {failed:.0} failed attempts)",
                Unit::Percent.fmt(v),
                i.server.emails_sent.unwrap_or(0.0)
            ))),
            _ => Err(
                "no e-mails attempted, or no e-mail worker metrics (give its --metrics-url)".into(),
            ),
        },
        "db_deadlocks" => i
            .server
            .pg_deadlocks
            .map(|v| Measured::new(v, "pg_stat_database.deadlocks, increase over the run"))
            .ok_or_else(|| "no --database-url".into()),
        "redis_eviction" => match (i.server.redis_eviction_rate, i.server.redis_evicted) {
            (Some(v), Some(n)) => Ok(Measured::new(
                v,
                "Redis evicted_keys / keyspace lookups over the run",
            )
            .text(format!("{} ({n:.0} keys evicted)", Unit::Percent.fmt(v)))),
            _ => Err("no --redis-url, or no cache lookups during the run".into()),
        },
        "memory_growth" => memory_growth(i),
        "connection_exhaustion" => connection_exhaustion(i),
        other => Err(format!("unknown criterion `{other}`")),
    }
}

/// Grades every criterion; rows the plan does not grade are measured and shown but marked
/// "not graded by this plan".
pub fn grade(input: &GradeInput<'_>) -> Vec<GradeRow> {
    CRITERIA
        .iter()
        .map(|c| {
            let graded = input.rules.criteria.iter().any(|id| id == c.id);
            let timed = LATENCY_ROWS.contains(&c.id);
            let (measured, measured_text, source, grade, latency_bound) = match measure(c.id, input)
            {
                Ok(m) if m.value.is_finite() => {
                    let grade = m.forced.unwrap_or_else(|| grade_value(c, m.value));
                    let text = m.text.unwrap_or_else(|| c.unit.fmt(m.value));
                    (
                        Some(m.value),
                        text,
                        m.source,
                        grade,
                        timed || m.latency_bound,
                    )
                }
                Ok(m) => (
                    None,
                    "not measured".into(),
                    m.source,
                    Grade::NotMeasured,
                    false,
                ),
                Err(why) => (None, "not measured".into(), why, Grade::NotMeasured, false),
            };
            GradeRow {
                id: c.id.into(),
                table: c.table.into(),
                metric: c.metric.into(),
                target: level_text(c, Some(c.target)),
                acceptable: level_text(c, c.acceptable),
                threshold: level_text(c, c.threshold),
                measured,
                measured_text,
                source,
                grade: if graded || grade == Grade::NotMeasured {
                    grade
                } else {
                    Grade::NotGraded
                },
                in_verdict: graded,
                latency_bound,
            }
        })
        .collect()
}

/// Rows that are response times the generator measured: a generator that falls behind makes
/// them look worse than the server is, never better. (The load rows depend on response times
/// too when the window that decided them missed its p95: see [`GradeRow::latency_bound`].)
pub const LATENCY_ROWS: &[&str] = &[
    "get_avg",
    "post_avg",
    "p95",
    "p99",
    "checkout_session",
    "payment_success",
];

/// The verdict of a run whose generator fell behind (`how`: when and how much): a pass stands,
/// since the generator's delays only make response times worse; a failure that depends on
/// response times is not the server's to take, so the run is not graded; other failures (errors
/// the server answered, server-side rows) stand.
pub fn verdict_with_generator_behind(rows: &[GradeRow], how: &str) -> String {
    let blamed: Vec<&str> = rows
        .iter()
        .filter(|r| r.in_verdict && r.grade == Grade::Fail && r.latency_bound)
        .map(|r| r.metric.as_str())
        .collect();
    if blamed.is_empty() {
        return format!(
            "{}; the load generator fell behind ({how}), which can only have made the \
             response times worse",
            verdict(rows)
        );
    }
    let own: Vec<&str> = rows
        .iter()
        .filter(|r| r.in_verdict && r.grade == Grade::Fail && !r.latency_bound)
        .map(|r| r.metric.as_str())
        .collect();
    let not_graded = format!(
        "the load generator fell behind ({how}), so these failures may be its own delays, not \
         the server's, and are not graded: {}. Run fewer users per generator process, or on a \
         quieter or bigger machine.",
        blamed.join(", ")
    );
    if own.is_empty() {
        format!("NOT GRADED: {not_graded}")
    } else {
        format!("FAIL ({}); {not_graded}", own.join(", "))
    }
}

/// The overall verdict: the worst grade among measured rows the plan grades.
pub fn verdict(rows: &[GradeRow]) -> String {
    let worst = rows
        .iter()
        .filter(|r| r.in_verdict && r.grade <= Grade::Fail)
        .map(|r| r.grade)
        .max();
    match worst {
        None => "NOT GRADED (nothing this plan grades was measured)".into(),
        Some(Grade::Fail) => {
            let failed: Vec<&str> = rows
                .iter()
                .filter(|r| r.in_verdict && r.grade == Grade::Fail)
                .map(|r| r.metric.as_str())
                .collect();
            format!("FAIL ({})", failed.join(", "))
        }
        Some(g) => format!("PASS ({})", g.label()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_grade_in_order() {
        let get = criterion("get_avg").unwrap();
        assert_eq!(grade_value(get, 150.0), Grade::Target);
        assert_eq!(grade_value(get, 250.0), Grade::Acceptable);
        assert_eq!(grade_value(get, 450.0), Grade::Threshold);
        assert_eq!(grade_value(get, 600.0), Grade::Fail);
        let users = criterion("peak_load").unwrap();
        assert_eq!(grade_value(users, 300.0), Grade::Acceptable);
        assert_eq!(grade_value(users, 299.0), Grade::Fail);
        let cache = criterion("cache_hit_rate").unwrap();
        assert_eq!(grade_value(cache, 0.8), Grade::Acceptable);
        let deadlocks = criterion("db_deadlocks").unwrap();
        assert_eq!(grade_value(deadlocks, 0.0), Grade::Target);
        assert_eq!(grade_value(deadlocks, 1.0), Grade::Fail);
        assert_eq!(level_text(deadlocks, Some(0.0)), "none");
    }

    fn row(id: &str, grade: Grade, in_verdict: bool) -> GradeRow {
        GradeRow {
            id: id.into(),
            table: String::new(),
            metric: id.into(),
            target: String::new(),
            acceptable: String::new(),
            threshold: String::new(),
            measured: None,
            measured_text: String::new(),
            source: String::new(),
            grade,
            in_verdict,
            latency_bound: false,
        }
    }

    #[test]
    fn the_verdict_is_the_worst_graded_row() {
        let rows = vec![
            row("a", Grade::Target, true),
            row("b", Grade::Acceptable, true),
            row("c", Grade::NotGraded, false),
            row("d", Grade::NotMeasured, true),
        ];
        assert_eq!(verdict(&rows), "PASS (acceptable)");
        let mut failing = rows.clone();
        failing.push(row("e", Grade::Fail, true));
        assert_eq!(verdict(&failing), "FAIL (e)");
        assert!(verdict(&rows[2..]).starts_with("NOT GRADED"));
    }

    #[test]
    fn a_generator_that_fell_behind_withholds_only_failures_it_can_cause() {
        let how = "in 5 of 30 s";
        let pass = vec![row("p95", Grade::Acceptable, true)];
        let v = verdict_with_generator_behind(&pass, how);
        assert!(
            v.starts_with("PASS (acceptable); the load generator fell behind"),
            "{v}"
        );
        let mut slow = row("p95", Grade::Fail, true);
        slow.latency_bound = true;
        let v = verdict_with_generator_behind(&[slow], how);
        assert!(v.starts_with("NOT GRADED") && v.contains("p95"), "{v}");
        // Errors the server answered and server-side rows are the server's.
        let v = verdict_with_generator_behind(
            &[
                row("error_rate", Grade::Fail, true),
                row("cpu", Grade::Fail, true),
            ],
            how,
        );
        assert!(v.starts_with("FAIL (error_rate, cpu)"), "{v}");
    }
}
