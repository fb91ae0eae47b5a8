//! The shared simulator state: store, knobs, counters, events and webhook deliveries.
//!
//! Every lock is a `std::sync` lock taken for a few statements and never held across an await.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock},
    time::Duration,
};

use serde_json::Value;

use crate::{
    config::{Knobs, KnobsError, SimConfig},
    error::SimError,
    idempotency::IdempotencyCache,
    knobs::TokenBucket,
    objects::{self, EventMeta},
    stats::Stats,
    store::Store,
    webhook::{self, Delivery},
};

/// How many events and deliveries are kept for inspection (oldest dropped first), so a long load
/// run does not grow memory without bound.
const HISTORY_CAP: usize = 10_000;

/// Locks a mutex, recovering from poisoning: a panicking handler must not take the sim down.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Settings fixed at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Base URL of the hosted pages, without trailing slash.
    pub public_base: String,
    /// The only accepted key, if configured.
    pub secret_key: Option<String>,
    /// Webhook signing secret.
    pub webhook_secret: String,
    /// Delivery attempts per event.
    pub webhook_max_attempts: u32,
    /// First retry delay.
    pub webhook_backoff: Duration,
}

struct Inner {
    settings: Settings,
    webhook_url: RwLock<Option<String>>,
    knobs: RwLock<Knobs>,
    store: Mutex<Store>,
    stats: Mutex<Stats>,
    limiter: Mutex<TokenBucket>,
    events: Mutex<VecDeque<Value>>,
    deliveries: Mutex<VecDeque<Delivery>>,
    idempotency: Mutex<IdempotencyCache>,
    http: reqwest::Client,
}

/// Cheaply clonable handle on the simulator's state; the axum state of [`crate::router`].
#[derive(Clone)]
pub struct SimState(Arc<Inner>);

impl std::fmt::Debug for SimState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimState")
            .field("settings", &self.0.settings)
            .finish_non_exhaustive()
    }
}

impl SimState {
    /// Builds the state for `config`; `public_base` is the resolved base URL of the hosted pages.
    pub fn new(config: &SimConfig, public_base: &str) -> Result<Self, SimError> {
        let knobs = config.knobs();
        knobs.validate()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .user_agent("Stripe/1.0 (+https://stripe.com/docs/webhooks)")
            .build()?;
        Ok(Self(Arc::new(Inner {
            settings: Settings {
                public_base: public_base.trim_end_matches('/').to_owned(),
                secret_key: config.secret_key.clone(),
                webhook_secret: config.webhook_secret.clone(),
                webhook_max_attempts: config.webhook_max_attempts.max(1),
                webhook_backoff: Duration::from_millis(config.webhook_backoff_ms),
            },
            webhook_url: RwLock::new(config.webhook_url.clone()),
            limiter: Mutex::new(TokenBucket::new(knobs.rate_limit_rps)),
            knobs: RwLock::new(knobs),
            store: Mutex::new(Store::default()),
            stats: Mutex::new(Stats::default()),
            events: Mutex::new(VecDeque::new()),
            deliveries: Mutex::new(VecDeque::new()),
            idempotency: Mutex::new(IdempotencyCache::default()),
            http,
        })))
    }

    /// Settings fixed at start.
    pub fn settings(&self) -> &Settings {
        &self.0.settings
    }

    /// Current fault-injection knobs.
    pub fn knobs(&self) -> Knobs {
        self.0
            .knobs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the knobs (validated); a changed rate limit restarts the token bucket.
    pub fn set_knobs(&self, knobs: Knobs) -> Result<(), KnobsError> {
        knobs.validate()?;
        let rps = knobs.rate_limit_rps;
        *self.0.knobs.write().unwrap_or_else(PoisonError::into_inner) = knobs;
        lock(&self.0.limiter).reconfigure(rps);
        Ok(())
    }

    /// Current webhook URL.
    pub fn webhook_url(&self) -> Option<String> {
        self.0
            .webhook_url
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Points webhooks somewhere else (or turns them off with `None`).
    pub fn set_webhook_url(&self, url: Option<String>) {
        *self
            .0
            .webhook_url
            .write()
            .unwrap_or_else(PoisonError::into_inner) = url;
    }

    /// Runs `f` with the store locked. Keep `f` short and synchronous.
    pub fn with_store<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        f(&mut lock(&self.0.store))
    }

    /// A snapshot of the request counters.
    pub fn stats(&self) -> Stats {
        lock(&self.0.stats).clone()
    }

    /// Runs `f` with the counters locked.
    pub(crate) fn with_stats<R>(&self, f: impl FnOnce(&mut Stats) -> R) -> R {
        f(&mut lock(&self.0.stats))
    }

    /// Takes a rate-limit token; `false` means answer 429.
    pub(crate) fn take_token(&self) -> bool {
        lock(&self.0.limiter).try_take()
    }

    /// Every event emitted so far (most recent last, capped), whether or not it was delivered.
    pub fn events(&self) -> Vec<Value> {
        lock(&self.0.events).iter().cloned().collect()
    }

    /// Webhook deliveries (most recent last, capped).
    pub fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.0.deliveries).iter().cloned().collect()
    }

    /// Runs `f` with the idempotency cache locked.
    pub(crate) fn with_idempotency<R>(&self, f: impl FnOnce(&mut IdempotencyCache) -> R) -> R {
        f(&mut lock(&self.0.idempotency))
    }

    /// Clears objects, counters, events, deliveries and saved idempotent results (knobs and URLs
    /// stay).
    pub fn reset(&self) {
        *lock(&self.0.store) = Store::default();
        *lock(&self.0.idempotency) = IdempotencyCache::default();
        *lock(&self.0.stats) = Stats::default();
        lock(&self.0.events).clear();
        lock(&self.0.deliveries).clear();
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.0.http
    }

    /// Creates an event for `object`, records it and, if a webhook URL is set, delivers it in
    /// the background (so it must be called inside a Tokio runtime). Returns the event.
    pub fn emit(&self, event_type: &str, object: Value, mut meta: EventMeta) -> Value {
        let url = self.webhook_url();
        meta.pending_webhooks = i64::from(url.is_some());
        let id = crate::ids::event();
        let event = objects::event(&id, event_type, object, &meta);
        push_capped(&mut lock(&self.0.events), event.clone());
        if let Some(url) = url {
            let delivery = Delivery::pending(&id, event_type, &url);
            push_capped(&mut lock(&self.0.deliveries), delivery);
            webhook::spawn_delivery(self.clone(), url, id, event.clone());
        }
        event
    }

    /// Updates the delivery record of `event_id`.
    pub(crate) fn update_delivery(&self, event_id: &str, f: impl FnOnce(&mut Delivery)) {
        let mut d = lock(&self.0.deliveries);
        if let Some(rec) = d.iter_mut().rev().find(|d| d.event_id == event_id) {
            f(rec);
        }
    }
}

fn push_capped<T>(q: &mut VecDeque<T>, item: T) {
    if q.len() >= HISTORY_CAP {
        q.pop_front();
    }
    q.push_back(item);
}

/// Current Unix time in seconds.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
