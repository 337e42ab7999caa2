//! `dialinctl user …`: one user's conferencing state. USER is a user_id or an
//! email; the calls that take a user_id get the one the email resolves to.
//! The commands that create a PIN print it: it is shown once, here.

use dialin_proto::settings::v1::{
    AssignLicenseRequest, ListUsersRequest, Provider, RemoveLicenseRequest, ResetConferenceIdRequest, ResetPinRequest,
    SendConferenceInfoEmailRequest, SetDefaultNumbersRequest, SetProviderRequest,
};

use super::Session;
use crate::{
    cli::{LicenseArgs, ListUsersArgs, UserCommand},
    failure::Failure,
    output::{Column, column},
    paging::{MAX_PAGE_SIZE, next_page_size},
};

const USER_COLUMNS: [Column; 8] = [
    column("USER_ID", "userId"),
    column("EMAIL", "email"),
    column("DISPLAY_NAME", "displayName"),
    column("LICENSED", "licensed"),
    column("PROVIDER", "provider"),
    column("CONFERENCE_ID", "conferenceId"),
    column("TOLL", "tollNumber"),
    column("TOLL_FREE", "tollFreeNumber"),
];

pub async fn run(command: UserCommand, session: &Session) -> Result<(), Failure> {
    let tenant_id = session.tenant.clone();
    let mut client = session.client();
    match command {
        UserCommand::Get { user } => session.out.message(&session.user(&user).await?),
        UserCommand::List(args) => list(args, session).await,
        UserCommand::License(args) => {
            let licensed = client
                .assign_license(license_request(tenant_id, args))
                .await?
                .into_inner();
            session.out.with_pin(&licensed, licensed.user.as_ref(), &licensed.pin)
        }
        UserCommand::Unlicense { user } => {
            let user_id = session.user_id(&user).await?;
            let user = client
                .remove_license(RemoveLicenseRequest { tenant_id, user_id })
                .await?;
            session.out.message(&user.into_inner())
        }
        UserCommand::ResetPin { user, self_service } => {
            let user_id = session.user_id(&user).await?;
            let reset = client
                .reset_pin(ResetPinRequest {
                    tenant_id,
                    user_id,
                    self_service,
                })
                .await?
                .into_inner();
            session.out.with_pin(&reset, reset.user.as_ref(), &reset.pin)
        }
        UserCommand::ResetConferenceId { user } => {
            let user_id = session.user_id(&user).await?;
            let user = client
                .reset_conference_id(ResetConferenceIdRequest { tenant_id, user_id })
                .await?;
            session.out.message(&user.into_inner())
        }
        UserCommand::SetNumbers(args) => {
            let user_id = session.user_id(&args.user).await?;
            let user = client
                .set_default_numbers(SetDefaultNumbersRequest {
                    tenant_id,
                    user_id,
                    toll_number: args.numbers.toll,
                    toll_free_number: args.numbers.toll_free,
                })
                .await?;
            session.out.message(&user.into_inner())
        }
        UserCommand::SetProvider {
            user,
            provider,
            provider_name,
        } => {
            let user_id = session.user_id(&user).await?;
            let moved = client
                .set_provider(SetProviderRequest {
                    tenant_id,
                    user_id,
                    provider: Provider::from(provider).into(),
                    provider_name: provider_name.unwrap_or_default(),
                })
                .await?
                .into_inner();
            session.out.with_pin(&moved, moved.user.as_ref(), &moved.pin)
        }
        UserCommand::SendInfo { user, to } => {
            let user_id = session.user_id(&user).await?;
            let sent = client
                .send_conference_info_email(SendConferenceInfoEmailRequest {
                    tenant_id,
                    user_id,
                    to_address: to,
                })
                .await?
                .into_inner();
            session.out.message_or_text(&sent, |sent| {
                format!(
                    "conference information queued: delivery {}\n(`dialinctl deliveries get {}` follows it)\n",
                    sent.delivery_id, sent.delivery_id
                )
            })
        }
    }
}

/// Every page of the tenant's users that match, up to `--limit`.
async fn list(args: ListUsersArgs, session: &Session) -> Result<(), Failure> {
    let mut client = session.client();
    let mut users = Vec::new();
    let mut page_token = String::new();
    while let Some(page_size) = next_page_size(args.limit, users.len(), args.page_size.unwrap_or(MAX_PAGE_SIZE)) {
        let page = client
            .list_users(ListUsersRequest {
                tenant_id: session.tenant.clone(),
                page_size,
                page_token,
                licensed: licensed_filter(args.licensed, args.unlicensed),
                provider: args.provider.map(|provider| Provider::from(provider).into()),
                toll_number: args.toll_number.clone(),
                email_prefix: args.email_prefix.clone(),
            })
            .await?
            .into_inner();
        users.extend(page.users);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    if let Some(limit) = args.limit {
        users.truncate(limit);
    }
    session.out.list("users", &users, &USER_COLUMNS)
}

/// `--licensed`, `--unlicensed` (clap lets at most one through), or neither.
fn licensed_filter(licensed: bool, unlicensed: bool) -> Option<bool> {
    match (licensed, unlicensed) {
        (true, _) => Some(true),
        (false, true) => Some(false),
        (false, false) => None,
    }
}

fn license_request(tenant_id: String, args: LicenseArgs) -> AssignLicenseRequest {
    AssignLicenseRequest {
        tenant_id,
        user_id: args.user_id,
        email: args.email,
        display_name: args.name,
        locale: args.locale,
        usage_location: args.usage_location,
        toll_number: args.toll_number,
        toll_free_number: args.toll_free_number,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_licensed_filter_follows_the_flags() {
        assert_eq!(licensed_filter(true, false), Some(true));
        assert_eq!(licensed_filter(false, true), Some(false));
        assert_eq!(licensed_filter(false, false), None);
    }
}
