//! The one integration-test binary: the contract checks, and the real server driven through the
//! generated client.

mod delivery;
mod demo;
mod drift;
mod helpers;
mod interleavings;
mod lifecycle;
mod masking;
mod operations;
mod own_postgres;
mod parsers;
mod schema;
mod served;
mod smtp;
mod spec_rules;
