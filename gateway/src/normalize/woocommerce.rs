//! WooCommerce REST v3 webhooks. Times come from the `*_gmt` fields (UTC without a zone);
//! the fields without `_gmt` are shop-local and ignored. Unused fields arrive as `""`.
//!
//! WooCommerce only says "updated", and builds the body when it sends it (the order as it is
//! then, not as of the event). So `order.updated` is diffed against the last snapshot kept
//! per order: a new `date_paid_gmt` is `order.paid`, a move to `completed` is
//! `order.fulfilled`, to `cancelled` is `order.cancelled`, each new `refunds[]` entry is
//! `refund.created`; any other change is `order.updated`. Without a kept snapshot (the
//! gateway was connected mid-life, or the snapshot expired) the facts the body shows on its
//! own are told (paid, completed, cancelled, each refund) besides `order.updated`. Derived
//! events carry the fact they report, so the same fact derived twice gets the same event id.

use crate::json::Json;
use chrono::{DateTime, Utc};
use omnigate_schemas::api::Provider;
use omnigate_schemas::events::{
    CancelReason, Customer, CustomerErasureRequested, ErasureScope, OrderCancelled, OrderCreated,
    OrderFulfilled, OrderPaid, OrderStatus, OrderUpdated, PaymentState, RefundCreated,
    RefundStatus, StockChanged, StockMethod, types,
};
use omnigate_schemas::{Address, LineRef, Money, Party};
use rust_decimal::Decimal;
use serde_json::Value;

use super::fields::{Obj, full_name};
use super::snapshot::Snapshot;
use super::{Input, Normalized, Output, Rejection, id_text, money, time, unknown_topic};

/// Fields that change on every save.
const VOLATILE: &[&str] = &["date_modified", "date_modified_gmt"];

pub(super) fn snapshot_key(topic: &str, body: &Json<'_>) -> Option<String> {
    let id = id_text(body.get("id"))?;
    match topic {
        "order.created" | "order.updated" => Some(format!("order:{id}")),
        "product.updated" => Some(format!("product:{id}")),
        _ => None,
    }
}

pub(super) fn normalize(input: Input<'_>) -> Result<Output, Rejection> {
    let body = Obj::root(input.body)?;
    let prior = input.snapshot.cloned();
    match input.topic {
        "order.created" => {
            // The creation is news even when a later update arrived first; the kept snapshot
            // only moves forward.
            let snap = order_snapshot(input.body, body)?;
            let stale = is_stale(prior.as_ref(), &snap);
            Ok(Output {
                events: vec![order_created(body)?],
                snapshot: (!stale).then_some(snap),
            })
        }
        "order.updated" => order_updated(body, input.body, prior),
        "customer.created" => Ok(Output::events(vec![customer(
            body,
            types::CUSTOMER_CREATED,
        )?])),
        "customer.updated" => Ok(Output::events(vec![customer(
            body,
            types::CUSTOMER_UPDATED,
        )?])),
        "customer.deleted" => Ok(Output::events(vec![customer_deleted(body, input)?])),
        "product.updated" => product_updated(body, prior),
        other => Err(unknown_topic(Provider::Woocommerce, other)),
    }
}

fn gmt(o: Obj<'_>, key: &str) -> Result<Option<DateTime<Utc>>, Rejection> {
    o.opt_str(key)?
        .map(|s| time::naive_utc(s).ok_or_else(|| o.err(key, "not a GMT time")))
        .transpose()
}

fn required_gmt(o: Obj<'_>, key: &str) -> Result<DateTime<Utc>, Rejection> {
    gmt(o, key)?.ok_or_else(|| o.err(key, "required timestamp is missing"))
}

fn order_snapshot(body: &Json<'_>, o: Obj<'_>) -> Result<Snapshot, Rejection> {
    let map = body.as_object().expect("checked by Obj::root");
    let mut snap = Snapshot::of(map, VOLATILE);
    snap.modified = gmt(o, "date_modified_gmt")?.map(time::format);
    snap.status = o.opt_str("status")?.map(str::to_string);
    snap.paid_at = gmt(o, "date_paid_gmt")?.map(time::format);
    snap.customer_id = o.opt_id("customer_id")?;
    snap.refunds = o
        .objects("refunds")?
        .iter()
        .map(|r| r.obj().id("id"))
        .collect::<Result<_, _>>()?;
    Ok(snap)
}

