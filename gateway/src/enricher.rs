//! The enricher: reads back the resources thin events name and writes their full events.
//! The router copies every thin event (`enrichment: "pending"`) of a source that has API
//! credentials into the enricher's own inbox ([`INBOX`]), so a thin event is enriched at
//! least once even when a process dies, by whichever gateway process pulls it. Each is
//! read within its source's budget (`options.api.per_minute`, per process), mapped
//! ([`crate::normalize::enriched`]) and appended keyed by the thin event (written once,
//! however often it is read). A failed read waits and is tried again (10 s by default,
//! `OMNIGATE_ENRICH_RETRY_MS`, then three times longer each time, at most an hour,
//! [`MAX_ATTEMPTS`] tries); a resource that is
//! gone, or that does not map, is a dead letter of the enricher's inbox with the reason.
//! The thin event stays in the log either way. How each source is doing is kept beside
//! the push health of plugins and shown on `GET /v1/sources/{id}`.

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use omnigate_schemas::Event;
use omnigate_schemas::api::{EnrichmentProgress, PollCredentials};
use omnigate_schemas::events::PendingData;
use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::enrich::{Access, Named, ReadError, read};
use crate::ingest::{Enriched, append_enriched};
use crate::json::Json;
use crate::normalize::enriched::{Thin, enriched};
use crate::state::AppState;
use crate::store::{Delivered, EndpointHealth, Nack, PullOptions, SecretValue, SourceRecord};

pub use crate::enrich::INBOX;
/// Reads of one thin event before it becomes a dead letter.
pub const MAX_ATTEMPTS: u64 = 8;
/// Default reads a minute per source and process.
const PER_MINUTE: u32 = 60;
/// Thin events read at once.
const CONCURRENCY: usize = 8;
const VISIBILITY: Duration = Duration::from_secs(120);

