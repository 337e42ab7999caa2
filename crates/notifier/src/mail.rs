//! Getting a message out: over a few long-lived SMTP connections, or as `.eml`
//! files when no SMTP server is configured (a laptop).
//!
//! The SMTP connections are opened here, not by lettre's pool: lettre 0.11
//! never sets `TCP_NODELAY`, and Nagle then holds the final `.` of every message
//! until the server's delayed ACK (~40 ms a message). Each connection is ours,
//! with no-delay set, and lettre speaks SMTP over it.

use std::{
    path::{Path, PathBuf},
    sync::Mutex,
    time::Duration,
};

use dialin_domain::time::now_millis;
use lettre::{
    Message,
    message::{
        Mailbox, MultiPart,
        header::{Header, HeaderName, HeaderValue},
    },
    transport::smtp::{
        authentication::{Credentials, Mechanism},
        client::{AsyncSmtpConnection, TlsParameters},
        extension::ClientId,
    },
};
use tokio::{net::TcpStream, sync::Semaphore};

use crate::email::{Language, Rendered};

/// Why a message did not leave.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth retrying: connection refused or lost, timeout, a 4xx reply.
    #[error("{0}")]
    Transient(String),
    /// Retrying cannot help: a 5xx reply, or a message that cannot be built.
    #[error("{0}")]
    Permanent(String),
    /// The sender's claim would run out before a send could finish (it waited
    /// too long for a connection): another sender may take the email by now,
    /// so this one does not send it.
    #[error("the claim on the email would expire before the send could finish")]
    ClaimExpiring,
}

#[derive(Debug, thiserror::Error)]
pub enum MailConfigError {
    #[error("DIALIN_SMTP_URL is not a URL: {0}")]
    Url(#[from] url::ParseError),
    #[error("DIALIN_SMTP_URL must start with smtp:// or smtps://, not {0}://")]
    Scheme(String),
    #[error("DIALIN_SMTP_URL has no host")]
    NoHost,
    #[error("DIALIN_SMTP_URL tls= must be required, opportunistic or none, not {0:?}")]
    TlsMode(String),
    #[error("DIALIN_SMTP_URL has credentials but tls=none: they would cross the network in clear")]
    CredentialsWithoutTls,
    #[error("DIALIN_MAIL_FROM {0:?} is not a mailbox (e.g. Audio Conferencing <no-reply@example.com>)")]
    From(String),
    #[error("cannot create the mail directory {dir}: {source}")]
    MailDir { dir: PathBuf, source: std::io::Error },
}

pub fn parse_mailbox(text: &str) -> Result<Mailbox, MailConfigError> {
    text.parse().map_err(|_| MailConfigError::From(text.to_owned()))
}

/// Builds the MIME message: plain text and HTML alternatives, a `Message-ID`
/// derived from the delivery so that a resend after a crash is recognisable,
/// its language, and `Auto-Submitted` so that auto-replies leave it alone.
pub fn build_message(delivery_id: &str, from: Mailbox, to: Mailbox, email: Rendered) -> Result<Message, SendError> {
    Message::builder()
        .from(from)
        .to(to)
        .subject(email.subject)
        .message_id(Some(format!("<{delivery_id}@dialin.notifier>")))
        .header(AutoSubmitted)
        .header(ContentLanguage(email.language.tag()))
        .multipart(MultiPart::alternative_plain_html(email.text, email.html))
        .map_err(|error| SendError::Permanent(format!("cannot build the message: {error}")))
}

/// `Auto-Submitted: auto-generated` (RFC 3834).
#[derive(Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_owned())
    }
}

/// `Content-Language` (RFC 3282): the language the email is written in.
#[derive(Clone)]
struct ContentLanguage(&'static str);

impl Header for ContentLanguage {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Content-Language")
    }

    fn parse(text: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Language::from_tag(text)
            .map(|language| Self(language.tag()))
            .ok_or_else(|| format!("dialin writes no emails in {text}").into())
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.to_owned())
    }
}

pub enum Mailer {
    Smtp(SmtpPool),
    Files(PathBuf),
}

impl Mailer {
    pub fn from_config(
        smtp_url: Option<&str>,
        mail_dir: &Path,
        connections: usize,
        timeout: Duration,
    ) -> Result<Self, MailConfigError> {
        match smtp_url {
            Some(url) => Ok(Self::Smtp(SmtpPool::new(SmtpServer::parse(url)?, connections, timeout))),
            None => {
                std::fs::create_dir_all(mail_dir).map_err(|source| MailConfigError::MailDir {
                    dir: mail_dir.to_owned(),
                    source,
                })?;
                Ok(Self::Files(mail_dir.to_owned()))
            }
        }
    }

