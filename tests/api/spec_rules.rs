//! What the contract promises its consumers beyond its shapes: security on the right
//! operations, docs on every operation, and a problem catalogue that matches the server's.

use std::collections::BTreeSet;

use leadping_invitations::problem::{PROBLEM_TYPE_BASE, ProblemType};
use serde_json::Value;

fn spec() -> Value {
    serde_json::from_str(leadping_invitations::OPENAPI_JSON).unwrap()
}

fn operations(spec: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            ops.push((path.clone(), method.clone(), op.clone()));
        }
    }
    ops
}

#[test]
fn bearer_auth_guards_every_operation_but_the_token_ones() {
    let spec = spec();
    let scheme = &spec["components"]["securitySchemes"]["bearerAuth"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    assert_eq!(scheme["bearerFormat"], "JWT");
    for (path, method, op) in operations(&spec) {
        let token_operation = path.starts_with("/businesses/invitations/");
        let expected = if token_operation {
            serde_json::json!([])
        } else {
            serde_json::json!([{"bearerAuth": []}])
        };
        assert_eq!(op["security"], expected, "{method} {path}");
    }
}

#[test]
fn every_operation_has_an_id_a_tag_a_summary_and_a_description() {
    let spec = spec();
    let declared: BTreeSet<&str> = spec["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for (path, method, op) in operations(&spec) {
        assert!(
            op["operationId"].as_str().is_some_and(|s| !s.is_empty()),
            "{method} {path}: operationId"
        );
        assert!(
            op["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{method} {path}: summary"
        );
        assert!(
            op["description"].as_str().is_some_and(|s| s.len() > 40),
            "{method} {path}: description"
        );
        let tags = op["tags"].as_array().unwrap();
        assert_eq!(tags.len(), 1, "{method} {path}: one tag");
        assert!(
            declared.contains(tags[0].as_str().unwrap()),
            "{method} {path}: tag declared at the top level"
        );
    }
}

fn problem_types_in(text: &str) -> BTreeSet<String> {
    text.split('`')
        .filter_map(|s| s.strip_prefix(PROBLEM_TYPE_BASE))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_problem_catalogue_matches_the_server() {
    let spec = spec();
    let catalogue = problem_types_in(spec["info"]["description"].as_str().unwrap());
    let server: BTreeSet<String> = ProblemType::ALL
        .iter()
        .map(|k| k.slug().to_string())
        .collect();
    assert_eq!(
        catalogue, server,
        "info.description's catalogue and problem::ProblemType differ"
    );

    for (path, method, op) in operations(&spec) {
        let listed = problem_types_in(op["description"].as_str().unwrap());
        assert!(!listed.is_empty(), "{method} {path} lists no problem types");
        for slug in &listed {
            let kind = ProblemType::ALL
                .iter()
                .find(|k| k.slug() == slug)
                .unwrap_or_else(|| panic!("{method} {path}: unknown problem type {slug}"));
            let status = kind.status().as_u16().to_string();
            assert!(
                op["description"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("{PROBLEM_TYPE_BASE}{slug}` ({status})")),
                "{method} {path}: {slug} listed with a status other than {status}"
            );
        }
        let guarded = op["security"].as_array().is_some_and(|s| !s.is_empty());
        assert_eq!(
            listed.contains("unauthorized"),
            guarded,
            "{method} {path}: 401 listed exactly when a bearer token is required"
        );
    }
}
