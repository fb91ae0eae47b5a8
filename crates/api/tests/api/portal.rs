//! The producer portal end to end: shows (draft -> publish -> unpublish -> soft delete) with
//! the public cache following every write, tiers, promo codes, page design, orders and
//! attendees with filters, Stripe Connect through stripe-sim, subscribers; and the two
//! authorization sweeps: every route as another producer (404, nothing written) and as
//! nobody (401).

use crate::portal_support::*;
use crate::support::*;
use reqwest::Method;
use serde_json::{Value, json};

struct Portal {
    app: TestApp,
    token: String,
    producer: i64,
    venue: i64,
}

async fn portal() -> Result<Portal, TestError> {
    let app = TestApp::spawn(&[]).await?;
    let producer = producer(&app.pool, "olga").await?;
    let venue = venue(&app.pool).await?;
    let token = login(&app, "olga").await?;
    Ok(Portal {
        app,
        token,
        producer,
        venue,
    })
}

impl Portal {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), TestError> {
        call(&self.app, method, path, Some(&self.token), body.as_ref()).await
    }
}

fn public_ids(list: &Value) -> Vec<i64> {
    list.as_array()
        .map(|a| a.iter().filter_map(|s| s["id"].as_i64()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn show_lifecycle_and_public_cache() -> TestResult {
    let p = portal().await?;
    let new_show = json!({"title": "Jazz Night!", "start_time": "2031-05-01T20:00:00Z", "venue": p.venue, "description": "Live"});
    let (status, show) = p
        .call(
            Method::POST,
            "/api/v1/portal/shows/",
            Some(new_show.clone()),
        )
        .await?;
    assert_eq!(status, 201, "{show}");
    assert_eq!(show["slug"], "jazz-night");
    assert_eq!(show["status"], "draft");
    assert_eq!(show["published"], false);
    assert_eq!(show["producer"], p.producer);
    assert!(show["draft_created_at"].is_string());
    let id = show["id"].as_i64().expect("id");
    // Same title again: the slug gets a suffix.
    let (status, twin) = p
        .call(Method::POST, "/api/v1/portal/shows", Some(new_show))
        .await?;
    assert_eq!((status, twin["slug"].clone()), (201, json!("jazz-night-2")));

    // Warm the public cache; drafts are not public.
    let (_, public) = p.app.get("/api/v1/shows/").await?;
    assert!(public_ids(&public).is_empty());

    // Publishing needs a tier.
    let (status, body) = p
        .call(
            Method::POST,
            &format!("/api/v1/portal/shows/{id}/publish/"),
            None,
        )
        .await?;
    assert_eq!(status, 400);
    assert_eq!(
        body["non_field_errors"][0],
        "A show needs at least one ticket tier before it can be published."
    );
    let (status, t) = p
        .call(
            Method::POST,
            &format!("/api/v1/portal/shows/{id}/tickets/"),
            Some(json!({"name": "GA", "quantity": 100, "price": "25.00"})),
        )
        .await?;
    assert_eq!(status, 201, "{t}");
    assert_eq!(
        (
            t["price"].clone(),
            t["sold"].clone(),
            t["max_per_order"].clone()
        ),
        (json!("25.00"), json!(0), json!(20))
    );
    let (status, body) = p
        .call(
            Method::POST,
            &format!("/api/v1/portal/shows/{id}/publish/"),
            None,
        )
        .await?;
    assert_eq!((status, body["status"].clone()), (200, json!("published")));
    // The cached public list follows at once.
    let (_, public) = p.app.get("/api/v1/shows/").await?;
    assert_eq!(public_ids(&public), vec![id]);

    // Edits show publicly too.
    let (status, body) = p
        .call(
            Method::PATCH,
            &format!("/api/v1/portal/shows/{id}/"),
            Some(json!({"title": "Jazz Night II"})),
        )
        .await?;
    assert_eq!(
        (status, body["title"].clone(), body["slug"].clone()),
        (200, json!("Jazz Night II"), json!("jazz-night"))
    );
    let (_, detail) = p.app.get(&format!("/api/v1/shows/{id}/")).await?;
    assert_eq!(detail["title"], "Jazz Night II");
    // PUT needs every required field.
    let (status, body) = p
        .call(
            Method::PUT,
            &format!("/api/v1/portal/shows/{id}/"),
            Some(json!({"title": "X"})),
        )
        .await?;
    assert_eq!(status, 400);
    assert_eq!(body["start_time"], json!(["This field is required."]));
    assert_eq!(body["venue"], json!(["This field is required."]));
    // An explicit slug must be free.
    let (status, body) = p
        .call(
            Method::PATCH,
            &format!("/api/v1/portal/shows/{id}/"),
            Some(json!({"slug": "jazz-night-2"})),
        )
        .await?;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"slug": ["show with this slug already exists."]})
        )
    );

    // Portal list: filters and pagination.
    let (status, list) = p
        .call(Method::GET, "/api/v1/portal/shows/?status=published", None)
        .await?;
    assert_eq!((status, list["count"].clone()), (200, json!(1)));
    let (_, list) = p
        .call(Method::GET, "/api/v1/portal/shows/?status=draft", None)
        .await?;
    assert_eq!(list["count"], 1);
    let (_, list) = p
        .call(Method::GET, "/api/v1/portal/shows/?search=II", None)
        .await?;
    assert_eq!(list["results"][0]["id"], id);
    let (_, list) = p
        .call(Method::GET, "/api/v1/portal/shows/?page_size=1", None)
        .await?;
    assert_eq!(list["count"], 2);
    assert!(
        list["next"].as_str().unwrap_or_default().contains("page=2"),
        "{list}"
    );
    let (status, _) = p
        .call(Method::GET, "/api/v1/portal/shows/?page=9", None)
        .await?;
    assert_eq!(status, 404);
    let (status, body) = p
        .call(
            Method::GET,
            "/api/v1/portal/shows/?status=gone&start_time__gt=x",
            None,
        )
        .await?;
    assert_eq!(status, 400);
    assert!(
        body.get("status").is_some() && body.get("start_time__gt").is_some(),
        "{body}"
    );

    // Unpublish, then soft delete.
    let (status, body) = p
        .call(
            Method::POST,
            &format!("/api/v1/portal/shows/{id}/unpublish/"),
            None,
        )
        .await?;
    assert_eq!((status, body["status"].clone()), (200, json!("draft")));
    let (_, public) = p.app.get("/api/v1/shows/").await?;
    assert!(public_ids(&public).is_empty());
    let (status, _) = p
        .call(Method::DELETE, &format!("/api/v1/portal/shows/{id}/"), None)
        .await?;
    assert_eq!(status, 204);
    let (status, _) = p
        .call(Method::GET, &format!("/api/v1/portal/shows/{id}/"), None)
        .await?;
    assert_eq!(status, 404);
    let (_, deleted) = p
        .call(Method::GET, "/api/v1/portal/shows/?status=deleted", None)
        .await?;
    assert_eq!(deleted["results"][0]["id"], id);
    assert!(deleted["results"][0]["deleted_at"].is_string());
    let row: (bool, bool) =
        sqlx::query_as("SELECT is_deleted, deleted_at IS NOT NULL FROM shows WHERE id = $1")
            .bind(id)
            .fetch_one(&p.app.pool)
            .await?;
    assert_eq!(row, (true, true), "soft: the row stays");
    p.app.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn tiers_promo_codes_and_page_design() -> TestResult {
    let p = portal().await?;
    let show = show_of(&p.app.pool, p.producer, p.venue, "comedy", true).await?;
    let tier = tier_of(&p.app.pool, show, 10, "15.00").await?;
    paid_order(&p.app.pool, show, tier, "a@example.com", 4).await?;
    sqlx::query("UPDATE tickets SET held = 2 WHERE id = $1")
        .bind(tier)
        .execute(&p.app.pool)
        .await?;
    let tier_path = format!("/api/v1/portal/shows/{show}/tickets/{tier}/");

    // Quantity can't drop below sold + held (4 + 2).
    let before = portal_counts(&p.app.pool).await?;
    let (status, body) = p
        .call(Method::PATCH, &tier_path, Some(json!({"quantity": 5})))
        .await?;
    assert_eq!(status, 400);
    assert_eq!(
        body["quantity"][0],
        "Ensure this value is greater than or equal to 6 (tickets already sold or held)."
    );
    assert_eq!(portal_counts(&p.app.pool).await?, before, "nothing written");
    let (status, body) = p
        .call(
            Method::PATCH,
            &tier_path,
            Some(json!({"quantity": 6, "price": "18.50"})),
        )
        .await?;
    assert_eq!(
        (status, body["quantity"].clone(), body["price"].clone()),
        (200, json!(6), json!("18.50"))
    );
    let (_, public) = p.app.get(&format!("/api/v1/shows/{show}/")).await?;
    assert_eq!(
        public["tickets"][0]["price"], "18.50",
        "public detail follows"
    );
    let (status, list) = p
        .call(
            Method::GET,
            &format!("/api/v1/portal/shows/{show}/tickets/"),
            None,
        )
        .await?;
    assert_eq!((status, list.as_array().map(Vec::len)), (200, Some(1)));
    // A tier with orders cannot be deleted; a fresh one can.
    let (status, _) = p.call(Method::DELETE, &tier_path, None).await?;
    assert_eq!(status, 409);
    let (_, fresh) = p
        .call(
            Method::POST,
            &format!("/api/v1/portal/shows/{show}/tickets/"),
            Some(json!({"name": "VIP", "quantity": 5, "price": 50})),
        )
        .await?;
    let (status, _) = p
        .call(
            Method::DELETE,
            &format!("/api/v1/portal/shows/{show}/tickets/{}/", fresh["id"]),
            None,
        )
        .await?;
    assert_eq!(status, 204);

    // Promo codes.
    let promos = format!("/api/v1/portal/shows/{show}/promo-codes/");
    let (status, promo) = p
        .call(
            Method::POST,
            &promos,
            Some(json!({"code": "Save10", "discount": "10"})),
        )
        .await?;
    assert_eq!(status, 201, "{promo}");
    assert_eq!(
        (
            promo["discount"].clone(),
            promo["discount_type"].clone(),
            promo["is_active"].clone()
        ),
        (json!("10.00"), json!("percent"), json!(true))
    );
    let before = portal_counts(&p.app.pool).await?;
    for (bad, field) in [
        (json!({"code": "SAVE10", "discount": "5"}), "code"),
        (json!({"code": "bad code", "discount": "5"}), "code"),
        (json!({"code": "BIG", "discount": "101"}), "discount"),
        (
            json!({"code": "NEG", "discount": "-1", "discount_type": "amount"}),
            "discount",
        ),
        (
            json!({"code": "T", "discount": "5", "discount_type": "bogus"}),
            "discount_type",
        ),
        (
            json!({"code": "W", "discount": "5", "valid_from": "2030-01-02T00:00:00Z", "valid_until": "2030-01-01T00:00:00Z"}),
            "valid_until",
        ),
        (json!({"discount": "5"}), "code"),
    ] {
        let (status, body) = p.call(Method::POST, &promos, Some(bad.clone())).await?;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body.get(field).is_some(), "{bad}: {body}");
    }
    assert_eq!(portal_counts(&p.app.pool).await?, before, "nothing written");
    let promo_path = format!("{promos}{}/", promo["id"]);
    let (status, body) = p
        .call(
            Method::PATCH,
            &promo_path,
            Some(json!({"discount_type": "amount", "discount": "150.00", "max_uses": 3})),
        )
        .await?;
    assert_eq!(
        (status, body["discount"].clone(), body["max_uses"].clone()),
        (200, json!("150.00"), json!(3))
    );
    let (status, _) = p.call(Method::GET, &promo_path, None).await?;
    assert_eq!(status, 200);
    // Used by an order: can't go below its uses, can't be deleted, can be deactivated.
    sqlx::query("UPDATE promo_codes SET uses = 2 WHERE id = $1")
        .bind(promo["id"].as_i64())
        .execute(&p.app.pool)
        .await?;
    sqlx::query("UPDATE orders SET promo_code_id = $1")
        .bind(promo["id"].as_i64())
        .execute(&p.app.pool)
        .await?;
    let (status, _) = p
        .call(Method::PATCH, &promo_path, Some(json!({"max_uses": 1})))
        .await?;
    assert_eq!(status, 400);
    let (status, _) = p.call(Method::DELETE, &promo_path, None).await?;
    assert_eq!(status, 409);
    let (status, body) = p
        .call(
            Method::PATCH,
            &promo_path,
            Some(json!({"is_active": false})),
        )
        .await?;
    assert_eq!((status, body["is_active"].clone()), (200, json!(false)));
    let (_, unused) = p
        .call(
            Method::POST,
            &promos,
            Some(json!({"code": "TEMP", "discount": "5"})),
        )
        .await?;
    let (status, _) = p
        .call(Method::DELETE, &format!("{promos}{}/", unused["id"]), None)
        .await?;
    assert_eq!(status, 204);
    let (_, list) = p.call(Method::GET, &promos, None).await?;
    assert_eq!(list.as_array().map(Vec::len), Some(1));

    // Page design.
    let design = format!("/api/v1/portal/shows/{show}/page-design/");
    let (status, body) = p.call(Method::GET, &design, None).await?;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"show": show, "primary_color": "#000000", "secondary_color": "#ffffff", "background_image": null})
        )
    );
    let (status, body) = p.call(Method::PUT, &design, Some(json!({"primary_color": "#ff0000", "background_image": "https://cdn.example.com/bg.png"}))).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["primary_color"].clone(),
            body["secondary_color"].clone()
        ),
        (json!("#ff0000"), json!("#ffffff"))
    );
    let (_, public) = p.app.get(&format!("/api/v1/shows/{show}/")).await?;
    assert_eq!(public["page_design"]["primary_color"], "#ff0000");
    let before = portal_counts(&p.app.pool).await?;
    let (status, body) = p
        .call(
            Method::PUT,
            &design,
            Some(json!({"primary_color": "red", "background_image": "javascript:alert(1)"})),
        )
        .await?;
    assert_eq!(status, 400);
    assert!(
        body.get("primary_color").is_some() && body.get("background_image").is_some(),
        "{body}"
    );
    assert_eq!(portal_counts(&p.app.pool).await?, before);
    p.app.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn orders_and_attendees_with_filters() -> TestResult {
    let p = portal().await?;
    let a = show_of(&p.app.pool, p.producer, p.venue, "show-a", true).await?;
    let b = show_of(&p.app.pool, p.producer, p.venue, "show-b", true).await?;
    let ta = tier_of(&p.app.pool, a, 100, "10.00").await?;
    let tb = tier_of(&p.app.pool, b, 100, "10.00").await?;
    let (o1, codes) = paid_order(&p.app.pool, a, ta, "ann@example.com", 2).await?;
    paid_order(&p.app.pool, a, ta, "ben@example.com", 1).await?;
    let (o3, _) = paid_order(&p.app.pool, b, tb, "ANN@example.com", 3).await?;
    sqlx::query("UPDATE orders SET status = 'refunded', created_at = now() - interval '3 days' WHERE id = $1").bind(o3).execute(&p.app.pool).await?;
    sqlx::query("UPDATE attendees SET checked_in_at = now() WHERE uuid = $1")
        .bind(codes[0])
        .execute(&p.app.pool)
        .await?;
    // Another producer's order must never appear.
    let other = producer(&p.app.pool, "zed").await?;
    let zs = show_of(&p.app.pool, other, p.venue, "zed-show", true).await?;
    let zt = tier_of(&p.app.pool, zs, 10, "1.00").await?;
    paid_order(&p.app.pool, zs, zt, "zed@example.com", 1).await?;

    let ids = |v: &Value| -> Vec<i64> {
        v["results"]
            .as_array()
            .map(|a| a.iter().filter_map(|o| o["id"].as_i64()).collect())
            .unwrap_or_default()
    };
    let (status, all) = p.call(Method::GET, "/api/v1/portal/orders/", None).await?;
    assert_eq!((status, all["count"].clone()), (200, json!(3)), "{all}");
    assert_eq!(
        all["results"][0]["total"].as_str().map(|s| s.contains('.')),
        Some(true)
    );
    let (_, r) = p
        .call(Method::GET, "/api/v1/portal/orders/?status=paid", None)
        .await?;
    assert_eq!(r["count"], 2);
    let (_, r) = p
        .call(
            Method::GET,
            &format!("/api/v1/portal/orders/?show={b}"),
            None,
        )
        .await?;
    assert_eq!(ids(&r), vec![o3]);
    let (_, r) = p
        .call(Method::GET, "/api/v1/portal/orders/?email=ann@", None)
        .await?;
    assert_eq!(r["count"], 2, "case-insensitive contains");
    let since = (chrono::Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let (_, r) = p
        .call(
            Method::GET,
            &format!("/api/v1/portal/orders/?created_after={since}"),
            None,
        )
        .await?;
    assert_eq!(r["count"], 2);
    let (_, r) = p
        .call(
            Method::GET,
            &format!("/api/v1/portal/orders/?created_before={since}"),
            None,
        )
        .await?;
    assert_eq!(ids(&r), vec![o3]);
    let (_, r) = p
        .call(
            Method::GET,
            "/api/v1/portal/orders/?page_size=2&page=2",
            None,
        )
        .await?;
    assert_eq!(
        (r["count"].clone(), r["results"].as_array().map(Vec::len)),
        (json!(3), Some(1))
    );
    assert!(
        r["previous"]
            .as_str()
            .unwrap_or_default()
            .contains("page=1")
    );
    let (status, body) = p
        .call(
            Method::GET,
            "/api/v1/portal/orders/?status=lost&show=abc&created_after=never&page_size=1000",
            None,
        )
        .await?;
    assert_eq!(status, 400);
    for k in ["status", "show", "created_after", "page_size"] {
        assert!(body.get(k).is_some(), "{k}: {body}");
    }
    let (status, detail) = p
        .call(Method::GET, &format!("/api/v1/portal/orders/{o1}/"), None)
        .await?;
    assert_eq!(status, 200);
    assert_eq!(
        (
            detail["lines"].as_array().map(Vec::len),
            detail["attendees"].as_array().map(Vec::len)
        ),
        (Some(1), Some(2))
    );
    assert_eq!(detail["tickets"], 2);

    let (_, att) = p
        .call(Method::GET, "/api/v1/portal/attendees/", None)
        .await?;
    assert_eq!(att["count"], 6);
    let (_, att) = p
        .call(
            Method::GET,
            "/api/v1/portal/attendees/?checked_in=true",
            None,
        )
        .await?;
    assert_eq!(att["results"][0]["uuid"], codes[0].to_string());
    let (_, att) = p
        .call(
            Method::GET,
            &format!("/api/v1/portal/attendees/?show={a}&checked_in=false"),
            None,
        )
        .await?;
    assert_eq!(att["count"], 2);
    let (status, _) = p
        .call(
            Method::GET,
            "/api/v1/portal/attendees/?checked_in=maybe",
            None,
        )
        .await?;
    assert_eq!(status, 400);

    // The CSV export: header + one line per order, filters apply.
    let resp = p
        .app
        .client
        .get(p.app.url("/api/v1/portal/orders/export/?status=paid"))
        .header("Authorization", format!("Token {}", p.token))
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()?
            .starts_with("text/csv")
    );
    let text = resp.text().await?;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("order_id,reference,created_at"));
    assert!(text.contains("ann@example.com") && !text.contains("zed@example.com"));
    p.app.cleanup().await;
    Ok(())
}

