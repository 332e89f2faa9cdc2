//! Shopify REST webhooks. Bodies follow the REST resource of `X-Shopify-API-Version`;
//! integer ids become strings and shop-offset times become UTC. A dedicated topic always
//! wins: nothing is derived from `orders/create` or `orders/updated` that Shopify sends
//! under its own topic (`orders/paid`, `orders/cancelled`, `orders/fulfilled`), except by an
//! `orders/updated` for an order without a kept snapshot (connected mid-life, or the
//! snapshot expired): it tells the facts its body shows, with the ids the dedicated topics
//! give them (once per order), so whichever comes first is kept and the other adds nothing.

use crate::json::Json;
use chrono::{DateTime, Duration, Utc};
use omnigate_schemas::api::Provider;
use omnigate_schemas::events::{
    CancelReason, Customer, CustomerErasureRequested, ErasureScope, MarketingConsent,
    OrderCancelled, OrderCreated, OrderFulfilled, OrderPaid, OrderStatus, OrderUpdated,
    PaymentState, RefundCreated, RefundStatus, ReturnLine, ReturnRequested, ReturnStatus,
    ReturnUpdated, ShipmentCreated, ShipmentStatus, ShipmentUpdated, StockChanged, StockMethod,
    types,
};
use omnigate_schemas::{Address, LineRef, Money, Party};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::fields::{Obj, full_name};
use super::snapshot::Snapshot;
use super::{
    Input, Normalized, OrderContext, Output, Rejection, id_text, money, time, unknown_topic,
};

/// Order fields that change on every save and say nothing by themselves.
const VOLATILE: &[&str] = &["updated_at"];
/// Shopify asks apps to finish a redaction within 30 days.
const REDACT_WITHIN_DAYS: i64 = 30;

/// Orders are kept to diff `orders/updated`; a return reads its order for the customer.
pub(super) fn snapshot_key(topic: &str, body: &Json<'_>) -> Option<String> {
    // Fulfillments and returns read their order's snapshot for what they say of the order
    // (number, language); only order topics write it.
    let order_id = match topic {
        t if t.starts_with("orders/") => id_text(body.get("id")),
        t if t.starts_with("fulfillments/") => id_text(body.get("order_id")),
        t if t.starts_with("returns/") => match body.get("order") {
            Some(order) => id_text(order.get("id")),
            None => id_text(body.get("order_id")),
        },
        _ => None,
    }?;
    Some(format!("order:{order_id}"))
}

pub(super) fn normalize(input: Input<'_>) -> Result<Output, Rejection> {
    let o = Obj::root(input.body)?;
    let prior = input.snapshot.cloned();
    match input.topic {
        "orders/create" => Ok(Output {
            events: vec![order_created(o)?],
            snapshot: Some(order_snapshot(input.body, o, prior.as_ref())?),
        }),
        "orders/updated" => order_updated(o, input, prior),
        "orders/paid" => with_order_state(input, o, prior, order_paid(o)?),
        "orders/cancelled" => with_order_state(input, o, prior, order_cancelled(o)?),
        "orders/fulfilled" => with_order_state(input, o, prior, order_fulfilled(o)?),
        "fulfillments/create" => Ok(Output::events(vec![shipment_created(o, context(input))?])),
        "fulfillments/update" => Ok(Output::events(vec![shipment_updated(o, context(input))?])),
        "refunds/create" => Ok(Output::events(vec![refund_created(o)?])),
        "returns/request" => Ok(Output::events(vec![return_requested(o, input, prior)?])),
        t if t.starts_with("returns/") => Ok(Output::events(vec![return_updated(o, input)?])),
        "customers/create" => Ok(Output::events(vec![customer(o, types::CUSTOMER_CREATED)?])),
        "customers/update" => Ok(Output::events(vec![customer(o, types::CUSTOMER_UPDATED)?])),
        "customers/redact" | "shop/redact" => Ok(Output::events(vec![erasure(o, input)?])),
        "inventory_levels/update" => Ok(Output::events(vec![stock_changed(o, input)?])),
        other => Err(unknown_topic(Provider::Shopify, other)),
    }
}

