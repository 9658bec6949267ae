//! Bearer JWT -> the caller's identity. Used by the API layer and the CLI; must never import the
//! application layer, the store or the mail transport.
//!
//! Every trusted key is bound to the algorithms it may verify: the HS256 secret verifies HS256
//! only, an RSA public key RS256 only, a P-256 key ES256 only. A token's `alg` picks among those
//! keys and nothing else, so neither `alg: none` (which jsonwebtoken cannot even parse) nor
//! algorithm confusion (an RS256 public key used as an HMAC secret) can get a token through.
//!
//! The claims follow common identity providers: `sub` is the user, `org_id` the business, `role`
//! the role the token claims. The role that counts is the one stored for the membership; the
//! token's role is informative only.

use crate::domain::{BusinessId, UserId};
use std::path::PathBuf;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The claims this server reads and the `token` command writes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user.
    pub sub: String,
    /// The business (organization) the token acts for.
    pub org_id: String,
    /// The role the token claims; the stored membership role is what counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
}

/// `aud` as RFC 7519 allows it: one audience, or a list (what Auth0 and Entra ID issue).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

/// Who is calling, as the token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub user_id: UserId,
    pub business_id: BusinessId,
    /// The token's `role` claim, as it says; the stored membership's role is what counts.
    pub token_role: Option<String>,
}

/// Where trusted keys come from.
#[derive(Clone, Debug, Default)]
pub struct AuthSettings {
    /// HS256 shared secret, for local use and tests (at least 32 bytes).
    pub hs256_secret: Option<String>,
    /// PEM files of RSA (RS256) or P-256 (ES256) public keys, for production identity providers.
    pub public_key_files: Vec<PathBuf>,
    /// A JWKS file (`{"keys": [...]}`) of RSA and P-256 public keys.
    pub jwks_file: Option<PathBuf>,
    /// When set, tokens must carry this `iss`.
    pub issuer: Option<String>,
    /// When set, tokens must carry this `aud`.
    pub audience: Option<String>,
}

/// The shortest HS256 secret accepted: RFC 7518 wants a key at least as long as the hash.
pub const MIN_SECRET_BYTES: usize = 32;

/// Why a request is not authenticated. Every variant is a 401; the text is safe to show.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("The request has no Authorization header; send `Authorization: Bearer <JWT>`.")]
    Missing,
    #[error("The Authorization header is not a bearer token; send `Authorization: Bearer <JWT>`.")]
    NotBearer,
    #[error("The bearer token is not a JWT this server can read.")]
    Malformed,
    #[error("The bearer token's algorithm is not accepted by this server.")]
    UntrustedAlgorithm,
    #[error("The bearer token is not signed by a key this server trusts.")]
    BadSignature,
    #[error("The bearer token has expired.")]
    Expired,
    #[error("The bearer token is not valid yet (its nbf is in the future).")]
    NotYetValid,
    #[error("The bearer token's claims are not acceptable: {0}.")]
    Claims(String),
}

struct TrustedKey {
    algorithm: Algorithm,
    key: DecodingKey,
    kid: Option<String>,
}

