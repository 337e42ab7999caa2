//! `Notify` and `NotifyBatch`: validate each event, gate it, supersede what it
//! replaces, and record the deliveries durably before answering. Idempotent on
//! `event_id`. A batch is decided in one transaction with a fixed number of
//! statements (existing deliveries, policies, the users' histories, one insert
//! per few hundred rows, one update per superseding email), however many
//! events it holds: the per-statement cost, not the SQL, is what limits
//! throughput.

use std::collections::HashMap;

use dialin_common::{database::begin_write, ids::delivery_id_for_event, sealed::PayloadCipher, time, validate};
use dialin_proto::notifier::v1::{self as pb, DeliveryStatus, EmailKind, Trigger};
use prost::Message;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, sea_query::Expr};

use crate::{
    email::Language,
    entity::delivery,
    error::{Error, Result, check},
    gate::{self, Verdict},
    policy, supersede,
};

/// Rows per INSERT: 20 columns each stays far below either database's limit
/// of bound parameters per statement.
const INSERT_CHUNK: usize = 200;
/// A batch that loses a race with another replica recording the same event is
/// decided again (it then finds that event recorded); this many times at most.
const RACE_RETRIES: usize = 3;

/// A validated `Notify` request.
struct Event {
    event_id: String,
    delivery_id: String,
    tenant_id: String,
    policy_version: i64,
    kind: EmailKind,
    trigger: Trigger,
    recipient: pb::Recipient,
    conference: pb::Conference,
    occurred_at: i64,
}

/// What `Notify` answers.
#[derive(Clone)]
pub struct Recorded {
    pub delivery_id: String,
    pub status: DeliveryStatus,
    pub reason: String,
}

/// Records the delivery for one event.
pub async fn notify(
    db: &sea_orm::DatabaseConnection,
    cipher: &PayloadCipher,
    request: pb::NotifyRequest,
) -> Result<Recorded> {
    let mut answers = notify_many(db, cipher, vec![request]).await?;
    answers
        .pop()
        .unwrap_or_else(|| Err(Error::Internal("a batch of one event was answered with nothing".into())))
}

