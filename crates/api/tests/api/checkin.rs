//! Check-in: per-show links (create, expire, revoke) and admission by QR code, including 20
//! phones scanning the same ticket at once.

use crate::portal_support::*;
use crate::support::*;
use futures::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};

struct Door {
    app: TestApp,
    token: String,
    show: i64,
    other_show: i64,
    tickets: Vec<uuid::Uuid>,
    other_tickets: Vec<uuid::Uuid>,
}

async fn door() -> Result<Door, TestError> {
    let app = TestApp::spawn(&[]).await?;
    let p = producer(&app.pool, "pat").await?;
    let v = venue(&app.pool).await?;
    let show = show_of(&app.pool, p, v, "door-show", true).await?;
    let other_show = show_of(&app.pool, p, v, "other-show", true).await?;
    let t = tier_of(&app.pool, show, 100, "10.00").await?;
    let t2 = tier_of(&app.pool, other_show, 100, "10.00").await?;
    let (_, tickets) = paid_order(&app.pool, show, t, "fan@example.com", 3).await?;
    let (_, other_tickets) = paid_order(&app.pool, other_show, t2, "other@example.com", 1).await?;
    let token = login(&app, "pat").await?;
    Ok(Door {
        app,
        token,
        show,
        other_show,
        tickets,
        other_tickets,
    })
}

async fn link(d: &Door, show: i64, body: Option<&Value>) -> Result<(u16, Value), TestError> {
    call(
        &d.app,
        Method::POST,
        &format!("/api/v1/producers/shows/{show}/checkin-link/"),
        Some(&d.token),
        body,
    )
    .await
}

async fn scan(app: &TestApp, token: &str, code: &str) -> Result<(u16, Value), TestError> {
    app.post("/api/v1/checkin/", &json!({"token": token, "code": code}))
        .await
}

