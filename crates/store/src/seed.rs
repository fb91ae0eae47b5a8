//! Deterministic fixture generation (`pique seed --preset small|medium|large`).
//!
//! The same preset always produces the same rows with the same ids (a seeded ChaCha RNG and a
//! fresh database), with dates relative to the day of seeding so that shows stay upcoming.
//! Guarantees the original team's unmodified Locust file relies on:
//! - ticket tier 1 belongs to show 1, is published, upcoming, and large enough for long runs;
//! - every show carries promo code `TESTPROMO` (10 % off);
//! - producer users `producer1`..`producerN` log in with password [`DEMO_PASSWORD`].

use std::time::Instant;

use argon2::{
    Argon2, PasswordHasher,
    password_hash::{SaltString, rand_core::OsRng},
};
use chrono::{DateTime, Duration, DurationRound, Utc};
use fake::{
    Fake,
    faker::{
        address::en::{BuildingNumber, StreetName, ZipCode},
        company::en::{Buzzword, CatchPhrase, CompanyName},
        lorem::en::Paragraph,
        name::en::Name,
    },
    rand::{RngExt, SeedableRng, rngs::ChaCha8Rng},
};
use pique_core::slug::slugify;
use rust_decimal::Decimal;
use sqlx::PgPool;

use crate::StoreError;

/// Password of every seeded user (printed by `pique demo`).
pub const DEMO_PASSWORD: &str = "pique-demo";
/// The promo code on every show.
pub const TEST_PROMO: &str = "TESTPROMO";
/// Capacity of tier 1, the tier the seed's Locust `CheckoutUser` buys over and over.
pub const LOAD_TEST_TIER_QUANTITY: i32 = 1_000_000;

/// How much data to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    /// Name (`small`, `medium`, `large`).
    pub name: &'static str,
    /// Shows.
    pub shows: usize,
    /// Venues.
    pub venues: usize,
    /// Performers.
    pub performers: usize,
    /// Producers (each with one login).
    pub producers: usize,
}

/// The presets, from a quick demo to the size of a busy platform.
pub const PRESETS: [Preset; 3] = [
    Preset {
        name: "small",
        shows: 40,
        venues: 10,
        performers: 30,
        producers: 3,
    },
    Preset {
        name: "medium",
        shows: 1_000,
        venues: 100,
        performers: 400,
        producers: 20,
    },
    Preset {
        name: "large",
        shows: 100_000,
        venues: 2_000,
        performers: 20_000,
        producers: 200,
    },
];

