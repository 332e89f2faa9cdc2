//! One plugin code base, pushed: the SDK's `push::Server` runs the same `Handler` a
//! `Runtime` runs, behind an HTTP endpoint the gateway (on real Redis) pushes to. A
//! failure comes again on the gateway's retry schedule; a `Permanent` one is dead-lettered
//! at once; a request without the gateway's signature never reaches the handler.

use omnigate::store::Retention;
use omnigate_sdk::push::{DEAD_LETTER_HEADER, Server, Verifier};
use omnigate_sdk::{Client, Delivery, Handler, HandlerResult, Permanent};
use omnigate_tests::{Gateway, Plugin, fixture_time, payload_fixture, redis_store};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the handler saw: event type, attempt, receipt.
type Seen = Arc<Mutex<Vec<(String, u64, String)>>>;

/// A CRM sync whose CRM is busy on the first try of an order's creation, and which cannot
/// use a fulfilment at all.
struct CrmSync {
    seen: Seen,
}

#[omnigate_sdk::async_trait]
impl Handler for CrmSync {
    async fn handle(&self, d: &Delivery, _client: &Client) -> HandlerResult {
        self.seen
            .lock()
            .unwrap()
            .push((d.event.event_type.clone(), d.attempt, d.receipt.clone()));
        match (d.event.event_type.as_str(), d.attempt) {
            ("order.created", 1) => Err("the CRM is busy".into()),
            ("order.fulfilled", _) => {
                Err(Permanent::new("fulfilments have no CRM record to update").into())
            }
            _ => Ok(()),
        }
    }
}

async fn seen_when(seen: &Seen, what: &str, pred: impl Fn(&[(String, u64, String)]) -> bool) {
    for _ in 0..400 {
        if pred(&seen.lock().unwrap()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: the handler saw {:#?}", seen.lock().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_push_server_runs_a_handler_as_the_runtime_would() {
    let created = payload_fixture("shopify/orders-create");
    let gw = Gateway::start_with(
        redis_store(Retention::default()).await,
        fixture_time(&created),
        |s| {
            s.push_allow_private = true;
            s.push_retry_schedule = "100ms,200ms".parse().unwrap();
        },
    )
    .await;
    // The endpoint's address comes first: the registration names it.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/omnigate", listener.local_addr().unwrap());
    let res = gw
        .admin(Method::POST, "/v1/plugins")
        .json(&json!({"name": "CRM sync", "event_types": ["order.*"],
                      "delivery": {"mode": "push", "url": url}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let registered: Value = res.json().await.unwrap();
    let plugin = Plugin {
        id: registered["id"].as_str().unwrap().into(),
        key: registered["api_key"].as_str().unwrap().into(),
    };
    gw.install(&plugin, "shop-a", json!(["events:read"])).await;
    let secret = registered["signing_secret"].as_str().unwrap();
    let client = Client::builder(&gw.base, &plugin.key).build().unwrap();
    let seen = Seen::default();
    let serving = Server::new(
        client.clone(),
        Verifier::new(&[secret]).unwrap(),
        CrmSync { seen: seen.clone() },
    )
    .serve(listener)
    .unwrap();

    // The order is created, then paid: the creation fails once and comes back; its
    // payment waits for it (order per subject), then both are handled.
    let source = gw.source_for(&created, "shop-a").await;
    for name in ["shopify/orders-create", "shopify/orders-paid"] {
        let f = payload_fixture(name);
        gw.clock.set(fixture_time(&f));
        assert_eq!(
            gw.deliver_fixture(&source.id, &f).await.status(),
            StatusCode::ACCEPTED
        );
    }
    seen_when(&seen, "created twice, then paid", |s| s.len() >= 3).await;
    let order: Vec<(String, u64)> = seen.lock().unwrap()[..3]
        .iter()
        .map(|(t, a, _)| (t.clone(), *a))
        .collect();
    assert_eq!(
        order,
        [
            ("order.created".to_string(), 1),
            ("order.created".to_string(), 2),
            ("order.paid".to_string(), 1),
        ]
    );
    // Pushed, the receipt is the event id (the same on every attempt).
    let receipts: Vec<String> = seen.lock().unwrap().iter().map(|s| s.2.clone()).collect();
    assert_eq!(receipts[0], receipts[1]);
    assert!(receipts[0].starts_with("evt_"), "{receipts:?}");

    // A permanent failure is a dead letter after its one attempt, with the handler's reason.
    let fulfilled = payload_fixture("shopify/orders-fulfilled");
    gw.clock.set(fixture_time(&fulfilled));
    assert_eq!(
        gw.deliver_fixture(&source.id, &fulfilled).await.status(),
        StatusCode::ACCEPTED
    );
    let mut letters = Vec::new();
    for _ in 0..400 {
        letters = client.inbox().dead_letters().await.unwrap().dead_letters;
        if !letters.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(letters.len(), 1, "one dead letter");
    assert_eq!(letters[0].event.event_type, "order.fulfilled");
    assert_eq!(letters[0].attempts, 1, "no retry for a permanent failure");
    let reason = &letters[0].failures[0].reason;
    assert!(
        reason.contains("HTTP 422") && reason.contains("fulfilments have no CRM record"),
        "{reason}"
    );
    // The endpoint answered as it meant to: it stays healthy.
    let view = gw.admin_json(&format!("/v1/plugins/{}", plugin.id)).await;
    assert_eq!(
        view["delivery"]["endpoints"][0]["status"], "healthy",
        "{view:#}"
    );
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .filter(|s| s.0 == "order.fulfilled")
            .count()
            == 1
    );

    // Anyone else posting to the endpoint is refused before the handler runs.
    let before = seen.lock().unwrap().len();
    let forged = reqwest::Client::new()
        .post(&url)
        .header("webhook-id", "evt_forged")
        .header(
            "webhook-timestamp",
            chrono::Utc::now().timestamp().to_string(),
        )
        .header(
            "webhook-signature",
            "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .body(r#"{"id":"evt_forged"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    assert!(!forged.headers().contains_key(DEAD_LETTER_HEADER));
    let unsigned = reqwest::Client::new()
        .post(&url)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        unsigned.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(seen.lock().unwrap().len(), before);

    let stats = serving.stop().await;
    assert_eq!((stats.handled, stats.failed), (2, 2), "{stats:?}");
    gw.stop().await;
}
