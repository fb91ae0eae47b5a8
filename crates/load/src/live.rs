//! The live state of a run, kept by the server (not the browser), so a reload or a second
//! browser shows the whole run: the per-second history, the per-request table, failures,
//! skipped steps, the server side, the criteria graded so far, the thresholds, the workers and,
//! once done, the run's files.
//!
//! [`LiveRun`] is an [`Observer`]. Every change is applied to the state and published as an
//! [`Event`]: a client first takes a [`LiveRun::subscribe`] snapshot, then applies the events
//! that follow (one `second` per second, a `server` per scrape, `grading` every few seconds).
//! Events carry JSON ready to send, serialized once whatever the number of clients.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use tokio::sync::broadcast;

use crate::duration::format_duration;
use crate::engine::{CapacityResult, Steer};
use crate::error::LoadError;
use crate::grade::GradeRow;
use crate::judge::{self, Judge};
use crate::observe::{Model, Observer, RunStarted, Second, WorkerStatus};
use crate::report::ThresholdResult;
use crate::run::RunOutcome;
use crate::scrape::{ServerSample, ServerSummary};
use crate::stats::{FailureRow, NotRun, Point, RequestStats, Stats};

/// How often the criteria and thresholds are graded while a run goes.
const GRADE_EVERY: f64 = 5.0;

/// The files of a finished run that may be downloaded, in the order the UI lists them.
pub const RUN_FILES: [&str; 5] = [
    "report.html",
    "stats.csv",
    "stats_history.csv",
    "failures.csv",
    "summary.json",
];

/// Where the run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// No run yet.
    #[default]
    Idle,
    /// Sending load.
    Running,
    /// Stop was asked; in-flight requests are finishing and the outputs are being written.
    Stopping,
    /// Ended; its files can be downloaded.
    Finished,
    /// Could not run, or failed while running.
    Failed,
}

/// The run as the UI's header shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RunView {
    /// A number that changes with every run this server started.
    pub number: u64,
    /// Plan name.
    pub plan: String,
    /// Plan description.
    pub description: String,
    /// Plan file.
    pub origin: String,
    /// Target.
    pub host: String,
    /// The shape in words.
    pub shape: String,
    /// Users model.
    pub model: Model,
    /// Most users the shape asks for.
    pub target_users: u32,
    /// First stage's spawn rate.
    pub spawn_rate: Option<f64>,
    /// Planned length, seconds.
    pub limit_s: f64,
    /// The planned length in words.
    pub limit: String,
    /// Start, RFC 3339.
    pub started_at: String,
    /// Run directory name (under the output directory).
    pub run_dir: String,
    /// Whether load workers on other machines generate the load.
    pub distributed: bool,
}

/// The per-second history, one array per column (what the charts plot).
#[derive(Debug, Clone, Default, Serialize)]
pub struct History {
    /// Seconds since the start.
    pub t: Vec<f64>,
    /// Users running.
    pub users: Vec<u32>,
    /// Requests per second.
    pub rps: Vec<f64>,
    /// Failures per second.
    pub fps: Vec<f64>,
    /// That second's median, ms.
    pub p50: Vec<f64>,
    /// That second's p95, ms.
    pub p95: Vec<f64>,
    /// That second's p99, ms.
    pub p99: Vec<f64>,
}

/// One second of [`History`].
#[derive(Debug, Clone, Copy, Serialize)]
pub struct HistoryPoint {
    /// Seconds since the start.
    pub t: f64,
    /// Users running.
    pub users: u32,
    /// Requests per second.
    pub rps: f64,
    /// Failures per second.
    pub fps: f64,
    /// Median, ms.
    pub p50: f64,
    /// p95, ms.
    pub p95: f64,
    /// p99, ms.
    pub p99: f64,
}

impl HistoryPoint {
    fn of(p: &Point) -> Self {
        Self {
            t: p.t,
            users: p.users,
            rps: p.rps,
            fps: p.errors_per_s,
            p50: p.pct(0.5),
            p95: p.pct(0.95),
            p99: p.pct(0.99),
        }
    }
}

