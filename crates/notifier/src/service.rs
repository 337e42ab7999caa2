//! The `NotifierService` gRPC surface.

use dialin_store::Store;
use std::{sync::Arc, time::Duration};

use dialin_domain::{
    sealed::PayloadCipher,
    time::{now_millis, to_timestamp},
    validate,
};
use dialin_proto::notifier::v1::{
    self as pb, DeliveryStatus, EmailKind, Priority, Trigger, notifier_service_server::NotifierService,
};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tokio::sync::Notify;
use tonic::{Request, Response, Status};

use crate::{
    email::{Language, preview},
    entity::delivery,
    error::{Error, Result, check},
    intake, policy,
    relay::Relay,
    retry, schedule,
};

const DEFAULT_PAGE_SIZE: u32 = 100;
/// Most events one `NotifyBatch` takes.
const MAX_BATCH: usize = 1000;
const MAX_PAGE_SIZE: u32 = 1000;

/// Cheap to clone: every field is a handle.
#[derive(Clone)]
pub struct NotifierApi {
    db: Store,
    /// Seals the content of pending emails (it may hold a PIN).
    cipher: PayloadCipher,
    /// Wakes the delivery worker when a pending delivery is recorded.
    worker_wake: Arc<Notify>,
    /// Longest a switch-off waits for sends already past the gate.
    fence_timeout: Duration,
    /// The relay's budget, as `DescribeQueue` shows it; none for .eml files.
    relay: Option<Arc<Relay>>,
}

impl NotifierApi {
    pub fn new(
        db: Store,
        cipher: PayloadCipher,
        worker_wake: Arc<Notify>,
        fence_timeout: Duration,
        relay: Option<Arc<Relay>>,
    ) -> Self {
        Self {
            db,
            cipher,
            worker_wake,
            fence_timeout,
            relay,
        }
    }

    async fn put_tenant_policy(self, request: pb::PutTenantPolicyRequest) -> Result<pb::TenantPolicy> {
        check(validate::id("tenant_id", &request.tenant_id))?;
        // The sender is checked whenever given: it may be switched on later without being sent again.
        if request.send_email_from_override || !request.send_email_from_address.is_empty() {
            check(validate::email(
                "send_email_from_address",
                &request.send_email_from_address,
            ))?;
        }
        if request.send_email_from_override || !request.send_email_from_display_name.is_empty() {
            check(validate::display_name(
                "send_email_from_display_name",
                &request.send_email_from_display_name,
            ))?;
        }
        if !request.default_locale.is_empty() {
            check(validate::locale("default_locale", &request.default_locale))?;
        }
        let held = self.db.write(async |txn| policy::put(txn, &request).await).await?;
        if !held.automatically_send_emails_to_users {
            policy::await_sends_in_flight(self.db.reader(), &held.tenant_id, self.fence_timeout).await?;
        }
        if held.version.unsigned_abs() > request.version {
            tracing::debug!(
                tenant_id = request.tenant_id,
                stale = request.version,
                held = held.version,
                "stale tenant policy ignored"
            );
        } else {
            tracing::info!(
                tenant_id = request.tenant_id,
                version = held.version,
                automatic_emails = held.automatically_send_emails_to_users,
                "tenant policy stored"
            );
        }
        Ok(policy::to_pb(held))
    }

    async fn retry_delivery(self, request: pb::RetryDeliveryRequest) -> Result<pb::Delivery> {
        check(validate::id("delivery_id", &request.delivery_id))?;
        let requeued = retry::requeue(&self.db, &request.delivery_id).await?;
        self.worker_wake.notify_one();
        Ok(delivery_to_pb(requeued))
    }

    async fn notify(self, request: pb::NotifyRequest) -> Result<pb::NotifyResponse> {
        let recorded = intake::notify(&self.db, &self.cipher, request).await?;
        if recorded.status == DeliveryStatus::Pending {
            self.worker_wake.notify_one();
        }
        Ok(notify_response(recorded))
    }

    async fn notify_batch(self, request: pb::NotifyBatchRequest) -> Result<pb::NotifyBatchResponse> {
        if request.events.is_empty() || request.events.len() > MAX_BATCH {
            return Err(Error::invalid(
                "events",
                format!(
                    "events must hold 1 to {MAX_BATCH} events, not {}; split larger batches",
                    request.events.len()
                ),
            ));
        }
        let answers = intake::notify_many(&self.db, &self.cipher, request.events).await?;
        if answers
            .iter()
            .any(|answer| matches!(answer, Ok(recorded) if recorded.status == DeliveryStatus::Pending))
        {
            self.worker_wake.notify_one();
        }
        let results = answers
            .into_iter()
            .enumerate()
            .map(|(index, answer)| match answer {
                Ok(recorded) => pb::NotifyResult {
                    recorded: Some(notify_response(recorded)),
                    error: None,
                },
                Err(error) => {
                    let reason = error.reason();
                    let status = Status::from(error.in_entry("events", index));
                    pb::NotifyResult {
                        recorded: None,
                        error: Some(pb::EventError {
                            code: status.code() as i32,
                            message: status.message().to_owned(),
                            reason: reason.into(),
                        }),
                    }
                }
            })
            .collect();
        Ok(pb::NotifyBatchResponse { results })
    }

