//! The handler (files events on customer timelines, raises alerts) and the sweep that
//! raises an alert for orders not confirmed in time.

use chrono::{DateTime, Duration, Utc};
use omnigate_sdk::api::{CreatePlugin, PublishEvent, PublishedType};
use omnigate_sdk::events::ShipmentStatus;
use omnigate_sdk::state::{StateStore, Tracked, apply_once};
use omnigate_sdk::{Client, Data, Delivery, Handler, HandlerError, HandlerResult};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use crate::timeline::{Book, Entry, Pending};

pub const ALERT: &str = "service.alert";

/// Where "now" comes from (a test moves it).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// What to register at the gateway (`contact-center registration` prints it).
pub fn registration() -> CreatePlugin {
    CreatePlugin {
        name: "Contact centre".into(),
        event_types: [
            "order.*",
            "shipment.*",
            "return.*",
            "refund.created",
            "message.received",
            "customer.*",
        ]
        .map(String::from)
        .to_vec(),
        publishes: vec![PublishedType {
            event_type: ALERT.into(),
            schema: json!({"type": "object", "required": ["kind"], "properties": {
                "kind": {"enum": ["order_unconfirmed", "shipment_delayed", "regular_customer_return"]},
                "order_id": {"type": ["string", "null"]}, "customer_id": {"type": ["string", "null"]},
                "detail": {"type": "string"}}}),
        }],
        delivery: None,
    }
}

pub struct ContactCenter {
    pub books: Arc<dyn StateStore<Tracked<Book>>>,
    /// Alert when an order is not paid or moved on within this (default 10 minutes).
    pub confirm_within: Duration,
    /// Returns from customers with at least this many orders raise an alert (default 3).
    pub regular_orders: usize,
    pub clock: Clock,
    /// Shops seen by this process, for the sweep.
    pub tenants: Arc<Mutex<BTreeSet<String>>>,
}

fn alert(
    tenant: &str,
    key: String,
    kind: &str,
    order: Option<&str>,
    customer: Option<&str>,
    detail: String,
) -> PublishEvent {
    PublishEvent {
        tenant: tenant.into(),
        event_type: ALERT.into(),
        data: json!({"kind": kind, "order_id": order, "customer_id": customer, "detail": detail}),
        subject: Some(match (customer, order) {
            (Some(c), _) => format!("customer/{c}"),
            (None, Some(o)) => format!("order/{o}"),
            _ => "alert".into(),
        }),
        occurred_at: None,
        idempotency_key: Some(key),
    }
}

