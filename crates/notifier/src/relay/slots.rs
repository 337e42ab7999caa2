//! Send slots: while a rate is in force, every send of the deployment takes a
//! slot reserved in the `relay` row, the slots spaced by the rate, so that the
//! replicas together keep the pace. A replica reserves a batch at a time (one
//! database write per batch, not per send), and the next batch while the
//! current one still has slots left: on SQLite that write can wait behind a
//! large intake transaction, and no send should wait with it.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard},
};

use dialin_domain::time::now_millis;
use dialin_store::Store;
use sea_orm::{ConnectionTrait, DbErr};
use tokio::sync::Notify;

use super::rate::interval_us;

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
    /// Reserved and not used yet, in order (milliseconds since the epoch).
    queue: VecDeque<i64>,
    /// A batch is being reserved.
    reserving: bool,
    /// Counts changes of pace: a batch reserved at the old pace is dropped.
    pace: u64,
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
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The next send slot of this replica, one of `senders`, at `rate`: one
    /// reserved earlier unless it has gone by (a send in it now would crowd
    /// the next), else the first of a new batch.
    pub(super) async fn next(self: &Arc<Self>, rate: f64, senders: usize) -> Result<i64, DbErr> {
        let late = interval_us(rate) / 2000;
        let batch = batch_size(rate, senders);
        loop {
            let (step, reserved) = {
                let mut state = self.state();
                let step = next_step(&mut state, now_millis(), late, batch);
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
                    return Ok(at);
                }
                Step::Reserve => self.reserve(rate, batch).await?,
                Step::Wait => reserved.await,
            }
        }
    }

    /// Drops the slots reserved at the old pace (and any batch on the way):
    /// they would overrun the new one.
    pub(super) fn repace(&self) {
        let mut state = self.state();
        state.queue.clear();
        state.pace += 1;
    }

    /// Reserves `count` slots at `rate` and adds them to the queue.
    async fn reserve(&self, rate: f64, count: i64) -> Result<(), DbErr> {
        let pace = self.state().pace;
        let reserved = self.take_from_the_deployment(rate, count).await;
        {
            let mut state = self.state();
            state.reserving = false;
            if let Ok(slots) = &reserved
                && state.pace == pace
            {
                state.queue.extend(slots);
            }
        }
        self.reserved.notify_waiters();
        reserved.map(drop)
    }

    /// Takes the deployment's next `count` send slots at `rate`; returns when
    /// they are (milliseconds since the epoch).
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
        Ok((0..count)
            .map(|at| (first_us + at * interval).div_euclid(1000))
            .collect())
    }
}

/// Slots a replica, one of `senders`, reserves at once at `rate`.
fn batch_size(rate: f64, senders: usize) -> i64 {
    (rate * BATCH_SECONDS / senders.max(1) as f64).ceil().max(1.0) as i64
}

/// Takes the first slot of `state` that has not gone by more than `late` at
/// `now` (milliseconds); asks for the next batch once no more than one batch
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
    fn a_batch_is_a_fifth_of_a_second_of_a_replicas_part_and_at_least_one() {
        assert_eq!(batch_size(50.0, 1), 10);
        assert_eq!(batch_size(50.0, 3), 4);
        assert_eq!(batch_size(0.5, 2), 1);
    }
}
