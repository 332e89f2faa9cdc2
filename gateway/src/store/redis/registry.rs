//! Sources (secrets sealed), plugins, API key hashes, installations and published
//! namespaces: the configuration hashes under `cfg:`.

use async_trait::async_trait;
use redis::Script;
use std::sync::LazyLock;

use super::{RedisStore, corrupt};
use crate::store::sealed;
use crate::store::{
    InstallationRecord, PluginRecord, Registry, SourceRecord, StoreError, StoreResult,
};

/// KEYS[1] a configuration hash (sources, plugins); ARGV: the field (an id), the value
/// read, the value to write. Writes only when the stored value is still the one read, so
/// neither re-sealing a source nor an admin change undoes a change another call or process
/// made meanwhile. Returns 1 when written, 0 when it moved on.
const REPLACE_FIELD_LUA: &str = r#"
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"#;
static REPLACE_FIELD: LazyLock<Script> = LazyLock::new(|| Script::new(REPLACE_FIELD_LUA));

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
static CLAIM: LazyLock<Script> = LazyLock::new(|| Script::new(CLAIM_LUA));

/// KEYS[1] the namespace owners hash; ARGV[1] the plugin, ARGV[2..] namespaces. Removes
/// those the plugin owns, and only those.
const RELEASE_LUA: &str = r#"
for i = 2, #ARGV do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[1] then redis.call('HDEL', KEYS[1], ARGV[i]) end
end
return 0
"#;
static RELEASE: LazyLock<Script> = LazyLock::new(|| Script::new(RELEASE_LUA));

