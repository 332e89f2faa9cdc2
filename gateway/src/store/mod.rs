//! Durable data behind capability traits ([`Registry`], [`EventLog`], [`Inboxes`],
//! [`Quarantine`], together [`Store`]), with a Redis implementation (production; every key
//! name in `redis/keys.rs`) and an in-memory one (quick start, SDK users' tests). Both pass
//! [`conformance`], one test per case.

#[cfg(any(test, feature = "testing"))]
pub mod conformance;
mod memory;
mod redis;
pub mod sealed;
pub mod tenant_log;

pub use self::memory::MemoryStore;
pub use self::redis::durability;
pub use self::redis::{DEFAULT_BLOCKING_POOL, RedisOptions, RedisStore};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use omnigate_schemas::api::{Provider, PublishedType, Scope, SourceOptions};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// What can go wrong in the store; the HTTP layer maps it in `error.rs` (unavailable and
/// configuration errors are 503 and start-up failures, corrupt data a 500 that names it).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Unreachable, timed out, refused (OOM, failover): the operation may be retried.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Redis answered, and refused the command for good (a key of the wrong type, a
    /// command it rejects): trying again the same way will not help.
    #[error("store refused: {0}")]
    Refused(String),
    /// The quarantine is at its cap: nothing was written (nothing is evicted either).
    #[error("quarantine full: {0}")]
    QuarantineFull(String),
    /// What is stored cannot be read back as what was written.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The store cannot work as configured (URL, sealing key).
    #[error("store configuration: {0}")]
    Config(String),
    /// A value could not be encoded for storage.
    #[error("store: {0}")]
    Internal(String),
}

pub type StoreResult<T> = std::result::Result<T, StoreError>;

impl From<::redis::RedisError> for StoreError {
    /// `WRONGTYPE` and plain `ERR` replies are refusals; everything else (no connection,
    /// timeouts, `OOM`, `LOADING`, `TRYAGAIN`, `CLUSTERDOWN`, `MOVED`, `READONLY`, `NOGROUP`,
    /// …) may pass, and is retried.
    fn from(e: ::redis::RedisError) -> Self {
        let text = e.to_string();
        // A pipeline's error carries each failed command's; all of them must be refusals.
        let refused = !text.contains("max number of clients")
            && e.into_server_errors().is_some_and(|errors| {
                !errors.is_empty()
                    && errors
                        .iter()
                        .all(|(_, s)| matches!(s.code(), "WRONGTYPE" | "ERR"))
            });
        match refused {
            true => StoreError::Refused(text),
            false => StoreError::Unavailable(text),
        }
    }
}

/// A log cursor or stream position that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a cursor")]
pub struct BadCursor(pub String);

/// A quarantine id that does not parse: no such entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("quarantine entry {0:?}")]
pub struct BadQuarantineId(pub String);

/// How much each stream keeps (logs approximately and only what the router delivered,
/// inboxes and dead letters exactly; 0 = unbounded). The quarantine is never trimmed: at
/// its caps a new entry is refused instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub log_maxlen: u64,
    /// Entries one quarantine partition holds.
    pub quarantine_maxlen: u64,
    /// Bytes one quarantine partition holds (the total budget over the partitions).
    pub quarantine_max_bytes: u64,
    /// Entries one plugin inbox holds; the oldest go first (counted and logged), so an
    /// abandoned plugin cannot fill Redis for every other tenant.
    pub inbox_maxlen: u64,
    /// Dead letters one plugin keeps.
    pub dead_maxlen: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            log_maxlen: 1_000_000,
            quarantine_maxlen: 100_000,
            quarantine_max_bytes: (1 << 30) / 16,
            inbox_maxlen: 100_000,
            dead_maxlen: 10_000,
        }
    }
}

impl Retention {
    pub fn from_settings(settings: &crate::config::Settings) -> Self {
        Retention {
            log_maxlen: settings.log_maxlen,
            quarantine_maxlen: settings.quarantine_maxlen,
            quarantine_max_bytes: settings.quarantine_max_bytes
                / u64::from(settings.partitions.max(1)),
            inbox_maxlen: settings.inbox_maxlen,
            dead_maxlen: settings.dead_maxlen,
        }
    }
}

