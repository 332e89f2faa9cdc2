//! Per-stage cost of the ingest pipeline on the 8.3 KB Shopify order fixture (CPU only, no
//! HTTP, no Redis). Run: `cargo run --release -p omnigate-tests --example ingest_stages`.

use omnigate::headers::Headers;
use omnigate::json::Json;
use omnigate::normalize::Input;
use omnigate::validate::Validators;
use omnigate::verify::{self, SignedRequest};
use omnigate_schemas::api::Provider;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROUNDS: u32 = 20_000;

fn time(label: &str, mut f: impl FnMut()) -> Duration {
    for _ in 0..ROUNDS / 10 {
        f();
    }
    let t = Instant::now();
    for _ in 0..ROUNDS {
        f();
    }
    let per = t.elapsed() / ROUNDS;
    println!("{label:<28} {:>8.2} µs", per.as_secs_f64() * 1e6);
    per
}

fn main() {
    let f = omnigate_tests::payload_fixture("shopify/orders-create");
    let validators = Validators::compile().unwrap();
    let headers: Headers = f.headers.as_map().iter().collect();
    println!("body {} bytes, {ROUNDS} rounds per stage", f.body.len());

    let mut total = Duration::ZERO;
    total += time("verify (HMAC-SHA256)", || {
        let req = SignedRequest {
            url_secret: None,
            headers: &headers,
            body: &f.body,
            now: 0,
            tolerance_s: 300,
        };
        verify::verify(
            omnigate::providers::of(Provider::Shopify).scheme,
            Default::default(),
            &req,
            &[&f.secret],
        )
        .unwrap();
    });
    time("(parse to serde_json::Value)", || {
        let _: serde_json::Value = serde_json::from_slice(&f.body).unwrap();
    });
    time("(parse, skipping everything)", || {
        let _: serde::de::IgnoredAny = serde_json::from_slice(&f.body).unwrap();
    });
    total += time("parse (borrowed tree)", || {
        let _ = Json::parse(&f.body).unwrap();
    });
    let body = Json::parse(&f.body).unwrap();
    total += time("provider schema", || {
        validators
            .check_payload(Provider::Shopify, "order", &body)
            .unwrap();
    });
    let input = Input {
        topic: "orders/create",
        headers: &headers,
        body: &body,
        received_at: chrono::Utc::now(),
        snapshot: None,
        shop_locale: None,
    };
    let mut events = Vec::new();
    total += time("normalize (+ snapshot)", || {
        events = omnigate::providers::of(Provider::Shopify)
            .normalizer
            .normalize(input)
            .unwrap()
            .events;
    });
    let data: serde_json::Value = events[0].data();
    let event = serde_json::json!({
        "id": "evt_0", "type": "order.created", "schema_version": 1, "tenant": "t",
        "occurred_at": "2025-03-14T09:26:53Z", "received_at": "2025-03-14T09:26:55Z",
        "source": {"id": "src", "provider": "shopify", "topic": "orders/create"},
        "subject": "order/1", "data": data,
    })
    .to_string();
    total += time("event schema (parse + check)", || {
        let parsed = Json::parse(event.as_bytes()).unwrap();
        validators.check_event("order.created", &parsed).unwrap();
    });
    println!("{:<28} {:>8.2} µs", "total", total.as_secs_f64() * 1e6);
}
