//! Mercado Libre, read back: an `orders_v2` notification says only that an order changed,
//! so the order (`GET /orders/{id}`) tells its facts: `order.created` the first time,
//! `order.paid` once its status is `paid`, `order.cancelled` once `cancelled`, each once
//! however many notifications follow; and the full `order.updated` of the notification.

use omnigate_schemas::events::{
    CancelReason, OrderCancelled, OrderCreated, OrderPaid, OrderStatus, OrderUpdated, PaymentState,
    types,
};
use omnigate_schemas::{LineRef, Party};
use serde_json::Value;

use super::Thin;
use crate::json::Json;
use crate::normalize::fields::{Obj, full_name};
use crate::normalize::{Normalized, Rejection, time};

pub(super) fn enriched(thin: &Thin<'_>, resource: &Json<'_>) -> Result<Vec<Normalized>, Rejection> {
    if thin.event_type != types::ORDER_UPDATED {
        return Ok(Vec::new());
    }
    let root = Obj::root(resource)?;
    let order = root
        .opt_obj("order")?
        .ok_or_else(|| root.err("order", "the order was not read"))?;
    let o = order.obj();
    let order_id = o.id("id")?;
    let subject = format!("order/{order_id}");
    let currency = o.currency("currency_id")?;
    let status = o.str("status")?.to_string();
    let placed_at = o.time("date_created")?;
    let updated_at = o.opt_time("last_updated")?.unwrap_or(thin.occurred_at);
    let total = o.money("total_amount", &currency)?;
    let fact = |name: &str| format!("mercadolibre:{order_id}:{name}");
    let payments = o.objects("payments")?;
    let approved = payments
        .iter()
        .map(|p| p.obj())
        .find(|p| p.opt_str("status").ok().flatten() == Some("approved"));

    let lines = o
        .objects("order_items")?
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let l = line.obj();
            let item = l.opt_obj("item")?;
            let (id, title, sku, variation) = match &item {
                Some(item) => {
                    let item = item.obj();
                    (
                        item.opt_id("id")?,
                        item.opt_str("title")?.map(str::to_string),
                        item.opt_str("seller_sku")?.map(str::to_string),
                        item.opt_id("variation_id")?,
                    )
                }
                None => (None, None, None, None),
            };
            Ok(LineRef {
                line_id: format!("{}:{i}", id.as_deref().unwrap_or("item")),
                sku,
                product_id: id,
                variant_id: variation,
                title,
                variant_title: None,
                quantity: l.u64("quantity")?,
                unit_price: l.opt_money("unit_price", &currency)?,
            })
        })
        .collect::<Result<Vec<_>, Rejection>>()?;
    let buyer = match o.opt_obj("buyer")? {
        Some(b) => {
            let b = b.obj();
            Party {
                customer_id: b.opt_id("id")?,
                // Mercado Libre relays messages and shows no address.
                email: None,
                phone: None,
                name: full_name(b.opt_str("first_name")?, b.opt_str("last_name")?)
                    .or(b.opt_str("nickname")?.map(str::to_string)),
                locale: None,
            }
        }
        None => Party::default(),
    };

    let mut events = Vec::new();
    let created = OrderCreated {
        order_id: order_id.clone(),
        order_number: order_id.clone(),
        status: order_status(&status),
        placed_at: time::format(placed_at),
        currency: currency.clone(),
        total: total.clone(),
        subtotal: None,
        tax: None,
        shipping: None,
        discount: None,
        lines,
        customer: buyer,
        shipping_address: None,
        billing_address: None,
        payment_state: match status.as_str() {
            "paid" | "partially_refunded" => PaymentState::Paid,
            _ => PaymentState::Pending,
        },
        provider_status: Value::String(status.clone()),
    };
    events.push(
        Normalized::new(types::ORDER_CREATED, placed_at, subject.clone(), &created)?
            .with_fact(fact("created")),
    );
    if status == "paid" {
        let paid_at = match &approved {
            Some(p) => p.opt_time("date_approved")?,
            None => None,
        }
        .or(o.opt_time("date_closed")?)
        .unwrap_or(updated_at);
        let data = OrderPaid {
            order_id: order_id.clone(),
            amount: o
                .opt_money("paid_amount", &currency)?
                .unwrap_or(total.clone()),
            paid_at: time::format(paid_at),
            method: match &approved {
                Some(p) => p.opt_str("payment_type")?.map(str::to_string),
                None => None,
            },
            reference: match &approved {
                Some(p) => p.opt_id("id")?,
                None => None,
            },
        };
        events.push(
            Normalized::new(types::ORDER_PAID, paid_at, subject.clone(), &data)?
                .with_fact(fact("paid")),
        );
    }
    if status == "cancelled" {
        let data = OrderCancelled {
            order_id: order_id.clone(),
            cancelled_at: time::format(updated_at),
            reason: CancelReason::Marketplace,
            refund_expected: approved.is_some(),
            provider_reason: match o.opt_obj("cancel_detail")? {
                Some(d) => d.obj().opt_str("description")?.map(str::to_string),
                None => None,
            },
        };
        events.push(
            Normalized::new(types::ORDER_CANCELLED, updated_at, subject.clone(), &data)?
                .with_fact(fact("cancelled")),
        );
    }
    let updated = OrderUpdated {
        order_id,
        status: order_status(&status),
        changed: Vec::new(),
        changed_known: Some(false),
        updated_at: time::format(updated_at),
        provider_status: Value::String(status),
    };
    events.push(
        Normalized::new(types::ORDER_UPDATED, updated_at, subject, &updated)?
            .with_fact(thin.fact()),
    );
    Ok(events)
}

fn order_status(status: &str) -> OrderStatus {
    match status {
        "paid" => OrderStatus::Processing,
        "cancelled" | "invalid" => OrderStatus::Cancelled,
        "partially_refunded" => OrderStatus::Refunded,
        // confirmed, payment_required, payment_in_process, partially_paid, pending_cancel
        _ => OrderStatus::Pending,
    }
}