/// What an inbox write did: the new entries' positions, and how many of the oldest entries
/// the inbox cap removed to make room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    pub ids: Vec<StreamId>,
    pub trimmed: u64,
}

/// How far the router is behind on one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RouteProgress {
    /// The last entry ever written to the partition's log (`None`: none yet). It only
    /// grows, so two equal readings mean nothing was written in between.
    pub last: Option<StreamId>,
    /// Log entries not routed yet: never taken by a router, or taken and not acknowledged
    /// (exact while Redis tracks the router group's lag; after trimming made it lose
    /// track, those never taken are counted up to 100).
    pub unrouted: u64,
}

/// What one plugin inbox holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InboxDepth {
    /// Entries never handed out.
    pub waiting: u64,
    /// Entries handed out and not acknowledged (being handled, or handed back to retry).
    pub in_flight: u64,
    /// Dead letters.
    pub dead: u64,
}

/// The Redis store's options from the gateway settings. Fails without a secret key unless
/// the settings ask for plaintext secrets ([`sealed::from_settings`]).
pub fn redis_options(settings: &crate::config::Settings) -> StoreResult<RedisOptions> {
    Ok(RedisOptions {
        prefix: settings.redis_prefix.clone(),
        retention: Retention::from_settings(settings),
        timeout: settings.store_timeout(),
        sealer: sealed::from_settings(settings)?,
        blocking_pool: settings.redis_blocking_pool,
        wait_replicas: settings.redis_wait_replicas,
    })
}

/// The partition a tenant's log lives in. Stable across processes and versions.
pub fn partition_of(tenant: &str, partitions: u32) -> u32 {
    let digest = Sha256::digest(tenant.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % u64::from(partitions.max(1))) as u32
}

/// A position in a stream: `<ms>-<seq>`, as Redis writes it. Also the log cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    /// A cursor a client sent: a position entries can follow. The last possible id parses
    /// but nothing can come after it (Redis refuses the range), so it is a bad cursor.
    pub fn cursor(s: &str) -> Result<StreamId, BadCursor> {
        let id: StreamId = s.parse()?;
        id.successor()
            .map(|_| id)
            .ok_or_else(|| BadCursor(s.to_string()))
    }

    /// The last id before this one, if there is one.
    pub fn predecessor(self) -> Option<StreamId> {
        match (self.ms, self.seq) {
            (ms, seq) if seq > 0 => Some(StreamId { ms, seq: seq - 1 }),
            (ms, _) if ms > 0 => Some(StreamId {
                ms: ms - 1,
                seq: u64::MAX,
            }),
            _ => None,
        }
    }

    /// The first id after this one, if there is one.
    pub fn successor(self) -> Option<StreamId> {
        match (self.ms, self.seq) {
            (ms, seq) if seq < u64::MAX => Some(StreamId { ms, seq: seq + 1 }),
            (ms, _) if ms < u64::MAX => Some(StreamId { ms: ms + 1, seq: 0 }),
            _ => None,
        }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl FromStr for StreamId {
    type Err = BadCursor;

    fn from_str(s: &str) -> Result<Self, BadCursor> {
        let bad = || BadCursor(s.to_string());
        let (ms, seq) = s.split_once('-').ok_or_else(bad)?;
        Ok(StreamId {
            ms: ms.parse().map_err(|_| bad())?,
            seq: seq.parse().map_err(|_| bad())?,
        })
    }
}

/// A quarantine entry's public id: `q<partition>-<ms>-<seq>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuarantineId {
    pub partition: u32,
    pub entry: StreamId,
}

impl fmt::Display for QuarantineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "q{}-{}", self.partition, self.entry)
    }
}

impl FromStr for QuarantineId {
    type Err = BadQuarantineId;

    fn from_str(s: &str) -> Result<Self, BadQuarantineId> {
        let bad = || BadQuarantineId(s.to_string());
        let rest = s.strip_prefix('q').ok_or_else(bad)?;
        let (p, entry) = rest.split_once('-').ok_or_else(bad)?;
        Ok(QuarantineId {
            partition: p.parse().map_err(|_| bad())?,
            entry: entry.parse().map_err(|_| bad())?,
        })
    }
}

