//! An in-process stand-in for the replica: every route the shipped plans use, answering fast
//! and right by default, with knobs to break it (slow routes, failing routes, a queued
//! checkout, and a `/metrics` page whose database, cache, CPU, memory, queue, PDF, e-mail and
//! Stripe figures are healthy or not). The grading tests run the full-size plans against it
//! under `--time-scale`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

/// How the stand-in behaves; change it between runs.
#[derive(Debug, Clone)]
pub struct Knobs {
    /// Added to every API response (not /metrics).
    pub latency: Duration,
    /// Added to POST /checkout/ only.
    pub checkout_latency: Duration,
    /// Every n-th API request answers 500 (0 = never).
    pub fail_every: u64,
    /// Requests in flight above which the API answers 503 (0 = no limit).
    pub max_in_flight: u64,
    /// POST /checkout/ answers 202 and the status must be polled (the queue strategy).
    pub queued: bool,
    /// How long a queued checkout stays `processing`.
    pub queue_delay: Duration,
    /// /metrics: mean database query time.
    pub db_query: Duration,
    /// /metrics: cache hits per miss.
    pub cache_hits_per_miss: u64,
    /// /metrics: CPU used by the API process, in cores.
    pub cpu_cores: f64,
    /// /metrics: resident memory growth per second, as a share of 100 MB.
    pub rss_growth_per_s: f64,
    /// /metrics: jobs waiting.
    pub queue_depth: u64,
    /// /metrics: PDF render time.
    pub pdf_time: Duration,
    /// /metrics: wait from enqueue to start of jobs.
    pub queue_wait: Duration,
    /// /metrics: e-mail attempts failing, per hundred.
    pub email_failures_per_100: u64,
    /// /metrics: Stripe calls timing out, per hundred.
    pub stripe_timeouts_per_100: u64,
    /// /metrics: database connections in use out of 20.
    pub db_pool_in_use: u64,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            latency: Duration::from_millis(2),
            checkout_latency: Duration::ZERO,
            fail_every: 0,
            max_in_flight: 0,
            queued: false,
            queue_delay: Duration::from_millis(150),
            db_query: Duration::from_millis(4),
            cache_hits_per_miss: 9,
            cpu_cores: 0.2,
            rss_growth_per_s: 0.0,
            queue_depth: 1,
            pdf_time: Duration::from_millis(300),
            queue_wait: Duration::from_millis(40),
            email_failures_per_100: 0,
            stripe_timeouts_per_100: 0,
            db_pool_in_use: 4,
        }
    }
}

pub struct StandIn {
    pub addr: SocketAddr,
    pub knobs: Arc<Mutex<Knobs>>,
    state: Arc<Inner>,
}

struct Inner {
    knobs: Arc<Mutex<Knobs>>,
    started: Instant,
    requests: AtomicU64,
    in_flight: AtomicU64,
    checkouts: AtomicU64,
    paid: AtomicU64,
    queued: Mutex<HashMap<u64, Instant>>,
    /// Prometheus counters accumulated as the API works.
    db_queries: AtomicU64,
    db_query_us: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    scraped: AtomicBool,
}

impl StandIn {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set(&self, f: impl FnOnce(&mut Knobs)) {
        f(&mut self.knobs.lock().unwrap());
    }

    /// Checkouts completed with a payment (POST /success/).
    pub fn paid(&self) -> u64 {
        self.state.paid.load(Ordering::Relaxed)
    }
}

type S = State<Arc<Inner>>;

const SHOWS: u64 = 40;

fn show(id: u64) -> Value {
    json!({
        "id": id,
        "slug": format!("show-{id}"),
        "title": format!("Show {id}"),
        "start_time": "2030-01-01T20:00:00Z",
        "tickets": [
            {"id": id * 10, "price": "25.00", "is_donation_based": false},
            {"id": id * 10 + 1, "price": "5.00", "is_donation_based": true}
        ]
    })
}

