//! The money path end to end through the HTTP API, real PostgreSQL + Redis + stripe-sim:
//! browse -> checkout -> pay -> webhook and /success/; duplicate and tampered webhooks;
//! abandoned checkouts; late payments; promo, donation and free orders to the cent; bad
//! input writes nothing.

use std::time::Duration;

use crate::support::*;
use futures::future::join_all;
use serde_json::json;

async fn outbox_rows(pool: &sqlx::PgPool, order_id: i64) -> Result<(i64, i64), TestError> {
    let pdf: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE queue = 'pdf' AND (payload->>'order_id')::int8 = $1",
    )
    .bind(order_id)
    .fetch_one(pool)
    .await?;
    let email: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE dedup_key = $1")
        .bind(format!("email:order_confirmation:{order_id}"))
        .fetch_one(pool)
        .await?;
    Ok((pdf, email))
}

async fn attendee_count(pool: &sqlx::PgPool, order_id: i64) -> Result<i64, TestError> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM attendees WHERE order_id = $1")
            .bind(order_id)
            .fetch_one(pool)
            .await?,
    )
}

async fn status_of(pool: &sqlx::PgPool, order_id: i64) -> Result<String, TestError> {
    Ok(
        sqlx::query_scalar("SELECT status FROM orders WHERE id = $1")
            .bind(order_id)
            .fetch_one(pool)
            .await?,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browse_checkout_pay_webhook_and_success() -> TestResult {
    let app = TestApp::spawn(&[]).await?;
    let show = show(&app.pool, "e2e").await?;
    let ticket = tier(&app.pool, show, "General Admission", 100, "25.00", false).await?;
    let (status, detail) = app.get(&format!("/api/v1/shows/{show}/")).await?;
    assert_eq!(status, 200);
    let listed = &detail["tickets"][0];
    assert_eq!(
        (listed["id"].as_i64(), listed["available"].as_i64()),
        (Some(ticket), Some(100))
    );
    assert_eq!(listed["price"], "25.00");

    let (status, started) = app
        .post("/checkout/", &checkout_body(show, ticket, 2))
        .await?;
    assert_eq!(status, 201, "{started}");
    let session = started["session_id"]
        .as_str()
        .ok_or("session_id")?
        .to_string();
    assert_eq!(started["total"], "50.00");
    assert_eq!(started["status"], "pending");
    assert!(
        started["url"]
            .as_str()
            .is_some_and(|u| u.contains(&session)),
        "{started}"
    );
    assert!(started["expires_at"].is_string());
    let order_id = started["order_id"].as_i64().ok_or("order_id")?;
    let (_, detail) = app.get(&format!("/api/v1/shows/{show}/")).await?;
    assert_eq!(
        detail["tickets"][0]["available"], 98,
        "the hold counts at once"
    );
    let stripe = app.stripe_session(&session).await?;
    assert_eq!(stripe["amount_total"], 5000);
    assert_eq!(stripe["client_reference_id"], started["order_uuid"]);

    // The sim pays and sends the signed webhook; /success/ races it.
    app.pay(&session).await?;
    let success_body = json!({ "session_id": session });
    let (a, b) = tokio::join!(
        app.post("/success/", &success_body),
        app.post("/success/", &success_body)
    );
    for (status, body) in [a?, b?] {
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "paid");
        assert_eq!(body["attendees"].as_array().map(Vec::len), Some(2));
        assert_eq!(body["lines"][0]["line_total"], "50.00");
    }
    let pool = app.pool.clone();
    assert!(
        eventually(Duration::from_secs(10), || {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, i64>(
                    "SELECT count(*) FROM stripe_events WHERE type = 'checkout.session.completed'",
                )
                .fetch_one(&pool)
                .await
                .unwrap_or(0)
                    == 1
            }
        })
        .await,
        "the webhook was delivered and recorded"
    );
    assert_eq!(status_of(&app.pool, order_id).await?, "paid");
    assert_eq!(attendee_count(&app.pool, order_id).await?, 2);
    assert_eq!(outbox_rows(&app.pool, order_id).await?, (2, 1));
    assert_eq!(counters(&app.pool, ticket).await?, (0, 2));
    let pi: Option<String> =
        sqlx::query_scalar("SELECT payment_intent_id FROM orders WHERE id = $1")
            .bind(order_id)
            .fetch_one(&app.pool)
            .await?;
    assert!(pi.is_some_and(|p| p.starts_with("pi_")));
    // The hosted page's redirect target answers the same order.
    let (status, page) = app.get(&format!("/success/?session_id={session}")).await?;
    assert_eq!((status, page["status"].as_str()), (200, Some("paid")));
    // Cancelling a paid order is refused.
    let (status, _) = app
        .post("/cancel/", &json!({ "session_id": session }))
        .await?;
    assert_eq!(status, 409);
    assert_invariants(&app.pool).await?;
    app.cleanup().await;
    Ok(())
}