/// A secret value: never printed, never sent back over the API.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(value: impl Into<String>) -> Self {
        SecretValue(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(***)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSecret {
    pub value: SecretValue,
    pub created_at: DateTime<Utc>,
    /// `None` for the current secret; set on the previous one when it is rotated out.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A connected shop, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRecord {
    pub id: String,
    pub tenant: String,
    pub provider: Provider,
    pub name: Option<String>,
    pub options: SourceOptions,
    /// Newest first.
    pub secrets: Vec<StoredSecret>,
    /// A thin source's API credentials ([`omnigate_schemas::api::PollCredentials`] as
    /// JSON), sealed at rest like its secrets; read by the enricher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_credentials: Option<SecretValue>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl SourceRecord {
    /// Secrets that verify deliveries at `now`.
    pub fn valid_secrets(&self, now: DateTime<Utc>) -> Vec<&str> {
        self.secrets
            .iter()
            .filter(|s| s.expires_at.is_none_or(|at| at > now))
            .map(|s| s.value.expose())
            .collect()
    }
}

/// An API key as stored: its SHA-256, never the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKey {
    pub id: String,
    /// Hex SHA-256 of the key (keys are 190-bit random strings: no salt or slow hash needed).
    pub hash: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A registered plugin, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginRecord {
    pub id: String,
    pub name: String,
    pub event_types: Vec<String>,
    pub publishes: Vec<PublishedType>,
    pub keys: Vec<StoredKey>,
    pub created_at: DateTime<Utc>,
    /// Push delivery (`None`: the plugin pulls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<PushRecord>,
}

/// A push plugin's endpoint and signing secrets, as stored (secrets sealed in Redis).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushRecord {
    pub url: String,
    pub max_in_flight: u32,
    /// Newest first; during a rotation's grace period each push is signed by each.
    pub secrets: Vec<SigningSecret>,
    /// Set while an operator has delivery paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_at: Option<DateTime<Utc>>,
}

impl PushRecord {
    /// Secrets that sign pushes at `now`, newest first.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&SigningSecret> {
        self.secrets
            .iter()
            .filter(|s| s.expires_at.is_none_or(|at| at > now))
            .collect()
    }
}

/// One `whsec_` signing secret of a push plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningSecret {
    pub id: String,
    pub value: SecretValue,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A plugin installed in a shop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallationRecord {
    pub plugin_id: String,
    pub tenant: String,
    pub scopes: Vec<Scope>,
    pub installed_at: DateTime<Utc>,
    /// A push plugin's endpoint for this shop, instead of the plugin's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_url: Option<String>,
}

/// One canonical event as appended to a log partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub event_id: String,
    pub tenant: String,
    pub event_type: String,
    /// The whole event, serialised.
    pub json: String,
}

/// A log record with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub cursor: StreamId,
    pub record: LogRecord,
}

/// An event in a plugin's inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxEntry {
    pub event_id: String,
    pub tenant: String,
    pub event_type: String,
    /// The whole event, serialised.
    pub json: String,
}

/// An inbox entry handed to the plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// What the plugin acknowledges (the entry's stream id).
    pub receipt: StreamId,
    /// 1 on the first delivery, growing with every redelivery.
    pub attempt: u64,
    pub entry: InboxEntry,
}

/// An entry that failed `max_attempts` deliveries, or that its plugin gave up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub id: StreamId,
    pub attempts: u64,
    pub entry: InboxEntry,
    /// Why the plugin handed it back, per attempt (the last [`Failure::KEPT`]).
    pub failures: Vec<Failure>,
}

/// Why a plugin handed a delivery back: kept with the delivery until it is acknowledged,
/// and with its dead letter after.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Failure {
    /// The delivery attempt that failed.
    pub attempt: u64,
    pub reason: String,
    /// RFC 3339, UTC.
    pub at: String,
}

impl Failure {
    /// Failures kept per delivery, newest last.
    pub const KEPT: usize = 10;
}

