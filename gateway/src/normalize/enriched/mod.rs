//! Full events from resources read back from a thin provider's API. A thin event names a
//! resource (`enrichment: "pending"`); the enricher reads it and hands it here with the
//! thin event, and each provider's mapping answers the events the resource shows:
//! always the full form of the thin event's own type (its fact `enriched:<thin id>`, so
//! the thin and the full event are two events, and reading again adds nothing), and for
//! providers whose notifications say only "changed", the facts the resource shows, each
//! once (`mercadolibre:<order>:paid`).

mod bigcommerce;
mod ecwid;
mod etsy;
mod medusa;
mod mercadolibre;

use chrono::{DateTime, Utc};
use omnigate_schemas::api::Provider;

use super::{Normalized, Rejection};
use crate::json::Json;

/// What the enricher knows of a thin event.
#[derive(Debug, Clone, Copy)]
pub struct Thin<'a> {
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub subject: &'a str,
    pub order_id: Option<&'a str>,
    pub shipment_id: Option<&'a str>,
    pub occurred_at: DateTime<Utc>,
    /// The source's `options.locale`.
    pub shop_locale: Option<&'a str>,
}

impl Thin<'_> {
    /// The fact the full form of this thin event reports.
    fn fact(&self) -> String {
        format!("enriched:{}", self.event_id)
    }
}

/// Whether the gateway reads this provider's resources for its thin events.
pub fn enrichable(provider: Provider) -> bool {
    matches!(
        provider,
        Provider::Bigcommerce
            | Provider::Ecwid
            | Provider::Etsy
            | Provider::MercadoLibre
            | Provider::StandardWebhooks
    )
}

/// The events a resource read for `thin` shows. `resource` is what the enricher read:
/// `{"order": …, "products": […]}`, `{"shipment": …}`, `{"receipt": …}`.
pub fn enriched(
    provider: Provider,
    thin: &Thin<'_>,
    resource: &Json<'_>,
) -> Result<Vec<Normalized>, Rejection> {
    match provider {
        Provider::Bigcommerce => bigcommerce::enriched(thin, resource),
        Provider::Ecwid => ecwid::enriched(thin, resource),
        Provider::Etsy => etsy::enriched(thin, resource),
        Provider::MercadoLibre => mercadolibre::enriched(thin, resource),
        // The bridges whose events are mapped are Medusa's.
        Provider::StandardWebhooks => medusa::enriched(thin, resource),
        other => Err(Rejection::new(format!(
            "{other} resources are not read back"
        ))),
    }
}