/// Stops the enricher when told to.
pub struct EnricherHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl EnricherHandle {
    /// Stops after the reads in flight.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

pub fn spawn(state: Arc<AppState>) -> EnricherHandle {
    let (stop, watch) = watch::channel(false);
    let task = tokio::spawn(run(state, watch));
    EnricherHandle { stop, task }
}

/// The wait before read `attempt` + 1: `first` (10 s by default), then three times longer
/// each time, at most an hour.
pub fn backoff(first: Duration, attempt: u64) -> Duration {
    let factor = 3u32.saturating_pow(attempt.saturating_sub(1).min(20) as u32);
    first.saturating_mul(factor).min(Duration::from_secs(3600))
}

/// Each source's budget, as `per_minute` and its limiter.
#[derive(Default)]
struct Budgets(Mutex<HashMap<String, (u32, Arc<DefaultDirectRateLimiter>)>>);

impl Budgets {
    /// `None` when a read may go now, else how long until one may.
    fn take(&self, source: &str, per_minute: u32) -> Option<Duration> {
        let limiter = {
            let mut map = self.0.lock().expect("budgets lock");
            let entry = map
                .entry(source.to_string())
                .or_insert_with(|| (per_minute, Arc::new(limiter(per_minute))));
            if entry.0 != per_minute {
                *entry = (per_minute, Arc::new(limiter(per_minute)));
            }
            entry.1.clone()
        };
        limiter
            .check()
            .err()
            .map(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

fn limiter(per_minute: u32) -> DefaultDirectRateLimiter {
    let n = NonZeroU32::new(per_minute.max(1)).expect("at least 1");
    // A burst of a tenth of the minute's budget, so a backlog starts at once but is spread.
    let burst = NonZeroU32::new((per_minute / 10).max(1)).expect("at least 1");
    RateLimiter::direct(Quota::per_minute(n).allow_burst(burst))
}

struct Enricher {
    state: Arc<AppState>,
    http: reqwest::Client,
    budgets: Budgets,
    health: Mutex<HashMap<String, EndpointHealth>>,
    /// Who this process is when it holds a source's token lease.
    holder: String,
    /// Access tokens this process refreshed or read, by source.
    tokens: Mutex<HashMap<String, Kept>>,
    /// Sources whose token the API refused: refreshed before the next read.
    refused: Mutex<HashSet<String>>,
    /// Token states refreshed here whose save failed: the spent refresh token no longer
    /// works, so this one is kept, used, and saved at the next chance.
    unsaved: Mutex<HashMap<String, crate::store::PollState>>,
}

/// An access token as kept in memory: the credentials it descends from (a digest of the
/// operator's refresh token), the token, its expiry.
type Kept = (String, String, DateTime<Utc>);

/// A token is refreshed this long before it expires.
const EARLY: chrono::Duration = chrono::Duration::minutes(5);
/// How long a token refresh may hold the source's lease: well past the HTTP client's
/// 30 s, so the lease cannot lapse while the refresh is under way.
const REFRESH_LEASE: Duration = Duration::from_secs(120);

async fn run(state: Arc<AppState>, mut stop: watch::Receiver<bool>) {
    let http = match crate::poll::client() {
        Ok(http) => http,
        Err(e) => {
            tracing::error!(error = %e, "the enricher cannot make its HTTP client");
            return;
        }
    };
    let enricher = Arc::new(Enricher {
        state,
        http,
        budgets: Budgets::default(),
        health: Mutex::new(HashMap::new()),
        holder: format!(
            "enricher:{}:{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ),
        tokens: Mutex::new(HashMap::new()),
        refused: Mutex::new(HashSet::new()),
        unsaved: Mutex::new(HashMap::new()),
    });
    loop {
        if *stop.borrow() {
            return;
        }
        let options = PullOptions {
            max: CONCURRENCY * 2,
            wait: Duration::from_secs(1),
            visibility: VISIBILITY,
            max_attempts: MAX_ATTEMPTS,
        };
        let pulled = tokio::select! {
            r = enricher.state.store.inbox_pull(INBOX, options) => r,
            _ = stop.changed() => return,
        };
        let delivered = match pulled {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "the enricher cannot read its inbox; retrying");
                if crate::clock::pause(&mut stop, Duration::from_secs(1)).await {
                    return;
                }
                continue;
            }
        };
        // One subject's thin events one after the other, in log order, so an order's full
        // events are written in the order of its thin ones; subjects side by side.
        futures_util::stream::iter(by_subject(delivered))
            .for_each_concurrent(CONCURRENCY, |group| {
                let enricher = enricher.clone();
                async move {
                    for d in group {
                        enricher.one(d).await;
                    }
                }
            })
            .await;
    }
}

/// Deliveries grouped by the tenant and subject of their event, each group in the order
/// pulled.
fn by_subject(delivered: Vec<Delivered>) -> Vec<Vec<Delivered>> {
    #[derive(serde::Deserialize)]
    struct Head<'a> {
        #[serde(borrow)]
        subject: std::borrow::Cow<'a, str>,
    }
    let mut groups: Vec<Vec<Delivered>> = Vec::new();
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    for d in delivered {
        let subject = serde_json::from_str::<Head>(&d.entry.json)
            .map(|h| h.subject.into_owned())
            .unwrap_or_default();
        let key = (d.entry.tenant.clone(), subject);
        match index.get(&key) {
            Some(&i) => groups[i].push(d),
            None => {
                index.insert(key, groups.len());
                groups.push(vec![d]);
            }
        }
    }
    groups
}

/// What became of one thin event.
enum Done {
    /// Finished (written, or nothing to read): acknowledged.
    Ack(&'static str),
    /// Tried again after this long; `counted`: an attempt spent (not when only waiting
    /// for the budget or a provider's rate limit).
    Later {
        after: Duration,
        reason: String,
        counted: bool,
    },
    /// Given up on: a dead letter with the reason.
    Dead(String),
}

impl Enricher {
    async fn one(&self, d: Delivered) {
        let done = self.attempt(&d).await;
        let state = &self.state;
        let now = Utc::now();
        let at = crate::normalize::time::format(now);
        let outcome = match &done {
            Done::Ack(outcome) => *outcome,
            Done::Later { counted: true, .. } => "retried",
            Done::Later { .. } => "waited",
            Done::Dead(_) => "failed",
        };
        state.metrics.enrichment.with_label_values(&[outcome]).inc();
        let result = match done {
            Done::Ack(_) => state.store.inbox_ack(INBOX, &[d.receipt]).await.map(|_| ()),
            Done::Later {
                after,
                reason,
                counted,
            } => {
                let nack = Nack {
                    retry_after: after,
                    visibility: VISIBILITY,
                    reason: counted.then_some(reason),
                    at,
                    dead: false,
                    defer: !counted,
                };
                state
                    .store
                    .inbox_nack(INBOX, &[d.receipt], &nack)
                    .await
                    .map(|_| ())
            }
            Done::Dead(reason) => {
                let nack = Nack {
                    retry_after: Duration::ZERO,
                    visibility: VISIBILITY,
                    reason: Some(reason),
                    at,
                    dead: true,
                    defer: false,
                };
                state
                    .store
                    .inbox_nack(INBOX, &[d.receipt], &nack)
                    .await
                    .map(|_| ())
            }
        };
        if let Err(e) = result {
            // Handed out again after the visibility timeout.
            tracing::warn!(error = %e, event_id = %d.entry.event_id, "the enricher cannot settle a thin event");
        }
    }

