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

mod decide;
mod hand_over;
mod writes;

use std::{
    collections::{BTreeMap, VecDeque},
    sync::Arc,
    time::Duration,
};

use dialin_domain::{backoff::Backoff, time::now_millis};
use dialin_proto::notifier::v1::{
    NotifyRequest, Priority, PutTenantPolicyRequest, notifier_service_client::NotifierServiceClient,
};
use dialin_store::Store;
use prost::Message;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::Expr,
};
use tokio::sync::{Notify, watch};
use tonic::transport::Channel;

use dialin_domain::sealed::{PayloadCipher, SealedPayload};

use self::{
    decide::{Next, Writes, next_run, plan_writes},
    writes::HandoverWrites,
};
use crate::entity::outbox::{self, LANE_BULK, LANE_INTERACTIVE};

const TOPIC_NOTIFY: &str = "notify";
const TOPIC_POLICY: &str = "policy";
/// Where a scan starts: before the first row of the interactive lane.
const START: (i32, i64) = (LANE_INTERACTIVE, 0);
/// Rows read per round trip to the database.
const BATCH: u64 = 2000;
/// Events per `NotifyBatch` call: the most the notifier takes. Each call is a
/// transaction there, and the dispatcher waits for one before the next, so
/// fewer, larger calls onboard faster (BENCHMARKS.md).
const NOTIFY_BATCH: usize = 1000;
/// How often an idle dispatcher looks for work it was not woken for (another
/// replica's rows, or a wake-up lost to a crash).
const IDLE_POLL: Duration = Duration::from_secs(1);
/// The first wait before an event is handed over again.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
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

    /// Queues one event. An interactive event takes the user's bulk events
    /// still queued along into its lane: a user's emails go in the order of
    /// their changes.
    pub async fn enqueue_notify(
        &self,
        conn: &impl ConnectionTrait,
        event: &NotifyRequest,
    ) -> Result<(), sea_orm::DbErr> {
        self.enqueue_notify_many(conn, std::slice::from_ref(event)).await
    }

    /// Queues many events with one statement, in their order; interactive
    /// ones take their users' queued bulk events along (one statement per
    /// tenant, whatever the number of users).
    pub async fn enqueue_notify_many(
        &self,
        conn: &impl ConnectionTrait,
        events: &[NotifyRequest],
    ) -> Result<(), sea_orm::DbErr> {
        if events.is_empty() {
            return Ok(());
        }
        for (tenant_id, user_ids) in interactive_users(events) {
            outbox::Entity::update_many()
                .col_expr(outbox::Column::Lane, Expr::value(LANE_INTERACTIVE))
                .filter(outbox::Column::TenantId.eq(tenant_id))
                .filter(outbox::Column::UserId.is_in(user_ids))
                .filter(outbox::Column::Lane.eq(LANE_BULK))
                .exec(conn)
                .await?;
        }
        let rows = events.iter().map(|event| {
            self.row(
                &event.tenant_id,
                user_of(event),
                lane_of(event),
                TOPIC_NOTIFY,
                &event.encode_to_vec(),
            )
        });
        outbox::Entity::insert_many(rows).exec(conn).await.map(drop)
    }

    /// Queues a policy change, in the interactive lane: it goes before every
    /// bulk event, and so before those made under it.
    pub async fn enqueue_policy(
        &self,
        conn: &impl ConnectionTrait,
        policy: &PutTenantPolicyRequest,
    ) -> Result<(), sea_orm::DbErr> {
        self.row(
            &policy.tenant_id,
            "",
            LANE_INTERACTIVE,
            TOPIC_POLICY,
            &policy.encode_to_vec(),
        )
        .insert(conn)
        .await
        .map(drop)
    }

    fn row(&self, tenant_id: &str, user_id: &str, lane: i32, topic: &str, payload: &[u8]) -> outbox::ActiveModel {
        let now = now_millis();
        outbox::ActiveModel {
            tenant_id: Set(tenant_id.to_owned()),
            user_id: Set(user_id.to_owned()),
            lane: Set(lane),
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

fn lane_of(event: &NotifyRequest) -> i32 {
    match event.priority() {
        Priority::Interactive => LANE_INTERACTIVE,
        Priority::Bulk | Priority::Unspecified => LANE_BULK,
    }
}

/// The users of `events`' interactive events, by tenant.
fn interactive_users(events: &[NotifyRequest]) -> BTreeMap<&str, Vec<&str>> {
    let mut users: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for event in events.iter().filter(|event| lane_of(event) == LANE_INTERACTIVE) {
        users.entry(event.tenant_id.as_str()).or_default().push(user_of(event));
    }
    users
}

fn user_of(event: &NotifyRequest) -> &str {
    event
        .recipient
        .as_ref()
        .map_or("", |recipient| recipient.user_id.as_str())
}

/// Hands outbox rows to the notifier, oldest first.
pub struct Dispatcher {
    pub db: Store,
    /// This process, as the holder of the dispatcher lease.
    pub instance: String,
    pub notifier: NotifierServiceClient<Channel>,
    pub outbox: Outbox,
    /// Between tries to hand an event over.
    pub backoff: Backoff,
}

enum Handover {
    Delivered,
    /// Worth trying again later (notifier down, overloaded, or behind on policy).
    Retry(String),
    /// The notifier refused the event as malformed: retrying cannot help.
    Refused(String),
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

    /// Sends what is due, the interactive lane then the bulk lane, each in id
    /// order, until nothing is. Returns how long to wait before looking again.
    ///
    /// An interactive event waits behind no bulk backlog: before each bulk run
    /// the dispatcher looks for interactive events queued meanwhile (by any
    /// replica), and starts over from them. A policy change goes alone, after
    /// everything queued before it in its lane and before everything after it. The notify events between two policy changes go
    /// together, [`NOTIFY_BATCH`] to a `NotifyBatch` call, which the notifier
    /// records in order in one transaction; a notifier that crashes mid-call
    /// gets them again (it is idempotent on `event_id`).
    ///
    /// Outcomes are written while the next runs are read and handed over
    /// ([`HandoverWrites`]). The rows still being written are behind `after`, so
    /// reads skip them; a read starts from the beginning again once a
    /// [`IDLE_POLL`] (after the writes have landed), for a row whose lower id
    /// committed late.
    async fn dispatch_due(self: &Arc<Self>) -> Result<Duration, sea_orm::DbErr> {
        let mut due = VecDeque::new();
        let (mut after, mut more, mut scan_started) = (START, true, tokio::time::Instant::now());
        let mut writes = HandoverWrites::default();
        let mut lease_taken = tokio::time::Instant::now();
        let pause = loop {
            if more && due.len() < NOTIFY_BATCH {
                if scan_started.elapsed() > IDLE_POLL {
                    writes.finish(self).await?;
                    (after, scan_started) = (START, tokio::time::Instant::now());
                    due.clear();
                }
                let read = self.read_due(after).await?;
                more = read.len() as u64 == BATCH;
                after = read.last().map_or(after, |row| (row.lane, row.id));
                due.extend(read);
            }
            if due.front().is_some_and(|row| row.lane == LANE_BULK) && self.interactive_due().await? {
                writes.finish(self).await?;
                (after, more, scan_started) = (START, true, tokio::time::Instant::now());
                due.clear();
                continue;
            }
            let run = match next_run(&mut due, now_millis()) {
                Next::HandOver(run) => run,
                Next::Wait(backoff) => break backoff,
                Next::Idle => break IDLE_POLL,
            };
            // What was taken off `due` is still in the table: the next holder reads it.
            if lease_taken.elapsed() > LEASE / 3 {
                if !self.take_lease().await? {
                    break IDLE_POLL;
                }
                lease_taken = tokio::time::Instant::now();
            }
            let handed_over = self.hand_over(run).await;
            let retry = handed_over
                .iter()
                .any(|(_, outcome)| matches!(outcome, Handover::Retry(_)));
            writes.add(handed_over);
            if retry {
                // Nothing after it goes before it: stop, and come back after the backoff.
                break writes.finish(self).await?.unwrap_or(self.backoff.initial);
            }
            writes.start(self).await?;
        };
        writes.finish(self).await?;
        Ok(pause)
    }

    /// Up to [`BATCH`] rows after `after` (a lane and an id), in lane then id order.
    async fn read_due(&self, (lane, id): (i32, i64)) -> Result<Vec<outbox::Model>, sea_orm::DbErr> {
        outbox::Entity::find()
            .filter(outbox::Column::Dead.eq(false))
            .filter(
                Condition::any().add(outbox::Column::Lane.gt(lane)).add(
                    Condition::all()
                        .add(outbox::Column::Lane.eq(lane))
                        .add(outbox::Column::Id.gt(id)),
                ),
            )
            .order_by_asc(outbox::Column::Lane)
            .order_by_asc(outbox::Column::Id)
            .limit(BATCH)
            .all(self.db.reader())
            .await
    }

    /// Whether an interactive event is due: one queued since the scan moved on
    /// to the bulk lane.
    async fn interactive_due(&self) -> Result<bool, sea_orm::DbErr> {
        let due = outbox::Entity::find()
            .filter(outbox::Column::Dead.eq(false))
            .filter(outbox::Column::Lane.eq(LANE_INTERACTIVE))
            .filter(outbox::Column::NextAttemptAt.lte(now_millis()))
            .limit(1)
            .all(self.db.reader())
            .await?;
        Ok(!due.is_empty())
    }

    /// Writes the outcomes of rows handed over: deletes the delivered,
    /// reschedules those to try again, parks the refused. Returns the backoff
    /// to wait when some must be tried again.
    async fn record_handovers(
        &self,
        outcomes: Vec<(outbox::Model, Handover)>,
    ) -> Result<Option<Duration>, sea_orm::DbErr> {
        if outcomes.is_empty() {
            return Ok(None);
        }
        // The outcomes are written together, in one transaction.
        let writes = plan_writes(outcomes, |attempts| self.backoff.delay(attempts.unsigned_abs() + 1));
        let retry_after = writes.retry_after();
        self.db.write(async |txn| self.apply(txn, writes).await).await?;
        Ok(retry_after)
    }

    /// Writes the outcomes of a run ([`plan_writes`]).
    async fn apply(&self, txn: &impl ConnectionTrait, writes: Writes) -> Result<(), sea_orm::DbErr> {
        for (row, backoff, error) in writes.retries {
            tracing::warn!(outbox_id = row.id, attempts = row.attempts + 1, %error, ?backoff, "outbox: notifier did not take the event; will retry");
            reschedule(txn, row, backoff, error).await?;
        }
        for (row, error) in writes.refused {
            tracing::error!(outbox_id = row.id, %error, "outbox: notifier refused the event; parked as dead");
            let payload = self.without_pin(&row);
            let mut dead: outbox::ActiveModel = row.into();
            dead.dead = Set(true);
            dead.payload = Set(payload);
            dead.last_error = Set(error);
            dead.update(txn).await?;
        }
        if !writes.delivered.is_empty() {
            outbox::Entity::delete_many()
                .filter(outbox::Column::Id.is_in(writes.delivered))
                .exec(txn)
                .await?;
        }
        Ok(())
    }

    /// Takes or renews the dispatcher lease; false while another replica holds it.
    async fn take_lease(&self) -> Result<bool, sea_orm::DbErr> {
        let now = now_millis();
        let until = now + i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX / 2);
        let lease = self.db.statement(
            "INSERT INTO outbox_dispatcher (name, holder, lease_until) VALUES ('outbox', $1, $2)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, lease_until = excluded.lease_until
             WHERE outbox_dispatcher.holder = $1 OR outbox_dispatcher.lease_until < $3",
            [self.instance.clone().into(), until.into(), now.into()],
        );
        let result = self.db.write(async |txn| txn.execute_raw(lease).await).await?;
        Ok(result.rows_affected() == 1)
    }

    /// A refused event is kept for diagnosis, but not its PIN.
    fn without_pin(&self, row: &outbox::Model) -> SealedPayload {
        let without_pin = (row.topic == TOPIC_NOTIFY)
            .then(|| {
                self.outbox.cipher.reseal(&row.payload, |event: &mut NotifyRequest| {
                    if let Some(conference) = event.conference.as_mut() {
                        conference.pin.clear();
                    }
                })
            })
            .flatten();
        without_pin.unwrap_or_else(|| row.payload.clone())
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
