//! A producer's shows: drafts, publishing, soft delete.

use chrono::{DateTime, Utc};
use pique_core::{ShowStatus, query::PageRequest, slug::slugify};
use serde::Serialize;
use sqlx::PgPool;

use super::{Outcome, Page, contains_pattern, limit_offset};
use crate::StoreError;

/// A show as its producer sees it: every column, including drafts and soft-delete state.
#[derive(Debug, Clone, Serialize)]
pub struct PortalShow {
    /// Primary key.
    pub id: i64,
    /// Title.
    pub title: String,
    /// Unique URL slug.
    pub slug: String,
    /// Description.
    pub description: String,
    /// Doors open.
    pub door_time: Option<DateTime<Utc>>,
    /// Start.
    pub start_time: DateTime<Utc>,
    /// End.
    pub end_time: Option<DateTime<Utc>>,
    /// IANA time zone name.
    pub time_zone: String,
    /// Free text ("21+").
    pub age_restriction: String,
    /// Image URL.
    pub image: Option<String>,
    /// Banner image URL.
    pub banner_image: Option<String>,
    /// Square image URL.
    pub square_image: Option<String>,
    /// Video URL.
    pub featured_video: Option<String>,
    /// Meta campaign id.
    pub facebook_campaign_id: Option<String>,
    /// Visible to the public.
    pub published: bool,
    /// Refund policy text.
    pub refund_policy: String,
    /// Soft-deleted.
    pub is_deleted: bool,
    /// When it was soft-deleted.
    pub deleted_at: Option<DateTime<Utc>>,
    /// When the draft was created.
    pub draft_created_at: Option<DateTime<Utc>>,
    /// Last edit while a draft.
    pub draft_updated_at: Option<DateTime<Utc>>,
    /// Row creation.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Venue id.
    pub venue: i64,
    /// Producer id.
    pub producer: i64,
    /// Draft, published or deleted.
    pub status: ShowStatus,
    /// Seats across all tiers.
    pub tickets_total: i64,
    /// Seats sold across all tiers.
    pub tickets_sold: i64,
}

/// The editable fields of a show, already validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ShowData {
    /// Title (non-empty).
    pub title: String,
    /// Explicit slug; on create `None` derives it from the title.
    pub slug: Option<String>,
    /// Description.
    pub description: String,
    /// Doors open.
    pub door_time: Option<DateTime<Utc>>,
    /// Start.
    pub start_time: DateTime<Utc>,
    /// End (not before start).
    pub end_time: Option<DateTime<Utc>>,
    /// IANA time zone.
    pub time_zone: String,
    /// Free text.
    pub age_restriction: String,
    /// Image URL.
    pub image: Option<String>,
    /// Banner URL.
    pub banner_image: Option<String>,
    /// Square image URL.
    pub square_image: Option<String>,
    /// Video URL.
    pub featured_video: Option<String>,
    /// Meta campaign id.
    pub facebook_campaign_id: Option<String>,
    /// Refund policy.
    pub refund_policy: String,
    /// Venue id (must exist).
    pub venue: i64,
}

impl ShowData {
    /// The editable fields of an existing show, to apply a partial update onto.
    pub fn from_show(s: &PortalShow) -> ShowData {
        ShowData {
            title: s.title.clone(),
            slug: Some(s.slug.clone()),
            description: s.description.clone(),
            door_time: s.door_time,
            start_time: s.start_time,
            end_time: s.end_time,
            time_zone: s.time_zone.clone(),
            age_restriction: s.age_restriction.clone(),
            image: s.image.clone(),
            banner_image: s.banner_image.clone(),
            square_image: s.square_image.clone(),
            featured_video: s.featured_video.clone(),
            facebook_campaign_id: s.facebook_campaign_id.clone(),
            refund_policy: s.refund_policy.clone(),
            venue: s.venue,
        }
    }
}

/// Filters of the portal's show list.
#[derive(Debug, Clone, Default)]
pub struct ShowListFilters {
    /// `None` = drafts and published (not deleted).
    pub status: Option<ShowStatus>,
    /// Case-insensitive substring of the title.
    pub search: Option<String>,
    /// Starts after.
    pub start_time_gt: Option<DateTime<Utc>>,
    /// Starts before.
    pub start_time_lt: Option<DateTime<Utc>>,
}

