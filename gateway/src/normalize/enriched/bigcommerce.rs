//! BigCommerce, read back: the order (`GET /v2/orders/{id}` with its `/products`) gives
//! the full form of every thin order event; a shipment (`GET /v2/orders/{id}/shipments/{sid}`)
//! that of `shipment.created`. Dates are RFC 2822, amounts 4-dp strings in the order's
//! `currency_code`.

use chrono::{DateTime, Utc};
use omnigate_schemas::events::{
    Address, CancelReason, OrderCancelled, OrderCreated, OrderFulfilled, OrderPaid, OrderStatus,
    OrderUpdated, PaymentState, ShipmentCreated, types,
};
use omnigate_schemas::{LineRef, Party};
use serde_json::json;

use super::Thin;
use crate::json::Json;
use crate::normalize::fields::{Obj, full_name};
use crate::normalize::{Normalized, Rejection, money, time};

pub(super) fn enriched(thin: &Thin<'_>, resource: &Json<'_>) -> Result<Vec<Normalized>, Rejection> {
    let root = Obj::root(resource)?;
    if let Some(shipment) = root.opt_obj("shipment")? {
        return shipment_created(thin, &shipment.obj()).map(|e| e.into_iter().collect());
    }
    let order = root
        .opt_obj("order")?
        .ok_or_else(|| root.err("order", "the order was not read"))?;
    let o = order.obj();
    let products = root.objects("products")?;
    let order_id = o.id("id")?;
    let subject = format!("order/{order_id}");
    let currency = o.currency("currency_code")?;
    let modified = date(&o, "date_modified")?.unwrap_or(thin.occurred_at);
    let status_id = o
        .get("status_id")
        .and_then(Json::as_i64)
        .ok_or_else(|| o.err("status_id", "required status is missing"))?;
    let provider_status = json!({"status_id": status_id, "status": o.opt_str("status")?});
    let total = o.money("total_inc_tax", &currency)?;
    let event = match thin.event_type {
        types::ORDER_CREATED => {
            let placed_at = date(&o, "date_created")?.unwrap_or(thin.occurred_at);
            let billing = match o.opt_obj("billing_address")? {
                Some(b) => Some(address(&b.obj())?),
                None => None,
            };
            let email = match o.opt_obj("billing_address")? {
                Some(b) => b.obj().opt_str("email")?.map(str::to_string),
                None => None,
            };
            let lines = products
                .iter()
                .map(|p| line(&p.obj(), &currency))
                .collect::<Result<Vec<_>, _>>()?;
            let data = OrderCreated {
                order_id: order_id.clone(),
                order_number: order_id.clone(),
                status: status(status_id),
                placed_at: time::format(placed_at),
                currency: currency.clone(),
                total,
                subtotal: o.opt_money("subtotal_inc_tax", &currency)?,
                tax: o.opt_money("total_tax", &currency)?,
                shipping: o.opt_money("shipping_cost_inc_tax", &currency)?,
                discount: o.opt_money("discount_amount", &currency)?,
                lines,
                customer: Party {
                    customer_id: o.opt_id("customer_id")?,
                    email,
                    phone: billing.as_ref().and_then(|b| b.phone.clone()),
                    name: billing.as_ref().and_then(|b| b.name.clone()),
                    locale: None,
                },
                shipping_address: None,
                billing_address: billing,
                payment_state: payment_state(status_id),
                provider_status,
            };
            Normalized::new(types::ORDER_CREATED, placed_at, subject, &data)?
        }
        types::ORDER_PAID => {
            let data = OrderPaid {
                order_id,
                amount: total,
                paid_at: time::format(modified),
                method: o.opt_str("payment_method")?.map(str::to_string),
                reference: None,
            };
            Normalized::new(types::ORDER_PAID, modified, subject, &data)?
        }
        types::ORDER_CANCELLED => {
            let nothing_refunded = o
                .opt_money("refunded_amount", &currency)?
                .is_none_or(|m| money::parse_decimal(&m.amount).is_some_and(|d| d.is_zero()));
            let data = OrderCancelled {
                order_id,
                cancelled_at: time::format(modified),
                reason: if status_id == DECLINED {
                    CancelReason::Payment
                } else {
                    CancelReason::Other
                },
                // Captured and not refunded yet.
                refund_expected: nothing_refunded
                    && o.opt_str("payment_status")?
                        .is_some_and(|s| matches!(s, "captured" | "paid")),
                provider_reason: o.opt_str("status")?.map(str::to_string),
            };
            Normalized::new(types::ORDER_CANCELLED, modified, subject, &data)?
        }
        types::ORDER_FULFILLED => {
            let at = date(&o, "date_shipped")?.unwrap_or(modified);
            let data = OrderFulfilled {
                order_id,
                fulfilled_at: time::format(at),
                fully: status_id != PARTIALLY_SHIPPED,
            };
            Normalized::new(types::ORDER_FULFILLED, at, subject, &data)?
        }
        types::ORDER_UPDATED => {
            let data = OrderUpdated {
                order_id,
                status: status(status_id),
                changed: Vec::new(),
                changed_known: Some(false),
                updated_at: time::format(modified),
                provider_status,
            };
            Normalized::new(types::ORDER_UPDATED, modified, subject, &data)?
        }
        _ => return Ok(Vec::new()),
    };
    Ok(vec![event.with_fact(thin.fact())])
}

