//! The embedded store: everything in this process's memory, lost on restart. Same
//! semantics as the Redis store (one lock makes every append atomic).

use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;

use super::StoreResult;
use super::{
    Append, Appended, DeadLetter, Delivered, EventLog, InboxDepth, InboxEntry, Inboxes,
    InstallationRecord, LogEntry, LogRecord, PluginRecord, PullOptions, Pushed, Quarantine,
    QuarantineId, QuarantineSummary, Registry, Retention, RouteProgress, RouterDeadLetter,
    SourceRecord, Store, StoredQuarantine, StoredSnapshot, StreamId, Write,
};

struct Stream<T> {
    entries: BTreeMap<StreamId, T>,
    last: Option<StreamId>,
}

impl<T> Default for Stream<T> {
    fn default() -> Self {
        Stream {
            entries: BTreeMap::new(),
            last: None,
        }
    }
}

impl<T> Stream<T> {
    /// Like XADD `*`: milliseconds now, or the last id's + 1 sequence when the clock has
    /// not moved on.
    fn push(&mut self, value: T) -> StreamId {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let id = match self.last {
            Some(last) if last.ms >= now => StreamId {
                ms: last.ms,
                seq: last.seq + 1,
            },
            _ => StreamId { ms: now, seq: 0 },
        };
        self.entries.insert(id, value);
        self.last = Some(id);
        id
    }

    fn trim(&mut self, maxlen: u64) -> u64 {
        if maxlen == 0 {
            return 0;
        }
        let mut trimmed = 0;
        while self.entries.len() as u64 > maxlen {
            self.entries.pop_first();
            trimmed += 1;
        }
        trimmed
    }

    /// Trims to `maxlen`, but never an entry at or past `bound` (the first the router has
    /// not taken and acknowledged; `None`: it has taken nothing). Also says whether the cap
    /// was held back by it.
    fn trim_below(&mut self, maxlen: u64, bound: Option<StreamId>) -> (u64, bool) {
        if maxlen == 0 {
            return (0, false);
        }
        let mut trimmed = 0;
        while self.entries.len() as u64 > maxlen {
            match self.entries.first_key_value() {
                Some((first, _)) if bound.is_some_and(|b| *first < b) => {
                    self.entries.pop_first();
                    trimmed += 1;
                }
                _ => return (trimmed, true),
            }
        }
        (trimmed, false)
    }
}

/// Consumer-group state over a stream, as Redis keeps it: entries handed out stay pending
/// until acknowledged and may be handed out again once due.
#[derive(Default)]
struct Group {
    /// The last entry handed out for the first time.
    delivered_upto: Option<StreamId>,
    /// Handed out, not acknowledged: delivery count and when it may be handed out again.
    pending: BTreeMap<StreamId, (u64, Instant)>,
}

impl Group {
    /// Pending entries that are due, with their delivery counts so far.
    fn due(&self, now: Instant, max: usize) -> Vec<(StreamId, u64)> {
        self.pending
            .iter()
            .filter(|(_, (_, at))| *at <= now)
            .take(max)
            .map(|(id, (count, _))| (*id, *count))
            .collect()
    }

    /// Up to `max` entries never handed out, now marked handed out.
    fn fresh<T>(
        &mut self,
        entries: &BTreeMap<StreamId, T>,
        max: usize,
        until: Instant,
    ) -> Vec<StreamId> {
        let ids: Vec<StreamId> = match self.delivered_upto {
            Some(upto) => entries
                .range((std::ops::Bound::Excluded(upto), std::ops::Bound::Unbounded))
                .take(max)
                .map(|(id, _)| *id)
                .collect(),
            None => entries.keys().take(max).copied().collect(),
        };
        for id in &ids {
            self.delivered_upto = Some(*id);
            self.pending.insert(*id, (1, until));
        }
        ids
    }
}

/// A plugin inbox: its entries, their consumer group, and its dead letters.
#[derive(Default)]
struct Inbox {
    entries: Stream<InboxEntry>,
    group: Group,
    dead: Stream<DeadLetter>,
    /// Why pending entries were handed back, until they are acknowledged or die.
    failures: HashMap<StreamId, Vec<super::Failure>>,
    /// Which delivery holds each subject (push delivery), and the earliest refused it.
    holds: HashMap<String, StreamId>,
    waiters: HashMap<String, StreamId>,
    /// When entries handed back with a delay fall due (as Redis keeps them apart from the
    /// visibility timeout of deliveries out now).
    due: HashMap<StreamId, Instant>,
    /// How each push endpoint is doing, by URL.
    health: BTreeMap<String, super::EndpointHealth>,
}