/// A body no newer than the kept snapshot says nothing new (WooCommerce may deliver late).
fn is_stale(prior: Option<&Snapshot>, now: &Snapshot) -> bool {
    match (prior.and_then(|p| p.modified.as_ref()), &now.modified) {
        (Some(p), Some(n)) => n <= p,
        _ => false,
    }
}

fn order_updated(
    o: Obj<'_>,
    body: &Json<'_>,
    prior: Option<Snapshot>,
) -> Result<Output, Rejection> {
    let snap = order_snapshot(body, o)?;
    if is_stale(prior.as_ref(), &snap) {
        return Ok(Output::default());
    }
    let order_id = o.id("id")?;
    let subject = format!("order/{order_id}");
    let currency = o.currency("currency")?;
    let modified = required_gmt(o, "date_modified_gmt")?;
    let was = prior.clone().unwrap_or_default();
    let status_now = o.str("status")?;
    let status_changed = prior.is_none() || was.status.as_deref() != Some(status_now);
    let mut events = Vec::new();
    // Status changes that a specific event already tells.
    let mut status_told = false;

    for r in o.objects("refunds")? {
        let r = r.obj();
        let refund_id = r.id("id")?;
        if was.refunds.contains(&refund_id) {
            continue;
        }
        let amount = r.money("total", &currency)?;
        let data = RefundCreated {
            amount: money::money(dec(&amount).abs(), &currency)
                .ok_or_else(|| r.err("total", "cannot be expressed"))?,
            reason: r.opt_str("reason")?.map(str::to_string),
            lines: None,
            status: RefundStatus::Succeeded,
            // Refund entries carry no date: the order's modification is when it showed up.
            created_at: time::format(modified),
            return_id: None,
            order_id: order_id.clone(),
            refund_id: refund_id.clone(),
        };
        events.push(
            Normalized::new(types::REFUND_CREATED, modified, subject.clone(), &data)?
                .with_fact(format!("refund:{refund_id}")),
        );
    }

    // Without a kept snapshot (connected mid-life, or the snapshot expired) the body still
    // shows facts on its own: paid, completed, cancelled. Each has a fact id, so one told
    // before is kept once.
    let known = prior.is_some();
    if let Some(paid_at) = gmt(o, "date_paid_gmt")?
        && was.paid_at.is_none()
    {
        let data = OrderPaid {
            amount: o.money("total", &currency)?,
            paid_at: time::format(paid_at),
            method: o.opt_str("payment_method")?.map(str::to_string),
            reference: o.opt_str("transaction_id")?.map(str::to_string),
            order_id: order_id.clone(),
        };
        events.push(
            Normalized::new(types::ORDER_PAID, paid_at, subject.clone(), &data)?
                .with_fact(format!("order:{order_id}:paid")),
        );
        status_told |= matches!(status_now, "processing" | "on-hold");
    }
    if status_changed && status_now == "completed" {
        let fulfilled_at = gmt(o, "date_completed_gmt")?.unwrap_or(modified);
        let data = OrderFulfilled {
            fulfilled_at: time::format(fulfilled_at),
            fully: true,
            order_id: order_id.clone(),
        };
        events.push(
            Normalized::new(types::ORDER_FULFILLED, fulfilled_at, subject.clone(), &data)?
                .with_fact(format!("order:{order_id}:fulfilled")),
        );
        status_told = true;
    }
    if status_changed && status_now == "cancelled" {
        let data = OrderCancelled {
            cancelled_at: time::format(modified),
            // WooCommerce does not say who cancelled.
            reason: CancelReason::Other,
            refund_expected: snap.paid_at.is_some(),
            provider_reason: None,
            order_id: order_id.clone(),
        };
        events.push(
            Normalized::new(types::ORDER_CANCELLED, modified, subject.clone(), &data)?
                .with_fact(format!("order:{order_id}:cancelled")),
        );
        status_told = true;
    }

    let changed = prior
        .as_ref()
        .filter(|p| !p.legacy)
        .map(|p| snap.changed_since(p));
    // Without a snapshot, the update is told too: what else changed is unknown.
    let untold_status = (status_changed && !status_told) || !known;
    let untold_change = events.is_empty() && changed.as_ref().is_none_or(|c| !c.is_empty());
    if untold_status || untold_change {
        let data = OrderUpdated {
            status: status(status_now),
            changed_known: Some(changed.is_some()),
            changed: changed.unwrap_or_default(),
            updated_at: time::format(modified),
            provider_status: Value::String(status_now.to_string()),
            order_id: order_id.clone(),
        };
        events.push(Normalized::new(
            types::ORDER_UPDATED,
            modified,
            subject,
            &data,
        )?);
    }
    Ok(Output {
        events,
        snapshot: Some(snap),
    })
}

