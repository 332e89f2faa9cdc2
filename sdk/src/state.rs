//! A small store for a plugin's own state: one JSON document per key (typically per shop),
//! saved compare-and-set on a version so two runtimes never lose each other's updates.
//! In memory for tests, in Redis (feature `redis`) in production.

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::Mutex;

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The backing store failed.
    #[error("state store: {0}")]
    Backend(String),
    /// A stored document does not have the expected shape.
    #[error("stored state is corrupt: {0}")]
    Corrupt(String),
}

/// Documents of type `T` by key, with versions.
#[async_trait]
pub trait StateStore<T>: Send + Sync + 'static
where
    T: Serialize + DeserializeOwned + Default + Send + Sync + 'static,
{
    /// The document and its version (a default document at version 0 when new).
    async fn load(&self, key: &str) -> Result<(T, u64), StateError>;
    /// Saves unless someone saved since `version` was loaded; `false` means load again.
    async fn save(&self, key: &str, doc: &T, version: u64) -> Result<bool, StateError>;
    /// Removes the document (a shop that uninstalled the plugin, a customer erased);
    /// `true` if there was one. The next load starts over at a default document.
    async fn delete(&self, key: &str) -> Result<bool, StateError>;
}

/// A document in memory: its version, its JSON, and when it expires.
type Stored = (u64, String, Option<std::time::Instant>);

/// Drops `key`'s document if it expired (only the key asked for: a test store stays small).
fn forget_if_expired(docs: &mut HashMap<String, Stored>, key: &str) {
    let now = std::time::Instant::now();
    if docs
        .get(key)
        .is_some_and(|(_, _, expires)| expires.is_some_and(|at| at <= now))
    {
        docs.remove(key);
    }
}

/// Documents in this process's memory.
#[derive(Default)]
pub struct MemoryState {
    docs: Mutex<HashMap<String, Stored>>,
    ttl: Option<std::time::Duration>,
}

impl MemoryState {
    /// Documents not saved for `ttl` are forgotten (as with [`RedisState::ttl`]).
    pub fn with_ttl(ttl: std::time::Duration) -> Self {
        MemoryState {
            ttl: Some(ttl),
            ..MemoryState::default()
        }
    }
}

#[async_trait]
impl<T> StateStore<T> for MemoryState
where
    T: Serialize + DeserializeOwned + Default + Send + Sync + 'static,
{
    async fn load(&self, key: &str) -> Result<(T, u64), StateError> {
        let mut docs = self.docs.lock().unwrap_or_else(|p| p.into_inner());
        forget_if_expired(&mut docs, key);
        match docs.get(key) {
            Some((v, json, _)) => Ok((
                serde_json::from_str(json).map_err(|e| StateError::Corrupt(e.to_string()))?,
                *v,
            )),
            None => Ok((T::default(), 0)),
        }
    }

    async fn save(&self, key: &str, doc: &T, version: u64) -> Result<bool, StateError> {
        let json = serde_json::to_string(doc).map_err(|e| StateError::Corrupt(e.to_string()))?;
        let mut docs = self.docs.lock().unwrap_or_else(|p| p.into_inner());
        forget_if_expired(&mut docs, key);
        let now = std::time::Instant::now();
        if docs.get(key).map_or(0, |(v, _, _)| *v) != version {
            return Ok(false);
        }
        let expires = self.ttl.map(|ttl| now + ttl);
        docs.insert(key.to_string(), (version + 1, json, expires));
        Ok(true)
    }

    async fn delete(&self, key: &str) -> Result<bool, StateError> {
        let mut docs = self.docs.lock().unwrap_or_else(|p| p.into_inner());
        Ok(docs.remove(key).is_some())
    }
}

/// Documents in Redis: `<prefix>:<key>` holds `<version>|<json>`. Needs the `redis`
/// feature.
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub struct RedisState {
    conn: redis::aio::ConnectionManager,
    prefix: String,
    ttl_ms: u64,
}

