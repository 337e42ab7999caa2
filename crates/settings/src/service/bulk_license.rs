//! Licensing users in bulk: `AssignLicenses` (up to 1,000 users of one tenant
//! in one transaction, each entry with its own result), and single
//! `AssignLicense` calls by group commit (`group_commit`), the calls waiting
//! together licensed the same way. The tenant, its bridge and the users are
//! read once, conference IDs are allocated together, and the users and their
//! WELCOME events are written with one statement each.

use std::collections::{BTreeSet, HashSet};

use dialin_domain::validate;
use dialin_proto::{
    notifier::v1::{EmailKind, Priority, Trigger},
    settings::v1 as pb,
};
use dialin_store::Store;
use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel};
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;
use tonic::Status;

use super::{
    SettingsApi,
    bridge::Bridge,
    convert::{EmailEvent, user_to_pb},
    group_commit::GroupWork,
    license::NewLicense,
    tenant,
    users::{EmailHolders, allocate_conference_ids, conflict, no_free_conference_id, users_for_update},
};
use crate::{
    entity::user,
    error::{Error, Result, check},
    outbox::Outbox,
    pin::PinKey,
};

pub(super) const MAX_USERS_PER_CALL: usize = 1000;

pub(super) async fn assign_many(
    api: &SettingsApi,
    request: pb::AssignLicensesRequest,
) -> Result<pb::AssignLicensesResponse> {
    check(validate::id("tenant_id", &request.tenant_id))?;
    if request.users.is_empty() || request.users.len() > MAX_USERS_PER_CALL {
        return Err(Error::invalid(
            "users",
            format!(
                "users holds {} entries; send 1 to {MAX_USERS_PER_CALL} per call",
                request.users.len()
            ),
        ));
    }
    let mut seen = HashSet::new();
    let outcomes: Vec<Result<NewLicense>> = request
        .users
        .into_iter()
        .enumerate()
        .map(|(index, entry)| {
            if !seen.insert(entry.user_id.clone()) {
                return Err(Error::invalid(
                    format!("users[{index}].user_id"),
                    format!(
                        "users[{index}]: user {} appears more than once in this call",
                        entry.user_id
                    ),
                ));
            }
            NewLicense::validate(entry).map_err(|error| at_entry(index, error))
        })
        .collect();
    // The valid entries are licensed together; the others keep their error.
    let mut licenses = Vec::new();
    let refused: Vec<Option<Error>> = outcomes
        .into_iter()
        .map(|outcome| outcome.map(|license| licenses.push(license)).err())
        .collect();
    let mut licensed = api
        .licensing
        .work()
        .license_all(&request.tenant_id, licenses, Priority::Bulk, Instant::now())
        .await?
        .into_iter();
    let results = refused.into_iter().enumerate().map(|(index, refused)| match refused {
        Some(error) => Err(error),
        None => licensed
            .next()
            .unwrap_or_else(|| Err(Error::Internal("a license went unanswered".into())))
            .map_err(|error| at_entry(index, error)),
    });
    Ok(pb::AssignLicensesResponse {
        results: results.map(to_result).collect(),
    })
}

pub(super) async fn assign_one(
    api: &SettingsApi,
    request: pb::AssignLicenseRequest,
) -> Result<pb::AssignLicenseResponse, Status> {
    check(validate::id("tenant_id", &request.tenant_id))?;
    let license = NewLicense::validate(pb::UserToLicense {
        user_id: request.user_id,
        email: request.email,
        display_name: request.display_name,
        locale: request.locale,
        usage_location: request.usage_location,
        toll_number: request.toll_number,
        toll_free_number: request.toll_free_number,
    })?;
    let tenant_id = request.tenant_id;
    api.licensing.call(LicenseRequest { tenant_id, license }).await
}

/// A single `AssignLicense` call, checked, waiting for its group.
pub(super) struct LicenseRequest {
    pub tenant_id: String,
    pub license: NewLicense,
}

/// What licensing needs; see [`GroupWork`].
pub(super) struct Licenser {
    pub db: Store,
    pub pin_key: PinKey,
    pub outbox: Outbox,
}

impl GroupWork for Licenser {
    type Request = LicenseRequest;
    type Answer = pb::AssignLicenseResponse;

    fn user(request: &LicenseRequest) -> (&str, &str) {
        (&request.tenant_id, &request.license.user_id)
    }

