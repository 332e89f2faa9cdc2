//! Who a delivery is: its topic, the provider's delivery id, and the key it is
//! de-duplicated by, read where the provider's descriptor (`crate::providers`) says.
//!
//! The dedupe key comes from signed material only. Providers whose scheme signs a
//! timestamp sign their delivery id too (Standard Webhooks, BigCommerce, Etsy: `webhook-id`
//! is in the signed string; Stripe's and Ecwid's ids are signed). For the others (Shopify,
//! WooCommerce, GitHub, Saleor) every id header is unsigned: anyone holding one signed
//! body could re-send it with fresh ids. Their key is the topic and a digest of the signed
//! bytes, so a provider's retry (the same body) and an attacker's copy with new headers are
//! the same delivery; their ids are kept as metadata only.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::headers::Headers;
use crate::json::Json;
use crate::normalize::time;
use crate::providers::{Descriptor, Field, Handshake};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub topic: Option<String>,
    /// The provider's own id for the delivery (metadata: never a dedupe key unless signed).
    pub delivery_id: Option<String>,
    /// Unique per delivery within the source, from signed material.
    pub dedupe_key: String,
    /// A provider handshake (GitHub `ping`): answered, stored nowhere.
    pub handshake: bool,
}

fn body_str<'a>(body: Option<&'a Json<'_>>, key: &str) -> Option<&'a str> {
    body?.get(key)?.as_str().filter(|s| !s.is_empty())
}

/// The topic and a digest of the exact bytes: what a delivery is when nothing else in it
/// is both signed and unique.
fn content_key(topic: Option<&str>, raw: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(topic.unwrap_or("").as_bytes());
    h.update([0]);
    h.update(raw);
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// The key a verified body is quarantined under: one entry per body, whatever topic or
/// headers it came with.
pub fn quarantine_key(raw: &[u8]) -> String {
    format!("q:sha256:{}", hex::encode(Sha256::digest(raw)))
}

fn field<'a>(at: Field, headers: &'a Headers, body: Option<&'a Json<'_>>) -> Option<&'a str> {
    match at {
        Field::Header(names) => headers.first(names),
        Field::Body(key) => body_str(body, key),
        Field::Absent => None,
    }
}

/// Who a delivery to a `provider` source is, read where its descriptor says.
pub fn identify(
    provider: &Descriptor,
    headers: &Headers,
    body: Option<&Json<'_>>,
    raw: &[u8],
) -> Identity {
    let topic = field(provider.topic, headers, body);
    let delivery_id = field(provider.delivery_id, headers, body);
    let handshake = matches!(provider.handshake, Handshake::Topic(t) if topic == Some(t));
    let topic = match provider.upper_case_topic {
        true => topic.map(str::to_ascii_uppercase),
        false => topic.map(str::to_string),
    };
    // A signed id is the delivery; an unsigned one could be made up for a captured body.
    let signed_id = delivery_id.filter(|_| provider.delivery_id_signed);
    Identity {
        dedupe_key: signed_id
            .map(str::to_string)
            .unwrap_or_else(|| content_key(topic.as_deref(), raw)),
        topic,
        delivery_id: delivery_id.map(str::to_string),
        handshake,
    }
}

