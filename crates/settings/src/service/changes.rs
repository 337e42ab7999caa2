//! Changes to a user on the hosted bridge: conference ID, default numbers, a
//! bulk number swap, and the admin's manual conference-info email (PIN resets:
//! `pin_resets`).

use dialin_domain::{ids::delivery_id_for_event, validate};
use dialin_proto::{
    notifier::v1::{EmailKind, Priority, Trigger},
    settings::v1::{self as pb, NumberType, Provider},
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::{
    SettingsApi,
    bridge::Bridge,
    convert::{EmailEvent, required_enum, user_to_pb},
    license::require_hosted,
    tenant,
    users::{Edit, allocate_conference_id, change_user, load_for_update, write},
};
use crate::{
    entity::user,
    error::{Error, Result, check},
};

pub(super) async fn reset_conference_id(
    api: &SettingsApi,
    request: pb::ResetConferenceIdRequest,
) -> Result<pb::ConferencingUser> {
    let (user, _) = change_user(api, &request.tenant_id, &request.user_id, async |txn, _, user| {
        require_hosted(user)?;
        user.conference_id = Some(allocate_conference_id(txn, &user.tenant_id, user.conference_id.as_deref()).await?);
        Ok(Edit::Write {
            email: Some(EmailKind::SettingsChanged),
            pin: None,
        })
    })
    .await?;
    tracing::info!(
        tenant_id = user.tenant_id,
        user_id = user.user_id,
        "conference ID reset"
    );
    Ok(user_to_pb(user))
}

pub(super) async fn set_default_numbers(
    api: &SettingsApi,
    request: pb::SetDefaultNumbersRequest,
) -> Result<pb::ConferencingUser> {
    let mut changed = false;
    let (user, _) = change_user(api, &request.tenant_id, &request.user_id, async |txn, _, user| {
        require_hosted(user)?;
        let bridge = Bridge::load(txn, &user.tenant_id).await?;
        let before = user.clone();
        if let Some(toll) = request.toll_number.as_deref() {
            // Every hosted user keeps a toll number; it can be changed, not cleared.
            bridge.check("toll_number", toll, NumberType::Toll)?;
            user.toll_number = toll.to_owned();
        }
        if let Some(toll_free) = request.toll_free_number.as_deref() {
            user.toll_free_number = bridge.toll_free_number_for(Some(toll_free))?;
        }
        // Setting the numbers the user already has sends nothing.
        changed = *user != before;
        Ok(if changed {
            Edit::Write {
                email: Some(EmailKind::SettingsChanged),
                pin: None,
            }
        } else {
            Edit::Unchanged
        })
    })
    .await?;
    if changed {
        tracing::info!(
            tenant_id = user.tenant_id,
            user_id = user.user_id,
            "default numbers changed"
        );
    }
    Ok(user_to_pb(user))
}

pub(super) async fn send_conference_info(
    api: &SettingsApi,
    request: pb::SendConferenceInfoEmailRequest,
) -> Result<pb::SendConferenceInfoEmailResponse> {
    if let Some(to_address) = request.to_address.as_deref() {
        check(validate::email("to_address", to_address))?;
    }
    check(validate::id("tenant_id", &request.tenant_id))?;
    check(validate::id("user_id", &request.user_id))?;
    let event = api
        .db
        .write(async |txn| {
            let settings = tenant::load_for_update(txn, &request.tenant_id).await?;
            let user = load_for_update(txn, &request.tenant_id, &request.user_id).await?;
            require_hosted(&user)?;
            // A manual send: never gated by the switch, never with the PIN.
            let event = EmailEvent {
                settings: &settings,
                user: &user,
                kind: EmailKind::ConferenceInfo,
                trigger: Trigger::Manual,
                pin: None,
                to_address: request.to_address.clone(),
                priority: Priority::Interactive,
            }
            .into_request();
            api.outbox.enqueue_notify(txn, &event).await?;
            Ok::<_, Error>(event)
        })
        .await?;
    api.outbox.wake();
    let delivery_id = delivery_id_for_event(&event.event_id);
    tracing::info!(
        tenant_id = request.tenant_id,
        user_id = request.user_id,
        delivery_id,
        "conference info email queued"
    );
    Ok(pb::SendConferenceInfoEmailResponse { delivery_id })
}

pub(super) async fn replace_default_number(
    api: &SettingsApi,
    request: pb::ReplaceDefaultNumberRequest,
) -> Result<pb::ReplaceDefaultNumberResponse> {
    check(validate::id("tenant_id", &request.tenant_id))?;
    check(validate::e164("from_number", &request.from_number))?;
    let number_type: NumberType = required_enum("number_type (TOLL or TOLL_FREE)", request.number_type)?;
    let users_updated = api
        .db
        .write(async |txn| {
            let settings = tenant::load_for_update(txn, &request.tenant_id).await?;
            Bridge::load(txn, &request.tenant_id)
                .await?
                .check("to_number", &request.to_number, number_type)?;
            if request.from_number == request.to_number {
                return Ok::<_, Error>(0);
            }
            let number_column = match number_type {
                NumberType::TollFree => user::Column::TollFreeNumber,
                _ => user::Column::TollNumber,
            };
            let affected = user::Entity::find()
                .filter(user::Column::TenantId.eq(&request.tenant_id))
                .filter(user::Column::Licensed.eq(true))
                .filter(user::Column::Provider.eq(Provider::Hosted.as_str_name()))
                .filter(number_column.eq(&request.from_number))
                .all(txn)
                .await?;
            let mut users_updated = 0u32;
            for mut user in affected {
                match number_type {
                    NumberType::TollFree => user.toll_free_number.clone_from(&request.to_number),
                    _ => user.toll_number.clone_from(&request.to_number),
                }
                write(
                    &api.outbox,
                    txn,
                    &settings,
                    &user,
                    Some((EmailKind::SettingsChanged, Priority::Bulk)),
                    None,
                )
                .await?;
                users_updated += 1;
            }
            Ok(users_updated)
        })
        .await?;
    if users_updated > 0 {
        api.outbox.wake();
    }
    tracing::info!(tenant_id = request.tenant_id, users_updated, "default number replaced");
    Ok(pb::ReplaceDefaultNumberResponse { users_updated })
}
