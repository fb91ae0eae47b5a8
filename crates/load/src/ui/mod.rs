//! The web UI (Locust's :8089, and more): a new-run form over every plan in `loadtests/`,
//! Start and Stop, users and spawn rate changed while the run goes, a sortable statistics
//! table, charts, failures, skipped steps, the server side, the criteria graded so far,
//! workers, and the run's files.
//!
//! The run's state lives here, in a [`LiveRun`]; browsers get it over server-sent events
//! (`GET /api/events`: a `snapshot` on connect, then one small event per change), so a reload
//! or a second browser shows the whole run. Every asset is compiled into the binary (uPlot,
//! MIT, is vendored in `assets/vendor/`): the UI works with no network.
//!
//! Two ways to serve it: [`serve_ui`] (`pique load ui PLAN`: runs start from the form) and
//! [`run_with_ui`] (`pique load run PLAN --ui`: one run, watched and steered from the page).

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::{Stream, StreamExt, stream};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::duration::{format_duration, parse_duration};
use crate::engine::Steer;
use crate::error::LoadError;
use crate::live::{Event, LiveRun, RUN_FILES, State as LiveState};
use crate::observe::{Model, Observers};
use crate::plan::{Plan, check_host};
use crate::run::{
    RunControl, RunOptions, RunOutcome, describe_shape, first_spawn_rate, model_of,
    run_plan_controlled,
};

/// Where the UI finds plans and what every run starts from.
#[derive(Debug, Clone)]
pub struct UiConfig {
    /// The plan given on the command line; selected when the page opens.
    pub plan_path: PathBuf,
    /// Directory whose plans (and `smoke/` plans) the form offers, e.g. `loadtests`: TOML
    /// plans and Artillery configs.
    pub plans_dir: PathBuf,
    /// Defaults of every run (host, users, output directory, scraping ...).
    pub opts: RunOptions,
    /// Observers of every run besides the UI's own (the Prometheus exporter).
    pub observers: Observers,
}

#[derive(Default)]
struct Inner {
    /// Whether a run is going (set by Start, cleared when the run's task ends).
    running: bool,
    control: Option<RunControl>,
    /// The run started from the page (awaited on Ctrl-C so its outputs get written).
    task: Option<JoinHandle<Result<RunOutcome, LoadError>>>,
    model: Option<Model>,
}

struct Ui {
    cfg: UiConfig,
    live: LiveRun,
    /// `pique load run --ui`: the one run of the process, no new-run form.
    attached: bool,
    inner: Mutex<Inner>,
    /// Ends the event streams so the server can shut down.
    shutdown: CancellationToken,
}

impl Ui {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn running(&self) -> bool {
        self.lock().running
    }
}

type S = State<Arc<Ui>>;

/// A DRF-style error: `{"detail": "..."}`.
fn detail(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({ "detail": msg.into() }))).into_response()
}

/// A plan the form offers.
#[derive(Debug, Clone, Serialize)]
struct PlanEntry {
    /// Path as the server reads it; what Start sends back.
    id: String,
    name: String,
    description: String,
    host: Option<String>,
    shape: String,
    model: Option<Model>,
    users: Option<u32>,
    spawn_rate: Option<f64>,
    run_time: Option<String>,
    /// Why the plan cannot run (it does not parse).
    error: Option<String>,
}

fn entry(path: &Path) -> PlanEntry {
    let id = path.to_string_lossy().into_owned();
    match Plan::load(path) {
        Ok(p) => PlanEntry {
            id,
            name: p.name.clone(),
            description: p.description.clone(),
            host: p.host.clone(),
            shape: describe_shape(&p),
            model: Some(model_of(&p)),
            users: Some(p.target_users()),
            spawn_rate: first_spawn_rate(&p),
            run_time: p.run_time.map(|d| format_duration(d.0)),
            error: None,
        },
        Err(e) => PlanEntry {
            id,
            name: path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            description: String::new(),
            host: None,
            shape: String::new(),
            model: None,
            users: None,
            spawn_rate: None,
            run_time: None,
            error: Some(e.to_string()),
        },
    }
}

