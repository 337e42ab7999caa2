//! Builds the notifier from its configuration and runs it until shutdown.

use dialin_store::Store;
use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use dialin_common::{
    binary,
    server::{self, ServeOptions},
    telemetry_metrics,
    tls::{TlsError, TlsFiles},
};
use dialin_domain::{
    backoff::Backoff,
    keyfile::{self, KeyFileError},
    sealed::PayloadCipher,
    time::now_millis,
};
use dialin_proto::notifier::v1::notifier_service_server::{NotifierServiceServer, SERVICE_NAME};
use dialin_store::schema::{self, SchemaError};
use tokio::{net::TcpListener, sync::Notify};
use tonic::service::Routes;

use crate::{
    config::Config,
    mail::{self, MailConfigError, Mailer},
    migration::Migrator,
    relay::{self, Relay},
    schedule,
    service::NotifierApi,
    worker::{DeliveryWorker, RetryPolicy},
};

/// Calls in flight at once, over all connections.
const MAX_CONCURRENT_CALLS: usize = 512;
/// Longest a call may run (a switch-off waits out sends in flight).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest request accepted: a Notify is a few hundred bytes, a NotifyBatch
/// of 1,000 events a few hundred kilobytes.
const MAX_MESSAGE_BYTES: usize = 2 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Mail(#[from] MailConfigError),
    #[error(transparent)]
    Database(#[from] dialin_store::ConnectError),
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot serve metrics: {0}")]
    Metrics(String),
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Serve(#[from] server::ServeError),
}

/// A notifier with its port bound and its database migrated, ready to run.
pub struct Application {
    tls: Option<TlsFiles>,
    listener: TcpListener,
    health_listener: Option<TcpListener>,
    api: NotifierApi,
    worker: Arc<DeliveryWorker>,
    /// The relay's budget, when emails go to a relay.
    relay: Option<Arc<Relay>>,
    drain_timeout: Duration,
    db: Store,
}

/// `dialin-notifier migrate`: brings the schema up to date and returns.
pub async fn migrate(config: &Config) -> Result<(), StartupError> {
    let db = Store::connect(&config.database_url).await?;
    schema::migrate::<Migrator>(&db).await?;
    db.close().await;
    tracing::info!("database schema is current");
    Ok(())
}

impl Application {
    /// Checks the configuration, connects and migrates the database, then binds
    /// the ports (so bad config fails before any port is bound).
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let default_from = mail::parse_mailbox(&config.mail_from)?;
        let tls = config.tls.load()?;
        let db = Store::connect(&config.database_url).await?;
        schema::prepare::<Migrator>(&db, "dialin-notifier", config.migrate_on_start).await?;
        // The relay's budget is for a relay: .eml files are written as fast as they come.
        let (mailer, relay) = match config.smtp_url.as_deref() {
            Some(url) => {
                let connections = usize::from(config.smtp_connections);
                let relay = Relay::new(db.clone(), config.smtp_max_rate, connections, config.smtp_quota_pause);
                let mailer = Mailer::smtp(url, connections, config.smtp_timeout, Arc::clone(&relay))?;
                (mailer, Some(relay))
            }
            None => (Mailer::files(&config.mail_dir)?, None),
        };
        let cipher = PayloadCipher::load(
            config.payload_key_file.as_deref(),
            &keyfile::default_path(&config.database_url, "notifier", "payload-key"),
        )?;

        if let Some(listen) = config.metrics_listen {
            telemetry_metrics::install(listen).map_err(|error| StartupError::Metrics(error.to_string()))?;
            let db = db.clone();
            telemetry_metrics::sample_every(Duration::from_secs(5), move || {
                let db = db.clone();
                async move {
                    telemetry_metrics::sample_backlog(
                        db.reader(),
                        "SELECT COUNT(*), MIN(created_at) FROM deliveries WHERE status = 'PENDING'",
                        "dialin_deliveries_pending",
                        "dialin_oldest_pending_delivery_age_seconds",
                    )
                    .await;
                    if let Err(error) = schedule::sample_by_priority(&db, now_millis()).await {
                        tracing::debug!(%error, "cannot sample the queue by priority");
                    }
                }
            });
        }
        let listener = bind(config.listen).await?;
        let health_listener = match config.health_listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let wake = Arc::new(Notify::new());
        let worker = Arc::new(DeliveryWorker {
            db: db.clone(),
            cipher: cipher.clone(),
            mailer,
            wake: Arc::clone(&wake),
            default_from,
            relay: relay.clone(),
            retry: RetryPolicy {
                backoff: Backoff {
                    initial: config.retry_initial,
                    max: config.retry_max,
                },
                horizon: config.retry_horizon,
            },
            // A claim outlives one SMTP exchange (every step bounded by the
            // timeout) with room to spare; a dead sender's claims expire then.
            lease: config.smtp_timeout * 2 + Duration::from_secs(5),
        });
        Ok(Self {
            tls,
            listener,
            health_listener,
            // A switch-off waits out sends already past the gate: at most one SMTP exchange.
            api: NotifierApi::new(
                db.clone(),
                cipher,
                wake,
                config.smtp_timeout + Duration::from_secs(5),
                relay.clone(),
            ),
            relay,
            worker,
            drain_timeout: config.drain_timeout,
            db,
        })
    }

    /// Where the gRPC server listens (the real port when configured with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then drains calls and stops the worker
    /// once the emails it holds are recorded.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> Result<(), StartupError> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        // The relay stops beating (and gives its connections' leases back)
        // only once the worker has finished its sends: not before.
        let (stop_relay, relay_stopping) = tokio::sync::watch::channel(false);
        let relay = self
            .relay
            .as_ref()
            .map(|relay| tokio::spawn(Arc::clone(relay).run(relay_stopping)));
        let worker = tokio::spawn(Arc::clone(&self.worker).run(stop_rx));
        if let Ok(addr) = self.listener.local_addr() {
            tracing::info!(%addr, "notifier service listening");
        }
        let served = server::serve(
            self.listener,
            Routes::new(NotifierServiceServer::new(self.api).max_decoding_message_size(MAX_MESSAGE_BYTES)),
            ServeOptions {
                // Only the settings service holds a certificate from the CA.
                tls: self.tls.map(|tls| tls.server(true)),
                max_concurrent_calls: MAX_CONCURRENT_CALLS,
                call_timeout: CALL_TIMEOUT,
                database: self.db.reader().clone(),
                service_name: SERVICE_NAME,
                health_listener: self.health_listener,
                drain_timeout: self.drain_timeout,
                conditions: self
                    .relay
                    .iter()
                    .map(|relay| (relay::HEALTH_NAME, relay.sending()))
                    .collect(),
            },
            shutdown,
        )
        .await;
        let _ = stop_tx.send(true);
        let _ = worker.await;
        let _ = stop_relay.send(true);
        if let Some(relay) = relay {
            let _ = relay.await;
        }
        self.db.close().await;
        tracing::info!("notifier service stopped");
        Ok(served?)
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartupError> {
    server::bind(addr)
        .await
        .map_err(|source| StartupError::Bind { addr, source })
}

impl binary::Serve for Application {
    type Error = StartupError;

    async fn serve_until(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), StartupError> {
        self.run_until(shutdown).await
    }
}
