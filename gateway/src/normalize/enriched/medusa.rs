//! Standard Webhooks bridges of Medusa, read back: the order a bridge event names
//! (`GET /admin/orders/{id}` of Medusa's Admin API) gives the full form of each thin order
//! event. Medusa v2 writes amounts as numbers in major units and currencies in lower case.

use omnigate_schemas::events::{
    Address, CancelReason, OrderCancelled, OrderCreated, OrderFulfilled, OrderStatus, OrderUpdated,
    PaymentState, types,
};
use omnigate_schemas::{LineRef, Party};
use serde_json::json;

use super::Thin;
use crate::json::Json;
use crate::normalize::fields::{Obj, full_name};
use crate::normalize::{Normalized, Rejection, time};

pub(super) fn enriched(thin: &Thin<'_>, resource: &Json<'_>) -> Result<Vec<Normalized>, Rejection> {
    let root = Obj::root(resource)?;
    let order = root
        .opt_obj("order")?
        .ok_or_else(|| root.err("order", "the order was not read"))?;
    let o = order.obj();
    let order_id = o.id("id")?;
    let subject = format!("order/{order_id}");
    let currency = o.currency("currency_code")?;
    let status = o.opt_str("status")?.unwrap_or("pending").to_string();
    let payment = o
        .opt_str("payment_status")?
        .unwrap_or("not_paid")
        .to_string();
    let fulfilment = o
        .opt_str("fulfillment_status")?
        .unwrap_or("not_fulfilled")
        .to_string();
    let updated_at = o.opt_time("updated_at")?.unwrap_or(thin.occurred_at);
    let provider_status =
        json!({"status": status, "payment_status": payment, "fulfillment_status": fulfilment});
    let event = match thin.event_type {
        types::ORDER_CREATED => {
            let placed_at = o.opt_time("created_at")?.unwrap_or(thin.occurred_at);
            let address = |key: &str| -> Result<Option<Address>, Rejection> {
                let Some(a) = o.opt_obj(key)? else {
                    return Ok(None);
                };
                let a = a.obj();
                let s = |k: &str| {
                    a.opt_str(k)
                        .map(|v| v.map(str::to_string).filter(|v| !v.is_empty()))
                };
                Ok(Some(Address {
                    name: full_name(a.opt_str("first_name")?, a.opt_str("last_name")?),
                    company: s("company")?,
                    line1: s("address_1")?,
                    line2: s("address_2")?,
                    city: s("city")?,
                    postal_code: s("postal_code")?,
                    region: s("province")?,
                    country: s("country_code")?.map(|c| c.to_ascii_uppercase()),
                    phone: s("phone")?,
                }))
            };
            let shipping = address("shipping_address")?;
            let lines = o
                .objects("items")?
                .iter()
                .map(|i| {
                    let i = i.obj();
                    Ok(LineRef {
                        line_id: i.id("id")?,
                        sku: i.opt_str("variant_sku")?.map(str::to_string),
                        product_id: i.opt_id("product_id")?,
                        variant_id: i.opt_id("variant_id")?,
                        title: i.opt_str("title")?.map(str::to_string),
                        variant_title: i.opt_str("subtitle")?.map(str::to_string),
                        quantity: i.u64("quantity")?,
                        unit_price: i.opt_money("unit_price", &currency)?,
                    })
                })
                .collect::<Result<Vec<_>, Rejection>>()?;
            let data = OrderCreated {
                order_id: order_id.clone(),
                order_number: o.opt_id("display_id")?.unwrap_or(order_id.clone()),
                status: order_status(&status, &payment),
                placed_at: time::format(placed_at),
                currency: currency.clone(),
                total: o.money("total", &currency)?,
                subtotal: o.opt_money("subtotal", &currency)?,
                tax: o.opt_money("tax_total", &currency)?,
                shipping: o.opt_money("shipping_total", &currency)?,
                discount: o.opt_money("discount_total", &currency)?,
                lines,
                customer: Party {
                    customer_id: o.opt_id("customer_id")?,
                    email: o.opt_str("email")?.map(str::to_string),
                    phone: shipping.as_ref().and_then(|a| a.phone.clone()),
                    name: shipping.as_ref().and_then(|a| a.name.clone()),
                    locale: None,
                },
                shipping_address: shipping,
                billing_address: address("billing_address")?,
                payment_state: match payment.as_str() {
                    "captured" | "partially_refunded" | "refunded" => PaymentState::Paid,
                    "authorized" | "partially_authorized" => PaymentState::Authorized,
                    _ => PaymentState::Pending,
                },
                provider_status,
            };
            Normalized::new(types::ORDER_CREATED, placed_at, subject, &data)?
        }
        types::ORDER_CANCELLED => {
            let at = o.opt_time("canceled_at")?.unwrap_or(updated_at);
            let data = OrderCancelled {
                order_id,
                cancelled_at: time::format(at),
                reason: CancelReason::Other,
                refund_expected: payment == "captured",
                provider_reason: Some(status),
            };
            Normalized::new(types::ORDER_CANCELLED, at, subject, &data)?
        }
        types::ORDER_FULFILLED => {
            let data = OrderFulfilled {
                order_id,
                fulfilled_at: time::format(updated_at),
                fully: !fulfilment.starts_with("partially"),
            };
            Normalized::new(types::ORDER_FULFILLED, updated_at, subject, &data)?
        }
        types::ORDER_UPDATED => {
            let data = OrderUpdated {
                order_id,
                status: order_status(&status, &payment),
                changed: Vec::new(),
                changed_known: Some(false),
                updated_at: time::format(updated_at),
                provider_status,
            };
            Normalized::new(types::ORDER_UPDATED, updated_at, subject, &data)?
        }
        _ => return Ok(Vec::new()),
    };
    Ok(vec![event.with_fact(thin.fact())])
}

fn order_status(status: &str, payment: &str) -> OrderStatus {
    match (status, payment) {
        ("canceled", _) => OrderStatus::Cancelled,
        ("completed", _) => OrderStatus::Completed,
        ("requires_action", _) => OrderStatus::OnHold,
        (_, "refunded") => OrderStatus::Refunded,
        (_, "captured") => OrderStatus::Processing,
        _ => OrderStatus::Pending,
    }
}
