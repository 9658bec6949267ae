//! Generates a module per document in `codegen/tests/specs/`: its wire types, its trait, the
//! document itself, and the dropshot error impls its error schema needs.

use std::fmt::Write;
use std::path::PathBuf;

use leadping_codegen::{Config, HandWritten};

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
            problem_with_headers: "crate::Headed".into(),
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
        let error = spec["components"]["responses"]
            .as_object()
            .and_then(|r| r.keys().next().cloned())
            .unwrap_or_else(|| "Error".into());
        let dir = dir.display();
        let spec_path = path.display();
        let error_impl = if error == "Error" {
            String::new()
        } else {
            format!("error_type!(wire::{error});")
        };
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
        let mut out = Vec::new();
        contract::openapi_definition(&api).write(&mut out).unwrap();
        String::from_utf8(out).unwrap()
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
