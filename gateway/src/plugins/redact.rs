//! Personal data removed from what a plugin without the `customer_pii` scope receives, by
//! the schema of each event's type (see [`crate::validate::pii`] for how a schema becomes a
//! plan).

use omnigate_schemas::Event;
use std::collections::HashMap;

use crate::error::Result;
use crate::state::AppState;
use crate::store::PluginRecord;
use crate::validate::pii::{redact_by_key_names, redact_catalog};

/// Removes personal data from `event.data` for a plugin without `customer_pii`: by the
/// catalog schema of its type, else by the schema its publishing plugin registered, else
/// (no schema known) by key names. `publishers` caches plugin records for one batch.
pub async fn redact(
    state: &AppState,
    publishers: &mut HashMap<String, Option<PluginRecord>>,
    event: &mut Event,
) -> Result<()> {
    if redact_catalog(&event.event_type, &mut event.data) {
        return Ok(());
    }
    if event.source.provider == "plugin" {
        let publisher = match publishers.get(&event.source.id) {
            Some(p) => p,
            None => {
                let p = state.store.get_plugin(&event.source.id).await?;
                publishers.entry(event.source.id.clone()).or_insert(p)
            }
        };
        let declared = publisher.as_ref().and_then(|p| {
            p.publishes
                .iter()
                .find(|d| d.event_type == event.event_type)
                .map(|d| (p, d))
        });
        if let Some((plugin, declared)) = declared {
            state
                .plugin_schemas
                .redact(&plugin.id, declared, &mut event.data);
            return Ok(());
        }
    }
    redact_by_key_names(&mut event.data);
    Ok(())
}
