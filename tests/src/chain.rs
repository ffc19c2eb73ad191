//! A real local chain for the payment tests: anvil from the npm package in
//! `tests/chain` (run `npm ci --prefix tests/chain` once), our EIP-3009 token
//! `TesseraUSD("USDC", "2")` deployed from its committed artifact, buyers
//! holding tokens, and a facilitator key holding ETH for gas. Also helpers
//! that sign x402 `exact` payments as a client would, and a facilitator
//! server on free ports.
//!
//! ```ignore
//! let chain = Chain::start().await;
//! let facilitator = chain.start_facilitator().await;
//! let requirements = chain.requirements(chain.pay_to, 1_000);
//! let payload = chain.pay(&chain.buyers[0], &requirements);
//! // POST {x402Version: 2, paymentPayload: payload, paymentRequirements: requirements}
//! ```
//!
//! Every chain is its own anvil process on a free loopback port (chain id
//! 84532, Base Sepolia's, so the v1 name `base-sepolia` maps to it), killed
//! when the [`Chain`] is dropped.

use alloy::network::Ethereum;
use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::providers::{Provider, RootProvider};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::signers::SignerSync;
use alloy::sol;
use alloy::sol_types::{SolCall, SolValue};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tessera_evm::token::IEip3009Token;
use tessera_facilitator::{Facilitator, FacilitatorConfig, SettlementKey};
use tessera_runtime::Shutdown;
use tessera_x402::eip3009::{self, TransferWithAuthorization};
use tessera_x402::{Authorization, ExactEvmPayload, PaymentPayload, Requirements};
use tokio::process::{Child, Command};

/// Base Sepolia's chain id.
pub const CHAIN_ID: u64 = 84532;
pub const NETWORK: &str = "eip155:84532";
/// Base Sepolia USDC's EIP-712 domain, which our token copies.
pub const TOKEN_NAME: &str = "USDC";
pub const TOKEN_VERSION: &str = "2";
/// Tokens each buyer gets: 1,000 USDC (6 decimals).
pub const BUYER_FUNDS: u64 = 1_000_000_000;

sol! {
    /// The token's owner-only faucet.
    interface ITesseraUsd {
        function mint(address to, uint256 value) external;
    }
}

sol! {
    /// ERC-20's own transfer, which a holder sends itself.
    interface IErc20Transfer {
        function transfer(address to, uint256 value) external returns (bool);
    }
}

/// `tests/chain`, the npm project with anvil and the contracts.
pub fn chain_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("chain")
}

/// The anvil binary from the npm package (`ANVIL_BIN` overrides). Panics
/// with what to run when it is missing.
pub fn anvil_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("ANVIL_BIN") {
        return path.into();
    }
    let path = chain_dir().join("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    assert!(
        path.exists(),
        "anvil is missing at {}: run npm ci --prefix tests/chain",
        path.display()
    );
    path
}

/// A compiled contract from `tests/chain/artifacts/<name>.json`.
pub fn artifact_bytecode(name: &str) -> Bytes {
    let path = chain_dir().join("artifacts").join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the artifacts are committed; `node tests/chain/compile.mjs` rebuilds them)",
            path.display()
        )
    });
    let artifact: Value = serde_json::from_str(&text).expect("artifact JSON");
    let hex = artifact["bytecode"]
        .as_str()
        .expect("artifact has a bytecode");
    alloy::hex::decode(hex).expect("bytecode is hex").into()
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A fresh random 32-byte EIP-3009 nonce.
pub fn random_nonce() -> B256 {
    B256::from(rand::random::<[u8; 32]>())
}

pub struct Chain {
    pub rpc_url: String,
    pub chain_id: u64,
    /// `TesseraUSD("USDC", "2")`.
    pub token: Address,
    /// anvil's unlocked account #0: deployed the token, the only minter.
    pub owner: Address,
    /// Each holds [`BUYER_FUNDS`] tokens (and no ETH: the facilitator pays gas).
    pub buyers: Vec<PrivateKeySigner>,
    /// A fresh key with 1,000 ETH for settlement gas.
    pub facilitator_key: PrivateKeySigner,
    /// A receiving address with no tokens yet.
    pub pay_to: Address,
    provider: RootProvider<Ethereum>,
    anvil: Option<Child>,
}

