//! The wire types: every type that crosses HTTP in a request or response body.
//!
//! Most are generated from `components/schemas` of `openapi.json` (by `build.rs`, through the
//! `codegen` crate) and re-exported here. The constrained strings below are written by hand,
//! because schemars derives a `#[serde(transparent)]` newtype's schema from its inner type and
//! drops `pattern` and `format`; each has a manual `JsonSchema`, and `build.rs` points the
//! generator at it by its type and format. The round-trip test is what keeps each of them
//! faithful to `openapi.json`. Mapping between these and the domain is `api::mapping`'s.

/// The generated types of `components/schemas`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/types.rs"));
}

pub use generated::*;

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use schemars::r#gen::SchemaGenerator;
use schemars::schema::{InstanceType, Schema, SchemaObject, StringValidation};
use serde::{Deserialize, Serialize};

/// A signed 64-bit integer carried as a decimal string, as Leadping's business-era API carries
/// `licenseQuantity`: no sign on zero, no leading zeros, no `+`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Int64String(i64);

impl Int64String {
    /// The pattern the contract declares for these strings.
    pub const PATTERN: &'static str = r"^-?(?:0|[1-9]\d*)$";

    pub const fn new(value: i64) -> Self {
        Int64String(value)
    }

    pub const fn get(self) -> i64 {
        self.0
    }
}

/// Why a string is not an [`Int64String`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Int64StringError {
    #[error("{0:?} is not a decimal integer without sign on zero, leading zeros or '+'")]
    Malformed(String),
    #[error("{0:?} does not fit in a signed 64-bit integer")]
    OutOfRange(String),
}

impl FromStr for Int64String {
    type Err = Int64StringError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Exactly the contract's pattern; `i64::from_str` alone would also take "+1" and "007".
        let digits = s.strip_prefix('-').unwrap_or(s);
        let well_formed = match digits.as_bytes() {
            [b'0'] => !s.starts_with('-'),
            [first, rest @ ..] => {
                (b'1'..=b'9').contains(first) && rest.iter().all(u8::is_ascii_digit)
            }
            [] => false,
        };
        if !well_formed {
            return Err(Int64StringError::Malformed(s.to_string()));
        }
        s.parse()
            .map(Int64String)
            .map_err(|_| Int64StringError::OutOfRange(s.to_string()))
    }
}

impl TryFrom<String> for Int64String {
    type Error = Int64StringError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Int64String> for String {
    fn from(v: Int64String) -> String {
        v.0.to_string()
    }
}

impl From<i64> for Int64String {
    fn from(v: i64) -> Self {
        Int64String(v)
    }
}

impl fmt::Display for Int64String {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl JsonSchema for Int64String {
    fn is_referenceable() -> bool {
        // Inline, as the contract writes it on the property.
        false
    }

    fn schema_name() -> String {
        "Int64String".to_string()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        SchemaObject {
            instance_type: Some(InstanceType::String.into()),
            format: Some("int64".to_string()),
            string: Some(Box::new(StringValidation {
                pattern: Some(Self::PATTERN.to_string()),
                ..Default::default()
            })),
            ..Default::default()
        }
        .into()
    }
}

/// A person's name as the contract carries it (format `person-name`): at most 100 characters,
/// none of them control characters. Checked when the request body is parsed, so a bad name is a
/// 400 like any other malformed body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PersonName(String);

impl PersonName {
    /// What `pattern` says: no character in Unicode's Cc category (`char::is_control`).
    pub const PATTERN: &'static str = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$";
    /// The contract's `maxLength` of a name, from the generated request type (first and last
    /// names share it; a test holds them to that).
    pub const MAX_CHARS: u32 = AcceptBusinessInvitationRequest::FIRST_NAME_MAX_LENGTH as u32;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PersonName {
    type Error = &'static str;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        check_name(&s).map(|()| PersonName(s))
    }
}

/// What [`PersonName`] allows: at most [`PersonName::MAX_CHARS`] characters (what the round trip
/// holds to the contract's `maxLength`), none of them control characters (what PostgreSQL's text
/// columns and log lines can hold).
fn check_name(value: &str) -> Result<(), &'static str> {
    if value.chars().count() > PersonName::MAX_CHARS as usize {
        Err("a name may have at most 100 characters")
    } else if value.chars().any(char::is_control) {
        Err("a name may not contain control characters")
    } else {
        Ok(())
    }
}

impl From<PersonName> for String {
    fn from(v: PersonName) -> String {
        v.0
    }
}

impl JsonSchema for PersonName {
    fn is_referenceable() -> bool {
        false
    }