/// Records the deliveries for `requests` in one transaction; an answer per
/// request, in order. `Err` as a whole only when the database fails.
pub async fn notify_many(
    db: &sea_orm::DatabaseConnection,
    cipher: &PayloadCipher,
    requests: Vec<pb::NotifyRequest>,
) -> Result<Vec<Result<Recorded>>> {
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
        match record(db, cipher, &events).await {
            Err(error) if is_unique_violation(&error) && tries < RACE_RETRIES => tries += 1,
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

fn is_unique_violation(error: &DbErr) -> bool {
    matches!(error.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
}

/// Decides and records `events` in one transaction: an answer per event, in order.
async fn record(
    db: &sea_orm::DatabaseConnection,
    cipher: &PayloadCipher,
    events: &[Event],
) -> Result<Vec<Result<Recorded>>, DbErr> {
    let txn = begin_write(db).await?;
    let mut known: HashMap<String, Recorded> = delivery::Entity::find()
        .filter(delivery::Column::DeliveryId.is_in(events.iter().map(|event| event.delivery_id.as_str())))
        .all(&*txn)
        .await?
        .into_iter()
        .map(|existing| (existing.delivery_id.clone(), recorded(existing)))
        .collect();
    let fresh: Vec<&Event> = events
        .iter()
        .filter(|event| !known.contains_key(&event.delivery_id))
        .collect();
    let policies = policy::Versions::of(&*txn, fresh.iter().map(|event| event.tenant_id.as_str()).collect()).await?;
    let automatic: Vec<(&str, &str, i64)> = fresh
        .iter()
        .filter(|event| event.trigger == Trigger::Automatic)
        .map(|event| {
            (
                event.tenant_id.as_str(),
                event.recipient.user_id.as_str(),
                event.occurred_at,
            )
        })
        .collect();
    let mut history = supersede::history_of(&*txn, &automatic).await?;

    let now = time::now_millis();
    let mut rows: Vec<delivery::ActiveModel> = Vec::new();
    // Row index of each delivery recorded by this batch, to supersede it in place.
    let mut row_of: HashMap<String, usize> = HashMap::new();
    // Older recorded emails to mark SUPERSEDED, grouped by the email that
    // replaces them and by their kind (each is counted under its own kind).
    let mut stale: HashMap<(String, EmailKind), Vec<String>> = HashMap::new();
    let mut answers = Vec::with_capacity(events.len());
    // Events recorded before (settings hands an event over again after a crash
    // or a lost answer), counted for operators: a steady stream of them is work done twice.
    let mut repeated = 0;
    for event in events {
        if let Some(existing) = known.get(&event.delivery_id) {
            answers.push(Ok(existing.clone()));
            repeated += 1;
            continue;
        }
        let now_policy = policies.current(&event.tenant_id);
        if event.policy_version > now_policy.version {
            answers.push(Err(Error::FailedPrecondition(format!(
                "the notifier holds tenant {} policy version {}, older than the event's {}; push the newer policy with PutTenantPolicy, then retry",
                event.tenant_id, now_policy.version, event.policy_version
            ))));
            continue;
        }
        let when_changed = policies.as_of(&event.tenant_id, event.policy_version);
        let identity = event.identity();
        let (status, reason) = match gate::at_intake(event.trigger, &when_changed, &now_policy) {
            Verdict::Suppress(reason) => (DeliveryStatus::Suppressed, reason),
            Verdict::Send => match supersede::newer_replacement(&history, &identity) {
                Some(reason) => (DeliveryStatus::Superseded, reason),
                None => (DeliveryStatus::Pending, String::new()),
            },
        };
        if status == DeliveryStatus::Pending {
            let reason = format!(
                "superseded by the newer {} email {}",
                event.kind.as_str_name(),
                event.delivery_id
            );
            for older in supersede::older_than(&mut history, &identity, &event.delivery_id, now) {
                match row_of.get(&older.delivery_id) {
                    // Recorded by this batch: it is written superseded in the first place.
                    Some(&row) => {
                        rows[row].status = Set(DeliveryStatus::Superseded.as_str_name().to_owned());
                        rows[row].reason = Set(reason.clone());
                        rows[row].payload = Set(None);
                        if let Some(answer) = known.get_mut(&older.delivery_id) {
                            answer.status = DeliveryStatus::Superseded;
                            answer.reason = reason.clone();
                        }
                    }
                    None => stale
                        .entry((reason.clone(), older.kind))
                        .or_default()
                        .push(older.delivery_id.clone()),
                }
            }
        }
        supersede::record(
            &mut history,
            &identity,
            supersede::Recorded {
                delivery_id: event.delivery_id.clone(),
                kind: event.kind,
                status,
                occurred_at: event.occurred_at,
                lease_until: 0,
            },
        );
        row_of.insert(event.delivery_id.clone(), rows.len());
        rows.push(event.row(status, &reason, &now_policy.default_locale, now, cipher));
        let answer = Recorded {
            delivery_id: event.delivery_id.clone(),
            status,
            reason,
        };
        // A repeat of this event later in the batch answers as this one was recorded.
        known.insert(event.delivery_id.clone(), answer.clone());
        answers.push(Ok(answer));
    }

    let mut superseded = supersede::Superseded::default();
    for ((reason, kind), delivery_ids) in stale {
        let count = supersede_recorded(&*txn, &reason, delivery_ids, now).await?;
        superseded.add(kind, count);
    }
    let mut counts: HashMap<(String, String), u64> = HashMap::new();
    for row in &rows {
        if let (Set(kind), Set(status)) = (&row.kind, &row.status) {
            *counts.entry((kind.clone(), status.clone())).or_default() += 1;
        }
    }
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        delivery::Entity::insert_many(rows.by_ref().take(INSERT_CHUNK))
            .exec(&*txn)
            .await?;
    }
    txn.commit().await?;

    superseded.count();
    metrics::counter!("dialin_events_repeated_total").increment(repeated);
    for ((kind, status), count) in counts {
        if status != DeliveryStatus::Pending.as_str_name() {
            metrics::counter!("dialin_emails_total", "kind" => kind, "outcome" => status).increment(count);
        }
    }
    // The answers now hold each delivery's final state in this batch.
    let answers = answers
        .into_iter()
        .map(|answer| answer.map(|recorded| known.get(&recorded.delivery_id).cloned().unwrap_or(recorded)))
        .collect::<Vec<_>>();
    for (event, answer) in events.iter().zip(&answers) {
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
    Ok(answers)
}

/// Marks pending emails recorded earlier SUPERSEDED and erases their content,
/// unless a sender took one meanwhile (the WHERE checks again). Returns how
/// many it marked.
async fn supersede_recorded(
    conn: &impl ConnectionTrait,
    reason: &str,
    delivery_ids: Vec<String>,
    now: i64,
) -> Result<u64, DbErr> {
    let result = delivery::Entity::update_many()
        .col_expr(
            delivery::Column::Status,
            Expr::value(DeliveryStatus::Superseded.as_str_name()),
        )
        .col_expr(delivery::Column::Reason, Expr::value(reason))
        .col_expr(delivery::Column::Payload, Expr::value(Option::<Vec<u8>>::None))
        .filter(delivery::Column::DeliveryId.is_in(delivery_ids))
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

impl Event {
    fn identity(&self) -> supersede::EmailIdentity<'_> {
        supersede::EmailIdentity {
            tenant_id: &self.tenant_id,
            user_id: &self.recipient.user_id,
            kind: self.kind,
            trigger: self.trigger,
            occurred_at: self.occurred_at,
        }
    }

    fn row(
        &self,
        status: DeliveryStatus,
        reason: &str,
        tenant_locale: &str,
        now: i64,
        cipher: &PayloadCipher,
    ) -> delivery::ActiveModel {
        delivery::ActiveModel {
            delivery_id: Set(self.delivery_id.clone()),
            event_id: Set(self.event_id.clone()),
            tenant_id: Set(self.tenant_id.clone()),
            user_id: Set(self.recipient.user_id.clone()),
            kind: Set(self.kind.as_str_name().to_owned()),
            trigger: Set(self.trigger.as_str_name().to_owned()),
            to_address: Set(self.recipient.email.clone()),
            recipient_name: Set(self.recipient.display_name.clone()),
            locale: Set(self.recipient.locale.clone()),
            language: Set(Language::for_locales(&self.recipient.locale, tenant_locale)
                .tag()
                .to_owned()),
            policy_version: Set(self.policy_version),
            status: Set(status.as_str_name().to_owned()),
            reason: Set(reason.to_owned()),
            attempts: Set(0),
            occurred_at: Set(self.occurred_at),
            created_at: Set(now),
            queued_at: Set(now),
            sent_at: Set(None),
            next_attempt_at: Set(now),
            lease_until: Set(0),
            // Only a pending email keeps its content (and PIN); a decided one never will be sent.
            payload: Set((status == DeliveryStatus::Pending).then(|| cipher.seal(&self.conference.encode_to_vec()))),
        }
    }
}

fn recorded(existing: delivery::Model) -> Recorded {
    Recorded {
        status: DeliveryStatus::from_str_name(&existing.status).unwrap_or_default(),
        delivery_id: existing.delivery_id,
        reason: existing.reason,
    }
}

fn validate_event(request: pb::NotifyRequest) -> Result<Event> {
    check(validate::id("event_id", &request.event_id))?;
    check(validate::id("tenant_id", &request.tenant_id))?;
    let kind = match EmailKind::try_from(request.kind) {
        Ok(kind) if kind != EmailKind::Unspecified => kind,
        _ => {
            return Err(Error::invalid(
                "kind is required: WELCOME, PIN_RESET, SETTINGS_CHANGED, DISABLED or CONFERENCE_INFO",
            ));
        }
    };
    let trigger = match Trigger::try_from(request.trigger) {
        Ok(trigger) if trigger != Trigger::Unspecified => trigger,
        _ => return Err(Error::invalid("trigger is required: AUTOMATIC or MANUAL")),
    };
    let recipient = request
        .recipient
        .ok_or_else(|| Error::invalid("recipient is required"))?;
    check(validate::id("recipient.user_id", &recipient.user_id))?;
    check(validate::email("recipient.email", &recipient.email))?;
    check(validate::display_name(
        "recipient.display_name",
        &recipient.display_name,
    ))?;
    if !recipient.locale.is_empty() {
        check(validate::locale("recipient.locale", &recipient.locale))?;
    }
    let conference = request.conference.unwrap_or_default();
    let carries_pin = !conference.pin.is_empty();
    if carries_pin && trigger == Trigger::Manual {
        return Err(Error::invalid(
            "a MANUAL email never carries a PIN; remove conference.pin",
        ));
    }
    match kind {
        EmailKind::Welcome | EmailKind::PinReset => {
            if trigger == Trigger::Manual {
                return Err(Error::invalid(format!(
                    "{} is sent only AUTOMATIC; an admin's manual send is CONFERENCE_INFO",
                    kind.as_str_name()
                )));
            }
            if conference.pin.len() < 4
                || conference.pin.len() > 12
                || !conference.pin.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(Error::invalid(format!(
                    "{} needs conference.pin: 4 to 12 digits",
                    kind.as_str_name()
                )));
            }
        }
        EmailKind::SettingsChanged | EmailKind::Disabled | EmailKind::ConferenceInfo if carries_pin => {
            return Err(Error::invalid(format!(
                "{} emails never carry a PIN; remove conference.pin",
                kind.as_str_name()
            )));
        }
        EmailKind::ConferenceInfo if trigger != Trigger::Manual => {
            return Err(Error::invalid(
                "CONFERENCE_INFO is an admin's manual send: use trigger MANUAL",
            ));
        }
        _ => {}
    }
    if kind != EmailKind::Disabled {
        let id = &conference.conference_id;
        if id.len() != 7 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::invalid(format!(
                "{} needs conference.conference_id: exactly 7 digits",
                kind.as_str_name()
            )));
        }
        check(validate::e164("conference.toll_number", &conference.toll_number))?;
        if !conference.toll_free_number.is_empty() {
            check(validate::e164(
                "conference.toll_free_number",
                &conference.toll_free_number,
            ))?;
        }
    }
    Ok(Event {
        delivery_id: delivery_id_for_event(&request.event_id),
        event_id: request.event_id,
        tenant_id: request.tenant_id,
        policy_version: i64::try_from(request.policy_version)
            .map_err(|_| Error::invalid("policy_version is out of range"))?,
        kind,
        trigger,
        recipient,
        conference,
        occurred_at: request
            .occurred_at
            .as_ref()
            .map_or_else(time::now_millis, time::from_timestamp),
    })
}
