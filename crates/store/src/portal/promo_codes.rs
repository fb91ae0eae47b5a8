//! The promo codes of a producer's shows.

use chrono::{DateTime, Utc};
use pique_core::{Money, pricing::DiscountType};
use serde::Serialize;
use sqlx::PgPool;

use super::{Outcome, owns_show};
use crate::StoreError;

/// A promo code of one of the producer's shows.
#[derive(Debug, Clone, Serialize)]
pub struct PortalPromo {
    /// Primary key.
    pub id: i64,
    /// Show id.
    pub show: i64,
    /// The code (matched case-insensitively).
    pub code: String,
    /// Percent (0-100) or amount off.
    pub discount: Money,
    /// How `discount` applies.
    pub discount_type: DiscountType,
    /// Use limit.
    pub max_uses: Option<i32>,
    /// Times used by paid orders.
    pub uses: i32,
    /// Valid from.
    pub valid_from: Option<DateTime<Utc>>,
    /// Valid until.
    pub valid_until: Option<DateTime<Utc>>,
    /// Switched on.
    pub is_active: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// The editable fields of a promo code, already validated.
#[derive(Debug, Clone, PartialEq)]
pub struct PromoData {
    /// Code.
    pub code: String,
    /// Discount.
    pub discount: Money,
    /// Percent or amount.
    pub discount_type: DiscountType,
    /// Use limit.
    pub max_uses: Option<i32>,
    /// Valid from.
    pub valid_from: Option<DateTime<Utc>>,
    /// Valid until.
    pub valid_until: Option<DateTime<Utc>>,
    /// Switched on.
    pub is_active: bool,
}

impl PromoData {
    /// The editable fields of an existing code.
    pub fn from_promo(p: &PortalPromo) -> PromoData {
        PromoData {
            code: p.code.clone(),
            discount: p.discount,
            discount_type: p.discount_type,
            max_uses: p.max_uses,
            valid_from: p.valid_from,
            valid_until: p.valid_until,
            is_active: p.is_active,
        }
    }
}

const PROMO_DUPLICATE: &str = "A promo code with this code already exists for this show.";

/// Promo codes of one of the producer's shows; `None` if the show is not theirs.
pub async fn list_promos(
    pool: &PgPool,
    producer_id: i64,
    show_id: i64,
) -> Result<Option<Vec<PortalPromo>>, StoreError> {
    if !owns_show(pool, producer_id, show_id).await? {
        return Ok(None);
    }
    Ok(Some(promos(pool, producer_id, show_id, None).await?))
}

/// One promo code of one of the producer's shows.
pub async fn get_promo(
    pool: &PgPool,
    producer_id: i64,
    show_id: i64,
    promo_id: i64,
) -> Result<Option<PortalPromo>, StoreError> {
    Ok(promos(pool, producer_id, show_id, Some(promo_id))
        .await?
        .pop())
}

/// The codes (or code `id`) of one of the producer's live shows, oldest first.
async fn promos(
    pool: &PgPool,
    producer_id: i64,
    show_id: i64,
    id: Option<i64>,
) -> Result<Vec<PortalPromo>, StoreError> {
    Ok(sqlx::query_as!(
        PortalPromo,
        r#"SELECT c.id, c.show_id AS show, c.code, c.discount, c.discount_type AS "discount_type: DiscountType",
                  c.max_uses, c.uses, c.valid_from, c.valid_until, c.is_active, c.created_at
             FROM promo_codes c JOIN shows s ON s.id = c.show_id AND s.producer_id = $1 AND NOT s.is_deleted
            WHERE c.show_id = $2 AND ($3::int8 IS NULL OR c.id = $3) ORDER BY c.id"#,
        producer_id,
        show_id,
        id
    )
    .fetch_all(pool)
    .await?)
}

/// Adds a promo code to one of the producer's shows.
pub async fn create_promo(
    pool: &PgPool,
    producer_id: i64,
    show_id: i64,
    d: &PromoData,
) -> Result<Outcome<PortalPromo>, StoreError> {
    let created = sqlx::query_scalar!(
        "INSERT INTO promo_codes (show_id, code, discount, discount_type, max_uses, valid_from, valid_until, is_active) \
         SELECT s.id, $3, $4, $5, $6, $7, $8, $9 FROM shows s \
          WHERE s.id = $2 AND s.producer_id = $1 AND NOT s.is_deleted RETURNING id",
        producer_id,
        show_id,
        d.code,
        d.discount as Money,
        d.discount_type as DiscountType,
        d.max_uses,
        d.valid_from,
        d.valid_until,
        d.is_active
    )
    .fetch_optional(pool)
    .await;
    written(pool, producer_id, show_id, created).await
}

/// Rewrites a promo code. `max_uses` below the uses so far is refused.
pub async fn update_promo(
    pool: &PgPool,
    producer_id: i64,
    show_id: i64,
    promo_id: i64,
    d: &PromoData,
) -> Result<Outcome<PortalPromo>, StoreError> {
    let Some(current) = get_promo(pool, producer_id, show_id, promo_id).await? else {
        return Ok(Outcome::NotFound);
    };
    if let Some(max) = d.max_uses
        && max < current.uses
    {
        return Ok(Outcome::invalid(
            "max_uses",
            format!(
                "Ensure this value is greater than or equal to {} (times already used).",
                current.uses
            ),
        ));
    }
    let updated = sqlx::query_scalar!(
        "UPDATE promo_codes c SET code = $4, discount = $5, discount_type = $6, max_uses = $7, valid_from = $8, \
                valid_until = $9, is_active = $10 \
           FROM shows s WHERE s.id = c.show_id AND s.producer_id = $1 AND NOT s.is_deleted \
            AND c.show_id = $2 AND c.id = $3 AND ($7::int4 IS NULL OR $7 >= c.uses) RETURNING c.id",
        producer_id,
        show_id,
        promo_id,
        d.code,
        d.discount as Money,
        d.discount_type as DiscountType,
        d.max_uses,
        d.valid_from,
        d.valid_until,
        d.is_active
    )
    .fetch_optional(pool)
    .await;
    written(pool, producer_id, show_id, updated).await
}

/// The code a write returned the id of, or why there is none.
async fn written(
    pool: &PgPool,
    producer_id: i64,
    show_id: i64,
    result: Result<Option<i64>, sqlx::Error>,
) -> Result<Outcome<PortalPromo>, StoreError> {
    match result {
        Ok(Some(id)) => Ok(Outcome::found(
            get_promo(pool, producer_id, show_id, id).await?,
        )),
        Ok(None) => Ok(Outcome::NotFound),
        Err(e) => {
            let e = StoreError::from(e);
            if e.is_unique_violation() {
                Ok(Outcome::invalid("code", PROMO_DUPLICATE))
            } else {
                Err(e)
            }
        }
    }
}

/// Deletes a promo code no order has used; a used one must stay (orders reference it) and
/// can be deactivated instead.
pub async fn delete_promo(
    pool: &PgPool,
    producer_id: i64,
    show_id: i64,
    promo_id: i64,
) -> Result<Outcome<()>, StoreError> {
    let done = sqlx::query!(
        "DELETE FROM promo_codes c USING shows s WHERE s.id = c.show_id AND s.producer_id = $1 AND NOT s.is_deleted \
         AND c.show_id = $2 AND c.id = $3 AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.promo_code_id = c.id)",
        producer_id,
        show_id,
        promo_id
    )
    .execute(pool)
    .await?;
    if done.rows_affected() > 0 {
        return Ok(Outcome::Done(()));
    }
    Ok(
        match get_promo(pool, producer_id, show_id, promo_id).await? {
            None => Outcome::NotFound,
            Some(_) => Outcome::Conflict(
                "This promo code has been used by orders; deactivate it instead.".into(),
            ),
        },
    )
}
