//! The measuring side of calibration: closed-loop GETs at fixed concurrencies.
//!
//! Only `GET` requests without a body are ever built here ([`get`] is the one constructor),
//! so calibrating cannot write to the target. The one side effect is the cache's: a "cold"
//! request carries a filter that no one else sends (`start_time__gt` a few microseconds past
//! a date in the year 2000, which every show is after), so the deployment computes the list
//! and stores it under a new key, which expires with the cache's TTL. The number of cold
//! requests per level is capped.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use hyper::Method;
use pique_core::profile::CacheState;
use tokio::time::Instant;
use url::Url;

use super::fit::{Level, Sample};
use crate::engine::http::{Connections, HttpError, InResponse, OutRequest};

/// How a probe builds its paths.
#[derive(Debug, Clone)]
pub enum Target {
    /// The same path every time.
    Fixed(String),
    /// The show list with a filter no one else sends: a cache miss every time.
    ColdShowList {
        /// Seconds after 2000-01-01 where this run's filters start (distinct per run).
        base_secs: u64,
    },
}

impl Target {
    /// The path of request number `n`.
    pub fn path(&self, n: u64) -> String {
        match self {
            Target::Fixed(p) => p.clone(),
            Target::ColdShowList { base_secs } => {
                let base = chrono::DateTime::from_timestamp(946_684_800, 0).unwrap_or_default();
                let at = base
                    + chrono::Duration::seconds(i64::try_from(*base_secs).unwrap_or(0))
                    + chrono::Duration::microseconds(i64::try_from(n).unwrap_or(0) + 1);
                format!(
                    "/api/v1/shows/?start_time__gt={}",
                    at.format("%Y-%m-%dT%H:%M:%S%.6fZ")
                )
            }
        }
    }

    /// What the cache does for this target when the response does not say.
    pub fn presumed_cache(&self, first: bool) -> CacheState {
        match self {
            Target::ColdShowList { .. } => CacheState::Miss,
            Target::Fixed(_) if first => CacheState::Any,
            Target::Fixed(_) => CacheState::Hit,
        }
    }
}

/// The only request calibration sends: a `GET` with no body.
pub(crate) fn get(url: Url) -> OutRequest {
    OutRequest {
        method: Method::GET,
        url,
        headers: Vec::new(),
        json: None,
    }
}

/// The response's `x-cache`, if it says.
fn cache_of(response: &InResponse) -> Option<CacheState> {
    let value = response.headers.get("x-cache")?.to_str().ok()?;
    match CacheState::from_header(Some(value)) {
        CacheState::Any => None,
        known => Some(known),
    }
}

/// One GET; status 0 when no response came.
pub(crate) async fn fetch(
    conns: &mut Connections,
    base: &Url,
    path: &str,
) -> Result<InResponse, HttpError> {
    let url = base
        .join(path)
        .map_err(|e| HttpError::Connection(format!("bad path {path}: {e}")))?;
    conns.send(get(url)).await
}

/// Runs `concurrency` closed-loop clients against `target` for `duration` (or until `cap`
/// requests were sent), and records every request. `numbers` numbers the requests of a
/// target across its levels (so no cold path repeats).
pub async fn level(
    base: &Url,
    target: &Target,
    numbers: &Arc<AtomicU64>,
    concurrency: u32,
    duration: Duration,
    cap: usize,
    timeout: Duration,
) -> Level {
    let started = Instant::now();
    let sent = Arc::new(AtomicUsize::new(0));
    let clients = (0..concurrency).map(|_| {
        let (base, target) = (base.clone(), target.clone());
        let (sent, numbers) = (sent.clone(), numbers.clone());
        tokio::spawn(async move {
            let mut conns = Connections::new(timeout);
            let mut samples = Vec::new();
            while started.elapsed() < duration && sent.fetch_add(1, Ordering::SeqCst) < cap {
                let n = numbers.fetch_add(1, Ordering::SeqCst);
                let path = target.path(n);
                let start = started.elapsed().as_secs_f64();
                let result = fetch(&mut conns, &base, &path).await;
                let end = started.elapsed().as_secs_f64();
                let (status, cache) = match &result {
                    Ok(r) => (
                        r.status,
                        cache_of(r).unwrap_or_else(|| target.presumed_cache(false)),
                    ),
                    Err(_) => (0, CacheState::Any),
                };
                samples.push(Sample {
                    start,
                    end,
                    status,
                    cache,
                });
            }
            samples
        })
    });
    let mut samples = Vec::new();
    for client in futures::future::join_all(clients).await {
        samples.extend(client.unwrap_or_default());
    }
    Level {
        concurrency,
        duration: started.elapsed().as_secs_f64(),
        samples,
    }
}

/// The network round trip to `base`: the fastest of a few TCP connects, in milliseconds.
pub async fn round_trip_ms(base: &Url) -> Option<f64> {
    let host = match base.host()? {
        url::Host::Ipv6(a) => a.to_string(),
        other => other.to_string(),
    };
    let port = base.port_or_known_default()?;
    let mut best: Option<f64> = None;
    for _ in 0..5 {
        let t = Instant::now();
        let connect = tokio::net::TcpStream::connect((host.as_str(), port));
        if let Ok(Ok(stream)) = tokio::time::timeout(Duration::from_secs(5), connect).await {
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            best = Some(best.map_or(ms, |b| b.min(ms)));
            drop(stream);
        }
    }
    best
}

/// The first show's id in a show list body (a bare array, or DRF's paginated envelope).
pub fn first_show_id(body: &Bytes) -> Option<i64> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let list = match &value {
        serde_json::Value::Array(items) => items,
        serde_json::Value::Object(o) => o.get("results")?.as_array()?,
        _ => return None,
    };
    list.iter().find_map(|show| show.get("id")?.as_i64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cold_paths_are_unique_and_after_2000() {
        let t = Target::ColdShowList { base_secs: 90 };
        assert_eq!(
            t.path(0),
            "/api/v1/shows/?start_time__gt=2000-01-01T00:01:30.000001Z"
        );
        assert_ne!(t.path(1), t.path(2));
        assert_eq!(t.presumed_cache(false), CacheState::Miss);
        assert_eq!(Target::Fixed("/x".into()).path(5), "/x");
    }

    #[test]
    fn finds_a_show_in_either_list_shape() {
        assert_eq!(
            first_show_id(&Bytes::from_static(b"[{\"id\":7},{\"id\":8}]")),
            Some(7)
        );
        assert_eq!(
            first_show_id(&Bytes::from_static(
                b"{\"count\":1,\"results\":[{\"id\":3}]}"
            )),
            Some(3)
        );
        assert_eq!(first_show_id(&Bytes::from_static(b"[]")), None);
        assert_eq!(first_show_id(&Bytes::from_static(b"<html>")), None);
    }

    #[test]
    fn the_only_request_is_a_bodiless_get() {
        let r = get(Url::parse("http://h/x").expect("url"));
        assert_eq!(r.method, Method::GET);
        assert!(r.json.is_none() && r.headers.is_empty());
    }
}
