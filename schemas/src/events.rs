//! Canonical service events: the envelope every event shares and the typed `data` of each
//! event type. Field names, optionality and formats mirror `schemas/events/*.schema.json`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A canonical event as stored in the tenant log and handed to plugins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    /// Deterministic from source + dedupe key + index, so a redelivery is recognisable.
    pub id: String,
    /// Catalog type, e.g. `order.created`.
    #[serde(rename = "type")]
    pub event_type: String,
    pub schema_version: u32,
    pub tenant: String,
    /// RFC 3339 UTC: when the fact the event reports happened.
    pub occurred_at: String,
    /// RFC 3339 UTC: when the gateway received the delivery.
    pub received_at: String,
    pub source: EventSource,
    /// `order/<id>`, `customer/<id>` or `return/<id>`.
    pub subject: String,
    /// Type-specific payload; see the event type's JSON Schema.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: Value,
}

/// Where an event came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventSource {
    /// The source (connected shop) id.
    pub id: String,
    pub provider: String,
    /// The provider's own topic name, e.g. `orders/create`.
    pub topic: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
}

/// An amount of money: a decimal string with the currency's ISO 4217 exponent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    /// `"229.97"`, `"1200"` (JPY), never a float.
    pub amount: String,
    /// ISO 4217, upper case.
    pub currency: String,
}

/// A person or organisation taking part in an order, return or conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

/// A postal address. Empty provider strings become absent fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    /// Subdivision code where the provider has one (`CJ`), else its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// ISO 3166-1 alpha-2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// A reference to an order line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineRef {
    pub line_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant_title: Option<String>,
    pub quantity: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<Money>,
}

/// Canonical order lifecycle state; the provider's own value is kept in `provider_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    Processing,
    OnHold,
    Completed,
    Cancelled,
    Refunded,
    Failed,
}

/// How far payment has got when the order is placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentState {
    Pending,
    Authorized,
    Paid,
    Cod,
}

/// `data` of `order.created`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderCreated {
    pub order_id: String,
    /// The customer-facing order number (`#3108`).
    pub order_number: String,
    pub status: OrderStatus,
    pub placed_at: String,
    pub currency: String,
    pub total: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtotal: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount: Option<Money>,
    pub lines: Vec<LineRef>,
    pub customer: Party,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_address: Option<Address>,
    pub payment_state: PaymentState,
    /// The provider's own status value(s), verbatim.
    pub provider_status: Value,
}

/// Event types and their current schema versions, as the gateway emits them.
pub mod types {
    pub const ORDER_CREATED: &str = "order.created";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog;

    /// Every schema example is an `Event` whose `data` deserialises into the type's Rust
    /// struct and serialises back to the same JSON: the two cannot drift apart.
    #[test]
    fn schema_examples_round_trip_through_the_rust_types() {
        for t in catalog::EVENT_TYPES {
            let schema: Value = serde_json::from_str(t.schema.text).unwrap();
            for example in schema["examples"].as_array().unwrap() {
                let event: Event = serde_json::from_value(example.clone()).unwrap();
                assert_eq!(event.event_type, t.name);
                assert_eq!(event.schema_version, t.schema_version);
                assert_eq!(&serde_json::to_value(&event).unwrap(), example);
                let data = match t.name {
                    types::ORDER_CREATED => {
                        let d: OrderCreated = serde_json::from_value(event.data.clone()).unwrap();
                        serde_json::to_value(d).unwrap()
                    }
                    other => panic!("{other} has no Rust type in this test"),
                };
                assert_eq!(data, event.data, "{}", t.name);
            }
        }
    }

    /// The schema's required fields are exactly the Rust struct's non-optional fields.
    #[test]
    fn required_fields_match_non_optional_fields() {
        let t = catalog::event_type(types::ORDER_CREATED).unwrap();
        let schema: Value = serde_json::from_str(t.schema.text).unwrap();
        let mut required: Vec<&str> = schema["$defs"]["Data"]["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        required.sort_unstable();
        let example = &schema["examples"][0]["data"];
        let mut minimal: OrderCreated = serde_json::from_value(example.clone()).unwrap();
        minimal.subtotal = None;
        minimal.tax = None;
        minimal.shipping = None;
        minimal.discount = None;
        minimal.shipping_address = None;
        minimal.billing_address = None;
        let value = serde_json::to_value(minimal).unwrap();
        let mut present: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        present.sort_unstable();
        assert_eq!(present, required);
    }
}
