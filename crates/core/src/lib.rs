//! # pique-core
//!
//! The PiqueTickets domain without any I/O: the types the API serves, money and pricing rules,
//! seat availability, query validation, the typed configuration and the architecture profiles.
//!
//! Everything here is a plain function or a plain type so that business rules can be tested
//! exhaustively without a database. `pique-store` does the SQL, `pique-api` the HTTP.

#[macro_use]
pub mod text_enum;

pub mod availability;
pub mod config;
pub mod jobs;
pub mod model;
pub mod money;
pub mod pricing;
pub mod profile;
pub mod query;
pub mod search;
pub mod slug;
pub mod status;
pub mod validate;

pub use config::{CheckoutStrategy, Config, Profile};
pub use money::Money;
pub use status::{EmailStatus, OrderStatus, RequestStatus, ShowStatus};
