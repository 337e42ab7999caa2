//! SQLite's write turn. Every write to one SQLite file from this process goes
//! through one connection of its own ([`Writer`]), behind a queue: queued
//! here, a writer wakes as soon as the one before commits, where SQLite's busy
//! handler would sleep and poll in steps of up to 100 ms (under load those
//! sleeps, not the writes, set the tail latency). One connection, not any of
//! the pool's: SQLite empties a connection's page cache whenever another
//! connection has written, so writes spread over the pool each began by
//! reading their pages back in. The WAL is checkpointed in the background.
//! Nothing here runs, or is constructed, on PostgreSQL.

use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError},
    time::Duration,
};

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};
use tokio::sync::OwnedMutexGuard;

/// How long a SQLite statement waits for another process's write lock.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// WAL pages past which a commit checkpoints, when [`checkpoint_wal`] has not.
pub(crate) const WAL_BACKSTOP_PAGES: &str = "20000";
/// How often the WAL is checkpointed while it grows, and looked at while it does not.
const CHECKPOINT_BUSY: Duration = Duration::from_millis(50);
const CHECKPOINT_IDLE: Duration = Duration::from_millis(500);

/// The connection that makes every write to one SQLite file, shared by the
/// pools opened on the file in this process (two replicas of a service in
/// one test process, say), and closed with the last of them.
#[derive(Clone)]
pub(crate) struct Writer(Arc<tokio::sync::Mutex<DatabaseConnection>>);

/// A write transaction and the turn it holds until it ends.
pub(crate) struct InTurn {
    pub txn: DatabaseTransaction,
    /// Held until the transaction ends.
    pub turn: OwnedMutexGuard<DatabaseConnection>,
}

impl Writer {
    /// The writer of `pool`'s file, opened with `options` unless another
    /// pool on the file has one open; starts the WAL checkpoints for `pool`.
    pub(crate) async fn open(pool: &DatabaseConnection, options: ConnectOptions) -> Result<Self, DbErr> {
        let connection = Database::connect(options).await?;
        let (writer, unneeded) = FileWriter::share(pool, connection);
        if let Some(unneeded) = unneeded {
            unneeded.close().await.ok();
        }
        tokio::spawn(checkpoint_wal(pool.clone()));
        Ok(writer)
    }

    /// Waits at most `turn_timeout` for the turn (bounded, so that while the
    /// database is locked from outside, writers queued behind the first fail
    /// fast instead of each waiting out the busy timeouts of everyone ahead
    /// of them), then takes the write lock at `BEGIN IMMEDIATE`, so a writer
    /// never fails upgrading a read lock.
    pub(crate) async fn begin(&self, turn_timeout: Duration) -> Result<InTurn, DbErr> {
        let turn = tokio::time::timeout(turn_timeout, Arc::clone(&self.0).lock_owned())
            .await
            .map_err(|_| DbErr::ConnectionAcquire(sea_orm::error::ConnAcquireErr::Timeout))?;
        let txn = turn
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..TransactionOptions::default()
            })
            .await?;
        Ok(InTurn { txn, turn })
    }
}

/// Closes `pool`, and the file's writer once no other pool needs it, having
/// checkpointed the whole WAL into the database file: a stopped service
/// leaves every commit in the `.db` file itself.
pub(crate) async fn close(pool: &DatabaseConnection) {
    pool.close_by_ref().await.ok();
    FileWriter::let_go(pool).await;
}

/// Copies a SQLite database's WAL back into the database file in the
/// background until the pool is closed, then lets go of the file's writer
/// ([`Writer`]), for a pool closed without [`close`]. It is a PASSIVE
/// checkpoint: writers and readers go on meanwhile. SQLite's own checkpoint
/// runs inside the commit that takes the WAL past 1,000 pages, while that
/// writer holds the write lock and the others wait for it, and one bulk
/// `AssignLicenses` writes most of those pages by itself.
async fn checkpoint_wal(db: DatabaseConnection) {
    let mut last_size = None;
    let closed = db.get_sqlite_connection_pool().close_event();
    tokio::pin!(closed);
    loop {
        let pause = match wal_checkpoint(&db, "PASSIVE").await {
            Ok(checkpoint) => {
                let growing = checkpoint.wal_pages != last_size;
                last_size = checkpoint.wal_pages;
                if growing { CHECKPOINT_BUSY } else { CHECKPOINT_IDLE }
            }
            Err(_) if db.get_sqlite_connection_pool().is_closed() => break,
            Err(error) => {
                tracing::warn!(%error, "cannot checkpoint the SQLite WAL; will retry");
                CHECKPOINT_IDLE
            }
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = &mut closed => break,
        }
    }
    FileWriter::let_go(&db).await;
}

/// What `PRAGMA wal_checkpoint` reports.
struct Checkpoint {
    /// A reader or writer kept it from finishing.
    busy: bool,
    wal_pages: Option<i64>,
}

