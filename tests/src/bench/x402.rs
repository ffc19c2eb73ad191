//! x402 verification: the facilitator's `POST /verify` over HTTP against a
//! facilitator on anvil, beside its CPU limit, the EIP-712 signing hash of an
//! EIP-3009 `TransferWithAuthorization` plus ECDSA public-key recovery in a
//! tight loop on OS threads (what every verify must do at least once).

use super::driver::{run_shared, run_threads, Outcome, WARMUP};
use super::Settings;
use alloy::primitives::{Address, Bytes, Signature, U256};
use alloy::signers::local::PrivateKeySigner;
use alloy::signers::SignerSync;
use anyhow::{ensure, Context};
use reqwest::header::CONTENT_TYPE;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tessera_tests::chain::{
    facilitator_request, payload_v2, random_nonce, unix_now, Chain, FacilitatorServer, CHAIN_ID,
    TOKEN_NAME, TOKEN_VERSION,
};
use tessera_x402::eip3009::{self, TransferWithAuthorization};
use tessera_x402::facilitator::VerifyResponse;
use tessera_x402::Requirements;

/// Distinct pre-signed authorizations each recover thread cycles through.
const RECOVER_PER_THREAD: usize = 64;
/// The price the verify payments carry (a CAS, 0.001 USDC).
const VERIFY_AMOUNT: u64 = 1_000;

/// How long pre-signed payments stay valid: longer than any run (a client
/// would sign for `maxTimeoutSeconds`, 60 s; the facilitator only asks for
/// at least 6 s left, and a long `BENCH_SECONDS` must not expire them).
const PRESIGNED_VALID_SECS: u64 = 3_600;

/// One pre-signed authorization, as the facilitator receives it: the typed
/// data (`from` is the signer) and the raw 65-byte signature.
struct Signed {
    authorization: TransferWithAuthorization,
    signature: Bytes,
}

struct RecoverShared {
    token: Address,
    per_thread: Vec<Vec<Signed>>,
}

impl RecoverShared {
    /// What the facilitator's signature check does: the domain from the
    /// requirements, the signing hash, parse `r‖s‖v`, reject high s,
    /// recover, compare with `authorization.from`.
    fn recover_one(&self, thread: usize, call: u64) -> anyhow::Result<()> {
        let signed = &self.per_thread[thread][call as usize % RECOVER_PER_THREAD];
        let domain = eip3009::domain(TOKEN_NAME, TOKEN_VERSION, CHAIN_ID, self.token);
        let hash = signed.authorization.signing_hash(&domain);
        let signature = Signature::from_raw(&signed.signature)?;
        ensure!(signature.normalize_s().is_none(), "a high-s signature");
        let signer = signature.recover_address_from_prehash(&hash)?;
        ensure!(
            signer == signed.authorization.from,
            "recovered {signer}, not the signer"
        );
        Ok(())
    }
}

/// The CPU limit: EIP-712 hash + `recover_address_from_prehash`.
pub struct Eip712Recover {
    shared: Arc<RecoverShared>,
}

impl Eip712Recover {
    /// Signs [`RECOVER_PER_THREAD`] authorizations per thread, from as many
    /// keys, under our token's domain on the test chain id (no chain needed).
    pub fn setup(settings: &Settings) -> Self {
        Eip712Recover {
            shared: Arc::new(Self::signed(settings.concurrency)),
        }
    }

