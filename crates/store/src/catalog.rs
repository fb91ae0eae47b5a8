//! Public reads: shows, tiers with live availability, venues, performers, producers,
//! featured shows, search and active cities.
//!
//! Public means published and not soft-deleted (`s.published AND NOT s.is_deleted`); every
//! query here applies that rule, so no endpoint can leak a draft.

use std::{collections::HashMap, sync::Arc};

use bytes::Bytes;

use chrono::{DateTime, Utc};
use pique_core::{
    Money, availability,
    model::{
        ActiveCity, FeaturedShow, PageDesign, Performer, PerformerSummary, ProducerPublic,
        ProducerSummary, ShowDetail, ShowSummary, TicketTier, Venue,
    },
    query::{PageRequest, ShowFilters},
};
use sqlx::PgPool;

use crate::{StoreError, coalesce::Coalescer, db::timed};

/// A show row with its venue and producer.
struct ShowRow {
    id: i64,
    title: String,
    slug: String,
    description: String,
    door_time: Option<DateTime<Utc>>,
    start_time: DateTime<Utc>,
    end_time: Option<DateTime<Utc>>,
    time_zone: String,
    age_restriction: String,
    image: Option<String>,
    banner_image: Option<String>,
    square_image: Option<String>,
    featured_video: Option<String>,
    facebook_campaign_id: Option<String>,
    published: bool,
    refund_policy: String,
    created_at: DateTime<Utc>,
    venue_id: i64,
    venue_name: String,
    venue_address: String,
    venue_city: String,
    venue_state: String,
    venue_postal_code: String,
    venue_country: String,
    venue_capacity: Option<i32>,
    producer_id: i64,
    producer_name: String,
    producer_slug: String,
}

impl ShowRow {
    fn into_summary(self, performers: Vec<PerformerSummary>) -> ShowSummary {
        ShowSummary {
            id: self.id,
            title: self.title,
            slug: self.slug,
            description: self.description,
            door_time: self.door_time,
            start_time: self.start_time,
            end_time: self.end_time,
            time_zone: self.time_zone,
            age_restriction: self.age_restriction,
            image: self.image,
            banner_image: self.banner_image,
            square_image: self.square_image,
            featured_video: self.featured_video,
            facebook_campaign_id: self.facebook_campaign_id,
            published: self.published,
            refund_policy: self.refund_policy,
            created_at: self.created_at,
            venue: Venue {
                id: self.venue_id,
                name: self.venue_name,
                address: self.venue_address,
                city: self.venue_city,
                state: self.venue_state,
                postal_code: self.venue_postal_code,
                country: self.venue_country,
                capacity: self.venue_capacity,
            },
            producer: ProducerSummary {
                id: self.producer_id,
                name: self.producer_name,
                slug: self.producer_slug,
            },
            performers,
        }
    }
}

/// A tier with its *active* holds: the counter `held` minus holds whose order has expired
/// but which the sweeper has not released yet. These are availability's inputs;
/// [`availability::available`] does the arithmetic, for display here as for checkout.
#[derive(Debug, Clone)]
pub struct TierRow {
    /// Tier id.
    pub id: i64,
    /// Show id.
    pub show_id: i64,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Price (minimum for donation tiers).
    pub price: Money,
    /// Capacity.
    pub quantity: i32,
    /// Donation tier.
    pub is_donation_based: bool,
    /// Per-order limit.
    pub max_per_order: i32,
    /// Paid seats.
    pub sold: i32,
    /// Seats held by unexpired pending orders.
    pub active_held: i32,
}

impl TierRow {
    /// Seats available now.
    pub fn available(&self) -> i32 {
        availability::available(self.quantity, self.sold, self.active_held)
    }

    /// The API shape.
    pub fn into_tier(self) -> TicketTier {
        let available = self.available();
        TicketTier {
            id: self.id,
            show: self.show_id,
            name: self.name,
            description: self.description,
            price: self.price,
            quantity: self.quantity,
            is_donation_based: self.is_donation_based,
            max_per_order: self.max_per_order,
            available,
            sold_out: available == 0,
        }
    }
}

/// One page of rows plus the total, or every row when no page was asked for.
#[derive(Debug)]
pub struct Listing<T> {
    /// The rows.
    pub rows: Vec<T>,
    /// Total matches when paginated.
    pub count: Option<i64>,
}

