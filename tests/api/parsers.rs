//! Property tests of every parser that takes client input: email addresses, person names, bearer
//! tokens, acceptance tokens, Idempotency-Keys and ids. Each gets arbitrary strings (any Unicode,
//! control and invisible characters included) and strings near the shape it accepts; none may
//! panic, and what each accepts keeps the properties the rest of the server relies on.

use leadping_invitations::app::Idempotency;
use leadping_invitations::auth::{AuthSettings, Verifier};
use leadping_invitations::domain::{BusinessId, EmailAddress, InvitationId, UserId};
use leadping_invitations::tokens::{TokenKey, invitation_id_of};
use leadping_invitations::wire::PersonName;
use proptest::prelude::*;

/// Arbitrary text, weighted towards the characters parsers trip on.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9._%+@\\-\\.\u{200b}\u{feff}\u{0}\u{7f} \"\\[\\]:]{0,80}",
        "[a-z]{1,10}@[a-z]{1,10}\\.[a-z]{2,5}",
    ]
}

fn verifier() -> Verifier {
    Verifier::from_settings(&AuthSettings {
        hs256_secret: Some(crate::helpers::JWT_SECRET.into()),
        ..Default::default()
    })
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn accepted_email_addresses_are_printable_ascii_and_parse_back_to_themselves(s in hostile_text()) {
        if let Ok(email) = EmailAddress::parse(&s) {
            let text = email.as_str();
            prop_assert!(text.bytes().all(|b| b.is_ascii_graphic()), "{text:?}");
            prop_assert_eq!(text.matches('@').count(), 1);
            prop_assert!(text.len() <= 254);
            let again = EmailAddress::parse(text).unwrap();
            prop_assert_eq!(again.as_str(), text);
            prop_assert_eq!(email.normalized(), text.to_ascii_lowercase());
        }
        if s.trim().chars().any(|c| !c.is_ascii_graphic()) {
            prop_assert!(EmailAddress::parse(&s).is_err(), "{s:?} accepted");
        }
    }

    #[test]
    fn an_address_with_an_invisible_character_is_never_a_second_address(
        local in "[a-z]{1,12}",
        domain in "[a-z]{1,12}\\.[a-z]{2,4}",
        at in 0usize..12,
        invisible in prop::sample::select(vec!['\u{200b}', '\u{200c}', '\u{200d}', '\u{2060}', '\u{feff}', '\u{00ad}']),
    ) {
        let mut tampered: Vec<char> = local.chars().collect();
        tampered.insert(at.min(tampered.len()), invisible);
        let tampered: String = tampered.into_iter().collect();
        let (plain, twin) = (format!("{local}@{domain}"), format!("{tampered}@{domain}"));
        prop_assert!(EmailAddress::parse(&plain).is_ok());
        prop_assert!(EmailAddress::parse(&twin).is_err());
    }

    #[test]
    fn accepted_person_names_are_short_and_free_of_control_characters(s in any::<String>()) {
        if let Ok(name) = PersonName::try_from(s.clone()) {
            prop_assert!(name.as_str().chars().count() <= PersonName::MAX_CHARS as usize);
            prop_assert!(!name.as_str().chars().any(char::is_control));
            prop_assert_eq!(name.as_str(), s.as_str());
        }
    }

    #[test]
    fn no_forged_or_malformed_bearer_token_is_accepted(s in any::<String>(), suffix in hostile_text()) {
        let v = verifier();
        let as_bearer = format!("Bearer {s}");
        prop_assert!(v.verify(Some(&s)).is_err());
        prop_assert!(v.verify(Some(&as_bearer)).is_err());
        // A real token with anything appended, or cut short, is refused.
        let good = crate::helpers::token("biz_p", "usr_p", "Owner");
        let (real, longer) = (format!("Bearer {good}"), format!("Bearer {good}{suffix}"));
        prop_assert!(v.verify(Some(&real)).is_ok());
        if !suffix.trim().is_empty() {
            prop_assert!(v.verify(Some(&longer)).is_err());
        }
        let cut = good.len() - 1 - suffix.len() % 40;
        let shorter = format!("Bearer {}", &good[..cut]);
        prop_assert!(v.verify(Some(&shorter)).is_err());
    }

    #[test]
    fn acceptance_tokens_verify_only_as_issued(s in any::<String>(), nonce in "[0-9a-f]{32}", flip in 0usize..64) {
        let key = TokenKey::new(crate::helpers::TOKEN_KEY.as_bytes()).unwrap();
        let id = InvitationId::parse("inv_0123456789abcdef").unwrap();
        // Arbitrary text names at most a well-formed id, and never verifies.
        if let Some(named) = invitation_id_of(&s) {
            prop_assert!(InvitationId::parse(named.as_str()).is_some());
        }
        prop_assert!(!key.verify(&s, &id, &nonce));
        // The issued token verifies; one changed character of its MAC does not.
        let token = key.token(&id, &nonce);
        prop_assert!(key.verify(&token, &id, &nonce));
        prop_assert_eq!(invitation_id_of(&token), Some(id.clone()));
        let mut bytes = token.clone().into_bytes();
        let at = bytes.len() - 1 - flip;
        bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
        let tampered = String::from_utf8(bytes).unwrap();
        prop_assert!(!key.verify(&tampered, &id, &nonce));
    }

    #[test]
    fn idempotency_keys_are_taken_within_their_bounds_and_fingerprint_the_request(
        key in any::<String>(),
        body in any::<String>(),
        other in any::<String>(),
    ) {
        let bounds = 1..=255;
        let chars = key.chars().count();
        match Idempotency::new(key.clone(), bounds.clone(), "createBusinessInvitation", &[&body]) {
            Ok(a) => {
                prop_assert!(bounds.contains(&chars));
                let again = Idempotency::new(key.clone(), bounds.clone(), "createBusinessInvitation", &[&body]).unwrap();
                prop_assert_eq!(&a.request_hash, &again.request_hash);
                let changed = Idempotency::new(key.clone(), bounds.clone(), "createBusinessInvitation", &[&other]).unwrap();
                prop_assert_eq!(a.request_hash == changed.request_hash, body == other);
                let elsewhere = Idempotency::new(key, bounds, "resendBusinessInvitation", &[&body]).unwrap();
                prop_assert_ne!(a.request_hash, elsewhere.request_hash);
            }
            Err(_) => prop_assert!(!bounds.contains(&chars)),
        }
    }

    #[test]
    fn ids_are_plain_text_the_store_can_hold(s in any::<String>()) {
        if let Some(id) = InvitationId::parse(&s) {
            prop_assert!(id.as_str().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
            prop_assert!(!id.as_str().is_empty() && id.as_str().len() <= 128);
        }
        let others = [
            BusinessId::parse(&s).map(|i| i.as_str().to_string()),
            UserId::parse(&s).map(|i| i.as_str().to_string()),
        ];
        for text in others.into_iter().flatten() {
            prop_assert!(!text.is_empty() && text.len() <= 255);
            prop_assert!(!text.chars().any(char::is_control));
        }
    }
}
