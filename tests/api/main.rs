//! The one integration-test binary: the contract checks, and the real server driven through the
//! generated client.

mod drift;
mod helpers;
mod lifecycle;
mod served;
mod spec_rules;
