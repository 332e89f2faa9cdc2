//! Mercado Libre notifications: `{_id, topic, resource, user_id, application_id, attempts,
//! sent, received}`. Nothing is signed (the source's URL carries a secret) and nothing but
//! the resource's path is said, so each becomes a thin event naming it (`enrichment:
//! "pending"`), under the subject of what the path names; with the seller's API token the
//! enricher would read the resource and tell the rest (not built yet). Payments and claims
//! name no order until they are read, so they stay in quarantine with that reason.

use omnigate_schemas::api::Provider;
use omnigate_schemas::events::{PendingData, types};

use super::fields::Obj;
use super::pending::{order, pending};
use super::{Input, Output, Rejection, unknown_topic};

pub(super) fn normalize(input: Input<'_>) -> Result<Output, Rejection> {
    let body = Obj::root(input.body)?;
    let resource = body.str("resource")?;
    // `/orders/2195160686`, `/shipments/4123`, `/items/MLA123`, `/questions/5036111111`.
    let id = resource
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|id| {
            !id.is_empty()
                && id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .ok_or_else(|| body.err("resource", "does not end in a resource id"))?;
    let at = body
        .opt_time("sent")?
        .or(body.opt_time("received")?)
        .unwrap_or(input.received_at);
    let mut event = match input.topic {
        "orders_v2" | "orders" => {
            let (subject, data) = order(id);
            (types::ORDER_UPDATED, subject, data)
        }
        "shipments" => {
            let data = PendingData {
                shipment_id: Some(id.to_string()),
                ..PendingData::new()
            };
            (types::SHIPMENT_UPDATED, format!("shipment/{id}"), data)
        }
        "items" => {
            let data = PendingData {
                product_id: Some(id.to_string()),
                ..PendingData::new()
            };
            (types::STOCK_CHANGED, format!("product/{id}"), data)
        }
        "questions" | "messages" => (
            types::MESSAGE_RECEIVED,
            format!("thread/{id}"),
            PendingData::new(),
        ),
        "payments" | "claims" => {
            return Err(Rejection::new(format!(
                "mercadolibre topic {:?} names no order until {resource} is read from \
                 Mercado Libre's API, which this gateway does not do yet",
                input.topic
            )));
        }
        other => return Err(unknown_topic(Provider::MercadoLibre, other)),
    };
    event.2.resource_url = Some(format!("https://api.mercadolibre.com{resource}"));
    Ok(Output::events(vec![pending(
        event.0, at, event.1, event.2,
    )?]))
}
