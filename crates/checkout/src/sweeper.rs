//! The hold sweeper: releases lapsed holds and expires their Stripe sessions.
//!
//! Checkout already releases the lapsed holds of the tiers it touches, so a lapsed hold never
//! blocks a buyer; the sweeper tidies up the rest (and keeps `pique_holds_active` true). It is
//! safe to run anywhere, any number of times at once: rows are claimed `FOR UPDATE SKIP
//! LOCKED`.

use pique_store::{StoreError, checkout as store};

use crate::Checkout;

/// Orders released per transaction.
const BATCH: i64 = 500;

impl Checkout {
    /// Releases every lapsed hold and expires its Stripe session; returns how many orders it
    /// expired.
    pub async fn sweep(&self) -> Result<u64, StoreError> {
        let mut total = 0u64;
        loop {
            let swept = store::sweep_expired(&self.pool, BATCH).await?;
            let n = swept.len();
            total += n as u64;
            for (order_id, session) in swept {
                if let Some(s) = session
                    && let Err(e) = self.payments.expire(&s).await
                {
                    tracing::warn!(order_id, session = %s, error = %e, "expiring a lapsed session failed");
                }
            }
            if (n as i64) < BATCH {
                break;
            }
        }
        if let Ok(held) = store::seats_held(&self.pool).await {
            metrics::gauge!("pique_holds_active").set(held as f64);
        }
        Ok(total)
    }
}
