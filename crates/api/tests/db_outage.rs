//! PostgreSQL away under load: the API, reaching its database through a TCP proxy the test
//! cuts (every connection closed, new ones refused, as during a PostgreSQL restart; the
//! shared server is never touched), answers 503 with `Retry-After`, never 500, recovers once
//! the database is back, and loses no accepted order.
//!
//! `cargo test -p pique-api --test db_outage -- --nocapture` prints what it saw.

mod support;

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use futures::future::join_all;
use pique_api::AppState;
use pique_core::Config;
use pique_store::cache::Cache;
use support::*;
use tokio::{net::TcpListener, sync::Mutex, task::JoinSet};

/// A cuttable TCP proxy to PostgreSQL.
struct PgProxy {
    port: u16,
    upstream: SocketAddr,
    connections: Arc<Mutex<JoinSet<()>>>,
    acceptor: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl PgProxy {
    async fn start(upstream: SocketAddr) -> Result<PgProxy, TestError> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let proxy = PgProxy {
            port,
            upstream,
            connections: Arc::new(Mutex::new(JoinSet::new())),
            acceptor: Mutex::new(None),
        };
        proxy.restore().await?;
        Ok(proxy)
    }

    /// Closes every proxied connection and stops listening.
    async fn cut(&self) {
        if let Some(acceptor) = self.acceptor.lock().await.take() {
            acceptor.abort();
            let _ = acceptor.await;
        }
        self.connections.lock().await.abort_all();
    }

    /// Listens again on the same port.
    async fn restore(&self) -> Result<(), TestError> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(SocketAddr::from(([127, 0, 0, 1], self.port)))?;
        let listener: TcpListener = socket.listen(1024)?;
        let (upstream, connections) = (self.upstream, self.connections.clone());
        *self.acceptor.lock().await = Some(tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                connections.lock().await.spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        }));
        Ok(())
    }
}

/// `(status, Retry-After, order id if 201)` of a checkout.
async fn checkout(
    http: &reqwest::Client,
    base: &str,
    show: i64,
    ticket: i64,
) -> Result<(u16, Option<String>, Option<i64>), TestError> {
    let resp = http
        .post(format!("{base}/checkout/"))
        .json(&checkout_body(show, ticket, 1))
        .send()
        .await?;
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    Ok((status, retry_after, body["order_id"].as_i64()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_away_answers_503_with_retry_after_recovers_and_loses_nothing() -> TestResult {
    const OUTAGE: Duration = Duration::from_secs(4);
    // The fixture app gives the database, the sim and the fixtures; a second app on the same
    // database reaches PostgreSQL only through the proxy.
    let fixture = TestApp::spawn(&[]).await?;
    let show = show(&fixture.pool, "outage").await?;
    let ticket = tier(&fixture.pool, show, "General", 10_000, "20.00", false).await?;
    // postgres://user@127.0.0.1:PORT/NAME -> the same through the proxy.
    let db_url: String = fixture.state.config.database_url.clone();
    let (server, name) = db_url.rsplit_once('/').ok_or("database url")?;
    let (host, port) = server.rsplit_once(':').ok_or("database port")?;
    let upstream = SocketAddr::from(([127, 0, 0, 1], port.parse::<u16>()?));
    let proxy = PgProxy::start(upstream).await?;
    let mut config: Config = (*fixture.state.config).clone();
    config.database_url = format!("{host}:{}/{name}", proxy.port);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let cache = Cache::new(
        &config.redis_url,
        &format!("{}-outage", fixture.prefix),
        config.redis.cache_ttl,
        config.redis.socket_timeout,
    )?;
    let pool = pique_store::db::pool(&config.database_url, &config.pg)?;
    let state = AppState::new(config, pool, cache)?;
    tokio::spawn(pique_api::serve(state, listener, std::future::pending()));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;

    let mut accepted = Vec::new();
    for _ in 0..5 {
        let (status, _, id) = checkout(&http, &base, show, ticket).await?;
        assert_eq!(status, 201);
        accepted.extend(id);
    }

    proxy.cut().await;
    let cut_at = Instant::now();
    let mut during: BTreeMap<u16, usize> = BTreeMap::new();
    let mut missing_retry_after = 0;
    let mut slowest = Duration::ZERO;
    while cut_at.elapsed() < OUTAGE {
        let results = join_all((0..4).map(|_| async {
            let t = Instant::now();
            (checkout(&http, &base, show, ticket).await, t.elapsed())
        }))
        .await;
        for (r, took) in results {
            let (status, retry_after, id) = r?;
            slowest = slowest.max(took);
            *during.entry(status).or_insert(0) += 1;
            accepted.extend(id);
            if status == 503 && retry_after.is_none() {
                missing_retry_after += 1;
            }
        }
        let portal = http
            .get(format!("{base}/api/v1/shows/{show}/"))
            .send()
            .await?;
        *during.entry(portal.status().as_u16()).or_insert(0) += 1;
    }
    proxy.restore().await?;
    let restored_at = Instant::now();
    let recovery = loop {
        let (status, _, id) = checkout(&http, &base, show, ticket).await?;
        assert_ne!(status, 500, "a 500 after PostgreSQL came back");
        if status == 201 {
            accepted.extend(id);
            break restored_at.elapsed();
        }
        assert!(
            restored_at.elapsed() < Duration::from_secs(20),
            "not recovered 20 s after PostgreSQL came back ({status})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!(
        "postgres cut for {OUTAGE:?}: answers during the outage {during:?} (slowest {slowest:.1?}, \
         503 without Retry-After: {missing_retry_after}); first checkout accepted {recovery:.1?} after it came back"
    );
    assert!(
        !during.keys().any(|s| *s >= 500 && *s != 503),
        "only 503 while the database is away: {during:?}"
    );
    assert!(during.contains_key(&503), "the outage was seen: {during:?}");
    assert_eq!(missing_retry_after, 0, "every 503 says when to retry");
    assert!(
        recovery < Duration::from_secs(10),
        "recovered within 10 s: {recovery:?}"
    );
    // Nothing accepted was lost; holds are exactly the accepted orders' seats.
    let found: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE id = ANY($1)")
        .bind(&accepted)
        .fetch_one(&fixture.pool)
        .await?;
    assert_eq!(
        found as usize,
        accepted.len(),
        "every accepted order is stored"
    );
    let held: i64 = sqlx::query_scalar("SELECT held::int8 FROM tickets WHERE id = $1")
        .bind(ticket)
        .fetch_one(&fixture.pool)
        .await?;
    assert_eq!(
        held as usize,
        accepted.len(),
        "one held seat per accepted order, no more"
    );
    proxy.cut().await;
    fixture.cleanup().await;
    Ok(())
}
