//! Database connection for both services: SQLite for a laptop, PostgreSQL in production.

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError},
    time::Duration,
};

use sea_orm::{
    ConnectOptions, Database, DatabaseBackend, DatabaseConnection, DbErr,
    sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous},
};

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("database URL must start with sqlite:// or postgres://, got scheme {0:?}")]
    UnsupportedScheme(String),
    #[error("cannot create the directory {dir} for the SQLite database: {source}")]
    CreateDir { dir: String, source: std::io::Error },
    #[error("cannot connect to the database: {0}")]
    Connect(#[from] DbErr),
}

/// Bind parameter `n` (from 1) as the backend writes it.
pub fn placeholder(backend: DatabaseBackend, n: usize) -> String {
    match backend {
        DatabaseBackend::Postgres => format!("${n}"),
        _ => format!("?{n}"),
    }
}

/// `rows` rows of `columns` bind parameters, for joining against a list:
/// `JOIN (VALUES ($1), ($2)) AS list ON t.c = list.column1`. Both databases
/// answer such a join with one index lookup per row. An `IN (…)` list of the
/// same values PostgreSQL may answer by reading every row of the tenant, when
/// its statistics predate the tenant's growth (a tenant onboarding 100,000
/// users outruns autoanalyze).
///
/// The list is the statement's first parameters, and must come first in its
/// text: number any other parameter from `rows * columns + 1`. On SQLite the
/// list's parameters are anonymous (`?`): SQLite finds a numbered parameter's
/// name by walking a list of all of them, and sqlx asks for every parameter's
/// name, so a list of 2,000 numbered parameters cost millions of steps a
/// statement (the notifier's top symbol in a profile).
pub fn values_rows(backend: DatabaseBackend, rows: usize, columns: usize) -> String {
    let row = |row: usize| -> String {
        let cells: Vec<String> = (0..columns)
            .map(|column| match backend {
                DatabaseBackend::Postgres => placeholder(backend, 1 + row * columns + column),
                _ => "?".to_owned(),
            })
            .collect();
        format!("({})", cells.join(", "))
    };
    (0..rows).map(row).collect::<Vec<_>>().join(", ")
}

/// Whether `url` names a SQLite database (and the file path, when it has one).
pub fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    Some(rest.split('?').next().unwrap_or(rest))
}

/// Connects with settings fit for a service: a bounded pool that fails fast when
/// the database is down, and for SQLite WAL, `synchronous=NORMAL` and a busy timeout
/// (a new SQLite file otherwise commits about 40 times slower).
pub async fn connect(url: &str) -> Result<DatabaseConnection, ConnectError> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .acquire_timeout(Duration::from_secs(3))
        .connect_timeout(Duration::from_secs(3))
        .sqlx_logging(false);
    if let Some(path) = sqlite_path(url) {
        create_parent_dir(path)?;
        // One writer at a time is SQLite's rule (ours is `SqliteWriter`, a
        // connection of its own); a small pool keeps readers concurrent. Each
        // connection keeps its own page cache, which any write through another
        // connection empties: 8 connections held more memory (notifier peak
        // 118 → 86 MB with 4) for no more throughput.
        options.max_connections(4).min_connections(1);
        options.map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                .foreign_keys(true)
                // 8 MiB of pages per connection instead of 2: the hot indexes of a
                // deep backlog stay in memory instead of being copied in from the
                // OS cache on every lookup (a profile showed ~6 % in pread).
                .pragma("cache_size", "-8192")
                // The WAL is checkpointed by `checkpoint_wal`; SQLite's own
                // checkpoint is the backstop should that fall behind.
                .pragma("wal_autocheckpoint", WAL_BACKSTOP_PAGES)
        });
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        options
            .max_connections(16)
            .min_connections(0)
            // A stuck lock or statement becomes an error, never a hung service.
            .statement_timeout(Duration::from_secs(30))
            .map_sqlx_postgres_opts(|opts| opts.options([("lock_timeout", "10s")]));
    } else {
        // Only the scheme: the rest of a URL may hold a password.
        let scheme = url.split("://").next().unwrap_or_default();
        return Err(ConnectError::UnsupportedScheme(scheme.to_owned()));
    }
    let db = Database::connect(options.clone()).await?;
    if db.get_database_backend() == DatabaseBackend::Sqlite {
        let writer = Database::connect(options.max_connections(1).min_connections(1).to_owned()).await?;
        if let Some(unneeded) = SqliteWriter::share(&db, writer) {
            unneeded.close().await.ok();
        }
        tokio::spawn(checkpoint_wal(db.clone()));
    }
    Ok(db)
}

