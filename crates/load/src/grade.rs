//! Grading against the seed's Success Criteria tables. The tables are data ([`CRITERIA`]); each
//! row gets the measured value and a grade, or "not measured" when the run had no source for it.
//! Nothing is estimated: a row without a measurement never passes or fails.

use serde::{Deserialize, Serialize};

use crate::engine::CapacityResult;
use crate::scrape::ServerSummary;
use crate::stats::{Point, RequestStats};

/// How a criterion's value is compared to its levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cmp {
    /// The value must be below the level (`< 200ms`).
    Below,
    /// The value must be at least the level (`100+`, `>= 20/min`).
    AtLeast,
    /// The value must be above the level (`> 80%`).
    Above,
}

/// Unit used to print values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Unit {
    /// Milliseconds.
    Ms,
    /// Seconds.
    Secs,
    /// A fraction printed as a percentage.
    Percent,
    /// Users.
    Users,
    /// Requests per second.
    Rps,
    /// Per minute.
    PerMin,
    /// Tasks in a queue.
    Tasks,
}

impl Unit {
    /// Formats `v` in this unit.
    pub fn fmt(self, v: f64) -> String {
        match self {
            Unit::Ms if v >= 1000.0 => format!("{:.2} s", v / 1000.0),
            Unit::Ms => format!("{v:.1} ms"),
            Unit::Secs => format!("{v:.2} s"),
            Unit::Percent => format!("{:.2}%", v * 100.0),
            Unit::Users => format!("{v:.0} users"),
            Unit::Rps => format!("{v:.1} req/s"),
            Unit::PerMin => format!("{v:.1}/min"),
            Unit::Tasks => format!("{v:.0} tasks"),
        }
    }
}

/// One row of the seed's success criteria.
#[derive(Debug, Clone, Copy)]
pub struct Criterion {
    /// Stable id (used by `grading.exclude`).
    pub id: &'static str,
    /// Which table of the seed it comes from.
    pub table: &'static str,
    /// The row's label as in the seed.
    pub metric: &'static str,
    /// Comparison.
    pub cmp: Cmp,
    /// Unit.
    pub unit: Unit,
    /// "Target" column.
    pub target: f64,
    /// "Acceptable" column, when the table has one.
    pub acceptable: Option<f64>,
    /// "Threshold" column, when the table has one.
    pub threshold: Option<f64>,
}

const PERF: &str = "Performance Targets";
const SCALE: &str = "Scalability Targets";
const INFRA: &str = "Infrastructure Targets";
const CHECKOUT: &str = "Phase 2: Checkout Flow";
const PROD: &str = "Phase 4: Production-Like";

const fn row(
    id: &'static str,
    table: &'static str,
    metric: &'static str,
    cmp: Cmp,
    unit: Unit,
    levels: (f64, Option<f64>, Option<f64>),
) -> Criterion {
    Criterion {
        id,
        table,
        metric,
        cmp,
        unit,
        target: levels.0,
        acceptable: levels.1,
        threshold: levels.2,
    }
}

use Cmp::{Above, AtLeast, Below};

