//! # pique-store
//!
//! The only crate that speaks SQL (and Redis, for caching and locks). Each module is one
//! area of the domain and exposes plain async functions over a `PgPool` or a transaction, so
//! handlers and workers never see a query.
//!
//! - [`db`]: connecting with the original's settings, migrations, pool metrics;
//! - [`cache`]: the Redis read-through cache (with an in-process first level);
//! - [`catalog`]: public reads (shows, venues, performers, producers, tiers, search, cities);
//! - [`seed`]: deterministic fixture generation;
//! - [`checkout`], [`orders`]: the money path;
//! - [`outbox`], [`fulfilment`]: jobs written with orders, PDFs and emails;
//! - [`auth`], [`portal`], [`checkin`], [`subscribers`]: producers and the rest;
//! - [`testing`]: a fresh database per test.

pub mod auth;
pub mod cache;
pub mod catalog;
pub mod checkin;
pub mod checkout;
pub mod db;
pub mod error;
pub mod fulfilment;
pub mod orders;
pub mod outbox;
pub mod portal;
pub mod seed;
pub mod subscribers;
pub mod testing;

pub use error::StoreError;
pub use sqlx::PgPool;
