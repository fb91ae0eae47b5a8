//! The original load-testing plan's success criteria as data, and which of them each phase of
//! that plan grades.
//!
//! The plan has three tables (Performance, Scalability and Infrastructure targets, with Target,
//! Acceptable and Threshold columns) and, in its phase descriptions, further targets: checkout
//! completion and timings and "no timeouts during Stripe API calls" (phase 2); "Celery queue
//! processing time < 1 s", e-mail delivery above 99 %, PDF generation under 2 s, no database
//! deadlocks and Redis evictions under 1 % (phase 4); memory leaks and the point where
//! connections run out (phase 3). Every one of them is a row here, with a stable id.

use serde::{Deserialize, Serialize};

/// How a criterion's value is compared to its levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cmp {
    /// The value must be below the level (`< 200ms`).
    Below,
    /// The value must be at least the level (`100+`, `>= 20/min`).
    AtLeast,
    /// The value must be above the level (`> 80%`).
    Above,
    /// The value must not exceed the level (`no deadlocks`: at most 0).
    AtMost,
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
    /// A fraction per hour printed as a percentage per hour.
    PercentPerHour,
    /// Users.
    Users,
    /// Requests per second.
    Rps,
    /// Per minute.
    PerMin,
    /// Tasks in a queue.
    Tasks,
    /// A count of events.
    Count,
}

impl Unit {
    /// Formats `v` in this unit.
    pub fn fmt(self, v: f64) -> String {
        match self {
            Unit::Ms if v >= 1000.0 => format!("{:.2} s", v / 1000.0),
            Unit::Ms => format!("{v:.1} ms"),
            Unit::Secs => format!("{v:.2} s"),
            Unit::Percent => format!("{:.2}%", v * 100.0),
            Unit::PercentPerHour => format!("{:+.2}%/h", v * 100.0),
            Unit::Users => format!("{v:.0} users"),
            Unit::Rps => format!("{v:.1} req/s"),
            Unit::PerMin => format!("{v:.1}/min"),
            Unit::Tasks => format!("{v:.0} tasks"),
            Unit::Count => format!("{v:.0}"),
        }
    }
}

/// One row of the success criteria.
#[derive(Debug, Clone, Copy)]
pub struct Criterion {
    /// Stable id (used in `[grading]`).
    pub id: &'static str,
    /// Which table or phase of the original plan it comes from.
    pub table: &'static str,
    /// The row's label.
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
const STRESS: &str = "Phase 3: Stress Testing";
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

use Cmp::{Above, AtLeast, AtMost, Below};

/// Every success criterion of the original plan, in the order reports show them.
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
        "Concurrent Users (held)",
        AtLeast,
        Unit::Users,
        (100.0, Some(75.0), Some(50.0)),
    ),
    row(
        "throughput",
        PERF,
        "Throughput (RPS, held)",
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
        "Normal Load (users held)",
        AtLeast,
        Unit::Users,
        (100.0, Some(75.0), None),
    ),
    row(
        "peak_load",
        SCALE,
        "Peak Load (users held)",
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
        "stripe_timeouts",
        CHECKOUT,
        "Stripe API calls timed out",
        AtMost,
        Unit::Count,
        (0.0, None, None),
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
        "memory_growth",
        STRESS,
        "Memory growth (resident, per hour)",
        Below,
        Unit::PercentPerHour,
        (0.05, None, Some(0.10)),
    ),
    row(
        "connection_exhaustion",
        STRESS,
        "Connections last (users when DB/Redis connections ran out)",
        AtLeast,
        Unit::Users,
        (100.0, Some(75.0), Some(50.0)),
    ),
    row(
        "queue_latency",
        PROD,
        "Celery queue processing time (enqueue to start, p95)",
        Below,
        Unit::Secs,
        (1.0, None, None),
    ),
    row(
        "email_delivery",
        PROD,
        "Email delivery success rate",
        Above,
        Unit::Percent,
        (0.99, None, None),
    ),
    row(
        "pdf_time",
        PROD,
        "PDF generation time (p95)",
        Below,
        Unit::Secs,
        (2.0, None, None),
    ),
    row(
        "db_deadlocks",
        PROD,
        "Database deadlocks",
        AtMost,
        Unit::Count,
        (0.0, None, None),
    ),
    row(
        "redis_eviction",
        PROD,
        "Redis eviction rate (evictions per lookup)",
        Below,
        Unit::Percent,
        (0.01, None, None),
    ),
];

/// The criterion with this id.
pub fn criterion(id: &str) -> Option<&'static Criterion> {
    CRITERIA.iter().find(|c| c.id == id)
}

/// What a plan is for, i.e. which phase of the original plan it runs; each phase grades its
/// own criteria by default (see [`Phase::criteria`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// No phase given: response times, errors and the server-side rows.
    #[default]
    General,
    /// Phase 1.1: a closed-model read baseline (users thinking 1-5 s).
    Baseline,
    /// Phase 1.2: the read mix at 100-500 requests per second.
    ReadHeavy,
    /// Phase 2: the checkout and payment flow.
    Checkout,
    /// Phase 3.1: 0 to 500 users within a minute.
    Spike,
    /// Phase 3.2: the same users for hours.
    Soak,
    /// Phase 3.3: users added step by step until something breaks.
    Capacity,
    /// Phase 4.1: the production-like mix of reads, portal, checkout and paid orders.
    Mixed,
}

