//! The pollers: every gateway process (unless `OMNIGATE_POLL=false`) looks for poll
//! sources (Allegro, Prom.ua, Rozetka) and polls each one it can take the lease of, so exactly one process
//! polls a source at a time; a process that dies stops renewing its lease and another
//! takes the source over within the lease's lifetime. A poller reads changes from the
//! source's cursor ([`crate::poll`]), writes each through the webhook pipeline (dedupe,
//! log, router, inboxes, quarantine, spool), and saves the cursor after the changes it
//! covers are written: a page read again after a crash adds nothing, as every change is
//! de-duplicated by its provider id. The state (cursor, progress, tokens) is written only
//! while the lease is held.

use chrono::Utc;
use omnigate_schemas::api::{PollCredentials, PollProgress, Provider};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::headers::Headers;
use crate::ingest::{Origin, pipeline};
use crate::poll::allegro::{self, Allegro};
use crate::poll::prom::{self, Prom};
use crate::poll::rozetka::{self, Rozetka};
use crate::poll::{Change, PollError, client};
use crate::providers::{Credentials, POLL_CHANGE_HEADER, POLL_TOPIC_HEADER};
use crate::state::AppState;
use crate::store::{PollState, SourceRecord};

/// How often a poller looks whether to poll (its lease is renewed more often, see
/// [`renew_every`]).
const RENEW: Duration = Duration::from_secs(5);
/// How often the set of poll sources is read again.
const SCAN: Duration = Duration::from_secs(2);
/// The wait after a failure other than a rate limit.
const BACKOFF: Duration = Duration::from_secs(30);
/// The wait after the provider refused the credentials, unless the source changes.
const CREDENTIALS_BACKOFF: Duration = Duration::from_secs(900);
/// Saved this often within a page, so a crash re-reads little.
const SAVE_EVERY: usize = 20;
/// The poll interval when the source sets none.
pub const DEFAULT_INTERVAL_SECS: u64 = 30;

/// Stops the pollers when told to.
pub struct PollersHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl PollersHandle {
    /// Stops polling: each poller finishes the change it is writing and gives its lease up.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Stops at once, as a killed process would: nothing is finished or given back, and
    /// the leases lapse (tests of a takeover).
    pub async fn abort(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// How often a held lease is renewed: a third of its lifetime.
fn renew_every(lease: Duration) -> Duration {
    (lease / 3).max(Duration::from_millis(100))
}

/// Starts the supervisor, which runs a poller for each poll source this process holds.
pub fn spawn(state: Arc<AppState>) -> PollersHandle {
    let (stop, watch) = watch::channel(false);
    let task = tokio::spawn(supervise(state, watch));
    PollersHandle { stop, task }
}

/// Whether `source` is read by a poller.
pub fn is_polled(source: &SourceRecord) -> bool {
    crate::providers::of(source.provider).credentials == Credentials::Api
}

async fn supervise(state: Arc<AppState>, mut stop: watch::Receiver<bool>) {
    let http = match client() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "pollers cannot start: no HTTP client");
            return;
        }
    };
    let holder = format!("{}:{:08x}", std::process::id(), rand::random::<u32>());
    let lease = Duration::from_millis(state.settings.poll_lease_ms);
    let (poller_stop, poller_watch) = watch::channel(false);
    // Owned here: aborting the supervisor aborts every poller with it.
    let mut pollers: tokio::task::JoinSet<String> = tokio::task::JoinSet::new();
    // Which source each task polls, also to free it when the task panicked.
    let mut running: HashMap<tokio::task::Id, String> = HashMap::new();
    // A source's provider never changes: one read says whether it is polled.
    let mut pushed: std::collections::HashSet<String> = Default::default();
    loop {
        while let Some(done) = pollers.try_join_next_with_id() {
            let task = match done {
                Ok((task, _)) => task,
                Err(e) => {
                    tracing::error!(error = %e, "a poller failed; its source is polled again");
                    e.id()
                }
            };
            running.remove(&task);
        }
        match state.store.source_ids().await {
            Ok(ids) => {
                pushed.retain(|id| ids.binary_search(id).is_ok());
                for id in ids {
                    if running.values().any(|r| *r == id) || pushed.contains(&id) {
                        continue;
                    }
                    let Ok(Some(source)) = state.store.get_source(&id).await else {
                        continue;
                    };
                    if !is_polled(&source) {
                        pushed.insert(id);
                        continue;
                    }
                    match state.store.poll_lease(&id, &holder, lease).await {
                        Ok(true) => {
                            tracing::info!(source_id = %id, provider = %source.provider, "poller started");
                            let task = pollers.spawn(run(
                                state.clone(),
                                http.clone(),
                                id.clone(),
                                holder.clone(),
                                poller_watch.clone(),
                            ));
                            running.insert(task.id(), id);
                        }
                        Ok(false) => {}
                        Err(e) => {
                            tracing::warn!(source_id = %id, error = %e, "cannot take a poll lease")
                        }
                    }
                }
            }
            Err(e) => {
                state
                    .metrics
                    .store_errors
                    .with_label_values(&["poll"])
                    .inc();
                tracing::warn!(error = %e, "cannot list the sources to poll; retrying");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(SCAN) => {}
            _ = stop.changed() => break,
        }
    }
    let _ = poller_stop.send(true);
    while pollers.join_next().await.is_some() {}
}

