//! Slow and idle clients cannot starve the API: connections that send no complete header
//! block are closed after the header read timeout (while a normal request still answers),
//! and a client that downloads an export slowly holds no pooled database connection.
//!
//! `cargo test -p pique-api --test slow_clients -- --nocapture` prints what it saw.

mod portal_support;
mod support;

use std::time::{Duration, Instant};

use portal_support::*;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection; true if it did within `within`.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // hyper may answer 408 before closing; keep reading until the close.
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn idle_and_trickling_connections_are_closed_and_a_normal_request_still_answers() -> TestResult
{
    const IDLE: usize = 150;
    const LIMIT: &str = "64";
    let app = TestApp::spawn(&[
        ("PIQUE_HEADER_READ_TIMEOUT_SECS", "1"),
        ("PIQUE_MAX_CONNECTIONS", LIMIT),
    ])
    .await?;
    let addr = app.base_url.trim_start_matches("http://").to_string();
    // Half of them send nothing; the other half start a request and never finish its headers
    // (slowloris), more than the connection limit in all.
    let mut idle = Vec::with_capacity(IDLE);
    for i in 0..IDLE {
        let mut s = TcpStream::connect(&addr).await?;
        if i % 2 == 1 {
            s.write_all(b"GET /health/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                .await?;
        }
        idle.push(s);
    }
    let started = Instant::now();
    let resp = app.client.get(app.url("/api/v1/shows/")).send().await?;
    let answered_after = started.elapsed();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<serde_json::Value>().await?,
        serde_json::json!([])
    );
    // Every idle connection is closed by the server (those beyond the limit once accepted).
    let mut closed = 0;
    for s in &mut idle {
        if closed_by_server(s, Duration::from_secs(20)).await {
            closed += 1;
        }
    }
    println!(
        "{IDLE} idle connections, limit {LIMIT}, header timeout 1 s: normal request answered after \
         {answered_after:?}; {closed} closed by the server after {:?}",
        started.elapsed()
    );
    assert_eq!(
        closed, IDLE,
        "every idle connection is closed by the server"
    );
    // And the server still serves afterwards.
    let resp = app.client.get(app.url("/api/v1/shows/")).send().await?;
    assert_eq!(resp.status(), 200);
    app.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn a_connection_that_sent_its_headers_in_time_is_not_cut_by_the_timeout() -> TestResult {
    let app = TestApp::spawn(&[("PIQUE_HEADER_READ_TIMEOUT_SECS", "1")]).await?;
    let addr = app.base_url.trim_start_matches("http://").to_string();
    let mut s = TcpStream::connect(&addr).await?;
    // Headers trickle in over 0.6 s (inside the timeout), then the answer comes.
    for part in [
        &b"GET /api/v1/shows/ HTTP/1.1\r\n"[..],
        b"Host: 127.0.0.1\r\n",
        b"Connection: close\r\n\r\n",
    ] {
        s.write_all(part).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer)).await??;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("[]"), "{answer}");
    app.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn slow_export_downloads_hold_no_database_connection() -> TestResult {
    const ORDERS: i64 = 40_000;
    const SLOW_CLIENTS: usize = 4;
    // A pool of two: before spooling, two stalled downloads took the whole pool.
    let app = TestApp::spawn(&[("PIQUE_DB_MAX_CONNECTIONS", "2")]).await?;
    let producer_id = producer(&app.pool, "exporter").await?;
    let venue_id = venue(&app.pool).await?;
    let show = show_of(&app.pool, producer_id, venue_id, "arena", true).await?;
    tier_of(&app.pool, show, 1_000_000, "25.00").await?;
    sqlx::query(
        "INSERT INTO orders (uuid, show_id, order_email, order_name, status, subtotal, total, expires_at, paid_at, created_at) \
         SELECT gen_random_uuid(), $1, 'buyer' || g || '@example.com', 'A buyer with a long enough name ' || g, \
                'paid', 50, 50, now(), now(), now() - make_interval(secs => g) \
         FROM generate_series(1, $2) g",
    )
    .bind(show)
    .bind(ORDERS)
    .execute(&app.pool)
    .await?;
    let token = login(&app, "exporter").await?;
    let auth = format!("Token {token}");

    // Each slow client reads the first chunk, then stops reading (its socket buffers fill).
    let mut stalled = Vec::new();
    for _ in 0..SLOW_CLIENTS {
        let client = reqwest::Client::new();
        let mut resp = client
            .get(app.url("/api/v1/portal/orders/export/"))
            .header("Authorization", &auth)
            .send()
            .await?;
        assert_eq!(resp.status(), 200);
        let first = resp.chunk().await?.unwrap_or_default();
        assert!(first.starts_with(b"order_id,"));
        stalled.push((client, resp, first));
    }
    // While they stall, the pool is free again: no connection in use...
    let started = Instant::now();
    loop {
        let in_use = app.state.pool.size() as usize - app.state.pool.num_idle();
        if in_use == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{in_use} pooled connection(s) still held by stalled downloads"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // ...and requests that need the database answer.
    for _ in 0..5 {
        let resp = app
            .client
            .get(app.url("/api/v1/portal/orders/?page_size=1"))
            .header("Authorization", &auth)
            .send()
            .await?;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.json::<serde_json::Value>().await?["count"], ORDERS);
    }
    println!(
        "{SLOW_CLIENTS} stalled exports of {ORDERS} orders: pool free after {:?}",
        started.elapsed()
    );
    // The stalled downloads then complete, whole.
    for (_client, mut resp, first) in stalled {
        let mut lines = first.iter().filter(|b| **b == b'\n').count();
        let mut last = first.last().copied();
        while let Some(chunk) = resp.chunk().await? {
            lines += chunk.iter().filter(|b| **b == b'\n').count();
            last = chunk.last().copied().or(last);
        }
        assert_eq!(lines as i64, ORDERS + 1, "header + one line per order");
        assert_eq!(last, Some(b'\n'));
    }
    app.cleanup().await;
    Ok(())
}