/// Latency, failures and the in-flight limit, around every API route.
async fn behave(State(s): S, req: Request, next: Next) -> Response {
    let knobs = s.knobs.lock().unwrap().clone();
    let n = s.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let in_flight = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let checkout = req.method() == "POST" && req.uri().path() == "/checkout/";
    // Every API request reads the database once and the cache once.
    s.db_queries.fetch_add(1, Ordering::Relaxed);
    s.db_query_us.fetch_add(
        u64::try_from(knobs.db_query.as_micros()).unwrap_or(0),
        Ordering::Relaxed,
    );
    if n % (knobs.cache_hits_per_miss + 1) == 0 {
        s.cache_misses.fetch_add(1, Ordering::Relaxed);
    } else {
        s.cache_hits.fetch_add(1, Ordering::Relaxed);
    }
    let mut delay = knobs.latency;
    if checkout {
        delay += knobs.checkout_latency;
    }
    tokio::time::sleep(delay).await;
    let response = if knobs.max_in_flight > 0 && in_flight > knobs.max_in_flight {
        (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response()
    } else if knobs.fail_every > 0 && n % knobs.fail_every == 0 {
        (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response()
    } else {
        next.run(req).await
    };
    s.in_flight.fetch_sub(1, Ordering::SeqCst);
    response
}

async fn shows() -> Json<Value> {
    Json(Value::Array((1..=SHOWS).map(show).collect()))
}

async fn show_detail(Path(id): Path<u64>) -> Response {
    if (1..=SHOWS).contains(&id) {
        Json(show(id)).into_response()
    } else {
        (StatusCode::NOT_FOUND, Json(json!({"detail": "Not found."}))).into_response()
    }
}

async fn list(Path(what): Path<String>) -> Json<Value> {
    Json(json!([{"id": 1, "name": format!("{what} 1")}, {"id": 2, "name": format!("{what} 2")}]))
}

async fn login() -> Json<Value> {
    Json(json!({"token": "t0k3n"}))
}

fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "Token t0k3n")
}

async fn portal(headers: HeaderMap) -> Response {
    if authorized(&headers) {
        Json(json!([show(1)])).into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({"detail": "Authentication credentials were not provided."})),
        )
            .into_response()
    }
}

async fn balance(headers: HeaderMap) -> Response {
    if authorized(&headers) {
        Json(json!({"available": [{"amount": 0, "currency": "usd"}]})).into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({"detail": "Authentication credentials were not provided."})),
        )
            .into_response()
    }
}

async fn validate_promo() -> Json<Value> {
    Json(json!({"valid": true, "discount": "10.00"}))
}

/// Like the replica: tier `10 * show` belongs to the show; anything else is a 400.
async fn checkout(State(s): S, Json(body): Json<Value>) -> Response {
    let show = body["show_id"].as_u64().unwrap_or(0);
    let ticket = body["tickets"][0]["ticket_id"].as_u64().unwrap_or(0);
    // Like the replica's fixtures, tier 1 also belongs to show 1 (the sample Locustfile's id).
    let tier_of_show = ticket / 10 == show || (ticket == 1 && show == 1);
    if show == 0 || !tier_of_show || body["order_email"].as_str().is_none() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"tickets": ["Invalid ticket."]})),
        )
            .into_response();
    }
    let id = s.checkouts.fetch_add(1, Ordering::Relaxed) + 1;
    if s.knobs.lock().unwrap().queued {
        s.queued.lock().unwrap().insert(id, Instant::now());
        return (
            StatusCode::ACCEPTED,
            Json(json!({"status": "processing", "checkout_id": id.to_string()})),
        )
            .into_response();
    }
    (
        StatusCode::CREATED,
        Json(json!({"order_id": id, "session_id": format!("cs_{id}"), "url": "http://pay"})),
    )
        .into_response()
}

async fn checkout_status(State(s): S, Path(id): Path<u64>) -> Response {
    let delay = s.knobs.lock().unwrap().queue_delay;
    let Some(at) = s.queued.lock().unwrap().get(&id).copied() else {
        return (StatusCode::NOT_FOUND, Json(json!({"detail": "Not found."}))).into_response();
    };
    let body = if at.elapsed() < delay {
        json!({"status": "processing", "checkout_id": id.to_string()})
    } else {
        json!({"status": "completed", "checkout_id": id.to_string(), "session_id": format!("cs_{id}")})
    };
    Json(body).into_response()
}

async fn complete_payment(Path(id): Path<String>) -> StatusCode {
    if id.starts_with("cs_") {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn success(State(s): S, Json(body): Json<Value>) -> Response {
    if body["session_id"]
        .as_str()
        .is_some_and(|id| id.starts_with("cs_"))
    {
        s.paid.fetch_add(1, Ordering::Relaxed);
        Json(json!({"status": "paid"})).into_response()
    } else {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"detail": "bad session"})),
        )
            .into_response()
    }
}

