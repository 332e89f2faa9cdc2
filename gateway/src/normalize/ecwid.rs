//! Ecwid: `{eventId, eventCreated, storeId, entityId, eventType, data}`. The signature covers
//! only `eventCreated.eventId`, so events carry ids to fetch (`enrichment: "pending"`),
//! never body data to trust, except the status names used to pick the event type.

use omnigate_schemas::api::Provider;
use omnigate_schemas::events::{PendingData, types};
use serde_json::{Value, json};

use super::fields::Obj;
use super::pending::{order, pending};
use super::{Input, Normalized, Output, Rejection, time, unknown_topic};

pub(super) fn normalize(input: Input<'_>) -> Result<Output, Rejection> {
    let body = Obj::root(input.body)?;
    let at = body
        .get("eventCreated")
        .and_then(Value::as_i64)
        .and_then(time::unix_seconds)
        .ok_or_else(|| body.err("eventCreated", "expected Unix seconds"))?;
    let entity = body.id("entityId")?;
    let events: Vec<Normalized> = match input.topic {
        "order.created" => {
            let (subject, data) = order(&entity);
            vec![pending(types::ORDER_CREATED, at, subject, data)?]
        }
        "order.updated" => order_updated(body, &entity, at)?,
        "customer.created" | "customer.updated" => {
            let data = PendingData {
                customer_id: Some(entity.clone()),
                ..PendingData::new()
            };
            let t = if input.topic == "customer.created" {
                types::CUSTOMER_CREATED
            } else {
                types::CUSTOMER_UPDATED
            };
            vec![pending(t, at, format!("customer/{entity}"), data)?]
        }
        "product.updated" => {
            let data = PendingData {
                product_id: Some(entity.clone()),
                ..PendingData::new()
            };
            vec![pending(
                types::STOCK_CHANGED,
                at,
                format!("product/{entity}"),
                data,
            )?]
        }
        other => return Err(unknown_topic(Provider::Ecwid, other)),
    };
    Ok(Output::events(events))
}

/// `order.updated` names old and new payment and fulfilment statuses.
fn order_updated(
    body: Obj<'_>,
    entity: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<Normalized>, Rejection> {
    let d = body.opt_obj("data")?;
    let field = |k: &str| -> Result<Option<String>, Rejection> {
        Ok(match &d {
            Some(d) => d.obj().opt_str(k)?.map(str::to_string),
            None => None,
        })
    };
    let (old_pay, new_pay) = (field("oldPaymentStatus")?, field("newPaymentStatus")?);
    let (old_ful, new_ful) = (
        field("oldFulfillmentStatus")?,
        field("newFulfillmentStatus")?,
    );
    let (subject, mut data) = order(entity);
    data.provider_status = Some(json!({
        "paymentStatus": new_pay, "fulfillmentStatus": new_ful,
    }));
    let changed = |old: &Option<String>, new: &Option<String>, to: &str| {
        new.as_deref() == Some(to) && old.as_deref() != Some(to)
    };
    let mut events = Vec::new();
    let mut tell = |t| -> Result<(), Rejection> {
        events.push(pending(t, at, subject.clone(), data.clone())?);
        Ok(())
    };
    if changed(&old_pay, &new_pay, "PAID") {
        tell(types::ORDER_PAID)?;
    }
    if changed(&old_pay, &new_pay, "REFUNDED") || changed(&old_pay, &new_pay, "PARTIALLY_REFUNDED")
    {
        tell(types::REFUND_CREATED)?;
    }
    if changed(&old_pay, &new_pay, "CANCELLED") || changed(&old_ful, &new_ful, "WILL_NOT_DELIVER") {
        tell(types::ORDER_CANCELLED)?;
    }
    if changed(&old_ful, &new_ful, "SHIPPED") {
        tell(types::SHIPMENT_CREATED)?;
    }
    if changed(&old_ful, &new_ful, "DELIVERED") {
        data.provider_status = Some(json!("DELIVERED"));
        events.push(pending(
            types::SHIPMENT_UPDATED,
            at,
            subject.clone(),
            data.clone(),
        )?);
    }
    if events.is_empty() {
        events.push(pending(types::ORDER_UPDATED, at, subject, data)?);
    }
    Ok(events)
}
