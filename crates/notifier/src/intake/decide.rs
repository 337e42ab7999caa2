//! What intake decides for a batch of events, given what is recorded: each
//! event is a repeat (answered as it was recorded), refused (the notifier's
//! policy is older than the event's), or a new delivery — SUPPRESSED by the
//! gate, SUPERSEDED by a newer email already recorded, or PENDING, making the
//! user's older pending emails it replaces SUPERSEDED. No I/O: `record_events` reads
//! the inputs and writes the [`Plan`].

use std::collections::HashMap;

use dialin_proto::notifier::v1::{DeliveryStatus, EmailKind};

use super::{Answer, Event};
use crate::{
    error::{Error, Reason, Result},
    gate::{self, Verdict},
    policy::Versions,
    supersede::{self, History},
};

/// What to write for a batch, and what to answer.
pub(super) struct Plan<'e> {
    /// The new deliveries, in the order of their events, each in its final
    /// state for this batch.
    pub new: Vec<NewDelivery<'e>>,
    /// Pending emails recorded earlier that this batch makes stale, by the
    /// reason (naming the email that replaces them) and by their kind.
    pub stale: HashMap<(String, EmailKind), Vec<String>>,
    /// An answer per event, in order.
    pub answers: Vec<Result<Answer>>,
    /// Events recorded before: settings hands an event over again after a
    /// crash or a lost answer.
    pub repeated: u64,
}

pub(super) struct NewDelivery<'e> {
    pub event: &'e Event,
    pub status: DeliveryStatus,
    pub reason: String,
    /// The tenant's default locale, for the email's language.
    pub tenant_locale: String,
}

