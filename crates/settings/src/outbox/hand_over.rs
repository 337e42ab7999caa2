//! Handing outbox rows to the notifier: a run of notify events in one
//! `NotifyBatch` call, a policy change with `PutTenantPolicy`; an outcome per row.

use dialin_domain::sealed::PayloadCipher;
use dialin_proto::notifier::v1::{
    NotifyBatchRequest, NotifyRequest, PutTenantPolicyRequest, notifier_service_client::NotifierServiceClient,
};
use prost::Message;
use tonic::{Code, transport::Channel};

use super::{Dispatcher, Handover, TOPIC_NOTIFY, TOPIC_POLICY};
use crate::entity::outbox;

impl Dispatcher {
    /// Hands `run` (notify events, or one policy change) to the notifier: an
    /// outcome per row, in order.
    pub(super) async fn hand_over(&self, run: Vec<outbox::Model>) -> Vec<(outbox::Model, Handover)> {
        if run.len() > 1 && run[0].topic == TOPIC_NOTIFY {
            return self.deliver_batch(run).await;
        }
        let mut outcomes = Vec::with_capacity(run.len());
        for row in run {
            let outcome = deliver(self.notifier.clone(), &self.outbox.cipher, &row).await;
            outcomes.push((row, outcome));
        }
        outcomes
    }

    /// Hands notify events to the notifier with one `NotifyBatch` call; an
    /// outcome per row, in order.
    async fn deliver_batch(&self, rows: Vec<outbox::Model>) -> Vec<(outbox::Model, Handover)> {
        let mut outcomes: Vec<(outbox::Model, Option<Handover>)> = Vec::with_capacity(rows.len());
        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            match open_notify(&self.outbox.cipher, &row) {
                Ok(event) => {
                    events.push(event);
                    outcomes.push((row, None));
                }
                Err(refused) => outcomes.push((row, Some(refused))),
            }
        }
        if events.is_empty() {
            // Every row was refused before the call: nothing to hand over.
            return outcomes
                .into_iter()
                .filter_map(|(row, outcome)| Some((row, outcome?)))
                .collect();
        }
        let mut answers = match self.notifier.clone().notify_batch(NotifyBatchRequest { events }).await {
            Ok(response) => response.into_inner().results.into_iter(),
            Err(status) => {
                let reason = format!("{:?}: {}", status.code(), status.message());
                return outcomes
                    .into_iter()
                    .map(|(row, outcome)| (row, outcome.unwrap_or_else(|| Handover::Retry(reason.clone()))))
                    .collect();
            }
        };
        outcomes
            .into_iter()
            .map(|(row, outcome)| {
                let outcome = outcome.unwrap_or_else(|| match answers.next() {
                    Some(answer) => match answer.error {
                        None => Handover::Delivered,
                        Some(error) if error.code == Code::InvalidArgument as i32 => Handover::Refused(error.message),
                        Some(error) => Handover::Retry(format!("{:?}: {}", Code::from(error.code), error.message)),
                    },
                    None => Handover::Retry("the notifier answered fewer events than it was sent".into()),
                });
                (row, outcome)
            })
            .collect()
    }
}

const UNDECRYPTABLE: &str = "the event cannot be decrypted with the configured payload key";

/// The notify event a row holds, or why it can never be handed over.
pub(super) fn open_notify(cipher: &PayloadCipher, row: &outbox::Model) -> Result<NotifyRequest, Handover> {
    let payload = cipher
        .open(&row.payload)
        .map_err(|_| Handover::Refused(UNDECRYPTABLE.into()))?;
    NotifyRequest::decode(payload.as_slice())
        .map_err(|error| Handover::Refused(format!("undecodable notify payload: {error}")))
}

/// Hands one event to the notifier.
async fn deliver(
    mut notifier: NotifierServiceClient<Channel>,
    cipher: &PayloadCipher,
    row: &outbox::Model,
) -> Handover {
    let result = match row.topic.as_str() {
        TOPIC_NOTIFY => match open_notify(cipher, row) {
            Ok(event) => notifier.notify(event).await.map(drop),
            Err(refused) => return refused,
        },
        TOPIC_POLICY => match cipher
            .open(&row.payload)
            .map(|payload| PutTenantPolicyRequest::decode(payload.as_slice()))
        {
            Err(_) => return Handover::Refused(UNDECRYPTABLE.into()),
            Ok(Ok(policy)) => notifier.put_tenant_policy(policy).await.map(drop),
            Ok(Err(error)) => return Handover::Refused(format!("undecodable policy payload: {error}")),
        },
        other => return Handover::Refused(format!("unknown outbox topic {other:?}")),
    };
    match result {
        Ok(()) => Handover::Delivered,
        Err(status) if status.code() == Code::InvalidArgument => {
            Handover::Refused(format!("{:?}: {}", status.code(), status.message()))
        }
        Err(status) => Handover::Retry(format!("{:?}: {}", status.code(), status.message())),
    }
}
