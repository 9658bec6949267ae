//! Build failures that point at the construct in `openapi.json` that caused them.

use std::fmt;

/// An unsupported or inconsistent construct, with the JSON pointer of where it is and what to
/// write instead.
#[derive(Debug)]
pub struct GenError {
    pointer: String,
    message: String,
    hint: String,
}

impl GenError {
    pub fn new(pointer: &str, message: impl Into<String>, hint: impl Into<String>) -> Self {
        GenError {
            pointer: pointer.to_string(),
            message: message.into(),
            hint: hint.into(),
        }
    }
}

impl GenError {
    /// The JSON pointer of the construct in the document (`""` for the whole document).
    pub fn pointer(&self) -> &str {
        &self.pointer
    }

    /// What is wrong with it.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// What to write instead: the form dropshot emits, where there is one.
    pub fn hint(&self) -> &str {
        &self.hint
    }
}

impl fmt::Display for GenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "  at openapi.json#{}\n  {}\n  write instead: {}",
            self.pointer, self.message, self.hint
        )
    }
}

/// Appends a key to a JSON pointer, escaping it as RFC 6901 says.
pub fn ptr(base: &str, key: impl fmt::Display) -> String {
    format!(
        "{base}/{}",
        key.to_string().replace('~', "~0").replace('/', "~1")
    )
}

/// The keys of an object, refused when one is outside `allowed`.
pub fn only_keys(
    value: &serde_json::Value,
    pointer: &str,
    allowed: &[&str],
    what: &str,
) -> Result<(), GenError> {
    let obj = value.as_object().ok_or_else(|| {
        GenError::new(
            pointer,
            format!("{what} must be a JSON object"),
            "an object",
        )
    })?;
    for key in obj.keys() {
        if !allowed.contains(&key.as_str()) {
            return Err(GenError::new(
                &ptr(pointer, key),
                format!(
                    "`{key}` is not supported in {what}: the generated code could not honour it and the round trip would not be exact"
                ),
                format!("only these keys: {}", allowed.join(", ")),
            ));
        }
    }
    Ok(())
}

/// A string member, or an error naming it.
pub fn str_at<'a>(
    value: &'a serde_json::Value,
    pointer: &str,
    key: &str,
) -> Result<&'a str, GenError> {
    value.get(key).and_then(|v| v.as_str()).ok_or_else(|| {
        GenError::new(
            &ptr(pointer, key),
            format!("`{key}` must be a string"),
            format!("a string `{key}`"),
        )
    })
}
