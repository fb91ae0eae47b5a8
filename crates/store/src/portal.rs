//! The producer portal's storage: a producer's shows, tiers, promo codes, page design, orders
//! and attendees, and its Stripe Connect account id.
//!
//! Every query is scoped by `producer_id` in SQL itself (a join or a `WHERE` on
//! `shows.producer_id`), never by a check in the caller: another producer's object is simply
//! not found, which the API turns into a 404 that does not reveal that it exists.
//! Soft-deleted shows are invisible here too, except in the show list with `status=deleted`.

use chrono::{DateTime, Utc};
use futures::{SinkExt, Stream, StreamExt};
use pique_core::{
    money::{two_places, two_places_opt},
    query::PageRequest,
    slug::slugify,
};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::StoreError;

/// Result of a write that can be refused for a reason the client must hear about.
#[derive(Debug)]
pub enum Outcome<T> {
    /// Written; the new state.
    Done(T),
    /// No such object for this producer.
    NotFound,
    /// A field's value is not acceptable (400 `{field: [message]}`).
    Invalid {
        /// Field name.
        field: &'static str,
        /// Message.
        message: String,
    },
    /// The object's state forbids the change (409).
    Conflict(String),
}

impl<T> Outcome<T> {
    fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Outcome::Invalid {
            field,
            message: message.into(),
        }
    }
}

/// One page of rows and the total count.
#[derive(Debug)]
pub struct Page<T> {
    /// The rows.
    pub rows: Vec<T>,
    /// Rows matching the filters across all pages.
    pub count: i64,
}

fn push_page(q: &mut QueryBuilder<'_, Postgres>, page: PageRequest) {
    q.push(" LIMIT ")
        .push_bind(i64::from(page.size))
        .push(" OFFSET ")
        .push_bind(page.offset());
}

// ------------------------------------------------------------------------------------ shows

/// A show as its producer sees it: every column, including drafts and soft-delete state.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
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
    /// `draft`, `published` or `deleted`.
    pub status: String,
    /// Seats across all tiers.
    pub tickets_total: i64,
    /// Seats sold across all tiers.
    pub tickets_sold: i64,
}

const PORTAL_SHOW_SELECT: &str = "SELECT s.id, s.title, s.slug, s.description, s.door_time, s.start_time, \
    s.end_time, s.time_zone, s.age_restriction, s.image, s.banner_image, s.square_image, s.featured_video, \
    s.facebook_campaign_id, s.published, s.refund_policy, s.is_deleted, s.deleted_at, s.draft_created_at, \
    s.draft_updated_at, s.created_at, s.updated_at, s.venue_id AS venue, s.producer_id AS producer, \
    CASE WHEN s.is_deleted THEN 'deleted' WHEN s.published THEN 'published' ELSE 'draft' END AS status, \
    COALESCE((SELECT SUM(t.quantity) FROM tickets t WHERE t.show_id = s.id), 0)::int8 AS tickets_total, \
    COALESCE((SELECT SUM(t.sold) FROM tickets t WHERE t.show_id = s.id), 0)::int8 AS tickets_sold \
    FROM shows s";

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
    /// `draft`, `published` or `deleted`; `None` = drafts and published (not deleted).
    pub status: Option<String>,
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
    let filters = |q: &mut QueryBuilder<'_, Postgres>| {
        q.push(" WHERE s.producer_id = ").push_bind(producer_id);
        match f.status.as_deref() {
            Some("deleted") => {
                q.push(" AND s.is_deleted");
            }
            Some("published") => {
                q.push(" AND NOT s.is_deleted AND s.published");
            }
            Some("draft") => {
                q.push(" AND NOT s.is_deleted AND NOT s.published");
            }
            _ => {
                q.push(" AND NOT s.is_deleted");
            }
        }
        if let Some(text) = &f.search {
            q.push(" AND s.title ILIKE ")
                .push_bind(format!("%{}%", escape_like(text)));
        }
        if let Some(t) = f.start_time_gt {
            q.push(" AND s.start_time > ").push_bind(t);
        }
        if let Some(t) = f.start_time_lt {
            q.push(" AND s.start_time < ").push_bind(t);
        }
    };
    let mut q = QueryBuilder::new("SELECT count(*) FROM shows s");
    filters(&mut q);
    let count: i64 = q.build_query_scalar().fetch_one(pool).await?;
    let mut q = QueryBuilder::new(PORTAL_SHOW_SELECT);
    filters(&mut q);
    q.push(" ORDER BY s.start_time, s.id");
    push_page(&mut q, page);
    let rows = q.build_query_as().fetch_all(pool).await?;
    Ok(Page { rows, count })
}

