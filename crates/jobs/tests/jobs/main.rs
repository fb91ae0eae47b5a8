//! The workers' integration tests against real PostgreSQL and Redis, in one test binary.
//! `metrics` stays separate: it installs the global metrics recorder.

// Test code: a failed unwrap is a failed test (helpers included, not only #[test] fns).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/mod.rs"]
mod support;

mod lifecycle;
mod pipeline;
mod relay;
