//! The breaking-change gate: compares two versions of an OpenAPI document with Oxide's `drift`
//! and judges whether clients written against the old one keep working against the new one. A
//! change that breaks them passes only with a new major `info.version`.
//!
//! `drift` classifies each change by whom it breaks. Old clients meeting a new server break on
//! a backward-incompatible or incompatible change (a changed parameter type, say). Forward-
//! incompatible changes (a new client meeting an old server) and trivial ones pass.
//!
//! drift 0.2.0 leaves changes to an object's properties and to a string enum unclassified.
//! `scripts/breaking_changes.sh` runs `openapi-diff` beside this gate for the properties (a
//! removed response field is breaking, an added optional one is not), but openapi-diff 0.24.1
//! does not see an enum behind a `$ref` at all, so enums are judged here ([`enum_changes`]): a
//! value removed from an enum that requests carry breaks old clients that send it, and a value
//! added to an enum that responses carry breaks old generated clients whose enum cannot hold it.

use drift::{ChangeClass, ChangeComparison};
use serde_json::Value;

/// What the gate found between two documents.
#[derive(Debug)]
pub struct Verdict {
    /// Changes that break clients of the old document, one line each.
    pub breaking: Vec<String>,
    /// Changes that do not, one line each.
    pub compatible: Vec<String>,
    /// Changes drift could not classify, left to openapi-diff (object properties), one each.
    pub unclassified: Vec<String>,
    pub old_version: semver::Version,
    pub new_version: semver::Version,
}

impl Verdict {
    /// Whether the new document's major version is above the old one's.
    pub fn major_bumped(&self) -> bool {
        self.new_version.major > self.old_version.major
    }

    /// Whether the change may land.
    pub fn passes(&self) -> bool {
        self.breaking.is_empty() || self.major_bumped()
    }

    /// A report for people: what changed, and what the gate decided.
    pub fn report(&self) -> String {
        let mut out = format!(
            "info.version {} -> {}\n",
            self.old_version, self.new_version
        );
        for line in &self.breaking {
            out.push_str(&format!("  breaking:   {line}\n"));
        }
        for line in &self.compatible {
            out.push_str(&format!("  compatible: {line}\n"));
        }
        for line in &self.unclassified {
            out.push_str(&format!("  for openapi-diff to judge: {line}\n"));
        }
        out.push_str(if self.breaking.is_empty() {
            "no change breaks existing clients\n"
        } else if self.major_bumped() {
            "breaking changes, with a new major version: allowed\n"
        } else {
            "breaking changes without a new major version: give info.version a new major version, or keep the change compatible\n"
        });
        out
    }
}

fn version(doc: &Value, which: &str) -> anyhow::Result<semver::Version> {
    let v = doc
        .pointer("/info/version")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow::anyhow!("the {which} document has no info.version"))?;
    semver::Version::parse(v)
        .map_err(|e| anyhow::anyhow!("the {which} document's info.version {v:?}: {e}"))
}

/// Compares `old` with `new`.
pub fn judge(old: &Value, new: &Value) -> anyhow::Result<Verdict> {
    let mut breaking = Vec::new();
    let mut compatible = Vec::new();
    let mut unclassified = Vec::new();
    for change in drift::compare(old, new)? {
        let at = change
            .paths
            .first()
            .map(|p| {
                let side = match p.comparison {
                    ChangeComparison::Input => "request",
                    ChangeComparison::Output => "response",
                    ChangeComparison::Structural => "document",
                };
                format!("{} ({side})", p.new)
            })
            .unwrap_or_default();
        for info in change.changes {
            let subpath = if info.new_subpath.is_empty() {
                info.old_subpath.clone()
            } else {
                info.new_subpath.clone()
            };
            let line = format!("{at} {subpath}: {} [{:?}]", info.message, info.class);
            match info.class {
                ChangeClass::BackwardIncompatible if new_error_status(&info.message) => {
                    compatible.push(format!(
                        "{line}: an error status, which an old client fails like any error it does not know"
                    ))
                }
                ChangeClass::BackwardIncompatible | ChangeClass::Incompatible => {
                    breaking.push(line)
                }
                ChangeClass::ForwardIncompatible | ChangeClass::Trivial => compatible.push(line),
                ChangeClass::Unhandled => unclassified.push(line),
            }
        }
    }
    let (enum_breaking, enum_compatible) = enum_changes(old, new);
    breaking.extend(enum_breaking);
    compatible.extend(enum_compatible);
    Ok(Verdict {
        breaking,
        compatible,
        unclassified,
        old_version: version(old, "old")?,
        new_version: version(new, "new")?,
    })
}

