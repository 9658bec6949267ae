//! `serve --demo`: two businesses with an Owner, an Admin and an Agent each, an invitation each
//! that can be resent at once, and a ready-to-paste token per member. Seeds through the
//! application layer only; must never import the store.

use chrono::{Duration, Utc};
use serde::Serialize;

use crate::app::{App, NoBody, Seed};
use crate::auth::{self, Claims, Identity};
use crate::domain::Role;
use crate::domain::{BusinessId, InvitationId, UserId};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Demo {
    pub base_url: String,
    pub businesses: Vec<DemoBusiness>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DemoBusiness {
    pub id: String,
    pub name: String,
    pub members: Vec<DemoMember>,
    /// Invitations seeded for the business, resendable at once, newest first.
    pub invitation_ids: Vec<String>,
    /// Each seeded invitation's acceptance token, by invitation id: the same on every start
    /// when `LEADPING_TOKEN_KEY` is fixed.
    pub acceptance_tokens: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DemoMember {
    pub user_id: String,
    pub email: String,
    pub role: String,
    pub token: String,
}

/// Seats each demo subscription includes: the three members and two invitations.
const DEMO_INCLUDED_SEATS: i64 = 5;

/// How long the demo tokens live.
const TOKEN_TTL_SECS: u64 = 30 * 24 * 3600;

/// Seeds the demo (again: a second run finds the businesses and only mints fresh tokens).
pub async fn seed(app: &App, jwt_secret: &str, base_url: &str) -> anyhow::Result<Demo> {
    let mut businesses = Vec::new();
    for (short, name) in [("acme", "Acme Roofing"), ("birch", "Birch Dental")] {
        let id = format!("biz_demo_{short}");
        let domain = format!("{short}.example.com");
        let members: Vec<(String, String, Role)> = [
            ("owner", Role::Owner),
            ("admin", Role::Admin),
            ("agent", Role::Agent),
        ]
        .into_iter()
        .map(|(who, role)| {
            (
                format!("usr_{short}_{who}"),
                format!("{who}@{domain}"),
                role,
            )
        })
        .collect();
        let fresh = app
            .create_business(&id, name, members.clone(), DEMO_INCLUDED_SEATS)
            .await
            .is_ok();
        let owner = Identity {
            user_id: UserId::parse(&members[0].0)?,
            business_id: BusinessId::parse(&id)?,
            token_role: None,
        };
        // Two invitations each, sent ten and nine minutes ago: outside the resend cooldown, so a
        // first resend answers 200. Ids and acceptance tokens are the same on every start, like
        // the businesses' and members' ids.
        let seeds = [("", "new.hire", 10), ("_2", "next.hire", 9)].map(|(suffix, who, ago)| {
            let id = format!("inv_demo_{short}{suffix}");
            let seed = Seed {
                at: Utc::now() - Duration::minutes(ago),
                id: InvitationId::parse(&id).expect("a seeded id parses"),
                nonce: Some(format!("demo-{id}")),
            };
            (seed, format!("{who}@{domain}"))
        });
        if fresh {
            for (seed, email) in seeds.clone() {
                app.create_at(owner.clone(), email, Role::Agent, None, NoBody, Some(seed))
                    .await?;
            }
        }
        let mut invitation_ids: Vec<String> =
            seeds.iter().rev().map(|(s, _)| s.id.to_string()).collect();
        if !fresh && let Ok((invitations, _)) = app.list(owner).await {
            invitation_ids = invitations.into_iter().map(|i| i.id.to_string()).collect();
        }
        let acceptance_tokens = seeds
            .iter()
            .filter_map(|(s, _)| {
                let nonce = s.nonce.as_deref()?;
                Some((s.id.to_string(), app.tokens.token(&s.id, nonce)))
            })
            .collect();
        let now = jsonwebtoken::get_current_timestamp();
        let members = members
            .into_iter()
            .map(|(user_id, email, role)| {
                let role = role.as_str().to_string();
                let claims = Claims {
                    sub: user_id.clone(),
                    org_id: id.to_string(),
                    role: Some(role.clone()),
                    exp: now + TOKEN_TTL_SECS,
                    iat: Some(now),
                    iss: None,
                    aud: None,
                };
                Ok(DemoMember {
                    user_id,
                    email,
                    role,
                    token: auth::mint(jwt_secret, &claims)?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        businesses.push(DemoBusiness {
            id: id.to_string(),
            name: name.to_string(),
            members,
            invitation_ids,
            acceptance_tokens,
        });
    }
    Ok(Demo {
        base_url: base_url.to_string(),
        businesses,
    })
}

/// What `serve --demo` prints: tokens and a curl to try.
pub fn instructions(demo: &Demo) -> String {
    let mut out = String::from("\nDemo data is ready.\n");
    for b in &demo.businesses {
        out.push_str(&format!("\n{} ({})\n", b.name, b.id));
        for m in &b.members {
            out.push_str(&format!(
                "  {:<5} {:<28} token: {}\n",
                m.role, m.email, m.token
            ));
        }
        for id in &b.invitation_ids {
            out.push_str(&format!("  invitation {id}\n"));
        }
    }
    if let Some(b) = demo.businesses.first() {
        let owner = &b.members[0];
        let invitation = b
            .invitation_ids
            .first()
            .map(String::as_str)
            .unwrap_or("INVITATION_ID");
        out.push_str(&format!(
            "\nTry a resend (200, then 429 with Retry-After when repeated at once):\n\n  curl -i -X POST -H 'Authorization: Bearer {}' {}/businesses/me/invitations/{invitation}/resend\n",
            owner.token, demo.base_url
        ));
    }
    out
}
