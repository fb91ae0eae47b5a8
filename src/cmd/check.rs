//! `pique check`: verifies the money path's data invariants after a load run.
//!
//! It first runs the hold sweeper (releasing lapsed holds and expiring their Stripe
//! sessions, best effort), then checks: no tier with sold + held > quantity; `held` equals
//! the seats of pending orders and `sold` those of paid orders; no lapsed hold left; every
//! paid order has one attendee per seat and its PDF and email jobs in the outbox; promo uses
//! within their limits and matching the orders; order totals add up. Prints one line per
//! check and every violation (at most `--limit` per check); exits 1 if any check fails.

use anyhow::Context;
use clap::Args;
use pique_checkout::Checkout;
use pique_core::Config;
use pique_store::invariants;

/// Flags of `pique check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Do not run the hold sweeper first (lapsed holds then count as violations only if
    /// they lapsed before the check started).
    #[arg(long)]
    pub no_sweep: bool,
    /// Violations listed per check.
    #[arg(long, default_value_t = 20)]
    pub limit: i64,
}

/// Runs the checks; returns the process exit code (0 all good, 1 a check failed).
pub async fn run(config: Config, args: CheckArgs) -> anyhow::Result<u8> {
    let pool = pique_store::db::pool(&config.database_url, &config.pg)?;
    let checkout =
        Checkout::new(pool.clone(), &config).context("cannot build the Stripe client")?;
    let started = chrono::Utc::now();
    if !args.no_sweep {
        let released = checkout.sweep().await.context("hold sweep failed")?;
        println!("sweep: released {released} lapsed hold(s)");
    }
    let violations = invariants::check_invariants(&pool, started, args.limit)
        .await
        .context("checks failed to run")?;
    for check in invariants::CHECKS {
        let failed: Vec<_> = violations.iter().filter(|v| v.check == check).collect();
        if failed.is_empty() {
            println!("ok    {check}");
        } else {
            println!("FAIL  {check} ({} listed)", failed.len());
            for v in failed {
                println!("        {}: {}", v.subject, v.detail);
            }
        }
    }
    if violations.is_empty() {
        println!("all invariants hold");
        Ok(0)
    } else {
        println!("{} violation(s)", violations.len());
        Ok(1)
    }
}
