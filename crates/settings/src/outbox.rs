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

use std::{collections::VecDeque, sync::Arc, time::Duration};

use dialin_common::{database::begin_write, time::now_millis};
use dialin_proto::notifier::v1::{
    NotifyBatchRequest, NotifyRequest, PutTenantPolicyRequest, notifier_service_client::NotifierServiceClient,
};
use prost::Message;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Statement,
};
use tokio::{
    sync::{Notify, watch},
    task::JoinHandle,
};
use tonic::{Code, transport::Channel};

use dialin_common::sealed::{PayloadCipher, SealedPayload};

use crate::entity::outbox;

const TOPIC_NOTIFY: &str = "notify";
const TOPIC_POLICY: &str = "policy";
/// Rows read per round trip to the database.
const BATCH: u64 = 2000;
/// Events per `NotifyBatch` call: the most the notifier takes. Each call is a
/// transaction there, and the dispatcher waits for one before the next: 1,000
/// a call made onboarding 1.7× faster than 250 (20,000 users, SQLite).
const NOTIFY_BATCH: usize = 1000;
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

/// The dispatcher's outcome writes, one at a time in a task of their own, so
/// that it hands over the next runs while a write waits for its turn: on SQLite
/// behind the admins' transactions, 40–80 ms for the deletes of 1,000 events
/// (100,000-user suppressed path), where handing over the next 1,000 took ~30.
/// What is handed over meanwhile waits, and goes with the next write.
#[derive(Default)]
struct OutcomeWrites {
    /// A write in flight holds no retry (a retry ends the dispatch, and is
    /// written by `finish`), so it has no backoff to return.
    in_flight: Option<JoinHandle<Result<(), sea_orm::DbErr>>>,
    waiting: Vec<(outbox::Model, Outcome)>,
}

/// Outcomes waiting while a write is in flight before the dispatcher waits for
/// it: a bound on the memory they hold.
const MAX_WAITING_OUTCOMES: usize = 4 * NOTIFY_BATCH;

impl OutcomeWrites {
    fn add(&mut self, outcomes: Vec<(outbox::Model, Outcome)>) {
        self.waiting.extend(outcomes);
    }

    /// Starts writing what waits, unless a write is in flight (then it waits
    /// for that write only once too much is waiting).
    async fn start(&mut self, dispatcher: &Arc<Dispatcher>) -> Result<(), sea_orm::DbErr> {
        let writing = self.in_flight.as_ref().is_some_and(|write| !write.is_finished());
        if self.waiting.is_empty() || (writing && self.waiting.len() < MAX_WAITING_OUTCOMES) {
            return Ok(());
        }
        self.landed().await?;
        let (dispatcher, outcomes) = (Arc::clone(dispatcher), std::mem::take(&mut self.waiting));
        self.in_flight = Some(tokio::spawn(async move { dispatcher.record(outcomes).await.map(drop) }));
        Ok(())
    }

    /// Writes everything handed over; returns the backoff to wait when some
    /// must be tried again.
    async fn finish(&mut self, dispatcher: &Dispatcher) -> Result<Option<Duration>, sea_orm::DbErr> {
        self.landed().await?;
        dispatcher.record(std::mem::take(&mut self.waiting)).await
    }

    /// Waits for the write in flight.
    async fn landed(&mut self) -> Result<(), sea_orm::DbErr> {
        if let Some(write) = self.in_flight.take() {
            write
                .await
                .map_err(|error| sea_orm::DbErr::Custom(format!("the outbox outcome write failed: {error}")))??;
        }
        Ok(())
    }
}

