//! leadping-invitations: the business-invitations part of the Leadping API, built from
//! `openapi.json`.
//!
//! `build.rs` turns the contract, through the `codegen` crate, into the wire types (re-exported
//! by [`wire`] beside the hand-written ones) and [`contract`] (the dropshot API trait, its
//! parameter and response types). Everything else is written by hand and implements the trait;
//! "Where things live" in the README maps the modules in the order a request meets them. The
//! client the tests drive the server with is a crate of its own (`client/`), so the server
//! never compiles it.

/// The API trait generated from `paths` of `openapi.json`, with one method per operation.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod contract {
    include!(concat!(env!("OUT_DIR"), "/api.rs"));
}

pub mod api;
pub mod app;
pub mod auth;
pub mod billing;
pub mod config;
pub mod demo;
pub mod docs;
pub mod domain;
pub mod health;
pub mod logging;
pub mod mail;
pub mod metrics;
pub mod problem;
pub mod server;
pub mod store;
pub mod tokens;
pub mod wire;

/// The contract exactly as checked in; served at `GET /openapi.json`.
pub const OPENAPI_JSON: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json"));

/// The OpenAPI document that the generated code describes: what dropshot writes for the
/// generated trait, with the declared error responses that the generated response types supply.
pub fn generated_openapi() -> String {
    let api = contract::leadping_invitations_api_mod::stub_api_description()
        .expect("the generated trait describes a valid API");
    contract::openapi_document(&api).expect("the document serializes")
}
