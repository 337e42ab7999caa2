//! What both dialin services share: telemetry, shutdown, the gRPC server frame
//! (health, reflection, bounded drain), database connection and id helpers.

pub mod database;
pub mod duration;
pub mod error;
pub mod ids;
pub mod keyfile;
pub mod schema;
pub mod sealed;
pub mod server;
pub mod shutdown;
pub mod telemetry;
pub mod telemetry_metrics;
pub mod time;
pub mod tls;
pub mod validate;

/// Installs ring as the process's rustls crypto provider, so that tonic, sqlx
/// and lettre all agree on one. Harmless when called twice.
pub fn install_crypto_provider() {
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
}
