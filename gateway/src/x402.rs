//! x402 on the paid routes: the payment IS the authentication.
//!
//! An unpaid call gets 402 with a `PAYMENT-REQUIRED` header and the same
//! `PaymentRequired` JSON as the body (agent402 clients read the body). A
//! paid call (`PAYMENT-SIGNATURE`, or v1 `X-PAYMENT`) is verified by the
//! payment service, which reserves its nonce; the verified payer becomes the
//! caller's namespace; the call runs; a call that succeeded (< 400) is
//! settled and answered with `PAYMENT-RESPONSE`, one that failed is
//! cancelled and not charged. How it is settled is the gateway's
//! [`SettleMode`]: `sync` waits for the transfer; `async` has the payment
//! service queue it and answers at once with a pending `PAYMENT-RESPONSE`
//! naming the payment (whose state `GET /api/payments/{id}` shows); with
//! `before`, and for a payer the payment service calls a debtor in any
//! mode, settlement happens before the call runs instead.

use crate::errors::{from_internal_status, Family};
use crate::idempotency::PaidFor;
use crate::identity::IdentityGate;
use crate::rate_limit::{Checked, RateLimit};
use crate::settle_mode::SettleMode;
use crate::transport::Transport;
use axum::extract::Request;
use axum::http::header::{CACHE_CONTROL, HOST};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tessera_catalog::Route;
use tessera_error::{Error, ErrorKind};
use tessera_proto::payment::v1 as pb;
use tessera_proto::payment::v1::payment_service_client::PaymentServiceClient;
use tessera_runtime::grpc_auth::ServiceToken;
use tessera_x402::{headers, MAX_HEADER_BYTES};
use tonic::service::interceptor::InterceptedService;

type PaymentClient = PaymentServiceClient<InterceptedService<Transport, ServiceToken>>;

/// What a served call was charged (settled), on its response, for call
/// accounting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Charged {
    /// Atomic units of the payment asset.
    pub amount: u64,
    /// CAIP-2 network of the asset.
    pub network: String,
}

/// The payer a verified payment proved, for the identity gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaidCaller(pub String);

/// The identity gate behind x402: the caller is whoever paid.
#[derive(Debug, Default, Clone, Copy)]
pub struct X402Gate;

#[async_trait::async_trait]
impl IdentityGate for X402Gate {
    async fn caller(&self, parts: &Parts) -> Result<Option<String>, Error> {
        Ok(parts
            .extensions
            .get::<PaidCaller>()
            .map(|paid| paid.0.clone()))
    }

    fn unidentified(&self) -> Error {
        Error::new(
            ErrorKind::PaymentRequired,
            "PAYMENT_REQUIRED",
            "this route is paid with x402",
        )
    }
}

#[derive(Clone)]
pub struct PaymentGate {
    payments: PaymentClient,
    settle_mode: SettleMode,
    /// Paid calls per paying wallet.
    wallet_limit: Option<RateLimit>,
    /// The CAIP-2 network payments are in, as the payment service listed it
    /// when this gateway started.
    network: Arc<OnceLock<String>>,
}

/// How long a starting gateway waits for the payment service to list its
/// prices.
const PRICES_WAIT: Duration = Duration::from_secs(30);

impl PaymentGate {
    pub fn connect_lazy(
        url: &str,
        settle_mode: SettleMode,
        token: ServiceToken,
    ) -> anyhow::Result<Self> {
        let channel = crate::transport::lazy(url, Duration::from_secs(5), Duration::from_secs(60))?;
        Ok(PaymentGate {
            payments: PaymentServiceClient::with_interceptor(channel, token),
            settle_mode,
            wallet_limit: None,
            network: Arc::default(),
        })
    }

