//! `Idempotency-Key` on create and resend: the same key from the same caller (business and user)
//! replays the first response for [`IDEMPOTENCY_WINDOW`]; the same key with a different request
//! is refused. The record is written in the operation's own transaction, so a commit and its
//! record never part.
//!
//! A replay answers only what the caller may still do: each operation asks for it after
//! authentication, membership and its role rules, never before (a key is not a credential).

use std::ops::RangeInclusive;

use chrono::{DateTime, Duration, Utc};

use crate::store::{IdempotencyScope, StoreError, StoredResponse, Tx};

/// How long a stored idempotent response is replayed.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::hours(24);

/// An `Idempotency-Key` with the fingerprint of the request it came with.
#[derive(Clone, Debug)]
pub struct Idempotency {
    pub key: String,
    pub request_hash: String,
}

/// An Idempotency-Key outside the contract's bounds (a 400).
#[derive(Debug, thiserror::Error)]
#[error("Idempotency-Key must be {} to {} characters long.", .0.start(), .0.end())]
pub struct InvalidIdempotencyKey(pub RangeInclusive<usize>);

impl Idempotency {
    /// The key of a request to `operation` that says `parts` besides (its body, its path);
    /// `length` is the contract's bounds on the key, in characters (the generated parameter
    /// struct states them: dropshot does not check them on a header).
    pub fn new(
        key: String,
        length: RangeInclusive<usize>,
        operation: &str,
        parts: &[&str],
    ) -> Result<Idempotency, InvalidIdempotencyKey> {
        if !length.contains(&key.chars().count()) {
            return Err(InvalidIdempotencyKey(length));
        }
        let mut material = String::from(operation);
        for p in parts {
            material.push('\n');
            material.push_str(p);
        }
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, material.as_bytes());
        Ok(Idempotency {
            key,
            request_hash: hex::encode(digest.as_ref()),
        })
    }

    /// Keeps `body` as the response to replay for this key.
    pub(super) fn save(
        &self,
        tx: &mut Tx<'_>,
        scope: &IdempotencyScope,
        body: String,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let stored = StoredResponse {
            request_hash: self.request_hash.clone(),
            status: 200,
            body,
        };
        tx.save_idempotent_response(scope, &self.key, &stored, now)
    }
}

/// The response to replay for a request's key, if the store holds one from this caller within
/// the window; `reused` when the key came with another request. Create and resend ask this once
/// the caller is known to be allowed the request (module docs).
pub(super) fn replayed<B, E>(
    idem: Option<&Idempotency>,
    tx: &mut Tx<'_>,
    scope: &IdempotencyScope,
    now: DateTime<Utc>,
    reused: E,
) -> Result<Option<B>, E>
where
    B: serde::de::DeserializeOwned,
    E: From<super::Unexpected>,
{
    let Some(idem) = idem else { return Ok(None) };
    let stored = tx
        .idempotent_response(scope, &idem.key, now - IDEMPOTENCY_WINDOW)
        .map_err(|e| E::from(e.into()))?;
    match stored {
        None => Ok(None),
        Some(stored) if stored.request_hash != idem.request_hash => Err(reused),
        Some(stored) => serde_json::from_str(&stored.body)
            .map(Some)
            .map_err(|e| E::from(e.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_bounded_in_characters_and_fingerprint_the_whole_request() {
        let key = |k: String, op, parts: &[&str]| Idempotency::new(k, 1..=255, op, parts);
        assert!(key(String::new(), "op", &[]).is_err());
        assert!(key("é".repeat(255), "op", &[]).is_ok());
        let too_long = key("k".repeat(256), "op", &[]).unwrap_err();
        assert_eq!(
            too_long.to_string(),
            "Idempotency-Key must be 1 to 255 characters long."
        );
        let a = key("k".into(), "op", &["a@x.com", "Agent"]).unwrap();
        let b = key("k".into(), "op", &["a@x.com", "Admin"]).unwrap();
        let c = key("k".into(), "other", &["a@x.com", "Agent"]).unwrap();
        assert_ne!(a.request_hash, b.request_hash);
        assert_ne!(a.request_hash, c.request_hash);
        let again = key("k".into(), "op", &["a@x.com", "Agent"]).unwrap();
        assert_eq!(a.request_hash, again.request_hash);
    }
}
