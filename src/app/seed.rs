//! Seeding businesses and their members, for the demo and the tests: the API has no operation
//! for it (businesses come from elsewhere in Leadping).

use super::{App, now};
use crate::billing;
use crate::domain::{BusinessId, Role, SubscriptionStatus, UserId};
use crate::store::{Business, Member, StoreError};

impl App {
    /// Creates a business with its members (ids as a token would carry them: `org_id`, `sub`).
    /// The seat quantity starts at one per member; `included_seats` of them come with the
    /// subscription. Fails if the business exists or an id is not fit to be one.
    pub async fn create_business(
        &self,
        id: &str,
        name: &str,
        members: Vec<(String, String, Role)>,
        included_seats: i64,
    ) -> Result<(), StoreError> {
        let invalid = |e: crate::domain::InvalidId| StoreError::Config(format!("seed: {e}"));
        let id = BusinessId::parse(id).map_err(invalid)?;
        let members = members
            .into_iter()
            .map(|(user, email, role)| Ok((UserId::parse(&user).map_err(invalid)?, email, role)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let name = name.to_string();
        self.store
            .transaction(move |tx| {
                let now = now();
                let business = Business {
                    id: id.clone(),
                    name,
                    seat_quantity: members.len() as i64,
                    included_seats,
                    renewal_date: billing::first_period_end(now),
                    billing_anchor: now,
                    billing_status: SubscriptionStatus::Active,
                };
                tx.insert_business(&business, now)?;
                for (user_id, email, role) in members {
                    let member = Member {
                        business_id: id.clone(),
                        user_id,
                        email,
                        role,
                    };
                    tx.insert_member(&member, None, None, now)?;
                }
                Ok(())
            })
            .await
    }
}
