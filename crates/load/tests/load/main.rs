//! The load generator against real local HTTP servers, in one test binary.

// Test code: a failed unwrap is a failed test (helpers included, not only #[test] fns).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod browser;
mod calibrate;
mod engine;
mod full_plans;
mod plans;
mod reports;
mod ui;