    async fn preview_email(self, request: pb::PreviewEmailRequest) -> Result<pb::PreviewEmailResponse> {
        let kind = EmailKind::try_from(request.kind)
            .ok()
            .filter(|kind| *kind != EmailKind::Unspecified)
            .ok_or_else(|| {
                Error::invalid(
                    "kind",
                    "kind must be WELCOME, PIN_RESET, SETTINGS_CHANGED, DISABLED or CONFERENCE_INFO",
                )
            })?;
        if !request.locale.is_empty() {
            check(validate::locale("locale", &request.locale))?;
        }
        // A tenant settings never told about has the defaults, as its real emails would.
        let policy = match &request.tenant_id {
            Some(tenant_id) => {
                check(validate::id("tenant_id", tenant_id))?;
                policy::current(self.db.reader(), tenant_id).await?
            }
            None => policy::default_policy(""),
        };
        let language = Language::for_locales(&request.locale, &policy.default_locale);
        let sender_name = policy
            .send_email_from_override
            .then_some(policy.send_email_from_display_name);
        let email = preview::render(kind, language, sender_name).map_err(|error| Error::Internal(error.to_string()))?;
        Ok(pb::PreviewEmailResponse {
            subject: email.subject.to_owned(),
            text: email.text,
            html: email.html,
            language: language.tag().to_owned(),
        })
    }

    async fn get_delivery(self, request: pb::GetDeliveryRequest) -> Result<pb::Delivery> {
        check(validate::id("delivery_id", &request.delivery_id))?;
        delivery::Entity::find_by_id(&request.delivery_id)
            .one(self.db.reader())
            .await?
            .map(delivery_to_pb)
            .ok_or_else(|| crate::error::delivery_not_found(&request.delivery_id))
    }

