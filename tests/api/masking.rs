//! Property tests of the log masking: every secret a log line could carry (an email address, an
//! acceptance token, a bearer JWT), written every way a URI allows (any of its characters
//! percent-encoded, in upper or lower case hex, once or twice over) and put where a request can
//! put it (a path segment, the acceptance-token path, a query value, running text), never
//! reaches the log in a form that decodes back to it.

use leadping_invitations::logging::{decoded, mask, redact_uri};
use proptest::prelude::*;

/// `secret` with each character percent-encoded or not, as `choices` says (one entry per byte:
/// 0 leaves it, 1 encodes it in upper-case hex, 2 in lower case), then encoded `times` over.
fn encode(secret: &str, choices: &[u8], times: u8) -> String {
    let mut out = String::new();
    for (i, b) in secret.bytes().enumerate() {
        match choices.get(i).copied().unwrap_or(0) % 3 {
            1 => out.push_str(&format!("%{b:02X}")),
            2 => out.push_str(&format!("%{b:02x}")),
            _ => out.push(b as char),
        }
    }
    for _ in 1..times {
        out = out.replace('%', "%25");
    }
    out
}

/// A secret of each kind, and the part of it that must not be readable in the log.
fn secret() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        // An email address: the whole address.
        ("[a-z][a-z0-9.+_-]{0,15}", "[a-z]{1,12}", "[a-z]{2,6}").prop_map(|(l, d, t)| {
            let a = format!("{l}@{d}.{t}");
            (a.clone(), a)
        }),
        // An acceptance token: its MAC.
        ("inv_[0-9a-f]{32}", "[0-9a-f]{64}").prop_map(|(id, mac)| (format!("{id}.{mac}"), mac)),
        // A bearer JWT: its signature.
        (
            "[A-Za-z0-9_-]{10,40}",
            "[A-Za-z0-9_-]{10,40}",
            "[A-Za-z0-9_-]{20,43}"
        )
            .prop_map(|(h, c, s)| (format!("eyJ{h}.eyJ{c}.{s}"), s)),
    ]
}

/// Where a request can carry it.
fn placed(encoded: &str, at: u8) -> (String, bool) {
    match at % 5 {
        0 => (format!("/businesses/me/invitations/{encoded}/resend"), true),
        1 => (format!("/businesses/invitations/token/{encoded}"), true),
        2 => (format!("/businesses/me/invitations?q={encoded}"), true),
        3 => (format!("/nowhere/{encoded}"), true),
        _ => (format!("could not parse \"{encoded}\" as sent"), false),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn no_encoding_of_a_secret_gets_past_the_masking(
        (secret, part) in secret(),
        choices in proptest::collection::vec(0u8..3, 0..200),
        times in 1u8..=3,
        at in 0u8..5,
    ) {
        let encoded = encode(&secret, &choices, times);
        let (line, is_uri) = placed(&encoded, at);
        let logged = if is_uri { redact_uri(&line) } else { mask(&line) };
        let readable = decoded(&logged).to_lowercase();
        prop_assert!(
            !readable.contains(&part.to_lowercase()),
            "{line:?} was logged as {logged:?}"
        );
    }
}
