//! The settler ends the settlements that came back in one statement
//! (`Ledger::end_settlements`, grouped by the payment service): on the real
//! PostgreSQL it must leave every payment and account exactly as ending
//! each alone (`Ledger::finish`) would, end only payments still settling,
//! and count a payment named twice once.

use alloy::primitives::{Address, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use std::collections::HashSet;
use tessera_payment::ledger::{
    Account, AccountState, Ending, Ledger, NewPayment, Outcome, Reservation,
};
use tessera_tests::harness::database_url;
use tessera_x402::AuthorizationKey;

const PRICE: u64 = 1000;

async fn ledger() -> Ledger {
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect(&database_url())
        .await
        .expect("PostgreSQL");
    tessera_payment::ledger::migrator()
        .run(&pool)
        .await
        .expect("migrations");
    Ledger::new(pool)
}

fn key(payer: Address) -> AuthorizationKey {
    AuthorizationKey {
        chain_id: 31337,
        asset: Address::repeat_byte(0xa5),
        from: payer,
        nonce: B256::from(rand::random::<[u8; 32]>()),
    }
}

/// A payment of `PRICE` by `payer`, reserved and verified.
async fn verified(ledger: &Ledger, payer: Address) -> String {
    let key = key(payer);
    let empty = json!({});
    let reserved = ledger
        .reserve(
            &NewPayment {
                key: &key,
                route: "memory.cas",
                resource: "http://127.0.0.1/api/memory/cas",
                amount: U256::from(PRICE),
                pay_to: "0x000000000000000000000000000000000000dead",
                x402_version: 2,
                payload: &empty,
                requirements: &empty,
                verified: true,
            },
            U256::from(u64::MAX),
            U256::ZERO,
        )
        .await
        .unwrap();
    let Reservation::Reserved { id, debtor: false } = reserved else {
        panic!("{reserved:?}");
    };
    id
}

/// A payment of `PRICE` by `payer`, taken for settling.
async fn settling(ledger: &Ledger, payer: Address) -> String {
    let id = verified(ledger, payer).await;
    assert!(ledger
        .transition(&id, &["verified"], "settling")
        .await
        .unwrap());
    id
}

fn account(payer: Address) -> Account {
    Account::of(&key(payer))
}

/// What a settlement's ending is, by kind.
#[derive(Clone, Copy)]
enum Kind {
    Settled,
    /// Failed after its call was served.
    Debt,
    /// Failed before its call ran.
    Released,
}

fn ending(id: &str, kind: Kind) -> Ending {
    let (outcome, served, reason) = match kind {
        Kind::Settled => (Outcome::Settled, true, None),
        Kind::Debt => (Outcome::Debt, true, Some("insufficient_funds".to_string())),
        Kind::Released => (
            Outcome::Released,
            false,
            Some("invalid_exact_evm_payload_signature".to_string()),
        ),
    };
    Ending {
        id: id.to_string(),
        outcome,
        transaction: matches!(kind, Kind::Settled)
            .then(|| format!("{:#x}", B256::from(rand::random::<[u8; 32]>()))),
        reason,
        served,
    }
}

/// Two payers' payments of every kind, one of them left verified (not
/// settling, so not ended), set up on `ledger`: their endings (one named
/// twice) and the payers.
async fn mixed(ledger: &Ledger) -> (Vec<Ending>, [Address; 2]) {
    let (first, second) = (
        PrivateKeySigner::random().address(),
        PrivateKeySigner::random().address(),
    );
    let mut endings = Vec::new();
    for (payer, kinds) in [
        (
            first,
            &[Kind::Settled, Kind::Settled, Kind::Debt, Kind::Released][..],
        ),
        (second, &[Kind::Settled, Kind::Debt, Kind::Released][..]),
    ] {
        for kind in kinds {
            endings.push(ending(&settling(ledger, payer).await, *kind));
        }
    }
    // Named twice: counted once.
    endings.push(endings[4].clone());
    // Still verified: its settlement never started, so nothing ends it.
    let id = verified(ledger, second).await;
    endings.push(ending(&id, Kind::Settled));
    (endings, [first, second])
}

type Row = (String, bool, Option<String>, Option<String>, String);

/// A payment's status, served, transaction, error reason and exposure.
async fn row_of(ledger: &Ledger, id: &str) -> Row {
    sqlx::query_as(
        "SELECT status, served, transaction, error_reason, exposure::text FROM payments WHERE id = $1",
    )
    .bind(id)
    .fetch_one(ledger.pool())
    .await
    .unwrap()
}

async fn debtor_since_set(ledger: &Ledger, payer: Address) -> bool {
    let account = account(payer);
    sqlx::query_scalar(
        "SELECT debtor_since IS NOT NULL FROM payer_accounts
          WHERE network = $1 AND asset = $2 AND payer = $3",
    )
    .bind(&account.network)
    .bind(&account.asset)
    .bind(&account.payer)
    .fetch_one(ledger.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn ending_settlements_together_leaves_what_ending_each_alone_would() {
    let ledger = ledger().await;
    let (alone, alone_payers) = mixed(&ledger).await;
    let (together, together_payers) = mixed(&ledger).await;

    let mut ended_alone = HashSet::new();
    for ending in &alone {
        if ledger
            .finish(
                &ending.id,
                &["settling"],
                if ending.outcome == Outcome::Settled {
                    "settled"
                } else {
                    "failed"
                },
                ending.outcome,
                ending.transaction.as_deref(),
                ending.reason.as_deref(),
                ending.served,
            )
            .await
            .unwrap()
        {
            ended_alone.insert(ending.id.clone());
        }
    }
    let ended_together = ledger.end_settlements(&together).await.unwrap();

    // The seven distinct settling payments ended; the verified one did not.
    assert_eq!(ended_alone.len(), 7);
    assert_eq!(ended_together.len(), 7, "{ended_together:?}");
    assert!(!ended_together.contains(&together[8].id));
    for (alone, together) in alone.iter().zip(&together) {
        assert_eq!(
            ended_alone.contains(&alone.id),
            ended_together.contains(&together.id)
        );
        let (alone_row, together_row) = (
            row_of(&ledger, &alone.id).await,
            row_of(&ledger, &together.id).await,
        );
        assert_eq!(
            together_row.2,
            together
                .transaction
                .clone()
                .filter(|_| ended_together.contains(&together.id))
        );
        // Transactions are random per setup: the rest must match.
        let without_transaction =
            |(status, served, _, reason, exposure): Row| (status, served, reason, exposure);
        assert_eq!(
            without_transaction(alone_row),
            without_transaction(together_row),
            "{}",
            together.id
        );
    }
    for (alone, together) in alone_payers.iter().zip(&together_payers) {
        assert_eq!(
            ledger.account(&account(*alone)).await.unwrap(),
            ledger.account(&account(*together)).await.unwrap()
        );
        assert!(debtor_since_set(&ledger, *together).await);
    }
    let price = U256::from(PRICE);
    let first_payer = AccountState {
        outstanding: U256::ZERO,
        settled_total: price * U256::from(2),
        debt: price,
    };
    assert_eq!(
        ledger.account(&account(together_payers[0])).await.unwrap(),
        first_payer
    );
    assert_eq!(
        ledger.account(&account(together_payers[1])).await.unwrap(),
        AccountState {
            // The verified payment, still outstanding.
            outstanding: price,
            settled_total: price,
            debt: price,
        }
    );

    // Ended once: a second ending (a late duplicate answer) changes nothing.
    assert!(ledger.end_settlements(&together).await.unwrap().is_empty());
    assert_eq!(
        ledger.account(&account(together_payers[0])).await.unwrap(),
        first_payer
    );
}
