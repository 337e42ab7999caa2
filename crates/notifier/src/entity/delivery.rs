//! One email: what was asked, what the gate decided, and what happened to it.

use dialin_domain::sealed::SealedPayload;
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
    /// `INTERACTIVE` or `BULK` as the event asked; empty for rows recorded
    /// before priorities were.
    pub priority: String,
    /// The scheduler's lane: 0 interactive, 1 bulk. A bulk email moves to the
    /// interactive lane when a newer interactive one for its user arrives.
    pub lane: i32,
    /// Its place in the lane: tenants' turns interleave (`crate::schedule`).
    pub turn: i64,
    /// The email's content (conference details and, for two kinds, the PIN);
    /// erased once the delivery reaches a final state.
    pub payload: Option<SealedPayload>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// `status = 'PENDING'`, for a statement that finds its rows by `delivery_id`,
/// written so that no index answers it. PostgreSQL's statistics lag a backlog
/// that grows by thousands a second, and with them it answered the plain
/// condition by ANDing the primary-key lookups with a scan of every pending
/// row in `deliveries_due`: each outcome write read the whole backlog.
pub fn still_pending() -> sea_orm::sea_query::SimpleExpr {
    // Spelt out: sea-query binds `.is(true)` as a parameter, which `IS` refuses.
    sea_orm::sea_query::Expr::cust(r#"("deliveries"."status" = 'PENDING') IS TRUE"#)
}

#[cfg(test)]
mod tests {
    use sea_orm::{DbBackend, QueryTrait};

    use super::*;

    #[test]
    fn still_pending_is_a_condition_no_index_answers() {
        let update = Entity::update_many()
            .col_expr(Column::LeaseUntil, sea_orm::sea_query::Expr::value(0i64))
            .filter(Column::DeliveryId.is_in(["a", "b"]))
            .filter(still_pending());
        for backend in [DbBackend::Postgres, DbBackend::Sqlite] {
            let sql = update.build(backend).to_string();
            let pending = dialin_proto::notifier::v1::DeliveryStatus::Pending.as_str_name();
            let expected = format!(r#"AND (("deliveries"."status" = '{pending}') IS TRUE)"#);
            assert!(sql.ends_with(&expected), "{backend:?}: {sql}");
        }
    }
}