    /// One transaction per tenant: a tenant's failure fails only its calls.
    async fn apply(
        &self,
        requests: Vec<&LicenseRequest>,
        queued_since: Instant,
    ) -> Result<Vec<Result<pb::AssignLicenseResponse, Status>>> {
        let mut answers: Vec<Option<Result<pb::AssignLicenseResponse, Status>>> = vec![None; requests.len()];
        let tenants: BTreeSet<&str> = requests.iter().map(|request| request.tenant_id.as_str()).collect();
        for tenant_id in tenants {
            let calls: Vec<usize> = (0..requests.len())
                .filter(|&call| requests[call].tenant_id == tenant_id)
                .collect();
            let licenses = calls.iter().map(|&call| requests[call].license.clone()).collect();
            match self
                .license_all(tenant_id, licenses, Priority::Interactive, queued_since)
                .await
            {
                Ok(outcomes) => {
                    for (&call, outcome) in calls.iter().zip(outcomes) {
                        answers[call] = Some(outcome.map_err(Status::from).map(|(user, pin)| {
                            tracing::info!(tenant_id, user_id = user.user_id, "license assigned");
                            pb::AssignLicenseResponse {
                                user: Some(user_to_pb(user)),
                                pin: pin.expose_secret().to_owned(),
                            }
                        }));
                    }
                }
                Err(error) => {
                    let status = Status::from(error);
                    for call in calls {
                        answers[call] = Some(Err(status.clone()));
                    }
                }
            }
        }
        Ok(answers
            .into_iter()
            .map(|answer| answer.unwrap_or_else(|| Err(crate::error::internal("a license went unanswered"))))
            .collect())
    }
}

impl Licenser {
    /// Licenses `licenses` (distinct users of one tenant, each checked) in one
    /// transaction: the tenant, its bridge and the users read once, conference IDs
    /// drawn together, the users and their WELCOME events written with one
    /// statement each, their emails at `priority`. An outcome per license, in
    /// order. The work has waited for its turn to write since `queued_since`.
    async fn license_all(
        &self,
        tenant_id: &str,
        licenses: Vec<NewLicense>,
        priority: Priority,
        queued_since: Instant,
    ) -> Result<Vec<Result<(user::Model, SecretString)>>> {
        let ids: Vec<String> = licenses.iter().map(|license| license.user_id.clone()).collect();
        let (results, events) = self
            .db
            .write_queued_since(queued_since, async |txn| {
                let settings = tenant::load_for_update(txn, tenant_id).await?;
                let bridge = Bridge::load(txn, tenant_id).await?;
                let existing = users_for_update(txn, tenant_id, &ids).await?;
                let mut emails =
                    EmailHolders::read(txn, tenant_id, licenses.iter().map(|license| license.email.as_str())).await?;
                let mut conference_ids = allocate_conference_ids(txn, tenant_id, ids.len()).await?.into_iter();

                let mut results = Vec::with_capacity(licenses.len());
                let (mut new_users, mut relicensed, mut events) = (Vec::new(), Vec::new(), Vec::new());
                for license in licenses {
                    let existing = existing.get(&license.user_id);
                    let licensed = conference_ids
                        .next()
                        .ok_or_else(no_free_conference_id)
                        .and_then(|conference_id| {
                            license.into_user(&self.pin_key, &settings, &bridge, existing, conference_id)
                        })
                        // Only a license that is made holds its email.
                        .and_then(|(user, pin)| {
                            emails.claim(tenant_id, &user.user_id, &user.email)?;
                            Ok((user, pin))
                        })
                        .map(|(mut user, pin)| {
                            user.version += 1;
                            let event = EmailEvent {
                                settings: &settings,
                                user: &user,
                                kind: EmailKind::Welcome,
                                trigger: Trigger::Automatic,
                                pin: Some(&pin),
                                to_address: None,
                                priority,
                            };
                            events.push(event.into_request());
                            if existing.is_some() {
                                relicensed.push(user.clone());
                            } else {
                                new_users.push(user.clone());
                            }
                            (user, pin)
                        });
                    results.push(licensed);
                }

                if !new_users.is_empty() {
                    user::Entity::insert_many(new_users.into_iter().map(|user| user.into_active_model().reset_all()))
                        .exec(txn)
                        .await
                        .map_err(conflict)?;
                }
                for user in relicensed {
                    user.into_active_model()
                        .reset_all()
                        .update(txn)
                        .await
                        .map_err(conflict)?;
                }
                self.outbox.enqueue_notify_many(txn, &events).await?;
                Ok::<_, Error>((results, events))
            })
            .await?;
        if !events.is_empty() {
            self.outbox.wake();
        }
        tracing::info!(
            tenant_id,
            licensed = events.len(),
            refused = results.len() - events.len(),
            "licenses assigned"
        );
        Ok(results)
    }
}

/// Says which entry an error is about.
fn at_entry(index: usize, error: Error) -> Error {
    error.in_entry("users", index)
}

fn to_result(outcome: Result<(user::Model, SecretString)>) -> pb::AssignLicenseResult {
    match outcome {
        Ok((user, pin)) => pb::AssignLicenseResult {
            user: Some(user_to_pb(user)),
            pin: pin.expose_secret().to_owned(),
            error: None,
        },
        Err(error) => {
            let reason = error.reason();
            let status = tonic::Status::from(error);
            pb::AssignLicenseResult {
                user: None,
                pin: String::new(),
                error: Some(pb::EntryError {
                    code: i32::from(status.code()),
                    message: status.message().to_owned(),
                    reason: reason.into(),
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic_types::StatusExt;

    use super::*;

    #[test]
    fn entry_errors_keep_their_code() {
        let status = tonic::Status::from(at_entry(3, Error::invalid("email", "email is not an address")));
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(status.message(), "users[3]: email is not an address");
        let details = status.get_error_details();
        assert_eq!(
            details.bad_request().unwrap().field_violations[0].field,
            "users[3].email"
        );
    }
}
