//! Plugin delivery benchmark: signed Shopify orders go into a gateway on Redis while one
//! plugin pulls and acknowledges with the SDK client. Prints deliveries per second through
//! pull + ack, and webhook-to-handler latency (from the webhook's 202 to the plugin holding
//! the event).
//!
//! ```sh
//! cargo run --release -p omnigate-tests --bin omnigate-plugin-bench -- \
//!     --redis-url redis://127.0.0.1:6379 --events 5000
//! ```

use chrono::Utc;
use hdrhistogram::Histogram;
use omnigate::store::Retention;
use omnigate_schemas::api::{CreateInstallation, CreatePlugin, Scope};
use omnigate_sdk::Client;
use omnigate_tests::{Gateway, payload_fixture, redis_store_at};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TEMPLATE_ID: &str = "\"id\":5938201746113,";

#[tokio::main]
async fn main() {
    let mut redis_url = std::env::var("OMNIGATE_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut events = 5000usize;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--redis-url" => redis_url = it.next().expect("--redis-url URL"),
            "--events" => events = it.next().and_then(|n| n.parse().ok()).expect("--events N"),
            other => panic!("unknown argument {other} (--redis-url URL, --events N)"),
        }
    }
    let fixture = payload_fixture("shopify/orders-create");
    let store = redis_store_at(&redis_url, Retention::default()).await;
    let gw = Gateway::start_with(store, Utc::now(), |s| s.workers = Some(2)).await;
    let admin = Client::builder(&gw.base, omnigate_tests::ADMIN_TOKEN)
        .build()
        .unwrap();
    let plugin = admin
        .admin()
        .register_plugin(&CreatePlugin {
            name: "bench".into(),
            event_types: vec!["order.created".into()],
            publishes: vec![],
        })
        .await
        .unwrap();
    admin
        .admin()
        .install(
            &plugin.plugin.id,
            &CreateInstallation {
                tenant: "bench-shop".into(),
                scopes: vec![Scope::EventsRead, Scope::CustomerPii],
            },
        )
        .await
        .unwrap();
    let source = gw.source_for(&fixture, "bench-shop").await;
    let client = Client::builder(&gw.base, &plugin.api_key).build().unwrap();
    println!(
        "{events} signed Shopify orders ({} bytes), redis {redis_url}",
        fixture.body.len()
    );

    // When each order's webhook was acknowledged with 202.
    let accepted: Arc<Mutex<HashMap<String, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let sender = {
        let accepted = accepted.clone();
        let http = gw.http.clone();
        let url = gw.url(&format!("/v1/webhooks/{}", source.id));
        let headers: Vec<(String, String)> = fixture
            .headers
            .as_map()
            .iter()
            .filter(|(k, _)| !["x-shopify-event-id", "x-shopify-hmac-sha256"].contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let (body, secret) = (fixture.body.clone(), fixture.secret.clone());
        tokio::spawn(async move {
            let text = String::from_utf8(body).unwrap();
            let per_task = events / 16;
            let tasks: Vec<_> = (0..16)
                .map(|t| {
                    let (http, url, headers, text, secret, accepted) = (
                        http.clone(),
                        url.clone(),
                        headers.clone(),
                        text.clone(),
                        secret.clone(),
                        accepted.clone(),
                    );
                    tokio::spawn(async move {
                        for i in 0..per_task {
                            let id = (8_000_000_000_000u64 + (t * per_task + i) as u64).to_string();
                            let body = text.replacen(TEMPLATE_ID, &format!("\"id\":{id},"), 1);
                            let mut req = http.post(&url);
                            for (k, v) in &headers {
                                req = req.header(k, v);
                            }
                            let res = req
                                .header("X-Shopify-Event-Id", format!("bench-{id}"))
                                .header(
                                    "X-Shopify-Hmac-Sha256",
                                    omnigate::sign::body_hmac_base64(&secret, body.as_bytes()),
                                )
                                .body(body)
                                .send()
                                .await
                                .unwrap();
                            assert_eq!(res.status().as_u16(), 202);
                            accepted.lock().unwrap().insert(id, Instant::now());
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            per_task * 16
        })
    };

    let mut latency = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3).unwrap();
    let mut handled = 0usize;
    let started = Instant::now();
    let target = (events / 16) * 16;
    while handled < target && started.elapsed() < Duration::from_secs(300) {
        let deliveries = client
            .inbox()
            .pull(100, Duration::from_secs(2))
            .await
            .unwrap();
        let now = Instant::now();
        let receipts: Vec<String> = deliveries.iter().map(|d| d.receipt.clone()).collect();
        for d in &deliveries {
            let id = d.event.data["order_id"].as_str().unwrap().to_string();
            if let Some(at) = accepted.lock().unwrap().get(&id) {
                latency
                    .record(now.saturating_duration_since(*at).as_micros().max(1) as u64)
                    .unwrap();
            }
        }
        if !receipts.is_empty() {
            client.inbox().ack(&receipts).await.unwrap();
        }
        handled += deliveries.len();
    }
    let elapsed = started.elapsed();
    let sent = sender.await.unwrap();
    println!(
        "delivered and acknowledged {handled} of {sent} in {:.2} s: {:.0} events/s through pull+ack",
        elapsed.as_secs_f64(),
        handled as f64 / elapsed.as_secs_f64()
    );
    println!(
        "webhook 202 -> plugin holds the event: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latency.value_at_quantile(0.5) as f64 / 1000.0,
        latency.value_at_quantile(0.99) as f64 / 1000.0,
        latency.max() as f64 / 1000.0
    );
    gw.stop().await;
}
