//! Notifier configuration: every setting is a flag and an environment variable.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::Parser;
use dialin_common::{defaults, duration::parse as parse_duration, tls::TlsArgs};
use dialin_proto::notifier::v1::EmailKind;
use dialin_store::schema::Command;

use crate::relay::Cap;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "dialin-notifier",
    version,
    about = "dialin notifier service: decides whether a conferencing email may leave, and sends it"
)]
pub struct Config {
    /// Address the gRPC server listens on.
    #[arg(long, env = "DIALIN_NOTIFIER_LISTEN", default_value = defaults::NOTIFIER_LISTEN)]
    pub listen: SocketAddr,

    /// sqlite://PATH?mode=rwc or postgres://USER@HOST/DB.
    #[arg(
        long,
        env = "DIALIN_NOTIFIER_DATABASE_URL",
        default_value = defaults::NOTIFIER_DATABASE_URL,
        hide_env_values = true
    )]
    pub database_url: String,

    /// smtp://HOST:PORT, smtp://USER:PASS@HOST:587?tls=required, smtps://HOST:465.
    /// Unset: emails are written as .eml files to the mail directory.
    #[arg(long, env = "DIALIN_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// Where emails are written when no SMTP server is configured.
    #[arg(long, env = "DIALIN_MAIL_DIR", default_value = defaults::MAIL_DIR)]
    pub mail_dir: PathBuf,

    /// The sender of every email, unless a tenant overrides it.
    #[arg(
        long,
        env = "DIALIN_MAIL_FROM",
        default_value = defaults::MAIL_FROM
    )]
    pub mail_from: String,

    /// SMTP connections the whole deployment keeps open to the relay, shared
    /// out among the notifier replicas that send: at most this many emails are
    /// in flight at once, each on a connection of its own.
    #[arg(long, env = "DIALIN_SMTP_CONNECTIONS", default_value_t = defaults::SMTP_CONNECTIONS, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub smtp_connections: u16,

    /// The most the whole deployment sends, e.g. 50/s or 30/min (the relay's
    /// limit). Unset: no cap; a relay that throttles still slows it down.
    #[arg(long, env = "DIALIN_SMTP_MAX_RATE", value_parser = parse_rate)]
    pub smtp_max_rate: Option<Cap>,

    /// How long sending pauses when the relay answers with a quota or a block
    /// (a daily limit, "sender throttled") and does not say for how long.
    #[arg(long, env = "DIALIN_SMTP_QUOTA_PAUSE", default_value = "15m", value_parser = parse_duration)]
    pub smtp_quota_pause: Duration,

    /// Longest wait for the SMTP server on one step (connect, a command, the message).
    #[arg(long, env = "DIALIN_SMTP_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub smtp_timeout: Duration,

    /// Wait before the first retry of a transiently failed email; doubles each time.
    #[arg(long, env = "DIALIN_RETRY_INITIAL", default_value = "30s", value_parser = parse_duration)]
    pub retry_initial: Duration,

    /// Longest wait between two retries.
    #[arg(long, env = "DIALIN_RETRY_MAX", default_value = "30m", value_parser = parse_duration)]
    pub retry_max: Duration,

    /// After this long since the email was queued, a transient failure is final (FAILED).
    #[arg(long, env = "DIALIN_RETRY_HORIZON", default_value = "24h", value_parser = parse_duration)]
    pub retry_horizon: Duration,

    /// File holding the key (64 hex digits) that pending emails' content is
    /// encrypted with at rest. Unset: generated and kept beside the database.
    #[arg(long, env = "DIALIN_PAYLOAD_KEY_FILE")]
    pub payload_key_file: Option<PathBuf>,

    #[command(flatten)]
    pub tls: TlsArgs,

    /// Migrate the schema at start (true), or only check it is current and
    /// refuse to start otherwise (false: a Job runs `migrate` first).
    #[arg(long, env = "DIALIN_MIGRATE_ON_START", default_value_t = true, action = clap::ArgAction::Set)]
    pub migrate_on_start: bool,

    #[command(subcommand)]
    pub command: Option<NotifierCommand>,

    /// Where Prometheus scrapes /metrics. Unset: no metrics endpoint.
    #[arg(long, env = "DIALIN_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// An extra plaintext port serving only grpc.health.v1 (for Kubernetes probes).
    #[arg(long, env = "DIALIN_HEALTH_LISTEN")]
    pub health_listen: Option<SocketAddr>,

    /// How long open calls may run after SIGTERM before they are cut.
    #[arg(long, env = "DIALIN_DRAIN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
}

