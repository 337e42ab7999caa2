//! Both services as real processes (one or more replicas each) on shared
//! databases, a real SMTP server, and optionally a cuttable link to PostgreSQL.

use std::{net::SocketAddr, path::PathBuf};

use dialin_proto::{
    notifier::v1::notifier_service_client::NotifierServiceClient,
    settings::v1::settings_service_client::SettingsServiceClient,
};

use crate::{Backend, Clients, ServiceProcess, SmtpServer, TcpProxy, TestDatabase, app::MAIL_FROM, free_addr};

/// The one name the notifier replicas share when asked to.
pub const NOTIFIERS_NAME: &str = "notifiers.dialin.test";

pub struct Cluster {
    pub backend: Backend,
    pub smtp: SmtpServer,
    pub settings: Vec<ServiceProcess>,
    pub notifiers: Vec<ServiceProcess>,
    /// Each replica's /metrics address, when asked for.
    pub settings_metrics: Vec<SocketAddr>,
    pub notifier_metrics: Vec<SocketAddr>,
    /// Between the services and PostgreSQL, when asked for.
    pub database_link: Option<TcpProxy>,
    pub settings_db: TestDatabase,
    pub notifier_db: TestDatabase,
    dir: PathBuf,
}

#[derive(Clone, Copy)]
pub struct ClusterOptions {
    pub settings_replicas: usize,
    pub notifier_replicas: usize,
    /// Route PostgreSQL traffic through a [`TcpProxy`] (PostgreSQL only).
    pub cuttable_database: bool,
    /// `RUST_LOG` for the services.
    pub log_level: &'static str,
    /// Serve /metrics on a port of each service's own.
    pub metrics: bool,
    /// Put the notifier replicas on 127.0.0.2, 127.0.0.3, … behind one name
    /// (`notifiers.dialin.test`), which only the settings replicas can resolve:
    /// they run in a mount namespace with their own /etc/hosts.
    pub notifiers_behind_one_name: bool,
    /// The SMTP server holds to a relay's rate limit.
    pub relay_limit: Option<crate::RelayLimit>,
    /// More environment for every notifier replica (e.g. `DIALIN_SMTP_MAX_RATE`).
    pub notifier_env: &'static [(&'static str, &'static str)],
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            settings_replicas: 1,
            notifier_replicas: 1,
            cuttable_database: false,
            log_level: "info",
            metrics: false,
            notifiers_behind_one_name: false,
            relay_limit: None,
            notifier_env: &[],
        }
    }
}