/// Verifies bearer tokens against the configured keys.
pub struct Verifier {
    keys: Vec<TrustedKey>,
    issuer: Option<String>,
    audience: Option<String>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let algs: Vec<_> = self.keys.iter().map(|k| k.algorithm).collect();
        f.debug_struct("Verifier")
            .field("keys", &algs)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

impl Verifier {
    pub fn from_settings(settings: &AuthSettings) -> anyhow::Result<Self> {
        let mut keys = Vec::new();
        if let Some(secret) = &settings.hs256_secret {
            if secret.len() < MIN_SECRET_BYTES {
                anyhow::bail!("the JWT secret must be at least {MIN_SECRET_BYTES} bytes long");
            }
            keys.push(TrustedKey {
                algorithm: Algorithm::HS256,
                key: DecodingKey::from_secret(secret.as_bytes())?,
                kid: None,
            });
        }
        for path in &settings.public_key_files {
            let pem = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("cannot read public key {}: {e}", path.display()))?;
            let key = if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
                TrustedKey {
                    algorithm: Algorithm::RS256,
                    key,
                    kid: None,
                }
            } else if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
                TrustedKey {
                    algorithm: Algorithm::ES256,
                    key,
                    kid: None,
                }
            } else {
                anyhow::bail!(
                    "{} is neither an RSA nor an EC public key in PEM",
                    path.display()
                );
            };
            keys.push(key);
        }
        if let Some(path) = &settings.jwks_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read JWKS {}: {e}", path.display()))?;
            let set: JwkSet = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{} is not a JWKS: {e}", path.display()))?;
            for jwk in &set.keys {
                let algorithm = match &jwk.algorithm {
                    AlgorithmParameters::RSA(_) => Algorithm::RS256,
                    AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
                        Algorithm::ES256
                    }
                    // Symmetric keys have no place in a public key set; other curves are not offered.
                    _ => anyhow::bail!(
                        "{}: only RSA and P-256 public keys are accepted",
                        path.display()
                    ),
                };
                let key = DecodingKey::from_jwk(jwk)
                    .map_err(|e| anyhow::anyhow!("{}: unusable key: {e}", path.display()))?;
                keys.push(TrustedKey {
                    algorithm,
                    key,
                    kid: jwk.common.key_id.clone(),
                });
            }
        }
        if keys.is_empty() {
            anyhow::bail!("no JWT keys configured: set a secret or public keys");
        }
        Ok(Verifier {
            keys,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
        })
    }

    /// The identity of a request with this `Authorization` header value.
    pub fn verify(&self, authorization: Option<&str>) -> Result<Identity, AuthError> {
        let value = authorization.ok_or(AuthError::Missing)?;
        let (scheme, token) = value.trim().split_once(' ').ok_or(AuthError::NotBearer)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::NotBearer);
        }
        let token = token.trim();
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        let candidates: Vec<&TrustedKey> = self
            .keys
            .iter()
            .filter(|k| k.algorithm == header.alg)
            .filter(|k| match (&k.kid, &header.kid) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            })
            .collect();
        if candidates.is_empty() {
            return Err(AuthError::UntrustedAlgorithm);
        }
        let mut validation = Validation::new(header.alg);
        validation.set_required_spec_claims(&["exp", "sub"]);
        // A token whose `nbf` is ahead (past the default leeway of a minute for clock skew) is
        // not valid yet: jsonwebtoken checks it only when asked.
        validation.validate_nbf = true;
        if let Some(iss) = &self.issuer {
            validation.set_issuer(&[iss]);
            validation.required_spec_claims.insert("iss".into());
        }
        match &self.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                validation.required_spec_claims.insert("aud".into());
            }
            None => validation.validate_aud = false,
        }
        let mut last = AuthError::BadSignature;
        for key in candidates {
            match jsonwebtoken::decode::<Claims>(token, &key.key, &validation) {
                Ok(data) => {
                    let c = data.claims;
                    let (Ok(user_id), Ok(business_id)) =
                        (UserId::parse(&c.sub), BusinessId::parse(&c.org_id))
                    else {
                        return Err(AuthError::Claims(
                            "sub and org_id must be non-empty ids without control characters"
                                .into(),
                        ));
                    };
                    return Ok(Identity {
                        user_id,
                        business_id,
                        token_role: c.role,
                    });
                }
                Err(e) => {
                    use jsonwebtoken::errors::ErrorKind;
                    last = match e.kind() {
                        ErrorKind::InvalidSignature => AuthError::BadSignature,
                        ErrorKind::ExpiredSignature => AuthError::Expired,
                        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                        ErrorKind::InvalidIssuer => AuthError::Claims("wrong issuer".into()),
                        ErrorKind::InvalidAudience => AuthError::Claims("wrong audience".into()),
                        ErrorKind::MissingRequiredClaim(c) => {
                            AuthError::Claims(format!("missing {c}"))
                        }
                        ErrorKind::Json(_) => {
                            AuthError::Claims("sub, org_id and exp are required".into())
                        }
                        _ => AuthError::Malformed,
                    };
                    if last != AuthError::BadSignature {
                        return Err(last);
                    }
                }
            }
        }
        Err(last)
    }
}

