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

use crate::clock::pause;
use tokio::task::JoinHandle;

use crate::plugins::registry::subscribed;
use crate::state::AppState;
use crate::store::{
    InboxEntry, InstallationRecord, LogEntry, PluginRecord, StoreError, StoreResult,
};
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
        let failed = match plan(&state, &mut cache, &entries).await {
            Ok(plan) => push(&state, plan).await,
            Err(e) => Err(Failure::Plan(e)),
        };
        if let Err(failure) = failed {
            state
                .metrics
                .store_errors
                .with_label_values(&["route"])
                .inc();
            tracing::warn!(partition, error = %failure, "routing failed; retrying the batch");
            if !retry(&state, &mut cache, partition, &entries, failure, &mut stop).await {
                return;
            }
        }
        acknowledge(&state, partition, &entries).await;
    }
}

/// Tries of a failing inbox write that Redis refuses for good (not an outage) before its
/// events are set aside.
const REFUSED_ATTEMPTS: u32 = 5;

/// Each plugin's inbox entries from one batch, in log order.
type Plan = Vec<(String, Vec<InboxEntry>)>;

/// Why a batch is not routed yet.
enum Failure {
    /// The plan could not be made (installations unreadable).
    Plan(StoreError),
    /// These plugins' inbox writes failed; the others' landed.
    Push(Vec<(String, Vec<InboxEntry>, StoreError)>),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Plan(e) => write!(f, "{e}"),
            Failure::Push(failed) => match failed.first() {
                Some((plugin, _, e)) => write!(f, "inbox of {plugin}: {e}"),
                None => Ok(()),
            },
        }
    }
}

impl Failure {
    /// Whether Redis refused for good, as opposed to not answering (an outage, a
    /// failover, a timeout: waited out however long it lasts).
    fn refused(&self) -> bool {
        let permanent =
            |e: &StoreError| matches!(e, StoreError::Refused(_) | StoreError::Corrupt(_));
        match self {
            Failure::Plan(e) => permanent(e),
            Failure::Push(failed) => failed.iter().all(|(_, _, e)| permanent(e)),
        }
    }
}

async fn acknowledge(state: &AppState, partition: u32, entries: &[LogEntry]) {
    let cursors: Vec<_> = entries.iter().map(|e| e.cursor).collect();
    if let Err(e) = state.store.route_ack(partition, &cursors).await {
        tracing::warn!(partition, error = %e, "router cannot acknowledge; the batch will be routed again");
    }
}

/// Writes each plugin's entries; one plugin's failure does not keep the others from theirs.
async fn push(state: &AppState, plan: Plan) -> std::result::Result<(), Failure> {
    let mut failed = Vec::new();
    for (plugin_id, items) in plan {
        match state.store.inbox_push(&plugin_id, &items).await {
            Ok(pushed) => state.note_inbox_trimmed(&plugin_id, pushed.trimmed),
            Err(e) => failed.push((plugin_id, items, e)),
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::Push(failed))
    }
}

/// A batch that failed is finished before anything newer is read, so a tenant's later
/// events never overtake it: at once, with backoff, only what failed (the plan, or the
/// inbox writes that did not land). While Redis does not answer, for as long as it takes.
/// What Redis refuses for good (a wrong key type, a command it rejects) is tried a few
/// times, then entry by entry, and an event still refused for a plugin is set aside in the
/// partition's router dead letters (counted and logged), so it cannot hold back every
/// event after it. Returns false when stopped.
async fn retry(
    state: &AppState,
    cache: &mut HashMap<String, (Instant, Arc<Targets>)>,
    partition: u32,
    entries: &[LogEntry],
    mut failure: Failure,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let mut delay = Duration::from_millis(100);
    let mut refusals = 0;
    loop {
        if failure.refused() {
            refusals += 1;
            if refusals >= REFUSED_ATTEMPTS
                && let Failure::Push(failed) = &failure
            {
                return set_aside(state, partition, entries, failed, stop).await;
            }
        }
        if pause(stop, delay).await {
            return false;
        }
        delay = (delay * 2).min(Duration::from_secs(5));
        let next = match failure {
            Failure::Plan(_) => match plan(state, cache, entries).await {
                Ok(plan) => push(state, plan).await,
                Err(e) => Err(Failure::Plan(e)),
            },
            Failure::Push(failed) => {
                let plan = failed.into_iter().map(|(p, items, _)| (p, items)).collect();
                push(state, plan).await
            }
        };
        match next {
            Ok(()) => return true,
            Err(f) => failure = f,
        }
    }
}

