//! Shopify REST webhooks. Bodies follow the REST resource of `X-Shopify-API-Version`;
//! integer ids become strings and shop-offset times become UTC.

use omnigate_schemas::events::{OrderCreated, OrderStatus, PaymentState, types};
use omnigate_schemas::{Address, LineRef, Party};
use serde_json::{Value, json};

use super::fields::{Obj, full_name};
use super::{Input, Normalized, Rejection, money, unknown_topic};
use omnigate_schemas::api::Provider;

pub(super) fn resource(topic: &str) -> Option<&'static str> {
    match topic {
        "orders/create" => Some("order"),
        _ => None,
    }
}

pub(super) fn normalize(input: Input<'_>) -> Result<Vec<Normalized>, Rejection> {
    let body = Obj::root(input.body)?;
    match input.topic {
        "orders/create" => Ok(vec![order_created(body)?]),
        other => Err(unknown_topic(Provider::Shopify, other)),
    }
}

fn order_created(o: Obj<'_>) -> Result<Normalized, Rejection> {
    let order_id = o.id("id")?;
    let currency = o.currency("currency")?;
    let placed_at = o.time("created_at")?;
    let financial = o.opt_str("financial_status")?;
    let fulfillment = o.opt_str("fulfillment_status")?;
    let gateways: Vec<&str> = o
        .get("payment_gateway_names")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();

    let shipping = match o.opt_obj("total_shipping_price_set")? {
        Some(set) => match set.obj().opt_obj("shop_money")? {
            Some(shop) => shop.obj().opt_money("amount", &currency)?,
            None => None,
        },
        None => None,
    };
    let shipping = match shipping {
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
        .map(|l| line(l.obj(), &currency))
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
        placed_at: super::time::format(placed_at),
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
        payment_state: payment_state(financial, &gateways),
        provider_status: json!({
            "financial_status": financial,
            "fulfillment_status": fulfillment,
        }),
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

fn first_some<const N: usize>(values: [Option<&str>; N]) -> Option<String> {
    values.into_iter().flatten().next().map(str::to_string)
}

fn sum_shipping_lines(
    o: Obj<'_>,
    currency: &str,
) -> Result<Option<omnigate_schemas::Money>, Rejection> {
    let lines = o.objects("shipping_lines")?;
    if lines.is_empty() {
        return Ok(None);
    }
    let mut total = rust_decimal::Decimal::ZERO;
    for l in &lines {
        let price = l.obj().money("price", currency)?;
        total += money::parse_decimal(&price.amount).unwrap_or_default();
    }
    Ok(money::money(total, currency))
}

fn line(l: Obj<'_>, currency: &str) -> Result<LineRef, Rejection> {
    Ok(LineRef {
        line_id: l.id("id")?,
        sku: l.opt_str("sku")?.map(str::to_string),
        product_id: l.opt_id("product_id")?,
        variant_id: l.opt_id("variant_id")?,
        title: l.opt_str("title")?.map(str::to_string),
        variant_title: l.opt_str("variant_title")?.map(str::to_string),
        quantity: l.u64("quantity")?,
        unit_price: l.opt_money("price", currency)?,
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