#[cfg(feature = "redis")]
const SAVE_LUA: &str = r#"
local cur = redis.call('GET', KEYS[1])
local version = 0
if cur then version = tonumber(string.match(cur, '^(%d+)|')) end
if version ~= tonumber(ARGV[1]) then return 0 end
if tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[1], (version + 1) .. '|' .. ARGV[2], 'PX', ARGV[3])
else
  redis.call('SET', KEYS[1], (version + 1) .. '|' .. ARGV[2])
end
return 1
"#;

/// The store a plugin binary keeps its state in: Redis at the URL in environment variable
/// `var` when it is set, otherwise memory, with a warning because memory is lost on exit.
/// Keys are `<prefix>:<key>` (a trailing `:` on `prefix` is not doubled). Needs the
/// `redis` feature (`omnigate-sdk = { version = "…", features = ["redis"] }`).
///
/// ```no_run
/// # async fn f() -> Result<(), omnigate_sdk::state::StateError> {
/// use omnigate_sdk::state::{self, Tracked};
/// let store = state::from_env::<Tracked<u64>>("LOYALTY_REDIS_URL", "loyalty").await?;
/// # Ok(())
/// # }
/// ```
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub async fn from_env<T>(
    var: &str,
    prefix: &str,
) -> Result<std::sync::Arc<dyn StateStore<T>>, StateError>
where
    T: Serialize + DeserializeOwned + Default + Send + Sync + 'static,
{
    match std::env::var(var).ok().filter(|v| !v.is_empty()) {
        Some(url) => Ok(std::sync::Arc::new(
            RedisState::connect(&url, prefix).await?,
        )),
        None => {
            tracing::warn!("{var} not set: plugin state lives in memory and is lost on exit");
            Ok(std::sync::Arc::new(MemoryState::default()))
        }
    }
}

#[cfg(feature = "redis")]
impl RedisState {
    /// Connects to `url`; keys are `<prefix>:<key>` (e.g. `loyalty:shop-a`; a trailing `:`
    /// on `prefix` is not doubled).
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StateError> {
        let backend = |e: redis::RedisError| StateError::Backend(e.to_string());
        let client = redis::Client::open(url).map_err(backend)?;
        Ok(RedisState {
            conn: client.get_connection_manager().await.map_err(backend)?,
            prefix: prefix.trim_end_matches(':').to_string(),
            ttl_ms: 0,
        })
    }

    /// Documents not saved for `ttl` expire (Redis `PX` on every save), so state of shops
    /// and customers that went quiet does not grow forever. Default: kept until deleted.
    /// An expired [`Tracked`] document forgets which events it applied too: choose a TTL
    /// longer than any redelivery or replay you would still want recognised.
    pub fn ttl(mut self, ttl: std::time::Duration) -> Self {
        self.ttl_ms = ttl.as_millis().max(1) as u64;
        self
    }
}

