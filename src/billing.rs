//! Per-seat licensing on a business's shared user-license subscription item: the billing period
//! a change falls in, whether a seat is included or billed, and taking and giving back seats with
//! a ledger row for every change (so the ledger explains every `licenseQuantity` ever returned).
//!
//! The arithmetic is pure ([`period_end`], [`billing_status`]); [`take_seat`] and
//! [`release_seat`] write through the transaction they are given, inside the operation that needs
//! the seat. Used by the application layer only; must never import the API or the mail
//! transport.

use chrono::{DateTime, Datelike, Duration, Months, Utc};

use crate::domain::rules::{Policy, SeatGrant};
use crate::domain::{BillingStatus, Invitation, InvitationId};
use crate::store::{Business, LedgerEntry, StoreError, Tx};

/// The end of the monthly billing period `now` falls in, for a subscription started at `anchor`.
/// Each end is counted from the start rather than from the previous end, so a subscription
/// started on the 31st renews on the 31st again after February instead of drifting to the 28th
/// for good.
pub fn period_end(anchor: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
    let months_between =
        (now.year() - anchor.year()) * 12 + now.month() as i32 - anchor.month() as i32;
    let mut n = u32::try_from(months_between.max(1)).unwrap_or(1);
    loop {
        match anchor.checked_add_months(Months::new(n)) {
            Some(end) if end > now => return end,
            Some(_) => n += 1,
            None => return now + Duration::days(30),
        }
    }
}

/// The first period end of a subscription starting at `start`.
pub fn first_period_end(start: DateTime<Utc>) -> DateTime<Utc> {
    start
        .checked_add_months(Months::new(1))
        .unwrap_or(start + Duration::days(30))
}

/// How the seat that brought the quantity to `quantity_after` is billed: a seat within the
/// included ones costs nothing more; one beyond them is billed, prorated to the renewal date.
pub fn billing_status(quantity_after: i64, included: i64) -> BillingStatus {
    if quantity_after <= included {
        BillingStatus::Included
    } else {
        BillingStatus::Prorated
    }
}

/// Whether the seat limit leaves room for one more seat.
pub fn seat_available(business: &Business, policy: &Policy) -> bool {
    policy
        .seat_limit
        .is_none_or(|limit| business.seat_quantity < limit)
}

/// Moves the subscription item's quantity by `delta` for an invitation, with the period end the
/// change is prorated to, and records it in the ledger.
fn change_seats(
    tx: &mut Tx<'_>,
    business: &mut Business,
    invitation_id: &InvitationId,
    delta: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    business.seat_quantity += delta;
    business.renewal_date = period_end(business.billing_anchor, now);
    tx.update_business_seats(&business.id, business.seat_quantity, business.renewal_date)?;
    tx.insert_ledger(
        &LedgerEntry {
            business_id: business.id.clone(),
            invitation_id: Some(invitation_id.clone()),
            delta,
            quantity_after: business.seat_quantity,
            reason: reason.to_string(),
            proration_date: now,
            renewal_date: business.renewal_date,
        },
        now,
    )
}

/// Takes a seat on the business's subscription item for an invitation, recording it in the
/// ledger; `None` (and nothing written) when the seat limit forbids it.
pub fn take_seat(
    tx: &mut Tx<'_>,
    business: &mut Business,
    invitation_id: &InvitationId,
    reason: &str,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Result<Option<SeatGrant>, StoreError> {
    if !seat_available(business, policy) {
        return Ok(None);
    }
    change_seats(tx, business, invitation_id, 1, reason, now)?;
    Ok(Some(SeatGrant {
        billing_status: billing_status(business.seat_quantity, business.included_seats),
        quantity: business.seat_quantity,
        renewal_date: business.renewal_date,
    }))
}

/// Gives an invitation's seat back, recording it in the ledger and on the invitation; nothing
/// when it holds none.
pub fn release_seat(
    tx: &mut Tx<'_>,
    business: &mut Business,
    inv: &mut Invitation,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let Some(license) = inv.license.as_mut().filter(|l| l.released_at.is_none()) else {
        return Ok(());
    };
    change_seats(tx, business, &inv.id, -1, reason, now)?;
    license.billing_status = BillingStatus::Released;
    license.quantity = business.seat_quantity;
    license.renewal_date = business.renewal_date;
    license.released_at = Some(now);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 9, 0, 0).unwrap()
    }

    #[test]
    fn periods_end_whole_months_after_the_start_without_drifting() {
        let anchor = at(2026, 1, 31);
        assert_eq!(period_end(anchor, at(2026, 1, 31)), at(2026, 2, 28));
        assert_eq!(period_end(anchor, at(2026, 2, 10)), at(2026, 2, 28));
        // The period that ends on February 28 is followed by one ending on March 31.
        assert_eq!(period_end(anchor, at(2026, 2, 28)), at(2026, 3, 31));
        assert_eq!(period_end(anchor, at(2026, 3, 29)), at(2026, 3, 31));
        assert_eq!(period_end(anchor, at(2026, 4, 1)), at(2026, 4, 30));
        assert_eq!(period_end(anchor, at(2028, 2, 29)), at(2028, 3, 31));
        // Mid-month starts: the day of the month is kept, before and after it in a month.
        let anchor = at(2025, 11, 15);
        assert_eq!(period_end(anchor, at(2026, 11, 28)), at(2026, 12, 15));
        assert_eq!(period_end(anchor, at(2026, 11, 2)), at(2026, 11, 15));
    }

    #[test]
    fn the_first_period_is_one_month() {
        assert_eq!(first_period_end(at(2026, 1, 31)), at(2026, 2, 28));
        assert_eq!(first_period_end(at(2026, 11, 30)), at(2026, 12, 30));
    }

    #[test]
    fn seats_within_the_included_ones_cost_nothing_more() {
        assert_eq!(billing_status(3, 4), BillingStatus::Included);
        assert_eq!(billing_status(4, 4), BillingStatus::Included);
        assert_eq!(billing_status(5, 4), BillingStatus::Prorated);
        assert_eq!(billing_status(1, 0), BillingStatus::Prorated);
    }

    #[test]
    fn the_seat_limit_counts_every_seat_on_the_item() {
        let business = |quantity| Business {
            id: crate::domain::BusinessId::from_stored("biz_1".into()),
            name: "Acme".into(),
            seat_quantity: quantity,
            included_seats: 1,
            renewal_date: at(2026, 2, 1),
            billing_anchor: at(2026, 1, 1),
            billing_status: crate::domain::SubscriptionStatus::Active,
        };
        let limited = Policy {
            seat_limit: Some(5),
            ..Policy::default()
        };
        assert!(seat_available(&business(4), &limited));
        assert!(!seat_available(&business(5), &limited));
        let unlimited = Policy {
            seat_limit: None,
            ..Policy::default()
        };
        assert!(seat_available(&business(10_000), &unlimited));
    }
}
