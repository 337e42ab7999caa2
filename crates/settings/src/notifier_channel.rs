//! Reaching every notifier replica. Behind a Kubernetes headless Service the
//! notifier's name resolves to every pod; one long-lived HTTP/2 connection
//! would pin all calls to one of them. So the name is resolved here, every
//! few seconds, and calls are balanced over a connection to each address
//! (tonic's balance channel, power of two choices). A failed lookup, or one
//! that returns nothing, keeps the addresses already known: it never empties
//! the set.

use std::{collections::HashSet, net::SocketAddr, time::Duration};

use tokio::sync::mpsc::Sender;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint, channel::Change};

/// How often the notifier's name is resolved again.
const REFRESH: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
#[error("DIALIN_NOTIFIER_URL {url:?}: {reason}")]
pub struct NotifierUrlError {
    pub url: String,
    pub reason: String,
}

/// Channels (one per call timeout) to every address of the notifier, and the
/// task that keeps their address sets current.
pub struct NotifierChannels<const N: usize> {
    channels: [Channel; N],
    resolver: Resolver,
}

struct Resolver {
    scheme: &'static str,
    host: String,
    port: u16,
    tls: Option<ClientTlsConfig>,
    timeouts: Vec<Duration>,
    senders: Vec<Sender<Change<SocketAddr, Endpoint>>>,
}

impl<const N: usize> NotifierChannels<N> {
    pub fn new(url: &str, tls: Option<ClientTlsConfig>, timeouts: [Duration; N]) -> Result<Self, NotifierUrlError> {
        let error = |reason: &str| NotifierUrlError {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let parsed: tonic::codegen::http::Uri = url.parse().map_err(|_| error("not a URL"))?;
        let scheme = match (parsed.scheme_str(), tls.is_some()) {
            (Some("http"), false) => "http",
            (Some("https"), true) => "https",
            (Some("http"), true) => return Err(error("with TLS configured it must be https://")),
            (Some("https"), false) => {
                return Err(error(
                    "https:// needs DIALIN_TLS_CERT, DIALIN_TLS_KEY and DIALIN_TLS_CA",
                ));
            }
            _ => return Err(error("must start with http:// or https://")),
        };
        let host = parsed
            .host()
            .ok_or_else(|| error("has no host"))?
            .trim_matches(['[', ']'])
            .to_owned();
        let port = parsed.port_u16().unwrap_or(if scheme == "https" { 443 } else { 80 });
        let balanced = timeouts.map(|_| Channel::balance_channel(16));
        let senders = balanced.iter().map(|(_, sender)| sender.clone()).collect();
        let channels = balanced.map(|(channel, _)| channel);
        Ok(Self {
            channels,
            resolver: Resolver {
                scheme,
                host,
                port,
                tls,
                timeouts: timeouts.to_vec(),
                senders,
            },
        })
    }

    /// Starts resolving; calls wait until the first addresses are known.
    pub fn spawn_resolver(self) -> [Channel; N] {
        tokio::spawn(self.resolver.run());
        self.channels
    }
}

impl Resolver {
    async fn run(self) {
        let mut known: HashSet<SocketAddr> = HashSet::new();
        loop {
            match tokio::net::lookup_host((self.host.as_str(), self.port)).await {
                Ok(addrs) => {
                    let resolved: HashSet<SocketAddr> = addrs.collect();
                    if resolved.is_empty() {
                        tracing::warn!(
                            host = self.host,
                            "the notifier's name resolved to nothing; keeping the known addresses"
                        );
                    } else {
                        self.apply(&known, &resolved).await;
                        known = resolved;
                    }
                }
                Err(error) => {
                    tracing::warn!(host = self.host, %error, "cannot resolve the notifier's name; keeping the known addresses");
                }
            }
            tokio::time::sleep(REFRESH).await;
        }
    }

    /// Adds new addresses, drops vanished ones, and re-adds the known ones so
    /// that a replica that failed and came back is tried again.
    async fn apply(&self, known: &HashSet<SocketAddr>, resolved: &HashSet<SocketAddr>) {
        for (sender, timeout) in self.senders.iter().zip(&self.timeouts) {
            for gone in known.difference(resolved) {
                let _ = sender.send(Change::Remove(*gone)).await;
            }
            for addr in resolved {
                if let Some(endpoint) = self.endpoint(*addr, *timeout) {
                    let _ = sender.send(Change::Insert(*addr, endpoint)).await;
                }
            }
        }
        if known != resolved {
            tracing::info!(host = self.host, addresses = ?resolved, "notifier addresses");
        }
    }

    fn endpoint(&self, addr: SocketAddr, timeout: Duration) -> Option<Endpoint> {
        let mut endpoint = Endpoint::from_shared(format!("{}://{addr}", self.scheme))
            .ok()?
            .connect_timeout(Duration::from_secs(2))
            .timeout(timeout)
            .tcp_nodelay(true);
        if let Some(tls) = &self.tls {
            // Verify the certificate against the name, not the address.
            endpoint = endpoint.tls_config(tls.clone().domain_name(self.host.clone())).ok()?;
        }
        Some(endpoint)
    }
}