async fn wal_checkpoint(db: &DatabaseConnection, mode: &str) -> Result<Checkpoint, DbErr> {
    let pragma = Statement::from_string(DatabaseBackend::Sqlite, format!("PRAGMA wal_checkpoint({mode})"));
    // The row is (busy, pages in the WAL, pages checkpointed).
    let row = db.query_one_raw(pragma).await?;
    let column = |index| row.as_ref().and_then(|row| row.try_get_by_index::<i64>(index).ok());
    Ok(Checkpoint {
        busy: column(0) != Some(0),
        wal_pages: column(1),
    })
}

/// The writer of one file and the open pools it writes for.
struct FileWriter {
    connection: Arc<tokio::sync::Mutex<DatabaseConnection>>,
    /// The open pools it writes for ([`pool_id`]); none while it closes.
    pools: HashSet<usize>,
}

impl FileWriter {
    fn registry() -> MutexGuard<'static, HashMap<PathBuf, FileWriter>> {
        static WRITERS: OnceLock<Mutex<HashMap<PathBuf, FileWriter>>> = OnceLock::new();
        WRITERS
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes `connection` the writer of `db`'s file, or adds `db` to the
    /// file's open writer and hands `connection` back, unneeded.
    fn share(db: &DatabaseConnection, connection: DatabaseConnection) -> (Writer, Option<DatabaseConnection>) {
        let mut writers = Self::registry();
        let file = sqlite_file(db);
        if let Some(writer) = writers.get_mut(&file).filter(|writer| !writer.pools.is_empty()) {
            writer.pools.insert(pool_id(db));
            return (Writer(Arc::clone(&writer.connection)), Some(connection));
        }
        let connection = Arc::new(tokio::sync::Mutex::new(connection));
        let pools = HashSet::from([pool_id(db)]);
        writers.insert(
            file,
            FileWriter {
                connection: Arc::clone(&connection),
                pools,
            },
        );
        (Writer(connection), None)
    }

