//! What is kept of a resource between deliveries, so providers that only say "updated"
//! can be diffed: a fingerprint per top-level field (no personal data is kept, only
//! hashes) and the few values the diff rules read.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The resource's modification time (RFC 3339 UTC), to recognise stale deliveries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
    /// Top-level field → short hash of its JSON value.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refunds: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stock: Option<i64>,
}

/// A stable 64-bit fingerprint of a value's JSON text, streamed into XXH3 without building
/// the text (this runs for every field of every order delivery).
fn fingerprint(v: &Value) -> String {
    struct Hasher(xxhash_rust::xxh3::Xxh3);
    impl std::io::Write for Hasher {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut h = Hasher(xxhash_rust::xxh3::Xxh3::new());
    // Writing into a hasher cannot fail.
    let _ = serde_json::to_writer(&mut h, v);
    format!("{:016x}", h.0.digest())
}

impl Snapshot {
    /// Fingerprints every top-level field except `volatile` ones (timestamps that change on
    /// every save).
    pub fn of(body: &Map<String, Value>, volatile: &[&str]) -> Snapshot {
        Snapshot {
            fields: body
                .iter()
                .filter(|(k, _)| !volatile.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), fingerprint(v)))
                .collect(),
            ..Snapshot::default()
        }
    }

    /// Fields whose value differs from `prior` (added and removed ones included), sorted.
    pub fn changed_since(&self, prior: &Snapshot) -> Vec<String> {
        let mut changed: Vec<String> = self
            .fields
            .iter()
            .filter(|(k, v)| prior.fields.get(*k) != Some(*v))
            .map(|(k, _)| k.clone())
            .chain(
                prior
                    .fields
                    .keys()
                    .filter(|k| !self.fields.contains_key(*k))
                    .cloned(),
            )
            .collect();
        changed.sort();
        changed.dedup();
        changed
    }

    pub fn parse(kept: Option<&Value>) -> Option<Snapshot> {
        kept.and_then(|s| serde_json::from_value(s.clone()).ok())
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changed_fields_ignore_volatile_ones() {
        let a = json!({"status": "pending", "updated_at": "1", "tags": "", "note": "x"});
        let b = json!({"status": "paid", "updated_at": "2", "tags": "", "extra": 1});
        let sa = Snapshot::of(a.as_object().unwrap(), &["updated_at"]);
        let sb = Snapshot::of(b.as_object().unwrap(), &["updated_at"]);
        assert_eq!(sb.changed_since(&sa), ["extra", "note", "status"]);
        assert!(sa.changed_since(&sa).is_empty());
    }

    #[test]
    fn snapshots_hold_no_personal_data() {
        let a = json!({"email": "jon@example.com"});
        let s = Snapshot::of(a.as_object().unwrap(), &[]);
        assert!(!s.to_value().to_string().contains("jon@"));
    }
}
