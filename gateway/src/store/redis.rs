//! The Redis store. Every delivery is one Lua script: dedupe check, XADD(s), dedupe mark
//! and retention trim, all on keys that share the partition's hash tag.

use async_trait::async_trait;
use chrono::DateTime;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Script, Value};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::sealed::{self, Sealer};
use super::{
    Append, Appended, DeadLetter, Delivered, InboxEntry, InstallationRecord, LogEntry, LogRecord,
    PluginRecord, PullOptions, Pushed, QuarantineId, QuarantineRecord, Retention, SourceRecord,
    Store, StoredQuarantine, StreamId, Versioned, Write,
};
use crate::error::{Error, Result};

/// KEYS[1] delivery dedupe mark, KEYS[2] stream, KEYS[3..2+m] one mark per entry (m is 0
/// for quarantine, the entry count for events), KEYS[3+m] (optional) resource state.
/// ARGV: ttl ms, maxlen, entry count n, mark count m, then per entry its field/value count
/// followed by the pairs; then, with the state key, the expected state version, the state
/// JSON and its ttl ms.
/// Returns nil for a duplicate, "conflict" when the state moved on, else
/// {trimmed, {ids written}, {1-based indexes of entries skipped because their mark was set}}.
/// Nothing is written before every check passed; marks are set with their XADD, the
/// delivery mark after all of them, so a failed XADD leaves no delivery mark.
const APPEND_LUA: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local n = tonumber(ARGV[3])
local m = tonumber(ARGV[4])
local pos = 5
local entries = {}
for i = 1, n do
  local count = tonumber(ARGV[pos])
  local args = {}
  for j = 1, count do args[j] = ARGV[pos + j] end
  entries[i] = args
  pos = pos + count + 1
end
if #KEYS == 3 + m then
  local cur = redis.call('GET', KEYS[3 + m])
  local version = 0
  if cur then version = tonumber(string.match(cur, '^(%d+)|')) end
  if version ~= tonumber(ARGV[pos]) then return 'conflict' end
  redis.call('SET', KEYS[3 + m], (version + 1) .. '|' .. ARGV[pos + 1], 'PX', ARGV[pos + 2])
