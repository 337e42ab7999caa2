//! What a finished send leaves a delivery in ([`decide`], pure), and the
//! writes that record it, gathered across the sends that finish together.

use std::{sync::Arc, time::Duration};

use dialin_domain::{sealed::SealedPayload, time::now_millis};
use dialin_proto::notifier::v1::{Conference, DeliveryStatus};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    sea_query::{self, Expr},
};
use tokio::sync::mpsc;

use super::{DeliveryWorker, RECORD_BATCH, RECORD_GATHER, RetryPolicy};
use crate::entity::delivery;

/// How one send ended.
pub(super) enum Outcome {
    Sent,
    Suppressed(String),
    /// Transient: try again later (or give up past the horizon).
    Retry(String),
    Failed(String),
    /// A newer email for the user replaces this one.
    Superseded(String),
    /// Not sent and left as it is: the claim was about to run out, and the
    /// delivery belongs to whichever sender claims it next.
    Abandoned,
}

/// What to write for a finished send.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Decision {
    /// SENT, with the content erased.
    Sent,
    /// Left as it is, for the next claim.
    Untouched,
    /// A final state and why; `attempts` when the send counted as one.
    Final {
        status: DeliveryStatus,
        reason: String,
        attempts: Option<i32>,
    },
    /// PENDING again, tried at `next_attempt_at`.
    Retry {
        attempts: i32,
        next_attempt_at: i64,
        reason: String,
    },
}

impl Decision {
    /// The status the delivery is left in.
    pub(super) fn status(&self) -> DeliveryStatus {
        match self {
            Self::Sent => DeliveryStatus::Sent,
            Self::Untouched | Self::Retry { .. } => DeliveryStatus::Pending,
            Self::Final { status, .. } => *status,
        }
    }
}

/// What `outcome` leaves `delivery` in at `now`: a transient failure is tried
/// again after the backoff, unless that passes the retry horizon (counted
/// from when the delivery was recorded); then it is final.
pub(super) fn decide(delivery: &delivery::Model, outcome: Outcome, retry: &RetryPolicy, now: i64) -> Decision {
    let attempts = delivery.attempts.saturating_add(1);
    let final_state = |status, reason, attempts| Decision::Final {
        status,
        reason,
        attempts,
    };
    match outcome {
        Outcome::Sent => Decision::Sent,
        Outcome::Abandoned => Decision::Untouched,
        Outcome::Suppressed(reason) => final_state(DeliveryStatus::Suppressed, reason, None),
        Outcome::Superseded(reason) => final_state(DeliveryStatus::Superseded, reason, None),
        Outcome::Failed(reason) => final_state(DeliveryStatus::Failed, reason, Some(attempts)),
        Outcome::Retry(reason) => {
            let delay = retry.backoff.delay(attempts.unsigned_abs());
            let next_attempt_at = now + millis(delay);
            if next_attempt_at > delivery.created_at + millis(retry.horizon) {
                let reason = format!("gave up after {attempts} attempts over {:?}: {reason}", retry.horizon);
                final_state(DeliveryStatus::Failed, reason, Some(attempts))
            } else {
                Decision::Retry {
                    attempts,
                    next_attempt_at,
                    reason: format!("attempt {attempts} failed, will retry: {reason}"),
                }
            }
        }
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX / 2)
}

impl DeliveryWorker {
    /// Writes outcomes as sends finish, until the worker stops sending: each
    /// write takes what finishes within [`RECORD_GATHER`] of the first.
    pub(super) async fn record_finished(
        self: Arc<Self>,
        mut finished: mpsc::UnboundedReceiver<(delivery::Model, Outcome)>,
    ) {
        let mut batch = Vec::new();
        while finished.recv_many(&mut batch, RECORD_BATCH).await > 0 {
            let gathered = tokio::time::Instant::now() + RECORD_GATHER;
            while batch.len() < RECORD_BATCH {
                let room = RECORD_BATCH - batch.len();
                match tokio::time::timeout_at(gathered, finished.recv_many(&mut batch, room)).await {
                    Ok(received) if received > 0 => {}
                    _ => break,
                }
            }
            self.record_all(std::mem::take(&mut batch)).await;
        }
    }

