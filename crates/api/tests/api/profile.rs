//! The real app under a Gunicorn profile: the model caps throughput as it says, prices a
//! cached read by what the cache did, and restarts workers after `max_requests`. Timing
//! assertions are lower bounds the model guarantees (it can only make requests slower) plus
//! generous upper bounds, so they hold on a busy machine.

use std::time::{Duration, Instant};

use crate::support::{TestApp, TestResult, show};

/// Writes a profile file for this test and returns its path (kept alive by the guard).
fn profile_file(text: &str) -> Result<(tempfile::TempDir, String), std::io::Error> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("test-profile.toml");
    std::fs::write(&path, text)?;
    let path = path.to_string_lossy().into_owned();
    Ok((dir, path))
}

#[tokio::test]
async fn one_worker_serves_no_faster_than_its_interpreter_lock_allows() -> TestResult {
    let (_dir, path) = profile_file(
        r#"
        name = "test-cap"
        [gunicorn]
        workers = 1
        threads = 2
        max_requests = 10
        restart_secs = 0.2
        [[routes]]
        path = "*"
        cpu = { p50_ms = 20 }
        "#,
    )?;
    let app = TestApp::spawn(&[("PIQUE_PROFILE", path.as_str())]).await?;
    let id = show(&app.pool, "capped").await?;
    let url = app.url(&format!("/api/v1/shows/{id}/"));
    let started = Instant::now();
    let clients = (0..8).map(|_| {
        let (client, url) = (app.client.clone(), url.clone());
        tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..5 {
                let resp = client.get(&url).send().await?;
                let close = resp
                    .headers()
                    .get("connection")
                    .is_some_and(|v| v == "close");
                seen.push((resp.status().as_u16(), close));
                resp.bytes().await?;
            }
            Ok::<_, reqwest::Error>(seen)
        })
    });
    let mut responses = Vec::new();
    for client in futures::future::join_all(clients).await {
        responses.extend(client??);
    }
    let elapsed = started.elapsed();
    assert_eq!(responses.len(), 40);
    assert!(
        responses.iter().all(|(status, _)| *status == 200),
        "{responses:?}"
    );
    // 40 x 20 ms under one lock, plus at least two 200 ms restarts that the rest waited for:
    // a worker life takes its 10th request and at most the 7 already queued behind it.
    assert!(
        elapsed >= Duration::from_millis(1200),
        "40 requests in {elapsed:?}: faster than one interpreter lock allows"
    );
    assert!(elapsed < Duration::from_secs(8), "{elapsed:?}");
    // A retiring worker closes the connections of the responses it still sends.
    let closed = responses.iter().filter(|(_, close)| *close).count();
    assert!((2..=24).contains(&closed), "{closed} connections closed");

    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        metrics
            .contains(r#"pique_profile_info{profile="test-cap",model="gunicorn gthread 1x2"} 1"#),
        "the server reports its profile"
    );
    assert!(metrics.contains(r#"pique_profile_worker_restarts_total{reason="max_requests"}"#));
    app.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn a_cached_read_costs_what_the_cache_did() -> TestResult {
    let (_dir, path) = profile_file(
        r#"
        name = "test-cache"
        [gunicorn]
        workers = 1
        threads = 1
        [[routes]]
        path = "/api/v1/shows/"
        cache = "miss"
        cpu = { p50_ms = 1500 }
        [[routes]]
        path = "/api/v1/shows/"
        cache = "hit"
        cpu = { p50_ms = 1 }
        "#,
    )?;
    let app = TestApp::spawn(&[("PIQUE_PROFILE", path.as_str())]).await?;
    show(&app.pool, "cached").await?;
    let time = |query: &'static str| {
        let (client, url) = (
            app.client.clone(),
            app.url(&format!("/api/v1/shows/{query}")),
        );
        async move {
            let started = Instant::now();
            let resp = client.get(url).send().await?;
            let cache = resp
                .headers()
                .get("x-cache")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            resp.bytes().await?;
            Ok::<_, reqwest::Error>((cache, started.elapsed()))
        }
    };
    let (cache, miss) = time("?city=Austin").await?;
    assert_eq!(cache, "miss");
    assert!(miss >= Duration::from_millis(1500), "{miss:?}");
    let (cache, hit) = time("?city=Austin").await?;
    assert!(cache.starts_with("hit"), "{cache}");
    assert!(
        hit < Duration::from_millis(1500),
        "a hit priced as a miss: {hit:?}"
    );
    app.cleanup().await;
    Ok(())
}