end
local ids = {}
local known = {}
for i = 1, n do
  if m > 0 and redis.call('EXISTS', KEYS[2 + i]) == 1 then
    known[#known + 1] = i
  else
    ids[#ids + 1] = redis.call('XADD', KEYS[2], '*', unpack(entries[i]))
    if m > 0 then redis.call('SET', KEYS[2 + i], '1', 'PX', ARGV[1]) end
  end
end
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
local trimmed = 0
local maxlen = tonumber(ARGV[2])
if maxlen > 0 and #ids > 0 then
  trimmed = redis.call('XTRIM', KEYS[2], 'MAXLEN', '~', maxlen)
end
return {trimmed, ids, known}
"#;

/// KEYS[1] the sources hash; ARGV: source id, the value read, the value to write. Writes
/// only when the stored value is still the one read, so re-sealing a source never undoes
/// a change another process made meanwhile. Returns 1 when written, 0 when it moved on.
const REPLACE_SOURCE_LUA: &str = r#"
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"#;

/// KEYS[1] a plugin inbox, KEYS[2] its dead letters (one hash tag); ARGV: the consumer
/// group, the delivery's stream id, the dead-letter cap (0 = none), then the dead letter's
/// field/value pairs. Moves the delivery to the dead letters in one step; returns how many
/// old dead letters the cap removed.
const BURY_LUA: &str = r#"
redis.call('XADD', KEYS[2], '*', unpack(ARGV, 4))
local trimmed = 0
local cap = tonumber(ARGV[3])
if cap > 0 then trimmed = redis.call('XTRIM', KEYS[2], 'MAXLEN', cap) end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return trimmed
"#;

/// KEYS[1] the namespace owners hash; ARGV[1] the plugin, ARGV[2..] namespaces. Claims
/// them all unless one is owned by another plugin; returns {namespace, owner, …} of those.
const CLAIM_LUA: &str = r#"
local taken = {}
for i = 2, #ARGV do
  local owner = redis.call('HGET', KEYS[1], ARGV[i])
  if owner and owner ~= ARGV[1] then
    taken[#taken + 1] = ARGV[i]
    taken[#taken + 1] = owner
  end
end
if #taken == 0 then
  for i = 2, #ARGV do redis.call('HSET', KEYS[1], ARGV[i], ARGV[1]) end
end
return taken
"#;

/// A single server (with automatic reconnection) or a cluster.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// The consumer group (and consumer) every gateway process reads plugin inboxes with:
/// any process may serve any pull, and redeliveries go by idle time, not by consumer.
const GROUP: &str = "plugin";
const CONSUMER: &str = "gateway";
/// The consumer group routers read log partitions with.
const ROUTER: &str = "router";

pub struct RedisStore {
    conn: Conn,
    /// For blocking reads, which need connections of their own with no response timeout
    /// (a blocked command would stall everything multiplexed behind it).
    client: Option<redis::Client>,
    blocking: std::sync::Mutex<Vec<(std::time::Instant, redis::aio::MultiplexedConnection)>>,
    /// One permit per connection a blocking read may hold: bounds them all together.
    blocking_slots: tokio::sync::Semaphore,
    prefix: String,
    retention: Retention,
    timeout: Duration,
    append: Script,
    claim: Script,
    bury: Script,
    sealer: Option<Arc<Sealer>>,
}

/// Connection settings of the Redis store.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// Key prefix (`og`); lets several deployments or test runs share a server.
    pub prefix: String,
    pub retention: Retention,
    /// Longest wait for one store operation before it counts as unavailable.
    pub timeout: Duration,
    /// Seals source secrets before they are written and opens them when read. `None` is
    /// the explicit insecure mode (`--insecure-plaintext-secrets`): secrets are written as
    /// given, and a sealed one cannot be read.
    pub sealer: Option<Arc<Sealer>>,
    /// Most connections blocking reads (long-polls) may hold at once; a pull that finds
    /// none free within its wait answers with what is ready instead of blocking.
    pub blocking_pool: usize,
}

impl Default for RedisOptions {
    /// Without a sealer: callers that store secrets set one.
    fn default() -> Self {
        RedisOptions {
            prefix: "og".into(),
            retention: Retention::default(),
            timeout: Duration::from_secs(2),
            sealer: None,
            blocking_pool: DEFAULT_BLOCKING_POOL,
        }
    }
}

/// Default of [`RedisOptions::blocking_pool`].
pub const DEFAULT_BLOCKING_POOL: usize = 64;
/// A pooled blocking connection idle longer than this is closed instead of reused.
const BLOCKING_IDLE: Duration = Duration::from_secs(60);

impl RedisStore {
    /// Connects to `url` (`redis://`, `rediss://`, or `redis+cluster://h1:p1,h2:p2`). A
    /// single server is connected lazily and reconnected automatically after outages.
    pub async fn connect(url: &str, options: RedisOptions) -> Result<Self> {
        let mut single = None;
        let conn = if let Some(nodes) = url
            .strip_prefix("redis+cluster://")
            .or_else(|| url.strip_prefix("rediss+cluster://"))
        {
            let scheme = if url.starts_with("rediss") {
                "rediss"
            } else {
                "redis"
            };
            let nodes: Vec<String> = nodes
                .split(',')
                .filter(|n| !n.is_empty())
                .map(|n| format!("{scheme}://{n}"))
                .collect();
            let client = redis::cluster::ClusterClient::builder(nodes)
                .connection_timeout(options.timeout)
                .response_timeout(options.timeout)
                .build()
                .map_err(|e| Error::Config(format!("redis cluster URL: {e}")))?;
            Conn::Cluster(client.get_async_connection().await?)
        } else {
            let client =
                redis::Client::open(url).map_err(|e| Error::Config(format!("redis URL: {e}")))?;
            single = Some(client.clone());
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(options.timeout))
                .set_response_timeout(Some(options.timeout))
                .set_number_of_retries(2)
                .set_max_delay(Duration::from_millis(500));
            Conn::Single(
                ConnectionManager::new_lazy_with_config(client, config)
                    .map_err(|e| Error::Config(format!("redis: {e}")))?,
            )
        };
        Ok(RedisStore {
            conn,
            client: single,
            blocking: std::sync::Mutex::new(Vec::new()),
            blocking_slots: tokio::sync::Semaphore::new(options.blocking_pool.max(1)),
            prefix: options.prefix,
            retention: options.retention,
            timeout: options.timeout,
            append: Script::new(APPEND_LUA),
            claim: Script::new(CLAIM_LUA),
            bury: Script::new(BURY_LUA),
            sealer: options.sealer,
        })
    }

    /// The sealer source secrets are stored with; `None` in the insecure plaintext mode.
    pub fn sealer(&self) -> Option<&Sealer> {
        self.sealer.as_deref()
    }

    /// Every source id, read with HSCAN so a large hash never blocks Redis.
    pub async fn source_ids(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        let mut cursor = "0".to_string();
        loop {
            let (next, page): (String, Vec<String>) = self
                .query(
                    redis::cmd("HSCAN")
                        .arg(self.sources_key())
                        .arg(&cursor)
                        .arg("COUNT")
                        .arg(500),
                )
                .await?;
            // HSCAN pages are field, value, field, value, …; the fields are the ids.
            ids.extend(page.into_iter().step_by(2));
            if next == "0" {
                break;
            }
            cursor = next;
        }
        // HSCAN may return a field twice when the hash is resized meanwhile.
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// Re-seals one source's secrets with the current key: how many secrets were re-sealed
    /// (plaintext ones or those sealed with a previous key; 0 when all were current and
    /// nothing was written), `None` when the source is gone. The write is a compare-and-set
    /// on the stored value: when another process changed the source in between, it is read
    /// again.
    pub async fn reseal_source(&self, id: &str) -> Result<Option<usize>> {
        let sealer = self
            .sealer
            .as_deref()
            .ok_or_else(|| Error::Config("re-sealing secrets needs OMNIGATE_SECRET_KEY".into()))?;
        let script = Script::new(REPLACE_SOURCE_LUA);
        for _ in 0..5 {
            let Some(raw) = self.raw_source(id).await? else {
                return Ok(None);
            };
            let stored: SourceRecord =
                serde_json::from_str(&raw).map_err(|e| corrupt(format!("source {id}: {e}")))?;
            let stale = stored
                .secrets
                .iter()
                .filter(|s| !sealer.is_current(s.value.expose()))
                .count();
            if stale == 0 {
                return Ok(Some(0));
            }
            let resealed = sealer.seal_source(&sealer.open_source(stored)?)?;
            let json =
                serde_json::to_string(&resealed).map_err(|e| Error::Internal(e.to_string()))?;
            let mut inv = script.prepare_invoke();
            inv.key(self.sources_key()).arg(id).arg(&raw).arg(json);
            let mut conn = self.conn.clone();
            let written: i64 = self.run(inv.invoke_async(&mut conn)).await?;
            if written == 1 {
                return Ok(Some(stale));
            }
        }
        Err(Error::StoreUnavailable(format!(
            "source {id} kept changing while it was re-sealed; run the rewrap again"
        )))
    }

    async fn raw_source(&self, id: &str) -> Result<Option<String>> {
        self.query(redis::cmd("HGET").arg(self.sources_key()).arg(id))
            .await
    }

    /// Redis's `maxmemory-policy` (on one node of a cluster). Fails where `CONFIG` is refused
    /// (ACLs, managed Redis).
    pub async fn eviction_policy(&self) -> Result<String> {
        let reply: Value = self
            .query(redis::cmd("CONFIG").arg("GET").arg("maxmemory-policy"))
            .await?;
        config_value(&reply, "maxmemory-policy")
            .ok_or_else(|| corrupt(format!("unexpected CONFIG GET reply {reply:?}")))
    }

    /// Warns loudly unless Redis never evicts: an evicted source config or dedupe mark is
    /// data lost without an error (a shop's webhooks refused, a delivery accepted twice).
    /// Returns the policy when it could be read.
    pub async fn check_eviction_policy(&self) -> Option<String> {
        match self.eviction_policy().await {
            Ok(policy) if policy == "noeviction" => {
                tracing::info!(policy, "redis maxmemory-policy is noeviction");
                Some(policy)
            }
            Ok(policy) => {
                tracing::warn!(
                    policy,
                    "REDIS MAY EVICT KEYS: maxmemory-policy is {policy}, not noeviction. \
                     Under memory pressure Redis would silently drop source configs, dedupe \
                     marks and events. Set `maxmemory-policy noeviction`."
                );
                Some(policy)
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "could not check redis maxmemory-policy (CONFIG GET refused?): make sure \
                     it is noeviction, or Redis may silently drop source configs, dedupe \
                     marks and events under memory pressure"
                );
                None
            }
        }
    }

    fn key(&self, kind: &str, partition: u32) -> String {
        format!("{}:{kind}:{{{partition}}}", self.prefix)
    }

    fn state_key(&self, partition: u32, key: &str) -> String {
        format!("{}:state:{{{partition}}}:{key}", self.prefix)
    }

    fn inbox_key(&self, plugin_id: &str) -> String {
        format!("{}:inbox:{{{plugin_id}}}", self.prefix)
    }

    fn dead_key(&self, plugin_id: &str) -> String {
        format!("{}:dead:{{{plugin_id}}}", self.prefix)
    }

    /// Runs `cmd`, creating the inbox's consumer group first if Redis says it is missing
    /// (a new inbox, or Redis restarted without persistence).
    async fn with_group<T: redis::FromRedisValue>(&self, key: &str, cmd: &Cmd) -> Result<T> {
        self.with_named_group(key, GROUP, cmd).await
    }

    async fn with_named_group<T: redis::FromRedisValue>(
        &self,
        key: &str,
        group: &str,
        cmd: &Cmd,
    ) -> Result<T> {
        let mut conn = self.conn.clone();
        match self.run(cmd.query_async(&mut conn)).await {
            Err(Error::StoreUnavailable(msg)) if msg.contains("NOGROUP") => {
                self.create_group(key, group).await?;
                self.run(cmd.query_async(&mut conn)).await
            }
            other => other,
        }
    }

    async fn create_group(&self, key: &str, group: &str) -> Result<()> {
        let mut conn = self.conn.clone();
        let created: redis::RedisResult<String> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(key)
            .arg(group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut conn)
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(e) if e.to_string().contains("BUSYGROUP") => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// XREADGROUP that may block: on a dedicated connection when one can be had.
    async fn read_group(
        &self,
        key: &str,
        (group, consumer): (&str, &str),
        count: usize,
        wait: Duration,
    ) -> Result<Value> {
        let read = |block: Option<Duration>| {
            let mut cmd = redis::cmd("XREADGROUP");
            cmd.arg("GROUP")
                .arg(group)
                .arg(consumer)
                .arg("COUNT")
                .arg(count);
            if let Some(block) = block {
                cmd.arg("BLOCK").arg(block.as_millis().max(1) as u64);
            }
            cmd.arg("STREAMS").arg(key).arg(">");
            cmd
        };
        if wait.is_zero() {
            return self.with_named_group(key, group, &read(None)).await;
        }
        if self.client.is_none() {
            // A cluster connection cannot block a node for us: poll until `wait` is over.
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                let reply: Value = self.with_named_group(key, group, &read(None)).await?;
                if !matches!(reply, Value::Nil) || tokio::time::Instant::now() >= deadline {
                    return Ok(reply);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        // A bounded number of connections block at once; a pull that gets no slot within
        // its wait answers with what is ready now.
        let started = tokio::time::Instant::now();
        // Routers (one loop per log partition, a fixed number) do not take long-poll slots:
        // plugins' pulls can never starve them, nor they the pulls.
        let slot = if group == ROUTER {
            None
        } else {
            match tokio::time::timeout(wait, self.blocking_slots.acquire()).await {
                Ok(Ok(slot)) => Some(slot),
                _ => return self.with_named_group(key, group, &read(None)).await,
            }
        };
        let left = wait
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(1));
        let cmd = read(Some(left));
        let pooled = {
            let mut idle = self.blocking.lock().unwrap_or_else(|p| p.into_inner());
            // Connections idle too long are dropped (closed) rather than reused.
            idle.retain(|(at, _)| at.elapsed() < BLOCKING_IDLE);
            idle.pop().map(|(_, c)| c)
        };
        let mut conn = match pooled {
            Some(c) => c,
            None => {
                let client = self.client.as_ref().expect("checked above");
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(None);
                self.run(client.get_multiplexed_async_connection_with_config(&config))
                    .await?
            }
        };
        let bound = left + self.timeout;
        let result = match tokio::time::timeout(bound, cmd.query_async::<Value>(&mut conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) if e.to_string().contains("NOGROUP") => {
                self.create_group(key, group).await?;
                Ok(Value::Nil)
            }
            Ok(Err(e)) => Err(Error::from(e)),
            Err(_) => Err(Error::StoreUnavailable("blocking read timed out".into())),
        };
        // Only a connection that answered goes back to the pool; at most one per slot.
        if result.is_ok() {
            self.blocking
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((std::time::Instant::now(), conn));
        }
        drop(slot);
        result
    }

    fn sources_key(&self) -> String {
        format!("{}:cfg:sources", self.prefix)
    }

    fn cfg_key(&self, what: &str) -> String {
        format!("{}:cfg:{what}", self.prefix)
    }

    async fn hget_json<T: serde::de::DeserializeOwned>(
        &self,
        key: String,
        field: &str,
    ) -> Result<Option<T>> {
        let json: Option<String> = self.query(redis::cmd("HGET").arg(key).arg(field)).await?;
        json.map(|j| serde_json::from_str(&j).map_err(|e| corrupt(format!("{field}: {e}"))))
            .transpose()
    }

    async fn hset_json<T: serde::Serialize>(
        &self,
        key: String,
        field: &str,
        value: &T,
    ) -> Result<()> {
        let json = serde_json::to_string(value).map_err(|e| Error::Internal(e.to_string()))?;
        let _: i64 = self
            .query(redis::cmd("HSET").arg(key).arg(field).arg(json))
            .await?;
        Ok(())
    }

    /// Bounds every operation so a hung connection answers 503 instead of hanging.
    async fn run<T>(&self, op: impl Future<Output = redis::RedisResult<T>>) -> Result<T> {
        match tokio::time::timeout(self.timeout, op).await {
            Ok(result) => result.map_err(Error::from),
            Err(_) => Err(Error::StoreUnavailable(format!(
                "no answer from redis within {:?}",
                self.timeout
            ))),
        }
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &Cmd) -> Result<T> {
        let mut conn = self.conn.clone();
        self.run(cmd.query_async(&mut conn)).await
    }
}

fn corrupt(what: impl std::fmt::Display) -> Error {
    Error::StoreCorrupt(what.to_string())
}

/// The value of `name` in a `CONFIG GET` reply: `[name, value]` (RESP2) or `{name: value}`
/// (RESP3).
fn config_value(reply: &Value, name: &str) -> Option<String> {
    let pairs: Vec<(&Value, &Value)> = match reply {
        Value::Array(items) => items.chunks_exact(2).map(|p| (&p[0], &p[1])).collect(),
        Value::Map(items) => items.iter().map(|(k, v)| (k, v)).collect(),
        _ => return None,
    };
    pairs
        .into_iter()
        .find(|(k, _)| text(k).is_ok_and(|k| k == name))
        .and_then(|(_, v)| text(v).ok())
}

fn bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

fn text(v: &Value) -> Result<String> {
    let b = bytes(v).ok_or_else(|| corrupt("expected a string"))?;
    String::from_utf8(b.to_vec()).map_err(|_| corrupt("expected UTF-8"))
}

/// XRANGE/XREVRANGE reply: [[id, [field, value, …]], …].
fn entries(reply: Value) -> Result<Vec<(StreamId, BTreeMap<String, Value>)>> {
    let Value::Array(items) = reply else {
        return Err(corrupt("stream reply is not an array"));
    };
    items
        .into_iter()
        .map(|item| {
            let Value::Array(mut pair) = item else {
                return Err(corrupt("stream entry is not an array"));
            };
            if pair.len() != 2 {
                return Err(corrupt("stream entry has no fields"));
            }
            let fields = pair.pop().expect("two items");
            let id: StreamId = text(&pair[0])?
                .parse()
                .map_err(|_| corrupt("bad stream id"))?;
            let Value::Array(fields) = fields else {
                return Err(corrupt("stream fields are not an array"));
            };
            let mut map = BTreeMap::new();
            let mut it = fields.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                map.insert(text(&k)?, v);
            }
            Ok((id, map))
        })
        .collect()
}

fn inbox_fields(e: &InboxEntry) -> [(&'static str, &str); 4] {
    [
        ("id", e.event_id.as_str()),
        ("tenant", e.tenant.as_str()),
        ("type", e.event_type.as_str()),
        ("event", e.json.as_str()),
    ]
}

fn inbox_entry(map: &BTreeMap<String, Value>) -> Result<InboxEntry> {
    Ok(InboxEntry {
        event_id: field(map, "id")?,
        tenant: field(map, "tenant")?,
        event_type: field(map, "type")?,
        json: field(map, "event")?,
    })
}

/// XREADGROUP reply: [[key, [[id, [f, v, …]], …]]] or nil.
fn group_entries(reply: Value) -> Result<Vec<(StreamId, BTreeMap<String, Value>)>> {
    match reply {
        Value::Nil => Ok(Vec::new()),
        Value::Array(streams) => {
            let mut out = Vec::new();
            for s in streams {
                let Value::Array(mut pair) = s else {
                    return Err(corrupt("XREADGROUP stream is not an array"));
                };
                if pair.len() == 2 {
                    out.extend(entries(pair.pop().expect("two items"))?);
                }
            }
            Ok(out)
        }
        Value::Map(streams) => {
            let mut out = Vec::new();
            for (_, v) in streams {
                out.extend(entries(v)?);
            }
            Ok(out)
        }
        other => Err(corrupt(format!("unexpected XREADGROUP reply {other:?}"))),
    }
}

fn field(map: &BTreeMap<String, Value>, name: &str) -> Result<String> {
    text(
        map.get(name)
            .ok_or_else(|| corrupt(format!("entry lacks {name}")))?,
    )
}

fn log_record(map: &BTreeMap<String, Value>) -> Result<LogRecord> {
    Ok(LogRecord {
        event_id: field(map, "id")?,
        tenant: field(map, "tenant")?,
        event_type: field(map, "type")?,
        json: field(map, "event")?,
    })
}

fn quarantine_fields(r: &QuarantineRecord) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("tenant", r.tenant.as_bytes().to_vec()),
        ("source", r.source_id.as_bytes().to_vec()),
        ("provider", r.provider.as_bytes().to_vec()),
        ("topic", r.topic.clone().unwrap_or_default().into_bytes()),
        ("reason", r.reason.as_bytes().to_vec()),
        ("received_at", r.received_at.to_rfc3339().into_bytes()),
        (
            "headers",
            serde_json::to_vec(&r.headers).unwrap_or_default(),
        ),
        ("dedupe", r.dedupe_key.as_bytes().to_vec()),
        ("body", r.body.clone()),
    ]
}

fn quarantine_record(map: &BTreeMap<String, Value>) -> Result<QuarantineRecord> {
    let topic = field(map, "topic")?;
    Ok(QuarantineRecord {
        tenant: field(map, "tenant")?,
        source_id: field(map, "source")?,
        provider: field(map, "provider")?,
        topic: (!topic.is_empty()).then_some(topic),
        reason: field(map, "reason")?,
        received_at: DateTime::parse_from_rfc3339(&field(map, "received_at")?)
            .map_err(|_| corrupt("bad received_at"))?
            .to_utc(),
        headers: serde_json::from_str(&field(map, "headers")?)
            .map_err(|_| corrupt("bad headers"))?,
        dedupe_key: field(map, "dedupe")?,
        body: bytes(map.get("body").ok_or_else(|| corrupt("entry lacks body"))?)
            .ok_or_else(|| corrupt("body is not bytes"))?
            .to_vec(),
    })
}

#[async_trait]
impl Store for RedisStore {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> Result<()> {
        let _: String = self.query(&redis::cmd("PING")).await?;
        Ok(())
    }

    async fn put_source(&self, source: &SourceRecord) -> Result<()> {
        let stored = sealed::seal_source(self.sealer.as_deref(), source)?;
        let json = serde_json::to_string(&stored).map_err(|e| Error::Internal(e.to_string()))?;
        let _: i64 = self
            .query(
                redis::cmd("HSET")
                    .arg(self.sources_key())
                    .arg(&source.id)
                    .arg(json),
            )
            .await?;
        Ok(())
    }

    async fn get_source(&self, id: &str) -> Result<Option<SourceRecord>> {
        let Some(json) = self.raw_source(id).await? else {
            return Ok(None);
        };
        let stored: SourceRecord =
            serde_json::from_str(&json).map_err(|e| corrupt(format!("source {id}: {e}")))?;
        sealed::open_source(self.sealer.as_deref(), stored).map(Some)
    }

    async fn delete_source(&self, id: &str) -> Result<bool> {
        let n: i64 = self
            .query(redis::cmd("HDEL").arg(self.sources_key()).arg(id))
            .await?;
        Ok(n > 0)
    }

    async fn put_plugin(&self, plugin: &PluginRecord) -> Result<()> {
        self.hset_json(self.cfg_key("plugins"), &plugin.id, plugin)
            .await
    }

    async fn get_plugin(&self, id: &str) -> Result<Option<PluginRecord>> {
        self.hget_json(self.cfg_key("plugins"), id).await
    }

    async fn put_key(&self, hash: &str, plugin_id: &str) -> Result<()> {
        let _: i64 = self
            .query(
                redis::cmd("HSET")
                    .arg(self.cfg_key("keys"))
                    .arg(hash)
                    .arg(plugin_id),
            )
            .await?;
        Ok(())
    }

    async fn delete_key(&self, hash: &str) -> Result<()> {
        let _: i64 = self
            .query(redis::cmd("HDEL").arg(self.cfg_key("keys")).arg(hash))
            .await?;
        Ok(())
    }

    async fn claim_namespaces(
        &self,
        plugin_id: &str,
        namespaces: &[String],
    ) -> Result<Vec<(String, String)>> {
        if namespaces.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = self.claim.prepare_invoke();
        inv.key(self.cfg_key("namespaces")).arg(plugin_id);
        for ns in namespaces {
            inv.arg(ns);
        }
        let mut conn = self.conn.clone();
        let taken: Vec<String> = self.run(inv.invoke_async(&mut conn)).await?;
        Ok(taken
            .chunks(2)
            .filter_map(|pair| match pair {
                [ns, owner] => Some((ns.clone(), owner.clone())),
                _ => None,
            })
            .collect())
    }

    async fn plugin_for_key(&self, hash: &str) -> Result<Option<String>> {
        self.query(redis::cmd("HGET").arg(self.cfg_key("keys")).arg(hash))
            .await
    }

    async fn put_installation(&self, installation: &InstallationRecord) -> Result<()> {
        let key = self.cfg_key(&format!("installs:{}", installation.tenant));
        self.hset_json(key, &installation.plugin_id, installation)
            .await
    }

    async fn delete_installation(&self, plugin_id: &str, tenant: &str) -> Result<bool> {
        let key = self.cfg_key(&format!("installs:{tenant}"));
        let n: i64 = self
            .query(redis::cmd("HDEL").arg(key).arg(plugin_id))
            .await?;
        Ok(n > 0)
    }

    async fn installations(&self, tenant: &str) -> Result<Vec<InstallationRecord>> {
        let key = self.cfg_key(&format!("installs:{tenant}"));
        let all: Vec<String> = self.query(redis::cmd("HVALS").arg(key)).await?;
        let mut out: Vec<InstallationRecord> = all
            .iter()
            .map(|j| serde_json::from_str(j).map_err(|e| corrupt(format!("installation: {e}"))))
            .collect::<Result<_>>()?;
        out.sort_by(|a, b| a.plugin_id.cmp(&b.plugin_id));
        Ok(out)
    }

    async fn route_pull(
        &self,
        partition: u32,
        max: usize,
        stale: Duration,
        wait: Duration,
    ) -> Result<Vec<LogEntry>> {
        let key = self.key("log", partition);
        let claim: Value = self
            .with_named_group(
                &key,
                ROUTER,
                redis::cmd("XAUTOCLAIM")
                    .arg(&key)
                    .arg(ROUTER)
                    .arg(ROUTER)
                    .arg(stale.as_millis() as u64)
                    .arg("0-0")
                    .arg("COUNT")
                    .arg(max),
            )
            .await?;
        let mut found = match claim {
            Value::Array(mut parts) if parts.len() >= 2 => entries(parts.swap_remove(1))?,
            _ => Vec::new(),
        };
        if found.len() < max {
            let wait = if found.is_empty() {
                wait
            } else {
                Duration::ZERO
            };
            let reply = self
                .read_group(&key, (ROUTER, ROUTER), max - found.len(), wait)
                .await?;
            found.extend(group_entries(reply)?);
        }
        found
            .into_iter()
            .map(|(cursor, map)| {
                Ok(LogEntry {
                    cursor,
                    record: log_record(&map)?,
                })
            })
            .collect()
    }

    async fn route_ack(&self, partition: u32, ids: &[StreamId]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let key = self.key("log", partition);
        let ids: Vec<String> = ids.iter().map(StreamId::to_string).collect();
        let _: i64 = self
            .with_named_group(
                &key,
                ROUTER,
                redis::cmd("XACK").arg(&key).arg(ROUTER).arg(&ids),
            )
            .await?;
        Ok(())
    }

    async fn inbox_push(&self, plugin_id: &str, entries: &[InboxEntry]) -> Result<Pushed> {
        let key = self.inbox_key(plugin_id);
        let mut pipe = redis::pipe();
        for e in entries {
            let cmd = pipe.cmd("XADD").arg(&key).arg("*");
            for (k, v) in inbox_fields(e) {
                cmd.arg(k).arg(v);
            }
        }
        // Exact trimming: the cap is a promise about memory, and XTRIM counts what it took.
        let cap = self.retention.inbox_maxlen;
        if cap > 0 {
            pipe.cmd("XTRIM").arg(&key).arg("MAXLEN").arg(cap);
        }
        let mut conn = self.conn.clone();
        let mut replies: Vec<Value> = self.run(pipe.query_async(&mut conn)).await?;
        let trimmed = if cap > 0 {
            match replies.pop() {
                Some(Value::Int(n)) => n.max(0) as u64,
                _ => return Err(corrupt("XTRIM reply is not a count")),
            }
        } else {
            0
        };
        let ids = replies
            .iter()
            .map(|id| text(id)?.parse().map_err(|_| corrupt("bad stream id")))
            .collect::<Result<Vec<StreamId>>>()?;
        Ok(Pushed { ids, trimmed })
    }

    async fn inbox_pull(&self, plugin_id: &str, o: PullOptions) -> Result<Vec<Delivered>> {
        let key = self.inbox_key(plugin_id);
        let mut out = Vec::new();

        // Deliveries whose visibility ran out come back first.
        let claim: Value = self
            .with_group(
                &key,
                redis::cmd("XAUTOCLAIM")
                    .arg(&key)
                    .arg(GROUP)
                    .arg(CONSUMER)
                    .arg(o.visibility.as_millis() as u64)
                    .arg("0-0")
                    .arg("COUNT")
                    .arg(o.max),
            )
            .await?;
        let claimed = match claim {
            Value::Array(mut parts) if parts.len() >= 2 => entries(parts.swap_remove(1))?,
            _ => Vec::new(),
        };
        if !claimed.is_empty() {
            let lo = claimed.iter().map(|(id, _)| *id).min().expect("not empty");
            let hi = claimed.iter().map(|(id, _)| *id).max().expect("not empty");
            let pending: Value = self
                .query(
                    redis::cmd("XPENDING")
                        .arg(&key)
                        .arg(GROUP)
                        .arg(lo.to_string())
                        .arg(hi.to_string())
                        .arg(10_000),
                )
                .await?;
            let mut counts = std::collections::HashMap::new();
            if let Value::Array(rows) = pending {
                for row in rows {
                    if let Value::Array(cols) = row
                        && cols.len() == 4
                        && let (Ok(id), Value::Int(n)) = (text(&cols[0]), &cols[3])
                        && let Ok(id) = id.parse::<StreamId>()
                    {
                        counts.insert(id, *n as u64);
                    }
                }
            }
            for (id, map) in claimed {
                let entry = inbox_entry(&map)?;
                let attempt = counts.get(&id).copied().unwrap_or(2);
                if attempt > o.max_attempts {
                    // One script: the dead letter is written, capped, and the delivery
                    // acknowledged and removed together, so a crash between steps can
                    // neither lose it nor leave it in both streams.
                    let mut inv = self.bury.prepare_invoke();
                    inv.key(&key)
                        .key(self.dead_key(plugin_id))
                        .arg(GROUP)
                        .arg(id.to_string())
                        .arg(self.retention.dead_maxlen);
                    for (k, v) in inbox_fields(&entry) {
                        inv.arg(k).arg(v);
                    }
                    inv.arg("attempts").arg(attempt - 1);
                    let mut conn = self.conn.clone();
                    let trimmed: i64 = self.run(inv.invoke_async(&mut conn)).await?;
                    if trimmed > 0 {
                        tracing::warn!(
                            plugin_id,
                            trimmed,
                            "dead letters over their cap: the oldest were removed"
                        );
                    }
                    tracing::warn!(plugin_id, event_id = %entry.event_id, attempts = attempt - 1, "delivery moved to dead letters");
                    continue;
                }
                out.push(Delivered {
                    receipt: id,
                    attempt,
                    entry,
                });
            }
        }

        if out.len() < o.max {
            let wait = if out.is_empty() {
                o.wait
            } else {
                Duration::ZERO
            };
            let reply = self
                .read_group(&key, (GROUP, CONSUMER), o.max - out.len(), wait)
                .await?;
            for (id, map) in group_entries(reply)? {
                out.push(Delivered {
                    receipt: id,
                    attempt: 1,
                    entry: inbox_entry(&map)?,
                });
            }
        }
        Ok(out)
    }

    async fn inbox_ack(&self, plugin_id: &str, receipts: &[StreamId]) -> Result<u64> {
        if receipts.is_empty() {
            return Ok(0);
        }
        let key = self.inbox_key(plugin_id);
        let ids: Vec<String> = receipts.iter().map(StreamId::to_string).collect();
        let acked: i64 = self
            .with_group(&key, redis::cmd("XACK").arg(&key).arg(GROUP).arg(&ids))
            .await?;
        // Acknowledged entries leave the stream: an inbox holds only what is unfinished.
        if acked > 0 {
            let _: i64 = self.query(redis::cmd("XDEL").arg(&key).arg(&ids)).await?;
        }
        Ok(acked.max(0) as u64)
    }

    async fn inbox_nack(
        &self,
        plugin_id: &str,
        receipts: &[StreamId],
        retry_after: Duration,
        visibility: Duration,
    ) -> Result<u64> {
        if receipts.is_empty() {
            return Ok(0);
        }
        let key = self.inbox_key(plugin_id);
        let ids: Vec<String> = receipts.iter().map(StreamId::to_string).collect();
        // Pretend they have been idle long enough to come back after `retry_after`.
        let idle = visibility.saturating_sub(retry_after).as_millis() as u64;
        let claimed: Vec<String> = self
            .with_group(
                &key,
                redis::cmd("XCLAIM")
                    .arg(&key)
                    .arg(GROUP)
                    .arg(CONSUMER)
                    .arg(0)
                    .arg(&ids)
                    .arg("IDLE")
                    .arg(idle)
                    .arg("JUSTID"),
            )
            .await?;
        Ok(claimed.len() as u64)
    }

    async fn dead_letters(&self, plugin_id: &str, limit: usize) -> Result<Vec<DeadLetter>> {
        let reply: Value = self
            .query(
                redis::cmd("XRANGE")
                    .arg(self.dead_key(plugin_id))
                    .arg("-")
                    .arg("+")
                    .arg("COUNT")
                    .arg(limit),
            )
            .await?;
        entries(reply)?
            .into_iter()
            .map(|(id, map)| {
                Ok(DeadLetter {
                    id,
                    attempts: field(&map, "attempts")?.parse().unwrap_or(0),
                    entry: inbox_entry(&map)?,
                })
            })
            .collect()
    }

    async fn replay_dead(&self, plugin_id: &str, ids: Option<&[StreamId]>) -> Result<Pushed> {
        let dead = match ids {
            None => self.dead_letters(plugin_id, 10_000).await?,
            Some(ids) => {
                let mut found = Vec::new();
                for id in ids {
                    let reply: Value = self
                        .query(
                            redis::cmd("XRANGE")
                                .arg(self.dead_key(plugin_id))
                                .arg(id.to_string())
                                .arg(id.to_string()),
                        )
                        .await?;
                    for (id, map) in entries(reply)? {
                        found.push(DeadLetter {
                            id,
                            attempts: 0,
                            entry: inbox_entry(&map)?,
                        });
                    }
                }
                found
            }
        };
        if dead.is_empty() {
            return Ok(Pushed {
                ids: Vec::new(),
                trimmed: 0,
            });
        }
        let entries: Vec<InboxEntry> = dead.iter().map(|d| d.entry.clone()).collect();
        let pushed = self.inbox_push(plugin_id, &entries).await?;
        let ids: Vec<String> = dead.iter().map(|d| d.id.to_string()).collect();
        let _: i64 = self
            .query(redis::cmd("XDEL").arg(self.dead_key(plugin_id)).arg(&ids))
            .await?;
        Ok(pushed)
    }

    async fn append(&self, append: Append) -> Result<Appended> {
        let p = append.partition;
        let seen = format!("{}:seen:{{{p}}}:{}", self.prefix, append.dedupe_key);
        let mut inv = self.append.prepare_invoke();
        inv.key(seen);
        let ttl_ms = append.dedupe_ttl.as_millis().max(1) as u64;
        match &append.write {
            Write::Events(records) => {
                inv.key(self.key("log", p));
                for r in records {
                    inv.key(format!("{}:seen:{{{p}}}:evt:{}", self.prefix, r.event_id));
                }
                inv.arg(ttl_ms)
                    .arg(self.retention.log_maxlen)
                    .arg(records.len())
                    .arg(records.len());
                for r in records {
                    inv.arg(8)
                        .arg("id")
                        .arg(&r.event_id)
                        .arg("tenant")
                        .arg(&r.tenant)
                        .arg("type")
                        .arg(&r.event_type)
                        .arg("event")
                        .arg(&r.json);
                }
            }
            Write::Quarantine(record) => {
                let fields = quarantine_fields(record);
                inv.key(self.key("quarantine", p))
                    .arg(ttl_ms)
                    .arg(self.retention.quarantine_maxlen)
                    .arg(1)
                    .arg(0)
                    .arg(fields.len() * 2);
                for (k, v) in fields {
                    inv.arg(k).arg(v);
                }
            }
        }
        if let Some(state) = &append.state {
            inv.key(self.state_key(p, &state.key))
                .arg(state.expected_version)
                .arg(&state.json)
                .arg(state.ttl.as_millis().max(1) as u64);
        }
        let mut conn = self.conn.clone();
        let reply: Value = self.run(inv.invoke_async(&mut conn)).await?;
        match reply {
            Value::Nil => Ok(Appended::Duplicate),
            Value::BulkString(b) if b == b"conflict" => Ok(Appended::Conflict),
            Value::SimpleString(s) if s == "conflict" => Ok(Appended::Conflict),
            Value::Array(mut parts) if parts.len() == 3 => {
                let known = parts.pop().expect("three parts");
                let ids = parts.pop().expect("three parts");
                let trimmed = match parts.pop() {
                    Some(Value::Int(n)) => n.max(0) as u64,
                    _ => return Err(corrupt("append reply lacks the trim count")),
                };
                let ids = match ids {
                    Value::Array(ids) => ids
                        .iter()
                        .map(|v| text(v)?.parse().map_err(|_| corrupt("bad stream id")))
                        .collect::<Result<Vec<StreamId>>>()?,
                    _ => return Err(corrupt("append reply lacks ids")),
                };
                let known = match (known, &append.write) {
                    (Value::Array(known), Write::Events(records)) => known
                        .iter()
                        .map(|v| match v {
                            Value::Int(i) if *i >= 1 => records
                                .get(*i as usize - 1)
                                .map(|r| r.event_id.clone())
                                .ok_or_else(|| corrupt("append skipped an unknown entry")),
                            _ => Err(corrupt("bad skipped index")),
                        })
                        .collect::<Result<Vec<String>>>()?,
                    (Value::Array(known), _) if known.is_empty() => Vec::new(),
                    _ => return Err(corrupt("append reply lacks skipped entries")),
                };
                Ok(Appended::Written {
                    ids,
                    trimmed,
                    known,
                })
            }
            other => Err(corrupt(format!("unexpected append reply {other:?}"))),
        }
    }

    async fn get_state(&self, partition: u32, key: &str) -> Result<Option<Versioned>> {
        let raw: Option<String> = self
            .query(redis::cmd("GET").arg(self.state_key(partition, key)))
            .await?;
        raw.map(|raw| {
            let (version, json) = raw
                .split_once('|')
                .ok_or_else(|| corrupt(format!("state {key} has no version")))?;
            Ok(Versioned {
                version: version
                    .parse()
                    .map_err(|_| corrupt(format!("state {key} has a bad version")))?,
                json: json.to_string(),
            })
        })
        .transpose()
    }

    async fn read_log(
        &self,
        partition: u32,
        after: Option<StreamId>,
        count: usize,
    ) -> Result<Vec<LogEntry>> {
        let start = after.map_or_else(|| "-".to_string(), |a| format!("({a}"));
        let reply: Value = self
            .query(
                redis::cmd("XRANGE")
                    .arg(self.key("log", partition))
                    .arg(start)
                    .arg("+")
                    .arg("COUNT")
                    .arg(count),
            )
            .await?;
        entries(reply)?
            .into_iter()
            .map(|(cursor, map)| {
                Ok(LogEntry {
                    cursor,
                    record: log_record(&map)?,
                })
            })
            .collect()
    }

    async fn get_quarantine(&self, id: QuarantineId) -> Result<Option<StoredQuarantine>> {
        let entry = id.entry.to_string();
        let reply: Value = self
            .query(
                redis::cmd("XRANGE")
                    .arg(self.key("quarantine", id.partition))
                    .arg(&entry)
                    .arg(&entry),
            )
            .await?;
        let Some((_, map)) = entries(reply)?.into_iter().next() else {
            return Ok(None);
        };
        let replayed: Option<String> = self
            .query(
                redis::cmd("HGET")
                    .arg(self.key("qreplayed", id.partition))
                    .arg(&entry),
            )
            .await?;
        Ok(Some(StoredQuarantine {
            id,
            record: quarantine_record(&map)?,
            replayed: replayed.and_then(|j| serde_json::from_str(&j).ok()),
        }))
    }

    async fn list_quarantine(
        &self,
        partitions: &[u32],
        limit: usize,
    ) -> Result<Vec<StoredQuarantine>> {
        let mut all = Vec::new();
        for &p in partitions {
            let reply: Value = self
                .query(
                    redis::cmd("XREVRANGE")
                        .arg(self.key("quarantine", p))
                        .arg("+")
                        .arg("-")
                        .arg("COUNT")
                        .arg(limit),
                )
                .await?;
            for (entry, map) in entries(reply)? {
                all.push(StoredQuarantine {
                    id: QuarantineId {
                        partition: p,
                        entry,
                    },
                    record: quarantine_record(&map)?,
                    replayed: None,
                });
            }
        }
        all.sort_by_key(|q| std::cmp::Reverse((q.id.entry, q.id.partition)));
        all.truncate(limit);
        for q in &mut all {
            let replayed: Option<String> = self
                .query(
                    redis::cmd("HGET")
                        .arg(self.key("qreplayed", q.id.partition))
                        .arg(q.id.entry.to_string()),
                )
                .await?;
            q.replayed = replayed.and_then(|j| serde_json::from_str(&j).ok());
        }
        Ok(all)
    }

    async fn mark_replayed(&self, id: QuarantineId, event_ids: &[String]) -> Result<()> {
        let json = serde_json::to_string(event_ids).map_err(|e| Error::Internal(e.to_string()))?;
        let _: i64 = self
            .query(
                redis::cmd("HSET")
                    .arg(self.key("qreplayed", id.partition))
                    .arg(id.entry.to_string())
                    .arg(json),
            )
            .await?;
        Ok(())
    }
}
