//! stripe-sim driven through async-stripe over real HTTP, in one test binary.

// Test code: a failed unwrap is a failed test (helpers included, not only #[test] fns).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod checkout;
mod connect;
mod knobs;
