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
/// was read); `done` says the end of the log was reached. A page shorter than `limit` is not
/// the end by itself: the read stops after skipping `MAX_SCAN` entries of other tenants.
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
    let mut done = false;
    'scan: loop {
        let entries = store.read_log(partition, cursor, batch).await?;
        let exhausted = entries.len() < batch;
        let count = entries.len();
        for (i, entry) in entries.into_iter().enumerate() {
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
                // The end only if the read came back short and this was its last entry.
                done = exhausted && i + 1 == count;
                break 'scan;
            }
        }
        if exhausted {
            done = true;
            break;
        }
        if scanned >= MAX_SCAN {
            break;
        }
    }
    Ok(EventsPage {
        events,
        next: cursor.map(|c| c.to_string()),
        done,
    })
}
