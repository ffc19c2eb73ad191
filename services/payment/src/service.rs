//! The payment flow the gateway drives: quote → verify (reserve the nonce,
//! ask the facilitator) → run the call → settle, or cancel when the call
//! failed. A settle that cannot finish becomes `pending` and is retried in
//! the background; the EIP-3009 nonce makes a second charge impossible.

use crate::catalog::Catalog;
use crate::config::{Asset, PaymentConfig};
use crate::facilitator_client::FacilitatorClient;
use crate::ledger::{Ledger, NewPayment, Settleable};
use serde_json::Value;
use std::time::Duration;
use tessera_error::{Error, ErrorKind, Result};
use tessera_x402::facilitator::{FacilitatorRequest, SettleResponse};
use tessera_x402::payment::PayloadError;
use tessera_x402::{
    encode_header, reason, PaymentPayload, PaymentRequired, Requirements, ResourceInfo,
};

/// The non-terminal settle outcome of the reference packages.
pub const SETTLEMENT_PENDING: &str = "settlement_pending";
const VERIFY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct Payments {
    catalog: Catalog,
    asset: Asset,
    pay_to: String,
    max_timeout_seconds: u64,
    settle_timeout: Duration,
    ledger: Ledger,
    facilitator: FacilitatorClient,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Lower-case 0x address: the caller's namespace.
    pub payer: String,
    pub payment_id: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    pub response: SettleResponse,
    pub pending: bool,
}

impl Settled {
    pub fn header(&self) -> String {
        encode_header(&self.response)
    }
}

