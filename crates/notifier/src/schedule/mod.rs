//! The order emails leave in. Interactive emails (a single-user admin call) go
//! before bulk ones; within a lane, tenants with a backlog take turns; a user's
//! emails keep the order of their changes. Intake places each new email
//! ([`place`]); the worker's claim (`worker/claim.rs`) takes them in lane, then
//! turn order, and moves each lane's clock on.

mod place;
mod shape;

use std::collections::HashMap;

use dialin_proto::notifier::v1::DeliveryStatus;
use dialin_store::Store;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, sea_query::Expr};

pub use self::{
    place::{Arrival, LANE_BULK, LANE_INTERACTIVE, interactive_users, lane_of, place, turns_needed},
    shape::{queue_shape, sample_by_priority},
};
use crate::entity::delivery;

/// Reserves the turns `needed` per tenant and lane: each tenant goes on from
/// its last turn, or from the lane's clock if that is further (it had nothing
/// waiting). Returns the first turn of each.
pub async fn reserve_turns<'a>(
    db: &Store,
    conn: &impl ConnectionTrait,
    needed: &HashMap<(&'a str, i32), i64>,
) -> Result<HashMap<(&'a str, i32), i64>, DbErr> {
    let mut starts = HashMap::with_capacity(needed.len());
    for (&(tenant_id, lane), &count) in needed {
        let statement = db.statement(
            "INSERT INTO tenant_turns (tenant_id, lane, next_turn)
             VALUES ($1, $2, (SELECT turn FROM lane_clocks WHERE lane = $2) + $3)
             ON CONFLICT (tenant_id, lane) DO UPDATE SET next_turn = CASE
                 WHEN tenant_turns.next_turn > (SELECT turn FROM lane_clocks WHERE lane = $2) THEN tenant_turns.next_turn
                 ELSE (SELECT turn FROM lane_clocks WHERE lane = $2) END + $3
             RETURNING next_turn",
            [tenant_id.into(), lane.into(), count.into()],
        );
        let row = conn
            .query_one_raw(statement)
            .await?
            .ok_or_else(|| DbErr::RecordNotFound("the reserved turn was not returned".into()))?;
        let next_turn: i64 = row.try_get_by_index(0)?;
        starts.insert((tenant_id, lane), next_turn - count);
    }
    Ok(starts)
}

/// Moves the bulk emails recorded earlier for `user_ids` (of one tenant) into
/// the interactive lane, at `turn`: they leave with the users' newer
/// interactive ones, not after them. One statement, whatever the number of users.
pub async fn take_along(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    user_ids: &[&str],
    turn: i64,
) -> Result<u64, DbErr> {
    let moved = delivery::Entity::update_many()
        .col_expr(delivery::Column::Lane, Expr::value(LANE_INTERACTIVE))
        .col_expr(delivery::Column::Turn, Expr::value(turn))
        .filter(delivery::Column::TenantId.eq(tenant_id))
        .filter(delivery::Column::UserId.is_in(user_ids.iter().copied()))
        .filter(delivery::Column::Lane.eq(LANE_BULK))
        .filter(delivery::Column::Status.eq(DeliveryStatus::Pending.as_str_name()))
        .exec(conn)
        .await?;
    Ok(moved.rows_affected)
}

/// Moves `lane`'s clock on to `turn` (never back): where a tenant that
/// becomes active starts.
pub async fn advance_clock(db: &Store, conn: &impl ConnectionTrait, lane: i32, turn: i64) -> Result<(), DbErr> {
    let statement = db.statement(
        "UPDATE lane_clocks SET turn = $2 WHERE lane = $1 AND turn < $2",
        [lane.into(), turn.into()],
    );
    conn.execute_raw(statement).await.map(drop)
}
