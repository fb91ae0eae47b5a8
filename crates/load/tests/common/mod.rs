//! A local axum server for engine tests: counted routes, injected latency, a stallable route,
//! a small show/checkout API that verifies captured values, and optional /metrics.

#![allow(dead_code)]

pub mod standin;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

#[derive(Default)]
pub struct TestState {
    pub hits: Mutex<HashMap<String, u64>>,
    pub dist_counter: AtomicU64,
    pub inflight: AtomicU64,
    pub stall: tokio::sync::RwLock<()>,
    pub bad_captures: AtomicU64,
    pub good_checkouts: AtomicU64,
    pub good_successes: AtomicU64,
    pub metrics: AtomicBool,
    /// Queued checkouts: id -> when it was accepted.
    pub queued: Mutex<HashMap<u64, std::time::Instant>>,
    pub queued_ids: AtomicU64,
}

impl TestState {
    pub fn hits(&self, route: &str) -> u64 {
        self.hits.lock().unwrap().get(route).copied().unwrap_or(0)
    }
    fn hit(&self, route: &str) {
        *self
            .hits
            .lock()
            .unwrap()
            .entry(route.to_string())
            .or_insert(0) += 1;
    }
}

type S = State<Arc<TestState>>;

async fn counted(State(s): S, Path(route): Path<String>) -> &'static str {
    s.hit(&route);
    "ok"
}

/// 90 % of requests take ~5 ms, every 10th ~50 ms.
async fn dist(State(s): S) -> &'static str {
    let n = s.dist_counter.fetch_add(1, Ordering::Relaxed);
    let ms = if n % 10 == 9 { 50 } else { 5 };
    tokio::time::sleep(Duration::from_millis(ms)).await;
    "ok"
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_millis(100)).await;
    "slow"
}

async fn stallable(State(s): S) -> &'static str {
    let _g = s.stall.read().await;
    "ok"
}

