//! Checkout Sessions, hosted page, refunds and webhooks, driven with the real async-stripe client.

use crate::common::*;
use stripe::StripeError;
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, ExpireCheckoutSession, RetrieveCheckoutSession,
};
use stripe_checkout::{CheckoutSessionPaymentStatus, CheckoutSessionStatus};
use stripe_core::payment_intent::RetrievePaymentIntent;
use stripe_core::refund::{CreateRefund, RetrieveRefund};
use stripe_sim::DeliveryStatus;
use stripe_webhook::{EventObject, Webhook};

#[tokio::test]
async fn create_retrieve_and_complete_via_sim_endpoint() {
    let sim = sim().await;
    let client = client(&sim);

    let session = two_line_session()
        .send(&client)
        .await
        .expect("create session");
    assert!(session.id.as_str().starts_with("cs_test_"));
    assert_eq!(session.amount_total, Some(6000));
    assert_eq!(session.amount_subtotal, Some(6000));
    assert_eq!(
        session.url.as_deref(),
        Some(format!("{}/pay/{}", sim.base_url(), session.id).as_str())
    );
    assert_eq!(session.status, Some(CheckoutSessionStatus::Open));
    assert_eq!(session.payment_status, CheckoutSessionPaymentStatus::Unpaid);
    assert_eq!(session.client_reference_id.as_deref(), Some("order-42"));
    assert_eq!(session.customer_email.as_deref(), Some("buyer@example.com"));
    assert_eq!(
        session
            .metadata
            .as_ref()
            .and_then(|m| m.get("order_id"))
            .map(String::as_str),
        Some("ord-42")
    );
    let now = chrono::Utc::now().timestamp();
    assert!(
        (session.expires_at - (now + 24 * 3600)).abs() < 5,
        "default expiry is 24 h"
    );

    let fetched = RetrieveCheckoutSession::new(session.id.clone())
        .send(&client)
        .await
        .expect("retrieve");
    assert_eq!(fetched.id, session.id);
    assert_eq!(fetched.amount_total, Some(6000));

    let completed = complete_via_sim(&sim, session.id.as_str()).await;
    assert_eq!(completed["status"], "complete");
    assert_eq!(completed["payment_status"], "paid");
    assert!(completed["url"].is_null(), "url is only set while open");

    let fetched = RetrieveCheckoutSession::new(session.id.clone())
        .send(&client)
        .await
        .expect("retrieve");
    assert_eq!(fetched.status, Some(CheckoutSessionStatus::Complete));
    assert_eq!(fetched.payment_status, CheckoutSessionPaymentStatus::Paid);
    let pi_id = fetched.payment_intent.expect("payment intent").id().clone();
    let pi = RetrievePaymentIntent::new(pi_id.as_str())
        .send(&client)
        .await
        .expect("retrieve pi");
    assert_eq!(pi.amount, 6000);
    assert_eq!(pi.amount_received, 6000);
    assert_eq!(pi.status.as_str(), "succeeded");

    // Completing again is idempotent and emits no second event.
    complete_via_sim(&sim, session.id.as_str()).await;
    let completed_events = sim
        .state()
        .events()
        .iter()
        .filter(|e| e["type"] == "checkout.session.completed")
        .count();
    assert_eq!(completed_events, 1);
}

#[tokio::test]
async fn hosted_page_pays_and_redirects_to_success_url() {
    let sim = sim().await;
    let session = two_line_session()
        .send(&client(&sim))
        .await
        .expect("create");
    let url = session.url.clone().expect("url");
    let http = http();

    let page = http.get(&url).send().await.expect("get page");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(
        html.contains("GA ticket") && html.contains("60.00 USD") && html.contains("Pay"),
        "{html}"
    );
    assert!(html.contains("http://shop.test/cancel"));

    let resp = http.post(&url).send().await.expect("pay");
    assert_eq!(resp.status(), 303);
    let location = resp.headers()["location"].to_str().expect("location");
    assert_eq!(
        location,
        format!("http://shop.test/success?session_id={}", session.id)
    );

    let fetched = RetrieveCheckoutSession::new(session.id.clone())
        .send(&client(&sim))
        .await
        .expect("retrieve");
    assert_eq!(fetched.status, Some(CheckoutSessionStatus::Complete));
    assert_eq!(
        http.get(&url).send().await.expect("get").status(),
        200,
        "paid page still renders"
    );
}

