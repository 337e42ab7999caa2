//! The end of both service binaries' `main`: serve until a shutdown signal,
//! and say in the log why a binary could not start or stopped on an error.

use std::{fmt::Display, future::Future, process::ExitCode};

/// A service built and ready to serve.
pub trait Serve {
    type Error: Display;

    /// Serves until `shutdown` resolves, then drains and stops.
    fn serve_until(self, shutdown: impl Future<Output = ()> + Send) -> impl Future<Output = Result<(), Self::Error>>;
}

/// Serves what `built` holds until SIGTERM or Ctrl-C; the exit code says
/// whether it started and stopped cleanly.
pub async fn serve<S: Serve>(binary: &str, built: Result<S, impl Display>) -> ExitCode {
    match built {
        Ok(service) => exit_code(binary, "failed", service.serve_until(crate::shutdown::signal()).await),
        Err(error) => exit_code(binary, "cannot start", Err(error)),
    }
}

/// The exit code of `result`, logging the error as what `binary` `did`.
pub fn exit_code(binary: &str, did: &str, result: Result<(), impl Display>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "{binary} {did}");
            ExitCode::FAILURE
        }
    }
}
