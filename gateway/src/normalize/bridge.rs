//! Generic Standard Webhooks senders: shop-side bridges for engines without webhooks of
//! their own (Medusa, PrestaShop modules) post `{type, timestamp, data: {id, …}}`. The
//! Medusa event names are mapped; the events are thin.

use omnigate_schemas::api::Provider;
use omnigate_schemas::events::{PendingData, types};
use serde_json::json;

use super::fields::Obj;
use super::pending::{order, pending};
use super::{Input, Output, Rejection, unknown_topic};

pub(super) fn normalize(input: Input<'_>) -> Result<Output, Rejection> {
    let body = Obj::root(input.body)?;
    let at = body.opt_time("timestamp")?.unwrap_or(input.received_at);
    let d = body
        .opt_obj("data")?
        .ok_or_else(|| body.err("data", "required object is missing"))?;
    let d = d.obj();
    let id = d.id("id")?;
    let order_of = |key: &str| -> Result<String, Rejection> {
        Ok(d.opt_id(key)?.unwrap_or_else(|| id.clone()))
    };
    let (event_type, subject, data) = match input.topic {
        "order.placed" => {
            let (s, p) = order(&id);
            (types::ORDER_CREATED, s, p)
        }
        "order.updated" => {
            let (s, p) = order(&id);
            (types::ORDER_UPDATED, s, p)
        }
        "order.canceled" => {
            let (s, p) = order(&id);
            (types::ORDER_CANCELLED, s, p)
        }
        "order.completed" => {
            let (s, p) = order(&id);
            (types::ORDER_FULFILLED, s, p)
        }
        "order.fulfillment_created" | "shipment.created" => {
            let (s, mut p) = order(&order_of("order_id")?);
            p.shipment_id = d.opt_id("fulfillment_id")?.or(Some(id.clone()));
            (types::SHIPMENT_CREATED, s, p)
        }
        "delivery.created" => {
            let (s, mut p) = order(&order_of("order_id")?);
            p.shipment_id = d.opt_id("fulfillment_id")?.or(Some(id.clone()));
            p.provider_status = Some(json!("delivered"));
            (types::SHIPMENT_UPDATED, s, p)
        }
        "order.return_requested" => {
            let (s, mut p) = order(&order_of("order_id")?);
            p.return_id = d.opt_id("return_id")?;
            (types::RETURN_REQUESTED, s, p)
        }
        "payment.refunded" => {
            let (s, mut p) = order(&order_of("order_id")?);
            p.refund_id = d.opt_id("refund_id")?;
            (types::REFUND_CREATED, s, p)
        }
        "customer.created" | "customer.updated" => (
            if input.topic == "customer.created" {
                types::CUSTOMER_CREATED
            } else {
                types::CUSTOMER_UPDATED
            },
            format!("customer/{id}"),
            PendingData {
                customer_id: Some(id.clone()),
                ..PendingData::new()
            },
        ),
        other => return Err(unknown_topic(Provider::StandardWebhooks, other)),
    };
    Ok(Output::events(vec![pending(
        event_type, at, subject, data,
    )?]))
}