    async fn attempt(&self, d: &Delivered) -> Done {
        let event: Event = match serde_json::from_str(&d.entry.json) {
            Ok(e) => e,
            Err(e) => return Done::Dead(format!("the thin event cannot be read: {e}")),
        };
        let pending: PendingData = match serde_json::from_value(event.data.clone()) {
            Ok(p) => p,
            // Not thin after all: nothing to read.
            Err(_) => return Done::Ack("skipped"),
        };
        let source = match self.state.source(&event.source.id).await {
            Ok(Some(s)) => s,
            // The source was deleted: its events are not read back any more.
            Ok(None) => return Done::Ack("skipped"),
            Err(e) => {
                return Done::Later {
                    after: Duration::from_secs(5),
                    reason: format!("the source cannot be read: {e}"),
                    counted: false,
                };
            }
        };
        // Credentials removed since, or a type not read back: the thin event stays as it is.
        let Some(mut credentials) = credentials(&source) else {
            return Done::Ack("skipped");
        };
        if !crate::enrich::reads(source.provider, &event.event_type) {
            return Done::Ack("skipped");
        }
        let per_minute = source
            .options
            .api
            .as_ref()
            .and_then(|a| a.per_minute)
            .unwrap_or(PER_MINUTE);
        if let Some(wait) = self.budgets.take(&source.id, per_minute) {
            return Done::Later {
                after: wait.max(Duration::from_millis(100)),
                reason: "over the source's budget".into(),
                counted: false,
            };
        }
        let occurred_at =
            crate::normalize::time::rfc3339(&event.occurred_at).unwrap_or_else(Utc::now);
        let thin = Thin {
            event_id: &event.id,
            event_type: &event.event_type,
            subject: &event.subject,
            order_id: pending.order_id.as_deref(),
            shipment_id: pending.shipment_id.as_deref(),
            occurred_at,
            shop_locale: source.options.locale.as_deref(),
        };
        if credentials.refresh_token.is_some() {
            match self.access_token(&source, &credentials).await {
                Ok(token) => credentials.token = Some(token),
                Err(e) => return self.read_failed(d, &source, e).await,
            }
        }
        let access = Access {
            provider: source.provider,
            api: source.options.api.as_ref(),
            credentials: &credentials,
        };
        let named = Named {
            thin,
            resource_url: pending.resource_url.as_deref(),
        };
        let resource = match read(&self.http, &access, &named).await {
            Ok(Some(r)) => r,
            Ok(None) => return Done::Ack("skipped"),
            Err(e) => {
                if matches!(e, ReadError::Refused(_)) && credentials.refresh_token.is_some() {
                    self.refused
                        .lock()
                        .expect("refused lock")
                        .insert(source.id.clone());
                }
                return self.read_failed(d, &source, e).await;
            }
        };
        let events = match enriched(source.provider, &thin, &Json::from(&resource)) {
            Ok(events) => events,
            Err(rejection) => {
                let reason = format!("the resource read back does not map: {rejection}");
                self.failed(&source, &reason).await;
                return Done::Dead(reason);
            }
        };
        match append_enriched(&self.state, &source, &event.id, &event.source.topic, events).await {
            Ok(Enriched::Written(ids)) => {
                self.succeeded(&source).await;
                tracing::info!(source_id = %source.id, thin_event = %event.id, events = ids.len(), "enriched");
                Done::Ack("enriched")
            }
            Ok(Enriched::Rejected(rejection)) => {
                let reason = format!("the events read back do not pass their schemas: {rejection}");
                self.failed(&source, &reason).await;
                Done::Dead(reason)
            }
            Err(e) => Done::Later {
                after: Duration::from_secs(5),
                reason: format!("the events could not be written: {e}"),
                counted: false,
            },
        }
    }

    /// What a failed read (or token refresh) becomes.
    async fn read_failed(&self, d: &Delivered, source: &SourceRecord, e: ReadError) -> Done {
        match e {
            ReadError::RateLimited(wait) => Done::Later {
                after: wait,
                reason: "rate limited by the provider".into(),
                counted: false,
            },
            ReadError::Retry(reason) | ReadError::Refused(reason) => {
                self.failed(source, &reason).await;
                if d.attempt >= MAX_ATTEMPTS {
                    return Done::Dead(format!("{reason} (after {} reads)", d.attempt));
                }
                let first = Duration::from_millis(self.state.settings.enrich_retry_ms);
                Done::Later {
                    after: backoff(first, d.attempt),
                    reason,
                    counted: true,
                }
            }
            ReadError::Gone(reason) => {
                self.failed(source, &reason).await;
                Done::Dead(reason)
            }
        }
    }

