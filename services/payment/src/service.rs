//! The payment flow the gateway drives: quote → verify → run the call →
//! settle, or cancel when the call failed.
//!
//! Verify, in order, stopping at the first refusal:
//!
//! 1. **Read, no I/O.** The header (at most 16 KiB, any base64) is parsed
//!    once into typed values ([`ExactPayment`]); it must pay exactly this
//!    route's terms ([`ExactPayment::matches`], the facilitator's own
//!    check), a v2 payload that names its resource must name this one (path
//!    and description), and the authorization must stay valid for at least
//!    the settle timeout.
//! 2. **Signer, locally.** The EIP-712 signature must recover to `from`;
//!    only if it does not is the chain asked whether `from` is a contract
//!    wallet that accepts it (ERC-1271). Nothing refused so far has touched
//!    the ledger.
//! 3. **Exposure.** The payer's balance is read, and the authorization and
//!    its amount are reserved in one ledger transaction, only if the balance
//!    covers everything the payer has outstanding plus this amount
//!    ([`Ledger::reserve`]). Any earlier presentation of the same
//!    authorization, in any spelling and whatever became of it, makes this
//!    one a conflict (409).
//! 4. **Facilitator.** `/verify` (nonce unused, balance, simulation).
//!
//! A call whose settlement comes later (`settle_later`, the gateway's async
//! mode) is answered before the chain: its exposure is judged on a balance
//! read at most `PAYMENT_BALANCE_MAX_AGE_MS` ago ([`crate::balances`]) and
//! step 4 is skipped. What the facilitator would have caught (a nonce spent
//! elsewhere, a balance spent elsewhere, a token that refuses) then shows at
//! settlement, as a debt within the payer's exposure bound, and the debtor's
//! next calls are verified in full and settled before they run.
//!
//! A settle that cannot finish becomes `pending` and is retried in the
//! background; the EIP-3009 nonce makes a second charge impossible. A
//! settlement of a served call that fails for good makes the payer a debtor,
//! whose later calls are settled before they run.
//!
//! A served call's settlement may also be deferred ([`Payments::queue`]):
//! the payment is queued in the ledger and answered at once as pending, and
//! the [`crate::settler`] settles it in the background through the same
//! path (served, so a failure is a debt). The pending `PAYMENT-RESPONSE`
//! follows the x402 v2 `SettlementResponse`: `success: false`, `errorReason:
//! "settlement_pending"`, `transaction: ""`, `network`, `payer`, `amount`,
//! and names the payment in `extensions`:
//!
//! ```json
//! {"settlement": {"id": "pay_…", "status": "queued", "lookup": "/api/payments/pay_…"}}
//! ```
//!
//! `lookup` is the gateway's free `GET /api/payments/{id}` (backed by
//! [`Payments::payment`]), which shows the final state and transaction.

use crate::backlog::{Backlog, Place};
use crate::balances::{Balances, Reading, Source};
use crate::catalog::Catalog;
use crate::config::{Asset, PaymentConfig};
use crate::facilitator_client::FacilitatorClient;
use crate::group_commit::{FinishWrite, GroupCommit, QueueWrite};
use crate::lease::Leases;
use crate::ledger::{
    Account, Claimed, Ending, Ledger, NewPayment, Outcome, PaymentState, Reservation, Scope,
    Settleable,
};
use crate::metrics;
use alloy::primitives::{Address, U256};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tessera_catalog::Route;
use tessera_error::{Error, ErrorKind, Result};
use tessera_evm::{Chain, SignatureRefused};
use tessera_runtime::dependency::{observe, Dependency};
use tessera_x402::eip3009;
use tessera_x402::exact::parse_address;
use tessera_x402::facilitator::{FacilitatorRequest, SettleResponse, Urgency};
use tessera_x402::payment::PayloadError;
use tessera_x402::{
    encode_header, reason, ExactPayment, ExactRequirements, PaymentPayload, PaymentRequired,
    Refusal, Requirements, ResourceInfo,
};
use tokio::sync::Notify;

const VERIFY_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the gateway shows a payment's state: this, then the payment's id.
pub const LOOKUP_PATH: &str = "/api/payments/";