/// The inbox writes Redis keeps refusing, retried one event at a time; an event still
/// refused goes to the router dead letters for that plugin. Returns false when stopped.
async fn set_aside(
    state: &AppState,
    partition: u32,
    entries: &[LogEntry],
    failed: &[(String, Vec<InboxEntry>, StoreError)],
    stop: &mut watch::Receiver<bool>,
) -> bool {
    for (plugin_id, items, _) in failed {
        for item in items {
            let mut result = state
                .store
                .inbox_push(plugin_id, std::slice::from_ref(item))
                .await;
            while let Err(e) = &result {
                let refused = matches!(e, StoreError::Refused(_) | StoreError::Corrupt(_));
                if refused {
                    break;
                }
                // Not refused after all: an outage began; wait it out.
                if pause(stop, Duration::from_secs(1)).await {
                    return false;
                }
                result = state
                    .store
                    .inbox_push(plugin_id, std::slice::from_ref(item))
                    .await;
            }
            let Err(e) = result else { continue };
            let Some(entry) = entries.iter().find(|e| e.record.event_id == item.event_id) else {
                continue;
            };
            let reason = format!("inbox of {plugin_id}: {e}");
            loop {
                match state
                    .store
                    .route_bury(partition, entry, plugin_id, &reason)
                    .await
                {
                    Ok(()) => break,
                    Err(bury) => {
                        tracing::warn!(partition, error = %bury, "cannot set a refused event aside yet");
                        if pause(stop, Duration::from_secs(1)).await {
                            return false;
                        }
                    }
                }
            }
            state.metrics.router_dead_letters.inc();
            tracing::error!(
                partition,
                plugin_id = %plugin_id,
                event_id = %entry.record.event_id,
                tenant = %entry.record.tenant,
                error = %reason,
                "Redis keeps refusing an event for a plugin's inbox: moved to the partition's \
                 router dead letters"
            );
        }
    }
    true
}

/// Each plugin's inbox entries for a batch, in log order.
async fn plan(
    state: &AppState,
    cache: &mut HashMap<String, (Instant, Arc<Targets>)>,
    entries: &[LogEntry],
) -> StoreResult<Plan> {
    let mut per_plugin: Plan = Vec::new();
    for entry in entries {
        for (plugin_id, item) in route(state, cache, entry).await? {
            match per_plugin.iter_mut().find(|(p, _)| *p == plugin_id) {
                Some((_, items)) => items.push(item),
                None => per_plugin.push((plugin_id, vec![item])),
            }
        }
    }
    Ok(per_plugin)
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
) -> StoreResult<Arc<Targets>> {
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

/// Whether a log entry is a thin event of a source whose resources the gateway reads: the
/// enricher's, as well as the plugins'.
async fn to_enrich(state: &AppState, r: &crate::store::LogRecord) -> StoreResult<bool> {
    #[derive(Deserialize)]
    struct Source<'a> {
        #[serde(borrow)]
        id: std::borrow::Cow<'a, str>,
    }
    #[derive(Deserialize)]
    struct Head<'a> {
        #[serde(borrow)]
        source: Source<'a>,
    }
    // Most events are not thin: a look at the bytes first, the parse only for those.
    if !r.json.contains(r#""enrichment":"pending""#) {
        return Ok(false);
    }
    let Ok(head) = serde_json::from_str::<Head>(&r.json) else {
        return Ok(false);
    };
    match state.source(&head.source.id).await {
        Ok(source) => Ok(source.is_some_and(|s| s.api_credentials.is_some())),
        // Routing never waits on it: the enricher reads the source again, and lets the
        // event go when it has no credentials.
        Err(e) => {
            tracing::debug!(source_id = %head.source.id, error = %e, "source unreadable; the enricher decides");
            Ok(true)
        }
    }
}

/// The inbox entries one log entry becomes: one per installed, subscribed plugin (and
/// the enricher's, for a thin event it reads back).
async fn route(
    state: &AppState,
    cache: &mut HashMap<String, (Instant, Arc<Targets>)>,
    entry: &LogEntry,
) -> StoreResult<Vec<(String, InboxEntry)>> {
    let r = &entry.record;
    let targets = targets(state, cache, &r.tenant).await?;
    let mut out = Vec::new();
    if to_enrich(state, r).await? {
        out.push((
            crate::enrich::INBOX.to_string(),
            InboxEntry {
                event_id: r.event_id.clone(),
                tenant: r.tenant.clone(),
                event_type: r.event_type.clone(),
                json: r.json.clone(),
            },
        ));
    }
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
