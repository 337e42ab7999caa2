//! Tenant settings: read, change (with optimistic concurrency), reset.

use dialin_domain::validate;
use dialin_proto::settings::v1 as pb;
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QuerySelect};

use super::{
    SettingsApi,
    convert::{default_settings, policy_of, settings_to_pb},
};
use crate::{
    entity::tenant_settings,
    error::{Error, Reason, Result, check},
    pin, settings_cache,
};

/// The tenant's settings (defaults when it never changed them), locked for the
/// rest of the transaction on PostgreSQL so a concurrent change waits.
pub(super) async fn load_for_update(conn: &impl ConnectionTrait, tenant_id: &str) -> Result<tenant_settings::Model> {
    Ok(tenant_settings::Entity::find_by_id(tenant_id)
        .lock_exclusive()
        .one(conn)
        .await?
        .unwrap_or_else(|| default_settings(tenant_id)))
}

pub(super) async fn get(api: &SettingsApi, request: pb::GetTenantSettingsRequest) -> Result<pb::TenantSettings> {
    check(validate::id("tenant_id", &request.tenant_id))?;
    if let Some(cached) = api.tenant_cache.get(&request.tenant_id) {
        return Ok(cached);
    }
    let start = api.tenant_cache.read_start();
    let settings = tenant_settings::Entity::find_by_id(&request.tenant_id)
        .one(api.db.reader())
        .await?
        .unwrap_or_else(|| default_settings(&request.tenant_id));
    let settings = settings_to_pb(settings);
    api.tenant_cache.store(start, &settings);
    Ok(settings)
}

pub(super) async fn update(api: &SettingsApi, request: pb::UpdateTenantSettingsRequest) -> Result<pb::TenantSettings> {
    validate_update(&request)?;
    let tenant_id = request.tenant_id.clone();
    change(api, &tenant_id, request.expected_version, move |settings| {
        let pb::UpdateTenantSettingsRequest {
            automatically_send_emails_to_users,
            pin_length,
            send_email_from_override,
            send_email_from_address,
            send_email_from_display_name,
            default_locale,
            ..
        } = request;
        if let Some(value) = automatically_send_emails_to_users {
            settings.automatically_send_emails_to_users = value;
        }
        if let Some(value) = pin_length {
            settings.pin_length = value as i32;
        }
        if let Some(value) = send_email_from_override {
            settings.send_email_from_override = value;
        }
        if let Some(value) = send_email_from_address {
            settings.send_email_from_address = value;
        }
        if let Some(value) = send_email_from_display_name {
            settings.send_email_from_display_name = value;
        }
        if let Some(value) = default_locale {
            settings.default_locale = value;
        }
    })
    .await
}

pub(super) async fn reset(api: &SettingsApi, request: pb::ResetTenantSettingsRequest) -> Result<pb::TenantSettings> {
    check(validate::id("tenant_id", &request.tenant_id))?;
    change(api, &request.tenant_id, None, |settings| {
        *settings = tenant_settings::Model {
            version: settings.version,
            ..default_settings(&settings.tenant_id)
        };
    })
    .await
}

fn validate_update(request: &pb::UpdateTenantSettingsRequest) -> Result<()> {
    check(validate::id("tenant_id", &request.tenant_id))?;
    if let Some(length) = request.pin_length
        && !pin::LENGTHS.contains(&length)
    {
        return Err(Error::invalid(
            "pin_length",
            format!(
                "pin_length {length} is out of range; it must be {} to {}",
                pin::LENGTHS.start(),
                pin::LENGTHS.end()
            ),
        ));
    }
    if let Some(address) = request.send_email_from_address.as_deref().filter(|a| !a.is_empty()) {
        check(validate::email("send_email_from_address", address))?;
    }
    if let Some(name) = request
        .send_email_from_display_name
        .as_deref()
        .filter(|n| !n.is_empty())
    {
        check(validate::display_name("send_email_from_display_name", name))?;
    }
    if let Some(locale) = request.default_locale.as_deref() {
        check(validate::locale("default_locale", locale))?;
    }
    Ok(())
}

/// Applies `edit` in a write transaction: checks `expected_version`, keeps the
/// sender override consistent, bumps the version only when something changed,
/// and queues the new policy for the notifier in the same transaction.
async fn change(
    api: &SettingsApi,
    tenant_id: &str,
    expected_version: Option<u64>,
    edit: impl FnOnce(&mut tenant_settings::Model),
) -> Result<pb::TenantSettings> {
    let (current, updated) = api
        .db
        .write(async |txn| {
            let current = load_for_update(txn, tenant_id).await?;
            if let Some(expected) = expected_version
                && expected != current.version.unsigned_abs()
            {
                return Err(Error::aborted(
                    Reason::VersionMismatch,
                    format!(
                        "tenant settings are at version {}, not the expected {expected}; read them again and retry",
                        current.version
                    ),
                )
                .about("tenant_id", tenant_id)
                .about("version", current.version.to_string()));
            }
            let mut updated = current.clone();
            edit(&mut updated);
            if updated.send_email_from_override
                && (updated.send_email_from_address.is_empty() || updated.send_email_from_display_name.is_empty())
            {
                return Err(Error::invalid(
                    "send_email_from_override",
                    "send_email_from_override needs both send_email_from_address and send_email_from_display_name; set them in the same or an earlier call",
                ));
            }
            if updated == current {
                return Ok((current, None));
            }
            updated.version = current.version + 1;
            let active = updated.clone().into_active_model().reset_all();
            if current.version == 0 {
                tenant_settings::Entity::insert(active)
                    .exec(txn)
                    .await
                    .map_err(concurrent_first_change)?;
            } else {
                active.update(txn).await?;
            }
            api.outbox.enqueue_policy(txn, &policy_of(&updated)).await?;
            settings_cache::announce_change(txn, tenant_id).await?;
            Ok((current, Some(updated)))
        })
        .await?;
    let Some(updated) = updated else {
        // Asking again for "off" re-confirms it: the way to retry a switch-off
        // whose confirmation failed.
        confirm_switch_off(api, &current).await?;
        return Ok(settings_to_pb(current));
    };
    api.tenant_cache.invalidate(tenant_id);
    api.outbox.wake();
    tracing::info!(tenant_id, version = updated.version, "tenant settings changed");
    confirm_switch_off(api, &updated).await?;
    Ok(settings_to_pb(updated))
}

/// While the switch is off, the call returns only once the notifier holds the
/// policy and has no send in flight that passed its gate before: from then on
/// no automatic email leaves. The outbox carries the same policy too (a
/// repeated version is ignored), so nothing depends on this call alone.
async fn confirm_switch_off(api: &SettingsApi, settings: &tenant_settings::Model) -> Result<()> {
    if settings.automatically_send_emails_to_users {
        return Ok(());
    }
    let mut notifier = api.notifier.clone();
    match notifier.put_tenant_policy(policy_of(settings)).await {
        Ok(_) => Ok(()),
        Err(status) => Err(Error::unavailable(
            Reason::NotifierUnavailable,
            format!(
                "the switch-off is saved (settings version {}), but the notifier did not confirm it ({}): emails already queued may still leave until it does; repeat the call to confirm",
                settings.version,
                status.message()
            ),
        )
        .about("tenant_id", &settings.tenant_id)),
    }
}

/// Two first changes of one tenant raced; the loser is told to retry.
fn concurrent_first_change(error: sea_orm::DbErr) -> Error {
    if dialin_store::is_unique_violation(&error) {
        Error::aborted(
            Reason::ConcurrentChange,
            "the tenant settings changed concurrently; read them again and retry",
        )
    } else {
        Error::Database(error)
    }
}
