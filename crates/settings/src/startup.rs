//! Builds the settings service from its configuration and runs it until shutdown.

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
};
use dialin_proto::{
    notifier::v1::notifier_service_client::NotifierServiceClient,
    settings::v1::settings_service_server::{SERVICE_NAME, SettingsServiceServer},
};
use dialin_store::schema::{self, SchemaError};
use tokio::net::TcpListener;
use tonic::service::{Routes, interceptor::InterceptedService};

use crate::{
    auth::{Tokens, TokensError},
    config::Config,
    migration::Migrator,
    notifier_channel::NotifierChannels,
    outbox::{self, Dispatcher, Outbox},
    pin::PinKey,
    service::SettingsApi,
    settings_cache::{self, TenantSettingsCache},
};

/// Calls in flight at once, over all connections.
const MAX_CONCURRENT_CALLS: usize = 256;
/// Longest a call may run (a switch-off waits for the notifier's fence).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest request accepted; the largest legitimate one is far smaller.
const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(
        "refusing to listen on {0} without DIALIN_SETTINGS_TOKENS_FILE: anyone who can reach it could read and change every tenant; set a tokens file, or listen on a loopback address"
    )]
    UnauthenticatedOffLoopback(SocketAddr),
    #[error(transparent)]
    Tokens(#[from] TokensError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot serve metrics: {0}")]
    Metrics(String),
    #[error("DIALIN_NOTIFIER_URL {url:?} is not a valid URL: {reason}")]
    NotifierUrl { url: String, reason: String },
    #[error(transparent)]
    Database(#[from] dialin_store::ConnectError),
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Serve(#[from] server::ServeError),
}

/// A settings service with its port bound and its database migrated, ready to run.
pub struct Application {
    tls: Option<TlsFiles>,
    tokens: Tokens,
    tokens_file: Option<std::path::PathBuf>,
    listener: TcpListener,
    health_listener: Option<TcpListener>,
    api: SettingsApi,
    /// Kept in step with other replicas' changes by a listener while serving.
    tenant_cache: TenantSettingsCache,
    dispatcher: Dispatcher,
    drain_timeout: Duration,
    db: Store,
}

/// `dialin-settings migrate`: brings the schema up to date and returns.
pub async fn migrate(config: &Config) -> Result<(), StartupError> {
    let db = Store::connect(&config.database_url).await?;
    schema::migrate::<Migrator>(&db).await?;
    db.close().await;
    tracing::info!("database schema is current");
    Ok(())
}

impl Application {
    /// Checks the configuration, connects and migrates the database, loads the
    /// PIN key, then binds the ports (so bad config fails before any port is bound).
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let tokens = match &config.tokens_file {
            Some(path) => Tokens::load(path)?,
            None if config.listen.ip().is_loopback() => {
                tracing::warn!(
                    listen = %config.listen,
                    "NO AUTHENTICATION: DIALIN_SETTINGS_TOKENS_FILE is not set, so every caller acts as an operator; this is allowed on a loopback address only"
                );
                Tokens::disabled()
            }
            None => return Err(StartupError::UnauthenticatedOffLoopback(config.listen)),
        };
        let tls = config.tls.load()?;
        // Dispatching: events are small and quick to record, so a notifier that
        // takes longer is retried. Confirming a switch-off may wait for sends in
        // flight (up to the notifier's SMTP timeout).
        let notifier = NotifierChannels::new(
            &config.notifier_url,
            tls.as_ref().map(TlsFiles::client),
            [Duration::from_secs(10), Duration::from_secs(45)],
        )
        .map_err(|error| StartupError::NotifierUrl {
            url: error.url,
            reason: error.reason,
        })?;
        let db = Store::connect(&config.database_url).await?;
        schema::prepare::<Migrator>(&db, "dialin-settings", config.migrate_on_start).await?;
        let pin_key = PinKey::load(
            config.pin_key_file.as_deref(),
            &keyfile::default_path(&config.database_url, "settings", "pin-key"),
        )?;

        if let Some(listen) = config.metrics_listen {
            telemetry_metrics::install(listen).map_err(|error| StartupError::Metrics(error.to_string()))?;
            let db = db.clone();
            telemetry_metrics::sample_every(Duration::from_secs(5), move || {
                let db = db.clone();
                async move {
                    telemetry_metrics::sample_backlog(
                        db.reader(),
                        "SELECT COUNT(*), MIN(created_at) FROM outbox WHERE dead = false",
                        "dialin_outbox_pending",
                        "dialin_outbox_lag_seconds",
                    )
                    .await
                }
            });
        }
        let listener = bind(config.listen).await?;
        let [dispatch_channel, confirm_channel] = notifier.spawn_resolver();
        let health_listener = match config.health_listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let outbox = Outbox::new(PayloadCipher::load(
            config.payload_key_file.as_deref(),
            &keyfile::default_path(&config.database_url, "settings", "payload-key"),
        )?);
        let tenant_cache = TenantSettingsCache::new(db.backend());
        let dispatcher = Dispatcher {
            db: db.clone(),
            instance: uuid::Uuid::new_v4().to_string(),
            notifier: NotifierServiceClient::new(dispatch_channel),
            outbox: outbox.clone(),
            backoff: Backoff {
                initial: outbox::FIRST_BACKOFF,
                max: config.outbox_max_backoff,
            },
        };
        Ok(Self {
            tls,
            tokens,
            tokens_file: config.tokens_file.clone(),
            listener,
            health_listener,
            api: SettingsApi::new(
                db.clone(),
                pin_key,
                outbox,
                NotifierServiceClient::new(confirm_channel),
                tenant_cache.clone(),
            ),
            tenant_cache,
            dispatcher,
            drain_timeout: config.drain_timeout,
            db,
        })
    }

    /// Where the gRPC server listens (the real port when configured with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then drains calls and stops the dispatcher.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> Result<(), StartupError> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let dispatcher = tokio::spawn(Arc::new(self.dispatcher).run(stop_rx.clone()));
        let cache_listener = tokio::spawn(settings_cache::listen(self.db.clone(), self.tenant_cache, stop_rx));
        if let Some(path) = self.tokens_file {
            self.tokens.watch(path);
        }
        if let Ok(addr) = self.listener.local_addr() {
            tracing::info!(%addr, "settings service listening");
        }
        let served = server::serve(
            self.listener,
            Routes::new(InterceptedService::new(
                SettingsServiceServer::new(self.api).max_decoding_message_size(MAX_MESSAGE_BYTES),
                self.tokens.interceptor(),
            )),
            ServeOptions {
                // Callers authenticate with tokens; a client certificate is welcome, not required.
                tls: self.tls.map(|tls| tls.server(false)),
                max_concurrent_calls: MAX_CONCURRENT_CALLS,
                call_timeout: CALL_TIMEOUT,
                database: self.db.reader().clone(),
                service_name: SERVICE_NAME,
                health_listener: self.health_listener,
                drain_timeout: self.drain_timeout,
                conditions: Vec::new(),
            },
            shutdown,
        )
        .await;
        let _ = stop_tx.send(true);
        let _ = dispatcher.await;
        let _ = cache_listener.await;
        self.db.close().await;
        tracing::info!("settings service stopped");
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