    /// `db` (closed) needs its file's writer no more: the last pool to let go
    /// closes it. Returns once the writer is closed, unless another pool still
    /// uses it. Letting go twice is harmless.
    async fn let_go(db: &DatabaseConnection) {
        let file = sqlite_file(db);
        let closing = {
            let mut writers = Self::registry();
            let Some(writer) = writers.get_mut(&file) else { return };
            let was_ours = writer.pools.remove(&pool_id(db));
            if !writer.pools.is_empty() {
                return;
            }
            // None left: closed by us if we were the last, else by whoever was.
            was_ours.then(|| Arc::clone(&writer.connection))
        };
        match closing {
            Some(connection) => {
                // Holding the turn, so no writer still queued for it can
                // begin a transaction between the checkpoint and the close.
                let writer = connection.lock().await;
                checkpoint_completely(&writer).await;
                writer.clone().close().await.ok();
                Self::registry().retain(|_, writer| !Arc::ptr_eq(&writer.connection, &connection));
            }
            // Another caller is closing it: wait for that to finish, which
            // may take its checkpoint a busy timeout.
            None => {
                let deadline = tokio::time::Instant::now() + BUSY_TIMEOUT + Duration::from_secs(1);
                while Self::registry()
                    .get(&file)
                    .is_some_and(|writer| writer.pools.is_empty())
                    && tokio::time::Instant::now() < deadline
                {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
    }
}

/// Copies the whole WAL into the database file and empties it, before the
/// writer (the last of a service's connections) closes. Closing does that only
/// if no other connection to the file is open at that instant (the pool's may
/// still be closing, or someone has `sqlite3` open on the file); else the
/// commits stay in the WAL beside the file, missing from a copy of the `.db`
/// alone.
async fn checkpoint_completely(writer: &DatabaseConnection) {
    match wal_checkpoint(writer, "TRUNCATE").await {
        Ok(checkpoint) if !checkpoint.busy => {}
        Ok(_) => tracing::warn!("a reader kept the SQLite WAL from being checkpointed before closing"),
        Err(error) => tracing::warn!(%error, "cannot checkpoint the SQLite WAL before closing"),
    }
}

/// Tells one SQLite pool from another: each holds its own connect options.
fn pool_id(db: &DatabaseConnection) -> usize {
    Arc::as_ptr(&db.get_sqlite_connection_pool().connect_options()) as usize
}

fn sqlite_file(db: &DatabaseConnection) -> PathBuf {
    db.get_sqlite_connection_pool()
        .connect_options()
        .get_filename()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use sea_orm::{ConnectionTrait, Statement, TransactionTrait};

    use super::*;
    use crate::Store;

    /// A directory of its own for a test's SQLite file.
    fn scratch_dir(test: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "dialin-{test}-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ))
    }

    fn url(file: &Path) -> String {
        format!("sqlite://{}?mode=rwc", file.display())
    }

    /// Runs `sql` in a write transaction of its own.
    async fn write(store: &Store, sql: &str) {
        store
            .write(async |txn| txn.execute_unprepared(sql).await.map(drop))
            .await
            .unwrap();
    }

    /// Waits (10 s at most) until `file`'s writer serves `pools` pools (0: none is left).
    async fn until_writer_serves(file: &Path, pools: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let serves = || FileWriter::registry().get(file).map_or(0, |writer| writer.pools.len());
        while serves() != pools && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(serves(), pools, "pools the writer of {} serves", file.display());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_write_goes_through_one_connection() {
        let dir = scratch_dir("writer");
        let db = Store::connect(&url(&dir.join("one.db"))).await.unwrap();
        db.reader()
            .execute_unprepared("CREATE TABLE numbers (n INTEGER)")
            .await
            .unwrap();
        // A connection's data_version changes whenever another one has committed.
        let data_version = Statement::from_string(DatabaseBackend::Sqlite, "PRAGMA data_version");
        let mut seen = HashSet::new();
        for n in 0..20 {
            // A reader holding one of the pool's connections meanwhile, as under load.
            let reader = db.reader().begin().await.unwrap();
            reader.query_one_raw(data_version.clone()).await.unwrap();
            let version = db
                .write(async |txn| {
                    let row = txn.query_one_raw(data_version.clone()).await?;
                    txn.execute_raw(db.statement("INSERT INTO numbers (n) VALUES ($1)", [n.into()]))
                        .await?;
                    Ok::<_, DbErr>(row.and_then(|row| row.try_get_by_index::<i64>(0).ok()))
                })
                .await
                .unwrap();
            seen.insert(version);
            reader.commit().await.unwrap();
        }
        db.reader().close_by_ref().await.unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(seen.len(), 1, "data versions seen by the writes: {seen:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pool_keeps_the_writer_while_another_on_the_same_file_closes() {
        let dir = scratch_dir("writers");
        let file = dir.join("shared.db");
        let first = Store::connect(&url(&file)).await.unwrap();
        let second = Store::connect(&url(&file)).await.unwrap();
        first
            .reader()
            .execute_unprepared("CREATE TABLE numbers (n INTEGER)")
            .await
            .unwrap();
        until_writer_serves(&file, 2).await;

        first.reader().close_by_ref().await.unwrap();
        until_writer_serves(&file, 1).await;
        write(&second, "INSERT INTO numbers (n) VALUES (1)").await;

        second.close().await;
        assert!(
            !FileWriter::registry().contains_key(&file),
            "the writer outlived the last pool"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_closed_service_leaves_every_commit_in_the_database_file() {
        use sea_orm::sqlx::{Connection, sqlite::SqliteConnection};
        let dir = scratch_dir("close");
        let file = dir.join("whole.db");
        let db = Store::connect(&url(&file)).await.unwrap();
        write(&db, "CREATE TABLE numbers (n INTEGER)").await;
        // Someone else's connection open on the file (a `sqlite3` shell, or
        // the pool's last one still closing): SQLite's own checkpoint at
        // close is skipped while any other connection is open.
        let mut onlooker = SqliteConnection::connect(&url(&file)).await.unwrap();
        let count = "SELECT count(*) FROM numbers";
        sea_orm::sqlx::query(count).execute(&mut onlooker).await.unwrap();
        write(&db, "INSERT INTO numbers (n) VALUES (1), (2)").await;
        db.close().await;

        // A copy of the `.db` file alone, as a backup would take.
        let copy = dir.join("copy.db");
        std::fs::copy(&file, &copy).unwrap();
        let mut copied = SqliteConnection::connect(&url(&copy)).await.unwrap();
        let rows: Result<i64, _> = sea_orm::sqlx::query_scalar(count).fetch_one(&mut copied).await;
        copied.close().await.unwrap();
        onlooker.close().await.unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(rows.ok(), Some(2), "rows in a copy of the database file after close");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_reaches_the_database_file_without_a_commit_checkpointing() {
        let dir = scratch_dir("wal");
        let file = dir.join("wal.db");
        let db = Store::connect(&url(&file)).await.unwrap();
        // ~4 MB, about 1,000 pages: SQLite alone would leave them in the WAL
        // until the backstop (20,000 pages).
        db.reader()
            .execute_unprepared(
                "CREATE TABLE pages (content BLOB);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
             INSERT INTO pages SELECT randomblob(4000) FROM n;",
            )
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let size = || std::fs::metadata(&file).map_or(0, |metadata| metadata.len());
        while size() < 4_000_000 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let checkpointed = size();
        db.reader().close_by_ref().await.unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            checkpointed >= 4_000_000,
            "the database file holds {checkpointed} bytes after 10 s"
        );
    }
}