/// `%` and `_` in user text match themselves in `ILIKE`.
fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// One of the producer's (not deleted) shows.
pub async fn get_show(
    pool: &PgPool,
    producer_id: i64,
    show_id: i64,
) -> Result<Option<PortalShow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "{PORTAL_SHOW_SELECT} WHERE s.id = $1 AND s.producer_id = $2 AND NOT s.is_deleted"
    ))
    .bind(show_id)
    .bind(producer_id)
    .fetch_optional(pool)
    .await?)
}

/// Whether venue `id` exists.
pub async fn venue_exists(pool: &PgPool, id: i64) -> Result<bool, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM venues WHERE id = $1)")
            .bind(id)
            .fetch_one(pool)
            .await?,
    )
}

/// Longest generated slug (before a `-N` suffix).
const MAX_SLUG_BASE: usize = 80;

/// Creates a draft show for the producer. Without an explicit slug one is made from the title,
/// with `-2`, `-3`... appended while it is taken (the unique index decides, so two producers
/// creating "Jazz Night" at once both succeed).
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
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO shows (title, slug, description, door_time, start_time, end_time, time_zone, \
             age_restriction, image, banner_image, square_image, featured_video, facebook_campaign_id, \
             refund_policy, venue_id, producer_id, author_id, published, draft_created_at, draft_updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, FALSE, now(), now()) \
             ON CONFLICT (slug) DO NOTHING RETURNING id",
        )
        .bind(&data.title)
        .bind(&slug)
        .bind(&data.description)
        .bind(data.door_time)
        .bind(data.start_time)
        .bind(data.end_time)
        .bind(&data.time_zone)
        .bind(&data.age_restriction)
        .bind(&data.image)
        .bind(&data.banner_image)
        .bind(&data.square_image)
        .bind(&data.featured_video)
        .bind(&data.facebook_campaign_id)
        .bind(&data.refund_policy)
        .bind(data.venue)
        .bind(producer_id)
        .bind(author_id)
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
    let result = sqlx::query(
        "UPDATE shows SET title = $3, slug = COALESCE($4, slug), description = $5, door_time = $6, \
         start_time = $7, end_time = $8, time_zone = $9, age_restriction = $10, image = $11, \
         banner_image = $12, square_image = $13, featured_video = $14, facebook_campaign_id = $15, \
         refund_policy = $16, venue_id = $17, updated_at = now(), \
         draft_updated_at = CASE WHEN published THEN draft_updated_at ELSE now() END \
         WHERE id = $1 AND producer_id = $2 AND NOT is_deleted",
    )
    .bind(show_id)
    .bind(producer_id)
    .bind(&data.title)
    .bind(&data.slug)
    .bind(&data.description)
    .bind(data.door_time)
    .bind(data.start_time)
    .bind(data.end_time)
    .bind(&data.time_zone)
    .bind(&data.age_restriction)
    .bind(&data.image)
    .bind(&data.banner_image)
    .bind(&data.square_image)
    .bind(&data.featured_video)
    .bind(&data.facebook_campaign_id)
    .bind(&data.refund_policy)
    .bind(data.venue)
    .execute(pool)
    .await;
    match result {
        Ok(done) if done.rows_affected() == 0 => Ok(Outcome::NotFound),
        Ok(_) => Ok(get_show(pool, producer_id, show_id)
            .await?
            .map_or(Outcome::NotFound, Outcome::Done)),
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
    let done = sqlx::query(
        "UPDATE shows s SET published = $3, updated_at = now(), \
         draft_updated_at = CASE WHEN $3 THEN s.draft_updated_at ELSE now() END \
         WHERE s.id = $1 AND s.producer_id = $2 AND NOT s.is_deleted \
         AND (NOT $3 OR EXISTS (SELECT 1 FROM tickets t WHERE t.show_id = s.id))",
    )
    .bind(show_id)
    .bind(producer_id)
    .bind(published)
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

/// Soft-deletes one of the producer's shows (it disappears from public reads and the portal).
/// Returns whether a show was deleted.
pub async fn soft_delete_show(
    pool: &PgPool,
    producer_id: i64,
    show_id: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE shows SET is_deleted = TRUE, deleted_at = now(), updated_at = now() \
         WHERE id = $1 AND producer_id = $2 AND NOT is_deleted",
    )
    .bind(show_id)
    .bind(producer_id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Whether `show_id` is one of the producer's live (not deleted) shows.
pub async fn owns_show(pool: &PgPool, producer_id: i64, show_id: i64) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM shows WHERE id = $1 AND producer_id = $2 AND NOT is_deleted)",
    )
    .bind(show_id)
    .bind(producer_id)
    .fetch_one(pool)
    .await?)
}