impl Inbox {
    /// Moves entry `id` (delivered `attempts` times) to the dead letters with its failures.
    fn bury(&mut self, plugin_id: &str, id: StreamId, attempts: u64, dead_maxlen: u64) {
        self.group.pending.remove(&id);
        self.due.remove(&id);
        let failures = self.failures.remove(&id).unwrap_or_default();
        let Some(entry) = self.entries.entries.remove(&id) else {
            return;
        };
        self.dead.push(DeadLetter {
            id: StreamId { ms: 0, seq: 0 },
            attempts,
            entry,
            failures,
        });
        let trimmed = self.dead.trim(dead_maxlen);
        if trimmed > 0 {
            tracing::warn!(
                plugin_id,
                trimmed,
                "dead letters over their cap: the oldest were removed"
            );
        }
    }
}

#[derive(Default)]
struct Inner {
    sources: HashMap<String, SourceRecord>,
    seen: HashMap<(u32, String), Instant>,
    logs: HashMap<u32, Stream<LogRecord>>,
    quarantine: HashMap<u32, Stream<super::QuarantineRecord>>,
    replayed: HashMap<QuarantineId, Vec<String>>,
    snapshots: HashMap<(u32, String), (Instant, StoredSnapshot)>,
    plugins: HashMap<String, PluginRecord>,
    keys: HashMap<String, String>,
    namespaces: HashMap<String, String>,
    installations: HashMap<String, BTreeMap<String, InstallationRecord>>,
    inboxes: HashMap<String, Inbox>,
    routers: HashMap<u32, Group>,
    /// Log entries the router set aside, per partition, with why.
    router_dead: HashMap<u32, Vec<RouterDeadLetter>>,
    /// Hands out router dead letters' ids, as a stream would.
    router_dead_ids: Stream<()>,
    appends: u64,
    /// Poll leases: source → (holder, until).
    poll_leases: HashMap<String, (String, Instant)>,
    poll_states: HashMap<String, super::PollState>,
    /// Per source: deliveries per (minute, outcome), and the newest delivery's time.
    tallies: HashMap<String, SourceCounts>,
}

/// Up to `count` log entries from `range`, in its order.
fn log_entries<'a>(
    range: impl Iterator<Item = (&'a StreamId, &'a LogRecord)>,
    count: usize,
) -> Vec<LogEntry> {
    range
        .take(count)
        .map(|(id, r)| LogEntry {
            cursor: *id,
            record: r.clone(),
        })
        .collect()
}

/// A source's deliveries per (minute, outcome), and its newest delivery's Unix ms.
type SourceCounts = (BTreeMap<(u64, String), u64>, u64);

pub struct MemoryStore {
    inner: Mutex<Inner>,
    retention: Retention,
    /// Wakes waiting pulls when entries arrive, per plugin.
    arrivals: Mutex<HashMap<String, Arc<Notify>>>,
}

impl MemoryStore {
    pub fn new(retention: Retention) -> Self {
        MemoryStore {
            inner: Mutex::new(Inner::default()),
            retention,
            arrivals: Mutex::new(HashMap::new()),
        }
    }

    fn arrivals(&self, plugin_id: &str) -> Arc<Notify> {
        self.arrivals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(plugin_id.to_string())
            .or_default()
            .clone()
    }

    /// One non-blocking pull.
    fn pull_now(&self, plugin_id: &str, o: PullOptions) -> Vec<Delivered> {
        let mut inner = self.lock();
        let inbox = inner.inboxes.entry(plugin_id.to_string()).or_default();
        let now = Instant::now();
        let mut out = Vec::new();
        for (id, count) in inbox.group.due(now, o.max) {
            let Some(entry) = inbox.entries.entries.get(&id).cloned() else {
                inbox.group.pending.remove(&id);
                inbox.failures.remove(&id);
                continue;
            };
            inbox.due.remove(&id);
            let attempt = count + 1;
            if attempt > o.max_attempts {
                inbox.bury(plugin_id, id, count, self.retention.dead_maxlen);
                continue;
            }
            inbox
                .group
                .pending
                .insert(id, (attempt, now + o.visibility));
            out.push(Delivered {
                receipt: id,
                attempt,
                entry,
            });
        }
        let room = o.max.saturating_sub(out.len());
        for id in inbox
            .group
            .fresh(&inbox.entries.entries, room, now + o.visibility)
        {
            out.push(Delivered {
                receipt: id,
                attempt: 1,
                entry: inbox.entries.entries[&id].clone(),
            });
        }
        out
    }

