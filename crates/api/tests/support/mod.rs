//! Shared setup of the API's integration tests: the real app on a free port, over a fresh
//! PostgreSQL database, a private Redis key prefix and an in-process stripe-sim whose
//! webhooks point back at the app. No mocks.
//!
//! ```ignore
//! let app = TestApp::spawn(&[("CHECKOUT_STRATEGY", "redis-lock")]).await?;
//! let resp = app.client.post(app.url("/checkout/")).json(&body).send().await?;
//! ```
#![allow(dead_code)] // each test binary uses a different subset

use std::{collections::HashMap, time::Duration};

use pique_api::AppState;
use pique_core::Config;
use pique_store::{PgPool, cache::Cache, testing::TestDb};
use stripe_sim::{SimConfig, StripeSim};
use tokio::sync::oneshot;

/// Errors in tests.
pub type TestError = Box<dyn std::error::Error + Send + Sync>;
/// Result of a test.
pub type TestResult = Result<(), TestError>;

/// Webhook secret shared by the sim and the app.
pub const WEBHOOK_SECRET: &str = "whsec_pique_tests";
/// Secret key the app sends.
pub const STRIPE_KEY: &str = "sk_test_pique_tests";

/// Redis used by the tests: `PIQUE_TEST_REDIS_URL`, else the local default.
pub fn redis_url() -> String {
    std::env::var("PIQUE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_string())
}

/// A running app.
pub struct TestApp {
    /// `http://127.0.0.1:PORT` of the app.
    pub base_url: String,
    /// The test database's pool (for assertions and fixtures).
    pub pool: PgPool,
    /// The app's state (to call the checkout code directly, e.g. the sweeper).
    pub state: AppState,
    /// An HTTP client that does not follow redirects.
    pub client: reqwest::Client,
    /// The Stripe stand-in.
    pub sim: StripeSim,
    /// The Redis key prefix of this app.
    pub prefix: String,
    db: Option<TestDb>,
    stop: Option<oneshot::Sender<()>>,
}

impl TestApp {
    /// Starts the app with environment-style overrides (`("CHECKOUT_STRATEGY", "queue")`,
    /// `("PIQUE_HOLD_TTL_SECS", "2")`...). Rate limiting is off unless overridden.
    pub async fn spawn(overrides: &[(&str, &str)]) -> Result<TestApp, TestError> {
        Self::spawn_with_sim(overrides, |_| {}).await
    }

    /// Like [`TestApp::spawn`], with a hook to adjust the sim's configuration.
    pub async fn spawn_with_sim(
        overrides: &[(&str, &str)],
        sim_config: impl FnOnce(&mut SimConfig),
    ) -> Result<TestApp, TestError> {
        let db = TestDb::new().await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let mut sim_cfg = SimConfig::ephemeral();
        sim_cfg.webhook_secret = WEBHOOK_SECRET.into();
        sim_cfg.webhook_url = Some(format!("{base_url}/stripe/webhook/"));
        sim_cfg.webhook_backoff_ms = 50;
        sim_config(&mut sim_cfg);
        let sim = stripe_sim::spawn(sim_cfg).await?;
        let mut env: HashMap<String, String> = [
            ("DATABASE_URL", db.url.clone()),
            ("REDIS_URL", redis_url()),
            ("PIQUE_PUBLIC_URL", base_url.clone()),
            ("STRIPE_API_BASE", sim.base_url()),
            ("STRIPE_SECRET_KEY", STRIPE_KEY.to_string()),
            ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET.to_string()),
            ("PIQUE_RATE_LIMIT", "off".to_string()),
            ("PIQUE_DB_MAX_CONNECTIONS", "30".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (k, v) in overrides {
            env.insert(k.to_string(), v.to_string());
        }
        let config = Config::from_lookup(|k| env.get(k).cloned())?;
        let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
        let cache = Cache::new(
            &config.redis_url,
            &prefix,
            config.redis.cache_ttl,
            config.redis.socket_timeout,
        )?;
        let pool = pique_store::db::pool(&config.database_url, &config.pg)?;
        let state = AppState::new(config, pool, cache)?;
        let (tx, rx) = oneshot::channel::<()>();
        let serve_state = state.clone();
        tokio::spawn(async move {
            let _ = pique_api::serve(serve_state, listener, async move {
                let _ = rx.await;
            })
            .await;
        });
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(256)
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(TestApp {
            base_url,
            pool: db.pool.clone(),
            state,
            client,
            sim,
            prefix,
            db: Some(db),
            stop: Some(tx),
        })
    }

    /// Absolute URL of an app path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// `POST path` with a JSON body; returns status and JSON (Null when the body is not JSON).
    pub async fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<(u16, serde_json::Value), TestError> {
        let resp = self.client.post(self.url(path)).json(body).send().await?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        ))
    }

    /// `GET path`; returns status and JSON.
    pub async fn get(&self, path: &str) -> Result<(u16, serde_json::Value), TestError> {
        let resp = self.client.get(self.url(path)).send().await?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        ))
    }

    /// Pays a session on the sim (as the hosted page would); the sim then sends the signed
    /// `checkout.session.completed` webhook to the app.
    pub async fn pay(&self, session_id: &str) -> Result<serde_json::Value, TestError> {
        let resp = self
            .client
            .post(format!(
                "{}/_sim/sessions/{session_id}/complete",
                self.sim.base_url()
            ))
            .send()
            .await?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await?;
        if !status.is_success() {
            return Err(format!("sim complete answered {status}: {body}").into());
        }
        Ok(body)
    }

    /// A session as Stripe (the sim) sees it.
    pub async fn stripe_session(&self, session_id: &str) -> Result<serde_json::Value, TestError> {
        let resp = self
            .client
            .get(format!(
                "{}/v1/checkout/sessions/{session_id}",
                self.sim.base_url()
            ))
            .bearer_auth(STRIPE_KEY)
            .send()
            .await?;
        Ok(resp.json().await?)
    }

    /// Stops the app and the sim, drops the database and the Redis keys.
    pub async fn cleanup(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(mut conn) = self.state.cache.connection().await {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{}*", self.prefix))
                .query_async(&mut conn)
                .await
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: Result<i64, _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
            }
        }
        self.state.pool.close().await;
        if let Some(db) = self.db.take() {
            db.cleanup().await;
        }
        let TestApp { sim, .. } = self;
        let _ = sim.shutdown().await;
    }
}

