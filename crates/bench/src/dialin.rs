//! Both dialin services as real processes (the binaries beside this one), on
//! fresh databases, sending into the sink; and what they cost the machine.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use sea_orm::{ConnectionTrait, Database};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    process::{Child, Command},
    time::Instant,
};

use crate::{machine::Usage, smtp::free_addr};

const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }
}

pub struct Dialin {
    pub settings_addr: SocketAddr,
    settings: Child,
    notifier: Child,
    notifier_metrics: SocketAddr,
    dir: PathBuf,
    postgres_databases: Vec<String>,
}

impl Dialin {
    /// Starts both services against `smtp`; `notifier_env` adds to the notifier's settings.
    pub async fn start(
        backend: Backend,
        smtp: SocketAddr,
        smtp_connections: usize,
        notifier_env: &[(&str, String)],
    ) -> Result<Self, String> {
        let here = std::env::current_exe().map_err(|error| error.to_string())?;
        let bin_dir = here.parent().ok_or("the bench binary has no directory")?;
        for binary in ["dialin-settings", "dialin-notifier"] {
            if !bin_dir.join(binary).exists() {
                return Err(format!(
                    "{} is missing: build every binary first (cargo build --release --workspace --bins)",
                    bin_dir.join(binary).display()
                ));
            }
        }
        let dir = std::env::temp_dir().join(format!("dialin-bench-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).map_err(|error| error.to_string())?;
        let mut postgres_databases = Vec::new();
        let mut database_url = |service: &str| -> Result<String, String> {
            Ok(match backend {
                Backend::Sqlite => format!("sqlite://{}?mode=rwc", dir.join(format!("{service}.db")).display()),
                Backend::Postgres => {
                    let name = format!("dialin_bench_{service}_{}", uuid::Uuid::new_v4().simple());
                    postgres_databases.push(name.clone());
                    format!("{POSTGRES}/{name}")
                }
            })
        };
        let (settings_url, notifier_url) = (database_url("settings")?, database_url("notifier")?);
        for name in &postgres_databases {
            postgres(&format!("CREATE DATABASE {name}")).await?;
        }
        let key = |name: &str| {
            let path = dir.join(name);
            let hex: String = (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
            std::fs::write(&path, hex).map(|()| path.display().to_string())
        };
        let (pin_key, payload_key) = (
            key("pin.key").map_err(|error| error.to_string())?,
            key("payload.key").map_err(|error| error.to_string())?,
        );
        let (settings_addr, notifier_addr, notifier_metrics) = (free_addr()?, free_addr()?, free_addr()?);
        let notifier = spawn(
            &bin_dir.join("dialin-notifier"),
            &dir.join("notifier.log"),
            &[
                vec![
                    ("DIALIN_NOTIFIER_LISTEN", notifier_addr.to_string()),
                    ("DIALIN_NOTIFIER_DATABASE_URL", notifier_url),
                    ("DIALIN_SMTP_URL", format!("smtp://{smtp}")),
                    ("DIALIN_SMTP_CONNECTIONS", smtp_connections.to_string()),
                    ("DIALIN_PAYLOAD_KEY_FILE", payload_key.clone()),
                    ("DIALIN_METRICS_LISTEN", notifier_metrics.to_string()),
                ],
                notifier_env.to_vec(),
            ]
            .concat(),
        )?;
        let settings = spawn(
            &bin_dir.join("dialin-settings"),
            &dir.join("settings.log"),
            &[
                ("DIALIN_SETTINGS_LISTEN", settings_addr.to_string()),
                ("DIALIN_SETTINGS_DATABASE_URL", settings_url),
                ("DIALIN_NOTIFIER_URL", format!("http://{notifier_addr}")),
                ("DIALIN_PIN_KEY_FILE", pin_key),
                ("DIALIN_PAYLOAD_KEY_FILE", payload_key),
            ],
        )?;
        let dialin = Self {
            settings_addr,
            settings,
            notifier,
            notifier_metrics,
            dir,
            postgres_databases,
        };
        for addr in [settings_addr, notifier_addr, notifier_metrics] {
            wait_listening(addr).await?;
        }
        Ok(dialin)
    }

    /// (settings, notifier)
    pub fn usage(&self) -> (Usage, Usage) {
        (Usage::of(&self.settings), Usage::of(&self.notifier))
    }

    /// How many emails the notifier has decided, by outcome (`SENT`, `SUPPRESSED`, …).
    pub async fn emails(&self, outcome: &str) -> Result<u64, String> {
        let text = scrape(self.notifier_metrics).await?;
        let label = format!("outcome=\"{outcome}\"");
        Ok(text
            .lines()
            .filter(|line| line.starts_with("dialin_emails_total{") && line.contains(&label))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64)
    }

    /// Every email decided, whatever the outcome.
    pub async fn emails_decided(&self) -> Result<u64, String> {
        let mut total = 0;
        for outcome in ["SENT", "SUPPRESSED", "SUPERSEDED", "FAILED"] {
            total += self.emails(outcome).await?;
        }
        Ok(total)
    }

    /// Waits until `count(self)` reaches `target`; fails after `timeout`.
    pub async fn wait_for_emails(&self, outcome: Option<&str>, target: u64, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let now = match outcome {
                Some(outcome) => self.emails(outcome).await?,
                None => self.emails_decided().await?,
            };
            if now >= target {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{now} of {target} emails ({}) after {timeout:?}; logs in {}",
                    outcome.unwrap_or("decided"),
                    self.dir.display()
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn stop(mut self) {
        let _ = self.settings.kill().await;
        let _ = self.notifier.kill().await;
        for name in &self.postgres_databases {
            let _ = postgres(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn spawn(binary: &Path, log: &Path, env: &[(&str, String)]) -> Result<Child, String> {
    let log = std::fs::File::create(log).map_err(|error| error.to_string())?;
    let stderr = log.try_clone().map_err(|error| error.to_string())?;
    Command::new(binary)
        .envs(env.iter().map(|(name, value)| (*name, value)))
        .env("RUST_LOG", "warn")
        .stdout(log)
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| format!("cannot start {}: {error}", binary.display()))
}

async fn wait_listening(addr: SocketAddr) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).await.is_err() {
        if Instant::now() > deadline {
            return Err(format!("nothing listens on {addr} after 30 s"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

async fn postgres(sql: &str) -> Result<(), String> {
    let db = Database::connect(format!("{POSTGRES}/postgres"))
        .await
        .map_err(|error| format!("PostgreSQL at {POSTGRES}: {error}"))?;
    db.execute_unprepared(sql)
        .await
        .map_err(|error| format!("{sql}: {error}"))?;
    db.close().await.map_err(|error| error.to_string())
}

/// GET /metrics, in ten lines rather than an HTTP client crate.
async fn scrape(addr: SocketAddr) -> Result<String, String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|error| error.to_string())?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .map_err(|error| error.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .map_err(|error| error.to_string())?;
    Ok(response)
}
