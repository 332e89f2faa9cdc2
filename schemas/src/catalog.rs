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

/// A provider payload schema, checked before normalisation.
#[derive(Debug, Clone, Copy)]
pub struct ProviderSchema {
    pub provider: &'static str,
    /// Resource name, e.g. `order`.
    pub resource: &'static str,
    pub schema: Embedded,
}

const BASE: &str = "https://schemas.omnigate.dev/";

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
pub const EVENT_TYPES: &[EventType] = &[EventType {
    name: "order.created",
    schema_version: 1,
    description: "A customer placed an order.",
    schema: embedded!("events/order.created.schema.json"),
}];

/// Provider payload schemas.
pub const PROVIDER_SCHEMAS: &[ProviderSchema] = &[
    ProviderSchema {
        provider: "shopify",
        resource: "order",
        schema: embedded!("providers/shopify/order.schema.json"),
    },
    ProviderSchema {
        provider: "woocommerce",
        resource: "order",
        schema: embedded!("providers/woocommerce/order.schema.json"),
    },
];

/// The catalog entry of an event type.
pub fn event_type(name: &str) -> Option<&'static EventType> {
    EVENT_TYPES.iter().find(|t| t.name == name)
}

/// True when `uri` belongs to the embedded schema namespace.
pub fn is_embedded_uri(uri: &str) -> bool {
    uri.starts_with(BASE)
}
