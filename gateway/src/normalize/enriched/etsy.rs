//! Etsy, read back: the receipt (`GET /v3/application/shops/{shop}/receipts/{id}`) gives
//! the full form of each thin event, and `order.created` the first time a receipt is read
//! (Etsy sends no webhook for a new order). Money is `{amount, divisor, currency_code}`;
//! times are Unix seconds.

use omnigate_schemas::events::{
    Address, CancelReason, OrderCancelled, OrderCreated, OrderPaid, OrderStatus, PaymentState,
    ShipmentCreated, ShipmentStatus, ShipmentUpdated, types,
};
use omnigate_schemas::{LineRef, Money, Party};
use rust_decimal::Decimal;
use serde_json::Value;

use super::Thin;
use crate::json::Json;
use crate::normalize::fields::Obj;
use crate::normalize::{Normalized, Rejection, money, time};

pub(super) fn enriched(thin: &Thin<'_>, resource: &Json<'_>) -> Result<Vec<Normalized>, Rejection> {
    let root = Obj::root(resource)?;
    let receipt = root
        .opt_obj("receipt")?
        .ok_or_else(|| root.err("receipt", "the receipt was not read"))?;
    let r = receipt.obj();
    let receipt_id = r.id("receipt_id")?;
    let subject = format!("order/{receipt_id}");
    let status = r.opt_str("status")?.unwrap_or("open").to_string();
    let paid = r.get("is_paid").and_then(Json::as_bool).unwrap_or(false);
    let placed_at = unix(&r, "create_timestamp")?.unwrap_or(thin.occurred_at);
    let total = amount(&r, "grandtotal")?;
    let at = thin.occurred_at;

    let lines = r
        .objects("transactions")?
        .iter()
        .map(|t| {
            let t = t.obj();
            Ok(LineRef {
                line_id: t.id("transaction_id")?,
                sku: t
                    .opt_str("sku")?
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
                product_id: t.opt_id("listing_id")?,
                variant_id: t.opt_id("product_id")?,
                title: t.opt_str("title")?.map(str::to_string),
                variant_title: None,
                quantity: t.u64("quantity")?,
                unit_price: match t.get("price") {
                    Some(_) => Some(amount(&t, "price")?),
                    None => None,
                },
            })
        })
        .collect::<Result<Vec<_>, Rejection>>()?;
    let text = |k: &str| {
        r.opt_str(k)
            .map(|v| v.map(str::to_string).filter(|v| !v.is_empty()))
    };
    let destination = Address {
        name: text("name")?,
        company: None,
        line1: text("first_line")?,
        line2: text("second_line")?,
        city: text("city")?,
        postal_code: text("zip")?,
        region: text("state")?,
        country: text("country_iso")?.map(|c| c.to_ascii_uppercase()),
        phone: None,
    };
    let created = OrderCreated {
        order_id: receipt_id.clone(),
        order_number: receipt_id.clone(),
        status: match (status.as_str(), paid) {
            ("canceled", _) => OrderStatus::Cancelled,
            ("completed", _) => OrderStatus::Completed,
            (_, true) => OrderStatus::Processing,
            _ => OrderStatus::Pending,
        },
        placed_at: time::format(placed_at),
        currency: total.currency.clone(),
        total: total.clone(),
        subtotal: optional(&r, "subtotal")?,
        tax: optional(&r, "total_tax_cost")?,
        shipping: optional(&r, "total_shipping_cost")?,
        discount: optional(&r, "discount_amt")?,
        lines: lines.clone(),
        customer: Party {
            customer_id: r.opt_id("buyer_user_id")?,
            email: text("buyer_email")?,
            phone: None,
            name: text("name")?,
            locale: None,
        },
        shipping_address: Some(destination.clone()),
        billing_address: None,
        payment_state: if paid {
            PaymentState::Paid
        } else {
            PaymentState::Pending
        },
        provider_status: Value::String(status.clone()),
    };
    let mut events = vec![
        Normalized::new(types::ORDER_CREATED, placed_at, subject.clone(), &created)?
            .with_fact(format!("etsy:{receipt_id}:created")),
    ];
    let shipment = r.objects("shipments")?.into_iter().last();
    let full = match thin.event_type {
        types::ORDER_PAID => {
            let data = OrderPaid {
                order_id: receipt_id.clone(),
                amount: total,
                paid_at: time::format(at),
                method: text("payment_method")?,
                reference: None,
            };
            Normalized::new(types::ORDER_PAID, at, subject, &data)?
        }
        types::ORDER_CANCELLED => {
            let data = OrderCancelled {
                order_id: receipt_id.clone(),
                cancelled_at: time::format(at),
                reason: CancelReason::Other,
                refund_expected: paid,
                provider_reason: Some(status),
            };
            Normalized::new(types::ORDER_CANCELLED, at, subject, &data)?
        }
        types::SHIPMENT_CREATED => {
            let Some(s) = shipment else {
                return Err(r.err("shipments", "the receipt lists no shipment"));
            };
            let s = s.obj();
            let shipped_at = unix(&s, "shipment_notification_timestamp")?.unwrap_or(at);
            let data = ShipmentCreated {
                shipment_id: s.id("receipt_shipping_id")?,
                order_id: receipt_id.clone(),
                order_number: Some(receipt_id.clone()),
                locale: thin.shop_locale.map(str::to_string),
                carrier: s.opt_str("carrier_name")?.map(str::to_string),
                tracking_number: s.opt_str("tracking_code")?.map(str::to_string),
                tracking_url: None,
                lines,
                shipped_at: time::format(shipped_at),
                destination: Some(destination),
            };
            Normalized::new(types::SHIPMENT_CREATED, shipped_at, subject, &data)?
        }
        types::SHIPMENT_UPDATED => {
            let Some(s) = shipment else {
                return Err(r.err("shipments", "the receipt lists no shipment"));
            };
            let s = s.obj();
            let data = ShipmentUpdated {
                shipment_id: s.id("receipt_shipping_id")?,
                order_id: receipt_id.clone(),
                order_number: Some(receipt_id.clone()),
                locale: thin.shop_locale.map(str::to_string),
                status: ShipmentStatus::Delivered,
                eta: None,
                status_at: time::format(at),
                carrier: s.opt_str("carrier_name")?.map(str::to_string),
                tracking_number: s.opt_str("tracking_code")?.map(str::to_string),
                tracking_url: None,
                provider_status: Some(Value::String("delivered".into())),
            };
            Normalized::new(types::SHIPMENT_UPDATED, at, subject, &data)?
        }
        _ => return Ok(events),
    };
    events.push(full.with_fact(thin.fact()));
    Ok(events)
}

fn unix(o: &Obj<'_>, key: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, Rejection> {
    match o.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .and_then(time::unix_seconds)
            .map(Some)
            .ok_or_else(|| o.err(key, "expected Unix seconds")),
    }
}

/// `{amount: 1999, divisor: 100, currency_code: "USD"}`.
fn amount(o: &Obj<'_>, key: &str) -> Result<Money, Rejection> {
    let m = o
        .opt_obj(key)?
        .ok_or_else(|| o.err(key, "required amount is missing"))?;
    let m = m.obj();
    let units = m
        .get("amount")
        .and_then(Json::as_i64)
        .ok_or_else(|| m.err("amount", "expected an integer"))?;
    let divisor = m
        .get("divisor")
        .and_then(Json::as_i64)
        .filter(|d| *d > 0)
        .ok_or_else(|| m.err("divisor", "expected a positive integer"))?;
    let currency = m.currency("currency_code")?;
    money::money(Decimal::from(units) / Decimal::from(divisor), &currency)
        .ok_or_else(|| m.err("currency_code", "not a currency"))
}

fn optional(o: &Obj<'_>, key: &str) -> Result<Option<Money>, Rejection> {
    match o.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(_) => amount(o, key).map(Some),
    }
}