    /// Limits paid calls per paying wallet: a call past the limit is
    /// answered 429 and its payment cancelled (not charged).
    pub(crate) fn with_wallet_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.wallet_limit = limit;
        self
    }

    /// When this gateway settles paid calls.
    pub(crate) fn settle_mode(&self) -> SettleMode {
        self.settle_mode
    }

    /// The CAIP-2 network payments are in ("unknown" before
    /// [`PaymentGate::check_prices`] has asked).
    pub(crate) fn network(&self) -> &str {
        self.network.get().map_or("unknown", String::as_str)
    }

    /// The payment service's prices, network, asset, payTo and facilitator.
    pub(crate) async fn list_prices(&self) -> Result<pb::ListPricesResponse, Error> {
        self.payments
            .clone()
            .list_prices(pb::ListPricesRequest {})
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| from_internal_status("payment", &status))
    }

    /// A payment's state by its id; `Ok(None)` when the payment service
    /// has no such payment (or the text is no payment id).
    pub(crate) async fn payment(
        &self,
        payment_id: &str,
    ) -> Result<Option<pb::GetPaymentResponse>, Error> {
        let request = pb::GetPaymentRequest {
            payment_id: payment_id.into(),
        };
        match self.payments.clone().get_payment(request).await {
            Ok(found) => Ok(Some(found.into_inner())),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
            Err(status) => Err(from_internal_status("payment", &status)),
        }
    }

    /// Has the payment service probe its dependency `name` now.
    pub(crate) async fn probe_dependency(
        &self,
        name: &str,
    ) -> Result<pb::ProbeDependencyResponse, Error> {
        let request = pb::ProbeDependencyRequest { name: name.into() };
        self.payments
            .clone()
            .probe_dependency(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| from_internal_status("payment", &status))
    }

    /// Fails unless the payment service prices every catalog route (a
    /// gateway must not serve a paid route nobody can quote). Waits up to
    /// 30 s for the payment service to answer.
    pub async fn check_prices(&self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + PRICES_WAIT;
        let listed = loop {
            match self
                .payments
                .clone()
                .list_prices(pb::ListPricesRequest {})
                .await
            {
                Ok(listed) => break listed.into_inner(),
                // Not up yet: wait. Anything else (a refused token, an old
                // payment service) will not change by waiting.
                Err(status)
                    if matches!(
                        status.code(),
                        tonic::Code::Unavailable | tonic::Code::Unknown
                    ) && tokio::time::Instant::now() < deadline =>
                {
                    tracing::info!(error = %status.message(), "waiting for the payment service to list its prices");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(status) => anyhow::bail!(
                    "the payment service did not list its prices: {}",
                    from_internal_status("payment", &status).message
                ),
            }
        };
        let priced: std::collections::HashSet<&str> = listed
            .prices
            .iter()
            .filter(|price| price.amount > 0)
            .map(|price| price.route.as_str())
            .collect();
        let unpriced: Vec<&str> = tessera_catalog::routes()
            .iter()
            .map(|route| route.id)
            .filter(|id| !priced.contains(id))
            .collect();
        anyhow::ensure!(
            unpriced.is_empty(),
            "paid routes without a price at the payment service: {}",
            unpriced.join(", ")
        );
        tracing::info!(routes = priced.len(), network = %listed.network, asset = %listed.asset, "every paid route is priced");
        let _ = self.network.set(listed.network.clone());
        Ok(())
    }
}

/// The payment header and its version: v2 `PAYMENT-SIGNATURE`, v1 `X-PAYMENT`.
/// `Err`: the header is there but no payment (too large, not text).
fn payment_header(headers: &HeaderMap) -> Result<Option<(String, u32)>, Error> {
    for (name, version) in [(headers::PAYMENT_SIGNATURE, 2), (headers::X_PAYMENT, 1)] {
        let Some(value) = headers.get(name) else {
            continue;
        };
        if value.len() > MAX_HEADER_BYTES {
            return Err(Error::new(
                ErrorKind::HeaderTooLarge,
                "PAYMENT_HEADER_TOO_LARGE",
                format!(
                    "the {name} header is {} bytes; a payment is at most {MAX_HEADER_BYTES}",
                    value.len()
                ),
            ));
        }
        let text = value.to_str().map_err(|_| {
            Error::invalid(
                "INVALID_PAYMENT_HEADER",
                format!("{name} must be ASCII base64"),
            )
        })?;
        return Ok(Some((text.to_string(), version)));
    }
    Ok(None)
}

/// The payer the request's payment header proves, without reserving or
/// settling it (for Idempotency-Key); `Ok(None)` when it carries no payment.
pub(crate) async fn identify(
    gate: &PaymentGate,
    route: &'static Route,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Option<String>, Response> {
    let family = Family::from(route.face);
    let Some((header, version)) = payment_header(headers).map_err(|e| refusal(family, e))? else {
        return Ok(None);
    };
    let identified = gate
        .payments
        .clone()
        .identify(pb::IdentifyRequest {
            route: route.id.into(),
            resource_url: resource_url_of(headers, uri),
            payment_header: header,
            x402_version: version,
        })
        .await;
    match identified {
        Ok(identified) => Ok(Some(identified.into_inner().payer)),
        Err(status) => Err(refusal(family, from_internal_status("payment", &status))),
    }
}

