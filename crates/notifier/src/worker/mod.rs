//! The delivery worker: claims due deliveries (`claim.rs`), gates each again
//! just before SMTP, renders and sends it, and records the outcome (`outcome.rs`).
//!
//! The database work is per claim, not per email: the checks before sending
//! (the tenant's switch, a newer email for the user) are read once for all
//! the deliveries of a claim, right after taking it; the outcomes of sends
//! that finish together are written together (all the sent ones with one
//! statement).

mod claim;
mod outcome;

use std::{sync::Arc, time::Duration};

use dialin_domain::backoff::Backoff;
use dialin_store::Store;

use dialin_proto::notifier::v1::{Conference, EmailKind, Trigger};
use lettre::message::Mailbox;
use prost::Message;
use sea_orm::DbErr;
use secrecy::SecretString;
use tokio::{
    sync::{Notify, mpsc, watch},
    task::JoinSet,
};

use dialin_domain::sealed::PayloadCipher;

use self::{claim::Claimer, outcome::Outcome};
use crate::{
    email::{self, Details, Language, Letter},
    entity::{delivery, tenant_policy},
    gate::{self, Verdict},
    mail::{self, Mailer, SendError},
    policy,
    relay::Relay,
    supersede::{self, EmailIdentity, History},
};

/// How often an idle worker looks for due retries and expired leases.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// Most outcomes written at once.
const RECORD_BATCH: usize = 500;
/// How long outcomes are gathered for one write: sends finish one by one, and
/// each write is a transaction (on SQLite, the WAL pages of every row it
/// touches), so a few milliseconds of gathering make writes ten times fewer.
const RECORD_GATHER: Duration = Duration::from_millis(10);

/// When a transiently failed email is tried again, and when trying stops.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub backoff: Backoff,
    /// Since the delivery was recorded; past it a transient failure is final.
    pub horizon: Duration,
}

pub struct DeliveryWorker {
    pub db: Store,
    /// Opens the sealed content of pending emails.
    pub cipher: PayloadCipher,
    pub mailer: Mailer,
    /// Woken when `Notify` records a pending delivery.
    pub wake: Arc<Notify>,
    pub default_from: Mailbox,
    /// How many emails may be claimed now (the relay's budget), when emails
    /// go to a relay.
    pub relay: Option<Arc<Relay>>,
    pub retry: RetryPolicy,
    /// How long a claim holds before another sender may take the delivery.
    pub lease: Duration,
}

/// What the sends of one claim are checked against, read once right after the
/// claim: the switch-off fence (`policy::await_sends_in_flight`) waits for every
/// delivery claimed before a new policy was stored, so a claim that read the
/// old policy is waited for, and one taken after reads the new one.
struct Checks {
    policies: policy::Versions,
    history: History,
}

