//! The SDK's plugin state store on a real Redis: documents round-trip and saves are
//! compare-and-set.

use omnigate_sdk::state::{RedisState, StateStore};
use std::collections::BTreeMap;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_state_is_compare_and_set() {
    let prefix = omnigate_tests::unique_prefix();
    let store = RedisState::connect(&omnigate_tests::redis_url(), &prefix)
        .await
        .unwrap();
    let (mut doc, v): (BTreeMap<String, i64>, u64) = store.load("shop-a").await.unwrap();
    assert_eq!((doc.len(), v), (0, 0));
    doc.insert("c1".into(), 230);
    assert!(store.save("shop-a", &doc, 0).await.unwrap());
    assert!(
        !store.save("shop-a", &doc, 0).await.unwrap(),
        "a stale version loses"
    );
    let (loaded, v): (BTreeMap<String, i64>, u64) = store.load("shop-a").await.unwrap();
    assert_eq!((loaded, v), (doc.clone(), 1));
    doc.insert("c1".into(), 0);
    assert!(store.save("shop-a", &doc, 1).await.unwrap());
    let (_, other): (BTreeMap<String, i64>, u64) = store.load("shop-b").await.unwrap();
    assert_eq!(other, 0, "per key");
}
