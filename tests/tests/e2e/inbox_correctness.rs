//! Acknowledgements settle exactly what they name, and looking at dead letters settles
//! nothing: each story here lost or kept a delivery it should not have before.

use omnigate::store::Retention;
use omnigate_tests::{Gateway, Plugin, fixture_time, payload_fixture, redis_store_with_prefix};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A gateway with a plugin installed in `shop-a`, and `n` order events of `shop-a` in its
/// inbox (not pulled yet). Also the Redis key prefix, for reading the raw streams.
async fn plugin_with_inbox() -> (Gateway, Plugin, String) {
    let (store, prefix) = redis_store_with_prefix(Retention::default()).await;
    let created = payload_fixture("shopify/orders-create");
    let gw = Gateway::start(store, fixture_time(&created)).await;
    let p = gw
        .register_plugin(json!({"name": "Acks", "event_types": ["order.*"]}))
        .await;
    gw.install(&p, "shop-a", json!(["events:read"])).await;
    let source = gw.source_for(&created, "shop-a").await;
    for name in ["shopify/orders-create", "shopify/orders-paid"] {
        let f = payload_fixture(name);
        gw.clock.set(fixture_time(&f));
        assert_eq!(
            gw.deliver_fixture(&source.id, &f).await.status(),
            StatusCode::ACCEPTED
        );
    }
    // The router moves both events into the inbox.
    for _ in 0..100 {
        if inbox_len(&prefix, &p.id).await == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(inbox_len(&prefix, &p.id).await, 2);
    (gw, p, prefix)
}

async fn redis() -> redis::aio::MultiplexedConnection {
    redis::Client::open(omnigate_tests::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn inbox_len(prefix: &str, plugin: &str) -> i64 {
    redis::cmd("XLEN")
        .arg(format!("{prefix}:inbox:{{{plugin}}}"))
        .query_async(&mut redis().await)
        .await
        .unwrap()
}

async fn pull(gw: &Gateway, p: &Plugin, max: usize) -> Vec<Value> {
    let (status, body) = gw
        .plugin_call(p, "/v1/inbox/pull", json!({"max": max, "wait_ms": 0}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["deliveries"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_naming_a_delivery_not_handed_out_yet_leaves_it_for_the_next_pull() {
    let (gw, p, prefix) = plugin_with_inbox().await;
    let first = pull(&gw, &p, 1).await;
    assert_eq!(first.len(), 1);
    // The second entry's id, as a careless (or hostile) client could guess it.
    let ids: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(format!("{prefix}:inbox:{{{}}}", p.id))
        .arg("-")
        .arg("+")
        .query_async(&mut redis().await)
        .await
        .unwrap();
    let unseen = ids
        .iter()
        .map(|(id, _)| id.clone())
        .find(|id| *id != first[0]["receipt"])
        .unwrap();

    let (status, settled) = gw
        .plugin_call(
            &p,
            "/v1/inbox/ack",
            json!({"receipts": [first[0]["receipt"], unseen]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(settled["settled"], 1, "only the delivery handed out");
    let next = pull(&gw, &p, 10).await;
    assert_eq!(next.len(), 1, "the other delivery is still there");
    assert_eq!(next[0]["receipt"], unseen.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_that_landed_with_its_answer_lost_is_finished_by_the_retry() {
    let (gw, p, prefix) = plugin_with_inbox().await;
    let taken = pull(&gw, &p, 10).await;
    let receipts: Vec<Value> = taken.iter().map(|d| d["receipt"].clone()).collect();
    // The first ack reached Redis (XACK) but its answer never came back.
    let key = format!("{prefix}:inbox:{{{}}}", p.id);
    let acked: i64 = redis::cmd("XACK")
        .arg(&key)
        .arg("plugin")
        .arg(receipts[0].as_str().unwrap())
        .query_async(&mut redis().await)
        .await
        .unwrap();
    assert_eq!(acked, 1);

    // The client retries that ack.
    let (status, settled) = gw
        .plugin_call(&p, "/v1/inbox/ack", json!({"receipts": [receipts[0]]}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(settled["settled"], 0, "it was acknowledged already");
    assert_eq!(
        inbox_len(&prefix, &p.id).await,
        1,
        "the acknowledged entry left the inbox; the other is still pending"
    );
    let (_, settled) = gw
        .plugin_call(&p, "/v1/inbox/ack", json!({"receipts": [receipts[1]]}))
        .await;
    assert_eq!(settled["settled"], 1);
    assert_eq!(inbox_len(&prefix, &p.id).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_dead_letters_of_a_shop_left_touches_no_inbox_delivery() {
    let (gw, p, prefix) = plugin_with_inbox().await;
    let taken = pull(&gw, &p, 1).await;
    let receipt = taken[0]["receipt"].as_str().unwrap().to_string();
    // A dead letter from a shop the plugin is not installed in, whose stream id happens to
    // equal the pending delivery's (both streams take ids from one Redis clock).
    let mut event = taken[0]["event"].clone();
    event["tenant"] = json!("shop-gone");
    let _: String = redis::cmd("XADD")
        .arg(format!("{prefix}:dead:{{{}}}", p.id))
        .arg(&receipt)
        .arg("id")
        .arg("evt_gone")
        .arg("tenant")
        .arg("shop-gone")
        .arg("type")
        .arg("order.created")
        .arg("event")
        .arg(event.to_string())
        .arg("attempts")
        .arg(8)
        .query_async(&mut redis().await)
        .await
        .unwrap();

    let res = gw
        .http
        .request(Method::GET, gw.url("/v1/inbox/dead"))
        .bearer_auth(&p.key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let dead: Value = res.json().await.unwrap();
    assert_eq!(
        dead["dead_letters"],
        json!([]),
        "letters of shops it left are not shown"
    );

    let (status, settled) = gw
        .plugin_call(&p, "/v1/inbox/ack", json!({"receipts": [receipt]}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        settled["settled"], 1,
        "the pending delivery was still pending"
    );
}
