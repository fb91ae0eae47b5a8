//! Fault injection, authentication, runtime config and stats.

use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{Value, json};
use stripe::{StripeError, StripeRequest};
use stripe_core::balance::RetrieveForMyAccountBalance;
use stripe_sim::Knobs;

async fn balance(client: &stripe::Client) -> Result<stripe_core::Balance, StripeError> {
    RetrieveForMyAccountBalance::new().send(client).await
}

#[tokio::test]
async fn bad_or_missing_key_is_401() {
    let sim = sim().await;
    match balance(&client_with_key(&sim, "pk_test_publishable")).await {
        Err(StripeError::Stripe(e, 401)) => {
            assert_eq!(e.type_, stripe::ApiErrorsType::InvalidRequestError);
            let msg = e.message.unwrap_or_default();
            assert!(
                msg.starts_with("Invalid API Key provided: pk_test_"),
                "{msg}"
            );
            assert!(!msg.contains("publishable"), "key is redacted: {msg}");
        }
        other => panic!("expected 401, got {other:?}"),
    }
    let resp = http()
        .get(format!("{}/v1/balance", sim.base_url()))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.expect("json");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("did not provide an API key")
    );
    assert!(balance(&client(&sim)).await.is_ok());
    assert!(
        balance(&client_with_key(&sim, "sk_live_anything"))
            .await
            .is_ok_and(|b| b.livemode)
    );

    // With a configured key, only that key is accepted.
    let strict = sim_with(|c| c.secret_key = Some("sk_test_only_this".into())).await;
    assert!(
        balance(&client_with_key(&strict, "sk_test_only_this"))
            .await
            .is_ok()
    );
    assert!(matches!(
        balance(&client(&strict)).await,
        Err(StripeError::Stripe(_, 401))
    ));
    assert_eq!(strict.state().stats().unauthorized, 1);
}