    fn signed(threads: usize) -> RecoverShared {
        let token = Address::from(rand::random::<[u8; 20]>());
        let pay_to = Address::from(rand::random::<[u8; 20]>());
        let domain = eip3009::domain(TOKEN_NAME, TOKEN_VERSION, CHAIN_ID, token);
        let now = unix_now();
        let per_thread = (0..threads)
            .map(|_| {
                (0..RECOVER_PER_THREAD)
                    .map(|_| {
                        let signer = PrivateKeySigner::random();
                        let authorization = TransferWithAuthorization {
                            from: signer.address(),
                            to: pay_to,
                            value: U256::from(VERIFY_AMOUNT),
                            validAfter: U256::from(now - 600),
                            validBefore: U256::from(now + PRESIGNED_VALID_SECS),
                            nonce: random_nonce(),
                        };
                        let hash = authorization.signing_hash(&domain);
                        let signature = signer.sign_hash_sync(&hash).expect("signing a hash");
                        Signed {
                            authorization,
                            signature: Bytes::from(signature.as_bytes().to_vec()),
                        }
                    })
                    .collect()
            })
            .collect();
        RecoverShared { token, per_thread }
    }

    /// Per call, [`RecoverShared::recover_one`] of the thread's next
    /// pre-signed authorization.
    pub async fn recover(&self, name: &str, settings: &Settings) -> Outcome {
        let shared = self.shared.clone();
        run_threads(
            name,
            settings.concurrency,
            settings.seconds,
            move |client, call| shared.recover_one(client, call),
        )
        .await
    }
}

struct VerifyShared {
    http: reqwest::Client,
    verify_url: String,
    /// Distinct `/verify` bodies (JSON), each sent once, in order.
    bodies: Vec<Vec<u8>>,
    next: AtomicUsize,
}

/// `POST /verify` of distinct valid payments against our facilitator on anvil.
pub struct FacilitatorVerify {
    /// Kept alive for the case: anvil and the facilitator server.
    chain: Chain,
    facilitator: FacilitatorServer,
    requirements: Requirements,
    http: reqwest::Client,
}

impl FacilitatorVerify {
    /// anvil with the token and four funded buyers, the facilitator, and
    /// one sample `/verify`, so a setup fault fails here with its reason.
    pub async fn setup(settings: &Settings) -> anyhow::Result<Self> {
        let chain = Chain::start().await;
        let facilitator = chain.start_facilitator().await;
        let requirements = chain.requirements(chain.pay_to, VERIFY_AMOUNT);
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(settings.concurrency)
            .build()?;
        let target = FacilitatorVerify {
            chain,
            facilitator,
            requirements,
            http,
        };
        let sample = target.shared(1);
        verify(&sample).await.context("a sample /verify")?;
        Ok(target)
    }

    /// `payments` distinct facilitator requests, signed on every core.
    fn shared(&self, payments: usize) -> VerifyShared {
        VerifyShared {
            http: self.http.clone(),
            verify_url: format!("{}/verify", self.facilitator.http_url),
            bodies: presign(&self.chain, &self.requirements, payments),
            next: AtomicUsize::new(0),
        }
    }

    /// Each call sends the next unused pre-signed payment. `limit` is this
    /// machine's EIP-712 + ecrecover rate (every verify does one recovery,
    /// so it bounds the verify rate); the payments are signed just before
    /// the run, [`LIMIT_MARGIN`] × the limit for every second of it. Without
    /// a measured limit, it is measured briefly first.
    pub async fn verify(&self, name: &str, settings: &Settings, limit: Option<f64>) -> Outcome {
        let limit = match limit {
            Some(limit) => limit,
            None => calibrate().await,
        };
        let seconds = (WARMUP + Duration::from_secs(settings.seconds)).as_secs_f64();
        let payments = (limit * seconds * LIMIT_MARGIN).ceil() as usize;
        let signing = std::time::Instant::now();
        let shared = Arc::new(self.shared(payments));
        eprintln!(
            "  {name}: {payments} distinct payments pre-signed in {:.1?} ({limit:.0}/s limit × \
             {seconds:.0} s × {LIMIT_MARGIN})",
            signing.elapsed()
        );
        run_shared(name, settings, &shared, |shared, _, _| async move {
            verify(&shared).await
        })
        .await
    }

    pub async fn stop(self) {
        self.facilitator.stop().await;
        drop(self.chain);
    }
}