// ------------------------------------------------------------------------------------ tiers

/// A ticket tier with its counters, as the producer sees it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
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
    #[serde(serialize_with = "two_places::serialize")]
    pub price: Decimal,
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

const TIER_COLUMNS: &str = "t.id, t.show_id AS show, t.name, t.description, t.quantity, t.price, \
    t.is_donation_based, t.max_per_order, t.position, t.sold, t.held, t.created_at, t.updated_at";

/// Join that limits tiers (`t`) to the producer's live shows.
const TIER_OWNED: &str =
    "JOIN shows s ON s.id = t.show_id AND s.producer_id = $1 AND NOT s.is_deleted";

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
    pub price: Decimal,
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
    let rows = sqlx::query_as(&format!(
        "SELECT {TIER_COLUMNS} FROM tickets t {TIER_OWNED} WHERE t.show_id = $2 ORDER BY t.position, t.id"
    ))
    .bind(producer_id)
    .bind(show_id)
    .fetch_all(pool)
    .await?;
    Ok(Some(rows))
}

/// One tier of one of the producer's shows.
pub async fn get_tier(
    pool: &PgPool,
    producer_id: i64,
    show_id: i64,
    tier_id: i64,
) -> Result<Option<PortalTier>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {TIER_COLUMNS} FROM tickets t {TIER_OWNED} WHERE t.show_id = $2 AND t.id = $3"
    ))
    .bind(producer_id)
    .bind(show_id)
    .bind(tier_id)
    .fetch_optional(pool)
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
    let row: Option<PortalTier> = sqlx::query_as(&format!(
        "WITH ins AS ( \
            INSERT INTO tickets (show_id, name, description, quantity, price, is_donation_based, max_per_order, position, author_id) \
            SELECT s.id, $3, $4, $5, $6, $7, $8, $9, $10 FROM shows s \
            WHERE s.id = $2 AND s.producer_id = $1 AND NOT s.is_deleted RETURNING *) \
         SELECT {} FROM ins t",
        TIER_COLUMNS
    ))
    .bind(producer_id)
    .bind(show_id)
    .bind(&d.name)
    .bind(&d.description)
    .bind(d.quantity)
    .bind(d.price)
    .bind(d.is_donation_based)
    .bind(d.max_per_order)
    .bind(d.position)
    .bind(author_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map_or(Outcome::NotFound, Outcome::Done))
}

