//! The `SettingsService` gRPC surface. Each RPC validates, then does its work
//! in one write transaction that also records the events it causes (see
//! `crate::outbox`); `ResetPin` and `AssignLicense` calls arriving together
//! share one (`group_commit`). The handlers live in one file per use case.

mod bridge;
mod bulk_license;
mod changes;
mod convert;
mod deliveries;
mod group_commit;
mod license;
mod pin_resets;
mod tenant;
mod users;
mod verify;

use dialin_proto::{
    notifier::v1::{self as notifier, notifier_service_client::NotifierServiceClient},
    settings::v1::{self as pb, settings_service_server::SettingsService},
};
use dialin_store::Store;
use tonic::{Request, Response, Status, transport::Channel};

use self::{bulk_license::Licenser, group_commit::Groups, pin_resets::Resetter};
use crate::{auth::Caller, outbox::Outbox, pin::PinKey, settings_cache::TenantSettingsCache};

/// Cheap to clone: every field is a handle.
#[derive(Clone)]
pub struct SettingsApi {
    db: Store,
    pin_key: PinKey,
    /// Woken after every commit that wrote outbox events.
    outbox: Outbox,
    /// For confirming a switch-off with the notifier before the call returns.
    notifier: NotifierServiceClient<Channel>,
    tenant_cache: TenantSettingsCache,
    /// `ResetPin` and `AssignLicense` calls, made in groups (`group_commit`).
    pin_resets: Groups<Resetter>,
    licensing: Groups<Licenser>,
}

impl SettingsApi {
    pub fn new(
        db: Store,
        pin_key: PinKey,
        outbox: Outbox,
        notifier: NotifierServiceClient<Channel>,
        tenant_cache: TenantSettingsCache,
    ) -> Self {
        Self {
            pin_resets: Groups::start(Resetter {
                db: db.clone(),
                pin_key: pin_key.clone(),
                outbox: outbox.clone(),
            }),
            licensing: Groups::start(Licenser {
                db: db.clone(),
                pin_key: pin_key.clone(),
                outbox: outbox.clone(),
            }),
            db,
            pin_key,
            outbox,
            notifier,
            tenant_cache,
        }
    }
}

/// Every request names its tenant; the caller's token must cover it.
trait ForTenant {
    fn tenant_id(&self) -> &str;
}

macro_rules! for_tenant {
    ($($request:ident),+ $(,)?) => {$(
        impl ForTenant for pb::$request {
            fn tenant_id(&self) -> &str {
                &self.tenant_id
            }
        }
    )+};
}

for_tenant!(
    GetTenantSettingsRequest,
    UpdateTenantSettingsRequest,
    ResetTenantSettingsRequest,
    AddServiceNumberRequest,
    ListServiceNumbersRequest,
    AssignLicenseRequest,
    AssignLicensesRequest,
    RemoveLicenseRequest,
    GetUserRequest,
    ListUsersRequest,
    ResetPinRequest,
    ResetConferenceIdRequest,
    SetDefaultNumbersRequest,
    SetProviderRequest,
    SendConferenceInfoEmailRequest,
    ReplaceDefaultNumberRequest,
    VerifyPinRequest,
    ListDeliveriesRequest,
    GetDeliveryRequest,
    RetryDeliveryRequest,
    PreviewEmailRequest,
);

/// Checks the caller may act for the request's tenant, before anything is
/// read, so that nothing about another tenant can leak.
async fn authorized<R: ForTenant>(request: &Request<R>) -> Result<(), Status> {
    let caller = request.extensions().get::<Caller>().ok_or_else(|| {
        Status::from(crate::error::Error::unauthenticated(
            crate::error::Reason::TokenMissing,
            "no caller identity on this call",
        ))
    })?;
    caller.authorize(request.get_ref().tenant_id()).map_err(Status::from)
}

macro_rules! rpc {
    ($handler:path, $api:expr, $request:expr) => {{
        authorized(&$request).await?;
        let api = $api.clone();
        let request = $request.into_inner();
        dialin_common::server::run_to_completion(async move { $handler(&api, request).await }).await
    }};
}

#[tonic::async_trait]
impl SettingsService for SettingsApi {
    async fn get_tenant_settings(
        &self,
        request: Request<pb::GetTenantSettingsRequest>,
    ) -> Result<Response<pb::TenantSettings>, Status> {
        rpc!(tenant::get, self, request)
    }

