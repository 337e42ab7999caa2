//! The SMTP relay: its URL, and a few long-lived connections to it.
//!
//! The connections are opened here, not by lettre's pool: lettre 0.11 never
//! sets `TCP_NODELAY`, and Nagle then holds the final `.` of every message
//! until the server's delayed ACK (~40 ms a message). Each connection is ours,
//! with no-delay set, and lettre speaks SMTP over it.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use lettre::{
    Message,
    transport::smtp::{
        authentication::{Credentials, Mechanism},
        client::{AsyncSmtpConnection, TlsParameters},
        extension::ClientId,
    },
};
use tokio::{net::TcpStream, sync::watch};

use super::{MailConfigError, SendError};
use crate::relay::{Relay, RelayRefusal, classify};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Security {
    /// `smtps://`: TLS from the first byte.
    Implicit,
    /// STARTTLS, refusing a server that does not offer it.
    Required,
    /// STARTTLS when offered.
    Opportunistic,
    None,
}

pub(super) struct SmtpServer {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
}

impl SmtpServer {
    pub(super) fn parse(text: &str) -> Result<Self, MailConfigError> {
        let url = url::Url::parse(text)?;
        let (default_port, implicit) = match url.scheme() {
            "smtp" => (25, false),
            "smtps" => (465, true),
            other => return Err(MailConfigError::Scheme(other.to_owned())),
        };
        let host = url.host_str().ok_or(MailConfigError::NoHost)?.to_owned();
        let tls = url
            .query_pairs()
            .find(|(key, _)| key == "tls")
            .map(|(_, value)| value.into_owned());
        let security = match (implicit, tls.as_deref()) {
            (true, _) => Security::Implicit,
            (false, Some("required")) => Security::Required,
            (false, Some("opportunistic") | None) => Security::Opportunistic,
            (false, Some("none")) => Security::None,
            (false, Some(other)) => return Err(MailConfigError::TlsMode(other.to_owned())),
        };
        let credentials = (!url.username().is_empty()).then(|| {
            let decode = |text: &str| percent_decode(text);
            Credentials::new(decode(url.username()), decode(url.password().unwrap_or("")))
        });
        if credentials.is_some() && security == Security::None {
            return Err(MailConfigError::CredentialsWithoutTls);
        }
        Ok(Self {
            host,
            port: url.port().unwrap_or(default_port),
            security,
            credentials,
        })
    }
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

/// A few long-lived connections; a sender takes an idle one or opens a new one,
/// and puts it back after a successful send. How many are in use at once, and
/// how fast they send, is the relay budget's to say ([`Relay::turn`]).
pub struct SmtpPool {
    server: SmtpServer,
    size: usize,
    idle: Arc<Mutex<Vec<AsyncSmtpConnection>>>,
    relay: Arc<Relay>,
    timeout: Duration,
    hello: ClientId,
}

impl SmtpPool {
    pub(super) fn new(server: SmtpServer, size: usize, timeout: Duration, relay: Arc<Relay>) -> Self {
        let idle = Arc::new(Mutex::new(Vec::with_capacity(size)));
        tokio::spawn(close_idle_above(relay.connections_in_force(), Arc::clone(&idle)));
        Self {
            server,
            size,
            idle,
            relay,
            timeout,
            hello: ClientId::default(),
        }
    }

    /// How many connections the deployment keeps.
    pub(super) fn size(&self) -> usize {
        self.size
    }

    pub(super) fn describe(&self) -> String {
        format!(
            "SMTP {}:{} ({} connections for the deployment)",
            self.server.host, self.server.port, self.size
        )
    }

    /// Sends `message` when the relay budget gives it a turn. A refusal about
    /// the relay (a throttle, a quota) is the relay budget's business: the
    /// message keeps its place and waits for its next turn, for as long as
    /// the claim on it holds.
    pub(super) async fn send(&self, message: &Message, claim_until: i64) -> Result<(), SendError> {
        let bytes = message.formatted();
        loop {
            let _turn = self.relay.turn(claim_until, self.timeout).await?;
            let turn_at = dialin_domain::time::now_millis();
            match self.send_once(message, &bytes).await {
                Ok(()) => {
                    self.relay.record_sent();
                    return Ok(());
                }
                Err(TransmitError::Relay(refusal, reply)) => self.relay.refused(&refusal, &reply, turn_at).await,
                Err(TransmitError::Connection(reason) | TransmitError::Transient(reason)) => {
                    return Err(SendError::Transient(reason));
                }
                Err(TransmitError::Permanent(reason)) => return Err(SendError::Permanent(reason)),
            }
        }
    }

    async fn send_once(&self, message: &Message, bytes: &[u8]) -> Result<(), TransmitError> {
        // Open connections, idle or sending, stay within this replica's
        // share: ones above it (the share shrank) are closed as they come.
        let spare = self.relay.spare_connections();
        let idle = self
            .idle
            .lock()
            .map(|mut idle| {
                idle.truncate(spare + 1);
                idle.pop()
            })
            .unwrap_or(None);
        let (mut connection, reused) = match idle {
            Some(connection) => (connection, true),
            None => (self.connect().await?, false),
        };
        let mut result = self.transmit(&mut connection, message, bytes).await;
        // An idle connection the server closed fails before any reply: once
        // more on a fresh connection, so that an idle timeout costs no retry delay.
        if reused && matches!(&result, Err(TransmitError::Connection(_))) {
            connection = self.connect().await?;
            result = self.transmit(&mut connection, message, bytes).await;
        }
        if result.is_ok()
            && let Ok(mut idle) = self.idle.lock()
            && idle.len() <= self.relay.spare_connections()
        {
            idle.push(connection);
        }
        result
    }

