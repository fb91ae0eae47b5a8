//! The checkout page design of a producer's shows.

use serde::Serialize;
use sqlx::PgPool;

use crate::StoreError;

/// A show's page design (defaults when none was saved).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortalPageDesign {
    /// Show id.
    pub show: i64,
    /// CSS colour.
    pub primary_color: String,
    /// CSS colour.
    pub secondary_color: String,
    /// Background image URL.
    pub background_image: Option<String>,
}

/// The page design of one of the producer's shows (the table's defaults if never saved).
pub async fn get_page_design(
    pool: &PgPool,
    producer_id: i64,
    show_id: i64,
) -> Result<Option<PortalPageDesign>, StoreError> {
    Ok(sqlx::query_as!(
        PortalPageDesign,
        r#"SELECT s.id AS show, COALESCE(d.primary_color, '#000000') AS "primary_color!",
                  COALESCE(d.secondary_color, '#ffffff') AS "secondary_color!", d.background_image
             FROM shows s LEFT JOIN page_designs d ON d.show_id = s.id
            WHERE s.id = $2 AND s.producer_id = $1 AND NOT s.is_deleted"#,
        producer_id,
        show_id
    )
    .fetch_optional(pool)
    .await?)
}

/// Creates or replaces the page design of one of the producer's shows.
pub async fn put_page_design(
    pool: &PgPool,
    producer_id: i64,
    show_id: i64,
    primary_color: &str,
    secondary_color: &str,
    background_image: Option<&str>,
) -> Result<Option<PortalPageDesign>, StoreError> {
    Ok(sqlx::query_as!(
        PortalPageDesign,
        "INSERT INTO page_designs (show_id, primary_color, secondary_color, background_image) \
         SELECT s.id, $3, $4, $5 FROM shows s WHERE s.id = $2 AND s.producer_id = $1 AND NOT s.is_deleted \
         ON CONFLICT (show_id) DO UPDATE SET primary_color = EXCLUDED.primary_color, \
         secondary_color = EXCLUDED.secondary_color, background_image = EXCLUDED.background_image \
         RETURNING show_id AS show, primary_color, secondary_color, background_image",
        producer_id,
        show_id,
        primary_color,
        secondary_color,
        background_image
    )
    .fetch_optional(pool)
    .await?)
}
