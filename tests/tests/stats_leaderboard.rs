//! The seller leaderboard against a real chain (anvil with our EIP-3009
//! token): a few funded payers pay three sellers different volumes with
//! `transferWithAuthorization`, as x402 settles; the indexer reads the
//! token's `Transfer` and `AuthorizationUsed` logs in ranges of two blocks,
//! ranks the sellers by volume and counts their payments, leaving out plain
//! ERC-20 transfers (to an exchange, and to a seller), mints and another
//! token's payments; more payments later, a fresh service over the same
//! store continues from the checkpoint without counting anything twice. On
//! the embedded SQLite store and on PostgreSQL. Then confirmations, and a
//! node that caps `eth_getLogs` and rate-limits.

use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol;
use alloy::sol_types::{SolCall, SolValue};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tessera_evm::token::IEip3009Token;
use tessera_proto::stats::v1 as pb;
use tessera_runtime::Shutdown;
use tessera_stats::{ChainConfig, Indexer, Stats, StatsConfig, StatsStore, Store};
use tessera_tests::chain::{random_nonce, unix_now, Chain, NETWORK, TOKEN_NAME, TOKEN_VERSION};
use tessera_tests::harness::database_url;
use tessera_x402::eip3009::TransferWithAuthorization;

sol! {
    interface IErc20 {
        function mint(address to, uint256 value) external;
    }
}

/// A fresh store: a SQLite file, or a schema of its own in PostgreSQL
/// (dropped by [`remove`]).
async fn fresh_store(postgres: bool) -> Store {
    let label = format!("{:016x}", rand::random::<u64>());
    if !postgres {
        return Store::Embedded {
            path: std::env::temp_dir().join(format!("tessera-stats-{label}/stats.db")),
        };
    }
    let base = database_url();
    let schema = format!("stats_board_{label}");
    let pool = sqlx::PgPool::connect(&base)
        .await
        .expect("PostgreSQL at DATABASE_URL");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let separator = if base.contains('?') { '&' } else { '?' };
    Store::Postgres {
        url: format!("{base}{separator}options=-c%20search_path%3D{schema}"),
    }
}

