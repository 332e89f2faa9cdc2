//! The tenant logs: the one append script every delivery is written with, snapshot reads,
//! paging, and the router's consumer group.

use async_trait::async_trait;
use redis::{Script, Value};
use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;

use super::replicated::ScriptCall;
use super::{ROUTER, RedisStore, bytes, corrupt, entries, field, group_entries, text};
use crate::store::{
    Append, Appended, EventLog, LEGACY_SNAPSHOT_FIELD, LogEntry, LogRecord, RouteProgress,
    RouterDeadLetter, StoreResult, StoredSnapshot, StreamId, Write,
};

/// KEYS[1] delivery dedupe mark, KEYS[2] stream, KEYS[3..2+m] one mark per entry (m is 0
/// for quarantine, the entry count for events), KEYS[3+m] (optional) resource snapshot.
/// ARGV: ttl ms, maxlen, entry count n, mark count m, then per entry its field/value count
/// followed by the pairs; then, with the snapshot key, the expected snapshot version, its ttl
/// ms, its field count and the field/value pairs (the hash is replaced whole, `v` counting
/// the writes).
/// Returns nil for a duplicate, {"conflict", HGETALL of the snapshot} when the snapshot is
/// not at the expected version, else
/// {trimmed, {ids written}, {1-based indexes of entries skipped because their mark was set},
/// held}: `held` is 1 when the log is over its cap but its oldest entries are not trimmed
/// because the router has not taken them yet. (Quarantine entries are written by
/// `QUARANTINE_LUA` in `quarantine.rs`.)
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
  local key = KEYS[3 + m]
  local version = tonumber(redis.call('HGET', key, 'v') or '0')
  if version ~= tonumber(ARGV[pos]) then return {'conflict', redis.call('HGETALL', key)} end
  local hash = {'v', version + 1}
  for i = 1, 2 * tonumber(ARGV[pos + 2]) do hash[#hash + 1] = ARGV[pos + 2 + i] end
  redis.call('DEL', key)
  redis.call('HSET', key, unpack(hash))
  redis.call('PEXPIRE', key, ARGV[pos + 1])
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
local held = 0
local maxlen = tonumber(ARGV[2])
if maxlen > 0 and #ids > 0 then
  do
    local excess = redis.call('XLEN', KEYS[2]) - maxlen
    if excess >= 64 then
      -- A log entry goes only once the router group (ROUTER in mod.rs) has taken it and
      -- acknowledged it: below its oldest pending entry, else past its last delivered one.
      local function id(s)
        local ms, seq = string.match(s, '^(%d+)-(%d+)$')
        return {tonumber(ms), tonumber(seq)}
      end
      local function before(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end
      local bound = nil
      local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[2])
      if ok then
        for _, g in ipairs(groups) do
          local f = {}
          for j = 1, #g, 2 do f[g[j]] = g[j + 1] end
          if f['name'] == 'router' then
            if tonumber(f['pending']) > 0 then
              bound = id(redis.call('XPENDING', KEYS[2], 'router')[2])
            else
              local last = id(f['last-delivered-id'])
              bound = {last[1], last[2] + 1}
            end
          end
        end
      end
      -- The oldest entry first: while the router has not taken it, nothing can go, and
      -- the appends that find so cost one small read, not a big one each.
      local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
      if bound == nil or #first == 0 or not before(id(first[1][1]), bound) then
        held = 1
      else
        local oldest = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', math.min(excess, 1000))
        local newest = id(oldest[#oldest][1])
        local cut = {newest[1], newest[2] + 1}
        if before(bound, cut) then
          cut = bound
          held = 1
        end
        trimmed = redis.call('XTRIM', KEYS[2], 'MINID', cut[1] .. '-' .. cut[2])
      end
    end
  end
end
return {trimmed, ids, known, held}
"#;
static APPEND: LazyLock<Script> = LazyLock::new(|| Script::new(APPEND_LUA));

/// A snapshot hash as HGETALL gives it (flat pairs in RESP2, a map in RESP3); empty is
/// absent.
fn snapshot_from_hash(hash: Value) -> StoreResult<Option<StoredSnapshot>> {
    let pairs: Vec<(Value, Value)> = match hash {
        Value::Array(items) => {
            let mut items = items.into_iter();
            std::iter::from_fn(|| Some((items.next()?, items.next()?))).collect()
        }
        Value::Map(pairs) => pairs,
        Value::Nil => Vec::new(),
        other => return Err(corrupt(format!("snapshot is not a hash: {other:?}"))),
    };
    if pairs.is_empty() {
        return Ok(None);
    }
    let mut version = None;
    let mut fields = Vec::with_capacity(pairs.len());
    for (name, value) in pairs {
        let name = text(&name)?;
        let value = bytes(&value)
            .ok_or_else(|| corrupt(format!("snapshot field {name} is not a string")))?
            .to_vec();
        if name == "v" {
            let v = std::str::from_utf8(&value)
                .ok()
                .and_then(|v| v.parse().ok());
            version = Some(v.ok_or_else(|| corrupt("snapshot has a bad version"))?);
        } else {
            fields.push((name, value));
        }
    }
    Ok(Some(StoredSnapshot {
        version: version.ok_or_else(|| corrupt("snapshot has no version"))?,
        fields,
    }))
}

#[async_trait]
impl EventLog for RedisStore {
    async fn append(&self, append: Append) -> StoreResult<Appended> {
        let p = append.partition;
        let seen_key = self.keys.delivery_mark(p, &append.dedupe_key);
        let mut inv = ScriptCall::new(&APPEND);
        inv.key(&seen_key);
        let ttl_ms = append.dedupe_ttl.as_millis().max(1) as u64;
        match &append.write {
            Write::Events(records) => {
                inv.key(self.keys.log(p));
                for r in records {
                    inv.key(self.keys.event_mark(p, &r.event_id));
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
                return self.quarantine_append(p, seen_key, ttl_ms, record).await;
            }
        }
        if let Some(snapshot) = &append.snapshot {
            inv.key(self.keys.snapshot(p, &snapshot.key))
                .arg(snapshot.expected_version)
                .arg(snapshot.ttl.as_millis().max(1) as u64)
                .arg(snapshot.fields.len());
            for (name, value) in &snapshot.fields {
                inv.arg(*name).arg(value.as_slice());
            }
        }
        let reply = self.call_acknowledged(p, &inv).await?;
        match reply {
            Value::Nil => Ok(Appended::Duplicate),
            Value::Array(parts) if parts.len() == 2 && bytes(&parts[0]) == Some(b"conflict") => {
                let hash = parts.into_iter().nth(1).expect("two parts");
                Ok(Appended::Conflict(snapshot_from_hash(hash)?))
            }
            Value::Array(mut parts) if parts.len() == 4 => {
                let held = matches!(parts.pop(), Some(Value::Int(1)));
                let known = parts.pop().expect("four parts");
                let ids = parts.pop().expect("four parts");
                let trimmed = match parts.pop() {
                    Some(Value::Int(n)) => n.max(0) as u64,
                    _ => return Err(corrupt("append reply lacks the trim count")),
                };
                let ids = match ids {
                    Value::Array(ids) => ids
                        .iter()
                        .map(|v| text(v)?.parse().map_err(|_| corrupt("bad stream id")))
                        .collect::<StoreResult<Vec<StreamId>>>()?,
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
                        .collect::<StoreResult<Vec<String>>>()?,
                    (Value::Array(known), _) if known.is_empty() => Vec::new(),
                    _ => return Err(corrupt("append reply lacks skipped entries")),
                };
                Ok(Appended::Written {
                    ids,
                    trimmed,
                    known,
                    held,
                })
            }
            other => Err(corrupt(format!("unexpected append reply {other:?}"))),
        }
    }

    async fn get_snapshot(&self, partition: u32, key: &str) -> StoreResult<Option<StoredSnapshot>> {
        let hash: Value = self
            .query(redis::cmd("HGETALL").arg(self.keys.snapshot(partition, key)))
            .await?;
        if let Some(current) = snapshot_from_hash(hash)? {
            return Ok(Some(current));
        }
        // Kept by an earlier version: handed on as it is, at version 0 (no hash yet), so the
        // next write creates the hash.
        let legacy: Option<Vec<u8>> = self
            .query(redis::cmd("GET").arg(self.keys.legacy_snapshot(partition, key)))
            .await?;
        Ok(legacy.and_then(|raw| {
            let json = raw.splitn(2, |b| *b == b'|').nth(1)?.to_vec();
            Some(StoredSnapshot {
                version: 0,
                fields: vec![(LEGACY_SNAPSHOT_FIELD.to_string(), json)],
            })
        }))
    }

    async fn read_log(
        &self,
        partition: u32,
        after: Option<StreamId>,
        count: usize,
    ) -> StoreResult<Vec<LogEntry>> {
        // Inclusive from the next id: `(max-id` is an error in Redis, not an empty range.
        let start = match after.map(StreamId::successor) {
            None => "-".to_string(),
            Some(Some(next)) => next.to_string(),
            Some(None) => return Ok(Vec::new()),
        };
        self.log_range("XRANGE", partition, &start, "+", count)
            .await
    }

    async fn read_log_back(
        &self,
        partition: u32,
        before: Option<StreamId>,
        count: usize,
    ) -> StoreResult<Vec<LogEntry>> {
        // Inclusive to the previous id, as `read_log` is from the next one.
        let end = match before.map(StreamId::predecessor) {
            None => "+".to_string(),
            Some(Some(previous)) => previous.to_string(),
            Some(None) => return Ok(Vec::new()),
        };
        self.log_range("XREVRANGE", partition, &end, "-", count)
            .await
    }

    async fn route_pull(
        &self,
        partition: u32,
        max: usize,
        stale: Duration,
        wait: Duration,
    ) -> StoreResult<Vec<LogEntry>> {
        let key = self.keys.log(partition);
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

    async fn route_bury(
        &self,
        partition: u32,
        entry: &LogEntry,
        plugin_id: &str,
        reason: &str,
    ) -> StoreResult<()> {
        self.bury_route(partition, entry, plugin_id, reason).await
    }

    async fn route_dead_letters(
        &self,
        partition: u32,
        after: Option<StreamId>,
        limit: usize,
    ) -> StoreResult<Vec<RouterDeadLetter>> {
        self.router_dead(partition, after, limit).await
    }

    async fn route_progress(&self, partition: u32) -> StoreResult<RouteProgress> {
        let mut inv = PROGRESS.prepare_invoke();
        inv.key(self.keys.log(partition)).arg(ROUTER);
        let (last, unrouted): (String, u64) = self.invoke(&inv).await?;
        let last = match last.as_str() {
            "" | "0-0" => None,
            id => Some(id.parse().map_err(|_| corrupt("bad last-generated-id"))?),
        };
        Ok(RouteProgress { last, unrouted })
    }

    async fn route_dead_remove(&self, partition: u32, ids: &[StreamId]) -> StoreResult<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let ids: Vec<String> = ids.iter().map(StreamId::to_string).collect();
        let removed: i64 = self
            .query(
                redis::cmd("XDEL")
                    .arg(self.keys.router_dead(partition))
                    .arg(&ids),
            )
            .await?;
        Ok(removed.max(0) as u64)
    }

    async fn route_ack(&self, partition: u32, ids: &[StreamId]) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let key = self.keys.log(partition);
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
}

/// KEYS[1] a partition's router dead letters; ARGV: the cap (0 = none), then the dead
/// letter's field/value pairs.
/// KEYS[1] a partition log; ARGV[1] the router group. Returns {the last id ever added,
/// entries not routed}: the group's pending entries plus its lag (counted from its last
/// delivered id when Redis cannot say, after trimming: then at most 100 are counted, which
/// says "behind" without reading a long backlog inside a script), or the whole log before
/// any router took anything.
const PROGRESS_LUA: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return {'', 0} end
local function fields(flat)
  local f = {}
  for j = 1, #flat, 2 do f[flat[j]] = flat[j + 1] end
  return f
end
local last = fields(redis.call('XINFO', 'STREAM', KEYS[1]))['last-generated-id']
local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[1])
if ok then
  for _, g in ipairs(groups) do
    local f = fields(g)
    if f['name'] == ARGV[1] then
      local lag = f['lag']
      if type(lag) ~= 'number' then
        lag = #redis.call('XRANGE', KEYS[1], '(' .. f['last-delivered-id'], '+', 'COUNT', 100)
      end
      return {last, tonumber(f['pending']) + lag}
    end
  end
end
return {last, redis.call('XLEN', KEYS[1])}
"#;
static PROGRESS: LazyLock<Script> = LazyLock::new(|| Script::new(PROGRESS_LUA));

const ROUTE_BURY_LUA: &str = r#"
redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
local cap = tonumber(ARGV[1])
if cap > 0 then redis.call('XTRIM', KEYS[1], 'MAXLEN', cap) end
return 1
"#;
static ROUTE_BURY: LazyLock<Script> = LazyLock::new(|| Script::new(ROUTE_BURY_LUA));

impl RedisStore {
    pub(super) async fn bury_route(
        &self,
        partition: u32,
        entry: &LogEntry,
        plugin_id: &str,
        reason: &str,
    ) -> StoreResult<()> {
        let r = &entry.record;
        let mut inv = ROUTE_BURY.prepare_invoke();
        inv.key(self.keys.router_dead(partition))
            .arg(self.retention.dead_maxlen)
            .arg("cursor")
            .arg(entry.cursor.to_string())
            .arg("plugin")
            .arg(plugin_id)
            .arg("id")
            .arg(&r.event_id)
            .arg("tenant")
            .arg(&r.tenant)
            .arg("type")
            .arg(&r.event_type)
            .arg("event")
            .arg(&r.json)
            .arg("reason")
            .arg(reason);
        let _: i64 = self.invoke(&inv).await?;
        Ok(())
    }

    pub(super) async fn router_dead(
        &self,
        partition: u32,
        after: Option<StreamId>,
        limit: usize,
    ) -> StoreResult<Vec<RouterDeadLetter>> {
        let start = after.map_or_else(|| "-".to_string(), |a| format!("({a}"));
        self.xrange_from(self.keys.router_dead(partition), &start, limit)
            .await?
            .into_iter()
            .map(|(id, map)| {
                let cursor = field(&map, "cursor")?
                    .parse()
                    .map_err(|_| corrupt("bad router dead letter cursor"))?;
                Ok(RouterDeadLetter {
                    id,
                    entry: LogEntry {
                        cursor,
                        record: log_record(&map)?,
                    },
                    plugin_id: field(&map, "plugin")?,
                    reason: field(&map, "reason")?,
                })
            })
            .collect()
    }
}

impl RedisStore {
    /// `XRANGE` (or `XREVRANGE`) of a partition's log from `from` to `to`, inclusive, as
    /// log entries in the command's order.
    async fn log_range(
        &self,
        command: &str,
        partition: u32,
        from: &str,
        to: &str,
        count: usize,
    ) -> StoreResult<Vec<LogEntry>> {
        let reply: Value = self
            .query(
                redis::cmd(command)
                    .arg(self.keys.log(partition))
                    .arg(from)
                    .arg(to)
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
}

fn log_record(map: &BTreeMap<String, Value>) -> StoreResult<LogRecord> {
    Ok(LogRecord {
        event_id: field(map, "id")?,
        tenant: field(map, "tenant")?,
        event_type: field(map, "type")?,
        json: field(map, "event")?,
    })
}
