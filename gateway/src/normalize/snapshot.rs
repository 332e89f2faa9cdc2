//! What is kept of a resource between deliveries, so providers that only say "updated"
//! can be diffed: a fingerprint per top-level field (no personal data is kept, only
//! hashes) and the few values the diff rules read.

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::Xxh3;

use crate::json::{Json, Object};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The resource's modification time (RFC 3339 UTC), to recognise stale deliveries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
    /// Top-level field → 64-bit fingerprint of its value, sorted by name.
    #[serde(default)]
    pub fields: Vec<(String, u64)>,
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

/// A stable 64-bit fingerprint of a value: its structure and scalars streamed into XXH3,
/// members in document order (providers send a resource's fields in a fixed order).
pub(crate) fn fingerprint(v: &Json<'_>) -> u64 {
    fn feed(h: &mut Xxh3, v: &Json<'_>) {
        match v {
            Json::Null => h.update(b"n"),
            Json::Bool(b) => h.update(if *b { b"t" } else { b"f" }),
            Json::Number(n) => {
                h.update(b"#");
                match (n.as_u64(), n.as_i64(), n.as_f64()) {
                    (Some(u), _, _) => h.update(&u.to_le_bytes()),
                    (_, Some(i), _) => h.update(&i.to_le_bytes()),
                    (_, _, Some(f)) => h.update(&f.to_bits().to_le_bytes()),
                    _ => {}
                }
            }
            Json::String(s) => {
                h.update(b"s");
                h.update(&(s.len() as u64).to_le_bytes());
                h.update(s.as_bytes());
            }
            Json::Array(items) => {
                h.update(b"[");
                for item in items {
                    feed(h, item);
                }
                h.update(b"]");
            }
            Json::Object(o) => {
                h.update(b"{");
                for (k, v) in o.iter() {
                    h.update(&(k.len() as u64).to_le_bytes());
                    h.update(k.as_bytes());
                    feed(h, v);
                }
                h.update(b"}");
            }
        }
    }
    let mut h = Xxh3::new();
    feed(&mut h, v);
    h.digest()
}

impl Snapshot {
    /// Fingerprints every top-level field except `volatile` ones (timestamps that change on
    /// every save). A repeated field counts once, with its last value.
    pub fn of(body: &Object<'_>, volatile: &[&str]) -> Snapshot {
        let mut fields: Vec<(String, u64)> = Vec::with_capacity(body.len());
        for (k, v) in body.iter().collect::<Vec<_>>().into_iter().rev() {
            if !volatile.contains(&k) {
                fields.push((k.to_string(), fingerprint(v)));
            }
        }
        // Stable: of a repeated name the last member (pushed first) stays.
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        fields.dedup_by(|later, first| later.0 == first.0);
        Snapshot {
            fields,
            ..Snapshot::default()
        }
    }

    /// Fields whose value differs from `prior` (added and removed ones included), sorted.
    pub fn changed_since(&self, prior: &Snapshot) -> Vec<String> {
        use std::cmp::Ordering;
        let (mut a, mut b) = (
            self.fields.iter().peekable(),
            prior.fields.iter().peekable(),
        );
        let mut changed = Vec::new();
        loop {
            match (a.peek(), b.peek()) {
                (None, None) => break,
                (Some(now), None) => {
                    changed.push(now.0.clone());
                    a.next();
                }
                (None, Some(was)) => {
                    changed.push(was.0.clone());
                    b.next();
                }
                (Some(now), Some(was)) => match now.0.cmp(&was.0) {
                    Ordering::Less => {
                        changed.push(now.0.clone());
                        a.next();
                    }
                    Ordering::Greater => {
                        changed.push(was.0.clone());
                        b.next();
                    }
                    Ordering::Equal => {
                        if now.1 != was.1 {
                            changed.push(now.0.clone());
                        }
                        a.next();
                        b.next();
                    }
                },
            }
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn of(v: &serde_json::Value, volatile: &[&str]) -> Snapshot {
        Snapshot::of(Json::from(v).as_object().unwrap(), volatile)
    }

    #[test]
    fn changed_fields_ignore_volatile_ones() {
        let a = json!({"status": "pending", "updated_at": "1", "tags": "", "note": "x"});
        let b = json!({"status": "paid", "updated_at": "2", "tags": "", "extra": 1});
        let sa = of(&a, &["updated_at"]);
        let sb = of(&b, &["updated_at"]);
        assert_eq!(sb.changed_since(&sa), ["extra", "note", "status"]);
        assert!(sa.changed_since(&sa).is_empty());
    }

    #[test]
    fn snapshots_hold_no_personal_data() {
        let a = json!({"email": "jon@example.com"});
        let s = of(&a, &[]);
        assert!(!serde_json::to_string(&s).unwrap().contains("jon@"));
    }

    #[test]
    fn fingerprints_tell_values_apart_and_repeat() {
        let values = [
            json!(null),
            json!(false),
            json!(true),
            json!(0),
            json!(-1),
            json!(1.5),
            json!(""),
            json!("0"),
            json!([]),
            json!({}),
            json!(["a", "b"]),
            json!(["ab"]),
            json!({"a": "b"}),
            json!({"ab": ""}),
        ];
        let prints: Vec<u64> = values.iter().map(|v| fingerprint(&Json::from(v))).collect();
        let mut unique = prints.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), prints.len(), "{prints:?}");
        let text = br#"{"a": [1, {"b": "c"}]}"#;
        assert_eq!(
            fingerprint(&Json::parse(text).unwrap()),
            fingerprint(&Json::parse(b"{\"a\":[1,{\"b\":\"c\"}]}").unwrap()),
            "whitespace is not a change"
        );
    }

    #[test]
    fn a_repeated_field_counts_with_its_last_value() {
        let body = Json::parse(br#"{"x": 1, "y": 2, "x": 3}"#).unwrap();
        let s = Snapshot::of(body.as_object().unwrap(), &[]);
        let three = Json::parse(b"3").unwrap();
        assert_eq!(
            s.fields,
            [
                ("x".into(), fingerprint(&three)),
                ("y".into(), s.fields[1].1)
            ]
        );
    }
}
