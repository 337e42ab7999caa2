//! How a command fails: what it prints on stderr and its exit code (0 ok, 1 a
//! call or the work failed, 2 a usage error). A refused call is printed as its
//! gRPC code, its message and the `ErrorInfo` reason a program would switch
//! on, with the field violations and the wait before a retry when the service
//! sent them (docs/errors.md).

use std::{fmt::Write as _, time::Duration};

use tonic::{Code, Status};
use tonic_types::StatusExt;

#[derive(Debug)]
pub enum Failure {
    /// A call the service refused, or that did not reach it.
    Call(Box<Status>),
    /// The command line or the configuration is wrong.
    Usage(String),
    /// Something on this side failed (a file, the terminal).
    Local(String),
    /// The work failed in part, and already said where (an import's rows).
    Reported,
}

impl From<Status> for Failure {
    fn from(status: Status) -> Self {
        Self::Call(Box::new(status))
    }
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            Self::Call(_) | Self::Local(_) | Self::Reported => 1,
        }
    }

    /// What goes to stderr, every line ending in a newline.
    pub fn describe(&self) -> String {
        match self {
            Self::Call(status) => describe_status(status),
            Self::Usage(message) | Self::Local(message) => format!("error: {message}\n"),
            Self::Reported => String::new(),
        }
    }
}

/// `error: CODE: message`, `reason: REASON`, and the details that help.
pub fn describe_status(status: &Status) -> String {
    let mut text = format!("error: {}: {}\n", code_name(status.code()), status.message());
    let details = status.get_error_details();
    // Writing to a String cannot fail.
    match details.error_info() {
        Some(info) => {
            let _ = writeln!(text, "reason: {}", info.reason);
        }
        // Every status a dialin service answers with carries an ErrorInfo.
        None => text.push_str(NOT_REACHED),
    }
    for violation in details
        .bad_request()
        .map(|bad| bad.field_violations.as_slice())
        .unwrap_or_default()
    {
        let _ = writeln!(text, "field: {}: {}", violation.field, violation.description);
    }
    if let Some(delay) = details.retry_info().and_then(|retry| retry.retry_delay) {
        let _ = writeln!(text, "retry after: {}", wait(delay));
    }
    text
}

const NOT_REACHED: &str = "hint: the call did not reach a dialin service: check --addr (DIALIN_ADDR), \
     and --ca (DIALIN_CA) if it speaks TLS\n";

/// The name the gRPC specification gives a code (`NOT_FOUND`).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// A wait for people: `900ms`, `42s`, `15m`, `14m59s`.
fn wait(delay: Duration) -> String {
    let seconds = delay.as_secs();
    match (seconds, seconds / 60, seconds % 60) {
        (0, _, _) => format!("{}ms", delay.as_millis()),
        (_, 0, seconds) => format!("{seconds}s"),
        (_, minutes, 0) => format!("{minutes}m"),
        (_, minutes, seconds) => format!("{minutes}m{seconds}s"),
    }
}

#[cfg(test)]
mod tests {
    use dialin_common::error::{Error, Reason};

    use super::*;

    #[test]
    fn a_lockout_says_its_code_reason_and_when_to_retry() {
        // The status VerifyPin answers after five wrong PINs (dialinctl has no
        // PIN-taking command, so the printer is fed the service's own status).
        let status = Status::from(Error::exhausted(
            Reason::PinTriesExhausted,
            "too many wrong PINs for conference ID 4821937; try again in 15 minute(s)",
            Duration::from_secs(900),
        ));
        assert_eq!(
            describe_status(&status),
            "error: RESOURCE_EXHAUSTED: too many wrong PINs for conference ID 4821937; try again in 15 minute(s)\n\
             reason: PIN_TRIES_EXHAUSTED\n\
             retry after: 15m\n"
        );
        assert_eq!(Failure::from(status).exit_code(), 1);
    }

    #[test]
    fn a_bad_field_is_named() {
        let status = Status::from(Error::invalid("users[3].email", "users[3]: email is not an address"));
        assert_eq!(
            describe_status(&status),
            "error: INVALID_ARGUMENT: users[3]: email is not an address\n\
             reason: INVALID_FIELD\n\
             field: users[3].email: users[3]: email is not an address\n"
        );
    }

    #[test]
    fn a_status_without_details_did_not_reach_the_service() {
        for status in [
            Status::unavailable("tcp connect error"),
            Status::unknown("transport error"),
        ] {
            let text = describe_status(&status);
            assert!(text.starts_with(&format!("error: {}: {}\n", code_name(status.code()), status.message())));
            assert!(text.ends_with(NOT_REACHED), "{text}");
        }
    }

    #[test]
    fn usage_errors_exit_2_and_the_rest_1() {
        assert_eq!(Failure::Usage("no tenant".into()).exit_code(), 2);
        assert_eq!(Failure::Local("cannot read".into()).exit_code(), 1);
        assert_eq!(Failure::Reported.exit_code(), 1);
        assert_eq!(Failure::Reported.describe(), "");
        assert_eq!(Failure::Usage("no tenant".into()).describe(), "error: no tenant\n");
    }

    #[test]
    fn waits_read_well() {
        assert_eq!(wait(Duration::from_millis(250)), "250ms");
        assert_eq!(wait(Duration::from_secs(42)), "42s");
        assert_eq!(wait(Duration::from_secs(900)), "15m");
        assert_eq!(wait(Duration::from_secs(899)), "14m59s");
    }
}