/// Every portal route, with producer A's object ids, as producer B: 404 each time (never 403,
/// which would confirm the object exists) and no row changed. Then every route anonymously:
/// 401.
#[tokio::test]
async fn every_portal_route_as_another_producer_is_404() -> TestResult {
    let p = portal().await?;
    let show = show_of(&p.app.pool, p.producer, p.venue, "private", false).await?;
    let tier = tier_of(&p.app.pool, show, 10, "10.00").await?;
    let promo = crate::support::promo(&p.app.pool, show, "MINE", "10", "percent").await?;
    let (order, _) = paid_order(&p.app.pool, show, tier, "buyer@example.com", 1).await?;
    let (_, link) = p
        .call(
            Method::POST,
            &format!("/api/v1/producers/shows/{show}/checkin-link/"),
            None,
        )
        .await?;
    let link_id = link["id"].as_i64().expect("link");
    producer(&p.app.pool, "intruder").await?;
    let intruder = login(&p.app, "intruder").await?;

    let s = format!("/api/v1/portal/shows/{show}");
    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("{s}/"), None),
        (
            Method::PUT,
            format!("{s}/"),
            Some(json!({"title": "Mine", "start_time": "2031-01-01T00:00:00Z", "venue": p.venue})),
        ),
        (
            Method::PATCH,
            format!("{s}/"),
            Some(json!({"title": "Mine"})),
        ),
        (Method::DELETE, format!("{s}/"), None),
        (Method::POST, format!("{s}/publish/"), None),
        (Method::POST, format!("{s}/unpublish/"), None),
        (Method::GET, format!("{s}/tickets/"), None),
        (
            Method::POST,
            format!("{s}/tickets/"),
            Some(json!({"name": "X", "quantity": 1, "price": "1"})),
        ),
        (Method::GET, format!("{s}/tickets/{tier}/"), None),
        (
            Method::PUT,
            format!("{s}/tickets/{tier}/"),
            Some(json!({"name": "X", "quantity": 1, "price": "1"})),
        ),
        (
            Method::PATCH,
            format!("{s}/tickets/{tier}/"),
            Some(json!({"quantity": 99})),
        ),
        (Method::DELETE, format!("{s}/tickets/{tier}/"), None),
        (Method::GET, format!("{s}/promo-codes/"), None),
        (
            Method::POST,
            format!("{s}/promo-codes/"),
            Some(json!({"code": "HACK", "discount": "100"})),
        ),
        (Method::GET, format!("{s}/promo-codes/{promo}/"), None),
        (
            Method::PUT,
            format!("{s}/promo-codes/{promo}/"),
            Some(json!({"code": "HACK", "discount": "100"})),
        ),
        (
            Method::PATCH,
            format!("{s}/promo-codes/{promo}/"),
            Some(json!({"discount": "100"})),
        ),
        (Method::DELETE, format!("{s}/promo-codes/{promo}/"), None),
        (Method::GET, format!("{s}/page-design/"), None),
        (
            Method::PUT,
            format!("{s}/page-design/"),
            Some(json!({"primary_color": "#123456"})),
        ),
        (Method::GET, format!("/api/v1/portal/orders/{order}/"), None),
        (
            Method::POST,
            format!("/api/v1/producers/shows/{show}/checkin-link/"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/producers/shows/{show}/checkin-link/"),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/v1/producers/shows/{show}/checkin-link/"),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/v1/producers/shows/{show}/checkin-link/{link_id}/"),
            None,
        ),
    ];
    let before = portal_counts(&p.app.pool).await?;
    for (method, path, body) in &routes {
        let (status, answer) =
            call(&p.app, method.clone(), path, Some(&intruder), body.as_ref()).await?;
        assert_eq!(
            (status, &answer),
            (404, &json!({"detail": "Not found."})),
            "{method} {path}"
        );
    }
    assert_eq!(portal_counts(&p.app.pool).await?, before, "nothing written");
    let revoked: i64 =
        sqlx::query_scalar("SELECT count(*) FROM checkin_links WHERE revoked_at IS NOT NULL")
            .fetch_one(&p.app.pool)
            .await?;
    assert_eq!(revoked, 0);
    // Lists are scoped, not 404: the intruder sees only its own (empty) world.
    for path in [
        "/api/v1/portal/shows/",
        "/api/v1/portal/orders/",
        "/api/v1/portal/attendees/",
        &format!("/api/v1/portal/orders/?show={show}"),
    ] {
        let (status, body) = call(&p.app, Method::GET, path, Some(&intruder), None).await?;
        assert_eq!((status, body["count"].clone()), (200, json!(0)), "{path}");
    }
    let resp = p
        .app
        .client
        .get(p.app.url("/api/v1/portal/orders/export/"))
        .header("Authorization", format!("Token {intruder}"))
        .send()
        .await?;
    assert_eq!(resp.text().await?.lines().count(), 1, "header only");

    // Anonymous: 401 everywhere, including the lists and producer actions.
    let mut anonymous = routes.clone();
    for path in [
        "/api/v1/portal/shows/",
        "/api/v1/portal/orders/",
        "/api/v1/portal/orders/export/",
        "/api/v1/portal/attendees/",
        "/api/v1/producers/stripe-balance/",
        "/api/v1/producers/stripe-status/",
    ] {
        anonymous.push((Method::GET, path.to_string(), None));
    }
    anonymous.push((
        Method::POST,
        "/api/v1/producers/stripe-connect-link/".into(),
        None,
    ));
    anonymous.push((
        Method::POST,
        "/api/v1/portal/shows/".into(),
        Some(json!({"title": "x"})),
    ));
    anonymous.push((Method::POST, "/auth/logout/".into(), None));
    for (method, path, body) in &anonymous {
        let (status, _) = call(&p.app, method.clone(), path, None, body.as_ref()).await?;
        assert_eq!(status, 401, "{method} {path}");
    }
    assert_eq!(portal_counts(&p.app.pool).await?, before, "nothing written");
    p.app.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn bad_input_is_refused_and_writes_nothing() -> TestResult {
    let p = portal().await?;
    let show = show_of(&p.app.pool, p.producer, p.venue, "valid", false).await?;
    let before = portal_counts(&p.app.pool).await?;
    let cases: Vec<(Method, String, Value)> = vec![
        (Method::POST, "/api/v1/portal/shows/".into(), json!({})),
        (
            Method::POST,
            "/api/v1/portal/shows/".into(),
            json!({"title": "", "start_time": "2031-01-01T00:00:00Z", "venue": p.venue}),
        ),
        (
            Method::POST,
            "/api/v1/portal/shows/".into(),
            json!({"title": "X", "start_time": "tomorrow", "venue": p.venue}),
        ),
        (
            Method::POST,
            "/api/v1/portal/shows/".into(),
            json!({"title": "X", "start_time": "2031-01-01T00:00:00Z", "venue": 999_999}),
        ),
        (
            Method::POST,
            "/api/v1/portal/shows/".into(),
            json!({"title": "X", "start_time": "2031-01-01T00:00:00Z", "end_time": "2030-01-01T00:00:00Z", "venue": p.venue}),
        ),
        (
            Method::POST,
            "/api/v1/portal/shows/".into(),
            json!({"title": "X".repeat(201), "start_time": "2031-01-01T00:00:00Z", "venue": p.venue}),
        ),
        (
            Method::POST,
            "/api/v1/portal/shows/".into(),
            json!({"title": "X", "start_time": "2031-01-01T00:00:00Z", "venue": "one"}),
        ),
        (
            Method::POST,
            "/api/v1/portal/shows/".into(),
            json!({"title": "X", "start_time": "2031-01-01T00:00:00Z", "venue": p.venue, "image": "ftp://x"}),
        ),
        (
            Method::POST,
            "/api/v1/portal/shows/".into(),
            json!(["not", "an", "object"]),
        ),
        (
            Method::PATCH,
            format!("/api/v1/portal/shows/{show}/"),
            json!({"start_time": null}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/portal/shows/{show}/"),
            json!({"slug": "Not A Slug"}),
        ),
        (
            Method::POST,
            format!("/api/v1/portal/shows/{show}/tickets/"),
            json!({"name": "GA", "quantity": -1, "price": "10"}),
        ),
        (
            Method::POST,
            format!("/api/v1/portal/shows/{show}/tickets/"),
            json!({"name": "GA", "quantity": 10_000_000, "price": "10"}),
        ),
        (
            Method::POST,
            format!("/api/v1/portal/shows/{show}/tickets/"),
            json!({"name": "GA", "quantity": 1, "price": "abc"}),
        ),
        (
            Method::POST,
            format!("/api/v1/portal/shows/{show}/tickets/"),
            json!({"name": "GA", "quantity": 1, "price": "1e30"}),
        ),
        (
            Method::POST,
            format!("/api/v1/portal/shows/{show}/tickets/"),
            json!({"name": "GA", "quantity": 1.5, "price": "1"}),
        ),
        (
            Method::POST,
            format!("/api/v1/portal/shows/{show}/tickets/"),
            json!({"name": "GA", "quantity": 1, "price": "1", "max_per_order": 0}),
        ),
        (
            Method::POST,
            format!("/api/v1/portal/shows/{show}/tickets/"),
            json!({"name": "GA", "quantity": 1, "price": "1", "is_donation_based": "perhaps"}),
        ),
        (
            Method::PUT,
            format!("/api/v1/portal/shows/{show}/page-design/"),
            json!({"secondary_color": 42}),
        ),
        (
            Method::POST,
            "/api/v1/subscriber/create/".into(),
            json!({"email": "not-an-email"}),
        ),
        (Method::POST, "/api/v1/subscriber/create/".into(), json!({})),
    ];
    for (method, path, body) in &cases {
        let (status, answer) = p.call(method.clone(), path, Some(body.clone())).await?;
        assert_eq!(status, 400, "{method} {path} {body}: {answer}");
        assert!(answer.is_object(), "DRF JSON: {answer}");
    }
    // Malformed JSON and unknown ids.
    let resp = p
        .app
        .client
        .post(p.app.url("/api/v1/portal/shows/"))
        .header("Authorization", format!("Token {}", p.token))
        .header("content-type", "application/json")
        .body("{\"title\":")
        .send()
        .await?;
    assert_eq!(resp.status(), 400);
    for path in [
        "/api/v1/portal/shows/999999/",
        "/api/v1/portal/shows/abc/",
        "/api/v1/portal/shows/-1/",
        "/api/v1/portal/orders/99999999999999999999/",
    ] {
        let (status, _) = p.call(Method::GET, path, None).await?;
        assert_eq!(status, 404, "{path}");
    }
    assert_eq!(portal_counts(&p.app.pool).await?, before, "nothing written");
    p.app.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn stripe_connect_onboarding_and_balance() -> TestResult {
    let p = portal().await?;
    let (status, body) = p
        .call(Method::GET, "/api/v1/producers/stripe-status/", None)
        .await?;
    assert_eq!(
        (
            status,
            body["account_id"].clone(),
            body["onboarding_complete"].clone()
        ),
        (200, json!(null), json!(false))
    );
    let (status, body) = p
        .call(Method::GET, "/api/v1/producers/stripe-balance/", None)
        .await?;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"account_id": null, "available": [], "pending": []})
        )
    );

    let (status, link) = p
        .call(Method::POST, "/api/v1/producers/stripe-connect-link/", None)
        .await?;
    assert_eq!(status, 200, "{link}");
    let account = link["account_id"].as_str().expect("account").to_string();
    assert!(account.starts_with("acct_"));
    assert!(
        link["url"]
            .as_str()
            .unwrap_or_default()
            .starts_with(&p.app.sim.base_url())
    );
    let stored: Option<String> =
        sqlx::query_scalar("SELECT stripe_account_id FROM producers WHERE id = $1")
            .bind(p.producer)
            .fetch_one(&p.app.pool)
            .await?;
    assert_eq!(stored.as_deref(), Some(account.as_str()));
    // A second link reuses the account.
    let (_, again) = p
        .call(
            Method::POST,
            "/api/v1/producers/stripe-connect-link/",
            Some(json!({"return_url": "https://portal.example.com/done"})),
        )
        .await?;
    assert_eq!(again["account_id"], account.as_str());
    let (status, _) = p
        .call(
            Method::POST,
            "/api/v1/producers/stripe-connect-link/",
            Some(json!({"return_url": "javascript:x"})),
        )
        .await?;
    assert_eq!(status, 400);

    let (_, body) = p
        .call(Method::GET, "/api/v1/producers/stripe-status/", None)
        .await?;
    assert_eq!(
        (
            body["details_submitted"].clone(),
            body["onboarding_complete"].clone()
        ),
        (json!(false), json!(false))
    );
    // The producer completes onboarding on "Stripe".
    let resp = p
        .app
        .client
        .get(link["url"].as_str().unwrap_or_default())
        .send()
        .await?;
    assert_eq!(resp.status(), 303);
    let (_, body) = p
        .call(Method::GET, "/api/v1/producers/stripe-status/", None)
        .await?;
    assert_eq!(
        body,
        json!({"account_id": account, "charges_enabled": true, "details_submitted": true, "payouts_enabled": true, "onboarding_complete": true})
    );
    let done: bool =
        sqlx::query_scalar("SELECT stripe_onboarding_complete FROM producers WHERE id = $1")
            .bind(p.producer)
            .fetch_one(&p.app.pool)
            .await?;
    assert!(done);
    let (status, body) = p
        .call(Method::GET, "/api/v1/producers/stripe-balance/", None)
        .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["account_id"], account.as_str());
    assert!(body["available"].is_array());
    p.app.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn subscribers_are_idempotent_per_email() -> TestResult {
    let app = TestApp::spawn(&[]).await?;
    let (status, first) = app
        .post(
            "/api/v1/subscriber/create/",
            &json!({"email": "Fan@Example.com", "name": "Fan"}),
        )
        .await?;
    assert_eq!(status, 201, "{first}");
    assert_eq!(
        (first["email"].clone(), first["source"].clone()),
        (json!("Fan@Example.com"), json!("website"))
    );
    let (status, again) = app
        .post(
            "/api/v1/subscriber/create",
            &json!({"email": "fan@example.COM", "source": "footer"}),
        )
        .await?;
    assert_eq!((status, &again), (200, &first), "same body");
    let (status, body) = app
        .post(
            "/api/v1/subscriber/create/",
            &json!({"email": "two@@example.com"}),
        )
        .await?;
    assert_eq!(
        (status, body),
        (400, json!({"email": ["Enter a valid email address."]}))
    );
    // Concurrent sign-ups of one address make one row.
    let race = json!({"email": "race@example.com"});
    let answers =
        futures::future::join_all((0..10).map(|_| app.post("/api/v1/subscriber/create/", &race)))
            .await;
    let created = answers.iter().filter(|r| matches!(r, Ok((201, _)))).count();
    assert_eq!(created, 1);
    assert_eq!(count(&app.pool, "subscribers").await?, 2);
    app.cleanup().await;
    Ok(())
}