/// WAL pages past which a commit checkpoints, when [`checkpoint_wal`] has not.
const WAL_BACKSTOP_PAGES: &str = "20000";
/// How often the WAL is checkpointed while it grows, and looked at while it does not.
const CHECKPOINT_BUSY: Duration = Duration::from_millis(50);
const CHECKPOINT_IDLE: Duration = Duration::from_millis(500);

/// Copies a SQLite database's WAL back into the database file in the
/// background until the pool is closed, then lets go of the file's writer
/// ([`SqliteWriter`]), for a pool closed without [`close`]. It is a PASSIVE
/// checkpoint: writers and readers go on meanwhile. SQLite's own checkpoint
/// runs inside the commit that takes the WAL past 1,000 pages, while that
/// writer holds the write lock and the others wait for it: a 1,000-user
/// `AssignLicenses` writes some 600 pages, and every other one took 10–17 ms
/// to commit instead of ~3.
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
    SqliteWriter::let_go(&db).await;
}

/// What `PRAGMA wal_checkpoint` reports.
struct Checkpoint {
    /// A reader or writer kept it from finishing.
    busy: bool,
    wal_pages: Option<i64>,
}

async fn wal_checkpoint(db: &DatabaseConnection, mode: &str) -> Result<Checkpoint, DbErr> {
    use sea_orm::{ConnectionTrait, Statement};
    let pragma = Statement::from_string(DatabaseBackend::Sqlite, format!("PRAGMA wal_checkpoint({mode})"));
    // The row is (busy, pages in the WAL, pages checkpointed).
    let row = db.query_one_raw(pragma).await?;
    let column = |index| row.as_ref().and_then(|row| row.try_get_by_index::<i64>(index).ok());
    Ok(Checkpoint {
        busy: column(0) != Some(0),
        wal_pages: column(1),
    })
}

/// Closes `db`. On SQLite also the file's writer, once no other pool needs it,
/// before returning, having checkpointed the whole WAL into the database file:
/// a stopped service leaves every commit in the `.db` file itself.
pub async fn close(db: &DatabaseConnection) {
    db.close_by_ref().await.ok();
    if db.get_database_backend() == DatabaseBackend::Sqlite {
        SqliteWriter::let_go(db).await;
    }
}

fn create_parent_dir(path: &str) -> Result<(), ConnectError> {
    match Path::new(path).parent() {
        Some(dir) if !dir.as_os_str().is_empty() && path != ":memory:" => {
            std::fs::create_dir_all(dir).map_err(|source| ConnectError::CreateDir {
                dir: dir.display().to_string(),
                source,
            })
        }
        _ => Ok(()),
    }
}

/// A transaction that writes: [`begin_write`]. Use it as the transaction it
/// wraps (`&*txn` where a function takes any connection).
pub struct WriteTransaction {
    txn: sea_orm::DatabaseTransaction,
    /// Held until the transaction ends (SQLite only).
    _turn: Option<tokio::sync::OwnedMutexGuard<DatabaseConnection>>,
}

impl std::ops::Deref for WriteTransaction {
    type Target = sea_orm::DatabaseTransaction;

    fn deref(&self) -> &Self::Target {
        &self.txn
    }
}

impl WriteTransaction {
    pub async fn commit(self) -> Result<(), DbErr> {
        self.txn.commit().await
    }

    pub async fn rollback(self) -> Result<(), DbErr> {
        self.txn.rollback().await
    }
}

/// Starts a transaction that will write. On SQLite, the writers of one
/// database file first take turns in this process for its one writing
/// connection, then take the write lock at `BEGIN IMMEDIATE` (so a writer never
/// fails upgrading a read lock): queued here, a writer wakes as soon as the one
/// before commits, where SQLite's busy handler would sleep and poll in steps of
/// up to 100 ms — under load those sleeps, not the writes, set the tail
/// latency. PostgreSQL ignores the mode (rows are locked with
/// `SELECT … FOR UPDATE` there).
pub async fn begin_write(db: &DatabaseConnection) -> Result<WriteTransaction, DbErr> {
    begin_write_within(db, WRITE_TURN_TIMEOUT).await
}

