//! One error type for every Tessera service, mapped in exactly one place to a
//! gRPC code and to an HTTP status. Machine-readable detail travels across gRPC
//! as a `google.rpc.ErrorInfo`, so a caller on the far side of a gRPC hop (the
//! gateway) recovers the same `Error` and renders it in its API's body.

use std::collections::BTreeMap;
use std::fmt;
use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

/// The domain tag carried in `ErrorInfo.domain`.
pub const DOMAIN: &str = "tessera";
const KIND_KEY: &str = "kind";

/// The failure classes. Each has one gRPC code and one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    InvalidArgument,
    /// A request header is larger than the route accepts (HTTP 431).
    HeaderTooLarge,
    Unauthenticated,
    PaymentRequired,
    PermissionDenied,
    NotFound,
    Conflict,
    PreconditionFailed,
    /// Well-formed, but not acceptable in this state, e.g. an
    /// Idempotency-Key reused for another request (HTTP 422).
    Unprocessable,
    QuotaExceeded,
    RateLimited,
    Unimplemented,
    Internal,
    BadGateway,
    Unavailable,
    Timeout,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 16] = [
        ErrorKind::InvalidArgument,
        ErrorKind::HeaderTooLarge,
        ErrorKind::Unauthenticated,
        ErrorKind::PaymentRequired,
        ErrorKind::PermissionDenied,
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::PreconditionFailed,
        ErrorKind::Unprocessable,
        ErrorKind::QuotaExceeded,
        ErrorKind::RateLimited,
        ErrorKind::Unimplemented,
        ErrorKind::Internal,
        ErrorKind::BadGateway,
        ErrorKind::Unavailable,
        ErrorKind::Timeout,
    ];

    /// The one table: (gRPC code, HTTP status, stable name).
    const fn row(self) -> (Code, u16, &'static str) {
        match self {
            ErrorKind::InvalidArgument => (Code::InvalidArgument, 400, "InvalidArgument"),
            ErrorKind::HeaderTooLarge => (Code::InvalidArgument, 431, "HeaderTooLarge"),
            ErrorKind::Unauthenticated => (Code::Unauthenticated, 401, "Unauthenticated"),
            ErrorKind::PaymentRequired => (Code::Unauthenticated, 402, "PaymentRequired"),
            ErrorKind::PermissionDenied => (Code::PermissionDenied, 403, "PermissionDenied"),
            ErrorKind::NotFound => (Code::NotFound, 404, "NotFound"),
            ErrorKind::Conflict => (Code::Aborted, 409, "Conflict"),
            ErrorKind::PreconditionFailed => (Code::FailedPrecondition, 412, "PreconditionFailed"),
            ErrorKind::Unprocessable => (Code::InvalidArgument, 422, "Unprocessable"),
            ErrorKind::QuotaExceeded => (Code::ResourceExhausted, 413, "QuotaExceeded"),
            ErrorKind::RateLimited => (Code::ResourceExhausted, 429, "RateLimited"),
            ErrorKind::Unimplemented => (Code::Unimplemented, 501, "Unimplemented"),
            ErrorKind::Internal => (Code::Internal, 500, "Internal"),
            ErrorKind::BadGateway => (Code::Unknown, 502, "BadGateway"),
            ErrorKind::Unavailable => (Code::Unavailable, 503, "Unavailable"),
            ErrorKind::Timeout => (Code::DeadlineExceeded, 504, "Timeout"),
        }
    }

    pub const fn grpc_code(self) -> Code {
        self.row().0
    }

    pub const fn http_status(self) -> u16 {
        self.row().1
    }

    pub const fn name(self) -> &'static str {
        self.row().2
    }

    pub fn from_name(name: &str) -> Option<ErrorKind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The kind a bare gRPC status maps to when it carries no `ErrorInfo`
    /// (a status from a peer that is not a Tessera service).
    pub fn from_grpc_code(code: Code) -> ErrorKind {
        match code {
            Code::InvalidArgument | Code::OutOfRange => ErrorKind::InvalidArgument,
            Code::Unauthenticated => ErrorKind::Unauthenticated,
            Code::PermissionDenied => ErrorKind::PermissionDenied,
            Code::NotFound => ErrorKind::NotFound,
            Code::AlreadyExists | Code::Aborted => ErrorKind::Conflict,
            Code::FailedPrecondition => ErrorKind::PreconditionFailed,
            Code::ResourceExhausted => ErrorKind::RateLimited,
            Code::Unimplemented => ErrorKind::Unimplemented,
            Code::Unavailable => ErrorKind::Unavailable,
            Code::DeadlineExceeded | Code::Cancelled => ErrorKind::Timeout,
            Code::Ok | Code::Unknown | Code::Internal | Code::DataLoss => ErrorKind::Internal,
        }
    }
}

