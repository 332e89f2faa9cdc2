//! The JSON Schemas of the contract, embedded at compile time.
//!
//! Event schemas reference the shared shapes in `common.schema.json` by relative `$ref`;
//! a validator must register [`COMMON`] under its `$id` ([`Embedded::uri`]).

/// One embedded schema document.
#[derive(Debug, Clone, Copy)]
pub struct Embedded {
    /// The document's `$id`.
    pub uri: &'static str,
    /// The document's text.
    pub text: &'static str,
}

/// A canonical event type and its schema.
#[derive(Debug, Clone, Copy)]
pub struct EventType {
    pub name: &'static str,
    pub schema_version: u32,
    pub description: &'static str,
    pub schema: Embedded,
}

/// A provider payload schema, checked before normalization.
#[derive(Debug, Clone, Copy)]
pub struct ProviderSchema {
    pub provider: &'static str,
    /// Resource name, e.g. `order`.
    pub resource: &'static str,
    pub schema: Embedded,
}

macro_rules! embedded {
    ($path:literal) => {
        Embedded {
            uri: concat!("https://schemas.omnigate.dev/", $path),
            text: include_str!(concat!("../", $path)),
        }
    };
}

/// Shared `$defs`: Money, Party, Address, LineRef, Envelope.
pub const COMMON: Embedded = embedded!("events/common.schema.json");

/// Every canonical event type the gateway emits.
pub const EVENT_TYPES: &[EventType] = &[
    EventType {
        name: "order.created",
        schema_version: 1,
        description: "A customer placed an order.",
        schema: embedded!("events/order.created.schema.json"),
    },
    EventType {
        name: "order.updated",
        schema_version: 1,
        description: "An order changed in a way no more specific event describes.",
        schema: embedded!("events/order.updated.schema.json"),
    },
    EventType {
        name: "order.paid",
        schema_version: 1,
        description: "Payment for an order was captured in full.",
        schema: embedded!("events/order.paid.schema.json"),
    },
    EventType {
        name: "order.cancelled",
        schema_version: 1,
        description: "An order was cancelled.",
        schema: embedded!("events/order.cancelled.schema.json"),
    },
    EventType {
        name: "order.fulfilled",
        schema_version: 1,
        description: "An order was fulfilled (fully or in part).",
        schema: embedded!("events/order.fulfilled.schema.json"),
    },
    EventType {
        name: "shipment.created",
        schema_version: 1,
        description: "A shipment left for the customer.",
        schema: embedded!("events/shipment.created.schema.json"),
    },
    EventType {
        name: "shipment.updated",
        schema_version: 1,
        description: "A shipment's delivery status changed.",
        schema: embedded!("events/shipment.updated.schema.json"),
    },
    EventType {
        name: "refund.created",
        schema_version: 1,
        description: "Money was (or is being) returned to the customer.",
        schema: embedded!("events/refund.created.schema.json"),
    },
    EventType {
        name: "return.requested",
        schema_version: 1,
        description: "A customer asked to return items.",
        schema: embedded!("events/return.requested.schema.json"),
    },
    EventType {
        name: "return.updated",
        schema_version: 1,
        description: "A return moved on (approved, declined, received, closed, ...).",
        schema: embedded!("events/return.updated.schema.json"),
    },
    EventType {
        name: "customer.created",
        schema_version: 1,
        description: "A customer account was created.",
        schema: embedded!("events/customer.created.schema.json"),
    },
    EventType {
        name: "customer.updated",
        schema_version: 1,
        description: "A customer's details or consent changed.",
        schema: embedded!("events/customer.updated.schema.json"),
    },
    EventType {
        name: "customer.erasure_requested",
        schema_version: 1,
        description: "Personal data of a customer (or of the whole shop) must be erased.",
        schema: embedded!("events/customer.erasure_requested.schema.json"),
    },
    EventType {
        name: "stock.changed",
        schema_version: 1,
        description: "Available stock of a product or variant changed.",
        schema: embedded!("events/stock.changed.schema.json"),
    },
    EventType {
        name: "review.created",
        schema_version: 1,
        description: "A customer reviewed a product or an order.",
        schema: embedded!("events/review.created.schema.json"),
    },
    EventType {
        name: "message.received",
        schema_version: 1,
        description: "A customer wrote to the shop.",
        schema: embedded!("events/message.received.schema.json"),
    },
    EventType {
        name: "dispute.opened",
        schema_version: 1,
        description: "A customer disputed a payment (chargeback).",
        schema: embedded!("events/dispute.opened.schema.json"),
    },
];