/// The command line's plan first, then every plan (`*.toml`, or an Artillery `*.yml`) of the
/// plans directory and of its `smoke/` directory, by path.
fn list_plans(cfg: &UiConfig) -> Vec<PlanEntry> {
    let mut paths: Vec<PathBuf> = [cfg.plans_dir.clone(), cfg.plans_dir.join("smoke")]
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .is_some_and(|x| x == "toml" || x == "yml" || x == "yaml")
        })
        .collect();
    paths.sort();
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    paths.retain(|p| !same(p, &cfg.plan_path));
    std::iter::once(cfg.plan_path.clone())
        .chain(paths)
        .map(|p| entry(&p))
        .collect()
}

#[derive(Serialize)]
struct Defaults {
    host: Option<String>,
    users: Option<u32>,
    spawn_rate: Option<f64>,
    run_time: Option<String>,
}

async fn plans(State(ui): S) -> Response {
    let o = &ui.cfg.opts;
    let plans = if ui.attached {
        vec![entry(&ui.cfg.plan_path)]
    } else {
        list_plans(&ui.cfg)
    };
    Json(json!({
        "attached": ui.attached,
        "plans_dir": ui.cfg.plans_dir,
        "selected": ui.cfg.plan_path,
        "defaults": Defaults {
            host: (!o.hosts.is_empty()).then(|| o.hosts.join(", ")),
            users: o.users,
            spawn_rate: o.spawn_rate,
            run_time: o.run_time.map(format_duration),
        },
        "plans": plans,
    }))
    .into_response()
}

/// What Start sends: empty fields keep the plan's (and the command line's) values.
#[derive(Debug, Default, Deserialize)]
struct StartReq {
    plan: Option<String>,
    host: Option<String>,
    users: Option<u32>,
    spawn_rate: Option<f64>,
    run_time: Option<String>,
}

/// The plan and options a Start asks for, checked before anything runs.
fn prepare(ui: &Ui, req: StartReq) -> Result<(Plan, RunOptions), String> {
    let path = match req.plan.filter(|p| !p.trim().is_empty()) {
        None => ui.cfg.plan_path.clone(),
        Some(id) => {
            // Only plans the form offers: the page cannot make the server read other files.
            let offered = list_plans(&ui.cfg);
            let found = offered.iter().find(|p| p.id == id);
            PathBuf::from(&found.ok_or_else(|| format!("no plan `{id}` here"))?.id)
        }
    };
    let plan = Plan::load(&path).map_err(|e| e.to_string())?;
    let mut opts = ui.cfg.opts.clone();
    opts.quiet = true;
    // Several hosts (API replicas without a balancer) are separated by commas or spaces.
    let hosts: Vec<String> = req
        .host
        .iter()
        .flat_map(|h| h.split([',', ' ']))
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(String::from)
        .collect();
    if !hosts.is_empty() {
        for h in &hosts {
            check_host(h)?;
        }
        opts.hosts = hosts;
    }
    if opts.hosts.is_empty() && plan.host.is_none() {
        return Err("no host: fill in Host (the plan has none)".into());
    }
    match req.users {
        Some(0) => return Err("users must be at least 1".into()),
        Some(u) => opts.users = Some(u),
        None => {}
    }
    match req.spawn_rate {
        Some(r) if !(r > 0.0 && r.is_finite()) => {
            return Err("spawn rate must be a positive number".into());
        }
        Some(r) => opts.spawn_rate = Some(r),
        None => {}
    }
    if let Some(t) = req.run_time.filter(|t| !t.trim().is_empty()) {
        let d = parse_duration(&t)?;
        if d.is_zero() {
            return Err("run time must be positive".into());
        }
        opts.run_time = Some(d);
    }
    Ok((plan, opts))
}

type RunTask = JoinHandle<Result<RunOutcome, LoadError>>;

/// A run is already going.
struct Busy;

