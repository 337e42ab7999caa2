//! Transactional outbox: an event is written in the transaction of the change
//! that causes it, and a dispatcher hands events to the notifier in order, with
//! retries, deleting each once the notifier has it. The admin's call never
//! waits for the notifier; the notifier being down only delays the email.
//!
//! With several replicas, one dispatches at a time: it holds a lease in the
//! `outbox_dispatcher` table and renews it as it works; if it dies, another
//! takes over when the lease runs out. Order is kept, and an event handed over
//! twice (a crash between `Notify` and the delete) is harmless: `Notify` is
//! idempotent on `event_id`.

use std::{collections::HashMap, sync::Arc, time::Duration};

use dialin_common::time::now_millis;
use dialin_proto::notifier::v1::{
    NotifyRequest, PutTenantPolicyRequest, notifier_service_client::NotifierServiceClient,
};
use prost::Message;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Statement,
};
use tokio::{
    sync::{Notify, Semaphore, watch},
    task::JoinSet,
};
use tonic::{Code, transport::Channel};

use dialin_common::sealed::{PayloadCipher, SealedPayload};

use crate::entity::outbox;

const TOPIC_NOTIFY: &str = "notify";
const TOPIC_POLICY: &str = "policy";
/// Rows read per round trip to the database.
const BATCH: u64 = 500;
/// Notify calls a dispatcher has in flight at once.
const IN_FLIGHT: usize = 32;
/// How often an idle dispatcher looks for work it was not woken for (another
/// replica's rows, or a wake-up lost to a crash).
const IDLE_POLL: Duration = Duration::from_secs(1);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// How long the dispatcher lease lasts unless renewed.
const LEASE: Duration = Duration::from_secs(15);

/// Writes events (sealed: a notify event may hold a PIN) and wakes the
/// dispatcher after a commit that added some.
#[derive(Clone)]
pub struct Outbox {
    cipher: PayloadCipher,
    wake: Arc<Notify>,
}

impl Outbox {
    pub fn new(cipher: PayloadCipher) -> Self {
        Self {
            cipher,
            wake: Arc::new(Notify::new()),
        }
    }

    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub async fn enqueue_notify(
        &self,
        conn: &impl ConnectionTrait,
        event: &NotifyRequest,
    ) -> Result<(), sea_orm::DbErr> {
        self.insert(conn, &event.tenant_id, TOPIC_NOTIFY, &event.encode_to_vec())
            .await
    }

    /// Queues many events with one statement, in their order.
    pub async fn enqueue_notify_many(
        &self,
        conn: &impl ConnectionTrait,
        events: &[NotifyRequest],
    ) -> Result<(), sea_orm::DbErr> {
        if events.is_empty() {
            return Ok(());
        }
        let rows = events
            .iter()
            .map(|event| self.row(&event.tenant_id, TOPIC_NOTIFY, &event.encode_to_vec()));
        outbox::Entity::insert_many(rows).exec(conn).await.map(drop)
    }

    pub async fn enqueue_policy(
        &self,
        conn: &impl ConnectionTrait,
        policy: &PutTenantPolicyRequest,
    ) -> Result<(), sea_orm::DbErr> {
        self.insert(conn, &policy.tenant_id, TOPIC_POLICY, &policy.encode_to_vec())
            .await
    }

    async fn insert(
        &self,
        conn: &impl ConnectionTrait,
        tenant_id: &str,
        topic: &str,
        payload: &[u8],
    ) -> Result<(), sea_orm::DbErr> {
        self.row(tenant_id, topic, payload).insert(conn).await.map(drop)
    }

    fn row(&self, tenant_id: &str, topic: &str, payload: &[u8]) -> outbox::ActiveModel {
        let now = now_millis();
        outbox::ActiveModel {
            tenant_id: Set(tenant_id.to_owned()),
            topic: Set(topic.to_owned()),
            payload: Set(self.cipher.seal(payload)),
            created_at: Set(now),
            attempts: Set(0),
            next_attempt_at: Set(now),
            dead: Set(false),
            last_error: Set(String::new()),
            ..Default::default()
        }
    }
}

/// Hands outbox rows to the notifier, oldest first.
pub struct Dispatcher {
    pub db: DatabaseConnection,
    /// This process, as the holder of the dispatcher lease.
    pub instance: String,
    pub notifier: NotifierServiceClient<Channel>,
    pub outbox: Outbox,
    pub max_backoff: Duration,
}

enum Outcome {
    Delivered,
    /// Worth trying again later (notifier down, overloaded, or behind on policy).
    Retry(String),
    /// The notifier refused the event as malformed: retrying cannot help.
    Refused(String),
}

