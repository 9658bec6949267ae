//! The gate on real changes to this project's own contract: each kind of break is caught, an
//! additive change passes, and a new major version lets a break through.

use leadping_contract_gate::judge;
use serde_json::{Value, json};

const CONTRACT: &str = include_str!("../../openapi.json");
const RESEND: &str = "/paths/~1businesses~1me~1invitations~1{invitationId}~1resend/post";

fn contract() -> Value {
    serde_json::from_str(CONTRACT).unwrap()
}

fn changed(mutate: impl FnOnce(&mut Value)) -> Value {
    let mut doc = contract();
    mutate(&mut doc);
    doc
}

fn assert_breaks(new: &Value, what: &str) {
    let verdict = judge(&contract(), new).unwrap();
    assert!(
        !verdict.breaking.is_empty(),
        "{what} not caught:\n{}",
        verdict.report()
    );
    assert!(!verdict.passes(), "{what} passed:\n{}", verdict.report());
}

#[test]
fn the_contract_against_itself_changes_nothing() {
    let verdict = judge(&contract(), &contract()).unwrap();
    assert!(
        verdict.breaking.is_empty()
            && verdict.compatible.is_empty()
            && verdict.unclassified.is_empty(),
        "{}",
        verdict.report()
    );
    assert!(verdict.passes());
}

#[test]
fn a_removed_response_field_is_left_to_openapi_diff_and_reported() {
    let new = changed(|d| {
        let s = d
            .pointer_mut("/components/schemas/BusinessInvitation")
            .unwrap();
        s["properties"]
            .as_object_mut()
            .unwrap()
            .shift_remove("businessName");
        let required = s["required"].as_array_mut().unwrap();
        required.retain(|r| r != "businessName");
    });
    // drift 0.2.0 does not classify property changes; scripts/breaking_changes.sh has
    // openapi-diff decide, and its self-test shows that it does. Here: it is reported.
    let verdict = judge(&contract(), &new).unwrap();
    assert!(
        verdict
            .unclassified
            .iter()
            .any(|l| l.contains("BusinessInvitation") && l.contains("properties")),
        "{}",
        verdict.report()
    );
}

#[test]
fn a_removed_enum_value_is_caught() {
    let new = changed(|d| {
        let e = d
            .pointer_mut("/components/schemas/BusinessInvitationRole/enum")
            .unwrap();
        e.as_array_mut().unwrap().retain(|v| v != "Agent");
    });
    assert_breaks(&new, "a removed enum value");
}

#[test]
fn a_changed_parameter_type_is_caught() {
    let new = changed(|d| {
        let schema = d
            .pointer_mut(&format!("{RESEND}/parameters/0/schema"))
            .unwrap();
        *schema = json!({"type": "integer", "format": "int64"});
    });
    assert_breaks(&new, "a changed path-parameter type");
}

#[test]
fn an_enum_value_added_to_a_response_is_caught_and_one_added_to_a_request_only_is_not() {
    let new = changed(|d| {
        d.pointer_mut("/components/schemas/BusinessInvitationStatus/enum")
            .unwrap()
            .as_array_mut()
            .unwrap()
            .push(json!("Bounced"));
    });
    assert_breaks(&new, "an enum value added to a response");
    let (breaking, compatible) = leadping_contract_gate::enum_changes(&new, &contract());
    assert!(breaking.is_empty(), "{breaking:?}");
    assert_eq!(
        compatible.len(),
        1,
        "removing it from a response only is compatible"
    );
}

/// A new error status is compatible (an old client fails such a request like any error it does
/// not know); a new success status is not.
#[test]
fn a_new_error_status_passes_and_a_new_success_status_does_not() {
    let with = |code: &str| {
        changed(|d| {
            let responses = d
                .pointer_mut(&format!("{RESEND}/responses"))
                .unwrap()
                .as_object_mut()
                .unwrap();
            let like = if code.starts_with('2') { "200" } else { "429" };
            let response = responses[like].clone();
            responses.insert(code.to_string(), response);
        })
    };
    let verdict = judge(&contract(), &with("408")).unwrap();
    assert!(verdict.breaking.is_empty(), "{}", verdict.report());
    assert!(
        verdict.compatible.iter().any(|l| l.contains("408")),
        "{}",
        verdict.report()
    );
    assert_breaks(&with("202"), "a new success status");
}

#[test]
fn an_additive_change_passes() {
    let new = changed(|d| {
        let s = d
            .pointer_mut("/components/schemas/BusinessInvitation/properties")
            .unwrap();
        s.as_object_mut().unwrap().insert(
            "invitedBy".into(),
            json!({"nullable": true, "description": "Who sent the invitation.", "type": "string"}),
        );
        d["info"]["version"] = json!("0.2.0");
    });
    let verdict = judge(&contract(), &new).unwrap();
    assert!(verdict.breaking.is_empty(), "{}", verdict.report());
    assert!(verdict.passes());
}

#[test]
fn a_break_with_a_new_major_version_passes() {
    let old = contract();
    let major = semver::Version::parse(old["info"]["version"].as_str().unwrap())
        .unwrap()
        .major;
    let new = changed(|d| {
        let e = d
            .pointer_mut("/components/schemas/BusinessInvitationRole/enum")
            .unwrap();
        e.as_array_mut().unwrap().retain(|v| v != "Agent");
        d["info"]["version"] = json!(format!("{}.0.0", major + 1));
    });
    let verdict = judge(&old, &new).unwrap();
    assert!(!verdict.breaking.is_empty());
    assert!(
        verdict.major_bumped() && verdict.passes(),
        "{}",
        verdict.report()
    );
}
