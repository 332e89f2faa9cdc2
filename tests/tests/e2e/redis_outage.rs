//! Redis dies under a live gateway. Senders must hear 503 (and retry), never 2xx for a
//! delivery that was not written; when Redis is back the gateway recovers by itself and
//! nothing that was acknowledged is lost.

use omnigate::store::Retention;
use omnigate_tests::{Gateway, RedisProcess, fixture_time, payload_fixture, redis_store_at};
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_answers_503_while_redis_is_down_and_recovers_after() {
    let mut redis = RedisProcess::start();
    let f = payload_fixture("woocommerce/order.created");
    let store = redis_store_at(&redis.url(), Retention::default()).await;
    // No source cache: every delivery must reach the store, even the source lookup.
    let gw = Gateway::start_with(store, fixture_time(&f), |s| s.source_cache_ms = 0).await;
    let source = gw.source_for(&f, "outage-shop").await;

    let before = gw.deliver_fixture(&source.id, &f).await;
    assert_eq!(before.status(), StatusCode::ACCEPTED);
    let acknowledged: Value = before.json().await.unwrap();

    redis.kill();
    let second = payload_fixture("woocommerce/order.updated-processing");
    for _ in 0..5 {
        let res = gw.deliver_fixture(&source.id, &second).await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(res.headers().contains_key("retry-after"));
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let p: Value = res.json().await.unwrap();
        assert_eq!(p["type"], "https://omnigate.dev/problems/store-unavailable");
    }
    let ready = gw.http.get(gw.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let live = gw.http.get(gw.url("/healthz")).send().await.unwrap();
    assert_eq!(live.status(), StatusCode::OK, "the process itself is alive");
    // The operator's status still answers, and says what is wrong.
    let status: Value = gw.admin_json("/v1/status").await;
    assert_eq!(status["store"], "unreachable");
    assert_eq!(status["router"], serde_json::json!([]));

    redis.restart();
    // The sender retries until it is accepted; the gateway was not restarted.
    let mut status = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..100 {
        status = gw.deliver_fixture(&source.id, &second).await.status();
        if status != StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, StatusCode::ACCEPTED, "recovered without a restart");
    let ready = gw.http.get(gw.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);

    // What was acknowledged before the outage survived it; the retried delivery was
    // written once; the first delivery is still recognised as a duplicate.
    let events = gw.tenant_events("outage-shop", None).await;
    let seen: Vec<(&Value, &Value)> = events.iter().map(|e| (&e["id"], &e["type"])).collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].0, &acknowledged["event_ids"][0]);
    assert_eq!(
        seen[1].1, "order.paid",
        "the retried delivery, written once"
    );
    assert_eq!(
        gw.deliver_fixture(&source.id, &f).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        gw.deliver_fixture(&source.id, &second).await.status(),
        StatusCode::OK
    );
}

/// Redis restarted without persistence: the consumer groups of inboxes and log partitions
/// are gone (NOGROUP). They are recreated on the next call, never wedging delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_groups_lost_with_redis_data_are_recreated() {
    use omnigate::store::{InboxEntry, PullOptions};
    let redis = RedisProcess::start();
    let store = redis_store_at(&redis.url(), Retention::default()).await;
    let entry = |n: u32| InboxEntry {
        event_id: format!("evt_{n}"),
        tenant: "t".into(),
        event_type: "order.paid".into(),
        json: "{}".into(),
    };
    let pull = PullOptions {
        max: 10,
        wait: Duration::ZERO,
        visibility: Duration::from_secs(30),
        max_attempts: 8,
    };
    store.inbox_push("plg_g", &[entry(1)]).await.unwrap();
    assert_eq!(store.inbox_pull("plg_g", pull).await.unwrap().len(), 1);
    assert!(
        store
            .route_pull(0, 10, Duration::from_secs(30), Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );

    // Everything, groups included, is lost.
    let flushed = std::process::Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "FLUSHALL"])
        .output()
        .unwrap();
    assert!(flushed.status.success());

    store.inbox_push("plg_g", &[entry(2)]).await.unwrap();
    let got = store.inbox_pull("plg_g", pull).await.unwrap();
    assert_eq!(
        got.len(),
        1,
        "the group was recreated and the new entry delivered"
    );
    assert_eq!(got[0].entry.event_id, "evt_2");
    assert_eq!(
        store.inbox_ack("plg_g", &[got[0].receipt]).await.unwrap(),
        1
    );
    assert!(
        store
            .route_pull(0, 10, Duration::from_secs(30), Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
}

/// At start the gateway reads Redis's persistence settings and says what a Redis crash
/// would take of acknowledged deliveries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_persistence_is_read_and_explained() {
    use omnigate::store::durability::Risk;
    let redis = RedisProcess::start();
    let store =
        omnigate_tests::redis_store_with(&redis.url(), "og", Retention::default(), None).await;
    let version = store.server_version().await.unwrap();
    assert!(
        version >= (6, 2),
        "the suite's Redis is new enough: {version:?}"
    );
    let p = store.check_persistence().await.expect("CONFIG GET allowed");
    assert_eq!(
        (p.appendonly.as_str(), p.appendfsync.as_str()),
        ("yes", "always")
    );
    assert_eq!(p.risk(), Risk::None);

    let set = |args: &[&str]| {
        let out = std::process::Command::new("redis-cli")
            .args(["-p", &redis.port.to_string(), "CONFIG", "SET"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success());
    };
    set(&["appendfsync", "everysec"]);
    assert_eq!(store.persistence().await.unwrap().risk(), Risk::LastSecond);
    set(&["appendonly", "no"]);
    let p = store.persistence().await.unwrap();
    assert_eq!(p.risk(), Risk::SinceSnapshot);
    assert!(p.meaning().contains("PERSISTS NOTHING"), "{}", p.meaning());

    let locked = RedisProcess::start_with(&["--rename-command", "CONFIG", ""]);
    let store =
        omnigate_tests::redis_store_with(&locked.url(), "og", Retention::default(), None).await;
    assert_eq!(store.check_persistence().await, None);
}
