//! Connecting: pool settings fit for a service on either database.

use std::{path::Path, time::Duration};

use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DbErr,
    sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous},
};

use crate::sqlite;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("database URL must start with sqlite:// or postgres://, got scheme {0:?}")]
    UnsupportedScheme(String),
    #[error("cannot create the directory {dir} for the SQLite database: {source}")]
    CreateDir { dir: String, source: std::io::Error },
    #[error("cannot connect to the database: {0}")]
    Connect(#[from] DbErr),
}

/// Whether `url` names a SQLite database (and the file path, when it has one).
pub fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    Some(rest.split('?').next().unwrap_or(rest))
}

/// The database a URL names, connected with settings fit for a service: a
/// bounded pool that fails fast when the database is down, and for SQLite WAL,
/// `synchronous=NORMAL` and a busy timeout (a new SQLite file otherwise
/// journals and syncs the disk on every commit).
pub(crate) enum Connected {
    Sqlite {
        pool: DatabaseConnection,
        writer: sqlite::Writer,
    },
    Postgres(DatabaseConnection),
}

pub(crate) async fn connect(url: &str) -> Result<Connected, ConnectError> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .acquire_timeout(Duration::from_secs(3))
        .connect_timeout(Duration::from_secs(3))
        .sqlx_logging(false);
    if let Some(path) = sqlite_path(url) {
        create_parent_dir(path)?;
        // One writer at a time is SQLite's rule (ours is `sqlite::Writer`, a
        // connection of its own); a small pool keeps readers concurrent. Each
        // connection keeps its own page cache, which any write through another
        // connection empties, so more connections hold more memory for no
        // more throughput (BENCHMARKS.md).
        options.max_connections(4).min_connections(1);
        options.map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(sqlite::BUSY_TIMEOUT)
                .foreign_keys(true)
                // 8 MiB of pages per connection instead of 2: the hot indexes of a
                // deep backlog stay in memory instead of being copied in from the
                // OS cache on every lookup.
                .pragma("cache_size", "-8192")
                // The WAL is checkpointed in the background (`sqlite`); SQLite's
                // own checkpoint is the backstop should that fall behind.
                .pragma("wal_autocheckpoint", sqlite::WAL_BACKSTOP_PAGES)
        });
        let pool = Database::connect(options.clone()).await?;
        let writer = sqlite::Writer::open(&pool, options.max_connections(1).min_connections(1).to_owned()).await?;
        Ok(Connected::Sqlite { pool, writer })
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        options
            .max_connections(16)
            .min_connections(0)
            // A stuck lock or statement becomes an error, never a hung service.
            .statement_timeout(Duration::from_secs(30))
            .map_sqlx_postgres_opts(|opts| opts.options([("lock_timeout", "10s")]));
        Ok(Connected::Postgres(Database::connect(options).await?))
    } else {
        // Only the scheme: the rest of a URL may hold a password.
        let scheme = url.split("://").next().unwrap_or_default();
        Err(ConnectError::UnsupportedScheme(scheme.to_owned()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_path_strips_scheme_and_query() {
        assert_eq!(sqlite_path("sqlite://var/a.db?mode=rwc"), Some("var/a.db"));
        assert_eq!(sqlite_path("sqlite:x.db"), Some("x.db"));
        assert_eq!(sqlite_path("postgres://h/db"), None);
    }
}

/// A PostgreSQL connection without `TCP_NODELAY` holds the tail of every
/// statement too big for one segment until the server's delayed ACK, ~40 ms
/// (sqlx 0.9.0 did). Run with `DIALIN_TEST_DB=postgres`.
#[cfg(test)]
mod postgres_sockets {
    use std::net::SocketAddr;

    use rustix::{
        net::{getpeername, sockopt::tcp_nodelay},
        process::{PidfdFlags, PidfdGetfdFlags, pidfd_getfd, pidfd_open},
    };
    use sea_orm::ConnectionTrait;

    use crate::Store;

    /// This process's TCP sockets connected to `peer`, and whether each has `TCP_NODELAY`.
    fn sockets_to(peer: SocketAddr) -> Vec<bool> {
        let this = pidfd_open(rustix::process::getpid(), PidfdFlags::empty()).expect("pidfd_open");
        let mut sockets = Vec::new();
        for entry in std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd") {
            let entry = entry.expect("fd entry");
            let is_socket =
                std::fs::read_link(entry.path()).is_ok_and(|link| link.to_string_lossy().starts_with("socket:"));
            let Some(fd) = entry.file_name().to_str().and_then(|name| name.parse().ok()) else {
                continue;
            };
            // A copy of the descriptor, so nothing here can close the pool's.
            let Some(socket) = is_socket
                .then(|| pidfd_getfd(&this, fd, PidfdGetfdFlags::empty()).ok())
                .flatten()
            else {
                continue;
            };
            let connected_to = getpeername(&socket)
                .ok()
                .flatten()
                .and_then(|addr| SocketAddr::try_from(addr).ok());
            if connected_to == Some(peer) {
                sockets.push(tcp_nodelay(&socket).expect("getsockopt TCP_NODELAY"));
            }
        }
        sockets
    }

    #[tokio::test]
    async fn every_postgres_connection_sets_tcp_nodelay() {
        if std::env::var("DIALIN_TEST_DB").as_deref() != Ok("postgres") {
            eprintln!("skipped: DIALIN_TEST_DB is not postgres");
            return;
        }
        let server = std::env::var("DIALIN_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned());
        let store = Store::connect(&format!("{server}/postgres"))
            .await
            .expect("connect to PostgreSQL");
        store.reader().execute_unprepared("SELECT 1").await.expect("SELECT 1");
        let url = url::Url::parse(&server).expect("DIALIN_TEST_POSTGRES_URL");
        let peer = tokio::net::lookup_host((url.host_str().unwrap_or("127.0.0.1"), url.port().unwrap_or(5432)))
            .await
            .expect("resolve the PostgreSQL host")
            .next()
            .expect("an address for the PostgreSQL host");
        let sockets = sockets_to(peer);
        store.close().await;
        assert!(
            !sockets.is_empty(),
            "no TCP connection to {peer} found in /proc/self/fd"
        );
        assert!(
            sockets.iter().all(|&nodelay| nodelay),
            "TCP_NODELAY per connection to {peer}: {sockets:?}"
        );
    }
}
