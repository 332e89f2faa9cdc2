//! Allegro, read by the poller: each entry of the order event journal (`GET
//! /order/events`) together with the checkout form it names, as the poller fetched it
//! (`{"event": …, "checkoutForm": …}`; the topic is the event's `type`). The checkout form
//! is the order as it is when read, so the event type says which fact happened and the
//! form gives its details. Every event also tells `order.created` (once per order, whatever
//! event the gateway saw first: the poll may start mid-life). A customer is keyed on the
//! buyer's id; the e-mail Allegro gives is a relay alias.

use omnigate_schemas::api::Provider;
use omnigate_schemas::events::{
    CancelReason, OrderCancelled, OrderCreated, OrderFulfilled, OrderPaid, OrderStatus,
    OrderUpdated, PaymentState, ShipmentCreated, ShipmentStatus, ShipmentUpdated, types,
};
use omnigate_schemas::{Address, LineRef, Money, Party};
use serde_json::json;

use super::fields::{Obj, full_name};
use super::{Input, Normalized, Output, Rejection, time, unknown_topic};

pub(super) fn normalize(input: Input<'_>) -> Result<Output, Rejection> {
    let root = Obj::root(input.body)?;
    let event = root
        .opt_obj("event")?
        .ok_or_else(|| root.err("event", "the journal entry is missing"))?;
    let event = event.obj();
    let form = root
        .opt_obj("checkoutForm")?
        .ok_or_else(|| root.err("checkoutForm", "the checkout form is missing"))?;
    let form = form.obj();
    let order_id = form.str("id")?.to_string();
    let subject = format!("order/{order_id}");
    let at = event.time("occurredAt")?;
    let mut events = vec![order_created(&form, &order_id, at)?];
    let fulfillment_status = match form.opt_obj("fulfillment")? {
        Some(f) => f.obj().opt_str("status")?.map(str::to_string),
        None => None,
    };
    let provider_status = json!({
        "status": form.opt_str("status")?,
        "fulfillment": fulfillment_status,
    });
    let payment = form.opt_obj("payment")?;
    let paid_at = match &payment {
        Some(p) => p.obj().opt_time("finishedAt")?,
        None => None,
    };
    match input.topic {
        "BOUGHT" => {}
        "FILLED_IN" | "BUYER_MODIFIED" => {
            events.push(updated(&order_id, &form, at, provider_status)?);
        }
        "READY_FOR_PROCESSING" => match paid_at {
            Some(paid_at) => {
                let p = payment.as_ref().expect("paid_at came from it");
                let p = p.obj();
                let amount = match p.opt_obj("paidAmount")? {
                    Some(m) => amount(&m.obj())?,
                    None => total(&form)?,
                };
                let data = OrderPaid {
                    order_id: order_id.clone(),
                    amount,
                    paid_at: time::format(paid_at),
                    method: p
                        .opt_str("provider")?
                        .or(p.opt_str("type")?)
                        .map(str::to_string),
                    reference: p.opt_str("id")?.map(str::to_string),
                };
                events.push(Normalized::new(
                    types::ORDER_PAID,
                    paid_at,
                    subject.clone(),
                    &data,
                )?);
            }
            // Cash on delivery: ready without a payment.
            None => events.push(updated(&order_id, &form, at, provider_status)?),
        },
        "BUYER_CANCELLED" | "AUTO_CANCELLED" => {
            let data = OrderCancelled {
                order_id: order_id.clone(),
                cancelled_at: time::format(at),
                reason: match input.topic {
                    "BUYER_CANCELLED" => CancelReason::Customer,
                    // Not paid in time.
                    _ => CancelReason::Payment,
                },
                refund_expected: paid_at.is_some(),
                provider_reason: Some(input.topic.to_string()),
            };
            events.push(Normalized::new(
                types::ORDER_CANCELLED,
                at,
                subject.clone(),
                &data,
            )?);
        }
        "FULFILLMENT_STATUS_CHANGED" => {
            events.extend(fulfillment(&form, &order_id, at, provider_status)?);
        }
        other => return Err(unknown_topic(Provider::Allegro, other)),
    }
    Ok(Output::events(events))
}

fn amount(m: &Obj<'_>) -> Result<Money, Rejection> {
    let currency = m.currency("currency")?;
    m.money("amount", &currency)
}

fn total(form: &Obj<'_>) -> Result<Money, Rejection> {
    let summary = form
        .opt_obj("summary")?
        .ok_or_else(|| form.err("summary", "the order total is missing"))?;
    let summary = summary.obj();
    let to_pay = summary
        .opt_obj("totalToPay")?
        .ok_or_else(|| summary.err("totalToPay", "the order total is missing"))?;
    amount(&to_pay.obj())
}

