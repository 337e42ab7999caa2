//! `RetryDelivery`: an operator puts a FAILED email back in the queue.

use dialin_domain::time::now_millis;
use dialin_proto::notifier::v1::{DeliveryStatus, EmailKind};
use dialin_store::Store;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, IntoActiveModel, QuerySelect};

use crate::{
    entity::delivery,
    error::{Error, Reason, Result, delivery_not_found},
};

/// Re-queues a FAILED delivery. It goes through the gate again before it is
/// sent, and its retry horizon starts afresh.
pub async fn requeue(db: &Store, delivery_id: &str) -> Result<delivery::Model> {
    let requeued = db.write(async |txn| {
        let failed = delivery::Entity::find_by_id(delivery_id)
            .lock_exclusive()
            .one(txn)
            .await?
            .ok_or_else(|| delivery_not_found(delivery_id))?;
        if failed.status != DeliveryStatus::Failed.as_str_name() {
            return Err(Error::precondition(
                Reason::DeliveryNotFailed,
                format!(
                    "delivery {delivery_id} is {}; only a FAILED delivery can be retried",
                    failed.status
                ),
            )
            .about("delivery_id", delivery_id));
        }
        let kind = EmailKind::from_str_name(&failed.kind).unwrap_or_default();
        if matches!(kind, EmailKind::Welcome | EmailKind::PinReset) {
            return Err(Error::precondition(
                Reason::DeliveryContentErased,
                format!(
                    "this {} email carried a PIN, which was erased when it failed; reset the user's PIN (ResetPin) to send a new one",
                    failed.kind
                ),
            )
            .about("delivery_id", delivery_id));
        }
        if failed.payload.is_none() {
            return Err(Error::precondition(
                Reason::DeliveryContentErased,
                format!(
                    "the content of delivery {delivery_id} is gone; send the user's conference info again (SendConferenceInfoEmail)"
                ),
            )
            .about("delivery_id", delivery_id));
        }
        let now = now_millis();
        let mut requeued = failed.into_active_model();
        requeued.status = Set(DeliveryStatus::Pending.as_str_name().to_owned());
        requeued.reason = Set(format!(
            "re-queued by RetryDelivery; previous reason: {}",
            requeued.reason.as_ref()
        ));
        requeued.next_attempt_at = Set(now);
        requeued.queued_at = Set(now);
        requeued.lease_until = Set(0);
        let requeued = requeued.update(txn).await?;
        Ok(requeued)
    })
    .await?;
    tracing::info!(delivery_id, "failed delivery re-queued");
    Ok(requeued)
}