/// When the payload has no time of its own: `X-Shopify-Triggered-At`, else receipt.
fn triggered_at(input: Input<'_>) -> DateTime<Utc> {
    input
        .headers
        .first(&["x-shopify-triggered-at", "shopify-triggered-at"])
        .and_then(time::parse)
        .unwrap_or(input.received_at)
}

fn order_snapshot(
    body: &Json<'_>,
    o: Obj<'_>,
    prior: Option<&Snapshot>,
) -> Result<Snapshot, Rejection> {
    let map = body.as_object().expect("checked by Obj::root");
    let mut snap = Snapshot::of(map, VOLATILE);
    snap.modified = o.opt_time("updated_at")?.map(time::format);
    snap.status = o.opt_str("financial_status")?.map(str::to_string);
    snap.customer_id = match o.opt_obj("customer")? {
        Some(c) => c.obj().opt_id("id")?,
        None => prior.and_then(|p| p.customer_id.clone()),
    };
    snap.order_number = match o.opt_str("name")? {
        Some(name) => Some(name.to_string()),
        None => o
            .opt_id("order_number")?
            .or_else(|| prior.and_then(|p| p.order_number.clone())),
    };
    snap.locale = match o.opt_str("customer_locale")? {
        Some(locale) => Some(locale.to_string()),
        None => prior.and_then(|p| p.locale.clone()),
    };
    Ok(snap)
}

/// What the kept order snapshot says of the order a fulfillment or return belongs to.
fn context(input: Input<'_>) -> OrderContext {
    OrderContext::of(input.snapshot, input.shop_locale)
}

/// Keeps the order snapshot current for the dedicated order topics, so a later
/// `orders/updated` is diffed against the latest snapshot.
fn with_order_state(
    input: Input<'_>,
    o: Obj<'_>,
    prior: Option<Snapshot>,
    event: Normalized,
) -> Result<Output, Rejection> {
    let snap = order_snapshot(input.body, o, prior.as_ref())?;
    let stale = prior
        .as_ref()
        .and_then(|p| p.modified.as_ref())
        .is_some_and(|m| snap.modified.as_ref().is_some_and(|now| now < m));
    Ok(Output {
        events: vec![event],
        snapshot: (!stale).then_some(snap),
    })
}

fn order_updated(
    o: Obj<'_>,
    input: Input<'_>,
    prior: Option<Snapshot>,
) -> Result<Output, Rejection> {
    let order_id = o.id("id")?;
    let snap = order_snapshot(input.body, o, prior.as_ref())?;
    if let (Some(p), Some(now)) = (
        prior.as_ref().and_then(|p| p.modified.as_ref()),
        &snap.modified,
    ) && now < p
    {
        // An older version than the one already kept: nothing new to say.
        return Ok(Output::default());
    }
    let updated_at = o
        .opt_time("updated_at")?
        .unwrap_or_else(|| triggered_at(input));
    let (changed, known) = match &prior {
        Some(p) if !p.legacy => (snap.changed_since(p), true),
        _ => (Vec::new(), false),
    };
    let mut events = if known && changed.is_empty() {
        Vec::new()
    } else {
        let data = OrderUpdated {
            status: status(
                o.opt_time("cancelled_at")?.is_some(),
                o.opt_str("financial_status")?,
                o.opt_str("fulfillment_status")?,
            ),
            changed,
            changed_known: Some(known),
            updated_at: time::format(updated_at),
            provider_status: provider_status(o)?,
            order_id: order_id.clone(),
        };
        vec![Normalized::new(
            types::ORDER_UPDATED,
            updated_at,
            format!("order/{order_id}"),
            &data,
        )?]
    };
    if prior.is_none() {
        events.extend(facts_shown(o)?);
    }
    Ok(Output {
        events,
        snapshot: Some(snap),
    })
}

