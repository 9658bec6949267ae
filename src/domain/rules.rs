//! The business rules of managing invitations (DESIGN.md, "Resend: the business rules"): who may
//! manage which role, when a resend is allowed and what it changes, the daily email cap. Pure
//! functions of the invitation, the caller's role, the policy and the time; the application
//! layer runs them inside its transaction, so that what is decided and what is written are the
//! same thing. Must never import the store, the mail transport or the API.

use chrono::{DateTime, Duration, Utc};

use super::{BillingStatus, Invitation, License, Role, Status, StoredStatus};

/// The configurable limits and periods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// How long an invitation can be accepted after it was (re)sent.
    pub validity: Duration,
    /// The least time between two emails for one invitation.
    pub resend_cooldown: Duration,
    /// Invitation emails (creates and resends together) per business per UTC day.
    pub daily_email_cap: u32,
    /// The most seats a business's subscription item may hold; `None` for no limit.
    pub seat_limit: Option<i64>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            validity: Duration::days(7),
            resend_cooldown: Duration::seconds(60),
            daily_email_cap: 200,
            seat_limit: Some(100),
        }
    }
}

/// Whether a member with `caller` role may invite, resend or revoke for the `target` role:
/// Owners manage every role, Admins every role but Owner, Agents none.
pub fn may_manage(caller: Role, target: Role) -> bool {
    match caller {
        Role::Owner => true,
        Role::Admin => target != Role::Owner,
        Role::Agent => false,
    }
}

/// Why a resend is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResendRefusal {
    /// 403: an Agent, or an Admin resending an Owner invitation.
    Forbidden,
    /// 409: accepted invitations are done.
    Accepted,
    /// 409: revoked invitations stay revoked.
    Revoked,
    /// 429: the last email for this invitation went out less than the cooldown ago.
    Cooldown { retry_after_secs: u64 },
}

/// What a permitted resend needs besides the state change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResendDecision {
    /// The invitation no longer holds a seat (it expired and the sweeper released it), so the
    /// resend must take one again, or be refused if none can be had.
    pub takes_seat: bool,
}

/// When the last invitation email for `inv` was queued: the last resend, else the creation.
pub fn last_email_at(inv: &Invitation) -> DateTime<Utc> {
    inv.resent_at.unwrap_or(inv.created_at)
}

/// Decides whether `caller` may resend `inv` at `now`. Checks run in the order a caller is best
/// served by: permission first (so a forbidden caller learns nothing about timing), then state,
/// then the cooldown.
pub fn check_resend(
    inv: &Invitation,
    caller: Role,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Result<ResendDecision, ResendRefusal> {
    if !may_manage(caller, inv.role) {
        return Err(ResendRefusal::Forbidden);
    }
    match inv.status_at(now) {
        Status::Accepted => return Err(ResendRefusal::Accepted),
        Status::Revoked => return Err(ResendRefusal::Revoked),
        Status::Pending | Status::Resent | Status::FailedToSend | Status::Expired => {}
    }
    let next_allowed = last_email_at(inv) + policy.resend_cooldown;
    if now < next_allowed {
        return Err(ResendRefusal::Cooldown {
            retry_after_secs: ceil_secs(next_allowed - now),
        });
    }
    let holds_seat = inv
        .license
        .as_ref()
        .is_some_and(|l| l.released_at.is_none());
    Ok(ResendDecision {
        takes_seat: !holds_seat,
    })
}

/// A seat taken on the business's subscription item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeatGrant {
    pub billing_status: BillingStatus,
    /// The item's quantity after taking the seat.
    pub quantity: i64,
    /// The period end used for proration.
    pub renewal_date: DateTime<Utc>,
}

