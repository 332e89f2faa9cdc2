//! Sample payloads bundled with the binary, one per mapped topic that the shared fixtures
//! do not cover, with the events each must become. Tests send every one through the
//! gateway; `omnigate trigger` (a later addition) sends them to a running one.

use omnigate_schemas::api::Provider;

/// A throwaway RSA key (PKCS#8 PEM) that signs the Saleor samples; its public half is
/// `sign::saleor_jwks(SALEOR_TEST_KEY)`. Never use it for a real shop.
pub const SALEOR_TEST_KEY: &str = include_str!("../samples/saleor/test-signing-key.pem");

#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub provider: Provider,
    pub topic: &'static str,
    pub body: &'static str,
    /// The event types it becomes, in order.
    pub events: &'static [&'static str],
}

macro_rules! sample {
    ($provider:ident, $topic:literal, $file:literal, [$($event:literal),*]) => {
        Sample {
            provider: Provider::$provider,
            topic: $topic,
            body: include_str!(concat!("../samples/", $file)),
            events: &[$($event),*],
        }
    };
}

pub const SAMPLES: &[Sample] = &[
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::{Input, MAPPINGS, normalize, payload_resource};
    use crate::validate::Validators;
    use chrono::Utc;

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