    /// One non-blocking read of a partition for the router.
    fn route_now(&self, partition: u32, max: usize, stale: Duration) -> Vec<LogEntry> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let log = inner.logs.entry(partition).or_default();
        let group = inner.routers.entry(partition).or_default();
        let now = Instant::now();
        let mut ids: Vec<StreamId> = Vec::new();
        for (id, count) in group.due(now, max) {
            group.pending.insert(id, (count + 1, now + stale));
            ids.push(id);
        }
        ids.extend(group.fresh(&log.entries, max.saturating_sub(ids.len()), now + stale));
        ids.into_iter()
            .filter_map(|id| {
                let record = log.entries.get(&id)?.clone();
                Some(LogEntry { cursor: id, record })
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-done append (each mutation
        // completes before the next starts), so a poisoned lock is safe to reuse.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(Retention::default())
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }
}

#[async_trait]
impl Registry for MemoryStore {
    async fn put_source(&self, source: &SourceRecord) -> StoreResult<()> {
        self.lock()
            .sources
            .insert(source.id.clone(), source.clone());
        Ok(())
    }

    async fn get_source(&self, id: &str) -> StoreResult<Option<SourceRecord>> {
        Ok(self.lock().sources.get(id).cloned())
    }

    async fn delete_source(&self, id: &str) -> StoreResult<bool> {
        let mut inner = self.lock();
        inner.poll_leases.remove(id);
        inner.poll_states.remove(id);
        inner.tallies.remove(id);
        Ok(inner.sources.remove(id).is_some())
    }

    async fn put_plugin(&self, plugin: &PluginRecord) -> StoreResult<()> {
        self.lock()
            .plugins
            .insert(plugin.id.clone(), plugin.clone());
        Ok(())
    }

    async fn get_plugin(&self, id: &str) -> StoreResult<Option<PluginRecord>> {
        Ok(self.lock().plugins.get(id).cloned())
    }

    async fn replace_plugin(&self, old: &PluginRecord, new: &PluginRecord) -> StoreResult<bool> {
        let mut inner = self.lock();
        if inner.plugins.get(&old.id) != Some(old) {
            return Ok(false);
        }
        inner.plugins.insert(new.id.clone(), new.clone());
        Ok(true)
    }

    async fn source_ids(&self) -> StoreResult<Vec<String>> {
        let mut ids: Vec<String> = self.lock().sources.keys().cloned().collect();
        ids.sort();
        Ok(ids)
    }

    async fn plugin_ids(&self) -> StoreResult<Vec<String>> {
        let mut ids: Vec<String> = self.lock().plugins.keys().cloned().collect();
        ids.sort();
        Ok(ids)
    }

    async fn put_key(&self, hash: &str, plugin_id: &str) -> StoreResult<()> {
        self.lock()
            .keys
            .insert(hash.to_string(), plugin_id.to_string());
        Ok(())
    }

    async fn delete_key(&self, hash: &str) -> StoreResult<()> {
        self.lock().keys.remove(hash);
        Ok(())
    }

    async fn claim_namespaces(
        &self,
        plugin_id: &str,
        namespaces: &[String],
    ) -> StoreResult<Vec<(String, String)>> {
        let mut inner = self.lock();
        let taken: Vec<(String, String)> = namespaces
            .iter()
            .filter_map(|ns| {
                let owner = inner.namespaces.get(ns)?;
                (owner != plugin_id).then(|| (ns.clone(), owner.clone()))
            })
            .collect();
        if taken.is_empty() {
            for ns in namespaces {
                inner.namespaces.insert(ns.clone(), plugin_id.to_string());
            }
        }
        Ok(taken)
    }

    async fn plugin_for_key(&self, hash: &str) -> StoreResult<Option<String>> {
        Ok(self.lock().keys.get(hash).cloned())
    }

    async fn release_namespaces(&self, plugin_id: &str, namespaces: &[String]) -> StoreResult<()> {
        let mut inner = self.lock();
        for ns in namespaces {
            if inner
                .namespaces
                .get(ns)
                .is_some_and(|owner| owner == plugin_id)
            {
                inner.namespaces.remove(ns);
            }
        }
        Ok(())
    }

    async fn namespace_owner(&self, namespace: &str) -> StoreResult<Option<String>> {
        Ok(self.lock().namespaces.get(namespace).cloned())
    }

    async fn put_installation(&self, installation: &InstallationRecord) -> StoreResult<()> {
        self.lock()
            .installations
            .entry(installation.tenant.clone())
            .or_default()
            .insert(installation.plugin_id.clone(), installation.clone());
        Ok(())
    }

    async fn delete_installation(&self, plugin_id: &str, tenant: &str) -> StoreResult<bool> {
        Ok(self
            .lock()
            .installations
            .get_mut(tenant)
            .is_some_and(|m| m.remove(plugin_id).is_some()))
    }

    async fn installations(&self, tenant: &str) -> StoreResult<Vec<InstallationRecord>> {
        Ok(self
            .lock()
            .installations
            .get(tenant)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn plugin_installations(&self, plugin_id: &str) -> StoreResult<Vec<InstallationRecord>> {
        let mut out: Vec<InstallationRecord> = self
            .lock()
            .installations
            .values()
            .filter_map(|m| m.get(plugin_id).cloned())
            .collect();
        out.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        Ok(out)
    }
}

#[async_trait]
impl EventLog for MemoryStore {
    async fn append(&self, append: Append) -> StoreResult<Appended> {
        let mut inner = self.lock();
        let now = Instant::now();
        inner.appends += 1;
        if inner.appends.is_multiple_of(4096) {
            inner.seen.retain(|_, expires| *expires > now);
            inner.snapshots.retain(|_, (expires, _)| *expires > now);
        }
        let key = (append.partition, append.dedupe_key);
        if inner.seen.get(&key).is_some_and(|expires| *expires > now) {
            return Ok(Appended::Duplicate);
        }
        if let Some(snapshot) = &append.snapshot {
            let skey = (append.partition, snapshot.key.clone());
            let stored = inner
                .snapshots
                .get(&skey)
                .filter(|(expires, _)| *expires > now)
                .map(|(_, v)| v);
            let current = stored.map_or(0, |v| v.version);
            if current != snapshot.expected_version {
                return Ok(Appended::Conflict(stored.cloned()));
            }
            inner.snapshots.insert(
                skey,
                (
                    now + snapshot.ttl,
                    StoredSnapshot {
                        version: current + 1,
                        fields: snapshot
                            .fields
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.clone()))
                            .collect(),
                    },
                ),
            );
        }
        let mut known = Vec::new();
        let (ids, trimmed, held) = match append.write {
            Write::Events(records) => {
                let mut ids = Vec::with_capacity(records.len());
                for r in records {
                    let mark = (append.partition, format!("evt:{}", r.event_id));
                    if inner.seen.get(&mark).is_some_and(|expires| *expires > now) {
                        known.push(r.event_id);
                        continue;
                    }
                    inner.seen.insert(mark, now + append.dedupe_ttl);
                    ids.push(inner.logs.entry(append.partition).or_default().push(r));
                }
                let (trimmed, held) = if ids.is_empty() {
                    (0, false)
                } else {
                    let bound = inner.routers.get(&append.partition).and_then(|g| {
                        match g.pending.keys().next() {
                            Some(oldest_pending) => Some(*oldest_pending),
                            None => g.delivered_upto.and_then(StreamId::successor),
                        }
                    });
                    let log = inner.logs.entry(append.partition).or_default();
                    log.trim_below(self.retention.log_maxlen, bound)
                };
                (ids, trimmed, held)
            }
            Write::Quarantine(record) => {
                // Never evicted: at a cap nothing is written (not even the mark).
                let q = inner.quarantine.entry(append.partition).or_default();
                let (maxlen, max_bytes) = (
                    self.retention.quarantine_maxlen,
                    self.retention.quarantine_max_bytes,
                );
                if maxlen > 0 && q.entries.len() as u64 >= maxlen {
                    return Err(super::StoreError::QuarantineFull(format!(
                        "partition {} is at its entries cap",
                        append.partition
                    )));
                }
                let used: u64 = q.entries.values().map(|r| r.stored_bytes()).sum();
                if max_bytes > 0 && used + record.stored_bytes() > max_bytes {
                    return Err(super::StoreError::QuarantineFull(format!(
                        "partition {} is at its bytes cap",
                        append.partition
                    )));
                }
                let id = q.push(record);
                (vec![id], 0, false)
            }
        };
        inner.seen.insert(key, now + append.dedupe_ttl);
        Ok(Appended::Written {
            ids,
            trimmed,
            known,
            held,
        })
    }

    async fn get_snapshot(&self, partition: u32, key: &str) -> StoreResult<Option<StoredSnapshot>> {
        let inner = self.lock();
        Ok(inner
            .snapshots
            .get(&(partition, key.to_string()))
            .filter(|(expires, _)| *expires > Instant::now())
            .map(|(_, v)| v.clone()))
    }

    async fn read_log(
        &self,
        partition: u32,
        after: Option<StreamId>,
        count: usize,
    ) -> StoreResult<Vec<LogEntry>> {
        let inner = self.lock();
        let Some(log) = inner.logs.get(&partition) else {
            return Ok(Vec::new());
        };
        let range = match after {
            Some(after) => log
                .entries
                .range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded)),
            None => log.entries.range(..),
        };
        Ok(log_entries(range, count))
    }