impl Dispatcher {
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        loop {
            let turn = match self.take_lease().await {
                Ok(true) => self.dispatch_due().await,
                Ok(false) => Ok(Some(IDLE_POLL)),
                Err(error) => Err(error),
            };
            let pause = match turn {
                Ok(Some(pause)) => pause,
                Ok(None) => continue,
                Err(error) => {
                    tracing::warn!(%error, "outbox: cannot read pending events; will retry");
                    IDLE_POLL
                }
            };
            tokio::select! {
                () = self.outbox.wake.notified() => {}
                () = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Sends what is due in id order. Returns how long to wait before looking
    /// again, or `None` when there may be more to send right away.
    ///
    /// A policy change goes alone, after everything queued before it and before
    /// everything after it. The notify events between two policy changes go
    /// together, up to [`IN_FLIGHT`] at once: their order of arrival does not
    /// matter, as the notifier orders a user's emails by when the change
    /// happened, and a notifier that crashes mid-run gets them again (Notify is
    /// idempotent).
    async fn dispatch_due(&mut self) -> Result<Option<Duration>, sea_orm::DbErr> {
        let rows = outbox::Entity::find()
            .filter(outbox::Column::Dead.eq(false))
            .order_by_asc(outbox::Column::Id)
            .limit(BATCH)
            .all(&self.db)
            .await?;
        if rows.is_empty() {
            return Ok(Some(IDLE_POLL));
        }
        let full_batch = rows.len() as u64 == BATCH;
        let mut rows = rows.into_iter().peekable();
        let mut lease_taken = tokio::time::Instant::now();
        while let Some(head) = rows.peek() {
            if lease_taken.elapsed() > LEASE / 3 {
                if !self.take_lease().await? {
                    return Ok(Some(IDLE_POLL));
                }
                lease_taken = tokio::time::Instant::now();
            }
            // The head of the line waits out its backoff instead of being overtaken.
            let wait = head.next_attempt_at - now_millis();
            if wait > 0 {
                return Ok(Some(Duration::from_millis(wait.unsigned_abs())));
            }
            let run: Vec<outbox::Model> = if head.topic == TOPIC_NOTIFY {
                let now = now_millis();
                std::iter::from_fn(|| rows.next_if(|row| row.topic == TOPIC_NOTIFY && row.next_attempt_at <= now))
                    .collect()
            } else {
                rows.next().into_iter().collect()
            };
            if let Some(backoff) = self.deliver_run(run).await? {
                return Ok(Some(backoff));
            }
        }
        Ok(if full_batch { None } else { Some(IDLE_POLL) })
    }

    /// Hands `run` to the notifier, [`IN_FLIGHT`] at a time, and records each
    /// outcome. One user's events still go one after the other, in order, and
    /// one that must be tried again holds back that user's later ones. Returns
    /// the backoff to wait when some must be tried again.
    async fn deliver_run(&mut self, run: Vec<outbox::Model>) -> Result<Option<Duration>, sea_orm::DbErr> {
        let mut chains: Vec<Vec<outbox::Model>> = Vec::new();
        let mut chain_of_recipient = HashMap::new();
        for row in run {
            let recipient = self.recipient(&row).unwrap_or_else(|| format!("outbox row {}", row.id));
            let chain = *chain_of_recipient.entry(recipient).or_insert_with(|| {
                chains.push(Vec::new());
                chains.len() - 1
            });
            chains[chain].push(row);
        }
        let limit = Arc::new(Semaphore::new(IN_FLIGHT));
        let mut sends = JoinSet::new();
        for chain in chains {
            let (notifier, cipher, limit) = (self.notifier.clone(), self.outbox.cipher.clone(), Arc::clone(&limit));
            sends.spawn(async move {
                let mut outcomes = Vec::with_capacity(chain.len());
                for row in chain {
                    let _permit = limit.acquire().await;
                    let outcome = deliver(notifier.clone(), &cipher, &row).await;
                    let held_back = matches!(outcome, Outcome::Retry(_));
                    outcomes.push((row, outcome));
                    if held_back {
                        break;
                    }
                }
                outcomes
            });
        }
        let (mut delivered, mut retry) = (Vec::new(), None);
        let outcomes = sends.join_all().await.into_iter().flatten();
        for (row, outcome) in outcomes {
            match outcome {
                Outcome::Delivered => delivered.push(row.id),
                Outcome::Retry(error) => {
                    let backoff = self.backoff(row.attempts);
                    tracing::warn!(outbox_id = row.id, attempts = row.attempts + 1, %error, ?backoff, "outbox: notifier did not take the event; will retry");
                    self.reschedule(row, backoff, error).await?;
                    retry = Some(retry.map_or(backoff, |earlier: Duration| earlier.min(backoff)));
                }
                Outcome::Refused(error) => {
                    tracing::error!(outbox_id = row.id, %error, "outbox: notifier refused the event; parked as dead");
                    let payload = self.without_pin(&row);
                    let mut dead: outbox::ActiveModel = row.into();
                    dead.dead = Set(true);
                    dead.payload = Set(payload);
                    dead.last_error = Set(error);
                    dead.update(&self.db).await?;
                }
            }
        }
        if !delivered.is_empty() {
            outbox::Entity::delete_many()
                .filter(outbox::Column::Id.is_in(delivered))
                .exec(&self.db)
                .await?;
        }
        Ok(retry)
    }

    /// Takes or renews the dispatcher lease; false while another replica holds it.
    async fn take_lease(&self) -> Result<bool, sea_orm::DbErr> {
        let now = now_millis();
        let until = now + i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX / 2);
        let backend = self.db.get_database_backend();
        let sql = match backend {
            DatabaseBackend::Postgres => {
                "INSERT INTO outbox_dispatcher (name, holder, lease_until) VALUES ('outbox', $1, $2)
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, lease_until = excluded.lease_until
                 WHERE outbox_dispatcher.holder = $1 OR outbox_dispatcher.lease_until < $3"
            }
            _ => {
                "INSERT INTO outbox_dispatcher (name, holder, lease_until) VALUES ('outbox', ?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, lease_until = excluded.lease_until
                 WHERE outbox_dispatcher.holder = ?1 OR outbox_dispatcher.lease_until < ?3"
            }
        };
        let result = self
            .db
            .execute_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [self.instance.clone().into(), until.into(), now.into()],
            ))
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Whom a notify event is for (`None` for a policy change, or a payload that
    /// cannot be read: `deliver` reports those).
    fn recipient(&self, row: &outbox::Model) -> Option<String> {
        let opened = self.outbox.cipher.open(&row.payload).ok()?;
        let event = NotifyRequest::decode(opened.as_slice()).ok()?;
        Some(format!("{}/{}", event.tenant_id, event.recipient?.user_id))
    }

    /// A refused event is kept for diagnosis, but not its PIN.
    fn without_pin(&self, row: &outbox::Model) -> SealedPayload {
        let opened = self.outbox.cipher.open(&row.payload).ok();
        match opened.and_then(|bytes| NotifyRequest::decode(bytes.as_slice()).ok()) {
            Some(mut event) if row.topic == TOPIC_NOTIFY => {
                if let Some(conference) = event.conference.as_mut() {
                    conference.pin.clear();
                }
                self.outbox.cipher.seal(&event.encode_to_vec())
            }
            _ => row.payload.clone(),
        }
    }

    /// Exponential backoff from 100 ms, capped, with up to 25 % jitter so that
    /// replicas do not retry in step.
    fn backoff(&self, attempts: i32) -> Duration {
        let exponential = FIRST_BACKOFF.saturating_mul(1u32 << attempts.clamp(0, 20));
        let capped = exponential.min(self.max_backoff);
        capped + capped.mul_f64(rand::random::<f64>() * 0.25)
    }

    async fn reschedule(&self, row: outbox::Model, backoff: Duration, error: String) -> Result<(), sea_orm::DbErr> {
        let attempts = row.attempts.saturating_add(1);
        let mut retry: outbox::ActiveModel = row.into();
        retry.attempts = Set(attempts);
        retry.next_attempt_at = Set(now_millis() + i64::try_from(backoff.as_millis()).unwrap_or(i64::MAX / 2));
        retry.last_error = Set(error);
        retry.update(&self.db).await.map(drop)
    }
}

/// Hands one event to the notifier.
async fn deliver(mut notifier: NotifierServiceClient<Channel>, cipher: &PayloadCipher, row: &outbox::Model) -> Outcome {
    let Ok(payload) = cipher.open(&row.payload) else {
        return Outcome::Refused("the event cannot be decrypted with the configured payload key".into());
    };
    let result = match row.topic.as_str() {
        TOPIC_NOTIFY => match NotifyRequest::decode(payload.as_slice()) {
            Ok(event) => notifier.notify(event).await.map(drop),
            Err(error) => return Outcome::Refused(format!("undecodable notify payload: {error}")),
        },
        TOPIC_POLICY => match PutTenantPolicyRequest::decode(payload.as_slice()) {
            Ok(policy) => notifier.put_tenant_policy(policy).await.map(drop),
            Err(error) => return Outcome::Refused(format!("undecodable policy payload: {error}")),
        },
        other => return Outcome::Refused(format!("unknown outbox topic {other:?}")),
    };
    match result {
        Ok(()) => Outcome::Delivered,
        Err(status) if status.code() == Code::InvalidArgument => {
            Outcome::Refused(format!("{:?}: {}", status.code(), status.message()))
        }
        Err(status) => Outcome::Retry(format!("{:?}: {}", status.code(), status.message())),
    }
}