    /// Records the outcomes of sends that finished together, in one
    /// transaction: the sent ones with one statement, the rest one by one. A
    /// failed write leaves the claims to expire, and the deliveries are tried again.
    async fn record_all(&self, finished: Vec<(delivery::Model, Outcome)>) {
        let emails = finished.len();
        let decided = self.db.write(async |txn| {
            let (sent, others): (Vec<_>, Vec<_>) = finished
                .into_iter()
                .partition(|(_, outcome)| matches!(outcome, Outcome::Sent));
            let sent: Vec<delivery::Model> = sent.into_iter().map(|(delivery, _)| delivery).collect();
            self.record_sent(txn, &sent).await?;
            let mut decided: Vec<_> = sent
                .into_iter()
                .map(|delivery| (DeliveryStatus::Sent, delivery))
                .collect();
            for (delivery, outcome) in others {
                let decision = decide(&delivery, outcome, &self.retry, now_millis());
                let status = decision.status();
                self.apply(txn, &delivery, decision).await?;
                decided.push((status, delivery));
            }
            Ok::<_, DbErr>(decided)
        });
        match decided.await {
            Ok(decided) => {
                for (status, delivery) in decided.iter().filter(|(status, _)| *status != DeliveryStatus::Pending) {
                    metrics::counter!("dialin_emails_total", "kind" => delivery.kind.clone(), "outcome" => status.as_str_name())
                        .increment(1);
                    tracing::info!(
                        delivery_id = delivery.delivery_id,
                        kind = delivery.kind,
                        status = status.as_str_name(),
                        "delivery decided"
                    );
                }
            }
            Err(error) => {
                tracing::warn!(%error, emails, "cannot record the outcomes of sends; the claims will expire and the emails be tried again")
            }
        }
    }

    /// Marks `sent` SENT and erases their content, with one statement.
    async fn record_sent(&self, conn: &impl ConnectionTrait, sent: &[delivery::Model]) -> Result<(), DbErr> {
        if sent.is_empty() {
            return Ok(());
        }
        delivery::Entity::update_many()
            .col_expr(
                delivery::Column::Status,
                Expr::value(DeliveryStatus::Sent.as_str_name()),
            )
            .col_expr(delivery::Column::Reason, Expr::value(""))
            .col_expr(delivery::Column::Payload, Expr::value(Option::<Vec<u8>>::None))
            .col_expr(
                delivery::Column::Attempts,
                sea_query::ExprTrait::add(Expr::col(delivery::Column::Attempts), 1),
            )
            .col_expr(delivery::Column::SentAt, Expr::value(now_millis()))
            .col_expr(delivery::Column::LeaseUntil, Expr::value(0i64))
            .filter(delivery::Column::DeliveryId.is_in(sent.iter().map(|delivery| delivery.delivery_id.as_str())))
            .filter(delivery::still_pending())
            .exec(conn)
            .await?;
        Ok(())
    }

    /// Writes `decision` for `delivery`, unless a sender took it meanwhile or
    /// it was decided otherwise (the WHERE checks it is still pending).
    async fn apply(
        &self,
        conn: &impl ConnectionTrait,
        delivery: &delivery::Model,
        decision: Decision,
    ) -> Result<(), DbErr> {
        let update = delivery::Entity::update_many()
            .filter(delivery::Column::DeliveryId.eq(&delivery.delivery_id))
            .filter(delivery::still_pending())
            .col_expr(delivery::Column::LeaseUntil, Expr::value(0i64));
        let update = match decision {
            Decision::Sent => return self.record_sent(conn, std::slice::from_ref(delivery)).await,
            Decision::Untouched => return Ok(()),
            Decision::Final {
                status,
                reason,
                attempts,
            } => {
                // The PIN is erased once the delivery is decided. A failed email
                // keeps the rest of its content, for RetryDelivery; no other
                // final state is ever sent, so it keeps nothing.
                let kept = (status == DeliveryStatus::Failed)
                    .then(|| self.without_pin(delivery))
                    .flatten();
                let update = update
                    .col_expr(delivery::Column::Status, Expr::value(status.as_str_name()))
                    .col_expr(delivery::Column::Reason, Expr::value(reason))
                    .col_expr(delivery::Column::Payload, Expr::value(kept.map(|payload| payload.0)));
                match attempts {
                    Some(attempts) => update.col_expr(delivery::Column::Attempts, Expr::value(attempts)),
                    None => update,
                }
            }
            Decision::Retry {
                attempts,
                next_attempt_at,
                reason,
            } => {
                tracing::warn!(delivery_id = delivery.delivery_id, attempts, next_attempt_at, %reason, "email not sent; will retry");
                update
                    .col_expr(delivery::Column::Attempts, Expr::value(attempts))
                    .col_expr(delivery::Column::NextAttemptAt, Expr::value(next_attempt_at))
                    .col_expr(delivery::Column::Reason, Expr::value(reason))
            }
        };
        update.exec(conn).await?;
        Ok(())
    }

