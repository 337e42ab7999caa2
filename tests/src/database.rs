//! A fresh database per service per test, dropped afterwards.

use sea_orm::{ConnectionTrait, Database};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// `DIALIN_TEST_DB=postgres` runs the suite on PostgreSQL; anything else, SQLite.
    pub fn from_env() -> Self {
        match std::env::var("DIALIN_TEST_DB").as_deref() {
            Ok("postgres") => Self::Postgres,
            _ => Self::Sqlite,
        }
    }
}

/// Where the test PostgreSQL server is (`DIALIN_TEST_POSTGRES_URL`, no database name).
fn postgres_server() -> String {
    std::env::var("DIALIN_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

pub struct TestDatabase {
    pub url: String,
    backend: Backend,
    name: String,
}

impl TestDatabase {
    /// Creates an empty database. On PostgreSQL a failure is a test failure,
    /// never a silent fall-back to SQLite.
    pub async fn create(backend: Backend, dir: &std::path::Path, label: &str) -> Self {
        let name = format!("dialin_{label}_{}", uuid::Uuid::new_v4().simple());
        let url = match backend {
            Backend::Sqlite => format!("sqlite://{}?mode=rwc", dir.join(format!("{name}.db")).display()),
            Backend::Postgres => {
                let admin = Database::connect(format!("{}/postgres", postgres_server()))
                    .await
                    .unwrap_or_else(|error| panic!("DIALIN_TEST_DB=postgres but PostgreSQL is unreachable: {error}"));
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("create the test database");
                let _ = admin.close().await;
                format!("{}/{name}", postgres_server())
            }
        };
        Self { url, backend, name }
    }
}

impl TestDatabase {
    /// Everything stored, as text and bytes: the SQLite files (with the
    /// write-ahead log), or every PostgreSQL table's rows as text.
    pub async fn everything_stored(&self) -> Vec<u8> {
        match self.backend {
            Backend::Sqlite => {
                let path = dialin_store::sqlite_path(&self.url).expect("a SQLite URL").to_owned();
                ["", "-wal", "-shm"]
                    .iter()
                    .filter_map(|suffix| std::fs::read(format!("{path}{suffix}")).ok())
                    .flatten()
                    .collect()
            }
            Backend::Postgres => {
                let db = Database::connect(self.url.clone())
                    .await
                    .expect("connect to the test database");
                let backend = db.get_database_backend();
                let tables = db
                    .query_all_raw(sea_orm::Statement::from_string(
                        backend,
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
                    ))
                    .await
                    .expect("list the tables");
                let mut dump = Vec::new();
                for table in tables {
                    let name: String = table.try_get_by_index(0).expect("a table name");
                    let rows = db
                        .query_all_raw(sea_orm::Statement::from_string(
                            backend,
                            format!("SELECT t::text FROM \"{name}\" t"),
                        ))
                        .await
                        .expect("read a table");
                    for row in rows {
                        let text: String = row.try_get_by_index(0).expect("a row as text");
                        dump.extend_from_slice(text.as_bytes());
                        dump.push(b'\n');
                    }
                }
                let _ = db.close().await;
                dump
            }
        }
    }

    /// The PostgreSQL server's address.
    pub fn server_addr(&self) -> std::net::SocketAddr {
        let server = postgres_server();
        let host_port = server
            .rsplit('@')
            .next()
            .unwrap_or(&server)
            .trim_start_matches("postgres://");
        std::net::ToSocketAddrs::to_socket_addrs(host_port)
            .ok()
            .and_then(|mut addrs| addrs.next())
            .unwrap_or_else(|| panic!("cannot resolve the PostgreSQL server {host_port}"))
    }

    /// The URL of this database reached through `addr` instead.
    pub fn url_via(&self, addr: std::net::SocketAddr) -> String {
        let server = postgres_server();
        let host_port = server
            .rsplit('@')
            .next()
            .unwrap_or(&server)
            .trim_start_matches("postgres://");
        self.url.replacen(host_port, &addr.to_string(), 1)
    }
}

impl Drop for TestDatabase {
    /// Drops a PostgreSQL test database, also when the test failed. Drop cannot
    /// await, so this runs on a thread of its own with a small runtime.
    fn drop(&mut self) {
        if self.backend != Backend::Postgres {
            return;
        }
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let admin = Database::connect(format!("{}/postgres", postgres_server()))
                    .await
                    .ok()?;
                let _ = admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await;
                admin.close().await.ok()
            });
            Ok::<_, std::io::Error>(())
        });
        let _ = dropped.join();
    }
}
