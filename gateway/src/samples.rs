//! Sample payloads bundled with the binary: one per mapped topic the shared fixtures do not
//! cover, and copies of the fixtures' main order story. Each says the events it becomes
//! (on a shop with no earlier state). Tests send every one through the gateway; `omnigate
//! trigger` sends them to a running one.

use chrono::{DateTime, Duration, Utc};
use omnigate_schemas::api::Provider;
use serde_json::Value;
use std::collections::HashMap;

use crate::normalize::time;

/// A throwaway RSA key (PKCS#8 PEM) that signs the Saleor samples; its public half is
/// `sign::saleor_jwks(SALEOR_TEST_KEY)`. Never use it for a real shop.
pub const SALEOR_TEST_KEY: &str = include_str!("../samples/saleor/test-signing-key.pem");

#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub provider: Provider,
    /// The sample's file name (e.g. `orders-create.json`).
    pub name: &'static str,
    pub topic: &'static str,
    pub body: &'static str,
    /// The event types it becomes, in order.
    pub events: &'static [&'static str],
}

macro_rules! sample {
    ($provider:ident, $topic:literal, $file:literal, [$($event:literal),*]) => {
        Sample {
            provider: Provider::$provider,
            name: {
                let file = $file;
                let (_, stem) = file.split_at(const_find_slash(file) + 1);
                stem
            },
            topic: $topic,
            body: include_str!(concat!("../samples/", $file)),
            events: &[$($event),*],
        }
    };
}

/// The index of the last `/` (compile time).
const fn const_find_slash(s: &str) -> usize {
    let bytes = s.as_bytes();
    let mut i = bytes.len();
    while i > 0 {
        i -= 1;
        if bytes[i] == b'/' {
            return i;
        }
    }
    0
}

