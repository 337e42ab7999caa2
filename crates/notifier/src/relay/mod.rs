//! The SMTP relay's budget, shared by every notifier replica through the
//! database: the rate the deployment may send at (the cap, cut when the relay
//! throttles and raised back gradually), a pause while the relay refuses
//! everything (a quota, a block, "try again in N seconds"), and the
//! connections, leased among the replicas that send.
//!
//! A send takes its [`Relay::turn`] first: a connection this replica holds a
//! lease for (`connections.rs`, leased in `beat.rs`), then, while a rate is in
//! force, a send slot reserved in the `relay` row (`slots.rs`), so that the
//! replicas' sends together keep the pace. Each replica beats (`beat.rs`):
//! says what it sent lately and reads the shared state back. The decisions
//! are apart from these effects: the rate (`rate.rs`), what a refusal means
//! (`answer.rs`).

mod answer;
mod beat;
mod connections;
mod rate;
mod slots;

use std::{
    sync::{Arc, Mutex, MutexGuard, atomic::AtomicBool},
    time::Duration,
};

use dialin_domain::time::{now_millis, to_timestamp};
use dialin_proto::notifier::v1 as pb;
use dialin_store::Store;
use sea_orm::{ConnectionTrait, DbErr};
use tokio::sync::watch;

pub use self::rate::Cap;
pub use self::{
    answer::{RelayRefusal, classify},
    connections::InUse,
};
use self::{
    beat::Sent,
    connections::Connections,
    rate::{Throttle, lateness_allowed_us},
    slots::Slots,
};
use crate::mail::SendError;

/// Claimed emails per connection: enough that a sender never waits for a claim.
const CLAIM_PER_CONNECTION: usize = 4;
/// While a rate is in force, this many seconds of it are claimed ahead.
const CLAIM_AHEAD: f64 = 0.5;

/// What this replica last read of the shared state, and what follows from it.
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    throttle: Throttle,
    paused_until: i64,
    /// Replicas sending now.
    senders: usize,
    /// Connections this replica may use now.
    usable_connections: usize,
    /// What the deployment sent lately, messages a second.
    sent_per_second: f64,
}

pub struct Relay {
    db: Store,
    /// This replica, as a sender in `senders` and a holder of connection leases.
    instance: String,
    /// `DIALIN_SMTP_MAX_RATE`.
    cap: Option<Cap>,
    /// `DIALIN_SMTP_CONNECTIONS`: for the whole deployment.
    deployment_connections: usize,
    /// How long a quota or a block pauses sending, unless the relay said.
    quota_pause: Duration,
    /// The connections this replica may send on, as many as it holds leases for.
    connections: Arc<Connections>,
    /// Whether the rows of `connection_leases` are known to be there.
    leases_exist: AtomicBool,
    seen: Mutex<Seen>,
    /// Why the relay is paused, as it said it.
    paused_reason: Mutex<String>,
    /// When this replica's sends of the last second went through.
    sent: Mutex<Sent>,
    slots: Arc<Slots>,
    /// False while the relay is paused: health's [`HEALTH_NAME`] entry.
    sending: watch::Sender<bool>,
    /// The connections this replica may use, as of its last beat.
    in_force: watch::Sender<usize>,
}