    /// How many messages may be in flight at once.
    pub fn concurrency(&self) -> usize {
        match self {
            Self::Smtp(pool) => pool.size,
            Self::Files(_) => 4,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Smtp(pool) => format!(
                "SMTP {}:{} ({} connections)",
                pool.server.host, pool.server.port, pool.size
            ),
            Self::Files(dir) => format!(".eml files in {}", dir.display()),
        }
    }

    /// Sends `message`, unless the claim on it (held until `claim_until`,
    /// milliseconds since the epoch) would run out before an SMTP send could
    /// finish (checked once a connection is free; writing a file cannot wait).
    pub async fn send(&self, delivery_id: &str, message: &Message, claim_until: i64) -> Result<(), SendError> {
        match self {
            Self::Smtp(pool) => pool.send(message, claim_until).await,
            Self::Files(dir) => write_eml(dir, delivery_id, &message.formatted())
                .await
                .map_err(|error| SendError::Transient(format!("cannot write the .eml file: {error}"))),
        }
    }
}

/// Writes `<delivery_id>.eml` whole or not at all (a temporary file, then a rename).
async fn write_eml(dir: &Path, delivery_id: &str, bytes: &[u8]) -> std::io::Result<()> {
    let partial = dir.join(format!(".{delivery_id}.eml.partial"));
    tokio::fs::write(&partial, bytes).await?;
    tokio::fs::rename(&partial, dir.join(format!("{delivery_id}.eml"))).await
}

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

pub struct SmtpServer {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
}

impl SmtpServer {
    fn parse(text: &str) -> Result<Self, MailConfigError> {
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
/// and puts it back after a successful send.
pub struct SmtpPool {
    server: SmtpServer,
    size: usize,
    idle: Mutex<Vec<AsyncSmtpConnection>>,
    permits: Semaphore,
    timeout: Duration,
    hello: ClientId,
}

impl SmtpPool {
    fn new(server: SmtpServer, size: usize, timeout: Duration) -> Self {
        Self {
            server,
            size,
            idle: Mutex::new(Vec::with_capacity(size)),
            permits: Semaphore::new(size),
            timeout,
            hello: ClientId::default(),
        }
    }

    async fn send(&self, message: &Message, claim_until: i64) -> Result<(), SendError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| SendError::Transient("the SMTP pool is closed".into()))?;
        if now_millis() + i64::try_from(self.timeout.as_millis()).unwrap_or(i64::MAX / 2) > claim_until {
            return Err(SendError::ClaimExpiring);
        }
        let bytes = message.formatted();
        let idle = self.idle.lock().map(|mut idle| idle.pop()).unwrap_or(None);
        let (mut connection, reused) = match idle {
            Some(connection) => (connection, true),
            None => (self.connect().await?, false),
        };
        let mut result = self.transmit(&mut connection, message, &bytes).await;
        // An idle connection the server closed fails before any reply: once
        // more on a fresh connection, so that an idle timeout costs no retry delay.
        if reused && matches!(&result, Err(TransmitError::Connection(_))) {
            connection = self.connect().await?;
            result = self.transmit(&mut connection, message, &bytes).await;
        }
        match result {
            Ok(()) => {
                if let Ok(mut idle) = self.idle.lock() {
                    idle.push(connection);
                }
                Ok(())
            }
            Err(TransmitError::Connection(reason) | TransmitError::Transient(reason)) => {
                Err(SendError::Transient(reason))
            }
            Err(TransmitError::Permanent(reason)) => Err(SendError::Permanent(reason)),
        }
    }

    async fn transmit(
        &self,
        connection: &mut AsyncSmtpConnection,
        message: &Message,
        bytes: &[u8],
    ) -> Result<(), TransmitError> {
        match tokio::time::timeout(self.timeout, connection.send(message.envelope(), bytes)).await {
            Ok(Ok(_response)) => Ok(()),
            Ok(Err(error)) if error.is_permanent() => Err(TransmitError::Permanent(format!(
                "SMTP server refused the message: {error}"
            ))),
            Ok(Err(error)) if error.is_transient() => Err(TransmitError::Transient(format!(
                "SMTP server deferred the message: {error}"
            ))),
            Ok(Err(error)) => Err(TransmitError::Connection(format!("SMTP connection failed: {error}"))),
            Err(_elapsed) => Err(TransmitError::Transient(format!(
                "SMTP server did not answer within {:?}",
                self.timeout
            ))),
        }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        tokio::time::timeout(self.timeout, self.open())
            .await
            .unwrap_or_else(|_| Err(format!("connecting to the SMTP server took over {:?}", self.timeout)))
            .map_err(SendError::Transient)
    }

