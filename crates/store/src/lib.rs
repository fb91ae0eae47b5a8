//! # pique-store
//!
//! The only crate that speaks SQL (and Redis, for caching and locks). Each module is one
//! area of the domain and exposes plain async functions over a `PgPool` or a transaction, so
//! handlers and workers never see a query.
//!
//! Every query is a `sqlx::query!` / `query_as!` / `query_scalar!` macro, checked at compile
//! time against the schema through the query data committed in `.sqlx/` (regenerated with
//! `cargo sqlx prepare --workspace` after a query or migration changes). Stored states are
//! read as enums (`pique_core::status`), amounts as `pique_core::Money`. The only statements
//! built at run time are the few in [`db`] that name a database, since identifiers cannot
//! be bind parameters.
//!
//! - [`db`]: connecting with the original's settings, migrations, pool metrics;
//! - [`cache`]: the Redis read-through cache (with an in-process first level);
//! - [`catalog`]: public reads (shows, venues, performers, producers, tiers, search, cities);
//! - [`coalesce`]: concurrent reads of one key sharing one query that starts after they ask;
//! - [`seed`]: deterministic fixture generation;
//! - [`checkout`], [`orders`]: the money path; [`invariants`]: what `pique check` verifies;
//! - [`outbox`], [`fulfilment`]: jobs written with orders (the contract is
//!   `pique_core::jobs`), PDFs and emails;
//! - [`auth`], [`portal`] (one module per resource), [`checkin`], [`subscribers`]: producers
//!   and the rest;
//! - [`testing`]: a fresh database per test.

pub mod auth;
pub mod cache;
pub mod catalog;
pub mod checkin;
pub mod checkout;
pub mod coalesce;
pub mod db;
pub mod error;
pub mod fulfilment;
pub mod invariants;
pub mod orders;
pub mod outbox;
pub mod portal;
pub mod seed;
pub mod subscribers;
pub mod testing;

pub use error::StoreError;
pub use sqlx::PgPool;