/// `LIMIT` and `OFFSET` of `page`; no page is every row (`LIMIT NULL`).
fn limit_offset(page: Option<PageRequest>) -> (Option<i64>, i64) {
    page.map_or((None, 0), |p| (Some(i64::from(p.size)), p.offset()))
}

/// `GET /api/v1/shows/`: public shows matching `filters`, by start time.
///
/// Optional filters are `($n IS NULL OR ...)` in one static query; the start-time range is
/// written so that the public-shows index serves it whatever the plan. A slug names at most
/// one show, so it has its own query on the slug index.
pub async fn list_shows(
    pool: &PgPool,
    filters: &ShowFilters,
) -> Result<Listing<ShowSummary>, StoreError> {
    if let Some(slug) = &filters.slug {
        return show_by_slug(pool, slug, filters).await;
    }
    let f = filters;
    let mut count = None;
    if f.page.is_some() {
        let n = sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!" FROM shows s JOIN venues v ON v.id = s.venue_id
                WHERE s.published AND NOT s.is_deleted
                  AND s.start_time > COALESCE($1::timestamptz, '-infinity') AND s.start_time < COALESCE($2::timestamptz, 'infinity')
                  AND ($3::text IS NULL OR lower(v.city) = lower($3))
                  AND ($4::int8 IS NULL OR s.producer_id = $4) AND ($5::int8 IS NULL OR s.venue_id = $5)"#,
            f.start_time_gt,
            f.start_time_lt,
            f.city.as_deref(),
            f.producer,
            f.venue
        )
        .fetch_one(pool)
        .await?;
        count = Some(n);
    }
    let (limit, offset) = limit_offset(f.page);
    let query = sqlx::query_as!(
        ShowRow,
        r#"SELECT s.id, s.title, s.slug, s.description, s.door_time, s.start_time, s.end_time, s.time_zone,
                  s.age_restriction, s.image, s.banner_image, s.square_image, s.featured_video,
                  s.facebook_campaign_id, s.published, s.refund_policy, s.created_at,
                  v.id AS venue_id, v.name AS venue_name, v.address AS venue_address, v.city AS venue_city,
                  v.state AS venue_state, v.postal_code AS venue_postal_code, v.country AS venue_country,
                  v.capacity AS venue_capacity, p.id AS producer_id, p.name AS producer_name, p.slug AS producer_slug
             FROM shows s JOIN venues v ON v.id = s.venue_id JOIN producers p ON p.id = s.producer_id
            WHERE s.published AND NOT s.is_deleted
              AND s.start_time > COALESCE($1::timestamptz, '-infinity') AND s.start_time < COALESCE($2::timestamptz, 'infinity')
              AND ($3::text IS NULL OR lower(v.city) = lower($3))
              AND ($4::int8 IS NULL OR s.producer_id = $4) AND ($5::int8 IS NULL OR s.venue_id = $5)
            ORDER BY s.start_time, s.id LIMIT $6 OFFSET $7"#,
        f.start_time_gt,
        f.start_time_lt,
        f.city.as_deref(),
        f.producer,
        f.venue,
        limit,
        offset
    );
    let rows = timed("list_shows", query.fetch_all(pool)).await?;
    Ok(Listing {
        rows: with_performers(pool, rows).await?,
        count,
    })
}

/// The show list filtered by `slug` (and the other filters): zero or one show.
async fn show_by_slug(
    pool: &PgPool,
    slug: &str,
    f: &ShowFilters,
) -> Result<Listing<ShowSummary>, StoreError> {
    let ids = sqlx::query_scalar!(
        "SELECT s.id FROM shows s JOIN venues v ON v.id = s.venue_id
          WHERE s.slug = $1 AND s.published AND NOT s.is_deleted
            AND s.start_time > COALESCE($2::timestamptz, '-infinity') AND s.start_time < COALESCE($3::timestamptz, 'infinity')
            AND ($4::text IS NULL OR lower(v.city) = lower($4))
            AND ($5::int8 IS NULL OR s.producer_id = $5) AND ($6::int8 IS NULL OR s.venue_id = $6)",
        slug,
        f.start_time_gt,
        f.start_time_lt,
        f.city.as_deref(),
        f.producer,
        f.venue
    )
    .fetch_all(pool)
    .await?;
    let count = f.page.map(|_| ids.len() as i64);
    let (limit, offset) = limit_offset(f.page);
    let ids: Vec<i64> = ids
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX)))
        .collect();
    Ok(Listing {
        rows: public_shows(pool, &ids).await?,
        count,
    })
}