    async fn transmit(
        &self,
        connection: &mut AsyncSmtpConnection,
        message: &Message,
        bytes: &[u8],
    ) -> Result<(), TransmitError> {
        match tokio::time::timeout(self.timeout, connection.send(message.envelope(), bytes)).await {
            Ok(Ok(_response)) => Ok(()),
            Ok(Err(error)) => Err(refusal(&error).unwrap_or_else(|| {
                if error.is_permanent() {
                    TransmitError::Permanent(format!("SMTP server refused the message: {error}"))
                } else if error.is_transient() {
                    TransmitError::Transient(format!("SMTP server deferred the message: {error}"))
                } else {
                    TransmitError::Connection(format!("SMTP connection failed: {error}"))
                }
            })),
            Err(_elapsed) => Err(TransmitError::Transient(format!(
                "SMTP server did not answer within {:?}",
                self.timeout
            ))),
        }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, TransmitError> {
        tokio::time::timeout(self.timeout, self.open())
            .await
            .unwrap_or_else(|_| {
                Err(TransmitError::Transient(format!(
                    "connecting to the SMTP server took over {:?}",
                    self.timeout
                )))
            })
    }

    async fn open(&self) -> Result<AsyncSmtpConnection, TransmitError> {
        let server = &self.server;
        let describe = |error: &dyn std::fmt::Display| {
            TransmitError::Transient(format!(
                "cannot reach the SMTP server {}:{}: {error}",
                server.host, server.port
            ))
        };
        // A greeting such as `421 4.7.0 Too many connections` is about the relay.
        let answered = |error: lettre::transport::smtp::Error| refusal(&error).unwrap_or_else(|| describe(&error));
        let tls = || TlsParameters::new(server.host.clone()).map_err(|error| describe(&error));
        let mut connection = if server.security == Security::Implicit {
            // lettre opens this socket itself (and so without no-delay): TLS
            // must start before the greeting, which connect_with_transport reads.
            AsyncSmtpConnection::connect_tokio1(
                (server.host.as_str(), server.port),
                Some(self.timeout),
                &self.hello,
                Some(tls()?),
                None,
            )
            .await
            .map_err(answered)?
        } else {
            let stream = TcpStream::connect((server.host.as_str(), server.port))
                .await
                .map_err(|error| describe(&error))?;
            stream.set_nodelay(true).map_err(|error| describe(&error))?;
            let mut connection = AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
                .await
                .map_err(answered)?;
            let starttls = match server.security {
                Security::Required => true,
                Security::Opportunistic => connection.can_starttls(),
                Security::None | Security::Implicit => false,
            };
            if starttls {
                connection.starttls(tls()?, &self.hello).await.map_err(answered)?;
            }
            connection
        };
        if let Some(credentials) = &server.credentials {
            connection
                .auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(|error| {
                    refusal(&error)
                        .unwrap_or_else(|| TransmitError::Transient(format!("SMTP authentication failed: {error}")))
                })?;
        }
        Ok(connection)
    }
}

/// Closes idle connections above what the replica may use, each time its
/// share changes: a replica that sends nothing more keeps none it no longer
/// holds a lease for.
async fn close_idle_above(mut in_force: watch::Receiver<usize>, idle: Arc<Mutex<Vec<AsyncSmtpConnection>>>) {
    while in_force.changed().await.is_ok() {
        let most = *in_force.borrow_and_update();
        if let Ok(mut idle) = idle.lock() {
            idle.truncate(most);
        }
    }
}

enum TransmitError {
    /// The connection broke before the server answered.
    Connection(String),
    Transient(String),
    Permanent(String),
    /// A refusal about the relay, not the message, and the reply as it was.
    Relay(RelayRefusal, String),
}

/// The refusal in `error`, if the relay answered with one about itself.
fn refusal(error: &lettre::transport::smtp::Error) -> Option<TransmitError> {
    let code: u16 = error.status()?.to_string().parse().ok()?;
    let text = error.to_string();
    // lettre writes "transient error (451): 4.7.0 …": the reply is after the code.
    let reply = text.split_once("): ").map_or(text.as_str(), |(_, reply)| reply);
    classify(code, reply).map(|refusal| TransmitError::Relay(refusal, format!("{code} {reply}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls() {
        let plain = SmtpServer::parse("smtp://127.0.0.1:2525").unwrap();
        assert_eq!(
            (plain.host.as_str(), plain.port, plain.security),
            ("127.0.0.1", 2525, Security::Opportunistic)
        );
        assert!(plain.credentials.is_none());
        let relay = SmtpServer::parse("smtp://user:p%40ss@relay.example.com:587?tls=required").unwrap();
        assert_eq!((relay.port, relay.security), (587, Security::Required));
        assert!(relay.credentials.is_some());
        assert_eq!(SmtpServer::parse("smtps://mail.example.com").unwrap().port, 465);
        assert!(SmtpServer::parse("http://x").is_err());
        assert!(SmtpServer::parse("smtp://x?tls=maybe").is_err());
        assert!(SmtpServer::parse("smtp://u:p@x?tls=none").is_err());
        assert_eq!(percent_decode("p%40ss"), "p@ss");
    }
}
