//! PII redaction on real Redis: a plugin installed without `customer_pii` receives events
//! without what their schemas mark `x-pii` (free text, tracking URLs, addresses, contact
//! data), a plugin with the scope receives them whole, and a plugin-published event is
//! redacted by the schema its publisher registered.

use omnigate::store::Retention;
use omnigate_tests::{Gateway, Plugin, fixture_time, payload_fixture, redis_store};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Pulls (and acknowledges) until `n` events arrived; returns their `data` by type.
async fn take(gw: &Gateway, p: &Plugin, n: usize) -> std::collections::BTreeMap<String, Value> {
    let mut got = std::collections::BTreeMap::new();
    for _ in 0..20 {
        let (status, body) = gw
            .plugin_call(p, "/v1/inbox/pull", json!({"max": 50, "wait_ms": 500}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let deliveries = body["deliveries"].as_array().unwrap();
        let receipts: Vec<Value> = deliveries.iter().map(|d| d["receipt"].clone()).collect();
        if !receipts.is_empty() {
            let (status, _) = gw
                .plugin_call(p, "/v1/inbox/ack", json!({"receipts": receipts}))
                .await;
            assert_eq!(status, StatusCode::OK);
        }
        for d in deliveries {
            let event_type = d["event"]["type"].as_str().unwrap().to_string();
            assert!(
                got.insert(event_type, d["event"]["data"].clone()).is_none(),
                "one event per type"
            );
        }
        if got.len() >= n {
            break;
        }
    }
    got
}

/// A `loyalty.member.joined` schema marking personal data below the top level: behind a
/// `$ref`, on a field no key-name list knows, and in array items.
fn member_schema() -> Value {
    json!({
        "type": "object",
        "required": ["member", "balance"],
        "properties": {
            "balance": {"type": "integer"},
            "member": {"$ref": "#/$defs/Member"},
            "history": {"type": "array", "items": {
                "type": "object",
                "properties": {"points": {"type": "integer"},
                               "note": {"type": "string", "x-pii": true}}}}
        },
        "$defs": {
            "Member": {
                "type": "object",
                "required": ["member_id"],
                "properties": {
                    "member_id": {"type": "string"},
                    "tier": {"type": "string"},
                    "email": {"type": "string", "x-pii": true},
                    "greeting": {"type": "string", "x-pii": true}
                }
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_without_customer_pii_get_no_free_text_urls_or_marked_fields() {
    let fixtures = [
        payload_fixture("shopify/returns-request"),
        payload_fixture("shopify/fulfillments-create"),
        payload_fixture("shopify/refunds-create"),
    ];
    let first = fixtures.iter().map(fixture_time).min().unwrap();
    let gw = Gateway::start(redis_store(Retention::default()).await, first).await;
    let subscriptions = json!([
        "return.requested",
        "shipment.created",
        "refund.created",
        "loyalty.*"
    ]);
    // The publisher first: a subscription must name a type someone declares.
    let loyalty = gw
        .register_plugin(json!({"name": "Loyalty", "event_types": ["order.paid"],
               "publishes": [{"type": "loyalty.member.joined", "schema": member_schema()}]}))
        .await;
    let blind = gw
        .register_plugin(json!({"name": "Blind", "event_types": subscriptions}))
        .await;
    let trusted = gw
        .register_plugin(json!({"name": "Trusted", "event_types": subscriptions}))
        .await;
    gw.install(&blind, "pii-shop", json!(["events:read"])).await;
    gw.install(&trusted, "pii-shop", json!(["events:read", "customer_pii"]))
        .await;
    gw.install(&loyalty, "pii-shop", json!(["events:publish"]))
        .await;

    let source = gw.source_for(&fixtures[0], "pii-shop").await;
    for f in &fixtures {
        gw.clock.set(fixture_time(f));
        let res = gw.deliver_fixture(&source.id, f).await;
        assert_eq!(res.status(), StatusCode::ACCEPTED, "{}", f.name);
    }
    let (status, body) = gw
        .plugin_call(
            &loyalty,
            "/v1/events",
            json!({"tenant": "pii-shop", "type": "loyalty.member.joined",
               "data": {"balance": 23,
                        "member": {"member_id": "m-7", "tier": "gold",
                                   "email": "severyna.tymoshchuk@example.com",
                                   "greeting": "З днем народження, Северино!"},
                        "history": [{"points": 23, "note": "Birthday of Severyna"}]}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    let types = [
        "loyalty.member.joined",
        "refund.created",
        "return.requested",
        "shipment.created",
    ];
    let seen = take(&gw, &blind, 4).await;
    assert_eq!(seen.keys().collect::<Vec<_>>(), types);
    let whole = take(&gw, &trusted, 4).await;
    assert_eq!(whole.keys().collect::<Vec<_>>(), types);

    // A return's reason in the customer's words.
    let line = &seen["return.requested"]["lines"][0];
    assert!(line.get("reason_text").is_none(), "{line}");
    assert_eq!(line["reason_code"], "defective");
    assert_eq!(
        whole["return.requested"]["lines"][0]["reason_text"],
        "Тріщина на ручці після першого миття"
    );

    // A shipment's tracking URL and address; the tracking number stays.
    let shipment = &seen["shipment.created"];
    assert!(shipment.get("tracking_url").is_none(), "{shipment}");
    assert!(shipment.get("destination").is_none(), "{shipment}");
    assert_eq!(shipment["tracking_number"], "20451038764219");
    assert_eq!(
        whole["shipment.created"]["tracking_url"],
        "https://novaposhta.ua/tracking/?cargo_number=20451038764219"
    );
    assert_eq!(whole["shipment.created"]["destination"]["city"], "Київ");

    // A refund's note.
    assert!(seen["refund.created"].get("reason").is_none());
    assert_eq!(seen["refund.created"]["amount"]["amount"], "385.00");
    assert_eq!(
        whole["refund.created"]["reason"],
        "Повернення: тріщина на ручці"
    );

    // The plugin's event, by the plugin's schema.
    assert_eq!(
        seen["loyalty.member.joined"],
        json!({"balance": 23, "member": {"member_id": "m-7", "tier": "gold"},
               "history": [{"points": 23}]})
    );
    assert_eq!(
        whole["loyalty.member.joined"]["member"]["greeting"],
        "З днем народження, Северино!"
    );
    assert_eq!(
        whole["loyalty.member.joined"]["history"][0]["note"],
        "Birthday of Severyna"
    );
    let text = serde_json::to_string(&seen).unwrap();
    for personal in ["Severyna", "Северин", "novaposhta.ua", "Тріщина", "тріщина"]
    {
        assert!(!text.contains(personal), "{personal} reached the plugin");
    }
    gw.stop().await;
}
