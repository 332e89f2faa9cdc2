//! Verified payloads that could not be mapped, kept byte-exact per partition (written by
//! the append script in `log.rs`), and the results of replaying them.

use async_trait::async_trait;
use chrono::DateTime;
use redis::Value;
use std::collections::BTreeMap;

use redis::Script;
use std::sync::LazyLock;

use super::{RedisStore, bytes, corrupt, entries, field, text};
use crate::store::{
    Appended, Quarantine, QuarantineId, QuarantineRecord, StoreError, StoreResult, StoredQuarantine,
};

/// KEYS[1] the delivery's dedupe mark, KEYS[2] the quarantine stream, KEYS[3] its byte
/// counter (one hash tag); ARGV: mark ttl ms, entry cap, byte cap (0 = none), then the
/// entry's field/value pairs. Nothing is ever evicted: at a cap nothing is written and the
/// answer is {'full', what}. Else nil for a duplicate, or {0, {id}, {}, 0} as the append
/// script answers.
const QUARANTINE_LUA: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local size = 0
for i = 4, #ARGV do size = size + #ARGV[i] end
local maxlen = tonumber(ARGV[2])
if maxlen > 0 and redis.call('XLEN', KEYS[2]) >= maxlen then return {'full', 'entries'} end
local maxbytes = tonumber(ARGV[3])
local used = tonumber(redis.call('GET', KEYS[3]) or '0')
if maxbytes > 0 and used + size > maxbytes then return {'full', 'bytes'} end
local id = redis.call('XADD', KEYS[2], '*', 'size', size, unpack(ARGV, 4))
redis.call('INCRBY', KEYS[3], size)
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
return {0, {id}, {}, 0}
"#;
static QUARANTINE: LazyLock<Script> = LazyLock::new(|| Script::new(QUARANTINE_LUA));

/// KEYS[1] the quarantine stream, KEYS[2] its byte counter, KEYS[3] the replay results;
/// ARGV[1] the entry id. Removes the entry and its replay result and frees its bytes.
/// Returns 1, or 0 when there was no such entry.
const DISCARD_LUA: &str = r#"
local found = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #found == 0 then return 0 end
local size = 0
local f = found[1][2]
for j = 1, #f, 2 do
  if f[j] == 'size' then size = tonumber(f[j + 1]) end
end
redis.call('XDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
local left = redis.call('DECRBY', KEYS[2], size)
if left < 0 then redis.call('SET', KEYS[2], 0) end
return 1
"#;
static DISCARD: LazyLock<Script> = LazyLock::new(|| Script::new(DISCARD_LUA));

impl RedisStore {
    pub(super) async fn quarantine_append(
        &self,
        partition: u32,
        seen_key: String,
        ttl_ms: u64,
        record: &QuarantineRecord,
    ) -> StoreResult<Appended> {
        let mut inv = QUARANTINE.prepare_invoke();
        inv.key(seen_key)
            .key(self.keys.quarantine(partition))
            .key(self.keys.quarantine_bytes(partition))
            .arg(ttl_ms)
            .arg(self.retention.quarantine_maxlen)
            .arg(self.retention.quarantine_max_bytes);
        for (k, v) in fields(record) {
            inv.arg(k).arg(v);
        }
        let mut conn = self.conn.clone();
        let reply: Value = self.run(inv.invoke_async(&mut conn)).await?;
        match reply {
            Value::Nil => Ok(Appended::Duplicate),
            Value::Array(parts) if parts.len() == 2 => {
                let what = parts.get(1).and_then(|v| text(v).ok()).unwrap_or_default();
                Err(StoreError::QuarantineFull(format!(
                    "partition {partition} is at its {what} cap"
                )))
            }
            Value::Array(parts) if parts.len() == 4 => {
                let id = match parts.get(1) {
                    Some(Value::Array(ids)) if ids.len() == 1 => text(&ids[0])?
                        .parse()
                        .map_err(|_| corrupt("bad stream id"))?,
                    _ => return Err(corrupt("quarantine reply lacks its id")),
                };
                Ok(Appended::Written {
                    ids: vec![id],
                    trimmed: 0,
                    known: Vec::new(),
                    held: false,
                })
            }
            other => Err(corrupt(format!("unexpected quarantine reply {other:?}"))),
        }
    }
}

#[async_trait]
impl Quarantine for RedisStore {
    async fn discard_quarantine(&self, id: QuarantineId) -> StoreResult<bool> {
        let mut inv = DISCARD.prepare_invoke();
        inv.key(self.keys.quarantine(id.partition))
            .key(self.keys.quarantine_bytes(id.partition))
            .key(self.keys.quarantine_replayed(id.partition))
            .arg(id.entry.to_string());
        let mut conn = self.conn.clone();
        let removed: i64 = self.run(inv.invoke_async(&mut conn)).await?;
        Ok(removed == 1)
    }

    async fn get_quarantine(&self, id: QuarantineId) -> StoreResult<Option<StoredQuarantine>> {
        let entry = id.entry.to_string();
        let reply: Value = self
            .query(
                redis::cmd("XRANGE")
                    .arg(self.keys.quarantine(id.partition))
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
                    .arg(self.keys.quarantine_replayed(id.partition))
                    .arg(&entry),
            )
            .await?;
        Ok(Some(StoredQuarantine {
            id,
            record: record(&map)?,
            replayed: replayed.and_then(|j| serde_json::from_str(&j).ok()),
        }))
    }

    async fn list_quarantine(
        &self,
        partitions: &[u32],
        limit: usize,
    ) -> StoreResult<Vec<StoredQuarantine>> {
        let mut all = Vec::new();
        for &p in partitions {
            let reply: Value = self
                .query(
                    redis::cmd("XREVRANGE")
                        .arg(self.keys.quarantine(p))
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
                    record: record(&map)?,
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
                        .arg(self.keys.quarantine_replayed(q.id.partition))
                        .arg(q.id.entry.to_string()),
                )
                .await?;
            q.replayed = replayed.and_then(|j| serde_json::from_str(&j).ok());
        }
        Ok(all)
    }

    async fn mark_replayed(&self, id: QuarantineId, event_ids: &[String]) -> StoreResult<()> {
        let json =
            serde_json::to_string(event_ids).map_err(|e| StoreError::Internal(e.to_string()))?;
        let _: i64 = self
            .query(
                redis::cmd("HSET")
                    .arg(self.keys.quarantine_replayed(id.partition))
                    .arg(id.entry.to_string())
                    .arg(json),
            )
            .await?;
        Ok(())
    }
}

pub(super) fn fields(r: &QuarantineRecord) -> Vec<(&'static str, Vec<u8>)> {
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

fn record(map: &BTreeMap<String, Value>) -> StoreResult<QuarantineRecord> {
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