impl History {
    fn push(&mut self, p: HistoryPoint) {
        self.t.push(p.t);
        self.users.push(p.users);
        self.rps.push(p.rps);
        self.fps.push(p.fps);
        self.p50.push(p.p50);
        self.p95.push(p.p95);
        self.p99.push(p.p99);
    }
}

/// A row of the statistics table: the totals so far and the last second's rates.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Totals so far (Locust's columns).
    #[serde(flatten)]
    pub stats: RequestStats,
    /// Requests per second in the last second.
    pub current_rps: f64,
    /// Failures per second in the last second.
    pub current_fps: f64,
}

/// The criteria graded so far and the thresholds' state.
#[derive(Debug, Clone, Serialize)]
pub struct Grading {
    /// When they were graded, seconds since the start.
    pub at_s: f64,
    /// Whether this is the run's final grading.
    pub last: bool,
    /// Every criterion's row.
    pub grades: Vec<GradeRow>,
    /// The verdict so far.
    pub verdict: String,
    /// Every threshold of the plan.
    pub thresholds: Vec<ThresholdResult>,
}

/// The server side as scraped so far.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerView {
    /// Sources that answered.
    pub sources: Vec<String>,
    /// Why a source is missing.
    pub notes: Vec<String>,
    /// Every sample so far.
    pub samples: Vec<ServerSample>,
}

/// How the run ended.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Why it ended (`load shape finished`, `stopped by the user` ...).
    pub stop_reason: Option<String>,
    /// The grading verdict.
    pub verdict: Option<String>,
    /// 0 thresholds held, 1 one failed, 2 the run failed.
    pub exit_code: i32,
    /// Why the run failed.
    pub error: Option<String>,
    /// Downloadable files (see [`RUN_FILES`]).
    pub files: Vec<String>,
}

/// Everything a client needs to draw the run (the `snapshot` event).
#[derive(Debug, Clone, Default, Serialize)]
pub struct State {
    /// Number of the last event applied.
    pub seq: u64,
    /// Where the run is.
    pub status: Status,
    /// The run (absent before the first).
    pub run: Option<RunView>,
    /// Users asked for with the UI, if any.
    pub steer: Option<Steer>,
    /// Seconds since the start at the last second.
    pub elapsed_s: f64,
    /// Per-second history.
    pub history: History,
    /// One row per request name.
    pub requests: Vec<Row>,
    /// The aggregated row.
    pub aggregated: Option<Row>,
    /// Failures grouped by request and error.
    pub failures: Vec<FailureRow>,
    /// Steps that did not send a request.
    pub not_run: Vec<NotRun>,
    /// The server side.
    pub server: ServerView,
    /// Graded so far (or finally).
    pub grading: Option<Grading>,
    /// The capacity search so far, for capacity plans.
    pub capacity: Option<CapacityResult>,
    /// Load workers of a distributed run.
    pub workers: Vec<WorkerStatus>,
    /// How the run ended.
    pub outcome: Option<Outcome>,
}

/// One change, ready to send: `kind` names it (`snapshot`, `second`, `server`, `grading`,
/// `status`, `workers`), `data` is its JSON.
#[derive(Debug, Clone)]
pub struct Event {
    /// Sequence number (a snapshot carries the number of the last event it includes).
    pub seq: u64,
    /// What changed.
    pub kind: &'static str,
    /// JSON.
    pub data: Arc<str>,
}

/// What the engine and grading need besides the serializable state.
#[derive(Default)]
struct Work {
    judge: Option<Arc<Judge>>,
    stats: Option<Arc<Stats>>,
    points: Vec<Point>,
    server: ServerSummary,
    last_graded_t: f64,
}

#[derive(Default)]
struct Inner {
    state: State,
    work: Work,
    runs: u64,
}

struct Shared {
    inner: Mutex<Inner>,
    events: broadcast::Sender<Event>,
    grading: AtomicBool,
}

/// The live state of the current (or last) run, shared by the UI's handlers and the run.
#[derive(Clone)]
pub struct LiveRun(Arc<Shared>);

