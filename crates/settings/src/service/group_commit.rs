//! Group commit for the calls that make one small change each (`ResetPin`,
//! `AssignLicense`). With one transaction per call, such calls would be
//! held to what a transaction costs: on SQLite each would wait its turn for the
//! single writer; on PostgreSQL each would wait for the one before on the
//! tenant's row lock, then for its own WAL flush. Instead calls queue to one
//! task per kind of call; it takes every call waiting whenever it is free (up to [`MAX_GROUP`]), makes
//! their changes in as few transactions as the work allows, and answers each
//! caller once its change is committed.
//!
//! A call that waited for a group longer than a writer waits for its turn
//! ([`dialin_store::waited_too_long`]) is answered UNAVAILABLE unmade, as that
//! writer would be: while the database is locked or unreachable, calls fail
//! fast instead of each waiting out the timeouts of every group ahead of it.
//!
//! A call's own problem (no such user, say) fails only that call; a
//! transaction that fails fails the calls it held, and nothing of it is
//! written. Two calls about one user never share a group: the second waits for
//! the next, so it sees the first, as it would have one transaction after the
//! other.

use std::{collections::HashSet, future::Future, sync::Arc};

use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};
use tonic::Status;

use crate::error::{self, Error, Reason, Result};

/// Most calls in one group.
const MAX_GROUP: usize = 256;
/// Calls that may wait for a group; beyond it callers wait to queue.
const QUEUE: usize = 4096;

/// The changes of a group of calls.
pub(super) trait GroupWork: Send + Sync + 'static {
    type Request: Send + 'static;
    type Answer: Send + 'static;

    /// The (tenant, user) a call changes: calls with the same never share a group.
    fn user(request: &Self::Request) -> (&str, &str);

    /// Makes the changes of `requests` (no two about one user); an answer per
    /// request, in order. An error fails every request of the group. The
    /// oldest call has waited for its turn to write since `queued_since`
    /// (`Store::write_queued_since`).
    fn apply(
        &self,
        requests: Vec<&Self::Request>,
        queued_since: Instant,
    ) -> impl Future<Output = Result<Vec<Result<Self::Answer, Status>>>> + Send;
}

/// The queue of one kind of call. Cheap to clone; the task that serves it ends
/// once every clone is gone.
pub(super) struct Groups<W: GroupWork> {
    queue: mpsc::Sender<Queued<W>>,
    /// The work, shared with the task, for callers that make a change of their
    /// own with it (`AssignLicenses` with the licensing work).
    work: Arc<W>,
}

impl<W: GroupWork> Clone for Groups<W> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
            work: Arc::clone(&self.work),
        }
    }
}

struct Queued<W: GroupWork> {
    request: W::Request,
    queued_at: Instant,
    answer: oneshot::Sender<Result<W::Answer, Status>>,
}

impl<W: GroupWork> Groups<W> {
    pub(super) fn start(work: W) -> Self {
        let (queue, waiting) = mpsc::channel(QUEUE);
        let work = Arc::new(work);
        tokio::spawn(serve(Arc::clone(&work), waiting));
        Self { queue, work }
    }

    pub(super) fn work(&self) -> &W {
        &self.work
    }

    /// Queues `request` for the next group and waits for its answer. The change
    /// is made whether or not the caller is still waiting.
    pub(super) async fn call(&self, request: W::Request) -> Result<W::Answer, Status> {
        let (answer, answered) = oneshot::channel();
        self.queue
            .send(Queued {
                request,
                queued_at: Instant::now(),
                answer,
            })
            .await
            .map_err(|_| {
                Status::from(Error::unavailable(
                    Reason::ShuttingDown,
                    "the service is shutting down; retry on another replica",
                ))
            })?;
        answered
            .await
            .map_err(|_| error::internal("the call failed inside the service; its log has the details"))?
    }
}

async fn serve<W: GroupWork>(work: Arc<W>, mut waiting: mpsc::Receiver<Queued<W>>) {
    // Calls whose user was already in the group before.
    let mut held: Vec<Queued<W>> = Vec::new();
    loop {
        let mut group = std::mem::take(&mut held);
        if group.is_empty() {
            if waiting.recv_many(&mut group, MAX_GROUP).await == 0 {
                return;
            }
        } else {
            while group.len() < MAX_GROUP {
                match waiting.try_recv() {
                    Ok(call) => group.push(call),
                    Err(_) => break,
                }
            }
        }
        let (group, expired): (Vec<Queued<W>>, Vec<Queued<W>>) = group
            .into_iter()
            .partition(|call| !dialin_store::waited_too_long(call.queued_at));
        for call in expired {
            drop(call.answer.send(Err(Status::from(Error::unavailable(
                Reason::DatabaseUnavailable,
                "the database is busy or unreachable: this call waited too long for its turn and was not made; retry",
            )))));
        }
        let mut users = HashSet::new();
        let (group, later): (Vec<Queued<W>>, Vec<Queued<W>>) = group.into_iter().partition(|call| {
            let (tenant_id, user_id) = W::user(&call.request);
            users.insert((tenant_id.to_owned(), user_id.to_owned()))
        });
        held = later;
        if !group.is_empty() {
            answer(work.as_ref(), group).await;
        }
    }
}

async fn answer<W: GroupWork>(work: &W, group: Vec<Queued<W>>) {
    let queued_since = group
        .iter()
        .map(|call| call.queued_at)
        .min()
        .unwrap_or_else(Instant::now);
    let (requests, answers): (Vec<W::Request>, Vec<_>) =
        group.into_iter().map(|call| (call.request, call.answer)).unzip();
    match work.apply(requests.iter().collect(), queued_since).await {
        Ok(outcomes) => {
            for (answer, outcome) in answers.into_iter().zip(outcomes) {
                // A caller that went away has no one to answer; its change stands.
                drop(answer.send(outcome));
            }
        }
        Err(error) => {
            let status = Status::from(error);
            for answer in answers {
                drop(answer.send(Err(status.clone())));
            }
        }
    }
}
