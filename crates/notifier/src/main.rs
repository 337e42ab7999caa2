use std::process::ExitCode;

use clap::Parser;
use dialin_notifier::{
    config::{Config, NotifierCommand},
    preview,
    startup::{self, Application},
};
use dialin_store::schema::Command;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    dialin_common::telemetry::init();
    dialin_common::install_crypto_provider();
    match &config.command {
        Some(NotifierCommand::Schema(Command::Migrate)) => {
            return match startup::migrate(&config).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!(%error, "dialin-notifier migrate failed");
                    ExitCode::FAILURE
                }
            };
        }
        Some(NotifierCommand::Preview(args)) => {
            return match preview::write_files(args, &config.mail_from) {
                Ok(paths) => {
                    for path in paths {
                        println!("{}", path.display());
                    }
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("dialin-notifier preview: {error}");
                    ExitCode::FAILURE
                }
            };
        }
        None => {}
    }
    let application = match Application::build(config).await {
        Ok(application) => application,
        Err(error) => {
            tracing::error!(%error, "dialin-notifier cannot start");
            return ExitCode::FAILURE;
        }
    };
    match application.run_until(dialin_common::shutdown::signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "dialin-notifier failed");
            ExitCode::FAILURE
        }
    }
}
