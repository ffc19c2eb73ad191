//! `make jepsen`: the full-size nemesis run. At least 100,000 operations
//! from 32 clients on three durable replicas while every fault comes round
//! again and again; then the per-key linearizability check. Prints the
//! operations, the faults injected, the anomalies found (must be 0) and the
//! checker's time; exits non-zero on any anomaly or an unfinished check.
//!
//! Environment: JEPSEN_OPERATIONS (100000), JEPSEN_CLIENTS (32),
//! JEPSEN_REPLICAS (3), JEPSEN_FAULT_EVERY_MS (1000), JEPSEN_SEED (random).

use std::time::Duration;
use tessera_memory::Limits;
use tessera_runtime::config::env_or;
use tessera_tests::harness::unique_namespace;
use tessera_tests::nemesis::{Cluster, Fault, Workload};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let workload = Workload {
        operations: env_or("JEPSEN_OPERATIONS", 100_000)?,
        clients: env_or("JEPSEN_CLIENTS", 32)?,
        replicas: env_or("JEPSEN_REPLICAS", 3)?,
        fault_every: Duration::from_millis(env_or("JEPSEN_FAULT_EVERY_MS", 1_000)?),
        seed: env_or("JEPSEN_SEED", rand::random())?,
        faults: Fault::ALL.to_vec(),
        ..Workload::ci()
    };
    println!("jepsen: {workload:?}");
    let cluster = Cluster::start(workload.replicas, Limits::default()).await;
    let run = cluster.run(&workload, &unique_namespace("jepsen")).await;
    let result = run.check(Duration::from_secs(600));
    let anomalies = result
        .keys
        .iter()
        .filter(|key| key.result.report().is_some())
        .count();
    let unknown = result.unknown_keys().count();
    println!(
        "operations:    {} ({} indeterminate, {} refused) in {:.1?}",
        run.history.len(),
        run.indeterminate,
        run.refused,
        run.elapsed
    );
    println!(
        "faults:        {} injected: {:?}",
        run.faults.values().sum::<usize>(),
        run.faults
    );
    println!("off their aim: {:?} (struck anyway)", run.missed);
    println!("anomalies:     {anomalies} (keys not linearizable), {unknown} keys unchecked");
    println!(
        "checker:       {:.2?} for {} keys",
        result.elapsed,
        result.keys.len()
    );
    println!("verdict:       {result}");
    if anomalies > 0 || unknown > 0 {
        anyhow::bail!(
            "the history is not proven linearizable (seed {})",
            workload.seed
        );
    }
    Ok(())
}