/// The public shows among `ids`, in the order of `ids`, with their performers.
async fn public_shows(pool: &PgPool, ids: &[i64]) -> Result<Vec<ShowSummary>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let query = sqlx::query_as!(
        ShowRow,
        r#"SELECT s.id, s.title, s.slug, s.description, s.door_time, s.start_time, s.end_time, s.time_zone,
                  s.age_restriction, s.image, s.banner_image, s.square_image, s.featured_video,
                  s.facebook_campaign_id, s.published, s.refund_policy, s.created_at,
                  v.id AS venue_id, v.name AS venue_name, v.address AS venue_address, v.city AS venue_city,
                  v.state AS venue_state, v.postal_code AS venue_postal_code, v.country AS venue_country,
                  v.capacity AS venue_capacity, p.id AS producer_id, p.name AS producer_name, p.slug AS producer_slug
             FROM shows s JOIN venues v ON v.id = s.venue_id JOIN producers p ON p.id = s.producer_id
            WHERE s.id = ANY($1) AND s.published AND NOT s.is_deleted"#,
        ids
    );
    let mut rows = timed("public_shows", query.fetch_all(pool)).await?;
    let position: HashMap<i64, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    rows.sort_by_key(|r| position.get(&r.id).copied().unwrap_or(usize::MAX));
    with_performers(pool, rows).await
}

/// Attaches performers to show rows with one query for all of them.
async fn with_performers(
    pool: &PgPool,
    rows: Vec<ShowRow>,
) -> Result<Vec<ShowSummary>, StoreError> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let query = sqlx::query!(
        "SELECT sp.show_id, p.id, p.name FROM show_performers sp JOIN performers p ON p.id = sp.performer_id \
         WHERE sp.show_id = ANY($1) ORDER BY sp.show_id, sp.position, p.id",
        &ids
    );
    let links = timed("show_performers", query.fetch_all(pool)).await?;
    let mut by_show: HashMap<i64, Vec<PerformerSummary>> = HashMap::new();
    for link in links {
        by_show
            .entry(link.show_id)
            .or_default()
            .push(PerformerSummary {
                id: link.id,
                name: link.name,
            });
    }
    Ok(rows
        .into_iter()
        .map(|r| {
            let performers = by_show.remove(&r.id).unwrap_or_default();
            r.into_summary(performers)
        })
        .collect())
}

/// A public show's summary and page design, without tiers (those are read live by
/// [`show_tiers`] because availability must never come from a cache).
pub async fn show_without_tiers(pool: &PgPool, id: i64) -> Result<Option<ShowDetail>, StoreError> {
    let Some(show) = public_shows(pool, &[id]).await?.pop() else {
        return Ok(None);
    };
    let page_design = sqlx::query_as!(
        PageDesign,
        "SELECT primary_color, secondary_color, background_image FROM page_designs WHERE show_id = $1",
        id
    )
    .fetch_optional(pool)
    .await?;
    Ok(Some(ShowDetail {
        show,
        tickets: Vec::new(),
        page_design,
    }))
}

/// Tiers of a show with live availability, in display order.
///
/// One query on indexes only: the show's tiers (`tickets_show`) and, through
/// `orders_pending_show_expiry`, the holds of its pending orders that lapsed but are not swept
/// yet (none, between sweeps), whatever the number of orders the show has had.
pub async fn show_tiers(pool: &PgPool, show_id: i64) -> Result<Vec<TicketTier>, StoreError> {
    let query = sqlx::query_as!(
        TierRow,
        r#"SELECT t.id, t.show_id, t.name, t.description, t.price, t.quantity, t.is_donation_based,
                  t.max_per_order, t.sold, (t.held - COALESCE(lapsed.seats, 0))::int4 AS "active_held!"
             FROM tickets t
             LEFT JOIN (SELECT ol.ticket_id, sum(ol.quantity) AS seats
                          FROM orders o JOIN order_lines ol ON ol.order_id = o.id
                         WHERE o.show_id = $1 AND o.status = 'pending' AND o.expires_at <= now()
                         GROUP BY ol.ticket_id) lapsed ON lapsed.ticket_id = t.id
            WHERE t.show_id = $1 ORDER BY t.position, t.id"#,
        show_id
    );
    let rows = timed("show_tiers", query.fetch_all(pool)).await?;
    Ok(rows.into_iter().map(TierRow::into_tier).collect())
}

