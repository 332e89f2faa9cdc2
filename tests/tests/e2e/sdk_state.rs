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

/// `state::apply_once` with publications: one the gateway refuses for good is set aside in
/// `rejected` (with the answer) instead of blocking every later event of the key; one that
/// does not match its declared schema is refused before anything is saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_publication_is_set_aside_and_the_key_goes_on() {
    use omnigate_sdk::api::PublishEvent;
    use omnigate_sdk::state::{MemoryState, StateStore, Tracked, apply_once};
    use serde_json::json;

    let gw = omnigate_tests::Gateway::start(
        omnigate_tests::redis_store(omnigate::store::Retention::default()).await,
        chrono::Utc::now(),
    )
    .await;
    let plugin = gw
        .register_plugin(json!({
            "name": "points",
            "event_types": ["order.paid"],
            "publishes": [{"type": "points.balance.changed", "schema": {
                "type": "object", "required": ["points"],
                "properties": {"points": {"type": "integer"}}}}]
        }))
        .await;
    gw.install(
        &plugin,
        "points-shop",
        json!(["events:read", "events:publish"]),
    )
    .await;
    let client = omnigate_sdk::Client::builder(&gw.base, &plugin.key)
        .retries(0)
        .build()
        .unwrap();
    let store = MemoryState::default();
    let publish = |points: serde_json::Value, subject: String| {
        move |doc: &mut i64| {
            *doc += 1;
            Ok(vec![
                PublishEvent::new(
                    "points-shop",
                    "points.balance.changed",
                    json!({"points": points}),
                )
                .subject(subject.clone()),
            ])
        }
    };

    // Passes the local check; the gateway refuses it (a subject over 200 characters): 422.
    apply_once(
        &store,
        &client,
        "c1",
        "evt-1",
        publish(json!(5), "x".repeat(201)),
    )
    .await
    .expect("a publication refused for good is not the handler's failure");
    let (t, _): (Tracked<i64>, u64) = store.load("c1").await.unwrap();
    assert!(t.outbox.is_empty(), "{:?}", t.outbox);
    assert_eq!(t.rejected.len(), 1);
    assert_eq!(t.rejected[0].status, 422);
    assert!(
        t.rejected[0].detail.contains("subject"),
        "{:?}",
        t.rejected[0]
    );

    // The next event of the same key publishes as usual.
    apply_once(
        &store,
        &client,
        "c1",
        "evt-2",
        publish(json!(7), "customer/1".into()),
    )
    .await
    .unwrap();
    let published = gw
        .tenant_events("points-shop", Some("points.balance.changed"))
        .await;
    assert_eq!(published.len(), 1);
    assert_eq!(published[0]["data"], json!({"points": 7}));

    // Data that does not match the declared schema never reaches the outbox.
    let err = apply_once(
        &store,
        &client,
        "c1",
        "evt-3",
        publish(json!("many"), "customer/1".into()),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("/points"), "{err}");
    assert!(
        err.downcast_ref::<omnigate_sdk::Permanent>().is_some(),
        "a publication that can never pass dead-letters the delivery at once"
    );
    let (t, _): (Tracked<i64>, u64) = store.load("c1").await.unwrap();
    assert_eq!(t.doc, 2, "the change of evt-3 was not saved");
    assert!(t.outbox.is_empty() && !t.applied.contains(&"evt-3".to_string()));
}

/// `RedisState` keys are `<prefix>:<key>` whether or not the prefix ends in `:`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_state_keys_have_one_separator() {
    let prefix = omnigate_tests::unique_prefix();
    let store = RedisState::connect(&omnigate_tests::redis_url(), &format!("{prefix}:"))
        .await
        .unwrap();
    assert!(store.save("shop-a", &5u32, 0).await.unwrap());
    let client = redis::Client::open(omnigate_tests::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys, vec![format!("{prefix}:shop-a")]);
}

/// Deleting a document, and documents that expire when not saved for their TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_state_deletes_and_expires() {
    let prefix = omnigate_tests::unique_prefix();
    let store = RedisState::connect(&omnigate_tests::redis_url(), &prefix)
        .await
        .unwrap();
    assert!(store.save("shop-a", &5u32, 0).await.unwrap());
    assert!(StateStore::<u32>::delete(&store, "shop-a").await.unwrap());
    let (doc, v): (u32, u64) = store.load("shop-a").await.unwrap();
    assert_eq!((doc, v), (0, 0), "deleted: starts over");

    let expiring = RedisState::connect(&omnigate_tests::redis_url(), &prefix)
        .await
        .unwrap()
        .ttl(std::time::Duration::from_millis(1));
    assert!(expiring.save("shop-b", &7u32, 0).await.unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (doc, v): (u32, u64) = expiring.load("shop-b").await.unwrap();
    assert_eq!((doc, v), (0, 0), "expired");
}
