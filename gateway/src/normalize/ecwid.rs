//! Ecwid: `{eventId, eventCreated, storeId, entityId, eventType, data}`. The signature covers
//! only `eventCreated.eventId`: everything else in the body is unsigned, so nothing in it
//! may decide which facts are told. Every delivery is one pending update of the entity it
//! names (`enrichment: "pending"`): enrichment reads the entity's state from Ecwid's API and
//! tells what changed. The unsigned statuses in `data` are kept as `provider_status`, for
//! information only.

use crate::json::Json;
use omnigate_schemas::api::Provider;
use omnigate_schemas::events::{PendingData, types};
use serde_json::json;

use super::fields::Obj;
use super::pending::{order, pending};
use super::{Input, Output, Rejection, time, unknown_topic};

pub(super) fn normalize(input: Input<'_>) -> Result<Output, Rejection> {
    let body = Obj::root(input.body)?;
    let at = body
        .get("eventCreated")
        .and_then(Json::as_i64)
        .and_then(time::unix_seconds)
        .ok_or_else(|| body.err("eventCreated", "expected Unix seconds"))?;
    let entity = body.id("entityId")?;
    // The family only says which entity to re-read; a forged one reads another entity's
    // real state, which tells nothing false.
    let event = match input.topic {
        "order.created" | "order.updated" => {
            let (subject, mut data) = order(&entity);
            // Unsigned, so kept only as short status names, for information.
            let status = |d: &Obj<'_>, k: &str| {
                d.get(k)
                    .and_then(Json::as_str)
                    .filter(|s| s.len() <= 64)
                    .map(str::to_string)
            };
            data.provider_status = body.opt_obj("data")?.map(|d| {
                let d = d.obj();
                json!({
                    "paymentStatus": status(&d, "newPaymentStatus"),
                    "fulfillmentStatus": status(&d, "newFulfillmentStatus"),
                })
            });
            pending(types::ORDER_UPDATED, at, subject, data)?
        }
        "customer.created" | "customer.updated" => {
            let data = PendingData {
                customer_id: Some(entity.clone()),
                ..PendingData::new()
            };
            pending(
                types::CUSTOMER_UPDATED,
                at,
                format!("customer/{entity}"),
                data,
            )?
        }
        "product.updated" => {
            let data = PendingData {
                product_id: Some(entity.clone()),
                ..PendingData::new()
            };
            pending(types::STOCK_CHANGED, at, format!("product/{entity}"), data)?
        }
        other => return Err(unknown_topic(Provider::Ecwid, other)),
    };
    Ok(Output::events(vec![event]))
}