/// How a plugin hands deliveries back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nack {
    /// When they may be handed out again; longer than `visibility` is fine (push delivery
    /// backs off for hours).
    pub retry_after: Duration,
    /// The inbox's visibility timeout (what `retry_after` counts down from).
    pub visibility: Duration,
    /// Why, kept as a [`Failure`].
    pub reason: Option<String>,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// Given up on: moved to the dead letters at once instead.
    pub dead: bool,
    /// Not tried: handed back without counting the attempt (it waits behind another
    /// delivery), and without a reason kept.
    pub defer: bool,
}

/// How an inbox hands out entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PullOptions {
    pub max: usize,
    /// How long to wait for an entry when none is ready.
    pub wait: Duration,
    /// An unacknowledged delivery is handed out again after this long.
    pub visibility: Duration,
    /// Deliveries past this many attempts go to the dead-letter stream.
    pub max_attempts: u64,
}

/// A verified payload that could not be normalized, kept byte-exact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineRecord {
    pub tenant: String,
    pub source_id: String,
    pub provider: String,
    pub topic: Option<String>,
    pub reason: String,
    pub received_at: DateTime<Utc>,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    /// The delivery's dedupe key, so a replay derives the same event ids.
    pub dedupe_key: String,
}

impl QuarantineRecord {
    /// What it costs of the quarantine's byte budget: its body and what is kept beside it.
    pub fn stored_bytes(&self) -> u64 {
        let headers: usize = self.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
        (self.body.len()
            + headers
            + self.reason.len()
            + self.tenant.len()
            + self.source_id.len()
            + self.dedupe_key.len()) as u64
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredQuarantine {
    pub id: QuarantineId,
    pub record: QuarantineRecord,
    /// Event ids written by a successful replay.
    pub replayed: Option<Vec<String>>,
}

/// A log entry the router set aside: for which plugin, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterDeadLetter {
    /// Its own position in the partition's router dead letters.
    pub id: StreamId,
    pub entry: LogEntry,
    pub plugin_id: String,
    pub reason: String,
}

/// A quarantine entry as lists show it: everything but the headers and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineSummary {
    pub id: QuarantineId,
    pub tenant: String,
    pub source_id: String,
    pub provider: String,
    pub topic: Option<String>,
    pub reason: String,
    pub received_at: DateTime<Utc>,
    pub body_bytes: u64,
    pub replayed: Option<Vec<String>>,
}

impl QuarantineSummary {
    pub fn of(q: &StoredQuarantine) -> Self {
        let r = &q.record;
        QuarantineSummary {
            id: q.id,
            tenant: r.tenant.clone(),
            source_id: r.source_id.clone(),
            provider: r.provider.clone(),
            topic: r.topic.clone(),
            reason: r.reason.clone(),
            received_at: r.received_at,
            body_bytes: r.body.len() as u64,
            replayed: q.replayed.clone(),
        }
    }
}

/// What one delivery writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    Events(Vec<LogRecord>),
    Quarantine(QuarantineRecord),
}

/// The last snapshot of a provider resource (an order, say), kept so providers that
/// only say "updated" can be diffed. `version` counts writes; 0 means "never written".
/// The store keeps named byte fields and knows nothing of what they mean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    pub version: u64,
    pub fields: Vec<(String, Vec<u8>)>,
}

/// The one field of a [`StoredSnapshot`] a store hands back for a snapshot kept in the
/// layout of earlier versions (its JSON); what it means is the reader's business.
pub const LEGACY_SNAPSHOT_FIELD: &str = "legacy";

/// A snapshot update made in the same atomic step as the events derived from it; refused
/// (`Appended::Conflict`) unless the stored version is still `expected_version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotWrite {
    /// Unique per source and resource (the caller includes the source id).
    pub key: String,
    pub expected_version: u64,
    /// The whole snapshot: fields not named here are not kept.
    pub fields: Vec<(&'static str, Vec<u8>)>,
    pub ttl: Duration,
}