/// Rewrites a tier. The quantity can never go below the seats already sold or held: the
/// condition is part of the `UPDATE`, so a checkout committing at the same moment cannot slip
/// between a check and the write (and the table's CHECK backs it up).
pub async fn update_tier(
    pool: &PgPool,
    producer_id: i64,
    show_id: i64,
    tier_id: i64,
    d: &TierData,
) -> Result<Outcome<PortalTier>, StoreError> {
    let row: Option<PortalTier> = sqlx::query_as(&format!(
        "UPDATE tickets t SET name = $4, description = $5, quantity = $6, price = $7, is_donation_based = $8, \
         max_per_order = $9, position = $10, updated_at = now() \
         FROM shows s WHERE s.id = t.show_id AND s.producer_id = $1 AND NOT s.is_deleted \
         AND t.show_id = $2 AND t.id = $3 AND $6 >= t.sold + t.held RETURNING {TIER_COLUMNS}"
    ))
    .bind(producer_id)
    .bind(show_id)
    .bind(tier_id)
    .bind(&d.name)
    .bind(&d.description)
    .bind(d.quantity)
    .bind(d.price)
    .bind(d.is_donation_based)
    .bind(d.max_per_order)
    .bind(d.position)
    .fetch_optional(pool)
    .await?;
    if let Some(t) = row {
        return Ok(Outcome::Done(t));
    }
    Ok(match get_tier(pool, producer_id, show_id, tier_id).await? {
        None => Outcome::NotFound,
        Some(current) => Outcome::invalid(
            "quantity",
            format!(
                "Ensure this value is greater than or equal to {} (tickets already sold or held).",
                current.sold + current.held
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
    let done = sqlx::query(
        "DELETE FROM tickets t USING shows s WHERE s.id = t.show_id AND s.producer_id = $1 AND NOT s.is_deleted \
         AND t.show_id = $2 AND t.id = $3 AND t.sold = 0 AND t.held = 0 \
         AND NOT EXISTS (SELECT 1 FROM order_lines ol WHERE ol.ticket_id = t.id)",
    )
    .bind(producer_id)
    .bind(show_id)
    .bind(tier_id)
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

// ------------------------------------------------------------------------------------ promo codes

/// A promo code of one of the producer's shows.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct PortalPromo {
    /// Primary key.
    pub id: i64,
    /// Show id.
    pub show: i64,
    /// The code (matched case-insensitively).
    pub code: String,
    /// Percent (0-100) or amount off.
    #[serde(serialize_with = "two_places::serialize")]
    pub discount: Decimal,
    /// `percent` or `amount`.
    pub discount_type: String,
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

const PROMO_COLUMNS: &str = "c.id, c.show_id AS show, c.code, c.discount, c.discount_type, c.max_uses, c.uses, \
    c.valid_from, c.valid_until, c.is_active, c.created_at";
const PROMO_OWNED: &str =
    "JOIN shows s ON s.id = c.show_id AND s.producer_id = $1 AND NOT s.is_deleted";

/// The editable fields of a promo code, already validated.
#[derive(Debug, Clone, PartialEq)]
pub struct PromoData {
    /// Code.
    pub code: String,
    /// Discount.
    pub discount: Decimal,
    /// `percent` or `amount`.
    pub discount_type: String,
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
            discount_type: p.discount_type.clone(),
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
    let rows = sqlx::query_as(&format!(
        "SELECT {PROMO_COLUMNS} FROM promo_codes c {PROMO_OWNED} WHERE c.show_id = $2 ORDER BY c.id"
    ))
    .bind(producer_id)
    .bind(show_id)
    .fetch_all(pool)
    .await?;
    Ok(Some(rows))
}

/// One promo code of one of the producer's shows.
pub async fn get_promo(
    pool: &PgPool,
    producer_id: i64,
    show_id: i64,
    promo_id: i64,
) -> Result<Option<PortalPromo>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {PROMO_COLUMNS} FROM promo_codes c {PROMO_OWNED} WHERE c.show_id = $2 AND c.id = $3"
    ))
    .bind(producer_id)
    .bind(show_id)
    .bind(promo_id)
    .fetch_optional(pool)
    .await?)
}

/// Adds a promo code to one of the producer's shows.
pub async fn create_promo(
    pool: &PgPool,
    producer_id: i64,
    show_id: i64,
    d: &PromoData,
) -> Result<Outcome<PortalPromo>, StoreError> {
    let result = sqlx::query_as::<_, PortalPromo>(&format!(
        "WITH ins AS ( \
            INSERT INTO promo_codes (show_id, code, discount, discount_type, max_uses, valid_from, valid_until, is_active) \
            SELECT s.id, $3, $4, $5, $6, $7, $8, $9 FROM shows s \
            WHERE s.id = $2 AND s.producer_id = $1 AND NOT s.is_deleted RETURNING *) \
         SELECT {PROMO_COLUMNS} FROM ins c"
    ))
    .bind(producer_id)
    .bind(show_id)
    .bind(&d.code)
    .bind(d.discount)
    .bind(&d.discount_type)
    .bind(d.max_uses)
    .bind(d.valid_from)
    .bind(d.valid_until)
    .bind(d.is_active)
    .fetch_optional(pool)
    .await;
    promo_outcome(result)
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
    let result = sqlx::query_as::<_, PortalPromo>(&format!(
        "UPDATE promo_codes c SET code = $4, discount = $5, discount_type = $6, max_uses = $7, valid_from = $8, \
         valid_until = $9, is_active = $10 \
         FROM shows s WHERE s.id = c.show_id AND s.producer_id = $1 AND NOT s.is_deleted \
         AND c.show_id = $2 AND c.id = $3 AND ($7::int4 IS NULL OR $7 >= c.uses) RETURNING {PROMO_COLUMNS}"
    ))
    .bind(producer_id)
    .bind(show_id)
    .bind(promo_id)
    .bind(&d.code)
    .bind(d.discount)
    .bind(&d.discount_type)
    .bind(d.max_uses)
    .bind(d.valid_from)
    .bind(d.valid_until)
    .bind(d.is_active)
    .fetch_optional(pool)
    .await;
    promo_outcome(result)
}

fn promo_outcome(
    result: Result<Option<PortalPromo>, sqlx::Error>,
) -> Result<Outcome<PortalPromo>, StoreError> {
    match result {
        Ok(Some(p)) => Ok(Outcome::Done(p)),
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
    let done = sqlx::query(
        "DELETE FROM promo_codes c USING shows s WHERE s.id = c.show_id AND s.producer_id = $1 AND NOT s.is_deleted \
         AND c.show_id = $2 AND c.id = $3 AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.promo_code_id = c.id)",
    )
    .bind(producer_id)
    .bind(show_id)
    .bind(promo_id)
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

// ------------------------------------------------------------------------------------ page design

/// A show's page design (defaults when none was saved).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
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
    Ok(sqlx::query_as(
        "SELECT s.id AS show, COALESCE(d.primary_color, '#000000') AS primary_color, \
         COALESCE(d.secondary_color, '#ffffff') AS secondary_color, d.background_image \
         FROM shows s LEFT JOIN page_designs d ON d.show_id = s.id \
         WHERE s.id = $2 AND s.producer_id = $1 AND NOT s.is_deleted",
    )
    .bind(producer_id)
    .bind(show_id)
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
    Ok(sqlx::query_as(
        "INSERT INTO page_designs (show_id, primary_color, secondary_color, background_image) \
         SELECT s.id, $3, $4, $5 FROM shows s WHERE s.id = $2 AND s.producer_id = $1 AND NOT s.is_deleted \
         ON CONFLICT (show_id) DO UPDATE SET primary_color = EXCLUDED.primary_color, \
         secondary_color = EXCLUDED.secondary_color, background_image = EXCLUDED.background_image \
         RETURNING show_id AS show, primary_color, secondary_color, background_image",
    )
    .bind(producer_id)
    .bind(show_id)
    .bind(primary_color)
    .bind(secondary_color)
    .bind(background_image)
    .fetch_optional(pool)
    .await?)
}

// ------------------------------------------------------------------------------------ orders

/// Filters of the order list and export.
#[derive(Debug, Clone, Default)]
pub struct OrderFilters {
    /// Order status.
    pub status: Option<String>,
    /// Show id.
    pub show: Option<i64>,
    /// Case-insensitive substring of the buyer's email.
    pub email: Option<String>,
    /// Created at or after.
    pub created_after: Option<DateTime<Utc>>,
    /// Created before.
    pub created_before: Option<DateTime<Utc>>,
}

/// An order of one of the producer's shows.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct PortalOrder {
    /// Primary key.
    pub id: i64,
    /// Public reference.
    pub uuid: Uuid,
    /// Show id.
    pub show: i64,
    /// Show title.
    pub show_title: String,
    /// Buyer email.
    pub order_email: String,
    /// Buyer name.
    pub order_name: String,
    /// `pending`, `paid`, `cancelled`, `expired` or `refunded`.
    pub status: String,
    /// Before discount.
    #[serde(serialize_with = "two_places::serialize")]
    pub subtotal: Decimal,
    /// Discount.
    #[serde(serialize_with = "two_places::serialize")]
    pub discount: Decimal,
    /// Charged.
    #[serde(serialize_with = "two_places::serialize")]
    pub total: Decimal,
    /// ISO currency.
    pub currency: String,
    /// Promo code used.
    pub promo_code: Option<String>,
    /// Tickets in the order.
    pub tickets: i64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Paid.
    pub paid_at: Option<DateTime<Utc>>,
}

const ORDER_SELECT: &str = "SELECT o.id, o.uuid, o.show_id AS show, s.title AS show_title, o.order_email, \
    o.order_name, o.status, o.subtotal, o.discount, o.total, o.currency, c.code AS promo_code, \
    COALESCE((SELECT SUM(ol.quantity) FROM order_lines ol WHERE ol.order_id = o.id), 0)::int8 AS tickets, \
    o.created_at, o.paid_at \
    FROM orders o JOIN shows s ON s.id = o.show_id LEFT JOIN promo_codes c ON c.id = o.promo_code_id";

/// Orders of deleted shows stay visible: the money was taken either way.
fn push_order_filters(q: &mut QueryBuilder<'_, Postgres>, producer_id: i64, f: &OrderFilters) {
    q.push(" WHERE s.producer_id = ").push_bind(producer_id);
    if let Some(status) = &f.status {
        q.push(" AND o.status = ").push_bind(status.clone());
    }
    if let Some(show) = f.show {
        q.push(" AND o.show_id = ").push_bind(show);
    }
    if let Some(email) = &f.email {
        q.push(" AND o.order_email ILIKE ")
            .push_bind(format!("%{}%", escape_like(email)));
    }
    if let Some(t) = f.created_after {
        q.push(" AND o.created_at >= ").push_bind(t);
    }
    if let Some(t) = f.created_before {
        q.push(" AND o.created_at < ").push_bind(t);
    }
}

/// A page of the producer's orders, newest first.
pub async fn list_orders(
    pool: &PgPool,
    producer_id: i64,
    f: &OrderFilters,
    page: PageRequest,
) -> Result<Page<PortalOrder>, StoreError> {
    let mut q = QueryBuilder::new("SELECT count(*) FROM orders o JOIN shows s ON s.id = o.show_id");
    push_order_filters(&mut q, producer_id, f);
    let count: i64 = q.build_query_scalar().fetch_one(pool).await?;
    let mut q = QueryBuilder::new(ORDER_SELECT);
    push_order_filters(&mut q, producer_id, f);
    q.push(" ORDER BY o.created_at DESC, o.id DESC");
    push_page(&mut q, page);
    Ok(Page {
        rows: q.build_query_as().fetch_all(pool).await?,
        count,
    })
}

/// Every order matching `f`, oldest first, as a stream that holds only a few rows at a time.
///
/// A task runs the query with sqlx's row stream and hands rows over a small bounded channel:
/// when the consumer (an HTTP body) is slow the channel fills, the task stops reading, and
/// PostgreSQL's socket back-pressures. Memory stays flat whatever the row count. Dropping
/// the stream (client gone) ends the task and releases the connection.
pub fn stream_orders(
    pool: &PgPool,
    producer_id: i64,
    f: OrderFilters,
) -> impl Stream<Item = Result<PortalOrder, StoreError>> + Send + 'static {
    let (mut tx, rx) = futures::channel::mpsc::channel::<Result<PortalOrder, StoreError>>(64);
    let pool = pool.clone();
    tokio::spawn(async move {
        if let Err(e) = export_into(&pool, producer_id, &f, &mut tx).await {
            // The consumer may already be gone; then nobody needs the error.
            let _ = tx.send(Err(e)).await;
        }
    });
    rx
}

/// Longest an export query may run. The statement runs for as long as the client takes to
/// download the file (a slow client back-pressures it), so the pool's 30 s statement timeout
/// would cut big exports to slow clients short.
const EXPORT_STATEMENT_TIMEOUT: &str = "15min";

async fn export_into(
    pool: &PgPool,
    producer_id: i64,
    f: &OrderFilters,
    out: &mut futures::channel::mpsc::Sender<Result<PortalOrder, StoreError>>,
) -> Result<(), StoreError> {
    let mut db = pool.begin().await?;
    sqlx::query(&format!(
        "SET LOCAL statement_timeout = '{EXPORT_STATEMENT_TIMEOUT}'"
    ))
    .execute(&mut *db)
    .await?;
    let mut q = QueryBuilder::new(ORDER_SELECT);
    push_order_filters(&mut q, producer_id, f);
    q.push(" ORDER BY o.created_at, o.id");
    let mut rows = q.build_query_as::<PortalOrder>().fetch(&mut *db);
    while let Some(row) = rows.next().await {
        if out.send(Ok(row?)).await.is_err() {
            // The client went away: stop reading; dropping the transaction rolls it back
            // and returns the connection.
            break;
        }
    }
    Ok(())
}

/// A line of an order.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct PortalOrderLine {
    /// Primary key.
    pub id: i64,
    /// Tier id.
    pub ticket: i64,
    /// Tier name.
    pub ticket_name: String,
    /// Seats.
    pub quantity: i32,
    /// Unit price.
    #[serde(serialize_with = "two_places::serialize")]
    pub price_per_ticket: Decimal,
    /// Donation per ticket.
    #[serde(serialize_with = "two_places_opt::serialize")]
    pub donation_amount: Option<Decimal>,
    /// Line discount.
    #[serde(serialize_with = "two_places::serialize")]
    pub discount: Decimal,
    /// Line total.
    #[serde(serialize_with = "two_places::serialize")]
    pub line_total: Decimal,
}