/// The invitation after a permitted resend at `now`: recipient, role and token kept; status
/// Resent; resentAt now; expiresAt now + validity; failure reason cleared; sentAt kept as the
/// first delivery; a new seat recorded when one was taken.
pub fn apply_resend(
    inv: &Invitation,
    now: DateTime<Utc>,
    policy: &Policy,
    seat: Option<SeatGrant>,
) -> Invitation {
    let mut next = inv.clone();
    next.status = StoredStatus::Resent;
    next.resent_at = Some(now);
    next.expires_at = now + policy.validity;
    next.send_failure_reason = None;
    if let Some(seat) = seat {
        next.license = Some(License {
            billing_status: seat.billing_status,
            quantity: seat.quantity,
            renewal_date: seat.renewal_date,
            activated_at: now,
            released_at: None,
        });
    }
    next
}

/// The daily email cap: `Err(retry_after_secs)` when `sent_today` emails already went out for the
/// business on `now`'s UTC day; the cap resets at the next UTC midnight.
pub fn check_daily_cap(sent_today: u32, now: DateTime<Utc>, policy: &Policy) -> Result<(), u64> {
    if sent_today < policy.daily_email_cap {
        return Ok(());
    }
    Err(ceil_secs(next_utc_midnight(now) - now))
}

/// The start of `now`'s UTC day: the daily cap counts the emails since.
pub fn start_of_utc_day(now: DateTime<Utc>) -> DateTime<Utc> {
    now.date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or(now)
}

/// The start of the UTC day after `now`'s.
pub fn next_utc_midnight(now: DateTime<Utc>) -> DateTime<Utc> {
    let today = now.date_naive();
    let tomorrow = today.succ_opt().unwrap_or(today);
    tomorrow
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or(now)
}