fn resource_url(request: &Request) -> String {
    resource_url_of(request.headers(), request.uri())
}

fn resource_url_of(headers: &HeaderMap, uri: &Uri) -> String {
    // HTTP/2 (gRPC) names the host in the URI's authority, not in Host.
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|authority| authority.as_str()))
        .unwrap_or("localhost");
    let path = uri.path_and_query().map_or("/", |pq| pq.as_str());
    format!("http://{host}{path}")
}

/// A 402 carrying `PaymentRequired` (base64 header) in header and body; on
/// gRPC, a status whose metadata carries it.
fn payment_required(family: Family, header: &str, refused: Option<&Error>) -> Response {
    if family == Family::Grpc {
        return crate::grpc::payment_required(header, refused);
    }
    let body: serde_json::Value = tessera_x402::decode_header(header).unwrap_or_default();
    let mut response = (StatusCode::PAYMENT_REQUIRED, axum::Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(header) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("payment-required"), value);
    }
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn refusal(family: Family, error: Error) -> Response {
    match error.details.get("paymentRequired") {
        Some(header) if error.kind == ErrorKind::PaymentRequired => {
            payment_required(family, header, Some(&error))
        }
        _ => {
            if error.http_status() >= 500 {
                tracing::warn!(reason = %error.reason, "{}", error.message);
            }
            family.response(&error)
        }
    }
}

fn attach_settlement(
    family: Family,
    response: &mut Response,
    settled: &pb::SettleResponse,
    version: u32,
) {
    let name = HeaderName::from_static(if version == 1 {
        "x-payment-response"
    } else {
        "payment-response"
    });
    let Ok(value) = HeaderValue::from_str(&settled.payment_response_header) else {
        return;
    };
    if family == Family::Grpc {
        // In the trailers, as the unary calls promise, and in the initial
        // metadata too, so a watch's client has it before the stream ends
        // (a unary client merges both into one value).
        response.headers_mut().insert(name.clone(), value.clone());
        crate::grpc::add_trailer(response, name, value);
    } else {
        response.headers_mut().insert(name, value);
    }
}

/// Charges `route` for `request`: a quote (402) without a payment, else
/// verify, run, then settle (or cancel a call that failed). A payer that is
/// a debtor, or a gateway in settle-before mode, settles before the call
/// runs; in async mode the settlement after the call is queued, not
/// waited for. Called by the route gate for every paid route.
pub(crate) async fn charge(
    gate: PaymentGate,
    route: &'static Route,
    request: Request,
    next: Next,
) -> Response {
    let family = Family::from(route.face);
    let resource = resource_url(&request);
    let mut payments = gate.payments.clone();

    let header = match payment_header(request.headers()) {
        Ok(header) => header,
        Err(error) => return refusal(family, error),
    };
    let Some((header, version)) = header else {
        let quote = payments
            .quote(pb::QuoteRequest {
                route: route.id.into(),
                resource_url: resource,
            })
            .await;
        return match quote {
            Ok(quote) => {
                payment_required(family, &quote.into_inner().payment_required_header, None)
            }
            Err(status) => refusal(family, from_internal_status("payment", &status)),
        };
    };
    let verified = payments
        .verify(pb::VerifyRequest {
            route: route.id.into(),
            resource_url: resource,
            payment_header: header,
            x402_version: version,
            settle_later: gate.settle_mode == SettleMode::Async,
        })
        .await;
    let verified = match verified {
        Ok(verified) => verified.into_inner(),
        Err(status) => return refusal(family, from_internal_status("payment", &status)),
    };
    let payment_id = verified.payment_id.clone();
    tracing::info!(route = route.id, payer = %verified.payer, payment_id, settle_before = verified.settle_before, "payment verified");
    let mut rate_headers = None;
    if let Some(limit) = &gate.wallet_limit {
        match limit.check(&verified.payer, family).await {
            Checked::Allowed(headers) => rate_headers = Some(headers),
            Checked::Limited(refused) => {
                let reason = "rate limited: too many paid calls from this wallet".to_string();
                if let Err(status) = payments
                    .cancel(pb::CancelRequest { payment_id, reason })
                    .await
                {
                    tracing::warn!(error = %status.message(), "could not cancel a rate-limited payment");
                }
                return refused;
            }
        }
    }
    let mut response =
        charge_verified(gate, payments, verified, request, next, family, version).await;
    if let Some(headers) = rate_headers {
        headers.apply(&mut response);
    }
    response
}

