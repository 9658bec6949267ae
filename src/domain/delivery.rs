//! Delivery as the invitation sees it: which email kinds there are, what a send's outcome does to
//! the outbox row and to the invitation, which email speaks for the invitation, and what
//! `safeMessage` may claim about it. Pure: no I/O, time and randomness passed in.
//!
//! The application layer's delivery loop asks these functions what to write; it decides nothing
//! itself. Must never import the store, the mail transport or the API.

use chrono::{DateTime, Duration, Utc};

use super::{Invitation, Status, StoredStatus, mask_email};

super::named_enum! {
    /// Which email an outbox row carries: the first invitation, or a resent copy.
    EmailKind {
        Invite = "invite",
        Resend = "resend",
    }
}

/// Where an outbox row stands. A row ends in at most one of `delivered`, `failed` and
/// `superseded`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EmailState {
    /// Attempts whose outcome was recorded.
    pub attempts: i64,
    pub delivered: bool,
    pub failed: bool,
    /// Cancelled before it was sent, because a resend queued a newer email.
    pub superseded: bool,
    pub last_error: Option<String>,
}

impl EmailState {
    /// Whether the row has an outcome a waiting request can report: an attempt, or an end.
    pub fn attempted(&self) -> bool {
        self.attempts > 0 || self.delivered || self.failed || self.superseded
    }
}

/// How one send ended, as the transport reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// The relay accepted the message (or the file was written).
    Accepted,
    /// Will not succeed by retrying: a 5xx reply, an invalid recipient.
    Permanent(String),
    /// May succeed later: a 4xx reply, a refused connection, a timeout.
    Transient(String),
}

/// Why an invitation's email must not go out at `now`, if it must not: sending an invitation
/// that can no longer be accepted would lie to its recipient.
pub fn not_sendable(inv: Option<&Invitation>, now: DateTime<Utc>) -> Option<String> {
    match inv {
        None => Some("not sent: the invitation no longer exists".to_string()),
        Some(inv) => match inv.status_at(now) {
            s @ (Status::Accepted | Status::Revoked | Status::Expired) => Some(format!(
                "not sent: the invitation was {} before delivery",
                s.describe()
            )),
            Status::Pending | Status::Resent | Status::FailedToSend => None,
        },
    }
}

/// What to write on the outbox row after a send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RowChange {
    Delivered,
    /// Try again at `due_at`, keeping `why` as the last error.
    Retry {
        due_at: DateTime<Utc>,
        why: String,
    },
    /// Give up; `reason` is what the invitation's `sendFailureReason` says.
    Failed {
        reason: String,
    },
}

/// The retry policy of the delivery loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts before a transiently failing message is given up.
    pub max_attempts: u32,
    /// The first retry's delay; each next one doubles (with jitter), up to an hour.
    pub base: std::time::Duration,
}

/// The row change for `outcome`, the `attempt`-th (1-based) send of the row; `jitter_unit` in
/// [0, 1] spreads retries.
pub fn row_change(
    outcome: SendOutcome,
    attempt: u32,
    retry: RetryPolicy,
    now: DateTime<Utc>,
    jitter_unit: f64,
) -> RowChange {
    match outcome {
        SendOutcome::Accepted => RowChange::Delivered,
        SendOutcome::Transient(why) if attempt < retry.max_attempts => {
            let delay = backoff(retry.base, attempt, jitter_unit);
            RowChange::Retry {
                due_at: now + Duration::from_std(delay).unwrap_or(Duration::hours(1)),
                why,
            }
        }
        SendOutcome::Transient(why) => RowChange::Failed {
            reason: format!("Gave up after {attempt} attempts; the last one failed: {why}."),
        },
        SendOutcome::Permanent(why) => RowChange::Failed {
            reason: format!("{}.", capitalize(&why)),
        },
    }
}

