//! Saleor: the body is the app's subscription selection. Omnigate expects the fields of the
//! subscription documented in `schemas/providers/saleor/payload.schema.json` (`issuedAt` and
//! an `order`, `fulfillment` or `user` object). Money arrives as JSON floats
//! (`{"amount": 84.9, "currency": "USD"}`) and becomes exact decimal strings.

use crate::json::Json;
use chrono::{DateTime, Utc};
use omnigate_schemas::api::Provider;
use omnigate_schemas::events::{
    CancelReason, Customer, OrderCancelled, OrderCreated, OrderFulfilled, OrderPaid, OrderStatus,
    PaymentState, RefundCreated, RefundStatus, ShipmentCreated, types,
};
use omnigate_schemas::{Address, LineRef, Money, Party};
use rust_decimal::Decimal;
use serde_json::json;

use super::fields::{Obj, full_name};
use super::snapshot::Snapshot;
use super::{Input, Normalized, Output, Rejection, id_text, money, time, unknown_topic};

pub(super) fn snapshot_key(topic: &str, body: &Json<'_>) -> Option<String> {
    match topic {
        "ORDER_REFUNDED" | "ORDER_FULLY_REFUNDED" => {
            id_text(body.get("order")?.get("id")).map(|id| format!("order:{id}"))
        }
        _ => None,
    }
}

pub(super) fn normalize(input: Input<'_>) -> Result<Output, Rejection> {
    let body = Obj::root(input.body)?;
    let issued = body.opt_time("issuedAt")?.unwrap_or(input.received_at);
    let order = body.opt_obj("order")?;
    let need_order = || {
        order
            .as_ref()
            .map(|o| o.obj())
            .ok_or_else(|| body.err("order", "required object is missing"))
    };
    let events = match input.topic {
        "ORDER_CREATED" => vec![order_created(need_order()?)?],
        "ORDER_FULLY_PAID" => vec![order_paid(need_order()?, issued)?],
        "ORDER_CANCELLED" => vec![order_cancelled(need_order()?, issued)?],
        "ORDER_FULFILLED" => vec![order_fulfilled(need_order()?, issued)?],
        "FULFILLMENT_CREATED" => vec![fulfillment_created(body, issued, input.shop_locale)?],
        "ORDER_REFUNDED" | "ORDER_FULLY_REFUNDED" => {
            return order_refunded(need_order()?, issued, input.snapshot.cloned());
        }
        "CUSTOMER_CREATED" => vec![customer(body, issued, types::CUSTOMER_CREATED)?],
        "CUSTOMER_UPDATED" => vec![customer(body, issued, types::CUSTOMER_UPDATED)?],
        other => return Err(unknown_topic(Provider::Saleor, other)),
    };
    Ok(Output::events(events))
}

/// `{amount: float, currency}`, or Saleor's `TaxedMoney` (`{gross: {…}}`).
fn price(o: Obj<'_>, key: &str) -> Result<Option<Money>, Rejection> {
    let Some(p) = o.opt_obj(key)? else {
        return Ok(None);
    };
    let p = p.obj();
    let m = match p.opt_obj("gross")? {
        Some(g) => return money_of(g.obj()).map(Some),
        None => p,
    };
    money_of(m).map(Some)
}

fn money_of(m: Obj<'_>) -> Result<Money, Rejection> {
    let currency = m.currency("currency")?;
    m.money("amount", &currency)
}

fn required_price(o: Obj<'_>, key: &str) -> Result<Money, Rejection> {
    price(o, key)?.ok_or_else(|| o.err(key, "required amount is missing"))
}

