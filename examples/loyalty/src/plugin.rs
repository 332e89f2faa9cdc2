//! The handler: applies each event to the shop's book once, publishes what changed, and
//! saves the book. Publishing first, with idempotency keys derived from the event, keeps a
//! crash between the two harmless: the redelivery publishes the same events again, which
//! the gateway recognises, and then saves.

use omnigate_sdk::api::{CreatePlugin, PublishEvent, PublishedType};
use omnigate_sdk::events::ShipmentStatus;
use omnigate_sdk::{Client, Data, Delivery, Handler, HandlerResult};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

use crate::rules::{Book, Change, Policy};
use omnigate_sdk::state::{StateStore, Tracked, apply_once};

pub const POINTS_CHANGED: &str = "loyalty.points.changed";
pub const NPS_REQUESTED: &str = "loyalty.nps.requested";
pub const NPS_ANSWERED: &str = "loyalty.nps.answered";
pub const NPS_UPDATED: &str = "loyalty.nps.updated";

/// What to register at the gateway (`loyalty registration` prints it).
pub fn registration() -> CreatePlugin {
    let object = |required: &[&str], props: Value| json!({"type": "object", "required": required, "properties": props});
    CreatePlugin {
        name: "Loyalty and NPS".into(),
        event_types: [
            "order.created",
            "order.paid",
            "order.cancelled",
            "refund.created",
            "shipment.updated",
            NPS_ANSWERED,
        ]
        .map(String::from)
        .to_vec(),
        publishes: vec![
            PublishedType {
                event_type: POINTS_CHANGED.into(),
                schema: object(
                    &["customer_id", "delta", "balance", "tier", "reason"],
                    json!({"customer_id": {"type": "string"}, "order_id": {"type": "string"},
                           "delta": {"type": "integer"}, "balance": {"type": "integer"},
                           "tier": {"type": "string"}, "reason": {"type": "string"}}),
                ),
            },
            PublishedType {
                event_type: NPS_REQUESTED.into(),
                schema: object(
                    &["order_id"],
                    json!({"order_id": {"type": "string"}, "customer_id": {"type": "string"}}),
                ),
            },
            PublishedType {
                event_type: NPS_ANSWERED.into(),
                schema: object(
                    &["score"],
                    json!({"score": {"type": "integer", "minimum": 0, "maximum": 10},
                           "customer_id": {"type": "string"}}),
                ),
            },
            PublishedType {
                event_type: NPS_UPDATED.into(),
                schema: object(
                    &["promoters", "passives", "detractors"],
                    json!({"nps": {"type": ["integer", "null"]}, "promoters": {"type": "integer"},
                           "passives": {"type": "integer"}, "detractors": {"type": "integer"}}),
                ),
            },
        ],
        delivery: None,
    }
}

pub struct Loyalty {
    pub policy: Policy,
    pub books: Arc<dyn StateStore<Tracked<Book>>>,
}

#[derive(Deserialize)]
struct NpsAnswer {
    score: u8,
}

fn publish(
    tenant: &str,
    event_id: &str,
    n: usize,
    event_type: &str,
    subject: String,
    data: Value,
) -> PublishEvent {
    PublishEvent {
        tenant: tenant.to_string(),
        event_type: event_type.to_string(),
        data,
        subject: Some(subject),
        occurred_at: None,
        idempotency_key: Some(format!("{event_id}:{n}")),
    }
}

fn points_changed(tenant: &str, event_id: &str, c: Change) -> PublishEvent {
    publish(
        tenant,
        event_id,
        0,
        POINTS_CHANGED,
        format!("customer/{}", c.customer_id),
        json!({"customer_id": c.customer_id, "order_id": c.order_id, "delta": c.delta,
               "balance": c.balance, "tier": c.tier, "reason": c.reason}),
    )
}

impl Loyalty {
    /// Applies one event to `book`: what to publish.
    pub fn apply(
        &self,
        book: &mut Book,
        d: &Delivery,
    ) -> Result<Vec<PublishEvent>, omnigate_sdk::HandlerError> {
        let (tenant, id) = (d.event.tenant.as_str(), d.event.id.as_str());
        let mut out = Vec::new();
        match d.data()? {
            Data::OrderCreated(o) => book.remember_order(&o.order_id, o.customer.customer_id),
            Data::OrderPaid(p) => {
                if !book.orders.contains_key(&p.order_id) {
                    // Its order.created has not been applied yet: try again later.
                    return Err(format!("order {} is not known yet", p.order_id).into());
                }
                if let Some(c) = book.paid(&self.policy, &p.order_id, &p.amount) {
                    out.push(points_changed(tenant, id, c));
                }
            }
            Data::RefundCreated(r) => {
                if let Some(c) = book.refunded(&self.policy, &r.order_id, &r.amount) {
                    out.push(points_changed(tenant, id, c));
                }
            }
            Data::OrderCancelled(o) => {
                if let Some(c) = book.cancelled(&self.policy, &o.order_id) {
                    out.push(points_changed(tenant, id, c));
                }
            }
            Data::ShipmentUpdated(s) if s.status == ShipmentStatus::Delivered => {
                let customer = book
                    .orders
                    .get(&s.order_id)
                    .and_then(|o| o.customer_id.clone());
                out.push(publish(
                    tenant,
                    id,
                    0,
                    NPS_REQUESTED,
                    format!("order/{}", s.order_id),
                    json!({"order_id": s.order_id, "customer_id": customer}),
                ));
            }
            Data::Other(v) if d.event.event_type == NPS_ANSWERED => {
                let answer: NpsAnswer = serde_json::from_value(v)?;
                if answer.score > 10 {
                    return Err("an NPS score is 0 to 10".into());
                }
                book.nps.answer(answer.score);
                out.push(publish(
                    tenant,
                    id,
                    0,
                    NPS_UPDATED,
                    "nps".into(),
                    json!({"nps": book.nps.score(), "promoters": book.nps.promoters,
                           "passives": book.nps.passives, "detractors": book.nps.detractors}),
                ));
            }
            _ => {}
        }
        Ok(out)
    }
}

#[omnigate_sdk::async_trait]
impl Handler for Loyalty {
    async fn handle(&self, d: &Delivery, client: &Client) -> HandlerResult {
        apply_once(&*self.books, client, &d.event.tenant, &d.event.id, |book| {
            self.apply(book, d)
        })
        .await
    }
}
