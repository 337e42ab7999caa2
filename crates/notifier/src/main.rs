use std::process::ExitCode;

use clap::Parser;
use dialin_common::binary;
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
            return binary::exit_code("dialin-notifier migrate", "failed", startup::migrate(&config).await);
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
    binary::serve("dialin-notifier", Application::build(config).await).await
}