/// Fails with 500 when more than 4 requests are in flight (for capacity search).
async fn limited(State(s): S) -> StatusCode {
    let n = s.inflight.fetch_add(1, Ordering::SeqCst) + 1;
    tokio::time::sleep(Duration::from_millis(20)).await;
    s.inflight.fetch_sub(1, Ordering::SeqCst);
    if n > 4 {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

async fn shows() -> Json<Value> {
    Json(json!([{"id": 11, "title": "A"}, {"id": 22, "title": "B"}, {"id": 33, "title": "C"}]))
}

async fn show(State(s): S, Path(id): Path<u64>) -> Json<Value> {
    s.hit("show");
    Json(json!({"id": id, "tickets": [
        {"id": id * 10, "is_donation_based": false, "price": "25.00"},
        {"id": id * 10 + 1, "is_donation_based": true, "price": "5.00"}
    ]}))
}

async fn checkout(State(s): S, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    let show = body["show_id"].as_u64().unwrap_or(0);
    let ticket = body["tickets"][0]["ticket_id"].as_u64().unwrap_or(0);
    if show == 0 || ticket != show * 10 {
        s.bad_captures.fetch_add(1, Ordering::Relaxed);
        return (StatusCode::BAD_REQUEST, Json(json!({"detail": "bad ids"})));
    }
    s.good_checkouts.fetch_add(1, Ordering::Relaxed);
    (
        StatusCode::OK,
        Json(json!({"order_id": 1, "session_id": format!("cs_{show}")})),
    )
}

async fn success(State(s): S, Json(body): Json<Value>) -> StatusCode {
    match body["session_id"].as_str() {
        Some(id) if id.starts_with("cs_") => {
            s.good_successes.fetch_add(1, Ordering::Relaxed);
            StatusCode::OK
        }
        _ => {
            s.bad_captures.fetch_add(1, Ordering::Relaxed);
            StatusCode::BAD_REQUEST
        }
    }
}

/// Like the replica's queue strategy: 202 `{"status": "processing", "checkout_id"}`.
async fn queued_checkout(State(s): S) -> (StatusCode, Json<Value>) {
    let id = s.queued_ids.fetch_add(1, Ordering::Relaxed) + 1;
    s.queued
        .lock()
        .unwrap()
        .insert(id, std::time::Instant::now());
    (
        StatusCode::ACCEPTED,
        Json(json!({"status": "processing", "checkout_id": id})),
    )
}

/// Processing for 300 ms after the accept, then completed with a session (odd ids) or failed
/// (even ids, when `?fail_even=1`).
async fn queued_status(
    State(s): S,
    Path(id): Path<u64>,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
) -> (StatusCode, Json<Value>) {
    let Some(at) = s.queued.lock().unwrap().get(&id).copied() else {
        return (StatusCode::NOT_FOUND, Json(json!({"detail": "Not found."})));
    };
    let body = if at.elapsed() < Duration::from_millis(300) {
        json!({"status": "processing", "checkout_id": id})
    } else if id % 2 == 0 && q.contains_key("fail_even") {
        json!({"status": "failed", "checkout_id": id, "http_status": 409})
    } else {
        json!({"status": "completed", "checkout_id": id, "session_id": format!("cs_{id}")})
    };
    (StatusCode::OK, Json(body))
}

async fn metrics(State(s): S) -> (StatusCode, String) {
    if !s.metrics.load(Ordering::Relaxed) {
        return (StatusCode::NOT_FOUND, "not found".into());
    }
    let text = "# TYPE pique_queue_depth gauge\npique_queue_depth{queue=\"pdf\"} 3\n\
        pique_db_pool_connections{state=\"in_use\"} 2\npique_db_pool_connections{state=\"idle\"} 8\n\
        pique_db_pool_max 10\n\
        pique_profile_info{profile=\"django-railway\",model=\"gunicorn gthread 1x2\"} 1\n";
    (StatusCode::OK, text.into())
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub state: Arc<TestState>,
}

impl TestServer {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

pub async fn start() -> TestServer {
    start_on("127.0.0.1:0").await
}

/// [`start`] on another address (e.g. `[::1]:0`).
pub async fn start_on(bind: &str) -> TestServer {
    let state = Arc::new(TestState::default());
    let app = Router::new()
        .route("/c/{route}", get(counted))
        .route("/dist", get(dist))
        .route("/slow", get(slow))
        .route("/stallable", get(stallable))
        .route("/limited", get(limited))
        .route("/shows/", get(shows))
        .route("/shows/{id}/", get(show))
        .route("/checkout/", post(checkout))
        .route("/success/", post(success))
        .route("/queued/", post(queued_checkout))
        .route("/queued/status/{id}/", get(queued_status))
        .route("/metrics", get(metrics))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    TestServer { addr, state }
}

/// Options for a quiet run against `server`, writing into `dir`.
pub fn opts(server: &TestServer, dir: &std::path::Path) -> pique_load::RunOptions {
    opts_for(server.url(), dir)
}

/// Options for a quiet run against any `host`, writing into `dir`.
pub fn opts_for(host: String, dir: &std::path::Path) -> pique_load::RunOptions {
    pique_load::RunOptions {
        hosts: vec![host],
        out_dir: dir.to_path_buf(),
        quiet: true,
        ..Default::default()
    }
}

/// One class of `users` users requesting `path` (request name = `name`) every 2 ms until
/// `max_requests`, 10 s at most.
pub fn steady_plan(name: &str, users: u32, max_requests: u64, path: &str) -> pique_load::Plan {
    plan(&format!(
        r#"
name = "{name}"
max_requests = {max_requests}
run_time = "10s"
[[stages]]
duration = "10s"
users = {users}
spawn_rate = 1000
[[users]]
name = "U"
wait = {{ constant = 0.002 }}
[[users.tasks]]
steps = [{{ path = "{path}", name = "{name}" }}]
"#
    ))
}

pub fn plan(src: &str) -> pique_load::Plan {
    pique_load::Plan::from_toml_str(src, "test.toml").unwrap_or_else(|e| panic!("{e}"))
}