pub const SAMPLES: &[Sample] = &[
    // Copies of shared fixture bodies, so `omnigate trigger` can send a whole order story.
    sample!(
        Shopify,
        "orders/create",
        "shopify/orders-create.json",
        ["order.created"]
    ),
    sample!(
        Shopify,
        "orders/paid",
        "shopify/orders-paid.json",
        ["order.paid"]
    ),
    sample!(
        Shopify,
        "orders/cancelled",
        "shopify/orders-cancelled.json",
        ["order.cancelled"]
    ),
    sample!(
        Shopify,
        "fulfillments/create",
        "shopify/fulfillments-create.json",
        ["shipment.created"]
    ),
    sample!(
        Shopify,
        "fulfillments/update",
        "shopify/fulfillments-update.json",
        ["shipment.updated"]
    ),
    sample!(
        Shopify,
        "returns/request",
        "shopify/returns-request.json",
        ["return.requested"]
    ),
    sample!(
        Shopify,
        "refunds/create",
        "shopify/refunds-create.json",
        ["refund.created"]
    ),
    sample!(
        Shopify,
        "customers/create",
        "shopify/customers-create.json",
        ["customer.created"]
    ),
    sample!(
        Woocommerce,
        "order.created",
        "woocommerce/order.created.json",
        ["order.created"]
    ),
    // On a shop that has seen the order before, these are order.paid, order.fulfilled and
    // refund.created + order.updated; alone (no kept state), each tells every fact its body
    // shows, besides order.updated.
    sample!(
        Woocommerce,
        "order.updated",
        "woocommerce/order.updated-processing.json",
        ["order.paid", "order.updated"]
    ),
    sample!(
        Woocommerce,
        "order.updated",
        "woocommerce/order.updated-completed.json",
        ["order.paid", "order.fulfilled", "order.updated"]
    ),
    sample!(
        Woocommerce,
        "order.updated",
        "woocommerce/order.updated-refunded.json",
        ["refund.created", "order.paid", "order.updated"]
    ),
    sample!(
        Stripe,
        "payment_intent.succeeded",
        "stripe/payment_intent.succeeded.json",
        ["order.paid"]
    ),
    sample!(
        Saleor,
        "ORDER_CREATED",
        "saleor/ORDER_CREATED.json",
        ["order.created"]
    ),
    sample!(
        Saleor,
        "ORDER_FULLY_PAID",
        "saleor/ORDER_FULLY_PAID.json",
        ["order.paid"]
    ),
    sample!(
        Saleor,
        "FULFILLMENT_CREATED",
        "saleor/FULFILLMENT_CREATED.json",
        ["shipment.created"]
    ),
    sample!(
        Saleor,
        "ORDER_REFUNDED",
        "saleor/ORDER_REFUNDED.json",
        ["refund.created"]
    ),
    sample!(
        Saleor,
        "CUSTOMER_CREATED",
        "saleor/CUSTOMER_CREATED.json",
        ["customer.created"]
    ),
    sample!(
        Shopify,
        "inventory_levels/update",
        "shopify/inventory_levels-update.json",
        ["stock.changed"]
    ),
    sample!(
        Shopify,
        "customers/redact",
        "shopify/customers-redact.json",
        ["customer.erasure_requested"]
    ),
    sample!(
        Shopify,
        "shop/redact",
        "shopify/shop-redact.json",
        ["customer.erasure_requested"]
    ),
    sample!(
        Shopify,
        "returns/approve",
        "shopify/returns-approve.json",
        ["return.updated"]
    ),
    sample!(
        Shopify,
        "returns/decline",
        "shopify/returns-decline.json",
        ["return.updated"]
    ),
    sample!(
        Shopify,
        "returns/close",
        "shopify/returns-close.json",
        ["return.updated"]
    ),
    sample!(
        Woocommerce,
        "customer.updated",
        "woocommerce/customer.updated.json",
        ["customer.updated"]
    ),
    sample!(
        Woocommerce,
        "customer.deleted",
        "woocommerce/customer.deleted.json",
        ["customer.erasure_requested"]
    ),
    sample!(
        Woocommerce,
        "product.updated",
        "woocommerce/product.updated.json",
        ["stock.changed"]
    ),
    sample!(
        Stripe,
        "checkout.session.completed",
        "stripe/checkout.session.completed.json",
        ["order.paid"]
    ),
    sample!(
        Stripe,
        "refund.created",
        "stripe/refund.created.json",
        ["refund.created"]
    ),
    sample!(
        Stripe,
        "charge.dispute.created",
        "stripe/charge.dispute.created.json",
        ["dispute.opened"]
    ),
    sample!(
        Bigcommerce,
        "store/order/statusUpdated",
        "bigcommerce/store-order-statusUpdated.json",
        ["order.paid"]
    ),
    sample!(
        Bigcommerce,
        "store/order/refund/created",
        "bigcommerce/store-order-refund-created.json",
        ["refund.created"]
    ),
    sample!(
        Bigcommerce,
        "store/shipment/created",
        "bigcommerce/store-shipment-created.json",
        ["shipment.created"]
    ),
    sample!(
        Bigcommerce,
        "store/customer/updated",
        "bigcommerce/store-customer-updated.json",
        ["customer.updated"]
    ),
    sample!(
        Bigcommerce,
        "store/sku/inventory/updated",
        "bigcommerce/store-sku-inventory-updated.json",
        ["stock.changed"]
    ),
    sample!(Etsy, "order.paid", "etsy/order.paid.json", ["order.paid"]),
    sample!(
        Etsy,
        "order.shipped",
        "etsy/order.shipped.json",
        ["shipment.created"]
    ),
    sample!(
        Ecwid,
        "order.created",
        "ecwid/order.created.json",
        ["order.updated"]
    ),
    sample!(
        Ecwid,
        "order.updated",
        "ecwid/order.updated.json",
        ["order.updated"]
    ),
    sample!(
        StandardWebhooks,
        "delivery.created",
        "standard-webhooks/delivery.created.json",
        ["shipment.updated"]
    ),
    sample!(
        Ozon,
        "TYPE_NEW_POSTING",
        "ozon/TYPE_NEW_POSTING.json",
        ["order.created"]
    ),
    sample!(
        Ozon,
        "TYPE_POSTING_CANCELLED",
        "ozon/TYPE_POSTING_CANCELLED.json",
        ["order.cancelled"]
    ),
    sample!(
        Ozon,
        "TYPE_STATE_CHANGED",
        "ozon/TYPE_STATE_CHANGED.json",
        ["shipment.updated"]
    ),
    sample!(
        Ozon,
        "TYPE_CUTOFF_DATE_CHANGED",
        "ozon/TYPE_CUTOFF_DATE_CHANGED.json",
        ["order.updated"]
    ),
    sample!(
        Ozon,
        "TYPE_STOCKS_CHANGED",
        "ozon/TYPE_STOCKS_CHANGED.json",
        ["stock.changed"]
    ),
    sample!(
        Ozon,
        "TYPE_NEW_MESSAGE",
        "ozon/TYPE_NEW_MESSAGE.json",
        ["message.received"]
    ),
    sample!(
        MercadoLibre,
        "orders_v2",
        "mercadolibre/orders_v2.json",
        ["order.updated"]
    ),
    sample!(
        MercadoLibre,
        "shipments",
        "mercadolibre/shipments.json",
        ["shipment.updated"]
    ),
    sample!(
        MercadoLibre,
        "items",
        "mercadolibre/items.json",
        ["stock.changed"]
    ),
    sample!(
        MercadoLibre,
        "questions",
        "mercadolibre/questions.json",
        ["message.received"]
    ),
];

