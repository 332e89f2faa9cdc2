//! Reading one tenant's events from its partition of the log, in log order, skipping the
//! other tenants that share the partition: what the admin API and a plugin's log replay
//! both read.

use omnigate_schemas::Event;
use omnigate_schemas::api::EventsPage;

use super::{Store, StreamId, partition_of};
use super::{StoreError, StoreResult};

/// Most events one page holds.
pub const MAX_LIMIT: usize = 1000;
/// Entries of other tenants one request may skip before it returns a partial page.
const MAX_SCAN: usize = 20_000;

/// Reads a page of `tenant`'s log. `next` is where to continue (present whenever anything
/// was read); a page shorter than `limit` means the end of the log was reached.
pub async fn page(
    store: &dyn Store,
    partitions: u32,
    tenant: &str,
    event_type: Option<&str>,
    after: Option<StreamId>,
    limit: usize,
) -> StoreResult<EventsPage> {
    let partition = partition_of(tenant, partitions);
    let batch = limit.clamp(100, MAX_LIMIT);
    let mut cursor = after;
    let mut events = Vec::new();
    let mut scanned = 0;
    'scan: loop {
        let entries = store.read_log(partition, cursor, batch).await?;
        let exhausted = entries.len() < batch;
        for entry in entries {
            scanned += 1;
            cursor = Some(entry.cursor);
            let r = entry.record;
            if r.tenant != tenant || event_type.is_some_and(|t| t != r.event_type) {
                continue;
            }
            let event: Event = serde_json::from_str(&r.json)
                .map_err(|e| StoreError::Corrupt(format!("event {}: {e}", r.event_id)))?;
            events.push(event);
            if events.len() == limit {
                break 'scan;
            }
        }
        if exhausted || scanned >= MAX_SCAN {
            break;
        }
    }
    Ok(EventsPage {
        events,
        next: cursor.map(|c| c.to_string()),
    })
}