/// One atomic step: unless `dedupe_key` is already marked in `partition` (or the snapshot
/// moved on), write `write`, update `snapshot`, and mark the key for `dedupe_ttl`. Each event
/// id is marked for `dedupe_ttl` too, and an event whose id is marked is not written again:
/// the log holds every fact once, whichever delivery proved it first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Append {
    pub partition: u32,
    /// Unique per source and delivery (the caller includes the source id).
    pub dedupe_key: String,
    pub dedupe_ttl: Duration,
    pub write: Write,
    pub snapshot: Option<SnapshotWrite>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Written; the stream positions of the entries written, in order, how many old
    /// entries retention trimmed, and the event ids skipped because the log already had
    /// them.
    Written {
        ids: Vec<StreamId>,
        trimmed: u64,
        known: Vec<String>,
        /// The log is over its cap, but its oldest entries were kept because the router
        /// has not taken (and acknowledged) them yet: retention never drops an undelivered
        /// event.
        held: bool,
    },
    /// The dedupe key was already marked; nothing was written.
    Duplicate,
    /// The resource snapshot is not at the version expected; nothing was written. Carries
    /// the snapshot as it is now (`None`: absent), to retry from without reading it again.
    Conflict(Option<StoredSnapshot>),
}

/// The store as the gateway uses it: one value with every capability.
#[async_trait]
pub trait Store:
    Registry + EventLog + Inboxes + Quarantine + Pollers + Tallies + Send + Sync + 'static
{
    /// `"redis"` or `"memory"`.
    fn kind(&self) -> &'static str;

    /// Fails when the store cannot be reached.
    async fn ping(&self) -> StoreResult<()>;
}

/// Configuration: sources, plugins, API key hashes, namespaces, installations.
#[async_trait]
pub trait Registry: Send + Sync {
    async fn put_source(&self, source: &SourceRecord) -> StoreResult<()>;
    async fn get_source(&self, id: &str) -> StoreResult<Option<SourceRecord>>;
    /// True when it existed.
    async fn delete_source(&self, id: &str) -> StoreResult<bool>;
    /// Every source's id, sorted.
    async fn source_ids(&self) -> StoreResult<Vec<String>>;

    async fn put_plugin(&self, plugin: &PluginRecord) -> StoreResult<()>;
    async fn get_plugin(&self, id: &str) -> StoreResult<Option<PluginRecord>>;
    /// Saves `new` in place of `old` only if the plugin is still `old` (compare-and-set):
    /// `false` when someone changed it since it was read, or removed it.
    async fn replace_plugin(&self, old: &PluginRecord, new: &PluginRecord) -> StoreResult<bool>;
    /// Every registered plugin's id, sorted.
    async fn plugin_ids(&self) -> StoreResult<Vec<String>>;
    /// Indexes an API key's hash to its plugin.
    async fn put_key(&self, hash: &str, plugin_id: &str) -> StoreResult<()>;
    async fn delete_key(&self, hash: &str) -> StoreResult<()>;
    /// The plugin an API key's hash belongs to.
    async fn plugin_for_key(&self, hash: &str) -> StoreResult<Option<String>>;
    /// Claims event-type namespaces (`loyalty` of `loyalty.points.changed`) for a plugin,
    /// all or none: returns the `(namespace, owner)` pairs another plugin already holds
    /// (nothing was claimed then), or an empty list when every one is now this plugin's.
    async fn claim_namespaces(
        &self,
        plugin_id: &str,
        namespaces: &[String],
    ) -> StoreResult<Vec<(String, String)>>;
    /// Gives back those of `namespaces` that `plugin_id` holds (a claim made for a change
    /// that was then not saved).
    async fn release_namespaces(&self, plugin_id: &str, namespaces: &[String]) -> StoreResult<()>;
    /// The plugin that claimed `namespace`, if one did.
    async fn namespace_owner(&self, namespace: &str) -> StoreResult<Option<String>>;

    async fn put_installation(&self, installation: &InstallationRecord) -> StoreResult<()>;
    /// True when it existed.
    async fn delete_installation(&self, plugin_id: &str, tenant: &str) -> StoreResult<bool>;
    /// Every plugin installed in `tenant`.
    async fn installations(&self, tenant: &str) -> StoreResult<Vec<InstallationRecord>>;
    /// Every installation of `plugin_id`, in tenant order.
    async fn plugin_installations(&self, plugin_id: &str) -> StoreResult<Vec<InstallationRecord>>;
}

