//! Fills a fresh store with the benchmark's data through the application layer (every rule, a
//! seat and an outbox row per invitation): BUSINESSES businesses with an Owner each, and
//! INVITATIONS invitations per business. Prints, one per line, each invitation's resend path and
//! its business Owner's bearer token (signed with SECRET), for the load generator.
//!
//!     bench-seed DATABASE_URL SECRET BUSINESSES INVITATIONS > targets.txt

use leadping_invitations::app::{App, NoBody, Queued};
use leadping_invitations::auth::{self, Claims, Identity};
use leadping_invitations::domain::rules::Policy;
use leadping_invitations::domain::{BusinessId, Role, UserId};
use leadping_invitations::store::Store;
use leadping_invitations::tokens::TokenKey;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, secret, businesses, invitations] = args.as_slice() else {
        anyhow::bail!("usage: bench-seed DATABASE_URL SECRET BUSINESSES INVITATIONS");
    };
    let (businesses, invitations): (usize, usize) = (businesses.parse()?, invitations.parse()?);
    let store = {
        let url = url.clone();
        tokio::task::spawn_blocking(move || Store::open(&url)).await??
    };
    // No limit may refuse a seeded invitation: the benchmark's server runs with the same.
    let policy = Policy {
        daily_email_cap: u32::MAX,
        seat_limit: None,
        ..Policy::default()
    };
    let app = App::new(store, policy, TokenKey::new(&[0x5e; 32])?);
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        + 30 * 24 * 3600;
    let mut out = String::new();
    for b in 0..businesses {
        let business = format!("biz_bench_{b}");
        let owner = format!("usr_bench_{b}_owner");
        app.create_business(
            &business,
            &format!("Bench {b} Inc"),
            vec![(
                owner.clone(),
                format!("owner@bench{b}.example.com"),
                Role::Owner,
            )],
            5,
        )
        .await?;
        let identity = Identity {
            user_id: UserId::parse(&owner)?,
            business_id: BusinessId::parse(&business)?,
            token_role: None,
        };
        let claims = Claims {
            sub: owner,
            org_id: business,
            role: Some("Owner".into()),
            exp,
            iat: None,
            iss: None,
            aud: None,
        };
        let token = auth::mint(secret, &claims)?;
        for i in 0..invitations {
            let queued = app
                .create_at(
                    identity.clone(),
                    format!("invitee{i}@bench{b}.example.com"),
                    Role::Agent,
                    None,
                    NoBody,
                    None,
                )
                .await
                .map_err(|e| anyhow::anyhow!("seeding an invitation: {e}"))?;
            let Queued::Fresh { invitation, .. } = queued else {
                anyhow::bail!("a fresh invitation was answered as a replay");
            };
            out.push_str(&format!(
                "/businesses/me/invitations/{}/resend {token}\n",
                invitation.invitation.id
            ));
        }
    }
    print!("{out}");
    Ok(())
}