/// [`begin_write`] for a writer that has already waited for part of its turn
/// elsewhere: it waits at most `turn_timeout` more.
pub async fn begin_write_within(db: &DatabaseConnection, turn_timeout: Duration) -> Result<WriteTransaction, DbErr> {
    use sea_orm::{SqliteTransactionMode, TransactionOptions, TransactionTrait};
    let turn = match SqliteWriter::of(db)? {
        // Bounded, so that while the database is locked from outside, callers
        // queued behind the first fail fast (UNAVAILABLE) instead of each
        // waiting out the busy timeouts of everyone ahead of them.
        Some(writer) => Some(
            tokio::time::timeout(turn_timeout, writer.lock_owned())
                .await
                .map_err(|_| DbErr::ConnectionAcquire(sea_orm::error::ConnAcquireErr::Timeout))?,
        ),
        None => None,
    };
    let txn = turn
        .as_deref()
        .unwrap_or(db)
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        })
        .await?;
    Ok(WriteTransaction { txn, _turn: turn })
}

/// How long a SQLite statement waits for another writer's lock.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest a writer waits for its turn: half the busy timeout, so a call waits
/// at most one and a half busy timeouts before the database is called unavailable.
pub const WRITE_TURN_TIMEOUT: Duration = Duration::from_millis(2_500);

/// The connection that makes every write to one SQLite file from this
/// process, behind the queue of writers waiting for it; shared by the pools
/// [`connect`] opened on the file. One connection, not any of the pool's:
/// SQLite empties a connection's page cache whenever another connection has
/// written, so writes spread over the pool each began by reading their pages
/// back in (a 20-user `ResetPin` group held the write lock half as long with
/// one writer).
struct SqliteWriter {
    connection: Arc<tokio::sync::Mutex<DatabaseConnection>>,
    /// The open pools it writes for ([`pool_id`]); none while it closes.
    pools: HashSet<usize>,
}