/// The health entry that is NOT_SERVING while the relay is paused (the
/// service itself stays SERVING: a paused relay is no reason to restart it).
pub const HEALTH_NAME: &str = "dialin.notifier.v1.Relay";

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Relay {
    pub fn new(db: Store, cap: Option<Cap>, deployment_connections: usize, quota_pause: Duration) -> Arc<Self> {
        Arc::new(Self {
            slots: Slots::new(db.clone()),
            db,
            instance: uuid::Uuid::new_v4().to_string(),
            cap,
            deployment_connections,
            quota_pause,
            connections: Connections::new(),
            leases_exist: AtomicBool::new(false),
            seen: Mutex::new(Seen {
                senders: 1,
                ..Seen::default()
            }),
            paused_reason: Mutex::new(String::new()),
            sent: Mutex::new(Sent::default()),
            sending: watch::Sender::new(true),
            in_force: watch::Sender::new(0),
        })
    }

    fn replace_seen(&self, seen: Seen) {
        *locked(&self.seen) = seen;
    }

    fn seen(&self) -> Seen {
        *locked(&self.seen)
    }

    /// The cap in messages a second.
    fn cap_rate(&self) -> Option<f64> {
        self.cap.map(|cap| cap.per_second)
    }

    fn set_paused_reason(&self, reason: String) {
        *locked(&self.paused_reason) = reason;
    }

    /// How many emails this replica may hold claimed: none while the relay is
    /// paused or it has no connection; else enough for its connections, and
    /// while a rate is in force, about half a second's worth of its part of it
    /// (an interactive email claimed next waits behind no more).
    pub fn claim_limit(&self, capacity: usize) -> usize {
        let seen = self.seen();
        let now = now_millis();
        if seen.paused_until > now {
            return 0;
        }
        let limit = capacity.min(seen.usable_connections * CLAIM_PER_CONNECTION);
        match seen.throttle.allowed(self.cap_rate(), now) {
            Some(rate) => limit.min((rate * CLAIM_AHEAD / seen.senders.max(1) as f64).ceil() as usize + 1),
            None => limit,
        }
    }

    /// Waits for this send's turn: a connection, the end of a pause, and
    /// while a rate is in force, a send slot. `ClaimExpiring` when the turn
    /// would come too late for a send of up to `send_time` to end by `claim_until`.
    pub async fn turn(&self, claim_until: i64, send_time: Duration) -> Result<InUse, SendError> {
        let send_ms = i64::try_from(send_time.as_millis()).unwrap_or(i64::MAX / 2);
        let connection = self
            .connections
            .take()
            .await
            .ok_or_else(|| SendError::Transient("the SMTP connections are closed".into()))?;
        loop {
            let seen = self.seen();
            let now = now_millis();
            let start = if seen.paused_until > now {
                seen.paused_until
            } else {
                match seen.throttle.allowed(self.cap_rate(), now) {
                    None => now,
                    Some(rate) => {
                        let late = lateness_allowed_us(rate, self.cap.map(|cap| cap.window));
                        self.slots.next(rate, late, seen.senders).await.map_err(|error| {
                            SendError::Transient(format!("cannot reserve a send slot with the relay budget: {error}"))
                        })?
                    }
                }
            };
            if start + send_ms > claim_until {
                return Err(SendError::ClaimExpiring);
            }
            let now = now_millis();
            if start <= now {
                return Ok(connection);
            }
            tokio::time::sleep(Duration::from_millis((start - now).unsigned_abs())).await;
            if seen.paused_until <= now {
                return Ok(connection);
            }
        }
    }

    /// Connections this replica may use that no send holds now: how many may
    /// stay open while idle.
    pub fn spare_connections(&self) -> usize {
        self.connections.spare()
    }

    /// The connections this replica may use, told after each beat: how many
    /// may stay open at most.
    pub fn connections_in_force(&self) -> watch::Receiver<usize> {
        self.in_force.subscribe()
    }

    /// A send this replica finished.
    pub fn record_sent(&self) {
        locked(&self.sent).add(tokio::time::Instant::now());
    }

    /// What this replica sends a second now.
    fn sent_last_second(&self) -> f64 {
        locked(&self.sent).last_second(tokio::time::Instant::now())
    }

    /// The relay refused a send that took its turn at `turn_at` for a reason
    /// about itself (`reply`, as it said it): a throttle cuts the rate for the
    /// whole deployment (and pauses it when the relay said for how long), a
    /// quota or a block pauses it.
    pub async fn refused(&self, refusal: &RelayRefusal, reply: &str, turn_at: i64) {
        let now = now_millis();
        let seen = self.seen();
        let result = match refusal {
            RelayRefusal::Throttle { retry_after } => {
                metrics::counter!("dialin_smtp_throttled_total", "answer" => "throttle").increment(1);
                // The others' rates as they last said, or this replica's own now if
                // that is more: the first refusal may come before any beat.
                let observed = seen.sent_per_second.max(self.sent_last_second());
                let cut = match seen.throttle.cut(self.cap_rate(), now, turn_at, observed) {
                    Some(cut) => self.cut(cut, turn_at).await,
                    None => Ok(()),
                };
                match retry_after {
                    Some(wait) => {
                        let reason = format!("the relay asked to wait {}s: {reply}", wait.as_secs());
                        cut.and(self.pause(now, *wait, &reason).await)
                    }
                    None => cut,
                }
            }
            RelayRefusal::Quota => {
                metrics::counter!("dialin_smtp_throttled_total", "answer" => "quota").increment(1);
                self.pause(now, self.quota_pause, reply).await
            }
        };
        if let Err(error) = result {
            tracing::warn!(%error, "relay budget: cannot record the relay's refusal");
        }
    }

    /// Records `cut`, unless a replica cut after the refused send took its
    /// turn at `turn_at` (that cut answered it).
    async fn cut(&self, cut: Throttle, turn_at: i64) -> Result<(), DbErr> {
        let statement = self.db.statement(
            "UPDATE relay SET throttled_rate = $1, throttled_at = $2, ceiling = $3
             WHERE name = 'smtp' AND (throttled_rate = 0 OR throttled_at < $4)",
            [cut.rate.into(), cut.at.into(), cut.ceiling.into(), turn_at.into()],
        );
        let result = self.db.write(async |txn| txn.execute_raw(statement).await).await?;
        if result.rows_affected() == 1 {
            tracing::info!(
                rate = cut.rate,
                seen = cut.ceiling,
                "the SMTP relay throttled: sending slows down"
            );
            let mut seen = self.seen();
            seen.throttle = cut;
            self.replace_seen(seen);
            self.slots.repace().await?;
        }
        Ok(())
    }

    /// Pauses sending for `wait` from `now`, unless a longer pause holds.
    async fn pause(&self, now: i64, wait: Duration, reason: &str) -> Result<(), DbErr> {
        let until = now + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 4);
        let statement = self.db.statement(
            "UPDATE relay SET paused_until = $1, paused_reason = $2 WHERE name = 'smtp' AND paused_until < $1",
            [until.into(), reason.into()],
        );
        let result = self.db.write(async |txn| txn.execute_raw(statement).await).await?;
        let mut seen = self.seen();
        if result.rows_affected() == 1 {
            let was_paused = seen.paused_until > now;
            if !was_paused {
                tracing::warn!(reason, ?wait, "the SMTP relay refuses to send: paused");
            }
            seen.paused_until = until;
            self.replace_seen(seen);
            self.set_paused_reason(reason.to_owned());
            self.sending.send_replace(false);
        }
        Ok(())
    }

    /// Whether the relay is sending (not paused), for health.
    pub fn sending(&self) -> watch::Receiver<bool> {
        self.sending.subscribe()
    }

    /// The relay as `DescribeQueue` shows it.
    pub fn describe(&self) -> pb::RelayState {
        let seen = self.seen();
        let now = now_millis();
        let paused = seen.paused_until > now;
        pb::RelayState {
            rate_per_second: seen.throttle.allowed(self.cap_rate(), now).unwrap_or(0.0),
            cap_per_second: self.cap_rate().unwrap_or(0.0),
            sent_per_second: seen.sent_per_second,
            paused,
            paused_reason: if paused {
                locked(&self.paused_reason).clone()
            } else {
                String::new()
            },
            paused_until: paused.then(|| to_timestamp(seen.paused_until)),
            connections: u32::try_from(self.deployment_connections).unwrap_or(u32::MAX),
            senders: u32::try_from(seen.senders).unwrap_or(u32::MAX),
        }
    }
}
