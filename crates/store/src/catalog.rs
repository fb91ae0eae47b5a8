//! Public reads: shows, tiers with live availability, venues, performers, producers,
//! featured shows, search and active cities.
//!
//! Public means published and not soft-deleted; every query here applies that rule through
//! [`PUBLIC_SHOW`], so no endpoint can leak a draft.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use pique_core::{
    availability,
    model::{
        ActiveCity, FeaturedShow, PageDesign, Performer, PerformerSummary, ProducerPublic,
        ProducerSummary, ShowDetail, ShowSummary, TicketTier, Venue,
    },
    query::{PageRequest, ShowFilters},
};
use rust_decimal::Decimal;
use sqlx::{PgPool, Postgres, QueryBuilder};

use crate::{StoreError, db::timed};

/// The condition that makes a show (aliased `s`) visible to the public.
pub const PUBLIC_SHOW: &str = "s.published AND NOT s.is_deleted";

/// Columns of a show row with its venue and producer (`s`, `v`, `p` aliases).
const SHOW_COLUMNS: &str = "s.id, s.title, s.slug, s.description, s.door_time, s.start_time, s.end_time, \
    s.time_zone, s.age_restriction, s.image, s.banner_image, s.square_image, s.featured_video, \
    s.facebook_campaign_id, s.published, s.refund_policy, s.created_at, \
    v.id AS venue_id, v.name AS venue_name, v.address AS venue_address, v.city AS venue_city, \
    v.state AS venue_state, v.postal_code AS venue_postal_code, v.country AS venue_country, \
    v.capacity AS venue_capacity, p.id AS producer_id, p.name AS producer_name, p.slug AS producer_slug";

const SHOW_FROM: &str =
    " FROM shows s JOIN venues v ON v.id = s.venue_id JOIN producers p ON p.id = s.producer_id";

/// Ticket tiers with their *active* holds: the counter `held` minus holds whose order has
/// expired but which the sweeper has not released yet. This is the single definition of
/// availability's inputs; [`availability::available`] does the arithmetic.
pub const TIER_SELECT: &str = "SELECT t.id, t.show_id, t.name, t.description, t.price, t.quantity, \
    t.is_donation_based, t.max_per_order, t.sold, \
    (t.held - COALESCE((SELECT SUM(ol.quantity) FROM order_lines ol JOIN orders o ON o.id = ol.order_id \
        WHERE ol.ticket_id = t.id AND o.status = 'pending' AND o.expires_at <= now()), 0))::int4 AS active_held \
    FROM tickets t";

#[derive(sqlx::FromRow)]
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

/// A tier row as read by [`TIER_SELECT`].
#[derive(Debug, Clone, sqlx::FromRow)]
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
    pub price: Decimal,
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

/// `GET /api/v1/shows/`: public shows matching `filters`, by start time.
pub async fn list_shows(
    pool: &PgPool,
    filters: &ShowFilters,
) -> Result<Listing<ShowSummary>, StoreError> {
    let mut count = None;
    if filters.page.is_some() {
        let mut q = QueryBuilder::<Postgres>::new("SELECT count(*)");
        q.push(SHOW_FROM);
        push_show_filters(&mut q, filters);
        count = Some(q.build_query_scalar::<i64>().fetch_one(pool).await?);
    }
    let mut q = QueryBuilder::<Postgres>::new("SELECT ");
    q.push(SHOW_COLUMNS).push(SHOW_FROM);
    push_show_filters(&mut q, filters);
    q.push(" ORDER BY s.start_time, s.id");
    push_page(&mut q, filters.page);
    let rows: Vec<ShowRow> = timed("list_shows", q.build_query_as().fetch_all(pool)).await?;
    Ok(Listing {
        rows: with_performers(pool, rows).await?,
        count,
    })
}

fn push_show_filters(q: &mut QueryBuilder<'_, Postgres>, f: &ShowFilters) {
    q.push(" WHERE ").push(PUBLIC_SHOW);
    if let Some(t) = f.start_time_gt {
        q.push(" AND s.start_time > ").push_bind(t);
    }
    if let Some(t) = f.start_time_lt {
        q.push(" AND s.start_time < ").push_bind(t);
    }
    if let Some(slug) = &f.slug {
        q.push(" AND s.slug = ").push_bind(slug.clone());
    }
    if let Some(city) = &f.city {
        q.push(" AND lower(v.city) = lower(")
            .push_bind(city.clone())
            .push(")");
    }
    if let Some(p) = f.producer {
        q.push(" AND s.producer_id = ").push_bind(p);
    }
    if let Some(v) = f.venue {
        q.push(" AND s.venue_id = ").push_bind(v);
    }
}

