//! Takes a lock on Tessera, renews it and releases it, printing the fencing
//! token and, when paying, each settlement.
//!
//! ```text
//! make run                              # FREE_MODE on 127.0.0.1:8080
//! cargo run --example lock              # as agent "lock-example"
//! TESSERA_AGENT_ID=me cargo run --example lock
//! TESSERA_URL=https://… TESSERA_PRIVATE_KEY=0x… cargo run --example lock
//! ```
//!
//! Environment: `TESSERA_URL` (default `http://127.0.0.1:8080`);
//! `TESSERA_AGENT_ID` (free mode, default `lock-example`) or
//! `TESSERA_PRIVATE_KEY` (hex; pays with x402); when paying,
//! `TESSERA_MAX_PRICE` (atomic units a call, default 10000 = 0.01 USDC),
//! `TESSERA_NETWORK` (default `eip155:8453`) and `TESSERA_ASSET` (default
//! that network's USDC); `TESSERA_LOCK_KEY` (default `example/lock`).

use alloy::signers::local::PrivateKeySigner;
use anyhow::{anyhow, Context};
use std::time::{Duration, SystemTime};
use tessera_client::{Address, Client, Identity, Lock, Network, Payer, Reply, U256};

const TTL: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = env_or("TESSERA_URL", "http://127.0.0.1:8080");
    let key = env_or("TESSERA_LOCK_KEY", "example/lock");
    let client = Client::connect(&url, identity()?).await?;
    println!("connected to {url} as {}", client.namespace());

    let acquired = Lock::acquire(&client, &key, TTL, WAIT).await?;
    print_settlements("acquire", &acquired);
    let mut lock = acquired.into_inner();
    println!(
        "holding {key:?} with fencing token {}",
        lock.fencing_token()
    );

    let renewed = lock.renew().await?;
    print_settlements("renew", &renewed);
    let left = lock
        .expires_at()
        .and_then(|at| at.duration_since(SystemTime::now()).ok())
        .unwrap_or_default();
    println!("renewed: the lease ends in {} s", left.as_secs());

    let released = lock.release().await?;
    print_settlements("release", &released);
    println!("released {key:?}");
    Ok(())
}

fn identity() -> anyhow::Result<Identity> {
    let Ok(key) = std::env::var("TESSERA_PRIVATE_KEY") else {
        return Ok(Identity::agent(env_or("TESSERA_AGENT_ID", "lock-example")));
    };
    let signer: PrivateKeySigner = key
        .trim()
        .parse()
        .context("TESSERA_PRIVATE_KEY is not a hex key")?;
    let network_text = env_or("TESSERA_NETWORK", "eip155:8453");
    let network = Network::parse(&network_text)
        .ok_or_else(|| anyhow!("TESSERA_NETWORK {network_text:?} is not an EVM network"))?;
    let asset: Address = match std::env::var("TESSERA_ASSET") {
        Ok(asset) => asset.parse().context("TESSERA_ASSET is not an address")?,
        Err(_) => network
            .usdc()
            .ok_or_else(|| anyhow!("no known USDC on {network}: set TESSERA_ASSET"))?
            .parse()?,
    };
    let max_price: U256 = env_or("TESSERA_MAX_PRICE", "10000")
        .parse()
        .context("TESSERA_MAX_PRICE is not a number of atomic units")?;
    Ok(Identity::Payer(
        Payer::new(signer).allow(network, asset, max_price),
    ))
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn print_settlements<T>(step: &str, reply: &Reply<T>) {
    for settlement in &reply.settlements {
        let amount = settlement
            .amount
            .map_or_else(|| "?".to_string(), |amount| amount.to_string());
        match settlement.transaction {
            Some(transaction) => println!("  {step}: paid {amount}, transaction {transaction}"),
            None => println!(
                "  {step}: paid {amount}, not on chain yet ({})",
                settlement.error_reason.as_deref().unwrap_or("pending")
            ),
        }
    }
}
