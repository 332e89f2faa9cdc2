//! Canonical service events: the envelope every event shares and the typed `data` of each
//! event type. Field names, optionality and formats mirror `schemas/events/*.schema.json`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_with::skip_serializing_none;

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
    /// What the event is about, so a plugin can keep one subject's events in order:
    /// `order/<id>` for orders, their shipments and refunds, `return/<id>` for returns,
    /// `customer/<id>` for customers, `product/<id>` for stock; a plugin's own events name
    /// theirs.
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

/// The name each value has in the event's JSON (`out_for_delivery`), and `Display` printing
/// it; `ALL` lists the values.
macro_rules! wire_names {
    ($($ty:ident { $($variant:ident => $name:literal),* $(,)? })*) => {$(
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),*];

            /// The value as the event's JSON spells it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),*
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}

wire_names! {
    OrderStatus {
        Pending => "pending", Processing => "processing", OnHold => "on_hold",
        Completed => "completed", Cancelled => "cancelled", Refunded => "refunded",
        Failed => "failed",
    }
    PaymentState { Pending => "pending", Authorized => "authorized", Paid => "paid", Cod => "cod" }
    ShipmentStatus {
        LabelCreated => "label_created", InTransit => "in_transit",
        OutForDelivery => "out_for_delivery", Delayed => "delayed", Attempted => "attempted",
        ReadyForPickup => "ready_for_pickup", Delivered => "delivered", Returned => "returned",
        Failed => "failed",
    }
    RefundStatus { Pending => "pending", Succeeded => "succeeded", Failed => "failed" }
    ReturnStatus {
        Approved => "approved", Declined => "declined", InTransit => "in_transit",
        Received => "received", Closed => "closed", Cancelled => "cancelled",
    }
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

/// Set on events from thin providers: only ids are known until the resource is fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Enrichment {
    Pending,
}

/// The `data` of any event type from a thin provider payload: the ids it carried and
/// `enrichment: "pending"`. [`Data::parse`] returns it as [`Data::Pending`].
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingData {
    pub enrichment: Enrichment,
    pub order_id: Option<String>,
    pub shipment_id: Option<String>,
    pub refund_id: Option<String>,
    pub return_id: Option<String>,
    pub customer_id: Option<String>,
    pub product_id: Option<String>,
    pub variant_id: Option<String>,
    pub sku: Option<String>,
    /// Where the full resource can be fetched, when the provider says.
    pub resource_url: Option<String>,
    pub provider_status: Option<Value>,
}

impl PendingData {
    pub fn new() -> Self {
        PendingData {
            enrichment: Enrichment::Pending,
            order_id: None,
            shipment_id: None,
            refund_id: None,
            return_id: None,
            customer_id: None,
            product_id: None,
            variant_id: None,
            sku: None,
            resource_url: None,
            provider_status: None,
        }
    }
}

impl Default for PendingData {
    fn default() -> Self {
        Self::new()
    }
}

/// `data` of `order.updated`.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderUpdated {
    pub order_id: String,
    pub status: OrderStatus,
    /// Top-level provider fields that changed since the last kept state.
    pub changed: Vec<String>,
    /// False when there was no earlier state to compare with (`changed` is then empty).
    pub changed_known: Option<bool>,
    pub updated_at: String,
    pub provider_status: Value,
}

/// `data` of `order.paid`.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderPaid {
    pub order_id: String,
    pub amount: Money,
    pub paid_at: String,
    pub method: Option<String>,
    /// The payment provider's reference (transaction id).
    pub reference: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    Customer,
    Merchant,
    Fraud,
    Payment,
    Stock,
    Marketplace,
    Other,
}

/// `data` of `order.cancelled`.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderCancelled {
    pub order_id: String,
    pub cancelled_at: String,
    pub reason: CancelReason,
    /// True when money was captured and should go back to the customer.
    pub refund_expected: bool,
    pub provider_reason: Option<String>,
}

/// `data` of `order.fulfilled`.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderFulfilled {
    pub order_id: String,
    pub fulfilled_at: String,
    pub fully: bool,
}

/// `data` of `shipment.created`.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShipmentCreated {
    pub shipment_id: String,
    pub order_id: String,
    /// The order's number as the shop shows it (`#1001`), when the gateway knows the order.
    pub order_number: Option<String>,
    /// The language to write to the customer in: the order's, else the source's
    /// `options.locale`.
    pub locale: Option<String>,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub tracking_url: Option<String>,
    pub lines: Vec<LineRef>,
    pub shipped_at: String,
    pub destination: Option<Address>,
}