#[tokio::test]
async fn completed_webhook_is_signed_like_stripe() {
    let receiver = Receiver::start(0).await;
    let url = receiver.url.clone();
    let sim = sim_with(|c| c.webhook_url = Some(url)).await;
    let session = two_line_session()
        .send(&client(&sim))
        .await
        .expect("create");
    complete_via_sim(&sim, session.id.as_str()).await;

    let got = receiver.wait_ok(1).await;
    let hook = &got[0];
    let event =
        Webhook::construct_event(&hook.body, &hook.signature, SECRET).expect("valid webhook");
    assert!(event.id.as_str().starts_with("evt_"));
    assert_eq!(event.type_.as_str(), "checkout.session.completed");
    match event.data.object {
        EventObject::CheckoutSessionCompleted(s) => {
            assert_eq!(s.id, session.id);
            assert_eq!(s.client_reference_id.as_deref(), Some("order-42"));
            assert_eq!(s.payment_status, CheckoutSessionPaymentStatus::Paid);
            assert!(s.payment_intent.is_some());
        }
        other => panic!("unexpected object {other:?}"),
    }
    let wrong = Webhook::construct_event(&hook.body, &hook.signature, "whsec_wrong");
    assert!(wrong.is_err(), "a wrong secret must be rejected");

    let deliveries = sim.state().deliveries();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].status, DeliveryStatus::Delivered);
    assert_eq!(deliveries[0].attempts, 1);
}

