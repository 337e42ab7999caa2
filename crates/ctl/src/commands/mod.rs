//! Runs what the command line asks for. The context commands and completions
//! need no service; every other command opens a [`Session`] for one tenant.

mod context;
mod deliveries;
mod licenses;
mod numbers;
mod pin;
mod preview;
mod tenant;
mod user;
mod why;

use clap::CommandFactory;
use dialin_proto::settings::v1::ConferencingUser;

use crate::{
    cli::{Cli, Command, Globals, Invocation, RemoteCommand},
    config::{self, Target},
    connect::{self, Client},
    failure::Failure,
    output::Printer,
    user_ref::UserRef,
};

pub async fn run(invocation: Invocation) -> Result<(), Failure> {
    let out = Printer::new(invocation.globals.output);
    match invocation.command {
        Command::Context(command) => context::run(command, &invocation.globals, &out),
        Command::Completions { shell } => {
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "dialinctl", &mut text);
            crate::output::print_text(&String::from_utf8_lossy(&text))
        }
        Command::Remote(command) => {
            let session = Session::open(&invocation.globals, out)?;
            match command {
                RemoteCommand::Tenant(command) => tenant::run(command, &session).await,
                RemoteCommand::Numbers(command) => numbers::run(command, &session).await,
                RemoteCommand::User(command) => user::run(command, &session).await,
                RemoteCommand::Licenses(command) => licenses::run(command, &session).await,
                RemoteCommand::Deliveries(command) => deliveries::run(command, &session).await,
                RemoteCommand::Why { user } => why::run(&user, &session).await,
                RemoteCommand::Pin(command) => pin::run(command, &session).await,
                RemoteCommand::Preview { kind, locale } => preview::run(kind, locale, &session).await,
            }
        }
    }
}

/// The target resolved from the flags, the environment and the config file.
fn target(globals: &Globals) -> Result<Target, Failure> {
    let path = config::path(|name| std::env::var_os(name))?;
    config::resolve(globals, &config::load(&path)?)
}

/// A client of the settings service, acting for one tenant.
pub struct Session {
    client: Client,
    pub tenant: String,
    pub out: Printer,
}

impl Session {
    fn open(globals: &Globals, out: Printer) -> Result<Self, Failure> {
        let target = target(globals)?;
        let tenant = target
            .tenant
            .as_ref()
            .map(|tenant| tenant.value.clone())
            .ok_or_else(|| {
                Failure::Usage("no tenant: pass --tenant, set DIALIN_TENANT, or give the context one".into())
            })?;
        Ok(Self {
            client: connect::client(&target)?,
            tenant,
            out,
        })
    }

    /// The client (tonic's calls take it by `&mut`; clones share the channel).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The user `user` names (a user_id or an email).
    pub async fn user(&self, user: &str) -> Result<ConferencingUser, Failure> {
        let request = UserRef::parse(user).get_request(&self.tenant);
        Ok(self.client().get_user(request).await?.into_inner())
    }

    /// The user_id of `user`: as given, or the user's whose email it is.
    pub async fn user_id(&self, user: &str) -> Result<String, Failure> {
        match UserRef::parse(user) {
            UserRef::Id(user_id) => Ok(user_id.to_owned()),
            UserRef::Email(_) => Ok(self.user(user).await?.user_id),
        }
    }
}