/// The tenant logs: the atomic append, snapshots, reading, and the router's group.
#[async_trait]
pub trait EventLog: Send + Sync {
    /// The dedupe mark and the write happen atomically: never one without the other.
    async fn append(&self, append: Append) -> StoreResult<Appended>;

    /// The last snapshot written for `key` in `partition`.
    async fn get_snapshot(&self, partition: u32, key: &str) -> StoreResult<Option<StoredSnapshot>>;

    /// Up to `count` entries of a partition after `after` (exclusive), oldest first.
    async fn read_log(
        &self,
        partition: u32,
        after: Option<StreamId>,
        count: usize,
    ) -> StoreResult<Vec<LogEntry>>;

    /// Up to `count` entries of a partition before `before` (exclusive; from the newest
    /// without it), newest first.
    async fn read_log_back(
        &self,
        partition: u32,
        before: Option<StreamId>,
        count: usize,
    ) -> StoreResult<Vec<LogEntry>>;

    /// Log entries for the router (consumer group `router` on each partition): those taken
    /// but not acknowledged within `stale` (a router that died), then new ones, waiting up
    /// to `wait` when there are none.
    async fn route_pull(
        &self,
        partition: u32,
        max: usize,
        stale: Duration,
        wait: Duration,
    ) -> StoreResult<Vec<LogEntry>>;
    /// Marks log entries as routed (they stay in the log).
    async fn route_ack(&self, partition: u32, ids: &[StreamId]) -> StoreResult<()>;
    /// Sets aside a log entry the router cannot write to `plugin_id`'s inbox, with why, in
    /// the partition's router dead letters (capped like a plugin's; the router acknowledges
    /// the entry with its batch).
    async fn route_bury(
        &self,
        partition: u32,
        entry: &LogEntry,
        plugin_id: &str,
        reason: &str,
    ) -> StoreResult<()>;
    /// A partition's router dead letters, oldest first.
    async fn route_dead_letters(
        &self,
        partition: u32,
        after: Option<StreamId>,
        limit: usize,
    ) -> StoreResult<Vec<RouterDeadLetter>>;
    /// Removes router dead letters (after they were delivered by hand); how many were there.
    async fn route_dead_remove(&self, partition: u32, ids: &[StreamId]) -> StoreResult<u64>;
    /// How far the router is behind on `partition`.
    async fn route_progress(&self, partition: u32) -> StoreResult<RouteProgress>;
}