#[tokio::test]
async fn error_rate_one_gives_stripe_api_error() {
    let sim = sim_with(|c| c.error_rate = 1.0).await;
    match two_line_session().send(&client(&sim)).await {
        Err(StripeError::Stripe(e, 500)) => {
            assert_eq!(e.type_, stripe::ApiErrorsType::ApiError);
            assert!(e.message.is_some());
        }
        other => panic!("expected 500, got {other:?}"),
    }
    let resp = http()
        .get(format!("{}/v1/balance", sim.base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 500);
    assert_eq!(resp.headers()["stripe-should-retry"], "true");
    assert!(resp.headers().contains_key("request-id"));
    assert_eq!(sim.state().stats().injected_errors, 2);
    assert_eq!(
        sim.state().with_store(|s| s.session_count()),
        0,
        "nothing was created"
    );

    // Hosted pages and /_sim are not affected.
    let cfg = http()
        .get(format!("{}/_sim/config", sim.base_url()))
        .send()
        .await
        .expect("config");
    assert_eq!(cfg.status(), 200);

    sim.set_knobs(Knobs {
        error_rate: 0.0,
        ..sim.knobs()
    })
    .expect("knobs");
    assert!(two_line_session().send(&client(&sim)).await.is_ok());
}

#[tokio::test]
async fn rate_limit_answers_429_after_n_requests() {
    let sim = sim_with(|c| c.rate_limit_rps = Some(3)).await;
    let client = client(&sim);
    for i in 0..3 {
        assert!(
            balance(&client).await.is_ok(),
            "request {i} is within the limit"
        );
    }
    match balance(&client).await {
        Err(StripeError::Stripe(e, 429)) => {
            assert_eq!(e.code, Some(stripe::ApiErrorsCode::RateLimit));
            assert_eq!(e.type_, stripe::ApiErrorsType::InvalidRequestError);
        }
        other => panic!("expected 429, got {other:?}"),
    }
    assert_eq!(sim.state().stats().rate_limited, 1);
    // The bucket refills at N per second.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(balance(&client).await.is_ok());
}

#[tokio::test]
async fn latency_is_added() {
    let sim = sim().await;
    let client = client(&sim);
    balance(&client).await.expect("warm up");
    let t = Instant::now();
    balance(&client).await.expect("fast");
    let base = t.elapsed();

    sim.set_knobs(Knobs {
        latency_ms: 250,
        jitter_ms: 50,
        ..sim.knobs()
    })
    .expect("knobs");
    let t = Instant::now();
    balance(&client).await.expect("slow");
    let slow = t.elapsed();
    assert!(slow >= Duration::from_millis(200), "{slow:?}");
    assert!(
        slow >= base + Duration::from_millis(150),
        "{slow:?} vs {base:?}"
    );
}

#[tokio::test]
async fn timeout_rate_hangs_until_the_client_gives_up() {
    let sim = sim_with(|c| {
        c.timeout_rate = 1.0;
        c.timeout_hang_ms = 5_000;
    })
    .await;
    let t = Instant::now();
    let res = RetrieveForMyAccountBalance::new()
        .customize()
        .timeout(Duration::from_millis(300))
        .send(&client(&sim))
        .await;
    assert!(matches!(res, Err(StripeError::Timeout)), "{res:?}");
    assert!(t.elapsed() < Duration::from_secs(2));

    // Bounded: a patient client gets a 500 once the hang is over.
    sim.set_knobs(Knobs {
        timeout_hang_ms: 100,
        ..sim.knobs()
    })
    .expect("knobs");
    assert!(matches!(
        balance(&client(&sim)).await,
        Err(StripeError::Stripe(_, 500))
    ));
}

#[tokio::test]
async fn runtime_config_and_stats_over_http() {
    let sim = sim().await;
    let http = http();
    let base = sim.base_url();

    let set = http
        .post(format!("{base}/_sim/config"))
        .json(&json!({"error_rate": 1.0, "rate_limit_rps": 50, "latency_ms": 5}))
        .send()
        .await
        .expect("set");
    assert_eq!(set.status(), 200);
    let cfg: Value = set.json().await.expect("json");
    assert_eq!(cfg["error_rate"], 1.0);
    assert_eq!(cfg["rate_limit_rps"], 50);
    assert_eq!(sim.knobs().latency_ms, 5);
    assert!(matches!(
        balance(&client(&sim)).await,
        Err(StripeError::Stripe(_, 500))
    ));

    let bad = http
        .post(format!("{base}/_sim/config"))
        .json(&json!({"error_rate": 2}))
        .send()
        .await
        .expect("bad");
    assert_eq!(bad.status(), 400);
    let unknown = http
        .post(format!("{base}/_sim/config"))
        .json(&json!({"nope": 1}))
        .send()
        .await
        .expect("bad");
    assert_eq!(unknown.status(), 400);

    let reset = json!({"error_rate": 0, "rate_limit_rps": null, "latency_ms": 0});
    http.post(format!("{base}/_sim/config"))
        .json(&reset)
        .send()
        .await
        .expect("reset");
    let cfg: Value = http
        .get(format!("{base}/_sim/config"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(cfg["rate_limit_rps"], Value::Null);
    assert_eq!(cfg["error_rate"], 0.0);

    let client = client(&sim);
    let s = two_line_session().send(&client).await.expect("create");
    stripe_checkout::checkout_session::RetrieveCheckoutSession::new(s.id.clone())
        .send(&client)
        .await
        .expect("retrieve");
    let stats: Value = http
        .get(format!("{base}/_sim/stats"))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    assert_eq!(
        stats["by_endpoint"]["POST /v1/checkout/sessions"]["count"],
        1
    );
    assert_eq!(
        stats["by_endpoint"]["GET /v1/checkout/sessions/{id}"]["by_status"]["200"],
        1
    );
    assert_eq!(
        stats["by_endpoint"]["GET /v1/balance"]["by_status"]["500"],
        1
    );
    assert_eq!(stats["total"], 3);

    let r = http
        .post(format!("{base}/_sim/reset"))
        .send()
        .await
        .expect("reset");
    assert_eq!(r.status(), 204);
    assert_eq!(sim.state().stats().total, 0);
}

#[tokio::test]
async fn sdk_retries_get_through_injected_errors() {
    use stripe::RequestStrategy;
    let sim = sim_with(|c| c.error_rate = 0.3).await;
    let client = client(&sim);
    for _ in 0..20 {
        two_line_session()
            .customize()
            .request_strategy(RequestStrategy::Retry(15))
            .send(&client)
            .await
            .expect("retried until success");
    }
    assert_eq!(
        sim.state().with_store(|s| s.session_count()),
        20,
        "no duplicates, none lost"
    );
    let stats = sim.state().stats();
    assert_eq!(stats.total, 20 + stats.injected_errors);
}

#[tokio::test]
async fn router_can_be_served_by_the_caller() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let state = stripe_sim::SimState::new(&stripe_sim::SimConfig::ephemeral(), "http://sim.test")
        .expect("state");
    tokio::spawn(axum::serve(listener, stripe_sim::router(state.clone())).into_future());
    let client = stripe::ClientBuilder::new(KEY)
        .url(format!("http://{addr}"))
        .build()
        .expect("client");
    let session = two_line_session().send(&client).await.expect("create");
    assert_eq!(
        session.url,
        Some(format!("http://sim.test/pay/{}", session.id))
    );
    assert_eq!(state.with_store(|s| s.session_count()), 1);
}

#[tokio::test]
async fn shutdown_stops_listening() {
    let sim = sim().await;
    let base = sim.base_url();
    assert!(balance(&client(&sim)).await.is_ok());
    sim.shutdown().await.expect("clean shutdown");
    let after = http().get(format!("{base}/_sim/config")).send().await;
    assert!(after.is_err(), "nothing listens after shutdown");
}