/// Signs `payload` as Stripe does.
fn signed(payload: &str) -> String {
    stripe_webhook::Webhook::generate_test_header(payload, WEBHOOK_SECRET, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_event_ten_times_concurrently_fulfils_once() -> TestResult {
    // Webhooks off at the sim: the test delivers the event itself.
    let app = TestApp::spawn_with_sim(&[], |c| c.webhook_url = None).await?;
    let show = show(&app.pool, "dupes").await?;
    let ticket = tier(&app.pool, show, "GA", 10, "10.00", false).await?;
    let (_, started) = app
        .post("/checkout/", &checkout_body(show, ticket, 3))
        .await?;
    let session = started["session_id"].as_str().ok_or("session")?.to_string();
    let order_id = started["order_id"].as_i64().ok_or("order")?;
    app.pay(&session).await?;
    let event = app
        .sim
        .state()
        .events()
        .into_iter()
        .find(|e| e["type"] == "checkout.session.completed")
        .ok_or("no completed event")?;
    let payload = serde_json::to_string(&event)?;
    let before = write_counts(&app.pool).await?;

    // Unsigned and tampered deliveries are refused and change nothing.
    let url = app.url("/stripe/webhook/");
    let resp = app.client.post(&url).body(payload.clone()).send().await?;
    assert_eq!(resp.status(), 400);
    let tampered = payload.replace("\"paid\"", "\"unpaid\"");
    let resp = app
        .client
        .post(&url)
        .header("Stripe-Signature", signed(&payload))
        .body(tampered)
        .send()
        .await?;
    assert_eq!(resp.status(), 400);
    let resp = app
        .client
        .post(&url)
        .header(
            "Stripe-Signature",
            stripe_webhook::Webhook::generate_test_header(&payload, "whsec_wrong", None),
        )
        .body(payload.clone())
        .send()
        .await?;
    assert_eq!(resp.status(), 400);
    let stale = stripe_webhook::Webhook::generate_test_header(
        &payload,
        WEBHOOK_SECRET,
        Some(chrono::Utc::now().timestamp() - 400),
    );
    let resp = app
        .client
        .post(&url)
        .header("Stripe-Signature", stale)
        .body(payload.clone())
        .send()
        .await?;
    assert_eq!(resp.status(), 400, "outside the 5 minute tolerance");
    assert_eq!(
        write_counts(&app.pool).await?,
        before,
        "refused webhooks wrote nothing"
    );
    assert_eq!(status_of(&app.pool, order_id).await?, "pending");

    // Ten concurrent copies (each freshly signed, so they arrive in any order) plus a /success/.
    let deliveries = (0..10).map(|_| {
        let req = app
            .client
            .post(&url)
            .header("Stripe-Signature", signed(&payload))
            .body(payload.clone());
        async move { req.send().await.map(|r| r.status().as_u16()) }
    });
    let success_body = json!({ "session_id": session });
    let (codes, success) = tokio::join!(join_all(deliveries), app.post("/success/", &success_body));
    for c in codes {
        assert_eq!(c?, 200);
    }
    assert_eq!(success?.0, 200);
    assert_eq!(status_of(&app.pool, order_id).await?, "paid");
    assert_eq!(
        attendee_count(&app.pool, order_id).await?,
        3,
        "one set of attendees"
    );
    assert_eq!(
        outbox_rows(&app.pool, order_id).await?,
        (3, 1),
        "one set of jobs"
    );
    assert_eq!(counters(&app.pool, ticket).await?, (0, 3));
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM stripe_events")
        .fetch_one(&app.pool)
        .await?;
    assert_eq!(events, 1);
    // A late repeat is a no-op.
    let resp = app
        .client
        .post(&url)
        .header("Stripe-Signature", signed(&payload))
        .body(payload.clone())
        .send()
        .await?;
    let body: serde_json::Value = resp.json().await?;
    assert_eq!(body["duplicate"], true);
    assert_invariants(&app.pool).await?;
    app.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_holds_expire_and_the_sweeper_releases_them() -> TestResult {
    let app = TestApp::spawn(&[("PIQUE_HOLD_TTL_SECS", "2")]).await?;
    let show = show(&app.pool, "abandon").await?;
    let ticket = tier(&app.pool, show, "Tiny room", 3, "15.00", false).await?;
    let (status, first) = app
        .post("/checkout/", &checkout_body(show, ticket, 3))
        .await?;
    assert_eq!(status, 201);
    let session = first["session_id"].as_str().ok_or("session")?.to_string();
    let (status, refused) = app
        .post("/checkout/", &checkout_body(show, ticket, 1))
        .await?;
    assert_eq!(status, 409, "{refused}");
    tokio::time::sleep(Duration::from_millis(2300)).await;
    // Lapsed holds never count, swept or not: display shows the seats at once.
    let (_, detail) = app.get(&format!("/api/v1/shows/{show}/")).await?;
    assert_eq!(detail["tickets"][0]["available"], 3);
    let released = app.state.checkout.sweep().await?;
    assert_eq!(released, 1);
    assert_eq!(app.state.checkout.sweep().await?, 0, "idempotent");
    assert_eq!(counters(&app.pool, ticket).await?, (0, 0));
    let order_id = first["order_id"].as_i64().ok_or("order")?;
    assert_eq!(status_of(&app.pool, order_id).await?, "expired");
    assert_eq!(
        app.stripe_session(&session).await?["status"],
        "expired",
        "the Stripe session was expired too"
    );
    let (status, _) = app
        .post("/checkout/", &checkout_body(show, ticket, 3))
        .await?;
    assert_eq!(status, 201, "seats came back");

    // Without the sweeper, the next buyer's checkout releases a lapsed hold itself.
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let (status, _) = app
        .post("/checkout/", &checkout_body(show, ticket, 2))
        .await?;
    assert_eq!(status, 201);
    assert_eq!(counters(&app.pool, ticket).await?, (2, 0));
    assert_invariants(&app.pool).await?;
    app.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_payment_is_reseated_or_refunded() -> TestResult {
    let app = TestApp::spawn_with_sim(&[], |c| c.webhook_url = None).await?;
    let show = show(&app.pool, "late").await?;
    let one = tier(&app.pool, show, "Last seat", 1, "30.00", false).await?;
    let (_, a) = app.post("/checkout/", &checkout_body(show, one, 1)).await?;
    let a_session = a["session_id"].as_str().ok_or("session")?.to_string();
    let a_id = a["order_id"].as_i64().ok_or("id")?;
    // A's hold lapses and is swept (database only: its Stripe session stays payable).
    sqlx::query("UPDATE orders SET expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(a_id)
        .execute(&app.pool)
        .await?;
    pique_store::checkout::sweep_expired(&app.pool, 10).await?;
    // B takes the seat; then A pays anyway.
    let (status, _) = app.post("/checkout/", &checkout_body(show, one, 1)).await?;
    assert_eq!(status, 201);
    app.pay(&a_session).await?;
    let (status, body) = app
        .post("/success/", &json!({ "session_id": a_session }))
        .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["status"], "refunded",
        "no seat for a late payment: refunded"
    );
    assert!(body["refunded_at"].is_string());
    assert_eq!(attendee_count(&app.pool, a_id).await?, 0);
    let refunds = app
        .sim
        .state()
        .events()
        .into_iter()
        .filter(|e| e["type"] == "refund.created")
        .count();
    assert_eq!(refunds, 1, "refunded through Stripe");
    let (status, again) = app
        .post("/success/", &json!({ "session_id": a_session }))
        .await?;
    assert_eq!(
        (status, again["status"].as_str()),
        (200, Some("refunded")),
        "idempotent"
    );

    // With a seat still free, a late payment is simply seated.
    let two = tier(&app.pool, show, "Roomy", 5, "10.00", false).await?;
    let (_, c) = app.post("/checkout/", &checkout_body(show, two, 2)).await?;
    let c_id = c["order_id"].as_i64().ok_or("id")?;
    let (status, _) = app
        .post("/cancel/", &json!({ "session_id": c["session_id"] }))
        .await?;
    assert_eq!(status, 200);
    assert_eq!(counters(&app.pool, two).await?, (0, 0));
    assert_eq!(
        app.stripe_session(c["session_id"].as_str().ok_or("s")?)
            .await?["status"],
        "expired"
    );
    // (The session is expired now, so pay through the webhook path of a fresh session.)
    let (_, d) = app.post("/checkout/", &checkout_body(show, two, 2)).await?;
    let d_id = d["order_id"].as_i64().ok_or("id")?;
    sqlx::query("UPDATE orders SET expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(d_id)
        .execute(&app.pool)
        .await?;
    pique_store::checkout::sweep_expired(&app.pool, 10).await?;
    app.pay(d["session_id"].as_str().ok_or("s")?).await?;
    let (status, body) = app
        .post("/success/", &json!({ "session_id": d["session_id"] }))
        .await?;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("paid")),
        "{body}"
    );
    assert_eq!(attendee_count(&app.pool, d_id).await?, 2);
    assert_eq!(status_of(&app.pool, c_id).await?, "cancelled");
    let (status, body) = app
        .post("/cancel/", &json!({ "session_id": c["session_id"] }))
        .await?;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("cancelled")),
        "cancel twice is fine"
    );
    assert_invariants(&app.pool).await?;
    app.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promo_donation_and_free_orders_to_the_cent() -> TestResult {
    let app = TestApp::spawn(&[]).await?;
    let show = show(&app.pool, "money").await?;
    let ga = tier(&app.pool, show, "GA", 100, "19.99", false).await?;
    let pwyc = tier(&app.pool, show, "Pay what you can", 100, "5.00", true).await?;
    promo(&app.pool, show, "TESTPROMO", "10", "percent").await?;
    promo(&app.pool, show, "FIVEOFF", "5.00", "amount").await?;
    promo(&app.pool, show, "FREE", "100", "percent").await?;

    // 3 x 19.99 = 59.97, 10 % = 5.997 -> 6.00; donation 2 x 12.34 = 24.68 untouched.
    let body = json!({
        "show_id": show,
        "tickets": [{"ticket_id": ga, "quantity": 3}, {"ticket_id": pwyc, "quantity": 2, "donation_amount": "12.34"}],
        "order_email": "a@example.com", "order_name": "A", "promo_code": "testpromo",
    });
    let (status, r) = app.post("/checkout/", &body).await?;
    assert_eq!(status, 201, "{r}");
    assert_eq!(
        (
            r["subtotal"].as_str(),
            r["discount"].as_str(),
            r["total"].as_str()
        ),
        (Some("84.65"), Some("6.00"), Some("78.65"))
    );
    let stripe = app
        .stripe_session(r["session_id"].as_str().ok_or("s")?)
        .await?;
    assert_eq!(
        stripe["amount_total"], 7865,
        "Stripe charges exactly our total"
    );
    let lines: Vec<(String, Option<String>, String, String)> = sqlx::query_as(
        "SELECT price_per_ticket::text, donation_amount::text, discount::text, line_total::text FROM order_lines \
         WHERE order_id = $1 ORDER BY ticket_id",
    )
    .bind(r["order_id"].as_i64())
    .fetch_all(&app.pool)
    .await?;
    assert_eq!(
        lines[0],
        ("19.99".into(), None, "6.00".into(), "53.97".into())
    );
    assert_eq!(
        lines[1],
        (
            "12.34".into(),
            Some("12.34".into()),
            "0.00".into(),
            "24.68".into()
        )
    );

    let mut body = checkout_body(show, ga, 1);
    body["promo_code"] = json!("FIVEOFF");
    let (_, r) = app.post("/checkout/", &body).await?;
    assert_eq!(r["total"], "14.99");

    // A free order: no Stripe, paid and fulfilled at once.
    let sessions_before = app.sim.state().with_store(|s| s.session_count());
    body["promo_code"] = json!("FREE");
    body["tickets"][0]["quantity"] = json!(2);
    let (status, r) = app.post("/checkout/", &body).await?;
    assert_eq!(status, 201, "{r}");
    assert_eq!(
        (r["status"].as_str(), r["total"].as_str()),
        (Some("paid"), Some("0.00"))
    );
    assert!(r["session_id"].is_null());
    let order_id = r["order_id"].as_i64().ok_or("id")?;
    assert_eq!(attendee_count(&app.pool, order_id).await?, 2);
    assert_eq!(outbox_rows(&app.pool, order_id).await?, (2, 1));
    assert_eq!(
        app.sim.state().with_store(|s| s.session_count()),
        sessions_before,
        "no Stripe call"
    );
    let (status, page) = app
        .get(&format!(
            "/success/?order_id={}",
            r["order_uuid"].as_str().ok_or("uuid")?
        ))
        .await?;
    assert_eq!((status, page["status"].as_str()), (200, Some("paid")));
    let uses: i32 = sqlx::query_scalar("SELECT uses FROM promo_codes WHERE code = 'FREE'")
        .fetch_one(&app.pool)
        .await?;
    assert_eq!(uses, 1);

    // validate-promo, with and without show_id, any case.
    let (status, v) = app
        .post(
            "/validate-promo/",
            &json!({ "code": "testPROMO", "show_id": show }),
        )
        .await?;
    assert_eq!(
        (status, v["valid"].as_bool(), v["discount"].as_str()),
        (200, Some(true), Some("10.00"))
    );
    assert_eq!(v["discount_type"], "percent");
    let (status, v) = app
        .post("/validate-promo/", &json!({ "code": "TESTPROMO" }))
        .await?;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["shows"][0]["show_id"], show);
    let (status, v) = app
        .post("/validate-promo/", &json!({ "code": "NOPE" }))
        .await?;
    assert_eq!(
        (status, v["detail"].as_str()),
        (404, Some("Invalid promo code."))
    );
    sqlx::query(
        "UPDATE promo_codes SET valid_until = now() - interval '1 hour' WHERE code = 'FIVEOFF'",
    )
    .execute(&app.pool)
    .await?;
    let (status, v) = app
        .post(
            "/validate-promo/",
            &json!({ "code": "fiveoff", "show_id": show }),
        )
        .await?;
    assert_eq!(
        (status, v["detail"].as_str()),
        (400, Some("This promo code has expired."))
    );
    sqlx::query("UPDATE promo_codes SET max_uses = 1 WHERE code = 'FREE'")
        .execute(&app.pool)
        .await?;
    let (status, v) = app
        .post(
            "/validate-promo/",
            &json!({ "code": "FREE", "show_id": show }),
        )
        .await?;
    assert_eq!(status, 400, "{v}");
    let (status, v) = app.post("/validate-promo/", &json!({})).await?;
    assert_eq!(
        (status, v["code"][0].as_str()),
        (400, Some("This field is required."))
    );
    assert_invariants(&app.pool).await?;
    app.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_writes_nothing() -> TestResult {
    let app = TestApp::spawn(&[]).await?;
    let show = show(&app.pool, "bad").await?;
    let other = crate::support::show(&app.pool, "other").await?;
    let ga = tier(&app.pool, show, "GA", 10, "10.00", false).await?;
    let pwyc = tier(&app.pool, show, "PWYC", 10, "5.00", true).await?;
    let foreign = tier(&app.pool, other, "Elsewhere", 10, "10.00", false).await?;
    let expired = promo(&app.pool, show, "OLD", "10", "percent").await?;
    sqlx::query("UPDATE promo_codes SET valid_until = now() - interval '1 day' WHERE id = $1")
        .bind(expired)
        .execute(&app.pool)
        .await?;
    sqlx::query("UPDATE shows SET published = false WHERE id = $1")
        .bind(other)
        .execute(&app.pool)
        .await?;
    let ok = checkout_body(show, ga, 1);
    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut b = ok.clone();
        f(&mut b);
        b
    };
    let cases: Vec<(&str, serde_json::Value, u16, &str)> = vec![
        (
            "unknown show",
            with(&|b| b["show_id"] = json!(999_999)),
            400,
            "show_id",
        ),
        (
            "unpublished show",
            with(&|b| {
                b["show_id"] = json!(other);
                b["tickets"][0]["ticket_id"] = json!(foreign)
            }),
            400,
            "show_id",
        ),
        (
            "unknown tier",
            with(&|b| b["tickets"][0]["ticket_id"] = json!(999_999)),
            400,
            "tickets[0].ticket_id",
        ),
        (
            "tier of another show",
            with(&|b| b["tickets"][0]["ticket_id"] = json!(foreign)),
            400,
            "tickets[0].ticket_id",
        ),
        (
            "quantity 0",
            with(&|b| b["tickets"][0]["quantity"] = json!(0)),
            400,
            "tickets[0].quantity",
        ),
        (
            "negative quantity",
            with(&|b| b["tickets"][0]["quantity"] = json!(-2)),
            400,
            "tickets[0].quantity",
        ),
        (
            "huge quantity",
            with(&|b| b["tickets"][0]["quantity"] = json!(1_000_000_000_000_i64)),
            400,
            "tickets[0].quantity",
        ),
        (
            "over max_per_order",
            with(&|b| b["tickets"][0]["quantity"] = json!(21)),
            400,
            "tickets[0].quantity",
        ),
        (
            "fractional quantity",
            with(&|b| b["tickets"][0]["quantity"] = json!(1.5)),
            400,
            "tickets[0].quantity",
        ),
        (
            "donation below minimum",
            with(&|b| {
                b["tickets"] =
                    json!([{"ticket_id": pwyc, "quantity": 1, "donation_amount": "4.99"}])
            }),
            400,
            "tickets[0].donation_amount",
        ),
        (
            "donation on a fixed tier",
            with(&|b| b["tickets"][0]["donation_amount"] = json!("50")),
            400,
            "tickets[0].donation_amount",
        ),
        (
            "expired promo",
            with(&|b| b["promo_code"] = json!("OLD")),
            400,
            "promo_code",
        ),
        (
            "unknown promo",
            with(&|b| b["promo_code"] = json!("NOPE")),
            400,
            "promo_code",
        ),
        (
            "malformed email",
            with(&|b| b["order_email"] = json!("nobody@")),
            400,
            "order_email",
        ),
        (
            "missing name",
            with(&|b| {
                b.as_object_mut().map(|o| o.remove("order_name"));
            }),
            400,
            "order_name",
        ),
        (
            "missing tickets",
            with(&|b| {
                b.as_object_mut().map(|o| o.remove("tickets"));
            }),
            400,
            "tickets",
        ),
        (
            "empty tickets",
            with(&|b| b["tickets"] = json!([])),
            400,
            "tickets",
        ),
        ("not an object", json!([1, 2]), 400, "non_field_errors"),
    ];
    let before = write_counts(&app.pool).await?;
    for (name, body, want, field) in cases {
        let (status, answer) = app.post("/checkout/", &body).await?;
        assert_eq!(status, want, "{name}: {answer}");
        assert!(
            answer.get(field).is_some(),
            "{name}: expected an error on {field}, got {answer}"
        );
    }
    let resp = app
        .client
        .post(app.url("/checkout/"))
        .header("content-type", "application/json")
        .body("{\"show_id\": 1,")
        .send()
        .await?;
    assert_eq!(resp.status(), 400, "bad JSON");
    let body: serde_json::Value = resp.json().await?;
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("JSON parse error")
    );
    for (path, body, want) in [
        ("/success/", json!({}), 400),
        ("/success/", json!({"session_id": "cs_test_unknown"}), 404),
        ("/cancel/", json!({}), 400),
        ("/cancel/", json!({"session_id": "cs_test_unknown"}), 404),
    ] {
        let (status, answer) = app.post(path, &body).await?;
        assert_eq!(status, want, "{path} {body}: {answer}");
    }
    let (status, _) = app.get("/checkout/status/not-a-uuid/").await?;
    assert_eq!(status, 404);
    assert_eq!(
        write_counts(&app.pool).await?,
        before,
        "nothing written, no hold taken"
    );
    app.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_stripe_releases_the_hold() -> TestResult {
    let app = TestApp::spawn_with_sim(&[], |c| c.error_rate = 1.0).await?;
    let show = show(&app.pool, "down").await?;
    let ga = tier(&app.pool, show, "GA", 5, "10.00", false).await?;
    let (status, body) = app.post("/checkout/", &checkout_body(show, ga, 2)).await?;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("no seats were held")
    );
    assert_eq!(counters(&app.pool, ga).await?, (0, 0));
    let status: String = sqlx::query_scalar("SELECT status FROM orders")
        .fetch_one(&app.pool)
        .await?;
    assert_eq!(status, "cancelled");
    assert!(app.sim.state().stats().injected_errors >= 3, "retried");
    // Each failed attempt is counted by kind, for the load generator's Stripe rows.
    let metrics = reqwest::get(format!("{}/metrics", app.base_url))
        .await?
        .text()
        .await?;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("pique_stripe_errors_total{") && l.contains("kind=\"server\"")),
        "{metrics}"
    );
    assert_invariants(&app.pool).await?;
    app.cleanup().await;
    Ok(())
}