#[cfg(feature = "redis")]
#[async_trait]
impl<T> StateStore<T> for RedisState
where
    T: Serialize + DeserializeOwned + Default + Send + Sync + 'static,
{
    async fn load(&self, key: &str) -> Result<(T, u64), StateError> {
        let mut conn = self.conn.clone();
        let raw: Option<String> = redis::cmd("GET")
            .arg(format!("{}:{key}", self.prefix))
            .query_async(&mut conn)
            .await
            .map_err(|e| StateError::Backend(e.to_string()))?;
        let Some(raw) = raw else {
            return Ok((T::default(), 0));
        };
        let (version, json) = raw
            .split_once('|')
            .ok_or_else(|| StateError::Corrupt("no version".into()))?;
        Ok((
            serde_json::from_str(json).map_err(|e| StateError::Corrupt(e.to_string()))?,
            version
                .parse()
                .map_err(|_| StateError::Corrupt("bad version".into()))?,
        ))
    }

    async fn save(&self, key: &str, doc: &T, version: u64) -> Result<bool, StateError> {
        let json = serde_json::to_string(doc).map_err(|e| StateError::Corrupt(e.to_string()))?;
        let mut conn = self.conn.clone();
        let saved: i64 = redis::Script::new(SAVE_LUA)
            .key(format!("{}:{key}", self.prefix))
            .arg(version)
            .arg(json)
            .arg(self.ttl_ms)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| StateError::Backend(e.to_string()))?;
        Ok(saved == 1)
    }

    async fn delete(&self, key: &str) -> Result<bool, StateError> {
        let mut conn = self.conn.clone();
        let removed: i64 = redis::cmd("DEL")
            .arg(format!("{}:{key}", self.prefix))
            .query_async(&mut conn)
            .await
            .map_err(|e| StateError::Backend(e.to_string()))?;
        Ok(removed == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn saves_are_compare_and_set() {
        let store = MemoryState::default();
        let (mut doc, v): (Vec<u32>, u64) = store.load("shop").await.unwrap();
        assert_eq!(v, 0);
        doc.push(1);
        assert!(store.save("shop", &doc, 0).await.unwrap());
        assert!(
            !store.save("shop", &doc, 0).await.unwrap(),
            "a stale version loses"
        );
        let (loaded, v): (Vec<u32>, u64) = store.load("shop").await.unwrap();
        assert_eq!((loaded, v), (vec![1], 1));
        assert!(
            StateStore::<Vec<u32>>::delete(&store, "shop")
                .await
                .unwrap()
        );
        let (gone, v): (Vec<u32>, u64) = store.load("shop").await.unwrap();
        assert_eq!((gone, v), (vec![], 0), "deleted: starts over");
        assert!(
            !StateStore::<Vec<u32>>::delete(&store, "shop")
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn documents_expire_after_their_ttl() {
        let store = MemoryState::with_ttl(std::time::Duration::from_nanos(1));
        assert!(store.save("shop", &vec![1u32], 0).await.unwrap());
        std::thread::sleep(std::time::Duration::from_millis(1));
        let (doc, v): (Vec<u32>, u64) = store.load("shop").await.unwrap();
        assert_eq!((doc, v), (vec![], 0));
    }
}

/// A plugin document with what makes handling exactly-once in effect: the events already
/// applied, and an outbox of events to publish that were decided together with the change.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Tracked<T> {
    /// The plugin's own document.
    pub doc: T,
    /// Event ids applied, oldest first (the last 20,000).
    pub applied: std::collections::VecDeque<String>,
    /// Publications decided but not yet confirmed by the gateway.
    pub outbox: Vec<omnigate_schemas::api::PublishEvent>,
    /// Publications the gateway refused for good, newest last (the last 100): kept, with
    /// the gateway's answer, for you to fix and publish again.
    #[serde(default)]
    pub rejected: Vec<Rejected>,
}

/// A publication the gateway refused with a permanent error (a 4xx other than 408, 409
/// and 429): it left the outbox so later events of the same key are not held up by it.
///
/// Recover by fixing what the answer names (the data, the declared schema, the plugin's
/// installation scopes) and publishing `publication` again with the same idempotency key,
/// then removing it from `rejected`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Rejected {
    /// What was to be published, with its idempotency key.
    pub publication: omnigate_schemas::api::PublishEvent,
    /// The HTTP status the gateway answered.
    pub status: u16,
    /// The problem `type` slug (`validation`, `forbidden`, …).
    pub problem_type: Option<String>,
    /// The gateway's explanation.
    pub detail: String,
    /// When it was refused (RFC 3339, UTC).
    pub rejected_at: String,
}

const REMEMBERED: usize = 20_000;
const REJECTED_KEPT: usize = 100;

/// Applies `event_id` to the document `key` once, with `change`, and publishes what
/// `change` returned. The publications are saved in the document's outbox in the same
/// compare-and-set as the change, then published (idempotently, keyed), then cleared: so
/// what is published always matches what was saved, even with concurrent handlers, several
/// plugin processes or a crash in between.
///
/// - `change` may run more than once: again on a fresh copy of the document whenever
///   another handler saved it first (a compare-and-set conflict). Keep it free of side
///   effects; only what it returns is published, and only from the run that was saved.
/// - A publication without an idempotency key gets `<event_id>:<n>` (its place in the
///   list), so publishing it again after a crash or a retry is harmless.
/// - `key` is yours to choose and is not scoped for you: put the tenant in it
///   (`"shop-a:order:1001"`) when documents must not be shared between shops.
pub async fn apply_once<T, F>(
    store: &dyn StateStore<Tracked<T>>,
    client: &crate::Client,
    key: &str,
    event_id: &str,
    change: F,
) -> Result<(), crate::HandlerError>
where
    T: Serialize + DeserializeOwned + Default + Clone + Send + Sync + 'static,
    F: Fn(&mut T) -> Result<Vec<omnigate_schemas::api::PublishEvent>, crate::HandlerError>,
{
    // 1. Decide and record, atomically.
    let mut pending = Vec::new();
    for attempt in 0.. {
        if attempt == 20 {
            return Err("the document kept changing under us".into());
        }
        let (mut t, version) = store.load(key).await?;
        if !t.applied.iter().any(|e| e == event_id) {
            let mut publish = change(&mut t.doc)?;
            // Checked before anything is saved: a publication the gateway would refuse must
            // not sit in the outbox, where every later event of this key would meet it.
            if !publish.is_empty() {
                let declared = client.declared().await?;
                for p in &publish {
                    // A bug in the plugin, not a passing failure: dead-lettered at once.
                    declared.check(p).map_err(crate::Permanent::new)?;
                }
            }
            for (i, p) in publish.iter_mut().enumerate() {
                // Keys make the publish idempotent across retries and processes.
                p.idempotency_key
                    .get_or_insert_with(|| format!("{event_id}:{i}"));
            }
            t.outbox.extend(publish);
            t.applied.push_back(event_id.to_string());
            while t.applied.len() > REMEMBERED {
                t.applied.pop_front();
            }
            if !store.save(key, &t, version).await? {
                continue;
            }
        }
        pending = t.outbox;
        break;
    }
    if pending.is_empty() {
        return Ok(());
    }
    // 2. Publish everything outstanding (also what a crashed handler left), in order,
    //    stopping at the first error that may pass; one refused for good is set aside.
    let mut settled = std::collections::HashSet::new();
    let mut rejected = Vec::new();
    let mut transient = None;
    for p in &pending {
        match client.events().publish(p).await {
            Ok(_) => {}
            Err(e) if e.is_permanent() => {
                tracing::error!(
                    key, event_type = %p.event_type, tenant = %p.tenant, error = %e,
                    "the gateway refused a publication for good; kept in `rejected`, \
                     the outbox goes on"
                );
                rejected.push(Rejected::new(p, &e));
            }
            Err(e) => {
                transient = Some(e);
                break;
            }
        }
        settled.insert(p.idempotency_key.clone());
    }
    // 3. Clear what was settled, keeping what was refused.
    if !settled.is_empty() {
        for attempt in 0.. {
            if attempt == 20 {
                return Err("the document kept changing under us".into());
            }
            let (mut t, version) = store.load(key).await?;
            // Set aside only what is still in the outbox: a concurrent handler of this key
            // may have done it already.
            let still: std::collections::HashSet<Option<String>> =
                t.outbox.iter().map(|p| p.idempotency_key.clone()).collect();
            t.rejected.extend(
                rejected
                    .iter()
                    .filter(|r| still.contains(&r.publication.idempotency_key))
                    .cloned(),
            );
            t.outbox.retain(|p| !settled.contains(&p.idempotency_key));
            let excess = t.rejected.len().saturating_sub(REJECTED_KEPT);
            t.rejected.drain(..excess);
            if store.save(key, &t, version).await? {
                break;
            }
        }
    }
    match transient {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

impl Rejected {
    fn new(publication: &omnigate_schemas::api::PublishEvent, e: &crate::Error) -> Self {
        let status = match e {
            crate::Error::Api { status, .. } => *status,
            _ => 0,
        };
        Rejected {
            publication: publication.clone(),
            status,
            problem_type: e.problem_type().map(str::to_string),
            detail: e.to_string(),
            rejected_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }
}