/// Plugin inboxes and their dead letters.
#[async_trait]
pub trait Inboxes: Send + Sync {
    /// Appends to the plugin's inbox, keeping at most `Retention::inbox_maxlen` entries.
    async fn inbox_push(&self, plugin_id: &str, entries: &[InboxEntry]) -> StoreResult<Pushed>;
    /// Up to `max` deliveries: first those unacknowledged for longer than the visibility
    /// timeout (their attempt grows), then new ones, waiting up to `wait` when there are
    /// none. Entries past `max_attempts` move to the dead-letter stream instead.
    async fn inbox_pull(
        &self,
        plugin_id: &str,
        options: PullOptions,
    ) -> StoreResult<Vec<Delivered>>;
    /// Acknowledges (and removes) deliveries; returns how many were pending.
    async fn inbox_ack(&self, plugin_id: &str, receipts: &[StreamId]) -> StoreResult<u64>;
    /// Makes deliveries available again after `nack.retry_after` instead of the visibility
    /// timeout (or, with `nack.dead`, moves them to the dead letters at once), keeping the
    /// reason with each; returns how many were pending.
    async fn inbox_nack(
        &self,
        plugin_id: &str,
        receipts: &[StreamId],
        nack: &Nack,
    ) -> StoreResult<u64>;
    /// The oldest `limit` dead letters.
    async fn dead_letters(
        &self,
        plugin_id: &str,
        after: Option<StreamId>,
        limit: usize,
    ) -> StoreResult<Vec<DeadLetter>>;
    /// Moves dead letters (all, or those named; `ids` are distinct) back into the inbox as
    /// new entries, each in one step with its removal from the dead letters.
    async fn replay_dead(&self, plugin_id: &str, ids: Option<&[StreamId]>) -> StoreResult<Pushed>;
    /// What the plugin's inbox holds.
    async fn inbox_depth(&self, plugin_id: &str) -> StoreResult<InboxDepth>;
    /// Takes each `(subject, receipt)` pair's subject for that delivery, so that no other
    /// delivery of the subject goes out meanwhile, in any process (push delivery keeps an
    /// order's events in order across retries). Per pair: `None` when granted (the subject
    /// was free, already this delivery's, or held by a delivery no longer in the inbox, and
    /// no earlier delivery was refused it and still waits), else how long until the
    /// delivery in its way is due again (zero: it is out now). The earliest delivery
    /// refused a subject is remembered and goes next.
    async fn hold_subjects(
        &self,
        plugin_id: &str,
        items: &[(String, StreamId)],
    ) -> StoreResult<Vec<Option<Duration>>>;
    /// Keeps deliveries handed out for another `visibility` (a pusher still has them
    /// queued behind another delivery of their subject), without counting an attempt.
    async fn inbox_touch(
        &self,
        plugin_id: &str,
        receipts: &[StreamId],
        visibility: Duration,
    ) -> StoreResult<()>;
    /// Frees the subjects these deliveries hold; a subject another delivery holds stays.
    async fn release_subjects(
        &self,
        plugin_id: &str,
        items: &[(String, StreamId)],
    ) -> StoreResult<()>;
    /// Records how a plugin's push endpoint is doing, shared by every gateway process.
    async fn put_push_health(
        &self,
        plugin_id: &str,
        endpoint: &str,
        health: &EndpointHealth,
    ) -> StoreResult<()>;
    /// Every endpoint's health recorded for the plugin, by URL.
    async fn push_health(&self, plugin_id: &str) -> StoreResult<Vec<(String, EndpointHealth)>>;
}

/// How a push endpoint is doing, as the pushers record it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointHealth {
    /// Since when every push failed (`None`: the last one succeeded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<DateTime<Utc>>,
    /// Failures in a row.
    #[serde(default)]
    pub consecutive_failures: u64,
    /// The last failure: status or error, and a short excerpt of the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_at: Option<DateTime<Utc>>,
}

/// Where a poll source got to: its cursor, its progress for operators, and the provider's
/// OAuth tokens (sealed at rest like source secrets).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollState {
    /// Where the next read starts (Allegro: the last event id; Prom.ua and Rozetka: the
    /// last modification time read, with the ids seen at it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_at: Option<DateTime<Utc>>,
    /// When the newest change read happened at the provider: while `behind`, `now -` this
    /// is the lag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_change_at: Option<DateTime<Utc>>,
    /// The last poll left pages unread.
    #[serde(default)]
    pub behind: bool,
    /// Changes turned into events so far.
    #[serde(default)]
    pub changes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<SecretValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_expires_at: Option<DateTime<Utc>>,
    /// The latest refresh token (Allegro hands out a new one with every refresh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<SecretValue>,
    /// Which credentials the refresh token descends from (a digest of the refresh token
    /// the operator gave): new credentials from a PATCH win over the stored token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_marker: Option<String>,
    /// The process that last polled it (`pid:random`) and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polled_at: Option<DateTime<Utc>>,
}

/// Pollers: which process polls a source (a lease, taken over when its holder stops
/// renewing it), and the source's poll state, written only by the lease's holder.
#[async_trait]
pub trait Pollers: Send + Sync {
    /// Takes the source's poll lease for `holder`, or renews it if `holder` has it: true
    /// when `holder` holds it for `ttl` from now.
    async fn poll_lease(&self, source_id: &str, holder: &str, ttl: Duration) -> StoreResult<bool>;
    /// Gives the lease up if `holder` has it.
    async fn release_poll_lease(&self, source_id: &str, holder: &str) -> StoreResult<()>;
    async fn poll_state(&self, source_id: &str) -> StoreResult<Option<PollState>>;
    /// Saves the state only while `holder` holds the lease (a poller that lost it, paused
    /// past its lease, cannot write over its successor): false when it does not.
    async fn put_poll_state(
        &self,
        source_id: &str,
        holder: &str,
        state: &PollState,
    ) -> StoreResult<bool>;
}

