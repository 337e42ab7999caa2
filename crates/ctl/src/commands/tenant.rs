//! `dialinctl tenant get | set | reset`: the tenant's bridge settings.

use dialin_proto::settings::v1::{GetTenantSettingsRequest, ResetTenantSettingsRequest, UpdateTenantSettingsRequest};

use super::Session;
use crate::{
    cli::{TenantCommand, TenantSetArgs},
    failure::Failure,
};

pub async fn run(command: TenantCommand, session: &Session) -> Result<(), Failure> {
    let tenant_id = session.tenant.clone();
    let mut client = session.client();
    let settings = match command {
        TenantCommand::Get => {
            client
                .get_tenant_settings(GetTenantSettingsRequest { tenant_id })
                .await?
        }
        TenantCommand::Set(set) => client.update_tenant_settings(update_request(tenant_id, set)).await?,
        TenantCommand::Reset => {
            client
                .reset_tenant_settings(ResetTenantSettingsRequest { tenant_id })
                .await?
        }
    };
    session.out.message(&settings.into_inner())
}

fn update_request(tenant_id: String, set: TenantSetArgs) -> UpdateTenantSettingsRequest {
    let changes = set.changes;
    UpdateTenantSettingsRequest {
        tenant_id,
        automatically_send_emails_to_users: changes.automatically_send_emails_to_users,
        pin_length: changes.pin_length,
        send_email_from_override: changes.send_email_from_override,
        send_email_from_address: changes.send_email_from_address,
        send_email_from_display_name: changes.send_email_from_display_name,
        default_locale: changes.default_locale,
        expected_version: set.expected_version,
    }
}
