//! The one error of every client call.

use crate::x402::PaymentError;
use std::collections::BTreeMap;
use std::time::Duration;
use tessera_error::ErrorKind;
use tonic::Code;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{url:?} is not an endpoint URL: {message}")]
    InvalidUrl { url: String, message: String },
    #[error("could not connect to {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("agent id {0:?} cannot travel as gRPC metadata (printable ASCII only)")]
    InvalidAgentId(String),
    /// The server (or the transport to it) failed the call. `reason` is the
    /// `google.rpc.ErrorInfo` reason Tessera sent (`NO_GRANT`,
    /// `PAYMENT_REQUIRED`, …), or `GRPC_<CODE>` for a status without one
    /// (a transport failure); `kind` is its class in Tessera's error table.
    #[error("{code:?} {reason}: {message}")]
    Server {
        code: Code,
        kind: ErrorKind,
        reason: String,
        message: String,
        details: BTreeMap<String, String>,
    },
    /// The payment layer did not pay, or paid and was refused.
    #[error(transparent)]
    Payment(#[from] PaymentError),
    #[error("the server's reply is malformed: {0}")]
    MalformedReply(String),
    /// A lock's lease ended without this holder releasing it: it expired,
    /// and another holder may have taken the lock since. Whatever the holder
    /// did after that was not under the lock.
    #[error("the lease on {key:?} is lost")]
    LeaseLost { key: String },
    #[error("{key:?} was still held by another after waiting {waited:?}")]
    LockTimeout { key: String, waited: Duration },
}

impl Error {
    /// The gRPC code of a server's refusal.
    pub fn code(&self) -> Option<Code> {
        match self {
            Error::Server { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The `ErrorInfo` reason of a server's refusal.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Error::Server { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        let payment = std::error::Error::source(&status)
            .and_then(|source| source.downcast_ref::<PaymentError>());
        if let Some(payment) = payment {
            return Error::Payment(payment.clone());
        }
        let error = tessera_error::Error::from_status(&status);
        Error::Server {
            code: status.code(),
            kind: error.kind,
            reason: error.reason,
            message: error.message,
            details: error.details,
        }
    }
}
