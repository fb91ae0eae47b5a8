//! Fixtures of the producer-side tests, on top of `support::TestApp`: producers with logins,
//! venues, shows, paid orders with attendees, and an authenticated request helper.
#![allow(dead_code)] // each test binary uses a different subset

use std::sync::OnceLock;

use pique_store::PgPool;
use reqwest::Method;
use serde_json::Value;

use crate::support::{TestApp, TestError};

/// Password of every fixture user.
pub const PASSWORD: &str = "correct horse battery staple";

/// One Argon2 hash for every fixture user: hashing is slow and the tests make many users.
fn password_hash() -> Result<String, TestError> {
    static HASH: OnceLock<String> = OnceLock::new();
    if let Some(h) = HASH.get() {
        return Ok(h.clone());
    }
    let h = pique_store::seed::hash_password(PASSWORD)?;
    Ok(HASH.get_or_init(|| h).clone())
}

/// A user without a producer (e.g. staff); returns the user id.
pub async fn user(pool: &PgPool, username: &str, staff: bool) -> Result<i64, TestError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO users (username, email, password_hash, is_staff) VALUES ($1, $1 || '@pique.test', $2, $3) RETURNING id",
    )
    .bind(username)
    .bind(password_hash()?)
    .bind(staff)
    .fetch_one(pool)
    .await?)
}

/// A producer with one member user `username`; returns the producer id.
pub async fn producer(pool: &PgPool, username: &str) -> Result<i64, TestError> {
    let user_id = user(pool, username, false).await?;
    let producer_id: i64 = sqlx::query_scalar(
        "INSERT INTO producers (name, slug) VALUES ($1 || ' Presents', $1) RETURNING id",
    )
    .bind(username)
    .fetch_one(pool)
    .await?;
    sqlx::query("INSERT INTO producer_members (producer_id, user_id) VALUES ($1, $2)")
        .bind(producer_id)
        .bind(user_id)
        .execute(pool)
        .await?;
    Ok(producer_id)
}

/// A venue; returns its id.
pub async fn venue(pool: &PgPool) -> Result<i64, TestError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO venues (name, city) VALUES ('The Hall', 'Austin') RETURNING id",
    )
    .fetch_one(pool)
    .await?)
}

/// A show of `producer` (published or draft) at `venue`, 10 days ahead; returns its id.
pub async fn show_of(
    pool: &PgPool,
    producer: i64,
    venue: i64,
    slug: &str,
    published: bool,
) -> Result<i64, TestError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO shows (title, slug, start_time, venue_id, producer_id, published, draft_created_at) \
         VALUES (initcap(replace($1, '-', ' ')), $1, now() + interval '10 days', $2, $3, $4, now()) RETURNING id",
    )
    .bind(slug)
    .bind(venue)
    .bind(producer)
    .bind(published)
    .fetch_one(pool)
    .await?)
}

/// A tier; returns its id.
pub async fn tier_of(
    pool: &PgPool,
    show: i64,
    quantity: i32,
    price: &str,
) -> Result<i64, TestError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO tickets (show_id, name, quantity, price) VALUES ($1, 'General', $2, $3::numeric) RETURNING id",
    )
    .bind(show)
    .bind(quantity)
    .bind(price)
    .fetch_one(pool)
    .await?)
}

/// A paid order of `seats` seats of `ticket` with one attendee per seat, written directly
/// (as `/success/` would); returns `(order id, attendee uuids)`.
pub async fn paid_order(
    pool: &PgPool,
    show: i64,
    ticket: i64,
    email: &str,
    seats: i32,
) -> Result<(i64, Vec<uuid::Uuid>), TestError> {
    let mut tx = pool.begin().await?;
    let order: i64 = sqlx::query_scalar(
        "INSERT INTO orders (uuid, show_id, order_email, order_name, status, subtotal, total, expires_at, paid_at) \
         VALUES (gen_random_uuid(), $1, $2, 'Buyer', 'paid', 10 * $3, 10 * $3, now() + interval '30 minutes', now()) RETURNING id",
    )
    .bind(show)
    .bind(email)
    .bind(seats)
    .fetch_one(&mut *tx)
    .await?;
    let line: i64 = sqlx::query_scalar(
        "INSERT INTO order_lines (uuid, order_id, ticket_id, quantity, price_per_ticket, line_total) \
         VALUES (gen_random_uuid(), $1, $2, $3, 10, 10 * $3) RETURNING id",
    )
    .bind(order)
    .bind(ticket)
    .bind(seats)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("UPDATE tickets SET sold = sold + $2 WHERE id = $1")
        .bind(ticket)
        .bind(seats)
        .execute(&mut *tx)
        .await?;
    let uuids: Vec<uuid::Uuid> = sqlx::query_scalar(
        "INSERT INTO attendees (uuid, order_id, order_line_id, show_id, ticket_id, seq, name, email) \
         SELECT gen_random_uuid(), $1, $2, $3, $4, g, 'Guest ' || g, $5 FROM generate_series(1, $6) g RETURNING uuid",
    )
    .bind(order)
    .bind(line)
    .bind(show)
    .bind(ticket)
    .bind(email)
    .bind(seats)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((order, uuids))
}

/// Logs `username` in; returns the token.
pub async fn login(app: &TestApp, username: &str) -> Result<String, TestError> {
    let (status, body) = app
        .post(
            "/auth/login/",
            &serde_json::json!({"username": username, "password": PASSWORD}),
        )
        .await?;
    if status != 200 {
        return Err(format!("login {username}: {status} {body}").into());
    }
    Ok(body["token"].as_str().ok_or("no token")?.to_string())
}

/// A request with an optional token and JSON body; returns status and JSON (Null if none).
pub async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Result<(u16, Value), TestError> {
    let mut req = app.client.request(method, app.url(path));
    if let Some(t) = token {
        req = req.header("Authorization", format!("Token {t}"));
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

/// `count(*)` of a table.
pub async fn count(pool: &PgPool, table: &str) -> Result<i64, TestError> {
    Ok(sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(pool)
        .await?)
}

/// Row counts of every table the portal writes, to prove a refused request wrote nothing.
pub async fn portal_counts(pool: &PgPool) -> Result<Vec<(String, i64)>, TestError> {
    let mut out = Vec::new();
    for t in [
        "shows",
        "tickets",
        "promo_codes",
        "page_designs",
        "checkin_links",
        "subscribers",
        "auth_tokens",
    ] {
        out.push((t.to_string(), count(pool, t).await?));
    }
    // Content too: an UPDATE that should have been refused changes no count.
    let fingerprint: String = sqlx::query_scalar(
        "SELECT md5(COALESCE((SELECT string_agg(s::text, '|' ORDER BY s.id) FROM shows s), '') || \
         COALESCE((SELECT string_agg(t::text, '|' ORDER BY t.id) FROM tickets t), '') || \
         COALESCE((SELECT string_agg(c::text, '|' ORDER BY c.id) FROM promo_codes c), '') || \
         COALESCE((SELECT string_agg(d::text, '|' ORDER BY d.id) FROM page_designs d), '') || \
         COALESCE((SELECT string_agg(p::text, '|' ORDER BY p.id) FROM producers p), ''))",
    )
    .fetch_one(pool)
    .await?;
    out.push((fingerprint, 0));
    Ok(out)
}
