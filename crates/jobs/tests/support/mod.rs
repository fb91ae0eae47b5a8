//! Shared fixtures: a paid order in a fresh database, a test configuration with a private
//! Redis namespace, and PDF inspection helpers.
#![allow(dead_code)]

use std::{path::Path, time::Duration};

use pique_checkout::Checkout;
use pique_jobs::{Deps, JobsConfig, WorkerOptions, retry::RetryPolicy};
use pique_store::PgPool;
use uuid::Uuid;

pub type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

pub fn redis_url() -> String {
    std::env::var("PIQUE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_string())
}

/// A configuration with a private namespace and fast timers.
pub fn config(smtp_url: Option<String>, media_dir: &Path) -> JobsConfig {
    JobsConfig {
        redis_url: redis_url(),
        namespace: format!("test-{}", Uuid::new_v4().simple()),
        public_url: "http://pique.test".to_string(),
        media_dir: media_dir.join("media"),
        smtp_url,
        mail_dir: media_dir.join("mail"),
        mail_from: "PiqueTickets <tickets@pique.test>".to_string(),
        retry: RetryPolicy {
            base: Duration::from_millis(300),
            max_delay: Duration::from_secs(1),
            max_attempts: 4,
        },
        email_lease: Duration::from_secs(2),
        heartbeat: Duration::from_secs(1),
        missed_heartbeats: 2,
        poll_interval: Duration::from_millis(100),
        relay_interval: Duration::from_millis(200),
        relay_batch: 100,
        maintenance_interval: Duration::from_secs(60),
        reconcile_grace: Duration::from_secs(300),
        reconcile_window: Duration::from_secs(3600),
        shutdown_grace: Duration::from_secs(10),
    }
}

/// The money path on `pool`, talking to the Stripe at `stripe_api_base` (nothing needs to
/// answer there unless a test runs checkout jobs).
pub fn checkout(pool: &PgPool, stripe_api_base: &str) -> Checkout {
    let config = pique_core::Config::from_lookup(|key| {
        (key == pique_core::config::env::STRIPE_API_BASE).then(|| stripe_api_base.to_string())
    })
    .expect("config");
    Checkout::new(pool.clone(), &config).expect("stripe client")
}

/// Worker dependencies on `pool`; no Stripe answers (no test using this runs checkouts).
pub fn deps(pool: &PgPool, config: JobsConfig) -> Deps {
    Deps::new(pool.clone(), config, checkout(pool, "http://127.0.0.1:9")).expect("deps")
}

/// A running worker; `stop` shuts it down gracefully, dropping the handle aborts it.
pub struct RunningWorker {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<Result<(), pique_jobs::JobError>>,
}

impl RunningWorker {
    pub fn start(deps: Deps, options: WorkerOptions) -> Self {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(pique_jobs::worker::run(deps, options, async move {
            let _ = rx.await;
        }));
        RunningWorker {
            stop: Some(tx),
            task,
        }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(20), &mut self.task).await;
    }

    /// Kills the worker without any cleanup, like a crashed process.
    pub fn kill(self) {
        self.task.abort();
    }
}

pub struct Order {
    pub order_id: i64,
    pub ticket_id: i64,
    pub order_uuid: Uuid,
    pub attendees: Vec<Uuid>,
    pub title: String,
}