/// The sample called `name` (file stem, e.g. `orders-create`) or, failing that, the first
/// one for topic `name`.
pub fn find(provider: Provider, name: &str) -> Option<&'static Sample> {
    let stem = name.strip_suffix(".json").unwrap_or(name);
    SAMPLES
        .iter()
        .find(|s| s.provider == provider && s.name.strip_suffix(".json") == Some(stem))
        .or_else(|| {
            SAMPLES
                .iter()
                .find(|s| s.provider == provider && s.topic == name)
        })
}

/// Integer fields that hold Unix seconds in some sample (Ecwid's signed `eventCreated`,
/// BigCommerce's and Stripe's `created_at`/`created`).
const UNIX_KEYS: &[&str] = &["eventCreated", "created_at", "created"];
/// Plausible Unix seconds (2001 to 2096): anything else in those fields is not a time.
const UNIX_RANGE: std::ops::RangeInclusive<i64> = 1_000_000_000..=4_000_000_000;

/// Calls `visit` with every time in `value`; a `Some` it returns replaces that time.
fn visit_times(
    value: &mut Value,
    key: Option<&str>,
    visit: &mut dyn FnMut(DateTime<Utc>) -> Option<DateTime<Utc>>,
) {
    match value {
        Value::String(text) => {
            if let Some(t) = time::rfc3339(text) {
                if let Some(new) = visit(t) {
                    *text = time::format(new);
                }
            } else if let Some(t) = time::naive_utc(text)
                && let Some(new) = visit(t)
            {
                *text = new.format("%Y-%m-%dT%H:%M:%S").to_string();
            }
        }
        Value::Number(n) if key.is_some_and(|k| UNIX_KEYS.contains(&k)) => {
            let t = n
                .as_i64()
                .filter(|s| UNIX_RANGE.contains(s))
                .and_then(time::unix_seconds);
            if let Some(new) = t.and_then(&mut *visit) {
                *n = new.timestamp().into();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| visit_times(v, None, visit)),
        Value::Object(entries) => entries
            .iter_mut()
            .for_each(|(k, v)| visit_times(v, Some(k), visit)),
        _ => {}
    }
}

/// The oldest and newest times the bundled samples of `provider` state.
fn sample_time_span(provider: Provider) -> (DateTime<Utc>, DateTime<Utc>) {
    type Spans = HashMap<Provider, (DateTime<Utc>, DateTime<Utc>)>;
    static SPANS: std::sync::OnceLock<Spans> = std::sync::OnceLock::new();
    let spans = SPANS.get_or_init(|| {
        let mut spans = Spans::new();
        for s in SAMPLES {
            if let Ok(mut v) = serde_json::from_str::<Value>(s.body) {
                visit_times(&mut v, None, &mut |t| {
                    let span = spans.entry(s.provider).or_insert((t, t));
                    span.0 = span.0.min(t);
                    span.1 = span.1.max(t);
                    None
                });
            }
        }
        spans
    });
    spans.get(&provider).copied().unwrap_or_default()
}

/// How far back fresh samples reach: well inside the gateway's default replay window.
const FRESH_SPAN: Duration = Duration::hours(24);

/// The sample as a shop would send it at `now`. A provider's samples were recorded over
/// weeks; every time in them is mapped onto the last [`FRESH_SPAN`] before `now` by one
/// order-keeping map per provider (the same for all its samples), so a story sent sample
/// by sample keeps its order and stays seconds apart, and no body is older than a
/// gateway's replay window, which refuses signed bodies older than that.
pub fn fresh(sample: &Sample, now: DateTime<Utc>) -> Vec<u8> {
    let Ok(mut body) = serde_json::from_str::<Value>(sample.body) else {
        return sample.body.as_bytes().to_vec();
    };
    let (oldest, newest) = sample_time_span(sample.provider);
    let span = (newest - oldest).num_milliseconds().max(1) as f64;
    let scale = (FRESH_SPAN.num_milliseconds() as f64 / span).min(1.0);
    visit_times(&mut body, None, &mut |t| {
        let before = (newest - t).num_milliseconds() as f64 * scale;
        Some(now - Duration::milliseconds(before as i64))
    });
    serde_json::to_vec(&body).unwrap_or_else(|_| sample.body.as_bytes().to_vec())
}

/// [`fresh`] at the machine's clock.
pub fn fresh_now(sample: &Sample) -> Vec<u8> {
    fresh(sample, Utc::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::{Input, MAPPINGS};
    use crate::validate::Validators;

    #[test]
    fn fresh_samples_are_recent_and_keep_their_order() {
        let now = Utc::now();
        let story = [
            "order.created",
            "order.updated-processing",
            "order.updated-completed",
            "order.updated-refunded",
        ];
        let mut last = None;
        for name in story {
            let s = find(Provider::Woocommerce, name).unwrap();
            let old: Value = serde_json::from_str(s.body).unwrap();
            let new: Value = serde_json::from_slice(&fresh(s, now)).unwrap();
            let at = |v: &Value, k: &str| time::naive_utc(v[k].as_str().unwrap()).unwrap();
            let modified = at(&new, "date_modified_gmt");
            assert!(modified <= now && now - modified <= FRESH_SPAN, "{name}");
            assert!(at(&new, "date_created_gmt") <= modified, "{name}");
            assert!(
                last.is_none_or(|l| l < modified),
                "{name} keeps the story's order"
            );
            last = Some(modified);
            assert_eq!(new["id"], old["id"], "ids are left alone");
        }
        let e = find(Provider::Ecwid, "order.updated").unwrap();
        let new: Value = serde_json::from_slice(&fresh(e, now)).unwrap();
        let created = new["eventCreated"].as_i64().unwrap();
        assert!(created <= now.timestamp() && now.timestamp() - created <= 86_400);
    }

    #[test]
    fn samples_are_found_by_name_or_topic() {
        let s = find(Provider::Woocommerce, "order.updated-refunded").unwrap();
        assert_eq!(s.events, ["refund.created", "order.paid", "order.updated"]);
        assert_eq!(
            find(Provider::Shopify, "orders/create").unwrap().name,
            "orders-create.json"
        );
        assert!(find(Provider::Shopify, "carts/update").is_none());
    }

    #[test]
    fn every_sample_is_a_mapped_topic_and_becomes_its_events() {
        let validators = Validators::compile().unwrap();
        let headers = crate::headers::Headers::new();
        for s in SAMPLES {
            assert!(
                MAPPINGS
                    .iter()
                    .any(|m| m.provider == s.provider && m.topic == s.topic),
                "{} {}",
                s.provider,
                s.topic
            );
            let body = crate::json::Json::parse(s.body.as_bytes()).unwrap();
            let resource = crate::providers::of(s.provider).resource(s.topic).unwrap();
            validators
                .check_payload(s.provider, resource, &body)
                .unwrap_or_else(|e| panic!("{} {}: {e}", s.provider, s.topic));
            let out = crate::providers::of(s.provider)
                .normalizer
                .normalize(Input {
                    topic: s.topic,
                    headers: &headers,
                    body: &body,
                    received_at: Utc::now(),
                    snapshot: None,
                    shop_locale: None,
                })
                .unwrap_or_else(|e| panic!("{} {}: {e}", s.provider, s.topic));
            let types: Vec<&str> = out.events.iter().map(|e| e.event_type).collect();
            assert_eq!(types, s.events, "{} {}", s.provider, s.topic);
        }
    }
}
