//! Which due deliveries a sender takes next, as leases: a replica that dies
//! mid-send leaves its deliveries to be claimed again once the lease runs out.
//! The interactive lane first, then the bulk lane, each in turn order
//! (`crate::schedule`): tenants with a backlog take turns. The worker asks a
//! [`Claimer`] for work and knows nothing of the order.

use std::time::Duration;

use dialin_domain::time::now_millis;
use dialin_store::{Store, sql::SKIP_LOCKED};
use sea_orm::{DatabaseTransaction, DbErr, EntityTrait, IdenStatic, Iterable};

use super::IDLE_POLL;
use crate::{
    entity::delivery,
    schedule::{self, LANE_BULK, LANE_INTERACTIVE},
};

/// Takes leases on due deliveries for one worker, in the order of the
/// `deliveries_due_by_turn` index (lane, then turn: a deep backlog is not sorted on
/// every claim).
///
/// Walked from the lowest turn, that index on PostgreSQL holds the dead
/// entries of every email decided since the last vacuum, so each claim of a
/// burst would take longer than the one before. A claim of a lane starts
/// instead at the lowest turn the previous claim of it took: the rows before
/// it were leased, or held by another transaction, then. Such a row can
/// become claimable again (its lease runs out, the transaction rolls back),
/// so once per [`IDLE_POLL`] a claim starts from the beginning.
pub(super) struct Claimer {
    db: Store,
    /// How long a claim holds before another sender may take the delivery.
    lease: Duration,
    /// Where the next claim of each lane starts.
    from_turn: [i64; 2],
    from_the_beginning_at: tokio::time::Instant,
}

impl Claimer {
    /// The first claim starts from the beginning.
    pub(super) fn new(db: Store, lease: Duration) -> Self {
        Self {
            db,
            lease,
            from_turn: [i64::MIN; 2],
            from_the_beginning_at: tokio::time::Instant::now(),
        }
    }

    /// Leases up to `limit` due deliveries, interactive ones first, in the
    /// order they were recorded.
    pub(super) async fn claim(&mut self, limit: usize) -> Result<Vec<delivery::Model>, DbErr> {
        let from_the_beginning = tokio::time::Instant::now() >= self.from_the_beginning_at;
        if from_the_beginning {
            self.from_turn = [i64::MIN; 2];
            self.from_the_beginning_at = tokio::time::Instant::now() + IDLE_POLL;
        }
        let now = now_millis();
        let lease_until = now + i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX / 2);
        let from_turn = self.from_turn;
        // One transaction for both lanes: on SQLite one turn at the write
        // lock, on PostgreSQL one commit.
        let mut claimed = self
            .db
            .write(async |txn| {
                let mut claimed = self
                    .claim_lane(txn, LANE_INTERACTIVE, from_turn, limit, now, lease_until)
                    .await?;
                if claimed.len() < limit {
                    let bulk = self
                        .claim_lane(txn, LANE_BULK, from_turn, limit - claimed.len(), now, lease_until)
                        .await?;
                    claimed.extend(bulk);
                }
                Ok::<_, DbErr>(claimed)
            })
            .await?;
        for lane in [LANE_INTERACTIVE, LANE_BULK] {
            if let Some(lowest) = claimed
                .iter()
                .filter(|delivery| delivery.lane == lane)
                .map(|delivery| delivery.turn)
                .min()
            {
                self.from_turn[lane_index(lane)] = lowest;
            }
        }
        claimed.sort_by_key(|delivery| delivery.created_at);
        Ok(claimed)
    }

    /// Leases up to `limit` due deliveries of `lane` in turn order from
    /// `from_turn`, and moves the lane's clock to the last turn taken.
    async fn claim_lane(
        &self,
        txn: &DatabaseTransaction,
        lane: i32,
        from_turn: [i64; 2],
        limit: usize,
        now: i64,
        lease_until: i64,
    ) -> Result<Vec<delivery::Model>, DbErr> {
        let limit = i64::try_from(limit).unwrap_or(8);
        // Columns by name: sqlx's SQLite driver misreads `RETURNING *` once a
        // migration has added a column (it indexes past the row).
        let columns: Vec<&str> = delivery::Column::iter().map(|column| column.as_str()).collect();
        let statement = self.db.statement(
            &format!(
                "UPDATE deliveries SET lease_until = $1 WHERE delivery_id IN (
                    SELECT delivery_id FROM deliveries
                    WHERE status = 'PENDING' AND lane = $5 AND turn >= $4
                      AND next_attempt_at <= $2 AND lease_until <= $2
                    ORDER BY turn LIMIT $3 {SKIP_LOCKED})
                 RETURNING {}",
                columns.join(", ")
            ),
            [
                lease_until.into(),
                now.into(),
                limit.into(),
                from_turn[lane_index(lane)].into(),
                lane.into(),
            ],
        );
        let claimed = delivery::Entity::find().from_raw_sql(statement).all(txn).await?;
        if let Some(last) = claimed.iter().map(|delivery| delivery.turn).max() {
            schedule::advance_clock(&self.db, txn, lane, last).await?;
        }
        Ok(claimed)
    }
}

