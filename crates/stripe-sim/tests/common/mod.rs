//! Shared helpers for the integration tests: a sim on a free port, an async-stripe client
//! pointed at it, and a tiny webhook receiver.

#![allow(dead_code)] // each test binary uses a different subset

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use axum::{Router, extract::State, http::HeaderMap, http::StatusCode, routing::post};
use stripe::{Client, ClientBuilder};
use stripe_checkout::{
    CheckoutSessionMode,
    checkout_session::{
        CreateCheckoutSession, CreateCheckoutSessionLineItems,
        CreateCheckoutSessionLineItemsPriceData, ProductData,
    },
};
use stripe_sim::{SimConfig, StripeSim};

pub const KEY: &str = "sk_test_pique_sim_tests";
pub const SECRET: &str = "whsec_test_secret";

pub async fn sim_with(f: impl FnOnce(&mut SimConfig)) -> StripeSim {
    let mut cfg = SimConfig::ephemeral();
    cfg.webhook_secret = SECRET.into();
    cfg.webhook_backoff_ms = 20;
    f(&mut cfg);
    stripe_sim::spawn(cfg).await.expect("spawn sim")
}

pub async fn sim() -> StripeSim {
    sim_with(|_| {}).await
}

pub fn client(sim: &StripeSim) -> Client {
    client_with_key(sim, KEY)
}

pub fn client_with_key(sim: &StripeSim, key: &str) -> Client {
    ClientBuilder::new(key)
        .url(sim.base_url())
        .build()
        .expect("client")
}

/// A plain HTTP client that does not follow redirects (to see the 303s).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("reqwest")
}

pub fn line(name: &str, unit_amount: i64, quantity: u64) -> CreateCheckoutSessionLineItems {
    let mut price = CreateCheckoutSessionLineItemsPriceData::new(stripe_types::Currency::USD);
    price.unit_amount = Some(unit_amount);
    price.product_data = Some(ProductData::new(name));
    let mut item = CreateCheckoutSessionLineItems::new();
    item.price_data = Some(price);
    item.quantity = Some(quantity);
    item
}

/// 2 x 25.00 + 1 x 10.00 = 60.00 USD.
pub fn two_line_session() -> CreateCheckoutSession {
    let metadata: HashMap<String, String> = [("order_id".to_string(), "ord-42".to_string())].into();
    CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Payment)
        .line_items(vec![
            line("GA ticket", 2500, 2),
            line("VIP upgrade", 1000, 1),
        ])
        .success_url("http://shop.test/success?session_id={CHECKOUT_SESSION_ID}")
        .cancel_url("http://shop.test/cancel")
        .client_reference_id("order-42")
        .customer_email("buyer@example.com")
        .metadata(metadata)
}

pub async fn complete_via_sim(sim: &StripeSim, id: &str) -> serde_json::Value {
    let resp = http()
        .post(format!("{}/_sim/sessions/{id}/complete", sim.base_url()))
        .send()
        .await
        .expect("complete request");
    assert_eq!(resp.status(), 200);
    resp.json().await.expect("session json")
}

/// One webhook request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub signature: String,
    pub body: String,
    pub answered: u16,
}

#[derive(Clone, Default)]
struct ReceiverState {
    fail_first: Arc<AtomicU32>,
    got: Arc<Mutex<Vec<Received>>>,
}

/// A webhook endpoint that answers 500 to its first `fail_first` requests, then 200.
pub struct Receiver {
    pub url: String,
    state: ReceiverState,
}

impl Receiver {
    pub async fn start(fail_first: u32) -> Self {
        let state = ReceiverState {
            fail_first: Arc::new(AtomicU32::new(fail_first)),
            ..Default::default()
        };
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url: format!("http://{addr}/hook"),
            state,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.got.lock().expect("lock").clone()
    }

    /// Waits until `n` successful (2xx) deliveries arrived.
    pub async fn wait_ok(&self, n: usize) -> Vec<Received> {
        for _ in 0..200 {
            let ok: Vec<Received> = self
                .received()
                .into_iter()
                .filter(|r| r.answered == 200)
                .collect();
            if ok.len() >= n {
                return ok;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("webhook not received; got {:?}", self.received());
    }
}

async fn receive(State(st): State<ReceiverState>, headers: HeaderMap, body: String) -> StatusCode {
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let fail = st
        .fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let status = if fail {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    st.got.lock().expect("lock").push(Received {
        signature,
        body,
        answered: status.as_u16(),
    });
    status
}
