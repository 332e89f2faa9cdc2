//! The fixtures' expected events (shared/fixtures/README.md §4), value by value.

use super::*;
use crate::fixtures::payload_fixture;
use serde_json::json;

fn run(provider: Provider, fixture: &str) -> Vec<Normalized> {
    let f = payload_fixture(fixture);
    let body: Value = serde_json::from_slice(&f.body).unwrap();
    let topic = f
        .headers
        .first(&["x-shopify-topic", "x-wc-webhook-topic"])
        .unwrap()
        .to_string();
    normalize(
        provider,
        Input {
            topic: &topic,
            headers: &f.headers,
            body: &body,
        },
    )
    .unwrap()
}

fn money(amount: &str, currency: &str) -> Value {
    json!({"amount": amount, "currency": currency})
}

#[test]
fn shopify_orders_create_becomes_order_created() {
    let events = run(Provider::Shopify, "shopify/orders-create");
    assert_eq!(events.len(), 1, "no order.paid from orders/create");
    let e = &events[0];
    assert_eq!(e.event_type, "order.created");
    assert_eq!(time::format(e.occurred_at), "2025-03-14T09:26:53Z");
    assert_eq!(e.subject, "order/5938201746113");
    let d = &e.data;
    assert_eq!(d["order_id"], "5938201746113");
    assert_eq!(d["order_number"], "#3108");
    assert_eq!(d["placed_at"], "2025-03-14T09:26:53Z");
    assert_eq!(d["currency"], "UAH");
    assert_eq!(d["total"], money("2300.00", "UAH"));
    assert_eq!(d["subtotal"], money("2220.00", "UAH"));
    assert_eq!(d["shipping"], money("80.00", "UAH"));
    assert_eq!(d["tax"], money("0.00", "UAH"));
    assert_eq!(d["discount"], money("0.00", "UAH"));
    assert_eq!(d["payment_state"], "paid");
    assert_eq!(
        d["provider_status"],
        json!({"financial_status": "paid", "fulfillment_status": null})
    );
    assert_eq!(
        d["customer"],
        json!({
            "customer_id": "7402918365521",
            "email": "severyna.tymoshchuk@example.com",
            "phone": "+380674419236",
            "name": "Северина Тимощук",
            "locale": "uk"
        })
    );
    assert_eq!(
        d["shipping_address"],
        json!({
            "name": "Северина Тимощук",
            "line1": "Відділення №214",
            "line2": "вул. Бориса Гмирі, 9",
            "city": "Київ",
            "postal_code": "02140",
            "country": "UA",
            "phone": "+380674419236"
        })
    );
    assert!(
        d["billing_address"].get("line2").is_none(),
        "empty address2 is dropped"
    );
    assert_eq!(
        d["lines"],
        json!([
            {"line_id": "14820397465113", "sku": "MH-GL-SV-15", "product_id": "8840192736551",
             "variant_id": "47302918465553", "title": "Глечик «Світанок», 1,5 л", "quantity": 1,
             "unit_price": money("1450.00", "UAH")},
            {"line_id": "14820397497881", "sku": "MH-HRN-350-BL", "product_id": "8840192769319",
             "variant_id": "47302918531089", "title": "Горнятко керамічне",
             "variant_title": "Синє / 350 мл", "quantity": 2,
             "unit_price": money("385.00", "UAH")}
        ])
    );
    let text = d.to_string();
    for never in [
        "198.51.100.23",
        "client_details",
        "Mozilla",
        "authenticate?key",
    ] {
        assert!(!text.contains(never), "{never} must not be copied");
    }
}

#[test]
fn woocommerce_order_created_becomes_order_created() {
    let events = run(Provider::Woocommerce, "woocommerce/order.created");
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.event_type, "order.created");
    assert_eq!(time::format(e.occurred_at), "2024-11-19T20:47:05Z");
    assert_eq!(e.subject, "order/52907");
    let d = &e.data;
    assert_eq!(d["order_id"], "52907");
    assert_eq!(d["order_number"], "52907");
    assert_eq!(d["placed_at"], "2024-11-19T20:47:05Z");
    assert_eq!(d["total"], money("320.99", "PLN"));
    assert_eq!(d["subtotal"], money("248.78", "PLN"));
    assert_eq!(d["shipping"], money("12.19", "PLN"));
    assert_eq!(d["tax"], money("60.02", "PLN"));
    assert_eq!(d["discount"], money("0.00", "PLN"));
    assert_eq!(d["payment_state"], "pending");
    assert_eq!(d["provider_status"], "pending");
    assert_eq!(
        d["customer"],
        json!({
            "customer_id": "1184",
            "email": "radoslaw.slezak@example.net",
            "phone": "+48 512 904 377",
            "name": "Radosław Ślęzak"
        })
    );
    assert_eq!(
        d["shipping_address"],
        json!({
            "name": "Radosław Ślęzak",
            "line1": "ul. Wrocławska 41/3",
            "city": "Opole",
            "postal_code": "45-836",
            "country": "PL"
        })
    );
    assert_eq!(
        d["lines"],
        json!([
            {"line_id": "91744", "sku": "WK-PR-L", "product_id": "3318",
             "title": "Kosz wiklinowy na pranie – duży", "quantity": 1,
             "unit_price": money("189.00", "PLN")},
            {"line_id": "91745", "sku": "WK-PIE-S", "product_id": "3407",
             "title": "Koszyczek na pieczywo", "quantity": 3,
             "unit_price": money("39.00", "PLN")}
        ])
    );
    let text = d.to_string();
    for never in [
        "203.0.113.57",
        "Firefox",
        "wc_order_73c5f4ad67dba",
        "cart_hash",
    ] {
        assert!(!text.contains(never), "{never} must not be copied");
    }
}

#[test]
fn rejections_name_the_field() {
    let headers = Headers::new();
    let mut body: Value =
        serde_json::from_slice(&payload_fixture("shopify/orders-create").body).unwrap();
    body["line_items"][1]["price"] = json!("12,50");
    let err = normalize(
        Provider::Shopify,
        Input {
            topic: "orders/create",
            headers: &headers,
            body: &body,
        },
    )
    .unwrap_err();
    assert!(err.reason().starts_with("line_items[1].price:"), "{err}");

    let err = normalize(
        Provider::Shopify,
        Input {
            topic: "carts/update",
            headers: &headers,
            body: &body,
        },
    )
    .unwrap_err();
    assert!(err.reason().contains("carts/update"), "{err}");
}

#[test]
fn never_panics_on_odd_shapes() {
    let headers = Headers::new();
    let odd = [
        json!(null),
        json!([]),
        json!("x"),
        json!({}),
        json!({"id": -1, "currency": "XYZ"}),
        json!({"id": 1, "currency": "EUR", "created_at": "2025-01-01T00:00:00Z",
               "total_price": "1.00", "line_items": [null, 3]}),
        json!({"id": 1.5, "status": 7, "line_items": {"a": 1}}),
    ];
    for provider in [Provider::Shopify, Provider::Woocommerce] {
        for topic in ["orders/create", "order.created"] {
            for body in &odd {
                let _ = normalize(
                    provider,
                    Input {
                        topic,
                        headers: &headers,
                        body,
                    },
                );
            }
        }
    }
}
