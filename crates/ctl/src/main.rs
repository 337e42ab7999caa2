//! dialinctl: the operator's command line for the dialin settings service.
//! Reads the command line, runs the command on a small runtime, and turns
//! the outcome into an exit code (0 ok, 1 a call failed, 2 a usage error).

mod cli;
mod commands;
mod config;
mod confirm;
mod connect;
mod failure;
mod output;
mod paging;
mod user_ref;

use std::process::ExitCode;

use failure::Failure;

fn main() -> ExitCode {
    let invocation = cli::parse();
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| Failure::Local(format!("cannot start the runtime: {error}")))
        .and_then(|runtime| runtime.block_on(commands::run(invocation)));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprint!("{}", failure.describe());
            ExitCode::from(failure.exit_code())
        }
    }
}
