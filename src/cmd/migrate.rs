//! `pique migrate`.

use anyhow::Context;
use pique_core::Config;

/// Creates the database if missing and applies every migration.
pub async fn run(config: &Config) -> anyhow::Result<()> {
    pique_store::db::create_database_if_missing(&config.database_url)
        .await
        .with_context(|| {
            format!(
                "cannot reach PostgreSQL at {}",
                pique_core::config::mask_url_password(&config.database_url)
            )
        })?;
    let pool = pique_store::db::pool(&config.database_url, &config.pg)?;
    pique_store::db::migrate(&pool)
        .await
        .context("migration failed")?;
    tracing::info!("migrations applied");
    pool.close().await;
    Ok(())
}