/// Response times and errors: what any load run can be judged on.
const LATENCY: &[&str] = &["get_avg", "post_avg", "p95", "p99", "error_rate"];
/// Server-side rows measured from `/metrics`, PostgreSQL and Redis, when available.
const SERVER: &[&str] = &["db_query_time", "cache_hit_rate"];
/// The Infrastructure Targets table.
const INFRASTRUCTURE: &[&str] = &[
    "cpu",
    "db_connections",
    "redis_memory",
    "queue_length",
    "container_memory",
];

impl Phase {
    /// All phases, for messages.
    pub const ALL: [Phase; 8] = [
        Phase::General,
        Phase::Baseline,
        Phase::ReadHeavy,
        Phase::Checkout,
        Phase::Spike,
        Phase::Soak,
        Phase::Capacity,
        Phase::Mixed,
    ];

    /// The name written in plans.
    pub fn name(self) -> &'static str {
        match self {
            Phase::General => "general",
            Phase::Baseline => "baseline",
            Phase::ReadHeavy => "read-heavy",
            Phase::Checkout => "checkout",
            Phase::Spike => "spike",
            Phase::Soak => "soak",
            Phase::Capacity => "capacity",
            Phase::Mixed => "mixed",
        }
    }

    /// The criteria this phase grades by default. The reasons are in
    /// `docs/load-testing-plan.md`; in short, a phase grades what its shape can show: a
    /// baseline of 100 users thinking 1-5 s makes ~33 requests/s by design, so it grades held
    /// users and response times, not throughput; a capacity search breaks things on purpose, so
    /// it grades how far it got, not the response times of its last step.
    pub fn criteria(self) -> Vec<&'static str> {
        let mut ids: Vec<&'static str> = Vec::new();
        let mut add = |list: &[&'static str]| ids.extend_from_slice(list);
        match self {
            Phase::General => {
                add(LATENCY);
                add(SERVER);
                add(INFRASTRUCTURE);
            }
            Phase::Baseline => {
                add(LATENCY);
                add(&["concurrent_users", "normal_load"]);
                add(SERVER);
                add(INFRASTRUCTURE);
            }
            Phase::ReadHeavy => {
                add(LATENCY);
                add(&["throughput"]);
                add(SERVER);
                add(INFRASTRUCTURE);
            }
            Phase::Checkout => {
                add(LATENCY);
                add(&[
                    "checkouts_per_min",
                    "checkout_completion",
                    "checkout_session",
                    "payment_success",
                    "stripe_timeouts",
                    "db_deadlocks",
                ]);
                add(SERVER);
                add(INFRASTRUCTURE);
            }
            Phase::Spike => {
                add(LATENCY);
                add(&["spike", "peak_load"]);
                add(SERVER);
                add(INFRASTRUCTURE);
            }
            Phase::Soak => {
                add(LATENCY);
                add(&[
                    "sustained",
                    "normal_load",
                    "memory_growth",
                    "db_deadlocks",
                    "redis_eviction",
                ]);
                add(SERVER);
                add(INFRASTRUCTURE);
            }
            Phase::Capacity => {
                add(&[
                    "concurrent_users",
                    "normal_load",
                    "peak_load",
                    "connection_exhaustion",
                ]);
            }
            Phase::Mixed => {
                add(LATENCY);
                add(&[
                    "concurrent_users",
                    "normal_load",
                    "checkouts_per_min",
                    "checkout_session",
                    "payment_success",
                    "stripe_timeouts",
                    "queue_latency",
                    "email_delivery",
                    "pdf_time",
                    "db_deadlocks",
                    "redis_eviction",
                ]);
                add(SERVER);
                add(INFRASTRUCTURE);
            }
        }
        ids
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_every_phase_names_known_rows() {
        let mut ids: Vec<&str> = CRITERIA.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), CRITERIA.len());
        for phase in Phase::ALL {
            for id in phase.criteria() {
                assert!(criterion(id).is_some(), "{phase}: {id}");
            }
        }
    }

    #[test]
    fn phases_grade_what_their_shape_can_show() {
        let has = |p: Phase, id: &str| p.criteria().contains(&id);
        assert!(!has(Phase::Baseline, "throughput"));
        assert!(has(Phase::ReadHeavy, "throughput"));
        assert!(!has(Phase::Checkout, "concurrent_users"));
        assert!(!has(Phase::Capacity, "p95"));
        assert!(has(Phase::Soak, "sustained") && has(Phase::Soak, "memory_growth"));
        assert!(!has(Phase::Mixed, "checkout_completion"));
        assert!(has(Phase::Spike, "spike") && !has(Phase::Spike, "sustained"));
    }
}
