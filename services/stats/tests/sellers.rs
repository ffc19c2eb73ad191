//! The leaderboard's store on both backends: a range counts with its
//! checkpoint, once; a stale indexer counts nothing; ranking by volume.

mod common;

use alloy::primitives::U256;
use common::{Backend, Place};
use std::collections::BTreeMap;
use tessera_stats::store::sellers::Received;
use tessera_stats::Token;

fn token() -> Token {
    Token {
        network: "eip155:84532".into(),
        asset: "0x1111111111111111111111111111111111111111".into(),
    }
}

fn received(entries: &[(&str, u64, u64)]) -> BTreeMap<String, Received> {
    entries
        .iter()
        .map(|(to, volume, transactions)| {
            (
                to.to_string(),
                Received {
                    volume: U256::from(*volume),
                    transactions: *transactions,
                },
            )
        })
        .collect()
}

async fn a_range_counts_once_with_its_checkpoint(backend: Backend) {
    let place = Place::new(backend).await;
    let store = place.open().await;
    let token = token();
    let start = store.checkpoint(&token, 5).await.unwrap();
    assert_eq!(start.through_block, 4, "from block 5: nothing counted yet");
    assert_eq!(
        store.checkpoint(&token, 0).await.unwrap(),
        start,
        "a stored checkpoint wins over a changed STATS_FROM_BLOCK"
    );

    let first = received(&[("0xaa", 900, 2), ("0xbb", 1000, 1)]);
    assert!(store.advance(&token, 4, 10, 12, &first).await.unwrap());
    // The same range again, as a second indexer that started at 4 would.
    assert!(!store.advance(&token, 4, 10, 12, &first).await.unwrap());
    let second = received(&[("0xaa", 200, 1), ("0xcc", 5, 1)]);
    assert!(store.advance(&token, 10, 12, 12, &second).await.unwrap());

    let top = store.top_sellers(&token, 10).await.unwrap();
    let ranked: Vec<(&str, &str, u64)> = top
        .iter()
        .map(|s| (s.pay_to.as_str(), s.volume.as_str(), s.transactions))
        .collect();
    assert_eq!(
        ranked,
        [("0xaa", "1100", 3), ("0xbb", "1000", 1), ("0xcc", "5", 1)]
    );
    assert_eq!(store.top_sellers(&token, 1).await.unwrap().len(), 1);
    let indexed = store.indexed(&token).await.unwrap().unwrap();
    assert_eq!((indexed.through_block, indexed.head_block), (12, 12));

    // Volumes beyond i64 stay exact and rank as numbers.
    let huge = U256::from(u128::MAX) * U256::from(1000u64);
    let mut whale = BTreeMap::new();
    whale.insert(
        "0xdd".to_string(),
        Received {
            volume: huge,
            transactions: 1,
        },
    );
    assert!(store.advance(&token, 12, 13, 20, &whale).await.unwrap());
    let top = store.top_sellers(&token, 2).await.unwrap();
    assert_eq!(top[0].pay_to, "0xdd");
    assert_eq!(top[0].volume, huge.to_string());
    assert_eq!(store.indexed(&token).await.unwrap().unwrap().head_block, 20);

    // Another token's board is its own.
    let other = Token {
        asset: "0x2222222222222222222222222222222222222222".into(),
        ..token.clone()
    };
    assert!(store.indexed(&other).await.unwrap().is_none());
    assert!(store.top_sellers(&other, 10).await.unwrap().is_empty());
    place.remove().await;
}
on_both!(a_range_counts_once_with_its_checkpoint);

async fn racing_indexers_count_each_range_once(backend: Backend) {
    let place = Place::new(backend).await;
    let token = token();
    let stores = [place.open().await, place.open().await];
    stores[0].checkpoint(&token, 0).await.unwrap();
    let racers: Vec<_> = stores
        .iter()
        .cloned()
        .map(|store| {
            let token = token.clone();
            tokio::spawn(async move {
                let mut counted = 0;
                for block in 0..40i64 {
                    let one = received(&[("0xaa", 1, 1)]);
                    if store
                        .advance(&token, block - 1, block as u64, 40, &one)
                        .await
                        .unwrap()
                    {
                        counted += 1;
                    }
                }
                counted
            })
        })
        .collect();
    let mut total = 0;
    for racer in racers {
        total += racer.await.unwrap();
    }
    // Each racer tried every block once; the second to try one is refused.
    assert_eq!(total, 40);
    let top = stores[1].top_sellers(&token, 10).await.unwrap();
    assert_eq!(top[0].volume, "40");
    assert_eq!(top[0].transactions, 40);
    place.remove().await;
}
on_both!(racing_indexers_count_each_range_once);
