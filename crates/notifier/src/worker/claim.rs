//! Which due deliveries a sender takes next, as leases: a replica that dies
//! mid-send leaves its deliveries to be claimed again once the lease runs out.
//! The worker asks a [`Claimer`] for work and knows nothing of the order.

use std::time::Duration;

use dialin_domain::time::now_millis;
use dialin_store::{Store, sql::SKIP_LOCKED};
use sea_orm::{DbErr, EntityTrait, IdenStatic, Iterable};

use super::IDLE_POLL;
use crate::entity::delivery;

/// Takes leases on due deliveries for one worker, in the order of the
/// `deliveries_due` index (so a deep backlog is not sorted on every claim).
///
/// Walked from the oldest pending entry, that index on PostgreSQL holds the
/// dead entries of every email decided since the last vacuum, so each claim of
/// a burst would take longer than the one before. A claim starts instead at the
/// oldest row the previous claim took: the rows before it were leased, or held
/// by another transaction, then. Such a row can become claimable again (its
/// lease runs out, the transaction rolls back), so once per [`IDLE_POLL`] a
/// claim starts from the beginning.
pub(super) struct Claimer {
    db: Store,
    /// How long a claim holds before another sender may take the delivery.
    lease: Duration,
    next_attempt_at: i64,
    from_the_beginning_at: tokio::time::Instant,
}

impl Claimer {
    /// The first claim starts from the beginning.
    pub(super) fn new(db: Store, lease: Duration) -> Self {
        Self {
            db,
            lease,
            next_attempt_at: i64::MIN,
            from_the_beginning_at: tokio::time::Instant::now(),
        }
    }

    /// Leases up to `limit` due deliveries, in the order they were recorded.
    pub(super) async fn claim(&mut self, limit: usize) -> Result<Vec<delivery::Model>, DbErr> {
        let from_the_beginning = tokio::time::Instant::now() >= self.from_the_beginning_at;
        let from = if from_the_beginning {
            i64::MIN
        } else {
            self.next_attempt_at
        };
        let now = now_millis();
        let lease_until = now + i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX / 2);
        let limit = i64::try_from(limit).unwrap_or(8);
        // Columns by name: sqlx's SQLite driver misreads `RETURNING *` once a
        // migration has added a column (it indexes past the row).
        let columns: Vec<&str> = delivery::Column::iter().map(|column| column.as_str()).collect();
        let statement = self.db.statement(
            &format!(
                "UPDATE deliveries SET lease_until = $1 WHERE delivery_id IN (
                    SELECT delivery_id FROM deliveries
                    WHERE status = 'PENDING' AND next_attempt_at BETWEEN $4 AND $2 AND lease_until <= $2
                    ORDER BY next_attempt_at LIMIT $3 {SKIP_LOCKED})
                 RETURNING {}",
                columns.join(", ")
            ),
            [lease_until.into(), now.into(), limit.into(), from.into()],
        );
        // A transaction for one statement, to queue for SQLite's write lock
        // with the other writers instead of polling for it.
        let mut claimed = self
            .db
            .write(async |txn| delivery::Entity::find().from_raw_sql(statement).all(txn).await)
            .await?;
        if from_the_beginning {
            self.from_the_beginning_at = tokio::time::Instant::now() + IDLE_POLL;
        }
        if let Some(oldest) = claimed.iter().map(|delivery| delivery.next_attempt_at).min() {
            self.next_attempt_at = oldest;
        }
        claimed.sort_by_key(|delivery| delivery.created_at);
        Ok(claimed)
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ActiveModelTrait, ColumnTrait, QueryFilter, sea_query::Expr};

    use super::*;
    use crate::worker::tests::pending;

    #[tokio::test]
    async fn a_claim_starts_where_the_last_one_did_and_from_the_beginning_once_a_second() {
        let dir = std::env::temp_dir().join(format!("dialin-claim-{}", rand::random::<u64>()));
        let db = Store::connect(&format!("sqlite://{}/notifier.db?mode=rwc", dir.display()))
            .await
            .unwrap();
        dialin_store::schema::migrate::<crate::migration::Migrator>(&db)
            .await
            .unwrap();
        db.write(async |txn| {
            for (id, next_attempt_at) in [("a", 100), ("b", 200), ("c", 300), ("d", 400)] {
                pending(id, next_attempt_at).insert(txn).await?;
            }
            Ok::<_, DbErr>(())
        })
        .await
        .unwrap();
        let mut claimer = Claimer::new(db.clone(), Duration::from_secs(60));
        let ids = |claimed: Vec<delivery::Model>| -> Vec<String> {
            claimed.into_iter().map(|delivery| delivery.delivery_id).collect()
        };
        assert_eq!(ids(claimer.claim(2).await.unwrap()), ["a", "b"]);
        assert_eq!(ids(claimer.claim(1).await.unwrap()), ["c"]);
        // a's lease runs out (its sender died): a lies behind where claims start now.
        db.write(async |txn| {
            delivery::Entity::update_many()
                .col_expr(delivery::Column::LeaseUntil, Expr::value(0i64))
                .filter(delivery::Column::DeliveryId.eq("a"))
                .exec(txn)
                .await
        })
        .await
        .unwrap();
        assert_eq!(ids(claimer.claim(1).await.unwrap()), ["d"]);
        assert!(claimer.claim(1).await.unwrap().is_empty());
        // A second later a claim starts from the beginning, and takes it.
        claimer.from_the_beginning_at = tokio::time::Instant::now();
        assert_eq!(ids(claimer.claim(1).await.unwrap()), ["a"]);
        db.close().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
