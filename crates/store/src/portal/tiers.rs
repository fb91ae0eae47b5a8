//! The ticket tiers of a producer's shows, with their sold/held counters.

use chrono::{DateTime, Utc};
use pique_core::Money;
use serde::Serialize;
use sqlx::PgPool;

use super::{Outcome, owns_show};
use crate::StoreError;

/// A ticket tier with its counters, as the producer sees it.
#[derive(Debug, Clone, Serialize)]
pub struct PortalTier {
    /// Primary key.
    pub id: i64,
    /// Show id.
    pub show: i64,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Capacity.
    pub quantity: i32,
    /// Price (minimum for donation tiers).
    pub price: Money,
    /// Pay what you want.
    pub is_donation_based: bool,
    /// Most per order.
    pub max_per_order: i32,
    /// Display order.
    pub position: i32,
    /// Paid seats.
    pub sold: i32,
    /// Seats held by pending orders.
    pub held: i32,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// The editable fields of a tier, already validated.
#[derive(Debug, Clone, PartialEq)]
pub struct TierData {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Capacity.
    pub quantity: i32,
    /// Price.
    pub price: Money,
    /// Donation tier.
    pub is_donation_based: bool,
    /// Per-order limit.
    pub max_per_order: i32,
    /// Display order.
    pub position: i32,
}

impl TierData {
    /// The editable fields of an existing tier.
    pub fn from_tier(t: &PortalTier) -> TierData {
        TierData {
            name: t.name.clone(),
            description: t.description.clone(),
            quantity: t.quantity,
            price: t.price,
            is_donation_based: t.is_donation_based,
            max_per_order: t.max_per_order,
            position: t.position,
        }
    }
}

/// Tiers of one of the producer's shows; `None` if the show is not theirs.
pub async fn list_tiers(
    pool: &PgPool,
    producer_id: i64,
    show_id: i64,
) -> Result<Option<Vec<PortalTier>>, StoreError> {
    if !owns_show(pool, producer_id, show_id).await? {
        return Ok(None);
    }
    Ok(Some(tiers(pool, producer_id, show_id, None).await?))
}

/// One tier of one of the producer's shows.
pub async fn get_tier(
    pool: &PgPool,
    producer_id: i64,
    show_id: i64,
    tier_id: i64,
) -> Result<Option<PortalTier>, StoreError> {
    Ok(tiers(pool, producer_id, show_id, Some(tier_id))
        .await?
        .pop())
}

/// The tiers (or tier `id`) of one of the producer's live shows, in display order.
async fn tiers(
    pool: &PgPool,
    producer_id: i64,
    show_id: i64,
    id: Option<i64>,
) -> Result<Vec<PortalTier>, StoreError> {
    Ok(sqlx::query_as!(
        PortalTier,
        "SELECT t.id, t.show_id AS show, t.name, t.description, t.quantity, t.price, t.is_donation_based, \
                t.max_per_order, t.position, t.sold, t.held, t.created_at, t.updated_at \
           FROM tickets t JOIN shows s ON s.id = t.show_id AND s.producer_id = $1 AND NOT s.is_deleted \
          WHERE t.show_id = $2 AND ($3::int8 IS NULL OR t.id = $3) ORDER BY t.position, t.id",
        producer_id,
        show_id,
        id
    )
    .fetch_all(pool)
    .await?)
}

/// Adds a tier to one of the producer's shows.
pub async fn create_tier(
    pool: &PgPool,
    producer_id: i64,
    author_id: i64,
    show_id: i64,
    d: &TierData,
) -> Result<Outcome<PortalTier>, StoreError> {
    let id = sqlx::query_scalar!(
        "INSERT INTO tickets (show_id, name, description, quantity, price, is_donation_based, max_per_order, \
                              position, author_id) \
         SELECT s.id, $3, $4, $5, $6, $7, $8, $9, $10 FROM shows s \
          WHERE s.id = $2 AND s.producer_id = $1 AND NOT s.is_deleted RETURNING id",
        producer_id,
        show_id,
        d.name,
        d.description,
        d.quantity,
        d.price as Money,
        d.is_donation_based,
        d.max_per_order,
        d.position,
        author_id
    )
    .fetch_optional(pool)
    .await?;
    let Some(id) = id else {
        return Ok(Outcome::NotFound);
    };
    Ok(Outcome::found(
        get_tier(pool, producer_id, show_id, id).await?,
    ))
}

/// Rewrites a tier. The quantity can never go below the seats already sold or held: the
/// condition is part of the `UPDATE`, so a checkout committing at the same moment cannot
/// slip between a check and the write (and the table's CHECK backs it up).
pub async fn update_tier(
    pool: &PgPool,
    producer_id: i64,
    show_id: i64,
    tier_id: i64,
    d: &TierData,
) -> Result<Outcome<PortalTier>, StoreError> {
    let updated = sqlx::query_scalar!(
        "UPDATE tickets t SET name = $4, description = $5, quantity = $6, price = $7, is_donation_based = $8, \
                max_per_order = $9, position = $10, updated_at = now() \
           FROM shows s WHERE s.id = t.show_id AND s.producer_id = $1 AND NOT s.is_deleted \
            AND t.show_id = $2 AND t.id = $3 AND $6 >= t.sold + t.held RETURNING t.id",
        producer_id,
        show_id,
        tier_id,
        d.name,
        d.description,
        d.quantity,
        d.price as Money,
        d.is_donation_based,
        d.max_per_order,
        d.position
    )
    .fetch_optional(pool)
    .await?;
    let current = get_tier(pool, producer_id, show_id, tier_id).await?;
    Ok(match (updated, current) {
        (_, None) => Outcome::NotFound,
        (Some(_), Some(t)) => Outcome::Done(t),
        (None, Some(t)) => Outcome::invalid(
            "quantity",
            format!(
                "Ensure this value is greater than or equal to {} (tickets already sold or held).",
                t.sold + t.held
            ),
        ),
    })
}

/// Deletes a tier nobody has ordered yet; one with orders must stay (orders reference it).
pub async fn delete_tier(
    pool: &PgPool,
    producer_id: i64,
    show_id: i64,
    tier_id: i64,
) -> Result<Outcome<()>, StoreError> {
    let done = sqlx::query!(
        "DELETE FROM tickets t USING shows s WHERE s.id = t.show_id AND s.producer_id = $1 AND NOT s.is_deleted \
         AND t.show_id = $2 AND t.id = $3 AND t.sold = 0 AND t.held = 0 \
         AND NOT EXISTS (SELECT 1 FROM order_lines ol WHERE ol.ticket_id = t.id)",
        producer_id,
        show_id,
        tier_id
    )
    .execute(pool)
    .await?;
    if done.rows_affected() > 0 {
        return Ok(Outcome::Done(()));
    }
    Ok(match get_tier(pool, producer_id, show_id, tier_id).await? {
        None => Outcome::NotFound,
        Some(_) => Outcome::Conflict("This ticket tier has orders and cannot be deleted.".into()),
    })
}
