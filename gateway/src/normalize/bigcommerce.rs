//! BigCommerce: thin `{scope, store_id, data: {type, id, …}, created_at (Unix s)}`
//! payloads. Events carry the ids and say `enrichment: "pending"`; stock updates carry the
//! level itself. A refund fires both `store/order/refund/created` and `statusUpdated` to
//! 4/14: only the first becomes `refund.created`.

use crate::json::Json;
use omnigate_schemas::api::Provider;
use omnigate_schemas::events::{PendingData, StockChanged, StockMethod, types};
use serde_json::json;

use super::fields::Obj;
use super::pending::{order, pending};
use super::{Input, Normalized, Output, Rejection, time, unknown_topic};

// Order status ids (BigCommerce v2).
const CANCELLED: i64 = 5;
const SHIPPED: i64 = 2;
const COMPLETED: i64 = 10;
const REFUNDED: i64 = 4;
const PARTIALLY_REFUNDED: i64 = 14;
/// Statuses before payment: Incomplete, Pending, Awaiting Payment.
const UNPAID: &[i64] = &[0, 1, 7];
/// Statuses that follow a captured payment.
const PAID: &[i64] = &[8, 9, 10, 11, 2, 3];

pub(super) fn normalize(input: Input<'_>) -> Result<Output, Rejection> {
    let body = Obj::root(input.body)?;
    let at = match body.get("created_at").and_then(Json::as_i64) {
        Some(secs) => {
            time::unix_seconds(secs).ok_or_else(|| body.err("created_at", "out of range"))?
        }
        None => input.received_at,
    };
    let data = body
        .opt_obj("data")?
        .ok_or_else(|| body.err("data", "required object is missing"))?;
    let d = data.obj();
    let event = |event_type, subject, data| pending(event_type, at, subject, data);
    let events: Vec<Normalized> = match input.topic {
        "store/order/created" => {
            let (subject, data) = order(&d.id("id")?);
            vec![event(types::ORDER_CREATED, subject, data)?]
        }
        "store/order/updated" | "store/order/archived" => {
            let (subject, data) = order(&d.id("id")?);
            vec![event(types::ORDER_UPDATED, subject, data)?]
        }
        "store/order/statusUpdated" => status_updated(d, at)?,
        "store/order/refund/created" => {
            let (subject, mut data) = order(&d.id("id")?);
            if let Some(refund) = d.opt_obj("refund")? {
                data.refund_id = refund.obj().opt_id("refund_id")?;
            }
            vec![event(types::REFUND_CREATED, subject, data)?]
        }
        "store/shipment/created" | "store/shipment/updated" => {
            let order_id = d.opt_id("orderId")?.or(d.opt_id("order_id")?);
            let shipment_id = d.id("id")?;
            let data = PendingData {
                shipment_id: Some(shipment_id.clone()),
                order_id: order_id.clone(),
                ..PendingData::new()
            };
            let subject =
                order_id.map_or(format!("shipment/{shipment_id}"), |o| format!("order/{o}"));
            let t = if input.topic.ends_with("created") {
                types::SHIPMENT_CREATED
            } else {
                types::SHIPMENT_UPDATED
            };
            vec![event(t, subject, data)?]
        }
        "store/customer/created" | "store/customer/updated" => {
            let id = d.id("id")?;
            let data = PendingData {
                customer_id: Some(id.clone()),
                ..PendingData::new()
            };
            let t = if input.topic.ends_with("created") {
                types::CUSTOMER_CREATED
            } else {
                types::CUSTOMER_UPDATED
            };
            vec![event(t, format!("customer/{id}"), data)?]
        }
        "store/sku/inventory/updated" | "store/product/inventory/updated" => {
            vec![inventory(d, input.topic, at)?]
        }
        other => return Err(unknown_topic(Provider::Bigcommerce, other)),
    };
    Ok(Output::events(events))
}

fn status_updated(
    d: Obj<'_>,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<Normalized>, Rejection> {
    let (subject, mut data) = order(&d.id("id")?);
    let status = d
        .opt_obj("status")?
        .ok_or_else(|| d.err("status", "required object is missing"))?;
    let s = status.obj();
    let new = s
        .get("new_status_id")
        .and_then(Json::as_i64)
        .ok_or_else(|| s.err("new_status_id", "expected an integer"))?;
    let previous = s.get("previous_status_id").and_then(Json::as_i64);
    data.provider_status = Some(json!({"previous_status_id": previous, "new_status_id": new}));
    let event_type = match new {
        CANCELLED => types::ORDER_CANCELLED,
        SHIPPED | COMPLETED => types::ORDER_FULFILLED,
        // Told by store/order/refund/created.
        REFUNDED | PARTIALLY_REFUNDED => return Ok(Vec::new()),
        n if PAID.contains(&n) && previous.is_some_and(|p| UNPAID.contains(&p)) => {
            types::ORDER_PAID
        }
        _ => types::ORDER_UPDATED,
    };
    Ok(vec![pending(event_type, at, subject, data)?])
}

/// Inventory webhooks carry the change itself: `inventory.method` (`absolute` or
/// `relative`) and `inventory.value`.
fn inventory(
    d: Obj<'_>,
    topic: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Normalized, Rejection> {
    let inv = d
        .opt_obj("inventory")?
        .ok_or_else(|| d.err("inventory", "required object is missing"))?;
    let i = inv.obj();
    let value = i
        .get("value")
        .and_then(Json::as_i64)
        .ok_or_else(|| i.err("value", "expected an integer"))?;
    let (method, available, delta) = match i.opt_str("method")? {
        Some("relative") => (StockMethod::Relative, None, Some(value)),
        _ => (StockMethod::Absolute, Some(value), None),
    };
    let product_id = i.opt_id("product_id")?.or(if topic.contains("/product/") {
        d.opt_id("id")?
    } else {
        None
    });
    let variant_id = if topic.contains("/sku/") {
        i.opt_id("variant_id")?.or(d.opt_id("id")?)
    } else {
        None
    };
    let data = StockChanged {
        product_id: product_id.clone(),
        inventory_item_id: None,
        sku: None,
        variant_id,
        location_id: i.opt_id("location_id")?,
        available,
        delta,
        method,
        updated_at: Some(time::format(at)),
    };
    let subject = format!("product/{}", product_id.unwrap_or_else(|| "unknown".into()));
    Normalized::new(types::STOCK_CHANGED, at, subject, &data)
}