/// The delay before retry number `attempt` (1-based): `base * 2^(attempt-1)`, capped at an hour,
/// times a random factor in [0.5, 1.5) so that a relay coming back is not hit by every retry at
/// once.
pub fn backoff(base: std::time::Duration, attempt: u32, jitter_unit: f64) -> std::time::Duration {
    let exp = base.as_secs_f64() * 2f64.powi(attempt.saturating_sub(1).min(30) as i32);
    let capped = exp.min(3600.0);
    std::time::Duration::from_secs_f64(capped * (0.5 + jitter_unit.clamp(0.0, 1.0)))
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// What a first attempt, ending in `change` at `at`, makes of an invitation whose newest email it
/// was, and of the email's row, as the outcome will be recorded if nothing else changes them
/// meanwhile: what a request that sent its own email can say once the relay has replied.
pub fn after_attempt(
    inv: &Invitation,
    change: &RowChange,
    at: DateTime<Utc>,
) -> (Invitation, EmailState) {
    let attempted = EmailState {
        attempts: 1,
        ..EmailState::default()
    };
    match change {
        RowChange::Delivered => (
            after_delivered(inv, at).unwrap_or_else(|| inv.clone()),
            EmailState {
                delivered: true,
                ..attempted
            },
        ),
        RowChange::Retry { why, .. } => (
            inv.clone(),
            EmailState {
                last_error: Some(why.clone()),
                ..attempted
            },
        ),
        RowChange::Failed { reason } => (
            after_failed(inv, true, reason, at).unwrap_or_else(|| inv.clone()),
            EmailState {
                failed: true,
                last_error: Some(reason.clone()),
                ..attempted
            },
        ),
    }
}

/// The invitation after its email was delivered at `now`, if that changes it: `sentAt` is the
/// first delivery; later deliveries (resends) keep it.
pub fn after_delivered(inv: &Invitation, now: DateTime<Utc>) -> Option<Invitation> {
    inv.sent_at.is_none().then(|| Invitation {
        sent_at: Some(now),
        ..inv.clone()
    })
}

/// The invitation after one of its emails failed for good, if that changes it. Only the
/// invitation's newest email speaks for it (an old copy failing after a resend does not undo the
/// resend), and an invitation that is no longer outstanding keeps its state.
pub fn after_failed(
    inv: &Invitation,
    is_newest_email: bool,
    reason: &str,
    now: DateTime<Utc>,
) -> Option<Invitation> {
    let outstanding = matches!(
        inv.status_at(now),
        Status::Pending | Status::Resent | Status::FailedToSend
    );
    (is_newest_email && outstanding).then(|| Invitation {
        status: StoredStatus::FailedToSend,
        send_failure_reason: Some(reason.to_string()),
        ..inv.clone()
    })
}

/// Where the email of a create or resend stands when the response is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The relay accepted it.
    Delivered,
    /// Not attempted yet.
    Queued,
    /// Attempted and failed for now; retries follow.
    Retrying,
    /// Given up: the invitation is "Failed to send".
    Failed,
    /// A later resend queued a newer email before this one went out; the newer one carries the
    /// invitation.
    Superseded,
}

/// What a request can truthfully report about its email: `email` is the row it queued (as read
/// now, `None` if it cannot be read), `current` the invitation's status now.
pub fn reported(current: Status, email: Option<&EmailState>) -> Delivery {
    match email {
        Some(e) if e.delivered => Delivery::Delivered,
        Some(e) if e.superseded => Delivery::Superseded,
        Some(e) if e.failed => Delivery::Failed,
        // The row still waits, but a newer email of the invitation has already failed for good.
        _ if current == Status::FailedToSend => Delivery::Failed,
        Some(e) if e.attempts > 0 => Delivery::Retrying,
        _ => Delivery::Queued,
    }
}

/// The `safeMessage` of a create or resend: never claims more than is true at that moment, and
/// tells the inviter what to do when delivery failed.
pub fn delivery_message(kind: EmailKind, email: &str, delivery: Delivery) -> String {
    let to = mask_email(email);
    match (delivery, kind) {
        (Delivery::Delivered, EmailKind::Invite) => format!("Invitation sent to {to}."),
        (Delivery::Delivered, EmailKind::Resend) => resent_message(email),
        (Delivery::Queued, EmailKind::Invite) => {
            format!("Invitation to {to} is queued for delivery.")
        }
        (Delivery::Queued, EmailKind::Resend) => {
            format!("Invitation to {to} is queued to be resent.")
        }
        (Delivery::Retrying, _) => {
            format!("Delivery to {to} is delayed; it will be retried automatically.")
        }
        (Delivery::Failed, _) => format!(
            "The invitation could not be delivered to {to}. Check the address, then resend it."
        ),
        (Delivery::Superseded, _) => format!(
            "The invitation to {to} was resent before this email went out; the newer email carries it."
        ),
    }
}