/// Where a parcel is; `as_str()` and `Display` give the name the event's JSON uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShipmentStatus {
    LabelCreated,
    InTransit,
    OutForDelivery,
    Delayed,
    Attempted,
    ReadyForPickup,
    Delivered,
    Returned,
    Failed,
}

/// `data` of `shipment.updated`.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShipmentUpdated {
    pub shipment_id: String,
    pub order_id: String,
    /// The order's number as the shop shows it (`#1001`), when the gateway knows the order.
    pub order_number: Option<String>,
    /// The language to write to the customer in: the order's, else the source's
    /// `options.locale`.
    pub locale: Option<String>,
    pub status: ShipmentStatus,
    pub eta: Option<String>,
    pub status_at: String,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub tracking_url: Option<String>,
    pub provider_status: Option<Value>,
}

/// How a refund went; `as_str()` and `Display` give the name the event's JSON uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    Pending,
    Succeeded,
    Failed,
}

/// `data` of `refund.created`.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefundCreated {
    pub refund_id: String,
    pub order_id: String,
    pub amount: Money,
    pub reason: Option<String>,
    pub lines: Option<Vec<LineRef>>,
    pub status: RefundStatus,
    pub created_at: String,
    pub return_id: Option<String>,
}

/// A returned line and why.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnLine {
    #[serde(flatten)]
    pub line: LineRef,
    pub reason_code: String,
    pub reason_text: Option<String>,
}

/// `data` of `return.requested`.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReturnRequested {
    pub return_id: String,
    pub order_id: String,
    /// The order's number as the shop shows it (`#1001`), when the gateway knows the order.
    pub order_number: Option<String>,
    /// The language to write to the customer in: the order's, else the source's
    /// `options.locale`.
    pub locale: Option<String>,
    pub lines: Vec<ReturnLine>,
    pub requested_at: String,
    pub customer: Party,
}

/// Where a return stands; `as_str()` and `Display` give the name the event's JSON uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReturnStatus {
    Approved,
    Declined,
    InTransit,
    Received,
    Closed,
    Cancelled,
}

/// `data` of `return.updated`.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReturnUpdated {
    pub return_id: String,
    pub order_id: String,
    /// The order's number as the shop shows it (`#1001`), when the gateway knows the order.
    pub order_number: Option<String>,
    /// The language to write to the customer in: the order's, else the source's
    /// `options.locale`.
    pub locale: Option<String>,
    pub status: ReturnStatus,
    pub updated_at: Option<String>,
    pub provider_status: Option<Value>,
}

/// Consent to marketing per channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketingConsent {
    pub email: bool,
    pub sms: bool,
}

/// `data` of `customer.created` and `customer.updated`.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub customer_id: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub locale: Option<String>,
    pub marketing_consent: Option<MarketingConsent>,
    pub default_address: Option<Address>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErasureScope {
    Customer,
    Shop,
}

/// `data` of `customer.erasure_requested`.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerErasureRequested {
    pub customer_id: Option<String>,
    pub email: Option<String>,
    pub scope: ErasureScope,
    pub deadline: Option<String>,
    pub orders_to_redact: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StockMethod {
    /// `available` is the new level.
    Absolute,
    /// `delta` is the change.
    Relative,
}

/// `data` of `stock.changed`.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockChanged {
    pub product_id: Option<String>,
    /// The provider's stock-keeping item (Shopify: one per variant) when no product is named.
    pub inventory_item_id: Option<String>,
    pub sku: Option<String>,
    pub variant_id: Option<String>,
    pub location_id: Option<String>,
    pub available: Option<i64>,
    pub delta: Option<i64>,
    pub method: StockMethod,
    pub updated_at: Option<String>,
}

/// `data` of `review.created`.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewCreated {
    pub review_id: String,
    pub product_id: Option<String>,
    pub order_id: Option<String>,
    /// 1 to 5.
    pub rating: u8,
    pub text: Option<String>,
    pub author: Party,
    pub created_at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageChannel {
    MarketplaceChat,
    OrderNote,
    Email,
    Question,
}

#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub url: String,
    pub name: Option<String>,
    pub content_type: Option<String>,
}

/// `data` of `message.received`.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageReceived {
    pub thread_id: String,
    pub message_id: String,
    pub order_id: Option<String>,
    pub channel: MessageChannel,
    pub from: Party,
    pub text: String,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    pub sent_at: String,
}

/// `data` of `dispute.opened`.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisputeOpened {
    pub dispute_id: String,
    pub order_id: Option<String>,
    pub amount: Money,
    pub reason: String,
    pub due_by: Option<String>,
    pub opened_at: Option<String>,
}

