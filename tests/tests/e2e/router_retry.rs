//! The router never lets one event hold back a partition: a batch that fails is retried at
//! once and in order, and an event that keeps failing while Redis answers is set aside in
//! the partition's router dead letters, with why.

use omnigate::clock::Clock;
use omnigate::store::Retention;
use omnigate_tests::{Gateway, fixture_time, payload_fixture, redis_store_with_prefix};
use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_that_cannot_be_routed_is_set_aside_and_the_partition_goes_on() {
    let (store, prefix) = redis_store_with_prefix(Retention::default()).await;
    let f = payload_fixture("shopify/orders-create");
    // One partition: both shops' events share it, the broken one first.
    let gw = Gateway::start_with(store.clone(), fixture_time(&f), |s| s.partitions = 1).await;
    let broken = gw
        .register_plugin(json!({"name": "Broken", "event_types": ["order.*"]}))
        .await;
    let fine = gw
        .register_plugin(json!({"name": "Fine", "event_types": ["order.*"]}))
        .await;
    gw.install(&broken, "shop-broken", json!(["events:read"]))
        .await;
    // The fine plugin is in both shops: the broken plugin's inbox must not cost it either
    // event.
    gw.install(&fine, "shop-broken", json!(["events:read"]))
        .await;
    gw.install(&fine, "shop-fine", json!(["events:read"])).await;
    // Every write to the broken plugin's inbox fails (WRONGTYPE) while Redis answers.
    let mut redis = redis::Client::open(omnigate_tests::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(format!("{prefix}:inbox:{{{}}}", broken.id))
        .arg("not a stream")
        .query_async(&mut redis)
        .await
        .unwrap();

    for tenant in ["shop-broken", "shop-fine"] {
        let source = gw.source_for(&f, tenant).await;
        assert_eq!(
            gw.deliver_fixture(&source.id, &f).await.status(),
            StatusCode::ACCEPTED
        );
    }

    // The fine plugin gets both events although the broken plugin's inbox refuses one.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = Vec::new();
    while got.len() < 2 {
        let (status, body) = gw
            .plugin_call(&fine, "/v1/inbox/pull", json!({"max": 10, "wait_ms": 1000}))
            .await;
        assert_eq!(status, StatusCode::OK);
        got.extend(body["deliveries"].as_array().unwrap().iter().cloned());
        assert!(
            Instant::now() < deadline,
            "the partition is wedged: {got:?}"
        );
    }
    let mut tenants: Vec<&str> = got
        .iter()
        .map(|d| d["event"]["tenant"].as_str().unwrap())
        .collect();
    tenants.sort_unstable();
    assert_eq!(tenants, ["shop-broken", "shop-fine"]);

    let dead = store.route_dead_letters(0, None, 10).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].entry.record.tenant, "shop-broken");
    assert_eq!(dead[0].plugin_id, broken.id);
    assert!(dead[0].reason.contains("WRONGTYPE"), "{}", dead[0].reason);
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains("omnigate_router_dead_letters_total 1"),
        "{metrics}"
    );
    // Set aside once, not routed again.
    assert!(
        store
            .route_pull(0, 10, Duration::ZERO, Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );

    // The operator sees it, fixes the inbox, and delivers it again.
    let listed = gw.admin_json("/v1/router/dead-letters").await;
    let letters = listed["dead_letters"].as_array().unwrap();
    assert_eq!(letters.len(), 1, "{listed}");
    assert_eq!(letters[0]["plugin_id"], broken.id.as_str());
    assert_eq!(letters[0]["tenant"], "shop-broken");
    let id = letters[0]["id"].as_str().unwrap().to_string();
    assert_eq!(listed["done"], true);
    assert_eq!(listed["next"], id.as_str());
    let after = gw
        .admin_json(&format!("/v1/router/dead-letters?after={id}"))
        .await;
    assert_eq!(
        after["dead_letters"],
        serde_json::json!([]),
        "nothing after the last"
    );
    assert_eq!(after["done"], true);
    let _: i64 = redis::cmd("DEL")
        .arg(format!("{prefix}:inbox:{{{}}}", broken.id))
        .query_async(&mut redis)
        .await
        .unwrap();
    let replay = |id: &str| {
        gw.admin(
            reqwest::Method::POST,
            &format!("/v1/router/dead-letters/{id}/replay"),
        )
    };
    let res = replay(&id).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (status, body) = gw
        .plugin_call(&broken, "/v1/inbox/pull", json!({"max": 10}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["deliveries"][0]["event"]["tenant"], "shop-broken");
    assert_eq!(
        gw.admin_json("/v1/router/dead-letters").await["dead_letters"],
        json!([])
    );
    assert_eq!(
        replay(&id).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

/// A router that took a batch and died before acknowledging it (its process killed
/// mid-batch): another gateway's router takes the batch over once it is stale, and every
/// event reaches every subscribed inbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_a_dead_router_took_is_taken_over_and_delivered() {
    let (store, _) = redis_store_with_prefix(Retention::default()).await;
    let created = payload_fixture("shopify/orders-create");
    // This gateway only ingests.
    let ingest = Gateway::start_with(store.clone(), fixture_time(&created), |s| {
        s.router = false;
        s.partitions = 1;
    })
    .await;
    let p = ingest
        .register_plugin(json!({"name": "Orders", "event_types": ["order.*"]}))
        .await;
    ingest.install(&p, "shop-r", json!(["events:read"])).await;
    let source = ingest.source_for(&created, "shop-r").await;
    for name in ["shopify/orders-create", "shopify/orders-paid"] {
        let f = payload_fixture(name);
        ingest.clock.set(fixture_time(&f));
        assert_eq!(
            ingest.deliver_fixture(&source.id, &f).await.status(),
            StatusCode::ACCEPTED
        );
    }
    // A router takes the batch and dies mid-batch: nothing routed, nothing acknowledged.
    let taken = store
        .route_pull(0, 100, Duration::from_millis(300), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(taken.len(), 2);

    // Another gateway's router takes it over once it is stale.
    let router = Gateway::start_with(store.clone(), ingest.clock.now(), |s| {
        s.partitions = 1;
        s.router_stale_ms = 300;
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    while got.len() < 2 {
        let (status, body) = router
            .plugin_call(&p, "/v1/inbox/pull", json!({"max": 10, "wait_ms": 500}))
            .await;
        assert_eq!(status, StatusCode::OK);
        got.extend(body["deliveries"].as_array().unwrap().iter().cloned());
        assert!(Instant::now() < deadline, "never taken over: {got:?}");
    }
    let mut types: Vec<&str> = got
        .iter()
        .map(|d| d["event"]["type"].as_str().unwrap())
        .collect();
    types.sort_unstable();
    assert_eq!(types, ["order.created", "order.paid"]);
}