fn lines(form: &Obj<'_>) -> Result<Vec<LineRef>, Rejection> {
    form.objects("lineItems")?
        .iter()
        .map(|l| {
            let l = l.obj();
            let offer = l.opt_obj("offer")?;
            let offer = offer.as_ref().map(|o| o.obj());
            let external = match &offer {
                Some(o) => o.opt_obj("external")?,
                None => None,
            };
            Ok(LineRef {
                line_id: l.id("id")?,
                sku: match &external {
                    Some(e) => e.obj().opt_id("id")?,
                    None => None,
                },
                product_id: match &offer {
                    Some(o) => o.opt_id("id")?,
                    None => None,
                },
                variant_id: None,
                title: match &offer {
                    Some(o) => o.opt_str("name")?.map(str::to_string),
                    None => None,
                },
                variant_title: None,
                quantity: l.u64("quantity")?,
                unit_price: match l.opt_obj("price")? {
                    Some(p) => Some(amount(&p.obj())?),
                    None => None,
                },
            })
        })
        .collect()
}

fn address(a: &Obj<'_>) -> Result<Address, Rejection> {
    Ok(Address {
        name: full_name(a.opt_str("firstName")?, a.opt_str("lastName")?),
        company: a.opt_str("companyName")?.map(str::to_string),
        line1: a.opt_str("street")?.map(str::to_string),
        line2: None,
        city: a.opt_str("city")?.map(str::to_string),
        postal_code: a
            .opt_str("zipCode")?
            .or(a.opt_str("postCode")?)
            .map(str::to_string),
        region: None,
        country: a.opt_str("countryCode")?.map(str::to_string),
        phone: a.opt_str("phoneNumber")?.map(str::to_string),
    })
}

