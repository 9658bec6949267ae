//! Domain <-> wire: the one place the domain's types and the wire types meet. This is where a
//! change to the contract's shapes reaches the code: a removed enum value, a field made required
//! or retyped in `openapi.json` stops the build here. Must never import the store or the mail
//! transport.

use chrono::{DateTime, Utc};

use crate::domain::{Invitation, Role, Status};
use crate::wire::Int64String;
use crate::wire::{
    BusinessInvitation, BusinessInvitationRole, BusinessInvitationRow, BusinessInvitationStatus,
};

pub fn role(role: Role) -> BusinessInvitationRole {
    match role {
        Role::Owner => BusinessInvitationRole::Owner,
        Role::Admin => BusinessInvitationRole::Admin,
        Role::Agent => BusinessInvitationRole::Agent,
    }
}

pub fn role_from_wire(role: BusinessInvitationRole) -> Role {
    match role {
        BusinessInvitationRole::Owner => Role::Owner,
        BusinessInvitationRole::Admin => Role::Admin,
        BusinessInvitationRole::Agent => Role::Agent,
    }
}

pub fn status(status: Status) -> BusinessInvitationStatus {
    match status {
        Status::Pending => BusinessInvitationStatus::Pending,
        Status::Accepted => BusinessInvitationStatus::Accepted,
        Status::Expired => BusinessInvitationStatus::Expired,
        Status::Revoked => BusinessInvitationStatus::Revoked,
        Status::Resent => BusinessInvitationStatus::Resent,
        Status::FailedToSend => BusinessInvitationStatus::FailedToSend,
    }
}

/// The invitation as the single-invitation operations return it, status computed at `now`.
pub fn invitation(
    inv: &Invitation,
    now: DateTime<Utc>,
    safe_message: Option<String>,
) -> BusinessInvitation {
    let license = inv.license.as_ref();
    BusinessInvitation {
        safe_message,
        id: inv.id.to_string(),
        business_id: inv.business_id.to_string(),
        business_name: inv.business_name.clone(),
        email: inv.email.clone(),
        role: role(inv.role),
        status: status(inv.status_at(now)),
        created_at: inv.created_at,
        expires_at: inv.expires_at,
        sent_at: inv.sent_at,
        resent_at: inv.resent_at,
        accepted_at: inv.accepted_at,
        revoked_at: inv.revoked_at,
        send_failure_reason: inv.send_failure_reason.clone(),
        license_billing_status: license.map(|l| l.billing_status.as_str().to_string()),
        license_quantity: license.map(|l| Int64String::new(l.quantity)),
        license_renewal_date: license.map(|l| l.renewal_date),
        license_activated_at: license.map(|l| l.activated_at),
        license_released_at: license.and_then(|l| l.released_at),
    }
}

/// The invitation as a row of the list operation: the same fields without `safeMessage`.
pub fn row(inv: &Invitation, now: DateTime<Utc>) -> BusinessInvitationRow {
    let BusinessInvitation {
        safe_message: _,
        id,
        business_id,
        business_name,
        email,
        role,
        status,
        created_at,
        expires_at,
        sent_at,
        resent_at,
        accepted_at,
        revoked_at,
        send_failure_reason,
        license_billing_status,
        license_quantity,
        license_renewal_date,
        license_activated_at,
        license_released_at,
    } = invitation(inv, now, None);
    BusinessInvitationRow {
        id,
        business_id,
        business_name,
        email,
        role,
        status,
        created_at,
        expires_at,
        sent_at,
        resent_at,
        accepted_at,
        revoked_at,
        send_failure_reason,
        license_billing_status,
        license_quantity,
        license_renewal_date,
        license_activated_at,
        license_released_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{License, StoredStatus};
    use chrono::TimeZone;

    #[test]
    fn maps_every_field_with_the_status_computed_at_read_time() {
        let created = Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap();
        let inv = Invitation {
            id: crate::domain::InvitationId::from_stored("inv_1".into()),
            business_id: crate::domain::BusinessId::from_stored("biz_1".into()),
            business_name: "Acme".into(),
            email: "ann@example.com".into(),
            role: Role::Admin,
            status: StoredStatus::FailedToSend,
            created_at: created,
            expires_at: created + chrono::Duration::days(7),
            sent_at: None,
            resent_at: None,
            accepted_at: None,
            revoked_at: None,
            send_failure_reason: Some("mailbox unavailable".into()),
            license: Some(License {
                billing_status: crate::domain::BillingStatus::Included,
                quantity: 6,
                renewal_date: created + chrono::Duration::days(30),
                activated_at: created,
                released_at: None,
            }),
        };
        let json = serde_json::to_value(invitation(&inv, created, Some("ok".into()))).unwrap();
        assert_eq!(json["status"], "Failed to send");
        assert_eq!(json["role"], "Admin");
        assert_eq!(json["licenseQuantity"], "6");
        assert_eq!(json["sentAt"], serde_json::Value::Null);
        assert_eq!(json["safeMessage"], "ok");

        let later = row(&inv, created + chrono::Duration::days(8));
        assert_eq!(later.status, BusinessInvitationStatus::Expired);
        let row_json = serde_json::to_value(&later).unwrap();
        assert!(row_json.get("safeMessage").is_none());
        assert_eq!(row_json.as_object().unwrap().len(), 18);
    }
}