async fn remove(store: Store) {
    match store {
        Store::Embedded { path } => {
            let _ = std::fs::remove_dir_all(path.parent().unwrap());
        }
        Store::Postgres { url } => {
            let schema = url.rsplit("search_path%3D").next().unwrap();
            let pool = sqlx::PgPool::connect(&database_url()).await.unwrap();
            sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }
}

/// Ranges of two blocks, each counted as soon as mined (anvil mines a
/// block per transaction, none after).
fn chain_config(chain: &Chain) -> ChainConfig {
    ChainConfig {
        block_range: 2,
        confirmations: 0,
        index_every: Duration::from_millis(50),
        ..ChainConfig::new(&chain.rpc_url, &chain.token.to_string(), NETWORK)
    }
}

fn lower(address: Address) -> String {
    alloy::hex::encode_prefixed(address)
}

/// (payTo, volume, transactions), best first.
fn ranking(board: &pb::LeaderboardResponse) -> Vec<(String, String, u64)> {
    board
        .sellers
        .iter()
        .map(|s| (s.pay_to.clone(), s.volume.clone(), s.transactions))
        .collect()
}

fn row(seller: Address, volume: u64, transactions: u64) -> (String, String, u64) {
    (lower(seller), volume.to_string(), transactions)
}

/// x402 payments: each an EIP-3009 `transferWithAuthorization` the payer
/// signs and another account sends, as a facilitator settles.
async fn pay(chain: &Chain, payments: &[(&PrivateKeySigner, Address, u64)]) {
    for (payer, seller, value) in payments {
        chain.transfer_as(payer, *seller, U256::from(*value)).await;
    }
}

/// Plain ERC-20 `transfer`s the holders send themselves: no x402 payments.
async fn transfer_plainly(chain: &Chain, transfers: &[(&PrivateKeySigner, Address, u64)]) {
    for (holder, to, value) in transfers {
        chain.transfer_plain(holder, *to, U256::from(*value)).await;
    }
}

/// Sends `call` to `contract` from the chain's unlocked owner; waits for
/// it to be mined.
async fn send_as_owner(chain: &Chain, contract: Address, call: Vec<u8>) {
    let request = TransactionRequest::default()
        .from(chain.owner)
        .to(contract)
        .input(Bytes::from(call).into());
    let hash: B256 = chain
        .provider()
        .raw_request("eth_sendTransaction".into(), (request,))
        .await
        .unwrap();
    for _ in 0..500 {
        if let Some(receipt) = chain.receipt(hash).await {
            assert!(receipt.status(), "the owner's transaction reverted");
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no receipt for {hash}");
}

/// A second token of the same kind, whose x402 payment from `payer` to
/// `seller` would top the board.
async fn another_token_pays(chain: &Chain, payer: &PrivateKeySigner, seller: Address) {
    let args = (TOKEN_NAME.to_string(), TOKEN_VERSION.to_string()).abi_encode_params();
    let other = chain.deploy_contract("TesseraUSD", &args).await;
    let value = U256::from(10u64).pow(U256::from(15u64));
    let mint = IErc20::mintCall {
        to: payer.address(),
        value,
    };
    send_as_owner(chain, other, mint.abi_encode()).await;
    let authorization = TransferWithAuthorization {
        from: payer.address(),
        to: seller,
        value,
        validAfter: U256::ZERO,
        validBefore: U256::from(unix_now() + 3600),
        nonce: random_nonce(),
    };
    let signature = chain.sign_for(payer, &authorization, other, TOKEN_NAME, TOKEN_VERSION);
    let payment = IEip3009Token::transferWithAuthorization_1Call {
        from: authorization.from,
        to: seller,
        value,
        validAfter: authorization.validAfter,
        validBefore: authorization.validBefore,
        nonce: authorization.nonce,
        signature,
    };
    send_as_owner(chain, other, payment.abi_encode()).await;
}

async fn head(chain: &Chain) -> u64 {
    chain.provider().get_block_number().await.unwrap()
}

/// Polls `stats` until it has indexed through `block`.
async fn indexed_through(stats: &Stats, block: u64) -> pb::LeaderboardResponse {
    for _ in 0..400 {
        let board = stats.leaderboard(0).await.unwrap();
        if board.indexed_through_block >= block {
            return board;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the indexer did not reach block {block} within 10 s");
}

async fn sellers_rank_by_volume_and_resume_from_the_checkpoint(postgres: bool) {
    let chain = Chain::start_with_buyers(3).await;
    let buyers = &chain.buyers;
    let [a, b, c, exchange] = [(); 4].map(|_| PrivateKeySigner::random().address());
    pay(
        &chain,
        &[
            (&buyers[0], a, 500),
            (&buyers[1], a, 700),
            (&buyers[2], b, 300),
            (&buyers[0], b, 300),
            (&buyers[1], c, 10),
            (&buyers[2], c, 20),
            (&buyers[0], c, 30),
        ],
    )
    .await;
    // Token movements that are no x402 payment: a payer's plain transfer
    // to a seller it pays, a deposit to an exchange, a mint to a seller.
    transfer_plainly(
        &chain,
        &[(&buyers[1], a, 5_000), (&buyers[2], exchange, 100_000)],
    )
    .await;
    chain.mint(b, U256::from(1_000_000u64)).await;
    another_token_pays(&chain, &buyers[0], c).await;
    let first_head = head(&chain).await;

    let store = fresh_store(postgres).await;
    let config = chain_config(&chain);
    let opened = StatsStore::open(&store).await.unwrap();
    let indexer = Indexer::new(opened.clone(), &config).unwrap();
    let pass = indexer.catch_up(&Shutdown::new()).await.unwrap();
    assert_eq!(pass.chain_head, first_head);
    assert_eq!(pass.through_block, first_head as i64);
    assert_eq!(
        u64::from(pass.ranges),
        (first_head + 1).div_ceil(2),
        "blocks 0..={first_head}, two at a time"
    );

    let stats = Stats::new(opened, Some(indexer.token().clone()));
    let board = stats.leaderboard(10).await.unwrap();
    assert_eq!(board.asset, lower(chain.token));
    assert_eq!(board.network, NETWORK);
    assert_eq!(board.indexed_through_block, first_head);
    assert_eq!(board.chain_head_block, first_head);
    // Only the x402 payments count: not the plain transfers, the mints, nor
    // the other token's payment.
    assert_eq!(
        ranking(&board),
        [row(a, 1200, 2), row(b, 600, 2), row(c, 60, 3)]
    );
    assert_eq!(
        ranking(&stats.leaderboard(1).await.unwrap()),
        [row(a, 1200, 2)]
    );

    // Later sales, counted by a fresh service over the same store.
    pay(&chain, &[(&buyers[2], c, 2000), (&buyers[0], b, 1)]).await;
    transfer_plainly(&chain, &[(&buyers[0], c, 50_000)]).await;
    let second_head = head(&chain).await;
    let shutdown = Shutdown::new();
    let config = StatsConfig {
        store: store.clone(),
        chain: Some(config),
        ..StatsConfig::embedded("unused")
    };
    let restarted = Stats::open(&config, &shutdown).await.unwrap();
    let board = indexed_through(&restarted, second_head).await;
    assert_eq!(board.indexed_through_block, second_head);
    assert_eq!(
        ranking(&board),
        [row(c, 2060, 4), row(a, 1200, 2), row(b, 601, 3)]
    );
    shutdown.trigger();
    remove(store).await;
}

#[tokio::test]
async fn sellers_rank_by_volume_and_resume_from_the_checkpoint_on_sqlite() {
    sellers_rank_by_volume_and_resume_from_the_checkpoint(false).await;
}

#[tokio::test]
async fn sellers_rank_by_volume_and_resume_from_the_checkpoint_on_postgres() {
    sellers_rank_by_volume_and_resume_from_the_checkpoint(true).await;
}

#[tokio::test]
async fn confirmations_hold_back_the_newest_blocks() {
    let chain = Chain::start_with_buyers(1).await;
    let seller = PrivateKeySigner::random().address();
    pay(&chain, &[(&chain.buyers[0], seller, 5)]).await;
    let before = head(&chain).await;
    pay(&chain, &[(&chain.buyers[0], seller, 7)]).await;
    let place = fresh_store(false).await;
    let store = StatsStore::open(&place).await.unwrap();
    let config = ChainConfig {
        confirmations: 1,
        ..chain_config(&chain)
    };
    let indexer = Indexer::new(store.clone(), &config).unwrap();
    let pass = indexer.catch_up(&Shutdown::new()).await.unwrap();
    assert_eq!(pass.through_block, before as i64);
    let stats = Stats::new(store, Some(indexer.token().clone()));
    let board = stats.leaderboard(0).await.unwrap();
    assert_eq!(ranking(&board), [row(seller, 5, 1)]);
    assert_eq!(board.chain_head_block, before + 1);
    remove(place).await;
}

/// One `eth_getLogs` a [`CappedNode`] was asked: its blocks, and whether
/// it answered with logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Asked {
    from: u64,
    to: u64,
    answered: bool,
}

impl Asked {
    fn span(self) -> u64 {
        self.to - self.from + 1
    }
}

#[derive(Default)]
struct NodeState {
    rate_limited: bool,
    asked: Vec<Asked>,
}

/// A JSON-RPC endpoint in front of anvil that refuses an `eth_getLogs` of
/// more than `cap` blocks in a node's words (a JSON-RPC error), or answers
/// every `eth_getLogs` 429 while rate limited; anything else it passes on.
struct CappedNode {
    url: String,
    state: Arc<Mutex<NodeState>>,
    server: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct Upstream {
    anvil: String,
    cap: u64,
    http: reqwest::Client,
    state: Arc<Mutex<NodeState>>,
}

fn block_number(hex: &Value) -> u64 {
    u64::from_str_radix(hex.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

async fn answer(State(upstream): State<Upstream>, Json(request): Json<Value>) -> Response {
    if request["method"] == "eth_getLogs" {
        let filter = &request["params"][0];
        let (from, to) = (
            block_number(&filter["fromBlock"]),
            block_number(&filter["toBlock"]),
        );
        let mut state = upstream.state.lock().unwrap();
        let answered = !state.rate_limited && to - from < upstream.cap;
        state.asked.push(Asked { from, to, answered });
        if state.rate_limited {
            return (StatusCode::TOO_MANY_REQUESTS, "Too Many Requests").into_response();
        }
        if !answered {
            let message = format!("block range too large: at most {} blocks", upstream.cap);
            return Json(json!({
                "jsonrpc": "2.0",
                "id": request["id"],
                "error": { "code": -32005, "message": message },
            }))
            .into_response();
        }
    }
    let reply: Value = upstream
        .http
        .post(&upstream.anvil)
        .json(&request)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Json(reply).into_response()
}

impl CappedNode {
    async fn start(chain: &Chain, cap: u64) -> CappedNode {
        let state = Arc::new(Mutex::new(NodeState::default()));
        let upstream = Upstream {
            anvil: chain.rpc_url.clone(),
            cap,
            http: reqwest::Client::new(),
            state: state.clone(),
        };
        let router = axum::Router::new()
            .route("/", axum::routing::post(answer))
            .with_state(upstream);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        CappedNode { url, state, server }
    }

    fn rate_limit(&self, on: bool) {
        self.state.lock().unwrap().rate_limited = on;
    }

    fn asked(&self) -> Vec<Asked> {
        self.state.lock().unwrap().asked.clone()
    }
}

impl Drop for CappedNode {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[tokio::test]
async fn a_node_capping_the_range_is_asked_for_less_and_a_rate_limit_ends_the_pass() {
    let chain = Chain::start_with_buyers(1).await;
    let payer = &chain.buyers[0];
    let seller = PrivateKeySigner::random().address();
    for value in 1..=8 {
        pay(&chain, &[(payer, seller, value)]).await;
    }
    let first_head = head(&chain).await;
    let node = CappedNode::start(&chain, 3).await;
    let max = 8;
    let config = ChainConfig {
        block_range: max,
        rpc_url: node.url.clone(),
        ..chain_config(&chain)
    };
    let place = fresh_store(false).await;
    let store = StatsStore::open(&place).await.unwrap();
    let indexer = Indexer::new(store.clone(), &config).unwrap();
    let pass = indexer.catch_up(&Shutdown::new()).await.unwrap();
    assert_eq!(pass.through_block, first_head as i64);
    let stats = Stats::new(store.clone(), Some(indexer.token().clone()));
    let board = stats.leaderboard(0).await.unwrap();
    assert_eq!(ranking(&board), [row(seller, 36, 8)]);

    let asked = node.asked();
    assert_eq!(
        asked[0],
        Asked {
            from: 0,
            to: max - 1,
            answered: false
        }
    );
    for pair in asked.windows(2) {
        let (last, next) = (pair[0], pair[1]);
        assert_eq!(last.answered, last.span() <= 3, "{asked:?}");
        if last.answered {
            // Twice as wide after an answer, up to the maximum and the head.
            assert_eq!(next.from, last.to + 1, "{asked:?}");
            let wider = (2 * last.span()).min(max).min(first_head - next.from + 1);
            assert_eq!(next.span(), wider, "{asked:?}");
        } else {
            // Half the span refused, from the same block.
            assert_eq!(next.from, last.from, "{asked:?}");
            assert_eq!(next.span(), last.span() / 2, "{asked:?}");
        }
    }
    assert!(asked.last().unwrap().answered);
    assert_eq!(asked.last().unwrap().to, first_head);

    // Rate limited: one request (of three blocks), not narrowed, and the
    // pass ends where it was.
    for value in [100, 200, 300] {
        pay(&chain, &[(payer, seller, value)]).await;
    }
    let second_head = head(&chain).await;
    node.rate_limit(true);
    let before = node.asked().len();
    let error = indexer.catch_up(&Shutdown::new()).await.unwrap_err();
    assert_eq!(error.reason, "STATS_CHAIN_UNAVAILABLE", "{error:?}");
    assert_eq!(
        node.asked()[before..],
        [Asked {
            from: first_head + 1,
            to: second_head,
            answered: false
        }]
    );
    let checkpoint = store.indexed(indexer.token()).await.unwrap().unwrap();
    assert_eq!(checkpoint.through_block, first_head as i64);

    // The next pass, the limit lifted, counts the payment once.
    node.rate_limit(false);
    let pass = indexer.catch_up(&Shutdown::new()).await.unwrap();
    assert_eq!(pass.through_block, second_head as i64);
    let board = stats.leaderboard(0).await.unwrap();
    assert_eq!(ranking(&board), [row(seller, 636, 11)]);
    remove(place).await;
}
