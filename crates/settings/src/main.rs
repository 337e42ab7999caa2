use std::process::ExitCode;

use clap::Parser;
use dialin_common::binary;
use dialin_settings::{
    config::Config,
    startup::{self, Application},
};
use dialin_store::schema::Command;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    dialin_common::telemetry::init();
    dialin_common::install_crypto_provider();
    if config.command == Some(Command::Migrate) {
        return binary::exit_code("dialin-settings migrate", "failed", startup::migrate(&config).await);
    }
    binary::serve("dialin-settings", Application::build(config).await).await
}
