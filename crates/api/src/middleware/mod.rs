//! Tower/axum middleware: request metrics, the architecture profiles (a Gunicorn model),
//! per-IP rate limits, trace spans.

pub mod gunicorn;
pub mod metrics;
pub mod profile;
pub mod rate_limit;
pub mod trace;
