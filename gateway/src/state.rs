//! What every request handler shares.

use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::clock::Clock;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::store::{SourceRecord, Store};
use crate::telemetry::Metrics;
use crate::validate::Validators;

pub struct AppState {
    pub settings: Settings,
    pub store: Arc<dyn Store>,
    pub validators: Validators,
    pub clock: Arc<dyn Clock>,
    pub metrics: Metrics,
    /// Saleor shops' signing keys, fetched from their JWKS URLs.
    pub jwks: crate::verify::JwksCache,
    /// Plugins' declared event schemas, compiled on first use.
    pub plugin_schemas: crate::validate::PluginSchemas,
    /// Rate limits and concurrency caps of this process.
    pub limits: crate::limits::Limits,
    /// Where verified deliveries wait while the store cannot take them (`OMNIGATE_SPOOL_DIR`).
    pub spool: Option<Arc<crate::spool::Spool>>,
    /// Webhook deliveries per source and outcome, until the next report to the store.
    pub tally: Arc<crate::tally::DeliveryTally>,
    admin_token: String,
    sources: SourceCache,
    unknown_sources: UnknownSources,
}

impl AppState {
    /// `settings.admin_token` must be set (the binary generates one for the memory store).
    pub fn new(settings: Settings, store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Result<Self> {
        let admin_token = settings
            .admin_token
            .clone()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::Config("an admin token is required".into()))?;
        let spool = match &settings.spool_dir {
            Some(dir) => {
                // A spooled body must fit one frame with room for its headers.
                let largest = u64::from(crate::spool::segment::MAX_PAYLOAD) / 2;
                if settings.body_limit_bytes as u64 > largest {
                    return Err(Error::Config(format!(
                        "OMNIGATE_BODY_LIMIT_BYTES must be at most {largest} with a spool"
                    )));
                }
                let options = crate::spool::SpoolOptions {
                    dir: dir.clone(),
                    max_bytes: settings.spool_max_bytes,
                    segment_bytes: SPOOL_SEGMENT_BYTES,
                };
                let spool = crate::spool::Spool::open(&options)
                    .map_err(|e| Error::Config(format!("spool {}: {e}", dir.display())))?;
                Some(Arc::new(spool))
            }
            None => None,
        };
        Ok(AppState {
            spool,
            sources: SourceCache::new(settings.source_cache_ttl()),
            unknown_sources: UnknownSources::new(std::time::Duration::from_millis(
                settings.unknown_source_cache_ms,
            )),
            limits: crate::limits::Limits::new(&settings),
            validators: Validators::compile()?,
            metrics: Metrics::new(),
            jwks: crate::verify::JwksCache::new(crate::verify::jwks::JwksPolicy {
                allow_http: settings.jwks_allow_http,
                ..Default::default()
            }),
            plugin_schemas: crate::validate::PluginSchemas::default(),
            tally: Arc::default(),
            admin_token,
            settings,
            store,
            clock,
        })
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// A source's configuration, from this process's short-lived cache or the store.
    /// Ids the store did not know are remembered briefly too, so a flood of made-up ids
    /// costs no store round trip each. While the store is unreachable a configuration this
    /// process has seen stays in use however old (stale-while-error), so deliveries to known
    /// sources can still be verified and spooled; an unknown id is then an error.
    pub async fn source(&self, id: &str) -> Result<Option<Arc<SourceRecord>>> {
        if let Some(hit) = self.sources.get(id) {
            return Ok(Some(hit));
        }
        if self.unknown_sources.contains(id) {
            return Ok(None);
        }
        // The store failed moments ago: do not wait out its timeout again.
        if self.spool.as_ref().is_some_and(|s| s.store_known_down())
            && let Some(stale) = self.sources.get_stale(id)
        {
            return Ok(Some(stale));
        }
        let found = match self.store.get_source(id).await {
            Ok(found) => found.map(Arc::new),
            Err(e) => match self.sources.get_stale(id) {
                Some(stale) => {
                    tracing::debug!(source_id = id, error = %e, "store unreachable: using the cached source configuration");
                    return Ok(Some(stale));
                }
                None => return Err(e.into()),
            },
        };
        match &found {
            Some(s) => self.sources.put(s.clone()),
            None => self.unknown_sources.insert(id),
        }
        Ok(found)
    }

    /// Counts and logs inbox entries the inbox cap removed: never silently.
    pub fn note_inbox_trimmed(&self, plugin_id: &str, trimmed: u64) {
        if trimmed == 0 {
            return;
        }
        self.metrics
            .inbox_trimmed
            .with_label_values(&[plugin_id])
            .inc_by(trimmed);
        tracing::warn!(
            plugin_id,
            trimmed,
            cap = self.settings.inbox_maxlen,
            "plugin inbox over its cap: the oldest undelivered entries were removed"
        );
    }

    /// Forgets a cached source after this process created, changed or deleted it.
    pub fn forget_source(&self, id: &str) {
        self.sources.remove(id);
        self.unknown_sources.remove(id);
    }
}

/// A spool segment this large is closed and a new one begun, so drained deliveries leave
/// the disk while an outage's backlog is still draining.
const SPOOL_SEGMENT_BYTES: u64 = 64 << 20;

/// Source ids the store did not have, for a short time. Bounded: past the cap the oldest
/// half is dropped, so made-up ids cannot grow it without limit.
struct UnknownSources {
    ttl: std::time::Duration,
    entries: Mutex<HashMap<String, Instant>>,
}

impl UnknownSources {
    const CAP: usize = 100_000;

    fn new(ttl: std::time::Duration) -> Self {
        UnknownSources {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn contains(&self, id: &str) -> bool {
        !self.ttl.is_zero()
            && self
                .lock()
                .get(id)
                .is_some_and(|at| at.elapsed() < self.ttl)
    }

    fn insert(&self, id: &str) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= Self::CAP {
            let ttl = self.ttl;
            entries.retain(|_, at| at.elapsed() < ttl);
            if entries.len() >= Self::CAP {
                let mut ages: Vec<Instant> = entries.values().copied().collect();
                ages.sort_unstable();
                let cutoff = ages[ages.len() / 2];
                entries.retain(|_, at| *at > cutoff);
            }
        }
        entries.insert(id.to_string(), Instant::now());
    }

    fn remove(&self, id: &str) {
        self.lock().remove(id);
    }
}

/// Keeps the webhook path to one store round trip (the append) for active sources.
struct SourceCache {
    ttl: std::time::Duration,
    entries: Mutex<HashMap<String, (Instant, Arc<SourceRecord>)>>,
}

impl SourceCache {
    fn new(ttl: std::time::Duration) -> Self {
        SourceCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Arc<SourceRecord>)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, id: &str) -> Option<Arc<SourceRecord>> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.lock();
        entries
            .get(id)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, s)| s.clone())
    }

    /// The cached configuration however old, for when the store cannot be asked.
    fn get_stale(&self, id: &str) -> Option<Arc<SourceRecord>> {
        if self.ttl.is_zero() {
            return None;
        }
        self.lock().get(id).map(|(_, s)| s.clone())
    }

    fn put(&self, source: Arc<SourceRecord>) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.lock();
        if entries.len() > 10_000 {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
        }
        entries.insert(source.id.clone(), (Instant::now(), source));
    }

    fn remove(&self, id: &str) {
        self.lock().remove(id);
    }
}