#[derive(Clone)]
pub struct Payments {
    catalog: Catalog,
    asset: Asset,
    asset_address: Address,
    pay_to: String,
    pay_to_address: Address,
    max_timeout_seconds: u64,
    settle_timeout: Duration,
    ledger: Ledger,
    facilitator_url: String,
    facilitator: FacilitatorClient,
    chain: Chain,
    /// The payments this service settles (see [`Ledger::claim_queued`]).
    scope: Scope,
    /// Wakes the settler when a payment is queued.
    queued: Arc<Notify>,
    /// Balances read for calls settled later.
    balances: Arc<Balances>,
    /// Queues served calls' payments, grouping concurrent ones.
    queue_writer: Arc<GroupCommit<QueueWrite>>,
    /// Ends the settlements that came back, grouped.
    finish_writer: Arc<GroupCommit<FinishWrite>>,
    /// The `settling` payments this process holds.
    leases: Arc<Leases>,
    /// How long a payment queued now would wait for the settler.
    backlog: Arc<Backlog>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Lower-case 0x address: the caller's namespace.
    pub payer: String,
    pub payment_id: String,
    /// Settle this payment before running the call: the payer is a debtor,
    /// or the settler's queue would outlast the authorization.
    pub settle_before: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    pub response: SettleResponse,
    pub pending: bool,
    /// Queued for the settler (deferred), not attempted yet.
    pub queued: bool,
}