/// Starts `plan` with `opts`, unless a run is going.
fn start_run(ui: &Arc<Ui>, plan: Plan, opts: RunOptions) -> Result<RunTask, Busy> {
    let mut g = ui.lock();
    if g.running {
        return Err(Busy);
    }
    let control = RunControl {
        observers: ui.cfg.observers.clone().with(Arc::new(ui.live.clone())),
        ..RunControl::default()
    };
    g.running = true;
    g.model = Some(model_of(&plan));
    g.control = Some(control.clone());
    let ui = ui.clone();
    Ok(tokio::spawn(async move {
        let outcome = run_plan_controlled(&plan, &opts, &control).await;
        ui.lock().running = false;
        outcome
    }))
}

async fn start(State(ui): S, body: Option<Json<StartReq>>) -> Response {
    if ui.attached {
        return detail(
            StatusCode::CONFLICT,
            "this UI watches one run (pique load run --ui); use pique load ui for more",
        );
    }
    let req = body.map(|Json(b)| b).unwrap_or_default();
    let (plan, opts) = match prepare(&ui, req) {
        Ok(x) => x,
        Err(msg) => return detail(StatusCode::BAD_REQUEST, msg),
    };
    match start_run(&ui, plan, opts) {
        Ok(task) => {
            ui.lock().task = Some(task);
            (StatusCode::ACCEPTED, Json(json!({ "status": "started" }))).into_response()
        }
        Err(Busy) => detail(StatusCode::CONFLICT, "a run is in progress"),
    }
}

async fn stop(State(ui): S) -> Response {
    if !ui.running() {
        return detail(StatusCode::CONFLICT, "no run in progress");
    }
    if let Some(c) = &ui.lock().control {
        c.stop.cancel();
    }
    ui.live.stopping();
    (StatusCode::ACCEPTED, Json(json!({ "status": "stopping" }))).into_response()
}

/// What the users form sends.
#[derive(Debug, Deserialize)]
struct UsersReq {
    users: u32,
    spawn_rate: Option<f64>,
}

async fn users(State(ui): S, Json(req): Json<UsersReq>) -> Response {
    if !ui.running() {
        return detail(StatusCode::CONFLICT, "no run in progress");
    }
    if req.users == 0 {
        return detail(StatusCode::BAD_REQUEST, "users must be at least 1");
    }
    if let Some(r) = req.spawn_rate
        && !(r > 0.0 && r.is_finite())
    {
        return detail(
            StatusCode::BAD_REQUEST,
            "spawn rate must be a positive number",
        );
    }
    let g = ui.lock();
    if g.model == Some(Model::Capacity) {
        return detail(
            StatusCode::CONFLICT,
            "a capacity search sets its own users; stop it and start a stages plan",
        );
    }
    let steer = Steer {
        users: req.users,
        spawn_rate: req.spawn_rate,
    };
    if let Some(c) = &g.control {
        c.steering.set(steer);
    }
    drop(g);
    ui.live.steered(steer);
    Json(json!({ "users": steer.users, "spawn_rate": steer.spawn_rate })).into_response()
}

async fn state(State(ui): S) -> Json<LiveState> {
    Json(ui.live.state())
}

fn sse(ev: &Event) -> SseEvent {
    SseEvent::default()
        .id(ev.seq.to_string())
        .event(ev.kind)
        .data(ev.data.as_ref())
}

/// Server-sent events: a `snapshot` first, then every change. A client too slow to keep up
/// with the changes gets a fresh snapshot instead of the ones it missed.
async fn events(State(ui): S) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let (snapshot, rx) = ui.live.subscribe();
    let live = ui.live.clone();
    let rest = stream::unfold((rx, live), |(mut rx, live)| async move {
        match rx.recv().await {
            Ok(ev) => Some((sse(&ev), (rx, live))),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                let (snap, fresh) = live.subscribe();
                Some((sse(&snap), (fresh, live)))
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
        }
    });
    let stream = stream::once(async move { sse(&snapshot) })
        .chain(rest)
        .take_until(ui.shutdown.clone().cancelled_owned())
        .map(Ok);
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