/// Whether drift's `message` is an operation gaining an error (4xx or 5xx) response. drift calls
/// any new response code backward-incompatible; this project does not, for error statuses: a
/// client generated from the old document already fails a request answered with a status it
/// does not know (progenitor, openapi-generator and openapi-typescript clients all return or
/// throw an error for one), which is what the new status means too, and any server can answer
/// statuses outside its document (a proxy's 502, a load balancer's 503). A new success status,
/// or a changed body of a known one, still breaks.
fn new_error_status(message: &str) -> bool {
    message
        .strip_prefix("operation added a new response code ")
        .and_then(|code| code.trim().parse::<u16>().ok())
        .is_some_and(|code| (400..600).contains(&code))
}

/// Which way a named schema travels: in requests, in responses, or both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Directions {
    request: bool,
    response: bool,
}

/// The names of the schemas `value` refers to, directly or through other named schemas.
fn referenced(value: &Value, schemas: &serde_json::Map<String, Value>, out: &mut Vec<String>) {
    match value {
        Value::Object(o) => {
            if let Some(name) = o
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
                && !out.iter().any(|n| n == name)
            {
                out.push(name.to_string());
                if let Some(target) = schemas.get(name) {
                    referenced(target, schemas, out);
                }
            }
            o.values().for_each(|v| referenced(v, schemas, out));
        }
        Value::Array(a) => a.iter().for_each(|v| referenced(v, schemas, out)),
        _ => {}
    }
}

/// For each named schema, whether the operations of `doc` send it, receive it, or both.
fn directions(doc: &Value) -> std::collections::HashMap<String, Directions> {
    let empty = serde_json::Map::new();
    let schemas = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut found: std::collections::HashMap<String, Directions> = Default::default();
    let operations = doc
        .get("paths")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|p| p.values())
        .filter_map(Value::as_object)
        .flat_map(|item| item.values());
    for op in operations {
        let mut inputs = Vec::new();
        for key in ["parameters", "requestBody"] {
            if let Some(v) = op.get(key) {
                referenced(v, schemas, &mut inputs);
            }
        }
        let mut outputs = Vec::new();
        if let Some(responses) = op.get("responses") {
            referenced(responses, schemas, &mut outputs);
            // Error responses are shared references: follow them to their schemas too.
            if let Some(refs) = doc.pointer("/components/responses") {
                let mut named = Vec::new();
                referenced(refs, schemas, &mut named);
                outputs.extend(named);
            }
        }
        for name in inputs {
            found.entry(name).or_default().request = true;
        }
        for name in outputs {
            found.entry(name).or_default().response = true;
        }
    }
    found
}

/// The string enums' changes between `old` and `new`: (breaking, compatible), one line each.
pub fn enum_changes(old: &Value, new: &Value) -> (Vec<String>, Vec<String>) {
    let (mut breaking, mut compatible) = (Vec::new(), Vec::new());
    let values = |doc: &Value, name: &str| -> Option<Vec<String>> {
        let e = doc.pointer(&format!("/components/schemas/{name}/enum"))?;
        Some(
            e.as_array()?
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
        )
    };
    let (old_dirs, new_dirs) = (directions(old), directions(new));
    let names = old
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .map(|s| s.keys().cloned().collect::<Vec<_>>())
        .unwrap_or_default();
    for name in names {
        let (Some(before), Some(after)) = (values(old, &name), values(new, &name)) else {
            continue;
        };
        let d_old = old_dirs.get(&name).copied().unwrap_or_default();
        let d_new = new_dirs.get(&name).copied().unwrap_or_default();
        for v in before.iter().filter(|v| !after.contains(v)) {
            let line = format!("#/components/schemas/{name}: enum value {v:?} removed");
            if d_old.request {
                breaking.push(format!("{line} (requests may carry it)"));
            } else {
                compatible.push(line);
            }
        }
        for v in after.iter().filter(|v| !before.contains(v)) {
            let line = format!("#/components/schemas/{name}: enum value {v:?} added");
            if d_new.response {
                breaking.push(format!(
                    "{line} (responses may carry it; old clients' enums cannot hold it)"
                ));
            } else {
                compatible.push(line);
            }
        }
    }
    (breaking, compatible)
}
