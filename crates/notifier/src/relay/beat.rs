//! Each replica's beat: every [`BEAT`] it says in `senders` that it is there
//! and how fast it sends, keeps its connections' leases, and reads the shared
//! state back (the throttle, a pause, how many replicas send and how fast).
//!
//! A replica sends only on connections it holds a lease for, one row each in
//! `connection_leases` (`DIALIN_SMTP_CONNECTIONS` rows): while replicas join
//! or leave, their views of who is there can differ for a beat, but two of
//! them never hold one lease, so the deployment never opens more connections
//! than the relay allows. A replica gives a lease back only once no send of
//! its own is using it; one that stops beating loses its leases within
//! [`LEASE_MS`].

use std::{collections::VecDeque, sync::Arc, time::Duration};

use dialin_domain::time::now_millis;
use dialin_store::sql::SKIP_LOCKED;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr};
use tokio::sync::watch;

use super::{Relay, Seen, rate::Throttle};

/// How often a replica says it is sending and reads the relay's state back.
const BEAT: Duration = Duration::from_millis(500);
/// A replica not seen for this long no longer shares the connections, and its
/// connection leases run out.
pub(super) const LEASE_MS: i64 = 3_000;

/// When a replica's sends of the last second went through.
#[derive(Default)]
pub(super) struct Sent(VecDeque<tokio::time::Instant>);

impl Sent {
    pub(super) fn add(&mut self, now: tokio::time::Instant) {
        self.forget(now);
        self.0.push_back(now);
    }

    /// How many went through in the last second: what a relay that counts a
    /// sender's messages per second (SES, Exchange) took, and so, when it
    /// refuses the next one, its limit. (A rate taken over a shorter span
    /// would see a burst of the first fifty in a fifth of a second as 250 a
    /// second.)
    pub(super) fn last_second(&mut self, now: tokio::time::Instant) -> f64 {
        self.forget(now);
        self.0.len() as f64
    }

    fn forget(&mut self, now: tokio::time::Instant) {
        while self.0.front().is_some_and(|&at| now - at > Duration::from_secs(1)) {
            self.0.pop_front();
        }
    }
}

/// How many connection leases a replica holding `held`, with `in_force` of
/// its connections still usable (some may be sending), gives back to come
/// down to `share`: never one a connection in force stands on.
pub(super) fn leases_to_give_back(held: usize, share: usize, in_force: usize) -> usize {
    held.saturating_sub(share.max(in_force))
}

