//! Both services started in this process, each on port 0, with their own
//! fresh database, talking to a real SMTP server.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use dialin_proto::{
    notifier::v1::notifier_service_client::NotifierServiceClient,
    settings::v1::settings_service_client::SettingsServiceClient,
};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::{
    Request, Status,
    service::interceptor::InterceptedService,
    transport::{Certificate, Channel, ClientTlsConfig, Identity},
};

use crate::{Backend, SmtpServer, TestDatabase};

pub(crate) const MAIL_FROM: &str = "Audio Conferencing <no-reply@dialin.test>";

/// gRPC clients for both services.
#[derive(Clone)]
pub struct Clients {
    pub settings: SettingsServiceClient<Channel>,
    pub notifier: NotifierServiceClient<Channel>,
}

#[derive(Default)]
pub struct TestAppBuilder {
    smtp_reply: Option<String>,
    notifier_starts_later: bool,
    retry_horizon: Option<String>,
    tokens: Vec<(String, String)>,
    tls: bool,
    relay_limit: Option<crate::RelayLimit>,
    notifier_flags: Vec<String>,
}

impl TestAppBuilder {
    /// The SMTP server answers every message with `reply` (e.g. a 550).
    pub fn smtp_reply(mut self, reply: &str) -> Self {
        self.smtp_reply = Some(reply.to_owned());
        self
    }

    /// How long the notifier keeps retrying a transient failure (e.g. `1s`).
    pub fn retry_horizon(mut self, horizon: &str) -> Self {
        self.retry_horizon = Some(horizon.to_owned());
        self
    }

    /// Turns on authentication: each `(token, scope)` goes into a tokens file.
    pub fn tokens(mut self, tokens: &[(&str, &str)]) -> Self {
        self.tokens = tokens
            .iter()
            .map(|(token, scope)| ((*token).to_owned(), (*scope).to_owned()))
            .collect();
        self
    }

    /// Both services speak TLS (certificates made for the test); the notifier
    /// requires the settings service's client certificate.
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// The SMTP server holds to a relay's rate limit.
    pub fn relay_limit(mut self, limit: crate::RelayLimit) -> Self {
        self.relay_limit = Some(limit);
        self
    }

    /// More notifier flags (e.g. `--smtp-max-rate 10/s`).
    pub fn notifier_flags(mut self, flags: &[&str]) -> Self {
        self.notifier_flags.extend(flags.iter().map(|flag| (*flag).to_owned()));
        self
    }

    /// Settings starts alone; call [`TestApp::start_notifier`] later.
    pub fn notifier_starts_later(mut self) -> Self {
        self.notifier_starts_later = true;
        self
    }

