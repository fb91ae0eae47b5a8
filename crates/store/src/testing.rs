//! A fresh, migrated PostgreSQL database for each test, so tests run in parallel.
//!
//! The first test of a run migrates a template database (named after the migrations'
//! checksums, so a changed migration gets a new template); every test then clones it with
//! `CREATE DATABASE ... TEMPLATE`, which takes milliseconds. Databases are dropped on
//! [`TestDb::cleanup`]; ones left behind by a crashed run are removed by the next run's
//! template step once they are a day old.

use std::str::FromStr;

use sqlx::{
    Connection, PgConnection, PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

use crate::{
    StoreError,
    db::{self, MIGRATOR},
};

/// The server tests use: `PIQUE_TEST_DATABASE_URL`, else `DATABASE_URL`, else the local default.
pub fn server_url() -> String {
    std::env::var("PIQUE_TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A throwaway database.
pub struct TestDb {
    /// Pool on the test database.
    pub pool: PgPool,
    /// Its URL, for processes started by the test (e.g. the `pique` binary).
    pub url: String,
    name: String,
    admin: PgConnectOptions,
}

impl TestDb {
    /// Creates a migrated, empty database.
    pub async fn new() -> Result<TestDb, StoreError> {
        let admin = PgConnectOptions::from_str(&server_url())?.database("postgres");
        let template = template_name();
        ensure_template(&admin, &template).await?;
        let name = format!("pique_t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect_with(&admin).await?;
        db::create_database(&mut conn, &name, Some(&template)).await?;
        conn.close().await?;
        let options = admin.clone().database(&name);
        let pool = PgPoolOptions::new()
            .max_connections(20)
            .connect_with(options)
            .await?;
        let url = db_url(&server_url(), &name);
        Ok(TestDb {
            pool,
            url,
            name,
            admin,
        })
    }

    /// Closes the pool and drops the database.
    pub async fn cleanup(self) {
        self.pool.close().await;
        if let Ok(mut conn) = PgConnection::connect_with(&self.admin).await {
            let _ = db::drop_database(&mut conn, &self.name).await;
        }
    }
}

/// Replaces the database name of `server` with `name`.
fn db_url(server: &str, name: &str) -> String {
    match url::Url::parse(server) {
        Ok(mut u) => {
            u.set_path(&format!("/{name}"));
            u.to_string()
        }
        Err(_) => format!("postgres://postgres@127.0.0.1:5432/{name}"),
    }
}

fn template_name() -> String {
    // FNV-1a over the checksums: stable across runs, different for different migrations.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for m in MIGRATOR.iter() {
        for b in m.checksum.iter().chain(m.version.to_le_bytes().iter()) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("pique_tpl_{h:016x}")
}

async fn ensure_template(admin: &PgConnectOptions, template: &str) -> Result<(), StoreError> {
    let mut conn = PgConnection::connect_with(admin).await?;
    // One process builds the template; the others wait on the advisory lock.
    sqlx::query_scalar!("SELECT pg_advisory_lock(727274)")
        .fetch_one(&mut conn)
        .await?;
    let result = build_template_locked(&mut conn, admin, template).await;
    sqlx::query_scalar!("SELECT pg_advisory_unlock(727274)")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    result
}

async fn build_template_locked(
    conn: &mut PgConnection,
    admin: &PgConnectOptions,
    template: &str,
) -> Result<(), StoreError> {
    if db::database_exists(conn, template).await? {
        return Ok(());
    }
    // Templates and databases of crashed runs, a day old. Not younger ones: other checkouts
    // of the repository (other branches, other migrations) may be running tests on the same
    // server right now, from their own template.
    let stale = sqlx::query_scalar!(
        r#"SELECT datname AS "name!" FROM pg_database
            WHERE (datname LIKE 'pique\_tpl\_%' OR datname LIKE 'pique\_t\_%')
              AND (pg_stat_file('base/' || oid || '/PG_VERSION')).modification < now() - interval '1 day'"#
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap_or_default();
    for name in stale {
        let _ = db::drop_database(conn, &name).await;
    }
    let building = format!("{template}_building");
    let _ = db::drop_database(conn, &building).await;
    db::create_database(conn, &building, None).await?;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(admin.clone().database(&building))
        .await?;
    MIGRATOR.run(&pool).await?;
    pool.close().await;
    db::rename_database(conn, &building, template).await?;
    Ok(())
}
