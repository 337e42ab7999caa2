//! The gRPC server frame both services run in: health, reflection (v1 and
//! v1alpha), an optional plaintext health port, and a drain with a deadline.

use std::{future::Future, net::SocketAddr, time::Duration};

use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tonic::{
    Response, Status,
    service::Routes,
    transport::{Server, ServerTlsConfig, server::TcpIncoming},
};
use tonic_health::{ServingStatus, server::HealthReporter};
use tower::limit::GlobalConcurrencyLimitLayer;

use crate::{error_layer::ErrorInfoLayer, telemetry_metrics::RpcMetricsLayer};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// How long one client connection may live before the server asks it to reconnect.
const MAX_CONNECTION_AGE: Duration = Duration::from_secs(300);

/// Binds a listener up front, so a taken port fails start-up before any work
/// begins, and tests can bind port 0 and read the real port.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// What one service hands to [`serve`].
pub struct ServeOptions {
    /// TLS on the main port (health's own port stays plaintext for probes).
    pub tls: Option<ServerTlsConfig>,
    /// Calls in flight at once, over all connections; more wait their turn.
    pub max_concurrent_calls: usize,
    /// Longest a call may run before it is cut with DEADLINE_EXCEEDED.
    pub call_timeout: Duration,
    /// Health reports NOT_SERVING while this database is unreachable.
    pub database: DatabaseConnection,
    /// The service's fully-qualified gRPC name, reported by health.
    pub service_name: &'static str,
    /// An extra plaintext port that serves only health (Kubernetes probes).
    pub health_listener: Option<TcpListener>,
    /// How long open calls may take to finish after shutdown is asked for.
    pub drain_timeout: Duration,
    /// More health entries, each under its own name: SERVING while its watch
    /// says true (e.g. the notifier's relay, NOT_SERVING while it is paused).
    /// They tell an operator what is wrong without failing the probes.
    pub conditions: Vec<(&'static str, tokio::sync::watch::Receiver<bool>)>,
}

/// Serves `routes` plus health and reflection on `listener` until `shutdown`
/// resolves, then reports NOT_SERVING, stops accepting, and lets open calls
/// finish for at most `drain_timeout` (tonic alone would wait forever).
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let (reporter, health_service) = tonic_health::server::health_reporter();
    set_status(&reporter, options.service_name, ServingStatus::Serving).await;
    let database_watch = tokio::spawn(watch_database(
        options.database.clone(),
        reporter.clone(),
        options.service_name,
    ));
    let condition_watches: Vec<_> = options
        .conditions
        .iter()
        .map(|(name, condition)| tokio::spawn(watch_condition(name, condition.clone(), reporter.clone())))
        .collect();

    let reflection_v1 = reflection_builder().build_v1()?;
    let reflection_v1alpha = reflection_builder().build_v1alpha()?;
    let routes = routes
        .add_service(health_service.clone())
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);

    let (drain_tx, drain_rx) = tokio::sync::watch::channel(false);
    let wait_for_drain = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _closed = rx.wait_for(|drain| *drain).await;
    };

    let health_only = options.health_listener.map(|health_listener| {
        let server = Server::builder()
            .add_service(health_service)
            .serve_with_incoming_shutdown(incoming(health_listener), wait_for_drain(drain_rx.clone()));
        tokio::spawn(server)
    });

    let mut builder = Server::builder();
    if let Some(tls) = options.tls {
        builder = builder.tls_config(tls)?;
    }
    let server = builder
        // Clients reconnect now and then, so that new replicas get their share
        // even behind a Service that balances connections, not calls.
        .max_connection_age(MAX_CONNECTION_AGE)
        // Outermost: every error status, whoever answered it, carries an
        // ErrorInfo, a call that runs too long included.
        .layer(ErrorInfoLayer {
            call_timeout: options.call_timeout,
        })
        // One tenant's burst cannot take every worker: a bounded number of
        // calls run at once, the rest queue for their turn.
        .layer(GlobalConcurrencyLimitLayer::new(options.max_concurrent_calls))
        .layer(RpcMetricsLayer)
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming(listener), wait_for_drain(drain_rx));
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return Ok(result?),
        () = shutdown => {}
    }

    database_watch.abort();
    for watch in condition_watches {
        watch.abort();
    }
    set_status(&reporter, options.service_name, ServingStatus::NotServing).await;
    let _ = drain_tx.send(true);
    let drained = tokio::time::timeout(options.drain_timeout, &mut server).await;
    if let Some(health_only) = health_only {
        health_only.abort();
    }
    match drained {
        Ok(result) => Ok(result?),
        Err(_elapsed) => {
            tracing::warn!(
                timeout = ?options.drain_timeout,
                "drain deadline passed; closing the calls still open"
            );
            Ok(())
        }
    }
}

/// Both reflection versions list every service, each other included, and
/// the error details' types, so that grpcurl can show an error's reason.
fn reflection_builder() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(dialin_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
}

/// Reports `name` SERVING while `condition` holds, NOT_SERVING while it does not.
async fn watch_condition(
    name: &'static str,
    mut condition: tokio::sync::watch::Receiver<bool>,
    reporter: HealthReporter,
) {
    loop {
        let status = if *condition.borrow_and_update() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        reporter.set_service_status(name, status).await;
        if condition.changed().await.is_err() {
            return;
        }
    }
}

/// Pings the database every 2 s: NOT_SERVING while it is unreachable, so that
/// Kubernetes sends calls elsewhere; SERVING again when it answers.
async fn watch_database(db: DatabaseConnection, reporter: HealthReporter, service_name: &'static str) {
    let mut serving = true;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let reachable = db.ping().await.is_ok();
        if reachable != serving {
            serving = reachable;
            let status = if reachable {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            tracing::warn!(database_reachable = reachable, "health now {status:?}");
            set_status(&reporter, service_name, status).await;
        }
    }
}

async fn set_status(reporter: &HealthReporter, service_name: &str, status: ServingStatus) {
    reporter.set_service_status("", status).await;
    reporter.set_service_status(service_name, status).await;
}

fn incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// Runs a handler's `work` to its end even if the caller goes away, so that a
/// call cut off mid-transaction never leaves that transaction to a pooled
/// connection; its error becomes the call's status.
pub async fn run_to_completion<T, E>(
    work: impl Future<Output = Result<T, E>> + Send + 'static,
) -> Result<Response<T>, Status>
where
    T: Send + 'static,
    E: Into<Status> + Send + 'static,
{
    tokio::spawn(work)
        .await
        .map_err(|_| crate::error::internal("the call failed inside the service; its log has the details"))?
        .map(Response::new)
        .map_err(Into::into)
}