fn customer(c: Obj<'_>, event_type: &'static str) -> Result<Normalized, Rejection> {
    let customer_id = c.id("id")?;
    let created_at = gmt(c, "date_created_gmt")?;
    let modified = gmt(c, "date_modified_gmt")?;
    let occurred_at = match event_type {
        types::CUSTOMER_CREATED => created_at.or(modified),
        _ => modified.or(created_at),
    }
    .ok_or_else(|| c.err("date_modified_gmt", "required timestamp is missing"))?;
    let billing = c.opt_obj("billing")?;
    let billing = billing.as_ref().map(|b| b.obj());
    let default_address = billing
        .map(address)
        .transpose()?
        .filter(|a| *a != Address::default());
    let data = Customer {
        email: c
            .opt_str("email")?
            .or(billing.map(|b| b.opt_str("email")).transpose()?.flatten())
            .map(str::to_string),
        phone: billing
            .map(|b| b.opt_str("phone"))
            .transpose()?
            .flatten()
            .map(str::to_string),
        first_name: c.opt_str("first_name")?.map(str::to_string),
        last_name: c.opt_str("last_name")?.map(str::to_string),
        locale: None,
        // WooCommerce core has no consent field.
        marketing_consent: None,
        default_address,
        created_at: created_at.map(time::format),
        updated_at: modified.map(time::format),
        customer_id: customer_id.clone(),
    };
    Normalized::new(
        event_type,
        occurred_at,
        format!("customer/{customer_id}"),
        &data,
    )
}

/// `customer.deleted` bodies are only `{"id": …}`: the shop removed the account.
fn customer_deleted(c: Obj<'_>, input: Input<'_>) -> Result<Normalized, Rejection> {
    let customer_id = c.id("id")?;
    let data = CustomerErasureRequested {
        customer_id: Some(customer_id.clone()),
        email: None,
        scope: ErasureScope::Customer,
        deadline: None,
        orders_to_redact: None,
    };
    Normalized::new(
        types::CUSTOMER_ERASURE_REQUESTED,
        input.received_at,
        format!("customer/{customer_id}"),
        &data,
    )
}

/// `product.updated` fires for any edit; only a change of `stock_quantity` is an event.
fn product_updated(p: Obj<'_>, prior: Option<Snapshot>) -> Result<Output, Rejection> {
    let product_id = p.id("id")?;
    let managed = p
        .get("manage_stock")
        .and_then(Json::as_bool)
        .unwrap_or(true);
    let stock = match p.get("stock_quantity") {
        Some(v) if managed => Some(
            v.as_i64()
                .ok_or_else(|| p.err("stock_quantity", "expected an integer"))?,
        ),
        _ => None,
    };
    let modified = gmt(p, "date_modified_gmt")?;
    let snap = Snapshot {
        modified: modified.map(time::format),
        stock,
        ..Snapshot::default()
    };
    if is_stale(prior.as_ref(), &snap) {
        return Ok(Output::default());
    }
    let was = prior.and_then(|s| s.stock);
    let mut events = Vec::new();
    if let Some(available) = stock
        && was != Some(available)
    {
        let at =
            modified.ok_or_else(|| p.err("date_modified_gmt", "required timestamp is missing"))?;
        let data = StockChanged {
            product_id: Some(product_id.clone()),
            inventory_item_id: None,
            sku: p.opt_str("sku")?.map(str::to_string),
            variant_id: None,
            location_id: None,
            available: Some(available),
            delta: was.and_then(|w| available.checked_sub(w)),
            method: StockMethod::Absolute,
            updated_at: Some(time::format(at)),
        };
        events.push(Normalized::new(
            types::STOCK_CHANGED,
            at,
            format!("product/{product_id}"),
            &data,
        )?);
    }
    Ok(Output {
        events,
        snapshot: Some(snap),
    })
}

