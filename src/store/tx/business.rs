//! The business aggregate: a business, its user-license subscription item (the row every
//! operation of the business locks first) and its members.

use chrono::{DateTime, Utc};

use super::super::sql::{Row, Sql, params};
use super::super::{Business, Member, StoreError};
use super::Tx;
use crate::domain::{BusinessId, UserId};

fn member(r: &Row) -> Result<Member, StoreError> {
    Ok(Member {
        business_id: r.get(0)?,
        user_id: r.get(1)?,
        email: r.get(2)?,
        role: r.name(3)?,
    })
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
        self.first(&LOCK_BUSINESS, params![id], |r| {
            Ok(Business {
                id: r.get(0)?,
                name: r.get(1)?,
                seat_quantity: r.get(2)?,
                renewal_date: r.time(3)?,
                billing_status: r.name(4)?,
                included_seats: r.get(5)?,
                billing_anchor: r.time(6)?,
            })
        })
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
