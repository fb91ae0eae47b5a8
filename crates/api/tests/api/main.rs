//! The API's integration tests against real PostgreSQL, Redis and stripe-sim, in one test
//! binary (one link instead of seven). `portal_export` stays separate: it measures the process's
//! peak memory. `auth_limits` is its own binary too.

// Test code: a failed unwrap is a failed test (helpers included, not only #[test] fns).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/mod.rs"]
mod support;

#[path = "../portal_support/mod.rs"]
mod portal_support;

mod auth;
mod checkin;
mod checkout_flow;
mod checkout_race;
mod portal;
mod profile;
mod public;
mod tracking;