    async fn open(&self) -> Result<AsyncSmtpConnection, String> {
        let server = &self.server;
        let describe = |error: &dyn std::fmt::Display| {
            format!("cannot reach the SMTP server {}:{}: {error}", server.host, server.port)
        };
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
            .map_err(|error| describe(&error))?
        } else {
            let stream = TcpStream::connect((server.host.as_str(), server.port))
                .await
                .map_err(|error| describe(&error))?;
            stream.set_nodelay(true).map_err(|error| describe(&error))?;
            let mut connection = AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
                .await
                .map_err(|error| describe(&error))?;
            let starttls = match server.security {
                Security::Required => true,
                Security::Opportunistic => connection.can_starttls(),
                Security::None | Security::Implicit => false,
            };
            if starttls {
                connection
                    .starttls(tls()?, &self.hello)
                    .await
                    .map_err(|error| describe(&error))?;
            }
            connection
        };
        if let Some(credentials) = &server.credentials {
            connection
                .auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(|error| format!("SMTP authentication failed: {error}"))?;
        }
        Ok(connection)
    }
}

enum TransmitError {
    /// The connection broke before the server answered.
    Connection(String),
    Transient(String),
    Permanent(String),
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

    #[tokio::test]
    async fn a_send_whose_claim_would_run_out_is_not_started() {
        // Nothing listens on this port: a send that starts fails to connect.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let url = format!("smtp://127.0.0.1:{port}?tls=none");
        let mailer = Mailer::from_config(Some(&url), Path::new("unused"), 1, Duration::from_secs(5)).unwrap();
        let from = parse_mailbox("Audio Conferencing <no-reply@localhost>").unwrap();
        let to = parse_mailbox("Ann <ann@example.com>").unwrap();
        let email = Rendered {
            subject: "Subject",
            text: "plain".into(),
            html: "<p>html</p>".into(),
            language: Language::English,
        };
        let message = build_message("d-1", from, to, email).unwrap();
        // Four seconds left of the claim, five of SMTP timeout: not started.
        let expiring = mailer.send("d-1", &message, now_millis() + 4_000).await;
        assert!(matches!(expiring, Err(SendError::ClaimExpiring)), "{expiring:?}");
        let started = mailer.send("d-1", &message, now_millis() + 60_000).await;
        assert!(matches!(started, Err(SendError::Transient(_))), "{started:?}");
    }

    #[test]
    fn message_has_a_stable_id_and_both_parts() {
        let email = Rendered {
            subject: "Subject",
            text: "plain body".into(),
            html: "<p>html body</p>".into(),
            language: Language::French,
        };
        let from = parse_mailbox("Audio Conferencing <no-reply@localhost>").unwrap();
        let to = parse_mailbox("Ann <ann@example.com>").unwrap();
        let message = build_message("d-1", from, to, email).unwrap();
        let raw = String::from_utf8(message.formatted()).unwrap();
        assert!(raw.contains("Message-ID: <d-1@dialin.notifier>"), "{raw}");
        assert!(
            raw.contains("Auto-Submitted: auto-generated") && raw.contains("Content-Language: fr"),
            "{raw}"
        );
        assert!(raw.contains("multipart/alternative") && raw.contains("text/html"));
    }

    proptest::proptest! {
        /// Any display name the validators accept, however odd its Unicode,
        /// yields one well-formed message: one To, no injected header.
        #[test]
        fn odd_names_cannot_inject_headers(name in "\\PC{1,60}") {
            proptest::prop_assume!(dialin_domain::validate::display_name("n", &name).is_ok());
            let letter = crate::email::Letter {
                recipient_name: name.clone(),
                sender_name: Some(name.clone()),
                details: crate::email::Details::new("1234567", "+14255550100", ""),
            };
            let email = crate::email::render(
                dialin_proto::notifier::v1::EmailKind::ConferenceInfo,
                Language::English,
                &letter,
                None,
            )
            .unwrap();
            let to = Mailbox::new(Some(name.clone()), "ann@example.com".parse().unwrap());
            let from = parse_mailbox("Audio Conferencing <no-reply@localhost>").unwrap();
            let raw = String::from_utf8_lossy(&build_message("d", from, to, email).unwrap().formatted()).into_owned();
            let headers = raw.split("\r\n\r\n").next().unwrap_or_default().to_ascii_lowercase();
            proptest::prop_assert_eq!(headers.matches("\r\nto: ").count() + usize::from(headers.starts_with("to: ")), 1);
            proptest::prop_assert!(!headers.contains("\r\nbcc:"));
        }
    }
}
