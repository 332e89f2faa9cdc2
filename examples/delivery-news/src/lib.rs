//! Proactive delivery news: when a parcel is delayed, a delivery was attempted, or it is out
//! for delivery, ask for the customer to be told, once per (shipment, status).
//!
//! The rule is [`decide`], a plain function; [`DeliveryNews`] is the [`Handler`] that runs it
//! under [`state::apply_once`], so a redelivered event never publishes twice.

use std::collections::BTreeSet;
use std::sync::Arc;

use omnigate_sdk::api::{CreatePlugin, PublishEvent};
use omnigate_sdk::events::{ShipmentStatus, ShipmentUpdated};
use omnigate_sdk::state::{self, MemoryState, StateStore, Tracked};
use omnigate_sdk::{Client, Data, Delivery, Handler, HandlerError, HandlerResult, PluginEvent};
use serde::{Deserialize, Serialize};

/// The canonical event types the plugin subscribes to.
pub const SUBSCRIPTIONS: &[&str] = &["shipment.updated"];

/// Asks for the customer to be told about their parcel (the plugin's published event).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct NoticeRequested {
    pub order_id: String,
    /// The order's number as the shop shows it (`#1001`), when the gateway knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_number: Option<String>,
    pub shipment_id: String,
    /// The canonical shipment status (`delayed`, `attempted`, `out_for_delivery`).
    pub status: String,
    /// The customer's language (BCP 47), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// Which message template to send, e.g. `delivery_news.delayed`.
    pub message_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eta: Option<String>,
}

impl PluginEvent for NoticeRequested {
    const TYPE: &'static str = "delivery_news.notice.requested";
}

/// What the plugin keeps per order: the (shipment, status) pairs already told.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderNews {
    pub notified: BTreeSet<String>,
}

impl OrderNews {
    fn pair(shipment_id: &str, status: &str) -> String {
        format!("{shipment_id}:{status}")
    }

    /// Whether the customer was already told about `shipment_id` being in `status`.
    pub fn was_notified(&self, shipment_id: &str, status: &str) -> bool {
        self.notified.contains(&Self::pair(shipment_id, status))
    }
}

/// The message template for a status worth telling the customer about, if it is one.
pub fn message_key(status: ShipmentStatus) -> Option<&'static str> {
    match status {
        ShipmentStatus::Delayed => Some("delivery_news.delayed"),
        ShipmentStatus::Attempted => Some("delivery_news.attempted"),
        ShipmentStatus::OutForDelivery => Some("delivery_news.out_for_delivery"),
        _ => None,
    }
}

/// The rule: the notice to request for `update`, unless the status is not news or the
/// customer was already told about this shipment in this status.
pub fn decide(doc: &OrderNews, update: &ShipmentUpdated) -> Option<NoticeRequested> {
    let key = message_key(update.status)?;
    let status = update.status.as_str().to_string();
    if doc.was_notified(&update.shipment_id, &status) {
        return None;
    }
    Some(NoticeRequested {
        order_id: update.order_id.clone(),
        order_number: update.order_number.clone(),
        shipment_id: update.shipment_id.clone(),
        status,
        locale: update.locale.clone(),
        message_key: key.to_string(),
        carrier: update.carrier.clone(),
        eta: update.eta.clone(),
    })
}

/// Applies the rule to the order's document: records the pair and returns the notice.
pub fn apply(doc: &mut OrderNews, update: &ShipmentUpdated) -> Option<NoticeRequested> {
    let notice = decide(doc, update)?;
    doc.notified
        .insert(OrderNews::pair(&notice.shipment_id, &notice.status));
    Some(notice)
}

/// What to register at the gateway for this plugin.
pub fn registration() -> CreatePlugin {
    CreatePlugin {
        name: "Delivery news".into(),
        event_types: SUBSCRIPTIONS.iter().map(|t| t.to_string()).collect(),
        publishes: vec![NoticeRequested::declaration()],
        delivery: None,
    }
}

/// The plugin's handler.
pub struct DeliveryNews {
    store: Arc<dyn StateStore<Tracked<OrderNews>>>,
}

impl DeliveryNews {
    pub fn new(store: Arc<dyn StateStore<Tracked<OrderNews>>>) -> Self {
        Self { store }
    }

