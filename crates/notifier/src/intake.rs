//! `Notify`: validate the event, gate it, supersede what it replaces, and record
//! the delivery durably before answering. Idempotent on `event_id`.

use dialin_common::{database::begin_write, ids::delivery_id_for_event, sealed::PayloadCipher, time, validate};
use dialin_proto::notifier::v1::{self as pb, DeliveryStatus, EmailKind, Trigger};
use prost::Message;
use sea_orm::{ActiveValue::Set, EntityTrait};

use crate::{
    email::Language,
    entity::delivery,
    error::{Error, Result, check},
    gate::{self, Verdict},
    policy, supersede,
};

/// A validated `Notify` request.
struct Event {
    event_id: String,
    tenant_id: String,
    policy_version: i64,
    kind: EmailKind,
    trigger: Trigger,
    recipient: pb::Recipient,
    conference: pb::Conference,
    occurred_at: i64,
}

/// What `Notify` answers.
pub struct Recorded {
    pub delivery_id: String,
    pub status: DeliveryStatus,
    pub reason: String,
}

/// Records the delivery for `request`. Returns whether it waits to be sent.
pub async fn notify(
    db: &sea_orm::DatabaseConnection,
    cipher: &PayloadCipher,
    request: pb::NotifyRequest,
) -> Result<Recorded> {
    let event = validate_event(request)?;
    let delivery_id = delivery_id_for_event(&event.event_id);
    if let Some(existing) = delivery::Entity::find_by_id(&delivery_id).one(db).await? {
        return Ok(recorded(existing));
    }

    let txn = begin_write(db).await?;
    let now_policy = policy::current(&*txn, &event.tenant_id).await?;
    if event.policy_version > now_policy.version {
        return Err(Error::FailedPrecondition(format!(
            "the notifier holds tenant {} policy version {}, older than the event's {}; push the newer policy with PutTenantPolicy, then retry",
            event.tenant_id, now_policy.version, event.policy_version
        )));
    }
    let when_changed = policy::as_of(&*txn, &event.tenant_id, event.policy_version).await?;
    let (status, reason) = match gate::at_intake(event.trigger, &when_changed, &now_policy) {
        Verdict::Suppress(reason) => (DeliveryStatus::Suppressed, reason),
        Verdict::Send => match supersede::newer_replacement(&*txn, &event.identity()).await? {
            Some(reason) => (DeliveryStatus::Superseded, reason),
            None => (DeliveryStatus::Pending, String::new()),
        },
    };
    let superseded = if status == DeliveryStatus::Pending {
        supersede::older_than(&*txn, &event.identity(), &delivery_id).await?
    } else {
        supersede::Superseded::default()
    };
    let now = time::now_millis();
    let row = delivery::ActiveModel {
        delivery_id: Set(delivery_id.clone()),
        event_id: Set(event.event_id.clone()),
        tenant_id: Set(event.tenant_id.clone()),
        user_id: Set(event.recipient.user_id.clone()),
        kind: Set(event.kind.as_str_name().to_owned()),
        trigger: Set(event.trigger.as_str_name().to_owned()),
        to_address: Set(event.recipient.email.clone()),
        recipient_name: Set(event.recipient.display_name.clone()),
        locale: Set(event.recipient.locale.clone()),
        language: Set(
            Language::for_locales(&event.recipient.locale, &now_policy.default_locale)
                .tag()
                .to_owned(),
        ),
        policy_version: Set(event.policy_version),
        status: Set(status.as_str_name().to_owned()),
        reason: Set(reason.clone()),
        attempts: Set(0),
        occurred_at: Set(event.occurred_at),
        created_at: Set(now),
        queued_at: Set(now),
        sent_at: Set(None),
        next_attempt_at: Set(now),
        lease_until: Set(0),
        // Only a pending email keeps its content (and PIN); a decided one never will be sent.
        payload: Set((status == DeliveryStatus::Pending).then(|| cipher.seal(&event.conference.encode_to_vec()))),
    };
    match delivery::Entity::insert(row).exec(&*txn).await {
        Ok(_) => {
            txn.commit().await?;
            superseded.count();
        }
        Err(error) if matches!(error.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) => {
            // The same event raced in on another connection: answer as it was recorded.
            drop(txn);
            let existing = delivery::Entity::find_by_id(&delivery_id).one(db).await?;
            return existing.map(recorded).ok_or(Error::Database(error));
        }
        Err(error) => return Err(error.into()),
    }
    if status != DeliveryStatus::Pending {
        metrics::counter!("dialin_emails_total", "kind" => event.kind.as_str_name(), "outcome" => status.as_str_name())
            .increment(1);
    }
    tracing::info!(
        delivery_id,
        event_id = event.event_id,
        tenant_id = event.tenant_id,
        kind = event.kind.as_str_name(),
        status = status.as_str_name(),
        "delivery recorded"
    );
    Ok(Recorded {
        delivery_id,
        status,
        reason,
    })
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
