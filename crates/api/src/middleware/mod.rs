//! Tower/axum middleware: request metrics, the architecture-profile limiter, trace spans.

pub mod metrics;
pub mod profile;
pub mod trace;
