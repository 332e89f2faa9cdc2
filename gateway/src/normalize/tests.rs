//! The fixtures' expected events (the shared fixtures' README §4), value by value. Stories
//! are run in their documented order, carrying the kept snapshot from one delivery to the
//! next as the store would.

use super::*;
use crate::fixtures::payload_fixture;
use crate::json::Json;
use chrono::TimeZone;
use serde_json::json;
use std::collections::HashMap;

/// The pipeline's way to a provider's mapping, for tests that name the provider.
fn normalize(provider: Provider, input: Input<'_>) -> Result<Output, Rejection> {
    crate::providers::of(provider).normalizer.normalize(input)
}

fn snapshot_key(provider: Provider, topic: &str, body: &Value) -> Option<String> {
    (crate::providers::of(provider).normalizer.snapshot_key)(topic, &Json::from(body))
}

/// Runs fixtures in order, keeping a snapshot per resource like the pipeline does, and checks
/// every event against its type's JSON Schema as the pipeline would.
#[derive(Default)]
struct Story {
    snapshots: HashMap<String, Snapshot>,
    validators: Option<crate::validate::Validators>,
    /// The source's `options.locale`.
    shop_locale: Option<&'static str>,
}

impl Story {
    fn run(&mut self, provider: Provider, fixture: &str) -> Vec<Normalized> {
        let f = payload_fixture(fixture);
        let body: Value = serde_json::from_slice(&f.body).unwrap();
        let topic = f
            .headers
            .first(&["x-shopify-topic", "x-wc-webhook-topic"])
            .map(str::to_string)
            .or_else(|| body["type"].as_str().map(str::to_string))
            .or_else(|| body["scope"].as_str().map(str::to_string))
            .unwrap();
        let key = snapshot_key(provider, &topic, &body);
        let out = normalize(
            provider,
            Input {
                topic: &topic,
                headers: &f.headers,
                body: &Json::from(&body),
                received_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
                snapshot: key.as_ref().and_then(|k| self.snapshots.get(k)),
                shop_locale: self.shop_locale,
            },
        )
        .unwrap_or_else(|e| panic!("{fixture}: {e}"));
        if let (Some(k), Some(s)) = (key, out.snapshot) {
            self.snapshots.insert(k, s);
        }
        let validators = self
            .validators
            .get_or_insert_with(|| crate::validate::Validators::compile().unwrap());
        for e in &out.events {
            let event = json!({
                "id": "evt_test", "type": e.event_type, "schema_version": 1, "tenant": "t",
                "occurred_at": time::format(e.occurred_at), "received_at": "2026-01-01T00:00:00Z",
                "source": {"id": "src", "provider": provider.as_str(), "topic": topic},
                "subject": e.subject, "data": e.data(),
            });
            validators
                .check_event(e.event_type, &Json::from(&event))
                .unwrap_or_else(|err| panic!("{fixture}: {err}"));
        }
        out.events
    }

    fn one(&mut self, provider: Provider, fixture: &str) -> Normalized {
        let mut events = self.run(provider, fixture);
        assert_eq!(events.len(), 1, "{fixture}: {events:#?}");
        events.remove(0)
    }
}

fn money(amount: &str, currency: &str) -> Value {
    json!({"amount": amount, "currency": currency})
}

fn at(e: &Normalized) -> String {
    time::format(e.occurred_at)
}

