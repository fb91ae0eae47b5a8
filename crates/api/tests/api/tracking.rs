//! The email tracking and ticket download routes over a real database.

use axum::{
    body::{Body, to_bytes},
    http::{Request, StatusCode, header},
};
use pique_store::testing::TestDb;
use tower::ServiceExt;
use uuid::Uuid;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

struct Fixture {
    token: String,
    message_id: i64,
    download_token: String,
    pdf: Vec<u8>,
}

async fn fixture(
    pool: &sqlx::PgPool,
    dir: &std::path::Path,
) -> Result<Fixture, Box<dyn std::error::Error + Send + Sync>> {
    let venue: i64 =
        sqlx::query_scalar("INSERT INTO venues (name, city) VALUES ('V', 'Austin') RETURNING id")
            .fetch_one(pool)
            .await?;
    let producer: i64 =
        sqlx::query_scalar("INSERT INTO producers (name, slug) VALUES ('P', 'p') RETURNING id")
            .fetch_one(pool)
            .await?;
    let show: i64 = sqlx::query_scalar(
        "INSERT INTO shows (title, slug, start_time, venue_id, producer_id) VALUES ('S', 's', now(), $1, $2) RETURNING id",
    )
    .bind(venue)
    .bind(producer)
    .fetch_one(pool)
    .await?;
    let ticket: i64 = sqlx::query_scalar(
        "INSERT INTO tickets (show_id, name, quantity, price, sold) VALUES ($1, 'GA', 10, 10, 1) RETURNING id",
    )
    .bind(show)
    .fetch_one(pool)
    .await?;
    let order: i64 = sqlx::query_scalar(
        "INSERT INTO orders (uuid, show_id, order_email, order_name, status, subtotal, total, expires_at, paid_at) \
         VALUES ($1, $2, 'a@example.com', 'A', 'paid', 10, 10, now(), now()) RETURNING id",
    )
    .bind(Uuid::new_v4())
    .bind(show)
    .fetch_one(pool)
    .await?;
    let line: i64 = sqlx::query_scalar(
        "INSERT INTO order_lines (uuid, order_id, ticket_id, quantity, price_per_ticket, line_total) \
         VALUES ($1, $2, $3, 1, 10, 10) RETURNING id",
    )
    .bind(Uuid::new_v4())
    .bind(order)
    .bind(ticket)
    .fetch_one(pool)
    .await?;
    let attendee = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO attendees (uuid, order_id, order_line_id, show_id, ticket_id, seq, name, email) \
         VALUES ($1, $2, $3, $4, $5, 1, 'A', 'a@example.com')",
    )
    .bind(attendee)
    .bind(order)
    .bind(line)
    .bind(show)
    .bind(ticket)
    .execute(pool)
    .await?;
    let pdf = b"%PDF-1.3 test ticket".to_vec();
    let path = dir.join(format!("{attendee}.pdf"));
    std::fs::write(&path, &pdf)?;
    let download_token = "d".repeat(64);
    sqlx::query("INSERT INTO ticket_pdfs (attendee_uuid, path, download_token, bytes) VALUES ($1, $2, $3, $4)")
        .bind(attendee)
        .bind(path.to_string_lossy().to_string())
        .bind(&download_token)
        .bind(pdf.len() as i32)
        .execute(pool)
        .await?;
    let token = "t".repeat(64);
    let message_id: i64 = sqlx::query_scalar(
        "INSERT INTO email_messages (token, order_id, template, to_email, links, status) \
         VALUES ($1, $2, 'order_confirmation', 'a@example.com', $3, 'sent') RETURNING id",
    )
    .bind(&token)
    .bind(order)
    .bind(serde_json::json!([
        "http://localhost:8080/shows/s",
        "http://localhost:8080/tickets/x.pdf?a=1&b=2"
    ]))
    .fetch_one(pool)
    .await?;
    Ok(Fixture {
        token,
        message_id,
        download_token,
        pdf,
    })
}

async fn get(
    app: &axum::Router,
    uri: &str,
) -> Result<(StatusCode, axum::http::HeaderMap, Vec<u8>), Box<dyn std::error::Error + Send + Sync>>
{
    let response = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty())?)
        .await?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = to_bytes(response.into_body(), 1 << 20).await?.to_vec();
    Ok((status, headers, body))
}

async fn events(pool: &sqlx::PgPool, message_id: i64, kind: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM email_events WHERE message_id = $1 AND kind = $2")
        .bind(message_id)
        .bind(kind)
        .fetch_one(pool)
        .await
        .unwrap_or(-1)
}

#[tokio::test]
async fn open_pixel_click_redirect_and_download() -> TestResult {
    let db = TestDb::new().await?;
    let dir = tempfile_dir()?;
    let f = fixture(&db.pool, &dir).await?;
    let url = db.url.clone();
    let config = pique_core::Config::from_lookup(|k| (k == "DATABASE_URL").then(|| url.clone()))?;
    let app = pique_api::app(pique_api::AppState::from_config(config)?);

    // Open pixel: a GIF for known and unknown tokens; only the known one is recorded.
    let (status, headers, body) =
        get(&app, &format!("/email-tracking/open/{}.gif", f.token)).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "image/gif");
    assert!(body.starts_with(b"GIF89a"));
    let (status, _, body) = get(&app, "/email-tracking/open/unknown.gif").await?;
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with(b"GIF89a"));
    assert_eq!(events(&db.pool, f.message_id, "open").await, 1);

    // Click: only to a URL the email contained.
    let target = "http://localhost:8080/tickets/x.pdf?a=1&b=2";
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("u", target)
        .finish();
    let (status, headers, _) = get(&app, &format!("/email-tracking/click/{}?{q}", f.token)).await?;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(headers[header::LOCATION], target);
    let (status, _, _) = get(
        &app,
        &format!(
            "/email-tracking/click/{}?u=https%3A%2F%2Fevil.example",
            f.token
        ),
    )
    .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = get(&app, &format!("/email-tracking/click/unknown?{q}")).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = get(&app, &format!("/email-tracking/click/{}", f.token)).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(events(&db.pool, f.message_id, "click").await, 1);

    // Download.
    let (status, headers, body) = get(&app, &format!("/tickets/{}.pdf", f.download_token)).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/pdf");
    assert_eq!(body, f.pdf);
    assert_eq!(
        get(&app, &format!("/tickets/{}.pdf", "0".repeat(64)))
            .await?
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&app, &format!("/tickets/{}", f.download_token))
            .await?
            .0,
        StatusCode::NOT_FOUND
    );

    let _ = std::fs::remove_dir_all(&dir);
    db.cleanup().await;
    Ok(())
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("pique-tracking-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