impl Dispatcher {
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            let pause = match self.take_lease().await {
                Ok(true) => self.dispatch_due().await,
                Ok(false) => Ok(IDLE_POLL),
                Err(error) => Err(error),
            }
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "outbox: cannot read pending events; will retry");
                IDLE_POLL
            });
            tokio::select! {
                () = self.outbox.wake.notified() => {}
                () = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Sends what is due in id order, until nothing is. Returns how long to wait
    /// before looking again.
    ///
    /// A policy change goes alone, after everything queued before it and before
    /// everything after it. The notify events between two policy changes go
    /// together, [`NOTIFY_BATCH`] to a `NotifyBatch` call, which the notifier
    /// records in order in one transaction; a notifier that crashes mid-call
    /// gets them again (it is idempotent on `event_id`).
    ///
    /// Outcomes are written while the next runs are read and handed over
    /// ([`OutcomeWrites`]). The rows still being written are behind `after`, so
    /// reads skip them; a read starts from the beginning again once a
    /// [`IDLE_POLL`] (after the writes have landed), for a row whose lower id
    /// committed late.
    async fn dispatch_due(self: &Arc<Self>) -> Result<Duration, sea_orm::DbErr> {
        let mut due = VecDeque::new();
        let (mut after, mut more, mut scan_started) = (0, true, tokio::time::Instant::now());
        let mut writes = OutcomeWrites::default();
        let mut lease_taken = tokio::time::Instant::now();
        let pause = loop {
            if more && due.len() < NOTIFY_BATCH {
                if scan_started.elapsed() > IDLE_POLL {
                    writes.finish(self).await?;
                    (after, scan_started) = (0, tokio::time::Instant::now());
                    due.clear();
                }
                let read = self.read_due(after).await?;
                more = read.len() as u64 == BATCH;
                after = read.last().map_or(after, |row| row.id);
                due.extend(read);
            }
            let Some(head) = due.front() else {
                break IDLE_POLL;
            };
            if lease_taken.elapsed() > LEASE / 3 {
                if !self.take_lease().await? {
                    break IDLE_POLL;
                }
                lease_taken = tokio::time::Instant::now();
            }
            // The head of the line waits out its backoff instead of being overtaken.
            let wait = head.next_attempt_at - now_millis();
            if wait > 0 {
                break Duration::from_millis(wait.unsigned_abs());
            }
            let mut run = Vec::new();
            if head.topic == TOPIC_NOTIFY {
                let now = now_millis();
                while run.len() < NOTIFY_BATCH
                    && due
                        .front()
                        .is_some_and(|row| row.topic == TOPIC_NOTIFY && row.next_attempt_at <= now)
                {
                    run.extend(due.pop_front());
                }
            } else {
                run.extend(due.pop_front());
            }
            let handed_over = self.hand_over(run).await;
            let retry = handed_over
                .iter()
                .any(|(_, outcome)| matches!(outcome, Outcome::Retry(_)));
            writes.add(handed_over);
            if retry {
                // Nothing after it goes before it: stop, and come back after the backoff.
                break writes.finish(self).await?.unwrap_or(FIRST_BACKOFF);
            }
            writes.start(self).await?;
        };
        writes.finish(self).await?;
        Ok(pause)
    }

    /// Up to [`BATCH`] rows after `after`, in id order.
    async fn read_due(&self, after: i64) -> Result<Vec<outbox::Model>, sea_orm::DbErr> {
        outbox::Entity::find()
            .filter(outbox::Column::Dead.eq(false))
            .filter(outbox::Column::Id.gt(after))
            .order_by_asc(outbox::Column::Id)
            .limit(BATCH)
            .all(&self.db)
            .await
    }

    /// Hands `run` (notify events, or one policy change) to the notifier: an
    /// outcome per row, in order.
    async fn hand_over(&self, run: Vec<outbox::Model>) -> Vec<(outbox::Model, Outcome)> {
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

    /// Writes the outcomes of rows handed over: deletes the delivered,
    /// reschedules those to try again, parks the refused. Returns the backoff
    /// to wait when some must be tried again.
    async fn record(&self, outcomes: Vec<(outbox::Model, Outcome)>) -> Result<Option<Duration>, sea_orm::DbErr> {
        if outcomes.is_empty() {
            return Ok(None);
        }
        // The outcomes are written together, in a transaction: on SQLite a
        // write waits its turn with the other writers instead of polling for the lock.
        let txn = begin_write(&self.db).await?;
        let (mut delivered, mut retry) = (Vec::new(), None);
        for (row, outcome) in outcomes {
            match outcome {
                Outcome::Delivered => delivered.push(row.id),
                Outcome::Retry(error) => {
                    let backoff = self.backoff(row.attempts);
                    tracing::warn!(outbox_id = row.id, attempts = row.attempts + 1, %error, ?backoff, "outbox: notifier did not take the event; will retry");
                    reschedule(&*txn, row, backoff, error).await?;
                    retry = Some(retry.map_or(backoff, |earlier: Duration| earlier.min(backoff)));
                }
                Outcome::Refused(error) => {
                    tracing::error!(outbox_id = row.id, %error, "outbox: notifier refused the event; parked as dead");
                    let payload = self.without_pin(&row);
                    let mut dead: outbox::ActiveModel = row.into();
                    dead.dead = Set(true);
                    dead.payload = Set(payload);
                    dead.last_error = Set(error);
                    dead.update(&*txn).await?;
                }
            }
        }
        if !delivered.is_empty() {
            outbox::Entity::delete_many()
                .filter(outbox::Column::Id.is_in(delivered))
                .exec(&*txn)
                .await?;
        }
        txn.commit().await?;
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
        let txn = begin_write(&self.db).await?;
        let result = txn
            .execute_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [self.instance.clone().into(), until.into(), now.into()],
            ))
            .await?;
        txn.commit().await?;
        Ok(result.rows_affected() == 1)
    }

    /// Hands notify events to the notifier with one `NotifyBatch` call; an
    /// outcome per row, in order. A notifier without `NotifyBatch` (older than
    /// this settings, mid-upgrade) gets them one `Notify` at a time.
    async fn deliver_batch(&self, rows: Vec<outbox::Model>) -> Vec<(outbox::Model, Outcome)> {
        let mut outcomes: Vec<(outbox::Model, Option<Outcome>)> = Vec::with_capacity(rows.len());
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
            Err(status) if status.code() == Code::Unimplemented => {
                let mut outcomes_one_by_one = Vec::with_capacity(outcomes.len());
                for (row, outcome) in outcomes {
                    let outcome = match outcome {
                        Some(refused) => refused,
                        None => deliver(self.notifier.clone(), &self.outbox.cipher, &row).await,
                    };
                    outcomes_one_by_one.push((row, outcome));
                }
                return outcomes_one_by_one;
            }
            Err(status) => {
                let reason = format!("{:?}: {}", status.code(), status.message());
                return outcomes
                    .into_iter()
                    .map(|(row, outcome)| (row, outcome.unwrap_or_else(|| Outcome::Retry(reason.clone()))))
                    .collect();
            }
        };
        outcomes
            .into_iter()
            .map(|(row, outcome)| {
                let outcome = outcome.unwrap_or_else(|| match answers.next() {
                    Some(answer) => match answer.error {
                        None => Outcome::Delivered,
                        Some(error) if error.code == Code::InvalidArgument as i32 => Outcome::Refused(error.message),
                        Some(error) => Outcome::Retry(format!("{:?}: {}", Code::from(error.code), error.message)),
                    },
                    None => Outcome::Retry("the notifier answered fewer events than it was sent".into()),
                });
                (row, outcome)
            })
            .collect()
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
}

