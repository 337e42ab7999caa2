//! TLS for both services: `DIALIN_TLS_CERT`, `DIALIN_TLS_KEY` and
//! `DIALIN_TLS_CA` (PEM files), all three or none. The notifier requires a
//! client certificate from that CA (only settings holds one); settings serves
//! TLS and presents its certificate when it calls the notifier.

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("DIALIN_TLS_CERT, DIALIN_TLS_KEY and DIALIN_TLS_CA go together: set all three or none")]
    Incomplete,
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The three TLS settings, shared by both services' command lines.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// This service's certificate (PEM). With the key and CA: TLS.
    #[arg(long, env = "DIALIN_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// This service's private key (PEM).
    #[arg(long, env = "DIALIN_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// The CA (PEM) that peers' certificates must come from.
    #[arg(long, env = "DIALIN_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
}

impl TlsArgs {
    pub fn load(&self) -> Result<Option<TlsFiles>, TlsError> {
        TlsFiles::from_paths(
            self.tls_cert.as_deref(),
            self.tls_key.as_deref(),
            self.tls_ca.as_deref(),
        )
    }
}

/// The PEM files of one service's TLS identity and the CA it trusts.
#[derive(Clone)]
pub struct TlsFiles {
    identity: Identity,
    ca: Certificate,
}

impl TlsFiles {
    /// `None` when none of the three is set.
    pub fn from_paths(cert: Option<&Path>, key: Option<&Path>, ca: Option<&Path>) -> Result<Option<Self>, TlsError> {
        match (cert, key, ca) {
            (None, None, None) => Ok(None),
            (Some(cert), Some(key), Some(ca)) => Ok(Some(Self {
                identity: Identity::from_pem(read("DIALIN_TLS_CERT", cert)?, read("DIALIN_TLS_KEY", key)?),
                ca: Certificate::from_pem(read("DIALIN_TLS_CA", ca)?),
            })),
            _ => Err(TlsError::Incomplete),
        }
    }

    /// Server side. With `require_client_certificate`, a client must present a
    /// certificate from the CA (mutual TLS); without, it may.
    pub fn server(&self, require_client_certificate: bool) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(self.identity.clone())
            .client_ca_root(self.ca.clone())
            .client_auth_optional(!require_client_certificate)
    }

    /// Client side: trust only the CA, and present our own certificate.
    pub fn client(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(self.ca.clone())
            .identity(self.identity.clone())
    }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}