/// Webhook deliveries counted per source, outcome and minute: each gateway process adds
/// what it counted every few seconds, so the counts are the sum over the processes.
#[async_trait]
pub trait Tallies: Send + Sync {
    /// Adds `counts`, and moves each source's last delivery time forward to the newest
    /// given. Minutes older than [`TALLY_MINUTES`] before `now_minute` are dropped.
    async fn add_tallies(&self, now_minute: u64, tallies: &[SourceTally]) -> StoreResult<()>;
    /// Each source's deliveries per outcome from `since_minute` on, in `source_ids` order.
    async fn tallies(&self, source_ids: &[String], since_minute: u64) -> StoreResult<Vec<Tally>>;
}

/// Minutes of counts kept per source.
pub const TALLY_MINUTES: u64 = 60;

/// What one process counted for one source since it last reported.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceTally {
    pub source_id: String,
    /// `(Unix minute, outcome, deliveries)`.
    pub counts: Vec<(u64, &'static str, u64)>,
    /// Unix milliseconds of the newest delivery counted.
    pub last_ms: u64,
}

/// A source's deliveries per outcome over a span of minutes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tally {
    pub outcomes: std::collections::BTreeMap<String, u64>,
    /// Unix milliseconds of the newest delivery ever counted (kept past the span).
    pub last_ms: Option<u64>,
}

/// Verified payloads that could not be mapped (written by [`EventLog::append`]).
#[async_trait]
pub trait Quarantine: Send + Sync {
    async fn get_quarantine(&self, id: QuarantineId) -> StoreResult<Option<StoredQuarantine>>;
    /// The newest `limit` entries across `partitions` older than `before` (by entry id,
    /// then partition), newest first; without their bodies, which are never read for a list.
    async fn list_quarantine(
        &self,
        partitions: &[u32],
        before: Option<QuarantineId>,
        limit: usize,
    ) -> StoreResult<Vec<QuarantineSummary>>;
    /// Records the event ids a replay wrote.
    async fn mark_replayed(&self, id: QuarantineId, event_ids: &[String]) -> StoreResult<()>;
    /// Removes an entry (and its replay result) for good, freeing its bytes. False when
    /// there was no such entry.
    async fn discard_quarantine(&self, id: QuarantineId) -> StoreResult<bool>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_stable_and_in_range() {
        assert_eq!(partition_of("shop-a", 16), partition_of("shop-a", 16));
        for t in ["a", "b", "maysternia-hlyny", ""] {
            assert!(partition_of(t, 16) < 16);
            assert_eq!(partition_of(t, 1), 0);
        }
        let spread: std::collections::HashSet<u32> = (0..200)
            .map(|i| partition_of(&format!("t{i}"), 16))
            .collect();
        assert!(spread.len() > 12, "tenants spread over partitions");
    }

    #[test]
    fn a_cursor_is_a_position_something_can_follow() {
        let id = |ms, seq| StreamId { ms, seq };
        assert_eq!(id(5, 1).successor(), Some(id(5, 2)));
        assert_eq!(id(5, u64::MAX).successor(), Some(id(6, 0)));
        assert_eq!(id(u64::MAX, u64::MAX).successor(), None);
        assert_eq!(StreamId::cursor("5-1"), Ok(id(5, 1)));
        assert!(StreamId::cursor("18446744073709551615-18446744073709551615").is_err());
        assert!(StreamId::cursor("18446744073709551615-7").is_ok());
    }

    #[test]
    fn ids_round_trip() {
        let q: QuarantineId = "q3-1741944415000-7".parse().unwrap();
        assert_eq!(q.partition, 3);
        assert_eq!(
            q.entry,
            StreamId {
                ms: 1741944415000,
                seq: 7
            }
        );
        assert_eq!(q.to_string(), "q3-1741944415000-7");
        assert!("3-1-1".parse::<QuarantineId>().is_err());
        assert!("1741944415000".parse::<StreamId>().is_err());
    }

    #[test]
    fn secrets_never_print() {
        let s = SecretValue::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
