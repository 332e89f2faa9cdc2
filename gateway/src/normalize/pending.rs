//! Events from thin payloads: the ids the provider sent, marked `enrichment: "pending"`.

use chrono::{DateTime, Utc};
use omnigate_schemas::events::PendingData;

use super::{Normalized, Rejection};

pub(super) fn pending(
    event_type: &'static str,
    occurred_at: DateTime<Utc>,
    subject: String,
    data: PendingData,
) -> Result<Normalized, Rejection> {
    Normalized::new(event_type, occurred_at, subject, &data)
}

/// `order/<id>` and the pending data naming the order.
pub(super) fn order(order_id: &str) -> (String, PendingData) {
    (
        format!("order/{order_id}"),
        PendingData {
            order_id: Some(order_id.to_string()),
            ..PendingData::new()
        },
    )
}
