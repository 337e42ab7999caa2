//! Events waiting to be handed to the notifier, written in the same transaction
//! as the change that caused them and deleted once the notifier has them.

use dialin_domain::sealed::SealedPayload;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub tenant_id: String,
    /// Whom a notify event is about; empty for a policy change.
    pub user_id: String,
    /// [`LANE_INTERACTIVE`] or [`LANE_BULK`]: the order events are handed over in.
    pub lane: i32,
    /// `notify` or `policy`.
    pub topic: String,
    /// The encoded request; a notify payload may hold a PIN, hence the redacting type.
    pub payload: SealedPayload,
    pub created_at: i64,
    pub attempts: i32,
    pub next_attempt_at: i64,
    /// Set when the notifier refused the event for good; the dispatcher skips it.
    pub dead: bool,
    pub last_error: String,
}

/// Policy changes and single-user events: handed over before any bulk event.
pub const LANE_INTERACTIVE: i32 = 0;
pub const LANE_BULK: i32 = 1;

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
