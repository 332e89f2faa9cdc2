//! Stripe events. Amounts are integer minor units with a lower-case currency; the shop's
//! order is linked only through `metadata.order_id` (or Checkout's `client_reference_id`).

use crate::json::Json;
use chrono::{DateTime, Utc};
use omnigate_schemas::Money;
use omnigate_schemas::api::Provider;
use omnigate_schemas::events::{DisputeOpened, OrderPaid, RefundCreated, RefundStatus, types};
use rust_decimal::Decimal;

use super::fields::Obj;
use super::snapshot::Snapshot;
use super::{Input, Normalized, Output, Rejection, id_text, money, time, unknown_topic};

/// Currencies Stripe counts in whole units, and those it counts in thousandths; the rest
/// are hundredths. (Stripe's list, not ISO 4217's: MGA, for one, differs.)
const ZERO_DECIMAL: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
];
const THREE_DECIMAL: &[&str] = &["BHD", "JOD", "KWD", "OMR", "TND"];

/// Stripe minor units → `Money` with the currency's ISO 4217 exponent.
pub fn stripe_money(units: i64, currency: &str) -> Option<Money> {
    let code = currency.to_ascii_uppercase();
    let scale = if ZERO_DECIMAL.contains(&code.as_str()) {
        0
    } else if THREE_DECIMAL.contains(&code.as_str()) {
        3
    } else {
        2
    };
    money::money(Decimal::new(units, scale), &code)
}

/// Refunds and disputes name their charge; its kept snapshot remembers the order and the
/// refunds already reported (`charge.refunded` and `refund.created` tell the same refund).
pub(super) fn snapshot_key(topic: &str, body: &Json<'_>) -> Option<String> {
    let object = body.get("data")?.get("object")?;
    let charge = match topic {
        "charge.refunded" => id_text(object.get("id")),
        "refund.created" | "refund.updated" | "charge.dispute.created" => {
            id_text(object.get("charge"))
        }
        _ => None,
    }?;
    Some(format!("charge:{charge}"))
}

pub(super) fn normalize(input: Input<'_>) -> Result<Output, Rejection> {
    let event = Obj::root(input.body)?;
    let data = event
        .opt_obj("data")?
        .ok_or_else(|| event.err("data", "required object is missing"))?;
    let object = data
        .obj()
        .opt_obj("object")?
        .ok_or_else(|| data.obj().err("object", "required object is missing"))?;
    let o = object.obj();
    let created = event_time(event)?;
    let prior = input.snapshot.cloned();
    match input.topic {
        "payment_intent.succeeded" => Ok(Output::events(vec![payment_intent_paid(o, created)?])),
        "checkout.session.completed" => Ok(Output::events(checkout_paid(o, created)?)),
        "charge.refunded" => charge_refunded(o, prior),
        "refund.created" => refund_event(o, prior),
        "charge.dispute.created" => Ok(Output::events(vec![dispute_opened(o, created, prior)?])),
        other => Err(unknown_topic(Provider::Stripe, other)),
    }
}

fn event_time(event: Obj<'_>) -> Result<DateTime<Utc>, Rejection> {
    unix(event, "created")
}

fn unix(o: Obj<'_>, key: &str) -> Result<DateTime<Utc>, Rejection> {
    o.get(key)
        .and_then(Json::as_i64)
        .and_then(time::unix_seconds)
        .ok_or_else(|| o.err(key, "expected Unix seconds"))
}

fn amount(o: Obj<'_>, key: &str) -> Result<Money, Rejection> {
    let currency = o.str("currency")?;
    let units = o
        .get(key)
        .and_then(Json::as_i64)
        .ok_or_else(|| o.err(key, "expected integer minor units"))?;
    stripe_money(units, currency).ok_or_else(|| {
        o.err(
            "currency",
            &format!("{currency:?} is not an ISO 4217 currency"),
        )
    })
}

fn metadata_order(o: Obj<'_>) -> Result<Option<String>, Rejection> {
    Ok(match o.opt_obj("metadata")? {
        Some(m) => m.obj().opt_id("order_id")?,
        None => None,
    })
}

fn order_id_required(o: Obj<'_>, found: Option<String>) -> Result<String, Rejection> {
    found.ok_or_else(|| {
        o.err(
            "metadata.order_id",
            "missing: Stripe links a payment to the shop's order only through metadata",
        )
    })
}

fn payment_intent_paid(pi: Obj<'_>, created: DateTime<Utc>) -> Result<Normalized, Rejection> {
    let order_id = order_id_required(pi, metadata_order(pi)?)?;
    let data = OrderPaid {
        amount: amount(pi, "amount_received")?,
        paid_at: time::format(created),
        method: pi
            .get("payment_method_types")
            .and_then(Json::as_array)
            .and_then(|a| a.first())
            .and_then(Json::as_str)
            .map(str::to_string),
        reference: pi.opt_str("id")?.map(str::to_string),
        order_id: order_id.clone(),
    };
    Normalized::new(
        types::ORDER_PAID,
        created,
        format!("order/{order_id}"),
        &data,
    )
}

