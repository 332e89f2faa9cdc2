//! Ozon Seller API push notifications. Nothing is signed: the source's URL carries a
//! secret, and the body is what Ozon sent (`message_type`, `seller_id`, …). A posting
//! (`posting_number`, `24219509-0020-1`) is the unit the seller ships, so it is the order
//! here: `order/<posting_number>`. Posting notifications are thin (ids, states, dates):
//! enrichment reads the posting (`POST /v3/posting/fbs/get`) for the rest. Stock changes
//! and chat messages carry everything and become full events.

use crate::json::Json;
use omnigate_schemas::Party;
use omnigate_schemas::api::Provider;
use omnigate_schemas::events::{
    MessageChannel, MessageReceived, PendingData, StockChanged, StockMethod, types,
};
use serde_json::json;

use super::fields::Obj;
use super::pending::{order, pending};
use super::{Input, Normalized, Output, Rejection, time, unknown_topic};

pub(super) fn normalize(input: Input<'_>) -> Result<Output, Rejection> {
    let body = Obj::root(input.body)?;
    let events = match input.topic {
        "TYPE_NEW_POSTING" => {
            let (subject, data) = posting(&body)?;
            let at = body.opt_time("in_process_at")?.unwrap_or(input.received_at);
            vec![pending(types::ORDER_CREATED, at, subject, data)?]
        }
        "TYPE_POSTING_CANCELLED" => {
            let (subject, mut data) = posting(&body)?;
            let at = body.time("changed_state_date")?;
            let reason = body.opt_obj("reason")?.and_then(|r| {
                r.obj()
                    .opt_str("message")
                    .ok()
                    .flatten()
                    .map(str::to_string)
            });
            data.provider_status = Some(json!({
                "old_state": body.opt_str("old_state")?,
                "new_state": body.opt_str("new_state")?,
                "reason": reason,
            }));
            vec![pending(types::ORDER_CANCELLED, at, subject, data)?]
        }
        "TYPE_STATE_CHANGED" => {
            let (subject, mut data) = posting(&body)?;
            let at = body.time("changed_state_date")?;
            data.shipment_id = data.order_id.clone();
            data.provider_status = Some(json!(body.str("new_state")?));
            vec![pending(types::SHIPMENT_UPDATED, at, subject, data)?]
        }
        "TYPE_CUTOFF_DATE_CHANGED" | "TYPE_DELIVERY_DATE_CHANGED" => {
            let (subject, mut data) = posting(&body)?;
            // These say no time of their own.
            let at = input.received_at;
            let (old, new) = match input.topic {
                "TYPE_CUTOFF_DATE_CHANGED" => ("old_cutoff_date", "new_cutoff_date"),
                _ => ("old_delivery_date_end", "new_delivery_date_end"),
            };
            let mut change = serde_json::Map::new();
            change.insert("change".into(), json!(input.topic));
            change.insert(old.into(), json!(body.opt_str(old)?));
            change.insert(new.into(), json!(body.opt_str(new)?));
            data.provider_status = Some(change.into());
            vec![pending(types::ORDER_UPDATED, at, subject, data)?]
        }
        "TYPE_STOCKS_CHANGED" => stocks(&body, input.received_at)?,
        "TYPE_NEW_MESSAGE" => vec![message(&body)?],
        other => return Err(unknown_topic(Provider::Ozon, other)),
    };
    Ok(Output::events(events))
}

/// The posting as the order it stands for.
fn posting(body: &Obj<'_>) -> Result<(String, PendingData), Rejection> {
    let number = body.str("posting_number")?;
    if number.is_empty() || number.len() > 64 {
        return Err(body.err("posting_number", "expected a posting number"));
    }
    Ok(order(number))
}

/// One `stock.changed` per item and warehouse: `present - reserved` can be sold.
fn stocks(
    body: &Obj<'_>,
    received_at: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<Normalized>, Rejection> {
    let mut events = Vec::new();
    for item in body.objects("items")? {
        let item = item.obj();
        let product_id = item.id("product_id")?;
        let sku = item.opt_id("sku")?;
        let at = item.opt_time("updated_at")?.unwrap_or(received_at);
        for stock in item.objects("stocks")? {
            let stock = stock.obj();
            let present = number(&stock, "present")?;
            let reserved = stock.get("reserved").and_then(Json::as_i64).unwrap_or(0);
            let data = StockChanged {
                product_id: Some(product_id.clone()),
                inventory_item_id: None,
                sku: sku.clone(),
                variant_id: None,
                location_id: stock.opt_id("warehouse_id")?,
                available: Some(present - reserved),
                delta: None,
                method: StockMethod::Absolute,
                updated_at: Some(time::format(at)),
            };
            events.push(Normalized::new(
                types::STOCK_CHANGED,
                at,
                format!("product/{product_id}"),
                &data,
            )?);
        }
    }
    Ok(events)
}

fn number(o: &Obj<'_>, key: &str) -> Result<i64, Rejection> {
    o.get(key)
        .and_then(Json::as_i64)
        .ok_or_else(|| o.err(key, "expected an integer"))
}

/// A buyer's (or support's) chat message: `data` holds its text parts.
fn message(body: &Obj<'_>) -> Result<Normalized, Rejection> {
    let thread_id = body.str("chat_id")?;
    let sent_at = body.time("created_at")?;
    let text: Vec<&str> = body
        .get("data")
        .and_then(Json::as_array)
        .unwrap_or_default()
        .iter()
        .filter_map(Json::as_str)
        .collect();
    let from = body
        .opt_obj("user")?
        .map(|u| u.obj().opt_id("id"))
        .transpose()?;
    let data = MessageReceived {
        thread_id: thread_id.to_string(),
        message_id: body.id("message_id")?,
        order_id: None,
        channel: MessageChannel::MarketplaceChat,
        from: Party {
            customer_id: from.flatten(),
            ..Party::default()
        },
        text: text.join("\n"),
        attachments: Vec::new(),
        sent_at: time::format(sent_at),
    };
    Normalized::new(
        types::MESSAGE_RECEIVED,
        sent_at,
        format!("thread/{thread_id}"),
        &data,
    )
}
