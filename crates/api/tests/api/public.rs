//! The public read API against real PostgreSQL and Redis, on the hand-written catalogue in
//! `fixtures/catalog.sql`: exact shapes, filters, ordering, hidden drafts and deleted shows,
//! live availability, the cache, degraded modes and bad input.

use std::time::Duration;

use pique_api::AppState;
use pique_core::Config;
use pique_store::{cache::Cache, testing::TestDb};
use serde_json::{Value, json};

const CATALOG: &str = include_str!("../../../../fixtures/catalog.sql");

fn redis_url() -> String {
    std::env::var("PIQUE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

struct App {
    base: String,
    http: reqwest::Client,
    state: AppState,
    db: TestDb,
}

impl App {
    /// The API on a fresh database loaded with the catalogue, a unique cache prefix, and
    /// `redis` as its Redis.
    async fn spawn_with(redis: &str, tweak: impl FnOnce(&mut Config)) -> App {
        let db = TestDb::new().await.expect("test database");
        sqlx::raw_sql(CATALOG)
            .execute(&db.pool)
            .await
            .expect("load catalogue");
        let mut config = Config::from_lookup(|_| None).expect("default config");
        config.database_url = db.url.clone();
        config.redis_url = redis.to_string();
        tweak(&mut config);
        let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
        let cache = Cache::new(
            redis,
            &prefix,
            Duration::from_secs(300),
            Duration::from_secs(1),
        )
        .expect("cache");
        let state = AppState::new(config, db.pool.clone(), cache).expect("state");
        let base = serve(state.clone()).await;
        App {
            base,
            http: reqwest::Client::new(),
            state,
            db,
        }
    }

    async fn spawn() -> App {
        App::spawn_with(&redis_url(), |_| {}).await
    }

    async fn get(&self, path: &str) -> (u16, Value, reqwest::header::HeaderMap) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.json::<Value>().await.unwrap_or(Value::Null);
        (status, body, headers)
    }

    async fn ids(&self, path: &str) -> Vec<i64> {
        let (status, body, _) = self.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        body.as_array()
            .expect("array")
            .iter()
            .map(|s| s["id"].as_i64().expect("id"))
            .collect()
    }

    async fn done(self) {
        self.db.cleanup().await;
    }
}

async fn serve(state: AppState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(pique_api::serve(state, listener, std::future::pending()));
    format!("http://{addr}")
}

#[tokio::test]
async fn show_list_is_a_bare_array_of_public_shows_by_start_time() {
    let app = App::spawn().await;
    // 3 is past, 1 and 2 upcoming; 4 (draft) and 5 (deleted) never appear.
    assert_eq!(app.ids("/api/v1/shows/").await, vec![3, 1, 2]);
    assert_eq!(
        app.ids("/api/v1/shows").await,
        vec![3, 1, 2],
        "without trailing slash too"
    );

    let (_, body, headers) = app.get("/api/v1/shows/?slug=jazz-night").await;
    assert_eq!(headers["content-type"], "application/json");
    let show = &body[0];
    let keys: Vec<&str> = show
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "id",
        "title",
        "slug",
        "description",
        "door_time",
        "start_time",
        "end_time",
        "time_zone",
        "age_restriction",
        "image",
        "banner_image",
        "square_image",
        "featured_video",
        "facebook_campaign_id",
        "published",
        "refund_policy",
        "created_at",
        "venue",
        "producer",
        "performers",
    ];
    let mut got = keys.clone();
    got.sort_unstable();
    expected.sort_unstable();
    assert_eq!(got, expected);
    assert_eq!(show["title"], "Jazz Night");
    assert_eq!(show["age_restriction"], "21+");
    assert_eq!(show["published"], true);
    assert_eq!(
        show["venue"],
        json!({"id": 1, "name": "The Parish", "address": "214 E 6th St", "city": "Austin", "state": "TX",
               "postal_code": "78701", "country": "US", "capacity": 450})
    );
    assert_eq!(
        show["producer"],
        json!({"id": 1, "name": "Lone Star Presents", "slug": "lone-star"})
    );
    // Billing order (position), not id order.
    assert_eq!(
        show["performers"],
        json!([{"id": 1, "name": "Ella Quartet"}, {"id": 2, "name": "Miles Byrd"}])
    );
    // ISO 8601 with offset, as DRF writes it.
    let start = show["start_time"].as_str().expect("string");
    assert!(
        chrono::DateTime::parse_from_rfc3339(start).is_ok(),
        "{start}"
    );
    app.done().await;
}

