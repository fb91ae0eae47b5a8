//! The orders CSV export streams: 100,000 orders come out as 100,001 lines, in many chunks,
//! the first long before the last, and the process's peak memory grows by far less than the
//! export's size (the server never holds the whole export).
//!
//! Figures: `cargo test -p pique-api --test portal_export -- --nocapture`.

// Test code: a failed unwrap is a failed test (helpers included, not only #[test] fns).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod portal_support;
mod support;

use std::time::Instant;

use portal_support::*;
use support::*;

const ORDERS: i64 = 100_000;

/// `VmRSS` or `VmHWM` of this process, in KiB (Linux).
fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resets `VmHWM` to the current RSS (Linux >= 4.0), so the peak measured is this test's.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

#[tokio::test]
async fn export_of_100k_orders_streams_in_flat_memory() -> TestResult {
    let app = TestApp::spawn(&[]).await?;
    let producer_id = producer(&app.pool, "bigshow").await?;
    let venue_id = venue(&app.pool).await?;
    let show = show_of(&app.pool, producer_id, venue_id, "stadium", true).await?;
    let ticket = tier_of(&app.pool, show, 1_000_000, "25.00").await?;
    let started = Instant::now();
    sqlx::query(
        "INSERT INTO orders (uuid, show_id, order_email, order_name, status, subtotal, total, expires_at, paid_at, created_at) \
         SELECT gen_random_uuid(), $1, 'buyer' || g || '@example.com', 'Buyer, \"No.\" ' || g, \
                CASE WHEN g % 10 = 0 THEN 'refunded' ELSE 'paid' END, 50, 50, now(), now(), \
                now() - make_interval(secs => g) \
         FROM generate_series(1, $2) g",
    )
    .bind(show)
    .bind(ORDERS)
    .execute(&app.pool)
    .await?;
    sqlx::query(
        "INSERT INTO order_lines (uuid, order_id, ticket_id, quantity, price_per_ticket, line_total) \
         SELECT gen_random_uuid(), id, $1, 2, 25, 50 FROM orders",
    )
    .bind(ticket)
    .execute(&app.pool)
    .await?;
    sqlx::query("ANALYZE").execute(&app.pool).await?;
    println!(
        "inserted {ORDERS} orders with lines in {:?}",
        started.elapsed()
    );
    let token = login(&app, "bigshow").await?;

    let rss_before = proc_status_kib("VmRSS:").unwrap_or(0);
    let peak_reset = reset_peak();
    let started = Instant::now();
    let mut resp = app
        .client
        .get(app.url("/api/v1/portal/orders/export/"))
        .header("Authorization", format!("Token {token}"))
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers().get("content-length").is_none(),
        "streamed, not a sized buffer"
    );
    // Read the body chunk by chunk, keeping only counters (the client must not be what holds
    // the export in memory either).
    let (mut bytes, mut lines, mut chunks) = (0usize, 0usize, 0usize);
    let mut first_chunk = None;
    let mut last_byte = 0u8;
    let mut sample = String::new();
    while let Some(chunk) = resp.chunk().await? {
        first_chunk.get_or_insert_with(|| started.elapsed());
        chunks += 1;
        bytes += chunk.len();
        lines += chunk.iter().filter(|b| **b == b'\n').count();
        if sample.len() < 400 {
            sample.push_str(&String::from_utf8_lossy(&chunk[..chunk.len().min(400)]));
        }
        if let Some(b) = chunk.last() {
            last_byte = *b;
        }
    }
    let elapsed = started.elapsed();
    let peak = proc_status_kib("VmHWM:").unwrap_or(0);
    let first_chunk = first_chunk.unwrap_or_default();
    let delta_kib = peak.saturating_sub(rss_before);
    println!(
        "export: {ORDERS} orders, {lines} lines, {:.1} MiB in {chunks} chunks; first chunk after {first_chunk:?}, \
         total {elapsed:?}; process RSS before {} MiB, peak during export {} MiB (delta {:.1} MiB, peak reset: {peak_reset})",
        bytes as f64 / 1_048_576.0,
        rss_before / 1024,
        peak / 1024,
        delta_kib as f64 / 1024.0,
    );
    assert_eq!(lines as i64, ORDERS + 1, "header + one line per order");
    assert_eq!(last_byte, b'\n', "complete last line");
    assert!(sample.starts_with("order_id,reference,"), "{sample}");
    assert!(
        sample.contains("\"Buyer, \"\"No.\"\" "),
        "quoted names: {sample}"
    );
    assert!(chunks > 100, "many chunks, not one buffer: {chunks}");
    assert!(
        first_chunk * 5 < elapsed,
        "first bytes long before the end: {first_chunk:?} of {elapsed:?}"
    );
    if peak_reset && rss_before > 0 {
        // The export is ~17 MiB of CSV and ~60 MiB as Rust structs; a buffering server would
        // blow well past this bound.
        assert!(
            delta_kib < 12 * 1024,
            "peak RSS grew by {delta_kib} KiB while streaming {bytes} bytes"
        );
    }

    // Filters apply to the stream too.
    let resp = app
        .client
        .get(app.url("/api/v1/portal/orders/export/?status=refunded"))
        .header("Authorization", format!("Token {token}"))
        .send()
        .await?;
    let text = resp.text().await?;
    assert_eq!(text.lines().count() as i64, ORDERS / 10 + 1);
    app.cleanup().await;
    Ok(())
}
