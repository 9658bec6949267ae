//! The invitation aggregate: an invitation as stored, read with its business's name.

use chrono::{DateTime, Utc};

use super::super::sql::{Row, Sql, Value, params};
use super::super::{InvitationRecord, StoreError};
use super::Tx;
use crate::domain::{BusinessId, Invitation, InvitationId, License};

/// The invitation columns every invitation query selects, in the order
/// [`invitation_record`] reads them, followed by the query's own clauses.
macro_rules! select_invitations {
    ($clauses:literal) => {
        Sql::new(concat!(
            "SELECT i.id, i.business_id, b.name, i.email, i.role, i.status, \
             i.created_at, i.expires_at, i.sent_at, i.resent_at, i.accepted_at, i.revoked_at, \
             i.send_failure_reason, i.license_billing_status, i.license_quantity, \
             i.license_renewal_date, i.license_activated_at, i.license_released_at, \
             i.email_normalized, i.token_nonce \
             FROM invitations i JOIN businesses b ON b.id = i.business_id ",
            $clauses
        ))
    };
}

fn invitation_record(r: &Row) -> Result<InvitationRecord, StoreError> {
    let license = match r.get::<Option<i64>>(16)? {
        Some(activated) => Some(License {
            billing_status: crate::store::parse_name(
                &r.get::<Option<String>>(13)?.unwrap_or_default(),
            )?,
            quantity: r.get::<Option<i64>>(14)?.unwrap_or_default(),
            renewal_date: crate::store::time(r.get::<Option<i64>>(15)?.unwrap_or(activated))?,
            activated_at: crate::store::time(activated)?,
            released_at: r.opt_time(17)?,
        }),
        None => None,
    };
    Ok(InvitationRecord {
        invitation: Invitation {
            id: r.get(0)?,
            business_id: r.get(1)?,
            business_name: r.get(2)?,
            email: r.get(3)?,
            role: r.name(4)?,
            status: r.name(5)?,
            created_at: r.time(6)?,
            expires_at: r.time(7)?,
            sent_at: r.opt_time(8)?,
            resent_at: r.opt_time(9)?,
            accepted_at: r.opt_time(10)?,
            revoked_at: r.opt_time(11)?,
            send_failure_reason: r.get(12)?,
            license,
        },
        email_normalized: r.get(18)?,
        token_nonce: r.get(19)?,
    })
}

impl Tx<'_> {
    fn invitations(
        &mut self,
        sql: &'static Sql,
        params: &[Value<'_>],
    ) -> Result<Vec<InvitationRecord>, StoreError> {
        self.all(sql, params, invitation_record)
    }

    fn write_invitation(
        &mut self,
        sql: &'static Sql,
        r: &InvitationRecord,
    ) -> Result<u64, StoreError> {
        let i = &r.invitation;
        let l = i.license.as_ref();
        self.conn.execute(
            sql,
            params![
                i.id,
                i.business_id,
                i.email,
                r.email_normalized,
                i.role.as_str(),
                i.status.as_str(),
                r.token_nonce,
                i.created_at,
                i.expires_at,
                i.sent_at,
                i.resent_at,
                i.accepted_at,
                i.revoked_at,
                i.send_failure_reason,
                l.map(|l| l.billing_status.as_str()),
                l.map(|l| l.quantity),
                l.map(|l| l.renewal_date),
                l.map(|l| l.activated_at),
                l.and_then(|l| l.released_at),
            ],
        )
    }

    pub fn insert_invitation(&mut self, r: &InvitationRecord) -> Result<(), StoreError> {
        static INSERT_INVITATION: Sql = Sql::new(
            "INSERT INTO invitations (id, business_id, email, email_normalized, role, status, \
             token_nonce, created_at, expires_at, sent_at, resent_at, accepted_at, revoked_at, send_failure_reason, \
             license_billing_status, license_quantity, license_renewal_date, license_activated_at, license_released_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
        );
        self.write_invitation(&INSERT_INVITATION, r)?;
        Ok(())
    }

    pub fn update_invitation(&mut self, r: &InvitationRecord) -> Result<(), StoreError> {
        /// Same parameter numbering as [`INSERT_INVITATION`]; identity columns are not updated.
        static UPDATE_INVITATION: Sql = Sql::new(
            "UPDATE invitations SET email = $3, email_normalized = $4, role = $5, \
             status = $6, token_nonce = $7, created_at = $8, expires_at = $9, sent_at = $10, resent_at = $11, \
             accepted_at = $12, revoked_at = $13, send_failure_reason = $14, license_billing_status = $15, \
             license_quantity = $16, license_renewal_date = $17, license_activated_at = $18, license_released_at = $19 \
             WHERE id = $1 AND business_id = $2",
        );
        match self.write_invitation(&UPDATE_INVITATION, r)? {
            1 => Ok(()),
            n => Err(StoreError::Corrupt(format!(
                "updating invitation {} touched {n} rows",
                r.invitation.id
            ))),
        }
    }

    pub fn invitation(
        &mut self,
        business_id: &BusinessId,
        id: &InvitationId,
    ) -> Result<Option<InvitationRecord>, StoreError> {
        static INVITATION: Sql = select_invitations!("WHERE i.business_id = $1 AND i.id = $2");
        Ok(self
            .invitations(&INVITATION, params![business_id, id])?
            .pop())
    }

    pub fn invitation_by_id(
        &mut self,
        id: &InvitationId,
    ) -> Result<Option<InvitationRecord>, StoreError> {
        static INVITATION_BY_ID: Sql = select_invitations!("WHERE i.id = $1");
        Ok(self.invitations(&INVITATION_BY_ID, params![id])?.pop())
    }

    /// Invitations of the business for this email that are outstanding at `now`.
    pub fn outstanding_for_email(
        &mut self,
        business_id: &BusinessId,
        email_normalized: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<InvitationRecord>, StoreError> {
        static OUTSTANDING_FOR_EMAIL: Sql = select_invitations!(
            "WHERE i.business_id = $1 AND i.email_normalized = $2 \
             AND i.status IN ('Pending', 'Resent', 'FailedToSend') AND i.expires_at > $3"
        );
        self.invitations(
            &OUTSTANDING_FOR_EMAIL,
            params![business_id, email_normalized, now],
        )
    }

    /// Newest first.
    pub fn list_invitations(
        &mut self,
        business_id: &BusinessId,
    ) -> Result<Vec<InvitationRecord>, StoreError> {
        static LIST_INVITATIONS: Sql =
            select_invitations!("WHERE i.business_id = $1 ORDER BY i.created_at DESC, i.id DESC");
        self.invitations(&LIST_INVITATIONS, params![business_id])
    }

    /// Outstanding invitations past `expires_at` that still hold a seat, oldest first.
    pub fn expired_holding_seats(
        &mut self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<InvitationRecord>, StoreError> {
        static EXPIRED_HOLDING_SEATS: Sql = select_invitations!(
            "WHERE i.license_activated_at IS NOT NULL AND i.license_released_at IS NULL AND i.expires_at <= $1 \
             AND i.status IN ('Pending', 'Resent', 'FailedToSend') ORDER BY i.expires_at LIMIT $2"
        );
        self.invitations(&EXPIRED_HOLDING_SEATS, params![now, limit])
    }
}