#[tokio::test]
async fn show_list_filters() {
    let app = App::spawn().await;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(
        app.ids(&format!("/api/v1/shows/?start_time__gt={now}"))
            .await,
        vec![1, 2]
    );
    assert_eq!(
        app.ids(&format!("/api/v1/shows/?start_time__lt={now}"))
            .await,
        vec![3]
    );
    // The seed's own filter value, and a `+` offset arriving as a space.
    assert_eq!(
        app.ids("/api/v1/shows/?start_time__gt=2025-01-01T00:00:00Z")
            .await
            .len(),
        3
    );
    assert_eq!(
        app.ids("/api/v1/shows/?start_time__gt=2025-01-01T00:00:00+00:00")
            .await
            .len(),
        3
    );
    assert_eq!(app.ids("/api/v1/shows/?city=austin").await, vec![3, 1]);
    assert_eq!(app.ids("/api/v1/shows/?producer=2").await, vec![2]);
    assert_eq!(app.ids("/api/v1/shows/?venue=2").await, vec![2]);
    assert_eq!(
        app.ids("/api/v1/shows/?slug=secret-draft").await,
        Vec::<i64>::new()
    );
    assert_eq!(
        app.ids("/api/v1/shows/?unknown=1").await,
        vec![3, 1, 2],
        "unknown params are ignored"
    );
    app.done().await;
}

#[tokio::test]
async fn show_list_pagination_is_drf_shaped() {
    let app = App::spawn().await;
    let (status, body, _) = app.get("/api/v1/shows/?page=1&page_size=2").await;
    assert_eq!(status, 200);
    assert_eq!(body["count"], 3);
    assert_eq!(body["previous"], Value::Null);
    let next = body["next"].as_str().expect("next link");
    assert!(
        next.ends_with("/api/v1/shows/?page_size=2&page=2"),
        "{next}"
    );
    let ids: Vec<i64> = body["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|s| s["id"].as_i64())
        .collect();
    assert_eq!(ids, vec![3, 1]);

    let (_, body, _) = app.get("/api/v1/shows/?page=2&page_size=2").await;
    assert_eq!(body["next"], Value::Null);
    assert!(
        body["previous"]
            .as_str()
            .expect("previous")
            .ends_with("page=1")
    );
    assert_eq!(body["results"].as_array().map(Vec::len), Some(1));

    let (status, body, _) = app.get("/api/v1/shows/?page=9&page_size=2").await;
    assert_eq!((status, body), (404, json!({"detail": "Invalid page."})));
    app.done().await;
}

#[tokio::test]
async fn bad_query_input_is_a_400_naming_the_parameter() {
    let app = App::spawn().await;
    let cases = [
        (
            "/api/v1/shows/?start_time__gt=yesterday",
            json!({"start_time__gt": ["Enter a valid date/time."]}),
        ),
        (
            "/api/v1/shows/?page_size=100000",
            json!({"page_size": ["Ensure this value is less than or equal to 100."]}),
        ),
        (
            "/api/v1/shows/?page=abc",
            json!({"page": ["Invalid page."]}),
        ),
        (
            "/api/v1/tickets/?show=abc",
            json!({"show": ["Select a valid choice. That choice is not one of the available choices."]}),
        ),
        ("/api/v1/search/", json!({"q": ["This field is required."]})),
    ];
    for (path, expected) in cases {
        let (status, body, _) = app.get(path).await;
        assert_eq!((status, &body), (400, &expected), "{path}");
    }
    let (status, body, _) = app.get("/api/v1/shows/abc/").await;
    assert_eq!(status, 400);
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .contains("positive integer")
    );
    let long = "x".repeat(300);
    assert_eq!(app.get(&format!("/api/v1/search/?q={long}")).await.0, 400);
    app.done().await;
}

