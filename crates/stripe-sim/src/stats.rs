//! Request counters served by `GET /_sim/stats`.

use std::collections::BTreeMap;

use serde::Serialize;

/// Counters for one endpoint (`"POST /v1/checkout/sessions"`).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct EndpointStats {
    /// Requests received.
    pub count: u64,
    /// Responses by HTTP status (`"200"`, `"429"`, ...).
    pub by_status: BTreeMap<String, u64>,
}

/// All counters since start (or the last `POST /_sim/reset`).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Stats {
    /// `/v1/*` requests received.
    pub total: u64,
    /// Per endpoint, keyed by method and route pattern.
    pub by_endpoint: BTreeMap<String, EndpointStats>,
    /// 500s injected by `error_rate`.
    pub injected_errors: u64,
    /// Requests hung by `timeout_rate`.
    pub injected_timeouts: u64,
    /// 429s answered by the rate limit.
    pub rate_limited: u64,
    /// 401s for a missing or bad key.
    pub unauthorized: u64,
}

/// What the fault-injection layer did to a request, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Reached the handler.
    Handled,
    /// Refused with 401.
    Unauthorized,
    /// Refused with 429.
    RateLimited,
    /// Hung, then failed.
    TimedOut,
    /// Answered with an injected 500.
    InjectedError,
}

impl Stats {
    /// Records one finished `/v1/*` request.
    pub fn record(&mut self, endpoint: &str, status: u16, outcome: Outcome) {
        self.total += 1;
        let e = self.by_endpoint.entry(endpoint.to_owned()).or_default();
        e.count += 1;
        *e.by_status.entry(status.to_string()).or_insert(0) += 1;
        match outcome {
            Outcome::Handled => {}
            Outcome::Unauthorized => self.unauthorized += 1,
            Outcome::RateLimited => self.rate_limited += 1,
            Outcome::TimedOut => self.injected_timeouts += 1,
            Outcome::InjectedError => self.injected_errors += 1,
        }
    }
}
