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
    pub plugin_schemas: crate::inbox::PluginSchemas,
    admin_token: String,
    sources: SourceCache,
}

impl AppState {
    /// `settings.admin_token` must be set (the binary generates one for the memory store).
    pub fn new(settings: Settings, store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Result<Self> {
        let admin_token = settings
            .admin_token
            .clone()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::Config("an admin token is required".into()))?;
        Ok(AppState {
            sources: SourceCache::new(settings.source_cache_ttl()),
            validators: Validators::compile()?,
            metrics: Metrics::new(),
            jwks: crate::verify::JwksCache::new(crate::verify::jwks::JwksPolicy {
                allow_http: settings.jwks_allow_http,
                ..Default::default()
            }),
            plugin_schemas: crate::inbox::PluginSchemas::default(),
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
    pub async fn source(&self, id: &str) -> Result<Option<Arc<SourceRecord>>> {
        if let Some(hit) = self.sources.get(id) {
            return Ok(Some(hit));
        }
        let found = self.store.get_source(id).await?.map(Arc::new);
        if let Some(s) = &found {
            self.sources.put(s.clone());
        }
        Ok(found)
    }

    /// Forgets a cached source after this process changed or deleted it.
    pub fn forget_source(&self, id: &str) {
        self.sources.remove(id);
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
