//! The router: a background task per log partition (in every gateway process; the consumer
//! group shares the work) that copies each canonical event into the inbox of every plugin
//! installed on its tenant and subscribed to its type. A log entry is acknowledged only
//! after every inbox write succeeded, so a crash re-routes it (at least once); one that a
//! dead router left unacknowledged is taken over after `OMNIGATE_ROUTER_STALE_MS`. A batch that fails is
//! retried at once and in order; an entry that keeps failing while the store answers is set
//! aside in the partition's router dead letters (`retry`).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::Result;
use crate::plugins::registry::subscribed;
use crate::state::AppState;
use crate::store::{InboxEntry, InstallationRecord, LogEntry, PluginRecord};
use omnigate_schemas::api::Scope;

const BATCH: usize = 100;
/// How long a router blocks for new entries before it looks at its stop signal again.
const WAIT: Duration = Duration::from_secs(1);
/// Installations are re-read this often, so a new one takes effect within it.
const CACHE_TTL: Duration = Duration::from_secs(1);

/// Stops the router tasks when dropped or told to.
pub struct RouterHandle {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RouterHandle {
    /// Signals every task and waits for them to finish their current batch.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Starts one routing task per partition.
pub fn spawn(state: Arc<AppState>) -> RouterHandle {
    let (stop, watch) = watch::channel(false);
    let tasks = (0..state.settings.partitions)
        .map(|p| tokio::spawn(run(state.clone(), p, watch.clone())))
        .collect();
    RouterHandle { stop, tasks }
}

type Targets = Vec<(InstallationRecord, PluginRecord)>;

async fn run(state: Arc<AppState>, partition: u32, mut stop: watch::Receiver<bool>) {
    let mut cache: HashMap<String, (Instant, Arc<Targets>)> = HashMap::new();
    // Taken but not acknowledged for this long: its router died; take it over.
    let stale = Duration::from_millis(state.settings.router_stale_ms);
    loop {
        if *stop.borrow() {
            return;
        }
        let taken = tokio::select! {
            r = state.store.route_pull(partition, BATCH, stale, WAIT) => r,
            _ = stop.changed() => return,
        };
        let entries = match taken {
            Ok(entries) => entries,
            Err(e) => {
                state
                    .metrics
                    .store_errors
                    .with_label_values(&["route"])
                    .inc();
                tracing::warn!(partition, error = %e, "router cannot read its partition; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if entries.is_empty() {
            continue;
        }
        if let Err(e) = route_batch(&state, &mut cache, &entries).await {
            state
                .metrics
                .store_errors
                .with_label_values(&["route"])
                .inc();
            tracing::warn!(partition, error = %e, "routing failed; retrying the batch");
            if !retry(&state, &mut cache, partition, &entries, &mut stop).await {
                return;
            }
            continue;
        }
        acknowledge(&state, partition, &entries).await;
    }
}

/// Tries of a failed batch while the store answers, before it is taken apart.
const BATCH_ATTEMPTS: u32 = 5;
/// Tries of one entry of such a batch before it counts as poison.
const ENTRY_ATTEMPTS: u32 = 3;

async fn acknowledge(state: &AppState, partition: u32, entries: &[LogEntry]) {
    let cursors: Vec<_> = entries.iter().map(|e| e.cursor).collect();
    if let Err(e) = state.store.route_ack(partition, &cursors).await {
        tracing::warn!(partition, error = %e, "router cannot acknowledge; the batch will be routed again");
    }
}

/// Sleeps unless stopped first; true when stopped.
async fn pause(stop: &mut watch::Receiver<bool>, how_long: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(how_long) => false,
        _ = stop.changed() => true,
    }
}

/// A batch that failed is tried again at once, with backoff, before anything newer is read,
/// so a tenant's later events never overtake it. While the store does not answer, for as
/// long as it takes. While it answers, a few times; then entry by entry, and an entry that
/// still fails goes to the partition's router dead letters (counted and logged) instead of
/// holding back every entry after it. Inbox writes already done are repeated (plugins see
/// an event at least once). Returns false when stopped.
async fn retry(
    state: &AppState,
    cache: &mut HashMap<String, (Instant, Arc<Targets>)>,
    partition: u32,
    entries: &[LogEntry],
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let mut delay = Duration::from_millis(100);
    let mut while_up = 0;
    'batch: loop {
        if pause(stop, delay).await {
            return false;
        }
        delay = (delay * 2).min(Duration::from_secs(5));
        let Err(e) = route_batch(state, cache, entries).await else {
            acknowledge(state, partition, entries).await;
            return true;
        };
        if state.store.ping().await.is_err() {
            continue;
        }
        while_up += 1;
        if while_up < BATCH_ATTEMPTS {
            tracing::debug!(partition, error = %e, attempt = while_up, "routing failed again");
            continue;
        }
        let mut routed = Vec::new();
        for entry in entries {
            let one = std::slice::from_ref(entry);
            let mut result = route_batch(state, cache, one).await;
            for _ in 1..ENTRY_ATTEMPTS {
                if result.is_ok() {
                    break;
                }
                if pause(stop, Duration::from_millis(100)).await {
                    return false;
                }
                result = route_batch(state, cache, one).await;
            }
            match result {
                Ok(()) => routed.push(entry),
                Err(e) => {
                    let reason = e.to_string();
                    if let Err(bury) = state.store.route_bury(partition, entry, &reason).await {
                        // Not even that: the whole batch is tried again, in order.
                        tracing::warn!(partition, error = %bury, "cannot set a poison entry aside yet");
                        continue 'batch;
                    }
                    state.metrics.router_dead_letters.inc();
                    tracing::error!(
                        partition,
                        event_id = %entry.record.event_id,
                        tenant = %entry.record.tenant,
                        error = %reason,
                        "an event keeps failing to route while the store answers: moved to the \
                         partition's router dead letters"
                    );
                }
            }
        }
        let cursors: Vec<_> = routed.iter().map(|e| e.cursor).collect();
        if let Err(e) = state.store.route_ack(partition, &cursors).await {
            tracing::warn!(partition, error = %e, "router cannot acknowledge; the batch will be routed again");
        }
        return true;
    }
}

/// Routes a batch: one inbox write per plugin, in log order.
async fn route_batch(
    state: &AppState,
    cache: &mut HashMap<String, (Instant, Arc<Targets>)>,
    entries: &[LogEntry],
) -> Result<()> {
    let mut per_plugin: Vec<(String, Vec<InboxEntry>)> = Vec::new();
    for entry in entries {
        for (plugin_id, item) in route(state, cache, entry).await? {
            match per_plugin.iter_mut().find(|(p, _)| *p == plugin_id) {
                Some((_, items)) => items.push(item),
                None => per_plugin.push((plugin_id, vec![item])),
            }
        }
    }
    for (plugin_id, items) in per_plugin {
        let pushed = state.store.inbox_push(&plugin_id, &items).await?;
        state.note_inbox_trimmed(&plugin_id, pushed.trimmed);
    }
    Ok(())
}

#[derive(Deserialize)]
struct Head {
    received_at: String,
}

/// The plugins installed on `tenant` (with `events:read`), from a short-lived cache.
async fn targets(
    state: &AppState,
    cache: &mut HashMap<String, (Instant, Arc<Targets>)>,
    tenant: &str,
) -> Result<Arc<Targets>> {
    if let Some((at, t)) = cache.get(tenant)
        && at.elapsed() < CACHE_TTL
    {
        return Ok(t.clone());
    }
    let mut out = Vec::new();
    for i in state.store.installations(tenant).await? {
        if !i.scopes.contains(&Scope::EventsRead) {
            continue;
        }
        if let Some(plugin) = state.store.get_plugin(&i.plugin_id).await? {
            out.push((i, plugin));
        }
    }
    let out = Arc::new(out);
    cache.insert(tenant.to_string(), (Instant::now(), out.clone()));
    Ok(out)
}

/// The inbox entries one log entry becomes: one per installed, subscribed plugin.
async fn route(
    state: &AppState,
    cache: &mut HashMap<String, (Instant, Arc<Targets>)>,
    entry: &LogEntry,
) -> Result<Vec<(String, InboxEntry)>> {
    let r = &entry.record;
    let targets = targets(state, cache, &r.tenant).await?;
    let mut out = Vec::new();
    if targets.is_empty() {
        return Ok(out);
    }
    let received_at: Option<DateTime<Utc>> = serde_json::from_str::<Head>(&r.json)
        .ok()
        .and_then(|h| crate::normalize::time::rfc3339(&h.received_at));
    let item = InboxEntry {
        event_id: r.event_id.clone(),
        tenant: r.tenant.clone(),
        event_type: r.event_type.clone(),
        json: r.json.clone(),
    };
    for (installation, plugin) in targets.iter() {
        // Events from before an installation are not delivered to it.
        let before = received_at.is_some_and(|at| at < installation.installed_at);
        if before || !subscribed(plugin, &r.event_type) {
            continue;
        }
        out.push((plugin.id.clone(), item.clone()));
    }
    Ok(out)
}
