//! One `Notify` request, checked ([`validate_event`]), and the delivery row it
//! becomes.

use dialin_domain::{ids::delivery_id_for_event, sealed::PayloadCipher, time, validate};
use dialin_proto::notifier::v1::{self as pb, DeliveryStatus, EmailKind, Priority, Trigger};
use prost::Message;
use sea_orm::ActiveValue::Set;

use crate::{
    email::Language,
    entity::delivery,
    error::{Error, Result, check},
    schedule, supersede,
};

/// A validated `Notify` request.
pub(super) struct Event {
    pub event_id: String,
    pub delivery_id: String,
    pub tenant_id: String,
    pub policy_version: i64,
    pub kind: EmailKind,
    pub trigger: Trigger,
    pub recipient: pb::Recipient,
    pub conference: pb::Conference,
    pub occurred_at: i64,
    /// INTERACTIVE or BULK (never unspecified).
    pub priority: Priority,
}

impl Event {
    pub(super) fn identity(&self) -> supersede::EmailIdentity<'_> {
        supersede::EmailIdentity {
            tenant_id: &self.tenant_id,
            user_id: &self.recipient.user_id,
            kind: self.kind,
            trigger: self.trigger,
            occurred_at: self.occurred_at,
        }
    }

    /// Whose email it is and the lane it asks for, for the scheduler.
    pub(super) fn arrival(&self) -> schedule::Arrival<'_> {
        schedule::Arrival {
            tenant_id: &self.tenant_id,
            user_id: &self.recipient.user_id,
            lane: schedule::lane_of(self.priority),
        }
    }

    /// The delivery row; `(lane, turn)` is its place in the queue if it is pending.
    pub(super) fn row(
        &self,
        status: DeliveryStatus,
        reason: &str,
        tenant_locale: &str,
        (lane, turn): (i32, i64),
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
            priority: Set(self.priority.as_str_name().to_owned()),
            lane: Set(lane),
            turn: Set(turn),
            // Only a pending email keeps its content (and PIN); a decided one never will be sent.
            payload: Set((status == DeliveryStatus::Pending).then(|| cipher.seal(&self.conference.encode_to_vec()))),
        }
    }
}

/// Checks a `Notify` request: INVALID_ARGUMENT with what to fix, or the event.
pub(super) fn validate_event(request: pb::NotifyRequest) -> Result<Event> {
    check(validate::id("event_id", &request.event_id))?;
    check(validate::id("tenant_id", &request.tenant_id))?;
    let kind = match EmailKind::try_from(request.kind) {
        Ok(kind) if kind != EmailKind::Unspecified => kind,
        _ => {
            return Err(Error::invalid(
                "kind",
                "kind is required: WELCOME, PIN_RESET, SETTINGS_CHANGED, DISABLED or CONFERENCE_INFO",
            ));
        }
    };
    let trigger = match Trigger::try_from(request.trigger) {
        Ok(trigger) if trigger != Trigger::Unspecified => trigger,
        _ => return Err(Error::invalid("trigger", "trigger is required: AUTOMATIC or MANUAL")),
    };
    let recipient = request
        .recipient
        .ok_or_else(|| Error::invalid("recipient", "recipient is required"))?;
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
            "conference.pin",
            "a MANUAL email never carries a PIN; remove conference.pin",
        ));
    }
    match kind {
        EmailKind::Welcome | EmailKind::PinReset => {
            if trigger == Trigger::Manual {
                return Err(Error::invalid(
                    "trigger",
                    format!(
                        "{} is sent only AUTOMATIC; an admin's manual send is CONFERENCE_INFO",
                        kind.as_str_name()
                    ),
                ));
            }
            if conference.pin.len() < 4
                || conference.pin.len() > 12
                || !conference.pin.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(Error::invalid(
                    "conference.pin",
                    format!("{} needs conference.pin: 4 to 12 digits", kind.as_str_name()),
                ));
            }
        }
        EmailKind::SettingsChanged | EmailKind::Disabled | EmailKind::ConferenceInfo if carries_pin => {
            return Err(Error::invalid(
                "conference.pin",
                format!("{} emails never carry a PIN; remove conference.pin", kind.as_str_name()),
            ));
        }
        EmailKind::ConferenceInfo if trigger != Trigger::Manual => {
            return Err(Error::invalid(
                "trigger",
                "CONFERENCE_INFO is an admin's manual send: use trigger MANUAL",
            ));
        }
        _ => {}
    }
    if kind != EmailKind::Disabled {
        let id = &conference.conference_id;
        if id.len() != 7 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::invalid(
                "conference.conference_id",
                format!(
                    "{} needs conference.conference_id: exactly 7 digits",
                    kind.as_str_name()
                ),
            ));
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
            .map_err(|_| Error::invalid("policy_version", "policy_version is out of range"))?,
        kind,
        trigger,
        recipient,
        conference,
        occurred_at: request
            .occurred_at
            .as_ref()
            .map_or_else(time::now_millis, time::from_timestamp),
        // A caller that does not say does not jump the queue.
        priority: match Priority::try_from(request.priority) {
            Ok(Priority::Interactive) => Priority::Interactive,
            Ok(Priority::Bulk | Priority::Unspecified) => Priority::Bulk,
            Err(_) => {
                return Err(Error::invalid(
                    "priority",
                    "priority must be INTERACTIVE or BULK (or unset: BULK)",
                ));
            }
        },
    })
}
