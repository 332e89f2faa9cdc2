//! Sample payloads bundled with the binary: one per mapped topic the shared fixtures do not
//! cover, and copies of the fixtures' main order story. Each says the events it becomes
//! (on a shop with no earlier state). Tests send every one through the gateway; `omnigate
//! trigger` sends them to a running one.

use omnigate_schemas::api::Provider;

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
    // refund.created + order.updated; alone, the order's first state is unknown.
    sample!(
        Woocommerce,
        "order.updated",
        "woocommerce/order.updated-processing.json",
        ["order.updated"]
    ),
    sample!(
        Woocommerce,
        "order.updated",
        "woocommerce/order.updated-completed.json",
        ["order.updated"]
    ),
    sample!(
        Woocommerce,
        "order.updated",
        "woocommerce/order.updated-refunded.json",
        ["refund.created", "order.updated"]
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
        "shopify/returns-approve.json",
        ["return.updated"]
    ),
    sample!(
        Shopify,
        "returns/close",
        "shopify/returns-approve.json",
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
        ["order.created"]
    ),
    sample!(
        Ecwid,
        "order.updated",
        "ecwid/order.updated.json",
        ["order.paid"]
    ),
    sample!(
        StandardWebhooks,
        "delivery.created",
        "standard-webhooks/delivery.created.json",
        ["shipment.updated"]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::{Input, MAPPINGS, normalize, payload_resource};
    use crate::validate::Validators;
    use chrono::Utc;

    #[test]
    fn samples_are_found_by_name_or_topic() {
        let s = find(Provider::Woocommerce, "order.updated-refunded").unwrap();
        assert_eq!(s.events, ["refund.created", "order.updated"]);
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
            let body: serde_json::Value = serde_json::from_str(s.body).unwrap();
            let resource = payload_resource(s.provider, s.topic).unwrap();
            validators
                .check_payload(s.provider, resource, &body)
                .unwrap_or_else(|e| panic!("{} {}: {e}", s.provider, s.topic));
            let out = normalize(
                s.provider,
                Input {
                    topic: s.topic,
                    headers: &headers,
                    body: &body,
                    received_at: Utc::now(),
                    state: None,
                },
            )
            .unwrap_or_else(|e| panic!("{} {}: {e}", s.provider, s.topic));
            let types: Vec<&str> = out.events.iter().map(|e| e.event_type).collect();
            assert_eq!(types, s.events, "{} {}", s.provider, s.topic);
        }
    }
}
