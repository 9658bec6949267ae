//! Acceptance tokens: `<invitation id>.<HMAC-SHA256(server key, id:nonce)>`. Pure apart from
//! randomness; must never import the store, the application layer or the API.
//!
//! The token is derived, never stored: a copy of the database (which holds the nonce but not the
//! key) is not enough to accept an invitation, and resend can send the same token again because
//! it can derive it again. Revealing the invitation id in the token is harmless: ids alone grant
//! nothing, and the MAC is checked in constant time.

use aws_lc_rs::hmac;

use crate::domain::InvitationId;

/// The server key tokens are derived with.
#[derive(Clone)]
pub struct TokenKey(hmac::Key);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    /// A key from secret material (at least 32 bytes).
    pub fn new(secret: &[u8]) -> anyhow::Result<Self> {
        if secret.len() < 32 {
            anyhow::bail!("the token key must be at least 32 bytes long");
        }
        Ok(TokenKey(hmac::Key::new(hmac::HMAC_SHA256, secret)))
    }

    fn message(invitation_id: &InvitationId, nonce: &str) -> String {
        format!("{invitation_id}:{nonce}")
    }

    /// The acceptance token of an invitation.
    pub fn token(&self, invitation_id: &InvitationId, nonce: &str) -> String {
        let tag = hmac::sign(&self.0, Self::message(invitation_id, nonce).as_bytes());
        format!("{invitation_id}.{}", hex::encode(tag.as_ref()))
    }

    /// Whether `token` is the acceptance token of this invitation.
    pub fn verify(&self, token: &str, invitation_id: &InvitationId, nonce: &str) -> bool {
        let Some((id, mac)) = token.split_once('.') else {
            return false;
        };
        let Ok(tag) = hex::decode(mac) else {
            return false;
        };
        id == invitation_id.as_str()
            && hmac::verify(
                &self.0,
                Self::message(invitation_id, nonce).as_bytes(),
                &tag,
            )
            .is_ok()
    }
}

/// The invitation id a token names, if it is shaped like a token at all.
pub fn invitation_id_of(token: &str) -> Option<InvitationId> {
    let (id, mac) = token.split_once('.')?;
    InvitationId::parse(id).filter(|_| mac.len() == 64)
}

/// A fresh per-invitation nonce: random material, hex-encoded.
pub fn random_nonce(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the operating system provides randomness");
    hex::encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> InvitationId {
        InvitationId::parse(s).unwrap()
    }

    #[test]
    fn tokens_verify_only_for_their_invitation_nonce_and_key() {
        let key = TokenKey::new(&[7u8; 32]).unwrap();
        let (inv_1, inv_2) = (id("inv_1"), id("inv_2"));
        let token = key.token(&inv_1, "n1");
        assert_eq!(invitation_id_of(&token), Some(inv_1.clone()));
        assert!(key.verify(&token, &inv_1, "n1"));
        assert_eq!(
            token,
            key.token(&inv_1, "n1"),
            "resend derives the same token"
        );
        assert!(!key.verify(&token, &inv_1, "n2"));
        assert!(!key.verify(&token, &inv_2, "n1"));
        assert!(
            !TokenKey::new(&[8u8; 32])
                .unwrap()
                .verify(&token, &inv_1, "n1"),
            "another key"
        );
        let mut tampered = token.clone();
        tampered.pop();
        tampered.push(if token.ends_with('0') { '1' } else { '0' });
        assert!(!key.verify(&tampered, &inv_1, "n1"));
        assert!(!key.verify("garbage", &inv_1, "n1"));
        assert_eq!(invitation_id_of("garbage"), None);
        assert!(TokenKey::new(b"short").is_err());
    }
}
