//! What the contract promises its consumers beyond its shapes: security on the right
//! operations, docs on every operation, a problem catalogue that matches the server's, and a
//! realistic example on every schema (and a problem of its own status on every error response)
//! that the server's own types read and write back.

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

#[test]
fn each_error_response_names_the_problem_types_it_carries() {
    let spec = spec();
    for (path, method, op) in operations(&spec) {
        let responses = op["responses"].as_object().unwrap();
        for (code, response) in responses.iter().filter(|(c, _)| !c.starts_with('2')) {
            let named = problem_types_in(response["description"].as_str().unwrap());
            assert!(
                !named.is_empty(),
                "{method} {path}: the {code} response names no problem type"
            );
            for slug in &named {
                let kind = ProblemType::ALL
                    .iter()
                    .find(|k| k.slug() == slug)
                    .unwrap_or_else(|| panic!("{method} {path} {code}: unknown type {slug}"));
                assert_eq!(
                    kind.status().as_u16().to_string(),
                    *code,
                    "{method} {path}: {slug} is named under {code}"
                );
            }
        }
        // What the operation's description lists is declared, under its status.
        for slug in problem_types_in(op["description"].as_str().unwrap()) {
            let kind = ProblemType::ALL.iter().find(|k| k.slug() == slug).unwrap();
            let code = kind.status().as_u16().to_string();
            let under = responses
                .get(&code)
                .map(|r| problem_types_in(r["description"].as_str().unwrap()));
            assert!(
                under.is_some_and(|u| u.contains(&slug)),
                "{method} {path}: {slug} is listed but not named under a declared {code}"
            );
        }
    }
}

/// `example` at `name`, read by the server's own wire type and written back: every field present
/// under its contract name, each of the right type, nothing the type does not know.
fn round_trips<T: serde::de::DeserializeOwned + serde::Serialize>(
    name: &str,
    example: &Value,
) -> Result<(), String> {
    let read: T = serde_json::from_value(example.clone())
        .map_err(|e| format!("{name}'s example does not read as {name}: {e}"))?;
    let written = serde_json::to_value(&read).unwrap();
    if &written == example {
        Ok(())
    } else {
        Err(format!(
            "{name}'s example is not what {name} writes back:\n  example: {example}\n  written: {written}"
        ))
    }
}

/// The strings a placeholder example would hold.
fn placeholders(value: &Value, at: &str, found: &mut Vec<String>) {
    match value {
        Value::String(s) if matches!(s.as_str(), "string" | "" | "example") => {
            found.push(format!("{at}: {s:?}"))
        }
        Value::Object(o) => o
            .iter()
            .for_each(|(k, v)| placeholders(v, &format!("{at}/{k}"), found)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, v)| placeholders(v, &format!("{at}/{i}"), found)),
        _ => {}
    }
}

#[test]
fn every_schema_has_a_realistic_example_its_wire_type_reads_and_writes_back() {
    use leadping_invitations::wire;
    type Check = fn(&str, &Value) -> Result<(), String>;
    let checks: [(&str, Check); 7] = [
        (
            "AcceptBusinessInvitationRequest",
            round_trips::<wire::AcceptBusinessInvitationRequest>,
        ),
        (
            "BusinessInvitation",
            round_trips::<wire::BusinessInvitation>,
        ),
        (
            "BusinessInvitationRole",
            round_trips::<wire::BusinessInvitationRole>,
        ),
        (
            "BusinessInvitationRow",
            round_trips::<wire::BusinessInvitationRow>,
        ),
        (
            "BusinessInvitationStatus",
            round_trips::<wire::BusinessInvitationStatus>,
        ),
        (
            "CreateBusinessInvitationRequest",
            round_trips::<wire::CreateBusinessInvitationRequest>,
        ),
        ("Problem", round_trips::<wire::Problem>),
    ];
    let spec = spec();
    let schemas = spec["components"]["schemas"].as_object().unwrap();
    let checked: BTreeSet<&str> = checks.iter().map(|(name, _)| *name).collect();
    let named: BTreeSet<&str> = schemas.keys().map(String::as_str).collect();
    assert_eq!(
        named, checked,
        "every named schema has its example checked here"
    );
    let mut failures = Vec::new();
    for (name, check) in checks {
        let example = &schemas[name]["example"];
        if example.is_null() {
            failures.push(format!("{name} has no example"));
            continue;
        }
        placeholders(example, name, &mut failures);
        if let Err(e) = check(name, example) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_error_response_has_an_example_problem_of_its_own_status() {
    let spec = spec();
    let mut failures = Vec::new();
    for (path, method, op) in operations(&spec) {
        for (code, response) in op["responses"].as_object().unwrap() {
            if code.starts_with('2') {
                continue;
            }
            let at = format!("{method} {path} {code}");
            let example = &response["content"]["application/problem+json"]["example"];
            if example.is_null() {
                failures.push(format!("{at}: no example"));
                continue;
            }
            placeholders(example, &at, &mut failures);
            if let Err(e) = round_trips::<leadping_invitations::wire::Problem>(&at, example) {
                failures.push(e);
            }
            let named = problem_types_in(response["description"].as_str().unwrap());
            let slug = example["type"]
                .as_str()
                .and_then(|t| t.strip_prefix(PROBLEM_TYPE_BASE))
                .unwrap_or_default();
            let kind = ProblemType::ALL.iter().find(|k| k.slug() == slug);
            match kind {
                Some(kind) if named.contains(slug) => {
                    if example["status"] != code.parse::<u16>().unwrap()
                        || example["title"] != kind.title()
                    {
                        failures.push(format!(
                            "{at}: the example's status or title is not its type's"
                        ));
                    }
                }
                _ => failures.push(format!(
                    "{at}: the example's type {slug:?} is not one the response names"
                )),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
