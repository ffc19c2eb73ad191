//! The seller leaderboard against a real chain (anvil with our token): a
//! few funded payers pay three sellers different volumes; the indexer reads
//! the token's `Transfer` logs in ranges of two blocks, ranks the sellers
//! by volume and counts their transfers, leaving out mints and another
//! token's transfers; more transfers later, a fresh service over the same
//! store continues from the checkpoint without counting anything twice. On
//! the embedded SQLite store and on PostgreSQL.

use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol;
use alloy::sol_types::{SolCall, SolValue};
use std::time::Duration;
use tessera_proto::stats::v1 as pb;
use tessera_runtime::Shutdown;
use tessera_stats::{ChainConfig, Indexer, Stats, StatsConfig, StatsStore, Store};
use tessera_tests::chain::{Chain, NETWORK, TOKEN_NAME, TOKEN_VERSION};
use tessera_tests::harness::database_url;

sol! {
    interface IErc20 {
        function mint(address to, uint256 value) external;
        function transfer(address to, uint256 value) external returns (bool);
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

fn chain_config(chain: &Chain) -> ChainConfig {
    ChainConfig {
        block_range: 2,
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

async fn pay(chain: &Chain, payments: &[(&PrivateKeySigner, Address, u64)]) {
    for (payer, seller, value) in payments {
        chain.transfer_as(payer, *seller, U256::from(*value)).await;
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

/// A second token, paying `seller` a volume that would top the board.
async fn another_token_pays(chain: &Chain, seller: Address) {
    let args = (TOKEN_NAME.to_string(), TOKEN_VERSION.to_string()).abi_encode_params();
    let other = chain.deploy_contract("TesseraUSD", &args).await;
    let value = U256::from(10u64).pow(U256::from(15u64));
    let mint = IErc20::mintCall {
        to: chain.owner,
        value,
    };
    send_as_owner(chain, other, mint.abi_encode()).await;
    let transfer = IErc20::transferCall { to: seller, value };
    send_as_owner(chain, other, transfer.abi_encode()).await;
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
    let [a, b, c] = [(); 3].map(|_| PrivateKeySigner::random().address());
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
    another_token_pays(&chain, c).await;
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
    // The buyers' mints and the other token's transfer are not sales.
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