/// What an order's body shows on its own: paid (also when since refunded), fulfilled,
/// cancelled, in the order they happen.
fn facts_shown(o: Obj<'_>) -> Result<Vec<Normalized>, Rejection> {
    let mut facts = Vec::new();
    if matches!(
        o.opt_str("financial_status")?,
        Some("paid" | "partially_refunded" | "refunded")
    ) {
        facts.push(order_paid(o)?);
    }
    if o.opt_str("fulfillment_status")? == Some("fulfilled") {
        facts.push(order_fulfilled(o)?);
    }
    if o.opt_time("cancelled_at")?.is_some() {
        facts.push(order_cancelled(o)?);
    }
    Ok(facts)
}

fn provider_status(o: Obj<'_>) -> Result<Value, Rejection> {
    Ok(json!({
        "financial_status": o.opt_str("financial_status")?,
        "fulfillment_status": o.opt_str("fulfillment_status")?,
    }))
}

fn order_created(o: Obj<'_>) -> Result<Normalized, Rejection> {
    let order_id = o.id("id")?;
    let currency = o.currency("currency")?;
    let placed_at = o.time("created_at")?;
    let financial = o.opt_str("financial_status")?;
    let fulfillment = o.opt_str("fulfillment_status")?;

    let shipping = match shop_money(o, "total_shipping_price_set", &currency)? {
        Some(s) => Some(s),
        None => sum_shipping_lines(o, &currency)?,
    };
    let customer_obj = o.opt_obj("customer")?;
    let customer = customer_obj.as_ref().map(|c| c.obj());
    let billing = o.opt_obj("billing_address")?;
    let party = Party {
        customer_id: customer.map(|c| c.opt_id("id")).transpose()?.flatten(),
        email: first_some([
            o.opt_str("email")?,
            o.opt_str("contact_email")?,
            customer.map(|c| c.opt_str("email")).transpose()?.flatten(),
        ]),
        phone: first_some([
            o.opt_str("phone")?,
            customer.map(|c| c.opt_str("phone")).transpose()?.flatten(),
        ]),
        name: match customer {
            Some(c) => full_name(c.opt_str("first_name")?, c.opt_str("last_name")?),
            None => None,
        }
        .or(match &billing {
            Some(b) => address_name(b.obj())?,
            None => None,
        }),
        locale: o.opt_str("customer_locale")?.map(str::to_string),
    };
    let lines = o
        .objects("line_items")?
        .iter()
        .map(|l| line(l.obj(), Some(&currency)))
        .collect::<Result<Vec<_>, _>>()?;

    let data = OrderCreated {
        order_number: o
            .opt_str("name")?
            .map(str::to_string)
            .or(o.opt_id("order_number")?)
            .unwrap_or_else(|| order_id.clone()),
        status: status(
            o.opt_time("cancelled_at")?.is_some(),
            financial,
            fulfillment,
        ),
        placed_at: time::format(placed_at),
        total: o.money("total_price", &currency)?,
        subtotal: o.opt_money("subtotal_price", &currency)?,
        tax: o.opt_money("total_tax", &currency)?,
        shipping,
        discount: o.opt_money("total_discounts", &currency)?,
        lines,
        customer: party,
        shipping_address: o
            .opt_obj("shipping_address")?
            .map(|a| address(a.obj()))
            .transpose()?,
        billing_address: billing.map(|a| address(a.obj())).transpose()?,
        payment_state: payment_state(financial, &gateways(o)),
        provider_status: provider_status(o)?,
        currency,
        order_id: order_id.clone(),
    };
    Normalized::new(
        types::ORDER_CREATED,
        placed_at,
        format!("order/{order_id}"),
        &data,
    )
}

fn gateways<'a>(o: Obj<'a>) -> Vec<&'a str> {
    o.get("payment_gateway_names")
        .and_then(Json::as_array)
        .map(|a| a.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default()
}

