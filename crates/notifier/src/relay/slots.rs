//! Send slots: while a rate is in force, every send of the deployment takes a
//! slot reserved in the `relay` row, the slots spaced by the rate, so that the
//! replicas together keep the pace. A replica reserves a batch at a time (one
//! database write per batch, not per send), and the next batch while the
//! current one still has slots left: on SQLite that write can wait behind a
//! large intake transaction, and no send should wait with it. When the pace
//! changes (a throttle), the slots reserved at the old one are dropped, and
//! given back to the deployment when no replica has reserved after them, so
//! that sending goes on at the new pace at once, not after a gap.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard},
};

use dialin_domain::time::now_millis;
use dialin_store::Store;
use sea_orm::{ConnectionTrait, DbErr};
use tokio::sync::Notify;

use super::{locked, rate::interval_us};

/// A batch holds this many seconds of a replica's part of the rate.
const BATCH_SECONDS: f64 = 0.2;

pub(super) struct Slots {
    db: Store,
    state: Mutex<State>,
    /// Told when a batch has been reserved (or failed to be).
    reserved: Notify,
}

#[derive(Default)]
struct State {
    /// Reserved and not used yet, in order (microseconds since the epoch).
    queue: VecDeque<i64>,
    /// Where this replica's last run of batches one after the other (no other
    /// replica's slots between them) began and ended: the deployment's next
    /// slot is its end, unless another replica has reserved since.
    last_run: (i64, i64),
    /// A batch is being reserved.
    reserving: bool,
    /// Counts changes of pace: a batch reserved at the old pace is dropped.
    pace: u64,
}

/// Ends a reservation however it ends, a cancelled one included: the next
/// sender reserves again rather than wait for it forever.
struct Reserving<'a>(&'a Slots);

impl Drop for Reserving<'_> {
    fn drop(&mut self) {
        self.0.state().reserving = false;
        self.0.reserved.notify_waiters();
    }
}

/// What a sender does after looking at the reserved slots.
enum Step {
    /// Send at this slot; `reserve_next` when the slots run low.
    Slot { at: i64, reserve_next: bool },
    /// None left and none on the way: reserve a batch now.
    Reserve,
    /// None left, a batch on the way: wait for it.
    Wait,
}