impl Payments {
    pub fn new(config: &PaymentConfig, ledger: Ledger) -> Self {
        Payments {
            catalog: config.catalog.clone(),
            asset: config.asset.clone(),
            pay_to: config.pay_to.clone(),
            max_timeout_seconds: config.max_timeout_seconds,
            settle_timeout: config.settle_timeout,
            ledger,
            facilitator: FacilitatorClient::new(&config.facilitator_url),
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// What the route costs, as x402 v2 `PaymentRequirements`.
    pub fn requirements(&self, route: &str) -> Result<Requirements> {
        Ok(Requirements {
            scheme: "exact".into(),
            network: self.asset.network.caip2(),
            amount: self.catalog.price(route)?.to_string(),
            asset: self.asset.address.clone(),
            pay_to: self.pay_to.clone(),
            max_timeout_seconds: self.max_timeout_seconds,
            extra: Some(
                serde_json::json!({"name": self.asset.name, "version": self.asset.version}),
            ),
        })
    }

    /// The 402 document for a route; `error` says why the last try failed.
    pub fn quote(
        &self,
        route: &str,
        resource_url: &str,
        error: Option<&str>,
    ) -> Result<PaymentRequired> {
        Ok(PaymentRequired {
            x402_version: 2,
            error: Some(
                error
                    .unwrap_or("PAYMENT-SIGNATURE header is required")
                    .to_string(),
            ),
            resource: resource(route, resource_url),
            accepts: vec![self.requirements(route)?],
        })
    }

    fn payment_required(
        &self,
        route: &str,
        resource_url: &str,
        why: &str,
        message: impl Into<String>,
    ) -> Error {
        let message = message.into();
        let mut error = Error::new(ErrorKind::PaymentRequired, why, message);
        if let Ok(quote) = self.quote(route, resource_url, Some(why)) {
            error = error.with_detail("paymentRequired", encode_header(&quote));
        }
        error
    }

    /// Checks a `PAYMENT-SIGNATURE` / `X-PAYMENT` header for a route,
    /// reserves its authorization and has the facilitator verify it.
    pub async fn verify(&self, route: &str, resource_url: &str, header: &str) -> Result<Verified> {
        let required = self.requirements(route)?;
        let refuse =
            |why: &str, message: String| self.payment_required(route, resource_url, why, message);
        let value: Value = tessera_x402::decode_header(header)
            .map_err(|e| refuse(reason::INVALID_PAYLOAD, e.to_string()))?;
        let payload = PaymentPayload::from_value(value).map_err(|e| match e {
            PayloadError::Version(_) => refuse(reason::INVALID_X402_VERSION, e.to_string()),
            PayloadError::Malformed(_) => refuse(reason::INVALID_PAYLOAD, e.to_string()),
        })?;
        if payload.scheme() != "exact" {
            return Err(refuse(
                reason::UNSUPPORTED_SCHEME,
                format!(
                    "scheme {:?} is not offered; use \"exact\"",
                    payload.scheme()
                ),
            ));
        }
        if payload.network() != Some(self.asset.network) {
            return Err(refuse(
                reason::INVALID_NETWORK,
                format!("this route is paid on {}", self.asset.network),
            ));
        }
        if let PaymentPayload::V2 { accepted, .. } = &payload {
            if !same_terms(accepted, &required) {
                return Err(refuse(
                    reason::INVALID_PAYMENT_REQUIREMENTS,
                    "the payment accepted other terms (asset, amount, payTo or network) than this route's".into(),
                ));
            }
        }
        let exact = payload
            .exact_evm()
            .map_err(|e| refuse(reason::INVALID_PAYLOAD, e.to_string()))?;
        let authorization = &exact.authorization;
        if !authorization.to.eq_ignore_ascii_case(&required.pay_to) {
            return Err(refuse(
                reason::RECIPIENT_MISMATCH,
                format!("pay {} for this route", required.pay_to),
            ));
        }
        if authorization.value != required.amount {
            return Err(refuse(
                reason::VALUE_MISMATCH,
                format!("this route costs exactly {} atomic units", required.amount),
            ));
        }

        let resource_info = resource(route, resource_url);
        let requirements_json = match payload.version() {
            1 => serde_json::to_value(required.to_v1(&resource_info).ok_or_else(|| {
                refuse(
                    reason::INVALID_X402_VERSION,
                    format!("{} has no x402 v1 name; pay with v2", self.asset.network),
                )
            })?),
            _ => serde_json::to_value(&required),
        }
        .expect("serializes");
        let payload_json = payload.to_value();
        let payer = authorization.from.to_ascii_lowercase();
        let payment_id = self
            .ledger
            .reserve(&NewPayment {
                network: &self.asset.network.caip2(),
                asset: &self.asset.address.to_ascii_lowercase(),
                payer: &payer,
                nonce: &authorization.nonce.to_ascii_lowercase(),
                route,
                resource: resource_url,
                amount: &required.amount,
                pay_to: &required.pay_to,
                x402_version: payload.version(),
                payload: &payload_json,
                requirements: &requirements_json,
            })
            .await?;

        let request = FacilitatorRequest {
            x402_version: payload.version(),
            payment_payload: payload_json,
            payment_requirements: requirements_json,
        };
        let verdict = match self.facilitator.verify(&request, VERIFY_TIMEOUT).await {
            Ok(verdict) => verdict,
            Err(unreachable) => {
                self.ledger
                    .transition(
                        &payment_id,
                        &["reserved"],
                        "cancelled",
                        Some("facilitator unavailable"),
                    )
                    .await?;
                return Err(unreachable.into());
            }
        };
        if !verdict.is_valid {
            let why = verdict
                .invalid_reason
                .clone()
                .unwrap_or_else(|| reason::UNEXPECTED_VERIFY_ERROR.into());
            self.ledger
                .transition(&payment_id, &["reserved"], "rejected", Some(&why))
                .await?;
            if why == reason::UNEXPECTED_VERIFY_ERROR {
                // The facilitator could not judge (its chain RPC failed): not the payer's fault.
                return Err(Error::new(
                    ErrorKind::BadGateway,
                    why,
                    verdict.invalid_message.unwrap_or_default(),
                ));
            }
            let message = verdict
                .invalid_message
                .unwrap_or_else(|| format!("payment rejected: {why}"));
            return Err(self.payment_required(route, resource_url, &why, message));
        }
        self.ledger
            .transition(&payment_id, &["reserved"], "verified", None)
            .await?;
        Ok(Verified { payer, payment_id })
    }

    /// Settles a verified payment: the call it paid for succeeded.
    pub async fn settle(&self, payment_id: &str) -> Result<Settled> {
        match self.ledger.claim_for_settle(payment_id).await? {
            Some(settleable) => self.settle_claimed(payment_id, settleable).await,
            None => Err(Error::new(
                ErrorKind::PreconditionFailed,
                "PAYMENT_NOT_SETTLEABLE",
                "this payment is not verified, or was already settled or cancelled",
            )),
        }
    }

    async fn settle_claimed(&self, payment_id: &str, settleable: Settleable) -> Result<Settled> {
        let request = FacilitatorRequest {
            x402_version: settleable.x402_version,
            payment_payload: settleable.payload,
            payment_requirements: settleable.requirements,
        };
        let outcome = self.facilitator.settle(&request, self.settle_timeout).await;
        let response = match outcome {
            Ok(response) => response,
            Err(unreachable) => {
                tracing::warn!(payment_id, error = %unreachable.0, "settle did not finish; pending, retried in the background");
                SettleResponse {
                    success: false,
                    error_reason: Some(SETTLEMENT_PENDING.into()),
                    error_message: Some("settlement is in progress".into()),
                    payer: Some(settleable.payer.clone()),
                    transaction: String::new(),
                    network: settleable.network.clone(),
                    amount: None,
                }
            }
        };
        // Not finished is not failed: a transfer may be in flight, or the
        // chain was unreachable. Either way a retry settles it, or finds the
        // nonce spent by it, and can never charge twice.
        let pending = !response.success
            && matches!(
                response.error_reason.as_deref(),
                Some(SETTLEMENT_PENDING) | Some(reason::UNEXPECTED_SETTLE_ERROR)
            );
        let mut response = response;
        if pending {
            response.error_reason = Some(SETTLEMENT_PENDING.into());
        }
        let status = if response.success {
            "settled"
        } else if pending {
            "pending"
        } else {
            "failed"
        };
        self.ledger
            .record_settlement(
                payment_id,
                status,
                Some(&response.transaction),
                response.error_reason.as_deref(),
            )
            .await?;
        Ok(Settled { response, pending })
    }

    /// The call failed: release the payment, nothing is charged.
    pub async fn cancel(&self, payment_id: &str, why: &str) -> Result<()> {
        self.ledger
            .transition(
                payment_id,
                &["verified", "reserved"],
                "cancelled",
                Some(why),
            )
            .await?;
        Ok(())
    }

    /// One pass over pending settlements; returns how many it retried.
    pub async fn retry_pending(&self) -> Result<usize> {
        let due = self.ledger.due_for_retry(32).await?;
        let mut retried = 0;
        for id in due {
            if let Some(settleable) = self.ledger.claim_for_retry(&id).await? {
                let settled = self.settle_claimed(&id, settleable).await?;
                tracing::info!(payment_id = %id, success = settled.response.success, pending = settled.pending, "retried a pending settlement");
                retried += 1;
            }
        }
        Ok(retried)
    }

    pub async fn ledger_statuses(&self, payer: &str) -> Result<Vec<String>> {
        self.ledger.statuses_of(payer).await
    }

    pub async fn status(&self, payment_id: &str) -> Result<Option<(String, Option<String>)>> {
        self.ledger.status(payment_id).await
    }
}

fn resource(route: &str, url: &str) -> ResourceInfo {
    ResourceInfo {
        url: url.to_string(),
        description: Some(format!("Tessera {route}")),
        mime_type: Some("application/json".into()),
    }
}

fn same_terms(accepted: &Requirements, required: &Requirements) -> bool {
    accepted.scheme == required.scheme
        && accepted.network == required.network
        && accepted.amount == required.amount
        && accepted.asset.eq_ignore_ascii_case(&required.asset)
        && accepted.pay_to.eq_ignore_ascii_case(&required.pay_to)
}