    /// A fresh access token for a source whose credentials refresh (Mercado Libre's last
    /// six hours). The token and the refresh token that replaces the spent one are kept in
    /// the source's token state (sealed at rest), written under the source's lease so two
    /// processes never spend the same refresh token.
    async fn access_token(
        &self,
        source: &SourceRecord,
        credentials: &PollCredentials,
    ) -> Result<String, ReadError> {
        use sha2::Digest;
        let given = credentials.refresh_token.as_deref().unwrap_or_default();
        let marker = hex::encode(&sha2::Sha256::digest(given.as_bytes())[..8]);
        let now = Utc::now();
        let refused = self
            .refused
            .lock()
            .expect("refused lock")
            .contains(&source.id);
        if !refused
            && let Some((m, token, expires)) =
                self.tokens.lock().expect("tokens lock").get(&source.id)
            && *m == marker
            && *expires - now > EARLY
        {
            return Ok(token.clone());
        }
        let store = &self.state.store;
        let unavailable = |e: crate::store::StoreError| {
            ReadError::Retry(format!("the token state cannot be read: {e}"))
        };
        let fresh = |st: &crate::store::PollState| {
            (!refused
                && st.credentials_marker.as_deref() == Some(marker.as_str())
                && st.access_expires_at.is_some_and(|at| at - now > EARLY))
            .then(|| st.access_token.as_ref().map(|t| t.expose().to_string()))
            .flatten()
        };
        let remember = |token: &str, expires: DateTime<Utc>| {
            self.tokens.lock().expect("tokens lock").insert(
                source.id.clone(),
                (marker.clone(), token.to_string(), expires),
            );
        };
        let unsaved = self
            .unsaved
            .lock()
            .expect("unsaved lock")
            .get(&source.id)
            .cloned();
        let st = match unsaved {
            Some(st) => st,
            None => store
                .poll_state(&source.id)
                .await
                .map_err(unavailable)?
                .unwrap_or_default(),
        };
        if let (Some(token), Some(expires)) = (fresh(&st), st.access_expires_at) {
            remember(&token, expires);
            return Ok(token);
        }
        if !store
            .poll_lease(&source.id, &self.holder, REFRESH_LEASE)
            .await
            .map_err(unavailable)?
        {
            // Another process is refreshing it: its token is read next time.
            return Err(ReadError::RateLimited(Duration::from_secs(2)));
        }
        let result = self.refresh(source, credentials, &marker, refused).await;
        if let Err(e) = store.release_poll_lease(&source.id, &self.holder).await {
            tracing::debug!(source_id = %source.id, error = %e, "cannot give the token lease back; it lapses");
        }
        let (token, expires) = result?;
        self.refused
            .lock()
            .expect("refused lock")
            .remove(&source.id);
        remember(&token, expires);
        Ok(token)
    }

    /// Under the source's lease: the stored token if another process refreshed it
    /// meanwhile, else a refresh, saved before the new token is used.
    async fn refresh(
        &self,
        source: &SourceRecord,
        credentials: &PollCredentials,
        marker: &str,
        refused: bool,
    ) -> Result<(String, DateTime<Utc>), ReadError> {
        let store = &self.state.store;
        let now = Utc::now();
        let unsaved = self
            .unsaved
            .lock()
            .expect("unsaved lock")
            .get(&source.id)
            .cloned();
        let mut st = match unsaved {
            // Newer than what is stored: saved now, while the lease is held.
            Some(st) => {
                self.save_tokens(source, &st).await;
                st
            }
            None => store
                .poll_state(&source.id)
                .await
                .map_err(|e| ReadError::Retry(format!("the token state cannot be read: {e}")))?
                .unwrap_or_default(),
        };
        let ours = st.credentials_marker.as_deref() == Some(marker);
        if ours
            && !refused
            && let (Some(token), Some(expires)) = (&st.access_token, st.access_expires_at)
            && expires - now > EARLY
        {
            return Ok((token.expose().to_string(), expires));
        }
        // The kept refresh token descends from the operator's; new credentials win.
        let refresh = match (&st.refresh_token, ours) {
            (Some(kept), true) => kept.expose().to_string(),
            _ => credentials.refresh_token.clone().unwrap_or_default(),
        };
        let access = Access {
            provider: source.provider,
            api: source.options.api.as_ref(),
            credentials,
        };
        let tokens = crate::enrich::refresh_mercadolibre(&self.http, &access, &refresh).await?;
        let expires = now
            + chrono::Duration::from_std(tokens.expires_in).unwrap_or(chrono::Duration::hours(6));
        st.access_token = Some(SecretValue::new(tokens.access.clone()));
        st.access_expires_at = Some(expires);
        st.refresh_token = Some(SecretValue::new(tokens.refresh));
        st.credentials_marker = Some(marker.to_string());
        tracing::info!(source_id = %source.id, "refreshed the API token");
        self.save_tokens(source, &st).await;
        Ok((tokens.access, expires))
    }

