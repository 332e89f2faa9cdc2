//! Ecwid, read back: an Ecwid webhook only says which order changed (its statuses are not
//! signed), so the order (`GET /api/v3/{storeId}/orders/{id}`) tells its facts, each once:
//! `order.created` the first time, `order.paid` (payment `PAID`), `order.cancelled`
//! (payment `CANCELLED` or fulfilment `WILL_NOT_DELIVER`), `shipment.created` (fulfilment
//! `SHIPPED`, `OUT_FOR_DELIVERY` or `DELIVERED`), `order.fulfilled` (`DELIVERED`); and the
//! full `order.updated` of the webhook. Amounts are numbers in the store's currency, which
//! only the store's profile says (read with the order).

use omnigate_schemas::events::{
    Address, CancelReason, OrderCancelled, OrderCreated, OrderFulfilled, OrderPaid, OrderStatus,
    OrderUpdated, PaymentState, ShipmentCreated, types,
};
use omnigate_schemas::{LineRef, Party};
use serde_json::json;

use super::Thin;
use crate::json::Json;
use crate::normalize::fields::Obj;
use crate::normalize::{Normalized, Rejection, time};

pub(super) fn enriched(thin: &Thin<'_>, resource: &Json<'_>) -> Result<Vec<Normalized>, Rejection> {
    if thin.event_type != types::ORDER_UPDATED {
        return Ok(Vec::new());
    }
    let root = Obj::root(resource)?;
    let profile = root
        .opt_obj("profile")?
        .ok_or_else(|| root.err("profile", "the store's profile was not read"))?;
    let units = profile
        .obj()
        .opt_obj("formatsAndUnits")?
        .ok_or_else(|| root.err("profile", "the profile names no currency"))?;
    let currency = units.obj().currency("currency")?;
    let order = root
        .opt_obj("order")?
        .ok_or_else(|| root.err("order", "the order was not read"))?;
    let o = order.obj();
    // The id the webhook named (the internal one), so subjects match the thin event's.
    let order_id = thin
        .order_id
        .map(str::to_string)
        .map_or_else(|| o.id("internalId"), Ok)?;
    let number = o
        .opt_id("id")?
        .or(o.opt_id("orderNumber")?)
        .unwrap_or(order_id.clone());
    let subject = format!("order/{order_id}");
    let payment = o
        .opt_str("paymentStatus")?
        .unwrap_or("AWAITING_PAYMENT")
        .to_string();
    let fulfilment = o
        .opt_str("fulfillmentStatus")?
        .unwrap_or("AWAITING_PROCESSING")
        .to_string();
    let unix = |k: &str| o.get(k).and_then(Json::as_i64).and_then(time::unix_seconds);
    let placed_at = unix("createTimestamp").unwrap_or(thin.occurred_at);
    let updated_at = unix("updateTimestamp").unwrap_or(thin.occurred_at);
    let total = o.money("total", &currency)?;
    let fact = |name: &str| format!("ecwid:{order_id}:{name}");
    let status = order_status(&payment, &fulfilment);
    let provider_status = json!({"paymentStatus": payment, "fulfillmentStatus": fulfilment});

    let lines = o
        .objects("items")?
        .iter()
        .map(|i| {
            let i = i.obj();
            Ok(LineRef {
                line_id: i.id("id")?,
                sku: i
                    .opt_str("sku")?
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
                product_id: i.opt_id("productId")?,
                variant_id: i.opt_id("combinationId")?,
                title: i.opt_str("name")?.map(str::to_string),
                variant_title: None,
                quantity: i.u64("quantity")?,
                unit_price: i.opt_money("price", &currency)?,
            })
        })
        .collect::<Result<Vec<_>, Rejection>>()?;
    let person = |key: &str| -> Result<Option<Address>, Rejection> {
        let Some(p) = o.opt_obj(key)? else {
            return Ok(None);
        };
        let p = p.obj();
        let s = |k: &str| {
            p.opt_str(k)
                .map(|v| v.map(str::to_string).filter(|v| !v.is_empty()))
        };
        Ok(Some(Address {
            name: s("name")?,
            company: s("companyName")?,
            line1: s("street")?,
            line2: None,
            city: s("city")?,
            postal_code: s("postalCode")?,
            region: s("stateOrProvinceCode")?,
            country: s("countryCode")?.map(|c| c.to_ascii_uppercase()),
            phone: s("phone")?,
        }))
    };
    let billing = person("billingPerson")?;
    let shipping = person("shippingPerson")?;

    let mut events = Vec::new();
    let created = OrderCreated {
        order_id: order_id.clone(),
        order_number: number.clone(),
        status,
        placed_at: time::format(placed_at),
        currency: currency.clone(),
        total: total.clone(),
        subtotal: o.opt_money("subtotal", &currency)?,
        tax: o.opt_money("tax", &currency)?,
        shipping: match o.opt_obj("shippingOption")? {
            Some(s) => s.obj().opt_money("shippingRate", &currency)?,
            None => None,
        },
        discount: o.opt_money("discount", &currency)?,
        lines: lines.clone(),
        customer: Party {
            customer_id: o.opt_id("customerId")?,
            email: o.opt_str("email")?.map(str::to_string),
            phone: billing.as_ref().and_then(|b| b.phone.clone()),
            name: billing.as_ref().and_then(|b| b.name.clone()),
            locale: None,
        },
        shipping_address: shipping.clone(),
        billing_address: billing,
        payment_state: if payment == "PAID" {
            PaymentState::Paid
        } else {
            PaymentState::Pending
        },
        provider_status: provider_status.clone(),
    };
    events.push(
        Normalized::new(types::ORDER_CREATED, placed_at, subject.clone(), &created)?
            .with_fact(fact("created")),
    );
    if payment == "PAID" {
        let data = OrderPaid {
            order_id: order_id.clone(),
            amount: total.clone(),
            paid_at: time::format(updated_at),
            method: o.opt_str("paymentMethod")?.map(str::to_string),
            reference: None,
        };
        events.push(
            Normalized::new(types::ORDER_PAID, updated_at, subject.clone(), &data)?
                .with_fact(fact("paid")),
        );
    }
    if payment == "CANCELLED" || fulfilment == "WILL_NOT_DELIVER" {
        let data = OrderCancelled {
            order_id: order_id.clone(),
            cancelled_at: time::format(updated_at),
            reason: CancelReason::Merchant,
            refund_expected: false,
            provider_reason: Some(format!("{payment} / {fulfilment}")),
        };
        events.push(
            Normalized::new(types::ORDER_CANCELLED, updated_at, subject.clone(), &data)?
                .with_fact(fact("cancelled")),
        );
    }
    if matches!(
        fulfilment.as_str(),
        "SHIPPED" | "OUT_FOR_DELIVERY" | "DELIVERED"
    ) {
        let tracking = o
            .opt_str("trackingNumber")?
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        let data = ShipmentCreated {
            shipment_id: format!("{order_id}:{}", tracking.as_deref().unwrap_or("shipped")),
            order_id: order_id.clone(),
            order_number: Some(number.clone()),
            locale: thin.shop_locale.map(str::to_string),
            carrier: match o.opt_obj("shippingOption")? {
                Some(s) => s.obj().opt_str("shippingMethodName")?.map(str::to_string),
                None => None,
            },
            tracking_number: tracking,
            tracking_url: None,
            lines,
            shipped_at: time::format(updated_at),
            destination: shipping,
        };
        events.push(
            Normalized::new(types::SHIPMENT_CREATED, updated_at, subject.clone(), &data)?
                .with_fact(fact("shipped")),
        );
    }
    if fulfilment == "DELIVERED" {
        let data = OrderFulfilled {
            order_id: order_id.clone(),
            fulfilled_at: time::format(updated_at),
            fully: true,
        };
        events.push(
            Normalized::new(types::ORDER_FULFILLED, updated_at, subject.clone(), &data)?
                .with_fact(fact("fulfilled")),
        );
    }
    let updated = OrderUpdated {
        order_id,
        status,
        changed: Vec::new(),
        changed_known: Some(false),
        updated_at: time::format(updated_at),
        provider_status,
    };
    events.push(
        Normalized::new(types::ORDER_UPDATED, updated_at, subject, &updated)?
            .with_fact(thin.fact()),
    );
    Ok(events)
}

fn order_status(payment: &str, fulfilment: &str) -> OrderStatus {
    match (payment, fulfilment) {
        ("CANCELLED", _) | (_, "WILL_NOT_DELIVER") => OrderStatus::Cancelled,
        ("REFUNDED", _) => OrderStatus::Refunded,
        (_, "DELIVERED") => OrderStatus::Completed,
        ("PAID", _) => OrderStatus::Processing,
        _ => OrderStatus::Pending,
    }
}
