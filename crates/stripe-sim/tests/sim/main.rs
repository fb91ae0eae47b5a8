//! stripe-sim driven through async-stripe over real HTTP, in one test binary.

#[path = "../common/mod.rs"]
mod common;

mod checkout;
mod connect;
mod knobs;
