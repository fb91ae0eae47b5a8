//! The `pique` binary end to end against real PostgreSQL and Redis: configuration, migration,
//! deterministic seeding and serving.

// Test code: a failed unwrap is a failed test (helpers included, not only #[test] fns).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use pique_store::testing::TestDb;

fn pique(db_url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pique"))
        .args(args)
        .env("DATABASE_URL", db_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run pique")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn config_prints_every_variable_with_secrets_masked() {
    let out = Command::new(env!("CARGO_BIN_EXE_pique"))
        .arg("config")
        .env("DATABASE_URL", "postgres://app:hunter2@db:5432/pique")
        .env("STRIPE_SECRET_KEY", "sk_live_0123456789")
        .env("PIQUE_PROFILE", "django-railway")
        .output()
        .expect("run");
    assert!(out.status.success());
    let s = text(&out);
    assert!(!s.contains("hunter2") && !s.contains("0123456789"), "{s}");
    assert!(
        s.contains("DATABASE_URL=postgres://app:****@db:5432/pique"),
        "{s}"
    );
    assert!(
        s.contains("PIQUE_PROFILE=django-railway") && s.contains("CHECKOUT_STRATEGY=redis-lock"),
        "{s}"
    );
    assert!(s.contains("PIQUE_RATE_LIMIT=off"), "{s}");
    for name in pique_core::config::env::ALL {
        assert!(s.contains(&format!("{name}=")), "{name} missing");
    }

    let bad = Command::new(env!("CARGO_BIN_EXE_pique"))
        .arg("config")
        .env("PIQUE_PROFILE", "gunicorn")
        .output()
        .expect("run");
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad).contains("PIQUE_PROFILE"));
}

#[tokio::test(flavor = "multi_thread")]
async fn seeding_is_deterministic_and_guarded() {
    let (a, b) = (
        TestDb::new().await.expect("db a"),
        TestDb::new().await.expect("db b"),
    );
    for db in [&a, &b] {
        let out = pique(&db.url, &["seed", "--preset", "small"]);
        assert!(out.status.success(), "{}", text(&out));
        assert!(text(&out).contains("seeded preset small: 40 shows"));
    }
    let titles = |pool: sqlx::PgPool| async move {
        sqlx::query_scalar::<_, String>("SELECT title || slug || venue_id FROM shows ORDER BY id")
            .fetch_all(&pool)
            .await
            .expect("titles")
    };
    assert_eq!(
        titles(a.pool.clone()).await,
        titles(b.pool.clone()).await,
        "same preset, same rows"
    );

    // The guarantees the original's unmodified Locust file relies on.
    let (show, published): (i64, bool) =
        sqlx::query_as("SELECT t.show_id, s.published FROM tickets t JOIN shows s ON s.id = t.show_id WHERE t.id = 1")
            .fetch_one(&a.pool)
            .await
            .expect("tier 1");
    assert_eq!((show, published), (1, true));
    let without_promo: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM shows s WHERE NOT EXISTS (SELECT 1 FROM promo_codes p WHERE p.show_id = s.id AND p.code = 'TESTPROMO')",
    )
    .fetch_one(&a.pool)
    .await
    .expect("count");
    assert_eq!(without_promo, 0);

    let again = pique(&a.url, &["seed", "--preset", "small"]);
    assert!(!again.status.success());
    assert!(text(&again).contains("--reset"), "{}", text(&again));
    assert!(
        pique(&a.url, &["seed", "--preset", "small", "--if-empty"])
            .status
            .success()
    );
    let reset = pique(&a.url, &["seed", "--preset", "small", "--reset"]);
    assert!(reset.status.success(), "{}", text(&reset));
    assert_eq!(
        titles(a.pool.clone()).await,
        titles(b.pool.clone()).await,
        "reset reproduces the same rows"
    );
    let unknown = pique(&a.url, &["seed", "--preset", "huge"]);
    assert_eq!(unknown.status.code(), Some(2));
    a.cleanup().await;
    b.cleanup().await;
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_answers_the_seeds_clients_on_a_seeded_database() {
    let db = TestDb::new().await.expect("db");
    assert!(
        pique(&db.url, &["seed", "--preset", "small"])
            .status
            .success()
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_pique"))
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .env("DATABASE_URL", &db.url)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn serve"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while http.get(format!("{base}/health/")).send().await.is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // What the seed's Locust ShowBrowsingUser does.
    let shows: Vec<serde_json::Value> = http
        .get(format!("{base}/api/v1/shows/"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    // 40 shows less 2 drafts (ids 7, 32) and 1 soft-deleted (id 13).
    assert_eq!(shows.len(), 37);
    let first = shows[0]["id"].as_i64().expect("id");
    let detail = http
        .get(format!("{base}/api/v1/shows/{first}/"))
        .send()
        .await
        .expect("detail");
    assert_eq!(detail.status().as_u16(), 200);
    for path in [
        "/api/v1/featured-shows/",
        "/api/v1/active-cities/",
        "/api/v1/shows/?start_time__gt=2025-01-01T00:00:00Z",
    ] {
        assert_eq!(
            http.get(format!("{base}{path}"))
                .send()
                .await
                .expect("get")
                .status()
                .as_u16(),
            200,
            "{path}"
        );
    }
    db.cleanup().await;
}

#[test]
fn demo_runs_the_whole_system_and_grades_it() {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let server = pique_store::testing::server_url();
    let redis =
        std::env::var("PIQUE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    let out = Command::new(env!("CARGO_BIN_EXE_pique"))
        .args(["demo", "--run-time", "6s", "--users", "20", "--out"])
        .arg(out_dir.path())
        .env("DATABASE_URL", &server)
        .env("REDIS_URL", &redis)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run demo");
    let s = text(&out);
    // 0 = every threshold held, 1 = one failed; 2 would be an error.
    assert!(matches!(out.status.code(), Some(0 | 1)), "{s}");
    let report = s
        .lines()
        .find_map(|l| l.trim().strip_prefix("report:"))
        .expect("report line")
        .trim()
        .to_string();
    assert!(std::path::Path::new(&report).is_file(), "{report}");
    assert!(s.contains("verdict: "), "{s}");
    let run_dir = std::path::Path::new(&report).parent().expect("run dir");
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run_dir.join("summary.json")).expect("summary"),
    )
    .expect("json");
    assert!(summary["grades"].as_array().is_some_and(|g| !g.is_empty()));
    for file in ["stats.csv", "stats_history.csv", "failures.csv"] {
        assert!(run_dir.join(file).is_file(), "{file}");
    }
    // Reads, the portal and checkouts all ran against the in-process API.
    let names: Vec<String> = std::fs::read_to_string(run_dir.join("stats.csv"))
        .expect("stats")
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(1).map(String::from))
        .collect();
    for expected in ["/api/v1/shows/ [list]", "/checkout/ [session]"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not in {names:?}"
        );
    }
}
