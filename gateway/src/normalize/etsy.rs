//! Etsy: Standard Webhooks with flat, thin bodies `{event_type, resource_url, shop_id}`.
//! The receipt (order) id is the last segment of `resource_url`; the signed
//! `webhook-timestamp` says when it happened.

use omnigate_schemas::api::Provider;
use omnigate_schemas::events::types;
use serde_json::json;

use super::fields::Obj;
use super::pending::{order, pending};
use super::{Input, Output, Rejection, time, unknown_topic};

pub(super) fn normalize(input: Input<'_>) -> Result<Output, Rejection> {
    let body = Obj::root(input.body)?;
    let url = body.str("resource_url")?;
    let receipt = url
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| body.err("resource_url", "does not end in a receipt id"))?;
    let at = input
        .headers
        .first(&["webhook-timestamp"])
        .and_then(|t| t.parse::<i64>().ok())
        .and_then(time::unix_seconds)
        .unwrap_or(input.received_at);
    let (subject, mut data) = order(receipt);
    data.resource_url = Some(url.to_string());
    let event_type = match input.topic {
        "order.paid" => types::ORDER_PAID,
        "order.canceled" => types::ORDER_CANCELLED,
        "order.shipped" => types::SHIPMENT_CREATED,
        "order.delivered" => {
            data.provider_status = Some(json!("delivered"));
            types::SHIPMENT_UPDATED
        }
        other => return Err(unknown_topic(Provider::Etsy, other)),
    };
    Ok(Output::events(vec![pending(
        event_type, at, subject, data,
    )?]))
}
