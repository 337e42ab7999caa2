//! Stale secrets never leave: a pending PIN (or conference-ID) email that a
//! newer one for the same user replaces is marked SUPERSEDED, at intake and
//! again just before sending. "Newer" is by when the change happened in
//! settings (`occurred_at`), not by arrival, so a late event cannot win.

use dialin_common::time;
use dialin_proto::notifier::v1::{DeliveryStatus, EmailKind, Trigger};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, sea_query::Expr};

use crate::entity::delivery;

/// Which email this is, for supersession.
pub struct EmailIdentity<'a> {
    pub tenant_id: &'a str,
    pub user_id: &'a str,
    pub kind: EmailKind,
    pub trigger: Trigger,
    pub occurred_at: i64,
}

/// The pending emails a newer email of `kind` makes stale. A PIN email replaces
/// an older PIN email (the old PIN no longer works); a details email replaces an
/// older details email; DISABLED replaces all three (nothing in them works any more).
fn replaces(kind: EmailKind) -> &'static [EmailKind] {
    match kind {
        EmailKind::Welcome | EmailKind::PinReset => &[EmailKind::Welcome, EmailKind::PinReset],
        EmailKind::SettingsChanged => &[EmailKind::SettingsChanged],
        EmailKind::Disabled => &[EmailKind::Welcome, EmailKind::PinReset, EmailKind::SettingsChanged],
        EmailKind::ConferenceInfo | EmailKind::Unspecified => &[],
    }
}

fn kind_names(kinds: &[EmailKind]) -> Vec<&'static str> {
    kinds.iter().map(|kind| kind.as_str_name()).collect()
}

/// Marks older pending emails that `email` replaces as SUPERSEDED, erasing
/// their content. One a sender holds right now is left to it: it may already be
/// with the SMTP server, and its record must say what really happened (the
/// sender checks again before it sends, and this newer email follows it).
pub async fn older_than(
    conn: &impl ConnectionTrait,
    email: &EmailIdentity<'_>,
    delivery_id: &str,
) -> Result<Superseded, DbErr> {
    let mut superseded = Superseded::default();
    if email.trigger != Trigger::Automatic {
        return Ok(superseded);
    }
    // One kind at a time, so each is counted under its own kind.
    for &kind in replaces(email.kind) {
        let result = delivery::Entity::update_many()
            .col_expr(
                delivery::Column::Status,
                Expr::value(DeliveryStatus::Superseded.as_str_name()),
            )
            .col_expr(
                delivery::Column::Reason,
                Expr::value(format!(
                    "superseded by the newer {} email {delivery_id}",
                    email.kind.as_str_name()
                )),
            )
            .col_expr(delivery::Column::Payload, Expr::value(Option::<Vec<u8>>::None))
            .filter(delivery::Column::TenantId.eq(email.tenant_id))
            .filter(delivery::Column::UserId.eq(email.user_id))
            .filter(delivery::Column::Status.eq(DeliveryStatus::Pending.as_str_name()))
            .filter(delivery::Column::Trigger.eq(Trigger::Automatic.as_str_name()))
            .filter(delivery::Column::Kind.eq(kind.as_str_name()))
            .filter(delivery::Column::OccurredAt.lte(email.occurred_at))
            .filter(delivery::Column::DeliveryId.ne(delivery_id))
            .filter(delivery::Column::LeaseUntil.lte(time::now_millis()))
            .exec(conn)
            .await?;
        if result.rows_affected > 0 {
            superseded.0.push((kind, result.rows_affected));
        }
    }
    if !superseded.0.is_empty() {
        tracing::info!(delivery_id, superseded = ?superseded.0, "older pending emails superseded");
    }
    Ok(superseded)
}

/// How many pending emails of each kind a newer one superseded.
#[derive(Debug, Default)]
pub struct Superseded(Vec<(EmailKind, u64)>);

impl Superseded {
    /// Counts them in `dialin_emails_total`, once their transaction has committed.
    pub fn count(&self) {
        for (kind, count) in &self.0 {
            metrics::counter!("dialin_emails_total", "kind" => kind.as_str_name(), "outcome" => DeliveryStatus::Superseded.as_str_name())
                .increment(*count);
        }
    }
}

/// If an email that replaces `email` already exists (in any state: a newer PIN
/// that was suppressed still makes the old PIN stale), why `email` must not go.
pub async fn newer_replacement(
    conn: &impl ConnectionTrait,
    email: &EmailIdentity<'_>,
) -> Result<Option<String>, DbErr> {
    if email.trigger != Trigger::Automatic {
        return Ok(None);
    }
    let replacing: Vec<EmailKind> = [
        EmailKind::Welcome,
        EmailKind::PinReset,
        EmailKind::SettingsChanged,
        EmailKind::Disabled,
    ]
    .into_iter()
    .filter(|newer| replaces(*newer).contains(&email.kind))
    .collect();
    let newer = delivery::Entity::find()
        .filter(delivery::Column::TenantId.eq(email.tenant_id))
        .filter(delivery::Column::UserId.eq(email.user_id))
        .filter(delivery::Column::Trigger.eq(Trigger::Automatic.as_str_name()))
        .filter(delivery::Column::Kind.is_in(kind_names(&replacing)))
        .filter(delivery::Column::OccurredAt.gt(email.occurred_at))
        .one(conn)
        .await?;
    Ok(newer.map(|newer| format!("superseded by the newer {} email {}", newer.kind, newer.delivery_id)))
}
