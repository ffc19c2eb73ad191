//! A memory CAS paid with x402, end to end on real parts
//! ([`tessera_tests::paid::PaidStack`]: anvil with our EIP-3009 token, our
//! facilitator, the payment service with its PostgreSQL ledger, durable
//! memory, the gateway charging every memory route).
//!
//! Each call is what a paying client does: sign a fresh EIP-3009
//! authorization for the CAS price from the client's own wallet, send
//! `POST /api/memory/cas` with `PAYMENT-SIGNATURE`; the gateway asks the
//! payment service (nonce reserved in PostgreSQL, facilitator verify), runs
//! the CAS in the payer's namespace, settles on chain (anvil mines the
//! transfer, the facilitator waits for its receipt) and answers with
//! `PAYMENT-RESPONSE`. A call counts only if it swapped and its settlement
//! succeeded.

use super::driver::{run_shared, Outcome};
use super::Settings;
use alloy::primitives::U256;
use alloy::signers::local::PrivateKeySigner;
use anyhow::{ensure, Context};
use reqwest::header::CONTENT_TYPE;
use serde::Deserialize;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tessera_tests::chain::BUYER_FUNDS;
use tessera_tests::paid::PaidStack;
use tessera_x402::facilitator::SettleResponse;
use tessera_x402::{decode_header, encode_header, Requirements};

/// The payment service's route name for `POST /api/memory/cas`.
const ROUTE: &str = "memory.cas";

struct Client {
    /// The client's own funded wallet; its address is its namespace.
    signer: PrivateKeySigner,
    acquire: Vec<u8>,
    release: Vec<u8>,
}

struct Shared {
    stack: PaidStack,
    http: reqwest::Client,
    cas_url: String,
    requirements: Requirements,
    clients: Vec<Client>,
    /// Calls answered with a successful `PAYMENT-RESPONSE`, warm-up
    /// included: each moved exactly the price on chain.
    settled: AtomicU64,
}

pub struct PaidCas {
    shared: Arc<Shared>,
    /// What the run's settlement check found, for after the table.
    pub note: Option<String>,
}

#[derive(Deserialize)]
struct CasView {
    swapped: bool,
}

impl PaidCas {
    /// The paid stack, and one new wallet holding [`BUYER_FUNDS`] per client.
    pub async fn setup(settings: &Settings) -> anyhow::Result<Self> {
        let stack = PaidStack::start().await;
        let requirements = stack
            .payments
            .requirements(ROUTE)
            .context("the CAS route's price")?;
        let mut clients = Vec::with_capacity(settings.concurrency);
        for client in 0..settings.concurrency {
            let signer = stack.chain.new_buyer(BUYER_FUNDS).await;
            let holder = format!("agent-{client}");
            let key = format!("lock-{client}");
            clients.push(Client {
                signer,
                acquire: body(json!({ "key": key, "expected": null, "value": holder })),
                release: body(json!({ "key": key, "expected": holder, "value": null })),
            });
        }
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(settings.concurrency)
            .build()?;
        let target = PaidCas {
            shared: Arc::new(Shared {
                cas_url: stack.url("/api/memory/cas"),
                stack,
                http,
                requirements,
                clients,
                settled: AtomicU64::new(0),
            }),
            note: None,
        };
        // One paid sample on a key no case touches, so a setup fault fails
        // here with its reason.
        let probe = body(json!({ "key": "probe", "expected": null, "value": 1 }));
        paid_cas(&target.shared, 0, &probe)
            .await
            .context("a sample paid CAS")?;
        Ok(target)
    }

    pub fn price(&self) -> &str {
        &self.shared.requirements.amount
    }

    /// Lock acquire and release pairs on the client's own key, as the
    /// unpaid cases, each call paid. Afterwards checks that payTo's token
    /// balance grew by exactly the settled calls × the price; a mismatch is
    /// an error of the case.
    pub async fn compare_and_swap(&mut self, name: &str, settings: &Settings) -> Outcome {
        let chain = &self.shared.stack.chain;
        let pay_to = chain.pay_to;
        let before = chain.balance_of(pay_to).await;
        let settled_before = self.shared.settled.load(Ordering::SeqCst);
        let mut outcome = run_shared(
            name,
            settings,
            &self.shared,
            |shared, client, call| async move {
                let requests = &shared.clients[client];
                let body = if call.is_multiple_of(2) {
                    &requests.acquire
                } else {
                    &requests.release
                };
                paid_cas(&shared, client, body).await
            },
        )
        .await;
        let after = chain.balance_of(pay_to).await;
        let settled = self.shared.settled.load(Ordering::SeqCst) - settled_before;
        let price: U256 = self.price().parse().expect("the price is a number");
        let expected = U256::from(settled) * price;
        let received = after - before;
        let verdict = if received == expected {
            "exactly as expected"
        } else {
            outcome.error(1, || {
                format!("payTo received {received}, not {settled} settled × {price} = {expected}")
            });
            "MISMATCH"
        };
        self.note = Some(format!(
            "paid-cas settlement: payTo {pay_to} received {received} units = {settled} settled \
             payments (warm-up included) × price {price}: {verdict}"
        ));
        outcome
    }
}

/// One paid `POST /api/memory/cas` from `client`'s wallet with `body`.
async fn paid_cas(shared: &Shared, client: usize, body: &[u8]) -> anyhow::Result<()> {
    let signer = &shared.clients[client].signer;
    let payment = encode_header(&shared.stack.chain.pay(signer, &shared.requirements));
    let response = shared
        .http
        .post(&shared.cas_url)
        .header("PAYMENT-SIGNATURE", payment)
        .header(CONTENT_TYPE, "application/json")
        .body(body.to_vec())
        .send()
        .await?;
    let status = response.status();
    let settlement = response
        .headers()
        .get("payment-response")
        .map(|value| -> anyhow::Result<SettleResponse> { Ok(decode_header(value.to_str()?)?) })
        .transpose()
        .context("the PAYMENT-RESPONSE header")?;
    let reply = response.bytes().await?;
    if settlement.as_ref().is_some_and(|s| s.success) {
        shared.settled.fetch_add(1, Ordering::SeqCst);
    }
    ensure!(
        status.is_success(),
        "HTTP {status}: {}",
        String::from_utf8_lossy(&reply)
    );
    let settlement = settlement.context("no PAYMENT-RESPONSE on a paid 2xx")?;
    ensure!(
        settlement.success && !settlement.transaction.is_empty(),
        "settlement failed: {} {}",
        settlement.error_reason.unwrap_or_default(),
        settlement.error_message.unwrap_or_default()
    );
    let view: CasView = serde_json::from_slice(&reply).context("CAS reply")?;
    ensure!(view.swapped, "CAS did not swap");
    Ok(())
}

fn body(value: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&value).expect("a JSON value serializes")
}