/// An order with its lines and attendees.
#[derive(Debug, Clone, Serialize)]
pub struct PortalOrderDetail {
    /// The order.
    #[serde(flatten)]
    pub order: PortalOrder,
    /// Its lines.
    pub lines: Vec<PortalOrderLine>,
    /// Its attendees.
    pub attendees: Vec<PortalAttendee>,
}

/// One of the producer's orders with lines and attendees.
pub async fn get_order(
    pool: &PgPool,
    producer_id: i64,
    order_id: i64,
) -> Result<Option<PortalOrderDetail>, StoreError> {
    let order: Option<PortalOrder> = sqlx::query_as(&format!(
        "{ORDER_SELECT} WHERE o.id = $1 AND s.producer_id = $2"
    ))
    .bind(order_id)
    .bind(producer_id)
    .fetch_optional(pool)
    .await?;
    let Some(order) = order else { return Ok(None) };
    let lines = sqlx::query_as(
        "SELECT ol.id, ol.ticket_id AS ticket, t.name AS ticket_name, ol.quantity, ol.price_per_ticket, \
         ol.donation_amount, ol.discount, ol.line_total FROM order_lines ol JOIN tickets t ON t.id = ol.ticket_id \
         WHERE ol.order_id = $1 ORDER BY ol.id",
    )
    .bind(order_id)
    .fetch_all(pool)
    .await?;
    let attendees = sqlx::query_as(&format!(
        "{ATTENDEE_SELECT} WHERE a.order_id = $1 ORDER BY a.id"
    ))
    .bind(order_id)
    .fetch_all(pool)
    .await?;
    Ok(Some(PortalOrderDetail {
        order,
        lines,
        attendees,
    }))
}