/// `orders/paid`: Shopify has no paid-at field; the order's `updated_at` is when it was
/// marked paid. The amount is what was charged: total minus what is still outstanding.
fn order_paid(o: Obj<'_>) -> Result<Normalized, Rejection> {
    let order_id = o.id("id")?;
    let currency = o.currency("currency")?;
    let total = dec(&o.money("total_price", &currency)?);
    let outstanding = o
        .opt_money("total_outstanding", &currency)?
        .map(|m| dec(&m))
        .unwrap_or_default();
    let paid_at = match o.opt_time("updated_at")? {
        Some(t) => t,
        None => o.time("processed_at")?,
    };
    let data = OrderPaid {
        amount: total
            .checked_sub(outstanding)
            .and_then(|d| money::money(d, &currency))
            .ok_or_else(|| o.err("total_price", "cannot be expressed"))?,
        paid_at: time::format(paid_at),
        method: gateways(o).first().map(|g| g.to_string()),
        reference: None,
        order_id: order_id.clone(),
    };
    Normalized::new(
        types::ORDER_PAID,
        paid_at,
        format!("order/{order_id}"),
        &data,
    )
}

fn order_cancelled(o: Obj<'_>) -> Result<Normalized, Rejection> {
    let order_id = o.id("id")?;
    let cancelled_at = o.time("cancelled_at")?;
    let provider_reason = o.opt_str("cancel_reason")?;
    let reason = match provider_reason {
        Some("customer") => CancelReason::Customer,
        Some("fraud") => CancelReason::Fraud,
        Some("inventory") => CancelReason::Stock,
        Some("declined") => CancelReason::Payment,
        Some("staff") => CancelReason::Merchant,
        _ => CancelReason::Other,
    };
    // Money goes back only if some was captured and not already refunded.
    let refund_expected = matches!(
        o.opt_str("financial_status")?,
        Some("paid" | "partially_paid" | "partially_refunded")
    );
    let data = OrderCancelled {
        cancelled_at: time::format(cancelled_at),
        reason,
        refund_expected,
        provider_reason: provider_reason.map(str::to_string),
        order_id: order_id.clone(),
    };
    Normalized::new(
        types::ORDER_CANCELLED,
        cancelled_at,
        format!("order/{order_id}"),
        &data,
    )
}

/// `orders/fulfilled`: the time is that of the last fulfillment, else the order's update.
fn order_fulfilled(o: Obj<'_>) -> Result<Normalized, Rejection> {
    let order_id = o.id("id")?;
    let mut last: Option<DateTime<Utc>> = None;
    for f in o.objects("fulfillments")? {
        let f = f.obj();
        if let Some(t) = f.opt_time("created_at")? {
            last = Some(last.map_or(t, |l| l.max(t)));
        }
    }
    let fulfilled_at = match last {
        Some(t) => t,
        None => o.time("updated_at")?,
    };
    let data = OrderFulfilled {
        fulfilled_at: time::format(fulfilled_at),
        fully: o.opt_str("fulfillment_status")? == Some("fulfilled"),
        order_id: order_id.clone(),
    };
    Normalized::new(
        types::ORDER_FULFILLED,
        fulfilled_at,
        format!("order/{order_id}"),
        &data,
    )
}

fn shipment_created(f: Obj<'_>, order: OrderContext) -> Result<Normalized, Rejection> {
    let order_id = f.id("order_id")?;
    let shipped_at = f.time("created_at")?;
    let data = ShipmentCreated {
        shipment_id: f.id("id")?,
        carrier: f.opt_str("tracking_company")?.map(str::to_string),
        tracking_number: tracking(f, "tracking_number", "tracking_numbers")?,
        tracking_url: tracking(f, "tracking_url", "tracking_urls")?,
        lines: f
            .objects("line_items")?
            .iter()
            .map(|l| line(l.obj(), None))
            .collect::<Result<_, _>>()?,
        shipped_at: time::format(shipped_at),
        destination: f
            .opt_obj("destination")?
            .map(|a| address(a.obj()))
            .transpose()?,
        order_id: order_id.clone(),
        order_number: order.order_number,
        locale: order.locale,
    };
    Normalized::new(
        types::SHIPMENT_CREATED,
        shipped_at,
        format!("order/{order_id}"),
        &data,
    )
}

fn tracking(f: Obj<'_>, one: &str, many: &str) -> Result<Option<String>, Rejection> {
    Ok(match f.opt_str(one)? {
        Some(v) => Some(v.to_string()),
        None => f
            .get(many)
            .and_then(Json::as_array)
            .and_then(|a| a.iter().find_map(Json::as_str))
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    })
}