fn order_created(o: Obj<'_>) -> Result<Normalized, Rejection> {
    let order_id = o.id("id")?;
    let currency = o.currency("currency")?;
    let placed_at = required_gmt(o, "date_created_gmt")?;
    let status_text = o.str("status")?;

    let lines_in = o.objects("line_items")?;
    let mut subtotal = Decimal::ZERO;
    let mut lines = Vec::with_capacity(lines_in.len());
    for l in &lines_in {
        let l = l.obj();
        if let Some(s) = l.opt_money("subtotal", &currency)? {
            subtotal = subtotal
                .checked_add(dec(&s))
                .ok_or_else(|| l.err("subtotal", "sum out of range"))?;
        }
        lines.push(line(l, &currency)?);
    }

    let billing = o.opt_obj("billing")?;
    let billing = billing.as_ref().map(|b| b.obj());
    let party = Party {
        customer_id: o.opt_id("customer_id")?,
        email: billing
            .map(|b| b.opt_str("email"))
            .transpose()?
            .flatten()
            .map(str::to_string),
        phone: billing
            .map(|b| b.opt_str("phone"))
            .transpose()?
            .flatten()
            .map(str::to_string),
        name: match billing {
            Some(b) => full_name(b.opt_str("first_name")?, b.opt_str("last_name")?),
            None => None,
        },
        locale: None,
    };

    let payment_state = if o.opt_str("payment_method")? == Some("cod") {
        PaymentState::Cod
    } else if o.opt_str("date_paid_gmt")?.is_some() {
        PaymentState::Paid
    } else {
        PaymentState::Pending
    };

    let data = OrderCreated {
        order_number: o
            .opt_str("number")?
            .map(str::to_string)
            .unwrap_or_else(|| order_id.clone()),
        status: status(status_text),
        placed_at: time::format(placed_at),
        total: o.money("total", &currency)?,
        subtotal: (!lines_in.is_empty())
            .then(|| money::money(subtotal, &currency))
            .flatten(),
        tax: o.opt_money("total_tax", &currency)?,
        shipping: o.opt_money("shipping_total", &currency)?,
        discount: o.opt_money("discount_total", &currency)?,
        lines,
        customer: party,
        shipping_address: o
            .opt_obj("shipping")?
            .map(|a| address(a.obj()))
            .transpose()?
            .filter(|a| *a != Address::default()),
        billing_address: billing
            .map(address)
            .transpose()?
            .filter(|a| *a != Address::default()),
        payment_state,
        provider_status: Value::String(status_text.to_string()),
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

fn dec(m: &Money) -> Decimal {
    money::parse_decimal(&m.amount).unwrap_or_default()
}

/// The unit price as the shop shows it: (line total + line tax) / quantity. The line's
/// `price` field is a lossy float and is never used.
fn line(l: Obj<'_>, currency: &str) -> Result<LineRef, Rejection> {
    let quantity = l.u64("quantity")?;
    let total = l.opt_money("total", currency)?;
    let tax = l.opt_money("total_tax", currency)?;
    let unit_price = match (total, quantity) {
        (Some(total), q) if q > 0 => dec(&total)
            .checked_add(tax.as_ref().map(dec).unwrap_or_default())
            .and_then(|gross| gross.checked_div(Decimal::from(q)))
            .and_then(|unit| money::money(unit, currency)),
        _ => None,
    };
    Ok(LineRef {
        line_id: l.id("id")?,
        sku: l.opt_str("sku")?.map(str::to_string),
        product_id: l.opt_id("product_id")?,
        variant_id: l.opt_id("variation_id")?,
        title: l.opt_str("name")?.map(str::to_string),
        variant_title: None,
        quantity,
        unit_price,
    })
}

fn address(a: Obj<'_>) -> Result<Address, Rejection> {
    let s = |k: &str| a.opt_str(k).map(|v| v.map(str::to_string));
    Ok(Address {
        name: full_name(a.opt_str("first_name")?, a.opt_str("last_name")?),
        company: s("company")?,
        line1: s("address_1")?,
        line2: s("address_2")?,
        city: s("city")?,
        postal_code: s("postcode")?,
        region: s("state")?,
        country: s("country")?.map(|c| c.to_ascii_uppercase()),
        phone: s("phone")?,
    })
}

fn status(s: &str) -> OrderStatus {
    match s {
        "processing" => OrderStatus::Processing,
        "on-hold" => OrderStatus::OnHold,
        "completed" => OrderStatus::Completed,
        "cancelled" => OrderStatus::Cancelled,
        "refunded" => OrderStatus::Refunded,
        "failed" => OrderStatus::Failed,
        // pending, checkout-draft and shop-specific statuses: the provider value is kept.
        _ => OrderStatus::Pending,
    }
}
