//! The pushers: in every gateway process (unless `OMNIGATE_PUSH=false`), one worker per
//! push plugin takes deliveries from the plugin's inbox through the same consumer group a
//! pulling plugin uses, so processes share the work, and POSTs each to the plugin's
//! endpoint ([`crate::push::send`]). A 2xx acknowledges; anything else is handed back to
//! come again after the retry schedule's next wait, or buried as a dead letter after the
//! last attempt, with the reason kept either way.
//!
//! Order per subject (`order/123` of a shop): in a process, a subject's deliveries go one
//! after another; across processes and retries, a delivery takes its subject in the store
//! first ([`crate::store::Inboxes::hold_subjects`]) and keeps it while it is retried, so a
//! later event of the order waits (handed back untried) until the earlier one is
//! delivered or dead.

use chrono::Utc;
use omnigate_schemas::Event;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinHandle;

use crate::push::health::{Breaker, Tracker};
use crate::push::schedule;
use crate::push::send::{self, ClientOptions, Outcome, Push};
use crate::push::signature::{BadSecret, Signer};
use crate::state::AppState;
use crate::store::{Nack, PluginRecord, PullOptions, PushRecord, StoreResult, StreamId};

/// How often the set of push plugins (and their settings) is read again.
const REFRESH: Duration = Duration::from_secs(2);
/// How long one pull waits for a delivery before the worker looks at its settings again.
const PULL_WAIT: Duration = Duration::from_secs(1);
/// Deliveries a worker holds (in flight or queued behind their subject), per push allowed
/// in flight.
const QUEUED_PER_SLOT: usize = 4;
/// How soon a delivery refused its subject (its earlier delivery is out now) looks again.
const HELD_RECHECK: Duration = Duration::from_secs(1);
/// Installations' own push URLs are read again this often.
const INSTALLATION_TTL: Duration = Duration::from_secs(5);

/// Stops the pushers when told to.
pub struct PushersHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl PushersHandle {
    /// Stops taking deliveries; pushes in flight get a few seconds to finish (those that
    /// do not come back after the visibility timeout, as after a crash).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Starts the supervisor, which keeps one worker per push plugin.
pub fn spawn(state: Arc<AppState>) -> PushersHandle {
    let (stop, watch) = watch::channel(false);
    let task = tokio::spawn(supervise(state, watch));
    PushersHandle { stop, task }
}

struct WorkerHandle {
    plugin: watch::Sender<Arc<PluginRecord>>,
    task: JoinHandle<()>,
}

async fn supervise(state: Arc<AppState>, mut stop: watch::Receiver<bool>) {
    let client = match send::client(ClientOptions::from_settings(&state.settings)) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "push delivery cannot start: no HTTP client");
            return;
        }
    };
    let (worker_stop, worker_watch) = watch::channel(false);
    let mut workers: HashMap<String, WorkerHandle> = HashMap::new();
    loop {
        match push_plugins(&state).await {
            Ok(plugins) => {
                let live: HashSet<String> = plugins.iter().map(|p| p.id.clone()).collect();
                workers.retain(|id, w| {
                    let keep = live.contains(id) && !w.task.is_finished();
                    if !keep {
                        w.task.abort();
                        tracing::info!(plugin_id = %id, "push worker stopped");
                    }
                    keep
                });
                for plugin in plugins {
                    let plugin = Arc::new(plugin);
                    match workers.get(&plugin.id) {
                        Some(w) => {
                            w.plugin.send_if_modified(|current| {
                                let changed = **current != *plugin;
                                if changed {
                                    *current = plugin.clone();
                                }
                                changed
                            });
                        }
                        None => {
                            let (tx, rx) = watch::channel(plugin.clone());
                            let worker = Worker::new(state.clone(), client.clone(), rx);
                            let task = tokio::spawn(worker.run(worker_watch.clone()));
                            tracing::info!(plugin_id = %plugin.id, url = %plugin.push.as_ref().map(|p| p.url.as_str()).unwrap_or(""), "push worker started");
                            workers.insert(plugin.id.clone(), WorkerHandle { plugin: tx, task });
                        }
                    }
                }
            }
            Err(e) => {
                state
                    .metrics
                    .store_errors
                    .with_label_values(&["push"])
                    .inc();
                tracing::warn!(error = %e, "cannot read the push plugins; retrying");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(REFRESH) => {}
            _ = stop.changed() => break,
        }
    }
    let _ = worker_stop.send(true);
    for (_, w) in workers {
        let _ = w.task.await;
    }
}