/// What the notifier is asked to do besides serving.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum NotifierCommand {
    #[command(flatten)]
    Schema(Command),
    /// Write one kind of email, rendered with sample values, as an .eml and an
    /// .html file to open in a mail client or a browser. Needs no database.
    Preview(PreviewArgs),
}

#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct PreviewArgs {
    /// WELCOME, PIN_RESET, SETTINGS_CHANGED, DISABLED or CONFERENCE_INFO.
    #[arg(long, value_parser = parse_kind)]
    pub kind: EmailKind,
    /// The recipient's locale (BCP 47, e.g. fr-FR); unwritten languages fall back to English.
    #[arg(long, default_value = "en-US", value_parser = parse_locale)]
    pub locale: String,
    /// Render as a tenant that overrides the sender with this name would send it.
    #[arg(long)]
    pub sender_name: Option<String>,
    /// Where the files go (created if missing).
    #[arg(long, default_value = ".")]
    pub out_dir: PathBuf,
}

/// `50/s`, `30/min`, `1000/h` (or `/sec`, `/m`, `/hour`).
fn parse_rate(text: &str) -> Result<Cap, String> {
    let invalid = || format!("{text:?} is not a rate: write messages per unit, e.g. 50/s, 30/min or 1000/h");
    let (count, unit) = text.trim().split_once('/').ok_or_else(invalid)?;
    let count: f64 = count.trim().parse().map_err(|_| invalid())?;
    let seconds = match unit.trim() {
        "s" | "sec" | "second" => 1.0,
        "m" | "min" | "minute" => 60.0,
        "h" | "hour" => 3600.0,
        _ => return Err(invalid()),
    };
    if !(count.is_finite() && count > 0.0) {
        return Err(format!("{text:?}: the rate must be more than 0 messages"));
    }
    Ok(Cap {
        per_second: count / seconds,
        window: seconds,
    })
}

fn parse_kind(text: &str) -> Result<EmailKind, String> {
    EmailKind::from_str_name(&text.to_ascii_uppercase())
        .filter(|kind| *kind != EmailKind::Unspecified)
        .ok_or_else(|| "expected WELCOME, PIN_RESET, SETTINGS_CHANGED, DISABLED or CONFERENCE_INFO".to_owned())
}

fn parse_locale(text: &str) -> Result<String, String> {
    dialin_domain::validate::locale("--locale", text)
        .map(|()| text.to_owned())
        .map_err(|invalid| invalid.message)
}

impl Config {
    /// Parses flags only (no process arguments), for embedding the service: in
    /// tests, and anywhere a caller assembles the configuration itself.
    pub fn from_args<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<Self, clap::Error> {
        <Self as Parser>::try_parse_from(std::iter::once("dialin-notifier").chain(args))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_messages_per_unit() {
        let cap = |per_second, window| Ok(Cap { per_second, window });
        assert_eq!(parse_rate("50/s"), cap(50.0, 1.0));
        assert_eq!(parse_rate("30/min"), cap(0.5, 60.0));
        assert_eq!(parse_rate(" 3600 / h "), cap(1.0, 3600.0));
        for bad in ["50", "50/day", "0/s", "-1/s", "x/s", "inf/s"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }
}
