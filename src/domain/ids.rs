//! Ids, each its own type, parsed once where it enters: an invitation id from a request's path or
//! an acceptance token, a business and a user id from a bearer token's claims, any of them from
//! a row the store gives back (which only ever took ids that parsed). Past the edge, a business
//! id cannot be passed where an invitation id is meant.

use std::fmt;

/// Implements what every string id has: its text, `Display`, and the way back from the store.
macro_rules! string_id {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// An id the store gives back: it only ever stored ids that parsed.
            pub fn from_stored(s: String) -> Self {
                $name(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// An invitation's id: `inv_` and 32 hex digits as the server issues them, or a seeded name such
/// as `inv_demo_acme`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InvitationId(String);
string_id!(InvitationId);

impl InvitationId {
    /// A new id for a new invitation.
    pub fn generate() -> InvitationId {
        InvitationId(format!("inv_{}", uuid::Uuid::new_v4().simple()))
    }

    /// A client-given id, if the server could have issued it. Anything else is unknown without a
    /// query, which also keeps bytes PostgreSQL's text columns refuse (NUL) away from the store.
    pub fn parse(s: &str) -> Option<InvitationId> {
        let plausible = !s.is_empty()
            && s.len() <= 128
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        plausible.then(|| InvitationId(s.to_string()))
    }
}

/// An id from an identity provider or a seed that is not fit to be one: empty, absurdly long, or
/// with control characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("an id must be 1 to 255 bytes long, without control characters")]
pub struct InvalidId;

/// Identity providers' ids vary (`auth0|5f7c…`, `google-oauth2|…`), so only what no id contains
/// is refused: emptiness, control characters (a NUL would not even reach PostgreSQL's text
/// columns), and absurd lengths.
fn provider_id(s: &str) -> Result<String, InvalidId> {
    if s.is_empty() || s.len() > 255 || s.chars().any(char::is_control) {
        return Err(InvalidId);
    }
    Ok(s.to_string())
}

/// A business's id (a bearer token's `org_id`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BusinessId(String);
string_id!(BusinessId);

impl BusinessId {
    pub fn parse(s: &str) -> Result<BusinessId, InvalidId> {
        provider_id(s).map(BusinessId)
    }
}

/// A user's id (a bearer token's `sub`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);
string_id!(UserId);

impl UserId {
    pub fn parse(s: &str) -> Result<UserId, InvalidId> {
        provider_id(s).map(UserId)
    }

    /// A new id for a member who joined by accepting an invitation.
    pub fn generate() -> UserId {
        UserId(format!("usr_{}", uuid::Uuid::new_v4().simple()))
    }
}

/// An outbox row's id: one email to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OutboxId(pub i64);

impl fmt::Display for OutboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_what_the_server_issues_and_nothing_else() {
        assert!(InvitationId::parse("inv_0123456789abcdef0123456789abcdef").is_some());
        assert!(InvitationId::parse("biz_demo-acme").is_some());
        for bad in ["", "x\0", "inv 1", "inv/1", "inv.1", "é", &"a".repeat(129)] {
            assert!(InvitationId::parse(bad).is_none(), "{bad:?}");
        }
        let issued = InvitationId::generate();
        assert_eq!(InvitationId::parse(issued.as_str()), Some(issued));
    }

    #[test]
    fn provider_ids_pass_and_control_characters_do_not() {
        assert!(UserId::parse("auth0|5f7c8ec7c33c6c004bbafe82").is_ok());
        assert!(BusinessId::parse("org_Zx9 with space").is_ok());
        for bad in ["", "a\0b", "line\nbreak", &"a".repeat(256)] {
            assert_eq!(UserId::parse(bad), Err(InvalidId), "{bad:?}");
            assert_eq!(BusinessId::parse(bad), Err(InvalidId), "{bad:?}");
        }
    }
}