#[tokio::test]
async fn show_detail_has_live_availability_and_hides_non_public_shows() {
    let app = App::spawn().await;
    let (status, body, _) = app.get("/api/v1/shows/1/").await;
    assert_eq!(status, 200);
    assert_eq!(body["id"], 1);
    assert_eq!(
        body["page_design"],
        json!({"primary_color": "#112233", "secondary_color": "#ffffff", "background_image": null})
    );
    // Tier 1: 100 - 10 sold - 5 actively held = 85; the expired 3-seat hold does not count.
    assert_eq!(
        body["tickets"],
        json!([
            {"id": 1, "show": 1, "name": "General Admission", "description": "", "price": "25.00", "quantity": 100,
             "is_donation_based": false, "max_per_order": 20, "available": 85, "sold_out": false},
            {"id": 2, "show": 1, "name": "VIP", "description": "", "price": "80.50", "quantity": 10,
             "is_donation_based": false, "max_per_order": 20, "available": 0, "sold_out": true}
        ])
    );
    for id in [4, 5, 999] {
        let (status, body, _) = app.get(&format!("/api/v1/shows/{id}/")).await;
        assert_eq!(
            (status, body),
            (404, json!({"detail": "Not found."})),
            "show {id}"
        );
    }

    // Availability is never served from the cache: a sale shows at once.
    assert_eq!(app.get("/api/v1/shows/1/").await.2["x-cache"], "hit-local");
    sqlx::query("UPDATE tickets SET sold = sold + 5 WHERE id = 1")
        .execute(&app.db.pool)
        .await
        .expect("sell");
    let (_, body, _) = app.get("/api/v1/shows/1/").await;
    assert_eq!(body["tickets"][0]["available"], 80);
    app.done().await;
}