/// Decides `events` against the deliveries `known` by id (recorded before),
/// the tenants' `policies` and the users' `history` of automatic emails.
pub(super) fn decide<'e>(
    events: &'e [Event],
    mut known: HashMap<String, Answer>,
    policies: &Versions,
    mut history: History,
    now: i64,
) -> Plan<'e> {
    let mut plan = Plan {
        new: Vec::new(),
        stale: HashMap::new(),
        answers: Vec::with_capacity(events.len()),
        repeated: 0,
    };
    // Where in `plan.new` each delivery of this batch is, to supersede it in place.
    let mut new_at: HashMap<&str, usize> = HashMap::new();
    for event in events {
        if let Some(existing) = known.get(&event.delivery_id) {
            plan.answers.push(Ok(existing.clone()));
            plan.repeated += 1;
            continue;
        }
        let now_policy = policies.current(&event.tenant_id);
        if event.policy_version > now_policy.version {
            plan.answers.push(Err(Error::precondition(
                Reason::PolicyBehind,
                format!(
                    "the notifier holds tenant {} policy version {}, older than the event's {}; push the newer policy with PutTenantPolicy, then retry",
                    event.tenant_id, now_policy.version, event.policy_version
                ),
            )
            .about("tenant_id", &event.tenant_id)
            .about("policy_version", now_policy.version.to_string())));
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
                match new_at.get(older.delivery_id.as_str()) {
                    // Of this batch: it is written superseded in the first place.
                    Some(&index) => {
                        plan.new[index].status = DeliveryStatus::Superseded;
                        plan.new[index].reason.clone_from(&reason);
                        if let Some(answer) = known.get_mut(&older.delivery_id) {
                            answer.status = DeliveryStatus::Superseded;
                            answer.reason.clone_from(&reason);
                        }
                    }
                    None => plan
                        .stale
                        .entry((reason.clone(), older.kind))
                        .or_default()
                        .push(older.delivery_id.clone()),
                }
            }
        }
        supersede::remember(
            &mut history,
            &identity,
            supersede::PriorEmail {
                delivery_id: event.delivery_id.clone(),
                kind: event.kind,
                status,
                occurred_at: event.occurred_at,
                lease_until: 0,
            },
        );
        new_at.insert(&event.delivery_id, plan.new.len());
        let answer = Answer {
            delivery_id: event.delivery_id.clone(),
            status,
            reason: reason.clone(),
        };
        plan.new.push(NewDelivery {
            event,
            status,
            reason,
            tenant_locale: now_policy.default_locale,
        });
        // A repeat of this event later in the batch answers as this one was recorded.
        known.insert(event.delivery_id.clone(), answer.clone());
        plan.answers.push(Ok(answer));
    }
    // Each answer as its delivery ends this batch: a later event may have superseded it.
    for recorded in plan.answers.iter_mut().flatten() {
        if let Some(last) = known.get(&recorded.delivery_id) {
            recorded.clone_from(last);
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use dialin_proto::notifier::v1::{self as pb, Trigger};

    use super::*;
    use crate::{entity::tenant_policy, policy::default_policy};

    const NOW: i64 = 1_000_000;

    fn event(id: &str, kind: EmailKind, occurred_at: i64) -> Event {
        Event {
            event_id: id.to_owned(),
            delivery_id: format!("d-{id}"),
            tenant_id: "t".to_owned(),
            policy_version: 1,
            kind,
            trigger: if kind == EmailKind::ConferenceInfo {
                Trigger::Manual
            } else {
                Trigger::Automatic
            },
            recipient: pb::Recipient {
                user_id: "alice".to_owned(),
                email: "alice@example.com".to_owned(),
                ..Default::default()
            },
            conference: pb::Conference::default(),
            priority: pb::Priority::Bulk,
            occurred_at,
        }
    }

    fn policy(version: i64, on: bool) -> tenant_policy::Model {
        tenant_policy::Model {
            version,
            automatically_send_emails_to_users: on,
            ..default_policy("t")
        }
    }

    fn policies(held: &[(i64, bool)]) -> Versions {
        held.iter().map(|&(version, on)| policy(version, on)).collect()
    }

    fn answer_for(id: &str, status: DeliveryStatus) -> Answer {
        Answer {
            delivery_id: format!("d-{id}"),
            status,
            reason: String::new(),
        }
    }

    fn pending_in_history(id: &str, kind: EmailKind, occurred_at: i64, lease_until: i64) -> History {
        let email = supersede::PriorEmail {
            delivery_id: format!("d-{id}"),
            kind,
            status: DeliveryStatus::Pending,
            occurred_at,
            lease_until,
        };
        History::from([(("t".to_owned(), "alice".to_owned()), vec![email])])
    }

    /// Each answer's status, or the error's message.
    fn outcomes(plan: &Plan<'_>) -> Vec<Result<DeliveryStatus, String>> {
        plan.answers
            .iter()
            .map(|answer| {
                answer
                    .as_ref()
                    .map(|recorded| recorded.status)
                    .map_err(ToString::to_string)
            })
            .collect()
    }

    #[test]
    fn a_new_event_under_a_switch_that_is_on_is_pending() {
        let events = [event("a", EmailKind::PinReset, 10)];
        let plan = decide(&events, HashMap::new(), &policies(&[(1, true)]), History::new(), NOW);
        assert_eq!(outcomes(&plan), [Ok(DeliveryStatus::Pending)]);
        assert_eq!(plan.new.len(), 1);
        assert_eq!(plan.new[0].tenant_locale, "en-US");
        assert!(plan.stale.is_empty());
        assert_eq!(plan.repeated, 0);
    }

    #[test]
    fn an_event_recorded_before_is_answered_as_then_and_written_again_never() {
        let events = [event("a", EmailKind::Welcome, 10)];
        let known = HashMap::from([("d-a".to_owned(), answer_for("a", DeliveryStatus::Sent))]);
        let plan = decide(&events, known, &policies(&[(1, true)]), History::new(), NOW);
        assert_eq!(outcomes(&plan), [Ok(DeliveryStatus::Sent)]);
        assert!(plan.new.is_empty());
        assert_eq!(plan.repeated, 1);
    }

    #[test]
    fn an_event_newer_than_the_held_policy_is_refused_until_the_policy_is_pushed() {
        let mut newer = event("a", EmailKind::Welcome, 10);
        newer.policy_version = 2;
        let events = [newer];
        let plan = decide(&events, HashMap::new(), &policies(&[(1, true)]), History::new(), NOW);
        match outcomes(&plan).as_slice() {
            [Err(message)] => assert!(message.contains("PutTenantPolicy"), "{message}"),
            other => panic!("not refused: {other:?}"),
        }
        assert!(plan.new.is_empty());
    }

    #[test]
    fn the_switch_off_when_the_change_was_made_suppresses_an_automatic_email_only() {
        let events = [
            event("a", EmailKind::SettingsChanged, 10),
            event("b", EmailKind::ConferenceInfo, 11),
        ];
        let plan = decide(&events, HashMap::new(), &policies(&[(1, false)]), History::new(), NOW);
        assert_eq!(
            outcomes(&plan),
            [Ok(DeliveryStatus::Suppressed), Ok(DeliveryStatus::Pending)]
        );
        assert!(!plan.new[0].reason.is_empty());
    }

    #[test]
    fn an_email_replaced_by_a_newer_one_already_recorded_is_superseded_on_arrival() {
        let mut history = pending_in_history("newer", EmailKind::PinReset, 20, 0);
        history
            .values_mut()
            .flatten()
            .for_each(|email| email.status = DeliveryStatus::Suppressed);
        let events = [event("older", EmailKind::PinReset, 10)];
        let plan = decide(&events, HashMap::new(), &policies(&[(1, true)]), history, NOW);
        assert_eq!(outcomes(&plan), [Ok(DeliveryStatus::Superseded)]);
        assert!(plan.new[0].reason.contains("d-newer"), "{}", plan.new[0].reason);
    }

    #[test]
    fn a_new_pin_supersedes_the_pending_one_recorded_before() {
        let history = pending_in_history("old", EmailKind::PinReset, 10, 0);
        let events = [event("new", EmailKind::PinReset, 20)];
        let plan = decide(&events, HashMap::new(), &policies(&[(1, true)]), history, NOW);
        assert_eq!(outcomes(&plan), [Ok(DeliveryStatus::Pending)]);
        let stale: Vec<_> = plan.stale.values().flatten().collect();
        assert_eq!(stale, ["d-old"]);
        assert!(
            plan.stale
                .keys()
                .all(|(reason, kind)| reason.contains("d-new") && *kind == EmailKind::PinReset)
        );
    }

    #[test]
    fn a_pending_email_a_sender_holds_is_left_to_it() {
        let history = pending_in_history("old", EmailKind::PinReset, 10, NOW + 1);
        let events = [event("new", EmailKind::PinReset, 20)];
        let plan = decide(&events, HashMap::new(), &policies(&[(1, true)]), history, NOW);
        assert!(plan.stale.is_empty());
    }

    #[test]
    fn two_pins_in_one_batch_write_the_first_superseded_and_answer_it_so() {
        let events = [
            event("first", EmailKind::PinReset, 10),
            event("second", EmailKind::PinReset, 20),
            event("first", EmailKind::PinReset, 10),
        ];
        let plan = decide(&events, HashMap::new(), &policies(&[(1, true)]), History::new(), NOW);
        assert_eq!(
            outcomes(&plan),
            [
                Ok(DeliveryStatus::Superseded),
                Ok(DeliveryStatus::Pending),
                Ok(DeliveryStatus::Superseded)
            ]
        );
        let statuses: Vec<_> = plan.new.iter().map(|new| new.status).collect();
        assert_eq!(statuses, [DeliveryStatus::Superseded, DeliveryStatus::Pending]);
        assert!(plan.new[0].reason.contains("d-second"));
        assert!(plan.stale.is_empty(), "nothing recorded earlier to supersede");
        assert_eq!(plan.repeated, 1);
    }

    #[test]
    fn a_settings_change_does_not_supersede_a_pin() {
        let history = pending_in_history("pin", EmailKind::PinReset, 10, 0);
        let events = [event("numbers", EmailKind::SettingsChanged, 20)];
        let plan = decide(&events, HashMap::new(), &policies(&[(1, true)]), history, NOW);
        assert_eq!(outcomes(&plan), [Ok(DeliveryStatus::Pending)]);
        assert!(plan.stale.is_empty());
    }
}