/// The `safeMessage` of a successful resend once its email went out.
pub fn resent_message(email: &str) -> String {
    format!("Invitation resent to {}.", mask_email(email))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tests::sample;

    const RETRY: RetryPolicy = RetryPolicy {
        max_attempts: 3,
        base: std::time::Duration::from_secs(2),
    };

    #[test]
    fn backoff_doubles_with_jitter_and_caps_at_an_hour() {
        let base = std::time::Duration::from_secs(2);
        assert_eq!(backoff(base, 1, 0.5), std::time::Duration::from_secs(2));
        assert_eq!(backoff(base, 2, 0.5), std::time::Duration::from_secs(4));
        assert_eq!(backoff(base, 4, 0.5), std::time::Duration::from_secs(16));
        assert_eq!(backoff(base, 3, 0.0), std::time::Duration::from_secs(4));
        assert_eq!(backoff(base, 3, 1.0), std::time::Duration::from_secs(12));
        assert_eq!(backoff(base, 40, 0.5), std::time::Duration::from_secs(3600));
    }

    #[test]
    fn transient_failures_retry_until_the_attempt_limit_and_permanent_ones_end_at_once() {
        let now = sample(StoredStatus::Pending).created_at;
        assert_eq!(
            row_change(SendOutcome::Accepted, 1, RETRY, now, 0.5),
            RowChange::Delivered
        );
        assert_eq!(
            row_change(SendOutcome::Transient("451".into()), 2, RETRY, now, 0.5),
            RowChange::Retry {
                due_at: now + Duration::seconds(4),
                why: "451".into()
            }
        );
        assert_eq!(
            row_change(SendOutcome::Transient("451".into()), 3, RETRY, now, 0.5),
            RowChange::Failed {
                reason: "Gave up after 3 attempts; the last one failed: 451.".into()
            }
        );
        assert_eq!(
            row_change(
                SendOutcome::Permanent("the relay said 550".into()),
                1,
                RETRY,
                now,
                0.5
            ),
            RowChange::Failed {
                reason: "The relay said 550.".into()
            }
        );
    }

    #[test]
    fn only_outstanding_invitations_are_sent() {
        let inv = sample(StoredStatus::Pending);
        assert_eq!(not_sendable(Some(&inv), inv.created_at), None);
        assert_eq!(
            not_sendable(Some(&inv), inv.expires_at).as_deref(),
            Some("not sent: the invitation was expired before delivery")
        );
        let revoked = sample(StoredStatus::Revoked);
        assert!(not_sendable(Some(&revoked), revoked.created_at).is_some());
        assert!(not_sendable(None, inv.created_at).is_some());
    }

    #[test]
    fn sent_at_is_the_first_delivery() {
        let inv = sample(StoredStatus::Resent);
        let first = after_delivered(&inv, inv.created_at).expect("first delivery sets sentAt");
        assert_eq!(first.sent_at, Some(inv.created_at));
        assert_eq!(after_delivered(&first, first.expires_at), None);
    }

    #[test]
    fn only_the_newest_email_of_an_outstanding_invitation_fails_it() {
        let inv = sample(StoredStatus::Resent);
        let now = inv.created_at;
        let failed = after_failed(&inv, true, "No such user.", now).unwrap();
        assert_eq!(failed.status, StoredStatus::FailedToSend);
        assert_eq!(failed.send_failure_reason.as_deref(), Some("No such user."));
        assert_eq!(after_failed(&inv, false, "old copy", now), None);
        assert_eq!(after_failed(&inv, true, "late", inv.expires_at), None);
        let accepted = sample(StoredStatus::Accepted);
        assert_eq!(after_failed(&accepted, true, "late", now), None);
    }

    #[test]
    fn a_request_reports_only_what_happened_to_its_own_email() {
        let state = |attempts, delivered, failed, superseded| EmailState {
            attempts,
            delivered,
            failed,
            superseded,
            last_error: None,
        };
        assert_eq!(reported(Status::Resent, None), Delivery::Queued);
        assert_eq!(
            reported(Status::Resent, Some(&state(0, false, false, false))),
            Delivery::Queued
        );
        assert_eq!(
            reported(Status::Resent, Some(&state(1, false, false, false))),
            Delivery::Retrying
        );
        assert_eq!(
            reported(Status::Resent, Some(&state(1, true, false, false))),
            Delivery::Delivered
        );
        assert_eq!(
            reported(Status::FailedToSend, Some(&state(1, false, true, false))),
            Delivery::Failed
        );
        // Superseded by a later resend: neither delivered nor a failure of the address.
        assert_eq!(
            reported(Status::Resent, Some(&state(0, false, false, true))),
            Delivery::Superseded
        );
        assert_eq!(
            reported(Status::FailedToSend, Some(&state(0, false, false, true))),
            Delivery::Superseded
        );
    }

    #[test]
    fn delivery_messages_say_only_what_is_true() {
        use Delivery::*;
        use EmailKind::*;
        assert_eq!(
            delivery_message(Resend, "ann@example.com", Delivered),
            "Invitation resent to a•••@example.com."
        );
        assert_eq!(
            delivery_message(Invite, "ann@example.com", Delivered),
            "Invitation sent to a•••@example.com."
        );
        for d in [Queued, Retrying, Failed, Superseded] {
            for k in [Invite, Resend] {
                let m = delivery_message(k, "ann@example.com", d);
                assert!(!m.contains(" sent to") && !m.contains("resent to"), "{m}");
                assert!(m.contains("a•••@example.com"), "{m}");
            }
        }
        assert!(delivery_message(Resend, "ann@example.com", Failed).contains("Check the address"));
        // Superseded by a later resend: nothing is wrong with the address.
        let superseded = delivery_message(Resend, "ann@example.com", Superseded);
        assert!(superseded.contains("newer email"), "{superseded}");
        assert!(!superseded.contains("Check the address"), "{superseded}");
    }

    #[test]
    fn safe_message_hides_the_local_part() {
        assert_eq!(
            resent_message("ann.lee@example.com"),
            "Invitation resent to a•••@example.com."
        );
        assert_eq!(mask_email("not-an-address"), "•••");
    }

    #[test]
    fn email_kinds_have_one_stored_name_each() {
        for k in EmailKind::ALL {
            assert_eq!(k.as_str().parse::<EmailKind>(), Ok(*k));
        }
        assert!("other".parse::<EmailKind>().is_err());
    }
}