/// The rest of [`charge`], once the payment is verified and within the
/// payer's rate: settle before or after the call, or cancel it.
async fn charge_verified(
    gate: PaymentGate,
    mut payments: PaymentClient,
    verified: pb::VerifyResponse,
    mut request: Request,
    next: Next,
    family: Family,
    version: u32,
) -> Response {
    let payment_id = verified.payment_id.clone();
    // A payment service older than this gateway names no network: the one
    // it listed at start is the one it charges in.
    let network = match verified.network.as_str() {
        "" => gate.network().to_string(),
        named => named.to_string(),
    };
    let charged = Charged {
        amount: verified.amount,
        network,
    };
    request.extensions_mut().insert(PaidCaller(verified.payer));

    // Served, in async mode: the payment service queues the settlement.
    let defer_after = gate.settle_mode == SettleMode::Async;
    let settle = |mut payments: PaymentClient, payment_id: String, before_execution: bool| async move {
        payments
            .settle(pb::SettleRequest {
                payment_id,
                before_execution,
                defer: defer_after && !before_execution,
            })
            .await
            .map(|s| s.into_inner())
    };

    if gate.settle_mode == SettleMode::Before || verified.settle_before {
        let settled = match settle(payments.clone(), payment_id.clone(), true).await {
            Ok(settled) if settled.success || settled.pending => settled,
            Ok(settled) => {
                let error = Error::new(
                    ErrorKind::PaymentRequired,
                    settled.error_reason.clone(),
                    "the payment could not be settled",
                );
                let mut response = refusal(family, error);
                attach_settlement(family, &mut response, &settled, version);
                return response;
            }
            Err(status) => return refusal(family, from_internal_status("payment", &status)),
        };
        let mut response = next.run(request).await;
        attach_settlement(family, &mut response, &settled, version);
        if settled.success {
            response.extensions_mut().insert(PaidFor);
            response.extensions_mut().insert(charged);
        }
        return response;
    }

    let mut response = next.run(request).await;
    if family.failed(&response) {
        let reason = format!("the call failed with {}", family.outcome_status(&response));
        if let Err(status) = payments
            .cancel(pb::CancelRequest { payment_id, reason })
            .await
        {
            tracing::warn!(error = %status.message(), "could not cancel a payment whose call failed");
        }
        return response;
    }
    match settle(payments, payment_id.clone(), false).await {
        Ok(settled) => {
            // A queued settlement counts as paid: the payment is verified
            // and held against the payer's means, and it is settled exactly
            // once or becomes the payer's debt. Not keeping its answer for
            // Idempotency-Key would run every retried call twice.
            if settled.success || settled.queued {
                response.extensions_mut().insert(PaidFor);
                response.extensions_mut().insert(charged);
            } else {
                tracing::warn!(payment_id, reason = %settled.error_reason, pending = settled.pending, "payment not settled");
            }
            attach_settlement(family, &mut response, &settled, version);
        }
        Err(status) => {
            tracing::error!(payment_id, error = %status.message(), "settle failed after the call was served")
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_header_wins_over_v1() {
        let mut headers = HeaderMap::new();
        headers.insert("x-payment", HeaderValue::from_static("v1"));
        assert_eq!(payment_header(&headers).unwrap(), Some(("v1".into(), 1)));
        headers.insert("payment-signature", HeaderValue::from_static("v2"));
        assert_eq!(payment_header(&headers).unwrap(), Some(("v2".into(), 2)));
    }

    #[test]
    fn oversized_payment_headers_are_refused_with_431() {
        let mut headers = HeaderMap::new();
        let huge = "A".repeat(MAX_HEADER_BYTES + 1);
        headers.insert("payment-signature", HeaderValue::from_str(&huge).unwrap());
        let error = payment_header(&headers).unwrap_err();
        assert_eq!(error.http_status(), 431);
        let mut headers = HeaderMap::new();
        headers.insert("x-payment", HeaderValue::from_bytes(b"\xffabc").unwrap());
        assert_eq!(payment_header(&headers).unwrap_err().http_status(), 400);
    }
}
