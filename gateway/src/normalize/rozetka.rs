//! Rozetka, read by the poller: each order as `GET /orders/search` gives it (topic
//! `order`), diffed against the last one kept. The first time an order is seen is
//! `order.created`; then each fact the order shows is told once: a status of the
//! "unsuccessful" group (3) is `order.cancelled`, of the "successful" group (2)
//! `order.fulfilled`, a payment status `paid` is `order.paid`, and a waybill (`ttn`) is
//! `shipment.created`. Other changes are `order.updated`. An order first seen late (the
//! poll began mid-life) tells every fact it shows. Times are Kyiv wall-clock text, amounts
//! decimal strings in hryvnias.

use chrono::{DateTime, Utc};
use omnigate_schemas::api::Provider;
use omnigate_schemas::events::{
    CancelReason, OrderCancelled, OrderCreated, OrderFulfilled, OrderPaid, OrderStatus,
    OrderUpdated, PaymentState, ShipmentCreated, types,
};
use omnigate_schemas::{LineRef, Money, Party};
use serde_json::Value;

use super::fields::{Obj, full_name};
use super::snapshot::Snapshot;
use super::{Input, Normalized, Output, Rejection, id_text, time, unknown_topic};
use crate::json::Json;

/// Rozetka writes Kyiv wall-clock time.
const ZONE: chrono_tz::Tz = time::KYIV;

/// Rozetka sells in hryvnias.
const CURRENCY: &str = "UAH";
/// What changes on every read without anything happening to the order.
const VOLATILE: &[&str] = &[
    "changed",
    "is_viewed",
    "can_prolong",
    "is_reserve_ending",
    "status_available",
    "can_copy",
    "feedback_count",
    "chatUser",
    "chatMessages",
];
/// Status group 2: finished successfully; 3: finished unsuccessfully (cancelled).
const SUCCESSFUL: i64 = 2;
const UNSUCCESSFUL: i64 = 3;
/// Status 68: "received in part".
const RECEIVED_IN_PART: i64 = 68;

pub(super) fn snapshot_key(topic: &str, body: &Json<'_>) -> Option<String> {
    (topic == "order").then(|| Some(format!("order:{}", id_text(body.get("id"))?)))?
}

/// An integer Rozetka may write as a number or a string.
fn int(o: &Obj<'_>, key: &str) -> Result<Option<i64>, Rejection> {
    match o.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_str()?.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| o.err(key, "expected a whole number")),
    }
}

/// A Kyiv wall-clock time.
fn kyiv(o: &Obj<'_>, key: &str) -> Result<Option<DateTime<Utc>>, Rejection> {
    match o.opt_str(key)? {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) => time::naive_in(s, ZONE)
            .map(Some)
            .ok_or_else(|| o.err(key, &format!("{s:?} is not a time"))),
    }
}