/// Whole seconds, rounded up, never below one: a Retry-After of 0 invites a retry storm.
fn ceil_secs(d: Duration) -> u64 {
    let ms = d.num_milliseconds().max(0) as u64;
    ms.div_ceil(1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tests::sample;

    fn at(inv: &Invitation, secs: i64) -> DateTime<Utc> {
        inv.created_at + Duration::seconds(secs)
    }

    #[test]
    fn role_matrix() {
        use Role::*;
        let allowed = [
            (Owner, Owner),
            (Owner, Admin),
            (Owner, Agent),
            (Admin, Admin),
            (Admin, Agent),
        ];
        for caller in [Owner, Admin, Agent] {
            for target in [Owner, Admin, Agent] {
                assert_eq!(
                    may_manage(caller, target),
                    allowed.contains(&(caller, target)),
                    "{caller:?} -> {target:?}"
                );
            }
        }
    }

    #[test]
    fn each_state_has_its_resend_outcome() {
        let policy = Policy::default();
        let cases = [
            (StoredStatus::Pending, Ok(())),
            (StoredStatus::Resent, Ok(())),
            (StoredStatus::FailedToSend, Ok(())),
            (StoredStatus::Accepted, Err(ResendRefusal::Accepted)),
            (StoredStatus::Revoked, Err(ResendRefusal::Revoked)),
        ];
        for (stored, expected) in cases {
            let inv = sample(stored);
            let got = check_resend(&inv, Role::Owner, at(&inv, 3600), &policy).map(|_| ());
            assert_eq!(got, expected, "{stored:?}");
        }
        // Expired when read: resendable, though no sweeper ever touched it.
        let inv = sample(StoredStatus::Pending);
        assert!(
            check_resend(
                &inv,
                Role::Owner,
                inv.expires_at + Duration::days(1),
                &policy
            )
            .is_ok()
        );
    }

    #[test]
    fn permission_is_checked_before_state_and_timing() {
        let mut inv = sample(StoredStatus::Accepted);
        inv.role = Role::Owner;
        assert_eq!(
            check_resend(&inv, Role::Admin, inv.created_at, &Policy::default()),
            Err(ResendRefusal::Forbidden)
        );
        assert_eq!(
            check_resend(&inv, Role::Agent, inv.created_at, &Policy::default()),
            Err(ResendRefusal::Forbidden)
        );
    }

    #[test]
    fn cooldown_counts_from_the_last_email_and_rounds_retry_after_up() {
        let policy = Policy::default();
        let mut inv = sample(StoredStatus::Pending);
        assert_eq!(
            check_resend(&inv, Role::Owner, at(&inv, 0), &policy),
            Err(ResendRefusal::Cooldown {
                retry_after_secs: 60
            })
        );
        let almost = inv.created_at + Duration::milliseconds(59_001);
        assert_eq!(
            check_resend(&inv, Role::Owner, almost, &policy),
            Err(ResendRefusal::Cooldown {
                retry_after_secs: 1
            })
        );
        assert!(check_resend(&inv, Role::Owner, at(&inv, 60), &policy).is_ok());

        inv.resent_at = Some(at(&inv, 600));
        assert_eq!(
            check_resend(&inv, Role::Owner, at(&inv, 630), &policy),
            Err(ResendRefusal::Cooldown {
                retry_after_secs: 30
            })
        );
    }

    #[test]
    fn a_resend_takes_a_seat_only_when_the_invitation_holds_none() {
        let policy = Policy::default();
        let mut inv = sample(StoredStatus::Pending);
        let later = inv.expires_at + Duration::days(1);
        assert!(
            check_resend(&inv, Role::Owner, later, &policy)
                .unwrap()
                .takes_seat,
            "no license at all"
        );
        inv.license = Some(License {
            billing_status: BillingStatus::Included,
            quantity: 3,
            renewal_date: later,
            activated_at: inv.created_at,
            released_at: None,
        });
        assert!(
            !check_resend(&inv, Role::Owner, later, &policy)
                .unwrap()
                .takes_seat,
            "still holds its seat"
        );
        inv.license.as_mut().unwrap().released_at = Some(inv.expires_at);
        assert!(
            check_resend(&inv, Role::Owner, later, &policy)
                .unwrap()
                .takes_seat,
            "seat released by the sweeper"
        );
    }

    #[test]
    fn applying_a_resend_keeps_identity_and_refreshes_delivery() {
        let policy = Policy::default();
        let mut inv = sample(StoredStatus::FailedToSend);
        inv.sent_at = Some(at(&inv, 5));
        inv.send_failure_reason = Some("550 no such user".into());
        let now = inv.expires_at + Duration::days(2);
        let seat = SeatGrant {
            billing_status: BillingStatus::Included,
            quantity: 4,
            renewal_date: now + Duration::days(20),
        };
        let next = apply_resend(&inv, now, &policy, Some(seat));

        assert_eq!(
            (next.id.as_str(), next.email.as_str(), next.role),
            (inv.id.as_str(), inv.email.as_str(), inv.role)
        );
        assert_eq!(next.status, StoredStatus::Resent);
        assert_eq!(next.status_at(now), Status::Resent);
        assert_eq!(next.resent_at, Some(now));
        assert_eq!(next.expires_at, now + Duration::days(7));
        assert_eq!(next.sent_at, inv.sent_at, "sentAt keeps the first delivery");
        assert_eq!(next.send_failure_reason, None);
        let license = next.license.unwrap();
        assert_eq!(
            (license.quantity, license.activated_at, license.released_at),
            (4, now, None)
        );

        let unchanged_billing = apply_resend(&sample(StoredStatus::Pending), now, &policy, None);
        assert_eq!(unchanged_billing.license, None);
    }

    #[test]
    fn daily_cap_resets_at_utc_midnight() {
        let policy = Policy {
            daily_email_cap: 3,
            ..Policy::default()
        };
        let now = "2026-11-28T23:59:30Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(check_daily_cap(2, now, &policy), Ok(()));
        assert_eq!(check_daily_cap(3, now, &policy), Err(30));
        let noon = "2026-11-28T12:00:00Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(check_daily_cap(9, noon, &policy), Err(12 * 3600));
    }
}
