//! A tenant's emails, as the notifier recorded them, through this service: an
//! operator needs one endpoint and one token to ask "why did Alice get no
//! email?", even where the notifier admits only settings (mutual TLS, a
//! network policy). Settings asks over its own channel, and only about the
//! tenant the caller's token covers (checked before any call, like every
//! settings call): a delivery of another tenant is not found.

use dialin_common::error::Refusal;
use dialin_domain::validate;
use dialin_proto::{notifier::v1 as notifier, settings::v1 as pb};

use super::{SettingsApi, users::find_user};
use crate::error::{Error, Reason, Result, check, delivery_not_found};

pub(super) async fn list(api: &SettingsApi, request: pb::ListDeliveriesRequest) -> Result<pb::ListDeliveriesResponse> {
    check(validate::id("tenant_id", &request.tenant_id))?;
    // One user's (NOT_FOUND if the tenant has no such user, not an empty
    // list), or the tenant's.
    let user_id = if request.user_id.is_some() || request.email.is_some() {
        let (user_id, email) = (request.user_id.unwrap_or_default(), request.email.unwrap_or_default());
        Some(
            find_user(api.db.reader(), &request.tenant_id, &user_id, &email)
                .await?
                .user_id,
        )
    } else {
        None
    };
    let listed = api
        .notifier
        .clone()
        .list_deliveries(notifier::ListDeliveriesRequest {
            tenant_id: request.tenant_id,
            user_id,
            page_size: request.page_size,
            page_token: request.page_token,
            status: request.status,
        })
        .await
        .map_err(from_notifier)?
        .into_inner();
    Ok(pb::ListDeliveriesResponse {
        deliveries: listed.deliveries,
        next_page_token: listed.next_page_token,
    })
}

pub(super) async fn get(api: &SettingsApi, request: pb::GetDeliveryRequest) -> Result<notifier::Delivery> {
    tenants_delivery(api, &request.tenant_id, &request.delivery_id).await
}

pub(super) async fn retry(api: &SettingsApi, request: pb::RetryDeliveryRequest) -> Result<notifier::Delivery> {
    tenants_delivery(api, &request.tenant_id, &request.delivery_id).await?;
    Ok(api
        .notifier
        .clone()
        .retry_delivery(notifier::RetryDeliveryRequest {
            delivery_id: request.delivery_id,
        })
        .await
        .map_err(from_notifier)?
        .into_inner())
}

pub(super) async fn preview(
    api: &SettingsApi,
    request: pb::PreviewEmailRequest,
) -> Result<notifier::PreviewEmailResponse> {
    check(validate::id("tenant_id", &request.tenant_id))?;
    Ok(api
        .notifier
        .clone()
        .preview_email(notifier::PreviewEmailRequest {
            kind: request.kind,
            locale: request.locale,
            tenant_id: Some(request.tenant_id),
        })
        .await
        .map_err(from_notifier)?
        .into_inner())
}

/// The delivery `delivery_id`, if it is `tenant_id`'s; NOT_FOUND if it is
/// another tenant's, exactly as if there were none.
async fn tenants_delivery(api: &SettingsApi, tenant_id: &str, delivery_id: &str) -> Result<notifier::Delivery> {
    check(validate::id("tenant_id", tenant_id))?;
    check(validate::id("delivery_id", delivery_id))?;
    let delivery = api
        .notifier
        .clone()
        .get_delivery(notifier::GetDeliveryRequest {
            delivery_id: delivery_id.to_owned(),
        })
        .await
        .map_err(from_notifier)?
        .into_inner();
    if delivery.tenant_id != tenant_id {
        return Err(delivery_not_found(delivery_id));
    }
    Ok(delivery)
}

/// The notifier's answer to a call it refused, passed on as it was; anything
/// else (it is down, or the call did not reach it) is UNAVAILABLE.
fn from_notifier(status: tonic::Status) -> Error {
    match Refusal::from_status(&status) {
        Some(refusal) if !matches!(refusal.reason, Reason::DatabaseUnavailable | Reason::InternalError) => {
            Error::Refused(refusal)
        }
        _ => Error::unavailable(
            Reason::NotifierUnavailable,
            format!(
                "the notifier did not answer ({}: {}); retry shortly",
                status.code(),
                status.message()
            ),
        ),
    }
}
