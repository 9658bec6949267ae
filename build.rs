//! Generates the server's wire types and its dropshot API trait from `openapi.json`, the
//! contract this crate is built from, through the workspace's `codegen` crate (which has the
//! generator's own tests). `tests/api/drift.rs` proves that the trait turns back into exactly
//! the checked-in document.
//!
//! A construct the generator does not support stops the build with the JSON pointer of the
//! construct and what to write instead.

use std::path::PathBuf;

use leadping_codegen::{Config, HandWritten, Security};

fn main() {
    println!("cargo:rerun-if-changed=openapi.json");
    println!("cargo:rerun-if-changed=build.rs");

    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    let config = Config {
        trait_name: "LeadpingInvitationsApi".into(),
        trait_doc: "The Leadping business-invitations API, one method per operation of \
                    `openapi.json`.\n\nImplement it to serve the API; \
                    `leadping_invitations_api_mod::api_description` turns an implementation \
                    into a dropshot `ApiDescription`, and \
                    `leadping_invitations_api_mod::stub_api_description` describes the API \
                    without one."
            .into(),
        types_module: "crate::wire".into(),
        security: vec![Security {
            scheme: "bearerAuth".into(),
            extractor: "crate::api::Caller".into(),
        }],
        hand_written: vec![
            HandWritten {
                type_name: "string".into(),
                format: "int64".into(),
                path: "crate::wire::Int64String".into(),
            },
            HandWritten {
                type_name: "string".into(),
                format: "person-name".into(),
                path: "crate::wire::PersonName".into(),
            },
        ],
    };
    if let Err(e) =
        leadping_codegen::generate_files(&manifest_dir.join("openapi.json"), &out_dir, &config)
    {
        eprintln!("\nopenapi.json cannot be turned into code:\n\n{e}\n");
        std::process::exit(1);
    }
}
