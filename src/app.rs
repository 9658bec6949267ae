//! The application layer: each operation of the API as one store transaction that runs the
//! domain rules and writes their outcome (state, seat ledger, outbox row, idempotency record)
//! together. Handlers call these; these never see HTTP.

use chrono::{DateTime, Datelike, Duration, Months, Utc};

use crate::auth::Identity;
use crate::domain::rules::{self, Policy, ResendRefusal, SeatGrant};
use crate::domain::{EmailAddress, Invitation, License, Role, Status, StoredStatus};
use crate::store::{
    Business, InvitationRecord, LedgerEntry, Member, Store, StoreError, StoredResponse, Tx,
};
use crate::tokens::{self, TokenKey};

/// How long a stored idempotent response is replayed.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::hours(24);

/// What every operation needs.
#[derive(Clone, Debug)]
pub struct App {
    pub store: Store,
    pub policy: Policy,
    pub tokens: TokenKey,
}

/// An `Idempotency-Key` with the fingerprint of the request it came with.
#[derive(Clone, Debug)]
pub struct Idempotency {
    pub key: String,
    pub request_hash: String,
}

/// The body an operation's success is answered with, rendered inside the transaction so that the
/// idempotency record stores exactly what was sent.
pub type Render = Box<dyn FnOnce(&Invitation, DateTime<Utc>) -> String + Send>;

/// A successful create or resend: fresh, or the replay of an earlier identical request.
#[derive(Debug)]
pub enum Outcome {
    Done {
        invitation: Box<Invitation>,
        body: String,
        /// The outbox row of the email this change queued.
        outbox_id: i64,
    },
    Replayed(StoredResponse),
}

/// Failures of create. Each names its status.
#[derive(Debug, PartialEq, Eq)]
pub enum CreateError {
    /// 403: the caller is not a member of the token's business.
    NotMember,
    /// 403: Agents cannot invite; Admins cannot invite Owners.
    Forbidden,
    /// 400: the email does not parse.
    InvalidEmail(String),
    /// 409: the email belongs to a member already.
    AlreadyMember,
    /// 409: an outstanding invitation for the email exists.
    DuplicateInvitation,
    /// 409: no seat can be had.
    SeatLimitReached,
    /// 422: the Idempotency-Key was used with another request.
    IdempotencyKeyReused,
    /// 429: the daily email cap is reached.
    DailyCap { retry_after_secs: u64 },
}

/// Failures of resend. Each names its status.
#[derive(Debug, PartialEq, Eq)]
pub enum ResendError {
    /// 403: the caller is not a member of the token's business.
    NotMember,
    /// 404: no such invitation in the caller's business.
    NotFound,
    /// 403: role rules.
    Forbidden,
    /// 409: already accepted.
    Accepted,
    /// 409: revoked.
    Revoked,
    /// 409: the invitation expired and another outstanding invitation for its email exists.
    DuplicateInvitation,
    /// 409: the invited email has become a member of the business.
    AlreadyMember,
    /// 409: the invitation needs a seat again and none can be had.
    SeatLimitReached,
    /// 422: the Idempotency-Key was used with another request.
    IdempotencyKeyReused,
    /// 429: per-invitation cooldown.
    Cooldown { retry_after_secs: u64 },
    /// 429: the daily email cap is reached.
    DailyCap { retry_after_secs: u64 },
}

/// Failures of revoke.
#[derive(Debug, PartialEq, Eq)]
pub enum RevokeError {
    /// 403
    NotMember,
    /// 404
    NotFound,
    /// 403
    Forbidden,
    /// 409
    Accepted,
}

/// Failures of list.
#[derive(Debug, PartialEq, Eq)]
pub enum ListError {
    /// 403
    NotMember,
}

/// Failures of look-up by token and accept.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    /// 404: no invitation has this token.
    NotFound,
    /// 409
    Accepted,
    /// 409
    Revoked,
    /// 409
    Expired,
    /// 409: the accepting email is not the invited one.
    EmailMismatch,
    /// 409: the invited email became a member meanwhile.
    AlreadyMember,
}

/// The member the identity names, if it is one.
fn caller(tx: &mut dyn Tx, identity: &Identity) -> Result<Option<Member>, StoreError> {
    tx.member(&identity.business_id, &identity.user_id)
}

/// The business's invitation with this client-given id; ids the server cannot have issued are
/// unknown without a query.
fn invitation_in(
    tx: &mut dyn Tx,
    business_id: &str,
    id: &str,
) -> Result<Option<InvitationRecord>, StoreError> {
    if !crate::domain::could_be_id(id) {
        return Ok(None);
    }
    tx.invitation(business_id, id)
}

