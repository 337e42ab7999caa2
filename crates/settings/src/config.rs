//! Settings service configuration: every setting is a flag and an environment variable.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::Parser;
use dialin_common::{defaults, duration::parse as parse_duration, tls::TlsArgs};
use dialin_store::schema::Command;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "dialin-settings",
    version,
    about = "dialin settings service: tenant settings, service numbers and users' dial-in conferencing state"
)]
pub struct Config {
    /// Address the gRPC server listens on.
    #[arg(long, env = "DIALIN_SETTINGS_LISTEN", default_value = defaults::SETTINGS_LISTEN)]
    pub listen: SocketAddr,

    /// sqlite://PATH?mode=rwc or postgres://USER@HOST/DB.
    #[arg(
        long,
        env = "DIALIN_SETTINGS_DATABASE_URL",
        default_value = defaults::SETTINGS_DATABASE_URL,
        hide_env_values = true
    )]
    pub database_url: String,

    /// Where the notifier service listens.
    #[arg(long, env = "DIALIN_NOTIFIER_URL", default_value = defaults::NOTIFIER_URL)]
    pub notifier_url: String,

    /// Bearer tokens and their scopes (see the README). Unset: no
    /// authentication, allowed only on a loopback listen address.
    #[arg(long, env = "DIALIN_SETTINGS_TOKENS_FILE")]
    pub tokens_file: Option<PathBuf>,

    /// File holding the key (64 hex digits) that PINs are hashed with. Unset: a key is
    /// generated and kept beside the database; replicas must share one file.
    #[arg(long, env = "DIALIN_PIN_KEY_FILE")]
    pub pin_key_file: Option<PathBuf>,

    /// File holding the key (64 hex digits) that outbox events are encrypted
    /// with at rest. Unset: generated and kept beside the database.
    #[arg(long, env = "DIALIN_PAYLOAD_KEY_FILE")]
    pub payload_key_file: Option<PathBuf>,

    #[command(flatten)]
    pub tls: TlsArgs,

    /// Migrate the schema at start (true), or only check it is current and
    /// refuse to start otherwise (false: a Job runs `migrate` first).
    #[arg(long, env = "DIALIN_MIGRATE_ON_START", default_value_t = true, action = clap::ArgAction::Set)]
    pub migrate_on_start: bool,

    #[command(subcommand)]
    pub command: Option<Command>,

    /// Where Prometheus scrapes /metrics. Unset: no metrics endpoint.
    #[arg(long, env = "DIALIN_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// An extra plaintext port serving only grpc.health.v1 (for Kubernetes probes).
    #[arg(long, env = "DIALIN_HEALTH_LISTEN")]
    pub health_listen: Option<SocketAddr>,

    /// How long open calls may run after SIGTERM before they are cut.
    #[arg(long, env = "DIALIN_DRAIN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub drain_timeout: Duration,

    /// Longest wait between two tries to hand an event to an unreachable notifier.
    #[arg(long, env = "DIALIN_OUTBOX_MAX_BACKOFF", default_value = "30s", value_parser = parse_duration)]
    pub outbox_max_backoff: Duration,
}

impl Config {
    /// Parses flags only (no process arguments), for embedding the service: in
    /// tests, and anywhere a caller assembles the configuration itself.
    pub fn from_args<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<Self, clap::Error> {
        <Self as Parser>::try_parse_from(std::iter::once("dialin-settings").chain(args))
    }
}