pub(super) fn normalize(input: Input<'_>) -> Result<Output, Rejection> {
    if input.topic != "order" {
        return Err(unknown_topic(Provider::Rozetka, input.topic));
    }
    let o = Obj::root(input.body)?;
    let map = input.body.as_object().expect("checked by Obj::root");
    let mut snap = Snapshot::of(map, VOLATILE);
    let status = int(&o, "status")?.ok_or_else(|| o.err("status", "required status is missing"))?;
    let group = int(&o, "status_group")?;
    snap.status = Some(status.to_string());
    let payment = match o.opt_obj("status_payment")? {
        Some(p) => p.obj().opt_str("name")?.map(str::to_string),
        None => None,
    };
    let prior = input.snapshot;
    let order_id = o.id("id")?;
    let subject = format!("order/{order_id}");
    let at = kyiv(&o, "changed")?.unwrap_or(input.received_at);
    let changed = prior.filter(|p| !p.legacy).map(|p| snap.changed_since(p));
    // Whether a field moved since the kept order (everything is news on first sight).
    let moved = |field: &str| {
        prior.is_none()
            || changed
                .as_ref()
                .is_none_or(|c| c.iter().any(|f| f == field))
    };
    let fact = |name: &str| format!("rozetka:{order_id}:{name}");
    let mut events = Vec::new();
    if prior.is_none() {
        events.push(order_created(
            &o,
            &order_id,
            status,
            group,
            payment.as_deref(),
        )?);
    }
    if moved("status_payment") && payment.as_deref() == Some("paid") {
        let paid_at = match o.opt_obj("status_payment")? {
            Some(p) => kyiv(&p.obj(), "created_at")?,
            None => None,
        }
        .unwrap_or(at);
        let data = OrderPaid {
            order_id: order_id.clone(),
            amount: total(&o)?,
            paid_at: time::format(paid_at),
            method: o.opt_str("payment_type_name")?.map(str::to_string),
            reference: None,
        };
        events.push(
            Normalized::new(types::ORDER_PAID, paid_at, subject.clone(), &data)?
                .with_fact(fact("paid")),
        );
    }
    let ttn = o.opt_str("ttn")?.map(str::trim).filter(|t| !t.is_empty());
    if let Some(ttn) = ttn
        && moved("ttn")
    {
        let carrier = match o.opt_obj("delivery")? {
            Some(d) => d
                .obj()
                .opt_str("delivery_service_name")?
                .map(str::to_string),
            None => None,
        };
        let data = ShipmentCreated {
            shipment_id: ttn.to_string(),
            order_id: order_id.clone(),
            order_number: Some(order_id.clone()),
            locale: input.shop_locale.map(str::to_string),
            carrier,
            tracking_number: Some(ttn.to_string()),
            tracking_url: None,
            lines: lines(&o)?,
            shipped_at: time::format(at),
            destination: None,
        };
        events.push(
            Normalized::new(types::SHIPMENT_CREATED, at, subject.clone(), &data)?
                .with_fact(fact(&format!("ttn:{ttn}"))),
        );
    }
    if moved("status") {
        match group {
            Some(SUCCESSFUL) => {
                let data = OrderFulfilled {
                    order_id: order_id.clone(),
                    fulfilled_at: time::format(at),
                    fully: status != RECEIVED_IN_PART,
                };
                events.push(
                    Normalized::new(types::ORDER_FULFILLED, at, subject.clone(), &data)?
                        .with_fact(fact("fulfilled")),
                );
            }
            Some(UNSUCCESSFUL) => {
                let provider_reason = match o.opt_obj("status_data")? {
                    Some(s) => {
                        let s = s.obj();
                        s.opt_str("name_en")?
                            .or(s.opt_str("name_uk")?)
                            .or(s.opt_str("name")?)
                            .map(str::to_string)
                    }
                    None => None,
                };
                let data = OrderCancelled {
                    order_id: order_id.clone(),
                    cancelled_at: time::format(at),
                    reason: cancel_reason(status),
                    refund_expected: payment.as_deref() == Some("paid")
                        || prior.is_some_and(|p| p.paid_at.is_some()),
                    provider_reason: provider_reason.or(Some(format!("status {status}"))),
                };
                events.push(
                    Normalized::new(types::ORDER_CANCELLED, at, subject.clone(), &data)?
                        .with_fact(fact("cancelled")),
                );
            }
            _ => {}
        }
    }
    if payment.as_deref() == Some("paid") {
        snap.paid_at = Some(time::format(at));
    } else if let Some(p) = prior {
        snap.paid_at = p.paid_at.clone();
    }
    let told = !events.is_empty();
    let untold = prior.is_some() && !told && changed.as_ref().is_none_or(|c| !c.is_empty());
    if untold {
        let data = OrderUpdated {
            order_id: order_id.clone(),
            status: order_status(status, group),
            changed_known: Some(changed.is_some()),
            changed: changed.unwrap_or_default(),
            updated_at: time::format(at),
            provider_status: Value::from(status),
        };
        events.push(Normalized::new(types::ORDER_UPDATED, at, subject, &data)?);
    }
    Ok(Output {
        events,
        snapshot: Some(snap),
    })
}

/// Rozetka's cancellation statuses, by who or what ended the order.
fn cancel_reason(status: i64) -> CancelReason {
    match status {
        11 | 12 | 17 | 20 | 24 | 33 | 37 | 38 | 40 | 45 => CancelReason::Customer,
        16 | 42 | 43 => CancelReason::Stock,
        44 => CancelReason::Fraud,
        50 | 51 | 77 => CancelReason::Payment,
        7 | 13 | 30 | 31 | 75 => CancelReason::Marketplace,
        _ => CancelReason::Other,
    }
}

fn order_status(status: i64, group: Option<i64>) -> OrderStatus {
    match (status, group) {
        (_, Some(SUCCESSFUL)) => OrderStatus::Completed,
        (_, Some(UNSUCCESSFUL)) => OrderStatus::Cancelled,
        // "New order", "new order in one click", "awaiting the customer's confirmation".
        (1 | 52 | 53, _) => OrderStatus::Pending,
        _ => OrderStatus::Processing,
    }
}

