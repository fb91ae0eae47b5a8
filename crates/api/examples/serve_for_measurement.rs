//! The real app with the default slow-client limits on a fresh database, Redis and an
//! in-process stripe-sim, for measurements by outside tools (e.g. `scripts/slow-clients.py`).
//!
//! ```sh
//! cargo run -p pique-api --example serve_for_measurement -- 120   # serve for 120 s
//! ```
//! Prints the base URL, serves for the given seconds (default 60), then drops the database.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use support::*;

#[tokio::main]
async fn main() -> TestResult {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let app = TestApp::spawn(&[]).await?;
    let show = show(&app.pool, "measured").await?;
    tier(&app.pool, show, "General Admission", 100, "25.00", false).await?;
    let limits = &app.state.config.http;
    println!(
        "serving {} for {seconds} s (header read timeout {:?}, at most {} connections)",
        app.base_url, limits.header_read_timeout, limits.max_connections
    );
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    app.cleanup().await;
    Ok(())
}