impl Relay {
    /// Beats until shutdown, then leaves the share to the others.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut paused = false;
        let mut renewed = tokio::time::Instant::now();
        loop {
            let before = self.seen();
            match self.beat(self.sent_last_second()).await {
                Ok(seen) => {
                    renewed = tokio::time::Instant::now();
                    let now_paused = seen.paused_until > now_millis();
                    if now_paused != paused && !now_paused {
                        tracing::info!("the SMTP relay is no longer paused; sending resumes");
                    }
                    paused = now_paused;
                    self.sending.send_replace(!paused);
                    // Another replica cut the rate: slots reserved at the old
                    // pace would overrun the new one.
                    if seen.throttle.at != before.throttle.at
                        && let Err(error) = self.slots.repace().await
                    {
                        tracing::warn!(%error, "relay budget: cannot give back send slots");
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "relay budget: cannot read or renew; will retry");
                    // The leases may soon be another replica's: stop taking
                    // connections well before they run out.
                    if renewed.elapsed() > Duration::from_millis(LEASE_MS.unsigned_abs() / 2) {
                        self.connections.use_at_most(0);
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(BEAT) => {}
                _ = shutdown.changed() => break,
            }
        }
        let (leave, give_back) = (
            self.db.statement(
                "DELETE FROM senders WHERE instance = $1",
                [self.instance.clone().into()],
            ),
            self.db.statement(
                "UPDATE connection_leases SET holder = '', held_until = 0 WHERE holder = $1",
                [self.instance.clone().into()],
            ),
        );
        let left = self
            .db
            .write(async |txn| {
                txn.execute_raw(leave).await?;
                txn.execute_raw(give_back).await
            })
            .await;
        if let Err(error) = left {
            tracing::warn!(%error, "relay budget: could not leave the senders; the others take over in seconds");
        }
    }

    /// Says this replica sends at `rate`, keeps its connections' leases, and
    /// reads the shared state back.
    async fn beat(&self, rate: f64) -> Result<Seen, DbErr> {
        let relay = self.db.statement(
            "SELECT throttled_rate, throttled_at, ceiling, paused_until, paused_reason FROM relay WHERE name = $1",
            ["smtp".into()],
        );
        let (seen, reason, now) = self
            .db
            .write(async |txn| {
                // Taken once the write's turn has come (on SQLite it may wait):
                // a lease is renewed for as long from when it really is.
                let now = now_millis();
                let beat = self.db.statement(
                    "INSERT INTO senders (instance, seen_at, sent_per_second) VALUES ($1, $2, $3)
                     ON CONFLICT (instance) DO UPDATE SET seen_at = excluded.seen_at, sent_per_second = excluded.sent_per_second",
                    [self.instance.clone().into(), now.into(), rate.into()],
                );
                let forget = self
                    .db
                    .statement("DELETE FROM senders WHERE seen_at < $1", [(now - 20 * LEASE_MS).into()]);
                let senders = self.db.statement(
                    "SELECT instance, sent_per_second FROM senders WHERE seen_at >= $1 ORDER BY instance",
                    [(now - LEASE_MS).into()],
                );
                txn.execute_raw(beat).await?;
                txn.execute_raw(forget).await?;
                let mut names = Vec::new();
                let mut sent_per_second = 0.0;
                for row in txn.query_all_raw(senders).await? {
                    names.push(row.try_get_by_index::<String>(0)?);
                    sent_per_second += row.try_get_by_index::<f64>(1)?;
                }
                let share = super::rate::connection_share(self.deployment_connections, &names, &self.instance);
                let held = self.keep_leases(txn, share, now).await?;
                let relay = txn
                    .query_one_raw(relay)
                    .await?
                    .ok_or_else(|| DbErr::RecordNotFound("the relay row is missing: run the migrations".into()))?;
                let seen = Seen {
                    throttle: Throttle {
                        rate: relay.try_get_by_index(0)?,
                        at: relay.try_get_by_index(1)?,
                        ceiling: relay.try_get_by_index(2)?,
                    },
                    paused_until: relay.try_get_by_index(3)?,
                    senders: names.len().max(1),
                    usable_connections: held,
                    sent_per_second,
                };
                Ok::<_, DbErr>((seen, relay.try_get_by_index::<String>(4)?, now))
            })
            .await?;
        self.replace_seen(seen);
        self.in_force.send_replace(seen.usable_connections);
        self.set_paused_reason(reason);
        metrics::gauge!("dialin_smtp_rate_limit").set(seen.throttle.allowed(self.cap_rate(), now).unwrap_or(0.0));
        metrics::gauge!("dialin_smtp_sent_per_second").set(seen.sent_per_second);
        metrics::gauge!("dialin_smtp_relay_paused").set(if seen.paused_until > now { 1.0 } else { 0.0 });
        metrics::gauge!("dialin_smtp_connections_share").set(seen.usable_connections as f64);
        Ok(seen)
    }

    /// Renews this replica's connection leases, takes free ones up to
    /// `share`, sizes the connections it may use to what it holds (idle ones
    /// above it at once, busy ones as their sends end) and gives back the
    /// leases no connection stands on. Returns how many connections it may use.
    async fn keep_leases(&self, txn: &DatabaseTransaction, share: usize, now: i64) -> Result<usize, DbErr> {
        let (me, until, rows) = (
            self.instance.as_str(),
            now + LEASE_MS,
            i64::try_from(self.deployment_connections).unwrap_or(i64::MAX),
        );
        if !self.leases_exist.load(std::sync::atomic::Ordering::Relaxed) {
            let values: Vec<String> = (0..rows).map(|slot| format!("({slot}, '', 0)")).collect();
            txn.execute_unprepared(&format!(
                "INSERT INTO connection_leases (slot, holder, held_until) VALUES {} ON CONFLICT (slot) DO NOTHING",
                values.join(", ")
            ))
            .await?;
            self.leases_exist.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let renewed = txn
            .execute_raw(self.db.statement(
                "UPDATE connection_leases SET held_until = $1 WHERE holder = $2 AND held_until >= $3 AND slot < $4",
                [until.into(), me.into(), now.into(), rows.into()],
            ))
            .await?;
        let mut held = usize::try_from(renewed.rows_affected()).unwrap_or(usize::MAX);
        if held < share {
            // The outer condition is checked again on a row another replica
            // took meanwhile (PostgreSQL), so no lease is taken twice.
            let taken = txn
                .execute_raw(self.db.statement(
                    &format!(
                        "UPDATE connection_leases SET holder = $1, held_until = $2
                         WHERE held_until < $3 AND slot < $4 AND slot IN (
                             SELECT slot FROM connection_leases WHERE held_until < $3 AND slot < $4
                             ORDER BY slot LIMIT $5 {SKIP_LOCKED})"
                    ),
                    [
                        me.into(),
                        until.into(),
                        now.into(),
                        rows.into(),
                        ((share - held) as i64).into(),
                    ],
                ))
                .await?;
            held += usize::try_from(taken.rows_affected()).unwrap_or(0);
        }
        let in_force = self.connections.use_at_most(held.min(share));
        let give_back = leases_to_give_back(held, share, in_force);
        if give_back > 0 {
            txn.execute_raw(self.db.statement(
                // Only leases still this replica's (checked again on a row
                // another replica took meanwhile, on PostgreSQL).
                "UPDATE connection_leases SET holder = '', held_until = 0
                 WHERE holder = $1 AND held_until >= $3 AND slot IN (
                     SELECT slot FROM connection_leases WHERE holder = $1 AND held_until >= $3
                     ORDER BY slot DESC LIMIT $2)",
                [me.into(), (give_back as i64).into(), now.into()],
            ))
            .await?;
            held -= give_back;
        }
        Ok(held.min(in_force).min(share))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_idle_leases_above_the_share_are_given_back() {
        // Four held, two connections still in force (sending), a share of one: two go back now.
        assert_eq!(leases_to_give_back(4, 1, 2), 2);
        assert_eq!(leases_to_give_back(4, 1, 0), 3);
        assert_eq!(leases_to_give_back(2, 3, 0), 0);
        assert_eq!(leases_to_give_back(3, 3, 3), 0);
    }

    #[test]
    fn what_went_through_is_counted_over_the_last_second() {
        let start = tokio::time::Instant::now();
        let mut sent = Sent::default();
        for at in 0..5 {
            sent.add(start + Duration::from_millis(at * 100));
        }
        // A burst of five in 400 ms is five in the last second, not 12.5 a second.
        assert_eq!(sent.last_second(start + Duration::from_millis(400)), 5.0);
        // Those more than a second old are forgotten.
        assert_eq!(sent.last_second(start + Duration::from_millis(1_250)), 2.0);
        assert_eq!(sent.last_second(start + Duration::from_millis(2_000)), 0.0);
    }
}
