//! The one error type of both services' request paths and its gRPC status:
//! a code, a message for people, and for programs the standard rich error
//! model (`google.rpc.ErrorInfo` with a [`Reason`], plus `BadRequest`,
//! `PreconditionFailure` or `RetryInfo` as the code calls for). Caller
//! mistakes are logged at debug, our failures at error.

use std::{collections::HashMap, time::Duration};

pub use dialin_proto::errors::v1::ErrorReason as Reason;
use sea_orm::DbErr;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `domain` of every `ErrorInfo` dialin sends.
pub const DOMAIN: &str = "dialin";
/// How long a caller should wait before retrying a call that found a
/// dependency down.
const RETRY_UNAVAILABLE: Duration = Duration::from_secs(1);

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller's call failed for a reason it can act on.
    #[error("{0}")]
    Refused(Refusal),
    #[error("database error: {0}")]
    Database(#[from] DbErr),
    /// A fault inside the service; the caller can do nothing but report it.
    #[error("{0}")]
    Internal(String),
}

/// A refused call: its code, why (for a program), and the message (for people).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub code: Code,
    pub reason: Reason,
    pub message: String,
    /// What it is about, where harmless (`tenant_id`, `user_id`, …): the
    /// `ErrorInfo` metadata.
    pub about: Vec<(String, String)>,
    /// The field that is wrong (INVALID_ARGUMENT).
    pub field: Option<String>,
    /// When to try again (RESOURCE_EXHAUSTED, UNAVAILABLE).
    pub retry_after: Option<Duration>,
}

impl Error {
    fn refused(code: Code, reason: Reason, message: impl Into<String>) -> Self {
        Self::Refused(Refusal {
            code,
            reason,
            message: message.into(),
            about: Vec::new(),
            field: None,
            retry_after: None,
        })
    }

    /// INVALID_ARGUMENT: `field` is missing or malformed, as `message` says.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        Self::Refused(Refusal {
            code: Code::InvalidArgument,
            reason: Reason::InvalidField,
            message: message.into(),
            about: vec![("field".to_owned(), field.clone())],
            field: Some(field),
            retry_after: None,
        })
    }

    pub fn not_found(reason: Reason, message: impl Into<String>) -> Self {
        Self::refused(Code::NotFound, reason, message)
    }

    pub fn already_exists(reason: Reason, message: impl Into<String>) -> Self {
        Self::refused(Code::AlreadyExists, reason, message)
    }

    /// FAILED_PRECONDITION: the state forbids the call, as `message` says.
    pub fn precondition(reason: Reason, message: impl Into<String>) -> Self {
        Self::refused(Code::FailedPrecondition, reason, message)
    }

    /// ABORTED: a version check failed or a concurrent change won.
    pub fn aborted(reason: Reason, message: impl Into<String>) -> Self {
        Self::refused(Code::Aborted, reason, message)
    }

    /// UNAUTHENTICATED: no token, or not one the service knows.
    pub fn unauthenticated(reason: Reason, message: impl Into<String>) -> Self {
        Self::refused(Code::Unauthenticated, reason, message)
    }

    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::refused(Code::PermissionDenied, Reason::TenantNotAllowed, message)
    }

    /// RESOURCE_EXHAUSTED: too many tries; the caller must wait `retry_after`.
    pub fn exhausted(reason: Reason, message: impl Into<String>, retry_after: Duration) -> Self {
        Self::refused(Code::ResourceExhausted, reason, message).retry_after(retry_after)
    }

    /// UNAVAILABLE: a dependency did not answer; retrying shortly may help.
    pub fn unavailable(reason: Reason, message: impl Into<String>) -> Self {
        Self::refused(Code::Unavailable, reason, message).retry_after(RETRY_UNAVAILABLE)
    }

    /// Says what the error is about (`ErrorInfo` metadata); only for values
    /// a caller may see (ids, never a PIN).
    #[must_use]
    pub fn about(mut self, key: &'static str, value: impl Into<String>) -> Self {
        if let Self::Refused(refusal) = &mut self {
            refusal.about.push((key.to_owned(), value.into()));
        }
        self
    }

    #[must_use]
    fn retry_after(mut self, wait: Duration) -> Self {
        if let Self::Refused(refusal) = &mut self {
            refusal.retry_after = Some(wait);
        }
        self
    }

    /// The gRPC code this error is answered with.
    pub fn code(&self) -> Code {
        self.class().0
    }

    /// Why, for a program.
    pub fn reason(&self) -> Reason {
        self.class().1
    }

    /// Its code and reason: a caller's refusal as it was made, the database
    /// unreachable as worth a retry, any other fault as the service's own.
    fn class(&self) -> (Code, Reason) {
        match self {
            Self::Refused(refusal) => (refusal.code, refusal.reason),
            Self::Database(error) if dialin_store::is_unavailable(error) => {
                (Code::Unavailable, Reason::DatabaseUnavailable)
            }
            Self::Database(_) | Self::Internal(_) => (Code::Internal, Reason::InternalError),
        }
    }

    /// The same error about entry `index` of the request's `list` (`users[3]`):
    /// its message says so, and its field is the entry's.
    #[must_use]
    pub fn in_entry(self, list: &str, index: usize) -> Self {
        match self {
            Self::Refused(refusal) => {
                let field = refusal.field.map(|field| format!("{list}[{index}].{field}"));
                let mut about = refusal.about;
                if let (Some(field), Some(entry)) = (&field, about.iter_mut().find(|(key, _)| *key == "field")) {
                    entry.1.clone_from(field);
                }
                Self::Refused(Refusal {
                    message: format!("{list}[{index}]: {}", refusal.message),
                    field,
                    about,
                    ..refusal
                })
            }
            other => other,
        }
    }
}