/// The tiers of a show with live availability, as the JSON array the show detail embeds,
/// read through a [`Coalescer`]: concurrent detail requests of one show share one query, but
/// only one that starts after they arrived, so every answer is exact as of its request.
#[derive(Clone)]
pub struct LiveTiers {
    pool: PgPool,
    reads: Coalescer<i64, Bytes, Arc<StoreError>>,
}

impl LiveTiers {
    /// Live tiers read from `pool`.
    pub fn new(pool: PgPool) -> Self {
        LiveTiers {
            pool,
            reads: Coalescer::new(),
        }
    }

    /// `[TicketTier, ...]` of show `show_id` (empty for a show without tiers or unknown).
    pub async fn json(&self, show_id: i64) -> Result<Bytes, StoreError> {
        let pool = self.pool.clone();
        self.reads
            .read(show_id, move || async move {
                let tiers = show_tiers(&pool, show_id).await.map_err(Arc::new)?;
                serde_json::to_vec(&tiers)
                    .map(Bytes::from)
                    .map_err(|e| Arc::new(StoreError::from(e)))
            })
            .await
            .map_err(StoreError::Shared)
    }
}

/// `GET /api/v1/tickets/`: tiers of public shows, optionally of one show.
pub async fn list_tiers(
    pool: &PgPool,
    show: Option<i64>,
    page: Option<PageRequest>,
) -> Result<Listing<TicketTier>, StoreError> {
    let mut count = None;
    if page.is_some() {
        let n = sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!" FROM tickets t
                WHERE EXISTS (SELECT 1 FROM shows s WHERE s.id = t.show_id AND s.published AND NOT s.is_deleted)
                  AND ($1::int8 IS NULL OR t.show_id = $1)"#,
            show
        )
        .fetch_one(pool)
        .await?;
        count = Some(n);
    }
    let (limit, offset) = limit_offset(page);
    let query = sqlx::query_as!(
        TierRow,
        r#"SELECT t.id, t.show_id, t.name, t.description, t.price, t.quantity, t.is_donation_based,
                  t.max_per_order, t.sold,
                  (t.held - COALESCE((SELECT SUM(ol.quantity) FROM order_lines ol JOIN orders o ON o.id = ol.order_id
                      WHERE ol.ticket_id = t.id AND o.status = 'pending' AND o.expires_at <= now()), 0))::int4 AS "active_held!"
             FROM tickets t
            WHERE EXISTS (SELECT 1 FROM shows s WHERE s.id = t.show_id AND s.published AND NOT s.is_deleted)
              AND ($1::int8 IS NULL OR t.show_id = $1)
            ORDER BY t.show_id, t.position, t.id LIMIT $2 OFFSET $3"#,
        show,
        limit,
        offset
    );
    let rows = timed("list_tiers", query.fetch_all(pool)).await?;
    Ok(Listing {
        rows: rows.into_iter().map(TierRow::into_tier).collect(),
        count,
    })
}

/// `GET /api/v1/featured-shows/`: currently featured public shows, by position.
pub async fn featured_shows(pool: &PgPool) -> Result<Vec<FeaturedShow>, StoreError> {
    let query = sqlx::query!(
        "SELECT f.id, f.position, f.show_id FROM featured_shows f JOIN shows s ON s.id = f.show_id \
          WHERE s.published AND NOT s.is_deleted AND (f.starts_at IS NULL OR f.starts_at <= now()) \
            AND (f.ends_at IS NULL OR f.ends_at > now()) ORDER BY f.position, f.id"
    );
    let featured = timed("featured_shows", query.fetch_all(pool)).await?;
    let ids: Vec<i64> = featured.iter().map(|f| f.show_id).collect();
    let shows: HashMap<i64, ShowSummary> = public_shows(pool, &ids)
        .await?
        .into_iter()
        .map(|s| (s.id, s))
        .collect();
    Ok(featured
        .into_iter()
        .filter_map(|f| {
            let show = shows.get(&f.show_id)?.clone();
            Some(FeaturedShow {
                id: f.id,
                position: f.position,
                show,
            })
        })
        .collect())
}

