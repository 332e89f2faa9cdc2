//! What is kept of a resource between deliveries, so providers that only say "updated"
//! can be diffed: a fingerprint per top-level field (no personal data is kept, only
//! hashes) and the few values the diff rules read.

use xxhash_rust::xxh3::Xxh3;

use crate::json::{Json, Object};

/// Kept in the store as a hash of byte fields ([`Snapshot::to_fields`]): one letter per
/// attribute, the fingerprints packed (name length, name, 8 bytes), about 10 bytes plus the
/// name per field of the resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The resource's modification time (RFC 3339 UTC), to recognise stale deliveries.
    pub modified: Option<String>,
    /// Top-level field → 64-bit fingerprint of its value, sorted by name.
    pub fields: Vec<(String, u64)>,
    pub status: Option<String>,
    pub paid_at: Option<String>,
    pub refunds: Vec<String>,
    pub customer_id: Option<String>,
    pub stock: Option<i64>,
}

/// `u32` length, then the bytes.
fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Reads what [`put`] wrote; `None` when the input ends early.
fn take<'a>(input: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if input.len() < n {
        return None;
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Some(head)
}

fn take_text(input: &mut &[u8]) -> Option<String> {
    let len = u32::from_le_bytes(take(input, 4)?.try_into().ok()?) as usize;
    String::from_utf8(take(input, len)?.to_vec()).ok()
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

    /// The fields the store keeps.
    pub fn to_fields(&self) -> Vec<(&'static str, Vec<u8>)> {
        let mut out = Vec::with_capacity(7);
        let mut packed = Vec::with_capacity(self.fields.iter().map(|(k, _)| k.len() + 12).sum());
        for (name, print) in &self.fields {
            put(&mut packed, name.as_bytes());
            packed.extend_from_slice(&print.to_le_bytes());
        }
        out.push(("f", packed));
        let text = [
            ("m", &self.modified),
            ("s", &self.status),
            ("p", &self.paid_at),
            ("c", &self.customer_id),
        ];
        for (name, value) in text {
            if let Some(v) = value {
                out.push((name, v.as_bytes().to_vec()));
            }
        }
        if !self.refunds.is_empty() {
            let mut packed = Vec::new();
            for id in &self.refunds {
                put(&mut packed, id.as_bytes());
            }
            out.push(("r", packed));
        }
        if let Some(stock) = self.stock {
            out.push(("k", stock.to_string().into_bytes()));
        }
        out
    }

    /// The snapshot [`Snapshot::to_fields`] wrote; `None` when the fields are not one.
    pub fn from_fields(fields: &[(String, Vec<u8>)]) -> Option<Snapshot> {
        let mut snap = Snapshot::default();
        let text = |v: &[u8]| String::from_utf8(v.to_vec()).ok();
        let mut fingerprinted = false;
        for (name, value) in fields {
            match name.as_str() {
                "f" => {
                    let mut input = value.as_slice();
                    while !input.is_empty() {
                        let name = take_text(&mut input)?;
                        let print = u64::from_le_bytes(take(&mut input, 8)?.try_into().ok()?);
                        snap.fields.push((name, print));
                    }
                    fingerprinted = true;
                }
                "m" => snap.modified = Some(text(value)?),
                "s" => snap.status = Some(text(value)?),
                "p" => snap.paid_at = Some(text(value)?),
                "c" => snap.customer_id = Some(text(value)?),
                "r" => {
                    let mut input = value.as_slice();
                    while !input.is_empty() {
                        snap.refunds.push(take_text(&mut input)?);
                    }
                }
                "k" => snap.stock = Some(text(value)?.parse().ok()?),
                _ => {}
            }
        }
        fingerprinted.then_some(snap)
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
        for (_, value) in s.to_fields() {
            assert!(!String::from_utf8_lossy(&value).contains("jon@"));
        }
    }

    #[test]
    fn kept_fields_read_back_as_the_snapshot() {
        let body = json!({"id": 1, "note": "x", "ünïcode key": [1, 2], "": null});
        let mut s = of(&body, &[]);
        let stored = |s: &Snapshot| -> Vec<(String, Vec<u8>)> {
            s.to_fields()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect()
        };
        assert_eq!(Snapshot::from_fields(&stored(&s)), Some(s.clone()));
        s.modified = Some("2025-03-14T10:00:00Z".into());
        s.status = Some("paid".into());
        s.paid_at = Some("2025-03-14T10:00:01Z".into());
        s.customer_id = Some("42".into());
        s.refunds = vec!["r1".into(), "".into(), "r|3".into()];
        s.stock = Some(-3);
        assert_eq!(Snapshot::from_fields(&stored(&s)), Some(s.clone()));
        // A snapshot of nothing is still a snapshot (every field of it was seen).
        let empty = Snapshot::default();
        assert_eq!(Snapshot::from_fields(&stored(&empty)), Some(empty));
        // Damaged or foreign fields are no snapshot.
        assert_eq!(
            Snapshot::from_fields(&[("f".into(), vec![9, 0, 0, 0, b'a'])]),
            None
        );
        assert_eq!(
            Snapshot::from_fields(&[("s".into(), b"paid".to_vec())]),
            None
        );
        assert_eq!(Snapshot::from_fields(&[]), None);
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
