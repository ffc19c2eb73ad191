//! The tower layer that pays: between a tonic client and its channel, it
//! answers a `PAYMENT_REQUIRED` status by paying and sending the call once
//! more.
//!
//! A quote arrives as a trailers-only response (the status in the response
//! headers): `grpc-status: 16` (UNAUTHENTICATED) with metadata
//! `payment-required`, the base64 x402 v2 `PaymentRequired`. The layer picks
//! the cheapest offer its [`Payer`] allows, signs it, and sends the same
//! request again with `payment-signature`. It never sends a third time: a
//! second quote is the server refusing the payment, and the caller gets it
//! as an error. A refusal keeps the server's status (code, `ErrorInfo`,
//! metadata) and carries a [`PaymentError`] as its `source`. The service's
//! error is a `tonic::Status` (a transport failure becomes one as tonic
//! would make it), a concrete type a spawned call's future can hold.
//!
//! To send a request twice the layer buffers its body, so it suits calls
//! whose request is one message (unary and server-streaming: every
//! `MemoryService` method); a client-streaming request would be held until
//! its stream ends.
//!
//! Under a raw tonic client (the settlement is then
//! [`Settlement::from_metadata`](super::Settlement::from_metadata) of the
//! response's metadata):
//!
//! ```no_run
//! # async fn run(payer: tessera_client::Payer) -> Result<(), Box<dyn std::error::Error>> {
//! use tessera_proto::memory::v1::memory_service_client::MemoryServiceClient;
//! use tessera_client::X402Service;
//!
//! let channel = tonic::transport::Channel::from_static("http://127.0.0.1:8080").connect().await?;
//! let mut memory = MemoryServiceClient::new(X402Service::new(channel, payer));
//! # Ok(()) }
//! ```

use super::payer::Payer;
use super::refusal::PaymentError;
use super::sign;
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use http_body_util::{BodyExt, Full};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tessera_x402::PaymentRequired;
use tonic::body::Body;
use tonic::Status;
use tower::{BoxError, Layer, Service, ServiceExt};

const PAYMENT_REQUIRED: HeaderName = HeaderName::from_static("payment-required");
const PAYMENT_SIGNATURE: HeaderName = HeaderName::from_static("payment-signature");
const GRPC_STATUS: &str = "grpc-status";
/// `tonic::Code::Unauthenticated`, as `grpc-status` spells it.
const UNAUTHENTICATED: &[u8] = b"16";

/// Pays x402 quotes with `payer`'s wallet.
#[derive(Debug, Clone)]
pub struct X402Layer {
    payer: Arc<Payer>,
}

impl X402Layer {
    pub fn new(payer: Payer) -> Self {
        X402Layer {
            payer: Arc::new(payer),
        }
    }
}

impl<S> Layer<S> for X402Layer {
    type Service = X402Service<S>;

    fn layer(&self, inner: S) -> X402Service<S> {
        X402Service {
            inner,
            payer: self.payer.clone(),
        }
    }
}

/// The service [`X402Layer`] makes of a channel.
#[derive(Debug, Clone)]
pub struct X402Service<S> {
    inner: S,
    payer: Arc<Payer>,
}

impl<S> X402Service<S> {
    pub fn new(inner: S, payer: Payer) -> Self {
        X402Layer::new(payer).layer(inner)
    }
}

impl<S, B> Service<http::Request<Body>> for X402Service<S>
where
    S: Service<http::Request<Body>, Response = http::Response<B>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<B>;
    type Error = Status;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<B>, Status>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        self.inner.poll_ready(cx).map_err(status)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // The clone is ready only after its own poll_ready; the ready one
        // goes with the call (tower's rule for services that are cloned).
        let ready = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, ready);
        let payer = self.payer.clone();
        Box::pin(call_paying(inner, payer, request))
    }
}

async fn call_paying<S, B>(
    mut inner: S,
    payer: Arc<Payer>,
    request: http::Request<Body>,
) -> Result<http::Response<B>, Status>
where
    S: Service<http::Request<Body>, Response = http::Response<B>>,
    S::Error: Into<BoxError>,
{
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let first = inner.call(rebuilt(&parts, &body)).await.map_err(status)?;
    let quote = match quote_of(&first) {
        None => return Ok(first),
        Some(Err(unreadable)) => return Err(refusal(&first, unreadable)),
        Some(Ok(quote)) => quote,
    };
    let payment = payer
        .choose(&quote)
        .and_then(|choice| sign::payment(payer.signer(), &choice, &quote.resource));
    let payment = match payment {
        Ok(payment) => payment,
        Err(unpaid) => return Err(refusal(&first, unpaid)),
    };
    let header = tessera_x402::encode_header(&payment.to_value());
    let mut paid = rebuilt(&parts, &body);
    paid.headers_mut().insert(
        PAYMENT_SIGNATURE,
        HeaderValue::try_from(header).expect("base64 is a valid header value"),
    );
    let second = inner
        .ready()
        .await
        .map_err(status)?
        .call(paid)
        .await
        .map_err(status)?;
    match quote_of(&second) {
        None => Ok(second),
        Some(again) => {
            let refused = match again {
                Ok(quote) => PaymentError::Refused {
                    reason: quote.error.clone(),
                    quote: Box::new(quote),
                },
                Err(unreadable) => unreadable,
            };
            Err(refusal(&second, refused))
        }
    }
}

fn rebuilt(parts: &http::request::Parts, body: &Bytes) -> http::Request<Body> {
    http::Request::from_parts(parts.clone(), Body::new(Full::new(body.clone())))
}

/// The x402 quote of a trailers-only UNAUTHENTICATED status; `None` for any
/// other response.
fn quote_of<B>(response: &http::Response<B>) -> Option<Result<PaymentRequired, PaymentError>> {
    let headers = response.headers();
    if headers.get(GRPC_STATUS)?.as_bytes() != UNAUTHENTICATED {
        return None;
    }
    let header = headers.get(PAYMENT_REQUIRED)?;
    Some(
        header
            .to_str()
            .map_err(|_| PaymentError::UnreadableQuote("not ASCII".into()))
            .and_then(|text| {
                tessera_x402::decode_header(text)
                    .map_err(|e| PaymentError::UnreadableQuote(e.to_string()))
            }),
    )
}

/// The server's status in `response`, with `why` as its source.
fn refusal<B>(response: &http::Response<B>, why: PaymentError) -> Status {
    let mut refused = Status::from_header_map(response.headers())
        .expect("a quote comes in a response with grpc-status");
    refused.set_source(Arc::new(why));
    refused
}

/// The status a failure below this layer is, as tonic would make it.
pub(crate) fn status(error: impl Into<BoxError>) -> Status {
    Status::from_error(error.into())
}