impl Chain {
    /// Anvil with the token and four funded buyers.
    pub async fn start() -> Chain {
        Self::start_with_buyers(4).await
    }

    pub async fn start_with_buyers(buyers: usize) -> Chain {
        let bin = anvil_bin();
        ensure_executable(&bin);
        let mut last_error = String::new();
        for _ in 0..3 {
            match start_anvil(&bin).await {
                Ok((anvil, rpc_url)) => return Self::deploy(anvil, rpc_url, buyers).await,
                Err(error) => last_error = error,
            }
        }
        panic!("anvil did not start: {last_error}");
    }

    async fn deploy(anvil: Child, rpc_url: String, buyers: usize) -> Chain {
        let provider = RootProvider::<Ethereum>::new_http(rpc_url.parse().unwrap());
        let chain_id = provider.get_chain_id().await.unwrap();
        let accounts = provider.get_accounts().await.unwrap();
        let owner = accounts[0];
        let mut chain = Chain {
            rpc_url,
            chain_id,
            token: Address::ZERO,
            owner,
            buyers: Vec::new(),
            facilitator_key: PrivateKeySigner::random(),
            pay_to: PrivateKeySigner::random().address(),
            provider,
            anvil: Some(anvil),
        };
        let args = (TOKEN_NAME.to_string(), TOKEN_VERSION.to_string()).abi_encode_params();
        chain.token = chain.deploy_contract("TesseraUSD", &args).await;
        chain
            .set_eth_balance(
                chain.facilitator_key.address(),
                U256::from(1_000u64) * U256::from(10u64).pow(U256::from(18)),
            )
            .await;
        for _ in 0..buyers {
            let buyer = chain.new_buyer(BUYER_FUNDS).await;
            chain.buyers.push(buyer);
        }
        chain
    }

    pub fn provider(&self) -> &RootProvider<Ethereum> {
        &self.provider
    }

    /// Deploys `artifacts/<name>.json` from the owner with ABI-encoded
    /// constructor `args`; returns its address.
    pub async fn deploy_contract(&self, name: &str, args: &[u8]) -> Address {
        let mut code = artifact_bytecode(name).to_vec();
        code.extend_from_slice(args);
        let request = TransactionRequest::default()
            .from(self.owner)
            .input(Bytes::from(code).into());
        let receipt = self.send_unlocked(request).await;
        assert!(receipt.status(), "deploying {name} reverted");
        receipt.contract_address.expect("a contract address")
    }

    /// `TestSmartWallet(owner)`: an ERC-1271 wallet that accepts `owner`'s
    /// ECDSA signatures of a hash.
    pub async fn deploy_smart_wallet(&self, owner: Address) -> Address {
        self.deploy_contract("TestSmartWallet", &(owner,).abi_encode_params())
            .await
    }

    /// Installs our `BatchCall` (Multicall3's `aggregate3`) at Multicall3's
    /// canonical address, where it is on Base: the facilitator's default
    /// batch contract then works here as there. Returns the address.
    pub async fn install_batch_call(&self) -> Address {
        self.install_batch_call_at(tessera_evm::batch::MULTICALL3_ADDRESS)
            .await
    }

    /// `BatchCall`'s runtime code at `at` (`anvil_setCode`; it has no
    /// constructor state, so it runs the same anywhere).
    pub async fn install_batch_call_at(&self, at: Address) -> Address {
        let deployed = self.deploy_contract("BatchCall", &[]).await;
        let code = self.provider.get_code_at(deployed).await.unwrap();
        assert!(!code.is_empty(), "BatchCall has runtime code");
        let _: Value = self
            .provider
            .raw_request("anvil_setCode".into(), (at, code))
            .await
            .unwrap();
        at
    }