fn address(a: Obj<'_>) -> Result<Address, Rejection> {
    let s = |k: &str| a.opt_str(k).map(|v| v.map(str::to_string));
    Ok(Address {
        name: full_name(a.opt_str("firstName")?, a.opt_str("lastName")?),
        company: s("companyName")?,
        line1: s("streetAddress1")?,
        line2: s("streetAddress2")?,
        city: s("city")?,
        postal_code: s("postalCode")?,
        region: s("countryArea")?,
        country: match a.opt_obj("country")? {
            Some(c) => c.obj().opt_str("code")?.map(str::to_string),
            None => s("country")?,
        },
        phone: s("phone")?,
    })
}

fn order_created(o: Obj<'_>) -> Result<Normalized, Rejection> {
    let order_id = o.id("id")?;
    let total = required_price(o, "total")?;
    let currency = total.currency.clone();
    let placed_at = o.time("created")?;
    let charge = o.opt_str("chargeStatus")?;
    let status_text = o.opt_str("status")?;
    let user = o.opt_obj("user")?;
    let billing = o.opt_obj("billingAddress")?;
    let lines = o
        .objects("lines")?
        .iter()
        .map(|l| {
            let l = l.obj();
            let variant = l.opt_obj("variant")?;
            let (variant_id, product_id) = match &variant {
                Some(v) => (
                    v.obj().opt_id("id")?,
                    match v.obj().opt_obj("product")? {
                        Some(p) => p.obj().opt_id("id")?,
                        None => None,
                    },
                ),
                None => (None, None),
            };
            Ok(LineRef {
                line_id: l.id("id")?,
                sku: l.opt_str("productSku")?.map(str::to_string),
                product_id,
                variant_id,
                title: l.opt_str("productName")?.map(str::to_string),
                variant_title: l.opt_str("variantName")?.map(str::to_string),
                quantity: l.u64("quantity")?,
                unit_price: price(l, "unitPrice")?,
            })
        })
        .collect::<Result<Vec<_>, Rejection>>()?;
    let data = OrderCreated {
        order_number: o.opt_id("number")?.unwrap_or_else(|| order_id.clone()),
        status: match status_text {
            Some("CANCELED") => OrderStatus::Cancelled,
            Some("FULFILLED" | "RETURNED") => OrderStatus::Completed,
            Some("UNCONFIRMED" | "DRAFT") => OrderStatus::Pending,
            _ if matches!(charge, Some("FULL" | "OVERCHARGED")) => OrderStatus::Processing,
            _ => OrderStatus::Pending,
        },
        placed_at: time::format(placed_at),
        subtotal: price(o, "subtotal")?,
        tax: match o.opt_obj("total")? {
            Some(t) => match t.obj().opt_obj("tax")? {
                Some(tax) => Some(money_of(tax.obj())?),
                None => None,
            },
            None => None,
        },
        shipping: price(o, "shippingPrice")?,
        discount: None,
        lines,
        customer: Party {
            customer_id: match &user {
                Some(u) => u.obj().opt_id("id")?,
                None => None,
            },
            email: o.opt_str("userEmail")?.map(str::to_string),
            phone: match &billing {
                Some(b) => b.obj().opt_str("phone")?.map(str::to_string),
                None => None,
            },
            name: match &billing {
                Some(b) => full_name(b.obj().opt_str("firstName")?, b.obj().opt_str("lastName")?),
                None => None,
            },
            locale: o.opt_str("languageCodeEnum")?.map(language_tag),
        },
        shipping_address: o
            .opt_obj("shippingAddress")?
            .map(|a| address(a.obj()))
            .transpose()?,
        billing_address: billing.map(|a| address(a.obj())).transpose()?,
        payment_state: match charge {
            Some("FULL" | "OVERCHARGED") => PaymentState::Paid,
            Some("PARTIAL") => PaymentState::Authorized,
            _ => PaymentState::Pending,
        },
        provider_status: json!({"status": status_text, "chargeStatus": charge}),
        total,
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

fn order_paid(o: Obj<'_>, issued: DateTime<Utc>) -> Result<Normalized, Rejection> {
    let order_id = o.id("id")?;
    let amount = match price(o, "totalCharged")? {
        Some(m) => m,
        None => required_price(o, "total")?,
    };
    let data = OrderPaid {
        amount,
        paid_at: time::format(issued),
        method: None,
        reference: None,
        order_id: order_id.clone(),
    };
    Normalized::new(
        types::ORDER_PAID,
        issued,
        format!("order/{order_id}"),
        &data,
    )
}

fn order_cancelled(o: Obj<'_>, issued: DateTime<Utc>) -> Result<Normalized, Rejection> {
    let order_id = o.id("id")?;
    let charged = match price(o, "totalCharged")? {
        Some(m) => money::parse_decimal(&m.amount).unwrap_or_default() > Decimal::ZERO,
        None => matches!(
            o.opt_str("chargeStatus")?,
            Some("FULL" | "PARTIAL" | "OVERCHARGED")
        ),
    };
    let data = OrderCancelled {
        cancelled_at: time::format(issued),
        reason: CancelReason::Other,
        refund_expected: charged,
        provider_reason: None,
        order_id: order_id.clone(),
    };
    Normalized::new(
        types::ORDER_CANCELLED,
        issued,
        format!("order/{order_id}"),
        &data,
    )
}

fn order_fulfilled(o: Obj<'_>, issued: DateTime<Utc>) -> Result<Normalized, Rejection> {
    let order_id = o.id("id")?;
    let data = OrderFulfilled {
        fulfilled_at: time::format(issued),
        fully: o.opt_str("status")?.is_none_or(|s| s == "FULFILLED"),
        order_id: order_id.clone(),
    };
    Normalized::new(
        types::ORDER_FULFILLED,
        issued,
        format!("order/{order_id}"),
        &data,
    )
}

/// Saleor's `LanguageCodeEnum` (`EN_US`, `ZH_HANS`, `FR`) as a BCP 47 tag (`en-US`,
/// `zh-Hans`, `fr`), as Shopify's locales and a source's `options.locale` are written.
fn language_tag(code: &str) -> String {
    code.split(['_', '-'])
        .enumerate()
        .map(|(i, part)| match (i, part.len()) {
            (0, _) => part.to_ascii_lowercase(),
            (_, 4) => {
                let (first, rest) = part.split_at(1);
                format!(
                    "{}{}",
                    first.to_ascii_uppercase(),
                    rest.to_ascii_lowercase()
                )
            }
            _ => part.to_ascii_uppercase(),
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// What `FULFILLMENT_CREATED` says of its order: Saleor sends the order with it, so its
/// number and language come from the payload itself (when the subscription asks for them).
fn fulfillment_created(
    body: Obj<'_>,
    issued: DateTime<Utc>,
    shop_locale: Option<&str>,
) -> Result<Normalized, Rejection> {
    let f = body
        .opt_obj("fulfillment")?
        .ok_or_else(|| body.err("fulfillment", "required object is missing"))?;
    let f = f.obj();
    let order = body
        .opt_obj("order")?
        .ok_or_else(|| body.err("order", "required object is missing"))?;
    let order = order.obj();
    let order_id = order.id("id")?;
    let order_number = order.opt_id("number")?;
    let locale = match order.opt_str("languageCodeEnum")? {
        Some(l) => Some(language_tag(l)),
        None => shop_locale.map(str::to_string),
    };
    let shipped_at = f.opt_time("created")?.unwrap_or(issued);
    let lines = f
        .objects("lines")?
        .iter()
        .map(|l| {
            let l = l.obj();
            let order_line = l.opt_obj("orderLine")?;
            Ok(LineRef {
                line_id: match &order_line {
                    Some(ol) => ol.obj().id("id")?,
                    None => l.id("id")?,
                },
                sku: match &order_line {
                    Some(ol) => ol.obj().opt_str("productSku")?.map(str::to_string),
                    None => None,
                },
                quantity: l.u64("quantity")?,
                ..LineRef::default()
            })
        })
        .collect::<Result<Vec<_>, Rejection>>()?;
    let data = ShipmentCreated {
        shipment_id: f.id("id")?,
        carrier: None,
        tracking_number: f.opt_str("trackingNumber")?.map(str::to_string),
        tracking_url: None,
        lines,
        shipped_at: time::format(shipped_at),
        destination: None,
        order_id: order_id.clone(),
        order_number,
        locale,
    };
    Normalized::new(
        types::SHIPMENT_CREATED,
        shipped_at,
        format!("order/{order_id}"),
        &data,
    )
}

/// `ORDER_REFUNDED` says the order's refunded total grew: the growth since the kept snapshot
/// is one refund, named after the new total (Saleor gives the webhook no refund id).
fn order_refunded(
    o: Obj<'_>,
    issued: DateTime<Utc>,
    prior: Option<Snapshot>,
) -> Result<Output, Rejection> {
    let order_id = o.id("id")?;
    let refunded = required_price(o, "totalRefunded")?;
    let now = money::parse_decimal(&refunded.amount).unwrap_or_default();
    let before = prior
        .as_ref()
        .and_then(|p| p.status.as_deref())
        .and_then(money::parse_decimal)
        .unwrap_or_default();
    let snap = Snapshot {
        status: Some(refunded.amount.clone()),
        ..Snapshot::default()
    };
    if now <= before {
        return Ok(Output {
            events: Vec::new(),
            snapshot: Some(snap),
        });
    }
    let refund_id = format!("{order_id}:refunded:{}", refunded.amount);
    let data = RefundCreated {
        amount: now
            .checked_sub(before)
            .and_then(|d| money::money(d, &refunded.currency))
            .ok_or_else(|| o.err("totalRefunded", "cannot be expressed"))?,
        reason: None,
        lines: None,
        status: RefundStatus::Succeeded,
        created_at: time::format(issued),
        return_id: None,
        order_id: order_id.clone(),
        refund_id: refund_id.clone(),
    };
    Ok(Output {
        events: vec![
            Normalized::new(
                types::REFUND_CREATED,
                issued,
                format!("order/{order_id}"),
                &data,
            )?
            .with_fact(format!("refund:{refund_id}")),
        ],
        snapshot: Some(snap),
    })
}

fn customer(
    body: Obj<'_>,
    issued: DateTime<Utc>,
    event_type: &'static str,
) -> Result<Normalized, Rejection> {
    let u = body
        .opt_obj("user")?
        .ok_or_else(|| body.err("user", "required object is missing"))?;
    let u = u.obj();
    let customer_id = u.id("id")?;
    let created_at = u.opt_time("dateJoined")?;
    let updated_at = u.opt_time("updatedAt")?;
    let occurred_at = match event_type {
        types::CUSTOMER_CREATED => created_at.unwrap_or(issued),
        _ => updated_at.unwrap_or(issued),
    };
    let data = Customer {
        email: u.opt_str("email")?.map(str::to_string),
        phone: None,
        first_name: u.opt_str("firstName")?.map(str::to_string),
        last_name: u.opt_str("lastName")?.map(str::to_string),
        locale: u.opt_str("languageCode")?.map(language_tag),
        marketing_consent: None,
        default_address: u
            .opt_obj("defaultShippingAddress")?
            .map(|a| address(a.obj()))
            .transpose()?,
        created_at: created_at.map(time::format),
        updated_at: updated_at.map(time::format),
        customer_id: customer_id.clone(),
    };
    Normalized::new(
        event_type,
        occurred_at,
        format!("customer/{customer_id}"),
        &data,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn saleor_language_codes_become_language_tags() {
        for (code, tag) in [
            ("FR", "fr"),
            ("EN_US", "en-US"),
            ("ZH_HANS", "zh-Hans"),
            ("SR_LATN_RS", "sr-Latn-RS"),
            ("UK", "uk"),
        ] {
            assert_eq!(super::language_tag(code), tag);
        }
    }
}
