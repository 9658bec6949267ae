//! Every document the generator accepts in `codegen/tests/specs/` comes back from dropshot as it
//! went in.

use serde_json::Value;

/// The JSON pointers at which two documents differ.
fn differences(expected: &Value, actual: &Value, at: &str, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                match a.get(k) {
                    Some(av) => differences(ev, av, &p, out),
                    None => out.push(format!("{p}: missing from what dropshot emits")),
                }
            }
            for k in a.keys().filter(|k| !e.contains_key(*k)) {
                out.push(format!(
                    "{at}/{k}: emitted by dropshot, not in the document: {}",
                    a[k]
                ));
            }
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                differences(ev, av, &format!("{at}/{i}"), out);
            }
        }
        (e, a) if e != a => out.push(format!("{at}: the document says {e}, dropshot emits {a}")),
        _ => {}
    }
}

#[test]
fn every_accepted_document_round_trips_exactly() {
    let mut failures = Vec::new();
    for (name, spec, emitted) in leadping_codegen_roundtrip::all() {
        let mut expected: Value = serde_json::from_str(spec).unwrap();
        // The one thing no code can say: how a security scheme works (which extractor answers
        // for it is the generator's configuration). The server's drift check allows the same.
        if let Some(c) = expected
            .get_mut("components")
            .and_then(Value::as_object_mut)
        {
            c.shift_remove("securitySchemes");
        }
        let actual: Value = serde_json::from_str(&emitted).unwrap();
        let mut diffs = Vec::new();
        differences(&expected, &actual, "", &mut diffs);
        if !diffs.is_empty() {
            failures.push(format!("{name}.json:\n  {}", diffs.join("\n  ")));
        } else if emitted != serde_json::to_string_pretty(&expected).unwrap() + "\n"
            || spec
                != serde_json::to_string_pretty(&serde_json::from_str::<Value>(spec).unwrap())
                    .unwrap()
                    + "\n"
        {
            // Same JSON, other text: the key order or the layout is not the one dropshot writes.
            failures.push(format!(
                "{name}.json: not in the form dropshot writes (key order or layout); dropshot writes:\n{emitted}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