#[tokio::test]
async fn featured_venues_performers_producers_tickets_and_cities() {
    let app = App::spawn().await;
    let (_, featured, _) = app.get("/api/v1/featured-shows/").await;
    let pairs: Vec<(i64, i64)> = featured
        .as_array()
        .expect("array")
        .iter()
        .map(|f| {
            (
                f["id"].as_i64().unwrap_or(0),
                f["show"]["id"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        vec![(1, 2), (2, 1)],
        "active featurings of public shows, by position"
    );

    let (_, venues, _) = app.get("/api/v1/venues/").await;
    assert_eq!(venues.as_array().map(Vec::len), Some(2));
    assert_eq!(venues[0]["name"], "Lincoln Lodge");

    let (_, performers, _) = app.get("/api/v1/performers/?page=1&page_size=2").await;
    assert_eq!(performers["count"], 3);
    assert_eq!(
        performers["results"][0],
        json!({"id": 1, "name": "Ella Quartet", "bio": "Swing and standards", "image": null, "website": null})
    );

    let (_, producers, _) = app.get("/api/v1/producers/").await;
    assert_eq!(
        producers[0],
        json!({"id": 1, "name": "Lone Star Presents", "slug": "lone-star", "description": "Austin shows", "image": null, "website": null}),
        "public fields only: no contact email, no Stripe account"
    );

    assert_eq!(app.ids("/api/v1/tickets/?show=1").await, vec![1, 2]);
    assert_eq!(
        app.ids("/api/v1/tickets/").await,
        vec![1, 2, 3],
        "tiers of drafts are hidden"
    );
    assert_eq!(app.ids("/api/v1/tickets/?show=4").await, Vec::<i64>::new());
    let (_, tiers, _) = app.get("/api/v1/tickets/?show=2").await;
    assert_eq!(tiers[0]["price"], "5.00");
    assert_eq!(tiers[0]["is_donation_based"], true);

    let (_, cities, _) = app.get("/api/v1/active-cities/").await;
    assert_eq!(
        cities,
        json!([{"city": "Austin", "state": "TX", "show_count": 1}, {"city": "Chicago", "state": "IL", "show_count": 1}]),
        "only upcoming public shows count"
    );
    app.done().await;
}

#[tokio::test]
async fn search_matches_title_venue_and_performer_but_never_drafts() {
    let app = App::spawn().await;
    assert_eq!(app.ids("/api/v1/search/?q=jazz").await, vec![1]);
    assert_eq!(
        app.ids("/api/v1/search/?q=Jaz").await,
        vec![1],
        "prefix, case-insensitive"
    );
    assert_eq!(
        app.ids("/api/v1/search/?q=parish").await,
        vec![3, 1],
        "venue name"
    );
    assert_eq!(
        app.ids("/api/v1/search/?q=chicago").await,
        vec![2],
        "venue city"
    );
    assert_eq!(app.ids("/api/v1/search/?q=sam").await, vec![2], "performer");
    assert_eq!(
        app.ids("/api/v1/search/?q=swing+evening").await,
        vec![1],
        "every word must match"
    );
    assert_eq!(app.ids("/api/v1/search/?q=secret").await, Vec::<i64>::new());
    assert_eq!(app.ids("/api/v1/search/?q=gala").await, Vec::<i64>::new());
    assert_eq!(
        app.ids("/api/v1/search/?q=%27%20%26%20%7C%20!").await,
        Vec::<i64>::new(),
        "tsquery syntax is inert"
    );
    // Every branch of the search can use its GIN index (forced, since the fixture is tiny).
    let mut conn = app.db.pool.acquire().await.expect("connection");
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut *conn)
        .await
        .expect("set");
    for (table, index) in [
        ("shows", "shows_search"),
        ("venues", "venues_search"),
        ("performers", "performers_search"),
    ] {
        let plan: Vec<String> = sqlx::query_scalar(&format!(
            "EXPLAIN SELECT id FROM {table} WHERE search @@ to_tsquery('simple', 'jazz:*')"
        ))
        .fetch_all(&mut *conn)
        .await
        .expect("explain");
        assert!(plan.join("\n").contains(index), "{table}: {plan:?}");
    }
    drop(conn);
    app.done().await;
}

#[tokio::test]
async fn cache_hits_after_first_read_and_is_invalidated_by_a_change() {
    let app = App::spawn().await;
    let (_, _, h) = app.get("/api/v1/shows/").await;
    assert_eq!(h["x-cache"], "miss");
    let (_, _, h) = app.get("/api/v1/shows/").await;
    assert_eq!(h["x-cache"], "hit-local");

    // A second API process sharing Redis (same prefix) gets it from Redis, not PostgreSQL.
    let other = AppState::new((*app.state.config).clone(), app.state.pool.clone(), {
        Cache::new(
            &redis_url(),
            app.state.cache.prefix(),
            Duration::from_secs(300),
            Duration::from_secs(1),
        )
        .expect("cache")
    })
    .expect("state");
    let other_base = serve(other).await;
    let r = app
        .http
        .get(format!("{other_base}/api/v1/shows/"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.headers()["x-cache"], "hit-redis");

    // A write plus invalidation is visible at once.
    sqlx::query("UPDATE shows SET title = 'Jazz Night II' WHERE id = 1")
        .execute(&app.db.pool)
        .await
        .expect("update");
    app.state.cache.invalidate().await;
    let (_, body, h) = app.get("/api/v1/shows/?slug=jazz-night").await;
    assert_eq!(h["x-cache"], "miss");
    assert_eq!(body[0]["title"], "Jazz Night II");

    // ... and by the other process within the first level's one-second lifetime.
    tokio::time::sleep(pique_store::cache::L1_MAX_AGE + Duration::from_millis(100)).await;
    let r = app
        .http
        .get(format!("{other_base}/api/v1/shows/?slug=jazz-night"))
        .send()
        .await
        .expect("get");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body[0]["title"], "Jazz Night II");
    app.done().await;
}

#[tokio::test]
async fn redis_down_still_serves_reads_from_postgres_and_health_says_so() {
    // Port 1 on loopback: nothing listens, connections are refused at once.
    let app = App::spawn_with("redis://127.0.0.1:1/0", |_| {}).await;
    for _ in 0..3 {
        assert_eq!(app.ids("/api/v1/shows/").await, vec![3, 1, 2]);
    }
    assert_eq!(app.get("/api/v1/shows/1/").await.0, 200);
    let (status, body, _) = app.get("/health/").await;
    assert_eq!(
        (status, body),
        (
            503,
            json!({"status": "degraded", "database": "ok", "redis": "down"})
        )
    );
    app.done().await;
}

#[tokio::test]
async fn health_is_ok_when_both_answer_and_503_when_postgres_is_down() {
    let app = App::spawn().await;
    let (status, body, _) = app.get("/health/").await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"status": "ok", "database": "ok", "redis": "ok"})
        )
    );
    assert_eq!(app.get("/health").await.0, 200);

    let mut config = (*app.state.config).clone();
    config.database_url = "postgres://postgres@127.0.0.1:1/none".into();
    config.pg.connect_timeout = Duration::from_millis(500);
    let pool = pique_store::db::pool(&config.database_url, &config.pg).expect("lazy pool");
    let state = AppState::new(config, pool, app.state.cache.clone()).expect("state");
    let base = serve(state).await;
    let r = app
        .http
        .get(format!("{base}/health/"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(
        r.json::<Value>().await.expect("json"),
        json!({"status": "degraded", "database": "down", "redis": "ok"})
    );
    // A read with the database down is a clear 503, not a 500.
    let r = app
        .http
        .get(format!("{base}/api/v1/venues/"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 503);
    app.done().await;
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_json() {
    let app = App::spawn().await;
    let (status, body, _) = app.get("/api/v1/nope/").await;
    assert_eq!((status, body), (404, json!({"detail": "Not found."})));
    let r = app
        .http
        .post(format!("{}/api/v1/shows/", app.base))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(
        r.json::<Value>().await.expect("json"),
        json!({"detail": "Method \"POST\" not allowed."})
    );
    app.done().await;
}

#[tokio::test]
async fn openapi_docs_and_metrics_are_served() {
    let app = App::spawn().await;
    let (status, doc, _) = app.get("/api/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().expect("version").starts_with("3."));
    for path in [
        "/api/v1/shows/",
        "/api/v1/shows/{id}/",
        "/api/v1/search/",
        "/health/",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} documented");
    }
    let r = app
        .http
        .get(format!("{}/api/docs/", app.base))
        .send()
        .await
        .expect("docs");
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().await.expect("html").contains("swagger"));

    app.get("/api/v1/shows/").await;
    app.get("/api/v1/shows/").await;
    let text = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for needle in [
        "http_requests_total{method=\"GET\",route=\"/api/v1/shows/\",status=\"200\"}",
        "http_request_duration_seconds_bucket",
        "pique_cache_hits_total",
        "pique_cache_misses_total",
        "pique_db_pool_connections{state=\"in_use\"}",
        "pique_db_pool_max",
        "pique_db_query_duration_seconds_count{query=\"list_shows\"}",
        "process_cpu_seconds_total",
    ] {
        assert!(text.contains(needle), "metrics lack {needle}:\n{text}");
    }
    app.done().await;
}
