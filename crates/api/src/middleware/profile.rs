//! The `django-*` architecture profiles as a real limit on the server (DESIGN section 4).
//!
//! Gunicorn with 1 worker x 2 threads serves two requests at once; up to
//! `worker_connections` (100) more wait their turn; beyond that connections are refused,
//! and a request running past `timeout` (60 s) is killed. This layer does the same: a
//! semaphore of `max_in_flight` permits, a bounded count of waiters (503 beyond it), and a
//! timeout (503). With the `rust` profile it is not installed at all.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Router, extract::Request, middleware::Next, response::Response};
use pique_core::Profile;
use tokio::sync::Semaphore;

use crate::ApiError;

/// The shared state of the limiter.
#[derive(Debug)]
pub struct Limiter {
    permits: Semaphore,
    waiting: AtomicUsize,
    max_waiting: usize,
    timeout: Duration,
}

impl Limiter {
    /// A limiter for `profile`, or `None` if the profile has no limit.
    pub fn for_profile(profile: Profile) -> Option<Arc<Limiter>> {
        let in_flight = profile.max_in_flight()?;
        Some(Arc::new(Limiter {
            permits: Semaphore::new(in_flight),
            waiting: AtomicUsize::new(0),
            max_waiting: profile.max_queued(),
            timeout: profile.request_timeout().unwrap_or(Duration::from_secs(60)),
        }))
    }
}

/// Wraps `router` in the profile's limiter, if it has one.
pub fn apply(router: Router, profile: Profile) -> Router {
    match Limiter::for_profile(profile) {
        Some(limiter) => router.layer(axum::middleware::from_fn(move |req: Request, next: Next| {
            let limiter = limiter.clone();
            async move { limit(limiter, req, next).await }
        })),
        None => router,
    }
}

async fn limit(limiter: Arc<Limiter>, request: Request, next: Next) -> Result<Response, ApiError> {
    let permit = match limiter.permits.try_acquire() {
        Ok(p) => p,
        Err(_) => {
            if limiter.waiting.fetch_add(1, Ordering::SeqCst) >= limiter.max_waiting {
                limiter.waiting.fetch_sub(1, Ordering::SeqCst);
                metrics::counter!("pique_profile_rejected_total").increment(1);
                return Err(ApiError::Unavailable("Server is at capacity; request queue is full.".into()));
            }
            let acquired = limiter.permits.acquire().await;
            limiter.waiting.fetch_sub(1, Ordering::SeqCst);
            acquired.map_err(|_| ApiError::Unavailable("Server is shutting down.".into()))?
        }
    };
    let result = tokio::time::timeout(limiter.timeout, next.run(request)).await;
    drop(permit);
    result.map_err(|_| ApiError::Unavailable("Request timed out in the worker.".into()))
}
