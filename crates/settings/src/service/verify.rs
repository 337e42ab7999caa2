//! `VerifyPin`, for the conferencing bridge: a constant-time check of a PIN
//! against its keyed hash, with a lockout that makes guessing useless: after
//! 5 wrong tries for one conference ID, 15 minutes of RESOURCE_EXHAUSTED.

use std::time::Duration;

use dialin_domain::{time::now_millis, validate};
use dialin_proto::settings::v1 as pb;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QuerySelect,
};
use secrecy::SecretString;

use super::SettingsApi;
use crate::{
    entity::{pin_attempt, user},
    error::{Error, Reason, Result, check},
};

const MAX_FAILURES: i32 = 5;
const LOCKOUT: Duration = Duration::from_secs(15 * 60);

pub(super) async fn verify_pin(api: &SettingsApi, request: pb::VerifyPinRequest) -> Result<pb::VerifyPinResponse> {
    check(validate::id("tenant_id", &request.tenant_id))?;
    if request.conference_id.len() != 7 || !request.conference_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::invalid(
            "conference_id",
            "conference_id must be exactly 7 digits",
        ));
    }
    // Never echo the PIN, not even in an error.
    if !(4..=12).contains(&request.pin.len()) || !request.pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::invalid("pin", "pin must be 4 to 12 digits"));
    }
    let pin = SecretString::from(request.pin);
    let now = now_millis();

    let valid = api
        .db
        .write(async |txn| {
            let attempts = pin_attempt::Entity::find_by_id((request.tenant_id.clone(), request.conference_id.clone()))
                .lock_exclusive()
                .one(txn)
                .await?;
            if let Some(locked) = attempts.as_ref().filter(|attempts| attempts.locked_until > now) {
                let wait = Duration::from_millis((locked.locked_until - now).unsigned_abs());
                let minutes = wait.as_millis().div_ceil(60_000);
                return Err(Error::exhausted(
                    Reason::PinTriesExhausted,
                    format!(
                        "too many wrong PINs for conference ID {}; try again in {minutes} minute(s)",
                        request.conference_id
                    ),
                    wait,
                )
                .about("tenant_id", &request.tenant_id)
                .about("conference_id", &request.conference_id));
            }
            let stored = user::Entity::find()
                .filter(user::Column::TenantId.eq(&request.tenant_id))
                .filter(user::Column::ConferenceId.eq(&request.conference_id))
                .one(txn)
                .await?
                .and_then(|user| user.pin_hash);
            // An unknown conference ID is just a wrong PIN: nothing tells them apart.
            let valid = stored.is_some_and(|stored| api.pin_key.verify(&request.tenant_id, &pin, &stored));
            if valid {
                if let Some(attempts) = attempts {
                    attempts.into_active_model().delete(txn).await?;
                }
            } else {
                record_failure(txn, &request.tenant_id, &request.conference_id, attempts, now).await?;
            }
            Ok(valid)
        })
        .await?;
    tracing::info!(
        tenant_id = request.tenant_id,
        conference_id = request.conference_id,
        valid,
        "PIN checked"
    );
    Ok(pb::VerifyPinResponse { valid })
}

async fn record_failure(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    conference_id: &str,
    attempts: Option<pin_attempt::Model>,
    now: i64,
) -> Result<()> {
    let failures = attempts.as_ref().map_or(0, |attempts| attempts.failures) + 1;
    let (failures, locked_until) = if failures >= MAX_FAILURES {
        tracing::warn!(
            tenant_id,
            conference_id,
            "conference ID locked after {MAX_FAILURES} wrong PINs"
        );
        (0, now + i64::try_from(LOCKOUT.as_millis()).unwrap_or(i64::MAX / 2))
    } else {
        (failures, 0)
    };
    match attempts {
        Some(attempts) => {
            let mut row = attempts.into_active_model();
            row.failures = Set(failures);
            row.locked_until = Set(locked_until);
            row.update(conn).await?;
        }
        None => {
            pin_attempt::ActiveModel {
                tenant_id: Set(tenant_id.to_owned()),
                conference_id: Set(conference_id.to_owned()),
                failures: Set(failures),
                locked_until: Set(locked_until),
            }
            .insert(conn)
            .await?;
        }
    }
    Ok(())
}

/// A new PIN starts with a clean slate (the admin reset it): forgets the
/// failed attempts on the tenant's `conference_ids`.
pub(super) async fn forget_failures(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    conference_ids: &[&str],
) -> Result<()> {
    if conference_ids.is_empty() {
        return Ok(());
    }
    pin_attempt::Entity::delete_many()
        .filter(pin_attempt::Column::TenantId.eq(tenant_id))
        .filter(pin_attempt::Column::ConferenceId.is_in(conference_ids.iter().copied()))
        .exec(conn)
        .await?;
    Ok(())
}
