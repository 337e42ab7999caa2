//! The command line, as clap reads it: the global flags (each also an
//! environment variable, as the contract fixes them), every subcommand with an
//! example in its `--help`, and the enum arguments in lowercase with dashes,
//! mapped to the proto enums. Parsing only: what the commands do is elsewhere.

use std::path::PathBuf;

use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum, parser::ValueSource};
use dialin_proto::{
    notifier::v1::{DeliveryStatus, EmailKind},
    settings::v1::{NumberType, Provider},
};

use crate::config::Origin;

#[derive(Parser, Debug)]
#[command(
    name = "dialinctl",
    version,
    about = "Operate dial-in conferencing: tenant settings, service numbers, users, licenses, emails",
    after_help = "Example:\n  dialinctl --tenant contoso user get alice@contoso.com"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug)]
pub struct GlobalArgs {
    /// The settings service: host:port, http://host:port or https://host:port [default: 127.0.0.1:50051]
    #[arg(long, env = "DIALIN_ADDR", global = true, value_name = "ADDR")]
    pub addr: Option<String>,
    /// A file holding the bearer token (the token itself is never taken on the command line)
    #[arg(long, env = "DIALIN_TOKEN_FILE", global = true, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// The PEM file of the CA that signed the service's certificate: speak TLS
    #[arg(long, env = "DIALIN_CA", global = true, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// The tenant to act on
    #[arg(long, env = "DIALIN_TENANT", global = true, value_name = "TENANT_ID")]
    pub tenant: Option<String>,
    /// table or json [default: table on a terminal, json when piped]
    #[arg(long, short = 'o', env = "DIALIN_OUTPUT", global = true, value_enum)]
    pub output: Option<OutputMode>,
    /// Use this context of the config file instead of its current one
    #[arg(long, env = "DIALIN_CONTEXT", global = true, value_name = "NAME")]
    pub context: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputMode {
    Table,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Named contexts (address, token file, CA, tenant) in the config file
    #[command(
        subcommand,
        after_help = "Example:\n  dialinctl context set prod --addr https://dialin.example.com:443 --ca ca.pem --token-file ~/.dialin-token --tenant contoso"
    )]
    Context(ContextCommand),
    /// Print a shell completion script
    #[command(after_help = "Example:\n  dialinctl completions bash > /etc/bash_completion.d/dialinctl")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    #[command(flatten)]
    Remote(RemoteCommand),
}

