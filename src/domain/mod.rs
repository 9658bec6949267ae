//! The invitation model: pure, no I/O, time passed in. Owns the invitation's states, roles, the
//! values parsed at the edge (email addresses, names, ids), the resend rules ([`rules`]) and the
//! delivery transitions ([`delivery`]). Must never import the store, the mail transport, the
//! application layer or the API.
//!
//! Wire types are generated from the contract and change when it changes; the domain keeps its
//! own types so that a contract change surfaces as a compile error in the mapping
//! (`api::mapping`), where a person decides what the server should now produce.

pub mod delivery;
pub mod ids;
pub mod rules;

pub use ids::{BusinessId, InvalidId, InvitationId, OutboxId, UserId};

use chrono::{DateTime, Utc};

/// An enum whose every value has one name: the one the store keeps and the CLI takes. `as_str`
/// and `FromStr` are that one mapping; `ALL` lists the values.
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The value's one name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::domain::UnknownName;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| $crate::domain::UnknownName {
                        what: stringify!($name),
                        name: s.to_string(),
                        known: $name::ALL.iter().map(|v| v.as_str()).collect(),
                    })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use named_enum;

/// A name that is none of an enum's values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{name:?} is not a {what}; one of: {}", known.join(", "))]
pub struct UnknownName {
    pub what: &'static str,
    pub name: String,
    pub known: Vec<&'static str>,
}

named_enum! {
    /// A member's role in a business, and the role an invitation grants.
    Role {
        Owner = "Owner",
        Admin = "Admin",
        Agent = "Agent",
    }
}

named_enum! {
    /// The state an invitation is stored in. `Expired` is not stored: it is computed when read,
    /// from `expires_at`, so an invitation is Expired on time whether or not a sweeper has run.
    StoredStatus {
        Pending = "Pending",
        Resent = "Resent",
        FailedToSend = "FailedToSend",
        Accepted = "Accepted",
        Revoked = "Revoked",
    }
}

named_enum! {
    /// Where a business's subscription stands. Only active subscriptions exist so far: the
    /// value is stored so that a billing provider's other states have a place to go.
    SubscriptionStatus {
        Active = "active",
    }
}

named_enum! {
    /// How an invitation's seat on the subscription item is billed (`licenseBillingStatus`).
    BillingStatus {
        /// Within the seats the subscription includes: costs nothing more.
        Included = "included",
        /// Beyond them: billed, prorated from the change to the renewal date.
        Prorated = "prorated",
        /// Given back.
        Released = "released",
    }
}

/// The status a caller sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    Pending,
    Accepted,
    Expired,
    Revoked,
    Resent,
    FailedToSend,
}

impl Status {
    /// The status in words, for messages.
    pub const fn describe(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Accepted => "accepted",
            Status::Expired => "expired",
            Status::Revoked => "revoked",
            Status::Resent => "resent",
            Status::FailedToSend => "failed to send",
        }
    }
}

/// The paid license seat an invitation holds (or held) on its business's shared subscription item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct License {
    pub billing_status: BillingStatus,
    /// The quantity on the subscription item after this invitation's last seat change.
    pub quantity: i64,
    /// The period end used for proration.
    pub renewal_date: DateTime<Utc>,
    pub activated_at: DateTime<Utc>,
    pub released_at: Option<DateTime<Utc>>,
}

/// An invitation to join a business.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invitation {
    pub id: InvitationId,
    pub business_id: BusinessId,
    pub business_name: String,
    pub email: String,
    pub role: Role,
    pub status: StoredStatus,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub resent_at: Option<DateTime<Utc>>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub send_failure_reason: Option<String>,
    pub license: Option<License>,
}

impl Invitation {
    /// The status as of `now`: an outstanding invitation past its `expires_at` is Expired.
    pub fn status_at(&self, now: DateTime<Utc>) -> Status {
        match self.status {
            StoredStatus::Accepted => Status::Accepted,
            StoredStatus::Revoked => Status::Revoked,
            _ if now >= self.expires_at => Status::Expired,
            StoredStatus::Pending => Status::Pending,
            StoredStatus::Resent => Status::Resent,
            StoredStatus::FailedToSend => Status::FailedToSend,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    pub(crate) fn sample(status: StoredStatus) -> Invitation {
        let created = Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap();
        Invitation {
            id: InvitationId::from_stored("inv_1".into()),
            business_id: BusinessId::from_stored("biz_1".into()),
            business_name: "Acme".into(),
            email: "ann@example.com".into(),
            role: Role::Agent,
            status,
            created_at: created,
            expires_at: created + chrono::Duration::days(7),
            sent_at: None,
            resent_at: None,
            accepted_at: None,
            revoked_at: None,
            send_failure_reason: None,
            license: None,
        }
    }

    #[test]
    fn outstanding_invitations_expire_when_read_after_expires_at() {
        for stored in [
            StoredStatus::Pending,
            StoredStatus::Resent,
            StoredStatus::FailedToSend,
        ] {
            let inv = sample(stored);
            let before = inv.expires_at - chrono::Duration::seconds(1);
            assert_ne!(inv.status_at(before), Status::Expired, "{stored:?}");
            assert_eq!(inv.status_at(inv.expires_at), Status::Expired, "{stored:?}");
        }
    }

    #[test]
    fn every_named_value_parses_back_from_its_one_name() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(*r));
        }
        for st in StoredStatus::ALL {
            assert_eq!(st.as_str().parse::<StoredStatus>(), Ok(*st));
        }
        for b in BillingStatus::ALL {
            assert_eq!(b.as_str().parse::<BillingStatus>(), Ok(*b));
        }
        for s in SubscriptionStatus::ALL {
            assert_eq!(s.as_str().parse::<SubscriptionStatus>(), Ok(*s));
        }
        let e = "owner".parse::<Role>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"owner\" is not a Role; one of: Owner, Admin, Agent"
        );
    }

    #[test]
    fn accepted_and_revoked_never_expire() {
        let later = sample(StoredStatus::Pending).expires_at + chrono::Duration::days(30);
        assert_eq!(
            sample(StoredStatus::Accepted).status_at(later),
            Status::Accepted
        );
        assert_eq!(
            sample(StoredStatus::Revoked).status_at(later),
            Status::Revoked
        );
    }
}

