//! The Redis store. Every delivery is one Lua script (dedupe check, XADD(s), marks,
//! snapshot compare-and-set, retention trim) on keys that share the partition's hash tag;
//! every key name is in [`keys`].
//!
//! `log.rs` tenant logs and the router group, `inbox.rs` plugin inboxes and dead letters,
//! `quarantine.rs` unmappable payloads, `registry.rs` configuration hashes; this file holds
//! the connection, its bounds and the reply decoding they share.

pub mod durability;
mod inbox;
mod keys;
mod log;
mod polls;
mod quarantine;
mod registry;
mod replicated;
mod tallies;

use async_trait::async_trait;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use self::keys::Keys;
use super::sealed::Sealer;
use super::{Retention, Store, StoreError, StoreResult, StreamId};

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
    keys: Keys,
    retention: Retention,
    timeout: Duration,
    sealer: Option<Arc<Sealer>>,
    wait_replicas: u32,
    /// Connections deliveries are written on when `wait_replicas` is set (else empty).
    acked: Vec<Conn>,
    acked_next: std::sync::atomic::AtomicUsize,
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
    /// Replicas that must confirm a delivery's write (Redis `WAIT`) before it is answered
    /// 2xx; 0 answers once the primary has it. See `replicated.rs`.
    pub wait_replicas: u32,
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
            wait_replicas: 0,
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
    pub async fn connect(url: &str, options: RedisOptions) -> StoreResult<Self> {
        let mut single = None;
        // With `wait_replicas`, deliveries are written on connections of their own: a
        // `WAIT` holds its connection until a replica answers.
        let acked_pool = if options.wait_replicas > 0 {
            replicated::POOL
        } else {
            0
        };
        let mut acked = Vec::with_capacity(acked_pool);
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
                .map_err(|e| StoreError::Config(format!("redis cluster URL: {e}")))?;
            for _ in 0..acked_pool {
                acked.push(Conn::Cluster(client.get_async_connection().await?));
            }
            Conn::Cluster(client.get_async_connection().await?)
        } else {
            let client = redis::Client::open(url)
                .map_err(|e| StoreError::Config(format!("redis URL: {e}")))?;
            single = Some(client.clone());
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(options.timeout))
                .set_response_timeout(Some(options.timeout))
                .set_number_of_retries(2)
                .set_max_delay(Duration::from_millis(500));
            let manager = |client: redis::Client| {
                ConnectionManager::new_lazy_with_config(client, config.clone())
                    .map(Conn::Single)
                    .map_err(|e| StoreError::Config(format!("redis: {e}")))
            };
            for _ in 0..acked_pool {
                acked.push(manager(client.clone())?);
            }
            manager(client)?
        };
        Ok(RedisStore {
            conn,
            client: single,
            blocking: std::sync::Mutex::new(Vec::new()),
            blocking_slots: tokio::sync::Semaphore::new(options.blocking_pool.max(1)),
            keys: Keys::new(&options.prefix),
            retention: options.retention,
            timeout: options.timeout,
            sealer: options.sealer,
            wait_replicas: options.wait_replicas,
            acked,
            acked_next: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// The sealer source secrets are stored with; `None` in the insecure plaintext mode.
    pub fn sealer(&self) -> Option<&Sealer> {
        self.sealer.as_deref()
    }

    /// Redis's `maxmemory-policy` (on one node of a cluster). Fails where `CONFIG` is refused
    /// (ACLs, managed Redis).
    pub async fn eviction_policy(&self) -> StoreResult<String> {
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

    /// The server's version (major, minor), from `INFO server`.
    pub async fn server_version(&self) -> StoreResult<(u32, u32)> {
        let info: String = self.query(redis::cmd("INFO").arg("server")).await?;
        let version = info
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .ok_or_else(|| corrupt("INFO server names no redis_version"))?;
        let mut parts = version.trim().split('.').map(|p| p.parse::<u32>().ok());
        match (parts.next().flatten(), parts.next().flatten()) {
            (Some(major), Some(minor)) => Ok((major, minor)),
            _ => Err(corrupt(format!("redis_version {version:?}"))),
        }
    }

    /// Redis's persistence settings (on one node of a cluster). Fails where `CONFIG` is
    /// refused.
    pub async fn persistence(&self) -> StoreResult<durability::Persistence> {
        let get = |name: &'static str| {
            let cmd = redis::cmd("CONFIG").arg("GET").arg(name).clone();
            async move {
                let reply: Value = self.query(&cmd).await?;
                config_value(&reply, name)
                    .ok_or_else(|| corrupt(format!("unexpected CONFIG GET reply {reply:?}")))
            }
        };
        Ok(durability::Persistence {
            appendonly: get("appendonly").await?,
            appendfsync: get("appendfsync").await?,
            save: get("save").await?,
        })
    }

    /// Logs what Redis's persistence means for acknowledged deliveries: at info level when
    /// nothing acknowledged can be lost, else as a warning.
    pub async fn check_persistence(&self) -> Option<durability::Persistence> {
        match self.persistence().await {
            Ok(p) => {
                let meaning = p.meaning();
                match p.risk() {
                    durability::Risk::None => tracing::info!("redis persistence: {meaning}"),
                    _ => tracing::warn!("redis persistence: {meaning}"),
                }
                Some(p)
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "could not read redis persistence settings (CONFIG GET refused?): make \
                     sure appendonly is yes and appendfsync always (or everysec), or a Redis \
                     crash loses acknowledged deliveries"
                );
                None
            }
        }
    }

    async fn with_named_group<T: redis::FromRedisValue>(
        &self,
        key: &str,
        group: &str,
        cmd: &Cmd,
    ) -> StoreResult<T> {
        let mut conn = self.conn.clone();
        match self.run(cmd.query_async(&mut conn)).await {
            Err(StoreError::Unavailable(msg)) if msg.contains("NOGROUP") => {
                self.create_group(key, group).await?;
                self.run(cmd.query_async(&mut conn)).await
            }
            other => other,
        }
    }

    async fn create_group(&self, key: &str, group: &str) -> StoreResult<()> {
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
    ) -> StoreResult<Value> {
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
            Ok(Err(e)) => Err(StoreError::from(e)),
            Err(_) => Err(StoreError::Unavailable("blocking read timed out".into())),
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

    async fn hget_json<T: serde::de::DeserializeOwned>(
        &self,
        key: String,
        field: &str,
    ) -> StoreResult<Option<T>> {
        let json: Option<String> = self.query(redis::cmd("HGET").arg(key).arg(field)).await?;
        json.map(|j| serde_json::from_str(&j).map_err(|e| corrupt(format!("{field}: {e}"))))
            .transpose()
    }

    async fn hset_json<T: serde::Serialize>(
        &self,
        key: String,
        field: &str,
        value: &T,
    ) -> StoreResult<()> {
        let json = serde_json::to_string(value).map_err(|e| StoreError::Internal(e.to_string()))?;
        let _: i64 = self
            .query(redis::cmd("HSET").arg(key).arg(field).arg(json))
            .await?;
        Ok(())
    }

    /// Bounds every operation so a hung connection answers 503 instead of hanging.
    async fn run<T>(&self, op: impl Future<Output = redis::RedisResult<T>>) -> StoreResult<T> {
        match tokio::time::timeout(self.timeout, op).await {
            Ok(result) => result.map_err(StoreError::from),
            Err(_) => Err(StoreError::Unavailable(format!(
                "no answer from redis within {:?}",
                self.timeout
            ))),
        }
    }

    async fn invoke<T: redis::FromRedisValue>(
        &self,
        inv: &redis::ScriptInvocation<'_>,
    ) -> StoreResult<T> {
        let mut conn = self.conn.clone();
        self.run(inv.invoke_async(&mut conn)).await
    }

    /// Up to `limit` entries from `start` (`-`, an id, or `(id` for those after it).
    async fn xrange_from(
        &self,
        key: String,
        start: &str,
        limit: usize,
    ) -> StoreResult<Vec<(StreamId, BTreeMap<String, Value>)>> {
        let reply: Value = self
            .query(
                redis::cmd("XRANGE")
                    .arg(key)
                    .arg(start)
                    .arg("+")
                    .arg("COUNT")
                    .arg(limit),
            )
            .await?;
        entries(reply)
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &Cmd) -> StoreResult<T> {
        let mut conn = self.conn.clone();
        self.run(cmd.query_async(&mut conn)).await
    }
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
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

fn text(v: &Value) -> StoreResult<String> {
    let b = bytes(v).ok_or_else(|| corrupt("expected a string"))?;
    String::from_utf8(b.to_vec()).map_err(|_| corrupt("expected UTF-8"))
}

/// XRANGE/XREVRANGE reply: [[id, [field, value, …]], …].
fn entries(reply: Value) -> StoreResult<Vec<(StreamId, BTreeMap<String, Value>)>> {
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

/// XREADGROUP reply: [[key, [[id, [f, v, …]], …]]] or nil.
fn group_entries(reply: Value) -> StoreResult<Vec<(StreamId, BTreeMap<String, Value>)>> {
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

fn field(map: &BTreeMap<String, Value>, name: &str) -> StoreResult<String> {
    text(
        map.get(name)
            .ok_or_else(|| corrupt(format!("entry lacks {name}")))?,
    )
}

#[async_trait]
impl Store for RedisStore {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> StoreResult<()> {
        let _: String = self.query(&redis::cmd("PING")).await?;
        Ok(())
    }
}