    async fn update_tenant_settings(
        &self,
        request: Request<pb::UpdateTenantSettingsRequest>,
    ) -> Result<Response<pb::TenantSettings>, Status> {
        rpc!(tenant::update, self, request)
    }

    async fn reset_tenant_settings(
        &self,
        request: Request<pb::ResetTenantSettingsRequest>,
    ) -> Result<Response<pb::TenantSettings>, Status> {
        rpc!(tenant::reset, self, request)
    }

    async fn add_service_number(
        &self,
        request: Request<pb::AddServiceNumberRequest>,
    ) -> Result<Response<pb::ServiceNumber>, Status> {
        rpc!(bridge::add_number, self, request)
    }

    async fn list_service_numbers(
        &self,
        request: Request<pb::ListServiceNumbersRequest>,
    ) -> Result<Response<pb::ListServiceNumbersResponse>, Status> {
        rpc!(bridge::list_numbers, self, request)
    }

    async fn assign_license(
        &self,
        request: Request<pb::AssignLicenseRequest>,
    ) -> Result<Response<pb::AssignLicenseResponse>, Status> {
        // Made by its group's task, like ResetPin.
        authorized(&request).await?;
        bulk_license::assign_one(self, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn assign_licenses(
        &self,
        request: Request<pb::AssignLicensesRequest>,
    ) -> Result<Response<pb::AssignLicensesResponse>, Status> {
        rpc!(bulk_license::assign_many, self, request)
    }

    async fn remove_license(
        &self,
        request: Request<pb::RemoveLicenseRequest>,
    ) -> Result<Response<pb::ConferencingUser>, Status> {
        rpc!(license::remove, self, request)
    }

    async fn get_user(&self, request: Request<pb::GetUserRequest>) -> Result<Response<pb::ConferencingUser>, Status> {
        rpc!(license::get_user, self, request)
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        rpc!(license::list_users, self, request)
    }

    async fn reset_pin(&self, request: Request<pb::ResetPinRequest>) -> Result<Response<pb::ResetPinResponse>, Status> {
        // Not spawned like the others: the change is made by its group's task,
        // to its end, whether or not the caller waits.
        authorized(&request).await?;
        pin_resets::reset(self, request.into_inner()).await.map(Response::new)
    }

    async fn reset_conference_id(
        &self,
        request: Request<pb::ResetConferenceIdRequest>,
    ) -> Result<Response<pb::ConferencingUser>, Status> {
        rpc!(changes::reset_conference_id, self, request)
    }

    async fn set_default_numbers(
        &self,
        request: Request<pb::SetDefaultNumbersRequest>,
    ) -> Result<Response<pb::ConferencingUser>, Status> {
        rpc!(changes::set_default_numbers, self, request)
    }

    async fn set_provider(
        &self,
        request: Request<pb::SetProviderRequest>,
    ) -> Result<Response<pb::SetProviderResponse>, Status> {
        rpc!(license::set_provider, self, request)
    }

    async fn send_conference_info_email(
        &self,
        request: Request<pb::SendConferenceInfoEmailRequest>,
    ) -> Result<Response<pb::SendConferenceInfoEmailResponse>, Status> {
        rpc!(changes::send_conference_info, self, request)
    }

    async fn replace_default_number(
        &self,
        request: Request<pb::ReplaceDefaultNumberRequest>,
    ) -> Result<Response<pb::ReplaceDefaultNumberResponse>, Status> {
        rpc!(changes::replace_default_number, self, request)
    }

    async fn verify_pin(
        &self,
        request: Request<pb::VerifyPinRequest>,
    ) -> Result<Response<pb::VerifyPinResponse>, Status> {
        rpc!(verify::verify_pin, self, request)
    }

    async fn list_deliveries(
        &self,
        request: Request<pb::ListDeliveriesRequest>,
    ) -> Result<Response<pb::ListDeliveriesResponse>, Status> {
        rpc!(deliveries::list, self, request)
    }

    async fn get_delivery(
        &self,
        request: Request<pb::GetDeliveryRequest>,
    ) -> Result<Response<notifier::Delivery>, Status> {
        rpc!(deliveries::get, self, request)
    }

    async fn retry_delivery(
        &self,
        request: Request<pb::RetryDeliveryRequest>,
    ) -> Result<Response<notifier::Delivery>, Status> {
        rpc!(deliveries::retry, self, request)
    }

    async fn preview_email(
        &self,
        request: Request<pb::PreviewEmailRequest>,
    ) -> Result<Response<notifier::PreviewEmailResponse>, Status> {
        rpc!(deliveries::preview, self, request)
    }
}