    /// The stored content with its PIN cleared (`None` when there is none).
    fn without_pin(&self, delivery: &delivery::Model) -> Option<SealedPayload> {
        self.cipher
            .reseal(delivery.payload.as_ref()?, |conference: &mut Conference| {
                conference.pin.clear()
            })
    }
}

#[cfg(test)]
mod tests {
    use dialin_domain::backoff::Backoff;
    use sea_orm::TryIntoModel;

    use super::*;

    const NOW: i64 = 10_000_000;

    fn retry() -> RetryPolicy {
        RetryPolicy {
            backoff: Backoff {
                initial: Duration::from_secs(10),
                max: Duration::from_secs(10),
            },
            horizon: Duration::from_secs(60),
        }
    }

    /// A delivery recorded `age` ago, tried `attempts` times.
    fn delivery(attempts: i32, age: Duration) -> delivery::Model {
        delivery::Model {
            delivery_id: "d".to_owned(),
            attempts,
            created_at: NOW - millis(age),
            ..super::super::tests::pending("d", NOW)
                .try_into_model()
                .expect("a whole row")
        }
    }

    #[test]
    fn a_sent_or_abandoned_send_writes_no_reason() {
        let young = delivery(0, Duration::ZERO);
        assert_eq!(decide(&young, Outcome::Sent, &retry(), NOW), Decision::Sent);
        assert_eq!(decide(&young, Outcome::Abandoned, &retry(), NOW), Decision::Untouched);
        assert_eq!(Decision::Untouched.status(), DeliveryStatus::Pending);
    }

    #[test]
    fn a_gate_decision_is_final_and_not_an_attempt() {
        let young = delivery(2, Duration::ZERO);
        for (outcome, status) in [
            (Outcome::Suppressed("off".into()), DeliveryStatus::Suppressed),
            (Outcome::Superseded("newer".into()), DeliveryStatus::Superseded),
        ] {
            let decision = decide(&young, outcome, &retry(), NOW);
            assert!(
                matches!(&decision, Decision::Final { attempts: None, .. }),
                "{decision:?}"
            );
            assert_eq!(decision.status(), status);
        }
    }

    #[test]
    fn a_permanent_failure_is_final_and_counted() {
        let decision = decide(
            &delivery(2, Duration::ZERO),
            Outcome::Failed("550".into()),
            &retry(),
            NOW,
        );
        assert_eq!(
            decision,
            Decision::Final {
                status: DeliveryStatus::Failed,
                reason: "550".into(),
                attempts: Some(3)
            }
        );
    }

    #[test]
    fn a_transient_failure_is_tried_again_after_the_backoff_within_the_horizon() {
        let decision = decide(
            &delivery(0, Duration::ZERO),
            Outcome::Retry("421".into()),
            &retry(),
            NOW,
        );
        let Decision::Retry {
            attempts,
            next_attempt_at,
            reason,
        } = decision
        else {
            panic!("not retried: {decision:?}")
        };
        assert_eq!(attempts, 1);
        assert!(
            (NOW + 8_000..=NOW + 12_000).contains(&next_attempt_at),
            "{next_attempt_at}"
        );
        assert_eq!(reason, "attempt 1 failed, will retry: 421");
    }

    #[test]
    fn a_transient_failure_past_the_horizon_is_final() {
        let old = delivery(4, Duration::from_secs(55));
        let decision = decide(&old, Outcome::Retry("421".into()), &retry(), NOW);
        assert_eq!(decision.status(), DeliveryStatus::Failed);
        let Decision::Final { reason, attempts, .. } = decision else {
            panic!("not final")
        };
        assert_eq!(attempts, Some(5));
        assert!(reason.starts_with("gave up after 5 attempts over 60s: 421"), "{reason}");
    }
}