    /// A fresh key holding 1,000 ETH for gas (another settling key).
    pub async fn new_gas_key(&self) -> PrivateKeySigner {
        let key = PrivateKeySigner::random();
        self.set_eth_balance(
            key.address(),
            U256::from(1_000u64) * U256::from(10u64).pow(U256::from(18)),
        )
        .await;
        key
    }

    /// Sends `authorization` (signed by its `from` as `signature`) to the
    /// token from the owner and waits for it to be mined: a transfer that
    /// spends the authorization's nonce behind the facilitator's back.
    pub async fn execute_authorization(
        &self,
        authorization: &TransferWithAuthorization,
        signature: Bytes,
    ) -> TransactionReceipt {
        let call = IEip3009Token::transferWithAuthorization_1Call {
            from: authorization.from,
            to: authorization.to,
            value: authorization.value,
            validAfter: authorization.validAfter,
            validBefore: authorization.validBefore,
            nonce: authorization.nonce,
            signature,
        };
        let request = TransactionRequest::default()
            .from(self.owner)
            .to(self.token)
            .input(Bytes::from(call.abi_encode()).into());
        self.send_unlocked(request).await
    }

    /// A new random buyer holding `tokens`.
    pub async fn new_buyer(&self, tokens: u64) -> PrivateKeySigner {
        let buyer = PrivateKeySigner::random();
        self.mint(buyer.address(), U256::from(tokens)).await;
        buyer
    }

    pub async fn mint(&self, to: Address, value: U256) {
        let call = ITesseraUsd::mintCall { to, value };
        let request = TransactionRequest::default()
            .from(self.owner)
            .to(self.token)
            .input(Bytes::from(call.abi_encode()).into());
        assert!(self.send_unlocked(request).await.status(), "mint reverted");
    }

    /// Moves `value` of `from`'s tokens to `to` on chain now, with an
    /// EIP-3009 authorization `from` signs and the owner sends (a payer
    /// emptying its wallet behind our back).
    pub async fn transfer_as(&self, from: &PrivateKeySigner, to: Address, value: U256) {
        let authorization = TransferWithAuthorization {
            from: from.address(),
            to,
            value,
            validAfter: U256::ZERO,
            validBefore: U256::from(unix_now() + 3600),
            nonce: random_nonce(),
        };
        let signature = self.sign(from, &authorization);
        let call = IEip3009Token::transferWithAuthorization_1Call {
            from: authorization.from,
            to,
            value,
            validAfter: authorization.validAfter,
            validBefore: authorization.validBefore,
            nonce: authorization.nonce,
            signature,
        };
        let request = TransactionRequest::default()
            .from(self.owner)
            .to(self.token)
            .input(Bytes::from(call.abi_encode()).into());
        assert!(
            self.send_unlocked(request).await.status(),
            "transfer reverted"
        );
    }

    /// Moves `value` of `from`'s tokens to `to` with a plain ERC-20
    /// `transfer` that `from` sends itself (anvil impersonates it and
    /// adds 1 ETH for gas to its balance): a movement of the token that
    /// uses no EIP-3009 authorization, so is no x402 payment.
    pub async fn transfer_plain(&self, from: &PrivateKeySigner, to: Address, value: U256) {
        let holder = from.address();
        let balance = self.provider.get_balance(holder).await.unwrap();
        self.set_eth_balance(holder, balance + U256::from(10u64).pow(U256::from(18)))
            .await;
        let _: Value = self
            .provider
            .raw_request("anvil_impersonateAccount".into(), (holder,))
            .await
            .unwrap();
        let call = IErc20Transfer::transferCall { to, value };
        let request = TransactionRequest::default()
            .from(holder)
            .to(self.token)
            .input(Bytes::from(call.abi_encode()).into());
        let receipt = self.send_unlocked(request).await;
        let _: Value = self
            .provider
            .raw_request("anvil_stopImpersonatingAccount".into(), (holder,))
            .await
            .unwrap();
        assert!(receipt.status(), "the plain transfer reverted");
    }