impl Settled {
    pub fn header(&self) -> String {
        encode_header(&self.response)
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Payments {
    pub fn new(config: &PaymentConfig, ledger: Ledger) -> anyhow::Result<Self> {
        let asset_address = parse_address(&config.asset.address)
            .ok_or_else(|| anyhow::anyhow!("PAYMENT_ASSET is not an address"))?;
        let pay_to_address = parse_address(&config.pay_to)
            .ok_or_else(|| anyhow::anyhow!("PAYMENT_PAY_TO is not an address"))?;
        let chain = Chain::new(&config.rpc_url, config.rpc_timeout)
            .map_err(|e| anyhow::anyhow!("PAYMENT_RPC_URL: {e}"))?
            .observed(|method, call| observe(Dependency::Chain, method, call));
        metrics::init();
        Ok(Payments {
            catalog: config.catalog.clone(),
            asset: config.asset.clone(),
            asset_address,
            pay_to: config.pay_to.clone(),
            pay_to_address,
            max_timeout_seconds: config.max_timeout_seconds,
            settle_timeout: config.settle_timeout,
            queue_writer: GroupCommit::new(ledger.clone()),
            finish_writer: GroupCommit::new(ledger.clone()),
            leases: Leases::new(ledger.clone(), config.settle_lease),
            backlog: Arc::new(Backlog::new(config.settle_timeout)),
            ledger,
            facilitator_url: config.facilitator_url.clone(),
            facilitator: FacilitatorClient::new(
                &config.facilitator_url,
                config.facilitator_api_key.clone(),
            ),
            chain,
            scope: Scope {
                network: config.asset.network.caip2(),
                asset: format!("{asset_address:#x}"),
                pay_to: config.pay_to.clone(),
            },
            queued: Arc::new(Notify::new()),
            balances: Arc::new(Balances::new(config.balance_max_age)),
        })
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn asset(&self) -> &Asset {
        &self.asset
    }

    /// Where payments go (as configured: a 0x address).
    pub fn pay_to(&self) -> &str {
        &self.pay_to
    }

    /// The facilitator that verifies and settles payments.
    pub fn facilitator_url(&self) -> &str {
        &self.facilitator_url
    }

    /// Whether `name` ("facilitator" or "chain_rpc") answers now.
    pub async fn probe_dependency(&self, name: &str) -> Result<Result<(), String>> {
        const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
        match name {
            "facilitator" => Ok(self
                .facilitator
                .supported(PROBE_TIMEOUT)
                .await
                .map_err(|unreachable| unreachable.0)),
            "chain_rpc" => Ok(
                match tokio::time::timeout(PROBE_TIMEOUT, self.chain.chain_id()).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(error)) => Err(error.to_string()),
                    Err(_) => Err(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
                },
            ),
            other => Err(Error::invalid(
                "UNKNOWN_DEPENDENCY",
                format!("no dependency {other:?}: expected \"facilitator\" or \"chain_rpc\""),
            )),
        }
    }

    pub fn max_timeout_seconds(&self) -> u64 {
        self.max_timeout_seconds
    }

    /// How long one settlement may take before it is taken for pending.
    pub fn settle_timeout(&self) -> Duration {
        self.settle_timeout
    }

    /// The payments this service settles: its network, asset and payTo.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// Notified each time a payment is queued.
    pub(crate) fn queued_signal(&self) -> Arc<Notify> {
        self.queued.clone()
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The settler's queue, as the settler tells it.
    pub(crate) fn backlog(&self) -> &Backlog {
        &self.backlog
    }

    /// What the route costs, as x402 v2 `PaymentRequirements`.
    pub fn requirements(&self, route: &str) -> Result<Requirements> {
        Ok(Requirements {
            scheme: "exact".into(),
            network: self.asset.network.caip2(),
            amount: self.catalog.price(route)?.to_string(),
            asset: self.asset_address.to_checksum(None),
            pay_to: self.pay_to_address.to_checksum(None),
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
        let (_, catalog_route) = self.catalog.priced(route)?;
        Ok(PaymentRequired {
            x402_version: 2,
            error: Some(
                error
                    .unwrap_or("PAYMENT-SIGNATURE header is required")
                    .to_string(),
            ),
            resource: resource(catalog_route, resource_url),
            accepts: vec![self.requirements(route)?],
        })
    }

    fn payment_required(&self, route: &str, resource_url: &str, refusal: Refusal) -> Error {
        metrics::refused(refusal.reason);
        let mut error = Error::new(ErrorKind::PaymentRequired, refusal.reason, refusal.message);
        if let Ok(quote) = self.quote(route, resource_url, Some(refusal.reason)) {
            error = error.with_detail("paymentRequired", encode_header(&quote));
        }
        error
    }

    /// The route's terms, typed and as x402 `PaymentRequirements`.
    fn terms(&self, route: &str) -> Result<(u64, &'static Route, ExactRequirements, Requirements)> {
        let (price, catalog_route) = self.catalog.priced(route)?;
        let typed = ExactRequirements {
            network: self.asset.network,
            amount: U256::from(price),
            asset: self.asset_address,
            pay_to: self.pay_to_address,
            max_timeout_seconds: self.max_timeout_seconds,
            domain: None,
        };
        Ok((price, catalog_route, typed, self.requirements(route)?))
    }

    /// Steps 1 and 2 of verify: the header pays this route's terms, its
    /// authorization is valid now and for `min_remaining` seconds more, and
    /// `from` signed it. Nothing is reserved.
    async fn authenticate(
        &self,
        route: &str,
        resource_url: &str,
        header: &str,
        min_remaining: u64,
    ) -> Result<ExactPayment> {
        let (_, catalog_route, typed, _) = self.terms(route)?;
        let refuse = |refusal: Refusal| self.payment_required(route, resource_url, refusal);
        let payment = read_payment(header, catalog_route, &typed, resource_url)
            .and_then(|payment| {
                payment
                    .authorization
                    .check_window(unix_now(), min_remaining)?;
                Ok(payment)
            })
            .map_err(refuse)?;
        self.check_signer(&payment, &typed)
            .await
            .map_err(|e| match e {
                Signer::Refused(refusal) => refuse(refusal),
                Signer::Unavailable(error) => error,
            })?;
        Ok(payment)
    }

    /// The payer a payment header proves, without reserving or settling it:
    /// its authorization pays this route's terms, is valid now, and was
    /// signed by `from`. Whether it was already used does not matter, so a
    /// client retrying with the header it sent before is identified too.
    /// Lower-case 0x address.
    pub async fn identify(&self, route: &str, resource_url: &str, header: &str) -> Result<String> {
        let payment = self.authenticate(route, resource_url, header, 0).await?;
        Ok(Account::of(&payment.key(self.asset_address)).payer)
    }

    /// Checks a `PAYMENT-SIGNATURE` / `X-PAYMENT` header for a route,
    /// reserves its authorization within the payer's means and has the
    /// facilitator verify it. With `settle_later` (the call is settled after
    /// it is answered) a non-debtor's payment is accepted on the local
    /// checks and a recent balance: see the module's documentation.
    pub async fn verify(
        &self,
        route: &str,
        resource_url: &str,
        header: &str,
        settle_later: bool,
    ) -> Result<Verified> {
        let (price, catalog_route, _, required) = self.terms(route)?;
        let refuse = |refusal: Refusal| self.payment_required(route, resource_url, refusal);
        let payment = self
            .authenticate(route, resource_url, header, self.settle_timeout.as_secs())
            .await?;
        // Declined, the call is settled before it runs, like a debtor's.
        let place = settle_later.then(|| self.queue_place(&payment)).flatten();
        let declined = settle_later && place.is_none();
        let settle_later = place.is_some();
        let requirements_json = match payment.x402_version {
            1 => {
                let v1 = required
                    .to_v1(&resource(catalog_route, resource_url))
                    .ok_or_else(|| {
                        refuse(Refusal::new(
                            reason::INVALID_X402_VERSION,
                            format!("{} has no x402 v1 name; pay with v2", self.asset.network),
                        ))
                    })?;
                serde_json::to_value(v1)
            }
            _ => serde_json::to_value(&required),
        }
        .expect("serializes");

        let key = payment.key(self.asset_address);
        // Settled now: a replay costs one indexed read, not a balance RPC.
        // Settled later (the hot path), the reserve statement alone finds a
        // replay, and the account is read only with the balance.
        let prior = match settle_later {
            true => None,
            false => {
                let prior = self.ledger.prior(&key).await?;
                if prior.presented {
                    return Err(already_presented());
                }
                Some(prior)
            }
        };
        let account = Account::of(&key);
        let payload_json = canonical(&payment, &required, self.asset.network);
        let new_payment = NewPayment {
            key: &key,
            route,
            resource: resource_url,
            amount: U256::from(price),
            pay_to: &self.pay_to,
            x402_version: payment.x402_version,
            payload: &payload_json,
            requirements: &requirements_json,
            // Nothing is left to check for a call settled later.
            verified: settle_later,
        };
        let payer = payment.payer();
        // Owned: a cached reading past half its age is read again behind
        // the call (see `Balances::get`).
        let fresh = || {
            let (ledger, chain, asset) =
                (self.ledger.clone(), self.chain.clone(), self.asset_address);
            let account = account.clone();
            let prior_settled = prior.as_ref().map(|prior| prior.settled_total);
            async move {
                // Read before the balance (see `Reading`).
                let settled_before = match prior_settled {
                    Some(settled_total) => settled_total,
                    None => ledger.account(&account).await?.settled_total,
                };
                let balance = chain
                    .balance_of(asset, payer)
                    .await
                    .map_err(|e| chain_unavailable(&e))?;
                Ok::<_, Error>(Reading {
                    balance,
                    settled_before,
                })
            }
        };
        let (reading, source) = if settle_later {
            self.balances.get(payer, fresh).await?
        } else {
            (fresh().await?, Source::Chain)
        };
        metrics::balance_read(source);
        let mut reservation = self
            .ledger
            .reserve(&new_payment, reading.balance, reading.settled_before)
            .await?;
        if matches!(reservation, Reservation::NotCovered { .. }) && source == Source::Cache {
            // Refuse on a fresh balance only: the payer may have topped up.
            self.balances.forget(payer);
            let (reading, _) = self.balances.get(payer, fresh).await?;
            metrics::balance_read(Source::Chain);
            reservation = self
                .ledger
                .reserve(&new_payment, reading.balance, reading.settled_before)
                .await?;
        }
        let (payment_id, debtor) = match reservation {
            Reservation::Reserved { id, debtor } => (id, debtor),
            Reservation::AlreadyPresented => return Err(already_presented()),
            Reservation::NotCovered { balance } => {
                return Err(refuse(Refusal::new(
                    reason::INSUFFICIENT_FUNDS,
                    format!(
                        "the payer's balance {balance} does not cover what it already owes plus {price}"
                    ),
                )));
            }
        };
        if let (Some(place), false) = (place, debtor) {
            place.keep();
            metrics::outcome("verified");
            return Ok(Verified {
                payer: account.payer,
                payment_id,
                settle_before: false,
            });
        }

        let request = FacilitatorRequest {
            x402_version: payment.x402_version,
            payment_payload: payload_json,
            payment_requirements: requirements_json,
        };
        let verdict = match self.facilitator.verify(&request, VERIFY_TIMEOUT).await {
            Ok(verdict) => verdict,
            Err(unreachable) => {
                self.release(&payment_id, "cancelled", "facilitator unavailable")
                    .await?;
                return Err(unreachable.into());
            }
        };
        if !verdict.is_valid {
            let why = verdict
                .invalid_reason
                .clone()
                .unwrap_or_else(|| reason::UNEXPECTED_VERIFY_ERROR.into());
            self.release(&payment_id, "rejected", &why).await?;
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
            let known = reason::REGISTRY
                .iter()
                .find(|code| **code == why)
                .copied()
                .unwrap_or(reason::INVALID_PAYLOAD);
            return Err(self.payment_required(route, resource_url, Refusal::new(known, message)));
        }
        self.verified(account, payment_id, debtor || declined).await
    }

    /// A place in the settler's queue for this payment if the settler will
    /// take it while its authorization has a settle timeout left (see
    /// [`crate::backlog`]); `None`: it is settled before its call runs.
    fn queue_place(&self, payment: &ExactPayment) -> Option<Place<'_>> {
        let valid_before = u64::try_from(payment.authorization.valid_before).unwrap_or(u64::MAX);
        let remaining = Duration::from_secs(valid_before.saturating_sub(unix_now()));
        let place = self.backlog.admit(remaining, std::time::Instant::now());
        if place.is_none() {
            metrics::settle_later_declined();
        }
        place
    }

    /// Marks a reserved payment verified: only a payment still reserved may
    /// be served, one released meanwhile (taken for abandoned) can never be
    /// settled.
    async fn verified(
        &self,
        account: Account,
        payment_id: String,
        settle_before: bool,
    ) -> Result<Verified> {
        if !self
            .ledger
            .transition(&payment_id, &["reserved"], "verified")
            .await?
        {
            return Err(Error::unavailable(
                "PAYMENT_RELEASED",
                "the payment was released before its verification finished: sign a new one",
            ));
        }
        metrics::outcome("verified");
        Ok(Verified {
            payer: account.payer,
            payment_id,
            settle_before,
        })
    }

    /// The signature is `from`'s: recovered locally, or accepted by the
    /// contract wallet `from` on chain.
    async fn check_signer(
        &self,
        payment: &ExactPayment,
        required: &ExactRequirements,
    ) -> std::result::Result<(), Signer> {
        let domain = eip3009::domain(
            &self.asset.name,
            &self.asset.version,
            required.network.chain_id,
            required.asset,
        );
        let hash = payment.authorization.message().signing_hash(&domain);
        match tessera_evm::check_signature(&self.chain, payment.payer(), hash, &payment.signature)
            .await
        {
            Ok(_) => Ok(()),
            Err(SignatureRefused::Invalid(why)) => {
                Err(Signer::Refused(Refusal::new(reason::SIGNATURE, why)))
            }
            Err(SignatureRefused::Unavailable(error)) => {
                Err(Signer::Unavailable(chain_unavailable(&error)))
            }
        }
    }

    async fn release(&self, payment_id: &str, status: &str, why: &str) -> Result<bool> {
        let released = self
            .ledger
            .finish(
                payment_id,
                &["reserved", "verified"],
                status,
                Outcome::Released,
                None,
                Some(why),
                false,
            )
            .await?;
        if released {
            metrics::outcome(status);
        }
        Ok(released)
    }

    /// Settles a verified payment. `before_execution`: the call has not run
    /// (a failure refuses it); otherwise it was served (a failure is a debt).
    pub async fn settle(&self, payment_id: &str, before_execution: bool) -> Result<Settled> {
        match self.ledger.claim_for_settle(payment_id).await? {
            Some(settleable) => {
                self.settle_claimed(payment_id, settleable, !before_execution, Urgency::Now)
                    .await
            }
            None => Err(Error::new(
                ErrorKind::PreconditionFailed,
                "PAYMENT_NOT_SETTLEABLE",
                "this payment is not verified, or was already settled or cancelled",
            )),
        }
    }

    /// Queues the settlement of a verified payment whose call was served,
    /// and answers at once: pending, naming the payment (see the module's
    /// documentation). The settler settles it in the background; until then
    /// its amount stays outstanding against the payer.
    pub async fn queue(&self, payment_id: &str) -> Result<Settled> {
        let Some(queued) = self.queue_writer.write(payment_id.to_string()).await? else {
            return Err(Error::new(
                ErrorKind::PreconditionFailed,
                "PAYMENT_NOT_SETTLEABLE",
                "this payment is not verified, or was already queued, settled or cancelled",
            ));
        };
        self.queued.notify_one();
        metrics::outcome("queued");
        Ok(Settled {
            response: SettleResponse {
                success: false,
                error_reason: Some(reason::SETTLEMENT_PENDING.into()),
                error_message: Some("served; the settlement is queued".into()),
                payer: Some(queued.payer),
                transaction: String::new(),
                network: queued.network,
                amount: Some(queued.amount),
                extensions: Some(json!({
                    "settlement": {
                        "id": payment_id,
                        "status": "queued",
                        "lookup": format!("{LOOKUP_PATH}{payment_id}"),
                    }
                })),
            },
            pending: true,
            queued: true,
        })
    }

    /// Takes up to `limit` queued payments of this service's scope.
    pub(crate) async fn claim_queued(&self, limit: usize) -> Result<Vec<Claimed>> {
        self.ledger.claim_queued(&self.scope, limit).await
    }

    /// Settles a queued payment the settler claimed: its call was served.
    pub(crate) async fn settle_queued(
        &self,
        payment_id: &str,
        settleable: Settleable,
    ) -> Result<Settled> {
        self.settle_claimed(payment_id, settleable, true, Urgency::Background)
            .await
    }

    /// A payment's state; `None` for an unknown id, or text that is no id
    /// (not looked up).
    pub async fn payment(&self, payment_id: &str) -> Result<Option<PaymentState>> {
        if !crate::ledger::is_payment_id(payment_id) {
            return Ok(None);
        }
        self.ledger.get(payment_id).await
    }

    async fn settle_claimed(
        &self,
        payment_id: &str,
        settleable: Settleable,
        served: bool,
        // Background: nobody waits for it (the call was answered), so it
        // waits at the facilitator behind the settles callers wait for.
        urgency: Urgency,
    ) -> Result<Settled> {
        let _held = self.leases.hold(payment_id);
        let started = std::time::Instant::now();
        let request = FacilitatorRequest {
            x402_version: settleable.x402_version,
            payment_payload: settleable.payload,
            payment_requirements: settleable.requirements,
        };
        let outcome = self
            .facilitator
            .settle(&request, self.settle_timeout, urgency)
            .await;
        let mut response = match outcome {
            Ok(response) => {
                if !response.success {
                    metrics::settlement_failed(response.error_reason.as_deref().unwrap_or(""));
                }
                response
            }
            Err(unreachable) => {
                tracing::warn!(payment_id, error = %unreachable.0, "settle did not finish; pending, retried in the background");
                metrics::settlement_failed(unreachable.kind());
                SettleResponse {
                    success: false,
                    error_reason: Some(reason::SETTLEMENT_PENDING.into()),
                    error_message: Some("settlement is in progress".into()),
                    payer: Some(settleable.payer.clone()),
                    transaction: String::new(),
                    network: settleable.network.clone(),
                    amount: None,
                    extensions: None,
                }
            }
        };
        // Not finished is not failed: a transfer may be in flight, or the
        // chain was unreachable. Either way a retry settles it, or finds the
        // nonce spent by it, and can never charge twice.
        let pending = !response.success
            && matches!(
                response.error_reason.as_deref(),
                Some(reason::SETTLEMENT_PENDING) | Some(reason::UNEXPECTED_SETTLE_ERROR)
            );
        let transaction = Some(response.transaction.as_str());
        if response.success {
            self.finish_writer
                .write(Ending {
                    id: payment_id.to_string(),
                    outcome: Outcome::Settled,
                    transaction: transaction.map(str::to_string),
                    reason: None,
                    served,
                })
                .await?;
            metrics::outcome("settled");
            metrics::settlement(metrics::SETTLED, started.elapsed());
        } else if pending {
            response.error_reason = Some(reason::SETTLEMENT_PENDING.into());
            // A call whose settlement is pending is served either way.
            self.ledger
                .record_pending(payment_id, transaction, true)
                .await?;
            metrics::outcome("pending");
            metrics::settlement(metrics::PENDING, started.elapsed());
        } else {
            let (outcome, label) = if served {
                (Outcome::Debt, "debt")
            } else {
                (Outcome::Released, "failed")
            };
            self.finish_writer
                .write(Ending {
                    id: payment_id.to_string(),
                    outcome,
                    transaction: transaction.map(str::to_string),
                    reason: response.error_reason.clone(),
                    served,
                })
                .await?;
            metrics::outcome(label);
            metrics::settlement(metrics::FAILED, started.elapsed());
            if served {
                tracing::warn!(
                    payment_id,
                    payer = %settleable.payer,
                    amount = %settleable.amount,
                    reason = ?response.error_reason,
                    "a served call could not be settled: the payer is now a debtor"
                );
            }
        }
        Ok(Settled {
            response,
            pending,
            queued: false,
        })
    }

    /// The call failed: release the payment, nothing is charged.
    pub async fn cancel(&self, payment_id: &str, why: &str) -> Result<()> {
        self.release(payment_id, "cancelled", why).await?;
        Ok(())
    }

    /// How long a reserved or verified payment may sit before its driver is
    /// taken to have stopped: the longest a verification takes, plus the
    /// settle timeout (a gateway settles right after its call, which is
    /// bounded well below that).
    fn orphaned_after(&self) -> u64 {
        (VERIFY_TIMEOUT + self.settle_timeout).as_secs()
    }

    /// One background pass; returns how many settlements it attempted.
    ///
    /// - Pending settlements, and settlements whose settler stopped, are
    ///   settled again (the nonce makes a second charge impossible).
    /// - Orphans ([`Ledger::orphans`]): a `reserved` payment was never
    ///   answered verified, so never served: released. A `verified` one may
    ///   have been served (its gateway stopped between the call and the
    ///   settlement): settled as served, a failure being a debt.
    pub async fn retry_pending(&self) -> Result<usize> {
        let after = self.orphaned_after();
        let mut attempted = 0;
        for (id, status) in self.ledger.orphans(&self.scope, after).await? {
            if status == "reserved" {
                let released = self
                    .ledger
                    .finish(
                        &id,
                        &["reserved"],
                        "cancelled",
                        Outcome::Released,
                        None,
                        Some("verification never finished"),
                        false,
                    )
                    .await?;
                if released {
                    metrics::outcome("cancelled");
                    tracing::warn!(payment_id = %id, "released a reservation whose verification never finished");
                }
            } else if let Some(settleable) = self.ledger.claim_orphan(&id, after).await? {
                tracing::warn!(payment_id = %id, "settling a verified payment its gateway never settled nor cancelled");
                self.settle_claimed(&id, settleable, true, Urgency::Background)
                    .await?;
                attempted += 1;
            }
        }
        // A live settlement renews its lease: one settling for longer
        // lost its settler (a stopped process), and is taken while its
        // authorization is still valid.
        let lease = self.leases.lease().as_secs();
        for id in self.ledger.due_for_retry(&self.scope, 32, lease).await? {
            if let Some(settleable) = self.ledger.claim_for_retry(&id, lease).await? {
                let settled = self
                    .settle_claimed(&id, settleable, true, Urgency::Background)
                    .await?;
                tracing::info!(payment_id = %id, success = settled.response.success, pending = settled.pending, "retried a pending settlement");
                attempted += 1;
            }
        }
        Ok(attempted)
    }

    pub async fn ledger_statuses(&self, payer: &str) -> Result<Vec<String>> {
        self.ledger.statuses_of(payer).await
    }

    pub async fn status(&self, payment_id: &str) -> Result<Option<(String, Option<String>)>> {
        self.ledger.status(payment_id).await
    }
}

/// Why a signature could not be accepted.
enum Signer {
    Refused(Refusal),
    Unavailable(Error),
}

fn already_presented() -> Error {
    metrics::refused(metrics::ALREADY_PRESENTED);
    Error::new(
        ErrorKind::Conflict,
        "PAYMENT_ALREADY_USED",
        "this payment was already presented: sign a new one",
    )
}

fn chain_unavailable(error: &tessera_evm::ChainError) -> Error {
    Error::new(
        ErrorKind::BadGateway,
        reason::UNEXPECTED_VERIFY_ERROR,
        format!("the payment network could not be read: {error}"),
    )
}

/// Steps 1 of verify: the header, read into typed values and held against
/// the route. No I/O.
fn read_payment(
    header: &str,
    route: &Route,
    required: &ExactRequirements,
    resource_url: &str,
) -> std::result::Result<ExactPayment, Refusal> {
    let value: Value = tessera_x402::decode_header(header)
        .map_err(|e| Refusal::new(reason::INVALID_PAYLOAD, e.to_string()))?;
    let payload = PaymentPayload::from_value(value).map_err(|e| match e {
        PayloadError::Version(_) => Refusal::new(reason::INVALID_X402_VERSION, e.to_string()),
        PayloadError::Malformed(_) => Refusal::new(reason::INVALID_PAYLOAD, e.to_string()),
    })?;
    let payment = ExactPayment::parse(&payload)?;
    payment.matches(required)?;
    check_resource(route, resource_url, payment.resource.as_ref())?;
    Ok(payment)
}

/// A v2 payment that names the resource it pays for must name this one: the
/// same path (the query may differ) and, when it carries one, the
/// description our quote gave this route. A payment quoted for one route is
/// no payment for another, even at the same price.
fn check_resource(
    route: &Route,
    resource_url: &str,
    paid_for: Option<&ResourceInfo>,
) -> std::result::Result<(), Refusal> {
    let Some(paid_for) = paid_for else {
        return Ok(());
    };
    let same_path = path_of(&paid_for.url) == path_of(resource_url);
    let same_route = paid_for
        .description
        .as_deref()
        .is_none_or(|description| description == route.description());
    if same_path && same_route {
        return Ok(());
    }
    Err(Refusal::new(
        reason::INVALID_PAYMENT_REQUIREMENTS,
        format!(
            "the payment is for {} ({}), not for this call ({} {})",
            paid_for.url,
            paid_for.description.as_deref().unwrap_or("no description"),
            route.method,
            path_of(resource_url)
        ),
    ))
}

/// The path of an absolute or relative URL, without query or fragment.
fn path_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = if url.contains("://") {
        rest.find('/').map_or("", |at| &rest[at..])
    } else {
        rest
    };
    rest.split(['?', '#']).next().unwrap_or("")
}

/// The payload as the ledger keeps it and the facilitator receives it: our
/// requirements as `accepted`, the authorization in canonical spelling.
fn canonical(
    payment: &ExactPayment,
    required: &Requirements,
    network: tessera_x402::Network,
) -> Value {
    let payload = payment.canonical_payload();
    match payment.x402_version {
        1 => PaymentPayload::V1 {
            scheme: "exact".into(),
            network: network.v1_name().unwrap_or_default().into(),
            payload,
        },
        _ => PaymentPayload::V2 {
            accepted: required.clone(),
            resource: payment.resource.clone(),
            payload,
            extensions: None,
        },
    }
    .to_value()
}

fn resource(route: &Route, url: &str) -> ResourceInfo {
    ResourceInfo {
        url: url.to_string(),
        description: Some(route.description()),
        mime_type: Some("application/json".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_ignore_scheme_host_query_and_fragment() {
        assert_eq!(
            path_of("http://127.0.0.1:8080/api/memory?key=a"),
            "/api/memory"
        );
        assert_eq!(
            path_of("https://x.example/agents/a/memory/k#f"),
            "/agents/a/memory/k"
        );
        assert_eq!(path_of("http://host"), "");
        assert_eq!(path_of("/api/memory/cas"), "/api/memory/cas");
    }

    #[test]
    fn a_payment_for_one_route_is_none_for_another() {
        let get = tessera_catalog::route("agents.memory.get").unwrap();
        let delete = tessera_catalog::route("agents.memory.delete").unwrap();
        let url = "http://h/agents/0xabc/memory/k";
        let paid = |description: &Route, url: &str| ResourceInfo {
            url: url.into(),
            description: Some(description.description()),
            mime_type: None,
        };
        assert!(check_resource(get, url, Some(&paid(get, url))).is_ok());
        assert!(check_resource(get, url, None).is_ok());
        let bare = ResourceInfo {
            description: None,
            ..paid(get, "http://other/agents/0xabc/memory/k?x=1")
        };
        assert!(check_resource(get, url, Some(&bare)).is_ok());
        // Same path and price, another method.
        let refusal = check_resource(delete, url, Some(&paid(get, url))).unwrap_err();
        assert_eq!(refusal.reason, reason::INVALID_PAYMENT_REQUIREMENTS);
        // Another path.
        assert!(
            check_resource(get, url, Some(&paid(get, "http://h/agents/0xabc/memory/j"))).is_err()
        );
    }
}
