//! The SMTP relay's budget, shared by every notifier replica through the
//! database: the rate the deployment may send at (the cap, cut when the relay
//! throttles and raised back gradually), a pause while the relay refuses
//! everything (a quota, a block, "try again in N seconds"), and the
//! connections, shared out among the replicas that send.
//!
//! A send takes its [`Relay::turn`] first: a connection of this replica's
//! share, then, while a rate is in force, a send slot reserved in the `relay`
//! row, so that the replicas' sends together keep the pace. Each replica
//! beats every [`BEAT`] in `senders` (what it sent lately), and reads the
//! row back; a replica that stops beating drops out of the share.
//!
//! Over 400 lines for now: the beats, the slots, the cuts and the pauses all
//! read and write one cached state ([`Seen`]); the decisions are apart
//! already (`rate.rs`, `answer.rs`), and beats and slots are the next split.

mod answer;
mod rate;

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use dialin_domain::time::{now_millis, to_timestamp};
use dialin_proto::notifier::v1 as pb;
use dialin_store::Store;
use sea_orm::{ConnectionTrait, DbErr};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

pub use self::answer::{RelayRefusal, classify};
use self::rate::{Throttle, connection_share, interval_us};
use crate::mail::SendError;

/// How often a replica says it is sending and reads the relay's state back.
const BEAT: Duration = Duration::from_millis(500);
/// A replica not seen for this long no longer shares the connections.
const SENDER_GONE_MS: i64 = 3_000;
/// Claimed emails per connection: enough that a sender never waits for a claim.
const CLAIM_PER_CONNECTION: usize = 4;
/// While a rate is in force, this many seconds of it are claimed ahead.
const CLAIM_AHEAD: f64 = 0.5;
/// While a rate is in force, a replica reserves this many seconds of its
/// slots at once: one database write per batch, not per send.
const SLOTS_AHEAD: f64 = 0.2;

/// What this replica last read of the shared state, and what follows from it.
#[derive(Clone, Debug, Default)]
struct Seen {
    throttle: Throttle,
    paused_until: i64,
    paused_reason: String,
    senders: usize,
    share: usize,
    /// What the deployment sent lately, messages a second.
    sent_per_second: f64,
}

/// A replica's recent sends.
#[derive(Default)]
struct Sent {
    /// When the sends of the last second finished.
    last_second: VecDeque<tokio::time::Instant>,
    /// Since when it has been sending without a second's break.
    busy_since: Option<tokio::time::Instant>,
}

impl Sent {
    fn add(&mut self, now: tokio::time::Instant) {
        self.forget(now);
        self.busy_since.get_or_insert(now);
        self.last_second.push_back(now);
    }

    /// Sends a second: over the last second, or over the time it has been
    /// sending if that is shorter.
    fn rate(&mut self, now: tokio::time::Instant) -> f64 {
        self.forget(now);
        let Some(since) = self.busy_since else { return 0.0 };
        let span = (now - since).clamp(Duration::from_millis(100), Duration::from_secs(1));
        self.last_second.len() as f64 / span.as_secs_f64()
    }

    fn forget(&mut self, now: tokio::time::Instant) {
        while self
            .last_second
            .front()
            .is_some_and(|&at| now - at > Duration::from_secs(1))
        {
            self.last_second.pop_front();
        }
        if self.last_second.is_empty() {
            self.busy_since = None;
        }
    }
}

pub struct Relay {
    db: Store,
    /// This replica, as a sender in `senders`.
    instance: String,
    /// `DIALIN_SMTP_MAX_RATE`, messages a second.
    cap: Option<f64>,
    /// `DIALIN_SMTP_CONNECTIONS`: for the whole deployment.
    connections: usize,
    /// How long a quota or a block pauses sending, unless the relay said.
    quota_pause: Duration,
    /// This replica's share of the connections.
    permits: Arc<Semaphore>,
    seen: Mutex<Seen>,
    /// When this replica's sends of the last second finished, and since when
    /// it has been sending without a break: its rate.
    sent: Mutex<Sent>,
    /// Send slots this replica reserved and has not used yet (milliseconds
    /// since the epoch), in order.
    slots: tokio::sync::Mutex<VecDeque<i64>>,
    /// False while the relay is paused: health's [`HEALTH_NAME`] entry.
    sending: watch::Sender<bool>,
}

/// The health entry that is NOT_SERVING while the relay is paused (the
/// service itself stays SERVING: a paused relay is no reason to restart it).
pub const HEALTH_NAME: &str = "dialin.notifier.v1.Relay";

