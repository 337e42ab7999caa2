//! The connections this replica may send on at once: as many as the
//! connection leases it holds (`beat.rs`). Fewer at once when idle ones can
//! go, else as sends end: a send that ends while there are too many does not
//! hand its connection on.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub(super) struct Connections {
    permits: Arc<Semaphore>,
    count: Mutex<Count>,
}

#[derive(Default)]
struct Count {
    /// Connections this replica may use (idle or sending).
    in_force: usize,
    /// Of those, how many go once their sends end.
    excess: usize,
}

/// One connection, held for one send.
pub struct InUse {
    permit: Option<OwnedSemaphorePermit>,
    connections: Arc<Connections>,
}

impl Connections {
    /// None until the first beat has leased some.
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self {
            permits: Arc::new(Semaphore::new(0)),
            count: Mutex::new(Count::default()),
        })
    }

    fn count(&self) -> MutexGuard<'_, Count> {
        super::locked(&self.count)
    }

    /// Comes to `target` connections: more at once; fewer at once as far as
    /// idle ones go, the rest as their sends end. Returns how many are in
    /// force now.
    pub(super) fn use_at_most(&self, target: usize) -> usize {
        let mut count = self.count();
        if target >= count.in_force {
            self.permits.add_permits(target - count.in_force);
            *count = Count {
                in_force: target,
                excess: 0,
            };
        } else {
            while count.in_force > target {
                match self.permits.try_acquire() {
                    Ok(idle) => {
                        idle.forget();
                        count.in_force -= 1;
                    }
                    Err(_) => break,
                }
            }
            count.excess = count.in_force - target;
        }
        count.in_force
    }

    /// Waits for a connection.
    pub(super) async fn take(self: &Arc<Self>) -> Option<InUse> {
        let permit = Arc::clone(&self.permits).acquire_owned().await.ok()?;
        Some(InUse {
            permit: Some(permit),
            connections: Arc::clone(self),
        })
    }

    /// Connections this replica may use that no send holds now.
    pub(super) fn spare(&self) -> usize {
        self.permits.available_permits()
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        let mut count = self.connections.count();
        if count.excess > 0
            && let Some(permit) = self.permit.take()
        {
            permit.forget();
            count.excess -= 1;
            count.in_force -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_connections_go_at_once_and_busy_ones_when_their_sends_end() {
        let connections = Connections::new();
        assert_eq!(connections.use_at_most(3), 3);
        let (first, second) = (connections.take().await.unwrap(), connections.take().await.unwrap());
        // One idle: it goes now; of the two sending, one goes when its send ends.
        assert_eq!(connections.use_at_most(1), 2);
        drop(first);
        assert_eq!(connections.count().in_force, 1);
        assert_eq!(connections.permits.available_permits(), 0);
        // The last one goes back for the next send.
        drop(second);
        assert_eq!(connections.permits.available_permits(), 1);
        assert_eq!(connections.use_at_most(1), 1);
    }

    #[tokio::test]
    async fn more_connections_cancel_what_was_to_go() {
        let connections = Connections::new();
        connections.use_at_most(2);
        let busy = connections.take().await.unwrap();
        let _other = connections.take().await.unwrap();
        assert_eq!(connections.use_at_most(0), 2);
        assert_eq!(connections.use_at_most(2), 2);
        drop(busy);
        assert_eq!(connections.permits.available_permits(), 1);
    }
}
