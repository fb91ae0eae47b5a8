//! The workers' integration tests against real PostgreSQL and Redis, in one test binary.
//! `metrics` stays separate: it installs the global metrics recorder.

#[path = "../support/mod.rs"]
mod support;

mod lifecycle;
mod pipeline;
mod relay;
