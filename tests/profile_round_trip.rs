//! The calibration round trip in one process: an app behind the Gunicorn model of a known
//! profile, `calibrate` against it, and the fitted profile predicts what the known one does
//! within 30 % (the goal for a profile calibrated on a real deployment). The app answers in
//! microseconds, so the model alone decides its timing: robust on a busy machine.

// Test code: a failed unwrap is a failed test (helpers included, not only #[test] fns).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use axum::{
    Router,
    extract::{RawQuery, Request},
    http::HeaderMap,
    middleware::Next,
    routing::get,
};
use pique_api::middleware::gunicorn::Model;
use pique_core::profile::{CacheState, Profile};
use pique_load::calibrate::{self, CalibrateArgs};

const SOURCE: &str = r#"
name = "source"
[gunicorn]
workers = 1
threads = 2
max_requests = 150
restart_secs = 0.6
cores = 2
[[routes]]
path = "/api/v1/shows/{id}/"
cpu = { p50_ms = 4, p99_ms = 8 }
io = { p50_ms = 2, p99_ms = 4 }
[[routes]]
path = "/api/v1/shows/"
cache = "hit"
cpu = { p50_ms = 6, p99_ms = 10 }
io = { p50_ms = 1 }
[[routes]]
path = "/api/v1/shows/"
cache = "miss"
cpu = { p50_ms = 30, p99_ms = 50 }
io = { p50_ms = 6 }
[[routes]]
path = "*"
cpu = { p50_ms = 3 }
io = { p50_ms = 2 }
"#;

/// The show list, cached unless a filter makes it new, as the replica says in `x-cache`.
async fn list(RawQuery(query): RawQuery) -> (HeaderMap, &'static str) {
    let mut headers = HeaderMap::new();
    let cache = if query.is_some() { "miss" } else { "hit-local" };
    headers.insert("x-cache", cache.parse().expect("header"));
    (headers, r#"[{"id":1},{"id":2}]"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_fitted_to_the_model_predicts_what_the_model_does() {
    let source = Profile::from_toml(SOURCE, "source").expect("valid");
    let model = Model::new(&source).expect("a model");
    let app = Router::new()
        .route("/api/v1/shows/", get(list))
        .route("/api/v1/shows/{id}/", get(|| async { r#"{"id":1}"# }))
        .route("/api/v1/{other}/", get(|| async { "[]" }))
        .layer(axum::middleware::from_fn(
            move |req: Request, next: Next| model.clone().handle(req, next),
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().expect("temp dir");
    let args = CalibrateArgs {
        host: format!("http://{addr}"),
        out: dir.path().join("fitted.toml"),
        name: None,
        workers: 1,
        threads: 2,
        cores: Some(2),
        worker_class: "gthread".into(),
        worker_connections: 100,
        backlog: 2048,
        timeout: 60.0,
        max_requests: 150,
        max_requests_jitter: 0,
        checkout_strategy: None,
        level_duration: Duration::from_millis(1500),
        max_requests_per_level: 5000,
    };
    let fitted = calibrate::calibrate(&args, &|line| eprintln!("{line}"))
        .await
        .expect("calibrates")
        .profile;

    let rate = |p: &Profile, route: &str, cache: CacheState| {
        let g = p.gunicorn.as_ref().expect("model");
        g.saturated_throughput(p.cost("GET", route, cache).expect("priced"))
    };
    for (route, cache) in [
        ("/api/v1/shows/{id}/", CacheState::Any),
        ("/api/v1/shows/", CacheState::Hit),
        ("/api/v1/shows/", CacheState::Miss),
        ("/api/v1/venues/", CacheState::Any),
    ] {
        let (want, got) = (rate(&source, route, cache), rate(&fitted, route, cache));
        assert!(
            (got / want - 1.0).abs() <= 0.3,
            "{route} {cache:?}: source {want:.1} req/s, fitted {got:.1}"
        );
    }
    let restart = fitted.gunicorn.as_ref().map_or(0.0, |g| g.restart_secs);
    assert!(
        (0.42..=0.9).contains(&restart),
        "restart pause fitted as {restart} s"
    );
}
