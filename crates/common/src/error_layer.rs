//! The outermost layer of both services' call stack: the call timeout, and an
//! `ErrorInfo` on every error status, including those the gRPC framework
//! answers with itself (no such method, a malformed message). A handler's
//! errors carry theirs already ([`crate::error`]); this only fills the gaps.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use tonic::{
    Code, Status,
    body::Body,
    codegen::http::{Request, Response},
};
use tonic_types::{ErrorDetails, StatusExt};
use tower::{Layer, Service};

use crate::error::{DOMAIN, Reason};

#[derive(Clone, Copy)]
pub struct ErrorInfoLayer {
    /// Longest a call may run before it is cut with DEADLINE_EXCEEDED.
    pub call_timeout: Duration,
}

impl<S> Layer<S> for ErrorInfoLayer {
    type Service = ErrorInfoService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ErrorInfoService {
            inner,
            call_timeout: self.call_timeout,
        }
    }
}

#[derive(Clone)]
pub struct ErrorInfoService<S> {
    inner: S,
    call_timeout: Duration,
}

impl<S, B> Service<Request<B>> for ErrorInfoService<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let call = self.inner.call(request);
        let call_timeout = self.call_timeout;
        Box::pin(async move {
            match tokio::time::timeout(call_timeout, call).await {
                Ok(response) => response.map(with_error_info),
                Err(_elapsed) => Ok(explained(Status::deadline_exceeded(format!(
                    "the call took longer than the service allows ({call_timeout:?}); retry, or ask for less at once"
                )))
                .into_http()),
            }
        })
    }
}

/// `response`, with an `ErrorInfo` added if it is an error status without one.
fn with_error_info(mut response: Response<Body>) -> Response<Body> {
    let Some(status) = Status::from_header_map(response.headers()) else {
        return response;
    };
    if status.code() == Code::Ok || !status.details().is_empty() {
        return response;
    }
    if explained(status).add_header(response.headers_mut()).is_err() {
        tracing::debug!("could not add error details to a status");
    }
    response
}

/// `status` with an `ErrorInfo` whose reason is what its code says.
fn explained(status: Status) -> Status {
    let reason = match status.code() {
        Code::Unimplemented => Reason::MethodNotFound,
        Code::DeadlineExceeded => Reason::CallTimeout,
        Code::Internal | Code::Unknown | Code::DataLoss => Reason::InternalError,
        _ => Reason::RequestRefused,
    };
    let details = ErrorDetails::with_error_info(reason.as_str_name(), DOMAIN, HashMap::new());
    Status::with_error_details(status.code(), status.message(), details)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_status_without_details_gets_an_error_info_by_its_code() {
        let response = with_error_info(Status::unimplemented("no such method").into_http());
        let status = Status::from_header_map(response.headers()).unwrap();
        assert_eq!(status.code(), Code::Unimplemented);
        assert_eq!(status.message(), "no such method");
        let info = status.get_error_details().error_info().cloned().unwrap();
        assert_eq!(
            (info.reason.as_str(), info.domain.as_str()),
            ("METHOD_NOT_FOUND", DOMAIN)
        );
    }

    #[test]
    fn a_status_with_details_and_a_success_are_left_alone() {
        let rich = Status::from(crate::error::Error::invalid("email", "email is required"));
        let response = with_error_info(rich.into_http());
        let status = Status::from_header_map(response.headers()).unwrap();
        assert_eq!(status.get_error_details().error_info().unwrap().reason, "INVALID_FIELD");
        let ok = with_error_info(Response::new(Body::default()));
        assert!(ok.headers().is_empty());
    }
}
