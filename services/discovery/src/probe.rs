//! Probing a seller: one unpaid call of a listing's resource, which must
//! answer `402 Payment Required` with a quote we can read (the v2
//! `PAYMENT-REQUIRED` header, or the v1 JSON body). Anything else is a
//! failed probe: a URL we do not call ([`crate::egress`]), no answer within
//! `DISCOVERY_PROBE_TIMEOUT_MS`, another status (a `200` gives the
//! resource away unpaid, a `3xx` is not followed), a body over
//! [`MAX_QUOTE_BYTES`], or a quote without a readable requirement.
//!
//! The call uses the listing's method; a method with a body sends `{}` as
//! JSON. No payment header is ever sent.

use crate::egress;
use crate::listing::Listing;
use crate::quote::{Quote, QuoteError};
use reqwest::{Method, StatusCode};
use std::time::Duration;
use tessera_x402::headers::PAYMENT_REQUIRED;

/// The largest 402 body read, in bytes.
pub const MAX_QUOTE_BYTES: usize = 64 * 1024;

/// Why a probe failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeFailure {
    /// The URL is not one we call.
    Refused(String),
    /// No answer: connection refused, a reset, or the timeout.
    Unreachable(String),
    /// An answer other than 402.
    Status(u16),
    /// A 402 whose body could not be read within the cap.
    Body(String),
    /// A 402 without a readable quote.
    Quote(QuoteError),
}

impl std::fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProbeFailure::Refused(why) => write!(f, "not probed: {why}"),
            ProbeFailure::Unreachable(why) => write!(f, "unreachable: {why}"),
            ProbeFailure::Status(status) => write!(f, "answered {status} instead of 402"),
            ProbeFailure::Body(why) => write!(f, "402 body unreadable: {why}"),
            ProbeFailure::Quote(error) => write!(f, "{error}"),
        }
    }
}

/// Makes unpaid calls with a capped, non-redirecting, public-only client.
#[derive(Debug, Clone)]
pub struct Prober {
    client: reqwest::Client,
    timeout: Duration,
    allow_private: bool,
}

impl Prober {
    pub fn new(timeout: Duration, allow_private: bool) -> Prober {
        Prober {
            client: egress::seller_client(timeout, allow_private),
            timeout,
            allow_private,
        }
    }

    /// The quote of `listing`'s resource, or why there is none.
    pub async fn probe(&self, listing: &Listing) -> Result<Quote, ProbeFailure> {
        let url = egress::check_url(&listing.resource, self.allow_private)
            .map_err(|refused| ProbeFailure::Refused(refused.0))?;
        let method = Method::from_bytes(listing.method.as_bytes()).unwrap_or(Method::GET);
        let with_body = !matches!(method, Method::GET | Method::DELETE | Method::HEAD);
        let mut request = self.client.request(method, url);
        if with_body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body("{}");
        }
        // The client's own timeout covers the exchange; this one also
        // covers name resolution.
        let exchange = async {
            let response = request.send().await.map_err(|error| {
                ProbeFailure::Unreachable(if error.is_timeout() {
                    format!("no answer within {} ms", self.timeout.as_millis())
                } else {
                    error.to_string()
                })
            })?;
            quote_of(response).await
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(ProbeFailure::Unreachable(format!(
                    "no quote within {} ms",
                    self.timeout.as_millis()
                )))
            })
    }
}

async fn quote_of(response: reqwest::Response) -> Result<Quote, ProbeFailure> {
    if response.status() != StatusCode::PAYMENT_REQUIRED {
        return Err(ProbeFailure::Status(response.status().as_u16()));
    }
    let mut header_error = None;
    if let Some(header) = response.headers().get(PAYMENT_REQUIRED) {
        let parsed = header
            .to_str()
            .map_err(|_| QuoteError::Unreadable("the header is not text".into()))
            .and_then(Quote::from_header);
        match parsed {
            Ok(quote) => return Ok(quote),
            Err(error) => header_error = Some(error),
        }
    }
    let body = egress::read_capped(response, MAX_QUOTE_BYTES)
        .await
        .map_err(ProbeFailure::Body)?;
    // A broken header says more than the body a v2 seller leaves empty.
    Quote::from_body(&body).map_err(|error| ProbeFailure::Quote(header_error.unwrap_or(error)))
}