/// Signs `claims` with the HS256 secret: the `token` command and the demo use it.
pub fn mint(secret: &str, claims: &Claims) -> anyhow::Result<String> {
    if secret.len() < MIN_SECRET_BYTES {
        anyhow::bail!("the JWT secret must be at least {MIN_SECRET_BYTES} bytes long");
    }
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes())?,
    )?)
}

/// A new random secret, hex-encoded (64 characters).
pub fn generate_secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    fn claims(exp: u64) -> Claims {
        Claims {
            sub: "usr_1".into(),
            org_id: "biz_1".into(),
            role: Some("Admin".into()),
            exp,
            iat: None,
            iss: None,
            aud: None,
        }
    }

    fn verifier(settings: AuthSettings) -> Verifier {
        Verifier::from_settings(&settings).unwrap()
    }

    fn hs() -> Verifier {
        verifier(AuthSettings {
            hs256_secret: Some(SECRET.into()),
            ..Default::default()
        })
    }

    fn bearer(t: &str) -> String {
        format!("Bearer {t}")
    }

    #[test]
    fn a_good_token_names_user_and_business() {
        let token = mint(SECRET, &claims(now() + 600)).unwrap();
        let id = hs().verify(Some(&bearer(&token))).unwrap();
        assert_eq!(
            id,
            Identity {
                user_id: UserId::parse("usr_1").unwrap(),
                business_id: BusinessId::parse("biz_1").unwrap(),
                token_role: Some("Admin".into())
            }
        );
        assert!(
            hs().verify(Some(&format!("bearer   {token}"))).is_ok(),
            "the scheme is case-insensitive"
        );
    }

    #[test]
    fn missing_malformed_and_foreign_tokens_are_refused() {
        let v = hs();
        assert_eq!(v.verify(None), Err(AuthError::Missing));
        assert_eq!(
            v.verify(Some("Basic dXNlcjpwYXNz")),
            Err(AuthError::NotBearer)
        );
        assert_eq!(
            v.verify(Some("Bearer not.a.jwt")),
            Err(AuthError::Malformed)
        );
        let other = mint("another-secret-that-is-long-enough!!", &claims(now() + 600)).unwrap();
        assert_eq!(
            v.verify(Some(&bearer(&other))),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn ids_from_identity_providers_pass_and_control_characters_do_not() {
        let mut c = claims(now() + 600);
        c.sub = "auth0|5f7c8ec7c33c6c004bbafe82".into();
        c.org_id = "org_Ab12-cd".into();
        assert!(
            hs().verify(Some(&bearer(&mint(SECRET, &c).unwrap())))
                .is_ok()
        );
        for (sub, org) in [("usr\0", "biz_1"), ("usr_1", ""), ("usr_1", "biz\n1")] {
            let mut c = claims(now() + 600);
            c.sub = sub.into();
            c.org_id = org.into();
            assert!(
                matches!(
                    hs().verify(Some(&bearer(&mint(SECRET, &c).unwrap()))),
                    Err(AuthError::Claims(_))
                ),
                "{sub:?} {org:?}"
            );
        }
    }

    #[test]
    fn expired_tokens_are_refused() {
        let token = mint(SECRET, &claims(now() - 3600)).unwrap();
        assert_eq!(hs().verify(Some(&bearer(&token))), Err(AuthError::Expired));
    }

    /// A token with `nbf` `ahead` seconds from now (and the claims a good token has).
    fn not_before(ahead: i64) -> String {
        let mut claims = serde_json::to_value(claims(now() + 7200)).unwrap();
        claims["nbf"] = serde_json::json!(now().saturating_add_signed(ahead));
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn tokens_not_valid_yet_are_refused_and_clock_skew_is_forgiven() {
        for ahead in [86_400, 10 * 365 * 86_400, 3600] {
            assert_eq!(
                hs().verify(Some(&bearer(&not_before(ahead)))),
                Err(AuthError::NotYetValid),
                "nbf {ahead} s ahead"
            );
        }
        // A few seconds of skew between the issuer's clock and ours, or an nbf in the past.
        for ahead in [5, 0, -3600] {
            assert!(
                hs().verify(Some(&bearer(&not_before(ahead)))).is_ok(),
                "nbf {ahead} s ahead"
            );
        }
    }

    fn base64(bytes: &[u8], url: bool) -> String {
        use base64::Engine;
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        if url {
            URL_SAFE_NO_PAD.encode(bytes)
        } else {
            STANDARD.encode(bytes)
        }
    }

    fn pem(tag: &str, der: &[u8]) -> String {
        ::pem::encode(&::pem::Pem::new(tag, der))
    }

    fn base64url(s: &str) -> String {
        base64(s.as_bytes(), true)
    }

    /// A token with a hand-made header over a valid payload, signed with the HS256 secret.
    fn with_header(header_json: &str) -> String {
        let good = mint(SECRET, &claims(now() + 600)).unwrap();
        let mut parts: Vec<&str> = good.split('.').collect();
        let header = base64url(header_json);
        parts[0] = &header;
        parts.join(".")
    }

    #[test]
    fn alg_none_is_refused() {
        for alg in ["none", "None", "NONE"] {
            let mut token = with_header(&format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
            // An unsigned token has an empty signature.
            token.truncate(token.rfind('.').unwrap() + 1);
            assert_eq!(
                hs().verify(Some(&bearer(&token))),
                Err(AuthError::Malformed),
                "{alg}"
            );
        }
    }

    #[test]
    fn a_token_for_another_algorithm_finds_no_key() {
        // Algorithm confusion: an RS256 header on a server that trusts only an HS256 secret must
        // not be checked against that secret.
        let token = with_header(r#"{"alg":"RS256","typ":"JWT"}"#);
        assert_eq!(
            hs().verify(Some(&bearer(&token))),
            Err(AuthError::UntrustedAlgorithm)
        );
        let token = with_header(r#"{"alg":"HS512","typ":"JWT"}"#);
        assert_eq!(
            hs().verify(Some(&bearer(&token))),
            Err(AuthError::UntrustedAlgorithm)
        );
    }

    #[test]
    fn issuer_and_audience_are_enforced_when_configured() {
        let v = verifier(AuthSettings {
            hs256_secret: Some(SECRET.into()),
            issuer: Some("https://idp.example".into()),
            audience: Some("leadping".into()),
            ..Default::default()
        });
        let mut c = claims(now() + 600);
        assert!(
            matches!(
                v.verify(Some(&bearer(&mint(SECRET, &c).unwrap()))),
                Err(AuthError::Claims(_))
            ),
            "missing iss/aud"
        );
        c.iss = Some("https://idp.example".into());
        c.aud = Some(Audience::One("leadping".into()));
        assert!(v.verify(Some(&bearer(&mint(SECRET, &c).unwrap()))).is_ok());
        // Identity providers often issue a list of audiences; ours among them is enough.
        c.aud = Some(Audience::Many(vec![
            "https://idp.example/userinfo".into(),
            "leadping".into(),
        ]));
        assert!(v.verify(Some(&bearer(&mint(SECRET, &c).unwrap()))).is_ok());
        c.aud = Some(Audience::Many(vec!["someone-else".into()]));
        assert_eq!(
            v.verify(Some(&bearer(&mint(SECRET, &c).unwrap()))),
            Err(AuthError::Claims("wrong audience".into()))
        );
        c.aud = Some(Audience::One("someone-else".into()));
        assert_eq!(
            v.verify(Some(&bearer(&mint(SECRET, &c).unwrap()))),
            Err(AuthError::Claims("wrong audience".into()))
        );
    }

    #[test]
    fn short_secrets_and_empty_key_sets_are_configuration_errors() {
        assert!(
            Verifier::from_settings(&AuthSettings {
                hs256_secret: Some("short".into()),
                ..Default::default()
            })
            .is_err()
        );
        assert!(Verifier::from_settings(&AuthSettings::default()).is_err());
        assert!(mint("short", &claims(now())).is_err());
    }

    #[test]
    fn generated_secrets_are_long_and_distinct() {
        let (a, b) = (generate_secret().unwrap(), generate_secret().unwrap());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }

    /// A P-256 key pair: the PKCS#8 private key, the uncompressed public point and the public
    /// key's SubjectPublicKeyInfo DER.
    fn p256() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
        let kp = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let spki = AsDer::<PublicKeyX509Der>::as_der(kp.public_key()).unwrap();
        (
            kp.to_pkcs8v1().unwrap().as_ref().to_vec(),
            kp.public_key().as_ref().to_vec(),
            spki.as_ref().to_vec(),
        )
    }

    fn es256_token(pkcs8: &[u8], kid: Option<&str>) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = kid.map(str::to_string);
        jsonwebtoken::encode(
            &header,
            &claims(now() + 600),
            &EncodingKey::from_ec_der(pkcs8),
        )
        .unwrap()
    }

    fn temp_file(name: &str, contents: &str) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("leadping-auth-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// For a verifier trusting a JWKS with two keys under `kids`: each key verifies under its own
    /// kid, not under the other's, and a token without a kid is tried against every key.
    /// `sign(first, kid)` signs with the first key or the second.
    fn picks_the_key_by_kid(
        v: &Verifier,
        kids: [&str; 2],
        sign: impl Fn(bool, Option<&str>) -> String,
    ) {
        let verify = |first: bool, kid: Option<&str>| v.verify(Some(&bearer(&sign(first, kid))));
        assert_eq!(
            verify(true, Some(kids[0])).unwrap().business_id.as_str(),
            "biz_1"
        );
        assert!(verify(false, Some(kids[1])).is_ok());
        assert_eq!(
            verify(false, Some(kids[0])),
            Err(AuthError::BadSignature),
            "wrong key for the kid"
        );
        assert!(verify(true, None).is_ok(), "no kid: every key is tried");
        assert!(verify(false, None).is_ok(), "no kid: every key is tried");
    }

    #[test]
    fn es256_tokens_verify_against_a_jwks_and_pick_the_key_by_kid() {
        let (private, point, _) = p256();
        let (other_private, other_point, _) = p256();
        let jwk = |kid: &str, point: &[u8]| {
            serde_json::json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
                "x": base64(&point[1..33], true), "y": base64(&point[33..65], true)})
        };
        let jwks = serde_json::json!({"keys": [jwk("k1", &point), jwk("k2", &other_point)]});
        let path = temp_file("jwks.json", &jwks.to_string());
        let v = verifier(AuthSettings {
            jwks_file: Some(path.clone()),
            ..Default::default()
        });
        picks_the_key_by_kid(&v, ["k1", "k2"], |first, kid| {
            es256_token(if first { &private } else { &other_private }, kid)
        });
        // Only public keys are trusted here: an HS256 token finds no key at all.
        assert_eq!(
            v.verify(Some(&bearer(&mint(SECRET, &claims(now() + 600)).unwrap()))),
            Err(AuthError::UntrustedAlgorithm)
        );
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn es256_public_keys_load_from_pem_and_refuse_algorithm_confusion() {
        let (private, _, spki) = p256();
        let pem = pem("PUBLIC KEY", &spki);
        let path = temp_file("key.pem", &pem);
        let v = verifier(AuthSettings {
            public_key_files: vec![path.clone()],
            ..Default::default()
        });
        assert!(
            v.verify(Some(&bearer(&es256_token(&private, None))))
                .is_ok()
        );
        // The classic confusion: an HS256 token whose "secret" is the public key itself.
        let forged = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(now() + 600),
            &EncodingKey::from_secret(pem.as_bytes()).unwrap(),
        )
        .unwrap();
        assert_eq!(
            v.verify(Some(&bearer(&forged))),
            Err(AuthError::UntrustedAlgorithm)
        );
        std::fs::remove_file(&path).unwrap();

        let garbage = temp_file("garbage.pem", "not a key");
        assert!(
            Verifier::from_settings(&AuthSettings {
                public_key_files: vec![garbage.clone()],
                ..Default::default()
            })
            .is_err()
        );
        std::fs::remove_file(garbage).unwrap();
    }

    /// An RSA-2048 key pair as PEM (PKCS#8 private key, SubjectPublicKeyInfo public key) and as a
    /// JWK's `n` and `e`.
    struct Rsa {
        private_pem: String,
        public_pem: String,
        n: String,
        e: String,
    }

    fn rsa() -> Rsa {
        use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
        use aws_lc_rs::rsa::{KeyPair, KeySize};
        use aws_lc_rs::signature::KeyPair as _;
        let kp = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let private = AsDer::<Pkcs8V1Der>::as_der(&kp).unwrap();
        let public = kp.public_key();
        let spki = AsDer::<PublicKeyX509Der>::as_der(public).unwrap();
        Rsa {
            private_pem: pem("PRIVATE KEY", private.as_ref()),
            public_pem: pem("PUBLIC KEY", spki.as_ref()),
            n: base64(public.modulus().big_endian_without_leading_zero(), true),
            e: base64(public.exponent().big_endian_without_leading_zero(), true),
        }
    }

    fn rs256_token(key: &Rsa, kid: Option<&str>) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = kid.map(str::to_string);
        jsonwebtoken::encode(
            &header,
            &claims(now() + 600),
            &EncodingKey::from_rsa_pem(key.private_pem.as_bytes()).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn rs256_public_keys_load_from_pem_and_refuse_algorithm_confusion() {
        let (key, other) = (rsa(), rsa());
        let path = temp_file("rsa.pem", &key.public_pem);
        let v = verifier(AuthSettings {
            public_key_files: vec![path.clone()],
            ..Default::default()
        });
        let identity = v.verify(Some(&bearer(&rs256_token(&key, None)))).unwrap();
        assert_eq!(identity.business_id.as_str(), "biz_1");
        assert_eq!(
            v.verify(Some(&bearer(&rs256_token(&other, None)))),
            Err(AuthError::BadSignature),
            "signed by a key the server does not trust"
        );
        // The classic confusion: an HS256 token whose "secret" is the RSA public key itself.
        let forged = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(now() + 600),
            &EncodingKey::from_secret(key.public_pem.as_bytes()).unwrap(),
        )
        .unwrap();
        assert_eq!(
            v.verify(Some(&bearer(&forged))),
            Err(AuthError::UntrustedAlgorithm)
        );
        // An RSA key does not vouch for ES256 tokens.
        let (p256_private, _, _) = p256();
        assert_eq!(
            v.verify(Some(&bearer(&es256_token(&p256_private, None)))),
            Err(AuthError::UntrustedAlgorithm)
        );
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn rs256_tokens_verify_against_a_jwks_and_pick_the_key_by_kid() {
        let (key, other) = (rsa(), rsa());
        let jwk = |kid: &str, k: &Rsa| {
            serde_json::json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                "n": k.n, "e": k.e})
        };
        let jwks = serde_json::json!({"keys": [jwk("r1", &key), jwk("r2", &other)]});
        let path = temp_file("rsa-jwks.json", &jwks.to_string());
        let v = verifier(AuthSettings {
            jwks_file: Some(path.clone()),
            ..Default::default()
        });
        picks_the_key_by_kid(&v, ["r1", "r2"], |first, kid| {
            rs256_token(if first { &key } else { &other }, kid)
        });
        std::fs::remove_file(path).unwrap();
    }
}
