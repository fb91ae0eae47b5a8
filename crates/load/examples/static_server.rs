//! A trivial static-200 HTTP server for benchmarking load generators:
//! `cargo run --release -p pique-load --example static_server -- 127.0.0.1:8099`.

use axum::Router;
use axum::routing::get;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8099".to_string());
    let app = Router::new().route("/", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("static_server on http://{addr}/");
    axum::serve(listener, app).await
}