/// The producer's shows matching `f`, by start time.
pub async fn list_shows(
    pool: &PgPool,
    producer_id: i64,
    f: &ShowListFilters,
    page: PageRequest,
) -> Result<Page<PortalShow>, StoreError> {
    let search = f.search.as_deref().map(contains_pattern);
    let count = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM shows s
            WHERE s.producer_id = $1
              AND CASE $2::text WHEN 'deleted' THEN s.is_deleted WHEN 'published' THEN NOT s.is_deleted AND s.published
                                WHEN 'draft' THEN NOT s.is_deleted AND NOT s.published ELSE NOT s.is_deleted END
              AND ($3::text IS NULL OR s.title ILIKE $3)
              AND ($4::timestamptz IS NULL OR s.start_time > $4) AND ($5::timestamptz IS NULL OR s.start_time < $5)"#,
        producer_id,
        f.status as Option<ShowStatus>,
        search,
        f.start_time_gt,
        f.start_time_lt
    )
    .fetch_one(pool)
    .await?;
    let rows = shows(pool, producer_id, f, None, Some(page)).await?;
    Ok(Page { rows, count })
}

/// One of the producer's (not deleted) shows.
pub async fn get_show(
    pool: &PgPool,
    producer_id: i64,
    show_id: i64,
) -> Result<Option<PortalShow>, StoreError> {
    let filters = ShowListFilters::default();
    Ok(shows(pool, producer_id, &filters, Some(show_id), None)
        .await?
        .pop())
}

/// The producer's shows matching `f` (and `id`), by start time: the show list and a show.
async fn shows(
    pool: &PgPool,
    producer_id: i64,
    f: &ShowListFilters,
    id: Option<i64>,
    page: Option<PageRequest>,
) -> Result<Vec<PortalShow>, StoreError> {
    let search = f.search.as_deref().map(contains_pattern);
    let (limit, offset) = limit_offset(page);
    Ok(sqlx::query_as!(
        PortalShow,
        r#"SELECT s.id, s.title, s.slug, s.description, s.door_time, s.start_time, s.end_time, s.time_zone,
                  s.age_restriction, s.image, s.banner_image, s.square_image, s.featured_video,
                  s.facebook_campaign_id, s.published, s.refund_policy, s.is_deleted, s.deleted_at,
                  s.draft_created_at, s.draft_updated_at, s.created_at, s.updated_at,
                  s.venue_id AS venue, s.producer_id AS producer,
                  CASE WHEN s.is_deleted THEN 'deleted' WHEN s.published THEN 'published' ELSE 'draft' END AS "status!: ShowStatus",
                  COALESCE((SELECT SUM(t.quantity) FROM tickets t WHERE t.show_id = s.id), 0)::int8 AS "tickets_total!",
                  COALESCE((SELECT SUM(t.sold) FROM tickets t WHERE t.show_id = s.id), 0)::int8 AS "tickets_sold!"
             FROM shows s
            WHERE s.producer_id = $1
              AND CASE $2::text WHEN 'deleted' THEN s.is_deleted WHEN 'published' THEN NOT s.is_deleted AND s.published
                                WHEN 'draft' THEN NOT s.is_deleted AND NOT s.published ELSE NOT s.is_deleted END
              AND ($3::text IS NULL OR s.title ILIKE $3)
              AND ($4::timestamptz IS NULL OR s.start_time > $4) AND ($5::timestamptz IS NULL OR s.start_time < $5)
              AND ($6::int8 IS NULL OR s.id = $6)
            ORDER BY s.start_time, s.id LIMIT $7 OFFSET $8"#,
        producer_id,
        f.status as Option<ShowStatus>,
        search,
        f.start_time_gt,
        f.start_time_lt,
        id,
        limit,
        offset
    )
    .fetch_all(pool)
    .await?)
}

/// Whether venue `id` exists.
pub async fn venue_exists(pool: &PgPool, id: i64) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM venues WHERE id = $1) AS "exists!""#,
        id
    )
    .fetch_one(pool)
    .await?)
}

/// Longest generated slug (before a `-N` suffix).
const MAX_SLUG_BASE: usize = 80;