/// Polls one source while this process holds its lease; the lease is renewed alongside a
/// poll under way (a slow provider does not cost it), and a poll is dropped the moment the
/// lease is lost (what it wrote stays; its state write is refused).
async fn run(
    state: Arc<AppState>,
    http: reqwest::Client,
    source_id: String,
    holder: String,
    mut stop: watch::Receiver<bool>,
) -> String {
    let lease = Duration::from_millis(state.settings.poll_lease_ms);
    let renew = renew_every(lease);
    let mut next = Instant::now();
    // The state is read once, when the lease is taken, and then kept here: a refreshed
    // token whose save failed is not lost by reading the old one again.
    let mut kept: Option<PollState> = None;
    // A source changed by the operator (new credentials) is polled at once.
    let mut seen_update = None;
    'polling: loop {
        if *stop.borrow() {
            break;
        }
        if !keep_lease(&state, &source_id, &holder, lease).await {
            return source_id;
        }
        let source = match state.store.get_source(&source_id).await {
            Ok(Some(source)) if is_polled(&source) => source,
            Ok(_) => {
                tracing::info!(source_id, "source deleted; poller stopped");
                break 'polling;
            }
            Err(e) => {
                tracing::warn!(source_id, error = %e, "cannot read the source");
                next = next.max(Instant::now() + RENEW);
                tokio::select! {
                    _ = tokio::time::sleep(RENEW.min(renew)) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
        };
        if seen_update.is_some_and(|at| at != source.updated_at) {
            next = Instant::now();
        }
        seen_update = Some(source.updated_at);
        if Instant::now() >= next {
            if kept.is_none() {
                match state.store.poll_state(&source_id).await {
                    Ok(st) => kept = Some(st.unwrap_or_default()),
                    Err(e) => tracing::warn!(source_id, error = %e, "cannot read the poll state"),
                }
            }
            if let Some(st) = kept.as_mut() {
                let poll = poll_once(&state, &http, &source, &holder, st);
                tokio::pin!(poll);
                let wait = loop {
                    tokio::select! {
                        wait = &mut poll => break Some(wait),
                        _ = tokio::time::sleep(renew) => {
                            if !keep_lease(&state, &source_id, &holder, lease).await {
                                return source_id;
                            }
                        }
                        // Stopping: what the poll wrote stays, what it read since its last
                        // save is read again by the next holder and adds nothing.
                        _ = stop.changed() => break None,
                    }
                };
                match wait {
                    Some(wait) => next = Instant::now() + wait,
                    None => break 'polling,
                }
            } else {
                next = Instant::now() + RENEW;
            }
        }
        let nap = next
            .saturating_duration_since(Instant::now())
            .min(RENEW)
            .min(renew);
        tokio::select! {
            _ = tokio::time::sleep(nap) => {}
            _ = stop.changed() => {}
        }
    }
    if let Err(e) = state.store.release_poll_lease(&source_id, &holder).await {
        tracing::warn!(source_id, error = %e, "cannot give the poll lease up; it lapses");
    }
    source_id
}

/// Renews the lease; false when another process has it now.
async fn keep_lease(state: &AppState, source_id: &str, holder: &str, lease: Duration) -> bool {
    match state.store.poll_lease(source_id, holder, lease).await {
        Ok(true) => true,
        Ok(false) => {
            tracing::warn!(source_id, "poll lease lost to another process; stopping");
            false
        }
        Err(e) => {
            // The store is down: keep going; the state write is fenced anyway.
            tracing::warn!(source_id, error = %e, "cannot renew the poll lease");
            true
        }
    }
}

/// One poll: a page of changes written, the state saved. The wait until the next one.
async fn poll_once(
    state: &AppState,
    http: &reqwest::Client,
    source: &SourceRecord,
    holder: &str,
    st: &mut PollState,
) -> Duration {
    let interval = Duration::from_secs(
        source
            .options
            .poll_interval_secs
            .unwrap_or(DEFAULT_INTERVAL_SECS),
    );
    st.holder = Some(holder.to_string());
    let wait = match poll_page(state, http, source, holder, st).await {
        Ok(more) => {
            // The last error stays, with its time, for the operator to compare.
            st.last_success_at = Some(Utc::now());
            st.behind = more;
            if more { Duration::ZERO } else { interval }
        }
        Err(e) => {
            let wait = match &e {
                PollError::RateLimited(wait) => *wait,
                // Retrying cannot fix a refused token: wait for the operator's new
                // credentials (a change of the source is polled at once).
                PollError::Credentials(_) => CREDENTIALS_BACKOFF,
                _ => BACKOFF.max(interval),
            };
            tracing::warn!(source_id = %source.id, error = %e, retry_in = ?wait, "poll failed");
            st.last_error = Some(e.to_string());
            st.last_error_at = Some(Utc::now());
            wait
        }
    };
    st.polled_at = Some(Utc::now());
    save(state, source, holder, st).await;
    wait
}

async fn save(state: &AppState, source: &SourceRecord, holder: &str, st: &PollState) -> bool {
    match state.store.put_poll_state(&source.id, holder, st).await {
        Ok(true) => true,
        Ok(false) => {
            tracing::warn!(source_id = %source.id, "the poll lease lapsed: state not saved");
            false
        }
        Err(e) => {
            tracing::warn!(source_id = %source.id, error = %e, "cannot save the poll state");
            false
        }
    }
}

/// Reads and writes one page; true when more are waiting.
async fn poll_page(
    state: &AppState,
    http: &reqwest::Client,
    source: &SourceRecord,
    holder: &str,
    st: &mut PollState,
) -> Result<bool, PollError> {
    let credentials = credentials(source)?;
    let now = Utc::now();
    let start_from = match source.options.start_from.as_deref() {
        Some(t) => Some(crate::normalize::time::rfc3339(t).ok_or_else(|| {
            PollError::Config(format!("options.start_from {t:?} is not an RFC 3339 time"))
        })?),
        None => None,
    };
    let (api_base, token_url) = urls(source, state.settings.poll_allow_http)?;
    let mut written = 0;
    let cursor = match source.provider {
        Provider::Allegro => {
            let api = Allegro {
                http,
                api_base: &api_base,
                token_url: &token_url,
                credentials: &credentials,
            };
            // A refresh spends the refresh token: only the lease's holder may, or two
            // processes would each keep a different one.
            if !state
                .store
                .poll_lease(
                    &source.id,
                    holder,
                    Duration::from_millis(state.settings.poll_lease_ms),
                )
                .await
                .map_err(|e| PollError::Provider(format!("cannot renew the poll lease: {e}")))?
            {
                return Err(PollError::Provider("the poll lease was lost".into()));
            }
            if api.ensure_token(st, now).await? && !save(state, source, holder, st).await {
                // The rotated refresh token must be kept before it is used.
                return Err(PollError::Provider(
                    "the refreshed token could not be saved; retrying".into(),
                ));
            }
            let mut refreshed = false;
            let page = api.entries(st, start_from, now, &mut refreshed).await;
            keep_token(state, source, holder, st, &mut refreshed).await?;
            let page = page?;
            let mut forms = HashMap::new();
            // Each entry's form is read just before it is written, so a crash loses at
            // most what was read since the last save, and that is read again.
            for entry in &page.changes {
                let change = api.change(st, entry, &mut forms, now, &mut refreshed).await;
                keep_token(state, source, holder, st, &mut refreshed).await?;
                let change = change?;
                write(state, source, &change).await?;
                st.cursor = Some(change.cursor.clone())
                    .filter(|c| !c.is_empty())
                    .or(st.cursor.take());
                st.changes += 1;
                if let Some(at) = change.occurred_at {
                    st.last_change_at = Some(st.last_change_at.map_or(at, |l| l.max(at)));
                }
                written += 1;
                if written % SAVE_EVERY == 0 {
                    save(state, source, holder, st).await;
                }
            }
            (page.cursor, page.more)
        }
        Provider::Prom => {
            let api = Prom {
                http,
                api_base: &api_base,
                credentials: &credentials,
            };
            let page = api.changes(st.cursor.as_deref(), start_from, now).await?;
            for change in &page.changes {
                write(state, source, change).await?;
                st.changes += 1;
                written += 1;
                if written % SAVE_EVERY == 0 {
                    save(state, source, holder, st).await;
                }
            }
            // Orders carry no modification time: the lag is to the window read.
            st.last_change_at = Some(now);
            (page.cursor, page.more)
        }
        Provider::Rozetka => {
            let api = Rozetka {
                http,
                api_base: &api_base,
                credentials: &credentials,
                marker: source
                    .secrets
                    .first()
                    .map(|s| crate::normalize::time::format(s.created_at)),
            };
            // The session it may have made is kept with the cursor, sealed.
            let page = api.changes(st, start_from, now).await?;
            for change in &page.changes {
                write(state, source, change).await?;
                st.changes += 1;
                if let Some(at) = change.occurred_at {
                    st.last_change_at = Some(st.last_change_at.map_or(at, |l| l.max(at)));
                }
                written += 1;
            }
            (page.cursor, page.more)
        }
        other => return Err(PollError::Config(format!("{other} sources are not polled"))),
    };
    let (cursor, more) = cursor;
    if let Some(cursor) = cursor {
        st.cursor = Some(cursor);
    }
    if written > 0 {
        tracing::info!(source_id = %source.id, changes = written, more, "polled");
    }
    state.metrics.poll_changes.inc_by(written as u64);
    Ok(more)
}

/// Saves the state at once when a refresh rotated the token (the old refresh token no
/// longer works: losing the new one would lock the source out).
async fn keep_token(
    state: &AppState,
    source: &SourceRecord,
    holder: &str,
    st: &PollState,
    refreshed: &mut bool,
) -> Result<(), PollError> {
    if std::mem::take(refreshed) && !save(state, source, holder, st).await {
        return Err(PollError::Provider(
            "the refreshed token could not be saved; retrying".into(),
        ));
    }
    Ok(())
}
/// One change through the webhook pipeline: dedupe on its provider id, log, quarantine.
async fn write(state: &AppState, source: &SourceRecord, change: &Change) -> Result<(), PollError> {
    let mut headers = Headers::new();
    headers.insert(POLL_TOPIC_HEADER, &change.topic);
    headers.insert(POLL_CHANGE_HEADER, &change.id);
    let origin = Origin {
        source_id: &source.id,
        tenant: &source.tenant,
        provider: crate::providers::of(source.provider),
        shop_locale: source.options.locale.as_deref(),
    };
    // No spool: a change the store cannot take now is read again from the cursor, in
    // order, rather than parked in a local file the cursor would move past.
    pipeline(state, &origin, &headers, &change.body, state.now(), None)
        .await
        .map(|_| ())
        .map_err(|e| PollError::Provider(format!("change {} could not be written: {e}", change.id)))
}

/// The source's API credentials (its one stored secret).
fn credentials(source: &SourceRecord) -> Result<PollCredentials, PollError> {
    let secret = source
        .secrets
        .first()
        .ok_or_else(|| PollError::Config("the source has no credentials".into()))?;
    serde_json::from_str(secret.value.expose())
        .map_err(|_| PollError::Config("the source's credentials cannot be read".into()))
}

/// The API base and token URL the source uses.
fn urls(source: &SourceRecord, allow_http: bool) -> Result<(String, String), PollError> {
    let (api, token) = match source.provider {
        Provider::Allegro => (allegro::API_BASE, allegro::TOKEN_URL),
        // No token endpoint: the API token is given once.
        Provider::Prom => (prom::API_BASE, prom::API_BASE),
        // The session is made at the API's own `/sites`.
        Provider::Rozetka => (rozetka::API_BASE, rozetka::API_BASE),
        other => return Err(PollError::Config(format!("{other} sources are not polled"))),
    };
    let api = source
        .options
        .api_base
        .clone()
        .unwrap_or_else(|| api.into());
    let token = source
        .options
        .token_url
        .clone()
        .unwrap_or_else(|| token.into());
    for url in [&api, &token] {
        crate::poll::check_url(url, allow_http).map_err(PollError::Config)?;
    }
    Ok((api, token))
}

/// What `GET /v1/sources/{id}` shows of a poll source.
pub fn progress(st: Option<&PollState>, interval_secs: u64) -> PollProgress {
    let Some(st) = st else {
        return PollProgress::default();
    };
    let now = Utc::now();
    let fresh = Duration::from_secs(interval_secs.max(DEFAULT_INTERVAL_SECS) * 3 + 60);
    PollProgress {
        polling: st
            .polled_at
            .and_then(|at| (now - at).to_std().ok())
            .is_some_and(|ago| ago < fresh),
        cursor: st.cursor.clone(),
        last_success_at: st.last_success_at.map(crate::normalize::time::format),
        last_error: st.last_error.clone(),
        last_error_at: st.last_error_at.map(crate::normalize::time::format),
        // Caught up: no lag, however long ago the last change happened.
        lag_seconds: match st.behind {
            true => st
                .last_change_at
                .and_then(|at| (now - at).to_std().ok())
                .map(|d| d.as_secs()),
            false => st.last_success_at.map(|_| 0),
        },
        changes: st.changes,
    }
}