    pub async fn start(self) -> TestApp {
        dialin_common::install_crypto_provider();
        let backend = Backend::from_env();
        let dir = std::env::temp_dir().join(format!("dialin-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create the test directory");
        let smtp = SmtpServer::start_limited(&dir, self.smtp_reply.as_deref(), self.relay_limit).await;
        let settings_db = TestDatabase::create(backend, &dir, "settings").await;
        let notifier_db = TestDatabase::create(backend, &dir, "notifier").await;
        let keys = crate::KeyFiles::write(&dir);
        let certs = self.tls.then(|| crate::TestCerts::generate(&dir));
        let tokens_file = dir.join("tokens");
        if !self.tokens.is_empty() {
            write_tokens(&tokens_file, &self.tokens);
        }

        // Reserve the notifier's port, so settings knows where it will be.
        let notifier_addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("reserve a port");
        let mut app = TestApp {
            certs: certs.clone(),
            notifier_health_addr: None,
            tokens_file: tokens_file.clone(),
            payload_key_file: keys.payload.display().to_string(),
            retry_horizon: self.retry_horizon.unwrap_or_else(|| "24h".to_owned()),
            notifier_flags: self.notifier_flags,
            backend,
            dir,
            smtp,
            settings_db,
            notifier_db,
            notifier_addr,
            settings_addr: None,
            running: Vec::new(),
        };
        if !self.notifier_starts_later {
            app.start_notifier().await;
        }
        let tokens_file_arg = tokens_file.display().to_string();
        let mut settings_args: Vec<String> = [
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &app.settings_db.url,
            "--notifier-url",
            &format!("{}://{notifier_addr}", if certs.is_some() { "https" } else { "http" }),
            "--pin-key-file",
            &keys.pin.display().to_string(),
            "--payload-key-file",
            &keys.payload.display().to_string(),
            "--outbox-max-backoff",
            "500ms",
            "--drain-timeout",
            "2s",
        ]
        .map(str::to_owned)
        .into();
        if !self.tokens.is_empty() {
            settings_args.extend(["--tokens-file".to_owned(), tokens_file_arg]);
        }
        if let Some(certs) = &certs {
            settings_args.extend(tls_args(&certs.settings, &certs.ca));
        }
        let settings = dialin_settings::config::Config::from_args(settings_args.iter().map(String::as_str))
            .expect("valid settings flags");
        let settings = dialin_settings::startup::Application::build(settings)
            .await
            .expect("build the settings service");
        app.settings_addr = Some(settings.local_addr().expect("settings address"));
        app.spawn(|shutdown| settings.run_until(shutdown));
        app
    }
}

pub struct TestApp {
    pub backend: Backend,
    /// The certificates, when the app speaks TLS.
    pub certs: Option<crate::TestCerts>,
    /// The notifier's plaintext health port, when it speaks TLS.
    pub notifier_health_addr: Option<SocketAddr>,
    /// Where the tokens file is (when the app was built with tokens).
    pub tokens_file: PathBuf,
    payload_key_file: String,
    retry_horizon: String,
    notifier_flags: Vec<String>,
    pub smtp: SmtpServer,
    dir: PathBuf,
    settings_db: TestDatabase,
    notifier_db: TestDatabase,
    notifier_addr: SocketAddr,
    settings_addr: Option<SocketAddr>,
    /// Each running service: how to stop it, and its task.
    running: Vec<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl TestApp {
    pub async fn start() -> Self {
        TestAppBuilder::default().start().await
    }

    pub fn builder() -> TestAppBuilder {
        TestAppBuilder::default()
    }

    pub async fn start_notifier(&mut self) {
        let mut args: Vec<String> = [
            "--listen",
            &self.notifier_addr.to_string(),
            "--database-url",
            &self.notifier_db.url,
            "--smtp-url",
            &self.smtp.url(),
            "--mail-from",
            MAIL_FROM,
            "--payload-key-file",
            &self.payload_key_file,
            "--retry-initial",
            "200ms",
            "--retry-max",
            "1s",
            "--retry-horizon",
            &self.retry_horizon,
            "--drain-timeout",
            "2s",
        ]
        .map(str::to_owned)
        .into();
        args.extend(self.notifier_flags.iter().cloned());
        if let Some(certs) = &self.certs {
            args.extend(tls_args(&certs.notifier, &certs.ca));
            let health = crate::free_addr();
            args.extend(["--health-listen".to_owned(), health.to_string()]);
            self.notifier_health_addr = Some(health);
        }
        let config =
            dialin_notifier::config::Config::from_args(args.iter().map(String::as_str)).expect("valid notifier flags");
        let notifier = dialin_notifier::startup::Application::build(config)
            .await
            .expect("build the notifier service");
        self.spawn(|shutdown| notifier.run_until(shutdown));
    }

    fn spawn<F, E>(&mut self, run: impl FnOnce(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>) -> F)
    where
        F: std::future::Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display,
    {
        let (stop, stopped) = oneshot::channel::<()>();
        let service = run(Box::pin(async move {
            let _ = stopped.await;
        }));
        let task = tokio::spawn(async move {
            if let Err(error) = service.await {
                panic!("service failed: {error}");
            }
        });
        self.running.push((stop, task));
    }

    /// A connection to the notifier's database, to look at what it stores.
    pub async fn notifier_database(&self) -> sea_orm::DatabaseConnection {
        sea_orm::Database::connect(self.notifier_db.url.clone())
            .await
            .expect("open the notifier database")
    }

    /// A connection to the settings database, to look at what it stores.
    pub async fn settings_database(&self) -> sea_orm::DatabaseConnection {
        sea_orm::Database::connect(self.settings_db.url.clone())
            .await
            .expect("open the settings database")
    }

    pub fn settings_addr(&self) -> SocketAddr {
        self.settings_addr.expect("settings is running")
    }

    /// A settings client that sends `token` as its bearer token.
    pub fn settings_with_token(&self, token: &str) -> SettingsServiceClient<InterceptedService<Channel, BearerToken>> {
        let settings_addr = self.settings_addr.expect("settings is running");
        let tls = self.certs.as_ref().map(|certs| client_tls(&certs.ca, None));
        SettingsServiceClient::with_interceptor(channel(settings_addr, tls), BearerToken(format!("Bearer {token}")))
    }

    pub async fn clients(&self) -> Clients {
        let settings_addr = self.settings_addr.expect("settings is running");
        let (settings_tls, notifier_tls) = match &self.certs {
            Some(certs) => (
                Some(client_tls(&certs.ca, None)),
                Some(client_tls(&certs.ca, Some(&certs.settings))),
            ),
            None => (None, None),
        };
        Clients {
            settings: SettingsServiceClient::new(channel(settings_addr, settings_tls)),
            notifier: NotifierServiceClient::new(channel(self.notifier_addr, notifier_tls)),
        }
    }

    /// Stops both services and waits for them (the databases go when the app is dropped).
    pub fn notifier_addr(&self) -> SocketAddr {
        self.notifier_addr
    }

    pub async fn stop(mut self) {
        for (stop, task) in self.running.drain(..) {
            let _ = stop.send(());
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        for (stop, _task) in self.running.drain(..) {
            let _ = stop.send(());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A channel to `addr`, over TLS when given a client configuration.
pub fn channel(addr: SocketAddr, tls: Option<ClientTlsConfig>) -> Channel {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut endpoint = Channel::from_shared(format!("{scheme}://{addr}"))
        .expect("a valid URL")
        .connect_timeout(Duration::from_secs(2));
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls).expect("a valid TLS configuration");
    }
    endpoint.connect_lazy()
}

/// Trusts `ca`; presents `identity` when given one.
pub fn client_tls(ca: &std::path::Path, identity: Option<&crate::PemFiles>) -> ClientTlsConfig {
    let read = |path: &std::path::Path| std::fs::read(path).expect("read a PEM file");
    let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca)));
    match identity {
        Some(identity) => tls.identity(Identity::from_pem(read(&identity.cert), read(&identity.key))),
        None => tls,
    }
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct BearerToken(String);

impl tonic::service::Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let value = self
            .0
            .parse()
            .map_err(|_| Status::internal("a token that is not a header value"))?;
        request.metadata_mut().insert("authorization", value);
        Ok(request)
    }
}

/// Writes a tokens file: the SHA-256 of each token and its scope.
pub fn write_tokens(path: &std::path::Path, tokens: &[(String, String)]) {
    use sha2::Digest;
    let lines: String = tokens
        .iter()
        .map(|(token, scope)| format!("{} {scope}\n", hex::encode(sha2::Sha256::digest(token.as_bytes()))))
        .collect();
    std::fs::write(path, format!("# written by the test harness\n{lines}")).expect("write the tokens file");
}

fn tls_args(identity: &crate::PemFiles, ca: &std::path::Path) -> [String; 6] {
    [
        "--tls-cert".to_owned(),
        identity.cert.display().to_string(),
        "--tls-key".to_owned(),
        identity.key.display().to_string(),
        "--tls-ca".to_owned(),
        ca.display().to_string(),
    ]
}
