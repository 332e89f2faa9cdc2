//! What a plugin does with its inbox, and publishing its own events: plain functions the
//! handlers in [`handlers`] call. Every function takes the calling plugin: a plugin only
//! ever touches its own inbox, and only sees tenants where it is installed.

pub mod handlers;

use omnigate_schemas::Event;
use omnigate_schemas::api::{
    DeadLetterPage, DeadLetterView, DeliveryFailure, InboxDelivery, NackRequest, Scope,
};
use std::collections::HashMap;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::normalize::time;
use crate::plugins::redact::redact;
use crate::state::AppState;
use crate::store::{InboxEntry, InstallationRecord, Nack, PluginRecord, PullOptions, StreamId};

pub const MAX_PULL: usize = 100;
pub const MAX_WAIT_MS: u64 = 30_000;

fn receipts(raw: &[String]) -> Result<Vec<StreamId>> {
    if raw.len() > MAX_RECEIPTS {
        return Err(Error::validation(format!(
            "at most {MAX_RECEIPTS} receipts per call"
        )));
    }
    raw.iter()
        .map(|r| {
            r.parse()
                .map_err(|_| Error::validation(format!("{r:?} is not a receipt")))
        })
        .collect()
}

/// The plugin's installation in `tenant`, if any.
async fn installation(
    state: &AppState,
    cache: &mut HashMap<String, Option<InstallationRecord>>,
    plugin_id: &str,
    tenant: &str,
) -> Result<Option<InstallationRecord>> {
    if let Some(i) = cache.get(tenant) {
        return Ok(i.clone());
    }
    let found = state
        .store
        .installations(tenant)
        .await?
        .into_iter()
        .find(|i| i.plugin_id == plugin_id);
    cache.insert(tenant.to_string(), found.clone());
    Ok(found)
}

/// What a plugin may see of some inbox deliveries or dead letters.
pub(crate) struct Presented {
    pub shown: Vec<(StreamId, u64, Event)>,
    /// Ids of those from shops it left (or may no longer read): the caller decides what
    /// becomes of them, as only it knows which stream the ids belong to.
    pub hidden: Vec<StreamId>,
}

/// Events as this plugin may see them: nothing from shops it left, no PII without the
/// `customer_pii` scope. Pulled or pushed, a plugin sees the same.
pub(crate) async fn present(
    state: &AppState,
    plugin: &PluginRecord,
    items: Vec<(StreamId, u64, InboxEntry)>,
) -> Result<Presented> {
    let mut cache = HashMap::new();
    let mut publishers = HashMap::new();
    let mut out = Vec::new();
    let mut hidden = Vec::new();
    for (receipt, attempt, entry) in items {
        let Some(inst) = installation(state, &mut cache, &plugin.id, &entry.tenant).await? else {
            hidden.push(receipt);
            continue;
        };
        if !inst.scopes.contains(&Scope::EventsRead) {
            hidden.push(receipt);
            continue;
        }
        let mut event: Event = serde_json::from_str(&entry.json)
            .map_err(|e| Error::StoreCorrupt(format!("inbox event {}: {e}", entry.event_id)))?;
        if !inst.scopes.contains(&Scope::CustomerPii) {
            redact(state, &mut publishers, &mut event).await?;
        }
        out.push((receipt, attempt, event));
    }
    Ok(Presented { shown: out, hidden })
}

pub async fn pull(
    state: &AppState,
    plugin: &PluginRecord,
    max: Option<usize>,
    wait_ms: Option<u64>,
) -> Result<Vec<InboxDelivery>> {
    let max = max.unwrap_or(10);
    if !(1..=MAX_PULL).contains(&max) {
        return Err(Error::validation(format!(
            "max must be between 1 and {MAX_PULL}"
        )));
    }
    if plugin.push.is_some() {
        return Err(Error::Conflict(format!(
            "plugin {:?} is delivered by push to its URL; it does not pull (switch it to \
             pull with PATCH /v1/plugins/{{id}} to pull, or use `omnigate forward` with a \
             pull plugin for local development)",
            plugin.id
        )));
    }
    let wait = wait_ms.unwrap_or(0);
    if wait > MAX_WAIT_MS {
        return Err(Error::validation(format!(
            "wait_ms must be at most {MAX_WAIT_MS}"
        )));
    }
    // Held while the pull waits: each open long-poll holds a Redis connection.
    let _slot = state.limits.pull_slot(&plugin.id)?;
    let delivered = state
        .store
        .inbox_pull(
            &plugin.id,
            PullOptions {
                max,
                wait: Duration::from_millis(wait),
                visibility: state.settings.inbox_visibility(),
                max_attempts: state.settings.inbox_max_attempts,
            },
        )
        .await?;
    let items = delivered
        .into_iter()
        .map(|d| (d.receipt, d.attempt, d.entry))
        .collect();
    let presented = present(state, plugin, items).await?;
    // Deliveries it may no longer see are settled, so they do not come back.
    if !presented.hidden.is_empty() {
        state.store.inbox_ack(&plugin.id, &presented.hidden).await?;
    }
    Ok(presented
        .shown
        .into_iter()
        .map(|(receipt, attempt, event)| InboxDelivery {
            receipt: receipt.to_string(),
            attempt,
            event,
        })
        .collect())
}

