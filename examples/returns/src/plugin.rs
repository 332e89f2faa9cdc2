//! The handler: keeps what it needs of orders (lines, delivery), decides every return
//! request, tracks returns to closed. Publishes before saving, with idempotency keys from
//! the event, so a crash in between repeats nothing.

use omnigate_sdk::api::{CreatePlugin, PublishEvent, PublishedType};
use omnigate_sdk::events::ShipmentStatus;
use omnigate_sdk::state::{StateStore, Tracked, apply_once};
use omnigate_sdk::{Client, Data, Delivery, Handler, HandlerError, HandlerResult};
use serde_json::{Value, json};
use std::sync::Arc;

use crate::policy::{Book, Decision, Line, Policy, Returned, decide};

pub const CLOSED: &str = "returns.closed";

/// What to register at the gateway (`returns registration` prints it).
pub fn registration() -> CreatePlugin {
    let decided = json!({"type": "object", "required": ["return_id", "order_id", "rule"],
        "properties": {"return_id": {"type": "string"}, "order_id": {"type": "string"},
                       "rule": {"type": "string"}, "value": {"type": ["object", "null"]}}});
    let mut publishes: Vec<PublishedType> = [
        Decision::Approved,
        Decision::NeedsReview,
        Decision::Declined,
    ]
    .iter()
    .map(|d| PublishedType {
        event_type: d.event_type().into(),
        schema: decided.clone(),
    })
    .collect();
    publishes.push(PublishedType {
        event_type: CLOSED.into(),
        schema: json!({"type": "object", "required": ["return_id", "order_id"],
            "properties": {"return_id": {"type": "string"}, "order_id": {"type": "string"},
                           "refunded": {"type": "boolean"}, "status": {"type": ["string", "null"]}}}),
    });
    CreatePlugin {
        name: "Returns".into(),
        event_types: [
            "order.created",
            "shipment.updated",
            "return.requested",
            "return.updated",
            "refund.created",
        ]
        .map(String::from)
        .to_vec(),
        publishes,
        delivery: None,
    }
}

pub struct Returns {
    pub policy: Policy,
    pub books: Arc<dyn StateStore<Tracked<Book>>>,
}

fn publish(d: &Delivery, event_type: &str, subject: String, data: Value) -> PublishEvent {
    PublishEvent {
        tenant: d.event.tenant.clone(),
        event_type: event_type.into(),
        data,
        subject: Some(subject),
        occurred_at: None,
        idempotency_key: Some(format!("{}:{event_type}", d.event.id)),
    }
}

impl Returns {
    /// Applies one event to `book`: what to publish.
    pub fn apply(&self, book: &mut Book, d: &Delivery) -> Result<Vec<PublishEvent>, HandlerError> {
        let mut out = Vec::new();
        let closed = |book: &mut Book, return_id: &str, out: &mut Vec<PublishEvent>| {
            if let Some(r) = book.returns.get_mut(return_id)
                && r.settle()
            {
                out.push(publish(
                    d,
                    CLOSED,
                    format!("return/{return_id}"),
                    json!({"return_id": return_id, "order_id": r.order_id,
                           "refunded": r.refunded, "status": r.status}),
                ));
            }
        };
        match d.data()? {
            Data::OrderCreated(o) => {
                let order = book.orders.entry(o.order_id).or_default();
                for l in o.lines {
                    order.lines.insert(
                        l.line_id,
                        Line {
                            sku: l.sku,
                            unit_price: l.unit_price,
                        },
                    );
                }
            }
            Data::ShipmentUpdated(s) if s.status == ShipmentStatus::Delivered => {
                let at = chrono::DateTime::parse_from_rfc3339(&s.status_at)?.to_utc();
                book.orders.entry(s.order_id).or_default().delivered_at = Some(at);
            }
            Data::ReturnRequested(r) => {
                let requested = chrono::DateTime::parse_from_rfc3339(&r.requested_at)?.to_utc();
                let lines: Vec<Returned> = r
                    .lines
                    .iter()
                    .map(|l| Returned {
                        line_id: l.line.line_id.clone(),
                        quantity: l.line.quantity,
                    })
                    .collect();
                let (decision, rule, value) = decide(
                    &self.policy,
                    book.orders.get(&r.order_id),
                    &lines,
                    requested,
                );
                let entry = book.returns.entry(r.return_id.clone()).or_default();
                entry.order_id = r.order_id.clone();
                entry.decision = Some(decision);
                out.push(publish(
                    d,
                    decision.event_type(),
                    format!("return/{}", r.return_id),
                    json!({"return_id": r.return_id, "order_id": r.order_id, "rule": rule,
                           "value": value}),
                ));
            }
            Data::ReturnUpdated(r) => {
                let entry = book.returns.entry(r.return_id.clone()).or_default();
                entry.order_id = r.order_id;
                entry.status = Some(
                    serde_json::to_value(r.status)?
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                );
                closed(book, &r.return_id, &mut out);
            }
            Data::RefundCreated(refund) => {
                // The refund names its return when the shop says; else the order's open one.
                let return_id = refund.return_id.clone().or_else(|| {
                    book.returns
                        .iter()
                        .find(|(_, r)| r.order_id == refund.order_id && !r.closed)
                        .map(|(id, _)| id.clone())
                });
                if let Some(id) = return_id
                    && let Some(r) = book.returns.get_mut(&id)
                {
                    r.refunded = true;
                    closed(book, &id, &mut out);
                }
            }
            _ => {}
        }
        Ok(out)
    }
}

#[omnigate_sdk::async_trait]
impl Handler for Returns {
    async fn handle(&self, d: &Delivery, client: &Client) -> HandlerResult {
        apply_once(&*self.books, client, &d.event.tenant, &d.event.id, |book| {
            self.apply(book, d)
        })
        .await
    }
}