/// Where a lane's state sits in per-lane arrays.
fn lane_index(lane: i32) -> usize {
    usize::try_from(lane).unwrap_or(1).min(1)
}

#[cfg(test)]
mod tests {
    use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, QueryFilter, sea_query::Expr};

    use super::*;
    use crate::worker::tests::pending;

    /// A migrated SQLite notifier database in a directory of its own.
    async fn migrated_store() -> (std::path::PathBuf, Store) {
        let dir = std::env::temp_dir().join(format!("dialin-claim-{}", rand::random::<u64>()));
        let db = Store::connect(&format!("sqlite://{}/notifier.db?mode=rwc", dir.display()))
            .await
            .unwrap();
        dialin_store::schema::migrate::<crate::migration::Migrator>(&db)
            .await
            .unwrap();
        (dir, db)
    }

    #[tokio::test]
    async fn a_claim_starts_where_the_last_one_did_and_from_the_beginning_once_a_second() {
        let (dir, db) = migrated_store().await;
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

    #[tokio::test]
    async fn interactive_emails_go_first_and_tenants_take_turns() {
        let (dir, db) = migrated_store().await;
        // Tenant a's backlog was numbered first; b joined at turn 2; one interactive email last.
        let rows = [
            ("a0", "a", LANE_BULK, 0),
            ("a1", "a", LANE_BULK, 1),
            ("a2", "a", LANE_BULK, 2),
            ("a3", "a", LANE_BULK, 3),
            ("b2", "b", LANE_BULK, 2),
            ("b3", "b", LANE_BULK, 3),
            ("i", "b", LANE_INTERACTIVE, 0),
        ];
        db.write(async |txn| {
            for (id, tenant_id, lane, turn) in rows {
                let mut row = pending(id, 100);
                row.tenant_id = sea_orm::Set(tenant_id.to_owned());
                row.lane = sea_orm::Set(lane);
                row.turn = sea_orm::Set(turn);
                row.insert(txn).await?;
            }
            Ok::<_, DbErr>(())
        })
        .await
        .unwrap();
        let mut claimer = Claimer::new(db.clone(), Duration::from_secs(60));
        let mut order = Vec::new();
        for limit in [2, 1, 2, 2] {
            let mut claimed: Vec<(i64, String)> = claimer
                .claim(limit)
                .await
                .unwrap()
                .into_iter()
                .map(|delivery| (delivery.turn, delivery.delivery_id))
                .collect();
            claimed.sort();
            order.push(claimed.into_iter().map(|(_, id)| id).collect::<Vec<_>>().join(" "));
        }
        assert_eq!(order, ["a0 i", "a1", "a2 b2", "a3 b3"]);
        let clock = db
            .reader()
            .query_one_raw(db.statement("SELECT turn FROM lane_clocks WHERE lane = $1", [LANE_BULK.into()]))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index::<i64>(0)
            .unwrap();
        assert_eq!(clock, 3, "the bulk lane's clock is at the last turn claimed");
        db.close().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
