//! The load generator against real local HTTP servers, in one test binary.

#[path = "../common/mod.rs"]
mod common;

mod browser;
mod calibrate;
mod engine;
mod full_plans;
mod plans;
mod reports;
mod ui;