impl Relay {
    pub fn new(db: Store, cap: Option<f64>, connections: usize, quota_pause: Duration) -> Arc<Self> {
        Arc::new(Self {
            db,
            instance: uuid::Uuid::new_v4().to_string(),
            cap,
            connections,
            quota_pause,
            // One until the first beat says how many replicas share them.
            permits: Arc::new(Semaphore::new(1)),
            seen: Mutex::new(Seen {
                share: 1,
                senders: 1,
                ..Seen::default()
            }),
            sent: Mutex::new(Sent::default()),
            slots: tokio::sync::Mutex::new(VecDeque::new()),
            sending: watch::Sender::new(true),
        })
    }

    /// Beats until shutdown, then leaves the share to the others.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut paused = false;
        loop {
            match self.beat(self.sent_last_second()).await {
                Ok(seen) => {
                    let now_paused = seen.paused_until > now_millis();
                    if now_paused != paused && !now_paused {
                        tracing::info!("the SMTP relay is no longer paused; sending resumes");
                    }
                    paused = now_paused;
                    self.sending.send_replace(!paused);
                }
                Err(error) => tracing::warn!(%error, "relay budget: cannot read or renew; will retry"),
            }
            tokio::select! {
                () = tokio::time::sleep(BEAT) => {}
                _ = shutdown.changed() => break,
            }
        }
        let leave = self.db.statement(
            "DELETE FROM senders WHERE instance = $1",
            [self.instance.clone().into()],
        );
        if let Err(error) = self.db.write(async |txn| txn.execute_raw(leave).await).await {
            tracing::warn!(%error, "relay budget: could not leave the senders; the others take over in seconds");
        }
    }

    /// Says this replica sends at `rate`, and reads the shared state back.
    async fn beat(&self, rate: f64) -> Result<Seen, DbErr> {
        let now = now_millis();
        let beat = self.db.statement(
            "INSERT INTO senders (instance, seen_at, sent_per_second) VALUES ($1, $2, $3)
             ON CONFLICT (instance) DO UPDATE SET seen_at = excluded.seen_at, sent_per_second = excluded.sent_per_second",
            [self.instance.clone().into(), now.into(), rate.into()],
        );
        let forget = self.db.statement(
            "DELETE FROM senders WHERE seen_at < $1",
            [(now - 20 * SENDER_GONE_MS).into()],
        );
        self.db
            .write(async |txn| {
                txn.execute_raw(beat).await?;
                txn.execute_raw(forget).await
            })
            .await?;
        let reader = self.db.reader();
        let senders = reader
            .query_all_raw(self.db.statement(
                "SELECT instance, sent_per_second FROM senders WHERE seen_at >= $1 ORDER BY instance",
                [(now - SENDER_GONE_MS).into()],
            ))
            .await?;
        let mut names = Vec::with_capacity(senders.len());
        let mut sent_per_second = 0.0;
        for row in senders {
            names.push(row.try_get_by_index::<String>(0)?);
            sent_per_second += row.try_get_by_index::<f64>(1)?;
        }
        if !names.contains(&self.instance) {
            names.push(self.instance.clone());
            names.sort();
        }
        let relay = reader
            .query_one_raw(self.db.statement(
                "SELECT throttled_rate, throttled_at, ceiling, paused_until, paused_reason FROM relay WHERE name = $1",
                ["smtp".into()],
            ))
            .await?
            .ok_or_else(|| DbErr::RecordNotFound("the relay row is missing: run the migrations".into()))?;
        let share = connection_share(self.connections, &names, &self.instance);
        let seen = Seen {
            throttle: Throttle {
                rate: relay.try_get_by_index(0)?,
                at: relay.try_get_by_index(1)?,
                ceiling: relay.try_get_by_index(2)?,
            },
            paused_until: relay.try_get_by_index(3)?,
            paused_reason: relay.try_get_by_index(4)?,
            senders: names.len(),
            share,
            sent_per_second,
        };
        let before = self.replace_seen(seen.clone());
        self.resize(before.share, share);
        metrics::gauge!("dialin_smtp_rate_limit").set(seen.throttle.allowed(self.cap, now).unwrap_or(0.0));
        metrics::gauge!("dialin_smtp_sent_per_second").set(sent_per_second);
        metrics::gauge!("dialin_smtp_relay_paused").set(if seen.paused_until > now { 1.0 } else { 0.0 });
        metrics::gauge!("dialin_smtp_connections_share").set(share as f64);
        Ok(seen)
    }

    fn replace_seen(&self, seen: Seen) -> Seen {
        match self.seen.lock() {
            Ok(mut current) => std::mem::replace(&mut *current, seen),
            Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), seen),
        }
    }

    fn seen(&self) -> Seen {
        match self.seen.lock() {
            Ok(seen) => seen.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Grows or shrinks this replica's connections from `before` to `after`;
    /// a connection in use is given up when its send ends.
    fn resize(&self, before: usize, after: usize) {
        if after > before {
            self.permits.add_permits(after - before);
        } else if after < before {
            let (permits, count) = (
                Arc::clone(&self.permits),
                u32::try_from(before - after).unwrap_or(u32::MAX),
            );
            tokio::spawn(async move {
                if let Ok(taken) = permits.acquire_many_owned(count).await {
                    taken.forget();
                }
            });
        }
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
        let limit = capacity.min(seen.share * CLAIM_PER_CONNECTION);
        match seen.throttle.allowed(self.cap, now) {
            Some(rate) => limit.min((rate * CLAIM_AHEAD / seen.senders.max(1) as f64).ceil() as usize + 1),
            None => limit,
        }
    }

    /// Waits for this send's turn: a connection, the end of a pause, and
    /// while a rate is in force, a send slot. `ClaimExpiring` when the turn
    /// would come too late for a send of up to `send_time` to end by `claim_until`.
    pub async fn turn(&self, claim_until: i64, send_time: Duration) -> Result<OwnedSemaphorePermit, SendError> {
        let send_ms = i64::try_from(send_time.as_millis()).unwrap_or(i64::MAX / 2);
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| SendError::Transient("the SMTP connections are closed".into()))?;
        loop {
            let seen = self.seen();
            let now = now_millis();
            let start = if seen.paused_until > now {
                seen.paused_until
            } else {
                match seen.throttle.allowed(self.cap, now) {
                    None => now,
                    Some(rate) => self.next_slot(rate, seen.senders, now).await.map_err(|error| {
                        SendError::Transient(format!("cannot reserve a send slot with the relay budget: {error}"))
                    })?,
                }
            };
            if start + send_ms > claim_until {
                return Err(SendError::ClaimExpiring);
            }
            if start <= now {
                return Ok(permit);
            }
            tokio::time::sleep(Duration::from_millis((start - now).unsigned_abs())).await;
            if seen.paused_until <= now {
                return Ok(permit);
            }
        }
    }

    /// This replica's next send slot at `rate`: one reserved earlier, unless it
    /// has gone by (a send in it now would crowd the next), else the first of
    /// a new batch.
    async fn next_slot(&self, rate: f64, senders: usize, now: i64) -> Result<i64, DbErr> {
        let late = interval_us(rate) / 2000;
        let mut slots = self.slots.lock().await;
        while let Some(slot) = slots.pop_front() {
            if slot + late >= now {
                return Ok(slot);
            }
        }
        let batch = (rate * SLOTS_AHEAD / senders.max(1) as f64).ceil().max(1.0) as i64;
        slots.extend(self.reserve_slots(rate, batch).await?);
        Ok(slots.pop_front().unwrap_or(now))
    }

    /// Takes the next `count` send slots at `rate` for the whole deployment;
    /// returns when they are (milliseconds since the epoch).
    async fn reserve_slots(&self, rate: f64, count: i64) -> Result<Vec<i64>, DbErr> {
        let now_us = now_millis().saturating_mul(1000);
        let interval = interval_us(rate);
        let statement = self.db.statement(
            "UPDATE relay SET next_slot_us = CASE WHEN next_slot_us > $1 THEN next_slot_us ELSE $1 END + $2
             WHERE name = 'smtp' RETURNING next_slot_us - $2",
            [now_us.into(), (interval * count).into()],
        );
        let row = self
            .db
            .write(async |txn| txn.query_one_raw(statement).await)
            .await?
            .ok_or_else(|| DbErr::RecordNotFound("the relay row is missing: run the migrations".into()))?;
        let first_us: i64 = row.try_get_by_index(0)?;
        Ok((0..count)
            .map(|at| (first_us + at * interval).div_euclid(1000))
            .collect())
    }

    /// A send this replica finished.
    pub fn sent(&self) {
        if let Ok(mut sent) = self.sent.lock() {
            sent.add(tokio::time::Instant::now());
        }
    }

    /// What this replica sends a second now.
    fn sent_last_second(&self) -> f64 {
        self.sent
            .lock()
            .map_or(0.0, |mut sent| sent.rate(tokio::time::Instant::now()))
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
                let cut = match seen.throttle.cut(self.cap, now, turn_at, observed) {
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
            // Slots reserved at the old pace would overrun the new one.
            self.slots.lock().await.clear();
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
            (seen.paused_until, seen.paused_reason) = (until, reason.to_owned());
            self.replace_seen(seen);
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
            rate_per_second: seen.throttle.allowed(self.cap, now).unwrap_or(0.0),
            cap_per_second: self.cap.unwrap_or(0.0),
            sent_per_second: seen.sent_per_second,
            paused,
            paused_reason: if paused { seen.paused_reason } else { String::new() },
            paused_until: paused.then(|| to_timestamp(seen.paused_until)),
            connections: u32::try_from(self.connections).unwrap_or(u32::MAX),
            senders: u32::try_from(seen.senders).unwrap_or(u32::MAX),
        }
    }
}