impl SqliteWriter {
    fn registry() -> MutexGuard<'static, HashMap<PathBuf, SqliteWriter>> {
        static WRITERS: OnceLock<Mutex<HashMap<PathBuf, SqliteWriter>>> = OnceLock::new();
        WRITERS
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes `connection` the writer of `db`'s file, or adds `db` to the
    /// file's open writer and hands `connection` back.
    fn share(db: &DatabaseConnection, connection: DatabaseConnection) -> Option<DatabaseConnection> {
        let mut writers = Self::registry();
        let file = sqlite_file(db);
        if let Some(writer) = writers.get_mut(&file).filter(|writer| !writer.pools.is_empty()) {
            writer.pools.insert(pool_id(db));
            return Some(connection);
        }
        let connection = Arc::new(tokio::sync::Mutex::new(connection));
        let pools = HashSet::from([pool_id(db)]);
        writers.insert(file, SqliteWriter { connection, pools });
        None
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
                let deadline = tokio::time::Instant::now() + SQLITE_BUSY_TIMEOUT + Duration::from_secs(1);
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

    /// The writer of `db`'s file; `None` for PostgreSQL. A file that no open
    /// pool of [`connect`]'s is on has none: an error like a closed pool's.
    fn of(db: &DatabaseConnection) -> Result<Option<Arc<tokio::sync::Mutex<DatabaseConnection>>>, DbErr> {
        if db.get_database_backend() != DatabaseBackend::Sqlite {
            return Ok(None);
        }
        Self::registry()
            .get(&sqlite_file(db))
            .filter(|writer| !writer.pools.is_empty())
            .map(|writer| Some(Arc::clone(&writer.connection)))
            .ok_or(DbErr::ConnectionAcquire(
                sea_orm::error::ConnAcquireErr::ConnectionClosed,
            ))
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

/// Whether a database error means the database could not be reached (so the
/// caller should hear UNAVAILABLE and may retry) rather than a fault of ours:
/// no connection to be had, a connection that broke, a server shutting down
/// (SQLSTATE class 57) or refusing connections (class 08), or SQLite busy.
pub fn is_unavailable(error: &DbErr) -> bool {
    use sea_orm::{RuntimeErr, sqlx::Error as SqlxError};
    let runtime = match error {
        DbErr::ConnectionAcquire(_) => return true,
        DbErr::Conn(runtime) | DbErr::Exec(runtime) | DbErr::Query(runtime) => runtime,
        _ => return false,
    };
    let RuntimeErr::SqlxError(sqlx) = runtime else {
        return matches!(error, DbErr::Conn(_));
    };
    match sqlx.as_ref() {
        SqlxError::Io(_)
        | SqlxError::Tls(_)
        | SqlxError::PoolTimedOut
        | SqlxError::PoolClosed
        | SqlxError::WorkerCrashed => true,
        SqlxError::Protocol(_) => true,
        SqlxError::Database(database) => {
            let code = database.code().unwrap_or_default();
            code.starts_with("57") || code.starts_with("08") || database.message().contains("database is locked")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, Statement, TransactionTrait};

    use super::*;

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
    async fn write(db: &DatabaseConnection, sql: &str) {
        let txn = begin_write(db).await.unwrap();
        txn.execute_unprepared(sql).await.unwrap();
        txn.commit().await.unwrap();
    }

    /// Waits (10 s at most) until `file`'s writer serves `pools` pools (0: none is left).
    async fn until_writer_serves(file: &Path, pools: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let serves = || {
            SqliteWriter::registry()
                .get(file)
                .map_or(0, |writer| writer.pools.len())
        };
        while serves() != pools && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(serves(), pools, "pools the writer of {} serves", file.display());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_write_goes_through_one_connection() {
        let dir = scratch_dir("writer");
        let db = connect(&url(&dir.join("one.db"))).await.unwrap();
        db.execute_unprepared("CREATE TABLE numbers (n INTEGER)").await.unwrap();
        // A connection's data_version changes whenever another one has committed.
        let data_version = Statement::from_string(DatabaseBackend::Sqlite, "PRAGMA data_version");
        let mut seen = HashSet::new();
        for n in 0..20 {
            // A reader holding one of the pool's connections meanwhile, as under load.
            let reader = db.begin().await.unwrap();
            reader.query_one_raw(data_version.clone()).await.unwrap();
            let txn = begin_write(&db).await.unwrap();
            let row = txn.query_one_raw(data_version.clone()).await.unwrap().unwrap();
            seen.insert(row.try_get_by_index::<i64>(0).unwrap());
            txn.execute_raw(Statement::from_sql_and_values(
                DatabaseBackend::Sqlite,
                "INSERT INTO numbers (n) VALUES (?)",
                [n.into()],
            ))
            .await
            .unwrap();
            txn.commit().await.unwrap();
            reader.commit().await.unwrap();
        }
        db.close().await.unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(seen.len(), 1, "data versions seen by the writes: {seen:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pool_keeps_the_writer_while_another_on_the_same_file_closes() {
        let dir = scratch_dir("writers");
        let file = dir.join("shared.db");
        let first = connect(&url(&file)).await.unwrap();
        let second = connect(&url(&file)).await.unwrap();
        first
            .execute_unprepared("CREATE TABLE numbers (n INTEGER)")
            .await
            .unwrap();
        until_writer_serves(&file, 2).await;

        first.close().await.unwrap();
        until_writer_serves(&file, 1).await;
        write(&second, "INSERT INTO numbers (n) VALUES (1)").await;

        close(&second).await;
        assert!(
            !SqliteWriter::registry().contains_key(&file),
            "the writer outlived the last pool"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_closed_service_leaves_every_commit_in_the_database_file() {
        use sea_orm::sqlx::{Connection, sqlite::SqliteConnection};
        let dir = scratch_dir("close");
        let file = dir.join("whole.db");
        let db = connect(&url(&file)).await.unwrap();
        write(&db, "CREATE TABLE numbers (n INTEGER)").await;
        // Someone else's connection open on the file (a `sqlite3` shell, or
        // the pool's last one still closing): SQLite's own checkpoint at
        // close is skipped while any other connection is open.
        let mut onlooker = SqliteConnection::connect(&url(&file)).await.unwrap();
        let count = "SELECT count(*) FROM numbers";
        sea_orm::sqlx::query(count).execute(&mut onlooker).await.unwrap();
        write(&db, "INSERT INTO numbers (n) VALUES (1), (2)").await;
        close(&db).await;

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
        let db = connect(&url(&file)).await.unwrap();
        // ~4 MB, about 1,000 pages: SQLite alone would leave them in the WAL
        // until the backstop (20,000 pages).
        db.execute_unprepared(
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
        db.close().await.unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            checkpointed >= 4_000_000,
            "the database file holds {checkpointed} bytes after 10 s"
        );
    }

    #[test]
    fn sqlite_path_strips_scheme_and_query() {
        assert_eq!(sqlite_path("sqlite://var/a.db?mode=rwc"), Some("var/a.db"));
        assert_eq!(sqlite_path("sqlite:x.db"), Some("x.db"));
        assert_eq!(sqlite_path("postgres://h/db"), None);
    }
}
