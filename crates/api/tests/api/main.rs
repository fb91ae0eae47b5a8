//! The API's integration tests against real PostgreSQL, Redis and stripe-sim, in one test
//! binary (one link instead of seven). `auth_limits` and `portal_export` stay separate: one sets
//! process environment, the other measures the process's peak memory.

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
