//! `pique profile calibrate` against a local server that records every request: it only
//! ever reads, and it writes a profile that parses.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method};
use axum::response::IntoResponse;
use pique_core::profile::Profile;
use pique_load::calibrate::{self, CalibrateArgs};

/// What the server saw: method, path and query, body length.
type Seen = Arc<Mutex<Vec<(Method, String, usize)>>>;

/// Answers every path: a show list (a bare array) for the list, an object for the rest, with
/// `x-cache` on the list as the replica sets it.
async fn record(State(seen): State<Seen>, request: Request) -> impl IntoResponse {
    let method = request.method().clone();
    let uri = request.uri().to_string();
    let body: Bytes = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    seen.lock().unwrap().push((method, uri.clone(), body.len()));
    tokio::time::sleep(Duration::from_millis(2)).await;
    let mut headers = HeaderMap::new();
    if uri.starts_with("/api/v1/shows/?") {
        headers.insert("x-cache", "miss".parse().unwrap());
    } else if uri == "/api/v1/shows/" {
        headers.insert("x-cache", "hit-local".parse().unwrap());
    }
    let body = if uri.starts_with("/api/v1/shows/") && !uri.starts_with("/api/v1/shows/1") {
        r#"[{"id":1,"title":"a"},{"id":2,"title":"b"}]"#
    } else {
        r#"{"id":1}"#
    };
    (headers, body)
}

fn args(host: String, out: std::path::PathBuf) -> CalibrateArgs {
    CalibrateArgs {
        host,
        out,
        name: None,
        workers: 1,
        threads: 2,
        cores: None,
        worker_class: "gthread".into(),
        worker_connections: 100,
        backlog: 2048,
        timeout: 60.0,
        max_requests: 500,
        max_requests_jitter: 50,
        checkout_strategy: Some("redis-lock".into()),
        level_duration: Duration::from_millis(150),
        max_requests_per_level: 40,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calibrate_only_reads_and_writes_a_valid_profile() {
    let seen: Seen = Arc::default();
    let app = Router::new().fallback(record).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("profiles").join("measured.toml");
    let result = calibrate::calibrate(&args(format!("http://{addr}"), out.clone()), &|_| {})
        .await
        .unwrap();

    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() > 100, "measured something: {}", seen.len());
    // Never a write: every request a bodiless GET, and only under the public API.
    for (method, uri, body) in &seen {
        assert_eq!(method, Method::GET, "{method} {uri}");
        assert_eq!(*body, 0, "{uri} carried a body");
        assert!(uri.starts_with("/api/v1/"), "{uri}");
    }
    // Cold-cache reads carry a filter nobody else sends, each one different.
    let cold: Vec<&String> = seen
        .iter()
        .map(|(_, uri, _)| uri)
        .filter(|u| u.contains("start_time__gt="))
        .collect();
    assert!(!cold.is_empty());
    let mut unique = cold.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), cold.len());

    // The file is a profile the server accepts, named after the file.
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text, result.text);
    let profile = Profile::resolve(out.to_str().unwrap()).unwrap();
    assert_eq!(profile.name, "measured");
    assert_eq!(profile.model_summary(), "gunicorn gthread 1x2");
    assert!(
        profile
            .cost("GET", "/api/v1/shows/{id}/", Default::default())
            .is_some()
    );
    assert!(text.contains("# GET /api/v1/shows/ [cache miss]"), "{text}");
    assert!(text.contains("checkout_strategy = \"redis-lock\""));
}

#[tokio::test]
async fn a_target_that_is_not_the_api_is_refused_before_measuring() {
    let app = Router::new().fallback(|| async { (axum::http::StatusCode::NOT_FOUND, "nope") });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.toml");
    let err = calibrate::calibrate(&args(format!("http://{addr}"), out.clone()), &|_| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
    assert!(!out.exists(), "nothing written");
}
