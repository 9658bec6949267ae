//! The drift check: the generated trait, turned back into OpenAPI by dropshot, must be
//! `openapi.json` byte for byte, except for what dropshot cannot express.

use serde_json::Value;
use similar::TextDiff;

/// Everything `openapi.json` may say that the generated trait cannot: the only allowed
/// differences, each with why. A pattern is a JSON pointer where `*` matches any one key; a
/// pattern starting with `**/` removes that key at any depth (except as a property name).
pub const ALLOWED_DIFFERENCES: &[(&str, &str)] = &[
    ("/servers", "dropshot emits no servers"),
    (
        "/components/securitySchemes",
        "dropshot emits no security schemes (which extractor answers for each is build.rs's configuration)",
    ),
    ("**/example", "dropshot emits no examples"),
    ("**/examples", "dropshot emits no examples"),
];

const SPEC: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json"));

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap() + "\n"
}

/// `openapi.json` without the allowed differences.
pub fn spec_without_allowed_differences() -> Value {
    let mut spec: Value = serde_json::from_str(SPEC).expect("openapi.json is JSON");
    for (pattern, _) in ALLOWED_DIFFERENCES {
        if let Some(key) = pattern.strip_prefix("**/") {
            remove_everywhere(&mut spec, key, false);
        } else {
            let segments: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
            remove_at(&mut spec, &segments);
        }
    }
    spec
}

fn remove_at(value: &mut Value, segments: &[&str]) {
    let Some(obj) = value.as_object_mut() else {
        return;
    };
    match segments {
        [] => {}
        [last] if *last == "*" => obj.clear(),
        [last] => {
            obj.shift_remove(*last);
        }
        [first, rest @ ..] if *first == "*" => obj.values_mut().for_each(|v| remove_at(v, rest)),
        [first, rest @ ..] => {
            if let Some(v) = obj.get_mut(*first) {
                remove_at(v, rest)
            }
        }
    }
}

fn remove_everywhere(value: &mut Value, key: &str, is_property_map: bool) {
    match value {
        Value::Object(obj) => {
            if !is_property_map {
                obj.shift_remove(key);
            }
            for (k, v) in obj.iter_mut() {
                remove_everywhere(v, key, k == "properties" && !is_property_map);
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| remove_everywhere(v, key, false)),
        _ => {}
    }
}

/// The JSON pointers at which two documents differ, shallowest first.
fn differing_pointers(expected: &Value, actual: &Value, at: &str, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                match a.get(k) {
                    Some(av) => differing_pointers(ev, av, &p, out),
                    None => out.push(format!("{p}: only in openapi.json")),
                }
            }
            for k in a.keys().filter(|k| !e.contains_key(*k)) {
                out.push(format!(
                    "{at}/{}: only in the generated document",
                    k.replace('~', "~0").replace('/', "~1")
                ));
            }
            if out.is_empty() && e.keys().ne(a.keys()) {
                out.push(format!("{at}: same keys in a different order"));
            }
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                differing_pointers(ev, av, &format!("{at}/{i}"), out);
            }
        }
        (e, a) if e != a => out.push(format!("{at}: {e} in openapi.json, {a} generated")),
        _ => {}
    }
}

fn readable_diff(expected: &str, actual: &str) -> String {
    TextDiff::from_lines(expected, actual)
        .unified_diff()
        .context_radius(4)
        .header(
            "openapi.json (without the allowed differences)",
            "generated trait (stub_api_description)",
        )
        .to_string()
}

#[test]
fn generated_trait_turns_back_into_openapi_json() {
    let expected = pretty(&spec_without_allowed_differences());
    let actual = leadping_invitations::generated_openapi();
    if expected != actual {
        let mut pointers = Vec::new();
        let generated: Value = serde_json::from_str(&actual).unwrap();
        differing_pointers(
            &spec_without_allowed_differences(),
            &generated,
            "",
            &mut pointers,
        );
        panic!(
            "the API the code implements has drifted from openapi.json.\n\
             Differences:\n  {}\n\n\
             Lines with '-' are in openapi.json, lines with '+' are what the generated trait and the \
             hand-written wire types (src/wire.rs) produce. Allowed differences: {}.\n\n{}",
            pointers.join("\n  "),
            ALLOWED_DIFFERENCES
                .iter()
                .map(|(p, _)| *p)
                .collect::<Vec<_>>()
                .join(", "),
            readable_diff(&expected, &actual)
        );
    }
}

#[test]
fn openapi_json_is_in_canonical_form() {
    // Byte-for-byte comparison means something only if the file itself is laid out as dropshot
    // lays JSON out (two-space indent, trailing newline); this says where it is not.
    let canonical = pretty(&serde_json::from_str(SPEC).unwrap());
    assert!(
        SPEC == canonical,
        "openapi.json is not in canonical layout (2-space indent, one key per line, trailing newline):\n{}",
        readable_diff(&canonical, SPEC)
    );
}

#[test]
fn allowed_differences_are_things_dropshot_really_cannot_express() {
    let generated: Value =
        serde_json::from_str(&leadping_invitations::generated_openapi()).unwrap();
    let mut stripped = generated.clone();
    for (pattern, _) in ALLOWED_DIFFERENCES {
        if let Some(key) = pattern.strip_prefix("**/") {
            remove_everywhere(&mut stripped, key, false);
        } else {
            remove_at(
                &mut stripped,
                &pattern
                    .trim_start_matches('/')
                    .split('/')
                    .collect::<Vec<_>>(),
            );
        }
    }
    assert_eq!(
        stripped, generated,
        "dropshot emitted something listed as an allowed difference; take it off the list"
    );
}

#[test]
fn stripping_removes_exactly_the_listed_parts() {
    let mut v: Value = serde_json::json!({
        "servers": [{"url": "x"}],
        "paths": {"/a": {"get": {"security": [], "summary": "s"}}},
        "components": {"schemas": {"S": {"properties": {"example": {"type": "string", "example": "e"}}}}}
    });
    remove_at(&mut v, &["servers"]);
    remove_at(&mut v, &["paths", "*", "*", "security"]);
    remove_everywhere(&mut v, "example", false);
    assert_eq!(
        v,
        serde_json::json!({
            "paths": {"/a": {"get": {"summary": "s"}}},
            "components": {"schemas": {"S": {"properties": {"example": {"type": "string"}}}}}
        })
    );
}

#[test]
fn differences_are_named_by_json_pointer() {
    let expected = serde_json::json!({"a": {"b/c": 1, "d": [1, 2]}, "gone": true});
    let actual = serde_json::json!({"a": {"b/c": 2, "d": [1, 3]}, "new": true});
    let mut out = Vec::new();
    differing_pointers(&expected, &actual, "", &mut out);
    assert_eq!(
        out,
        vec![
            "/a/b~1c: 1 in openapi.json, 2 generated",
            "/a/d/1: 2 in openapi.json, 3 generated",
            "/gone: only in openapi.json",
            "/new: only in the generated document",
        ]
    );
}
