//! The queue's shape, as Postfix's `qshape` shows it: pending emails per
//! tenant and priority, by how long they have waited.

use dialin_domain::time::to_timestamp;
use dialin_proto::notifier::v1::{self as pb, Priority};
use dialin_store::Store;
use sea_orm::{ConnectionTrait, DbErr};

const MINUTE_MS: i64 = 60_000;

/// Pending emails per tenant and priority (of `tenant_id`, or every tenant's),
/// most pending first.
pub async fn queue_shape(db: &Store, tenant_id: Option<&str>, now: i64) -> Result<Vec<pb::TenantQueue>, DbErr> {
    let statement = db.statement(
        "SELECT tenant_id, priority, COUNT(*),
                SUM(CASE WHEN created_at > $1 THEN 1 ELSE 0 END),
                SUM(CASE WHEN created_at <= $1 AND created_at > $2 THEN 1 ELSE 0 END),
                SUM(CASE WHEN created_at <= $2 AND created_at > $3 THEN 1 ELSE 0 END),
                SUM(CASE WHEN created_at <= $3 THEN 1 ELSE 0 END),
                MIN(created_at)
         FROM deliveries WHERE status = 'PENDING' AND ($4 = '' OR tenant_id = $4)
         GROUP BY tenant_id, priority ORDER BY COUNT(*) DESC, tenant_id",
        [
            (now - MINUTE_MS).into(),
            (now - 10 * MINUTE_MS).into(),
            (now - 60 * MINUTE_MS).into(),
            tenant_id.unwrap_or("").into(),
        ],
    );
    let rows = db.reader().query_all_raw(statement).await?;
    rows.into_iter()
        .map(|row| {
            let count = |index| row.try_get_by_index::<i64>(index).map(i64::unsigned_abs);
            let priority: String = row.try_get_by_index(1)?;
            Ok(pb::TenantQueue {
                tenant_id: row.try_get_by_index(0)?,
                priority: Priority::from_str_name(&priority).unwrap_or_default().into(),
                pending: count(2)?,
                under_1m: count(3)?,
                from_1m_to_10m: count(4)?,
                from_10m_to_1h: count(5)?,
                over_1h: count(6)?,
                oldest_created_at: Some(to_timestamp(row.try_get_by_index(7)?)),
            })
        })
        .collect()
}

/// Sets the pending count and oldest age per priority, for the metrics.
pub async fn sample_by_priority(db: &Store, now: i64) -> Result<(), DbErr> {
    let statement = db.statement(
        "SELECT priority, COUNT(*), MIN(created_at) FROM deliveries WHERE status = 'PENDING' GROUP BY priority",
        [],
    );
    let rows = db.reader().query_all_raw(statement).await?;
    let mut seen = Vec::new();
    for row in rows {
        let priority: String = row.try_get_by_index(0)?;
        let label = if priority.is_empty() {
            "UNSPECIFIED".to_owned()
        } else {
            priority
        };
        let count: i64 = row.try_get_by_index(1)?;
        let oldest: i64 = row.try_get_by_index(2)?;
        metrics::gauge!("dialin_queue_pending", "priority" => label.clone()).set(count as f64);
        metrics::gauge!("dialin_queue_oldest_age_seconds", "priority" => label.clone())
            .set((now - oldest).max(0) as f64 / 1000.0);
        seen.push(label);
    }
    // A priority that emptied reads 0, not its last count.
    for label in ["INTERACTIVE", "BULK"] {
        if !seen.iter().any(|seen| seen == label) {
            metrics::gauge!("dialin_queue_pending", "priority" => label).set(0.0);
            metrics::gauge!("dialin_queue_oldest_age_seconds", "priority" => label).set(0.0);
        }
    }
    Ok(())
}