#[tokio::test]
async fn admits_once_and_explains_refusals() -> TestResult {
    let d = door().await?;
    let (status, l) = link(&d, d.show, None).await?;
    assert_eq!(status, 201, "{l}");
    let token = l["token"].as_str().expect("token").to_string();
    assert_eq!(token.len(), 40);
    assert_eq!(
        l["url"],
        format!("{}/checkin/?token={token}", d.app.base_url)
    );
    let expires: chrono::DateTime<chrono::Utc> = serde_json::from_value(l["expires_at"].clone())?;
    let hours = (expires - chrono::Utc::now()).num_minutes();
    assert!(
        (23 * 60..=24 * 60).contains(&hours),
        "default 24 h: {hours} min"
    );

    let code = d.tickets[0].to_string();
    let (status, body) = scan(&d.app, &token, &code).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["detail"], "Checked in.");
    assert_eq!(body["attendee"]["uuid"], code);
    assert_eq!(body["attendee"]["ticket_name"], "General");
    let first = body["checked_in_at"].clone();
    assert!(first.is_string());

    let (status, body) = scan(&d.app, &token, &code).await?;
    assert_eq!(status, 409);
    assert_eq!(body["detail"], "Already checked in.");
    assert_eq!(body["checked_in_at"], first, "the first scan's time");

    let (status, _) = scan(&d.app, &token, &uuid::Uuid::new_v4().to_string()).await?;
    assert_eq!(status, 404);
    let (status, body) = scan(&d.app, &token, &d.other_tickets[0].to_string()).await?;
    assert_eq!(
        (status, body["detail"].clone()),
        (403, json!("This ticket is for another show."))
    );
    let (status, body) = scan(&d.app, &token, "not-a-uuid").await?;
    assert_eq!(
        (status, body),
        (400, json!({"code": ["Must be a valid UUID."]}))
    );
    let (status, body) = d
        .app
        .post("/api/v1/checkin/", &json!({"code": code}))
        .await?;
    assert_eq!(
        (status, body),
        (400, json!({"token": ["This field is required."]}))
    );
    let (status, _) = scan(&d.app, "0000000000000000000000000000000000000000", &code).await?;
    assert_eq!(status, 403);

    // A refunded order's ticket is refused.
    let ticket: i64 = sqlx::query_scalar("SELECT id FROM tickets WHERE show_id = $1")
        .bind(d.show)
        .fetch_one(&d.app.pool)
        .await?;
    let (refunded, codes) =
        paid_order(&d.app.pool, d.show, ticket, "refund@example.com", 1).await?;
    sqlx::query("UPDATE orders SET status = 'refunded' WHERE id = $1")
        .bind(refunded)
        .execute(&d.app.pool)
        .await?;
    let (status, _) = scan(&d.app, &token, &codes[0].to_string()).await?;
    assert_eq!(status, 403);

    // Attendance: counts and attendees (the refunded order is not counted).
    let (status, att) = d
        .app
        .get(&format!("/api/v1/checkin/?token={token}"))
        .await?;
    assert_eq!(status, 200, "{att}");
    assert_eq!(att["show"]["id"], d.show);
    assert_eq!(
        (
            att["total"].clone(),
            att["checked_in"].clone(),
            att["remaining"].clone()
        ),
        (json!(3), json!(1), json!(2))
    );
    assert_eq!(att["attendees"].as_array().map(Vec::len), Some(3));
    let (status, _) = d.app.get("/api/v1/checkin/").await?;
    assert_eq!(status, 400);
    d.app.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn twenty_concurrent_scans_admit_exactly_one() -> TestResult {
    let d = door().await?;
    let (_, l) = link(&d, d.show, None).await?;
    let token = l["token"].as_str().expect("token").to_string();
    let code = d.tickets[1].to_string();
    let answers = join_all((0..20).map(|_| scan(&d.app, &token, &code))).await;
    let statuses: Vec<u16> = answers
        .into_iter()
        .map(|r| r.map(|(s, _)| s))
        .collect::<Result<_, _>>()?;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        19,
        "{statuses:?}"
    );
    let admitted: i64 =
        sqlx::query_scalar("SELECT count(*) FROM attendees WHERE checked_in_at IS NOT NULL")
            .fetch_one(&d.app.pool)
            .await?;
    assert_eq!(admitted, 1);
    d.app.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn links_expire_and_can_be_revoked() -> TestResult {
    let d = door().await?;
    let code = d.tickets[0].to_string();

    // Explicit expiry in hours, and validation.
    let (status, l) = link(&d, d.show, Some(&json!({"expires_in_hours": 2}))).await?;
    assert_eq!(status, 201);
    let before = count(&d.app.pool, "checkin_links").await?;
    for bad in [
        json!({"expires_in_hours": 0}),
        json!({"expires_in_hours": 100000}),
        json!({"expires_in_hours": "soon"}),
        json!({"expires_at": "2001-01-01T00:00:00Z"}),
        json!({"expires_at": "garbage"}),
    ] {
        let (status, body) = link(&d, d.show, Some(&bad)).await?;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    assert_eq!(
        count(&d.app.pool, "checkin_links").await?,
        before,
        "nothing written"
    );

    // An expired link admits nobody.
    let token = l["token"].as_str().expect("token").to_string();
    sqlx::query(
        "UPDATE checkin_links SET expires_at = now() - interval '1 second' WHERE token = $1",
    )
    .bind(&token)
    .execute(&d.app.pool)
    .await?;
    let (status, body) = scan(&d.app, &token, &code).await?;
    assert_eq!(
        (status, body),
        (403, json!({"detail": "Invalid or expired check-in link."}))
    );
    let (status, _) = d
        .app
        .get(&format!("/api/v1/checkin/?token={token}"))
        .await?;
    assert_eq!(status, 403);

    // Revoking one link, then all.
    let (_, a) = link(&d, d.show, None).await?;
    let (_, b) = link(&d, d.show, None).await?;
    let path = format!(
        "/api/v1/producers/shows/{}/checkin-link/{}/",
        d.show, a["id"]
    );
    let (status, _) = call(&d.app, Method::DELETE, &path, Some(&d.token), None).await?;
    assert_eq!(status, 204);
    let (status, _) = scan(&d.app, a["token"].as_str().unwrap_or_default(), &code).await?;
    assert_eq!(status, 403);
    let (status, _) = scan(&d.app, b["token"].as_str().unwrap_or_default(), &code).await?;
    assert_eq!(status, 200);
    let (status, links) = call(
        &d.app,
        Method::GET,
        &format!("/api/v1/producers/shows/{}/checkin-link/", d.show),
        Some(&d.token),
        None,
    )
    .await?;
    assert_eq!(status, 200);
    assert_eq!(links.as_array().map(Vec::len), Some(3));
    let (status, body) = call(
        &d.app,
        Method::DELETE,
        &format!("/api/v1/producers/shows/{}/checkin-link/", d.show),
        Some(&d.token),
        None,
    )
    .await?;
    assert_eq!((status, body), (200, json!({"revoked": 1})));
    let (status, _) = scan(
        &d.app,
        b["token"].as_str().unwrap_or_default(),
        &d.tickets[1].to_string(),
    )
    .await?;
    assert_eq!(status, 403);

    // A link of another show does not admit this show's tickets, and vice versa.
    let (_, other) = link(&d, d.other_show, None).await?;
    let (status, _) = scan(
        &d.app,
        other["token"].as_str().unwrap_or_default(),
        &d.tickets[1].to_string(),
    )
    .await?;
    assert_eq!(status, 403);

    // Anonymous and other producers cannot make links.
    let (status, _) = call(
        &d.app,
        Method::POST,
        &format!("/api/v1/producers/shows/{}/checkin-link/", d.show),
        None,
        None,
    )
    .await?;
    assert_eq!(status, 401);
    producer(&d.app.pool, "mallory").await?;
    let mallory = login(&d.app, "mallory").await?;
    let before = count(&d.app.pool, "checkin_links").await?;
    for (method, path) in [
        (
            Method::POST,
            format!("/api/v1/producers/shows/{}/checkin-link/", d.show),
        ),
        (
            Method::GET,
            format!("/api/v1/producers/shows/{}/checkin-link/", d.show),
        ),
        (
            Method::DELETE,
            format!("/api/v1/producers/shows/{}/checkin-link/", d.show),
        ),
        (
            Method::DELETE,
            format!(
                "/api/v1/producers/shows/{}/checkin-link/{}/",
                d.show, b["id"]
            ),
        ),
    ] {
        let (status, _) = call(&d.app, method.clone(), &path, Some(&mallory), None).await?;
        assert_eq!(status, 404, "{method} {path}");
    }
    assert_eq!(count(&d.app.pool, "checkin_links").await?, before);
    d.app.cleanup().await;
    Ok(())
}
