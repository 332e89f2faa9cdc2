//! Who a delivery is: its topic, the provider's delivery id, and the key it is
//! de-duplicated by. Each provider says this differently (PROVIDERS.md).

use omnigate_schemas::api::Provider;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::headers::Headers;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub topic: Option<String>,
    pub delivery_id: Option<String>,
    /// Unique per delivery within the source.
    pub dedupe_key: String,
    /// A provider handshake (GitHub `ping`): answered, stored nowhere.
    pub handshake: bool,
}

fn body_str<'a>(body: Option<&'a Value>, key: &str) -> Option<&'a str> {
    body?.get(key)?.as_str().filter(|s| !s.is_empty())
}

/// A key for deliveries that carry no id of their own: the topic and exact bytes.
fn content_key(topic: Option<&str>, raw: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(topic.unwrap_or("").as_bytes());
    h.update([0]);
    h.update(raw);
    format!("sha256:{}", hex::encode(h.finalize()))
}

pub fn identify(
    provider: Provider,
    headers: &Headers,
    body: Option<&Value>,
    raw: &[u8],
) -> Identity {
    let (topic, delivery_id, key) = match provider {
        Provider::Shopify => {
            let topic = headers.first(&["x-shopify-topic", "shopify-topic"]);
            let webhook_id = headers.first(&["x-shopify-webhook-id", "shopify-webhook-id"]);
            // The event id is shared by every subscription one event fires: Shopify's own
            // duplicate key. The webhook id is stable across retries of one delivery.
            let event_id = headers.first(&["x-shopify-event-id", "shopify-event-id"]);
            (
                topic,
                webhook_id,
                event_id.or(webhook_id).map(str::to_string),
            )
        }
        Provider::Woocommerce => {
            let topic = headers.first(&["x-wc-webhook-topic"]);
            let delivery = headers.first(&["x-wc-webhook-delivery-id"]);
            // The Delivery-ID hashes webhook id + current second and collides across
            // events: identify the resource version instead.
            let key = body.and_then(|b| {
                let id = match b.get("id")? {
                    Value::Number(n) => n.to_string(),
                    Value::String(s) => s.clone(),
                    _ => return None,
                };
                let modified = body_str(Some(b), "date_modified_gmt").unwrap_or("");
                Some(format!("{}:{id}:{modified}", topic.unwrap_or("")))
            });
            (topic, delivery, key)
        }
        Provider::StandardWebhooks => {
            let id = headers.first(&["webhook-id", "svix-id"]);
            (body_str(body, "type"), id, id.map(str::to_string))
        }
        Provider::Stripe => {
            let id = body_str(body, "id");
            (body_str(body, "type"), id, id.map(str::to_string))
        }
        Provider::Github => {
            let id = headers.first(&["x-github-delivery"]);
            (
                headers.first(&["x-github-event"]),
                id,
                id.map(str::to_string),
            )
        }
        Provider::Bigcommerce => {
            let id = headers.first(&["webhook-id"]);
            (body_str(body, "scope"), id, id.map(str::to_string))
        }
        Provider::Etsy => {
            let id = headers.first(&["webhook-id"]);
            (body_str(body, "event_type"), id, id.map(str::to_string))
        }
        Provider::Ecwid => {
            let id = body_str(body, "eventId");
            (body_str(body, "eventType"), id, id.map(str::to_string))
        }
        Provider::Saleor => {
            // No delivery id: the event, the object and Saleor's issue time identify it.
            let topic = headers.first(&["saleor-event", "x-saleor-event"]);
            let object = body.and_then(|b| {
                ["order", "fulfillment", "user"]
                    .iter()
                    .find_map(|k| b.get(*k)?.get("id")?.as_str())
            });
            let issued = body_str(body, "issuedAt");
            let key = match (topic, object, issued) {
                (Some(t), Some(o), Some(i)) => Some(format!("{}:{o}:{i}", t.to_ascii_uppercase())),
                _ => None,
            };
            (topic, None, key)
        }
    };
    let handshake = provider == Provider::Github && topic == Some("ping");
    // Saleor names events in lower case in its header and upper case everywhere else.
    let topic = match provider {
        Provider::Saleor => topic.map(str::to_ascii_uppercase),
        _ => topic.map(str::to_string),
    };
    Identity {
        dedupe_key: key.unwrap_or_else(|| content_key(topic.as_deref(), raw)),
        topic,
        delivery_id: delivery_id.map(str::to_string),
        handshake,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::payload_fixture;
    use serde_json::json;

    fn of(name: &str, provider: Provider) -> Identity {
        let f = payload_fixture(name);
        let body: Value = serde_json::from_slice(&f.body).unwrap();
        identify(provider, &f.headers, Some(&body), &f.body)
    }

    #[test]
    fn shopify_dedupes_on_the_event_id() {
        let id = of("shopify/orders-create", Provider::Shopify);
        assert_eq!(id.topic.as_deref(), Some("orders/create"));
        assert_eq!(id.dedupe_key, "7afd1ded-9bb6-4769-b7b3-b75fc209d9af");
        assert_eq!(
            id.delivery_id.as_deref(),
            Some("d9023779-e7b3-44f4-b64d-33bce4f775d8")
        );
        // orders-paid has byte-identical body and HMAC: only headers tell them apart.
        let paid = of("shopify/orders-paid", Provider::Shopify);
        assert_ne!(paid.dedupe_key, id.dedupe_key);
    }

    #[test]
    fn shopify_without_prefix_and_without_event_id() {
        let h: Headers = [
            ("shopify-topic", "orders/create"),
            ("shopify-webhook-id", "w-1"),
        ]
        .into_iter()
        .collect();
        let id = identify(Provider::Shopify, &h, None, b"{}");
        assert_eq!(id.topic.as_deref(), Some("orders/create"));
        assert_eq!(id.dedupe_key, "w-1");
    }

    #[test]
    fn woocommerce_dedupes_on_resource_version_not_delivery_id() {
        let id = of("woocommerce/order.created", Provider::Woocommerce);
        assert_eq!(id.dedupe_key, "order.created:52907:2024-11-19T20:47:06");
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
        let id = identify(Provider::Github, &h, Some(&json!({"zen": "x"})), b"{}");
        assert!(id.handshake);
        assert_eq!(id.dedupe_key, "d-1");
    }

    #[test]
    fn deliveries_without_ids_fall_back_to_content() {
        let h = Headers::new();
        let a = identify(Provider::Stripe, &h, None, b"not json");
        let b = identify(Provider::Stripe, &h, None, b"not json!");
        assert!(a.dedupe_key.starts_with("sha256:"));
        assert_ne!(a.dedupe_key, b.dedupe_key);
    }
}