    async fn read_log_back(
        &self,
        partition: u32,
        before: Option<StreamId>,
        count: usize,
    ) -> StoreResult<Vec<LogEntry>> {
        let inner = self.lock();
        let Some(log) = inner.logs.get(&partition) else {
            return Ok(Vec::new());
        };
        let range = match before {
            Some(before) => log.entries.range(..before),
            None => log.entries.range(..),
        };
        Ok(log_entries(range.rev(), count))
    }

    async fn route_pull(
        &self,
        partition: u32,
        max: usize,
        stale: Duration,
        wait: Duration,
    ) -> StoreResult<Vec<LogEntry>> {
        let deadline = Instant::now() + wait;
        loop {
            let out = self.route_now(partition, max, stale);
            let now = Instant::now();
            if !out.is_empty() || now >= deadline {
                return Ok(out);
            }
            tokio::time::sleep((deadline - now).min(Duration::from_millis(20))).await;
        }
    }

    async fn route_bury(
        &self,
        partition: u32,
        entry: &LogEntry,
        plugin_id: &str,
        reason: &str,
    ) -> StoreResult<()> {
        let mut inner = self.lock();
        let id = inner.router_dead_ids.push(());
        inner.router_dead_ids.entries.clear();
        let dead = inner.router_dead.entry(partition).or_default();
        dead.push(RouterDeadLetter {
            id,
            entry: entry.clone(),
            plugin_id: plugin_id.to_string(),
            reason: reason.to_string(),
        });
        let cap = self.retention.dead_maxlen as usize;
        if cap > 0 && dead.len() > cap {
            let excess = dead.len() - cap;
            dead.drain(..excess);
        }
        Ok(())
    }