impl RedisStore {
    /// Every source id, read with HSCAN so a large hash never blocks Redis.
    pub async fn source_ids(&self) -> StoreResult<Vec<String>> {
        let mut ids = Vec::new();
        let mut cursor = "0".to_string();
        loop {
            let (next, page): (String, Vec<String>) = self
                .query(
                    redis::cmd("HSCAN")
                        .arg(self.keys.sources())
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

    /// Adds the installations made before the per-plugin index existed to it, once: those
    /// of every tenant that has a source (an installation elsewhere receives nothing but
    /// other plugins' events). Safe to run while gateways serve, and again.
    pub async fn index_installations(&self) -> StoreResult<usize> {
        let done: Option<String> = self
            .query(redis::cmd("GET").arg(self.keys.installed_indexed()))
            .await?;
        if done.is_some() {
            return Ok(0);
        }
        let mut tenants = std::collections::BTreeSet::new();
        for id in self.source_ids().await? {
            if let Some(source) = self.raw_source(&id).await? {
                let source: SourceRecord = serde_json::from_str(&source)
                    .map_err(|e| corrupt(format!("source {id}: {e}")))?;
                tenants.insert(source.tenant);
            }
        }
        let mut indexed = 0;
        for tenant in tenants {
            let plugins: Vec<String> = self
                .query(redis::cmd("HKEYS").arg(self.keys.installations(&tenant)))
                .await?;
            for plugin in plugins {
                let added: i64 = self
                    .query(
                        redis::cmd("SADD")
                            .arg(self.keys.installed_in(&plugin))
                            .arg(&tenant),
                    )
                    .await?;
                indexed += added as usize;
            }
        }
        let _: () = self
            .query(
                redis::cmd("SET")
                    .arg(self.keys.installed_indexed())
                    .arg("1"),
            )
            .await?;
        Ok(indexed)
    }

    /// Re-seals one source's secrets with the current key: how many secrets were re-sealed
    /// (plaintext ones or those sealed with a previous key; 0 when all were current and
    /// nothing was written), `None` when the source is gone. The write is a compare-and-set
    /// on the stored value: when another process changed the source in between, it is read
    /// again.
    pub async fn reseal_source(&self, id: &str) -> StoreResult<Option<usize>> {
        let sealer = self.sealer.as_deref().ok_or_else(|| {
            StoreError::Config("re-sealing secrets needs OMNIGATE_SECRET_KEY".into())
        })?;
        for _ in 0..5 {
            let Some(raw) = self.raw_source(id).await? else {
                return Ok(None);
            };
            let stored: SourceRecord =
                serde_json::from_str(&raw).map_err(|e| corrupt(format!("source {id}: {e}")))?;
            let stale = sealer.stale_in_source(&stored);
            if stale == 0 {
                return Ok(Some(0));
            }
            let resealed = sealer.seal_source(&sealer.open_source(stored)?)?;
            let json = serde_json::to_string(&resealed)
                .map_err(|e| StoreError::Internal(e.to_string()))?;
            let mut inv = REPLACE_FIELD.prepare_invoke();
            inv.key(self.keys.sources()).arg(id).arg(&raw).arg(json);
            let written: i64 = self.invoke(&inv).await?;
            if written == 1 {
                return Ok(Some(stale));
            }
        }
        Err(StoreError::Unavailable(format!(
            "source {id} kept changing while it was re-sealed; run the rewrap again"
        )))
    }

    /// Re-seals one push plugin's signing secrets with the current key, as
    /// [`Self::reseal_source`] does for a source: how many were re-sealed, `None` when the
    /// plugin is gone.
    pub async fn reseal_plugin(&self, id: &str) -> StoreResult<Option<usize>> {
        let sealer = self.sealer.as_deref().ok_or_else(|| {
            StoreError::Config("re-sealing secrets needs OMNIGATE_SECRET_KEY".into())
        })?;
        for _ in 0..5 {
            let raw: Option<String> = self
                .query(redis::cmd("HGET").arg(self.keys.plugins()).arg(id))
                .await?;
            let Some(raw) = raw else {
                return Ok(None);
            };
            let stored: PluginRecord =
                serde_json::from_str(&raw).map_err(|e| corrupt(format!("plugin {id}: {e}")))?;
            let stale = stored.push.as_ref().map_or(0, |p| {
                (p.secrets.iter())
                    .filter(|s| !sealer.is_current(s.value.expose()))
                    .count()
            });
            if stale == 0 {
                return Ok(Some(0));
            }
            let opened = sealed::open_plugin(Some(sealer), stored)?;
            let resealed = sealed::seal_plugin(Some(sealer), &opened)?;
            let json = serde_json::to_string(&resealed)
                .map_err(|e| StoreError::Internal(e.to_string()))?;
            let mut inv = REPLACE_FIELD.prepare_invoke();
            inv.key(self.keys.plugins()).arg(id).arg(&raw).arg(json);
            let written: i64 = self.invoke(&inv).await?;
            if written == 1 {
                return Ok(Some(stale));
            }
        }
        Err(StoreError::Unavailable(format!(
            "plugin {id} kept changing while it was re-sealed; run the rewrap again"
        )))
    }

    async fn raw_source(&self, id: &str) -> StoreResult<Option<String>> {
        self.query(redis::cmd("HGET").arg(self.keys.sources()).arg(id))
            .await
    }
}

#[async_trait]
impl Registry for RedisStore {
    async fn put_source(&self, source: &SourceRecord) -> StoreResult<()> {
        let stored = sealed::seal_source(self.sealer.as_deref(), source)?;
        let json =
            serde_json::to_string(&stored).map_err(|e| StoreError::Internal(e.to_string()))?;
        let _: i64 = self
            .query(
                redis::cmd("HSET")
                    .arg(self.keys.sources())
                    .arg(&source.id)
                    .arg(json),
            )
            .await?;
        Ok(())
    }

    async fn get_source(&self, id: &str) -> StoreResult<Option<SourceRecord>> {
        let Some(json) = self.raw_source(id).await? else {
            return Ok(None);
        };
        let stored: SourceRecord =
            serde_json::from_str(&json).map_err(|e| corrupt(format!("source {id}: {e}")))?;
        sealed::open_source(self.sealer.as_deref(), stored).map(Some)
    }

    async fn delete_source(&self, id: &str) -> StoreResult<bool> {
        let n: i64 = self
            .query(redis::cmd("HDEL").arg(self.keys.sources()).arg(id))
            .await?;
        // A poll source's tokens go with it; without its lease a poller still running
        // cannot write them back. Its delivery counts go too (one slot: `{id}`).
        let _: i64 = self
            .query(
                redis::cmd("DEL")
                    .arg(self.keys.poll_lease(id))
                    .arg(self.keys.poll_state(id))
                    .arg(self.keys.tally(id)),
            )
            .await?;
        Ok(n > 0)
    }

    async fn put_plugin(&self, plugin: &PluginRecord) -> StoreResult<()> {
        let stored = sealed::seal_plugin(self.sealer.as_deref(), plugin)?;
        self.hset_json(self.keys.plugins(), &plugin.id, &stored)
            .await
    }

    async fn get_plugin(&self, id: &str) -> StoreResult<Option<PluginRecord>> {
        let stored: Option<PluginRecord> = self.hget_json(self.keys.plugins(), id).await?;
        stored
            .map(|p| sealed::open_plugin(self.sealer.as_deref(), p))
            .transpose()
    }

    async fn replace_plugin(&self, old: &PluginRecord, new: &PluginRecord) -> StoreResult<bool> {
        // Compared as records, written only over the very bytes read: a record stored by
        // an earlier version (other formatting) still compares equal.
        let raw: Option<String> = self
            .query(redis::cmd("HGET").arg(self.keys.plugins()).arg(&old.id))
            .await?;
        let Some(raw) = raw else {
            return Ok(false);
        };
        let stored: PluginRecord =
            serde_json::from_str(&raw).map_err(|e| corrupt(format!("{}: {e}", old.id)))?;
        // Sealing is randomised: compared opened.
        if sealed::open_plugin(self.sealer.as_deref(), stored)? != *old {
            return Ok(false);
        }
        let new = sealed::seal_plugin(self.sealer.as_deref(), new)?;
        let json = serde_json::to_string(&new).map_err(|e| StoreError::Internal(e.to_string()))?;
        let mut inv = REPLACE_FIELD.prepare_invoke();
        inv.key(self.keys.plugins()).arg(&new.id).arg(raw).arg(json);
        let replaced: i64 = self.invoke(&inv).await?;
        Ok(replaced == 1)
    }

    async fn source_ids(&self) -> StoreResult<Vec<String>> {
        let mut ids: Vec<String> = self
            .query(redis::cmd("HKEYS").arg(self.keys.sources()))
            .await?;
        ids.sort();
        Ok(ids)
    }

    async fn plugin_ids(&self) -> StoreResult<Vec<String>> {
        let mut ids: Vec<String> = self
            .query(redis::cmd("HKEYS").arg(self.keys.plugins()))
            .await?;
        ids.sort();
        Ok(ids)
    }

    async fn put_key(&self, hash: &str, plugin_id: &str) -> StoreResult<()> {
        let _: i64 = self
            .query(
                redis::cmd("HSET")
                    .arg(self.keys.api_keys())
                    .arg(hash)
                    .arg(plugin_id),
            )
            .await?;
        Ok(())
    }

    async fn delete_key(&self, hash: &str) -> StoreResult<()> {
        let _: i64 = self
            .query(redis::cmd("HDEL").arg(self.keys.api_keys()).arg(hash))
            .await?;
        Ok(())
    }

    async fn plugin_for_key(&self, hash: &str) -> StoreResult<Option<String>> {
        self.query(redis::cmd("HGET").arg(self.keys.api_keys()).arg(hash))
            .await
    }

    async fn release_namespaces(&self, plugin_id: &str, namespaces: &[String]) -> StoreResult<()> {
        if namespaces.is_empty() {
            return Ok(());
        }
        let mut inv = RELEASE.prepare_invoke();
        inv.key(self.keys.namespaces()).arg(plugin_id);
        for ns in namespaces {
            inv.arg(ns);
        }
        let _: i64 = self.invoke(&inv).await?;
        Ok(())
    }

    async fn namespace_owner(&self, namespace: &str) -> StoreResult<Option<String>> {
        self.query(
            redis::cmd("HGET")
                .arg(self.keys.namespaces())
                .arg(namespace),
        )
        .await
    }

    async fn claim_namespaces(
        &self,
        plugin_id: &str,
        namespaces: &[String],
    ) -> StoreResult<Vec<(String, String)>> {
        if namespaces.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = CLAIM.prepare_invoke();
        inv.key(self.keys.namespaces()).arg(plugin_id);
        for ns in namespaces {
            inv.arg(ns);
        }
        let taken: Vec<String> = self.invoke(&inv).await?;
        Ok(taken
            .chunks(2)
            .filter_map(|pair| match pair {
                [ns, owner] => Some((ns.clone(), owner.clone())),
                _ => None,
            })
            .collect())
    }

    async fn put_installation(&self, installation: &InstallationRecord) -> StoreResult<()> {
        // The index first (the keys may be on different nodes): it may name a tenant the
        // plugin is not installed in yet, never miss one it is.
        let _: i64 = self
            .query(
                redis::cmd("SADD")
                    .arg(self.keys.installed_in(&installation.plugin_id))
                    .arg(&installation.tenant),
            )
            .await?;
        let key = self.keys.installations(&installation.tenant);
        self.hset_json(key, &installation.plugin_id, installation)
            .await
    }

    async fn delete_installation(&self, plugin_id: &str, tenant: &str) -> StoreResult<bool> {
        let key = self.keys.installations(tenant);
        let n: i64 = self
            .query(redis::cmd("HDEL").arg(key).arg(plugin_id))
            .await?;
        let _: i64 = self
            .query(
                redis::cmd("SREM")
                    .arg(self.keys.installed_in(plugin_id))
                    .arg(tenant),
            )
            .await?;
        Ok(n > 0)
    }

    async fn plugin_installations(&self, plugin_id: &str) -> StoreResult<Vec<InstallationRecord>> {
        let mut tenants: Vec<String> = self
            .query(redis::cmd("SMEMBERS").arg(self.keys.installed_in(plugin_id)))
            .await?;
        tenants.sort();
        let mut out = Vec::with_capacity(tenants.len());
        for tenant in tenants {
            let json: Option<String> = self
                .query(
                    redis::cmd("HGET")
                        .arg(self.keys.installations(&tenant))
                        .arg(plugin_id),
                )
                .await?;
            if let Some(json) = json {
                out.push(
                    serde_json::from_str(&json)
                        .map_err(|e| corrupt(format!("installation: {e}")))?,
                );
            }
        }
        Ok(out)
    }

    async fn installations(&self, tenant: &str) -> StoreResult<Vec<InstallationRecord>> {
        let key = self.keys.installations(tenant);
        let all: Vec<String> = self.query(redis::cmd("HVALS").arg(key)).await?;
        let mut out: Vec<InstallationRecord> = all
            .iter()
            .map(|j| serde_json::from_str(j).map_err(|e| corrupt(format!("installation: {e}"))))
            .collect::<StoreResult<_>>()?;
        out.sort_by(|a, b| a.plugin_id.cmp(&b.plugin_id));
        Ok(out)
    }
}
