//! Getting a message out: over a few long-lived SMTP connections ([`smtp`]),
//! or as `.eml` files when no SMTP server is configured (a laptop).

mod smtp;

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use lettre::{
    Message,
    message::{
        Mailbox, MultiPart,
        header::{Header, HeaderName, HeaderValue},
    },
};

use self::smtp::{SmtpPool, SmtpServer};
use crate::{
    email::{Language, Rendered},
    relay::Relay,
};

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
    /// Sends through the relay at `url`, within the relay budget `relay`.
    pub fn smtp(url: &str, connections: usize, timeout: Duration, relay: Arc<Relay>) -> Result<Self, MailConfigError> {
        Ok(Self::Smtp(SmtpPool::new(
            SmtpServer::parse(url)?,
            connections,
            timeout,
            relay,
        )))
    }

    /// Writes `.eml` files into `mail_dir`, made if missing.
    pub fn files(mail_dir: &Path) -> Result<Self, MailConfigError> {
        std::fs::create_dir_all(mail_dir).map_err(|source| MailConfigError::MailDir {
            dir: mail_dir.to_owned(),
            source,
        })?;
        Ok(Self::Files(mail_dir.to_owned()))
    }

    /// How many messages may be in flight at once.
    pub fn concurrency(&self) -> usize {
        match self {
            Self::Smtp(pool) => pool.size(),
            Self::Files(_) => 4,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Smtp(pool) => pool.describe(),
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

#[cfg(test)]
mod tests {
    use dialin_domain::time::now_millis;

    use super::*;

    #[tokio::test]
    async fn a_send_whose_claim_would_run_out_is_not_started() {
        // Nothing listens on this port: a send that starts fails to connect.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let url = format!("smtp://127.0.0.1:{port}?tls=none");
        // No rate in force: a turn is a connection, leased by the relay's first beat.
        let dir = std::env::temp_dir().join(format!("dialin-mail-{}", rand::random::<u64>()));
        let db = dialin_store::Store::connect(&format!("sqlite://{}/notifier.db?mode=rwc", dir.display()))
            .await
            .unwrap();
        dialin_store::schema::migrate::<crate::migration::Migrator>(&db)
            .await
            .unwrap();
        let relay = Relay::new(db.clone(), None, 1, Duration::from_secs(60));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let beating = tokio::spawn(Arc::clone(&relay).run(stopped));
        let mailer = Mailer::smtp(&url, 1, Duration::from_secs(5), relay).unwrap();
        let from = parse_mailbox(dialin_common::defaults::MAIL_FROM).unwrap();
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
        stop.send_replace(true);
        beating.await.unwrap();
        db.close().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn message_has_a_stable_id_and_both_parts() {
        let email = Rendered {
            subject: "Subject",
            text: "plain body".into(),
            html: "<p>html body</p>".into(),
            language: Language::French,
        };
        let from = parse_mailbox(dialin_common::defaults::MAIL_FROM).unwrap();
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
            let from = parse_mailbox(dialin_common::defaults::MAIL_FROM).unwrap();
            let raw = String::from_utf8_lossy(&build_message("d", from, to, email).unwrap().formatted()).into_owned();
            let headers = raw.split("\r\n\r\n").next().unwrap_or_default().to_ascii_lowercase();
            proptest::prop_assert_eq!(headers.matches("\r\nto: ").count() + usize::from(headers.starts_with("to: ")), 1);
            proptest::prop_assert!(!headers.contains("\r\nbcc:"));
        }
    }
}