/// The newest time the signed body states about its resource (`updated_at`,
/// `date_modified_gmt`, `issuedAt`), for providers that sign no timestamp. A body older
/// than the dedupe window could be a replay the window no longer remembers.
pub fn signed_resource_time(provider: &Descriptor, body: &Json<'_>) -> Option<DateTime<Utc>> {
    provider
        .signed_time
        .iter()
        .filter_map(|k| body.get(k).and_then(Json::as_str).and_then(time::parse))
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::payload_fixture;
    use omnigate_schemas::api::Provider;
    use serde_json::{Value, json};

    fn of(name: &str, provider: Provider) -> Identity {
        let f = payload_fixture(name);
        let body: Value = serde_json::from_slice(&f.body).unwrap();
        identify(
            crate::providers::of(provider),
            &f.headers,
            Some(&Json::from(&body)),
            &f.body,
        )
    }

    #[test]
    fn shopify_dedupes_on_topic_and_signed_bytes_not_on_unsigned_ids() {
        let f = payload_fixture("shopify/orders-create");
        let body: Value = serde_json::from_slice(&f.body).unwrap();
        let id = identify(
            crate::providers::of(Provider::Shopify),
            &f.headers,
            Some(&Json::from(&body)),
            &f.body,
        );
        assert_eq!(id.topic.as_deref(), Some("orders/create"));
        assert!(id.dedupe_key.starts_with("sha256:"));
        assert_eq!(
            id.delivery_id.as_deref(),
            Some("d9023779-e7b3-44f4-b64d-33bce4f775d8")
        );
        // Fresh event and webhook ids on the same body: the same delivery.
        let mut fresh = Headers::new();
        for (k, v) in f.headers.as_map() {
            match k.as_str() {
                "x-shopify-event-id" | "x-shopify-webhook-id" => fresh.insert(k, "forged-1"),
                _ => fresh.insert(k, v),
            }
        }
        let again = identify(
            crate::providers::of(Provider::Shopify),
            &fresh,
            Some(&Json::from(&body)),
            &f.body,
        );
        assert_eq!(again.dedupe_key, id.dedupe_key);
        // orders-paid has byte-identical body and HMAC: only the topic tells them apart.
        let paid = of("shopify/orders-paid", Provider::Shopify);
        assert_ne!(paid.dedupe_key, id.dedupe_key);
    }

    #[test]
    fn shopify_without_prefix() {
        let h: Headers = [
            ("shopify-topic", "orders/create"),
            ("shopify-webhook-id", "w-1"),
        ]
        .into_iter()
        .collect();
        let id = identify(crate::providers::of(Provider::Shopify), &h, None, b"{}");
        assert_eq!(id.topic.as_deref(), Some("orders/create"));
        assert_eq!(id.delivery_id.as_deref(), Some("w-1"));
        assert_eq!(id.dedupe_key, content_key(Some("orders/create"), b"{}"));
    }

    #[test]
    fn woocommerce_dedupes_on_signed_bytes_not_delivery_id() {
        let id = of("woocommerce/order.created", Provider::Woocommerce);
        assert!(id.dedupe_key.starts_with("sha256:"));
        assert_eq!(
            id.delivery_id.as_deref(),
            Some("b8a60adf04e238894f2959e626f8f463")
        );
        let paid = of(
            "woocommerce/order.updated-processing",
            Provider::Woocommerce,
        );
        assert_ne!(paid.dedupe_key, id.dedupe_key);
    }

    #[test]
    fn signed_resource_times() {
        let f = payload_fixture("woocommerce/order.created");
        let body: Value = serde_json::from_slice(&f.body).unwrap();
        let t = signed_resource_time(
            crate::providers::of(Provider::Woocommerce),
            &Json::from(&body),
        )
        .unwrap();
        assert_eq!(time::format(t), "2024-11-19T20:47:06Z");
        let body = json!({"created_at": "2025-03-14T11:00:00+02:00",
                          "updated_at": "2025-03-14T12:00:00+02:00"});
        let t = signed_resource_time(crate::providers::of(Provider::Shopify), &Json::from(&body))
            .unwrap();
        assert_eq!(time::format(t), "2025-03-14T10:00:00Z");
        assert!(
            signed_resource_time(
                crate::providers::of(Provider::Shopify),
                &Json::from(&json!({"id": 1}))
            )
            .is_none()
        );
        assert!(
            signed_resource_time(crate::providers::of(Provider::Stripe), &Json::from(&body))
                .is_none()
        );
    }

    #[test]
    fn body_ids_for_stripe_and_standard_webhooks() {
        let s = of("stripe/payment_intent.succeeded", Provider::Stripe);
        assert_eq!(s.dedupe_key, "evt_3RQx8mJ2vKfT7hLw1mB5pQ0t");
        assert_eq!(s.topic.as_deref(), Some("payment_intent.succeeded"));
        let w = of("standard-webhooks/order.placed", Provider::StandardWebhooks);
        assert_eq!(w.dedupe_key, "msg_2xQ9fT4kLm7VbR1cNp8sZd3Hw6Y");
        assert_eq!(w.topic.as_deref(), Some("order.placed"));
    }

    #[test]
    fn github_ping_is_a_handshake() {
        let h: Headers = [("X-GitHub-Event", "ping"), ("X-GitHub-Delivery", "d-1")]
            .into_iter()
            .collect();
        let id = identify(
            crate::providers::of(Provider::Github),
            &h,
            Some(&Json::from(&json!({"zen": "x"}))),
            b"{}",
        );
        assert!(id.handshake);
        assert_eq!(id.delivery_id.as_deref(), Some("d-1"));
    }

    #[test]
    fn deliveries_without_ids_fall_back_to_content() {
        let h = Headers::new();
        let a = identify(
            crate::providers::of(Provider::Stripe),
            &h,
            None,
            b"not json",
        );
        let b = identify(
            crate::providers::of(Provider::Stripe),
            &h,
            None,
            b"not json!",
        );
        assert!(a.dedupe_key.starts_with("sha256:"));
        assert_ne!(a.dedupe_key, b.dedupe_key);
    }
}
