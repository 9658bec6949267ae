//! The business aggregate: a business, its user-license subscription item (the row every
//! operation of the business locks first) and its members.

use chrono::{DateTime, Utc};

use super::super::sql::{Row, Sql, params};
use super::super::{Business, Member, StoreError};
use super::Tx;
use crate::domain::{BusinessId, UserId};

/// The business in the columns from `at` (id, name, seat quantity, renewal date, billing
/// status, included seats, creation).
fn business(r: &Row, at: usize) -> Result<Business, StoreError> {
    Ok(Business {
        id: r.get(at)?,
        name: r.get(at + 1)?,
        seat_quantity: r.get(at + 2)?,
        renewal_date: r.time(at + 3)?,
        billing_status: r.name(at + 4)?,
        included_seats: r.get(at + 5)?,
        billing_anchor: r.time(at + 6)?,
    })
}

fn member(r: &Row) -> Result<Member, StoreError> {
    Ok(Member {
        business_id: r.get(0)?,
        user_id: r.get(1)?,
        email: r.get(2)?,
        role: r.name(3)?,
    })
}

/// Where an email address stands in a business ([`Tx::email_standing`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmailStanding {
    /// A member has it.
    pub member: bool,
    /// An outstanding invitation (other than the one asked about) is for it.
    pub other_outstanding: bool,
    /// Emails the business queued today (UTC).
    pub emails_today: u32,
}