/// One listing: `count` (only awaited when a page was asked for) and `rows` of the page.
async fn listing<T>(
    page: Option<PageRequest>,
    count: impl Future<Output = Result<i64, sqlx::Error>>,
    rows: impl Future<Output = Result<Vec<T>, sqlx::Error>>,
) -> Result<Listing<T>, StoreError> {
    let count = match page {
        Some(_) => Some(count.await?),
        None => None,
    };
    Ok(Listing {
        rows: rows.await?,
        count,
    })
}

/// `GET /api/v1/venues/`.
pub async fn list_venues(
    pool: &PgPool,
    page: Option<PageRequest>,
) -> Result<Listing<Venue>, StoreError> {
    let (limit, offset) = limit_offset(page);
    let count = sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM venues"#).fetch_one(pool);
    let rows = sqlx::query_as!(
        Venue,
        "SELECT id, name, address, city, state, postal_code, country, capacity FROM venues \
         ORDER BY name, id LIMIT $1 OFFSET $2",
        limit,
        offset
    )
    .fetch_all(pool);
    listing(page, count, timed("list_venues", rows)).await
}

/// `GET /api/v1/performers/`.
pub async fn list_performers(
    pool: &PgPool,
    page: Option<PageRequest>,
) -> Result<Listing<Performer>, StoreError> {
    let (limit, offset) = limit_offset(page);
    let count = sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM performers"#).fetch_one(pool);
    let rows = sqlx::query_as!(
        Performer,
        "SELECT id, name, bio, image, website FROM performers ORDER BY name, id LIMIT $1 OFFSET $2",
        limit,
        offset
    )
    .fetch_all(pool);
    listing(page, count, timed("list_performers", rows)).await
}

/// `GET /api/v1/producers/`: public fields only.
pub async fn list_producers(
    pool: &PgPool,
    page: Option<PageRequest>,
) -> Result<Listing<ProducerPublic>, StoreError> {
    let (limit, offset) = limit_offset(page);
    let count = sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM producers"#).fetch_one(pool);
    let rows = sqlx::query_as!(
        ProducerPublic,
        "SELECT id, name, slug, description, image, website FROM producers ORDER BY name, id LIMIT $1 OFFSET $2",
        limit,
        offset
    )
    .fetch_all(pool);
    listing(page, count, timed("list_producers", rows)).await
}

/// `GET /api/v1/search/?q=`: public shows whose title or description, venue (name, city) or
/// a performer matches every word of `tsquery` (built by `pique_core::search`), by start time.
/// Each branch uses its own GIN index; no table scan.
pub async fn search_shows(
    pool: &PgPool,
    tsquery: &str,
    limit: i64,
) -> Result<Vec<ShowSummary>, StoreError> {
    let query = sqlx::query_scalar!(
        "WITH q AS (SELECT to_tsquery('simple', $1) AS q), ids AS ( \
           SELECT s.id FROM shows s, q WHERE s.search @@ q.q \
           UNION SELECT s.id FROM venues v JOIN shows s ON s.venue_id = v.id, q WHERE v.search @@ q.q \
           UNION SELECT sp.show_id FROM performers pf JOIN show_performers sp ON sp.performer_id = pf.id, q \
                 WHERE pf.search @@ q.q) \
         SELECT s.id FROM shows s JOIN ids ON ids.id = s.id WHERE s.published AND NOT s.is_deleted \
         ORDER BY s.start_time, s.id LIMIT $2",
        tsquery,
        limit
    );
    let ids = timed("search_shows", query.fetch_all(pool)).await?;
    public_shows(pool, &ids).await
}

/// `GET /api/v1/active-cities/`: cities with upcoming public shows, busiest first.
pub async fn active_cities(pool: &PgPool) -> Result<Vec<ActiveCity>, StoreError> {
    let query = sqlx::query_as!(
        ActiveCity,
        r#"SELECT v.city, v.state, count(*) AS "show_count!" FROM shows s JOIN venues v ON v.id = s.venue_id
            WHERE s.published AND NOT s.is_deleted AND s.start_time > now() GROUP BY v.city, v.state
            ORDER BY 3 DESC, v.city, v.state"#
    );
    Ok(timed("active_cities", query.fetch_all(pool)).await?)
}