/// The commands that call the settings service for one tenant.
#[derive(Subcommand, Debug)]
pub enum RemoteCommand {
    /// The tenant's bridge settings (the automatic-email switch, PIN length, sender)
    #[command(
        subcommand,
        after_help = "Example:\n  dialinctl tenant set --automatically-send-emails-to-users=false"
    )]
    Tenant(TenantCommand),
    /// The bridge's service numbers (the dial-in numbers users are given)
    #[command(
        subcommand,
        after_help = "Example:\n  dialinctl numbers add +14255550100 --type toll --country US"
    )]
    Numbers(NumbersCommand),
    /// One user's conferencing state (USER is a user_id or an email)
    #[command(subcommand, after_help = "Example:\n  dialinctl user reset-pin alice@contoso.com")]
    User(UserCommand),
    /// Licensing many users from a CSV file
    #[command(subcommand, after_help = "Example:\n  dialinctl licenses import users.csv --yes")]
    Licenses(LicensesCommand),
    /// The emails the notifier recorded, and why each was (not) sent
    #[command(
        subcommand,
        after_help = "Example:\n  dialinctl deliveries list alice@contoso.com --status suppressed"
    )]
    Deliveries(DeliveriesCommand),
    /// Why did this user get (no) email? The switch, the user, their emails
    #[command(after_help = "Example:\n  dialinctl why alice@contoso.com")]
    Why {
        /// A user_id or an email
        user: String,
    },
    /// Check a PIN as the bridge does (5 wrong tries lock a conference ID out for 15 minutes)
    #[command(subcommand, after_help = "Example:\n  dialinctl pin verify 1234567 < pin.txt")]
    Pin(PinCommand),
    /// One kind of email with sample values, as the tenant's users would see it
    #[command(after_help = "Example:\n  dialinctl preview --kind welcome --locale fr-FR")]
    Preview {
        #[arg(long, value_enum, ignore_case = true)]
        kind: KindArg,
        /// BCP 47, e.g. fr-FR [default: the tenant's default locale, else English]
        #[arg(long)]
        locale: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum PinCommand {
    /// Does the PIN read from stdin open this conference ID? (Never on the command line, where `ps` shows it)
    #[command(after_help = "Example:\n  dialinctl pin verify 1234567 < pin.txt")]
    Verify {
        /// The 7-digit conference ID
        conference_id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TenantCommand {
    /// Show the tenant's settings
    #[command(after_help = "Example:\n  dialinctl tenant get")]
    Get,
    /// Change some of the tenant's settings
    #[command(
        after_help = "Example:\n  dialinctl tenant set --automatically-send-emails-to-users=false --pin-length 6"
    )]
    Set(TenantSetArgs),
    /// Put the tenant's settings back at their defaults
    #[command(after_help = "Example:\n  dialinctl tenant reset")]
    Reset,
}

#[derive(Args, Debug)]
pub struct TenantSetArgs {
    #[command(flatten)]
    pub changes: TenantChanges,
    /// Apply only if the settings are still at this version (else ABORTED)
    #[arg(long, value_name = "V")]
    pub expected_version: Option<u64>,
}

#[derive(Args, Debug)]
#[group(required = true, multiple = true)]
pub struct TenantChanges {
    /// Email users automatically when their conferencing state changes
    #[arg(long, value_name = "true|false")]
    pub automatically_send_emails_to_users: Option<bool>,
    /// Digits in PINs generated from now on (4 to 12)
    #[arg(long, value_name = "N")]
    pub pin_length: Option<u32>,
    /// Send the tenant's emails from the address below instead of the service's
    #[arg(long, value_name = "true|false")]
    pub send_email_from_override: Option<bool>,
    #[arg(long, value_name = "ADDRESS")]
    pub send_email_from_address: Option<String>,
    #[arg(long, value_name = "NAME")]
    pub send_email_from_display_name: Option<String>,
    /// BCP 47, e.g. fr-FR: the language of emails to users without a locale
    #[arg(long, value_name = "LOCALE")]
    pub default_locale: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum NumbersCommand {
    /// Add a service number to the tenant's bridge
    #[command(after_help = "Example:\n  dialinctl numbers add +18005550199 --type toll-free --country US")]
    Add {
        /// E.164, e.g. +14255550100
        number: String,
        #[arg(long = "type", value_enum, ignore_case = true)]
        number_type: NumberTypeArg,
        /// ISO 3166-1 alpha-2, e.g. US
        #[arg(long)]
        country: Option<String>,
    },
    /// List the bridge's service numbers
    #[command(after_help = "Example:\n  dialinctl numbers list --output json")]
    List,
    /// Give every user whose default number of that type is FROM the number TO instead
    #[command(
        after_help = "Example:\n  dialinctl numbers replace --from +14255550100 --to +14255550111 --type toll --yes"
    )]
    Replace {
        #[arg(long, value_name = "NUMBER")]
        from: String,
        #[arg(long, value_name = "NUMBER")]
        to: String,
        #[arg(long = "type", value_enum, ignore_case = true)]
        number_type: NumberTypeArg,
        /// Do not ask for confirmation (needed when stdin is not a terminal)
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Show a user
    #[command(after_help = "Example:\n  dialinctl user get alice@contoso.com")]
    Get {
        /// A user_id or an email
        user: String,
    },
    /// List the tenant's users, every page
    #[command(after_help = "Example:\n  dialinctl user list --licensed --provider hosted --email-prefix al")]
    List(ListUsersArgs),
    /// License a user: puts them on the hosted bridge and prints their PIN (shown once)
    #[command(
        after_help = "Example:\n  dialinctl user license alice --email alice@contoso.com --name \"Alice Smith\" --locale en-US"
    )]
    License(LicenseArgs),
    /// Remove a user's license (emails them DISABLED)
    #[command(after_help = "Example:\n  dialinctl user unlicense alice@contoso.com")]
    Unlicense {
        /// A user_id or an email
        user: String,
    },
    /// Give a user a new PIN and print it (shown once)
    #[command(after_help = "Example:\n  dialinctl user reset-pin alice@contoso.com")]
    ResetPin {
        /// A user_id or an email
        user: String,
        /// The user resets their own PIN: no email is sent
        #[arg(long)]
        self_service: bool,
    },
    /// Give a user a new conference ID (the old one stops working)
    #[command(after_help = "Example:\n  dialinctl user reset-conference-id alice@contoso.com")]
    ResetConferenceId {
        /// A user_id or an email
        user: String,
    },
    /// Change a user's default dial-in numbers
    #[command(
        after_help = "Example:\n  dialinctl user set-numbers alice@contoso.com --toll +14255550111 --toll-free \"\""
    )]
    SetNumbers(SetNumbersArgs),
    /// Move a user to the hosted bridge (prints a new PIN), a third party or none
    #[command(
        after_help = "Example:\n  dialinctl user set-provider alice@contoso.com --provider third-party --provider-name \"Acme Audio\""
    )]
    SetProvider {
        /// A user_id or an email
        user: String,
        #[arg(long, value_enum, ignore_case = true)]
        provider: ProviderArg,
        /// The third-party provider's name (required for third-party)
        #[arg(long)]
        provider_name: Option<String>,
    },
    /// Email a user their conference information (sent even when automatic emails are off; never the PIN)
    #[command(after_help = "Example:\n  dialinctl user send-info alice@contoso.com --to assistant@contoso.com")]
    SendInfo {
        /// A user_id or an email
        user: String,
        /// Another address to send it to [default: the user's email]
        #[arg(long, value_name = "ADDRESS")]
        to: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct ListUsersArgs {
    /// Only licensed users
    #[arg(long, conflicts_with = "unlicensed")]
    pub licensed: bool,
    /// Only unlicensed users
    #[arg(long)]
    pub unlicensed: bool,
    #[arg(long, value_enum, ignore_case = true)]
    pub provider: Option<ProviderArg>,
    /// Only users whose default toll number is this one
    #[arg(long, value_name = "NUMBER")]
    pub toll_number: Option<String>,
    /// Only users whose email starts with this (any case)
    #[arg(long, value_name = "PREFIX")]
    pub email_prefix: Option<String>,
    /// Users per call (1 to 1000)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub page_size: Option<u32>,
    /// Stop after this many users [default: all]
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
}

#[derive(Args, Debug)]
pub struct LicenseArgs {
    pub user_id: String,
    #[arg(long)]
    pub email: String,
    /// The display name
    #[arg(long)]
    pub name: String,
    /// BCP 47, e.g. fr-FR
    #[arg(long)]
    pub locale: Option<String>,
    /// ISO 3166-1 alpha-2: picks the default toll number of that country
    #[arg(long, value_name = "CC")]
    pub usage_location: Option<String>,
    #[arg(long, value_name = "NUMBER")]
    pub toll_number: Option<String>,
    #[arg(long, value_name = "NUMBER")]
    pub toll_free_number: Option<String>,
}

#[derive(Args, Debug)]
pub struct SetNumbersArgs {
    /// A user_id or an email
    pub user: String,
    #[command(flatten)]
    pub numbers: NumberChanges,
}

#[derive(Args, Debug)]
#[group(required = true, multiple = true)]
pub struct NumberChanges {
    /// The default toll number
    #[arg(long, value_name = "NUMBER")]
    pub toll: Option<String>,
    /// The default toll-free number ("" clears it)
    #[arg(long, value_name = "NUMBER")]
    pub toll_free: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum LicensesCommand {
    /// License the users of a CSV file (user_id,email,display_name,locale,usage_location,toll_number),
    /// resumably: a rerun licenses only what is missing
    #[command(after_help = "Example:\n  dialinctl licenses import users.csv --results users.results.csv --yes")]
    Import(ImportArgs),
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    pub file: PathBuf,
    /// Where the results (with the PINs) go [default: FILE.results.csv beside FILE]
    #[arg(long, value_name = "OUT.csv")]
    pub results: Option<PathBuf>,
    /// Do not ask for confirmation (needed when stdin is not a terminal)
    #[arg(long)]
    pub yes: bool,
    /// Check the file and say what would be sent; change nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Subcommand, Debug)]
pub enum DeliveriesCommand {
    /// The tenant's (or one user's) emails, newest first
    #[command(after_help = "Example:\n  dialinctl deliveries list alice@contoso.com --status failed --limit 10")]
    List {
        /// Only this user's (a user_id or an email)
        user: Option<String>,
        #[arg(long, value_enum, ignore_case = true)]
        status: Option<StatusArg>,
        /// At most this many
        #[arg(long, value_name = "N", default_value_t = 50)]
        limit: usize,
    },
    /// One email's record
    #[command(after_help = "Example:\n  dialinctl deliveries get 0190a1b2-…")]
    Get { id: String },
    /// Put a FAILED email back in the queue
    #[command(after_help = "Example:\n  dialinctl deliveries retry 0190a1b2-…")]
    Retry { id: String },
}

#[derive(Subcommand, Debug)]
pub enum ContextCommand {
    /// Make NAME the current context
    #[command(after_help = "Example:\n  dialinctl context use prod")]
    Use { name: String },
    /// List the contexts
    #[command(after_help = "Example:\n  dialinctl context list")]
    List,
    /// Create or change context NAME from the --addr, --token-file, --ca and --tenant given here
    #[command(
        after_help = "Example:\n  dialinctl context set prod --addr https://dialin.example.com:443 --ca ca.pem --token-file ~/.dialin-token --tenant contoso"
    )]
    Set { name: String },
    /// Show what the next command would use, and where each setting comes from
    #[command(after_help = "Example:\n  dialinctl --context prod context show")]
    Show,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum NumberTypeArg {
    Toll,
    TollFree,
}

impl From<NumberTypeArg> for NumberType {
    fn from(value: NumberTypeArg) -> Self {
        match value {
            NumberTypeArg::Toll => Self::Toll,
            NumberTypeArg::TollFree => Self::TollFree,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProviderArg {
    Hosted,
    ThirdParty,
    None,
}

impl From<ProviderArg> for Provider {
    fn from(value: ProviderArg) -> Self {
        match value {
            ProviderArg::Hosted => Self::Hosted,
            ProviderArg::ThirdParty => Self::ThirdParty,
            ProviderArg::None => Self::None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StatusArg {
    Pending,
    Sent,
    Suppressed,
    Superseded,
    Failed,
}

impl From<StatusArg> for DeliveryStatus {
    fn from(value: StatusArg) -> Self {
        match value {
            StatusArg::Pending => Self::Pending,
            StatusArg::Sent => Self::Sent,
            StatusArg::Suppressed => Self::Suppressed,
            StatusArg::Superseded => Self::Superseded,
            StatusArg::Failed => Self::Failed,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    Welcome,
    PinReset,
    SettingsChanged,
    Disabled,
    ConferenceInfo,
}

impl From<KindArg> for EmailKind {
    fn from(value: KindArg) -> Self {
        match value {
            KindArg::Welcome => Self::Welcome,
            KindArg::PinReset => Self::PinReset,
            KindArg::SettingsChanged => Self::SettingsChanged,
            KindArg::Disabled => Self::Disabled,
            KindArg::ConferenceInfo => Self::ConferenceInfo,
        }
    }
}

/// A global setting given on the command line or in the environment, and which.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Given<T> {
    pub value: T,
    pub origin: Origin,
}

/// The global flags, each with where it came from (a flag or a variable).
#[derive(Clone, Debug, Default)]
pub struct Globals {
    pub addr: Option<Given<String>>,
    pub token_file: Option<Given<PathBuf>>,
    pub ca: Option<Given<PathBuf>>,
    pub tenant: Option<Given<String>>,
    pub output: Option<OutputMode>,
    pub context: Option<String>,
}

/// What the command line asks for.
pub struct Invocation {
    pub command: Command,
    pub globals: Globals,
}

/// Reads the command line; a usage error exits here with code 2 (clap's).
pub fn parse() -> Invocation {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    let global = cli.global;
    Invocation {
        globals: Globals {
            addr: given(&matches, global.addr, "addr", "DIALIN_ADDR"),
            token_file: given(&matches, global.token_file, "token_file", "DIALIN_TOKEN_FILE"),
            ca: given(&matches, global.ca, "ca", "DIALIN_CA"),
            tenant: given(&matches, global.tenant, "tenant", "DIALIN_TENANT"),
            output: global.output,
            context: global.context,
        },
        command: cli.command,
    }
}

/// `value` of the global flag `id`, with where it came from.
fn given<T>(matches: &ArgMatches, value: Option<T>, id: &str, variable: &'static str) -> Option<Given<T>> {
    let origin = match matches.value_source(id) {
        Some(ValueSource::EnvVariable) => Origin::Env(variable),
        _ => Origin::Flag,
    };
    value.map(|value| Given { value, origin })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn try_parse(args: &[&str]) -> Result<ArgMatches, clap::Error> {
        Cli::command().try_get_matches_from(args)
    }

    #[test]
    fn the_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn enums_take_lowercase_with_dashes_and_map_to_the_proto_names() {
        let matches = try_parse(&["dialinctl", "numbers", "add", "+14255550100", "--type", "toll-free"]).unwrap();
        let cli = Cli::from_arg_matches(&matches).unwrap();
        let Command::Remote(RemoteCommand::Numbers(NumbersCommand::Add { number_type, .. })) = cli.command else {
            panic!("numbers add");
        };
        assert_eq!(NumberType::from(number_type).as_str_name(), "TOLL_FREE");
        assert_eq!(Provider::from(ProviderArg::ThirdParty).as_str_name(), "THIRD_PARTY");
        assert_eq!(EmailKind::from(KindArg::PinReset).as_str_name(), "PIN_RESET");
        assert_eq!(DeliveryStatus::from(StatusArg::Suppressed).as_str_name(), "SUPPRESSED");
        assert!(try_parse(&["dialinctl", "numbers", "add", "+14255550100", "--type", "TOLL_FREE"]).is_err());
        assert!(try_parse(&["dialinctl", "numbers", "add", "+14255550100", "--type", "TOLL-FREE"]).is_ok());
    }

    #[test]
    fn booleans_are_spelled_out_and_a_change_is_required() {
        let matches = try_parse(&[
            "dialinctl",
            "tenant",
            "set",
            "--automatically-send-emails-to-users=false",
        ])
        .unwrap();
        let cli = Cli::from_arg_matches(&matches).unwrap();
        let Command::Remote(RemoteCommand::Tenant(TenantCommand::Set(set))) = cli.command else {
            panic!("tenant set");
        };
        assert_eq!(set.changes.automatically_send_emails_to_users, Some(false));
        assert!(try_parse(&["dialinctl", "tenant", "set"]).is_err());
        assert!(try_parse(&["dialinctl", "tenant", "set", "--expected-version", "3"]).is_err());
        assert!(try_parse(&["dialinctl", "user", "set-numbers", "alice"]).is_err());
    }

    #[test]
    fn global_flags_go_anywhere() {
        let matches = try_parse(&["dialinctl", "user", "get", "alice", "--tenant", "t", "-o", "json"]).unwrap();
        assert_eq!(matches.value_source("tenant"), Some(ValueSource::CommandLine));
        let cli = Cli::from_arg_matches(&matches).unwrap();
        assert_eq!(cli.global.tenant.as_deref(), Some("t"));
        assert_eq!(cli.global.output, Some(OutputMode::Json));
    }

    #[test]
    fn every_subcommand_has_an_example() {
        fn walk(command: &clap::Command, path: &str) {
            for sub in command.get_subcommands().filter(|sub| sub.get_name() != "help") {
                let path = format!("{path} {}", sub.get_name());
                let help = sub.get_after_help().map(ToString::to_string).unwrap_or_default();
                assert!(help.contains("Example:"), "{path} has no example");
                walk(sub, &path);
            }
        }
        walk(&Cli::command(), "dialinctl");
    }
}