#[tokio::test]
async fn webhook_is_retried_until_delivered() {
    let receiver = Receiver::start(2).await;
    let url = receiver.url.clone();
    let sim = sim_with(|c| c.webhook_url = Some(url)).await;
    let session = two_line_session()
        .send(&client(&sim))
        .await
        .expect("create");
    complete_via_sim(&sim, session.id.as_str()).await;

    let ok = receiver.wait_ok(1).await;
    assert_eq!(ok.len(), 1, "delivered exactly once");
    let all = receiver.received();
    assert_eq!(
        all.iter().map(|r| r.answered).collect::<Vec<_>>(),
        vec![500, 500, 200]
    );
    for r in &all {
        Webhook::construct_event(&r.body, &r.signature, SECRET).expect("every attempt is signed");
    }
    // The record is updated right after the receiver answered; give it a moment.
    for _ in 0..50 {
        if sim.state().deliveries()[0].status == DeliveryStatus::Delivered {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let d = &sim.state().deliveries()[0];
    assert_eq!(
        (d.status, d.attempts, d.last_status),
        (DeliveryStatus::Delivered, 3, Some(200))
    );
}

#[tokio::test]
async fn webhook_gives_up_after_max_attempts() {
    let receiver = Receiver::start(100).await;
    let url = receiver.url.clone();
    let sim = sim_with(|c| {
        c.webhook_url = Some(url);
        c.webhook_max_attempts = 3;
        c.webhook_backoff_ms = 5;
    })
    .await;
    let session = two_line_session()
        .send(&client(&sim))
        .await
        .expect("create");
    complete_via_sim(&sim, session.id.as_str()).await;
    for _ in 0..100 {
        if sim.state().deliveries()[0].status == DeliveryStatus::Failed {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let d = &sim.state().deliveries()[0];
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Failed, 3));
    assert_eq!(receiver.received().len(), 3);
}

#[tokio::test]
async fn expire_open_session_but_not_a_completed_one() {
    let receiver = Receiver::start(0).await;
    let url = receiver.url.clone();
    let sim = sim_with(|c| c.webhook_url = Some(url)).await;
    let client = client(&sim);

    let open = two_line_session().send(&client).await.expect("create");
    let expired = ExpireCheckoutSession::new(open.id.clone())
        .send(&client)
        .await
        .expect("expire");
    assert_eq!(expired.status, Some(CheckoutSessionStatus::Expired));
    assert_eq!(expired.url, None);
    let hook = &receiver.wait_ok(1).await[0];
    let event = Webhook::construct_event(&hook.body, &hook.signature, SECRET).expect("valid");
    assert!(
        matches!(event.data.object, EventObject::CheckoutSessionExpired(ref s) if s.id == open.id)
    );
    assert!(
        event
            .request
            .and_then(|r| r.id)
            .is_some_and(|id| id.starts_with("req_"))
    );

    // An expired session cannot be paid or expired again.
    let again = ExpireCheckoutSession::new(open.id.clone())
        .send(&client)
        .await;
    assert!(
        matches!(again, Err(StripeError::Stripe(_, 400))),
        "{again:?}"
    );
    let pay = http()
        .post(format!(
            "{}/_sim/sessions/{}/complete",
            sim.base_url(),
            open.id
        ))
        .send()
        .await
        .expect("post");
    assert_eq!(pay.status(), 400);

    let done = two_line_session().send(&client).await.expect("create");
    complete_via_sim(&sim, done.id.as_str()).await;
    match ExpireCheckoutSession::new(done.id.clone())
        .send(&client)
        .await
    {
        Err(StripeError::Stripe(e, 400)) => {
            assert_eq!(e.type_, stripe::ApiErrorsType::InvalidRequestError);
            assert!(e.message.unwrap_or_default().contains("\"complete\""));
        }
        other => panic!("expected 400, got {other:?}"),
    }
}

#[tokio::test]
async fn validation_errors_have_stripe_shape() {
    let sim = sim().await;
    let client = client(&sim);

    match CreateCheckoutSession::new().send(&client).await {
        Err(StripeError::Stripe(e, 400)) => {
            assert_eq!(e.param.as_deref(), Some("mode"));
            assert_eq!(e.code, Some(stripe::ApiErrorsCode::ParameterMissing));
        }
        other => panic!("expected 400, got {other:?}"),
    }
    let no_qty = {
        let mut l = line("GA", 100, 1);
        l.quantity = None;
        CreateCheckoutSession::new()
            .mode(stripe_checkout::CheckoutSessionMode::Payment)
            .line_items(vec![l])
    };
    match no_qty.send(&client).await {
        Err(StripeError::Stripe(e, 400)) => {
            assert_eq!(e.param.as_deref(), Some("line_items[0][quantity]"))
        }
        other => panic!("expected 400, got {other:?}"),
    }
    let soon = two_line_session().expires_at(chrono::Utc::now().timestamp() + 60);
    match soon.send(&client).await {
        Err(StripeError::Stripe(e, 400)) => assert_eq!(e.param.as_deref(), Some("expires_at")),
        other => panic!("expected 400, got {other:?}"),
    }
    match RetrieveCheckoutSession::new("cs_test_nope")
        .send(&client)
        .await
    {
        Err(StripeError::Stripe(e, 404)) => {
            assert_eq!(e.code, Some(stripe::ApiErrorsCode::ResourceMissing));
            assert_eq!(
                e.message.as_deref(),
                Some("No such checkout.session: 'cs_test_nope'")
            );
        }
        other => panic!("expected 404, got {other:?}"),
    }
    let resp = http()
        .get(format!("{}/v1/nothing_here", sim.base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 404);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn refunds_partial_then_rest_then_refused() {
    let sim = sim().await;
    let client = client(&sim);
    let session = two_line_session().send(&client).await.expect("create");
    let completed = complete_via_sim(&sim, session.id.as_str()).await;
    let pi = completed["payment_intent"].as_str().expect("pi").to_owned();

    let r1 = CreateRefund::new()
        .payment_intent(pi.clone())
        .amount(1000)
        .send(&client)
        .await
        .expect("refund");
    assert!(r1.id.as_str().starts_with("re_"));
    assert_eq!(r1.amount, 1000);
    assert_eq!(
        r1.payment_intent
            .as_ref()
            .map(|p| p.id().as_str().to_owned()),
        Some(pi.clone())
    );
    assert_eq!(r1.status.as_deref(), Some("succeeded"));

    let too_much = CreateRefund::new()
        .payment_intent(pi.clone())
        .amount(9999)
        .send(&client)
        .await;
    match too_much {
        Err(StripeError::Stripe(e, 400)) => assert_eq!(e.param.as_deref(), Some("amount")),
        other => panic!("expected 400, got {other:?}"),
    }
    let r2 = CreateRefund::new()
        .payment_intent(pi.clone())
        .send(&client)
        .await
        .expect("refund rest");
    assert_eq!(r2.amount, 5000);
    let fetched = RetrieveRefund::new(r2.id.clone())
        .send(&client)
        .await
        .expect("retrieve refund");
    assert_eq!(fetched.amount, 5000);

    match CreateRefund::new().payment_intent(pi).send(&client).await {
        Err(StripeError::Stripe(e, 400)) => {
            assert_eq!(e.code, Some(stripe::ApiErrorsCode::ChargeAlreadyRefunded))
        }
        other => panic!("expected 400, got {other:?}"),
    }
    match CreateRefund::new()
        .payment_intent("pi_unknown")
        .send(&client)
        .await
    {
        Err(StripeError::Stripe(_, 404)) => {}
        other => panic!("expected 404, got {other:?}"),
    }
}

#[tokio::test]
async fn idempotency_key_replays_the_first_result() {
    use stripe::{IdempotencyKey, RequestStrategy, StripeRequest};
    let sim = sim().await;
    let client = client(&sim);
    let strategy =
        || RequestStrategy::Idempotent(IdempotencyKey::new("order-42-attempt-1").expect("key"));

    let first = two_line_session()
        .customize()
        .request_strategy(strategy())
        .send(&client)
        .await
        .expect("first");
    let second = two_line_session()
        .customize()
        .request_strategy(strategy())
        .send(&client)
        .await
        .expect("replay");
    assert_eq!(first.id, second.id);
    assert_eq!(sim.state().with_store(|s| s.session_count()), 1);

    let other = two_line_session()
        .client_reference_id("order-43")
        .customize()
        .request_strategy(strategy())
        .send(&client)
        .await;
    match other {
        Err(StripeError::Stripe(e, 400)) => {
            assert_eq!(e.type_, stripe::ApiErrorsType::IdempotencyError)
        }
        other => panic!("expected 400 idempotency_error, got {other:?}"),
    }

    // A failed request is not saved: the same key can be used again once the failure is fixed.
    let bad_key =
        || RequestStrategy::Idempotent(IdempotencyKey::new("bad-then-good").expect("key"));
    let bad = stripe_checkout::checkout_session::CreateCheckoutSession::new()
        .customize()
        .request_strategy(bad_key())
        .send(&client)
        .await;
    assert!(matches!(bad, Err(StripeError::Stripe(_, 400))));
    let good = two_line_session()
        .customize()
        .request_strategy(bad_key())
        .send(&client)
        .await;
    assert!(good.is_ok(), "{good:?}");
}

#[tokio::test]
async fn expand_and_list_line_items() {
    use stripe_checkout::checkout_session::ListLineItemsCheckoutSession;
    let sim = sim().await;
    let client = client(&sim);
    let session = two_line_session().send(&client).await.expect("create");
    assert!(session.line_items.is_none(), "not expanded by default");

    let lines = ListLineItemsCheckoutSession::new(session.id.clone())
        .send(&client)
        .await
        .expect("list");
    assert_eq!(lines.data.len(), 2);
    assert!(!lines.has_more);
    assert_eq!(lines.data[0].description.as_deref(), Some("GA ticket"));
    assert_eq!(lines.data[0].quantity, Some(2));
    assert_eq!(lines.data[0].amount_total, 5000);
    let price = lines.data[0].price.as_ref().expect("price");
    assert_eq!(price.unit_amount, Some(2500));
    assert!(price.id.as_str().starts_with("price_"));

    complete_via_sim(&sim, session.id.as_str()).await;
    let expanded = RetrieveCheckoutSession::new(session.id.clone())
        .expand(vec!["line_items".to_string(), "payment_intent".to_string()])
        .send(&client)
        .await
        .expect("retrieve expanded");
    assert_eq!(expanded.line_items.as_ref().map(|l| l.data.len()), Some(2));
    match expanded.payment_intent {
        Some(stripe_types::Expandable::Object(pi)) => assert_eq!(pi.amount, 6000),
        other => panic!("payment_intent not expanded: {other:?}"),
    }
    let bad = RetrieveCheckoutSession::new(session.id.clone())
        .expand(vec!["customer_details.address".to_string()])
        .send(&client)
        .await;
    match bad {
        Err(StripeError::Stripe(e, 400)) => assert_eq!(e.param.as_deref(), Some("expand")),
        other => panic!("expected 400, got {other:?}"),
    }
}

#[tokio::test]
async fn sim_expire_endpoint_expires_and_notifies() {
    let receiver = Receiver::start(0).await;
    let sim = sim().await;
    // The webhook URL can be set after start (e.g. once the app under test listens).
    sim.set_webhook_url(Some(receiver.url.clone()));
    let session = two_line_session()
        .send(&client(&sim))
        .await
        .expect("create");
    let resp = http()
        .post(format!(
            "{}/_sim/sessions/{}/expire",
            sim.base_url(),
            session.id
        ))
        .send()
        .await
        .expect("expire");
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["status"], "expired");

    let hook = &receiver.wait_ok(1).await[0];
    let event = Webhook::construct_event(&hook.body, &hook.signature, SECRET).expect("valid");
    assert_eq!(event.type_.as_str(), "checkout.session.expired");
    assert!(
        event.request.and_then(|r| r.id).is_none(),
        "not caused by an API request"
    );

    let page = http()
        .get(format!("{}/pay/{}", sim.base_url(), session.id))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 410);
    let missing = http()
        .post(format!(
            "{}/_sim/sessions/cs_test_nope/expire",
            sim.base_url()
        ))
        .send()
        .await;
    assert_eq!(missing.expect("post").status(), 404);
}

#[tokio::test]
async fn webhook_delay_knob_holds_back_delivery() {
    let receiver = Receiver::start(0).await;
    let url = receiver.url.clone();
    let sim = sim_with(|c| {
        c.webhook_url = Some(url);
        c.webhook_delay_ms = 300;
    })
    .await;
    assert_eq!(sim.knobs().webhook_delay_ms, 300);
    let session = two_line_session()
        .send(&client(&sim))
        .await
        .expect("create");
    let t = std::time::Instant::now();
    complete_via_sim(&sim, session.id.as_str()).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(
        receiver.received().is_empty(),
        "not delivered before the delay"
    );
    receiver.wait_ok(1).await;
    assert!(t.elapsed() >= std::time::Duration::from_millis(300));
}
