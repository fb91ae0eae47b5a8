//! Tower/axum middleware: request metrics, the architecture-profile limiter, per-IP rate
//! limits, trace spans.

pub mod metrics;
pub mod profile;
pub mod rate_limit;
pub mod trace;
