//! `Notify` and `NotifyBatch`: validate each event, gate it, supersede what it
//! replaces, and record the deliveries durably before answering. Idempotent on
//! `event_id`. A batch is decided in one transaction with a fixed number of
//! statements (existing deliveries, policies, the users' histories, one insert
//! per few hundred rows, one update per superseding email), however many
//! events it holds: the per-statement cost, not the SQL, is what limits
//! throughput.

mod decide;
mod event;

use std::collections::HashMap;

use dialin_domain::{sealed::PayloadCipher, time};
use dialin_proto::notifier::v1::{self as pb, DeliveryStatus};
use dialin_store::Store;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, sea_query::Expr};

use self::{
    decide::{NewDelivery, Plan, decide},
    event::{Event, validate_event},
};
use crate::{
    entity::delivery,
    error::{Error, Result},
    policy, schedule, supersede,
};

/// Rows per INSERT: 20 columns each stays far below either database's limit
/// of bound parameters per statement.
const INSERT_CHUNK: usize = 200;
/// A batch that loses a race with another replica recording the same event is
/// decided again (it then finds that event recorded); this many times at most.
const RACE_RETRIES: usize = 3;

/// What `Notify` answers.
#[derive(Clone)]
pub struct Answer {
    pub delivery_id: String,
    pub status: DeliveryStatus,
    pub reason: String,
}

/// Records the delivery for one event.
pub async fn notify(db: &Store, cipher: &PayloadCipher, request: pb::NotifyRequest) -> Result<Answer> {
    let mut answers = notify_many(db, cipher, vec![request]).await?;
    answers
        .pop()
        .unwrap_or_else(|| Err(Error::Internal("a batch of one event was answered with nothing".into())))
}

/// Records the deliveries for `requests` in one transaction; an answer per
/// request, in order. `Err` as a whole only when the database fails.
pub async fn notify_many(
    db: &Store,
    cipher: &PayloadCipher,
    requests: Vec<pb::NotifyRequest>,
) -> Result<Vec<Result<Answer>>> {
    let mut answers = Vec::with_capacity(requests.len());
    let mut events = Vec::with_capacity(requests.len());
    for request in requests {
        match validate_event(request) {
            Ok(event) => {
                answers.push(None);
                events.push(event);
            }
            Err(error) => answers.push(Some(Err(error))),
        }
    }
    let mut tries = 0;
    let mut decided = loop {
        match record_events(db, cipher, &events).await {
            Err(error) if dialin_store::is_unique_violation(&error) && tries < RACE_RETRIES => tries += 1,
            result => break result?.into_iter(),
        }
    };
    Ok(answers
        .into_iter()
        .map(|answer| {
            answer
                .or_else(|| decided.next())
                .unwrap_or_else(|| Err(Error::Internal("an event was left undecided".into())))
        })
        .collect())
}

/// Decides and records `events` in one transaction ([`decide`]): an answer
/// per event, in order.
async fn record_events(db: &Store, cipher: &PayloadCipher, events: &[Event]) -> Result<Vec<Result<Answer>>, DbErr> {
    let (plan, superseded) = db
        .write(async |txn| decide_and_apply(db, txn, events, cipher).await)
        .await?;

    superseded.count();
    metrics::counter!("dialin_events_repeated_total").increment(plan.repeated);
    let mut decided: HashMap<(&str, &str), u64> = HashMap::new();
    for new in plan.new.iter().filter(|new| new.status != DeliveryStatus::Pending) {
        *decided
            .entry((new.event.kind.as_str_name(), new.status.as_str_name()))
            .or_default() += 1;
    }
    for ((kind, status), count) in decided {
        metrics::counter!("dialin_emails_total", "kind" => kind, "outcome" => status).increment(count);
    }
    for (event, answer) in events.iter().zip(&plan.answers) {
        if let Ok(recorded) = answer {
            tracing::info!(
                delivery_id = recorded.delivery_id,
                event_id = event.event_id,
                tenant_id = event.tenant_id,
                kind = event.kind.as_str_name(),
                status = recorded.status.as_str_name(),
                "delivery recorded"
            );
        }
    }
    Ok(plan.answers)
}

