//! Prom.ua, read by the poller: each order as `GET /orders/list` gives it now (topic
//! `order`). Prom.ua says only "modified", so an order is diffed against the last one kept:
//! the first time an order is seen is `order.created`, and a new status is its fact
//! (`paid` → `order.paid`, `delivered` → `order.fulfilled`, `canceled` →
//! `order.cancelled`); other changes are `order.updated`. Seen first in a later status
//! (the poll began mid-life), an order tells every fact its status shows. Amounts are
//! strings as the shop shows them (`1 200,50 грн.`), in hryvnias.

use omnigate_schemas::api::Provider;
use omnigate_schemas::events::{
    CancelReason, OrderCancelled, OrderCreated, OrderFulfilled, OrderPaid, OrderStatus,
    OrderUpdated, PaymentState, types,
};
use omnigate_schemas::{LineRef, Money, Party};
use serde_json::Value;

use super::fields::{Obj, full_name};
use super::snapshot::Snapshot;
use super::{Input, Normalized, Output, Rejection, id_text, money, time, unknown_topic};
use crate::json::Json;

/// Prom.ua sells in hryvnias.
const CURRENCY: &str = "UAH";

pub(super) fn snapshot_key(topic: &str, body: &Json<'_>) -> Option<String> {
    (topic == "order").then(|| Some(format!("order:{}", id_text(body.get("id"))?)))?
}

pub(super) fn normalize(input: Input<'_>) -> Result<Output, Rejection> {
    if input.topic != "order" {
        return Err(unknown_topic(Provider::Prom, input.topic));
    }
    let o = Obj::root(input.body)?;
    let map = input.body.as_object().expect("checked by Obj::root");
    let mut snap = Snapshot::of(map, &[]);
    let status = o.opt_str("status")?.unwrap_or("pending").to_string();
    snap.status = Some(status.clone());
    let prior = input.snapshot;
    let order_id = o.id("id")?;
    let subject = format!("order/{order_id}");
    let at = input.received_at;
    let mut events = Vec::new();
    let changed_status = prior.is_none_or(|p| p.status.as_deref() != Some(status.as_str()));
    if prior.is_none() {
        events.push(order_created(&o, &order_id, &status)?);
    }
    let fact = |name: &str| format!("prom:{order_id}:{name}");
    if changed_status {
        match status.as_str() {
            "paid" => events.push(paid(&o, &order_id, at)?.with_fact(fact("paid"))),
            "delivered" => {
                let data = OrderFulfilled {
                    order_id: order_id.clone(),
                    fulfilled_at: time::format(at),
                    fully: true,
                };
                events.push(
                    Normalized::new(types::ORDER_FULFILLED, at, subject.clone(), &data)?
                        .with_fact(fact("delivered")),
                );
            }
            "canceled" => {
                let cancellation = o.opt_obj("cancellation")?;
                let (initiator, reason) = match &cancellation {
                    Some(c) => (
                        c.obj().opt_str("initiator")?.map(str::to_string),
                        c.obj().opt_str("reason")?.map(str::to_string),
                    ),
                    None => (None, None),
                };
                let data = OrderCancelled {
                    order_id: order_id.clone(),
                    cancelled_at: time::format(at),
                    reason: match initiator.as_deref() {
                        Some("buyer") => CancelReason::Customer,
                        Some("seller") => CancelReason::Merchant,
                        _ => CancelReason::Other,
                    },
                    refund_expected: prior.is_some_and(|p| p.status.as_deref() == Some("paid")),
                    provider_reason: reason,
                };
                events.push(
                    Normalized::new(types::ORDER_CANCELLED, at, subject.clone(), &data)?
                        .with_fact(fact("canceled")),
                );
            }
            _ => {}
        }
    }
    let told = !events.is_empty();
    let changed = prior.filter(|p| !p.legacy).map(|p| snap.changed_since(p));
    let untold = prior.is_some() && !told && changed.as_ref().is_none_or(|c| !c.is_empty());
    if untold {
        let data = OrderUpdated {
            order_id: order_id.clone(),
            status: order_status(&status),
            changed_known: Some(changed.is_some()),
            changed: changed.unwrap_or_default(),
            updated_at: time::format(at),
            provider_status: Value::String(status.clone()),
        };
        events.push(Normalized::new(types::ORDER_UPDATED, at, subject, &data)?);
    }
    Ok(Output {
        events,
        snapshot: Some(snap),
    })
}