impl Default for LiveRun {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Serialize)]
struct SecondDelta<'a> {
    point: HistoryPoint,
    elapsed_s: f64,
    requests: &'a [Row],
    aggregated: &'a Option<Row>,
    failures: &'a [FailureRow],
    not_run: &'a [NotRun],
    capacity: &'a Option<CapacityResult>,
}

#[derive(Serialize)]
struct ServerDelta<'a> {
    sources: &'a [String],
    notes: &'a [String],
    sample: Option<&'a ServerSample>,
}

#[derive(Serialize)]
struct StatusDelta<'a> {
    status: Status,
    run: &'a Option<RunView>,
    steer: &'a Option<Steer>,
    outcome: &'a Option<Outcome>,
}

impl LiveRun {
    /// An idle state.
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(256);
        LiveRun(Arc::new(Shared {
            inner: Mutex::new(Inner::default()),
            events,
            grading: AtomicBool::new(false),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The whole state now.
    pub fn state(&self) -> State {
        self.lock().state.clone()
    }

    /// The whole state as a `snapshot` event, and a receiver of every event after it.
    pub fn subscribe(&self) -> (Event, broadcast::Receiver<Event>) {
        let g = self.lock();
        // Subscribing under the lock: every event after the snapshot reaches the receiver.
        let rx = self.0.events.subscribe();
        (snapshot_event(&g.state), rx)
    }

    /// Publishes `kind` with `data` (serialized from the locked state) as the next event.
    fn publish(&self, g: &mut Inner, kind: &'static str, data: impl Serialize) {
        g.state.seq += 1;
        let json = serde_json::to_string(&data).unwrap_or_else(|_| "{}".into());
        let _ = self.0.events.send(Event {
            seq: g.state.seq,
            kind,
            data: json.into(),
        });
    }

    fn publish_snapshot(&self, g: &mut Inner) {
        g.state.seq += 1;
        let _ = self.0.events.send(snapshot_event(&g.state));
    }

    fn publish_status(&self, g: &mut Inner) {
        let s = &g.state;
        let json = serde_json::to_string(&StatusDelta {
            status: s.status,
            run: &s.run,
            steer: &s.steer,
            outcome: &s.outcome,
        })
        .unwrap_or_else(|_| "{}".into());
        g.state.seq += 1;
        let _ = self.0.events.send(Event {
            seq: g.state.seq,
            kind: "status",
            data: json.into(),
        });
    }

    /// Notes that Stop was asked (the run ends within seconds).
    pub fn stopping(&self) {
        let mut g = self.lock();
        if g.state.status == Status::Running {
            g.state.status = Status::Stopping;
            self.publish_status(&mut g);
        }
    }

    /// Notes the users asked for.
    pub fn steered(&self, steer: Steer) {
        let mut g = self.lock();
        g.state.steer = Some(steer);
        self.publish_status(&mut g);
    }

    /// A run that could not start (a plan or option error): shown as failed.
    pub fn failed_to_start(&self, error: &str) {
        let mut g = self.lock();
        g.state.status = Status::Failed;
        g.state.outcome = Some(Outcome {
            stop_reason: None,
            verdict: None,
            exit_code: 2,
            error: Some(error.to_string()),
            files: Vec::new(),
        });
        self.publish_status(&mut g);
    }

    /// The directory of the last finished run, if its files are there.
    pub fn finished_dir(&self, out_dir: &std::path::Path) -> Option<std::path::PathBuf> {
        let g = self.lock();
        let finished = g
            .state
            .outcome
            .as_ref()
            .is_some_and(|o| !o.files.is_empty());
        let run = g.state.run.as_ref()?;
        finished.then(|| out_dir.join(&run.run_dir))
    }

    /// Grades the data so far on a blocking thread, unless a grading is already under way.
    fn grade_soon(&self, g: &mut Inner, t: f64) {
        let (Some(judge), Some(stats)) = (g.work.judge.clone(), g.work.stats.clone()) else {
            return;
        };
        if t - g.work.last_graded_t < GRADE_EVERY || self.0.grading.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            self.0.grading.store(false, Ordering::Release);
            return;
        };
        g.work.last_graded_t = t;
        let points = g.work.points.clone();
        let mut server = g.work.server.clone();
        server.series = g.state.server.samples.clone();
        server.refresh_maxima();
        let capacity = g.state.capacity.clone();
        let run = g.runs;
        let live = self.clone();
        rt.spawn_blocking(move || {
            let table = stats.table(t);
            let grades = judge.grade(
                &stats,
                &table.aggregated,
                &table.methods,
                t,
                &points,
                &server,
                capacity.as_ref(),
            );
            let thresholds = judge.thresholds(&stats, &table.requests, t);
            let (verdict, _) = judge::verdict(&grades, &points);
            let grading = Grading {
                at_s: t,
                last: false,
                verdict,
                grades,
                thresholds,
            };
            let mut g = live.lock();
            // A late result must not replace the final grading or another run's.
            if g.runs == run && matches!(g.state.status, Status::Running | Status::Stopping) {
                g.state.grading = Some(grading.clone());
                live.publish(&mut g, "grading", &grading);
            }
            drop(g);
            live.0.grading.store(false, Ordering::Release);
        });
    }
}

fn snapshot_event(state: &State) -> Event {
    Event {
        seq: state.seq,
        kind: "snapshot",
        data: serde_json::to_string(state)
            .unwrap_or_else(|_| "{}".into())
            .into(),
    }
}

/// Table rows with the last second's rates, from the counts of the previous rows.
fn rows(now: Vec<RequestStats>, before: &[Row], dt: f64) -> Vec<Row> {
    now.into_iter()
        .map(|stats| {
            let prev = before
                .iter()
                .find(|r| r.stats.method == stats.method && r.stats.name == stats.name)
                .map_or((0, 0), |r| (r.stats.count, r.stats.failures));
            row(stats, prev, dt)
        })
        .collect()
}

fn row(stats: RequestStats, (count, failures): (u64, u64), dt: f64) -> Row {
    let dt = dt.max(1e-3);
    Row {
        current_rps: stats.count.saturating_sub(count) as f64 / dt,
        current_fps: stats.failures.saturating_sub(failures) as f64 / dt,
        stats,
    }
}

impl Observer for LiveRun {
    fn started(&self, run: &RunStarted) {
        let mut g = self.lock();
        g.runs += 1;
        let number = g.runs;
        g.state = State {
            seq: g.state.seq,
            status: Status::Running,
            run: Some(RunView {
                number,
                plan: run.plan.clone(),
                description: run.description.clone(),
                origin: run.origin.clone(),
                host: run.host.clone(),
                shape: run.shape.clone(),
                model: run.model,
                target_users: run.target_users,
                spawn_rate: run.spawn_rate,
                limit_s: run.limit.as_secs_f64(),
                limit: format_duration(run.limit),
                started_at: run
                    .started_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                run_dir: run
                    .run_dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                distributed: run.distributed,
            }),
            ..State::default()
        };
        g.work = Work {
            judge: Some(run.judge.clone()),
            ..Work::default()
        };
        self.publish_snapshot(&mut g);
    }

    fn second(&self, s: &Second<'_>) {
        let p = s.point;
        // The table is computed outside the state's lock: clients keep reading meanwhile.
        let table = s.stats.table(p.t);
        let not_run = s.stats.not_run();
        let mut g = self.lock();
        if g.state.status != Status::Running && g.state.status != Status::Stopping {
            return;
        }
        let dt = (p.t - g.state.elapsed_s).max(1e-3);
        let requests = rows(table.requests, &g.state.requests, dt);
        let prev_total = g
            .state
            .aggregated
            .as_ref()
            .map_or((0, 0), |r| (r.stats.count, r.stats.failures));
        g.state.requests = requests;
        g.state.aggregated = Some(row(table.aggregated, prev_total, dt));
        g.state.failures = table.failures;
        g.state.not_run = not_run;
        g.state.elapsed_s = p.t;
        g.state.capacity = s.capacity.cloned();
        let point = HistoryPoint::of(p);
        g.state.history.push(point);
        g.work.points.push(p.clone());
        g.work.stats = Some(s.stats.clone());
        let st = &g.state;
        let json = serde_json::to_string(&SecondDelta {
            point,
            elapsed_s: st.elapsed_s,
            requests: &st.requests,
            aggregated: &st.aggregated,
            failures: &st.failures,
            not_run: &st.not_run,
            capacity: &st.capacity,
        })
        .unwrap_or_else(|_| "{}".into());
        g.state.seq += 1;
        let _ = self.0.events.send(Event {
            seq: g.state.seq,
            kind: "second",
            data: json.into(),
        });
        self.grade_soon(&mut g, p.t);
    }

    fn server(&self, server: &ServerSummary) {
        let mut g = self.lock();
        if g.state.status != Status::Running && g.state.status != Status::Stopping {
            return;
        }
        let newest = server.series.last().filter(|s| {
            g.state
                .server
                .samples
                .last()
                .is_none_or(|last| s.t > last.t)
        });
        if let Some(s) = newest {
            g.state.server.samples.push(s.clone());
        }
        g.state.server.sources = server.sources.clone();
        g.state.server.notes = server.notes.clone();
        g.work.server = server.clone();
        let sv = &g.state.server;
        let json = serde_json::to_string(&ServerDelta {
            sources: &sv.sources,
            notes: &sv.notes,
            sample: newest.and(sv.samples.last()),
        })
        .unwrap_or_else(|_| "{}".into());
        g.state.seq += 1;
        let _ = self.0.events.send(Event {
            seq: g.state.seq,
            kind: "server",
            data: json.into(),
        });
    }

    fn workers(&self, workers: &[WorkerStatus]) {
        let mut g = self.lock();
        g.state.workers = workers.to_vec();
        self.publish(&mut g, "workers", workers);
    }

    fn finished(&self, outcome: Result<&RunOutcome, &LoadError>) {
        let mut g = self.lock();
        match outcome {
            Ok(o) => {
                let s = &o.summary;
                let mut history = History::default();
                s.timeseries
                    .iter()
                    .for_each(|p| history.push(HistoryPoint::of(p)));
                g.state.history = history;
                g.state.elapsed_s = s.settings.duration_s;
                let last = |r: &RequestStats| row(r.clone(), (r.count, r.failures), 1.0);
                g.state.requests = s.requests.iter().map(last).collect();
                g.state.aggregated = Some(last(&s.aggregated));
                g.state.failures = s.failures.clone();
                if let Some(stats) = g.work.stats.take() {
                    g.state.not_run = stats.not_run();
                }
                g.state.server = ServerView {
                    sources: s.server.sources.clone(),
                    notes: s.server.notes.clone(),
                    samples: s.server.series.clone(),
                };
                g.state.capacity = s.capacity.clone();
                g.state.grading = Some(Grading {
                    at_s: s.settings.duration_s,
                    last: true,
                    grades: s.grades.clone(),
                    verdict: s.verdict.clone(),
                    thresholds: s.thresholds.clone(),
                });
                let files = RUN_FILES
                    .iter()
                    .filter(|f| o.run_dir.join(f).is_file())
                    .map(|f| f.to_string())
                    .collect();
                g.state.status = Status::Finished;
                g.state.outcome = Some(Outcome {
                    stop_reason: Some(s.settings.stop_reason.clone()),
                    verdict: Some(o.verdict.clone()),
                    exit_code: o.exit_code,
                    error: None,
                    files,
                });
                debug_assert_eq!(judge::exit_code(&s.thresholds), o.exit_code);
            }
            Err(e) => {
                g.state.status = Status::Failed;
                g.state.outcome = Some(Outcome {
                    stop_reason: None,
                    verdict: None,
                    exit_code: 2,
                    error: Some(e.to_string()),
                    files: Vec::new(),
                });
            }
        }
        g.work = Work::default();
        self.publish_snapshot(&mut g);
    }
}