impl Refusal {
    /// The refusal a dialin service answered with (its `ErrorInfo` says why),
    /// to pass on as it was; `None` for a status that is not one, such as a
    /// transport failure.
    pub fn from_status(status: &Status) -> Option<Self> {
        let details = status.get_error_details();
        let info = details.error_info().filter(|info| info.domain == DOMAIN)?;
        let reason = Reason::from_str_name(&info.reason)?;
        let mut about: Vec<(String, String)> = info.metadata.clone().into_iter().collect();
        about.sort();
        Some(Self {
            code: status.code(),
            reason,
            message: status.message().to_owned(),
            about,
            field: details
                .bad_request()
                .and_then(|bad| bad.field_violations.first())
                .map(|violation| violation.field.clone()),
            retry_after: details.retry_info().and_then(|retry| retry.retry_delay),
        })
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let (code, reason) = error.class();
        let message = match error {
            Error::Refused(refusal) => {
                match refusal.code {
                    Code::Unavailable => tracing::warn!(message = %refusal.message, "dependency unavailable"),
                    Code::PermissionDenied => tracing::info!(message = %refusal.message, "permission denied"),
                    _ => tracing::debug!(code = ?refusal.code, message = %refusal.message, "call refused"),
                }
                return rich(refusal);
            }
            Error::Database(error) if code == Code::Unavailable => {
                tracing::warn!(%error, "database unavailable");
                "the service's database is unreachable; retry shortly".to_owned()
            }
            Error::Database(error) => {
                tracing::error!(%error, "database error");
                "internal database error; the service log has the details".to_owned()
            }
            Error::Internal(message) => {
                tracing::error!(%message, "internal error");
                format!("{message}; the service log has the details")
            }
        };
        rich(Refusal {
            code,
            reason,
            message,
            about: Vec::new(),
            field: None,
            retry_after: (code == Code::Unavailable).then_some(RETRY_UNAVAILABLE),
        })
    }
}

/// No delivery `delivery_id` (for the caller): the same answer from the
/// notifier and from settings, where another tenant's delivery must look
/// exactly like none.
pub fn delivery_not_found(delivery_id: &str) -> Error {
    Error::not_found(
        Reason::DeliveryNotFound,
        format!("no delivery {delivery_id}; ListDeliveries shows a tenant's deliveries"),
    )
    .about("delivery_id", delivery_id)
}

/// INTERNAL, with its `ErrorInfo`.
pub fn internal(message: impl Into<String>) -> Status {
    rich(Refusal {
        code: Code::Internal,
        reason: Reason::InternalError,
        message: message.into(),
        about: Vec::new(),
        field: None,
        retry_after: None,
    })
}

/// The status of `refusal`: its `ErrorInfo`, and the detail its code calls for.
pub fn rich(refusal: Refusal) -> Status {
    let metadata: HashMap<String, String> = refusal
        .about
        .iter()
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let reason = refusal.reason.as_str_name();
    let mut details = ErrorDetails::with_error_info(reason, DOMAIN, metadata);
    if let Some(field) = &refusal.field {
        details.add_bad_request_violation(field.clone(), refusal.message.clone());
    }
    if refusal.code == Code::FailedPrecondition {
        // The subject: what the state that forbids the call is of.
        let subject = refusal
            .about
            .iter()
            .rev()
            .map(|(key, value)| format!("{key}:{value}"))
            .next()
            .unwrap_or_default();
        details.add_precondition_failure_violation(reason, subject, refusal.message.clone());
    }
    if let Some(wait) = refusal.retry_after {
        details.set_retry_info(Some(wait));
    }
    Status::with_error_details(refusal.code, refusal.message, details)
}

/// Turns a validation failure into INVALID_ARGUMENT.
pub fn check(result: dialin_domain::validate::Check) -> Result<()> {
    result.map_err(|invalid| Error::invalid(invalid.field, invalid.message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_says_why_and_what_its_code_calls_for() {
        let invalid = Status::from(Error::invalid("email", "email is required"));
        let details = invalid.get_error_details();
        assert_eq!(invalid.code(), Code::InvalidArgument);
        assert_eq!(invalid.message(), "email is required");
        let info = details.error_info().unwrap();
        assert_eq!((info.reason.as_str(), info.domain.as_str()), ("INVALID_FIELD", DOMAIN));
        assert_eq!(info.metadata["field"], "email");
        let violation = &details.bad_request().unwrap().field_violations[0];
        assert_eq!(
            (violation.field.as_str(), violation.description.as_str()),
            ("email", "email is required")
        );

        let precondition = Status::from(
            Error::precondition(Reason::UserNotLicensed, "user ann holds no license")
                .about("tenant_id", "t")
                .about("user_id", "ann"),
        );
        let details = precondition.get_error_details();
        assert_eq!(details.error_info().unwrap().metadata["user_id"], "ann");
        let violation = &details.precondition_failure().unwrap().violations[0];
        assert_eq!(
            (violation.r#type.as_str(), violation.subject.as_str()),
            ("USER_NOT_LICENSED", "user_id:ann")
        );

        let exhausted = Status::from(Error::exhausted(
            Reason::PinTriesExhausted,
            "too many wrong PINs",
            Duration::from_secs(600),
        ));
        let details = exhausted.get_error_details();
        assert_eq!(
            details.retry_info().unwrap().retry_delay,
            Some(Duration::from_secs(600))
        );

        let database = Status::from(Error::Internal("a fault".into()));
        assert_eq!(
            database.get_error_details().error_info().unwrap().reason,
            "INTERNAL_ERROR"
        );
        assert_eq!(database.code(), Code::Internal);
    }
}