impl Tx<'_> {
    pub fn insert_business(&mut self, b: &Business, now: DateTime<Utc>) -> Result<(), StoreError> {
        static INSERT_BUSINESS: Sql = Sql::new(
            "INSERT INTO businesses (id, name, seat_quantity, renewal_date, billing_status, created_at, included_seats) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        );
        self.conn.execute(
            &INSERT_BUSINESS,
            params![
                b.id,
                b.name,
                b.seat_quantity,
                b.renewal_date,
                b.billing_status.as_str(),
                now,
                b.included_seats
            ],
        )?;
        Ok(())
    }

    /// Locks the business for the rest of the transaction and returns it.
    pub fn lock_business(&mut self, id: &BusinessId) -> Result<Option<Business>, StoreError> {
        static LOCK_BUSINESS: Sql = Sql::new(
            "SELECT id, name, seat_quantity, renewal_date, billing_status, included_seats, created_at \
             FROM businesses WHERE id = $1 {for_update}",
        );
        self.first(&LOCK_BUSINESS, params![id], |r| business(r, 0))
    }

    /// The member `user_id` of the business, and the business, locked for the rest of the
    /// transaction: one statement where a member and a lock would take two.
    pub fn member_and_locked_business(
        &mut self,
        business_id: &BusinessId,
        user_id: &UserId,
    ) -> Result<Option<(Member, Business)>, StoreError> {
        static MEMBER_AND_LOCKED_BUSINESS: Sql = Sql::new(
            "SELECT m.business_id, m.user_id, m.email, m.role, b.id, b.name, b.seat_quantity, \
             b.renewal_date, b.billing_status, b.included_seats, b.created_at \
             FROM members m JOIN businesses b ON b.id = m.business_id \
             WHERE m.business_id = $1 AND m.user_id = $2 {for_update_of_b}",
        );
        self.first(
            &MEMBER_AND_LOCKED_BUSINESS,
            params![business_id, user_id],
            |r| Ok((member(r)?, business(r, 4)?)),
        )
    }

    pub fn update_business_seats(
        &mut self,
        id: &BusinessId,
        quantity: i64,
        renewal_date: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        static UPDATE_BUSINESS_SEATS: Sql =
            Sql::new("UPDATE businesses SET seat_quantity = $2, renewal_date = $3 WHERE id = $1");
        self.conn
            .execute(&UPDATE_BUSINESS_SEATS, params![id, quantity, renewal_date])?;
        Ok(())
    }

    pub fn insert_member(
        &mut self,
        m: &Member,
        first_name: Option<&str>,
        last_name: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        static INSERT_MEMBER: Sql = Sql::new(
            "INSERT INTO members (business_id, user_id, email, email_normalized, role, first_name, last_name, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        );
        self.conn.execute(
            &INSERT_MEMBER,
            params![
                m.business_id,
                m.user_id,
                m.email,
                m.email.to_lowercase(),
                m.role.as_str(),
                first_name,
                last_name,
                now
            ],
        )?;
        Ok(())
    }

    pub fn member(
        &mut self,
        business_id: &BusinessId,
        user_id: &UserId,
    ) -> Result<Option<Member>, StoreError> {
        static MEMBER: Sql = Sql::new(
            "SELECT business_id, user_id, email, role FROM members WHERE business_id = $1 AND user_id = $2",
        );
        self.first(&MEMBER, params![business_id, user_id], member)
    }

    /// Gives a member another role (Leadping's members API does; this server's tests do, to
    /// prove that a role taken away is not still exercised through a replay).
    pub fn set_member_role(
        &mut self,
        business_id: &BusinessId,
        user_id: &UserId,
        role: crate::domain::Role,
    ) -> Result<bool, StoreError> {
        static SET_MEMBER_ROLE: Sql =
            Sql::new("UPDATE members SET role = $3 WHERE business_id = $1 AND user_id = $2");
        let n = self.conn.execute(
            &SET_MEMBER_ROLE,
            params![business_id, user_id, role.as_str()],
        )?;
        Ok(n == 1)
    }

    /// Where an email address stands in the business, in one statement: whether it belongs to a
    /// member, whether an outstanding invitation other than `except` is for it, and how many
    /// emails the business queued on the UTC day `day` starts.
    pub fn email_standing(
        &mut self,
        business_id: &BusinessId,
        email_normalized: &str,
        except: Option<&crate::domain::InvitationId>,
        now: DateTime<Utc>,
        day: DateTime<Utc>,
    ) -> Result<EmailStanding, StoreError> {
        static EMAIL_STANDING: Sql = Sql::new(
            "SELECT \
             (SELECT COUNT(*) FROM members WHERE business_id = $1 AND email_normalized = $2), \
             (SELECT COUNT(*) FROM invitations WHERE business_id = $1 AND email_normalized = $2 \
              AND status IN ('Pending', 'Resent', 'FailedToSend') AND expires_at > $3 AND id <> $4), \
             (SELECT emails FROM email_counts WHERE business_id = $1 AND day = $5)",
        );
        let except = except.map_or("", |id| id.as_str());
        let rows = self.conn.query(
            &EMAIL_STANDING,
            params![business_id, email_normalized, now, except, day],
        )?;
        let row = super::one(rows)?;
        Ok(EmailStanding {
            member: row.get::<i64>(0)? > 0,
            other_outstanding: row.get::<i64>(1)? > 0,
            emails_today: u32::try_from(row.get::<Option<i64>>(2)?.unwrap_or(0))
                .unwrap_or(u32::MAX),
        })
    }

    pub fn member_by_email(
        &mut self,
        business_id: &BusinessId,
        email_normalized: &str,
    ) -> Result<Option<Member>, StoreError> {
        static MEMBER_BY_EMAIL: Sql = Sql::new(
            "SELECT business_id, user_id, email, role FROM members WHERE business_id = $1 AND email_normalized = $2",
        );
        self.first(
            &MEMBER_BY_EMAIL,
            params![business_id, email_normalized],
            member,
        )
    }

    pub fn members(&mut self, business_id: &BusinessId) -> Result<Vec<Member>, StoreError> {
        static MEMBERS: Sql = Sql::new(
            "SELECT business_id, user_id, email, role FROM members WHERE business_id = $1 ORDER BY created_at, user_id",
        );
        self.all(&MEMBERS, params![business_id], member)
    }
}