#[test]
fn shopify_orders_create_becomes_order_created() {
    let e = Story::default().one(Provider::Shopify, "shopify/orders-create");
    assert_eq!(e.event_type, "order.created", "and no order.paid");
    assert_eq!(at(&e), "2025-03-14T09:26:53Z");
    assert_eq!(e.subject, "order/5938201746113");
    let d = &e.data();
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

/// Shop 1's whole story, in order: create, paid, updated, shipped, fulfilled, delivered,
/// return requested, refunded.
#[test]
fn shopify_order_story() {
    let mut s = Story::default();
    s.one(Provider::Shopify, "shopify/orders-create");

    let paid = s.one(Provider::Shopify, "shopify/orders-paid");
    assert_eq!(paid.event_type, "order.paid");
    assert_eq!(at(&paid), "2025-03-14T09:26:54Z");
    assert_eq!(paid.subject, "order/5938201746113");
    assert_eq!(paid.data()["amount"], money("2300.00", "UAH"));
    assert_eq!(paid.data()["paid_at"], "2025-03-14T09:26:54Z");
    assert_eq!(paid.data()["method"], "LiqPay");

    let updated = s.one(Provider::Shopify, "shopify/orders-updated");
    assert_eq!(updated.event_type, "order.updated");
    assert_eq!(at(&updated), "2025-03-14T13:02:11Z");
    assert_eq!(
        updated.data()["changed"],
        json!(["shipping_address", "tags"])
    );
    assert_eq!(updated.data()["changed_known"], true);
    assert_eq!(
        updated.data()["provider_status"],
        json!({"financial_status": "paid", "fulfillment_status": null})
    );

    let shipped = s.one(Provider::Shopify, "shopify/fulfillments-create");
    assert_eq!(shipped.event_type, "shipment.created");
    assert_eq!(at(&shipped), "2025-03-15T08:41:07Z");
    assert_eq!(shipped.subject, "order/5938201746113");
    let d = &shipped.data();
    assert_eq!(d["shipment_id"], "5301948276114");
    assert_eq!(d["order_id"], "5938201746113");
    assert_eq!(d["carrier"], "Nova Poshta");
    assert_eq!(d["tracking_number"], "20451038764219");
    assert_eq!(
        d["tracking_url"],
        "https://novaposhta.ua/tracking/?cargo_number=20451038764219"
    );
    assert_eq!(d["shipped_at"], "2025-03-15T08:41:07Z");
    let lines: Vec<(String, u64)> = d["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["line_id"].as_str().unwrap().into(),
                l["quantity"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [("14820397465113".into(), 1), ("14820397497881".into(), 2)]
    );

    let fulfilled = s.one(Provider::Shopify, "shopify/orders-fulfilled");
    assert_eq!(fulfilled.event_type, "order.fulfilled");
    assert_eq!(at(&fulfilled), "2025-03-15T08:41:07Z");
    assert_eq!(fulfilled.data()["fulfilled_at"], "2025-03-15T08:41:07Z");
    assert_eq!(fulfilled.data()["fully"], true);

    let delivered = s.one(Provider::Shopify, "shopify/fulfillments-update");
    assert_eq!(delivered.event_type, "shipment.updated");
    assert_eq!(at(&delivered), "2025-03-17T11:18:40Z");
    assert_eq!(delivered.data()["shipment_id"], "5301948276114");
    assert_eq!(delivered.data()["status"], "delivered");
    assert_eq!(delivered.data()["status_at"], "2025-03-17T11:18:40Z");

    let ret = s.one(Provider::Shopify, "shopify/returns-request");
    assert_eq!(ret.event_type, "return.requested");
    assert_eq!(at(&ret), "2025-03-20T07:55:12.418277153Z");
    assert_eq!(ret.subject, "return/8127364501");
    assert_eq!(ret.data()["return_id"], "8127364501");
    assert_eq!(ret.data()["order_id"], "5938201746113");
    assert_eq!(
        ret.data()["lines"],
        json!([{"line_id": "14820397497881", "quantity": 1, "reason_code": "defective",
                "reason_text": "Тріщина на ручці після першого миття"}])
    );
    assert_eq!(
        ret.data()["customer"],
        json!({"customer_id": "7402918365521"})
    );

    let refund = s.one(Provider::Shopify, "shopify/refunds-create");
    assert_eq!(refund.event_type, "refund.created");
    assert_eq!(at(&refund), "2025-03-24T10:06:31Z");
    let d = &refund.data();
    assert_eq!(d["refund_id"], "1039284756118");
    assert_eq!(d["order_id"], "5938201746113");
    assert_eq!(
        d["amount"],
        money("385.00", "UAH"),
        "the failed attempt does not count"
    );
    assert_eq!(d["reason"], "Повернення: тріщина на ручці");
    assert_eq!(d["status"], "succeeded");
    assert_eq!(d["created_at"], "2025-03-24T10:06:31Z");
    assert_eq!(d["return_id"], "8127364501");
    assert_eq!(d["lines"][0]["line_id"], "14820397497881");
    assert_eq!(d["lines"][0]["quantity"], 1);
    assert!(
        !d.to_string().contains("lq-rf-"),
        "authorizations are never copied"
    );
}

#[test]
fn shopify_updates_without_a_snapshot_say_so() {
    let events = Story::default().run(Provider::Shopify, "shopify/orders-updated");
    let updated = &events[0];
    assert_eq!(updated.event_type, "order.updated");
    assert_eq!(updated.data()["changed"], json!([]));
    assert_eq!(updated.data()["changed_known"], false);
    // And a return without the order kept has no customer.
    let ret = Story::default().one(Provider::Shopify, "shopify/returns-request");
    assert_eq!(ret.data()["customer"], json!({}));
}

#[test]
fn shopify_guest_order_cancelled() {
    let e = Story::default().one(Provider::Shopify, "shopify/orders-cancelled");
    assert_eq!(e.event_type, "order.cancelled");
    assert_eq!(at(&e), "2025-02-07T17:40:33Z");
    assert_eq!(e.subject, "order/6402193847552");
    assert_eq!(e.data()["cancelled_at"], "2025-02-07T17:40:33Z");
    assert_eq!(e.data()["reason"], "customer");
    assert_eq!(
        e.data()["refund_expected"],
        false,
        "voided: nothing was captured"
    );
}

/// Every `shipment_status` Shopify documents (fulfillments and fulfillment events) maps to
/// a canonical status; none is quarantined as unmapped.
#[test]
fn every_documented_shopify_shipment_status_is_mapped() {
    let f = payload_fixture("shopify/fulfillments-update");
    let body: Value = serde_json::from_slice(&f.body).unwrap();
    let headers = crate::headers::Headers::default();
    for (shopify, canonical) in [
        ("label_printed", "label_created"),
        ("label_purchased", "label_created"),
        ("confirmed", "label_created"),
        ("carrier_picked_up", "in_transit"),
        ("in_transit", "in_transit"),
        ("out_for_delivery", "out_for_delivery"),
        ("delayed", "delayed"),
        ("attempted_delivery", "attempted"),
        ("ready_for_pickup", "ready_for_pickup"),
        ("picked_up", "delivered"),
        ("delivered", "delivered"),
        ("failure", "failed"),
    ] {
        let mut body = body.clone();
        body["shipment_status"] = json!(shopify);
        let out = normalize(
            Provider::Shopify,
            Input {
                topic: "fulfillments/update",
                headers: &headers,
                body: &Json::from(&body),
                received_at: Utc::now(),
                snapshot: None,
                shop_locale: None,
            },
        )
        .unwrap_or_else(|r| panic!("{shopify}: {r:?}"));
        assert_eq!(out.events.len(), 1, "{shopify}");
        assert_eq!(out.events[0].data()["status"], canonical, "{shopify}");
    }
}

#[test]
fn shopify_customer_story() {
    let mut s = Story::default();
    let created = s.one(Provider::Shopify, "shopify/customers-create");
    assert_eq!(created.event_type, "customer.created");
    assert_eq!(at(&created), "2025-04-02T07:14:26Z");
    assert_eq!(created.subject, "customer/8891027364519");
    let d = &created.data();
    assert_eq!(d["customer_id"], "8891027364519");
    assert_eq!(d["email"], "stefania.vladescu@example.org");
    assert_eq!(d["phone"], "+40744902318");
    assert_eq!(d["first_name"], "Ștefania");
    assert_eq!(
        d["first_name"].as_str().unwrap().chars().next(),
        Some('\u{0218}')
    );
    assert_eq!(d["last_name"], "Vlădescu");
    assert_eq!(d["marketing_consent"], json!({"email": true, "sms": false}));
    assert_eq!(
        d["default_address"],
        json!({"name": "Ștefania Vlădescu", "line1": "Strada Memorandumului 21", "line2": "ap. 7",
               "city": "Cluj-Napoca", "postal_code": "400114", "region": "CJ", "country": "RO",
               "phone": "+40744902318"})
    );

    let updated = s.one(Provider::Shopify, "shopify/customers-update");
    assert_eq!(updated.event_type, "customer.updated");
    assert_eq!(at(&updated), "2025-05-11T18:03:57Z");
    assert_eq!(updated.data()["phone"], "+40756318820");
    assert_eq!(
        updated.data()["marketing_consent"],
        json!({"email": false, "sms": false})
    );
    assert_eq!(updated.data()["first_name"], "Ștefania");
}

#[test]
fn woocommerce_order_created_becomes_order_created() {
    let e = Story::default().one(Provider::Woocommerce, "woocommerce/order.created");
    assert_eq!(e.event_type, "order.created");
    assert_eq!(at(&e), "2024-11-19T20:47:05Z");
    assert_eq!(e.subject, "order/52907");
    let d = &e.data();
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

/// customer.created → order.created → processing → completed → refunded.
#[test]
fn woocommerce_order_story() {
    let mut s = Story::default();
    let c = s.one(Provider::Woocommerce, "woocommerce/customer.created");
    assert_eq!(c.event_type, "customer.created");
    assert_eq!(at(&c), "2024-11-19T20:39:12Z");
    assert_eq!(c.subject, "customer/1184");
    assert_eq!(
        c.data(),
        json!({
            "customer_id": "1184",
            "email": "radoslaw.slezak@example.net",
            "phone": "+48 512 904 377",
            "first_name": "Radosław",
            "last_name": "Ślęzak",
            "default_address": {"name": "Radosław Ślęzak", "line1": "ul. Wrocławska 41/3",
                                "city": "Opole", "postal_code": "45-836", "country": "PL",
                                "phone": "+48 512 904 377"},
            "created_at": "2024-11-19T20:39:12Z",
            "updated_at": "2024-11-19T20:39:12Z"
        })
    );

    s.one(Provider::Woocommerce, "woocommerce/order.created");

    let paid = s.one(
        Provider::Woocommerce,
        "woocommerce/order.updated-processing",
    );
    assert_eq!(paid.event_type, "order.paid", "and no order.updated");
    assert_eq!(at(&paid), "2024-11-19T20:49:29Z");
    assert_eq!(paid.data()["amount"], money("320.99", "PLN"));
    assert_eq!(paid.data()["paid_at"], "2024-11-19T20:49:29Z");
    assert_eq!(paid.data()["method"], "przelewy24");
    assert_eq!(paid.data()["reference"], "P24-7Q2M-KX9D-3WHF");

    let fulfilled = s.one(Provider::Woocommerce, "woocommerce/order.updated-completed");
    assert_eq!(fulfilled.event_type, "order.fulfilled");
    assert_eq!(at(&fulfilled), "2024-11-21T09:05:44Z");
    assert_eq!(fulfilled.data()["fulfilled_at"], "2024-11-21T09:05:44Z");
    assert_eq!(fulfilled.data()["fully"], true);

    let refunded = s.run(Provider::Woocommerce, "woocommerce/order.updated-refunded");
    let types: Vec<&str> = refunded.iter().map(|e| e.event_type).collect();
    assert_eq!(types, ["refund.created", "order.updated"]);
    let r = &refunded[0];
    assert_eq!(at(r), "2024-12-02T13:31:18Z");
    assert_eq!(r.data()["refund_id"], "53140");
    assert_eq!(r.data()["order_id"], "52907");
    assert_eq!(r.data()["amount"], money("320.99", "PLN"));
    assert_eq!(r.data()["reason"], "Reklamacja – uszkodzony splot");
    assert_eq!(r.data()["status"], "succeeded");
    assert_eq!(r.data()["created_at"], "2024-12-02T13:31:18Z");
    assert_eq!(r.fact.as_deref(), Some("refund:53140"));
    let u = &refunded[1];
    assert_eq!(at(u), "2024-12-02T13:31:18Z");
    assert_eq!(u.data()["provider_status"], "refunded");
    assert_eq!(u.data()["status"], "refunded");
    let data = u.data();
    let changed: Vec<&str> = data["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        changed.contains(&"status") && changed.contains(&"refunds"),
        "{changed:?}"
    );

    // Any delivery of the story again says nothing new.
    for f in [
        "woocommerce/order.updated-processing",
        "woocommerce/order.updated-completed",
        "woocommerce/order.updated-refunded",
    ] {
        assert!(s.run(Provider::Woocommerce, f).is_empty(), "{f} again");
    }
}

#[test]
fn woocommerce_refund_without_snapshot() {
    let events = Story::default().run(Provider::Woocommerce, "woocommerce/order.updated-refunded");
    let types: Vec<&str> = events.iter().map(|e| e.event_type).collect();
    assert_eq!(types, ["refund.created", "order.paid", "order.updated"]);
    assert_eq!(events[0].data()["amount"], money("320.99", "PLN"));
    assert_eq!(events[2].data()["changed_known"], false);
}

/// Connected mid-life (or the snapshot expired): an update still tells the facts its body
/// shows, with the ids a kept snapshot would have given them, besides `order.updated`.
#[test]
fn woocommerce_facts_without_a_snapshot() {
    let fixture = payload_fixture("woocommerce/order.updated-refunded");
    let body: Value = serde_json::from_slice(&fixture.body).unwrap();
    let run = |status: &str, paid: bool| {
        let mut b = body.clone();
        b["status"] = json!(status);
        b["refunds"] = json!([]);
        if !paid {
            b["date_paid"] = Value::Null;
            b["date_paid_gmt"] = Value::Null;
        }
        let out = normalize(
            Provider::Woocommerce,
            Input {
                topic: "order.updated",
                headers: &Headers::new(),
                body: &Json::from(&b),
                received_at: Utc::now(),
                snapshot: None,
                shop_locale: None,
            },
        )
        .unwrap();
        out.events
            .iter()
            .map(|e| (e.event_type, e.fact_key()))
            .collect::<Vec<_>>()
    };
    fn types(v: &[(&'static str, String)]) -> Vec<&'static str> {
        v.iter().map(|(t, _)| *t).collect()
    }
    assert_eq!(
        types(&run("cancelled", false)),
        ["order.cancelled", "order.updated"]
    );
    assert_eq!(
        types(&run("completed", true)),
        ["order.paid", "order.fulfilled", "order.updated"]
    );
    assert_eq!(
        types(&run("processing", true)),
        ["order.paid", "order.updated"]
    );
    assert_eq!(types(&run("on-hold", false)), ["order.updated"]);
    // The same facts a story with the snapshot kept would tell: the same ids.
    let id = body["id"].to_string();
    let facts = run("completed", true);
    assert_eq!(facts[0].1, format!("order:{id}:paid"));
    assert_eq!(facts[1].1, format!("order:{id}:fulfilled"));
}

/// Shopify: an `orders/updated` without a snapshot tells what its body shows, with the id
/// the dedicated topic gives the same fact, so whichever arrives first is kept once.
#[test]
fn shopify_facts_without_a_snapshot_share_the_dedicated_topics_ids() {
    let updated = Story::default().run(Provider::Shopify, "shopify/orders-updated");
    let paid = Story::default().one(Provider::Shopify, "shopify/orders-paid");
    let derived = updated
        .iter()
        .find(|e| e.event_type == "order.paid")
        .expect("a paid order's update tells order.paid");
    assert_eq!(derived.subject, paid.subject);
    assert_eq!(derived.fact_key(), paid.fact_key());
    // With the order kept, an update says only what changed.
    let mut story = Story::default();
    story.run(Provider::Shopify, "shopify/orders-create");
    let types: Vec<&str> = story
        .run(Provider::Shopify, "shopify/orders-updated")
        .iter()
        .map(|e| e.event_type)
        .collect();
    assert!(!types.contains(&"order.paid"), "{types:?}");
}

#[test]
fn rejections_name_the_field() {
    let headers = Headers::new();
    let mut body: Value =
        serde_json::from_slice(&payload_fixture("shopify/orders-create").body).unwrap();
    body["line_items"][1]["price"] = json!("12,50");
    let body = Json::from(&body);
    let input = |topic| Input {
        topic,
        headers: &headers,
        body: &body,
        received_at: Utc::now(),
        snapshot: None,
        shop_locale: None,
    };
    let err = normalize(Provider::Shopify, input("orders/create")).unwrap_err();
    assert!(err.reason().starts_with("line_items[1].price:"), "{err}");
    let err = normalize(Provider::Shopify, input("carts/update")).unwrap_err();
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
        json!({"id": 1.5, "status": 7, "line_items": {"a": 1}, "refunds": [{"id": null}]}),
        json!({"id": 1, "order": {"id": []}, "return_line_items": [{}], "transactions": [{}]}),
        json!({"id": "evt", "created": 1, "data": {"object": {"id": "x", "currency": "zzz",
               "amount": 1.5, "refunds": {"data": [{}]}, "metadata": {"order_id": 3}}}}),
        json!({"data": {"object": []}}),
    ];
    let snapshots = [
        None,
        Some(Snapshot::default()),
        Some(Snapshot {
            modified: Some("x".into()),
            status: Some("".into()),
            fields: snapshot::Fingerprints::from_pairs([("id", 3)]),
            refunds: vec!["".into()],
            ..Snapshot::default()
        }),
    ];
    let topics = [
        (
            Provider::Shopify,
            vec![
                "orders/create",
                "orders/updated",
                "orders/paid",
                "orders/cancelled",
                "orders/fulfilled",
                "fulfillments/create",
                "fulfillments/update",
                "refunds/create",
                "returns/request",
                "returns/approve",
                "customers/create",
                "customers/update",
                "customers/redact",
                "shop/redact",
                "inventory_levels/update",
            ],
        ),
        (
            Provider::Woocommerce,
            vec![
                "order.created",
                "order.updated",
                "customer.created",
                "customer.updated",
                "customer.deleted",
                "product.updated",
            ],
        ),
    ];
    for (provider, topics) in &topics {
        for topic in topics {
            for body in &odd {
                for kept in &snapshots {
                    let _ = normalize(
                        *provider,
                        Input {
                            topic,
                            headers: &headers,
                            body: &Json::from(body),
                            received_at: Utc::now(),
                            snapshot: kept.as_ref(),
                            shop_locale: None,
                        },
                    );
                }
            }
        }
    }
}

#[test]
fn every_mapped_topic_has_a_payload_schema_and_a_normalizer() {
    let validators = crate::validate::Validators::compile().unwrap();
    let headers = Headers::new();
    for m in MAPPINGS {
        // The schema exists (an empty object fails it for a reason other than "no schema").
        let err = validators
            .check_payload(m.provider, m.resource, &Json::Null)
            .unwrap_err();
        assert!(!err.reason().starts_with("no "), "{}: {err}", m.topic);
        // The normalizer knows the topic (it may still reject the empty body).
        let err = normalize(
            m.provider,
            Input {
                topic: m.topic,
                headers: &headers,
                body: &Json::Object(Default::default()),
                received_at: Utc::now(),
                snapshot: None,
                shop_locale: None,
            },
        );
        if let Err(e) = err {
            assert!(!e.reason().contains("not mapped"), "{}: {e}", m.topic);
        }
    }
    assert_eq!(
        crate::providers::of(Provider::Shopify).resource("carts/update"),
        None
    );
}

#[test]
fn stripe_payment_intent_succeeded_becomes_order_paid() {
    let e = Story::default().one(Provider::Stripe, "stripe/payment_intent.succeeded");
    assert_eq!(e.event_type, "order.paid");
    assert_eq!(at(&e), "2025-05-20T13:47:18Z");
    assert_eq!(e.subject, "order/100482");
    assert_eq!(e.data()["order_id"], "100482");
    assert_eq!(e.data()["amount"], money("347.50", "RON"));
    assert_eq!(e.data()["paid_at"], "2025-05-20T13:47:18Z");
    assert_eq!(e.data()["method"], "card");
    let text = e.data.to_string();
    for never in ["client_secret", "_secret_", "madalin.turcanu", "Brașov"] {
        assert!(!text.contains(never), "{never} must not be copied");
    }
}

#[test]
fn stripe_charge_refunded_becomes_refund_created_once() {
    let mut s = Story::default();
    let e = s.one(Provider::Stripe, "stripe/charge.refunded");
    assert_eq!(e.event_type, "refund.created");
    assert_eq!(at(&e), "2025-02-25T16:47:39Z");
    assert_eq!(e.subject, "order/250731");
    assert_eq!(e.data()["refund_id"], "re_3QuN5tHr8YbE2cVd0Zr9Tq2M");
    assert_eq!(e.data()["order_id"], "250731");
    assert_eq!(e.data()["amount"], money("43.00", "USD"));
    assert_eq!(e.data()["reason"], "requested_by_customer");
    assert_eq!(e.data()["status"], "succeeded");
    assert_eq!(e.data()["created_at"], "2025-02-25T16:47:39Z");
    assert!(
        !e.data.to_string().contains("3155"),
        "card details are never copied"
    );
    // The same refund told again (a later charge.refunded, or refund.created) is not new.
    assert!(s.run(Provider::Stripe, "stripe/charge.refunded").is_empty());
    let f = payload_fixture("stripe/charge.refunded");
    let body: Value = serde_json::from_slice(&f.body).unwrap();
    let refund = body["data"]["object"]["refunds"]["data"][0].clone();
    let refund_event = json!({"id": "evt_x", "type": "refund.created", "created": 1740502060,
                              "data": {"object": refund}});
    let key = snapshot_key(Provider::Stripe, "refund.created", &refund_event).unwrap();
    assert_eq!(key, "charge:ch_3QuN5tHr8YbE2cVd0K7mWx1P");
    let out = normalize(
        Provider::Stripe,
        Input {
            topic: "refund.created",
            headers: &Headers::new(),
            body: &Json::from(&refund_event),
            received_at: Utc::now(),
            snapshot: s.snapshots.get(&key),
            shop_locale: None,
        },
    )
    .unwrap();
    assert!(out.events.is_empty());
}

#[test]
fn stripe_payments_without_an_order_link_are_rejected_by_name() {
    let f = payload_fixture("stripe/payment_intent.succeeded");
    let mut body: Value = serde_json::from_slice(&f.body).unwrap();
    body["data"]["object"]["metadata"] = json!({});
    let err = normalize(
        Provider::Stripe,
        Input {
            topic: "payment_intent.succeeded",
            headers: &Headers::new(),
            body: &Json::from(&body),
            received_at: Utc::now(),
            snapshot: None,
            shop_locale: None,
        },
    )
    .unwrap_err();
    assert!(err.reason().contains("metadata.order_id"), "{err}");
}

#[test]
fn thin_fixtures_carry_ids_and_say_they_are_pending() {
    let bc = Story::default().one(Provider::Bigcommerce, "bigcommerce/store-order-created");
    assert_eq!(bc.event_type, "order.created");
    assert_eq!(at(&bc), "2025-02-18T11:02:23Z");
    assert_eq!(bc.subject, "order/250731");
    assert_eq!(
        bc.data(),
        json!({"enrichment": "pending", "order_id": "250731"})
    );

    let sw = Story::default().one(Provider::StandardWebhooks, "standard-webhooks/order.placed");
    assert_eq!(sw.event_type, "order.created");
    assert_eq!(at(&sw), "2025-06-03T08:15:42Z");
    assert_eq!(sw.subject, "order/order_01JWZ4K8R2N6T0V3X5Q7M9B1CD");
    assert_eq!(sw.data()["enrichment"], "pending");
}

fn sample(provider: Provider, topic: &str) -> Vec<Normalized> {
    let s = crate::samples::SAMPLES
        .iter()
        .find(|s| s.provider == provider && s.topic == topic)
        .unwrap();
    let body: Value = serde_json::from_str(s.body).unwrap();
    let headers: Headers = [("webhook-timestamp", "1739876600")].into_iter().collect();
    normalize(
        provider,
        Input {
            topic,
            headers: &headers,
            body: &Json::from(&body),
            received_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            snapshot: None,
            shop_locale: None,
        },
    )
    .unwrap()
    .events
}

#[test]
fn samples_map_their_values() {
    let e = &sample(Provider::Etsy, "order.paid")[0];
    assert_eq!(e.data()["order_id"], "3412908765");
    assert_eq!(
        at(e),
        "2025-02-18T11:03:20Z",
        "the signed webhook-timestamp"
    );

    let e = &sample(Provider::Bigcommerce, "store/sku/inventory/updated")[0];
    assert_eq!(e.data()["method"], "relative");
    assert_eq!(e.data()["delta"], -2);
    assert_eq!(e.data()["product_id"], "611");
    assert_eq!(e.data()["variant_id"], "1207");

    let e = &sample(Provider::Bigcommerce, "store/order/statusUpdated")[0];
    assert_eq!(e.event_type, "order.paid");
    assert_eq!(
        e.data()["provider_status"],
        json!({"previous_status_id": 7, "new_status_id": 11})
    );

    // Ecwid signs only eventCreated.eventId: the unsigned status change decides nothing.
    let events = sample(Provider::Ecwid, "order.updated");
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.event_type, "order.updated");
    assert_eq!(e.data()["order_id"], "20079");
    assert_eq!(e.data()["enrichment"], "pending");
    assert_eq!(at(e), "2025-05-22T07:56:40Z");

    let e = &sample(Provider::Stripe, "checkout.session.completed")[0];
    assert_eq!(
        e.data()["order_id"],
        "100517",
        "client_reference_id when no metadata"
    );
    assert_eq!(e.data()["amount"], money("129.00", "EUR"));

    let e = &sample(Provider::Stripe, "charge.dispute.created")[0];
    assert_eq!(e.data()["amount"], money("347.50", "RON"));
    assert_eq!(e.data()["reason"], "product_not_received");
    assert_eq!(e.data()["due_by"], "2025-06-12T23:59:59Z");

    let e = &sample(Provider::Shopify, "customers/redact")[0];
    assert_eq!(e.data()["customer_id"], "7402918365521");
    assert_eq!(e.data()["scope"], "customer");
    assert_eq!(e.data()["orders_to_redact"], json!(["5938201746113"]));
    assert_eq!(
        e.data()["deadline"],
        "2026-01-31T00:00:00Z",
        "30 days to comply"
    );

    let e = &sample(Provider::Shopify, "inventory_levels/update")[0];
    assert_eq!(e.data()["inventory_item_id"], "49148385011859");
    assert_eq!(e.data()["available"], 11);
    assert_eq!(e.subject, "inventory_item/49148385011859");

    let e = &sample(Provider::Woocommerce, "product.updated")[0];
    assert_eq!(e.data()["available"], 7);
    assert_eq!(e.data()["sku"], "WK-PR-L");
}

#[test]
fn saleor_float_money_becomes_exact_strings() {
    let e = &sample(Provider::Saleor, "ORDER_CREATED")[0];
    assert_eq!(e.data()["order_number"], "1042");
    assert_eq!(e.data()["total"], money("84.90", "EUR"));
    assert_eq!(e.data()["tax"], money("14.15", "EUR"));
    assert_eq!(e.data()["shipping"], money("5.00", "EUR"));
    assert_eq!(e.data()["lines"][0]["unit_price"], money("39.95", "EUR"));
    assert_eq!(e.data()["shipping_address"]["country"], "FR");
    assert_eq!(e.data()["payment_state"], "paid");
    assert_eq!(at(e), "2025-06-01T09:58:12.118322Z");
    let r = &sample(Provider::Saleor, "ORDER_REFUNDED")[0];
    assert_eq!(r.data()["amount"], money("39.95", "EUR"));
    assert_eq!(
        r.fact.as_deref(),
        Some("refund:T3JkZXI6MmQ0ZjY5YjItN2E0Ny00ZjQ3LWE3YjgtMDFhYzI4OTVjOGEx:refunded:39.95")
    );
}

#[test]
fn shipments_and_returns_carry_their_order_s_number_and_language() {
    let mut story = Story {
        shop_locale: Some("pl"),
        ..Story::default()
    };
    story.one(Provider::Shopify, "shopify/orders-create");
    for fixture in [
        "shopify/fulfillments-create",
        "shopify/fulfillments-update",
        "shopify/returns-request",
    ] {
        let e = story.one(Provider::Shopify, fixture);
        assert_eq!(e.data()["order_number"], "#3108", "{fixture}");
        assert_eq!(
            e.data()["locale"],
            "uk",
            "{fixture}: the order's, not the shop's"
        );
    }

    // Without the order (never sent, or its snapshot expired), the shop's language fills in,
    // and no number is made up.
    let mut alone = Story {
        shop_locale: Some("pl"),
        ..Story::default()
    };
    let e = alone.one(Provider::Shopify, "shopify/fulfillments-create");
    assert_eq!(e.data()["locale"], "pl");
    assert!(e.data().get("order_number").is_none());
    let e = Story::default().one(Provider::Shopify, "shopify/fulfillments-update");
    assert!(e.data().get("locale").is_none());
}

#[test]
fn a_snapshot_keeps_the_order_number_and_language() {
    let snap = Snapshot {
        order_number: Some("#3108".into()),
        locale: Some("uk".into()),
        ..Snapshot::default()
    };
    let fields: Vec<(String, Vec<u8>)> = snap
        .clone()
        .into_fields()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(Snapshot::from_fields(&fields), Some(snap));
}
