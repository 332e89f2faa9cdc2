//! Deliveries per source, outcome and minute: one small hash per source
//! (`<minute>:<outcome>` → count, `last` → newest delivery in Unix ms), pruned to the last
//! hour on every write and expired when the source goes quiet for long.

use async_trait::async_trait;
use redis::Script;
use std::collections::BTreeMap;
use std::sync::LazyLock;

use super::RedisStore;
use crate::store::{SourceTally, StoreResult, TALLY_MINUTES, Tallies, Tally};

/// How long a quiet source's counts and last delivery time are kept.
const KEEP_SECS: u64 = 90 * 24 * 3600;

/// KEYS[1] the source's tally; ARGV[1] the oldest minute kept, ARGV[2] the newest
/// delivery's ms, ARGV[3] seconds to keep the key, then `<minute>:<outcome>`, count pairs.
const ADD_LUA: &str = r#"
for i = 4, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '0')
if tonumber(ARGV[2]) > last then
  redis.call('HSET', KEYS[1], 'last', ARGV[2])
end
local oldest = tonumber(ARGV[1])
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  local minute = tonumber(string.match(field, '^(%d+):'))
  if minute and minute < oldest then
    redis.call('HDEL', KEYS[1], field)
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 0
"#;
static ADD: LazyLock<Script> = LazyLock::new(|| Script::new(ADD_LUA));

#[async_trait]
impl Tallies for RedisStore {
    async fn add_tallies(&self, now_minute: u64, tallies: &[SourceTally]) -> StoreResult<()> {
        let oldest = now_minute.saturating_sub(TALLY_MINUTES);
        // One script per source: each hash is a key of its own (its own slot in a cluster).
        for tally in tallies {
            let mut inv = ADD.prepare_invoke();
            inv.key(self.keys.tally(&tally.source_id))
                .arg(oldest)
                .arg(tally.last_ms)
                .arg(KEEP_SECS);
            for (minute, outcome, n) in &tally.counts {
                inv.arg(format!("{minute}:{outcome}")).arg(*n);
            }
            let _: i64 = self.invoke(&inv).await?;
        }
        Ok(())
    }

    async fn tallies(&self, source_ids: &[String], since_minute: u64) -> StoreResult<Vec<Tally>> {
        let mut out = Vec::with_capacity(source_ids.len());
        for id in source_ids {
            let fields: BTreeMap<String, u64> = self
                .query(redis::cmd("HGETALL").arg(self.keys.tally(id)))
                .await?;
            let mut tally = Tally::default();
            for (field, n) in fields {
                if field == "last" {
                    tally.last_ms = Some(n).filter(|ms| *ms > 0);
                    continue;
                }
                let Some((minute, outcome)) = field.split_once(':') else {
                    continue;
                };
                if minute.parse::<u64>().is_ok_and(|m| m >= since_minute) {
                    *tally.outcomes.entry(outcome.to_string()).or_default() += n;
                }
            }
            out.push(tally);
        }
        Ok(out)
    }
}
