use std::process::ExitCode;

use clap::Parser;
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
        return match startup::migrate(&config).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!(%error, "dialin-settings migrate failed");
                ExitCode::FAILURE
            }
        };
    }
    let application = match Application::build(config).await {
        Ok(application) => application,
        Err(error) => {
            tracing::error!(%error, "dialin-settings cannot start");
            return ExitCode::FAILURE;
        }
    };
    match application.run_until(dialin_common::shutdown::signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "dialin-settings failed");
            ExitCode::FAILURE
        }
    }
}