    /// The token balance of `address`.
    pub async fn balance_of(&self, address: Address) -> U256 {
        let call = IEip3009Token::balanceOfCall { account: address };
        let output = self
            .provider
            .call(
                TransactionRequest::default()
                    .to(self.token)
                    .input(Bytes::from(call.abi_encode()).into()),
            )
            .await
            .unwrap();
        IEip3009Token::balanceOfCall::abi_decode_returns(&output).unwrap()
    }

    pub async fn authorization_used(&self, from: Address, nonce: B256) -> bool {
        let call = IEip3009Token::authorizationStateCall {
            authorizer: from,
            nonce,
        };
        let output = self
            .provider
            .call(
                TransactionRequest::default()
                    .to(self.token)
                    .input(Bytes::from(call.abi_encode()).into()),
            )
            .await
            .unwrap();
        IEip3009Token::authorizationStateCall::abi_decode_returns(&output).unwrap()
    }

    /// Mined transactions of `address` (its account nonce).
    pub async fn transaction_count(&self, address: Address) -> u64 {
        self.provider.get_transaction_count(address).await.unwrap()
    }

    /// The account nonce a transaction was sent with.
    pub async fn transaction_nonce(&self, hash: B256) -> u64 {
        use alloy::consensus::Transaction as _;
        self.transaction(hash).await.nonce()
    }

    /// The gas limit `hash` asked for.
    pub async fn transaction_gas_limit(&self, hash: B256) -> u64 {
        use alloy::consensus::Transaction as _;
        self.transaction(hash).await.gas_limit()
    }

    async fn transaction(&self, hash: B256) -> alloy::rpc::types::Transaction {
        self.provider
            .get_transaction_by_hash(hash)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no transaction {hash}"))
    }

    /// Blocks from the next one on hold at most `gas`; one is mined so the
    /// latest block says so.
    pub async fn set_block_gas_limit(&self, gas: u64) {
        let _: Value = self
            .provider
            .raw_request("evm_setBlockGasLimit".into(), (U256::from(gas),))
            .await
            .unwrap();
        self.mine().await;
    }

    /// The latest block's gas limit, as the facilitator reads it.
    pub async fn block_gas_limit(&self) -> u64 {
        tessera_evm::Chain::new(&self.rpc_url, Duration::from_secs(5))
            .expect("an RPC client")
            .block_gas_limit()
            .await
            .expect("the latest block")
    }

    pub async fn receipt(&self, hash: B256) -> Option<TransactionReceipt> {
        self.provider.get_transaction_receipt(hash).await.unwrap()
    }

    pub async fn set_eth_balance(&self, address: Address, wei: U256) {
        let _: Value = self
            .provider
            .raw_request("anvil_setBalance".into(), (address, wei))
            .await
            .unwrap();
    }

    /// Automatic mining on (the default: a block per transaction) or off
    /// (transactions wait in the pool until [`Chain::mine`]).
    pub async fn set_automine(&self, on: bool) {
        let _: Value = self
            .provider
            .raw_request("evm_setAutomine".into(), (on,))
            .await
            .unwrap();
    }

    /// A block every `seconds` (anvil's interval mining, as on a real
    /// network): a transaction waits in the pool until the next block.
    pub async fn set_block_time(&self, seconds: u64) {
        let _: Value = self
            .provider
            .raw_request("evm_setIntervalMining".into(), (seconds,))
            .await
            .unwrap();
    }

    pub async fn mine(&self) {
        let _: Value = self
            .provider
            .raw_request("evm_mine".into(), ())
            .await
            .unwrap();
    }