/// A Prometheus page in the replica's names, from the knobs and the work done so far.
async fn metrics(State(s): S) -> String {
    s.scraped.store(true, Ordering::Relaxed);
    let k = s.knobs.lock().unwrap().clone();
    let up = s.started.elapsed().as_secs_f64();
    let paid = s.paid.load(Ordering::Relaxed);
    let queries = s.db_queries.load(Ordering::Relaxed);
    let query_s = s.db_query_us.load(Ordering::Relaxed) as f64 / 1e6;
    let rss = 100e6 * (1.0 + k.rss_growth_per_s * up);
    // Each paid order: one PDF, one e-mail (attempts fail per the knob), one Stripe call.
    let email_failed = paid * k.email_failures_per_100 / 100;
    let stripe_timeouts = paid * k.stripe_timeouts_per_100 / 100;
    let hist = |name: &str, labels: &str, n: u64, value: Duration| {
        let v = value.as_secs_f64();
        let mut out = String::new();
        for le in [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0] {
            let count = if v <= le { n } else { 0 };
            out.push_str(&format!("{name}_bucket{{{labels}le=\"{le}\"}} {count}\n"));
        }
        out.push_str(&format!("{name}_bucket{{{labels}le=\"+Inf\"}} {n}\n"));
        out.push_str(&format!("{name}_sum{{{labels}}} {}\n", v * n as f64));
        out.push_str(&format!("{name}_count{{{labels}}} {n}\n"));
        out
    };
    let mut text = format!(
        "process_cpu_seconds_total {cpu}\n\
         process_resident_memory_bytes {rss}\n\
         pique_db_query_duration_seconds_sum {query_s}\n\
         pique_db_query_duration_seconds_count {queries}\n\
         pique_cache_hits_total {hits}\n\
         pique_cache_misses_total {misses}\n\
         pique_db_pool_connections{{state=\"in_use\"}} {pool}\n\
         pique_db_pool_connections{{state=\"idle\"}} {idle}\n\
         pique_db_pool_max 20\n\
         pique_queue_depth{{queue=\"pdf\"}} {depth}\n\
         pique_queue_depth{{queue=\"email\"}} 0\n\
         pique_emails_sent_total {sent}\n\
         pique_jobs_retried_total{{queue=\"email\"}} {email_failed}\n\
         pique_stripe_errors_total{{op=\"create_session\",kind=\"timeout\"}} {stripe_timeouts}\n",
        cpu = k.cpu_cores * up,
        hits = s.cache_hits.load(Ordering::Relaxed),
        misses = s.cache_misses.load(Ordering::Relaxed),
        pool = k.db_pool_in_use,
        idle = 20 - k.db_pool_in_use.min(20),
        depth = k.queue_depth,
        sent = paid - email_failed,
    );
    text.push_str(&hist("pique_pdf_duration_seconds", "", paid, k.pdf_time));
    text.push_str(&hist(
        "pique_job_queue_wait_seconds",
        "queue=\"pdf\",",
        paid,
        k.queue_wait,
    ));
    text.push_str(&hist(
        "pique_stripe_request_duration_seconds",
        "op=\"create_session\",",
        s.checkouts.load(Ordering::Relaxed),
        Duration::from_millis(30),
    ));
    text
}

pub async fn start() -> StandIn {
    let knobs = Arc::new(Mutex::new(Knobs::default()));
    let state = Arc::new(Inner {
        knobs: knobs.clone(),
        started: Instant::now(),
        requests: AtomicU64::new(0),
        in_flight: AtomicU64::new(0),
        checkouts: AtomicU64::new(0),
        paid: AtomicU64::new(0),
        queued: Mutex::new(HashMap::new()),
        db_queries: AtomicU64::new(0),
        db_query_us: AtomicU64::new(0),
        cache_hits: AtomicU64::new(0),
        cache_misses: AtomicU64::new(0),
        scraped: AtomicBool::new(false),
    });
    let api = Router::new()
        .route("/api/v1/shows/", get(shows))
        .route("/api/v1/shows/{id}/", get(show_detail))
        .route("/api/v1/featured-shows/", get(shows))
        .route("/api/v1/{what}/", get(list))
        .route("/api/v1/portal/shows/", get(portal))
        .route("/api/v1/producers/stripe-balance/", get(balance))
        .route("/auth/login/", post(login))
        .route("/validate-promo/", post(validate_promo))
        .route("/checkout/", post(checkout))
        .route("/checkout/status/{id}/", get(checkout_status))
        .route("/success/", post(success))
        .layer(axum::middleware::from_fn_with_state(state.clone(), behave));
    // stripe-sim's completion endpoint and the metrics page are not the API under test.
    let app = api
        .route("/_sim/sessions/{id}/complete", post(complete_payment))
        .route("/metrics", get(metrics))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    StandIn { addr, knobs, state }
}
