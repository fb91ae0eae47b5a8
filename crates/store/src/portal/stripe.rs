//! A producer's Stripe Connect account id and onboarding state.

use sqlx::PgPool;

use crate::StoreError;

/// Stores `account_id` as the producer's Connect account unless one is already stored, and
/// returns the stored one. Two concurrent first calls both create a Stripe account; the first
/// to write wins and the other's account is simply never used.
pub async fn set_stripe_account(
    pool: &PgPool,
    producer_id: i64,
    account_id: &str,
) -> Result<String, StoreError> {
    let stored = sqlx::query_scalar!(
        "UPDATE producers SET stripe_account_id = COALESCE(stripe_account_id, $2) WHERE id = $1 \
         RETURNING stripe_account_id",
        producer_id,
        account_id
    )
    .fetch_optional(pool)
    .await?
    .flatten();
    stored.ok_or(StoreError::NotFound)
}

/// Records whether the producer's Stripe onboarding is complete.
pub async fn set_onboarding_complete(
    pool: &PgPool,
    producer_id: i64,
    complete: bool,
) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE producers SET stripe_onboarding_complete = $2 WHERE id = $1",
        producer_id,
        complete
    )
    .execute(pool)
    .await?;
    Ok(())
}