    /// `eth_sendTransaction` from an anvil-unlocked account; waits for
    /// the receipt.
    async fn send_unlocked(&self, request: TransactionRequest) -> TransactionReceipt {
        let hash: B256 = self
            .provider
            .raw_request("eth_sendTransaction".into(), (request,))
            .await
            .unwrap();
        for _ in 0..500 {
            if let Some(receipt) = self.receipt(hash).await {
                return receipt;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no receipt for {hash}");
    }

    /// v2 requirements for `amount` atomic units of our token to `pay_to`.
    pub fn requirements(&self, pay_to: Address, amount: u64) -> Requirements {
        Requirements {
            scheme: "exact".into(),
            network: format!("eip155:{}", self.chain_id),
            amount: amount.to_string(),
            asset: self.token.to_checksum(None),
            pay_to: pay_to.to_checksum(None),
            max_timeout_seconds: 60,
            extra: Some(json!({ "name": TOKEN_NAME, "version": TOKEN_VERSION })),
        }
    }

    /// The authorization a client signs for `requirements`, the way the
    /// reference client fills it: valid from 10 minutes ago until
    /// `maxTimeoutSeconds` from now, with a random nonce.
    pub fn authorization(
        &self,
        from: Address,
        requirements: &Requirements,
    ) -> TransferWithAuthorization {
        let now = unix_now();
        TransferWithAuthorization {
            from,
            to: requirements.pay_to.parse().unwrap(),
            value: requirements.amount.parse().unwrap(),
            validAfter: U256::from(now - 600),
            validBefore: U256::from(now + requirements.max_timeout_seconds),
            nonce: random_nonce(),
        }
    }

    /// The 65-byte signature of `authorization` by `signer` under the
    /// token's domain on this chain (`r ‖ s ‖ v`, v = 27 or 28).
    pub fn sign(
        &self,
        signer: &PrivateKeySigner,
        authorization: &TransferWithAuthorization,
    ) -> Bytes {
        self.sign_for(signer, authorization, self.token, TOKEN_NAME, TOKEN_VERSION)
    }

    /// [`Chain::sign`] under another domain (for wrong-domain cases).
    pub fn sign_for(
        &self,
        signer: &PrivateKeySigner,
        authorization: &TransferWithAuthorization,
        token: Address,
        name: &str,
        version: &str,
    ) -> Bytes {
        let domain = eip3009::domain(name, version, self.chain_id, token);
        let hash = authorization.signing_hash(&domain);
        let signature = signer.sign_hash_sync(&hash).unwrap();
        Bytes::from(signature.as_bytes().to_vec())
    }

    /// A v2 `PaymentPayload` (JSON) paying `requirements` from `signer`.
    pub fn pay(&self, signer: &PrivateKeySigner, requirements: &Requirements) -> Value {
        let authorization = self.authorization(signer.address(), requirements);
        let signature = self.sign(signer, &authorization);
        payload_v2(requirements, &authorization, &signature)
    }

    /// A facilitator configured for this chain: our facilitator key, short
    /// timeouts (RPC 5 s, receipt 10 s).
    pub fn facilitator_config(&self) -> FacilitatorConfig {
        let mut config = FacilitatorConfig::new(
            self.rpc_url.clone(),
            Some(SettlementKey::new(self.facilitator_key.clone())),
        );
        config.http_addr = "127.0.0.1:0".parse().unwrap();
        config.grpc_addr = "127.0.0.1:0".parse().unwrap();
        config.rpc_timeout = Duration::from_secs(5);
        config.receipt_timeout = Duration::from_secs(10);
        config
    }

    /// A facilitator serving HTTP and gRPC on free ports.
    pub async fn start_facilitator(&self) -> FacilitatorServer {
        FacilitatorServer::start(self.facilitator_config()).await
    }

    /// Kills anvil now (the chain goes down; its state is gone).
    pub async fn stop(&mut self) {
        if let Some(mut anvil) = self.anvil.take() {
            let _ = anvil.kill().await;
        }
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        if let Some(anvil) = self.anvil.as_mut() {
            let _ = anvil.start_kill();
        }
    }
}

/// The v2 wire payload of a signed authorization.
pub fn payload_v2(
    requirements: &Requirements,
    authorization: &TransferWithAuthorization,
    signature: &Bytes,
) -> Value {
    PaymentPayload::V2 {
        accepted: requirements.clone(),
        resource: None,
        payload: exact_payload(authorization, signature),
        extensions: None,
    }
    .to_value()
}

/// `payload` of the exact EVM scheme: `{signature, authorization}` with
/// decimal-string numbers.
pub fn exact_payload(authorization: &TransferWithAuthorization, signature: &Bytes) -> Value {
    serde_json::to_value(ExactEvmPayload {
        signature: signature.to_string(),
        authorization: Authorization {
            from: authorization.from.to_checksum(None),
            to: authorization.to.to_checksum(None),
            value: authorization.value.to_string(),
            valid_after: authorization.validAfter.to_string(),
            valid_before: authorization.validBefore.to_string(),
            nonce: authorization.nonce.to_string(),
        },
    })
    .unwrap()
}

/// The facilitator request body (`/verify`, `/settle`).
pub fn facilitator_request(payload: &Value, requirements: &impl serde::Serialize) -> Value {
    json!({
        "x402Version": payload["x402Version"],
        "paymentPayload": payload,
        "paymentRequirements": requirements,
    })
}

/// A facilitator serving its HTTP API and gRPC on free loopback ports.
pub struct FacilitatorServer {
    /// `http://127.0.0.1:<port>`, the base of `/verify`, `/settle`, `/supported`.
    pub http_url: String,
    /// `http://127.0.0.1:<port>` for a tonic channel.
    pub grpc_url: String,
    pub facilitator: Arc<Facilitator>,
    shutdown: Shutdown,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl FacilitatorServer {
    pub async fn start(config: FacilitatorConfig) -> FacilitatorServer {
        let facilitator = Arc::new(
            Facilitator::connect(&config)
                .await
                .expect("the facilitator connects to the chain"),
        );
        let http = tokio::net::TcpListener::bind(config.http_addr)
            .await
            .unwrap();
        let grpc = tokio::net::TcpListener::bind(config.grpc_addr)
            .await
            .unwrap();
        let http_url = format!("http://{}", http.local_addr().unwrap());
        let grpc_url = format!("http://{}", grpc.local_addr().unwrap());
        let shutdown = Shutdown::new();
        let task = tokio::spawn(tessera_facilitator::serve(
            facilitator.clone(),
            config.api_keys.clone(),
            http,
            grpc,
            shutdown.clone(),
        ));
        FacilitatorServer {
            http_url,
            grpc_url,
            facilitator,
            shutdown,
            task: Some(task),
        }
    }

    /// Stops both servers after in-flight requests finish.
    pub async fn stop(mut self) {
        self.shutdown.trigger();
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

impl Drop for FacilitatorServer {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

fn ensure_executable(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(metadata) = std::fs::metadata(path) else {
        return;
    };
    let mode = metadata.permissions().mode();
    if mode & 0o111 == 0 {
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode | 0o755));
    }
}

/// Starts anvil on a free port; resolves once it answers `eth_chainId`.
async fn start_anvil(bin: &std::path::Path) -> Result<(Child, String), String> {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        listener.local_addr().map_err(|e| e.to_string())?.port()
    };
    let mut anvil = Command::new(bin)
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--chain-id",
            &CHAIN_ID.to_string(),
            "--silent",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("spawning {}: {e}", bin.display()))?;
    let rpc_url = format!("http://127.0.0.1:{port}");
    let provider = RootProvider::<Ethereum>::new_http(rpc_url.parse().unwrap());
    for _ in 0..400 {
        if let Ok(Some(status)) = anvil.try_wait() {
            return Err(format!("anvil exited with {status} (port {port} taken?)"));
        }
        if let Ok(id) = provider.get_chain_id().await {
            if id == CHAIN_ID {
                return Ok((anvil, rpc_url));
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let _ = anvil.kill().await;
    Err(format!("anvil did not answer on {rpc_url} within 10 s"))
}