    async fn list_deliveries(self, request: pb::ListDeliveriesRequest) -> Result<pb::ListDeliveriesResponse> {
        check(validate::id("tenant_id", &request.tenant_id))?;
        let page_size = match request.page_size {
            0 => DEFAULT_PAGE_SIZE,
            size => size.min(MAX_PAGE_SIZE),
        };
        let mut query = delivery::Entity::find()
            .filter(delivery::Column::TenantId.eq(&request.tenant_id))
            .order_by_desc(delivery::Column::CreatedAt)
            // Emails recorded in the same millisecond (one batch) in the order the changes happened.
            .order_by_desc(delivery::Column::OccurredAt)
            .order_by_desc(delivery::Column::DeliveryId)
            .limit(u64::from(page_size) + 1);
        if let Some(user_id) = &request.user_id {
            check(validate::id("user_id", user_id))?;
            query = query.filter(delivery::Column::UserId.eq(user_id));
        }
        match DeliveryStatus::try_from(request.status) {
            Ok(DeliveryStatus::Unspecified) => {}
            Ok(status) => query = query.filter(delivery::Column::Status.eq(status.as_str_name())),
            Err(_) => {
                return Err(Error::invalid(
                    "status",
                    format!(
                        "status {} is not a delivery status: PENDING, SENT, SUPPRESSED, SUPERSEDED or FAILED (or unset: all)",
                        request.status
                    ),
                ));
            }
        }
        if !request.page_token.is_empty() {
            check(validate::id("page_token", &request.page_token))?;
            let (created_at, occurred_at, delivery_id) = parse_page_token(&request.page_token)?;
            query = query.filter(
                Condition::any()
                    .add(delivery::Column::CreatedAt.lt(created_at))
                    .add(
                        Condition::all()
                            .add(delivery::Column::CreatedAt.eq(created_at))
                            .add(delivery::Column::OccurredAt.lt(occurred_at)),
                    )
                    .add(
                        Condition::all()
                            .add(delivery::Column::CreatedAt.eq(created_at))
                            .add(delivery::Column::OccurredAt.eq(occurred_at))
                            .add(delivery::Column::DeliveryId.lt(delivery_id)),
                    ),
            );
        }
        let mut deliveries = query.all(self.db.reader()).await?;
        let next_page_token = if deliveries.len() > page_size as usize {
            deliveries.truncate(page_size as usize);
            deliveries
                .last()
                .map(|last| format!("{}:{}:{}", last.created_at, last.occurred_at, last.delivery_id))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(pb::ListDeliveriesResponse {
            deliveries: deliveries.into_iter().map(delivery_to_pb).collect(),
            next_page_token,
        })
    }
}

impl NotifierApi {
    async fn describe_queue(self, request: pb::DescribeQueueRequest) -> Result<pb::DescribeQueueResponse> {
        if let Some(tenant_id) = &request.tenant_id {
            check(validate::id("tenant_id", tenant_id))?;
        }
        let queues = schedule::queue_shape(&self.db, request.tenant_id.as_deref(), now_millis()).await?;
        Ok(pb::DescribeQueueResponse {
            queues,
            relay: self.relay.as_ref().map(|relay| relay.describe()),
        })
    }
}

fn notify_response(recorded: intake::Answer) -> pb::NotifyResponse {
    pb::NotifyResponse {
        delivery_id: recorded.delivery_id,
        status: recorded.status.into(),
        reason: recorded.reason,
    }
}

/// Page tokens are `<created_at millis>:<occurred_at millis>:<delivery_id>` of
/// the last delivery shown.
fn parse_page_token(token: &str) -> Result<(i64, i64, String)> {
    let mut parts = token.splitn(3, ':');
    (|| {
        Some((
            parts.next()?.parse().ok()?,
            parts.next()?.parse().ok()?,
            parts.next()?.to_owned(),
        ))
    })()
    .ok_or_else(|| {
        Error::invalid(
            "page_token",
            "page_token is not one this service handed out; pass next_page_token unchanged",
        )
    })
}

fn delivery_to_pb(delivery: delivery::Model) -> pb::Delivery {
    pb::Delivery {
        kind: EmailKind::from_str_name(&delivery.kind).unwrap_or_default().into(),
        trigger: Trigger::from_str_name(&delivery.trigger).unwrap_or_default().into(),
        status: DeliveryStatus::from_str_name(&delivery.status)
            .unwrap_or_default()
            .into(),
        attempts: delivery.attempts.unsigned_abs(),
        created_at: Some(to_timestamp(delivery.created_at)),
        sent_at: delivery.sent_at.map(to_timestamp),
        delivery_id: delivery.delivery_id,
        event_id: delivery.event_id,
        tenant_id: delivery.tenant_id,
        user_id: delivery.user_id,
        to_address: delivery.to_address,
        reason: delivery.reason,
        language: delivery.language,
        priority: Priority::from_str_name(&delivery.priority).unwrap_or_default().into(),
    }
}

/// Runs `handler` on its own clone of the API to its end ([`dialin_common::server::run_to_completion`]).
async fn run_to_completion<Req, Resp, F, Fut>(
    api: &NotifierApi,
    request: Request<Req>,
    handler: F,
) -> Result<Response<Resp>, Status>
where
    Resp: Send + 'static,
    F: FnOnce(NotifierApi, Req) -> Fut,
    Fut: std::future::Future<Output = Result<Resp>> + Send + 'static,
{
    dialin_common::server::run_to_completion(handler(api.clone(), request.into_inner())).await
}

#[tonic::async_trait]
impl NotifierService for NotifierApi {
    async fn put_tenant_policy(
        &self,
        request: Request<pb::PutTenantPolicyRequest>,
    ) -> Result<Response<pb::TenantPolicy>, Status> {
        run_to_completion(self, request, Self::put_tenant_policy).await
    }

    async fn notify(&self, request: Request<pb::NotifyRequest>) -> Result<Response<pb::NotifyResponse>, Status> {
        run_to_completion(self, request, Self::notify).await
    }

    async fn notify_batch(
        &self,
        request: Request<pb::NotifyBatchRequest>,
    ) -> Result<Response<pb::NotifyBatchResponse>, Status> {
        run_to_completion(self, request, Self::notify_batch).await
    }

    async fn preview_email(
        &self,
        request: Request<pb::PreviewEmailRequest>,
    ) -> Result<Response<pb::PreviewEmailResponse>, Status> {
        run_to_completion(self, request, Self::preview_email).await
    }

    async fn get_delivery(&self, request: Request<pb::GetDeliveryRequest>) -> Result<Response<pb::Delivery>, Status> {
        run_to_completion(self, request, Self::get_delivery).await
    }

    async fn retry_delivery(
        &self,
        request: Request<pb::RetryDeliveryRequest>,
    ) -> Result<Response<pb::Delivery>, Status> {
        run_to_completion(self, request, Self::retry_delivery).await
    }

    async fn list_deliveries(
        &self,
        request: Request<pb::ListDeliveriesRequest>,
    ) -> Result<Response<pb::ListDeliveriesResponse>, Status> {
        run_to_completion(self, request, Self::list_deliveries).await
    }

    async fn describe_queue(
        &self,
        request: Request<pb::DescribeQueueRequest>,
    ) -> Result<Response<pb::DescribeQueueResponse>, Status> {
        run_to_completion(self, request, Self::describe_queue).await
    }
}