/// Provider payload schemas.
pub const PROVIDER_SCHEMAS: &[ProviderSchema] = &[
    ProviderSchema {
        provider: "bigcommerce",
        resource: "hook",
        schema: embedded!("providers/bigcommerce/hook.schema.json"),
    },
    ProviderSchema {
        provider: "ecwid",
        resource: "event",
        schema: embedded!("providers/ecwid/event.schema.json"),
    },
    ProviderSchema {
        provider: "allegro",
        resource: "order-event",
        schema: embedded!("providers/allegro/order-event.schema.json"),
    },
    ProviderSchema {
        provider: "prom",
        resource: "order",
        schema: embedded!("providers/prom/order.schema.json"),
    },
    ProviderSchema {
        provider: "rozetka",
        resource: "order",
        schema: embedded!("providers/rozetka/order.schema.json"),
    },
    ProviderSchema {
        provider: "ozon",
        resource: "posting",
        schema: embedded!("providers/ozon/posting.schema.json"),
    },
    ProviderSchema {
        provider: "ozon",
        resource: "stocks",
        schema: embedded!("providers/ozon/stocks.schema.json"),
    },
    ProviderSchema {
        provider: "ozon",
        resource: "message",
        schema: embedded!("providers/ozon/message.schema.json"),
    },
    ProviderSchema {
        provider: "mercadolibre",
        resource: "notification",
        schema: embedded!("providers/mercadolibre/notification.schema.json"),
    },
    ProviderSchema {
        provider: "etsy",
        resource: "event",
        schema: embedded!("providers/etsy/event.schema.json"),
    },
    ProviderSchema {
        provider: "standard-webhooks",
        resource: "event",
        schema: embedded!("providers/standard-webhooks/event.schema.json"),
    },
    ProviderSchema {
        provider: "saleor",
        resource: "payload",
        schema: embedded!("providers/saleor/payload.schema.json"),
    },
    ProviderSchema {
        provider: "shopify",
        resource: "order",
        schema: embedded!("providers/shopify/order.schema.json"),
    },
    ProviderSchema {
        provider: "shopify",
        resource: "fulfillment",
        schema: embedded!("providers/shopify/fulfillment.schema.json"),
    },
    ProviderSchema {
        provider: "shopify",
        resource: "refund",
        schema: embedded!("providers/shopify/refund.schema.json"),
    },
    ProviderSchema {
        provider: "shopify",
        resource: "return",
        schema: embedded!("providers/shopify/return.schema.json"),
    },
    ProviderSchema {
        provider: "shopify",
        resource: "customer",
        schema: embedded!("providers/shopify/customer.schema.json"),
    },
    ProviderSchema {
        provider: "shopify",
        resource: "redact",
        schema: embedded!("providers/shopify/redact.schema.json"),
    },
    ProviderSchema {
        provider: "shopify",
        resource: "inventory_level",
        schema: embedded!("providers/shopify/inventory_level.schema.json"),
    },
    ProviderSchema {
        provider: "stripe",
        resource: "event",
        schema: embedded!("providers/stripe/event.schema.json"),
    },
    ProviderSchema {
        provider: "woocommerce",
        resource: "order",
        schema: embedded!("providers/woocommerce/order.schema.json"),
    },
    ProviderSchema {
        provider: "woocommerce",
        resource: "customer",
        schema: embedded!("providers/woocommerce/customer.schema.json"),
    },
    ProviderSchema {
        provider: "woocommerce",
        resource: "deleted",
        schema: embedded!("providers/woocommerce/deleted.schema.json"),
    },
    ProviderSchema {
        provider: "woocommerce",
        resource: "product",
        schema: embedded!("providers/woocommerce/product.schema.json"),
    },
];

/// The catalog entry of an event type.
pub fn event_type(name: &str) -> Option<&'static EventType> {
    EVENT_TYPES.iter().find(|t| t.name == name)
}
