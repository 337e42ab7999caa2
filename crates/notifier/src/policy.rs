//! The notifier's own copy of each tenant's email policy, pushed by settings.
//! Every version is kept (they are small and few) so the gate can read the
//! switch as it was when a change happened.

use std::{collections::HashMap, time::Duration};

use dialin_domain::time::now_millis;
use dialin_proto::notifier::v1::{self as pb, DeliveryStatus};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
};

use crate::entity::{delivery, tenant_policy};

/// What a tenant that settings never told us about gets: the contract's defaults.
pub fn default_policy(tenant_id: &str) -> tenant_policy::Model {
    tenant_policy::Model {
        tenant_id: tenant_id.to_owned(),
        version: 0,
        automatically_send_emails_to_users: true,
        send_email_from_override: false,
        send_email_from_address: String::new(),
        send_email_from_display_name: String::new(),
        default_locale: "en-US".to_owned(),
    }
}

/// The newest version held.
pub async fn current(conn: &impl ConnectionTrait, tenant_id: &str) -> Result<tenant_policy::Model, DbErr> {
    Ok(tenant_policy::Entity::find()
        .filter(tenant_policy::Column::TenantId.eq(tenant_id))
        .order_by_desc(tenant_policy::Column::Version)
        .one(conn)
        .await?
        .unwrap_or_else(|| default_policy(tenant_id)))
}

/// Every version held of some tenants' policies, read with one query, for
/// deciding a batch of events.
pub struct Versions(HashMap<String, Vec<tenant_policy::Model>>);

/// Versions in ascending order, per tenant.
impl FromIterator<tenant_policy::Model> for Versions {
    fn from_iter<I: IntoIterator<Item = tenant_policy::Model>>(policies: I) -> Self {
        let mut by_tenant: HashMap<String, Vec<tenant_policy::Model>> = HashMap::new();
        for policy in policies {
            by_tenant.entry(policy.tenant_id.clone()).or_default().push(policy);
        }
        Self(by_tenant)
    }
}

impl Versions {
    pub async fn of(conn: &impl ConnectionTrait, tenants: Vec<&str>) -> Result<Self, DbErr> {
        Ok(tenant_policy::Entity::find()
            .filter(tenant_policy::Column::TenantId.is_in(tenants))
            .order_by_asc(tenant_policy::Column::Version)
            .all(conn)
            .await?
            .into_iter()
            .collect())
    }

    /// The newest version held.
    pub fn current(&self, tenant_id: &str) -> tenant_policy::Model {
        self.newest(tenant_id, |_| true)
    }

    /// The version in force at `version`: the newest held that is not newer.
    pub fn as_of(&self, tenant_id: &str, version: i64) -> tenant_policy::Model {
        self.newest(tenant_id, |policy| policy.version <= version)
    }

    fn newest(&self, tenant_id: &str, held_then: impl Fn(&tenant_policy::Model) -> bool) -> tenant_policy::Model {
        self.0
            .get(tenant_id)
            .and_then(|versions| versions.iter().rev().find(|policy| held_then(policy)))
            .cloned()
            .unwrap_or_else(|| default_policy(tenant_id))
    }
}

/// Stores `policy` (a version already held is left as it is) and returns the
/// newest version now held, which is older than `policy` only never.
pub async fn put(
    conn: &impl ConnectionTrait,
    policy: &pb::PutTenantPolicyRequest,
) -> Result<tenant_policy::Model, DbErr> {
    let row = tenant_policy::ActiveModel {
        tenant_id: Set(policy.tenant_id.clone()),
        version: Set(i64::try_from(policy.version).unwrap_or(i64::MAX)),
        automatically_send_emails_to_users: Set(policy.automatically_send_emails_to_users),
        send_email_from_override: Set(policy.send_email_from_override),
        send_email_from_address: Set(policy.send_email_from_address.clone()),
        send_email_from_display_name: Set(policy.send_email_from_display_name.clone()),
        default_locale: Set(policy.default_locale.clone()),
    };
    tenant_policy::Entity::insert(row)
        .on_conflict_do_nothing()
        .exec(conn)
        .await?;
    current(conn, &policy.tenant_id).await
}

/// Waits until no send that may have passed the gate under an older policy is
/// still in flight for the tenant, so that once a switch-off is acknowledged no
/// automatic email leaves. A sender's lease is the fence: a delivery claimed
/// before the new policy was stored is waited for; one claimed after reads the
/// new policy before it sends. Bounded: a replica that died mid-send holds its
/// lease until it expires, and can send nothing meanwhile.
pub async fn await_sends_in_flight(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    timeout: Duration,
) -> Result<(), DbErr> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let in_flight = delivery::Entity::find()
            .filter(delivery::Column::TenantId.eq(tenant_id))
            .filter(delivery::Column::Status.eq(DeliveryStatus::Pending.as_str_name()))
            .filter(delivery::Column::LeaseUntil.gt(now_millis()))
            .count(conn)
            .await?;
        if in_flight == 0 {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(
                tenant_id,
                in_flight,
                ?timeout,
                "switch-off acknowledged with sends still claimed (a stalled or dead sender)"
            );
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn to_pb(policy: tenant_policy::Model) -> pb::TenantPolicy {
    pb::TenantPolicy {
        tenant_id: policy.tenant_id,
        automatically_send_emails_to_users: policy.automatically_send_emails_to_users,
        send_email_from_override: policy.send_email_from_override,
        send_email_from_address: policy.send_email_from_address,
        send_email_from_display_name: policy.send_email_from_display_name,
        default_locale: policy.default_locale,
        version: policy.version.unsigned_abs(),
    }
}
