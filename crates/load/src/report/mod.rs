//! Run outputs: the [`Summary`] (summary.json) and the files derived from it (report.html,
//! Locust-format CSVs). Everything is written from the summary, so `compare` and re-rendering
//! need nothing else.

pub mod csv;
pub mod html;
pub mod json;
pub mod svg;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::distributed::DistributedReport;
use crate::engine::watch::GeneratorHealth;
use crate::engine::{CapacityResult, Lag};
use crate::error::LoadError;
use crate::grade::{GradeRow, Rules};
use crate::scrape::ServerSummary;
use crate::stats::{FailureRow, Point, RequestStats};

/// The plan, as recorded in a run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PlanInfo {
    /// Plan name.
    pub name: String,
    /// Plan description.
    pub description: String,
    /// File the plan came from.
    pub origin: String,
    /// The plan text.
    pub source: String,
    /// How the plan was read (an Artillery config's processor that is not run ...).
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// How the run was set up and how it ended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Settings {
    /// Target base URL; with several, all of them joined by `, `.
    pub host: String,
    /// Every target base URL, in the order users were spread over them (round-robin).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Free label (`--label`), e.g. the architecture profile `django-railway`.
    pub label: Option<String>,
    /// The load shape in words (as run, i.e. after `--time-scale`).
    pub shape: String,
    /// The time scale the plan ran at (1 = as written).
    #[serde(default = "one")]
    pub time_scale: f64,
    /// Run-time cap, if any.
    pub run_time_cap: Option<String>,
    /// Request cap, if any.
    pub max_requests: Option<u64>,
    /// Start, RFC 3339 UTC.
    pub started_at: String,
    /// Start, Unix seconds (for Locust-style timestamps).
    pub started_at_unix: i64,
    /// Seconds the load ran.
    pub duration_s: f64,
    /// Why the run ended.
    pub stop_reason: String,
    /// Most users at once.
    pub peak_users: u32,
    /// Prometheus endpoint scraped, if any.
    pub metrics_url: Option<String>,
    /// PostgreSQL scraped (password removed), if any.
    pub database_url: Option<String>,
    /// Redis scraped (password removed), if any.
    pub redis_url: Option<String>,
    /// Variables given with `--var`.
    pub vars: Vec<(String, String)>,
}

fn one() -> f64 {
    1.0
}

/// A threshold and whether it held.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ThresholdResult {
    /// `*` or a request name.
    pub scope: String,
    /// The expression.
    pub expr: String,
    /// The measured value (ms for latencies, a fraction for error rates).
    pub measured: Option<f64>,
    /// Whether it held.
    pub passed: bool,
    /// Not evaluated: every step it covers needs a variable this run did not set (a payment
    /// step without `--var stripe_base`). A skipped threshold does not fail the run.
    #[serde(default)]
    pub skipped: bool,
    /// Why it was skipped, or why a threshold without data failed.
    #[serde(default)]
    pub note: String,
}

/// Everything about a run: the content of summary.json.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    /// Tool and version that wrote this.
    pub tool: String,
    /// The plan.
    pub plan: PlanInfo,
    /// Run settings.
    pub settings: Settings,
    /// One row per request name.
    pub requests: Vec<RequestStats>,
    /// All requests together.
    pub aggregated: RequestStats,
    /// Per-method aggregates.
    pub methods: Vec<RequestStats>,
    /// Failures by (name, error).
    pub failures: Vec<FailureRow>,
    /// Open-model lag.
    pub lag: Lag,
    /// Capacity search result.
    pub capacity: Option<CapacityResult>,
    /// Thresholds.
    pub thresholds: Vec<ThresholdResult>,
    /// How the run was graded (phase, criteria, windows).
    #[serde(default)]
    pub grading: Rules,
    /// How the load generator itself fared (a saturated generator withholds the verdict).
    #[serde(default)]
    pub generator: GeneratorHealth,
    /// Graded success criteria.
    pub grades: Vec<GradeRow>,
    /// Overall grading verdict.
    pub verdict: String,
    /// 0 thresholds passed, 1 a threshold failed.
    pub exit_code: i32,
    /// One-second time series.
    pub timeseries: Vec<Point>,
    /// Server-side metrics.
    pub server: ServerSummary,
    /// The workers of a distributed run (absent for a local run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distributed: Option<DistributedReport>,
}

/// Writes summary.json, the CSVs and report.html into `dir`; returns the report's path.
pub fn write_all(dir: &Path, s: &Summary) -> Result<PathBuf, LoadError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| LoadError::io(format!("create {}", dir.display()), e))?;
    json::write(&dir.join("summary.json"), s)?;
    csv::write_stats(&dir.join("stats.csv"), s)?;
    csv::write_history(&dir.join("stats_history.csv"), s)?;
    csv::write_failures(&dir.join("failures.csv"), s)?;
    if let Some(d) = &s.distributed {
        csv::write_workers(&dir.join("workers.csv"), d)?;
    }
    let report = dir.join("report.html");
    std::fs::write(&report, html::render(s))
        .map_err(|e| LoadError::io(format!("write {}", report.display()), e))?;
    Ok(report)
}

/// Re-renders report.html and the CSVs of an existing run from its summary.json
/// (`pique load report RUN_DIR`); returns the report's path.
pub fn rerender(run_dir: &Path) -> Result<PathBuf, LoadError> {
    let dir = if run_dir.is_dir() {
        run_dir.to_path_buf()
    } else {
        run_dir
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    };
    let summary = json::read(run_dir)?;
    write_all(&dir, &summary)
}
