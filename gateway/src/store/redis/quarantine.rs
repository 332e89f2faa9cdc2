//! Verified payloads that could not be mapped, kept byte-exact per partition (written by
//! the append script in `log.rs`), and the results of replaying them.

use async_trait::async_trait;
use chrono::DateTime;
use redis::Value;
use std::collections::BTreeMap;

use super::{RedisStore, bytes, corrupt, entries, field};
use crate::store::{
    Quarantine, QuarantineId, QuarantineRecord, StoreError, StoreResult, StoredQuarantine,
};

#[async_trait]
impl Quarantine for RedisStore {
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