/// An email address with the local part hidden but its first character: `a•••@example.com`.
/// Safe for end users and for logs.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}•••@{domain}")
        }
        None => "•••".to_string(),
    }
}

/// An email address that parsed (RFC 5322 addr-spec, through the `email_address` crate) and that
/// this server accepts as an invitation's recipient; the only way to get one is
/// [`EmailAddress::parse`].
///
/// Stricter than the RFC on purpose: the local part is an ASCII dot-atom (letters, digits and
/// ``!#$%&'*+/=?^_`{|}~-``, dots between them; no quoted strings, no spaces, no control,
/// invisible or non-ASCII characters), the domain a DNS host name of at least two labels (ASCII
/// letters, digits and hyphens; an internationalised domain in its `xn--` form; no IP
/// literals). What that refuses is legal but either undeliverable through most relays (UTF-8
/// local parts need SMTPUTF8) or a way to look different while reading the same (a zero-width
/// space made `a\u{200b}@x.com` a second invitation for `a@x.com`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(s: &str) -> Result<EmailAddress, String> {
        let trimmed = s.trim();
        if trimmed.len() > 254 {
            return Err("the email address is longer than 254 characters".to_string());
        }
        if let Some(c) = trimmed
            .chars()
            .find(|c| !c.is_ascii_graphic() || c.is_ascii_control())
        {
            return Err(format!(
                "{trimmed:?} contains {c:?} (U+{:04X}): only printable ASCII is accepted; write an internationalised domain in its xn-- form",
                u32::from(c)
            ));
        }
        let parsed: email_address::EmailAddress = trimmed
            .parse()
            .map_err(|e| format!("{trimmed:?} is not an email address: {e}"))?;
        let (local, domain) = (parsed.local_part(), parsed.domain());
        let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
        if local.len() > 64
            || local
                .split('.')
                .any(|atom| atom.is_empty() || !atom.chars().all(atext))
        {
            return Err(format!(
                "{trimmed:?}: the part before @ must be letters, digits and !#$%&'*+/=?^_`{{|}}~- with single dots between them (at most 64 characters)"
            ));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |l: &&str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        let tld_ok = labels
            .last()
            .is_some_and(|t| t.chars().any(|c| c.is_ascii_alphabetic()));
        if labels.len() < 2 || !labels.iter().all(label_ok) || !tld_ok {
            // `user@localhost` and `user@[10.0.0.1]` are valid syntax, but never a recipient
            // we can invite.
            return Err(format!(
                "{trimmed:?} has no public domain: write a host name such as example.com (no IP addresses)"
            ));
        }
        Ok(EmailAddress(parsed.email().to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form duplicates are detected by: the whole address lowercased.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

#[cfg(test)]
mod email_tests {
    use super::EmailAddress;

    #[test]
    fn parses_addresses_and_refuses_the_rest() {
        assert_eq!(
            EmailAddress::parse(" Ann@Example.com ").unwrap().as_str(),
            "Ann@Example.com"
        );
        assert_eq!(
            EmailAddress::parse("Ann@Example.com").unwrap().normalized(),
            "ann@example.com"
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "ann@@example.com",
            "ann@localhost",
            "a b@example.com",
            // Invisible, control and non-ASCII characters.
            "a\u{200b}@example.com",
            "ann@exa\u{200b}mple.com",
            "\u{feff}ann@example.com",
            "an\u{0007}n@example.com",
            "\u{1F600}@example.com",
            "ånn@example.com",
            "ann@bücher.de",
            // Quoted local parts, stray dots, IP literals, numeric top-level domains.
            "\"a b\"@example.com",
            ".ann@example.com",
            "ann.@example.com",
            "a..nn@example.com",
            "ann@[192.168.0.1]",
            "ann@[IPv6:::1]",
            "ann@10.0.0.1",
            "ann@-example.com",
            "ann@example..com",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} accepted");
        }
        for good in [
            "ann.lee+tag@example.com",
            "o'brien@example.co.uk",
            "x_y-z@sub.xn--bcher-kva.de",
            "1234@example.com",
        ] {
            assert_eq!(EmailAddress::parse(good).unwrap().as_str(), good);
        }
    }
}
