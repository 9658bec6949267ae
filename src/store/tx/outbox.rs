//! The outbox: the emails queued by changes of invitations, their claims (fenced leases) and
//! outcomes, and the per-day counts of emails queued that the daily cap reads.

use chrono::{DateTime, Utc};

use super::super::sql::{Sql, params};
use super::super::{OutboxRow, OutboxState, StoreError};
use super::{Tx, count, one};
use crate::domain::delivery::EmailKind;
use crate::domain::rules::start_of_utc_day;
use crate::domain::{BusinessId, InvitationId, OutboxId};

impl Tx<'_> {
    /// Queues an email, due now; claimed until `claim_until` (its first claim) when given.
    pub fn insert_outbox(
        &mut self,
        business_id: &BusinessId,
        invitation_id: &InvitationId,
        kind: EmailKind,
        now: DateTime<Utc>,
        claim_until: Option<DateTime<Utc>>,
    ) -> Result<OutboxRow, StoreError> {
        /// A new email, claimed at once (`claimed_until` and one claim) when the process that queues it
        /// sends it itself.
        static INSERT_OUTBOX: Sql = Sql::new(
            "INSERT INTO outbox (business_id, invitation_id, kind, created_at, due_at, claimed_until, claims) \
             VALUES ($1, $2, $3, $4, $4, $5, $6) RETURNING id",
        );
        let claims = i64::from(claim_until.is_some());
        let rows = self.conn.query(
            &INSERT_OUTBOX,
            params![
                business_id,
                invitation_id,
                kind.as_str(),
                now,
                claim_until,
                claims
            ],
        )?;
        Ok(OutboxRow {
            id: one(rows)?.get(0)?,
            business_id: business_id.clone(),
            invitation_id: invitation_id.clone(),
            kind,
            attempts: 0,
            claim: claims,
        })
    }

    /// Counts an email queued at `now` towards its business's daily cap ([`Tx::emails_on`]).
    pub fn count_email(
        &mut self,
        business_id: &BusinessId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        /// Counts an email queued for the daily cap.
        static COUNT_EMAIL: Sql = Sql::new(
            "INSERT INTO email_counts (business_id, day, emails) VALUES ($1, $2, 1) \
             ON CONFLICT (business_id, day) DO UPDATE SET emails = email_counts.emails + 1",
        );
        self.conn
            .execute(&COUNT_EMAIL, params![business_id, start_of_utc_day(now)])?;
        Ok(())
    }

    /// Emails the business queued on the UTC day that starts at `day` (every one counts, sent,
    /// failed or superseded).
    pub fn emails_on(
        &mut self,
        business_id: &BusinessId,
        day: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        static EMAILS_ON: Sql =
            Sql::new("SELECT emails FROM email_counts WHERE business_id = $1 AND day = $2");
        let rows = self.conn.query(&EMAILS_ON, params![business_id, day])?;
        match rows.first() {
            Some(row) => Ok(u32::try_from(row.get::<i64>(0)?).unwrap_or(u32::MAX)),
            None => Ok(0),
        }
    }

    /// Claims up to `limit` due rows until `lease_until`, in id order.
    pub fn claim_outbox(
        &mut self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        /// Claims due rows: unsent, unfailed, due, and not claimed by a live lease. PostgreSQL skips
        /// rows another replica is claiming at this moment instead of waiting for them; SQLite has one
        /// writer at a time, so the plain claim is already exclusive.
        static CLAIM_OUTBOX: Sql = Sql::new(
            "UPDATE outbox SET claimed_until = $2, claims = claims + 1 WHERE id IN (\
             SELECT id FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL AND superseded_at IS NULL AND due_at <= $1 \
             AND (claimed_until IS NULL OR claimed_until <= $1) ORDER BY due_at, id LIMIT $3 {skip_locked}) \
             RETURNING id, business_id, invitation_id, kind, attempts, claims",
        );
        let mut out = self
            .conn
            .query(&CLAIM_OUTBOX, params![now, lease_until, limit])?
            .iter()
            .map(|r| {
                Ok(OutboxRow {
                    id: r.get(0)?,
                    business_id: r.get(1)?,
                    invitation_id: r.get(2)?,
                    kind: r.name(3)?,
                    attempts: r.get(4)?,
                    claim: r.get(5)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        // RETURNING has no order of its own.
        out.sort_by_key(|r| r.id);
        Ok(out)
    }

    /// The relay took the message; `false` when the row had already ended or `row`'s claim is no
    /// longer the newest (the outcome is then not recorded).
    pub fn outbox_delivered(
        &mut self,
        row: &OutboxRow,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        /// The relay took the message. This is recorded even over a supersession: a worker whose claim
        /// lapsed mid-send may still have sent it, and the record must say what happened. Every outcome
        /// is fenced (`claims = $n`): only the newest claim of the row records one.
        static OUTBOX_DELIVERED: Sql = Sql::new(
            "UPDATE outbox SET delivered_at = $2, superseded_at = NULL, attempts = attempts + 1, \
             claimed_until = NULL, last_error = NULL \
             WHERE id = $1 AND claims = $3 AND delivered_at IS NULL AND failed_at IS NULL",
        );
        Ok(self
            .conn
            .execute(&OUTBOX_DELIVERED, params![row.id, now, row.claim])?
            > 0)
    }

    /// A transient failure: try again at `due_at`; `false` when the row had already ended or
    /// the claim is no longer the newest.
    pub fn outbox_retry(
        &mut self,
        row: &OutboxRow,
        due_at: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, StoreError> {
        /// A transient failure: due again at `$2`. Only while the row has not ended otherwise.
        static OUTBOX_RETRY: Sql = Sql::new(
            "UPDATE outbox SET due_at = $2, attempts = attempts + 1, claimed_until = NULL, last_error = $3 \
             WHERE id = $1 AND claims = $4 AND delivered_at IS NULL AND failed_at IS NULL AND superseded_at IS NULL",
        );
        Ok(self
            .conn
            .execute(&OUTBOX_RETRY, params![row.id, due_at, error, row.claim])?
            > 0)
    }

    /// A final failure, never retried; `false` when the row had already ended or the claim is
    /// no longer the newest.
    pub fn outbox_failed(
        &mut self,
        row: &OutboxRow,
        now: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, StoreError> {
        /// A final failure. Only while the row has not ended otherwise.
        static OUTBOX_FAILED: Sql = Sql::new(
            "UPDATE outbox SET failed_at = $2, attempts = attempts + 1, claimed_until = NULL, last_error = $3 \
             WHERE id = $1 AND claims = $4 AND delivered_at IS NULL AND failed_at IS NULL AND superseded_at IS NULL",
        );
        Ok(self
            .conn
            .execute(&OUTBOX_FAILED, params![row.id, now, error, row.claim])?
            > 0)
    }

    /// Gives back a claim whose send never started, so that the row is due at once for the
    /// next claim (here or on another replica); `false` when the claim was no longer the newest.
    pub fn outbox_release(&mut self, row: &OutboxRow) -> Result<bool, StoreError> {
        /// A claim given back unstarted (a worker shutting down): due at once for whoever claims next,
        /// its attempts unchanged. Only while the claim is still the worker's.
        static OUTBOX_RELEASE: Sql = Sql::new(
            "UPDATE outbox SET claimed_until = NULL WHERE id = $1 AND claims = $2 \
             AND delivered_at IS NULL AND failed_at IS NULL AND superseded_at IS NULL",
        );
        Ok(self
            .conn
            .execute(&OUTBOX_RELEASE, params![row.id, row.claim])?
            > 0)
    }

    /// Supersedes the invitation's rows still waiting (not ended, not under a live claim) with
    /// `reason`; returns their ids.
    pub fn outbox_supersede_waiting(
        &mut self,
        invitation_id: &InvitationId,
        now: DateTime<Utc>,
        reason: &str,
    ) -> Result<Vec<OutboxId>, StoreError> {
        /// Supersedes the invitation's emails still waiting: neither finished nor under a live claim. A
        /// row a worker holds is being sent right now; it is left to finish and record what really
        /// happened, so that no row ends both sent and cancelled.
        static SUPERSEDE_WAITING_OUTBOX: Sql = Sql::new(
            "UPDATE outbox SET superseded_at = $2, claimed_until = NULL, last_error = $3 \
             WHERE invitation_id = $1 AND delivered_at IS NULL AND failed_at IS NULL AND superseded_at IS NULL \
             AND (claimed_until IS NULL OR claimed_until <= $2) RETURNING id",
        );
        self.all(
            &SUPERSEDE_WAITING_OUTBOX,
            params![invitation_id, now, reason],
            |r| r.get(0),
        )
    }

    pub fn outbox_state(&mut self, id: OutboxId) -> Result<Option<OutboxState>, StoreError> {
        static OUTBOX_STATE: Sql = Sql::new(
            "SELECT attempts, delivered_at IS NOT NULL, failed_at IS NOT NULL, \
             superseded_at IS NOT NULL, last_error FROM outbox WHERE id = $1",
        );
        self.first(&OUTBOX_STATE, params![id], |r| {
            Ok(OutboxState {
                attempts: r.get(0)?,
                delivered: r.get(1)?,
                failed: r.get(2)?,
                superseded: r.get(3)?,
                last_error: r.get(4)?,
            })
        })
    }

    /// How many emails wait to be sent, and since when the earliest of them is due.
    pub fn outbox_backlog(&mut self) -> Result<(i64, Option<DateTime<Utc>>), StoreError> {
        /// The outbox's waiting rows (claimed or not) and the earliest due time among them: the claim's
        /// partial index holds exactly these rows.
        static OUTBOX_BACKLOG: Sql = Sql::new(
            "SELECT COUNT(*), MIN(due_at) FROM outbox \
             WHERE delivered_at IS NULL AND failed_at IS NULL AND superseded_at IS NULL",
        );
        let rows = self.conn.query(&OUTBOX_BACKLOG, params![])?;
        let row = one(rows)?;
        let due: Option<i64> = row.get(1)?;
        Ok((row.get(0)?, due.map(crate::store::time).transpose()?))
    }

    /// How many times the row has been claimed: the fence of its newest claim.
    pub fn outbox_claim_of(&mut self, id: OutboxId) -> Result<Option<i64>, StoreError> {
        static OUTBOX_CLAIMS: Sql = Sql::new("SELECT claims FROM outbox WHERE id = $1");
        self.first(&OUTBOX_CLAIMS, params![id], |r| r.get(0))
    }

    /// The newest outbox row of an invitation.
    pub fn latest_outbox_id(
        &mut self,
        invitation_id: &InvitationId,
    ) -> Result<Option<OutboxId>, StoreError> {
        static LATEST_OUTBOX_ID: Sql =
            Sql::new("SELECT MAX(id) FROM outbox WHERE invitation_id = $1");
        one(self.conn.query(&LATEST_OUTBOX_ID, params![invitation_id])?)?.get(0)
    }

    pub fn count_outbox_for(&mut self, invitation_id: &InvitationId) -> Result<u32, StoreError> {
        static COUNT_OUTBOX_FOR: Sql =
            Sql::new("SELECT COUNT(*) FROM outbox WHERE invitation_id = $1");
        count(self.conn.query(&COUNT_OUTBOX_FOR, params![invitation_id])?)
    }
}
