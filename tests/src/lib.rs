//! The test harness: each test gets both services on port 0, fresh databases
//! (SQLite files, or PostgreSQL databases with random names when
//! `DIALIN_TEST_DB=postgres`), and a real SMTP server over TCP.

mod app;
mod certs;
mod cluster;
mod database;
mod flows;
mod process;
mod proxy;
mod smtp;
mod wait;

pub use app::{BearerToken, Clients, TestApp, TestAppBuilder, channel, client_tls, write_tokens};
pub use certs::{PemFiles, TestCerts};
pub use cluster::{Cluster, ClusterOptions};
pub use database::{Backend, TestDatabase};
pub use flows::DEADLINE;
pub use process::{ServiceProcess, binary, free_addr};
pub use proxy::TcpProxy;
pub use smtp::{ReceivedEmail, RelayLimit, SmtpServer, busiest_window};
pub use wait::wait_until;

/// Fresh key files for one test's services (a PIN key, a payload key).
pub struct KeyFiles {
    pub pin: std::path::PathBuf,
    pub payload: std::path::PathBuf,
}

impl KeyFiles {
    pub fn write(dir: &std::path::Path) -> Self {
        let key = || uuid::Uuid::new_v4().simple().to_string().repeat(2);
        let files = Self {
            pin: dir.join("pin.key"),
            payload: dir.join("payload.key"),
        };
        std::fs::write(&files.pin, key()).expect("write a PIN key");
        std::fs::write(&files.payload, key()).expect("write a payload key");
        files
    }
}