impl Slots {
    pub(super) fn new(db: Store) -> Arc<Self> {
        Arc::new(Self {
            db,
            state: Mutex::new(State::default()),
            reserved: Notify::new(),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        locked(&self.state)
    }

    /// The next send slot of this replica, one of `senders`, at `rate`
    /// (milliseconds since the epoch): one reserved earlier unless it has gone
    /// by more than `late` microseconds, else the first of a new batch.
    pub(super) async fn next(self: &Arc<Self>, rate: f64, late: i64, senders: usize) -> Result<i64, DbErr> {
        let batch = batch_size(rate, senders);
        loop {
            let (step, reserved) = {
                let mut state = self.state();
                let step = next_step(&mut state, now_millis().saturating_mul(1000), late, batch);
                // Registered before the lock is let go: a batch that lands
                // in between still wakes this sender.
                (step, self.reserved.notified())
            };
            match step {
                Step::Slot { at, reserve_next } => {
                    if reserve_next {
                        let slots = Arc::clone(self);
                        tokio::spawn(async move {
                            if let Err(error) = slots.reserve(rate, batch).await {
                                tracing::warn!(%error, "relay budget: cannot reserve send slots; will retry");
                            }
                        });
                    }
                    return Ok(at.div_euclid(1000));
                }
                Step::Reserve => self.reserve(rate, batch).await?,
                Step::Wait => reserved.await,
            }
        }
    }

    /// Drops the slots reserved at the old pace (and any batch on the way):
    /// they would overrun the new one. Gives them back unless another replica
    /// has reserved since.
    pub(super) async fn repace(&self) -> Result<(), DbErr> {
        let unused = {
            let mut state = self.state();
            state.pace += 1;
            let unused = unused_tail(&state.queue, state.last_run);
            state.queue.clear();
            unused
        };
        match unused {
            Some((first, until)) => self.give_back(first, until).await,
            None => Ok(()),
        }
    }

    /// Reserves `count` slots at `rate` and adds them to the queue (or gives
    /// them back, if the pace changed meanwhile).
    async fn reserve(&self, rate: f64, count: i64) -> Result<(), DbErr> {
        let _done = Reserving(self);
        let pace = self.state().pace;
        let reserved = self.take_from_the_deployment(rate, count).await;
        let stale = {
            let mut state = self.state();
            state.reserving = false;
            match &reserved {
                Ok(slots) if state.pace == pace => {
                    state.queue.extend(slots.iter());
                    if let (Some(&first), Some(&last)) = (slots.first(), slots.last()) {
                        let (run_first, run_end) = state.last_run;
                        let run_first = if first == run_end { run_first } else { first };
                        state.last_run = (run_first, last + interval_us(rate));
                    }
                    None
                }
                Ok(slots) => slots
                    .first()
                    .map(|&first| (first, slots.last().copied().unwrap_or(first) + interval_us(rate))),
                Err(_) => None,
            }
        };
        self.reserved.notify_waiters();
        if let Some((first, until)) = stale {
            self.give_back(first, until).await?;
        }
        reserved.map(drop)
    }

    /// Gives the slots from `first` to `until` (microseconds) back to the
    /// deployment, if they are still its last ones.
    async fn give_back(&self, first: i64, until: i64) -> Result<(), DbErr> {
        let statement = self.db.statement(
            "UPDATE relay SET next_slot_us = $1 WHERE name = 'smtp' AND next_slot_us = $2",
            [first.into(), until.into()],
        );
        self.db
            .write(async |txn| txn.execute_raw(statement).await)
            .await
            .map(drop)
    }

    /// Takes the deployment's next `count` send slots at `rate`; returns when
    /// they are (microseconds since the epoch).
    async fn take_from_the_deployment(&self, rate: f64, count: i64) -> Result<Vec<i64>, DbErr> {
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
        Ok((0..count).map(|at| first_us + at * interval).collect())
    }
}

/// The slots of `queue` that can go back to the deployment: those of this
/// replica's last run of batches (`last_run`: its first slot and its end) not
/// used yet, and only those, since another replica may hold the slots before
/// the run. As (from, end).
fn unused_tail(queue: &VecDeque<i64>, last_run: (i64, i64)) -> Option<(i64, i64)> {
    let (run_first, run_end) = last_run;
    match (queue.front(), queue.back()) {
        (Some(&front), Some(&back)) if back >= run_first => Some((front.max(run_first), run_end)),
        _ => None,
    }
}

/// Slots a replica, one of `senders`, reserves at once at `rate`.
fn batch_size(rate: f64, senders: usize) -> i64 {
    (rate * BATCH_SECONDS / senders.max(1) as f64).ceil().max(1.0) as i64
}

/// Takes the first slot of `state` that has not gone by more than `late` at
/// `now` (microseconds); asks for the next batch once no more than one batch
/// of `batch` slots is left, so that it lands before these run out.
fn next_step(state: &mut State, now: i64, late: i64, batch: i64) -> Step {
    while let Some(at) = state.queue.pop_front() {
        if at + late < now {
            continue;
        }
        let reserve_next = !state.reserving && state.queue.len() <= usize::try_from(batch).unwrap_or(usize::MAX);
        state.reserving |= reserve_next;
        return Step::Slot { at, reserve_next };
    }
    if state.reserving {
        Step::Wait
    } else {
        state.reserving = true;
        Step::Reserve
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(slots: &[i64]) -> State {
        State {
            queue: slots.iter().copied().collect(),
            ..State::default()
        }
    }

    fn taken(step: Step) -> (i64, bool) {
        match step {
            Step::Slot { at, reserve_next } => (at, reserve_next),
            Step::Reserve => panic!("reserved instead of taking a slot"),
            Step::Wait => panic!("waited instead of taking a slot"),
        }
    }

    #[test]
    fn the_next_batch_is_asked_for_once_while_one_batch_is_still_left() {
        let mut state = queued(&[100, 120, 140, 160]);
        assert_eq!(taken(next_step(&mut state, 90, 10, 2)), (100, false));
        // Two left after this one: no more than a batch, so the next is asked for ...
        assert_eq!(taken(next_step(&mut state, 90, 10, 2)), (120, true));
        // ... once.
        assert_eq!(taken(next_step(&mut state, 90, 10, 2)), (140, false));
        assert!(state.reserving);
    }

    #[test]
    fn a_slot_gone_by_is_skipped() {
        let mut state = queued(&[100, 120, 140]);
        // At 125, 100 went by 25 ms ago (more than 10 late), 120 only 5.
        assert_eq!(taken(next_step(&mut state, 125, 10, 1)).0, 120);
    }

    #[test]
    fn with_no_slot_left_one_sender_reserves_and_the_others_wait() {
        let mut state = queued(&[100]);
        assert!(matches!(next_step(&mut state, 500, 10, 4), Step::Reserve));
        assert!(matches!(next_step(&mut state, 500, 10, 4), Step::Wait));
    }

    #[test]
    fn only_the_unused_slots_of_the_last_run_of_batches_go_back() {
        // This replica reserved [0, 10) and [10, 20), one after the other.
        let queue: VecDeque<i64> = [7, 8, 9, 10, 11].into_iter().collect();
        assert_eq!(unused_tail(&queue, (0, 20)), Some((7, 20)));
        // This replica reserved [0, 10) and [20, 30); another one [10, 20).
        let queue: VecDeque<i64> = [7, 8, 9, 20, 21, 22].into_iter().collect();
        assert_eq!(unused_tail(&queue, (20, 30)), Some((20, 30)));
        // Some of the last batch used already.
        let queue: VecDeque<i64> = [24, 25].into_iter().collect();
        assert_eq!(unused_tail(&queue, (20, 30)), Some((24, 30)));
        // Only an earlier batch's slots left, or none.
        let queue: VecDeque<i64> = [8, 9].into_iter().collect();
        assert_eq!(unused_tail(&queue, (20, 30)), None);
        assert_eq!(unused_tail(&VecDeque::new(), (20, 30)), None);
    }

    #[test]
    fn a_batch_is_a_fifth_of_a_second_of_a_replicas_part_and_at_least_one() {
        assert_eq!(batch_size(50.0, 1), 10);
        assert_eq!(batch_size(50.0, 3), 4);
        assert_eq!(batch_size(0.5, 2), 1);
    }
}
