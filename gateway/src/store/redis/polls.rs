//! Poll sources: the lease that makes one process poll a source at a time, and the
//! source's poll state, which only the lease's holder may write.

use async_trait::async_trait;
use redis::Script;
use std::sync::LazyLock;
use std::time::Duration;

use super::RedisStore;
use crate::store::sealed::{open_poll, seal_poll};
use crate::store::{PollState, Pollers, StoreError, StoreResult};

/// KEYS[1] the lease; ARGV[1] the holder, ARGV[2] the TTL in ms. Taken when free, renewed
/// when held by the caller.
const LEASE_LUA: &str = r#"
local holder = redis.call('GET', KEYS[1])
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"#;
static LEASE: LazyLock<Script> = LazyLock::new(|| Script::new(LEASE_LUA));

/// KEYS[1] the lease; ARGV[1] the holder.
const RELEASE_LUA: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
return 0
"#;
static RELEASE: LazyLock<Script> = LazyLock::new(|| Script::new(RELEASE_LUA));

/// KEYS[1] the lease, KEYS[2] the state; ARGV[1] the holder, ARGV[2] the state's JSON.
const PUT_LUA: &str = r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[2], ARGV[2])
return 1
"#;
static PUT: LazyLock<Script> = LazyLock::new(|| Script::new(PUT_LUA));

/// KEYS[1] the state; ARGV[1] the value read, ARGV[2] the new one.
const SWAP_LUA: &str = r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"#;
static SWAP: LazyLock<Script> = LazyLock::new(|| Script::new(SWAP_LUA));

impl RedisStore {
    /// Re-seals a poll state's tokens with the current key (`omnigate secrets rewrap`),
    /// compare-and-set against a poller writing meanwhile: how many tokens it re-sealed.
    pub async fn reseal_poll_state(&self, source_id: &str) -> StoreResult<usize> {
        let Some(sealer) = self.sealer() else {
            return Ok(0);
        };
        for _ in 0..5 {
            let raw: Option<String> = self
                .query(redis::cmd("GET").arg(self.keys.poll_state(source_id)))
                .await?;
            let Some(raw) = raw else {
                return Ok(0);
            };
            let stored: PollState = serde_json::from_str(&raw)
                .map_err(|e| StoreError::Corrupt(format!("poll state of {source_id}: {e}")))?;
            let stale = [&stored.access_token, &stored.refresh_token]
                .into_iter()
                .flatten()
                .filter(|t| !sealer.is_current(t.expose()))
                .count();
            if stale == 0 {
                return Ok(0);
            }
            let opened = open_poll(Some(sealer), source_id, stored)?;
            let json = serde_json::to_string(&seal_poll(Some(sealer), source_id, &opened)?)
                .map_err(|e| StoreError::Internal(e.to_string()))?;
            let mut inv = SWAP.prepare_invoke();
            inv.key(self.keys.poll_state(source_id)).arg(&raw).arg(json);
            let swapped: i64 = self.invoke(&inv).await?;
            if swapped == 1 {
                return Ok(stale);
            }
        }
        Err(StoreError::Unavailable(format!(
            "the poll state of {source_id} kept changing while it was re-sealed; run the \
             rewrap again"
        )))
    }
}

#[async_trait]
impl Pollers for RedisStore {
    async fn poll_lease(&self, source_id: &str, holder: &str, ttl: Duration) -> StoreResult<bool> {
        let mut inv = LEASE.prepare_invoke();
        inv.key(self.keys.poll_lease(source_id))
            .arg(holder)
            .arg(ttl.as_millis().max(1) as u64);
        let held: i64 = self.invoke(&inv).await?;
        Ok(held == 1)
    }

    async fn release_poll_lease(&self, source_id: &str, holder: &str) -> StoreResult<()> {
        let mut inv = RELEASE.prepare_invoke();
        inv.key(self.keys.poll_lease(source_id)).arg(holder);
        let _: i64 = self.invoke(&inv).await?;
        Ok(())
    }

    async fn poll_state(&self, source_id: &str) -> StoreResult<Option<PollState>> {
        let text: Option<String> = self
            .query(redis::cmd("GET").arg(self.keys.poll_state(source_id)))
            .await?;
        let Some(text) = text else {
            return Ok(None);
        };
        let state: PollState = serde_json::from_str(&text)
            .map_err(|e| StoreError::Corrupt(format!("poll state of {source_id}: {e}")))?;
        open_poll(self.sealer(), source_id, state).map(Some)
    }

    async fn put_poll_state(
        &self,
        source_id: &str,
        holder: &str,
        state: &PollState,
    ) -> StoreResult<bool> {
        let sealed = seal_poll(self.sealer(), source_id, state)?;
        let json =
            serde_json::to_string(&sealed).map_err(|e| StoreError::Internal(e.to_string()))?;
        let mut inv = PUT.prepare_invoke();
        inv.key(self.keys.poll_lease(source_id))
            .key(self.keys.poll_state(source_id))
            .arg(holder)
            .arg(json);
        let written: i64 = self.invoke(&inv).await?;
        Ok(written == 1)
    }
}