fn shipment_updated(f: Obj<'_>, order: OrderContext) -> Result<Normalized, Rejection> {
    let order_id = f.id("order_id")?;
    let status_at = match f.opt_time("updated_at")? {
        Some(t) => t,
        None => f.time("created_at")?,
    };
    let shipment_status = f.opt_str("shipment_status")?;
    let status = match shipment_status {
        // Every status Shopify documents for fulfillments and fulfillment events.
        Some("label_printed" | "label_purchased" | "confirmed") => ShipmentStatus::LabelCreated,
        Some("in_transit" | "carrier_picked_up") => ShipmentStatus::InTransit,
        Some("out_for_delivery") => ShipmentStatus::OutForDelivery,
        Some("attempted_delivery") => ShipmentStatus::Attempted,
        Some("ready_for_pickup") => ShipmentStatus::ReadyForPickup,
        // `picked_up`: the customer collected it (local pickup).
        Some("delivered" | "picked_up") => ShipmentStatus::Delivered,
        Some("failure") => ShipmentStatus::Failed,
        Some("delayed") => ShipmentStatus::Delayed,
        Some(other) => return Err(f.err("shipment_status", &format!("{other:?} is not mapped"))),
        None => match f.opt_str("status")? {
            Some("cancelled" | "error" | "failure") => ShipmentStatus::Failed,
            _ => ShipmentStatus::LabelCreated,
        },
    };
    let data = ShipmentUpdated {
        shipment_id: f.id("id")?,
        status,
        eta: f.opt_time("estimated_delivery_at")?.map(time::format),
        status_at: time::format(status_at),
        carrier: f.opt_str("tracking_company")?.map(str::to_string),
        tracking_number: tracking(f, "tracking_number", "tracking_numbers")?,
        tracking_url: tracking(f, "tracking_url", "tracking_urls")?,
        provider_status: Some(json!(shipment_status.or(f.opt_str("status")?))),
        order_id: order_id.clone(),
        order_number: order.order_number,
        locale: order.locale,
    };
    Normalized::new(
        types::SHIPMENT_UPDATED,
        status_at,
        format!("order/{order_id}"),
        &data,
    )
}

/// `refunds/create`: the amount is what successful refund transactions moved; a failed
/// attempt followed by a successful retry counts once.
fn refund_created(r: Obj<'_>) -> Result<Normalized, Rejection> {
    let order_id = r.id("order_id")?;
    let created_at = match r.opt_time("created_at")? {
        Some(t) => t,
        None => r.time("processed_at")?,
    };
    let mut succeeded = Decimal::ZERO;
    let mut pending = false;
    let mut any_success = false;
    let mut currency: Option<String> = None;
    for t in r.objects("transactions")? {
        let t = t.obj();
        if t.opt_str("kind")?.is_some_and(|k| k != "refund") {
            continue;
        }
        let cur = t.currency("currency")?;
        match t.opt_str("status")? {
            Some("success") => {
                succeeded = succeeded
                    .checked_add(dec(&t.money("amount", &cur)?))
                    .ok_or_else(|| t.err("amount", "sum out of range"))?;
                any_success = true;
            }
            Some("pending") => pending = true,
            _ => {}
        }
        currency.get_or_insert(cur);
    }
    let lines = r
        .objects("refund_line_items")?
        .iter()
        .map(|l| {
            let l = l.obj();
            if currency.is_none()
                && let Some(set) = l.opt_obj("subtotal_set")?
                && let Some(shop) = set.obj().opt_obj("shop_money")?
            {
                currency = Some(shop.obj().currency("currency_code")?);
            }
            let mut li = match l.opt_obj("line_item")? {
                Some(item) => line(item.obj(), None)?,
                None => LineRef::default(),
            };
            li.line_id = l.id("line_item_id")?;
            li.quantity = l.u64("quantity")?;
            Ok(li)
        })
        .collect::<Result<Vec<_>, Rejection>>()?;
    let currency =
        currency.ok_or_else(|| r.err("transactions", "no currency to state the amount in"))?;
    let status = if any_success {
        RefundStatus::Succeeded
    } else if pending {
        RefundStatus::Pending
    } else {
        RefundStatus::Failed
    };
    let data = RefundCreated {
        refund_id: r.id("id")?,
        amount: money::money(succeeded, &currency)
            .ok_or_else(|| r.err("transactions", "amount cannot be expressed"))?,
        reason: r.opt_str("note")?.map(str::to_string),
        lines: (!lines.is_empty()).then_some(lines),
        status,
        created_at: time::format(created_at),
        return_id: match r.opt_obj("return")? {
            Some(ret) => ret.obj().opt_id("id")?,
            None => None,
        },
        order_id: order_id.clone(),
    };
    Normalized::new(
        types::REFUND_CREATED,
        created_at,
        format!("order/{order_id}"),
        &data,
    )
}