/// Creates a draft show for the producer. Without an explicit slug one is made from the
/// title, with `-2`, `-3`... appended while it is taken (the unique index decides, so two
/// producers creating "Jazz Night" at once both succeed).
pub async fn create_show(
    pool: &PgPool,
    producer_id: i64,
    author_id: i64,
    data: &ShowData,
) -> Result<Outcome<PortalShow>, StoreError> {
    let explicit = data.slug.is_some();
    let base = match &data.slug {
        Some(s) => s.clone(),
        None => {
            let s: String = slugify(&data.title).chars().take(MAX_SLUG_BASE).collect();
            let s = s.trim_end_matches('-').to_string();
            if s.is_empty() { "show".to_string() } else { s }
        }
    };
    for attempt in 1..=50 {
        let slug = if attempt == 1 {
            base.clone()
        } else {
            format!("{base}-{attempt}")
        };
        let id = sqlx::query_scalar!(
            "INSERT INTO shows (title, slug, description, door_time, start_time, end_time, time_zone, \
             age_restriction, image, banner_image, square_image, featured_video, facebook_campaign_id, \
             refund_policy, venue_id, producer_id, author_id, published, draft_created_at, draft_updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, FALSE, now(), now()) \
             ON CONFLICT (slug) DO NOTHING RETURNING id",
            data.title,
            slug,
            data.description,
            data.door_time,
            data.start_time,
            data.end_time,
            data.time_zone,
            data.age_restriction,
            data.image,
            data.banner_image,
            data.square_image,
            data.featured_video,
            data.facebook_campaign_id,
            data.refund_policy,
            data.venue,
            producer_id,
            author_id
        )
        .fetch_optional(pool)
        .await?;
        match id {
            Some(id) => {
                return get_show(pool, producer_id, id)
                    .await?
                    .map(Outcome::Done)
                    .ok_or(StoreError::NotFound);
            }
            None if explicit => {
                return Ok(Outcome::invalid(
                    "slug",
                    "show with this slug already exists.",
                ));
            }
            None => continue,
        }
    }
    Ok(Outcome::invalid(
        "slug",
        "Could not find a free slug for this title; give one explicitly.",
    ))
}

/// Writes every editable field of one of the producer's shows.
pub async fn update_show(
    pool: &PgPool,
    producer_id: i64,
    show_id: i64,
    data: &ShowData,
) -> Result<Outcome<PortalShow>, StoreError> {
    let result = sqlx::query!(
        "UPDATE shows SET title = $3, slug = COALESCE($4, slug), description = $5, door_time = $6, \
         start_time = $7, end_time = $8, time_zone = $9, age_restriction = $10, image = $11, \
         banner_image = $12, square_image = $13, featured_video = $14, facebook_campaign_id = $15, \
         refund_policy = $16, venue_id = $17, updated_at = now(), \
         draft_updated_at = CASE WHEN published THEN draft_updated_at ELSE now() END \
         WHERE id = $1 AND producer_id = $2 AND NOT is_deleted",
        show_id,
        producer_id,
        data.title,
        data.slug,
        data.description,
        data.door_time,
        data.start_time,
        data.end_time,
        data.time_zone,
        data.age_restriction,
        data.image,
        data.banner_image,
        data.square_image,
        data.featured_video,
        data.facebook_campaign_id,
        data.refund_policy,
        data.venue
    )
    .execute(pool)
    .await;
    match result {
        Ok(done) if done.rows_affected() == 0 => Ok(Outcome::NotFound),
        Ok(_) => Ok(Outcome::found(get_show(pool, producer_id, show_id).await?)),
        Err(e) => {
            let e = StoreError::from(e);
            if e.is_unique_violation() {
                Ok(Outcome::invalid(
                    "slug",
                    "show with this slug already exists.",
                ))
            } else {
                Err(e)
            }
        }
    }
}

/// Publishes or unpublishes a show. Publishing needs at least one ticket tier: a public show
/// nobody can buy a ticket for is a mistake, not a choice.
pub async fn set_published(
    pool: &PgPool,
    producer_id: i64,
    show_id: i64,
    published: bool,
) -> Result<Outcome<PortalShow>, StoreError> {
    let done = sqlx::query!(
        "UPDATE shows s SET published = $3, updated_at = now(), \
         draft_updated_at = CASE WHEN $3 THEN s.draft_updated_at ELSE now() END \
         WHERE s.id = $1 AND s.producer_id = $2 AND NOT s.is_deleted \
         AND (NOT $3 OR EXISTS (SELECT 1 FROM tickets t WHERE t.show_id = s.id))",
        show_id,
        producer_id,
        published
    )
    .execute(pool)
    .await?;
    let show = get_show(pool, producer_id, show_id).await?;
    Ok(match (done.rows_affected(), show) {
        (_, None) => Outcome::NotFound,
        (0, Some(_)) => Outcome::invalid(
            "non_field_errors",
            "A show needs at least one ticket tier before it can be published.",
        ),
        (_, Some(s)) => Outcome::Done(s),
    })
}

/// Soft-deletes one of the producer's shows (it disappears from public reads and the
/// portal). Returns whether a show was deleted.
pub async fn soft_delete_show(
    pool: &PgPool,
    producer_id: i64,
    show_id: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query!(
        "UPDATE shows SET is_deleted = TRUE, deleted_at = now(), updated_at = now() \
         WHERE id = $1 AND producer_id = $2 AND NOT is_deleted",
        show_id,
        producer_id
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}
