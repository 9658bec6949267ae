//! The sweeper's operation: expired invitations give their seats back, so that billing never
//! charges for an invitation that can no longer be accepted, whether or not anyone reads it.

use super::{App, now};
use crate::billing;
use crate::domain::Status;
use crate::store::StoreError;

/// How many expired invitations one sweep looks at.
const SWEEP_BATCH: i64 = 500;

impl App {
    /// Releases the seats of invitations that expired; returns how many. Each release is a
    /// transaction of its own under the business's lock, re-checked there.
    pub async fn sweep(&self) -> Result<usize, StoreError> {
        let candidates = self
            .store
            .transaction(|tx| tx.expired_holding_seats(now(), SWEEP_BATCH))
            .await?;
        let mut released = 0;
        for candidate in candidates {
            let done = self
                .store
                .transaction(move |tx| {
                    let inv = &candidate.invitation;
                    let Some(mut business) = tx.lock_business(&inv.business_id)? else {
                        return Ok::<_, StoreError>(false);
                    };
                    let now = now();
                    let Some(mut record) = tx.invitation(&inv.business_id, &inv.id)? else {
                        return Ok(false);
                    };
                    let holds = record
                        .invitation
                        .license
                        .as_ref()
                        .is_some_and(|l| l.released_at.is_none());
                    if record.invitation.status_at(now) != Status::Expired || !holds {
                        return Ok(false);
                    }
                    billing::release_seat(
                        tx,
                        &mut business,
                        &mut record.invitation,
                        "invitation expired",
                        now,
                    )?;
                    tx.update_invitation(&record)?;
                    Ok(true)
                })
                .await?;
            released += usize::from(done);
        }
        Ok(released)
    }
}
