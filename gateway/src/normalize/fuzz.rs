//! Normalizers never panic, whatever JSON arrives: arbitrary values, and every fixture and
//! sample with fields removed, retyped or replaced at random. What cannot be mapped is a
//! rejection with a reason.

use super::*;
use crate::json::Json;
use proptest::prelude::*;
use serde_json::{Map, json};

/// The pipeline's way to a provider's mapping, for tests that name the provider.
fn normalize(provider: Provider, input: Input<'_>) -> Result<Output, Rejection> {
    crate::providers::of(provider).normalizer.normalize(input)
}

/// Arbitrary JSON, a few levels deep, with the keys providers use so mutations hit.
fn arb_json() -> impl Strategy<Value = Value> {
    let key = prop::sample::select(vec![
        "id",
        "order",
        "data",
        "object",
        "line_items",
        "lines",
        "total",
        "currency",
        "amount",
        "created_at",
        "status",
        "refunds",
        "customer",
        "metadata",
        "order_id",
        "eventCreated",
        "entityId",
        "scope",
        "resource_url",
        "issuedAt",
        "user",
        "fulfillment",
        "inventory",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
        Just(json!("2025-03-14T11:26:53+02:00")),
        Just(json!("-0.001")),
        Just(json!("79228162514264337593543950335")),
        Just(json!(i64::MIN)),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6).prop_map(|kv| {
                Value::Object(
                    kv.into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

/// Every real body we have: shared fixtures and bundled samples, with their provider.
fn bodies() -> Vec<(Provider, Value)> {
    let mut out: Vec<(Provider, Value)> = crate::samples::SAMPLES
        .iter()
        .map(|s| (s.provider, serde_json::from_str(s.body).unwrap()))
        .collect();
    for f in crate::fixtures::load_payload_fixtures() {
        let provider = serde_json::from_value(Value::String(f.scheme.clone())).unwrap();
        out.push((provider, serde_json::from_slice(&f.body).unwrap()));
    }
    out
}

/// Replaces the value at a pseudo-random path (chosen by `seed`) with `with`.
fn mutate(v: &mut Value, seed: u64, with: Value, depth: u32) {
    let len = match v {
        Value::Object(m) => m.len(),
        Value::Array(a) => a.len(),
        _ => 0,
    };
    if len == 0 || (depth > 0 && seed.is_multiple_of(3)) {
        *v = with;
        return;
    }
    let i = (seed % len as u64) as usize;
    let child = match v {
        Value::Object(m) => m.values_mut().nth(i).expect("index in range"),
        Value::Array(a) => &mut a[i],
        _ => unreachable!("leaves were replaced above"),
    };
    mutate(child, seed / 7, with, depth + 1);
}

/// Header values an attacker may send: any text, and times at the edges of what a date
/// type holds (extended years, RFC 2822 in year 9999, Unix seconds far out).
pub(crate) fn arb_header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,40}",
        Just("+262143-12-31T23:59:59Z".to_string()),
        Just("+262142-12-31T23:59:59".to_string()),
        Just("Fri, 31 Dec 99999 23:59:59 +0000".to_string()),
        Just("99999-01-01 00:00:00".to_string()),
        Just("9999-12-31T23:59:59Z".to_string()),
        Just("-262144-01-01T00:00:00".to_string()),
        Just("Fri, 31 Dec 9999 23:59:59 +0000".to_string()),
        Just("9223372036854775807".to_string()),
    ]
}

/// Headers with every name the pipeline reads, set to attacker-chosen values.
pub(crate) fn arb_headers() -> impl Strategy<Value = Headers> {
    let name = prop::sample::select(vec![
        "x-shopify-triggered-at",
        "shopify-triggered-at",
        "x-shopify-topic",
        "x-shopify-event-id",
        "x-shopify-webhook-id",
        "x-wc-webhook-topic",
        "x-wc-webhook-delivery-id",
        "saleor-event",
        "saleor-signature",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "stripe-signature",
        "x-github-event",
        "x-github-delivery",
        "x-hub-signature-256",
        "x-ecwid-webhook-signature",
        "x-shopify-hmac-sha256",
        "x-wc-webhook-signature",
    ]);
    prop::collection::vec((name, arb_header_value()), 0..8)
        .prop_map(|kv| kv.iter().map(|(k, v)| (*k, v.as_str())).collect())
}

fn run_all_topics(provider: Provider, body: &Value, snapshot: Option<&Snapshot>) {
    run_all_topics_with(provider, body, snapshot, &Headers::new());
}

fn run_all_topics_with(
    provider: Provider,
    body: &Value,
    snapshot: Option<&Snapshot>,
    headers: &Headers,
) {
    let body = &Json::from(body);
    for m in MAPPINGS.iter().filter(|m| m.provider == provider) {
        let result = normalize(
            provider,
            Input {
                topic: m.topic,
                headers,
                body,
                received_at: Utc::now(),
                snapshot,
                shop_locale: None,
            },
        );
        if let Err(rejection) = result {
            assert!(!rejection.reason().is_empty());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_never_panics(body in arb_json(), kept in arb_json(), text in ".{0,12}") {
        // A snapshot of an arbitrary resource, with arbitrary text where values are kept.
        let mut snapshot = match &kept {
            Value::Object(_) => Snapshot::of(Json::from(&kept).as_object().expect("object"), &[]),
            _ => Snapshot::default(),
        };
        snapshot.modified = Some(text.clone());
        snapshot.status = Some(text.clone());
        snapshot.paid_at = Some(text.clone());
        snapshot.customer_id = Some(text.clone());
        snapshot.refunds = vec![text];
        for provider in Provider::ALL {
            run_all_topics(provider, &body, None);
            run_all_topics(provider, &body, Some(&snapshot));
        }
    }

    #[test]
    fn mutated_real_payloads_never_panic(
        which in any::<prop::sample::Index>(),
        seed in any::<u64>(),
        with in arb_json(),
    ) {
        let all = bodies();
        let (provider, mut body) = all[which.index(all.len())].clone();
        mutate(&mut body, seed, with, 0);
        run_all_topics(provider, &body, None);
    }

    #[test]
    fn attacker_headers_never_panic(
        which in any::<prop::sample::Index>(),
        headers in arb_headers(),
    ) {
        let all = bodies();
        let (provider, body) = &all[which.index(all.len())];
        run_all_topics_with(*provider, body, None, &headers);
    }
}

#[test]
fn an_extended_year_in_triggered_at_is_no_panic() {
    // customers/redact takes its time from the unsigned header and adds the deadline.
    let body = json!({"shop_id": 1, "shop_domain": "a.myshopify.com",
                      "customer": {"id": 7, "email": "a@example.com"}, "orders_to_redact": []});
    for t in [
        "+262143-12-31T23:59:59Z",
        "+262142-12-31T23:59:59",
        "+262142-12-31 23:59:59",
        "Fri, 31 Dec 99999 23:59:59 +0000",
        "9999-12-31T23:59:59Z",
    ] {
        let headers: Headers = [("X-Shopify-Triggered-At", t)].into_iter().collect();
        for topic in [
            "customers/redact",
            "shop/redact",
            "returns/request",
            "returns/approve",
        ] {
            let _ = normalize(
                Provider::Shopify,
                Input {
                    topic,
                    headers: &headers,
                    body: &Json::from(&body),
                    received_at: Utc::now(),
                    snapshot: None,
                    shop_locale: None,
                },
            );
        }
    }
}