/// `1 200,50 грн.` → 1200.50 UAH.
fn amount(o: &Obj<'_>, key: &str) -> Result<Option<Money>, Rejection> {
    let Some(v) = o.get(key) else {
        return Ok(None);
    };
    let text = match v {
        Json::String(s) => s.to_string(),
        Json::Number(n) => n.to_string(),
        _ => return Err(o.err(key, "expected an amount")),
    };
    let cleaned: String = text
        .chars()
        .filter(|c| c.is_ascii_digit() || matches!(c, ',' | '.' | '-'))
        .map(|c| if c == ',' { '.' } else { c })
        .collect();
    let cleaned = cleaned.trim_end_matches('.');
    if cleaned.is_empty() {
        return Ok(None);
    }
    money::from_str(cleaned, CURRENCY)
        .map(Some)
        .ok_or_else(|| o.err(key, &format!("{text:?} is not an amount")))
}

fn order_status(status: &str) -> OrderStatus {
    match status {
        "pending" => OrderStatus::Pending,
        "received" | "paid" => OrderStatus::Processing,
        "delivered" => OrderStatus::Completed,
        "canceled" => OrderStatus::Cancelled,
        _ => OrderStatus::OnHold,
    }
}

fn total(o: &Obj<'_>) -> Result<Money, Rejection> {
    amount(o, "full_price")?
        .or(amount(o, "price")?)
        .ok_or_else(|| o.err("price", "the order total is missing"))
}

fn paid(
    o: &Obj<'_>,
    order_id: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Normalized, Rejection> {
    let method = match o.opt_obj("payment_option")? {
        Some(p) => p.obj().opt_str("name")?.map(str::to_string),
        None => None,
    };
    let data = OrderPaid {
        order_id: order_id.to_string(),
        amount: total(o)?,
        paid_at: time::format(at),
        method,
        reference: None,
    };
    Normalized::new(types::ORDER_PAID, at, format!("order/{order_id}"), &data)
}

fn order_created(o: &Obj<'_>, order_id: &str, status: &str) -> Result<Normalized, Rejection> {
    let placed_at = o.time("date_created")?;
    let total = total(o)?;
    let lines = o
        .objects("products")?
        .iter()
        .map(|p| {
            let p = p.obj();
            Ok(LineRef {
                line_id: p.id("id")?,
                sku: p.opt_id("sku")?.or(p.opt_id("external_id")?),
                product_id: p.opt_id("id")?,
                variant_id: None,
                title: p.opt_str("name")?.map(str::to_string),
                variant_title: None,
                quantity: p
                    .get("quantity")
                    .and_then(|q| q.as_u64().or_else(|| q.as_str()?.parse().ok()))
                    .ok_or_else(|| p.err("quantity", "expected a whole number"))?,
                unit_price: amount(&p, "price")?,
            })
        })
        .collect::<Result<Vec<_>, Rejection>>()?;
    let data = OrderCreated {
        order_id: order_id.to_string(),
        order_number: order_id.to_string(),
        status: order_status(status),
        placed_at: time::format(placed_at),
        currency: CURRENCY.into(),
        total,
        subtotal: amount(o, "price")?,
        tax: None,
        shipping: None,
        discount: None,
        lines,
        customer: Party {
            customer_id: o.opt_id("client_id")?,
            email: o.opt_str("email")?.map(str::to_string),
            phone: o.opt_str("phone")?.map(str::to_string),
            name: full_name(
                o.opt_str("client_first_name")?,
                o.opt_str("client_last_name")?,
            ),
            locale: None,
        },
        shipping_address: None,
        billing_address: None,
        payment_state: match status {
            "paid" | "delivered" => PaymentState::Paid,
            _ => PaymentState::Pending,
        },
        provider_status: Value::String(status.to_string()),
    };
    Normalized::new(
        types::ORDER_CREATED,
        placed_at,
        format!("order/{order_id}"),
        &data,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn amounts_are_read_as_the_shop_shows_them() {
        let body = json!({
            "a": "1 270,50 грн.", "b": "100.00", "c": "1\u{a0}200 грн.", "d": 84.9,
            "e": "", "f": "безкоштовно"
        });
        let body = Json::from(&body);
        let o = Obj::root(&body).unwrap();
        let amount = |k| amount(&o, k).unwrap().map(|m| m.amount);
        assert_eq!(amount("a").as_deref(), Some("1270.50"));
        assert_eq!(amount("b").as_deref(), Some("100.00"));
        assert_eq!(amount("c").as_deref(), Some("1200.00"));
        assert_eq!(amount("d").as_deref(), Some("84.90"));
        assert_eq!(amount("e"), None);
        assert_eq!(amount("f"), None, "no digits: no amount");
        assert_eq!(amount("missing"), None);
    }
}