async fn reschedule(
    conn: &impl ConnectionTrait,
    row: outbox::Model,
    backoff: Duration,
    error: String,
) -> Result<(), sea_orm::DbErr> {
    let attempts = row.attempts.saturating_add(1);
    let mut retry: outbox::ActiveModel = row.into();
    retry.attempts = Set(attempts);
    retry.next_attempt_at = Set(now_millis() + i64::try_from(backoff.as_millis()).unwrap_or(i64::MAX / 2));
    retry.last_error = Set(error);
    retry.update(conn).await.map(drop)
}

const UNDECRYPTABLE: &str = "the event cannot be decrypted with the configured payload key";

/// The notify event a row holds, or why it can never be handed over.
fn open_notify(cipher: &PayloadCipher, row: &outbox::Model) -> Result<NotifyRequest, Outcome> {
    let payload = cipher
        .open(&row.payload)
        .map_err(|_| Outcome::Refused(UNDECRYPTABLE.into()))?;
    NotifyRequest::decode(payload.as_slice())
        .map_err(|error| Outcome::Refused(format!("undecodable notify payload: {error}")))
}

/// Hands one event to the notifier.
async fn deliver(mut notifier: NotifierServiceClient<Channel>, cipher: &PayloadCipher, row: &outbox::Model) -> Outcome {
    let result = match row.topic.as_str() {
        TOPIC_NOTIFY => match open_notify(cipher, row) {
            Ok(event) => notifier.notify(event).await.map(drop),
            Err(refused) => return refused,
        },
        TOPIC_POLICY => match cipher
            .open(&row.payload)
            .map(|payload| PutTenantPolicyRequest::decode(payload.as_slice()))
        {
            Err(_) => return Outcome::Refused(UNDECRYPTABLE.into()),
            Ok(Ok(policy)) => notifier.put_tenant_policy(policy).await.map(drop),
            Ok(Err(error)) => return Outcome::Refused(format!("undecodable policy payload: {error}")),
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