/// Reads what `events` are decided against, decides, and writes the plan.
async fn decide_and_apply<'e>(
    db: &Store,
    txn: &DatabaseTransaction,
    events: &'e [Event],
    cipher: &PayloadCipher,
) -> Result<(Plan<'e>, supersede::Superseded), DbErr> {
    let known: HashMap<String, Answer> = delivery::Entity::find()
        .filter(delivery::Column::DeliveryId.is_in(events.iter().map(|event| event.delivery_id.as_str())))
        .all(txn)
        .await?
        .into_iter()
        .map(|existing| (existing.delivery_id.clone(), answer_for(existing)))
        .collect();
    let fresh: Vec<&Event> = events
        .iter()
        .filter(|event| !known.contains_key(&event.delivery_id))
        .collect();
    let policies = policy::Versions::of(txn, fresh.iter().map(|event| event.tenant_id.as_str()).collect()).await?;
    let automatic: Vec<(&str, &str, i64)> = fresh
        .iter()
        .filter(|event| event.trigger == pb::Trigger::Automatic)
        .map(|event| {
            (
                event.tenant_id.as_str(),
                event.recipient.user_id.as_str(),
                event.occurred_at,
            )
        })
        .collect();
    let history = supersede::history_of(txn, &automatic).await?;
    let now = time::now_millis();
    let plan = decide(events, known, &policies, history, now);
    let superseded = apply(db, txn, &plan, cipher, now).await?;
    Ok((plan, superseded))
}

/// Writes `plan`: the older emails it supersedes, then its new deliveries,
/// the pending ones in their place in the queue.
async fn apply(
    db: &Store,
    txn: &impl ConnectionTrait,
    plan: &Plan<'_>,
    cipher: &PayloadCipher,
    now: i64,
) -> Result<supersede::Superseded, DbErr> {
    let mut superseded = supersede::Superseded::default();
    for ((reason, kind), delivery_ids) in &plan.stale {
        let count = supersede_recorded(txn, reason, delivery_ids, now).await?;
        superseded.add(*kind, count);
    }
    let pending: Vec<&NewDelivery<'_>> = plan
        .new
        .iter()
        .filter(|new| new.status == DeliveryStatus::Pending)
        .collect();
    let arrivals: Vec<schedule::Arrival<'_>> = pending.iter().map(|new| new.event.arrival()).collect();
    let starts = schedule::reserve_turns(db, txn, &schedule::turns_needed(&arrivals)).await?;
    let places = schedule::place(&arrivals, &starts);
    for (tenant_id, (turn, user_ids)) in schedule::interactive_users(&arrivals, &places) {
        schedule::take_along(txn, tenant_id, &user_ids, turn).await?;
    }
    let mut places = places.into_iter();
    // Built before the first insert: a mapping iterator held across the
    // awaits below would keep the handler's future from being `Send` (a
    // limitation of rustc's higher-ranked lifetimes, rust-lang/rust#110338).
    let rows: Vec<delivery::ActiveModel> = plan
        .new
        .iter()
        .map(|new| {
            let place = if new.status == DeliveryStatus::Pending {
                places.next().unwrap_or((schedule::LANE_BULK, 0))
            } else {
                (schedule::LANE_BULK, 0)
            };
            new.event
                .row(new.status, &new.reason, &new.tenant_locale, place, now, cipher)
        })
        .collect();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        delivery::Entity::insert_many(rows.by_ref().take(INSERT_CHUNK))
            .exec(txn)
            .await?;
    }
    Ok(superseded)
}

/// Marks pending emails recorded earlier SUPERSEDED and erases their content,
/// unless a sender took one meanwhile (the WHERE checks again). Returns how
/// many it marked.
async fn supersede_recorded(
    conn: &impl ConnectionTrait,
    reason: &str,
    delivery_ids: &[String],
    now: i64,
) -> Result<u64, DbErr> {
    let result = delivery::Entity::update_many()
        .col_expr(
            delivery::Column::Status,
            Expr::value(DeliveryStatus::Superseded.as_str_name()),
        )
        .col_expr(delivery::Column::Reason, Expr::value(reason))
        .col_expr(delivery::Column::Payload, Expr::value(Option::<Vec<u8>>::None))
        .filter(delivery::Column::DeliveryId.is_in(delivery_ids.iter().map(String::as_str)))
        .filter(delivery::still_pending())
        .filter(delivery::Column::LeaseUntil.lte(now))
        .exec(conn)
        .await?;
    tracing::info!(
        reason,
        superseded = result.rows_affected,
        "older pending emails superseded"
    );
    Ok(result.rows_affected)
}

fn answer_for(existing: delivery::Model) -> Answer {
    Answer {
        status: DeliveryStatus::from_str_name(&existing.status).unwrap_or_default(),
        delivery_id: existing.delivery_id,
        reason: existing.reason,
    }
}