fn return_order_id(r: Obj<'_>) -> Result<String, Rejection> {
    match r.opt_obj("order")? {
        Some(order) => order.obj().id("id"),
        None => r.id("order_id"),
    }
}

/// `returns/request` has no timestamp: `X-Shopify-Triggered-At` says when it happened. The
/// customer is not in the body; the kept order snapshot knows them.
fn return_requested(
    r: Obj<'_>,
    input: Input<'_>,
    prior: Option<Snapshot>,
) -> Result<Normalized, Rejection> {
    let return_id = r.id("id")?;
    let requested_at = triggered_at(input);
    let lines = r
        .objects("return_line_items")?
        .iter()
        .map(|l| {
            let l = l.obj();
            let line_id = match l.opt_obj("fulfillment_line_item")? {
                Some(fli) => match fli.obj().opt_obj("line_item")? {
                    Some(li) => li.obj().id("id")?,
                    None => fli.obj().id("id")?,
                },
                None => l.id("id")?,
            };
            Ok(ReturnLine {
                line: LineRef {
                    line_id,
                    quantity: l.u64("quantity")?,
                    ..LineRef::default()
                },
                reason_code: l.opt_str("return_reason")?.unwrap_or("other").to_string(),
                reason_text: l
                    .opt_str("return_reason_note")?
                    .or(l.opt_str("customer_note")?)
                    .map(str::to_string),
            })
        })
        .collect::<Result<Vec<_>, Rejection>>()?;
    let order = context(input);
    let data = ReturnRequested {
        order_id: return_order_id(r)?,
        order_number: order.order_number,
        locale: order.locale,
        lines,
        requested_at: time::format(requested_at),
        customer: Party {
            customer_id: prior.and_then(|p| p.customer_id),
            ..Party::default()
        },
        return_id: return_id.clone(),
    };
    Normalized::new(
        types::RETURN_REQUESTED,
        requested_at,
        format!("return/{return_id}"),
        &data,
    )
}

fn return_updated(r: Obj<'_>, input: Input<'_>) -> Result<Normalized, Rejection> {
    let return_id = r.id("id")?;
    let status = match input.topic {
        "returns/approve" | "returns/reopen" => ReturnStatus::Approved,
        "returns/decline" => ReturnStatus::Declined,
        "returns/process" => ReturnStatus::Received,
        "returns/close" => ReturnStatus::Closed,
        "returns/cancel" => ReturnStatus::Cancelled,
        other => return Err(unknown_topic(Provider::Shopify, other)),
    };
    let at = triggered_at(input);
    let order = context(input);
    let data = ReturnUpdated {
        order_id: return_order_id(r)?,
        order_number: order.order_number,
        locale: order.locale,
        status,
        updated_at: Some(time::format(at)),
        provider_status: r.opt_str("status")?.map(|s| json!(s)),
        return_id: return_id.clone(),
    };
    Normalized::new(
        types::RETURN_UPDATED,
        at,
        format!("return/{return_id}"),
        &data,
    )
}

fn consent(c: Obj<'_>, key: &str) -> Result<Option<bool>, Rejection> {
    Ok(match c.opt_obj(key)? {
        Some(m) => m.obj().opt_str("state")?.map(|s| s == "subscribed"),
        None => None,
    })
}