// ------------------------------------------------------------------------------------ attendees

/// An attendee (one admitted person) of one of the producer's shows.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct PortalAttendee {
    /// Primary key.
    pub id: i64,
    /// QR payload.
    pub uuid: Uuid,
    /// Show id.
    pub show: i64,
    /// Tier id.
    pub ticket: i64,
    /// Tier name.
    pub ticket_name: String,
    /// Order id.
    pub order: i64,
    /// Name.
    pub name: String,
    /// Email.
    pub email: String,
    /// When admitted at the door.
    pub checked_in_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
}

const ATTENDEE_SELECT: &str = "SELECT a.id, a.uuid, a.show_id AS show, a.ticket_id AS ticket, t.name AS ticket_name, \
    a.order_id AS \"order\", a.name, a.email, a.checked_in_at, a.created_at \
    FROM attendees a JOIN tickets t ON t.id = a.ticket_id JOIN shows s ON s.id = a.show_id";

/// Filters of the attendee list.
#[derive(Debug, Clone, Default)]
pub struct AttendeeFilters {
    /// Show id.
    pub show: Option<i64>,
    /// Tier id.
    pub ticket: Option<i64>,
    /// Case-insensitive substring of the email.
    pub email: Option<String>,
    /// Checked in or not.
    pub checked_in: Option<bool>,
}

