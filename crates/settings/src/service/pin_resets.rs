//! `ResetPin` by group commit (`group_commit`): the resets waiting together
//! are made in one transaction, with a fixed number of statements per tenant.

use std::collections::{BTreeSet, HashMap};

use dialin_domain::validate;
use dialin_proto::{
    notifier::v1::{EmailKind, Priority, Trigger},
    settings::v1 as pb,
};
use dialin_store::{Store, sql::values_rows};
use sea_orm::{ConnectionTrait, Statement};
use secrecy::ExposeSecret;
use tokio::time::Instant;
use tonic::Status;

use super::{
    SettingsApi,
    convert::{EmailEvent, user_to_pb},
    group_commit::GroupWork,
    license::require_hosted,
    tenant,
    users::{not_found, users_for_update},
    verify,
};
use crate::{
    entity::user,
    error::{Error, Result, check},
    outbox::Outbox,
    pin::{self, PinKey},
};

pub(super) async fn reset(api: &SettingsApi, request: pb::ResetPinRequest) -> Result<pb::ResetPinResponse, Status> {
    check(validate::id("tenant_id", &request.tenant_id))?;
    check(validate::id("user_id", &request.user_id))?;
    api.pin_resets.call(request).await
}

/// What resetting PINs needs; see [`GroupWork`].
pub(super) struct Resetter {
    pub db: Store,
    pub pin_key: PinKey,
    pub outbox: Outbox,
}

impl GroupWork for Resetter {
    type Request = pb::ResetPinRequest;
    type Answer = pb::ResetPinResponse;

    fn user(request: &pb::ResetPinRequest) -> (&str, &str) {
        (&request.tenant_id, &request.user_id)
    }

    /// Resets the PIN of each request's user in one transaction.
    async fn apply(
        &self,
        requests: Vec<&pb::ResetPinRequest>,
        queued_since: Instant,
    ) -> Result<Vec<Result<pb::ResetPinResponse, Status>>> {
        let (outcomes, events) = self
            .db
            .write_queued_since(queued_since, async |txn| {
                // Tenants in one order, so two replicas' groups never wait on each other.
                let tenants: BTreeSet<&str> = requests.iter().map(|request| request.tenant_id.as_str()).collect();
                let (mut settings, mut users) = (HashMap::new(), HashMap::new());
                for &tenant_id in &tenants {
                    settings.insert(tenant_id, tenant::load_for_update(txn, tenant_id).await?);
                    let user_ids: Vec<String> = requests
                        .iter()
                        .filter(|request| request.tenant_id == tenant_id)
                        .map(|request| request.user_id.clone())
                        .collect();
                    users.insert(tenant_id, users_for_update(txn, tenant_id, &user_ids).await?);
                }

                let (mut changed, mut events, mut outcomes) =
                    (Vec::new(), Vec::new(), Vec::with_capacity(requests.len()));
                for request in &requests {
                    let tenant_id = request.tenant_id.as_str();
                    let outcome = (|| {
                        let mut user = users[tenant_id]
                            .get(&request.user_id)
                            .cloned()
                            .ok_or_else(|| not_found(tenant_id, &request.user_id))?;
                        require_hosted(&user)?;
                        let settings = &settings[tenant_id];
                        let pin = pin::generate(settings.pin_length.unsigned_abs());
                        user.pin_hash = Some(self.pin_key.hash(tenant_id, &pin));
                        user.version += 1;
                        // The user resetting their own PIN sees it on screen: no email.
                        if !request.self_service {
                            let event = EmailEvent {
                                settings,
                                user: &user,
                                kind: EmailKind::PinReset,
                                trigger: Trigger::Automatic,
                                pin: Some(&pin),
                                to_address: None,
                                priority: Priority::Interactive,
                            };
                            events.push(event.into_request());
                        }
                        changed.push(user.clone());
                        Ok::<_, Error>((user, pin))
                    })();
                    outcomes.push(outcome);
                }

                for &tenant_id in &tenants {
                    let conference_ids: Vec<&str> = changed
                        .iter()
                        .filter(|user| user.tenant_id == tenant_id)
                        .filter_map(|user| user.conference_id.as_deref())
                        .collect();
                    verify::forget_failures(txn, tenant_id, &conference_ids).await?;
                }
                store_pins(txn, &changed).await?;
                self.outbox.enqueue_notify_many(txn, &events).await?;
                Ok::<_, Error>((outcomes, events))
            })
            .await?;
        if !events.is_empty() {
            self.outbox.wake();
        }

        Ok(requests
            .iter()
            .zip(outcomes)
            .map(|(request, outcome)| {
                let (user, pin) = outcome.map_err(Status::from)?;
                tracing::info!(
                    tenant_id = user.tenant_id,
                    user_id = user.user_id,
                    self_service = request.self_service,
                    "PIN reset"
                );
                Ok(pb::ResetPinResponse {
                    user: Some(user_to_pb(user)),
                    pin: pin.expose_secret().to_owned(),
                })
            })
            .collect())
    }
}

/// Writes the new PIN hashes of `users` (read and locked in this transaction)
/// with one statement, each version one up.
async fn store_pins(conn: &impl ConnectionTrait, users: &[user::Model]) -> Result<()> {
    if users.is_empty() {
        return Ok(());
    }
    let backend = conn.get_database_backend();
    let sql = format!(
        "UPDATE users SET pin_hash = changed.column3, version = users.version + 1 FROM (VALUES {}) AS changed \
         WHERE users.tenant_id = changed.column1 AND users.user_id = changed.column2",
        values_rows(backend, users.len(), 3)
    );
    let values = users.iter().flat_map(|user| {
        [
            user.tenant_id.as_str().into(),
            user.user_id.as_str().into(),
            user.pin_hash.clone().into(),
        ]
    });
    let updated = conn
        .execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?
        .rows_affected();
    if updated != users.len() as u64 {
        // The rows are locked (or SQLite's one writer is us): this cannot happen.
        return Err(Error::Internal(format!(
            "PIN reset: {updated} of {} users updated",
            users.len()
        )));
    }
    Ok(())
}