fn customer(c: Obj<'_>, event_type: &'static str) -> Result<Normalized, Rejection> {
    let customer_id = c.id("id")?;
    let created_at = c.opt_time("created_at")?;
    let updated_at = c.opt_time("updated_at")?;
    let email_consent = consent(c, "email_marketing_consent")?;
    let sms_consent = consent(c, "sms_marketing_consent")?;
    let occurred_at = match event_type {
        types::CUSTOMER_CREATED => created_at.or(updated_at),
        _ => {
            // Consent changes carry their own, later time than `updated_at` at times.
            let consent_at = match c.opt_obj("email_marketing_consent")? {
                Some(m) => m.obj().opt_time("consent_updated_at")?,
                None => None,
            };
            updated_at.max(consent_at).or(created_at)
        }
    }
    .ok_or_else(|| c.err("updated_at", "required timestamp is missing"))?;
    let data = Customer {
        email: c.opt_str("email")?.map(str::to_string),
        phone: c.opt_str("phone")?.map(str::to_string),
        first_name: c.opt_str("first_name")?.map(str::to_string),
        last_name: c.opt_str("last_name")?.map(str::to_string),
        locale: c.opt_str("locale")?.map(str::to_string),
        marketing_consent: (email_consent.is_some() || sms_consent.is_some()).then(|| {
            MarketingConsent {
                email: email_consent.unwrap_or(false),
                sms: sms_consent.unwrap_or(false),
            }
        }),
        default_address: c
            .opt_obj("default_address")?
            .map(|a| address(a.obj()))
            .transpose()?,
        created_at: created_at.map(time::format),
        updated_at: Some(time::format(occurred_at)),
        customer_id: customer_id.clone(),
    };
    Normalized::new(
        event_type,
        occurred_at,
        format!("customer/{customer_id}"),
        &data,
    )
}

/// `customers/redact` and `shop/redact` (mandatory for public apps).
fn erasure(b: Obj<'_>, input: Input<'_>) -> Result<Normalized, Rejection> {
    let at = triggered_at(input);
    let deadline = at
        .checked_add_signed(Duration::days(REDACT_WITHIN_DAYS))
        .map(time::format);
    let (data, subject) = if input.topic == "shop/redact" {
        let shop = b
            .opt_str("shop_domain")?
            .map(str::to_string)
            .or(b.opt_id("shop_id")?)
            .ok_or_else(|| b.err("shop_domain", "required"))?;
        (
            CustomerErasureRequested {
                customer_id: None,
                email: None,
                scope: ErasureScope::Shop,
                deadline,
                orders_to_redact: None,
            },
            format!("shop/{shop}"),
        )
    } else {
        let customer = b
            .opt_obj("customer")?
            .ok_or_else(|| b.err("customer", "required object is missing"))?;
        let c = customer.obj();
        let customer_id = c.opt_id("id")?;
        let orders: Vec<String> = b
            .get("orders_to_redact")
            .and_then(Json::as_array)
            .map(|a| a.iter().filter_map(|v| id_text(Some(v))).collect())
            .unwrap_or_default();
        let subject = format!(
            "customer/{}",
            customer_id.clone().unwrap_or_else(|| "unknown".into())
        );
        (
            CustomerErasureRequested {
                customer_id,
                email: c.opt_str("email")?.map(str::to_string),
                scope: ErasureScope::Customer,
                deadline,
                orders_to_redact: (!orders.is_empty()).then_some(orders),
            },
            subject,
        )
    };
    Normalized::new(types::CUSTOMER_ERASURE_REQUESTED, at, subject, &data)
}

/// `inventory_levels/update` names the inventory item (one per variant), not the product.
fn stock_changed(s: Obj<'_>, input: Input<'_>) -> Result<Normalized, Rejection> {
    let item = s.id("inventory_item_id")?;
    let updated_at = s
        .opt_time("updated_at")?
        .unwrap_or_else(|| triggered_at(input));
    let available = match s.get("available") {
        None => None,
        Some(v) => Some(
            v.as_i64()
                .ok_or_else(|| s.err("available", "expected an integer"))?,
        ),
    };
    let data = StockChanged {
        product_id: None,
        inventory_item_id: Some(item.clone()),
        sku: None,
        variant_id: None,
        location_id: s.opt_id("location_id")?,
        available,
        delta: None,
        method: StockMethod::Absolute,
        updated_at: Some(time::format(updated_at)),
    };
    Normalized::new(
        types::STOCK_CHANGED,
        updated_at,
        format!("inventory_item/{item}"),
        &data,
    )
}

