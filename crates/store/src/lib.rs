//! The one way to a dialin database. [`Store::connect`] opens SQLite (a
//! laptop) or PostgreSQL (production); [`Store::write`] is the only way to a
//! write transaction, and takes SQLite's write turn itself, so no caller can
//! forget it. SQL that differs between the two databases lives in [`sql`].

mod connect;
mod errors;
pub mod schema;
pub mod sql;
mod sqlite;

use std::time::Duration;

pub use connect::{ConnectError, sqlite_path};
pub use errors::{is_unavailable, is_unique_violation};
use sea_orm::{DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr, Statement, TransactionTrait, Value};
use tokio::time::Instant;

/// Longest a writer waits for its turn: half SQLite's busy timeout, so a call
/// waits at most one and a half busy timeouts before the database is called
/// unavailable.
const WRITE_TURN_TIMEOUT: Duration = Duration::from_millis(2_500);

/// A service's database: a pool for reads and, on SQLite, the file's writer.
/// Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: DatabaseConnection,
    /// SQLite's write turn; `None` on PostgreSQL, whose writers lock rows.
    writer: Option<sqlite::Writer>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

impl Store {
    pub async fn connect(url: &str) -> Result<Self, ConnectError> {
        Ok(match connect::connect(url).await? {
            connect::Connected::Sqlite { pool, writer } => Self {
                pool,
                writer: Some(writer),
            },
            connect::Connected::Postgres(pool) => Self { pool, writer: None },
        })
    }

    /// The pool, for reads (and schema checks). Write through [`Store::write`].
    pub fn reader(&self) -> &DatabaseConnection {
        &self.pool
    }

    pub fn backend(&self) -> DatabaseBackend {
        self.pool.get_database_backend()
    }

    /// A statement written for PostgreSQL ([`sql::dialect`]), for this database.
    pub fn statement(&self, sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
        let backend = self.backend();
        Statement::from_sql_and_values(backend, sql::dialect(backend, sql), values)
    }

    /// Runs `work` in a write transaction: committed when it returns `Ok`,
    /// rolled back when it returns `Err`. On SQLite the writers of one file
    /// take turns, waiting at most [`WRITE_TURN_TIMEOUT`] (then UNAVAILABLE).
    pub async fn write<T, E>(&self, work: impl AsyncFnOnce(&DatabaseTransaction) -> Result<T, E>) -> Result<T, E>
    where
        E: From<DbErr>,
    {
        self.write_queued_since(Instant::now(), work).await
    }

    /// [`Store::write`] for work that has been queued since `since` (a
    /// group of calls): it waits for its turn only what is left of
    /// [`WRITE_TURN_TIMEOUT`].
    pub async fn write_queued_since<T, E>(
        &self,
        since: Instant,
        work: impl AsyncFnOnce(&DatabaseTransaction) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<DbErr>,
    {
        // PostgreSQL has no write turn: its writers lock rows (`SELECT … FOR UPDATE`).
        let (txn, _turn) = match &self.writer {
            Some(writer) => {
                let in_turn = writer.begin(WRITE_TURN_TIMEOUT.saturating_sub(since.elapsed())).await?;
                (in_turn.txn, Some(in_turn.turn))
            }
            None => (self.pool.begin().await?, None),
        };
        match work(&txn).await {
            Ok(value) => {
                txn.commit().await?;
                Ok(value)
            }
            Err(error) => {
                txn.rollback().await.ok();
                Err(error)
            }
        }
    }

    /// Closes the pool; on SQLite also the file's writer, once no other pool
    /// needs it, having checkpointed the whole WAL into the database file.
    pub async fn close(&self) {
        match self.writer {
            Some(_) => sqlite::close(&self.pool).await,
            None => {
                self.pool.close_by_ref().await.ok();
            }
        }
    }
}

/// Whether work queued at `since` has waited longer than a writer waits for
/// its turn, and should be answered UNAVAILABLE unmade, as that writer would be.
pub fn waited_too_long(since: Instant) -> bool {
    since.elapsed() > WRITE_TURN_TIMEOUT
}