impl Preset {
    /// Looks a preset up by name.
    pub fn by_name(name: &str) -> Option<Preset> {
        PRESETS.iter().copied().find(|p| p.name == name)
    }
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SeedReport {
    /// Preset name.
    pub preset: &'static str,
    /// Rows per table.
    pub shows: usize,
    /// Ticket tiers.
    pub tickets: usize,
    /// Venues.
    pub venues: usize,
    /// Performers.
    pub performers: usize,
    /// Producers.
    pub producers: usize,
    /// Milliseconds taken.
    pub millis: u128,
}

/// Real cities, so `active-cities` looks like a real platform.
const CITIES: [(&str, &str); 20] = [
    ("Austin", "TX"),
    ("Chicago", "IL"),
    ("Nashville", "TN"),
    ("New Orleans", "LA"),
    ("Denver", "CO"),
    ("Seattle", "WA"),
    ("Portland", "OR"),
    ("Atlanta", "GA"),
    ("Brooklyn", "NY"),
    ("Los Angeles", "CA"),
    ("San Francisco", "CA"),
    ("Minneapolis", "MN"),
    ("Detroit", "MI"),
    ("Philadelphia", "PA"),
    ("Boston", "MA"),
    ("Houston", "TX"),
    ("Dallas", "TX"),
    ("Kansas City", "MO"),
    ("Memphis", "TN"),
    ("Phoenix", "AZ"),
];
const TIME_ZONES: [&str; 4] = [
    "America/Chicago",
    "America/New_York",
    "America/Denver",
    "America/Los_Angeles",
];
const VENUE_KINDS: [&str; 6] = [
    "Hall",
    "Theater",
    "Club",
    "Lounge",
    "Ballroom",
    "Comedy Cellar",
];

/// Writes `preset` into an empty database (`reset` truncates it first).
pub async fn seed(pool: &PgPool, preset: Preset, reset: bool) -> Result<SeedReport, StoreError> {
    let started = Instant::now();
    let mut tx = pool.begin().await?;
    if reset {
        sqlx::query!(
            "TRUNCATE users, auth_tokens, producers, producer_members, venues, performers, shows, \
             show_performers, tickets, promo_codes, page_designs, featured_shows, orders, order_lines, \
             attendees, checkout_requests, stripe_events, outbox, ticket_pdfs, email_messages, email_events, \
             subscribers, checkin_links RESTART IDENTITY CASCADE"
        )
        .execute(&mut *tx)
        .await?;
    } else {
        let existing = sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM shows"#)
            .fetch_one(&mut *tx)
            .await?;
        if existing > 0 {
            return Err(StoreError::Conflict(format!(
                "the database already has {existing} shows; use --reset to replace them"
            )));
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(0x0050_4951_5545);
    let today: DateTime<Utc> = Utc::now()
        .duration_trunc(Duration::days(1))
        .unwrap_or_else(|_| Utc::now());
    let password_hash = hash_password(DEMO_PASSWORD)?;

    // Users and producers: user 1 is staff, users 2.. are producer logins.
    sqlx::query!(
        "INSERT INTO users (username, email, password_hash, is_staff) VALUES ('admin', 'admin@pique.test', $1, TRUE)",
        password_hash
    )
    .execute(&mut *tx)
    .await?;
    let mut producer_names = Vec::new();
    for i in 1..=preset.producers {
        let company: String = CompanyName().fake_with_rng(&mut rng);
        let name = format!("{company} Presents");
        let slug = format!("{}-{i}", slugify(&name));
        let email = format!("producer{i}@pique.test");
        let user_id = sqlx::query_scalar!(
            "INSERT INTO users (username, email, password_hash, first_name) VALUES ($1, $2, $3, $4) RETURNING id",
            format!("producer{i}"),
            email,
            password_hash,
            company
        )
        .fetch_one(&mut *tx)
        .await?;
        let producer_id = sqlx::query_scalar!(
            "INSERT INTO producers (name, slug, description, contact_email, website) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            name,
            slug,
            Paragraph(1..3).fake_with_rng::<String, _>(&mut rng),
            email,
            format!("https://{slug}.example.com")
        )
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query!(
            "INSERT INTO producer_members (producer_id, user_id) VALUES ($1, $2)",
            producer_id,
            user_id
        )
        .execute(&mut *tx)
        .await?;
        producer_names.push(name);
    }

    // Venues.
    let mut v_name = Vec::new();
    let mut v_addr = Vec::new();
    let mut v_city = Vec::new();
    let mut v_state = Vec::new();
    let mut v_zip = Vec::new();
    let mut v_cap = Vec::new();
    for _ in 0..preset.venues {
        let (city, state) = CITIES[rng.random_range(0..CITIES.len())];
        let street: String = StreetName().fake_with_rng(&mut rng);
        let kind = VENUE_KINDS[rng.random_range(0..VENUE_KINDS.len())];
        v_name.push(format!("The {street} {kind}"));
        v_addr.push(format!(
            "{} {street}",
            BuildingNumber().fake_with_rng::<String, _>(&mut rng)
        ));
        v_city.push(city.to_string());
        v_state.push(state.to_string());
        v_zip.push(ZipCode().fake_with_rng::<String, _>(&mut rng));
        v_cap.push(rng.random_range(80..2000_i32));
    }
    sqlx::query!(
        "INSERT INTO venues (name, address, city, state, postal_code, capacity) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int4[])",
        &v_name,
        &v_addr,
        &v_city,
        &v_state,
        &v_zip,
        &v_cap
    )
    .execute(&mut *tx)
    .await?;

    // Performers.
    let mut p_name = Vec::new();
    let mut p_bio = Vec::new();
    for i in 0..preset.performers {
        let name: String = if i % 3 == 0 {
            let word: String = Buzzword().fake_with_rng(&mut rng);
            format!(
                "The {} {}",
                capitalise(&word),
                ["Collective", "Trio", "Kids", "Orchestra"][i % 4]
            )
        } else {
            Name().fake_with_rng(&mut rng)
        };
        p_name.push(name);
        p_bio.push(Paragraph(1..2).fake_with_rng::<String, _>(&mut rng));
    }
    sqlx::query!(
        "INSERT INTO performers (name, bio) SELECT * FROM UNNEST($1::text[], $2::text[])",
        &p_name,
        &p_bio
    )
    .execute(&mut *tx)
    .await?;

    // Shows, their tiers, promo codes, performers and page designs, in batches.
    let mut tickets_total = 0usize;
    const BATCH: usize = 2_000;
    let mut next_id = 1usize;
    while next_id <= preset.shows {
        let end = (next_id + BATCH - 1).min(preset.shows);
        let mut b = ShowBatch::default();
        for id in next_id..=end {
            b.push_show(id, &mut rng, today, preset);
        }
        tickets_total += b.insert(&mut tx).await?;
        next_id = end + 1;
    }

    // Featured: the first eight upcoming public shows by id spacing, in order.
    sqlx::query!(
        "INSERT INTO featured_shows (show_id, position) \
         SELECT id, row_number() OVER (ORDER BY id) FROM ( \
            SELECT id FROM shows WHERE published AND NOT is_deleted AND start_time > now() \
            ORDER BY (id % 7), id LIMIT 8) f"
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    sqlx::query!("ANALYZE").execute(pool).await?;
    Ok(SeedReport {
        preset: preset.name,
        shows: preset.shows,
        tickets: tickets_total,
        venues: preset.venues,
        performers: preset.performers,
        producers: preset.producers,
        millis: started.elapsed().as_millis(),
    })
}

/// Hashes a password with Argon2id (the format Django's `Argon2PasswordHasher` also reads).
pub fn hash_password(password: &str) -> Result<String, StoreError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Conflict(format!("cannot hash password: {e}")))
}

fn capitalise(word: &str) -> String {
    let mut c = word.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Column vectors for one `UNNEST` insert per table.
#[derive(Default)]
struct ShowBatch {
    id: Vec<i64>,
    title: Vec<String>,
    slug: Vec<String>,
    description: Vec<String>,
    door: Vec<DateTime<Utc>>,
    start: Vec<DateTime<Utc>>,
    end: Vec<DateTime<Utc>>,
    tz: Vec<String>,
    age: Vec<String>,
    published: Vec<bool>,
    deleted: Vec<bool>,
    venue: Vec<i64>,
    producer: Vec<i64>,
    t_show: Vec<i64>,
    t_name: Vec<String>,
    t_qty: Vec<i32>,
    t_price: Vec<Decimal>,
    t_donation: Vec<bool>,
    t_pos: Vec<i32>,
    sp_show: Vec<i64>,
    sp_performer: Vec<i64>,
    sp_pos: Vec<i32>,
    design_show: Vec<i64>,
    design_primary: Vec<String>,
}

impl ShowBatch {
    fn push_show(&mut self, id: usize, rng: &mut ChaCha8Rng, today: DateTime<Utc>, preset: Preset) {
        let id64 = id as i64;
        let title: String = CatchPhrase().fake_with_rng(rng);
        // Mostly upcoming (1-90 days, as the seed's generator), one in ten in the past.
        let day = if id != 1 && id.is_multiple_of(10) {
            -rng.random_range(1..60_i64)
        } else {
            rng.random_range(1..90_i64)
        };
        let start = today + Duration::days(day) + Duration::hours(rng.random_range(18..23_i64));
        self.id.push(id64);
        self.slug.push(format!("{}-{id}", slugify(&title)));
        self.title.push(title);
        self.description.push(Paragraph(2..4).fake_with_rng(rng));
        self.door.push(start - Duration::minutes(30));
        self.start.push(start);
        self.end
            .push(start + Duration::hours(rng.random_range(1..4_i64)));
        self.tz.push(TIME_ZONES[id % TIME_ZONES.len()].to_string());
        self.age
            .push(["", "18+", "21+", "All ages"][id % 4].to_string());
        // Show 1 is always public; otherwise ~4 % drafts and ~2 % soft-deleted.
        self.published.push(id == 1 || id % 25 != 7);
        self.deleted.push(id != 1 && id % 50 == 13);
        self.venue.push(rng.random_range(1..=preset.venues as i64));
        self.producer.push(((id - 1) % preset.producers) as i64 + 1);
        let tiers = if id == 1 {
            3
        } else {
            rng.random_range(1..=3_usize)
        };
        for pos in 0..tiers {
            let (name, price, donation, qty) = match pos {
                0 => (
                    "General Admission",
                    rng.random_range(10..45_i64),
                    false,
                    rng.random_range(50..400_i32),
                ),
                1 => (
                    "VIP",
                    rng.random_range(50..150_i64),
                    false,
                    rng.random_range(10..60_i32),
                ),
                _ => (
                    "Pay What You Can",
                    rng.random_range(1..10_i64),
                    true,
                    rng.random_range(20..100_i32),
                ),
            };
            let qty = if id == 1 && pos == 0 {
                LOAD_TEST_TIER_QUANTITY
            } else {
                qty
            };
            self.t_show.push(id64);
            self.t_name.push(name.to_string());
            self.t_qty.push(qty);
            self.t_price.push(Decimal::new(price * 100, 2));
            self.t_donation.push(donation);
            self.t_pos.push(pos as i32);
        }
        let performers = rng.random_range(1..=3_usize);
        let mut seen = Vec::new();
        for pos in 0..performers {
            let p = rng.random_range(1..=preset.performers as i64);
            if !seen.contains(&p) {
                seen.push(p);
                self.sp_show.push(id64);
                self.sp_performer.push(p);
                self.sp_pos.push(pos as i32);
            }
        }
        if id % 2 == 1 {
            self.design_show.push(id64);
            self.design_primary
                .push(format!("#{:06x}", rng.random_range(0..0xff_ffff_u32)));
        }
    }

    async fn insert(self, tx: &mut sqlx::PgConnection) -> Result<usize, StoreError> {
        sqlx::query!(
            "INSERT INTO shows (id, title, slug, description, door_time, start_time, end_time, time_zone, \
               age_restriction, published, is_deleted, deleted_at, venue_id, producer_id, draft_created_at) \
             SELECT id, title, slug, description, door, start, fin, tz, age, pub, del, \
               CASE WHEN del THEN now() END, venue, producer, CASE WHEN NOT pub THEN now() END \
             FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[], \
               $7::timestamptz[], $8::text[], $9::text[], $10::bool[], $11::bool[], $12::int8[], $13::int8[]) \
               AS u(id, title, slug, description, door, start, fin, tz, age, pub, del, venue, producer)",
            &self.id,
            &self.title,
            &self.slug,
            &self.description,
            &self.door,
            &self.start,
            &self.end,
            &self.tz,
            &self.age,
            &self.published,
            &self.deleted,
            &self.venue,
            &self.producer
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query_scalar!("SELECT setval('shows_id_seq', (SELECT max(id) FROM shows))")
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query!(
            "INSERT INTO tickets (show_id, name, quantity, price, is_donation_based, position, description) \
             SELECT s, n, q, p, d, pos, CASE WHEN d THEN 'Pay what you can; the price is the minimum.' ELSE '' END \
             FROM UNNEST($1::int8[], $2::text[], $3::int4[], $4::numeric[], $5::bool[], $6::int4[]) AS u(s, n, q, p, d, pos)",
            &self.t_show,
            &self.t_name,
            &self.t_qty,
            &self.t_price,
            &self.t_donation,
            &self.t_pos
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "INSERT INTO promo_codes (show_id, code, discount, discount_type) \
             SELECT id, $2, 10, 'percent' FROM UNNEST($1::int8[]) AS u(id)",
            &self.id,
            TEST_PROMO
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "INSERT INTO show_performers (show_id, performer_id, position) \
             SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::int4[])",
            &self.sp_show,
            &self.sp_performer,
            &self.sp_pos
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "INSERT INTO page_designs (show_id, primary_color, secondary_color) \
             SELECT s, c, '#ffffff' FROM UNNEST($1::int8[], $2::text[]) AS u(s, c)",
            &self.design_show,
            &self.design_primary
        )
        .execute(&mut *tx)
        .await?;
        Ok(self.t_show.len())
    }
}
