//! Verified payloads that could not be mapped, kept byte-exact per partition (metadata in
//! a stream, bodies in a hash beside it), never evicted; the results of replaying them.

use async_trait::async_trait;
use chrono::DateTime;
use redis::{Script, Value};
use std::collections::BTreeMap;
use std::sync::LazyLock;

use super::replicated::ScriptCall;
use super::{RedisStore, bytes, corrupt, entries, field, text};
use crate::store::{
    Appended, Quarantine, QuarantineId, QuarantineRecord, QuarantineSummary, StoreError,
    StoreResult, StoredQuarantine, StreamId,
};

/// KEYS[1] the delivery's dedupe mark, KEYS[2] the quarantine stream, KEYS[3] its byte
/// counter, KEYS[4] its bodies (one hash tag); ARGV: mark ttl ms, entry cap, byte cap
/// (0 = none), the entry's size (`QuarantineRecord::stored_bytes`, as the memory store
/// counts), the body, then the entry's other field/value pairs. Nothing is ever evicted:
/// at a cap nothing is written and the answer is {'full', what}. Else nil for a duplicate,
/// or {0, {id}, {}, 0} as the append script answers. The body goes to the bodies hash under
/// the entry's id, so listing the stream never reads a body.
const QUARANTINE_LUA: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local size = tonumber(ARGV[4])
local maxlen = tonumber(ARGV[2])
if maxlen > 0 and redis.call('XLEN', KEYS[2]) >= maxlen then return {'full', 'entries'} end
local maxbytes = tonumber(ARGV[3])
local used = tonumber(redis.call('GET', KEYS[3]) or '0')
if maxbytes > 0 and used + size > maxbytes then return {'full', 'bytes'} end
local id = redis.call('XADD', KEYS[2], '*', 'size', size, 'body_bytes', #ARGV[5], unpack(ARGV, 6))
redis.call('HSET', KEYS[4], id, ARGV[5])
redis.call('INCRBY', KEYS[3], size)
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
return {0, {id}, {}, 0}
"#;
static QUARANTINE: LazyLock<Script> = LazyLock::new(|| Script::new(QUARANTINE_LUA));

/// KEYS[1] the quarantine stream, KEYS[2] its byte counter, KEYS[3] the replay results,
/// KEYS[4] the bodies; ARGV[1] the entry id. Removes the entry, its body and its replay
/// result and frees its bytes. Returns 1, or 0 when there was no such entry.
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
redis.call('HDEL', KEYS[4], ARGV[1])
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
        let mut inv = ScriptCall::new(&QUARANTINE);
        inv.key(seen_key)
            .key(self.keys.quarantine(partition))
            .key(self.keys.quarantine_bytes(partition))
            .key(self.keys.quarantine_bodies(partition))
            .arg(ttl_ms)
            .arg(self.retention.quarantine_maxlen)
            .arg(self.retention.quarantine_max_bytes)
            .arg(record.stored_bytes())
            .arg(record.body.as_slice());
        for (k, v) in fields(record) {
            inv.arg(k).arg(v);
        }
        let reply = self.call_acknowledged(partition, &inv).await?;
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
            .key(self.keys.quarantine_bodies(id.partition))
            .arg(id.entry.to_string());
        let removed: i64 = self.invoke(&inv).await?;
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
        let Some((_, mut map)) = entries(reply)?.into_iter().next() else {
            return Ok(None);
        };
        if !map.contains_key("body") {
            // Entries written since bodies moved out of the stream.
            let body: Value = self
                .query(
                    redis::cmd("HGET")
                        .arg(self.keys.quarantine_bodies(id.partition))
                        .arg(&entry),
                )
                .await?;
            map.insert("body".into(), body);
        }
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
        before: Option<QuarantineId>,
        limit: usize,
    ) -> StoreResult<Vec<QuarantineSummary>> {
        let mut all = Vec::new();
        for &p in partitions {
            // Older than `before` in (entry, partition) order.
            let upper = match before {
                None => "+".to_string(),
                Some(b) if p < b.partition => b.entry.to_string(),
                Some(b) if b.entry == (StreamId { ms: 0, seq: 0 }) => continue,
                Some(b) => format!("({}", b.entry),
            };
            let reply: Value = self
                .query(
                    redis::cmd("XREVRANGE")
                        .arg(self.keys.quarantine(p))
                        .arg(upper)
                        .arg("-")
                        .arg("COUNT")
                        .arg(limit),
                )
                .await?;
            for (entry, map) in entries(reply)? {
                all.push(summary(
                    QuarantineId {
                        partition: p,
                        entry,
                    },
                    &map,
                )?);
            }
        }
        all.sort_by_key(|q| std::cmp::Reverse((q.id.entry, q.id.partition)));
        all.truncate(limit);
        // Replay results: one round trip per partition listed.
        for &p in partitions {
            let ids: Vec<String> = all
                .iter()
                .filter(|q| q.id.partition == p)
                .map(|q| q.id.entry.to_string())
                .collect();
            if ids.is_empty() {
                continue;
            }
            let found: Vec<Option<String>> = self
                .query(
                    redis::cmd("HMGET")
                        .arg(self.keys.quarantine_replayed(p))
                        .arg(&ids),
                )
                .await?;
            let mut found = found.into_iter();
            for q in all.iter_mut().filter(|q| q.id.partition == p) {
                q.replayed = found
                    .next()
                    .flatten()
                    .and_then(|j| serde_json::from_str(&j).ok());
            }
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

/// The stream fields of an entry; its body is kept apart (`QUARANTINE_LUA`).
fn fields(r: &QuarantineRecord) -> Vec<(&'static str, Vec<u8>)> {
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
    ]
}

/// What a list shows of an entry, from its stream fields (an entry written before bodies
/// moved out of the stream still carries its body: only its length is kept).
fn summary(id: QuarantineId, map: &BTreeMap<String, Value>) -> StoreResult<QuarantineSummary> {
    let topic = field(map, "topic")?;
    let body_bytes = match map.get("body_bytes") {
        Some(v) => text(v)?.parse().map_err(|_| corrupt("bad body_bytes"))?,
        None => map
            .get("body")
            .and_then(bytes)
            .map_or(0, |b| b.len() as u64),
    };
    Ok(QuarantineSummary {
        id,
        tenant: field(map, "tenant")?,
        source_id: field(map, "source")?,
        provider: field(map, "provider")?,
        topic: (!topic.is_empty()).then_some(topic),
        reason: field(map, "reason")?,
        received_at: DateTime::parse_from_rfc3339(&field(map, "received_at")?)
            .map_err(|_| corrupt("bad received_at"))?
            .to_utc(),
        body_bytes,
        replayed: None,
    })
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
