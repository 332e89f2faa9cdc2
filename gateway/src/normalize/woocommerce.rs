//! WooCommerce REST v3 webhooks. Times come from the `*_gmt` fields (UTC without a zone);
//! the fields without `_gmt` are shop-local and ignored. Unused fields arrive as `""`.

use omnigate_schemas::events::{OrderCreated, OrderStatus, PaymentState, types};
use omnigate_schemas::{Address, LineRef, Money, Party};
use rust_decimal::Decimal;
use serde_json::Value;

use super::fields::{Obj, full_name};
use super::{Input, Normalized, Rejection, money, time, unknown_topic};
use omnigate_schemas::api::Provider;

pub(super) fn resource(topic: &str) -> Option<&'static str> {
    match topic {
        "order.created" => Some("order"),
        _ => None,
    }
}

pub(super) fn normalize(input: Input<'_>) -> Result<Vec<Normalized>, Rejection> {
    let body = Obj::root(input.body)?;
    match input.topic {
        "order.created" => Ok(vec![order_created(body)?]),
        other => Err(unknown_topic(Provider::Woocommerce, other)),
    }
}

fn order_created(o: Obj<'_>) -> Result<Normalized, Rejection> {
    let order_id = o.id("id")?;
    let currency = o.currency("currency")?;
    let placed_at = o
        .opt_str("date_created_gmt")?
        .map(|s| time::naive_utc(s).ok_or_else(|| o.err("date_created_gmt", "not a GMT time")))
        .transpose()?
        .ok_or_else(|| o.err("date_created_gmt", "required timestamp is missing"))?;
    let status_text = o.str("status")?;

    let lines_in = o.objects("line_items")?;
    let mut subtotal = Decimal::ZERO;
    let mut lines = Vec::with_capacity(lines_in.len());
    for l in &lines_in {
        let l = l.obj();
        if let Some(s) = l.opt_money("subtotal", &currency)? {
            subtotal += dec(&s);
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
        (Some(total), q) if q > 0 => {
            let gross = dec(&total) + tax.as_ref().map(dec).unwrap_or_default();
            money::money(gross / Decimal::from(q), currency)
        }
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