fn order_created(
    form: &Obj<'_>,
    order_id: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Normalized, Rejection> {
    let total = total(form)?;
    let lines = lines(form)?;
    let buyer = form.opt_obj("buyer")?;
    let buyer = buyer.as_ref().map(|b| b.obj());
    let customer = match &buyer {
        Some(b) => Party {
            customer_id: b.opt_id("id")?,
            email: b.opt_str("email")?.map(str::to_string),
            phone: b.opt_str("phoneNumber")?.map(str::to_string),
            name: full_name(b.opt_str("firstName")?, b.opt_str("lastName")?)
                .or(b.opt_str("login")?.map(str::to_string)),
            locale: match b.opt_obj("preferences")? {
                Some(p) => p.obj().opt_str("language")?.map(str::to_string),
                None => None,
            },
        },
        None => Party::default(),
    };
    let delivery = form.opt_obj("delivery")?;
    let shipping_address = match &delivery {
        Some(d) => match d.obj().opt_obj("address")? {
            Some(a) => Some(address(&a.obj())?),
            None => None,
        },
        None => None,
    };
    let shipping = match &delivery {
        Some(d) => match d.obj().opt_obj("cost")? {
            Some(c) => Some(amount(&c.obj())?),
            None => None,
        },
        None => None,
    };
    let payment = form.opt_obj("payment")?;
    let payment_state = match &payment {
        Some(p) if p.obj().opt_time("finishedAt")?.is_some() => PaymentState::Paid,
        Some(p) if p.obj().opt_str("type")? == Some("CASH_ON_DELIVERY") => PaymentState::Cod,
        _ => PaymentState::Pending,
    };
    // When the buyer bought: the earliest line's purchase, else the journal entry's time.
    let mut placed_at = at;
    for l in form.objects("lineItems")? {
        if let Some(t) = l.obj().opt_time("boughtAt")? {
            placed_at = placed_at.min(t);
        }
    }
    let data = OrderCreated {
        order_id: order_id.to_string(),
        // Allegro shows buyers and sellers the checkout form's id.
        order_number: order_id.to_string(),
        status: status(form)?,
        placed_at: time::format(placed_at),
        currency: total.currency.clone(),
        total,
        subtotal: None,
        tax: None,
        shipping,
        discount: None,
        lines,
        customer,
        shipping_address,
        billing_address: None,
        payment_state,
        provider_status: json!({"status": form.opt_str("status")?}),
    };
    Normalized::new(
        types::ORDER_CREATED,
        placed_at,
        format!("order/{order_id}"),
        &data,
    )
}

fn status(form: &Obj<'_>) -> Result<OrderStatus, Rejection> {
    let fulfillment = match form.opt_obj("fulfillment")? {
        Some(f) => f.obj().opt_str("status")?.map(str::to_string),
        None => None,
    };
    Ok(match (form.opt_str("status")?, fulfillment.as_deref()) {
        (Some("CANCELLED"), _) | (_, Some("CANCELLED")) => OrderStatus::Cancelled,
        (_, Some("SENT" | "PICKED_UP")) => OrderStatus::Completed,
        (Some("READY_FOR_PROCESSING"), _) => OrderStatus::Processing,
        _ => OrderStatus::Pending,
    })
}

fn updated(
    order_id: &str,
    form: &Obj<'_>,
    at: chrono::DateTime<chrono::Utc>,
    provider_status: serde_json::Value,
) -> Result<Normalized, Rejection> {
    let data = OrderUpdated {
        order_id: order_id.to_string(),
        status: status(form)?,
        changed: Vec::new(),
        changed_known: Some(false),
        updated_at: time::format(at),
        provider_status,
    };
    Normalized::new(types::ORDER_UPDATED, at, format!("order/{order_id}"), &data)
}

/// The fulfilment's new status: sent is the shipment, picked up its delivery, returned
/// its return; the rest is an update of the order.
fn fulfillment(
    form: &Obj<'_>,
    order_id: &str,
    at: chrono::DateTime<chrono::Utc>,
    provider_status: serde_json::Value,
) -> Result<Vec<Normalized>, Rejection> {
    let subject = format!("order/{order_id}");
    let state = match form.opt_obj("fulfillment")? {
        Some(f) => f.obj().opt_str("status")?.map(str::to_string),
        None => None,
    };
    let destination = match form.opt_obj("delivery")? {
        Some(d) => match d.obj().opt_obj("address")? {
            Some(a) => Some(address(&a.obj())?),
            None => None,
        },
        None => None,
    };
    // The form is read as it is now: entries read late (a catch-up) all see the latest
    // status, so each fulfilment status is a fact of its own, told once.
    let fact = |status: &str| format!("allegro:{order_id}:fulfillment:{status}");
    let moved = |status: ShipmentStatus| -> Result<Normalized, Rejection> {
        let data = ShipmentUpdated {
            shipment_id: order_id.to_string(),
            order_id: order_id.to_string(),
            order_number: Some(order_id.to_string()),
            locale: None,
            status,
            eta: None,
            status_at: time::format(at),
            carrier: None,
            tracking_number: None,
            tracking_url: None,
            provider_status: Some(provider_status.clone()),
        };
        Ok(
            Normalized::new(types::SHIPMENT_UPDATED, at, subject.clone(), &data)?
                .with_fact(fact(&status.to_string())),
        )
    };
    // A parcel past SENT was sent, also when the entry saying so was read too late to see
    // it (shipment.created is once per shipment).
    let sent = || -> Result<Normalized, Rejection> {
        let data = ShipmentCreated {
            // One parcel per checkout form as far as the form tells.
            shipment_id: order_id.to_string(),
            order_id: order_id.to_string(),
            order_number: Some(order_id.to_string()),
            locale: None,
            carrier: None,
            tracking_number: None,
            tracking_url: None,
            lines: lines(form)?,
            shipped_at: time::format(at),
            destination: destination.clone(),
        };
        Normalized::new(types::SHIPMENT_CREATED, at, subject.clone(), &data)
    };
    Ok(match state.as_deref() {
        Some("SENT") => vec![sent()?],
        Some("READY_FOR_PICKUP") => vec![sent()?, moved(ShipmentStatus::ReadyForPickup)?],
        Some("PICKED_UP") => {
            let fulfilled = OrderFulfilled {
                order_id: order_id.to_string(),
                fulfilled_at: time::format(at),
                fully: true,
            };
            vec![
                sent()?,
                moved(ShipmentStatus::Delivered)?,
                Normalized::new(types::ORDER_FULFILLED, at, subject.clone(), &fulfilled)?,
            ]
        }
        Some("RETURNED") => vec![sent()?, moved(ShipmentStatus::Returned)?],
        Some("CANCELLED") => {
            let data = OrderCancelled {
                order_id: order_id.to_string(),
                cancelled_at: time::format(at),
                reason: CancelReason::Merchant,
                refund_expected: form
                    .opt_obj("payment")?
                    .map(|p| p.obj().opt_time("finishedAt"))
                    .transpose()?
                    .flatten()
                    .is_some(),
                provider_reason: Some("FULFILLMENT_CANCELLED".into()),
            };
            vec![Normalized::new(types::ORDER_CANCELLED, at, subject, &data)?]
        }
        _ => vec![updated(order_id, form, at, provider_status)?],
    })
}
