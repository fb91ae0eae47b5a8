//! `pique seed`.

use anyhow::{Context, anyhow};
use clap::Args;
use pique_core::Config;
use pique_store::seed::{self, Preset};

/// Flags of `pique seed`.
#[derive(Debug, Args)]
pub struct SeedArgs {
    /// small (40 shows), medium (1,000) or large (100,000).
    #[arg(long, default_value = "small")]
    pub preset: String,
    /// Empty every table first.
    #[arg(long)]
    pub reset: bool,
    /// Do nothing if the database already has shows (for `docker compose up`, run on every start).
    #[arg(long, conflicts_with = "reset")]
    pub if_empty: bool,
}

/// Migrates, then seeds.
pub async fn run(config: &Config, args: SeedArgs) -> anyhow::Result<()> {
    let preset = Preset::by_name(&args.preset).ok_or_else(|| {
        anyhow!(
            "unknown preset {:?}; use small, medium or large",
            args.preset
        )
    })?;
    super::migrate::run(config).await?;
    let pool = pique_store::db::pool(&config.database_url, &config.pg)?;
    let report = match seed::seed(&pool, preset, args.reset).await {
        Err(pique_store::StoreError::Conflict(why)) if args.if_empty => {
            println!("not seeding: {why}");
            return Ok(());
        }
        other => other.context("seeding failed")?,
    };
    println!(
        "seeded preset {}: {} shows, {} ticket tiers, {} venues, {} performers, {} producers in {} ms",
        report.preset,
        report.shows,
        report.tickets,
        report.venues,
        report.performers,
        report.producers,
        report.millis
    );
    println!(
        "producer logins: producer1..producer{} / {}",
        report.producers,
        seed::DEMO_PASSWORD
    );
    pool.close().await;
    Ok(())
}