/// A published upcoming show with a venue and producer; returns its id.
pub async fn show(pool: &PgPool, slug: &str) -> Result<i64, TestError> {
    let venue: i64 = sqlx::query_scalar(
        "INSERT INTO venues (name, city) VALUES ('Hall', 'Austin') RETURNING id",
    )
    .fetch_one(pool)
    .await?;
    let producer: i64 =
        sqlx::query_scalar("INSERT INTO producers (name, slug) VALUES ($1, $1) RETURNING id")
            .bind(format!("producer-{slug}"))
            .fetch_one(pool)
            .await?;
    Ok(sqlx::query_scalar(
        "INSERT INTO shows (title, slug, start_time, venue_id, producer_id, published) \
         VALUES ($1, $1, now() + interval '10 days', $2, $3, true) RETURNING id",
    )
    .bind(slug)
    .bind(venue)
    .bind(producer)
    .fetch_one(pool)
    .await?)
}

/// A tier of `show`; returns its id.
pub async fn tier(
    pool: &PgPool,
    show: i64,
    name: &str,
    quantity: i32,
    price: &str,
    donation: bool,
) -> Result<i64, TestError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO tickets (show_id, name, quantity, price, is_donation_based) VALUES ($1, $2, $3, $4::numeric, $5) RETURNING id",
    )
    .bind(show)
    .bind(name)
    .bind(quantity)
    .bind(price)
    .bind(donation)
    .fetch_one(pool)
    .await?)
}

/// A promo code of `show`.
pub async fn promo(
    pool: &PgPool,
    show: i64,
    code: &str,
    discount: &str,
    kind: &str,
) -> Result<i64, TestError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO promo_codes (show_id, code, discount, discount_type) VALUES ($1, $2, $3::numeric, $4) RETURNING id",
    )
    .bind(show)
    .bind(code)
    .bind(discount)
    .bind(kind)
    .fetch_one(pool)
    .await?)
}

/// The original's checkout body for `quantity` seats of `ticket`.
pub fn checkout_body(show: i64, ticket: i64, quantity: i32) -> serde_json::Value {
    serde_json::json!({
        "show_id": show,
        "tickets": [{"ticket_id": ticket, "quantity": quantity}],
        "order_email": "test@example.com",
        "order_name": "Test User",
    })
}

/// Row counts of every table checkout writes, to prove a refused request wrote nothing.
pub async fn write_counts(pool: &PgPool) -> Result<Vec<i64>, TestError> {
    let mut out = Vec::new();
    for sql in [
        "SELECT count(*) FROM orders",
        "SELECT count(*) FROM order_lines",
        "SELECT count(*) FROM attendees",
        "SELECT count(*) FROM outbox",
        "SELECT count(*) FROM checkout_requests",
        "SELECT count(*) FROM stripe_events",
        "SELECT COALESCE(sum(held), 0)::int8 FROM tickets",
        "SELECT COALESCE(sum(sold), 0)::int8 FROM tickets",
        "SELECT COALESCE(sum(uses), 0)::int8 FROM promo_codes",
    ] {
        out.push(sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await?);
    }
    Ok(out)
}

/// `(held, sold)` of a tier.
pub async fn counters(pool: &PgPool, ticket: i64) -> Result<(i32, i32), TestError> {
    Ok(
        sqlx::query_as("SELECT held, sold FROM tickets WHERE id = $1")
            .bind(ticket)
            .fetch_one(pool)
            .await?,
    )
}

/// Asserts that every `pique check` invariant holds.
pub async fn assert_invariants(pool: &PgPool) -> TestResult {
    let violations = pique_store::invariants::check_invariants(
        pool,
        chrono::Utc::now() - chrono::Duration::days(3650),
        50,
    )
    .await?;
    if !violations.is_empty() {
        return Err(format!("invariants violated: {violations:#?}").into());
    }
    Ok(())
}

/// Polls `f` every 50 ms until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