const PARTIALLY_SHIPPED: i64 = 3;
const DECLINED: i64 = 6;

/// `""` (unset) or RFC 2822.
fn date(o: &Obj<'_>, key: &str) -> Result<Option<DateTime<Utc>>, Rejection> {
    match o.opt_str(key)? {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) => time::parse(s)
            .map(Some)
            .ok_or_else(|| o.err(key, &format!("{s:?} is not a date"))),
    }
}

fn status(id: i64) -> OrderStatus {
    match id {
        0 | 1 | 7 => OrderStatus::Pending,
        2 | 10 => OrderStatus::Completed,
        4 => OrderStatus::Refunded,
        5 => OrderStatus::Cancelled,
        6 => OrderStatus::Failed,
        12 | 13 => OrderStatus::OnHold,
        _ => OrderStatus::Processing,
    }
}

fn payment_state(id: i64) -> PaymentState {
    match id {
        0 | 1 | 7 => PaymentState::Pending,
        _ => PaymentState::Paid,
    }
}

fn address(a: &Obj<'_>) -> Result<Address, Rejection> {
    let s = |k: &str| {
        a.opt_str(k)
            .map(|v| v.map(str::to_string).filter(|v| !v.is_empty()))
    };
    Ok(Address {
        name: full_name(a.opt_str("first_name")?, a.opt_str("last_name")?),
        company: s("company")?,
        line1: s("street_1")?,
        line2: s("street_2")?,
        city: s("city")?,
        postal_code: s("zip")?,
        region: s("state")?,
        country: s("country_iso2")?.map(|c| c.to_ascii_uppercase()),
        phone: s("phone")?,
    })
}

fn line(p: &Obj<'_>, currency: &str) -> Result<LineRef, Rejection> {
    Ok(LineRef {
        line_id: p.id("id")?,
        sku: p
            .opt_str("sku")?
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        product_id: p.opt_id("product_id")?,
        variant_id: p.opt_id("variant_id")?,
        title: p.opt_str("name")?.map(str::to_string),
        variant_title: None,
        quantity: p.u64("quantity")?,
        unit_price: p.opt_money("price_inc_tax", currency)?,
    })
}

fn shipment_created(thin: &Thin<'_>, s: &Obj<'_>) -> Result<Option<Normalized>, Rejection> {
    if thin.event_type != types::SHIPMENT_CREATED {
        return Ok(None);
    }
    let order_id = s.id("order_id")?;
    let at = date(s, "date_created")?.unwrap_or(thin.occurred_at);
    let lines = s
        .objects("items")?
        .iter()
        .map(|i| {
            let i = i.obj();
            Ok(LineRef {
                line_id: i.id("order_product_id")?,
                product_id: i.opt_id("product_id")?,
                quantity: i.u64("quantity")?,
                ..LineRef::default()
            })
        })
        .collect::<Result<Vec<_>, Rejection>>()?;
    let text = |k: &str| {
        s.opt_str(k)
            .map(|v| v.map(str::to_string).filter(|v| !v.is_empty()))
    };
    let data = ShipmentCreated {
        shipment_id: s.id("id")?,
        order_id: order_id.clone(),
        order_number: Some(order_id.clone()),
        locale: thin.shop_locale.map(str::to_string),
        carrier: text("tracking_carrier")?.or(text("shipping_provider")?),
        tracking_number: text("tracking_number")?,
        tracking_url: text("tracking_link")?,
        lines,
        shipped_at: time::format(at),
        destination: None,
    };
    Ok(Some(
        Normalized::new(
            types::SHIPMENT_CREATED,
            at,
            format!("order/{order_id}"),
            &data,
        )?
        .with_fact(thin.fact()),
    ))
}
