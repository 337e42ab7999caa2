//! The one error type of both services' request paths and its mapping to gRPC
//! status codes: caller mistakes are logged at debug, our failures at error.

use sea_orm::DbErr;
use tonic::Status;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller sent something malformed.
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    /// The caller's token does not cover this tenant.
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// The request is well-formed but the current state forbids it.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A version check failed or a concurrent change won.
    #[error("{0}")]
    Aborted(String),
    /// Too many tries: the caller must wait.
    #[error("{0}")]
    ResourceExhausted(String),
    /// A service this call depends on did not answer; retrying may help.
    #[error("{0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(#[from] DbErr),
    /// A fault inside the service; the caller can do nothing but report it.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidArgument(message.into())
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        match error {
            Error::InvalidArgument(message) => {
                tracing::debug!(%message, "invalid argument");
                Status::invalid_argument(message)
            }
            Error::NotFound(message) => Status::not_found(message),
            Error::PermissionDenied(message) => {
                tracing::info!(%message, "permission denied");
                Status::permission_denied(message)
            }
            Error::AlreadyExists(message) => Status::already_exists(message),
            Error::FailedPrecondition(message) => {
                tracing::debug!(%message, "failed precondition");
                Status::failed_precondition(message)
            }
            Error::Aborted(message) => Status::aborted(message),
            Error::ResourceExhausted(message) => Status::resource_exhausted(message),
            Error::Unavailable(message) => {
                tracing::warn!(%message, "dependency unavailable");
                Status::unavailable(message)
            }
            Error::Database(error) if dialin_store::is_unavailable(&error) => {
                tracing::warn!(%error, "database unavailable");
                Status::unavailable("the service's database is unreachable; retry shortly")
            }
            Error::Database(error) => {
                tracing::error!(%error, "database error");
                Status::internal("internal database error; the service log has the details")
            }
            Error::Internal(message) => {
                tracing::error!(%message, "internal error");
                Status::internal(format!("{message}; the service log has the details"))
            }
        }
    }
}

/// Turns a validation message into INVALID_ARGUMENT.
pub fn check(result: dialin_domain::validate::Check) -> Result<()> {
    result.map_err(Error::InvalidArgument)
}
