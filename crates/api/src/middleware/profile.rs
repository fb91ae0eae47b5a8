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
        Some(limiter) => router.layer(axum::middleware::from_fn(
            move |req: Request, next: Next| {
                let limiter = limiter.clone();
                async move { limit(limiter, req, next).await }
            },
        )),
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
                return Err(ApiError::Unavailable(
                    "Server is at capacity; request queue is full.".into(),
                ));
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use axum::{body::Body, http::StatusCode, routing::get};
    use tower::ServiceExt;

    use super::*;

    /// A router whose handler records how many requests run at once.
    fn probe(running: Arc<AtomicUsize>, peak: Arc<AtomicUsize>) -> Router {
        Router::new().route(
            "/",
            get(move || {
                let (running, peak) = (running.clone(), peak.clone());
                async move {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    "ok"
                }
            }),
        )
    }

    async fn peak_under(profile: Profile, requests: usize) -> (usize, Vec<StatusCode>) {
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let app = apply(probe(running, peak.clone()), profile);
        let calls = (0..requests).map(|_| {
            let app = app.clone();
            async move {
                let req = Request::builder()
                    .uri("/")
                    .body(Body::empty())
                    .map_err(|e| e.to_string())?;
                app.oneshot(req)
                    .await
                    .map(|r| r.status())
                    .map_err(|e| e.to_string())
            }
        });
        let statuses = futures::future::join_all(calls)
            .await
            .into_iter()
            .filter_map(Result::ok)
            .collect();
        (peak.load(Ordering::SeqCst), statuses)
    }

    #[tokio::test]
    async fn railway_serves_two_at_a_time_and_queues_the_rest() {
        let (peak, statuses) = peak_under(Profile::DjangoRailway, 20).await;
        assert_eq!(peak, 2);
        assert!(
            statuses.iter().all(|s| *s == StatusCode::OK),
            "20 fit in the 100-deep queue"
        );
    }

    #[tokio::test]
    async fn recommended_serves_eight_and_rust_is_unlimited() {
        assert_eq!(peak_under(Profile::DjangoRecommended, 30).await.0, 8);
        assert!(peak_under(Profile::Rust, 30).await.0 > 8);
    }

    #[tokio::test]
    async fn a_full_queue_is_refused_with_503() {
        // 2 running + 100 waiting fit; the rest are refused at once.
        let (peak, statuses) = peak_under(Profile::DjangoRailway, 130).await;
        assert_eq!(peak, 2);
        let refused = statuses
            .iter()
            .filter(|s| **s == StatusCode::SERVICE_UNAVAILABLE)
            .count();
        assert_eq!(refused, 28);
    }
}
