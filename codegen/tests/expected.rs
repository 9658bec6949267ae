//! The Rust the generator writes for each document in `specs/`, compared with the reviewed
//! output in `expected/`. A change to the generator shows here as a diff of generated code.
//! After a deliberate change: `UPDATE_EXPECTED=1 cargo test -p leadping-codegen --test expected`,
//! then review the diff of `codegen/tests/expected/`.

use std::path::Path;

mod common;

use common::config;
use leadping_codegen::generate;

#[test]
fn generated_code_matches_the_reviewed_output() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let update = std::env::var_os("UPDATE_EXPECTED").is_some();
    let mut specs: Vec<_> = std::fs::read_dir(dir.join("specs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    specs.sort();
    let mut failures = Vec::new();
    for spec in specs {
        let name = spec.file_stem().unwrap().to_str().unwrap().to_string();
        let generated = generate(&std::fs::read_to_string(&spec).unwrap(), &config())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        for (part, code) in [("types", generated.types), ("api", generated.api)] {
            let path = dir.join("expected").join(format!("{name}.{part}.rs"));
            if update {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &code).unwrap();
                continue;
            }
            let expected = std::fs::read_to_string(&path).unwrap_or_default();
            if expected != code {
                let diff = similar::TextDiff::from_lines(&expected, &code)
                    .unified_diff()
                    .header(&path.display().to_string(), "generated")
                    .to_string();
                failures.push(diff);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "the generated code differs from the reviewed output (UPDATE_EXPECTED=1 to accept):\n{}",
        failures.join("\n")
    );
}
