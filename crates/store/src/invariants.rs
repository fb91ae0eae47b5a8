//! The money path's data invariants, as `pique check` verifies them after a load run.

use chrono::{DateTime, Utc};
use pique_core::{Money, jobs::JobSpec};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{StoreError, outbox};

/// One broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Which check.
    pub check: &'static str,
    /// What it is about, e.g. `ticket 3`.
    pub subject: String,
    /// What is wrong.
    pub detail: String,
}

/// Names of the checks [`check_invariants`] runs, in order.
pub const CHECKS: [&str; 8] = [
    "no oversell (sold + held <= quantity)",
    "held = seats of pending orders",
    "sold = seats of paid orders",
    "no lapsed hold left after the sweep",
    "paid orders have one attendee per seat",
    "paid orders have their PDF and email jobs",
    "promo uses within limits and counted",
    "order totals add up",
];

/// Paid orders whose fulfilment jobs are checked per query.
const FULFILMENT_BATCH: i64 = 5_000;

/// Runs every check; `lapsed_before` is the instant of the sweep that preceded (pending
/// orders that expired before it must be gone). At most `limit` rows per check are listed.
pub async fn check_invariants(
    pool: &PgPool,
    lapsed_before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Violation>, StoreError> {
    let mut out = Vec::new();
    let mut push = |check: usize, subject: String, detail: String| {
        out.push(Violation {
            check: CHECKS[check],
            subject,
            detail,
        });
    };
    let oversold = sqlx::query!(
        "SELECT id, quantity, sold, held FROM tickets \
          WHERE sold + held > quantity OR sold < 0 OR held < 0 ORDER BY id LIMIT $1",
        limit
    )
    .fetch_all(pool)
    .await?;
    for t in oversold {
        let detail = format!("quantity {}, sold {}, held {}", t.quantity, t.sold, t.held);
        push(0, format!("ticket {}", t.id), detail);
    }
    let counters = sqlx::query!(
        r#"SELECT t.id, t.held, t.sold, x.pending AS "pending!", x.paid AS "paid!" FROM tickets t
             CROSS JOIN LATERAL (
               SELECT COALESCE(sum(ol.quantity) FILTER (WHERE o.status = 'pending'), 0)::int4 AS pending,
                      COALESCE(sum(ol.quantity) FILTER (WHERE o.status = 'paid'), 0)::int4 AS paid
                 FROM order_lines ol JOIN orders o ON o.id = ol.order_id WHERE ol.ticket_id = t.id) x
            WHERE t.held <> x.pending OR t.sold <> x.paid ORDER BY t.id LIMIT $1"#,
        limit
    )
    .fetch_all(pool)
    .await?;
    for t in counters {
        if t.held != t.pending {
            let detail = format!("held = {} but pending orders hold {}", t.held, t.pending);
            push(1, format!("ticket {}", t.id), detail);
        }
        if t.sold != t.paid {
            let detail = format!("sold = {} but paid orders hold {}", t.sold, t.paid);
            push(2, format!("ticket {}", t.id), detail);
        }
    }
    let lapsed = sqlx::query!(
        "SELECT id, expires_at FROM orders WHERE status = 'pending' AND expires_at <= $1 ORDER BY id LIMIT $2",
        lapsed_before,
        limit
    )
    .fetch_all(pool)
    .await?;
    for o in lapsed {
        let detail = format!("pending, expired at {}", o.expires_at);
        push(3, format!("order {}", o.id), detail);
    }
    let unseated = sqlx::query!(
        r#"SELECT o.id, x.seats AS "seats!", x.attendees AS "attendees!" FROM orders o
             CROSS JOIN LATERAL (SELECT COALESCE((SELECT sum(quantity) FROM order_lines WHERE order_id = o.id), 0)::int8 AS seats,
                                        (SELECT count(*) FROM attendees WHERE order_id = o.id) AS attendees) x
            WHERE o.status = 'paid' AND x.seats <> x.attendees ORDER BY o.id LIMIT $1"#,
        limit
    )
    .fetch_all(pool)
    .await?;
    for o in unseated {
        let detail = format!("{} seats, {} attendees", o.seats, o.attendees);
        push(4, format!("order {}", o.id), detail);
    }
    for id in orders_missing_fulfilment_jobs(pool, limit).await? {
        let detail = "missing outbox job (email confirmation or a ticket PDF)".to_string();
        push(5, format!("order {id}"), detail);
    }
    let promos = sqlx::query!(
        r#"SELECT p.id, p.code, p.uses, p.max_uses, x.n AS "orders!" FROM promo_codes p
             CROSS JOIN LATERAL (SELECT count(*) AS n FROM orders o
                                  WHERE o.promo_code_id = p.id AND o.status IN ('pending', 'paid')) x
            WHERE (p.max_uses IS NOT NULL AND p.uses > p.max_uses) OR p.uses <> x.n ORDER BY p.id LIMIT $1"#,
        limit
    )
    .fetch_all(pool)
    .await?;
    for p in promos {
        let detail = format!(
            "uses {}, max_uses {:?}, pending+paid orders using it {}",
            p.uses, p.max_uses, p.orders
        );
        push(6, format!("promo {} ({})", p.id, p.code), detail);
    }
    let totals = sqlx::query!(
        r#"SELECT o.id, o.subtotal, o.discount, o.total, x.lines AS "lines!: Money" FROM orders o
             CROSS JOIN LATERAL (SELECT COALESCE(sum(line_total), 0) AS lines FROM order_lines WHERE order_id = o.id) x
            WHERE o.total <> o.subtotal - o.discount OR o.total <> x.lines ORDER BY o.id LIMIT $1"#,
        limit
    )
    .fetch_all(pool)
    .await?;
    for o in totals {
        let detail = format!(
            "subtotal {} - discount {} vs total {}, lines {}",
            o.subtotal, o.discount, o.total, o.lines
        );
        push(7, format!("order {}", o.id), detail);
    }
    Ok(out)
}

/// Paid orders (at most `limit`) missing one of the jobs [`JobSpec::fulfilment`] says they
/// need. The keys are computed here, from the contract, and looked up in batches.
async fn orders_missing_fulfilment_jobs(pool: &PgPool, limit: i64) -> Result<Vec<i64>, StoreError> {
    let mut missing = Vec::new();
    let mut after = 0i64;
    loop {
        let orders = sqlx::query!(
            r#"SELECT o.id, COALESCE(array_agg(a.uuid ORDER BY a.id) FILTER (WHERE a.uuid IS NOT NULL), '{}') AS "attendees!: Vec<Uuid>"
                 FROM orders o LEFT JOIN attendees a ON a.order_id = o.id
                WHERE o.status = 'paid' AND o.id > $1 GROUP BY o.id ORDER BY o.id LIMIT $2"#,
            after,
            FULFILMENT_BATCH
        )
        .fetch_all(pool)
        .await?;
        let Some(last) = orders.last() else { break };
        after = last.id;
        let mut keys = Vec::new();
        let mut owner = std::collections::HashMap::new();
        for o in &orders {
            for job in JobSpec::fulfilment(o.id, &o.attendees) {
                let key = job.dedup_key();
                owner.insert(key.clone(), o.id);
                keys.push(key);
            }
        }
        let mut ids: Vec<i64> = outbox::missing_keys(pool, &keys)
            .await?
            .iter()
            .filter_map(|k| owner.get(k).copied())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        missing.extend(ids);
        if missing.len() as i64 >= limit || (orders.len() as i64) < FULFILMENT_BATCH {
            break;
        }
    }
    missing.truncate(usize::try_from(limit).unwrap_or(0));
    Ok(missing)
}