/// What the customer pays: with delivery and discounts, else the goods' sum.
fn total(o: &Obj<'_>) -> Result<Money, Rejection> {
    for key in [
        "cost_with_discount",
        "cost",
        "amount_with_discount",
        "amount",
    ] {
        if let Some(m) = o.opt_money(key, CURRENCY)? {
            return Ok(m);
        }
    }
    Err(o.err("cost", "the order total is missing"))
}

fn lines(o: &Obj<'_>) -> Result<Vec<LineRef>, Rejection> {
    o.objects("purchases")?
        .iter()
        .map(|p| {
            let p = p.obj();
            let item = p.opt_obj("item")?;
            let sku = match &item {
                Some(i) => {
                    let i = i.obj();
                    i.opt_str("article")?
                        .filter(|a| !a.trim().is_empty())
                        .map(str::to_string)
                        .or(i.opt_id("price_offer_id")?)
                }
                None => None,
            };
            Ok(LineRef {
                line_id: p.id("id")?,
                sku,
                product_id: p.opt_id("item_id")?,
                variant_id: None,
                title: p.opt_str("item_name")?.map(str::to_string),
                variant_title: None,
                quantity: p
                    .get("quantity")
                    .and_then(|q| q.as_u64().or_else(|| q.as_str()?.parse().ok()))
                    .ok_or_else(|| p.err("quantity", "expected a whole number"))?,
                unit_price: match p.opt_money("price_with_discount", CURRENCY)? {
                    Some(m) => Some(m),
                    None => p.opt_money("price", CURRENCY)?,
                },
            })
        })
        .collect()
}

fn order_created(
    o: &Obj<'_>,
    order_id: &str,
    status: i64,
    group: Option<i64>,
    payment: Option<&str>,
) -> Result<Normalized, Rejection> {
    let placed_at =
        kyiv(o, "created")?.ok_or_else(|| o.err("created", "required time is missing"))?;
    let title = o.opt_obj("user_title")?;
    let (first, last) = match &title {
        Some(t) => (
            t.obj().opt_str("first_name")?,
            t.obj().opt_str("last_name")?,
        ),
        None => (None, None),
    };
    let user = o.opt_obj("user")?;
    let (customer_id, email) = match &user {
        Some(u) => {
            let u = u.obj();
            (
                u.opt_id("id")?,
                // Rozetka writes `"true"` here when it has an e-mail it does not show.
                u.opt_str("email")?
                    .filter(|e| e.contains('@'))
                    .map(str::to_string),
            )
        }
        None => (None, None),
    };
    let shipping = match o.opt_obj("delivery")? {
        Some(d) => d.obj().opt_money("cost", CURRENCY)?,
        None => None,
    };
    let data = OrderCreated {
        order_id: order_id.to_string(),
        order_number: order_id.to_string(),
        status: order_status(status, group),
        placed_at: time::format(placed_at),
        currency: CURRENCY.into(),
        total: total(o)?,
        subtotal: o.opt_money("amount", CURRENCY)?,
        tax: None,
        shipping,
        discount: None,
        lines: lines(o)?,
        customer: Party {
            customer_id,
            email,
            phone: o.opt_str("user_phone")?.map(str::to_string),
            name: full_name(first, last),
            locale: None,
        },
        shipping_address: None,
        billing_address: None,
        payment_state: match payment {
            Some("paid") => PaymentState::Paid,
            Some("hold") => PaymentState::Authorized,
            _ => PaymentState::Pending,
        },
        provider_status: Value::from(status),
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

    #[test]
    fn cancellations_name_who_ended_the_order() {
        assert_eq!(cancel_reason(45), CancelReason::Customer);
        assert_eq!(cancel_reason(42), CancelReason::Stock);
        assert_eq!(cancel_reason(44), CancelReason::Fraud);
        assert_eq!(cancel_reason(50), CancelReason::Payment);
        assert_eq!(cancel_reason(30), CancelReason::Marketplace);
        assert_eq!(cancel_reason(999), CancelReason::Other);
        assert_eq!(order_status(1, Some(1)), OrderStatus::Pending);
        assert_eq!(order_status(3, Some(1)), OrderStatus::Processing);
        assert_eq!(order_status(6, Some(2)), OrderStatus::Completed);
        assert_eq!(order_status(45, Some(3)), OrderStatus::Cancelled);
    }
}
