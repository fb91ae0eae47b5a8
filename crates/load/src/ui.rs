//! The web UI (Locust's :8089): choose users, spawn rate, host and run time, start and stop,
//! watch live numbers and charts, open the report when the run ends. One page, inline JS and
//! canvas, no network beyond this server.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::duration::parse_duration;
use crate::error::LoadError;
use crate::plan::Plan;
use crate::run::{RunControl, RunOptions, run_plan_controlled};
use crate::stats::Point;

/// The outcome of the last run started from the UI.
#[derive(Debug, Clone, Serialize)]
pub struct LastRun {
    /// report.html of the run (served at `/report`).
    pub report: Option<PathBuf>,
    /// Grading verdict.
    pub verdict: Option<String>,
    /// Threshold exit code.
    pub exit_code: Option<i32>,
    /// Why the run could not complete.
    pub error: Option<String>,
}

#[derive(Default)]
struct Inner {
    control: Option<RunControl>,
    running: bool,
    last: Option<LastRun>,
}

struct Ui {
    plan: Plan,
    opts: RunOptions,
    inner: Mutex<Inner>,
}

impl Ui {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What the Start button sends.
#[derive(Debug, Deserialize)]
struct StartReq {
    users: Option<u32>,
    spawn_rate: Option<f64>,
    host: Option<String>,
    run_time: Option<String>,
}

#[derive(Serialize)]
struct Status {
    plan: String,
    running: bool,
    point: Option<Point>,
    last: Option<LastRun>,
}

type S = State<Arc<Ui>>;

async fn start(State(ui): S, Json(req): Json<StartReq>) -> Response {
    let mut opts = ui.opts.clone();
    opts.quiet = true;
    if let Some(u) = req.users.filter(|u| *u > 0) {
        opts.users = Some(u);
    }
    if let Some(r) = req.spawn_rate.filter(|r| *r > 0.0) {
        opts.spawn_rate = Some(r);
    }
    if let Some(h) = req.host.filter(|h| !h.trim().is_empty()) {
        opts.host = Some(h.trim().to_string());
    }
    if let Some(t) = req.run_time.filter(|t| !t.trim().is_empty()) {
        match parse_duration(&t) {
            Ok(d) => opts.run_time = Some(d),
            Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
        }
    }
    let control = RunControl::default();
    {
        let mut g = ui.lock();
        if g.running {
            return (StatusCode::CONFLICT, "a run is in progress").into_response();
        }
        g.running = true;
        g.control = Some(control.clone());
    }
    let ui2 = ui.clone();
    tokio::spawn(async move {
        let result = run_plan_controlled(&ui2.plan, &opts, &control).await;
        let last = match result {
            Ok(o) => LastRun {
                report: Some(o.report_path),
                verdict: Some(o.verdict),
                exit_code: Some(o.exit_code),
                error: None,
            },
            Err(e) => LastRun {
                report: None,
                verdict: None,
                exit_code: Some(2),
                error: Some(e.to_string()),
            },
        };
        let mut g = ui2.lock();
        g.running = false;
        g.last = Some(last);
    });
    StatusCode::ACCEPTED.into_response()
}

async fn stop(State(ui): S) -> StatusCode {
    if let Some(c) = &ui.lock().control {
        c.stop.cancel();
    }
    StatusCode::NO_CONTENT
}

async fn status(State(ui): S) -> Json<Status> {
    let g = ui.lock();
    let point = g
        .control
        .as_ref()
        .and_then(|c| c.live.lock().unwrap_or_else(|e| e.into_inner()).clone());
    Json(Status {
        plan: ui.plan.name.clone(),
        running: g.running,
        point,
        last: g.last.clone(),
    })
}

async fn report(State(ui): S) -> Response {
    let path = ui.lock().last.as_ref().and_then(|l| l.report.clone());
    match path.map(std::fs::read_to_string) {
        Some(Ok(html)) => {
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
        }
        _ => (StatusCode::NOT_FOUND, "no report yet").into_response(),
    }
}

/// The router of the UI for `plan`, with `opts` as defaults for every run.
pub fn router(plan: Plan, opts: RunOptions) -> Router {
    let ui = Arc::new(Ui {
        plan,
        opts,
        inner: Mutex::new(Inner::default()),
    });
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/api/start", post(start))
        .route("/api/stop", post(stop))
        .route("/api/status", get(status))
        .route("/report", get(report))
        .with_state(ui)
}

/// Serves the UI on `listener` until the process ends (`pique load ui`, default :8089).
pub async fn serve_ui(
    listener: tokio::net::TcpListener,
    plan: Plan,
    opts: RunOptions,
) -> Result<(), LoadError> {
    axum::serve(listener, router(plan, opts))
        .await
        .map_err(|e| LoadError::io("web UI", e))
}

const PAGE: &str = r##"<!doctype html><html lang=en><head><meta charset=utf-8><title>pique-load</title>
<style>body{font:14px system-ui,sans-serif;margin:24px;max-width:1000px}input{width:9em;margin-right:8px}
.n{display:inline-block;margin:8px 18px 8px 0}.n b{display:block;font-size:22px}canvas{border:1px solid #ddd;width:100%;height:180px}</style></head>
<body><h1>pique-load <span id=plan></span></h1>
<p>Host <input id=host placeholder="(plan default)"> Users <input id=users type=number min=1>
Spawn rate <input id=rate type=number step=any> Run time <input id=rt placeholder="e.g. 5m">
<button onclick=start()>Start</button> <button onclick=stopRun()>Stop</button></p>
<div><span class=n>State<b id=state>-</b></span><span class=n>Users<b id=u>-</b></span><span class=n>RPS<b id=rps>-</b></span>
<span class=n>Failures<b id=f>-</b></span><span class=n>p50 ms<b id=p50>-</b></span><span class=n>p95 ms<b id=p95>-</b></span><span class=n>p99 ms<b id=p99>-</b></span></div>
<p id=last></p><canvas id=c width=1000 height=180></canvas>
<script>
const $=id=>document.getElementById(id);let hist=[];
async function start(){hist=[];const b={users:+$('users').value||null,spawn_rate:+$('rate').value||null,host:$('host').value||null,run_time:$('rt').value||null};
const r=await fetch('/api/start',{method:'POST',headers:{'content-type':'application/json'},body:JSON.stringify(b)});if(!r.ok)alert(await r.text());}
async function stopRun(){await fetch('/api/stop',{method:'POST'});}
function draw(){const c=$('c'),x=c.getContext('2d');x.clearRect(0,0,c.width,c.height);if(hist.length<2)return;
const series=[['rps','#2563eb'],['p95','#dc2626']];for(const [k,col] of series){const m=Math.max(...hist.map(h=>h[k]),1e-9);
x.strokeStyle=col;x.beginPath();hist.forEach((h,i)=>{const px=i*c.width/(hist.length-1),py=c.height-5-(h[k]/m)*(c.height-20);i?x.lineTo(px,py):x.moveTo(px,py)});x.stroke();
x.fillStyle=col;x.fillText(k+' (max '+m.toFixed(1)+')',10,k=='rps'?12:26);}}
async function poll(){try{const s=await (await fetch('/api/status')).json();$('plan').textContent=s.plan;$('state').textContent=s.running?'running':'idle';
const p=s.point;if(p){$('u').textContent=p.users;$('rps').textContent=p.rps.toFixed(1);$('f').textContent=p.total_failures;
$('p50').textContent=p.percentiles_ms[0].toFixed(1);$('p95').textContent=p.percentiles_ms[5].toFixed(1);$('p99').textContent=p.percentiles_ms[7].toFixed(1);
if(s.running&&(!hist.length||hist[hist.length-1].t!==p.t))hist.push({t:p.t,rps:p.rps,p95:p.percentiles_ms[5]});}
const l=s.last;$('last').innerHTML=l?(l.error?'Error: '+l.error:'Last run: '+l.verdict+' (exit '+l.exit_code+') &middot; <a href=/report target=_blank>report</a>'):'';draw();}catch(e){}}
setInterval(poll,1000);poll();
</script></body></html>"##;
