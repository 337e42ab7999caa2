//! The server runtime both dialin services share: the gRPC server frame
//! (health, reflection, bounded drain), shutdown, TLS, telemetry, and the
//! request paths' error type.

pub mod binary;
pub mod defaults;
pub mod duration;
pub mod error;
pub mod error_layer;
pub mod server;
pub mod shutdown;
pub mod telemetry;
pub mod telemetry_metrics;
pub mod tls;

/// Installs ring as the process's rustls crypto provider, so that tonic, sqlx
/// and lettre all agree on one. Harmless when called twice.
pub fn install_crypto_provider() {
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
}