impl ContactCenter {
    /// Files one event and returns the alerts it raises.
    pub fn apply(&self, book: &mut Book, d: &Delivery) -> Result<Vec<PublishEvent>, HandlerError> {
        let ev = &d.event;
        let entry = |order: Option<&str>, channel: Option<&str>, summary: String| Entry {
            at: ev.occurred_at.clone(),
            kind: ev.event_type.clone(),
            order_id: order.map(str::to_string),
            channel: channel.unwrap_or(&ev.source.provider).to_string(),
            summary,
        };
        let mut out = Vec::new();
        match d.data()? {
            Data::OrderCreated(o) => {
                let who = book.file(
                    o.customer.customer_id.as_deref(),
                    o.customer.email.as_deref(),
                    entry(
                        Some(&o.order_id),
                        None,
                        format!(
                            "order {} for {} {}",
                            o.order_number, o.total.amount, o.total.currency
                        ),
                    ),
                );
                if let Some(customer_id) = who
                    && !book.confirmed.contains(&o.order_id)
                {
                    let placed_at = chrono::DateTime::parse_from_rfc3339(&o.placed_at)?.to_utc();
                    book.unconfirmed.insert(
                        o.order_id,
                        Pending {
                            customer_id,
                            placed_at,
                            alerted: false,
                        },
                    );
                }
            }
            Data::OrderPaid(p) => {
                book.confirm(&p.order_id);
                book.file(
                    None,
                    None,
                    entry(
                        Some(&p.order_id),
                        None,
                        format!("paid {} {}", p.amount.amount, p.amount.currency),
                    ),
                );
            }
            Data::OrderCancelled(c) => {
                book.confirm(&c.order_id);
                book.file(
                    None,
                    None,
                    entry(Some(&c.order_id), None, "cancelled".into()),
                );
            }
            Data::OrderFulfilled(f) => {
                book.confirm(&f.order_id);
                book.file(
                    None,
                    None,
                    entry(Some(&f.order_id), None, "fulfilled".into()),
                );
            }
            Data::OrderUpdated(u) => {
                book.confirm(&u.order_id);
                book.file(None, None, entry(Some(&u.order_id), None, "updated".into()));
            }
            Data::ShipmentCreated(s) => {
                book.file(
                    None,
                    None,
                    entry(
                        Some(&s.order_id),
                        None,
                        format!("shipped with {}", s.carrier.unwrap_or_default()),
                    ),
                );
            }
            Data::ShipmentUpdated(s) => {
                let status = serde_json::to_value(s.status)?
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                let who = book.file(
                    None,
                    None,
                    entry(Some(&s.order_id), None, format!("shipment {status}")),
                );
                if s.status == ShipmentStatus::Delayed {
                    out.push(alert(
                        &ev.tenant,
                        format!("{}:delayed", ev.id),
                        "shipment_delayed",
                        Some(&s.order_id),
                        who.as_deref(),
                        format!("shipment {} is delayed", s.shipment_id),
                    ));
                }
            }
            Data::ReturnRequested(r) => {
                let who = book.file(
                    r.customer.customer_id.as_deref(),
                    None,
                    entry(
                        Some(&r.order_id),
                        None,
                        format!("return {} requested", r.return_id),
                    ),
                );
                if let Some(c) = &who
                    && book.orders_of(c) >= self.regular_orders
                {
                    out.push(alert(
                        &ev.tenant,
                        format!("{}:regular", ev.id),
                        "regular_customer_return",
                        Some(&r.order_id),
                        Some(c),
                        format!(
                            "a customer with {} orders opened a return",
                            book.orders_of(c)
                        ),
                    ));
                }
            }
            Data::ReturnUpdated(r) => {
                book.file(
                    None,
                    None,
                    entry(
                        Some(&r.order_id),
                        None,
                        format!("return {} updated", r.return_id),
                    ),
                );
            }
            Data::RefundCreated(r) => {
                book.file(
                    None,
                    None,
                    entry(
                        Some(&r.order_id),
                        None,
                        format!("refund {} {}", r.amount.amount, r.amount.currency),
                    ),
                );
            }
            Data::MessageReceived(m) => {
                let channel = serde_json::to_value(m.channel)?
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                book.file(
                    m.from.customer_id.as_deref(),
                    m.from.email.as_deref(),
                    entry(
                        m.order_id.as_deref(),
                        Some(&channel),
                        m.text.chars().take(120).collect(),
                    ),
                );
            }
            Data::CustomerCreated(c) | Data::CustomerUpdated(c) => {
                book.file(
                    Some(&c.customer_id),
                    c.email.as_deref(),
                    entry(None, None, "customer record".into()),
                );
            }
            _ => {}
        }
        Ok(out)
    }

    /// Raises `order_unconfirmed` for every shop's orders not confirmed in time.
    pub async fn sweep(&self, client: &Client) -> Result<usize, HandlerError> {
        let tenants: Vec<String> = self
            .tenants
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect();
        let mut raised = 0;
        for tenant in tenants {
            for _ in 0..10 {
                let (mut tracked, version) = self.books.load(&tenant).await?;
                let overdue = tracked.doc.overdue((self.clock)(), self.confirm_within);
                if overdue.is_empty() {
                    break;
                }
                for (order, customer) in &overdue {
                    let detail = format!(
                        "order {order} not confirmed within {} minutes",
                        self.confirm_within.num_minutes()
                    );
                    client
                        .events()
                        .publish(&alert(
                            &tenant,
                            format!("unconfirmed:{order}"),
                            "order_unconfirmed",
                            Some(order),
                            Some(customer),
                            detail,
                        ))
                        .await?;
                }
                if self.books.save(&tenant, &tracked, version).await? {
                    raised += overdue.len();
                    break;
                }
            }
        }
        Ok(raised)
    }
}

#[omnigate_sdk::async_trait]
impl Handler for ContactCenter {
    async fn handle(&self, d: &Delivery, client: &Client) -> HandlerResult {
        self.tenants
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(d.event.tenant.clone());
        apply_once(&*self.books, client, &d.event.tenant, &d.event.id, |book| {
            self.apply(book, d)
        })
        .await
    }
}