/// A failure with its class, a stable machine reason (`KEY_TOO_LONG`), a
/// human message, and string details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub reason: String,
    pub message: String,
    pub details: BTreeMap<String, String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, reason: impl Into<String>, message: impl Into<String>) -> Self {
        Error {
            kind,
            reason: reason.into(),
            message: message.into(),
            details: BTreeMap::new(),
        }
    }

    pub fn with_detail(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }

    pub fn invalid(reason: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, reason, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, "NOT_FOUND", message)
    }

    pub fn unavailable(reason: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, reason, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, "INTERNAL", message)
    }

    pub fn http_status(&self) -> u16 {
        self.kind.http_status()
    }

    pub fn to_status(&self) -> tonic::Status {
        let mut metadata: std::collections::HashMap<String, String> = self
            .details
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        metadata.insert(KIND_KEY.to_string(), self.kind.name().to_string());
        let details = ErrorDetails::with_error_info(self.reason.clone(), DOMAIN, metadata);
        tonic::Status::with_error_details(self.kind.grpc_code(), self.message.clone(), details)
    }

    /// Recovers the error a Tessera service sent; a foreign status maps by code.
    pub fn from_status(status: &tonic::Status) -> Self {
        let info = status.get_details_error_info();
        match info {
            Some(info) if info.domain == DOMAIN => {
                let mut details: BTreeMap<String, String> = info.metadata.into_iter().collect();
                let kind = details
                    .remove(KIND_KEY)
                    .and_then(|name| ErrorKind::from_name(&name))
                    .unwrap_or_else(|| ErrorKind::from_grpc_code(status.code()));
                Error {
                    kind,
                    reason: info.reason,
                    message: status.message().to_string(),
                    details,
                }
            }
            _ => {
                let kind = match status.code() {
                    // A transport failure reaching the service, not a verdict from it.
                    Code::Unknown => ErrorKind::BadGateway,
                    code => ErrorKind::from_grpc_code(code),
                };
                Error::new(
                    kind,
                    format!("GRPC_{:?}", status.code()).to_uppercase(),
                    status.message(),
                )
            }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for Error {}

impl From<Error> for tonic::Status {
    fn from(error: Error) -> Self {
        error.to_status()
    }
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        Error::from_status(&status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_survives_a_grpc_round_trip() {
        for kind in ErrorKind::ALL {
            let sent = Error::new(kind, "SOME_REASON", "it broke").with_detail("key", "a/b");
            let received = Error::from_status(&sent.to_status());
            assert_eq!(received, sent, "{kind:?}");
            assert_eq!(received.http_status(), kind.http_status());
        }
    }

    #[test]
    fn names_are_unique_and_parse_back() {
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_name(kind.name()), Some(kind));
        }
    }

    #[test]
    fn a_foreign_status_maps_by_code() {
        let error = Error::from_status(&tonic::Status::unavailable("connection refused"));
        assert_eq!(error.kind, ErrorKind::Unavailable);
        assert_eq!(error.http_status(), 503);
        assert_eq!(
            Error::from_status(&tonic::Status::not_found("x")).http_status(),
            404
        );
    }

    #[test]
    fn quota_and_rate_limit_share_a_code_but_not_a_status() {
        assert_eq!(
            ErrorKind::QuotaExceeded.grpc_code(),
            ErrorKind::RateLimited.grpc_code()
        );
        let quota = Error::from_status(&Error::new(ErrorKind::QuotaExceeded, "Q", "q").to_status());
        assert_eq!(quota.http_status(), 413);
    }
}