    /// A handler keeping its state in memory (tests).
    pub fn in_memory() -> Self {
        Self::new(Arc::new(MemoryState::default()))
    }

    fn publication(tenant: &str, notice: &NoticeRequested) -> Result<PublishEvent, HandlerError> {
        Ok(notice
            .publication(tenant)?
            .subject(format!("order/{}", notice.order_id))
            // Keyed on the (shipment, status) pair: told once, even past a lost state.
            .idempotency_key(format!("notice:{}:{}", notice.shipment_id, notice.status)))
    }
}

#[omnigate_sdk::async_trait]
impl Handler for DeliveryNews {
    async fn handle(&self, delivery: &Delivery, client: &Client) -> HandlerResult {
        let Data::ShipmentUpdated(update) = delivery.data()? else {
            // Other types, and thin payloads (`Data::Pending`) without a status: nothing to say.
            return Ok(());
        };
        if message_key(update.status).is_none() {
            return Ok(());
        }
        let tenant = &delivery.event.tenant;
        let key = format!("{tenant}:order:{}", update.order_id);
        state::apply_once(
            self.store.as_ref(),
            client,
            &key,
            &delivery.event.id,
            |doc: &mut OrderNews| match apply(doc, &update) {
                Some(notice) => Ok(vec![Self::publication(tenant, &notice)?]),
                None => Ok(Vec::new()),
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(status: ShipmentStatus) -> ShipmentUpdated {
        ShipmentUpdated {
            shipment_id: "s1".into(),
            order_id: "o1".into(),
            order_number: Some("#1001".into()),
            locale: Some("de".into()),
            status,
            eta: None,
            status_at: "2025-03-14T09:26:53Z".into(),
            carrier: Some("DHL".into()),
            tracking_number: None,
            tracking_url: None,
            provider_status: None,
        }
    }

    #[test]
    fn news_statuses_request_a_notice() {
        for (status, name) in [
            (ShipmentStatus::Delayed, "delayed"),
            (ShipmentStatus::Attempted, "attempted"),
            (ShipmentStatus::OutForDelivery, "out_for_delivery"),
        ] {
            let notice = decide(&OrderNews::default(), &update(status)).expect("news");
            assert_eq!(notice.status, name);
            assert_eq!(notice.message_key, format!("delivery_news.{name}"));
            assert_eq!(notice.order_id, "o1");
            assert_eq!(notice.order_number.as_deref(), Some("#1001"));
            assert_eq!(notice.shipment_id, "s1");
            assert_eq!(notice.locale.as_deref(), Some("de"));
        }
    }

    #[test]
    fn other_statuses_are_not_news() {
        for status in [
            ShipmentStatus::LabelCreated,
            ShipmentStatus::InTransit,
            ShipmentStatus::ReadyForPickup,
            ShipmentStatus::Delivered,
            ShipmentStatus::Returned,
            ShipmentStatus::Failed,
        ] {
            assert_eq!(decide(&OrderNews::default(), &update(status)), None);
        }
    }

    #[test]
    fn told_once_per_shipment_and_status() {
        let mut doc = OrderNews::default();
        assert!(apply(&mut doc, &update(ShipmentStatus::Delayed)).is_some());
        assert!(apply(&mut doc, &update(ShipmentStatus::Delayed)).is_none());
        // Another status of the same shipment is news.
        assert!(apply(&mut doc, &update(ShipmentStatus::OutForDelivery)).is_some());
        // The same status of another shipment is news.
        let mut other = update(ShipmentStatus::Delayed);
        other.shipment_id = "s2".into();
        assert!(apply(&mut doc, &other).is_some());
        assert_eq!(doc.notified.len(), 3);
    }

    #[test]
    fn optional_fields_stay_absent() {
        let mut bare = update(ShipmentStatus::Attempted);
        bare.order_number = None;
        bare.locale = None;
        let notice = decide(&OrderNews::default(), &bare).unwrap();
        let json = serde_json::to_value(&notice).unwrap();
        assert!(json.get("order_number").is_none());
        assert!(json.get("locale").is_none());
        assert_eq!(json["status"], "attempted");
    }

    #[test]
    fn registration_declares_the_notice() {
        let registration = registration();
        assert_eq!(registration.event_types, vec!["shipment.updated"]);
        assert_eq!(
            registration.publishes[0].event_type,
            "delivery_news.notice.requested"
        );
    }
}