/// Venue, producer, show, tier and a paid order with `n` attendees.
pub async fn paid_order(pool: &PgPool, n: i32) -> Result<Order, sqlx::Error> {
    let tag = Uuid::new_v4().simple().to_string();
    let title = "Late Night Laughs".to_string();
    let venue_id: i64 = sqlx::query_scalar(
        "INSERT INTO venues (name, address, city, state, postal_code) \
         VALUES ('The Comedy Cellar', '117 MacDougal St', 'Austin', 'TX', '78701') RETURNING id",
    )
    .fetch_one(pool)
    .await?;
    let producer_id: i64 =
        sqlx::query_scalar("INSERT INTO producers (name, slug) VALUES ('Prod', $1) RETURNING id")
            .bind(format!("prod-{tag}"))
            .fetch_one(pool)
            .await?;
    let show_id: i64 = sqlx::query_scalar(
        "INSERT INTO shows (title, slug, door_time, start_time, time_zone, published, venue_id, producer_id) \
         VALUES ($1, $2, '2026-12-12 01:00:00+00', '2026-12-12 02:00:00+00', 'America/Chicago', true, $3, $4) RETURNING id",
    )
    .bind(&title)
    .bind(format!("late-night-{tag}"))
    .bind(venue_id)
    .bind(producer_id)
    .fetch_one(pool)
    .await?;
    let ticket_id: i64 = sqlx::query_scalar(
        "INSERT INTO tickets (show_id, name, quantity, price, sold) VALUES ($1, 'General Admission', 100, 25.00, $2) RETURNING id",
    )
    .bind(show_id)
    .bind(n)
    .fetch_one(pool)
    .await?;
    let order_uuid = Uuid::new_v4();
    let order_id: i64 = sqlx::query_scalar(
        "INSERT INTO orders (uuid, show_id, order_email, order_name, status, subtotal, total, expires_at, paid_at) \
         VALUES ($1, $2, 'buyer@example.com', 'Ada Lovelace', 'paid', 25.00 * $3, 25.00 * $3, now() + interval '30 minutes', now()) \
         RETURNING id",
    )
    .bind(order_uuid)
    .bind(show_id)
    .bind(n)
    .fetch_one(pool)
    .await?;
    let line_id: i64 = sqlx::query_scalar(
        "INSERT INTO order_lines (uuid, order_id, ticket_id, quantity, price_per_ticket, line_total) \
         VALUES ($1, $2, $3, $4, 25.00, 25.00 * $4) RETURNING id",
    )
    .bind(Uuid::new_v4())
    .bind(order_id)
    .bind(ticket_id)
    .bind(n)
    .fetch_one(pool)
    .await?;
    let mut attendees = Vec::new();
    for seq in 1..=n {
        let uuid = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO attendees (uuid, order_id, order_line_id, show_id, ticket_id, seq, name, email) \
             VALUES ($1, $2, $3, $4, $5, $6, 'Ada Lovelace', 'buyer@example.com')",
        )
        .bind(uuid)
        .bind(order_id)
        .bind(line_id)
        .bind(show_id)
        .bind(ticket_id)
        .bind(seq)
        .execute(pool)
        .await?;
        attendees.push(uuid);
    }
    Ok(Order {
        order_id,
        ticket_id,
        order_uuid,
        attendees,
        title,
    })
}

/// Writes the order's fulfilment jobs to the outbox, as the checkout code does on payment.
pub async fn enqueue_fulfilment(
    pool: &PgPool,
    order_id: i64,
) -> Result<(), pique_store::StoreError> {
    let mut tx = pool.begin().await?;
    pique_store::outbox::enqueue_order_fulfilment(&mut tx, order_id).await?;
    tx.commit().await?;
    Ok(())
}

/// Polls `f` until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    f().await
}

/// The text shown on page 1 (content stream, decompressed).
pub fn pdf_page_content(bytes: &[u8]) -> String {
    let doc = lopdf::Document::load_mem(bytes).expect("valid PDF");
    let pages = doc.get_pages();
    assert_eq!(pages.len(), 1, "one page per attendee");
    let page_id = *pages.values().next().expect("page");
    let content = doc.get_page_content(page_id);
    String::from_utf8_lossy(&content).into_owned()
}

/// Decodes every QR code found in the PDF's images.
pub fn pdf_qr_codes(bytes: &[u8]) -> Vec<String> {
    let doc = lopdf::Document::load_mem(bytes).expect("valid PDF");
    let mut found = Vec::new();
    for object in doc.objects.values() {
        let Ok(stream) = object.as_stream() else {
            continue;
        };
        let is_image = stream
            .dict
            .get(b"Subtype")
            .and_then(|s| s.as_name())
            .map(|n| n == b"Image")
            .unwrap_or(false);
        if !is_image {
            continue;
        }
        let w = stream
            .dict
            .get(b"Width")
            .and_then(|v| v.as_i64())
            .expect("width") as usize;
        let h = stream
            .dict
            .get(b"Height")
            .and_then(|v| v.as_i64())
            .expect("height") as usize;
        let pixels = stream
            .decompressed_content()
            .unwrap_or_else(|_| stream.content.clone());
        assert!(pixels.len() >= w * h, "8-bit grey image");
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| pixels[y * w + x]);
        for grid in img.detect_grids() {
            if let Ok((_, content)) = grid.decode() {
                found.push(content);
            }
        }
    }
    found
}

/// Deletes every Redis key of the test's namespace.
pub async fn flush_namespace(queues: &pique_jobs::Queues) {
    let mut conn = queues.connection();
    let pattern = format!("{}:*", queues.namespace());
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(&pattern)
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<(), _> = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await;
    }
}

/// A TCP proxy to Redis that can be cut (connections dropped, port closed) and restored on
/// the same port: a Redis outage without touching the shared Redis.
pub struct RedisProxy {
    pub port: u16,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RedisProxy {
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        Ok(RedisProxy {
            port,
            task: Some(tokio::spawn(Self::serve(listener))),
        })
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    async fn serve(listener: tokio::net::TcpListener) {
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((mut inbound, _)) = listener.accept().await {
            conns.spawn(async move {
                if let Ok(mut upstream) = tokio::net::TcpStream::connect("127.0.0.1:6379").await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut upstream).await;
                }
            });
        }
    }

    /// Drops every connection and stops listening.
    pub fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn restore(&mut self) -> std::io::Result<()> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await?;
        self.task = Some(tokio::spawn(Self::serve(listener)));
        Ok(())
    }
}