/// Most receipts one ack or nack may name.
pub const MAX_RECEIPTS: usize = 1000;
/// Longest a nack may postpone a delivery.
pub const MAX_RETRY_AFTER_MS: u64 = 86_400_000;

pub async fn ack(state: &AppState, plugin: &PluginRecord, raw: &[String]) -> Result<u64> {
    Ok(state.store.inbox_ack(&plugin.id, &receipts(raw)?).await?)
}

pub async fn nack(state: &AppState, plugin: &PluginRecord, req: &NackRequest) -> Result<u64> {
    if req.retry_after_ms.is_some_and(|ms| ms > MAX_RETRY_AFTER_MS) {
        return Err(Error::validation(format!(
            "retry_after_ms must be at most {MAX_RETRY_AFTER_MS}"
        )));
    }
    if req
        .reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > MAX_REASON_CHARS)
    {
        return Err(Error::validation(format!(
            "reason must be at most {MAX_REASON_CHARS} characters"
        )));
    }
    if req.dead && req.defer {
        return Err(Error::validation(
            "give dead (give up) or defer (not tried), not both",
        ));
    }
    let visibility = state.settings.inbox_visibility();
    let nack = Nack {
        retry_after: Duration::from_millis(req.retry_after_ms.unwrap_or(0)),
        visibility,
        reason: req.reason.clone().filter(|r| !r.is_empty()),
        at: time::format(state.now()),
        dead: req.dead,
        defer: req.defer,
    };
    Ok(state
        .store
        .inbox_nack(&plugin.id, &receipts(&req.receipts)?, &nack)
        .await?)
}

/// Longest `reason` a nack may give.
pub const MAX_REASON_CHARS: usize = 1000;

/// A page of a plugin's dead letters after `after`, oldest first: those shown (of shops it
/// is still installed in), where the page ends, and whether it reached the last one.
pub struct DeadPage {
    pub shown: Vec<DeadLetterView>,
    pub last: Option<StreamId>,
    pub done: bool,
}

/// A page of `plugin`'s dead letters as `query` asks, for the plugin's own route and the
/// operator's.
pub async fn dead_letter_page(
    state: &AppState,
    plugin: &PluginRecord,
    query: &handlers::DeadQuery,
) -> Result<DeadLetterPage> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Error::InvalidQuery(
            "limit must be between 1 and 1000".into(),
        ));
    }
    let after = match &query.after {
        Some(a) => Some(
            StreamId::cursor(a)
                .map_err(|_| Error::InvalidQuery(format!("after {a:?} is not a dead letter id")))?,
        ),
        None => None,
    };
    let page = dead_letters(state, plugin, after, limit).await?;
    Ok(DeadLetterPage {
        dead_letters: page.shown,
        next: page.last.map(|l| l.to_string()),
        done: page.done,
    })
}

