//! The ceiling for the read benchmark: a minimal axum server that answers every request with
//! the same bytes from memory (a file read once at start), as fast as this stack can serve
//! a response of that size. `scripts/bench-reads.sh` compares the cached show list with it.
//!
//! `cargo run --release --example static_file -- FILE 127.0.0.1:8098`

use axum::{Router, http::header, routing::get};
use bytes::Bytes;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let file = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: static_file FILE [ADDR]"))?;
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8098".into());
    let body = Bytes::from(std::fs::read(&file)?);
    let app = Router::new().fallback(get(move || {
        let body = body.clone();
        async move { ([(header::CONTENT_TYPE, "application/json")], body) }
    }));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("static_file serving {file} on http://{addr}/");
    axum::serve(listener, app).await?;
    Ok(())
}