    /// Saves a token state under the lease this process holds, a few times if need be; one
    /// that cannot be saved is kept in memory, used, and saved at the next refresh (the
    /// refresh token it replaced no longer works).
    async fn save_tokens(&self, source: &SourceRecord, st: &crate::store::PollState) {
        let store = &self.state.store;
        for attempt in 0..3 {
            let saved = store
                .poll_lease(&source.id, &self.holder, REFRESH_LEASE)
                .await;
            if matches!(saved, Ok(true))
                && matches!(
                    store.put_poll_state(&source.id, &self.holder, st).await,
                    Ok(true)
                )
            {
                self.unsaved
                    .lock()
                    .expect("unsaved lock")
                    .remove(&source.id);
                return;
            }
            tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
        }
        tracing::error!(source_id = %source.id,
            "the refreshed API token could not be saved; this process keeps it and saves it at its next refresh (if it stops first, authorize the application again)");
        self.unsaved
            .lock()
            .expect("unsaved lock")
            .insert(source.id.clone(), st.clone());
    }

    async fn failed(&self, source: &SourceRecord, reason: &str) {
        let now = Utc::now();
        tracing::warn!(source_id = %source.id, error = %reason, "a thin event could not be enriched");
        let health = {
            let mut map = self.health.lock().expect("health lock");
            let h = map.entry(source.id.clone()).or_default();
            h.consecutive_failures += 1;
            h.failing_since.get_or_insert(now);
            h.last_error = Some(reason.chars().take(300).collect());
            h.last_error_at = Some(now);
            h.clone()
        };
        self.record(source, &health).await;
    }

    async fn succeeded(&self, source: &SourceRecord) {
        let now = Utc::now();
        let health = {
            let mut map = self.health.lock().expect("health lock");
            let h = map.entry(source.id.clone()).or_default();
            h.consecutive_failures = 0;
            h.failing_since = None;
            h.last_success_at = Some(now);
            h.clone()
        };
        self.record(source, &health).await;
    }

    async fn record(&self, source: &SourceRecord, health: &EndpointHealth) {
        if let Err(e) = self
            .state
            .store
            .put_push_health(INBOX, &source.id, health)
            .await
        {
            tracing::debug!(source_id = %source.id, error = %e, "cannot record enrichment health");
        }
    }
}

/// A source's API credentials, when it has any.
pub fn credentials(source: &SourceRecord) -> Option<PollCredentials> {
    let stored = source.api_credentials.as_ref()?;
    serde_json::from_str(stored.expose()).ok()
}

/// What `GET /v1/sources/{id}` shows of a source's enrichment.
pub async fn progress(
    state: &AppState,
    source_id: &str,
) -> crate::error::Result<EnrichmentProgress> {
    let health = state.store.push_health(INBOX).await?;
    let h = health
        .into_iter()
        .find(|(id, _)| id == source_id)
        .map(|(_, h)| h)
        .unwrap_or_default();
    let fmt = |t: Option<DateTime<Utc>>| t.map(crate::normalize::time::format);
    Ok(EnrichmentProgress {
        consecutive_failures: h.consecutive_failures,
        last_success_at: fmt(h.last_success_at),
        last_error: h.last_error,
        last_error_at: fmt(h.last_error_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_off_three_times_longer_up_to_an_hour() {
        let first = Duration::from_secs(10);
        let waits: Vec<u64> = (1..=8).map(|a| backoff(first, a).as_secs()).collect();
        assert_eq!(waits, [10, 30, 90, 270, 810, 2430, 3600, 3600]);
    }

    #[test]
    fn a_source_over_its_budget_waits_for_its_turn() {
        let budgets = Budgets::default();
        // 60 a minute: a burst of 6, then one a second.
        for _ in 0..6 {
            assert_eq!(budgets.take("src_a", 60), None);
        }
        let wait = budgets.take("src_a", 60).expect("over the burst");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        // Another source has a budget of its own.
        assert_eq!(budgets.take("src_b", 60), None);
        // A new budget applies at once.
        assert_eq!(budgets.take("src_a", 600), None);
    }
}