macro_rules! catalog {
    ($($name:literal => $variant:ident($ty:ty) = $const:ident,)+) => {
        /// Event type names.
        pub mod types {
            $(pub const $const: &str = $name;)+
            /// Every type of the catalog.
            pub const ALL: &[&str] = &[$($name),+];
        }

        /// An event's `data`, typed by its `type`. Types outside the catalog (plugin
        /// events such as `loyalty.points.awarded`) stay raw JSON.
        // Boxing the large variants would make every match in plugin code clumsier; a Data
        // value lives only while one event is handled.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug, Clone, PartialEq)]
        pub enum Data {
            $($variant($ty),)+
            /// Any catalog type from a thin payload (`enrichment: "pending"`).
            Pending(PendingData),
            Other(Value),
        }

        impl Data {
            /// Reads `data` as the type `event_type` names.
            pub fn parse(event_type: &str, data: &Value) -> Result<Data, serde_json::Error> {
                let known = types::ALL.contains(&event_type);
                if known && data.get("enrichment").is_some() {
                    return Ok(Data::Pending(PendingData::deserialize(data)?));
                }
                Ok(match event_type {
                    $($name => Data::$variant(<$ty>::deserialize(data)?),)+
                    _ => Data::Other(data.clone()),
                })
            }

            pub fn to_value(&self) -> Result<Value, serde_json::Error> {
                match self {
                    $(Data::$variant(d) => serde_json::to_value(d),)+
                    Data::Pending(d) => serde_json::to_value(d),
                    Data::Other(v) => Ok(v.clone()),
                }
            }
        }
    };
}

catalog! {
    "order.created" => OrderCreated(OrderCreated) = ORDER_CREATED,
    "order.updated" => OrderUpdated(OrderUpdated) = ORDER_UPDATED,
    "order.paid" => OrderPaid(OrderPaid) = ORDER_PAID,
    "order.cancelled" => OrderCancelled(OrderCancelled) = ORDER_CANCELLED,
    "order.fulfilled" => OrderFulfilled(OrderFulfilled) = ORDER_FULFILLED,
    "shipment.created" => ShipmentCreated(ShipmentCreated) = SHIPMENT_CREATED,
    "shipment.updated" => ShipmentUpdated(ShipmentUpdated) = SHIPMENT_UPDATED,
    "refund.created" => RefundCreated(RefundCreated) = REFUND_CREATED,
    "return.requested" => ReturnRequested(ReturnRequested) = RETURN_REQUESTED,
    "return.updated" => ReturnUpdated(ReturnUpdated) = RETURN_UPDATED,
    "customer.created" => CustomerCreated(Customer) = CUSTOMER_CREATED,
    "customer.updated" => CustomerUpdated(Customer) = CUSTOMER_UPDATED,
    "customer.erasure_requested" => CustomerErasureRequested(CustomerErasureRequested) = CUSTOMER_ERASURE_REQUESTED,
    "stock.changed" => StockChanged(StockChanged) = STOCK_CHANGED,
    "review.created" => ReviewCreated(ReviewCreated) = REVIEW_CREATED,
    "message.received" => MessageReceived(MessageReceived) = MESSAGE_RECEIVED,
    "dispute.opened" => DisputeOpened(DisputeOpened) = DISPUTE_OPENED,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog;

    /// `as_str` spells each value as serde writes it.
    #[test]
    fn wire_names_are_the_json_names() {
        fn check<T: Serialize + Copy>(all: &[T], name: fn(T) -> &'static str) {
            for v in all {
                assert_eq!(serde_json::to_value(v).unwrap(), name(*v));
            }
        }
        check(OrderStatus::ALL, OrderStatus::as_str);
        check(PaymentState::ALL, PaymentState::as_str);
        check(ShipmentStatus::ALL, ShipmentStatus::as_str);
        check(RefundStatus::ALL, RefundStatus::as_str);
        check(ReturnStatus::ALL, ReturnStatus::as_str);
        assert_eq!(
            ShipmentStatus::OutForDelivery.to_string(),
            "out_for_delivery"
        );
    }

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
                let data =
                    Data::parse(t.name, &event.data).unwrap_or_else(|e| panic!("{}: {e}", t.name));
                assert!(
                    !matches!(data, Data::Other(_)),
                    "{} has a Rust type",
                    t.name
                );
                assert_eq!(data.to_value().unwrap(), event.data, "{}", t.name);
            }
        }
    }

    #[test]
    fn the_catalog_lists_exactly_the_typed_events() {
        let mut schemas: Vec<&str> = catalog::EVENT_TYPES.iter().map(|t| t.name).collect();
        let mut typed = types::ALL.to_vec();
        schemas.sort_unstable();
        typed.sort_unstable();
        assert_eq!(schemas, typed);
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