fn push_page(q: &mut QueryBuilder<'_, Postgres>, page: Option<PageRequest>) {
    if let Some(p) = page {
        q.push(" LIMIT ")
            .push_bind(i64::from(p.size))
            .push(" OFFSET ")
            .push_bind(p.offset());
    }
}

/// Attaches performers to show rows with one query for all of them.
async fn with_performers(
    pool: &PgPool,
    rows: Vec<ShowRow>,
) -> Result<Vec<ShowSummary>, StoreError> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let query = sqlx::query_as(
        "SELECT sp.show_id, p.id, p.name FROM show_performers sp JOIN performers p ON p.id = sp.performer_id \
         WHERE sp.show_id = ANY($1) ORDER BY sp.show_id, sp.position, p.id",
    )
    .bind(&ids);
    let links: Vec<(i64, i64, String)> = timed("show_performers", query.fetch_all(pool)).await?;
    let mut by_show: HashMap<i64, Vec<PerformerSummary>> = HashMap::new();
    for (show_id, id, name) in links {
        by_show
            .entry(show_id)
            .or_default()
            .push(PerformerSummary { id, name });
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
    let sql = format!("SELECT {SHOW_COLUMNS}{SHOW_FROM} WHERE s.id = $1 AND {PUBLIC_SHOW}");
    let query = sqlx::query_as::<_, ShowRow>(&sql).bind(id);
    let Some(row) = timed("show_detail", query.fetch_optional(pool)).await? else {
        return Ok(None);
    };
    let show = with_performers(pool, vec![row])
        .await?
        .pop()
        .ok_or(StoreError::NotFound)?;
    let page_design: Option<PageDesign> = sqlx::query_as(
        "SELECT primary_color, secondary_color, background_image FROM page_designs WHERE show_id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(Some(ShowDetail {
        show,
        tickets: Vec::new(),
        page_design,
    }))
}

/// Tiers of a show with live availability, in display order.
pub async fn show_tiers(pool: &PgPool, show_id: i64) -> Result<Vec<TicketTier>, StoreError> {
    let sql = format!("{TIER_SELECT} WHERE t.show_id = $1 ORDER BY t.position, t.id");
    let rows: Vec<TierRow> = timed(
        "show_tiers",
        sqlx::query_as(&sql).bind(show_id).fetch_all(pool),
    )
    .await?;
    Ok(rows.into_iter().map(TierRow::into_tier).collect())
}

/// `GET /api/v1/tickets/`: tiers of public shows, optionally of one show.
pub async fn list_tiers(
    pool: &PgPool,
    show: Option<i64>,
    page: Option<PageRequest>,
) -> Result<Listing<TicketTier>, StoreError> {
    let filter = |q: &mut QueryBuilder<'_, Postgres>| {
        q.push(" WHERE EXISTS (SELECT 1 FROM shows s WHERE s.id = t.show_id AND ")
            .push(PUBLIC_SHOW)
            .push(")");
        if let Some(s) = show {
            q.push(" AND t.show_id = ").push_bind(s);
        }
    };
    let mut count = None;
    if page.is_some() {
        let mut q = QueryBuilder::<Postgres>::new("SELECT count(*) FROM tickets t");
        filter(&mut q);
        count = Some(q.build_query_scalar::<i64>().fetch_one(pool).await?);
    }
    let mut q = QueryBuilder::<Postgres>::new(TIER_SELECT);
    filter(&mut q);
    q.push(" ORDER BY t.show_id, t.position, t.id");
    push_page(&mut q, page);
    let rows: Vec<TierRow> = timed("list_tiers", q.build_query_as().fetch_all(pool)).await?;
    Ok(Listing {
        rows: rows.into_iter().map(TierRow::into_tier).collect(),
        count,
    })
}