impl Cluster {
    pub async fn start(options: ClusterOptions) -> Self {
        let backend = Backend::from_env();
        let dir = std::env::temp_dir().join(format!("dialin-cluster-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create the test directory");
        let smtp = SmtpServer::start_limited(&dir, None, options.relay_limit).await;
        let settings_db = TestDatabase::create(backend, &dir, "settings").await;
        let notifier_db = TestDatabase::create(backend, &dir, "notifier").await;
        let database_link = if options.cuttable_database {
            assert_eq!(backend, Backend::Postgres, "a cuttable database link needs PostgreSQL");
            Some(TcpProxy::start(settings_db.server_addr()).await)
        } else {
            None
        };
        let via_link = |db: &TestDatabase| match &database_link {
            Some(link) => db.url_via(link.addr),
            None => db.url.clone(),
        };
        let keys = crate::KeyFiles::write(&dir);

        let mut notifiers = Vec::new();
        let (mut settings_metrics, mut notifier_metrics) = (Vec::new(), Vec::new());
        let metrics_env = |addrs: &mut Vec<SocketAddr>| {
            if !options.metrics {
                return Vec::new();
            }
            let addr = free_addr();
            addrs.push(addr);
            vec![("DIALIN_METRICS_LISTEN", addr.to_string())]
        };
        let shared_port = free_addr().port();
        for replica in 0..options.notifier_replicas {
            let addr = if options.notifiers_behind_one_name {
                SocketAddr::from(([127, 0, 0, 2 + replica as u8], shared_port))
            } else {
                free_addr()
            };
            let env = vec![
                ("DIALIN_NOTIFIER_LISTEN", addr.to_string()),
                ("DIALIN_NOTIFIER_DATABASE_URL", via_link(&notifier_db)),
                ("DIALIN_SMTP_URL", smtp.url()),
                ("DIALIN_MAIL_FROM", MAIL_FROM.to_owned()),
                ("DIALIN_PAYLOAD_KEY_FILE", keys.payload.display().to_string()),
                ("DIALIN_SMTP_TIMEOUT", "5s".to_owned()),
                ("DIALIN_RETRY_INITIAL", "200ms".to_owned()),
                ("DIALIN_RETRY_MAX", "1s".to_owned()),
                ("DIALIN_DRAIN_TIMEOUT", "2s".to_owned()),
            ];
            let env = [
                env,
                vec![("RUST_LOG", options.log_level.to_owned())],
                options
                    .notifier_env
                    .iter()
                    .map(|&(name, value)| (name, value.to_owned()))
                    .collect(),
                metrics_env(&mut notifier_metrics),
            ]
            .concat();
            let log = dir.join(format!("notifier-{replica}.log"));
            notifiers.push(ServiceProcess::start("dialin-notifier", addr, owned(env), log).await);
        }
        let hosts = dir.join("hosts");
        let wrapper = if options.notifiers_behind_one_name {
            let lines: String = notifiers
                .iter()
                .map(|n| format!("{} {NOTIFIERS_NAME}\n", n.addr.ip()))
                .collect();
            std::fs::write(&hosts, format!("127.0.0.1 localhost\n{lines}")).expect("write the hosts file");
            let script = format!("mount --bind {} /etc/hosts && exec \"$0\"", hosts.display());
            ["unshare", "--mount", "sh", "-c", &script].map(str::to_owned).to_vec()
        } else {
            Vec::new()
        };
        let mut settings = Vec::new();
        for replica in 0..options.settings_replicas {
            let addr = free_addr();
            // Replica i talks to notifier replica i (round robin when fewer).
            let notifier = if options.notifiers_behind_one_name {
                format!("{NOTIFIERS_NAME}:{shared_port}")
            } else {
                notifiers[replica % notifiers.len()].addr.to_string()
            };
            let env = vec![
                ("DIALIN_SETTINGS_LISTEN", addr.to_string()),
                ("DIALIN_SETTINGS_DATABASE_URL", via_link(&settings_db)),
                ("DIALIN_NOTIFIER_URL", format!("http://{notifier}")),
                ("DIALIN_PIN_KEY_FILE", keys.pin.display().to_string()),
                ("DIALIN_PAYLOAD_KEY_FILE", keys.payload.display().to_string()),
                ("DIALIN_OUTBOX_MAX_BACKOFF", "500ms".to_owned()),
                ("DIALIN_DRAIN_TIMEOUT", "2s".to_owned()),
            ];
            let env = [
                env,
                vec![("RUST_LOG", options.log_level.to_owned())],
                metrics_env(&mut settings_metrics),
            ]
            .concat();
            let log = dir.join(format!("settings-{replica}.log"));
            settings
                .push(ServiceProcess::start_wrapped("dialin-settings", wrapper.clone(), addr, owned(env), log).await);
        }
        Self {
            settings_metrics,
            notifier_metrics,
            backend,
            smtp,
            settings,
            notifiers,
            database_link,
            settings_db,
            notifier_db,
            dir,
        }
    }

    /// Clients for settings replica `settings` and notifier replica `notifier`.
    pub fn clients(&self, settings: usize, notifier: usize) -> Clients {
        let channel = |addr: SocketAddr| {
            tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                .expect("a valid URL")
                .connect_timeout(std::time::Duration::from_secs(2))
                .connect_lazy()
        };
        Clients {
            settings: SettingsServiceClient::new(channel(self.settings[settings].addr)),
            notifier: NotifierServiceClient::new(channel(self.notifiers[notifier].addr)),
        }
    }

    /// The Prometheus text a /metrics endpoint serves.
    pub async fn scrape(addr: SocketAddr) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect to /metrics");
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .await
            .expect("ask for /metrics");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("read /metrics");
        assert!(
            response.starts_with("HTTP/1.") && response.contains(" 200 "),
            "{response}"
        );
        response
    }

    /// The value of one sample line (`name{labels}`), 0 when absent.
    pub fn sample(metrics: &str, series: &str) -> f64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// Where the services' logs are, for a failing test's message.
    pub fn logs(&self) -> String {
        self.dir.display().to_string()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Keep the logs of a failed test; a passing one cleans up.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn owned(env: Vec<(&str, String)>) -> Vec<(String, String)> {
    env.into_iter().map(|(key, value)| (key.to_owned(), value)).collect()
}