/// The seed's Success Criteria tables (plus the phase 2 and 4 targets), as data.
pub const CRITERIA: &[Criterion] = &[
    row(
        "get_avg",
        PERF,
        "Average Response Time (GET)",
        Below,
        Unit::Ms,
        (200.0, Some(300.0), Some(500.0)),
    ),
    row(
        "post_avg",
        PERF,
        "Average Response Time (POST)",
        Below,
        Unit::Ms,
        (500.0, Some(750.0), Some(1000.0)),
    ),
    row(
        "p95",
        PERF,
        "95th Percentile Response Time",
        Below,
        Unit::Ms,
        (500.0, Some(750.0), Some(1000.0)),
    ),
    row(
        "p99",
        PERF,
        "99th Percentile Response Time",
        Below,
        Unit::Ms,
        (1000.0, Some(1500.0), Some(2000.0)),
    ),
    row(
        "error_rate",
        PERF,
        "Error Rate",
        Below,
        Unit::Percent,
        (0.001, Some(0.005), Some(0.01)),
    ),
    row(
        "concurrent_users",
        PERF,
        "Concurrent Users",
        AtLeast,
        Unit::Users,
        (100.0, Some(75.0), Some(50.0)),
    ),
    row(
        "throughput",
        PERF,
        "Throughput (RPS)",
        AtLeast,
        Unit::Rps,
        (500.0, Some(300.0), Some(200.0)),
    ),
    row(
        "db_query_time",
        PERF,
        "Database Query Time",
        Below,
        Unit::Ms,
        (50.0, Some(100.0), Some(200.0)),
    ),
    row(
        "cache_hit_rate",
        PERF,
        "Cache Hit Rate",
        Above,
        Unit::Percent,
        (0.8, Some(0.7), Some(0.6)),
    ),
    row(
        "normal_load",
        SCALE,
        "Normal Load",
        AtLeast,
        Unit::Users,
        (100.0, Some(75.0), None),
    ),
    row(
        "peak_load",
        SCALE,
        "Peak Load",
        AtLeast,
        Unit::Users,
        (500.0, Some(300.0), None),
    ),
    row(
        "spike",
        SCALE,
        "Spike Handling (users reached in 1 min)",
        AtLeast,
        Unit::Users,
        (500.0, Some(300.0), None),
    ),
    row(
        "sustained",
        SCALE,
        "Sustained Load (users held for 2h)",
        AtLeast,
        Unit::Users,
        (100.0, Some(75.0), None),
    ),
    row(
        "checkouts_per_min",
        SCALE,
        "Checkout Flow",
        AtLeast,
        Unit::PerMin,
        (20.0, Some(15.0), None),
    ),
    row(
        "checkout_completion",
        CHECKOUT,
        "Checkout completion rate",
        Above,
        Unit::Percent,
        (0.95, None, None),
    ),
    row(
        "checkout_session",
        CHECKOUT,
        "Checkout session creation (p95)",
        Below,
        Unit::Ms,
        (3000.0, None, None),
    ),
    row(
        "payment_success",
        CHECKOUT,
        "Payment success processing (p95)",
        Below,
        Unit::Ms,
        (2000.0, None, None),
    ),
    row(
        "cpu",
        INFRA,
        "Gunicorn Workers CPU Usage (of one core)",
        Below,
        Unit::Percent,
        (0.7, None, Some(0.9)),
    ),
    row(
        "db_connections",
        INFRA,
        "PostgreSQL Connection Usage",
        Below,
        Unit::Percent,
        (0.6, None, Some(0.8)),
    ),
    row(
        "redis_memory",
        INFRA,
        "Redis Memory Usage",
        Below,
        Unit::Percent,
        (0.7, None, Some(0.9)),
    ),
    row(
        "queue_length",
        INFRA,
        "Celery Workers Queue Length",
        Below,
        Unit::Tasks,
        (10.0, None, Some(50.0)),
    ),
    row(
        "container_memory",
        INFRA,
        "Docker Container Memory Usage",
        Below,
        Unit::Percent,
        (0.7, None, Some(0.9)),
    ),
    row(
        "pdf_time",
        PROD,
        "PDF generation time (p95)",
        Below,
        Unit::Secs,
        (2.0, None, None),
    ),
];

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
        }
    }
}

/// A graded row, as written to summary.json and the report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GradeRow {
    /// Criterion id.
    pub id: String,
    /// Seed table.
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
    /// Whether the row counts towards the verdict (see `grading.exclude`).
    pub in_verdict: bool,
}

/// Everything grading looks at.
pub struct GradeInput<'a> {
    /// All requests.
    pub aggregated: &'a RequestStats,
    /// Per-method aggregates.
    pub methods: &'a [RequestStats],
    /// POST requests to `/checkout/`, merged.
    pub checkout: Option<&'a RequestStats>,
    /// POST requests to `/success/`, merged.
    pub success: Option<&'a RequestStats>,
    /// Run length, s.
    pub run_secs: f64,
    /// Most users at once.
    pub peak_users: u32,
    /// One-second series.
    pub series: &'a [Point],
    /// Server-side metrics.
    pub server: &'a ServerSummary,
    /// Capacity search result.
    pub capacity: Option<&'a CapacityResult>,
    /// Criterion ids left out of the verdict.
    pub exclude: &'a [String],
}