impl DeliveryWorker {
    /// How many emails may be claimed now: as the relay's budget allows, or
    /// `capacity` when writing files.
    fn claim_limit(&self, capacity: usize) -> usize {
        self.relay
            .as_ref()
            .map_or(capacity, |relay| relay.claim_limit(capacity))
    }

    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        tracing::info!(mailer = self.mailer.describe(), "delivery worker started");
        // Four times what the mailer sends at once, so a sender never waits for
        // a claim, and claims (writes) are few.
        let capacity = self.mailer.concurrency() * 4;
        let mut sends = JoinSet::new();
        // Outcomes are written by a task of their own, so that sending goes on
        // while they are; it writes whatever has finished since its last write.
        let (finished_tx, finished_rx) = mpsc::unbounded_channel();
        let recorder = tokio::spawn(Arc::clone(&self).record_finished(finished_rx));
        // The shutdown signal only ever changes to "stop" (or goes away, which means the same).
        let mut stopping = *shutdown.borrow();
        let mut claimer = Claimer::new(self.db.clone(), self.lease);
        loop {
            // Claims are writes: top up once half the slots are free, not per send.
            let limit = self.claim_limit(capacity);
            if !stopping && sends.len() < limit && sends.len() <= limit / 2 {
                match claimer.claim(limit - sends.len()).await {
                    Ok(claimed) if !claimed.is_empty() => {
                        let checks = self.checks(&claimed).await.map(Arc::new);
                        for delivery in claimed {
                            let (worker, checks) = (Arc::clone(&self), checks.clone());
                            sends.spawn(async move {
                                let outcome = match &checks {
                                    Ok(checks) => worker.attempt(&delivery, checks).await,
                                    Err(error) => {
                                        Outcome::Retry(format!("notifier database error before sending: {error}"))
                                    }
                                };
                                (delivery, outcome)
                            });
                        }
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "delivery worker: cannot claim deliveries; will retry"),
                }
            }
            if sends.is_empty() {
                if stopping {
                    drop(finished_tx);
                    if let Err(error) = recorder.await {
                        tracing::error!(%error, "the outcome recorder failed; unrecorded claims will expire and be retried");
                    }
                    return;
                }
                tokio::select! {
                    () = self.wake.notified() => {}
                    () = tokio::time::sleep(IDLE_POLL) => {}
                    _ = shutdown.changed() => stopping = true,
                }
                continue;
            }
            // Claimed emails are finished even on shutdown, so none is left half-recorded.
            tokio::select! {
                Some(finished) = sends.join_next() => match finished {
                    // The recorder outlives every send: it stops only once this loop has.
                    Ok(finished) => drop(finished_tx.send(finished)),
                    Err(error) => tracing::error!(%error, "a send task failed; its claim will expire and the delivery be retried"),
                },
                () = self.wake.notified(), if !stopping && sends.len() <= self.claim_limit(capacity) / 2 => {}
                _ = shutdown.changed(), if !stopping => stopping = true,
            }
        }
    }

    /// Reads what the sends of `claimed` are checked against.
    async fn checks(&self, claimed: &[delivery::Model]) -> Result<Checks, DbErr> {
        let policies = policy::Versions::of(
            self.db.reader(),
            claimed.iter().map(|delivery| delivery.tenant_id.as_str()).collect(),
        )
        .await?;
        let automatic: Vec<(&str, &str, i64)> = claimed
            .iter()
            .filter(|delivery| delivery.trigger == Trigger::Automatic.as_str_name())
            .map(|delivery| {
                (
                    delivery.tenant_id.as_str(),
                    delivery.user_id.as_str(),
                    delivery.occurred_at,
                )
            })
            .collect();
        let history = supersede::history_of(self.db.reader(), &automatic).await?;
        Ok(Checks { policies, history })
    }

    async fn attempt(&self, delivery: &delivery::Model, checks: &Checks) -> Outcome {
        let trigger = Trigger::from_str_name(&delivery.trigger).unwrap_or(Trigger::Automatic);
        let identity = EmailIdentity {
            tenant_id: &delivery.tenant_id,
            user_id: &delivery.user_id,
            kind: EmailKind::from_str_name(&delivery.kind).unwrap_or_default(),
            trigger,
            occurred_at: delivery.occurred_at,
        };
        // A newer email may have been recorded since this one was.
        if let Some(reason) = supersede::newer_replacement(&checks.history, &identity) {
            return Outcome::Superseded(reason);
        }
        let policy = checks.policies.current(&delivery.tenant_id);
        if let Verdict::Suppress(reason) = gate::before_send(trigger, &policy) {
            return Outcome::Suppressed(reason);
        }
        let message = match self.compose(delivery, &policy) {
            Ok(message) => message,
            Err(reason) => return Outcome::Failed(reason),
        };
        match self
            .mailer
            .send(&delivery.delivery_id, &message, delivery.lease_until)
            .await
        {
            Ok(()) => Outcome::Sent,
            Err(SendError::ClaimExpiring) => {
                tracing::warn!(
                    delivery_id = delivery.delivery_id,
                    "the claim ran out waiting for an SMTP connection; left for the next claim"
                );
                Outcome::Abandoned
            }
            Err(SendError::Transient(reason)) => {
                metrics::counter!("dialin_smtp_errors_total", "class" => "transient").increment(1);
                Outcome::Retry(reason)
            }
            Err(SendError::Permanent(reason)) => {
                metrics::counter!("dialin_smtp_errors_total", "class" => "permanent").increment(1);
                Outcome::Failed(reason)
            }
        }
    }

    fn compose(&self, delivery: &delivery::Model, policy: &tenant_policy::Model) -> Result<lettre::Message, String> {
        let kind = EmailKind::from_str_name(&delivery.kind).unwrap_or_default();
        let payload = delivery
            .payload
            .as_ref()
            .ok_or("the email's content was already erased")?;
        let payload = self.cipher.open(payload).map_err(|error| error.to_string())?;
        let conference =
            Conference::decode(payload.as_slice()).map_err(|error| format!("stored content is unreadable: {error}"))?;
        let pin = (!conference.pin.is_empty()).then(|| SecretString::from(conference.pin.clone()));
        // Recorded when the delivery was; rows from before languages were recorded choose now.
        let language = Language::from_tag(&delivery.language)
            .unwrap_or_else(|| Language::for_locales(&delivery.locale, &policy.default_locale));
        let letter = Letter {
            recipient_name: delivery.recipient_name.clone(),
            sender_name: policy
                .send_email_from_override
                .then(|| policy.send_email_from_display_name.clone()),
            details: Details::new(
                &conference.conference_id,
                &conference.toll_number,
                &conference.toll_free_number,
            ),
        };
        let rendered = email::render(kind, language, &letter, pin.as_ref()).map_err(|error| error.to_string())?;
        let from = if policy.send_email_from_override {
            let address = policy
                .send_email_from_address
                .parse()
                .map_err(|error| format!("the tenant's sender address is invalid: {error}"))?;
            Mailbox::new(Some(policy.send_email_from_display_name.clone()), address)
        } else {
            self.default_from.clone()
        };
        let to_address = delivery
            .to_address
            .parse()
            .map_err(|error| format!("the recipient address is invalid: {error}"))?;
        let to = Mailbox::new(Some(delivery.recipient_name.clone()), to_address);
        mail::build_message(&delivery.delivery_id, from, to, rendered).map_err(|error| error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ActiveModelTrait, IntoActiveModel};

    use dialin_proto::notifier::v1::DeliveryStatus;

    use super::*;

    pub(super) fn pending(delivery_id: &str, next_attempt_at: i64) -> delivery::ActiveModel {
        delivery::Model {
            delivery_id: delivery_id.to_owned(),
            event_id: format!("event-{delivery_id}"),
            tenant_id: "t".into(),
            user_id: format!("user-{delivery_id}"),
            kind: EmailKind::Welcome.as_str_name().into(),
            trigger: Trigger::Automatic.as_str_name().into(),
            to_address: "ann@example.com".into(),
            recipient_name: "Ann".into(),
            locale: "en".into(),
            language: "en".into(),
            policy_version: 1,
            status: DeliveryStatus::Pending.as_str_name().into(),
            reason: String::new(),
            attempts: 0,
            occurred_at: next_attempt_at,
            created_at: next_attempt_at,
            queued_at: next_attempt_at,
            sent_at: None,
            next_attempt_at,
            lease_until: 0,
            priority: "BULK".into(),
            lane: crate::schedule::LANE_BULK,
            turn: next_attempt_at,
            payload: None,
        }
        .into_active_model()
        .reset_all()
    }
}
