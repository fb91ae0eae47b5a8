//! Watching a run while it goes.
//!
//! A run tells its [`Observers`] when it starts, every second, at every scrape of the server
//! side, whenever the state of its workers changes (a distributed run) and when it ends. The web
//! UI's live state and the Prometheus exporter are observers; the terminal display is not (it
//! is simpler, and a run without observers pays nothing for them).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::engine::CapacityResult;
use crate::error::LoadError;
use crate::judge::Judge;
use crate::run::RunOutcome;
use crate::scrape::ServerSummary;
use crate::stats::{Key, Point, Stats};

/// How a run's users come about, which decides whether they can be changed while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    /// Users follow stages (Locust, k6): can be steered to any count.
    Closed,
    /// Iterations arrive on a schedule: the users are a cap on concurrency, which can change.
    Open,
    /// A capacity search adds users itself: not steerable.
    Capacity,
}

/// What a run is, told to observers as it starts.
#[derive(Debug, Clone)]
pub struct RunStarted {
    /// Plan name.
    pub plan: String,
    /// Plan description.
    pub description: String,
    /// File the plan came from.
    pub origin: String,
    /// Target base URL.
    pub host: String,
    /// The load shape in words.
    pub shape: String,
    /// The users model.
    pub model: Model,
    /// The most users the shape asks for (the cap, for the open model).
    pub target_users: u32,
    /// The spawn rate of the first stage, if any.
    pub spawn_rate: Option<f64>,
    /// How long the run lasts unless stopped earlier (shape or `run_time`, whichever is shorter).
    pub limit: Duration,
    /// Where the outputs will be written.
    pub run_dir: PathBuf,
    /// Start, UTC.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// Whether workers on other machines generate the load (a distributed run).
    pub distributed: bool,
    /// The statistics keys, as [`Stats::keys`].
    pub keys: Vec<Key>,
    /// Grades and thresholds as the end of the run will compute them.
    pub judge: Arc<Judge>,
}

/// One closed second of the run.
pub struct Second<'a> {
    /// The second's point (users, rates, percentiles, totals).
    pub point: &'a Point,
    /// The run's statistics (clone the `Arc` to read them later, off the engine's task).
    pub stats: &'a Arc<Stats>,
    /// The capacity search so far, for capacity plans.
    pub capacity: Option<&'a CapacityResult>,
}

/// The state of one load worker of a distributed run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerStatus {
    /// The worker's name (host and process).
    pub name: String,
    /// Users it runs now.
    pub users: u32,
    /// Requests it completed.
    pub requests: u64,
    /// Of which failed.
    pub failures: u64,
    /// CPU it uses, in cores.
    pub cpu_cores: f64,
    /// When the leader last heard from it, RFC 3339 UTC.
    pub last_seen: String,
    /// `running`, `ready`, `stopped`, or `lost` (missed its heartbeats).
    pub state: String,
}

/// Something that watches runs. Every method has an empty default, so an observer implements
/// only what it needs. Calls come from the run's tasks: keep them short (hand long work, such
/// as grading, to a task of your own).
pub trait Observer: Send + Sync {
    /// The run is about to start sending load.
    fn started(&self, _run: &RunStarted) {}
    /// A second closed.
    fn second(&self, _second: &Second<'_>) {}
    /// The server side was scraped; `server` is the summary so far (its `series` ends with the
    /// newest sample).
    fn server(&self, _server: &ServerSummary) {}
    /// The workers of a distributed run changed.
    fn workers(&self, _workers: &[WorkerStatus]) {}
    /// The run ended: its outputs are written (`Ok`) or it failed.
    fn finished(&self, _outcome: Result<&RunOutcome, &LoadError>) {}
}

/// The observers of a run (cheap to clone; empty by default).
#[derive(Clone, Default)]
pub struct Observers(Vec<Arc<dyn Observer>>);

impl std::fmt::Debug for Observers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Observers({})", self.0.len())
    }
}

impl Observers {
    /// Adds an observer.
    pub fn add(&mut self, observer: Arc<dyn Observer>) {
        self.0.push(observer);
    }

    /// With `observer` added.
    pub fn with(mut self, observer: Arc<dyn Observer>) -> Self {
        self.add(observer);
        self
    }

    /// Whether nobody watches.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Observer for Observers {
    fn started(&self, run: &RunStarted) {
        self.0.iter().for_each(|o| o.started(run));
    }
    fn second(&self, second: &Second<'_>) {
        self.0.iter().for_each(|o| o.second(second));
    }
    fn server(&self, server: &ServerSummary) {
        self.0.iter().for_each(|o| o.server(server));
    }
    fn workers(&self, workers: &[WorkerStatus]) {
        self.0.iter().for_each(|o| o.workers(workers));
    }
    fn finished(&self, outcome: Result<&RunOutcome, &LoadError>) {
        self.0.iter().for_each(|o| o.finished(outcome));
    }
}
