//! Generates a module per document in `codegen/tests/specs/`: its wire types, its trait, the
//! document itself, and the dropshot error impls its error schema needs.

use std::fmt::Write;
use std::path::PathBuf;

use leadping_codegen::{Config, HandWritten, Security};

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let specs_dir = manifest_dir.join("../tests/specs");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed={}", specs_dir.display());
    println!("cargo:rerun-if-changed=build.rs");
    let mut entries: Vec<_> = std::fs::read_dir(&specs_dir)
        .expect("codegen/tests/specs exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    entries.sort();
    let mut modules = String::new();
    let mut names = Vec::new();
    for path in entries {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .replace('-', "_");
        let dir = out_dir.join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        let config = Config {
            trait_name: "RoundTripApi".into(),
            trait_doc: format!("The API of `{}`.", path.display()),
            types_module: format!("crate::{name}::wire"),
            security: vec![Security {
                scheme: "itemAuth".into(),
                extractor: "crate::Authenticated".into(),
            }],
            hand_written: vec![HandWritten {
                type_name: "string".into(),
                format: "int64".into(),
                path: "crate::Int64String".into(),
            }],
        };
        if let Err(e) = leadping_codegen::generate_files(&path, &dir, &config) {
            panic!(
                "{} is in the round trip but the generator refuses it:\n{e}",
                path.display()
            );
        }
        let spec: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        // The problem schema every error response carries (each operation declares a 500).
        let error = spec["paths"]
            .as_object()
            .into_iter()
            .flat_map(|paths| paths.values())
            .filter_map(|item| item.as_object())
            .flat_map(|item| item.values())
            .find_map(|op| {
                op.pointer("/responses/500/content/application~1problem+json/schema/$ref")
                    .and_then(|r| r.as_str())
                    .and_then(|r| r.strip_prefix("#/components/schemas/"))
            })
            .expect("every operation declares a 500")
            .to_string();
        let dir = dir.display();
        let spec_path = path.display();
        let error_impl =
            format!("error_type!(wire::{error}, contract::Rejection, contract::ProblemBody);");
        write!(
            modules,
            r#"
pub mod {name} {{
    pub mod wire {{
        include!("{dir}/types.rs");
    }}
    pub mod contract {{
        include!("{dir}/api.rs");
    }}
    {error_impl}
    /// The document the module was generated from.
    pub const SPEC: &str = include_str!("{spec_path}");
    /// The document dropshot emits for the generated trait.
    pub fn emitted() -> String {{
        let api = contract::round_trip_api_mod::stub_api_description()
            .expect("the generated trait describes a valid API");
        contract::openapi_document(&api).unwrap()
    }}
}}
"#
        )
        .unwrap();
        names.push(name);
    }
    writeln!(
        modules,
        "/// Every document's name, its text and what dropshot emits for it.\npub fn all() -> Vec<(&'static str, &'static str, String)> {{ vec![{}] }}",
        names
            .iter()
            .map(|n| format!("(\"{n}\", {n}::SPEC, {n}::emitted())"))
            .collect::<Vec<_>>()
            .join(", ")
    )
    .unwrap();
    std::fs::write(out_dir.join("specs.rs"), modules).unwrap();
}
