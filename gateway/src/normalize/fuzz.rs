//! Normalisers never panic, whatever JSON arrives: arbitrary values, and every fixture and
//! sample with fields removed, retyped or replaced at random. What cannot be mapped is a
//! rejection with a reason.

use super::*;
use proptest::prelude::*;
use serde_json::{Map, json};

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

fn run_all_topics(provider: Provider, body: &Value, state: Option<&Value>) {
    let headers = Headers::new();
    for m in MAPPINGS.iter().filter(|m| m.provider == provider) {
        let result = normalize(
            provider,
            Input {
                topic: m.topic,
                headers: &headers,
                body,
                received_at: Utc::now(),
                state,
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
    fn arbitrary_json_never_panics(body in arb_json(), state in arb_json()) {
        for provider in Provider::ALL {
            run_all_topics(provider, &body, None);
            run_all_topics(provider, &body, Some(&state));
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
}