fn push_attendee_filters(
    q: &mut QueryBuilder<'_, Postgres>,
    producer_id: i64,
    f: &AttendeeFilters,
) {
    q.push(" WHERE s.producer_id = ").push_bind(producer_id);
    if let Some(show) = f.show {
        q.push(" AND a.show_id = ").push_bind(show);
    }
    if let Some(ticket) = f.ticket {
        q.push(" AND a.ticket_id = ").push_bind(ticket);
    }
    if let Some(email) = &f.email {
        q.push(" AND a.email ILIKE ")
            .push_bind(format!("%{}%", escape_like(email)));
    }
    match f.checked_in {
        Some(true) => {
            q.push(" AND a.checked_in_at IS NOT NULL");
        }
        Some(false) => {
            q.push(" AND a.checked_in_at IS NULL");
        }
        None => {}
    }
}

/// A page of the producer's attendees.
pub async fn list_attendees(
    pool: &PgPool,
    producer_id: i64,
    f: &AttendeeFilters,
    page: PageRequest,
) -> Result<Page<PortalAttendee>, StoreError> {
    let mut q =
        QueryBuilder::new("SELECT count(*) FROM attendees a JOIN shows s ON s.id = a.show_id");
    push_attendee_filters(&mut q, producer_id, f);
    let count: i64 = q.build_query_scalar().fetch_one(pool).await?;
    let mut q = QueryBuilder::new(ATTENDEE_SELECT);
    push_attendee_filters(&mut q, producer_id, f);
    q.push(" ORDER BY a.id");
    push_page(&mut q, page);
    Ok(Page {
        rows: q.build_query_as().fetch_all(pool).await?,
        count,
    })
}

// ------------------------------------------------------------------------------------ Stripe Connect

/// Stores `account_id` as the producer's Connect account unless one is already stored, and
/// returns the stored one. Two concurrent first calls both create a Stripe account; the first
/// to write wins and the other's account is simply never used.
pub async fn set_stripe_account(
    pool: &PgPool,
    producer_id: i64,
    account_id: &str,
) -> Result<String, StoreError> {
    let stored: Option<String> = sqlx::query_scalar(
        "UPDATE producers SET stripe_account_id = COALESCE(stripe_account_id, $2) WHERE id = $1 RETURNING stripe_account_id",
    )
    .bind(producer_id)
    .bind(account_id)
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
    sqlx::query("UPDATE producers SET stripe_onboarding_complete = $2 WHERE id = $1")
        .bind(producer_id)
        .bind(complete)
        .execute(pool)
        .await?;
    Ok(())
}