pub async fn dead_letters(
    state: &AppState,
    plugin: &PluginRecord,
    after: Option<StreamId>,
    limit: usize,
) -> Result<DeadPage> {
    // One more than asked: whether any is left after this page.
    let mut dead = state
        .store
        .dead_letters(&plugin.id, after, limit + 1)
        .await?;
    let done = dead.len() <= limit;
    dead.truncate(limit);
    let last = dead.last().map(|d| d.id).or(after);
    let mut attempts: HashMap<StreamId, (u64, Vec<crate::store::Failure>)> = dead
        .iter()
        .map(|d| (d.id, (d.attempts, d.failures.clone())))
        .collect();
    let items = dead
        .into_iter()
        .map(|d| (d.id, d.attempts, d.entry))
        .collect();
    // Dead letters of shops it left are only hidden: their ids are dead-letter stream ids,
    // which may equal ids of unrelated deliveries in the inbox stream.
    let shown = present(state, plugin, items)
        .await?
        .shown
        .into_iter()
        .map(|(id, _, event)| {
            let (attempts, failures) = attempts.remove(&id).unwrap_or_default();
            DeadLetterView {
                id: id.to_string(),
                attempts,
                event,
                failures: failures
                    .into_iter()
                    .map(|f| DeliveryFailure {
                        attempt: f.attempt,
                        reason: f.reason,
                        at: f.at,
                    })
                    .collect(),
            }
        })
        .collect();
    Ok(DeadPage { shown, last, done })
}

/// Most dead letters one replay call may name.
pub const MAX_REPLAY_IDS: usize = 1000;

pub async fn replay_dead(
    state: &AppState,
    plugin: &PluginRecord,
    ids: Option<&[String]>,
) -> Result<u64> {
    if ids.is_some_and(|ids| ids.len() > MAX_REPLAY_IDS) {
        return Err(Error::validation(format!(
            "ids must name at most {MAX_REPLAY_IDS} dead letters"
        )));
    }
    // A repeated id is one dead letter: replaying it twice would double the delivery.
    let ids = ids.map(receipts).transpose()?.map(|mut ids| {
        ids.sort_unstable();
        ids.dedup();
        ids
    });
    state.limits.replay(&plugin.id)?;
    let pushed = state.store.replay_dead(&plugin.id, ids.as_deref()).await?;
    state.note_inbox_trimmed(&plugin.id, pushed.trimmed);
    Ok(pushed.ids.len() as u64)
}

pub const MAX_REPLAY: usize = 10_000;

/// Delivers `tenant`'s logged events again (those the plugin subscribed to), from `from`
/// on, as new inbox entries. Returns how many, and where to continue.
pub async fn replay_log(
    state: &AppState,
    plugin: &PluginRecord,
    req: omnigate_schemas::api::ReplayLog,
) -> Result<omnigate_schemas::api::LogReplayed> {
    let mut cache = HashMap::new();
    let inst = installation(state, &mut cache, &plugin.id, &req.tenant).await?;
    if !inst.is_some_and(|i| i.scopes.contains(&Scope::EventsRead)) {
        return Err(Error::Forbidden(format!(
            "not installed in {:?} with events:read",
            req.tenant
        )));
    }
    state.limits.replay(&plugin.id)?;
    let from =
        time::rfc3339(&req.from).ok_or_else(|| Error::validation("from must be RFC 3339"))?;
    let limit = req.limit.unwrap_or(MAX_REPLAY);
    if !(1..=MAX_REPLAY).contains(&limit) {
        return Err(Error::validation(format!(
            "limit must be between 1 and {MAX_REPLAY}"
        )));
    }
    // Log positions are append times in milliseconds: start just before `from`.
    let after = match req.after.as_deref() {
        Some(a) => StreamId::cursor(a)?,
        None => StreamId {
            ms: (from.timestamp_millis().max(1) - 1) as u64,
            seq: u64::MAX,
        },
    };
    let query = crate::store::tenant_log::LogQuery {
        tenant: &req.tenant,
        cursor: Some(after),
        limit,
        ..Default::default()
    };
    let page =
        crate::store::tenant_log::page(state.store.as_ref(), state.settings.partitions, &query)
            .await?;
    let items: Vec<InboxEntry> = page
        .events
        .into_iter()
        .filter(|e| crate::plugins::registry::subscribed(plugin, &e.event_type))
        .filter(|e| time::rfc3339(&e.received_at).is_none_or(|at| at >= from))
        .map(|e| {
            let json = serde_json::to_string(&e).map_err(|err| Error::Internal(err.to_string()))?;
            Ok(InboxEntry {
                event_id: e.id,
                tenant: e.tenant,
                event_type: e.event_type,
                json,
            })
        })
        .collect::<Result<_>>()?;
    for chunk in items.chunks(500) {
        let pushed = state.store.inbox_push(&plugin.id, chunk).await?;
        state.note_inbox_trimmed(&plugin.id, pushed.trimmed);
    }
    Ok(omnigate_schemas::api::LogReplayed {
        replayed: items.len() as u64,
        next: if page.done { None } else { page.next },
        done: page.done,
    })
}
