//! One email: what was asked, what the gate decided, and what happened to it.

use dialin_common::sealed::SealedPayload;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub delivery_id: String,
    #[sea_orm(unique)]
    pub event_id: String,
    pub tenant_id: String,
    pub user_id: String,
    /// `WELCOME`, `PIN_RESET`, … as in the proto enum.
    pub kind: String,
    /// `AUTOMATIC` or `MANUAL`.
    pub trigger: String,
    pub to_address: String,
    pub recipient_name: String,
    pub locale: String,
    /// The language the email is written in (`en`, `fr`, …), chosen when it was recorded.
    pub language: String,
    pub policy_version: i64,
    /// `PENDING`, `SENT`, `SUPPRESSED`, `SUPERSEDED` or `FAILED`.
    pub status: String,
    pub reason: String,
    pub attempts: i32,
    /// When the change happened in settings (orders supersession).
    pub occurred_at: i64,
    pub created_at: i64,
    /// When it was last queued (created, or re-queued by RetryDelivery): the
    /// retry horizon counts from here.
    pub queued_at: i64,
    pub sent_at: Option<i64>,
    pub next_attempt_at: i64,
    /// A sender holds the delivery until then; a crashed sender's claim expires.
    pub lease_until: i64,
    /// The email's content (conference details and, for two kinds, the PIN);
    /// erased once the delivery reaches a final state.
    pub payload: Option<SealedPayload>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
