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

/// Which way a page reads the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    OldestFirst,
    NewestFirst,
}

/// What to read of one tenant's log.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogQuery<'a> {
    pub tenant: &'a str,
    pub event_type: Option<&'a str>,
    pub order: Order,
    /// Oldest first: entries after it; newest first: entries before it (exclusive).
    pub cursor: Option<StreamId>,
    /// Where the read ends (exclusive): oldest first, entries before it; newest first,
    /// entries after it.
    pub stop: Option<StreamId>,
    /// Entries written at or after this Unix millisecond.
    pub since_ms: Option<u64>,
    /// Entries written before this Unix millisecond.
    pub until_ms: Option<u64>,
    pub limit: usize,
}

impl LogQuery<'_> {
    /// Where the read starts: the cursor, narrowed by the time bounds (log ids begin with
    /// the millisecond they were written).
    fn start(&self) -> Option<StreamId> {
        match self.order {
            Order::OldestFirst => {
                let since = self.since_ms.filter(|ms| *ms > 0).map(|ms| StreamId {
                    ms: ms - 1,
                    seq: u64::MAX,
                });
                self.cursor.max(since)
            }
            Order::NewestFirst => {
                let until = self.until_ms.map(|ms| StreamId { ms, seq: 0 });
                match (self.cursor, until) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
        }
    }

    /// Whether `id` is past the far time bound, where the read ends.
    fn beyond(&self, id: StreamId) -> bool {
        match self.order {
            Order::OldestFirst => {
                self.until_ms.is_some_and(|until| id.ms >= until)
                    || self.stop.is_some_and(|stop| id >= stop)
            }
            Order::NewestFirst => {
                self.since_ms.is_some_and(|since| id.ms < since)
                    || self.stop.is_some_and(|stop| id <= stop)
            }
        }
    }
}

/// Reads a page of one tenant's log. `next` is where to continue (present whenever
/// anything was read); `done` says the end of the log (or of the time bounds) was reached.
/// A page shorter than `limit` is not the end by itself: the read stops after skipping
/// `MAX_SCAN` entries of other tenants.
pub async fn page(
    store: &dyn Store,
    partitions: u32,
    query: &LogQuery<'_>,
) -> StoreResult<EventsPage> {
    let partition = partition_of(query.tenant, partitions);
    let batch = query.limit.clamp(100, MAX_LIMIT);
    let mut cursor = query.start();
    let mut tail = None;
    let mut events = Vec::new();
    let mut scanned = 0;
    let mut done = false;
    'scan: loop {
        let entries = match query.order {
            Order::OldestFirst => store.read_log(partition, cursor, batch).await?,
            Order::NewestFirst => store.read_log_back(partition, cursor, batch).await?,
        };
        let exhausted = entries.len() < batch;
        let count = entries.len();
        for (i, entry) in entries.into_iter().enumerate() {
            // The newest position, even past `since`: following from it shows only what
            // is written later.
            if query.order == Order::NewestFirst && query.cursor.is_none() && tail.is_none() {
                tail = Some(entry.cursor.to_string());
            }
            if query.beyond(entry.cursor) {
                done = true;
                break 'scan;
            }
            scanned += 1;
            cursor = Some(entry.cursor);
            let r = entry.record;
            if r.tenant != query.tenant || query.event_type.is_some_and(|t| t != r.event_type) {
                continue;
            }
            let event: Event = serde_json::from_str(&r.json)
                .map_err(|e| StoreError::Corrupt(format!("event {}: {e}", r.event_id)))?;
            events.push(event);
            if events.len() == query.limit {
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
        tail,
    })
}