fn level_text(c: &Criterion, v: Option<f64>) -> String {
    let Some(v) = v else { return String::new() };
    let op = match c.cmp {
        Below => "< ",
        AtLeast => ">= ",
        Above => "> ",
    };
    format!("{op}{}", c.unit.fmt(v))
}

/// Grades `value` against `c`'s levels.
pub fn grade_value(c: &Criterion, value: f64) -> Grade {
    let meets = |level: f64| match c.cmp {
        Below => value < level,
        AtLeast => value >= level,
        Above => value > level,
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

/// Measures one criterion: `Ok((value, source))` or `Err(why not measured)`.
fn measure(id: &str, i: &GradeInput<'_>) -> Result<(f64, String), String> {
    let method = |m: &str| i.methods.iter().find(|s| s.method == m && s.count > 0);
    let peak = || match i.capacity {
        Some(c) => match (c.last_good_users, c.breaking_users) {
            (Some(u), _) => Ok((f64::from(u), "capacity search: last step that held".into())),
            (None, Some(_)) => Ok((0.0, "capacity search: the first step already broke".into())),
            (None, None) => Err("capacity search did not complete a step".into()),
        },
        None => Ok((
            f64::from(i.peak_users),
            "peak simulated users (client)".into(),
        )),
    };
    let client = "client-side, all requests".to_string();
    let no_requests = || "no requests completed".to_string();
    match id {
        "get_avg" => method("GET")
            .map(|s| (s.avg_ms, "client-side, GET requests".into()))
            .ok_or_else(|| "no GET requests".into()),
        "post_avg" => method("POST")
            .map(|s| (s.avg_ms, "client-side, POST requests".into()))
            .ok_or_else(|| "no POST requests".into()),
        "p95" if i.aggregated.count > 0 => Ok((i.aggregated.pct(0.95), client)),
        "p99" if i.aggregated.count > 0 => Ok((i.aggregated.pct(0.99), client)),
        "error_rate" if i.aggregated.count > 0 => Ok((i.aggregated.error_rate(), client)),
        "throughput" if i.aggregated.count > 0 => {
            Ok((i.aggregated.rps, "client-side, whole run".into()))
        }
        "p95" | "p99" | "error_rate" | "throughput" => Err(no_requests()),
        "concurrent_users" | "normal_load" | "peak_load" => peak(),
        "spike" => {
            let reached = i
                .series
                .iter()
                .filter(|p| p.t <= 60.5)
                .map(|p| p.users)
                .max()
                .ok_or("run shorter than one second")?;
            Ok((
                f64::from(reached),
                "most users reached within the first minute".into(),
            ))
        }
        "sustained" => {
            const WINDOW: usize = 7200;
            if i.series.len() < WINDOW {
                return Err(format!(
                    "run shorter than 2 h ({:.0} min)",
                    i.run_secs / 60.0
                ));
            }
            let held = i
                .series
                .windows(WINDOW)
                .map(|w| w.iter().map(|p| p.users).min().unwrap_or(0))
                .max()
                .unwrap_or(0);
            Ok((
                f64::from(held),
                "most users held for 2 h without a gap".into(),
            ))
        }
        "checkouts_per_min" => {
            let c = i
                .checkout
                .filter(|c| c.count > 0)
                .ok_or("no POST /checkout/ requests")?;
            let ok = (c.count - c.failures) as f64;
            Ok((
                ok / (i.run_secs / 60.0),
                "successful POST /checkout/ per minute".into(),
            ))
        }
        "checkout_completion" => {
            let c = i
                .checkout
                .filter(|c| c.count > c.failures)
                .ok_or("no successful checkout")?;
            let s = i
                .success
                .filter(|s| s.count > 0)
                .ok_or("no POST /success/ requests (set stripe_base)")?;
            Ok((
                (s.count - s.failures) as f64 / (c.count - c.failures) as f64,
                "successful /success/ per successful /checkout/".into(),
            ))
        }
        "checkout_session" => i
            .checkout
            .filter(|c| c.count > 0)
            .map(|c| (c.pct(0.95), "client-side p95 of POST /checkout/".into()))
            .ok_or_else(|| "no POST /checkout/ requests".into()),
        "payment_success" => i
            .success
            .filter(|c| c.count > 0)
            .map(|c| (c.pct(0.95), "client-side p95 of POST /success/".into()))
            .ok_or_else(|| "no POST /success/ requests".into()),
        "db_query_time" => i
            .server
            .db_query_avg_ms
            .map(|v| (v, "pique_db_query_duration_seconds (mean)".into()))
            .ok_or_else(|| "target exports no DB query timing".into()),
        "cache_hit_rate" => match (i.server.cache_hit_rate, i.server.redis_hit_rate) {
            (Some(v), _) => Ok((v, "pique_cache_hits_total / lookups".into())),
            (None, Some(v)) => Ok((v, "Redis keyspace_hits / lookups".into())),
            _ => Err("no /metrics cache counters and no --redis-url".into()),
        },
        "cpu" => i
            .server
            .cpu_cores_max
            .map(|v| (v, "process_cpu_seconds_total rate (peak)".into()))
            .ok_or_else(|| "target exports no process CPU metric".into()),
        "db_connections" => match (i.server.pg_connection_usage_max, i.server.db_pool_usage_max) {
            (Some(v), _) => Ok((v, "pg_stat_activity / max_connections (peak)".into())),
            (None, Some(v)) => Ok((v, "pique_db_pool in_use / max (peak)".into())),
            _ => Err("no --database-url and no pool metrics".into()),
        },
        "redis_memory" => i
            .server
            .redis_memory_usage_max
            .map(|v| (v, "Redis used_memory / maxmemory (peak)".into()))
            .ok_or_else(|| "no --redis-url, or Redis has no maxmemory".into()),
        "queue_length" => i
            .server
            .queue_depth_max
            .map(|v| (v, "pique_queue_depth (peak, any queue)".into()))
            .ok_or_else(|| "target exports no queue depth".into()),
        "container_memory" => Err("no container memory source".into()),
        "pdf_time" => i
            .server
            .pdf_p95_s
            .map(|v| (v, "pique_pdf_duration_seconds p95 over the run".into()))
            .ok_or_else(|| "no PDF timings on /metrics".into()),
        other => Err(format!("unknown criterion {other}")),
    }
}

/// Grades every criterion.
pub fn grade(input: &GradeInput<'_>) -> Vec<GradeRow> {
    CRITERIA
        .iter()
        .map(|c| {
            let (measured, measured_text, source, grade) = match measure(c.id, input) {
                Ok((v, src)) if v.is_finite() => (Some(v), c.unit.fmt(v), src, grade_value(c, v)),
                Ok((_, src)) => (None, "not measured".into(), src, Grade::NotMeasured),
                Err(why) => (None, "not measured".into(), why, Grade::NotMeasured),
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
                grade,
                in_verdict: !input.exclude.iter().any(|e| e == c.id),
            }
        })
        .collect()
}

/// The overall verdict: the worst grade among measured rows that count.
pub fn verdict(rows: &[GradeRow]) -> String {
    let worst = rows
        .iter()
        .filter(|r| r.in_verdict && r.grade != Grade::NotMeasured)
        .map(|r| r.grade)
        .max();
    match worst {
        None => "NOT GRADED (nothing measured)".into(),
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
        let get = &CRITERIA[0];
        assert_eq!(grade_value(get, 150.0), Grade::Target);
        assert_eq!(grade_value(get, 250.0), Grade::Acceptable);
        assert_eq!(grade_value(get, 450.0), Grade::Threshold);
        assert_eq!(grade_value(get, 600.0), Grade::Fail);
        let users = CRITERIA.iter().find(|c| c.id == "peak_load").unwrap();
        assert_eq!(grade_value(users, 300.0), Grade::Acceptable);
        assert_eq!(grade_value(users, 299.0), Grade::Fail);
        let cache = CRITERIA.iter().find(|c| c.id == "cache_hit_rate").unwrap();
        assert_eq!(grade_value(cache, 0.8), Grade::Acceptable);
    }

    #[test]
    fn ids_are_unique() {
        let mut ids: Vec<&str> = CRITERIA.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), CRITERIA.len());
    }
}
