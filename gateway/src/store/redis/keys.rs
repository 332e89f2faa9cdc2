//! Every Redis key the store writes, in one place. All start with the prefix
//! (`OMNIGATE_REDIS_PREFIX`, default `og`); a `{…}` is a cluster hash tag, and every key one
//! script touches shares it (a log partition's, or a plugin's).
//!
//! Resource snapshots are hashes under `snapshot:`. Before they were hashes they were
//! `version|json` strings under `state:`: those are still read while no hash exists for the
//! resource (their values count; their fingerprints do not, so the first "updated" delivery
//! of an order after the upgrade says `changed_known: false`), never written, and expire on
//! their own (`OMNIGATE_STATE_TTL_SECS`).

#[derive(Debug, Clone)]
pub(super) struct Keys {
    prefix: String,
}

impl Keys {
    pub(super) fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.to_string(),
        }
    }

    /// A partition of the tenant logs (stream; consumer group `router`).
    pub(super) fn log(&self, partition: u32) -> String {
        format!("{}:log:{{{partition}}}", self.prefix)
    }

    /// A delivery's dedupe mark (`<source>:<delivery key>`).
    /// Written with every delivery when replicas must confirm it, so the `WAIT` that follows
    /// covers the partition's earlier writes too (a duplicate writes nothing else).
    pub(super) fn replication_fence(&self, partition: u32) -> String {
        format!("{}:fence:{{{partition}}}", self.prefix)
    }

    pub(super) fn delivery_mark(&self, partition: u32, dedupe_key: &str) -> String {
        format!("{}:seen:{{{partition}}}:{dedupe_key}", self.prefix)
    }

    /// An event's mark: the fact is in the log.
    pub(super) fn event_mark(&self, partition: u32, event_id: &str) -> String {
        format!("{}:seen:{{{partition}}}:evt:{event_id}", self.prefix)
    }

    /// A resource's snapshot (hash: `v` the version, then the snapshot's own fields), for
    /// diffing "updated" deliveries.
    pub(super) fn snapshot(&self, partition: u32, key: &str) -> String {
        format!("{}:snapshot:{{{partition}}}:{key}", self.prefix)
    }

    /// Where earlier versions kept a resource's snapshot (`version|json` string): read when
    /// no hash exists yet, never written.
    pub(super) fn legacy_snapshot(&self, partition: u32, key: &str) -> String {
        format!("{}:state:{{{partition}}}:{key}", self.prefix)
    }

    /// Log entries of a partition the router set aside (stream), in the log's hash slot.
    pub(super) fn router_dead(&self, partition: u32) -> String {
        format!("{}:routerdead:{{{partition}}}", self.prefix)
    }

    /// A partition's quarantine (stream).
    pub(super) fn quarantine(&self, partition: u32) -> String {
        format!("{}:quarantine:{{{partition}}}", self.prefix)
    }

    /// Bodies of a partition's quarantine entries (hash: entry id → bytes), kept apart
    /// from the stream so a list never reads them.
    pub(super) fn quarantine_bodies(&self, partition: u32) -> String {
        format!("{}:qbody:{{{partition}}}", self.prefix)
    }

    /// Bytes a partition's quarantine holds (counter, for its budget).
    pub(super) fn quarantine_bytes(&self, partition: u32) -> String {
        format!("{}:qbytes:{{{partition}}}", self.prefix)
    }

    /// Replay results of a partition's quarantine entries (hash: entry id → event ids).
    pub(super) fn quarantine_replayed(&self, partition: u32) -> String {
        format!("{}:qreplayed:{{{partition}}}", self.prefix)
    }

    /// A plugin's inbox (stream; consumer group `plugin`).
    pub(super) fn inbox(&self, plugin_id: &str) -> String {
        format!("{}:inbox:{{{plugin_id}}}", self.prefix)
    }

    /// Why pending deliveries were handed back (entry id → JSON list), until they are
    /// acknowledged or die; in the inbox's hash slot.
    pub(super) fn inbox_failures(&self, plugin_id: &str) -> String {
        format!("{}:failures:{{{plugin_id}}}", self.prefix)
    }

    /// When deliveries handed back fall due (entry id → Unix ms), for delays longer than
    /// the visibility timeout; in the inbox's hash slot.
    pub(super) fn inbox_due(&self, plugin_id: &str) -> String {
        format!("{}:due:{{{plugin_id}}}", self.prefix)
    }

    /// Where the inbox's claim scan goes on (string: a stream id).
    pub(super) fn claim_cursor(&self, plugin_id: &str) -> String {
        format!("{}:claimcursor:{{{plugin_id}}}", self.prefix)
    }

    /// Which delivery holds each subject of a push plugin's inbox (hash: tenant and
    /// subject → entry id), in the inbox's hash slot.
    pub(super) fn subject_holds(&self, plugin_id: &str) -> String {
        format!("{}:holds:{{{plugin_id}}}", self.prefix)
    }

    /// How a push plugin's endpoints are doing (hash: URL → JSON).
    pub(super) fn push_health(&self, plugin_id: &str) -> String {
        format!("{}:pushhealth:{{{plugin_id}}}", self.prefix)
    }

    /// A plugin's dead letters (stream), in its inbox's hash slot.
    pub(super) fn dead_letters(&self, plugin_id: &str) -> String {
        format!("{}:dead:{{{plugin_id}}}", self.prefix)
    }

    /// Which process polls a source (string: the holder, with a TTL), in the slot of the
    /// source's poll state.
    pub(super) fn poll_lease(&self, source_id: &str) -> String {
        format!("{}:polllease:{{{source_id}}}", self.prefix)
    }

    /// A source's deliveries per minute and outcome, and its last delivery (hash).
    pub(super) fn tally(&self, source_id: &str) -> String {
        format!("{}:tally:{{{source_id}}}", self.prefix)
    }

    /// A poll source's cursor, progress and OAuth tokens (string: JSON, tokens sealed).
    pub(super) fn poll_state(&self, source_id: &str) -> String {
        format!("{}:poll:{{{source_id}}}", self.prefix)
    }

    /// Source configurations (hash: id → JSON, secrets sealed).
    pub(super) fn sources(&self) -> String {
        format!("{}:cfg:sources", self.prefix)
    }

    /// Plugin records (hash: id → JSON).
    pub(super) fn plugins(&self) -> String {
        format!("{}:cfg:plugins", self.prefix)
    }

    /// API key hashes (hash: SHA-256 → plugin id).
    pub(super) fn api_keys(&self) -> String {
        format!("{}:cfg:keys", self.prefix)
    }

    /// A tenant's installations (hash: plugin id → JSON).
    pub(super) fn installations(&self, tenant: &str) -> String {
        format!("{}:cfg:installs:{tenant}", self.prefix)
    }

    /// The tenants a plugin is installed in (set), an index of [`Self::installations`].
    pub(super) fn installed_in(&self, plugin_id: &str) -> String {
        format!("{}:cfg:installed:{plugin_id}", self.prefix)
    }

    /// Set once every installation made before [`Self::installed_in`] existed is in it.
    pub(super) fn installed_indexed(&self) -> String {
        format!("{}:cfg:installed-indexed", self.prefix)
    }

    /// Published event-type namespaces (hash: namespace → owning plugin id).
    pub(super) fn namespaces(&self) -> String {
        format!("{}:cfg:namespaces", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout is a contract with running deployments (and ARCHITECTURE.md): a change
    /// here orphans stored data, so it must be deliberate.
    #[test]
    fn the_key_layout_is_the_documented_one() {
        let k = Keys::new("og");
        let cases = [
            (k.log(3), "og:log:{3}"),
            (k.delivery_mark(3, "src_1:abc"), "og:seen:{3}:src_1:abc"),
            (k.event_mark(3, "evt_1"), "og:seen:{3}:evt:evt_1"),
            (
                k.snapshot(3, "src_1:order:9"),
                "og:snapshot:{3}:src_1:order:9",
            ),
            (
                k.legacy_snapshot(3, "src_1:order:9"),
                "og:state:{3}:src_1:order:9",
            ),
            (k.quarantine(3), "og:quarantine:{3}"),
            (k.quarantine_replayed(3), "og:qreplayed:{3}"),
            (k.quarantine_bodies(3), "og:qbody:{3}"),
            (k.quarantine_bytes(3), "og:qbytes:{3}"),
            (k.router_dead(3), "og:routerdead:{3}"),
            (k.inbox("plg_a"), "og:inbox:{plg_a}"),
            (k.dead_letters("plg_a"), "og:dead:{plg_a}"),
            (k.inbox_due("plg_a"), "og:due:{plg_a}"),
            (k.subject_holds("plg_a"), "og:holds:{plg_a}"),
            (k.claim_cursor("plg_a"), "og:claimcursor:{plg_a}"),
            (k.push_health("plg_a"), "og:pushhealth:{plg_a}"),
            (k.poll_lease("src_1"), "og:polllease:{src_1}"),
            (k.poll_state("src_1"), "og:poll:{src_1}"),
            (k.sources(), "og:cfg:sources"),
            (k.plugins(), "og:cfg:plugins"),
            (k.api_keys(), "og:cfg:keys"),
            (k.installations("shop-a"), "og:cfg:installs:shop-a"),
            (k.namespaces(), "og:cfg:namespaces"),
        ];
        for (key, expected) in cases {
            assert_eq!(key, expected);
        }
    }
}
