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