fn dec(m: &Money) -> Decimal {
    money::parse_decimal(&m.amount).unwrap_or_default()
}

fn shop_money(o: Obj<'_>, key: &str, currency: &str) -> Result<Option<Money>, Rejection> {
    match o.opt_obj(key)? {
        Some(set) => match set.obj().opt_obj("shop_money")? {
            Some(shop) => shop.obj().opt_money("amount", currency),
            None => Ok(None),
        },
        None => Ok(None),
    }
}

fn first_some<const N: usize>(values: [Option<&str>; N]) -> Option<String> {
    values.into_iter().flatten().next().map(str::to_string)
}

fn sum_shipping_lines(o: Obj<'_>, currency: &str) -> Result<Option<Money>, Rejection> {
    let lines = o.objects("shipping_lines")?;
    if lines.is_empty() {
        return Ok(None);
    }
    let mut total = Decimal::ZERO;
    for l in &lines {
        total = total
            .checked_add(dec(&l.obj().money("price", currency)?))
            .ok_or_else(|| l.obj().err("price", "sum out of range"))?;
    }
    Ok(money::money(total, currency))
}

/// A line item; with `currency`, its unit price too.
fn line(l: Obj<'_>, currency: Option<&str>) -> Result<LineRef, Rejection> {
    Ok(LineRef {
        line_id: l.id("id")?,
        sku: l.opt_str("sku")?.map(str::to_string),
        product_id: l.opt_id("product_id")?,
        variant_id: l.opt_id("variant_id")?,
        title: l.opt_str("title")?.map(str::to_string),
        variant_title: l.opt_str("variant_title")?.map(str::to_string),
        quantity: l.u64("quantity")?,
        unit_price: match currency {
            Some(c) => l.opt_money("price", c)?,
            None => None,
        },
    })
}

fn address_name(a: Obj<'_>) -> Result<Option<String>, Rejection> {
    Ok(match a.opt_str("name")? {
        Some(n) => Some(n.to_string()),
        None => full_name(a.opt_str("first_name")?, a.opt_str("last_name")?),
    })
}

fn address(a: Obj<'_>) -> Result<Address, Rejection> {
    let s = |k: &str| a.opt_str(k).map(|v| v.map(str::to_string));
    Ok(Address {
        name: address_name(a)?,
        company: s("company")?,
        line1: s("address1")?,
        line2: s("address2")?,
        city: s("city")?,
        postal_code: s("zip")?,
        region: s("province_code")?.or(s("province")?),
        country: s("country_code")?.map(|c| c.to_ascii_uppercase()),
        phone: s("phone")?,
    })
}

fn status(cancelled: bool, financial: Option<&str>, fulfillment: Option<&str>) -> OrderStatus {
    if cancelled {
        return OrderStatus::Cancelled;
    }
    match (financial, fulfillment) {
        (Some("refunded"), _) => OrderStatus::Refunded,
        (Some("voided"), _) => OrderStatus::Cancelled,
        (_, Some("fulfilled")) => OrderStatus::Completed,
        (Some("paid" | "partially_refunded" | "authorized" | "partially_paid"), _) => {
            OrderStatus::Processing
        }
        _ => OrderStatus::Pending,
    }
}

fn payment_state(financial: Option<&str>, gateways: &[&str]) -> PaymentState {
    match financial {
        Some("paid" | "partially_paid" | "partially_refunded" | "refunded") => PaymentState::Paid,
        Some("authorized") => PaymentState::Authorized,
        _ if gateways
            .iter()
            .any(|g| g.to_ascii_lowercase().contains("cash on delivery")) =>
        {
            PaymentState::Cod
        }
        _ => PaymentState::Pending,
    }
}
