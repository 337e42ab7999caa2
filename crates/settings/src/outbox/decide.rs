//! What the dispatcher decides, apart from its effects: which rows go to the
//! notifier next ([`next_run`]), and what to write once they have gone
//! ([`plan_writes`]).

use std::{collections::VecDeque, time::Duration};

use super::{Handover, NOTIFY_BATCH, TOPIC_NOTIFY};
use crate::entity::outbox;

/// What to do with the head of the line.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Next {
    /// Nothing is due.
    Idle,
    /// The head waits out its backoff this long; nothing overtakes it.
    Wait(Duration),
    /// Hand these over, together.
    HandOver(Vec<outbox::Model>),
}

/// Takes the next run off `due` (in id order) at `now`: a policy change goes
/// alone, after everything queued before it and before everything after it;
/// the notify events up to the next policy change, or to one that is not due,
/// go together, [`NOTIFY_BATCH`] at most.
pub(super) fn next_run(due: &mut VecDeque<outbox::Model>, now: i64) -> Next {
    let Some(head) = due.front() else {
        return Next::Idle;
    };
    let wait = head.next_attempt_at - now;
    if wait > 0 {
        return Next::Wait(Duration::from_millis(wait.unsigned_abs()));
    }
    if head.topic != TOPIC_NOTIFY {
        return Next::HandOver(due.pop_front().into_iter().collect());
    }
    let mut run = Vec::new();
    while run.len() < NOTIFY_BATCH
        && due
            .front()
            .is_some_and(|row| row.topic == TOPIC_NOTIFY && row.next_attempt_at <= now)
    {
        run.extend(due.pop_front());
    }
    Next::HandOver(run)
}

/// The writes that record a run's outcomes.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Writes {
    /// Handed over: deleted.
    pub delivered: Vec<i64>,
    /// To try again: each row with its backoff and the error.
    pub retries: Vec<(outbox::Model, Duration, String)>,
    /// Refused as malformed: parked as dead, with the error.
    pub refused: Vec<(outbox::Model, String)>,
}

impl Writes {
    /// The shortest backoff of the rows to try again: how long the dispatcher
    /// waits before it looks again.
    pub(super) fn retry_after(&self) -> Option<Duration> {
        self.retries.iter().map(|(_, backoff, _)| *backoff).min()
    }
}

/// What to write for `outcomes`, each row to try again after `backoff(attempts so far)`.
pub(super) fn plan_writes(outcomes: Vec<(outbox::Model, Handover)>, backoff: impl Fn(i32) -> Duration) -> Writes {
    let mut writes = Writes::default();
    for (row, outcome) in outcomes {
        match outcome {
            Handover::Delivered => writes.delivered.push(row.id),
            Handover::Retry(error) => {
                let after = backoff(row.attempts);
                writes.retries.push((row, after, error));
            }
            Handover::Refused(error) => writes.refused.push((row, error)),
        }
    }
    writes
}

#[cfg(test)]
mod tests {
    use dialin_domain::sealed::SealedPayload;

    use super::*;
    use crate::outbox::TOPIC_POLICY;

    fn row(id: i64, topic: &str, next_attempt_at: i64) -> outbox::Model {
        outbox::Model {
            id,
            tenant_id: "t".to_owned(),
            user_id: String::new(),
            lane: outbox::LANE_INTERACTIVE,
            topic: topic.to_owned(),
            payload: SealedPayload(Vec::new()),
            created_at: 0,
            attempts: i32::try_from(id).unwrap_or_default(),
            next_attempt_at,
            dead: false,
            last_error: String::new(),
        }
    }

    fn ids(next: Next) -> Vec<i64> {
        match next {
            Next::HandOver(run) => run.into_iter().map(|row| row.id).collect(),
            other => panic!("expected a run, got {other:?}"),
        }
    }

    #[test]
    fn notify_events_go_together_up_to_a_policy_change_which_goes_alone() {
        let mut due = VecDeque::from([
            row(1, TOPIC_NOTIFY, 0),
            row(2, TOPIC_NOTIFY, 0),
            row(3, TOPIC_POLICY, 0),
            row(4, TOPIC_NOTIFY, 0),
        ]);
        assert_eq!(ids(next_run(&mut due, 10)), [1, 2]);
        assert_eq!(ids(next_run(&mut due, 10)), [3]);
        assert_eq!(ids(next_run(&mut due, 10)), [4]);
        assert_eq!(next_run(&mut due, 10), Next::Idle);
    }

    #[test]
    fn a_run_holds_at_most_one_notify_batch() {
        let mut due: VecDeque<_> = (0..NOTIFY_BATCH as i64 + 5)
            .map(|id| row(id, TOPIC_NOTIFY, 0))
            .collect();
        assert_eq!(ids(next_run(&mut due, 10)).len(), NOTIFY_BATCH);
        assert_eq!(ids(next_run(&mut due, 10)).len(), 5);
    }

    #[test]
    fn the_head_waits_out_its_backoff_and_a_run_stops_at_a_row_not_due() {
        let mut due = VecDeque::from([row(1, TOPIC_NOTIFY, 50), row(2, TOPIC_NOTIFY, 0)]);
        assert_eq!(next_run(&mut due, 10), Next::Wait(Duration::from_millis(40)));
        assert_eq!(due.len(), 2, "nothing overtakes the head");
        let mut due = VecDeque::from([
            row(1, TOPIC_NOTIFY, 0),
            row(2, TOPIC_NOTIFY, 50),
            row(3, TOPIC_NOTIFY, 0),
        ]);
        assert_eq!(ids(next_run(&mut due, 10)), [1]);
    }

    #[test]
    fn outcomes_become_deletes_retries_with_their_backoff_and_dead_rows() {
        let outcomes = vec![
            (row(1, TOPIC_NOTIFY, 0), Handover::Delivered),
            (row(2, TOPIC_NOTIFY, 0), Handover::Retry("down".to_owned())),
            (row(3, TOPIC_NOTIFY, 0), Handover::Refused("bad".to_owned())),
            (row(4, TOPIC_NOTIFY, 0), Handover::Retry("down".to_owned())),
        ];
        let writes = plan_writes(outcomes, |attempts| Duration::from_secs(attempts.unsigned_abs().into()));
        assert_eq!(writes.delivered, [1]);
        let retries: Vec<_> = writes
            .retries
            .iter()
            .map(|(row, backoff, _)| (row.id, *backoff))
            .collect();
        assert_eq!(retries, [(2, Duration::from_secs(2)), (4, Duration::from_secs(4))]);
        assert_eq!(writes.retry_after(), Some(Duration::from_secs(2)));
        let refused: Vec<_> = writes
            .refused
            .iter()
            .map(|(row, error)| (row.id, error.as_str()))
            .collect();
        assert_eq!(refused, [(3, "bad")]);
    }

    #[test]
    fn only_deliveries_mean_no_retry() {
        let writes = plan_writes(vec![(row(1, TOPIC_NOTIFY, 0), Handover::Delivered)], |_| Duration::ZERO);
        assert_eq!(writes.retry_after(), None);
    }
}