/// Now, at the millisecond precision the store keeps, so that a response says exactly what a
/// later read will.
pub fn now() -> DateTime<Utc> {
    let t = Utc::now();
    t - Duration::nanoseconds(i64::from(t.timestamp_subsec_nanos() % 1_000_000))
}

/// The caller's membership and, locked for the rest of the transaction, its business; `None`
/// when the token's user is not a member.
fn member_and_locked_business(
    tx: &mut dyn Tx,
    identity: &Identity,
) -> Result<Option<(Member, Business)>, StoreError> {
    let Some(me) = caller(tx, identity)? else {
        return Ok(None);
    };
    Ok(tx
        .lock_business(&me.business_id)?
        .map(|business| (me, business)))
}

fn start_of_utc_day(now: DateTime<Utc>) -> DateTime<Utc> {
    now.date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or(now)
}

/// The end of the monthly billing period `now` falls in. Each end is counted from the
/// subscription's start rather than from the previous end, so a subscription started on the 31st
/// renews on the 31st again after February instead of drifting to the 28th for good.
fn current_period_end(business: &Business, now: DateTime<Utc>) -> DateTime<Utc> {
    let anchor = business.billing_anchor;
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

/// Moves the subscription item's quantity by `delta` for an invitation, with the period end the
/// change is prorated to, and records it in the ledger.
fn change_seats(
    tx: &mut dyn Tx,
    business: &mut Business,
    invitation_id: &str,
    delta: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    business.seat_quantity += delta;
    business.renewal_date = current_period_end(business, now);
    tx.update_business_seats(&business.id, business.seat_quantity, business.renewal_date)?;
    tx.insert_ledger(
        &LedgerEntry {
            business_id: business.id.clone(),
            invitation_id: Some(invitation_id.to_string()),
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
/// ledger; `None` when the seat limit forbids it.
fn take_seat(
    tx: &mut dyn Tx,
    business: &mut Business,
    invitation_id: &str,
    reason: &str,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Result<Option<SeatGrant>, StoreError> {
    if policy
        .seat_limit
        .is_some_and(|limit| business.seat_quantity >= limit)
    {
        return Ok(None);
    }
    change_seats(tx, business, invitation_id, 1, reason, now)?;
    // A seat within the included ones costs nothing more; one beyond them is billed, prorated to
    // the renewal date.
    let billing_status = if business.seat_quantity <= business.included_seats {
        "included"
    } else {
        "prorated"
    };
    Ok(Some(SeatGrant {
        billing_status: billing_status.to_string(),
        quantity: business.seat_quantity,
        renewal_date: business.renewal_date,
    }))
}

/// Gives an invitation's seat back, recording it in the ledger and on the invitation.
fn release_seat(
    tx: &mut dyn Tx,
    business: &mut Business,
    inv: &mut Invitation,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let Some(license) = inv.license.as_mut().filter(|l| l.released_at.is_none()) else {
        return Ok(());
    };
    change_seats(tx, business, &inv.id, -1, reason, now)?;
    license.billing_status = "released".to_string();
    license.quantity = business.seat_quantity;
    license.renewal_date = business.renewal_date;
    license.released_at = Some(now);
    Ok(())
}

/// The stored response for this key, or a refusal when the key came with another request.
fn replay(
    tx: &mut dyn Tx,
    business_id: &str,
    idem: Option<&Idempotency>,
    now: DateTime<Utc>,
) -> Result<Option<Result<StoredResponse, ()>>, StoreError> {
    let Some(idem) = idem else { return Ok(None) };
    Ok(tx
        .idempotent_response(business_id, &idem.key, now - IDEMPOTENCY_WINDOW)?
        .map(|stored| {
            if stored.request_hash == idem.request_hash {
                Ok(stored)
            } else {
                Err(())
            }
        }))
}

/// The end of a create or resend: queues the email in the same transaction, renders the
/// response, and keeps it for the request's Idempotency-Key.
fn queue_email(
    tx: &mut dyn Tx,
    invitation: Invitation,
    kind: &str,
    idem: Option<&Idempotency>,
    render: Render,
    now: DateTime<Utc>,
) -> Result<Outcome, StoreError> {
    let outbox_id = tx.insert_outbox(&invitation.business_id, &invitation.id, kind, now)?;
    let body = render(&invitation, now);
    if let Some(idem) = idem {
        let stored = StoredResponse {
            request_hash: idem.request_hash.clone(),
            status: 200,
            body: body.clone(),
        };
        tx.save_idempotent_response(&invitation.business_id, &idem.key, &stored, now)?;
    }
    Ok(Outcome::Done {
        invitation: Box::new(invitation),
        body,
        outbox_id,
    })
}

impl App {
    /// The acceptance token of an invitation (what the email carries).
    pub fn token_of(&self, record: &InvitationRecord) -> String {
        self.tokens
            .token(&record.invitation.id, &record.token_nonce)
    }

    pub async fn create(
        &self,
        identity: Identity,
        email: String,
        role: Role,
        idem: Option<Idempotency>,
        render: Render,
    ) -> Result<Result<Outcome, CreateError>, StoreError> {
        self.create_at(identity, email, role, idem, render, None)
            .await
    }

    /// `create` as if it ran at `at` (now when `None`): the demo seeds invitations that were
    /// sent a while ago, so that a first resend is not inside the cooldown.
    pub async fn create_at(
        &self,
        identity: Identity,
        email: String,
        role: Role,
        idem: Option<Idempotency>,
        render: Render,
        at: Option<DateTime<Utc>>,
    ) -> Result<Result<Outcome, CreateError>, StoreError> {
        let policy = self.policy.clone();
        self.store
            .transaction(move |tx| {
                let now = at.unwrap_or_else(now);
                let Some(me) = caller(tx, &identity)? else {
                    return Ok(Err(CreateError::NotMember));
                };
                if !rules::may_manage(me.role, role) {
                    return Ok(Err(CreateError::Forbidden));
                }
                let email = match EmailAddress::parse(&email) {
                    Ok(e) => e,
                    Err(why) => return Ok(Err(CreateError::InvalidEmail(why))),
                };
                let Some(mut business) = tx.lock_business(&me.business_id)? else {
                    return Ok(Err(CreateError::NotMember));
                };
                match replay(tx, &business.id, idem.as_ref(), now)? {
                    Some(Ok(stored)) => return Ok(Ok(Outcome::Replayed(stored))),
                    Some(Err(())) => return Ok(Err(CreateError::IdempotencyKeyReused)),
                    None => {}
                }
                if tx
                    .member_by_email(&business.id, &email.normalized())?
                    .is_some()
                {
                    return Ok(Err(CreateError::AlreadyMember));
                }
                if !tx
                    .outstanding_for_email(&business.id, &email.normalized(), now)?
                    .is_empty()
                {
                    return Ok(Err(CreateError::DuplicateInvitation));
                }
                let sent_today = tx.count_emails_since(&business.id, start_of_utc_day(now))?;
                if let Err(retry_after_secs) = rules::check_daily_cap(sent_today, now, &policy) {
                    return Ok(Err(CreateError::DailyCap { retry_after_secs }));
                }
                let id = format!("inv_{}", uuid::Uuid::new_v4().simple());
                let Some(seat) =
                    take_seat(tx, &mut business, &id, "invitation created", now, &policy)?
                else {
                    return Ok(Err(CreateError::SeatLimitReached));
                };
                let record = InvitationRecord {
                    invitation: Invitation {
                        id: id.clone(),
                        business_id: business.id.clone(),
                        business_name: business.name.clone(),
                        email: email.as_str().to_string(),
                        role,
                        status: StoredStatus::Pending,
                        created_at: now,
                        expires_at: now + policy.validity,
                        sent_at: None,
                        resent_at: None,
                        accepted_at: None,
                        revoked_at: None,
                        send_failure_reason: None,
                        license: Some(License {
                            billing_status: seat.billing_status,
                            quantity: seat.quantity,
                            renewal_date: seat.renewal_date,
                            activated_at: now,
                            released_at: None,
                        }),
                    },
                    email_normalized: email.normalized(),
                    token_nonce: tokens::random_hex(16),
                };
                tx.insert_invitation(&record)?;
                Ok(Ok(queue_email(
                    tx,
                    record.invitation,
                    "invite",
                    idem.as_ref(),
                    render,
                    now,
                )?))
            })
            .await
    }

    pub async fn list(
        &self,
        identity: Identity,
    ) -> Result<Result<(Vec<Invitation>, DateTime<Utc>), ListError>, StoreError> {
        self.store
            .transaction(move |tx| {
                let now = now();
                let Some(me) = caller(tx, &identity)? else {
                    return Ok(Err(ListError::NotMember));
                };
                let rows = tx.list_invitations(&me.business_id)?;
                Ok(Ok((rows.into_iter().map(|r| r.invitation).collect(), now)))
            })
            .await
    }

    pub async fn resend(
        &self,
        identity: Identity,
        invitation_id: String,
        idem: Option<Idempotency>,
        render: Render,
    ) -> Result<Result<Outcome, ResendError>, StoreError> {
        let policy = self.policy.clone();
        self.store
            .transaction(move |tx| {
                let now = now();
                let Some((me, mut business)) = member_and_locked_business(tx, &identity)? else {
                    return Ok(Err(ResendError::NotMember));
                };
                match replay(tx, &business.id, idem.as_ref(), now)? {
                    Some(Ok(stored)) => return Ok(Ok(Outcome::Replayed(stored))),
                    Some(Err(())) => return Ok(Err(ResendError::IdempotencyKeyReused)),
                    None => {}
                }
                // Unknown ids and other businesses' ids are the same 404.
                let Some(mut record) = invitation_in(tx, &business.id, &invitation_id)? else {
                    return Ok(Err(ResendError::NotFound));
                };
                let decision = match rules::check_resend(&record.invitation, me.role, now, &policy)
                {
                    Ok(d) => d,
                    Err(ResendRefusal::Forbidden) => return Ok(Err(ResendError::Forbidden)),
                    Err(ResendRefusal::Accepted) => return Ok(Err(ResendError::Accepted)),
                    Err(ResendRefusal::Revoked) => return Ok(Err(ResendError::Revoked)),
                    Err(ResendRefusal::Cooldown { retry_after_secs }) => {
                        return Ok(Err(ResendError::Cooldown { retry_after_secs }));
                    }
                };
                // Create allows one outstanding invitation per email; an expired one coming back
                // must not make two (each holding a seat), nor invite someone already a member.
                let email = record.email_normalized.clone();
                if tx.member_by_email(&business.id, &email)?.is_some() {
                    return Ok(Err(ResendError::AlreadyMember));
                }
                if tx
                    .outstanding_for_email(&business.id, &email, now)?
                    .iter()
                    .any(|other| other.invitation.id != record.invitation.id)
                {
                    return Ok(Err(ResendError::DuplicateInvitation));
                }
                let sent_today = tx.count_emails_since(&business.id, start_of_utc_day(now))?;
                if let Err(retry_after_secs) = rules::check_daily_cap(sent_today, now, &policy) {
                    return Ok(Err(ResendError::DailyCap { retry_after_secs }));
                }
                let seat = if decision.takes_seat {
                    match take_seat(
                        tx,
                        &mut business,
                        &record.invitation.id,
                        "expired invitation resent",
                        now,
                        &policy,
                    )? {
                        Some(seat) => Some(seat),
                        None => return Ok(Err(ResendError::SeatLimitReached)),
                    }
                } else {
                    None
                };
                record.invitation = rules::apply_resend(&record.invitation, now, &policy, seat);
                tx.update_invitation(&record)?;
                // The recipient gets the resent email, not also an older copy still waiting for
                // a relay that was down.
                tx.outbox_cancel_pending(&record.invitation.id, now, "Superseded by a resend")?;
                Ok(Ok(queue_email(
                    tx,
                    record.invitation,
                    "resend",
                    idem.as_ref(),
                    render,
                    now,
                )?))
            })
            .await
    }

    /// The invitation and its email's outbox row as they stand now (after the delivery wait).
    pub async fn delivery_view(
        &self,
        business_id: String,
        invitation_id: String,
        outbox_id: i64,
    ) -> Result<Option<(Invitation, Option<crate::store::OutboxState>, DateTime<Utc>)>, StoreError>
    {
        self.store
            .transaction(move |tx| {
                let Some(record) = tx.invitation(&business_id, &invitation_id)? else {
                    return Ok(Ok(None));
                };
                let state = tx.outbox_state(outbox_id)?;
                Ok(Ok::<_, ()>(Some((record.invitation, state, now()))))
            })
            .await
            .map(|r| r.unwrap_or_default())
    }

    /// Stores the body a create or resend finally answered with, for its Idempotency-Key.
    pub async fn update_idempotent_body(
        &self,
        business_id: String,
        key: String,
        body: String,
    ) -> Result<(), StoreError> {
        self.store
            .transaction(move |tx| {
                tx.update_idempotent_body(&business_id, &key, &body)?;
                Ok(Ok::<(), ()>(()))
            })
            .await?
            .ok();
        Ok(())
    }

    /// Revokes an invitation and releases its seat. Revoking a revoked invitation is a no-op.
    pub async fn revoke(
        &self,
        identity: Identity,
        invitation_id: String,
    ) -> Result<Result<(), RevokeError>, StoreError> {
        self.store
            .transaction(move |tx| {
                let now = now();
                let Some((me, mut business)) = member_and_locked_business(tx, &identity)? else {
                    return Ok(Err(RevokeError::NotMember));
                };
                let Some(mut record) = invitation_in(tx, &business.id, &invitation_id)? else {
                    return Ok(Err(RevokeError::NotFound));
                };
                if !rules::may_manage(me.role, record.invitation.role) {
                    return Ok(Err(RevokeError::Forbidden));
                }
                match record.invitation.status {
                    StoredStatus::Accepted => return Ok(Err(RevokeError::Accepted)),
                    StoredStatus::Revoked => return Ok(Ok(())),
                    StoredStatus::Pending | StoredStatus::Resent | StoredStatus::FailedToSend => {}
                }
                release_seat(
                    tx,
                    &mut business,
                    &mut record.invitation,
                    "invitation revoked",
                    now,
                )?;
                record.invitation.status = StoredStatus::Revoked;
                record.invitation.revoked_at = Some(now);
                tx.update_invitation(&record)?;
                Ok(Ok(()))
            })
            .await
    }

    fn find_by_token(
        &self,
        tx: &mut dyn Tx,
        token: &str,
    ) -> Result<Option<InvitationRecord>, StoreError> {
        let Some(id) = tokens::invitation_id_of(token) else {
            return Ok(None);
        };
        Ok(tx
            .invitation_by_id(id)?
            .filter(|r| self.tokens.verify(token, &r.invitation.id, &r.token_nonce)))
    }

    pub async fn lookup(
        &self,
        token: String,
    ) -> Result<Result<(Invitation, DateTime<Utc>), TokenError>, StoreError> {
        let app = self.clone();
        self.store
            .transaction(move |tx| {
                let now = now();
                Ok(match app.find_by_token(tx, &token)? {
                    Some(r) => Ok((r.invitation, now)),
                    None => Err(TokenError::NotFound),
                })
            })
            .await
    }

    /// Accepts an invitation: the recipient becomes a member with the invitation's role; the
    /// seat stays with them.
    pub async fn accept(
        &self,
        token: String,
        email: Option<String>,
        first_name: Option<String>,
        last_name: Option<String>,
    ) -> Result<Result<(Invitation, DateTime<Utc>), TokenError>, StoreError> {
        let app = self.clone();
        self.store
            .transaction(move |tx| {
                let now = now();
                let Some(found) = app.find_by_token(tx, &token)? else {
                    return Ok(Err(TokenError::NotFound));
                };
                let Some(_business) = tx.lock_business(&found.invitation.business_id)? else {
                    return Ok(Err(TokenError::NotFound));
                };
                // Re-read under the lock: a concurrent accept or revoke may have won.
                let Some(mut record) =
                    tx.invitation(&found.invitation.business_id, &found.invitation.id)?
                else {
                    return Ok(Err(TokenError::NotFound));
                };
                match record.invitation.status_at(now) {
                    Status::Accepted => return Ok(Err(TokenError::Accepted)),
                    Status::Revoked => return Ok(Err(TokenError::Revoked)),
                    Status::Expired => return Ok(Err(TokenError::Expired)),
                    Status::Pending | Status::Resent | Status::FailedToSend => {}
                }
                if let Some(given) = email.as_deref().filter(|e| !e.trim().is_empty()) {
                    let matches = EmailAddress::parse(given)
                        .is_ok_and(|e| e.normalized() == record.email_normalized);
                    if !matches {
                        return Ok(Err(TokenError::EmailMismatch));
                    }
                }
                if tx
                    .member_by_email(&record.invitation.business_id, &record.email_normalized)?
                    .is_some()
                {
                    return Ok(Err(TokenError::AlreadyMember));
                }
                let member = Member {
                    business_id: record.invitation.business_id.clone(),
                    user_id: format!("usr_{}", uuid::Uuid::new_v4().simple()),
                    email: record.invitation.email.clone(),
                    role: record.invitation.role,
                };
                tx.insert_member(&member, first_name.as_deref(), last_name.as_deref(), now)?;
                record.invitation.status = StoredStatus::Accepted;
                record.invitation.accepted_at = Some(now);
                tx.update_invitation(&record)?;
                Ok(Ok((record.invitation, now)))
            })
            .await
    }

    /// Releases the seats of invitations that expired; returns how many. Runs periodically so
    /// that billing never charges for an invitation that can no longer be accepted.
    pub async fn sweep(&self) -> Result<usize, StoreError> {
        let candidates = self
            .store
            .transaction(|tx| Ok(Ok::<_, ()>(tx.expired_holding_seats(now(), 500)?)))
            .await?
            .unwrap_or_default();
        let mut released = 0;
        for candidate in candidates {
            let done = self
                .store
                .transaction(move |tx| {
                    let now = now();
                    let inv = &candidate.invitation;
                    let Some(mut business) = tx.lock_business(&inv.business_id)? else {
                        return Ok(Ok(false));
                    };
                    let Some(mut record) = tx.invitation(&inv.business_id, &inv.id)? else {
                        return Ok(Ok(false));
                    };
                    let holds = record
                        .invitation
                        .license
                        .as_ref()
                        .is_some_and(|l| l.released_at.is_none());
                    if record.invitation.status_at(now) != Status::Expired || !holds {
                        return Ok(Ok::<bool, ()>(false));
                    }
                    release_seat(
                        tx,
                        &mut business,
                        &mut record.invitation,
                        "invitation expired",
                        now,
                    )?;
                    tx.update_invitation(&record)?;
                    Ok(Ok(true))
                })
                .await?;
            released += usize::from(done == Ok(true));
        }
        Ok(released)
    }

    /// Creates a business with its members (the demo and the tests use this). The seat quantity
    /// starts at one per member; `included_seats` of them come with the subscription.
    pub async fn create_business(
        &self,
        id: &str,
        name: &str,
        members: Vec<(String, String, Role)>,
        included_seats: i64,
    ) -> Result<(), StoreError> {
        let (id, name) = (id.to_string(), name.to_string());
        self.store
            .transaction(move |tx| {
                let now = now();
                let business = Business {
                    id: id.clone(),
                    name,
                    seat_quantity: members.len() as i64,
                    included_seats,
                    renewal_date: now
                        .checked_add_months(Months::new(1))
                        .unwrap_or(now + Duration::days(30)),
                    billing_anchor: now,
                    billing_status: "active".to_string(),
                };
                tx.insert_business(&business, now)?;
                for (user_id, email, role) in members {
                    tx.insert_member(
                        &Member {
                            business_id: id.clone(),
                            user_id,
                            email,
                            role,
                        },
                        None,
                        None,
                        now,
                    )?;
                }
                Ok(Ok::<(), ()>(()))
            })
            .await?
            .ok();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn started(anchor: DateTime<Utc>) -> Business {
        Business {
            id: "biz_1".into(),
            name: "Acme".into(),
            seat_quantity: 1,
            included_seats: 1,
            // A stored end that drifted under the old month-by-month stepping is ignored.
            renewal_date: Utc.with_ymd_and_hms(2026, 3, 28, 9, 0, 0).unwrap(),
            billing_anchor: anchor,
            billing_status: "active".into(),
        }
    }

    #[test]
    fn periods_end_whole_months_after_the_start_without_drifting() {
        let at = |y, m, d| Utc.with_ymd_and_hms(y, m, d, 9, 0, 0).unwrap();
        let b = started(at(2026, 1, 31));
        assert_eq!(current_period_end(&b, at(2026, 1, 31)), at(2026, 2, 28));
        assert_eq!(current_period_end(&b, at(2026, 2, 10)), at(2026, 2, 28));
        // The period that ends on February 28 is followed by one ending on March 31.
        assert_eq!(current_period_end(&b, at(2026, 2, 28)), at(2026, 3, 31));
        assert_eq!(current_period_end(&b, at(2026, 3, 29)), at(2026, 3, 31));
        assert_eq!(current_period_end(&b, at(2026, 4, 1)), at(2026, 4, 30));
        assert_eq!(current_period_end(&b, at(2028, 2, 29)), at(2028, 3, 31));
        // Mid-month starts: the day of the month is kept, before and after it in a month.
        let b = started(at(2025, 11, 15));
        assert_eq!(current_period_end(&b, at(2026, 11, 28)), at(2026, 12, 15));
        assert_eq!(current_period_end(&b, at(2026, 11, 2)), at(2026, 11, 15));
    }
}
