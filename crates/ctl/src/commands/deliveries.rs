//! `dialinctl deliveries list | get | retry`: the tenant's emails as the
//! notifier recorded them, through the settings service (the same endpoint and
//! token as every other command).

use dialin_proto::{
    notifier::v1::{Delivery, DeliveryStatus},
    settings::v1::{GetDeliveryRequest, ListDeliveriesRequest, RetryDeliveryRequest},
};

use super::Session;
use crate::{
    cli::DeliveriesCommand,
    failure::Failure,
    output::{Column, column},
    paging::{MAX_PAGE_SIZE, next_page_size},
    user_ref::UserRef,
};

pub const DELIVERY_COLUMNS: [Column; 8] = [
    column("DELIVERY_ID", "deliveryId"),
    column("CREATED", "createdAt"),
    column("KIND", "kind"),
    column("TRIGGER", "trigger"),
    column("STATUS", "status"),
    column("ATTEMPTS", "attempts"),
    column("TO", "toAddress"),
    column("REASON", "reason"),
];

pub async fn run(command: DeliveriesCommand, session: &Session) -> Result<(), Failure> {
    let tenant_id = session.tenant.clone();
    let mut client = session.client();
    match command {
        DeliveriesCommand::List { user, status, limit } => {
            let status = status.map_or(DeliveryStatus::Unspecified, DeliveryStatus::from);
            let deliveries = list(session, user.as_deref().map(UserRef::parse), status, limit).await?;
            session.out.list("deliveries", &deliveries, &DELIVERY_COLUMNS)
        }
        DeliveriesCommand::Get { id } => {
            let delivery = client
                .get_delivery(GetDeliveryRequest {
                    tenant_id,
                    delivery_id: id,
                })
                .await?;
            session.out.message(&delivery.into_inner())
        }
        DeliveriesCommand::Retry { id } => {
            let delivery = client
                .retry_delivery(RetryDeliveryRequest {
                    tenant_id,
                    delivery_id: id,
                })
                .await?;
            session.out.message(&delivery.into_inner())
        }
    }
}

/// The tenant's (or one user's) deliveries with `status` (unspecified: any),
/// newest first, at most `limit`.
pub async fn list(
    session: &Session,
    user: Option<UserRef<'_>>,
    status: DeliveryStatus,
    limit: usize,
) -> Result<Vec<Delivery>, Failure> {
    let (user_id, email) = match user {
        Some(UserRef::Id(user_id)) => (Some(user_id.to_owned()), None),
        Some(UserRef::Email(email)) => (None, Some(email.to_owned())),
        None => (None, None),
    };
    let mut client = session.client();
    let mut deliveries = Vec::new();
    let mut page_token = String::new();
    while let Some(page_size) = next_page_size(Some(limit), deliveries.len(), MAX_PAGE_SIZE) {
        let page = client
            .list_deliveries(ListDeliveriesRequest {
                tenant_id: session.tenant.clone(),
                user_id: user_id.clone(),
                email: email.clone(),
                status: status.into(),
                page_size,
                page_token,
            })
            .await?
            .into_inner();
        deliveries.extend(page.deliveries);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    deliveries.truncate(limit);
    Ok(deliveries)
}