/// `GET /api/v1/featured-shows/`: currently featured public shows, by position.
pub async fn featured_shows(pool: &PgPool) -> Result<Vec<FeaturedShow>, StoreError> {
    let sql = format!(
        "SELECT f.id AS featured_id, f.position AS featured_position, {SHOW_COLUMNS}{SHOW_FROM} \
         JOIN featured_shows f ON f.show_id = s.id \
         WHERE {PUBLIC_SHOW} AND (f.starts_at IS NULL OR f.starts_at <= now()) \
         AND (f.ends_at IS NULL OR f.ends_at > now()) ORDER BY f.position, f.id"
    );
    #[derive(sqlx::FromRow)]
    struct Row {
        featured_id: i64,
        featured_position: i32,
        #[sqlx(flatten)]
        show: ShowRow,
    }
    let rows: Vec<Row> = timed("featured_shows", sqlx::query_as(&sql).fetch_all(pool)).await?;
    let meta: Vec<(i64, i32)> = rows
        .iter()
        .map(|r| (r.featured_id, r.featured_position))
        .collect();
    let shows = with_performers(pool, rows.into_iter().map(|r| r.show).collect()).await?;
    Ok(meta
        .into_iter()
        .zip(shows)
        .map(|((id, position), show)| FeaturedShow { id, position, show })
        .collect())
}

/// `GET /api/v1/venues/`.
pub async fn list_venues(
    pool: &PgPool,
    page: Option<PageRequest>,
) -> Result<Listing<Venue>, StoreError> {
    simple_list(
        pool,
        "SELECT id, name, address, city, state, postal_code, country, capacity FROM venues ORDER BY name, id",
        "SELECT count(*) FROM venues",
        page,
    )
    .await
}

/// `GET /api/v1/performers/`.
pub async fn list_performers(
    pool: &PgPool,
    page: Option<PageRequest>,
) -> Result<Listing<Performer>, StoreError> {
    simple_list(
        pool,
        "SELECT id, name, bio, image, website FROM performers ORDER BY name, id",
        "SELECT count(*) FROM performers",
        page,
    )
    .await
}

/// `GET /api/v1/producers/`: public fields only.
pub async fn list_producers(
    pool: &PgPool,
    page: Option<PageRequest>,
) -> Result<Listing<ProducerPublic>, StoreError> {
    simple_list(
        pool,
        "SELECT id, name, slug, description, image, website FROM producers ORDER BY name, id",
        "SELECT count(*) FROM producers",
        page,
    )
    .await
}

async fn simple_list<T>(
    pool: &PgPool,
    select: &'static str,
    count_sql: &'static str,
    page: Option<PageRequest>,
) -> Result<Listing<T>, StoreError>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    let mut count = None;
    if page.is_some() {
        count = Some(
            sqlx::query_scalar::<_, i64>(count_sql)
                .fetch_one(pool)
                .await?,
        );
    }
    let mut q = QueryBuilder::<Postgres>::new(select);
    push_page(&mut q, page);
    let rows: Vec<T> = timed("simple_list", q.build_query_as().fetch_all(pool)).await?;
    Ok(Listing { rows, count })
}

/// `GET /api/v1/search/?q=`: public shows whose title or description, venue (name, city) or
/// a performer matches every word of `tsquery` (built by `pique_core::search`), by start time.
/// Each branch uses its own GIN index; no table scan.
pub async fn search_shows(
    pool: &PgPool,
    tsquery: &str,
    limit: i64,
) -> Result<Vec<ShowSummary>, StoreError> {
    let sql = format!(
        "WITH q AS (SELECT to_tsquery('simple', $1) AS q), ids AS ( \
           SELECT s.id FROM shows s, q WHERE s.search @@ q.q \
           UNION SELECT s.id FROM venues v JOIN shows s ON s.venue_id = v.id, q WHERE v.search @@ q.q \
           UNION SELECT sp.show_id FROM performers pf JOIN show_performers sp ON sp.performer_id = pf.id, q \
                 WHERE pf.search @@ q.q) \
         SELECT {SHOW_COLUMNS}{SHOW_FROM} JOIN ids ON ids.id = s.id WHERE {PUBLIC_SHOW} \
         ORDER BY s.start_time, s.id LIMIT $2"
    );
    let query = sqlx::query_as(&sql).bind(tsquery).bind(limit);
    let rows: Vec<ShowRow> = timed("search_shows", query.fetch_all(pool)).await?;
    with_performers(pool, rows).await
}

/// `GET /api/v1/active-cities/`: cities with upcoming public shows, busiest first.
pub async fn active_cities(pool: &PgPool) -> Result<Vec<ActiveCity>, StoreError> {
    let sql = format!(
        "SELECT v.city, v.state, count(*) AS show_count FROM shows s JOIN venues v ON v.id = s.venue_id \
         WHERE {PUBLIC_SHOW} AND s.start_time > now() GROUP BY v.city, v.state \
         ORDER BY show_count DESC, v.city, v.state"
    );
    Ok(timed("active_cities", sqlx::query_as(&sql).fetch_all(pool)).await?)
}