    fn schema_name() -> String {
        "PersonName".to_string()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        SchemaObject {
            instance_type: Some(InstanceType::String.into()),
            format: Some("person-name".to_string()),
            string: Some(Box::new(StringValidation {
                max_length: Some(Self::MAX_CHARS),
                pattern: Some(Self::PATTERN.to_string()),
                ..Default::default()
            })),
            ..Default::default()
        }
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exactly_what_the_pattern_allows() {
        for ok in [
            "0",
            "7",
            "-7",
            "1234567890",
            "9223372036854775807",
            "-9223372036854775808",
        ] {
            assert_eq!(ok.parse::<Int64String>().unwrap().to_string(), ok);
        }
        for bad in ["", "-", "-0", "+1", "007", "1.0", " 1", "1e3", "0x10"] {
            assert!(
                matches!(
                    bad.parse::<Int64String>(),
                    Err(Int64StringError::Malformed(_))
                ),
                "{bad:?} accepted"
            );
        }
        assert!(matches!(
            "9223372036854775808".parse::<Int64String>(),
            Err(Int64StringError::OutOfRange(_))
        ));
    }

    #[test]
    fn travels_as_a_json_string() {
        let v: Int64String = serde_json::from_str("\"42\"").unwrap();
        assert_eq!(v.get(), 42);
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"42\"");
        assert!(serde_json::from_str::<Int64String>("42").is_err());
        assert!(serde_json::from_str::<Int64String>("\"042\"").is_err());
    }

    #[test]
    fn names_are_bounded_and_printable() {
        assert_eq!(check_name("Zoë O'Neil-Smith"), Ok(()));
        assert_eq!(check_name(&"é".repeat(100)), Ok(()));
        assert!(check_name(&"a".repeat(101)).is_err());
        assert_eq!(
            check_name("a\u{0}b"),
            Err("a name may not contain control characters")
        );
        assert!(check_name("line\nbreak").is_err());
        assert!(check_name("c1\u{85}control").is_err());
    }

    #[test]
    fn first_and_last_names_share_one_bound() {
        assert_eq!(
            AcceptBusinessInvitationRequest::FIRST_NAME_MAX_LENGTH,
            AcceptBusinessInvitationRequest::LAST_NAME_MAX_LENGTH
        );
    }

    #[test]
    fn the_length_refusal_names_the_bound_the_contract_holds() {
        let too_long = "a".repeat(PersonName::MAX_CHARS as usize + 1);
        let message = check_name(&too_long).unwrap_err();
        assert!(
            message.contains(&format!("at most {} characters", PersonName::MAX_CHARS)),
            "{message}"
        );
    }

    #[test]
    fn person_names_parse_exactly_what_the_contract_allows() {
        let parse = |json: &str| serde_json::from_str::<PersonName>(json);
        assert_eq!(parse(r#""Zoë O'Neil""#).unwrap().as_str(), "Zoë O'Neil");
        assert!(parse(&format!(r#""{}""#, "é".repeat(100))).is_ok());
        assert!(parse(&format!(r#""{}""#, "é".repeat(101))).is_err());
        for bad in [r#""a\u0000b""#, r#""a\nb""#, r#""a\u0085b""#, r#""\u007f""#] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