async fn file(State(ui): S, UrlPath(name): UrlPath<String>) -> Response {
    let Some(known) = RUN_FILES.iter().find(|f| **f == name) else {
        return detail(StatusCode::NOT_FOUND, "no such file");
    };
    let Some(dir) = ui.live.finished_dir(&ui.cfg.opts.out_dir) else {
        return detail(StatusCode::NOT_FOUND, "no finished run yet");
    };
    let bytes = match tokio::fs::read(dir.join(known)).await {
        Ok(b) => b,
        Err(e) => return detail(StatusCode::NOT_FOUND, format!("{known}: {e}")),
    };
    let (ctype, inline) = match known.rsplit('.').next() {
        Some("html") => ("text/html; charset=utf-8", true),
        Some("csv") => ("text/csv; charset=utf-8", false),
        _ => ("application/json", false),
    };
    let mut resp = ([(header::CONTENT_TYPE, ctype)], bytes).into_response();
    if !inline {
        let run = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let value = format!("attachment; filename=\"{run}-{known}\"");
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
        }
    }
    resp
}

/// An embedded asset.
fn asset(ctype: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, ctype),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

const INDEX_HTML: &str = include_str!("../../assets/ui/index.html");
const APP_JS: &str = include_str!("../../assets/ui/app.js");
const APP_CSS: &str = include_str!("../../assets/ui/app.css");
const UPLOT_JS: &str = include_str!("../../assets/vendor/uplot/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../../assets/vendor/uplot/uPlot.min.css");

fn router(ui: Arc<Ui>) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/assets/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/assets/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        )
        .route(
            "/assets/uPlot.iife.min.js",
            get(|| async { asset("text/javascript; charset=utf-8", UPLOT_JS) }),
        )
        .route(
            "/assets/uPlot.min.css",
            get(|| async { asset("text/css; charset=utf-8", UPLOT_CSS) }),
        )
        .route("/api/plans", get(plans))
        .route("/api/state", get(state))
        .route("/api/events", get(events))
        .route("/api/start", post(start))
        .route("/api/stop", post(stop))
        .route("/api/users", post(users))
        .route("/files/{name}", get(file))
        .route(
            "/report",
            get(|| async { Redirect::to("/files/report.html") }),
        )
        .with_state(ui)
}

fn ui(cfg: UiConfig, attached: bool) -> Arc<Ui> {
    Arc::new(Ui {
        cfg,
        live: LiveRun::new(),
        attached,
        inner: Mutex::new(Inner::default()),
        shutdown: CancellationToken::new(),
    })
}

/// The UI's router for `cfg`, with runs started from the page (what [`serve_ui`] serves; for
/// tests and embedding).
pub fn app(cfg: UiConfig) -> Router {
    router(ui(cfg, false))
}

/// Serves the UI on `listener` until Ctrl-C (`pique load ui`, default :8089). A run still going
/// then stops like on Ctrl-C in a terminal: its outputs are written before this returns.
pub async fn serve_ui(listener: tokio::net::TcpListener, cfg: UiConfig) -> Result<(), LoadError> {
    let ui = ui(cfg, false);
    let on_stop = ui.clone();
    axum::serve(listener, router(ui.clone()))
        .with_graceful_shutdown(async move {
            let _ = tokio::signal::ctrl_c().await;
            on_stop.shutdown.cancel();
        })
        .await
        .map_err(|e| LoadError::io("web UI", e))?;
    let task = ui.lock().task.take();
    if let Some(task) = task {
        // The engine saw the same Ctrl-C and is writing the outputs.
        let _ = task.await;
    }
    Ok(())
}

/// Runs `plan` with `cfg.opts` while serving its view on `listener` (`pique load run --ui`):
/// the page shows the run, Stop and the users form work, and the server ends with the run.
pub async fn run_with_ui(
    listener: tokio::net::TcpListener,
    plan: Plan,
    cfg: UiConfig,
) -> Result<RunOutcome, LoadError> {
    let opts = cfg.opts.clone();
    let ui = ui(cfg, true);
    let shutdown = ui.shutdown.clone();
    let server = tokio::spawn(
        axum::serve(listener, router(ui.clone()))
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .into_future(),
    );
    let outcome = match start_run(&ui, plan, opts) {
        Ok(task) => task
            .await
            .unwrap_or_else(|e| Err(LoadError::Internal(format!("run task: {e}")))),
        Err(_) => Err(LoadError::Internal("the run did not start".into())),
    };
    ui.shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    outcome
}