    async fn route_dead_letters(
        &self,
        partition: u32,
        after: Option<StreamId>,
        limit: usize,
    ) -> StoreResult<Vec<RouterDeadLetter>> {
        let inner = self.lock();
        Ok(inner
            .router_dead
            .get(&partition)
            .map(|d| {
                d.iter()
                    .filter(|l| after.is_none_or(|a| l.id > a))
                    .take(limit)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn route_progress(&self, partition: u32) -> StoreResult<RouteProgress> {
        let inner = self.lock();
        let Some(log) = inner.logs.get(&partition) else {
            return Ok(RouteProgress::default());
        };
        let group = inner.routers.get(&partition);
        let untaken = match group.and_then(|g| g.delivered_upto) {
            Some(upto) => log
                .entries
                .range((std::ops::Bound::Excluded(upto), std::ops::Bound::Unbounded))
                .count(),
            None => log.entries.len(),
        };
        Ok(RouteProgress {
            last: log.last,
            unrouted: untaken as u64 + group.map_or(0, |g| g.pending.len() as u64),
        })
    }

    async fn route_dead_remove(&self, partition: u32, ids: &[StreamId]) -> StoreResult<u64> {
        let mut inner = self.lock();
        let Some(dead) = inner.router_dead.get_mut(&partition) else {
            return Ok(0);
        };
        let before = dead.len();
        dead.retain(|d| !ids.contains(&d.id));
        Ok((before - dead.len()) as u64)
    }

    async fn route_ack(&self, partition: u32, ids: &[StreamId]) -> StoreResult<()> {
        let mut inner = self.lock();
        if let Some(group) = inner.routers.get_mut(&partition) {
            for id in ids {
                group.pending.remove(id);
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Inboxes for MemoryStore {
    async fn inbox_push(&self, plugin_id: &str, entries: &[InboxEntry]) -> StoreResult<Pushed> {
        let pushed = {
            let mut inner = self.lock();
            let inbox = inner.inboxes.entry(plugin_id.to_string()).or_default();
            let ids = entries
                .iter()
                .map(|e| inbox.entries.push(e.clone()))
                .collect();
            let trimmed = inbox.entries.trim(self.retention.inbox_maxlen);
            if trimmed > 0 {
                let Inbox {
                    entries, failures, ..
                } = inbox;
                failures.retain(|id, _| entries.entries.contains_key(id));
            }
            Pushed { ids, trimmed }
        };
        self.arrivals(plugin_id).notify_waiters();
        Ok(pushed)
    }

    async fn inbox_pull(
        &self,
        plugin_id: &str,
        options: PullOptions,
    ) -> StoreResult<Vec<Delivered>> {
        let deadline = Instant::now() + options.wait;
        let arrivals = self.arrivals(plugin_id);
        loop {
            let arrived = arrivals.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            let out = self.pull_now(plugin_id, options);
            let now = Instant::now();
            if !out.is_empty() || now >= deadline {
                return Ok(out);
            }
            // Redeliveries fall due without an arrival: look again at least every 50 ms.
            let tick = (deadline - now).min(Duration::from_millis(50));
            tokio::select! {
                _ = &mut arrived => {}
                _ = tokio::time::sleep(tick) => {}
            }
        }
    }

    async fn inbox_depth(&self, plugin_id: &str) -> StoreResult<InboxDepth> {
        let inner = self.lock();
        let Some(inbox) = inner.inboxes.get(plugin_id) else {
            return Ok(InboxDepth::default());
        };
        let in_flight = inbox.group.pending.len() as u64;
        Ok(InboxDepth {
            waiting: (inbox.entries.entries.len() as u64).saturating_sub(in_flight),
            in_flight,
            dead: inbox.dead.entries.len() as u64,
        })
    }

    async fn inbox_ack(&self, plugin_id: &str, receipts: &[StreamId]) -> StoreResult<u64> {
        let mut inner = self.lock();
        let Some(inbox) = inner.inboxes.get_mut(plugin_id) else {
            return Ok(0);
        };
        let mut acked = 0;
        for r in receipts {
            if inbox.group.pending.remove(r).is_some() {
                inbox.entries.entries.remove(r);
                inbox.failures.remove(r);
                inbox.due.remove(r);
                acked += 1;
            }
        }
        Ok(acked)
    }

    async fn inbox_nack(
        &self,
        plugin_id: &str,
        receipts: &[StreamId],
        nack: &super::Nack,
    ) -> StoreResult<u64> {
        let mut inner = self.lock();
        let Some(inbox) = inner.inboxes.get_mut(plugin_id) else {
            return Ok(0);
        };
        let due_at = Instant::now() + nack.retry_after;
        let mut nacked = 0;
        for r in receipts {
            let Some((attempt, due)) = inbox.group.pending.get_mut(r) else {
                continue;
            };
            nacked += 1;
            *due = due_at;
            if !nack.retry_after.is_zero() {
                inbox.due.insert(*r, due_at);
            }
            if nack.defer {
                // The next hand-out counts it again: as if this one never happened.
                *attempt = attempt.saturating_sub(1);
                continue;
            }
            let attempt = *attempt;
            if let Some(reason) = &nack.reason {
                let kept = inbox.failures.entry(*r).or_default();
                kept.push(super::Failure {
                    attempt,
                    reason: reason.clone(),
                    at: nack.at.clone(),
                });
                let excess = kept.len().saturating_sub(super::Failure::KEPT);
                kept.drain(..excess);
            }
            if nack.dead {
                inbox.bury(plugin_id, *r, attempt, self.retention.dead_maxlen);
            }
        }
        Ok(nacked)
    }

    async fn hold_subjects(
        &self,
        plugin_id: &str,
        items: &[(String, StreamId)],
    ) -> StoreResult<Vec<Option<Duration>>> {
        let mut inner = self.lock();
        let inbox = inner.inboxes.entry(plugin_id.to_string()).or_default();
        let now = Instant::now();
        let wait_for = |inbox: &Inbox, id: &StreamId| {
            inbox
                .due
                .get(id)
                .map_or(Duration::ZERO, |d| d.saturating_duration_since(now))
        };
        let mut out = Vec::with_capacity(items.len());
        for (subject, id) in items {
            let present = |inbox: &Inbox, h: &StreamId| inbox.entries.entries.contains_key(h);
            let mut waiter = inbox.waiters.get(subject).copied();
            if waiter.is_some_and(|w| w != *id && !present(inbox, &w)) {
                inbox.waiters.remove(subject);
                waiter = None;
            }
            let holder = inbox.holds.get(subject).copied();
            match holder {
                Some(h) if h != *id && present(inbox, &h) => {
                    if waiter.is_none_or(|w| *id < w) {
                        inbox.waiters.insert(subject.clone(), *id);
                    }
                    out.push(Some(wait_for(inbox, &h)));
                }
                _ => match waiter {
                    Some(w) if holder != Some(*id) && w != *id && w < *id => {
                        out.push(Some(wait_for(inbox, &w)))
                    }
                    _ => {
                        inbox.holds.insert(subject.clone(), *id);
                        if waiter == Some(*id) {
                            inbox.waiters.remove(subject);
                        }
                        out.push(None);
                    }
                },
            }
        }
        Ok(out)
    }

    async fn inbox_touch(
        &self,
        plugin_id: &str,
        receipts: &[StreamId],
        visibility: Duration,
    ) -> StoreResult<()> {
        let mut inner = self.lock();
        if let Some(inbox) = inner.inboxes.get_mut(plugin_id) {
            let until = Instant::now() + visibility;
            for r in receipts {
                // One handed back with a delay keeps it (as in Redis, where the delay is
                // kept apart from the visibility timeout).
                if inbox.due.contains_key(r) {
                    continue;
                }
                if let Some((_, due)) = inbox.group.pending.get_mut(r) {
                    *due = until;
                }
            }
        }
        Ok(())
    }

    async fn release_subjects(
        &self,
        plugin_id: &str,
        items: &[(String, StreamId)],
    ) -> StoreResult<()> {
        let mut inner = self.lock();
        if let Some(inbox) = inner.inboxes.get_mut(plugin_id) {
            for (subject, id) in items {
                if inbox.holds.get(subject) == Some(id) {
                    inbox.holds.remove(subject);
                }
            }
        }
        Ok(())
    }

    async fn put_push_health(
        &self,
        plugin_id: &str,
        endpoint: &str,
        health: &super::EndpointHealth,
    ) -> StoreResult<()> {
        let mut inner = self.lock();
        let inbox = inner.inboxes.entry(plugin_id.to_string()).or_default();
        inbox.health.insert(endpoint.to_string(), health.clone());
        Ok(())
    }

    async fn push_health(
        &self,
        plugin_id: &str,
    ) -> StoreResult<Vec<(String, super::EndpointHealth)>> {
        let inner = self.lock();
        Ok(inner
            .inboxes
            .get(plugin_id)
            .map(|i| {
                i.health
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn dead_letters(
        &self,
        plugin_id: &str,
        after: Option<StreamId>,
        limit: usize,
    ) -> StoreResult<Vec<DeadLetter>> {
        let inner = self.lock();
        Ok(inner
            .inboxes
            .get(plugin_id)
            .map(|i| {
                i.dead
                    .entries
                    .iter()
                    .filter(|(id, _)| after.is_none_or(|a| **id > a))
                    .take(limit)
                    .map(|(id, d)| DeadLetter {
                        id: *id,
                        ..d.clone()
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn replay_dead(&self, plugin_id: &str, ids: Option<&[StreamId]>) -> StoreResult<Pushed> {
        let pushed = {
            let mut inner = self.lock();
            let Some(inbox) = inner.inboxes.get_mut(plugin_id) else {
                return Ok(Pushed {
                    ids: Vec::new(),
                    trimmed: 0,
                });
            };
            let chosen: Vec<StreamId> = match ids {
                Some(ids) => ids
                    .iter()
                    .filter(|id| inbox.dead.entries.contains_key(id))
                    .copied()
                    .collect(),
                None => inbox.dead.entries.keys().copied().collect(),
            };
            let mut ids = Vec::new();
            for id in &chosen {
                if let Some(d) = inbox.dead.entries.remove(id) {
                    ids.push(inbox.entries.push(d.entry));
                }
            }
            let trimmed = inbox.entries.trim(self.retention.inbox_maxlen);
            Pushed { ids, trimmed }
        };
        if !pushed.ids.is_empty() {
            self.arrivals(plugin_id).notify_waiters();
        }
        Ok(pushed)
    }
}

#[async_trait]
impl super::Tallies for MemoryStore {
    async fn add_tallies(
        &self,
        now_minute: u64,
        tallies: &[super::SourceTally],
    ) -> StoreResult<()> {
        let mut inner = self.lock();
        let oldest = now_minute.saturating_sub(super::TALLY_MINUTES);
        for tally in tallies {
            let (counts, last) = inner.tallies.entry(tally.source_id.clone()).or_default();
            for (minute, outcome, n) in &tally.counts {
                *counts.entry((*minute, outcome.to_string())).or_default() += n;
            }
            counts.retain(|(minute, _), _| *minute >= oldest);
            *last = (*last).max(tally.last_ms);
        }
        Ok(())
    }

    async fn tallies(
        &self,
        source_ids: &[String],
        since_minute: u64,
    ) -> StoreResult<Vec<super::Tally>> {
        let inner = self.lock();
        Ok(source_ids
            .iter()
            .map(|id| {
                let Some((counts, last)) = inner.tallies.get(id) else {
                    return super::Tally::default();
                };
                let mut outcomes = BTreeMap::new();
                for ((minute, outcome), n) in counts {
                    if *minute >= since_minute {
                        *outcomes.entry(outcome.clone()).or_default() += n;
                    }
                }
                super::Tally {
                    outcomes,
                    last_ms: Some(*last).filter(|ms| *ms > 0),
                }
            })
            .collect())
    }
}

#[async_trait]
impl super::Pollers for MemoryStore {
    async fn poll_lease(&self, source_id: &str, holder: &str, ttl: Duration) -> StoreResult<bool> {
        let mut inner = self.lock();
        let now = Instant::now();
        let lease = inner.poll_leases.get(source_id);
        let free = lease.is_none_or(|(h, until)| *until <= now || h == holder);
        if free {
            inner
                .poll_leases
                .insert(source_id.to_string(), (holder.to_string(), now + ttl));
        }
        Ok(free)
    }

    async fn release_poll_lease(&self, source_id: &str, holder: &str) -> StoreResult<()> {
        let mut inner = self.lock();
        if inner
            .poll_leases
            .get(source_id)
            .is_some_and(|(h, _)| h == holder)
        {
            inner.poll_leases.remove(source_id);
        }
        Ok(())
    }

    async fn poll_state(&self, source_id: &str) -> StoreResult<Option<super::PollState>> {
        Ok(self.lock().poll_states.get(source_id).cloned())
    }

    async fn put_poll_state(
        &self,
        source_id: &str,
        holder: &str,
        state: &super::PollState,
    ) -> StoreResult<bool> {
        let mut inner = self.lock();
        let held = inner
            .poll_leases
            .get(source_id)
            .is_some_and(|(h, until)| h == holder && *until > Instant::now());
        if held {
            inner
                .poll_states
                .insert(source_id.to_string(), state.clone());
        }
        Ok(held)
    }
}

#[async_trait]
impl Quarantine for MemoryStore {
    async fn get_quarantine(&self, id: QuarantineId) -> StoreResult<Option<StoredQuarantine>> {
        let inner = self.lock();
        let record = inner
            .quarantine
            .get(&id.partition)
            .and_then(|q| q.entries.get(&id.entry))
            .cloned();
        Ok(record.map(|record| StoredQuarantine {
            id,
            record,
            replayed: inner.replayed.get(&id).cloned(),
        }))
    }

    async fn list_quarantine(
        &self,
        partitions: &[u32],
        before: Option<QuarantineId>,
        limit: usize,
    ) -> StoreResult<Vec<QuarantineSummary>> {
        let inner = self.lock();
        let older = |id: &QuarantineId| {
            before.is_none_or(|b| (id.entry, id.partition) < (b.entry, b.partition))
        };
        let mut all: Vec<QuarantineSummary> = partitions
            .iter()
            .filter_map(|p| inner.quarantine.get(p).map(|q| (*p, q)))
            .flat_map(|(partition, q)| {
                q.entries.iter().rev().map(move |(entry, record)| {
                    (
                        QuarantineId {
                            partition,
                            entry: *entry,
                        },
                        record,
                    )
                })
            })
            .filter(|(id, _)| older(id))
            .map(|(id, record)| {
                QuarantineSummary::of(&StoredQuarantine {
                    id,
                    record: record.clone(),
                    replayed: inner.replayed.get(&id).cloned(),
                })
            })
            .collect();
        all.sort_by_key(|q| std::cmp::Reverse((q.id.entry, q.id.partition)));
        all.truncate(limit);
        Ok(all)
    }

    async fn discard_quarantine(&self, id: QuarantineId) -> StoreResult<bool> {
        let mut inner = self.lock();
        let removed = inner
            .quarantine
            .get_mut(&id.partition)
            .and_then(|q| q.entries.remove(&id.entry))
            .is_some();
        inner.replayed.remove(&id);
        Ok(removed)
    }

    async fn mark_replayed(&self, id: QuarantineId, event_ids: &[String]) -> StoreResult<()> {
        self.lock().replayed.insert(id, event_ids.to_vec());
        Ok(())
    }
}