/// A completed Checkout Session is a payment only when `payment_status` is `paid`
/// (delayed methods complete the session first and pay later).
fn checkout_paid(s: Obj<'_>, created: DateTime<Utc>) -> Result<Vec<Normalized>, Rejection> {
    if s.opt_str("payment_status")? != Some("paid") {
        return Ok(Vec::new());
    }
    let order_id = match metadata_order(s)? {
        Some(id) => Some(id),
        None => s.opt_id("client_reference_id")?,
    };
    let order_id = order_id_required(s, order_id)?;
    let data = OrderPaid {
        amount: amount(s, "amount_total")?,
        paid_at: time::format(created),
        method: s
            .get("payment_method_types")
            .and_then(Json::as_array)
            .and_then(|a| a.first())
            .and_then(Json::as_str)
            .map(str::to_string),
        reference: s
            .opt_id("payment_intent")?
            .or(s.opt_str("id")?.map(str::to_string)),
        order_id: order_id.clone(),
    };
    Ok(vec![Normalized::new(
        types::ORDER_PAID,
        created,
        format!("order/{order_id}"),
        &data,
    )?])
}

fn refund_status(r: Obj<'_>) -> Result<RefundStatus, Rejection> {
    Ok(match r.opt_str("status")? {
        Some("succeeded") => RefundStatus::Succeeded,
        Some("failed" | "canceled") => RefundStatus::Failed,
        _ => RefundStatus::Pending,
    })
}

fn refund(r: Obj<'_>, order_id: &str) -> Result<Normalized, Rejection> {
    let refund_id = r.id("id")?;
    let created = unix(r, "created")?;
    let data = RefundCreated {
        amount: amount(r, "amount")?,
        reason: r.opt_str("reason")?.map(str::to_string),
        lines: None,
        status: refund_status(r)?,
        created_at: time::format(created),
        return_id: None,
        order_id: order_id.to_string(),
        refund_id: refund_id.clone(),
    };
    Ok(Normalized::new(
        types::REFUND_CREATED,
        created,
        format!("order/{order_id}"),
        &data,
    )?
    .with_fact(format!("refund:{refund_id}")))
}

/// `charge.refunded` embeds the charge's refunds only on older API versions; each refund not
/// reported before becomes `refund.created`. Without the list, `refund.created` tells it.
fn charge_refunded(ch: Obj<'_>, prior: Option<Snapshot>) -> Result<Output, Rejection> {
    let mut snap = prior.unwrap_or_default();
    let order_id = match metadata_order(ch)? {
        Some(id) => id,
        None => order_id_required(ch, snap.customer_id.clone())?,
    };
    snap.customer_id = Some(order_id.clone());
    let mut events = Vec::new();
    if let Some(list) = ch.opt_obj("refunds")? {
        for r in list.obj().objects("data")? {
            let r = r.obj();
            let id = r.id("id")?;
            if snap.refunds.contains(&id) {
                continue;
            }
            events.push(refund(r, &order_id)?);
            snap.refunds.push(id);
        }
    }
    Ok(Output {
        events,
        snapshot: Some(snap),
    })
}

fn refund_event(r: Obj<'_>, prior: Option<Snapshot>) -> Result<Output, Rejection> {
    let mut snap = prior.unwrap_or_default();
    let id = r.id("id")?;
    if snap.refunds.contains(&id) {
        return Ok(Output::default());
    }
    let order_id = match metadata_order(r)? {
        Some(id) => id,
        None => order_id_required(r, snap.customer_id.clone())?,
    };
    let event = refund(r, &order_id)?;
    snap.refunds.push(id);
    Ok(Output {
        events: vec![event],
        snapshot: Some(snap),
    })
}

fn dispute_opened(
    d: Obj<'_>,
    created: DateTime<Utc>,
    prior: Option<Snapshot>,
) -> Result<Normalized, Rejection> {
    let dispute_id = d.id("id")?;
    let order_id = match metadata_order(d)? {
        Some(id) => Some(id),
        None => prior.and_then(|p| p.customer_id),
    };
    let due_by = match d.opt_obj("evidence_details")? {
        Some(e) => e
            .obj()
            .get("due_by")
            .and_then(Json::as_i64)
            .and_then(time::unix_seconds),
        None => None,
    };
    let opened_at = match d.get("created") {
        Some(_) => unix(d, "created")?,
        None => created,
    };
    let data = DisputeOpened {
        amount: amount(d, "amount")?,
        reason: d.opt_str("reason")?.unwrap_or("general").to_string(),
        due_by: due_by.map(time::format),
        opened_at: Some(time::format(opened_at)),
        order_id: order_id.clone(),
        dispute_id: dispute_id.clone(),
    };
    let subject = match &order_id {
        Some(id) => format!("order/{id}"),
        None => format!("dispute/{dispute_id}"),
    };
    Normalized::new(types::DISPUTE_OPENED, opened_at, subject, &data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripe_minor_units_follow_stripes_own_table() {
        let m = |u, c| stripe_money(u, c).unwrap().amount;
        assert_eq!(m(34750, "ron"), "347.50");
        assert_eq!(m(1200, "jpy"), "1200");
        assert_eq!(
            m(5000, "mga"),
            "5000.00",
            "zero-decimal at Stripe, two at ISO"
        );
        assert_eq!(m(1500, "kwd"), "1.500");
        assert_eq!(m(2648000, "huf"), "26480.00");
    }
}