async fn push_plugins(state: &AppState) -> StoreResult<Vec<PluginRecord>> {
    let mut out = Vec::new();
    for id in state.store.plugin_ids().await? {
        if let Some(p) = state.store.get_plugin(&id).await?
            && p.push.is_some()
        {
            out.push(p);
        }
    }
    Ok(out)
}

/// One delivery a worker holds.
struct Job {
    receipt: StreamId,
    attempt: u64,
    event: Event,
}

/// What order is kept per: an event's shop and subject (`order/123`).
pub fn subject_key(event: &Event) -> String {
    format!("{}\u{0}{}", event.tenant, event.subject)
}

/// What became of a subject's delivery.
enum Flow {
    /// Settled (delivered or dead): the subject's next delivery may go.
    Next,
    /// Its subject is blocked until about this long from now: what is queued behind it is
    /// handed back to come again then.
    Blocked(Duration),
}

/// Everything a worker's tasks share.
struct Shared {
    state: Arc<AppState>,
    client: reqwest::Client,
    plugin: watch::Receiver<Arc<PluginRecord>>,
    /// Deliveries queued per subject; a subject is present while a task works on it.
    queues: Mutex<HashMap<String, VecDeque<Job>>>,
    /// Receipts held (queued or in flight), kept visible while they wait.
    held: Mutex<HashSet<StreamId>>,
    /// Signalled when a held delivery is settled, so the worker may pull again.
    settled: Notify,
    in_flight: Semaphore,
    trackers: Mutex<HashMap<String, Tracker>>,
    installations: Mutex<HashMap<String, (Instant, Option<String>)>>,
    /// The signer of the last set of valid secrets (by id).
    signer: Mutex<Option<(Vec<String>, Arc<Signer>)>>,
    breaker: Breaker,
}

struct Worker {
    shared: Arc<Shared>,
}

impl Worker {
    fn new(
        state: Arc<AppState>,
        client: reqwest::Client,
        plugin: watch::Receiver<Arc<PluginRecord>>,
    ) -> Worker {
        let max_in_flight = plugin.borrow().push.as_ref().map_or(1, |p| p.max_in_flight);
        let breaker = Breaker::from_settings(&state.settings);
        Worker {
            shared: Arc::new(Shared {
                state,
                client,
                plugin,
                queues: Mutex::new(HashMap::new()),
                held: Mutex::new(HashSet::new()),
                settled: Notify::new(),
                in_flight: Semaphore::new(max_in_flight as usize),
                trackers: Mutex::new(HashMap::new()),
                installations: Mutex::new(HashMap::new()),
                signer: Mutex::new(None),
                breaker,
            }),
        }
    }