/// The available seats of the show's first tier in `n` detail answers fetched at once.
async fn available_now(app: &TestApp, show: i64, n: usize) -> Result<Vec<i64>, TestError> {
    let path = format!("/api/v1/shows/{show}/");
    let answers = join_all((0..n).map(|_| app.get(&path))).await;
    let mut seen = Vec::with_capacity(n);
    for answer in answers {
        let (status, body) = answer?;
        assert_eq!(status, 200, "{body}");
        seen.push(
            body["tickets"][0]["available"]
                .as_i64()
                .ok_or("available")?,
        );
    }
    Ok(seen)
}

/// Availability is exact at the moment of each answer, also while many detail requests of
/// the show are in flight (concurrent requests share tier reads, but never one that started
/// before they came in): right after a hold, its release, a second hold and its payment,
/// every one of the next detail answers shows the change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_detail_is_exact_right_after_each_hold_release_and_payment() -> TestResult {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    };
    let app = TestApp::spawn(&[]).await?;
    let show = show(&app.pool, "exact").await?;
    let general = tier(&app.pool, show, "General Admission", 50, "10.00", false).await?;
    tier(&app.pool, show, "Balcony", 40, "10.00", false).await?;
    // Readers keep detail reads of this show in flight the whole time.
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..6)
        .map(|_| {
            let (client, url, stop) = (
                app.client.clone(),
                app.url(&format!("/api/v1/shows/{show}/")),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut answered = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(r) = client.get(&url).send().await
                        && r.status() == 200
                    {
                        answered += 1;
                    }
                }
                answered
            })
        })
        .collect();
    assert_eq!(available_now(&app, show, 16).await?, vec![50; 16]);

    let (status, first) = app
        .post("/checkout/", &checkout_body(show, general, 2))
        .await?;
    assert_eq!(status, 201, "{first}");
    assert_eq!(available_now(&app, show, 16).await?, vec![48; 16], "hold");

    let session = first["session_id"].as_str().ok_or("session")?.to_string();
    let (status, cancelled) = app
        .post("/cancel/", &json!({ "session_id": session }))
        .await?;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(
        available_now(&app, show, 16).await?,
        vec![50; 16],
        "release"
    );

    let (status, second) = app
        .post("/checkout/", &checkout_body(show, general, 3))
        .await?;
    assert_eq!(status, 201, "{second}");
    assert_eq!(available_now(&app, show, 16).await?, vec![47; 16], "hold");
    let session = second["session_id"].as_str().ok_or("session")?.to_string();
    app.pay(&session).await?;
    let (status, paid) = app
        .post("/success/", &json!({ "session_id": session }))
        .await?;
    assert_eq!((status, &paid["status"]), (200, &json!("paid")), "{paid}");
    assert_eq!(counters(&app.pool, general).await?, (0, 3), "held, sold");
    assert_eq!(available_now(&app, show, 16).await?, vec![47; 16], "paid");
    assert_invariants(&app.pool).await?;

    // A seat sold outside the API shows at once too (last: orders no longer account for it).
    sqlx::query("UPDATE tickets SET sold = sold + 7 WHERE id = $1")
        .bind(general)
        .execute(&app.pool)
        .await?;
    assert_eq!(available_now(&app, show, 16).await?, vec![40; 16], "sale");

    stop.store(true, Ordering::Relaxed);
    for r in join_all(readers).await {
        assert!(r? > 0, "the readers were answered meanwhile");
    }
    app.cleanup().await;
    Ok(())
}