/// How many more payments than the recovery limit allows are signed.
const LIMIT_MARGIN: f64 = 1.25;

/// EIP-712 + ecrecover per second on every core, over half a second.
async fn calibrate() -> f64 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let probe = Eip712Recover::signed(cores);
    let span = Duration::from_millis(500);
    let counted = tokio::task::spawn_blocking(move || {
        std::thread::scope(|scope| {
            let threads: Vec<_> = (0..cores)
                .map(|thread| {
                    let probe = &probe;
                    scope.spawn(move || {
                        let until = std::time::Instant::now() + span;
                        let mut calls = 0u64;
                        while std::time::Instant::now() < until {
                            let _ = probe.recover_one(thread, calls);
                            calls += 1;
                        }
                        calls
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().expect("a calibration thread"))
                .sum::<u64>()
        })
    })
    .await
    .expect("calibration");
    counted as f64 / span.as_secs_f64()
}

/// Sends the pool's next payment to `/verify`; it must be valid.
async fn verify(shared: &VerifyShared) -> anyhow::Result<()> {
    let index = shared.next.fetch_add(1, Ordering::Relaxed);
    let body = shared.bodies.get(index).with_context(|| {
        format!(
            "all {} pre-signed payments were used (verify beat {LIMIT_MARGIN} × the recovery limit?)",
            shared.bodies.len()
        )
    })?;
    let response = shared
        .http
        .post(&shared.verify_url)
        .header(CONTENT_TYPE, "application/json")
        .body(body.clone())
        .send()
        .await?;
    let status = response.status();
    let bytes = response.bytes().await?;
    ensure!(
        status.is_success(),
        "HTTP {status}: {}",
        String::from_utf8_lossy(&bytes)
    );
    let verdict: VerifyResponse = serde_json::from_slice(&bytes).context("a VerifyResponse")?;
    ensure!(
        verdict.is_valid,
        "isValid false: {} ({})",
        verdict.invalid_reason.unwrap_or_default(),
        verdict.invalid_message.unwrap_or_default()
    );
    Ok(())
}

/// `count` facilitator requests, each a payment with its own nonce from one
/// of the chain's funded buyers (round robin), signed on every core.
fn presign(chain: &Chain, requirements: &Requirements, count: usize) -> Vec<Vec<u8>> {
    let domain = eip3009::domain(TOKEN_NAME, TOKEN_VERSION, chain.chain_id, chain.token);
    let buyers = &chain.buyers;
    let to: Address = requirements.pay_to.parse().expect("payTo is an address");
    let value: U256 = requirements.amount.parse().expect("amount is a number");
    let now = unix_now();
    let sign = |index: usize| -> Vec<u8> {
        let signer = &buyers[index % buyers.len()];
        let authorization = TransferWithAuthorization {
            from: signer.address(),
            to,
            value,
            validAfter: U256::from(now - 600),
            validBefore: U256::from(now + PRESIGNED_VALID_SECS),
            nonce: random_nonce(),
        };
        let hash = authorization.signing_hash(&domain);
        let signature = signer.sign_hash_sync(&hash).expect("signing a hash");
        let signature = Bytes::from(signature.as_bytes().to_vec());
        let payload = payload_v2(requirements, &authorization, &signature);
        serde_json::to_vec(&facilitator_request(&payload, requirements)).expect("JSON serializes")
    };
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = count.div_ceil(workers).max(1);
    std::thread::scope(|scope| {
        let sign = &sign;
        let handles: Vec<_> = (0..count)
            .step_by(chunk)
            .map(|from| scope.spawn(move || (from..(from + chunk).min(count)).map(sign).collect()))
            .collect();
        handles
            .into_iter()
            .flat_map(|handle: std::thread::ScopedJoinHandle<'_, Vec<Vec<u8>>>| {
                handle.join().expect("a signing thread")
            })
            .collect()
    })
}