    async fn run(self, mut stop: watch::Receiver<bool>) {
        let shared = self.shared;
        let plugin_id = shared.plugin.borrow().id.clone();
        shared.load_health(&plugin_id).await;
        let visibility = shared.state.settings.inbox_visibility();
        let mut touched = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        let mut plugin_rx = shared.plugin.clone();
        let mut capacity = shared.in_flight.available_permits();
        let mut paused = false;
        loop {
            if *stop.borrow() {
                break;
            }
            while tasks.try_join_next().is_some() {}
            // Queued deliveries stay ours while they wait (not handed to another process).
            if touched.elapsed() >= visibility / 3 {
                touched = Instant::now();
                let held: Vec<StreamId> = lock(&shared.held).iter().copied().collect();
                if let Err(e) = shared
                    .state
                    .store
                    .inbox_touch(&plugin_id, &held, visibility)
                    .await
                {
                    tracing::warn!(plugin_id, error = %e, "cannot keep queued pushes visible");
                }
            }
            let plugin = shared.plugin.borrow().clone();
            let Some(push) = plugin.push.as_ref() else {
                break;
            };
            if paused && push.paused_at.is_none() {
                // Resumed: the endpoints' health was reset; forget what this process saw.
                lock(&shared.trackers).clear();
                shared.load_health(&plugin_id).await;
            }
            paused = push.paused_at.is_some();
            let wanted = push.max_in_flight as usize;
            if wanted > capacity {
                shared.in_flight.add_permits(wanted - capacity);
                capacity = wanted;
            } else if wanted < capacity {
                capacity -= shared.in_flight.forget_permits(capacity - wanted);
            }
            let limit = push.max_in_flight as usize * QUEUED_PER_SLOT;
            let room = limit.saturating_sub(lock(&shared.held).len()).min(100);
            if push.paused_at.is_some() || room == 0 {
                // Paused, or full: wait for a change, a settlement or the next look.
                tokio::select! {
                    _ = plugin_rx.changed() => {}
                    _ = shared.settled.notified() => {}
                    _ = tokio::time::sleep(PULL_WAIT) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            let options = PullOptions {
                max: room,
                wait: PULL_WAIT,
                visibility,
                max_attempts: schedule::attempts(&shared.state.settings.push_retry_schedule),
            };
            let pulled = tokio::select! {
                r = shared.state.store.inbox_pull(&plugin_id, options) => r,
                _ = stop.changed() => break,
            };
            let delivered = match pulled {
                Ok(d) => d,
                Err(e) => {
                    shared
                        .state
                        .metrics
                        .store_errors
                        .with_label_values(&["push"])
                        .inc();
                    tracing::warn!(plugin_id, error = %e, "push worker cannot read the inbox; retrying");
                    tokio::time::sleep(PULL_WAIT).await;
                    continue;
                }
            };
            if delivered.is_empty() {
                continue;
            }
            let items = delivered
                .into_iter()
                .map(|d| (d.receipt, d.attempt, d.entry))
                .collect();
            let presented = match crate::inbox::present(&shared.state, &plugin, items).await {
                Ok(p) => p,
                Err(e) => {
                    // They come back after the visibility timeout.
                    tracing::warn!(plugin_id, error = %e, "cannot prepare deliveries to push");
                    tokio::time::sleep(PULL_WAIT).await;
                    continue;
                }
            };
            if !presented.hidden.is_empty()
                && let Err(e) = shared
                    .state
                    .store
                    .inbox_ack(&plugin_id, &presented.hidden)
                    .await
            {
                tracing::warn!(plugin_id, error = %e, "cannot settle deliveries of shops the plugin left");
            }
            for (receipt, attempt, event) in presented.shown {
                let job = Job {
                    receipt,
                    attempt,
                    event,
                };
                let subject = subject_key(&job.event);
                lock(&shared.held).insert(receipt);
                let mut queues = lock(&shared.queues);
                match queues.get_mut(&subject) {
                    Some(queue) => queue.push_back(job),
                    None => {
                        queues.insert(subject.clone(), VecDeque::from([job]));
                        tasks.spawn(shared.clone().work_subject(subject));
                    }
                }
            }
        }
        // Pushes in flight get a moment to finish; one cut off comes back after the
        // visibility timeout (as after a crash).
        let grace = Duration::from_millis(shared.state.settings.push_timeout_ms)
            .min(Duration::from_secs(5));
        let _ =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        tasks.abort_all();
        // What was queued and never tried goes back at once, costing no attempt.
        let untried: Vec<StreamId> = lock(&shared.queues)
            .drain()
            .flat_map(|(_, q)| q.into_iter().map(|j| j.receipt))
            .collect();
        shared.hand_back(&untried, Duration::ZERO, None, true).await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    async fn load_health(&self, plugin_id: &str) {
        match self.state.store.push_health(plugin_id).await {
            Ok(health) => {
                let mut trackers = lock(&self.trackers);
                for (url, h) in health {
                    trackers.insert(url, Tracker::from_store(h));
                }
            }
            Err(e) => tracing::warn!(plugin_id, error = %e, "cannot read push endpoint health"),
        }
    }

    /// Works through one subject's queue, one delivery after another, until it is empty or
    /// the subject is blocked (then the rest is handed back to come again later).
    async fn work_subject(self: Arc<Self>, subject: String) {
        loop {
            let job = {
                let mut queues = lock(&self.queues);
                match queues.get_mut(&subject).and_then(VecDeque::pop_front) {
                    Some(job) => job,
                    None => {
                        queues.remove(&subject);
                        return;
                    }
                }
            };
            let flow = self.deliver(&subject, &job).await;
            if let Flow::Blocked(wait) = flow {
                let rest: Vec<Job> = {
                    let mut queues = lock(&self.queues);
                    queues.remove(&subject).map(Vec::from).unwrap_or_default()
                };
                let receipts: Vec<StreamId> = rest.iter().map(|j| j.receipt).collect();
                // The earliest of them is recorded as waiting for the subject, so nothing
                // pulled meanwhile (here or in another process) overtakes them.
                if let Some(first) = receipts.first() {
                    let plugin_id = self.plugin.borrow().id.clone();
                    if let Err(e) = self
                        .state
                        .store
                        .hold_subjects(&plugin_id, &[(subject.clone(), *first)])
                        .await
                    {
                        tracing::warn!(plugin_id, error = %e, "cannot record the next delivery of a subject");
                    }
                }
                // Just after the one in their way, so it goes first.
                self.hand_back(&receipts, wait + Duration::from_millis(50), None, true)
                    .await;
                return;
            }
        }
    }

    /// Hands deliveries back: deferred (`defer`, no attempt counted) or failed with a
    /// reason. They are no longer held by this worker.
    async fn hand_back(
        &self,
        receipts: &[StreamId],
        retry_after: Duration,
        reason: Option<String>,
        defer: bool,
    ) {
        if receipts.is_empty() {
            return;
        }
        let plugin_id = self.plugin.borrow().id.clone();
        let nack = Nack {
            retry_after,
            visibility: self.state.settings.inbox_visibility(),
            reason,
            at: crate::normalize::time::format(Utc::now()),
            dead: false,
            defer,
        };
        if let Err(e) = self
            .state
            .store
            .inbox_nack(&plugin_id, receipts, &nack)
            .await
        {
            // They come back after the visibility timeout instead.
            tracing::warn!(plugin_id, error = %e, "cannot hand pushes back");
        }
        self.forget(receipts);
    }

    fn forget(&self, receipts: &[StreamId]) {
        let mut held = lock(&self.held);
        for r in receipts {
            held.remove(r);
        }
        drop(held);
        self.settled.notify_one();
    }

    /// Where `tenant`'s events go: its installation's own URL, else the plugin's; `None`
    /// when that cannot be read now.
    async fn endpoint(&self, plugin: &PluginRecord, tenant: &str) -> Option<String> {
        let default = plugin.push.as_ref()?.url.clone();
        if let Some((at, url)) = lock(&self.installations).get(tenant)
            && at.elapsed() < INSTALLATION_TTL
        {
            return Some(url.clone().unwrap_or(default));
        }
        let own = match self.state.store.installations(tenant).await {
            Ok(all) => all
                .into_iter()
                .find(|i| i.plugin_id == plugin.id)
                .and_then(|i| i.push_url),
            Err(e) => {
                // Never the default URL instead: the shop's events may not belong there.
                tracing::warn!(plugin_id = %plugin.id, tenant, error = %e, "cannot read the installation's push URL");
                return None;
            }
        };
        lock(&self.installations).insert(tenant.to_string(), (Instant::now(), own.clone()));
        Some(own.unwrap_or(default))
    }

    async fn deliver(&self, subject: &str, job: &Job) -> Flow {
        let plugin = self.plugin.borrow().clone();
        let state = &self.state;
        let Some(push) = plugin.push.as_ref() else {
            self.hand_back(&[job.receipt], Duration::ZERO, None, true)
                .await;
            return Flow::Blocked(Duration::ZERO);
        };
        if push.paused_at.is_some() {
            self.hand_back(&[job.receipt], REFRESH, None, true).await;
            return Flow::Blocked(REFRESH);
        }
        let hold = [(subject.to_string(), job.receipt)];
        match state.store.hold_subjects(&plugin.id, &hold).await {
            Ok(answers) => {
                if let Some(Some(wait)) = answers.first() {
                    let wait = (*wait).max(HELD_RECHECK);
                    tracing::debug!(plugin_id = %plugin.id, event_id = %job.event.id, ?wait, "held behind an earlier event of its subject");
                    self.hand_back(&[job.receipt], wait, None, true).await;
                    return Flow::Blocked(wait);
                }
            }
            Err(e) => {
                tracing::warn!(plugin_id = %plugin.id, error = %e, "cannot take the subject; trying later");
                self.hand_back(&[job.receipt], HELD_RECHECK, None, true)
                    .await;
                return Flow::Blocked(HELD_RECHECK);
            }
        }
        let Some(url) = self.endpoint(&plugin, &job.event.tenant).await else {
            self.hand_back(&[job.receipt], REFRESH, None, true).await;
            return Flow::Blocked(REFRESH);
        };
        // Health and the breaker follow the gateway's clock; the signature's timestamp is
        // the wall clock receivers check it against.
        let now = state.now();
        let may_send = lock(&self.trackers)
            .entry(url.clone())
            .or_default()
            .may_send(&self.breaker, now);
        if !may_send {
            // Deferrals cost no attempt, so without this an endpoint down for a week would
            // keep its events waiting for a week: past the schedule's span, never tried,
            // it is a dead letter like one whose attempts ran out. Its age is from the inbox
            // entry (a replay starts afresh), by the wall clock the entry id was made with.
            // Only when the endpoint too has been failing that long: a delivery queued
            // long before a short outage still gets its tries.
            let span = schedule::span(&state.settings.push_retry_schedule);
            let age = Duration::from_millis(wall_ms().saturating_sub(job.receipt.ms));
            let (failing_since, last) = lock(&self.trackers)
                .get(&url)
                .map(|t| (t.health.failing_since, t.health.last_error.clone()))
                .unwrap_or_default();
            let failing_for = failing_since
                .and_then(|since| (now - since).to_std().ok())
                .unwrap_or_default();
            if age.min(failing_for) > span {
                let since = failing_since.map(crate::normalize::time::format);
                let (since, last) = (since.unwrap_or_default(), last.unwrap_or_default());
                tracing::warn!(plugin_id = %plugin.id, event_id = %job.event.id, ?age, "not pushed within the retry schedule's span: dead letter");
                let reason = format!(
                    "{url}: not delivered within {}: the endpoint has been failing since {since} (last error: {last})",
                    schedule::describe(span)
                );
                if !self.bury(&plugin.id, job, reason, now).await {
                    return Flow::Blocked(HELD_RECHECK);
                }
                self.release(&plugin.id, &hold).await;
                self.forget(&[job.receipt]);
                return Flow::Next;
            }
            // The endpoint is failing: deliveries wait for its next probe (or the end of
            // their span), untried, each keeping its subject so nothing later of it goes
            // first.
            let wait = span
                .saturating_sub(age.min(failing_for))
                .max(HELD_RECHECK)
                .min(self.breaker.probe_interval);
            self.hand_back(&[job.receipt], wait, None, true).await;
            return Flow::Blocked(wait);
        }
        let signer = match self.signer(push, now) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(plugin_id = %plugin.id, error = %e, "the plugin's signing secret is unusable; rotate it");
                self.release(&plugin.id, &hold).await;
                self.hand_back(&[job.receipt], REFRESH, None, true).await;
                return Flow::Blocked(REFRESH);
            }
        };
        let body = match serde_json::to_vec(&job.event) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(plugin_id = %plugin.id, error = %e, "an event could not be serialised");
                self.release(&plugin.id, &hold).await;
                self.hand_back(&[job.receipt], REFRESH, None, true).await;
                return Flow::Blocked(REFRESH);
            }
        };
        let outcome = {
            let Ok(_slot) = self.in_flight.acquire().await else {
                // Closed: the worker is stopping; it comes back after the visibility timeout.
                return Flow::Blocked(Duration::ZERO);
            };
            send::send(
                &self.client,
                &signer,
                &Push {
                    url: &url,
                    id: &job.event.id,
                    event_type: &job.event.event_type,
                    attempt: job.attempt,
                    body: &body,
                    timestamp: Utc::now().timestamp(),
                },
                state.settings.push_allow_private,
            )
            .await
        };
        let (outcome, took) = outcome;
        state.metrics.push.seconds.observe(took.as_secs_f64());
        let now = state.now();
        match outcome {
            Outcome::Delivered { status } => {
                state.metrics.push.delivered.inc();
                tracing::debug!(plugin_id = %plugin.id, event_id = %job.event.id, status, ?took, "pushed");
                if let Err(e) = state.store.inbox_ack(&plugin.id, &[job.receipt]).await {
                    // Pushed again after the visibility timeout: at least once.
                    tracing::warn!(plugin_id = %plugin.id, error = %e, "cannot acknowledge a delivered push");
                }
                self.release(&plugin.id, &hold).await;
                self.forget(&[job.receipt]);
                self.note(&plugin.id, &url, |t| t.success(now)).await;
                Flow::Next
            }
            Outcome::Refused { status, error } => {
                // The endpoint answered as its code meant to: it is healthy.
                self.note(&plugin.id, &url, |t| t.success(now)).await;
                tracing::warn!(plugin_id = %plugin.id, event_id = %job.event.id, attempt = job.attempt, status, %error, "the endpoint refused the event for good: dead letter");
                if !self
                    .bury(&plugin.id, job, format!("{url}: {error}"), now)
                    .await
                {
                    return Flow::Blocked(HELD_RECHECK);
                }
                self.release(&plugin.id, &hold).await;
                self.forget(&[job.receipt]);
                Flow::Next
            }
            Outcome::Failed {
                error, retry_after, ..
            } => {
                self.note(&plugin.id, &url, |t| t.failure(error.clone(), now))
                    .await;
                let reason = format!("{url}: {error}");
                let schedule = &state.settings.push_retry_schedule;
                match schedule::next_wait(schedule, job.attempt, retry_after) {
                    Some(wait) => {
                        state.metrics.push.retried.inc();
                        tracing::info!(plugin_id = %plugin.id, event_id = %job.event.id, attempt = job.attempt, retry_in = ?wait, %error, "push failed; will retry");
                        // It keeps its subject: what comes after it waits for it.
                        self.hand_back(&[job.receipt], wait, Some(reason), false)
                            .await;
                        Flow::Blocked(wait)
                    }
                    None => {
                        tracing::warn!(plugin_id = %plugin.id, event_id = %job.event.id, attempt = job.attempt, %error, "push failed its last attempt: dead letter");
                        if !self.bury(&plugin.id, job, reason, now).await {
                            return Flow::Blocked(HELD_RECHECK);
                        }
                        self.release(&plugin.id, &hold).await;
                        self.forget(&[job.receipt]);
                        Flow::Next
                    }
                }
            }
        }
    }

    /// Moves a delivery to the dead letters, with the reason of its last attempt. False when
    /// the store refused: the delivery keeps its subject and comes back after the visibility
    /// timeout, to be judged again.
    async fn bury(
        &self,
        plugin_id: &str,
        job: &Job,
        reason: String,
        now: chrono::DateTime<Utc>,
    ) -> bool {
        let nack = Nack {
            retry_after: Duration::ZERO,
            visibility: self.state.settings.inbox_visibility(),
            reason: Some(reason),
            at: crate::normalize::time::format(now),
            dead: true,
            defer: false,
        };
        match self
            .state
            .store
            .inbox_nack(plugin_id, &[job.receipt], &nack)
            .await
        {
            Ok(_) => {
                self.state.metrics.push.dead.inc();
                true
            }
            Err(e) => {
                tracing::warn!(plugin_id, error = %e, "cannot bury a push; it comes back");
                // Not kept visible by this worker: back after the visibility timeout.
                self.forget(&[job.receipt]);
                false
            }
        }
    }

    /// The signer of the secrets valid at `now`, decoded once per set of secrets rather
    /// than once per push.
    fn signer(
        &self,
        push: &PushRecord,
        now: chrono::DateTime<Utc>,
    ) -> Result<Arc<Signer>, BadSecret> {
        let valid = push.signing_secrets(now);
        let ids: Vec<String> = valid.iter().map(|s| s.id.clone()).collect();
        let mut cached = lock(&self.signer);
        if let Some((cached_ids, signer)) = cached.as_ref()
            && *cached_ids == ids
        {
            return Ok(signer.clone());
        }
        let secrets: Vec<&str> = valid.iter().map(|s| s.value.expose()).collect();
        let signer = Arc::new(Signer::new(&secrets)?);
        *cached = Some((ids, signer.clone()));
        Ok(signer)
    }

    async fn release(&self, plugin_id: &str, hold: &[(String, StreamId)]) {
        if let Err(e) = self.state.store.release_subjects(plugin_id, hold).await {
            // The hold lapses when its delivery leaves the inbox.
            tracing::warn!(plugin_id, error = %e, "cannot release a subject");
        }
    }

    /// Records an outcome for `url`, telling the store when the tracker says so.
    async fn note(&self, plugin_id: &str, url: &str, f: impl FnOnce(&mut Tracker) -> bool) {
        let health = {
            let mut trackers = lock(&self.trackers);
            let tracker = trackers.entry(url.to_string()).or_default();
            f(tracker).then(|| tracker.health.clone())
        };
        if let Some(health) = health
            && let Err(e) = self
                .state
                .store
                .put_push_health(plugin_id, url, &health)
                .await
        {
            tracing::warn!(plugin_id, error = %e, "cannot record push endpoint health");
        }
    }
}

/// Milliseconds since the epoch by the wall clock, as stream entry ids count them.
fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
