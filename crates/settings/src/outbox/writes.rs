//! The dispatcher's outcome writes, off its path.

use std::{sync::Arc, time::Duration};

use tokio::task::JoinHandle;

use super::{Dispatcher, Handover, NOTIFY_BATCH};
use crate::entity::outbox;

/// The dispatcher's outcome writes, one at a time in a task of their own, so
/// that it hands over the next runs while a write waits for its turn (on SQLite
/// behind the admins' transactions, longer than handing over the next run
/// takes). What is handed over meanwhile waits, and goes with the next write.
#[derive(Default)]
pub(super) struct HandoverWrites {
    /// A write in flight holds no retry (a retry ends the dispatch, and is
    /// written by `finish`), so it has no backoff to return.
    in_flight: Option<JoinHandle<Result<(), sea_orm::DbErr>>>,
    waiting: Vec<(outbox::Model, Handover)>,
}

/// Outcomes waiting while a write is in flight before the dispatcher waits for
/// it: a bound on the memory they hold.
const MAX_WAITING_OUTCOMES: usize = 4 * NOTIFY_BATCH;

impl HandoverWrites {
    pub(super) fn add(&mut self, outcomes: Vec<(outbox::Model, Handover)>) {
        self.waiting.extend(outcomes);
    }

    /// Starts writing what waits, unless a write is in flight (then it waits
    /// for that write only once too much is waiting).
    pub(super) async fn start(&mut self, dispatcher: &Arc<Dispatcher>) -> Result<(), sea_orm::DbErr> {
        let writing = self.in_flight.as_ref().is_some_and(|write| !write.is_finished());
        if self.waiting.is_empty() || (writing && self.waiting.len() < MAX_WAITING_OUTCOMES) {
            return Ok(());
        }
        self.landed().await?;
        let (dispatcher, outcomes) = (Arc::clone(dispatcher), std::mem::take(&mut self.waiting));
        self.in_flight = Some(tokio::spawn(async move {
            dispatcher.record_handovers(outcomes).await.map(drop)
        }));
        Ok(())
    }

    /// Writes everything handed over; returns the backoff to wait when some
    /// must be tried again.
    pub(super) async fn finish(&mut self, dispatcher: &Dispatcher) -> Result<Option<Duration>, sea_orm::DbErr> {
        self.landed().await?;
        dispatcher.record_handovers(std::mem::take(&mut self.waiting)).await
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
