//! Trying to exhaust the gateway on Redis: a runaway plugin, a flood from one shop, slow
//! senders, unauthenticated bodies. Each limit answers for itself (429, 408, 401) and the
//! rest of the gateway keeps working.

use chrono::Utc;
use omnigate::store::Retention;
use omnigate_tests::{Gateway, RedisProcess, redis_store, redis_store_at};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Plugin {
    id: String,
    key: String,
}

async fn plugin(gw: &Gateway, tenant: &str, event_types: Value) -> Plugin {
    let created: Value = gw
        .admin(Method::POST, "/v1/plugins")
        .json(&json!({"name": "Runaway", "event_types": event_types}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let p = Plugin {
        id: created["id"].as_str().unwrap().into(),
        key: created["api_key"].as_str().unwrap().into(),
    };
    let res = gw
        .admin(Method::POST, &format!("/v1/plugins/{}/installations", p.id))
        .json(&json!({"tenant": tenant, "scopes": ["events:read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    p
}

async fn call(gw: &Gateway, p: &Plugin, path: &str, body: Value) -> reqwest::Response {
    gw.http
        .post(gw.url(path))
        .bearer_auth(&p.key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

const SECRET: &str = "shpss_exhaustion_0123456789";

/// A Shopify order created at the gateway's clock, signed.
fn order(n: u64) -> (Vec<(String, String)>, Vec<u8>) {
    let body = format!(
        r##"{{"id":{n},"name":"#{n}","created_at":"{}","currency":"EUR","total_price":"1.00","line_items":[]}}"##,
        Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
    )
    .into_bytes();
    let headers = vec![
        ("X-Shopify-Topic".to_string(), "orders/create".to_string()),
        (
            "X-Shopify-Hmac-Sha256".to_string(),
            omnigate::sign::body_hmac_base64(SECRET, &body),
        ),
        ("Content-Type".to_string(), "application/json".to_string()),
    ];
    (headers, body)
}

fn retry_after(res: &reqwest::Response) -> u64 {
    res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// An abandoned plugin's inbox keeps the newest `OMNIGATE_INBOX_MAXLEN` deliveries; what
/// the cap removed is counted in a metric, and ingest goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_inbox_is_capped_and_the_trim_is_counted() {
    // The store keeps what the settings say (`OMNIGATE_INBOX_MAXLEN`); here, three.
    let retention = Retention {
        inbox_maxlen: 3,
        ..Retention::default()
    };
    let gw = Gateway::start_with(redis_store(retention).await, Utc::now(), |s| {
        s.inbox_maxlen = 3
    })
    .await;
    let tenant = "cap-shop";
    let p = plugin(&gw, tenant, json!(["order.created"])).await;
    let source = gw
        .create_source(json!({"tenant": tenant, "provider": "shopify", "secret": SECRET}))
        .await;
    for n in 1..=8 {
        let (headers, body) = order(n);
        assert_eq!(
            gw.deliver(&source.id, &headers, &body).await.status(),
            StatusCode::ACCEPTED
        );
    }
    // The router has moved all eight; the inbox holds the newest three.
    let metric = format!("omnigate_inbox_trimmed_total{{plugin=\"{}\"}} 5", p.id);
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = gw
            .http
            .get(gw.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.contains(&metric) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(metrics.contains(&metric), "{metrics}");
    let res = call(&gw, &p, "/v1/inbox/pull", json!({"max": 100})).await;
    let pulled: Value = res.json().await.unwrap();
    let orders: Vec<&str> = pulled["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["event"]["data"]["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(orders, ["6", "7", "8"]);
}

/// Replaying the same dead letter many times in one call is one replay, and replays are
/// limited per plugin per minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_cannot_multiply_an_inbox() {
    let gw = Gateway::start_with(redis_store(Retention::default()).await, Utc::now(), |s| {
        s.inbox_max_attempts = 1;
        s.replays_per_minute = 2;
    })
    .await;
    let tenant = "replay-shop";
    let p = plugin(&gw, tenant, json!(["order.created"])).await;
    let source = gw
        .create_source(json!({"tenant": tenant, "provider": "shopify", "secret": SECRET}))
        .await;
    let (headers, body) = order(1);
    gw.deliver(&source.id, &headers, &body).await;
    // Pull and give it back until it dies (one attempt allowed).
    let mut dead = Vec::new();
    for _ in 0..50 {
        let pulled: Value = call(
            &gw,
            &p,
            "/v1/inbox/pull",
            json!({"max": 10, "wait_ms": 100}),
        )
        .await
        .json()
        .await
        .unwrap();
        let receipts: Vec<Value> = pulled["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["receipt"].clone())
            .collect();
        if !receipts.is_empty() {
            call(&gw, &p, "/v1/inbox/nack", json!({"receipts": receipts})).await;
        }
        let listed: Value = gw
            .http
            .get(gw.url("/v1/inbox/dead"))
            .bearer_auth(&p.key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        dead = listed["dead_letters"].as_array().unwrap().clone();
        if !dead.is_empty() {
            break;
        }
    }
    assert_eq!(dead.len(), 1, "the delivery died");
    let id = dead[0]["id"].clone();
    let res = call(
        &gw,
        &p,
        "/v1/inbox/dead/replay",
        json!({"ids": [id.clone(), id.clone(), id.clone(), id.clone(), id]}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["replayed"], 1);
    let pulled: Value = call(&gw, &p, "/v1/inbox/pull", json!({"max": 100}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pulled["deliveries"].as_array().unwrap().len(), 1);
    // Two replays a minute: the third is told when to come back.
    let second = call(&gw, &p, "/v1/inbox/dead/replay", json!({})).await;
    assert_eq!(second.status(), StatusCode::OK);
    let third = call(
        &gw,
        &p,
        "/v1/inbox/replay",
        json!({"tenant": tenant, "from": "2025-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after(&third) >= 1);
    assert_eq!(third.headers()["content-type"], "application/problem+json");
}

async fn connected_clients(url: &str) -> u64 {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("clients")
        .query_async(&mut conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("connected_clients:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// 500 concurrent long-polls with one key: a few wait on Redis, the rest are told to come
/// back, and Redis never sees 500 connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_pulls_with_one_key_do_not_open_five_hundred_connections() {
    let redis = RedisProcess::start();
    let store = redis_store_at(&redis.url(), Retention::default()).await;
    let gw = Gateway::start_with(store, Utc::now(), |s| {
        s.plugin_rate = 0;
        s.pulls_per_plugin = 8;
    })
    .await;
    let p = plugin(&gw, "pull-shop", json!(["order.created"])).await;
    let before = connected_clients(&redis.url()).await;
    let pulls: Vec<_> = (0..500)
        .map(|_| {
            let (http, url, key) = (gw.http.clone(), gw.url("/v1/inbox/pull"), p.key.clone());
            tokio::spawn(async move {
                http.post(url)
                    .bearer_auth(key)
                    .json(&json!({"max": 1, "wait_ms": 1500}))
                    .send()
                    .await
                    .map(|r| r.status())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let during = connected_clients(&redis.url()).await;
    let mut ok = 0;
    let mut limited = 0;
    for pull in pulls {
        match pull.await.unwrap() {
            Ok(StatusCode::OK) => ok += 1,
            Ok(StatusCode::TOO_MANY_REQUESTS) => limited += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert!(ok >= 8, "{ok} pulls waited");
    assert!(limited >= 400, "{limited} pulls were told to come back");
    assert!(
        during <= before + 16,
        "connections while 500 pulls were open: {during} (before: {before})"
    );
}

/// One shop flooding its webhook is slowed with 429 and `Retry-After`; another shop is
/// not affected. A plugin over its API rate likewise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429_with_retry_after_per_source_and_per_plugin() {
    let gw = Gateway::start_with(redis_store(Retention::default()).await, Utc::now(), |s| {
        s.webhook_rate = 1;
        s.webhook_burst = 3;
        s.plugin_rate = 1;
        s.plugin_burst = 2;
    })
    .await;
    let noisy = gw
        .create_source(json!({"tenant": "noisy", "provider": "shopify", "secret": SECRET}))
        .await;
    let quiet = gw
        .create_source(json!({"tenant": "quiet", "provider": "shopify", "secret": SECRET}))
        .await;
    let mut statuses = Vec::new();
    let mut last = None;
    for n in 1..=5 {
        let (headers, body) = order(n);
        let res = gw.deliver(&noisy.id, &headers, &body).await;
        statuses.push(res.status().as_u16());
        last = Some(res);
    }
    assert_eq!(statuses, [202, 202, 202, 429, 429]);
    let last = last.unwrap();
    assert!(retry_after(&last) >= 1);
    let p: Value = last.json().await.unwrap();
    assert_eq!(p["type"], "https://omnigate.dev/problems/rate-limited");
    let (headers, body) = order(99);
    assert_eq!(
        gw.deliver(&quiet.id, &headers, &body).await.status(),
        StatusCode::ACCEPTED
    );

    let p = plugin(&gw, "noisy", json!(["order.created"])).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let res = gw
            .http
            .get(gw.url("/v1/me"))
            .bearer_auth(&p.key)
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 429, 429]);
}

/// Raw HTTP/1.1 on a socket: sends `head` and `body`, returns what the server answered
/// within `within` (empty when it said nothing).
async fn raw(gw: &Gateway, head: String, body: &[u8], within: Duration) -> String {
    let addr = gw.base.trim_start_matches("http://").to_string();
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(body).await.unwrap();
    let mut answer = vec![0u8; 4096];
    match tokio::time::timeout(within, socket.read(&mut answer)).await {
        Ok(Ok(n)) => String::from_utf8_lossy(&answer[..n]).to_string(),
        _ => String::new(),
    }
}

/// A plugin over its rate is refused before its body is read: the server answers 429
/// while most of a declared 10 MB body was never sent, also when the path is spelled with
/// percent-escapes the router decodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_bodies_are_not_read_before_the_key_and_rate_are_checked() {
    let gw = Gateway::start_with(redis_store(Retention::default()).await, Utc::now(), |s| {
        s.plugin_rate = 1;
        s.plugin_burst = 1;
    })
    .await;
    let p = plugin(&gw, "gate-shop", json!(["order.created"])).await;
    let me = gw
        .http
        .get(gw.url("/v1/me"))
        .bearer_auth(&p.key)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK, "the one call of the burst");
    for path in ["/v1/inbox/pull", "/v1/%69nbox/pull"] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n",
            p.key
        );
        let answer = raw(&gw, head, b"{\"max\":", Duration::from_secs(5)).await;
        assert!(answer.starts_with("HTTP/1.1 429"), "{path}: {answer:?}");
    }
    // Without a valid key: 401, also before the body.
    let head = "POST /v1/inbox/pull HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ogk_forged\r\n\
                Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n"
        .to_string();
    let answer = raw(&gw, head, b"{", Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer:?}");
}

/// A plugin that trickles its request body is cut off with 408 as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_plugin_body_is_cut_off() {
    let gw = Gateway::start_with(redis_store(Retention::default()).await, Utc::now(), |s| {
        s.body_timeout_ms = 300
    })
    .await;
    let p = plugin(&gw, "slow-plugin-shop", json!(["order.created"])).await;
    let head = format!(
        "POST /v1/inbox/ack HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n",
        p.key
    );
    let answer = raw(&gw, head, b"{\"receipts\":", Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
}

/// A sender that trickles its body is cut off with 408 instead of holding a worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_is_cut_off() {
    let gw = Gateway::start_with(redis_store(Retention::default()).await, Utc::now(), |s| {
        s.body_timeout_ms = 300
    })
    .await;
    let source = gw
        .create_source(json!({"tenant": "slow", "provider": "shopify", "secret": SECRET}))
        .await;
    let head = format!(
        "POST /v1/webhooks/{} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         X-Shopify-Topic: orders/create\r\nX-Shopify-Hmac-Sha256: AAAA\r\n\
         Content-Length: 100\r\n\r\n",
        source.id
    );
    let answer = raw(&gw, head, b"{\"id\":", Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(answer.contains("body-timeout"), "{answer:?}");
}

/// Many plugins long-polling at once share a bounded pool of blocking connections: with a
/// pool of 4, 80 open pulls from 10 plugins hold at most 4 blocking connections, and every
/// pull still gets an answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polls_share_a_bounded_pool_of_connections() {
    use omnigate::store::{RedisOptions, RedisStore};
    let redis = RedisProcess::start();
    let store = RedisStore::connect(
        &redis.url(),
        RedisOptions {
            prefix: omnigate_tests::unique_prefix(),
            sealer: Some(omnigate_tests::test_sealer()),
            blocking_pool: 4,
            ..RedisOptions::default()
        },
    )
    .await
    .unwrap();
    let gw = Gateway::start_with(std::sync::Arc::new(store), Utc::now(), |s| {
        s.plugin_rate = 0;
    })
    .await;
    let mut plugins = Vec::new();
    for n in 0..10 {
        plugins.push(plugin(&gw, &format!("pool-shop-{n}"), json!(["order.created"])).await);
    }
    let before = connected_clients(&redis.url()).await;
    let pulls: Vec<_> = plugins
        .iter()
        .flat_map(|p| std::iter::repeat_n(p.key.clone(), 8))
        .map(|key| {
            let (http, url) = (gw.http.clone(), gw.url("/v1/inbox/pull"));
            tokio::spawn(async move {
                http.post(url)
                    .bearer_auth(key)
                    .json(&json!({"max": 1, "wait_ms": 1500}))
                    .send()
                    .await
                    .map(|r| r.status())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let during = connected_clients(&redis.url()).await;
    for pull in pulls {
        assert_eq!(pull.await.unwrap().unwrap(), StatusCode::OK);
    }
    assert!(
        during <= before + 4,
        "connections while 80 pulls were open: {during} (before: {before})"
    );
}
