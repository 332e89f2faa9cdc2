//! What is kept of a resource between deliveries, so providers that only say "updated"
//! can be diffed: a fingerprint per top-level field (no personal data is kept, only
//! hashes) and the few values the diff rules read.

use xxhash_rust::xxh3::xxh3_64;

use crate::json::{Json, Object};

/// Kept in the store as a hash of byte fields ([`Snapshot::into_fields`]): one letter per
/// attribute, the fingerprints packed as they are kept in memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The resource's modification time (RFC 3339 UTC), to recognise stale deliveries.
    pub modified: Option<String>,
    pub fields: Fingerprints,
    pub status: Option<String>,
    pub paid_at: Option<String>,
    pub refunds: Vec<String>,
    pub customer_id: Option<String>,
    pub stock: Option<i64>,
    /// The order's number as the shop shows it, and its customer's language: what
    /// shipment and return events carry of their order.
    pub order_number: Option<String>,
    pub locale: Option<String>,
    /// Read from the layout of earlier versions (a `version|json` string): its values are
    /// kept, its field fingerprints are not comparable, so a diff against it says
    /// `changed_known: false`.
    pub legacy: bool,
}

/// A snapshot as earlier versions kept it (JSON; fingerprints were hex strings).
#[derive(serde::Deserialize)]
struct LegacySnapshot {
    modified: Option<String>,
    status: Option<String>,
    paid_at: Option<String>,
    #[serde(default)]
    refunds: Vec<String>,
    customer_id: Option<String>,
    stock: Option<i64>,
}

/// Top-level field → 64-bit fingerprint of its value, sorted by name, packed as they are
/// stored (`u32` name length, the name, the fingerprint; little endian): building one takes
/// a single allocation, and keeping it is copying it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fingerprints(Vec<u8>);

impl Fingerprints {
    /// From pairs in any order; of a repeated name the last pair counts.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, u64)>) -> Fingerprints {
        let mut pairs: Vec<(usize, &str, u64)> = pairs
            .into_iter()
            .enumerate()
            .map(|(i, (name, print))| (i, name, print))
            .collect();
        // By name, the later pair first, so `dedup` keeps it.
        pairs.sort_unstable_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)));
        pairs.dedup_by(|later, first| later.1 == first.1);
        let mut packed = Vec::with_capacity(pairs.iter().map(|(_, k, _)| k.len() + 12).sum());
        for (_, name, print) in pairs {
            put(&mut packed, name.as_bytes());
            packed.extend_from_slice(&print.to_le_bytes());
        }
        Fingerprints(packed)
    }

    /// Stored bytes, checked: `None` unless they are well-formed pairs sorted by name.
    fn parse(bytes: &[u8]) -> Option<Fingerprints> {
        let mut input = bytes;
        let mut last: Option<&str> = None;
        while !input.is_empty() {
            let (name, print) = next_pair(&mut input)?;
            let _ = print;
            if last.is_some_and(|l| l >= name) {
                return None;
            }
            last = Some(name);
        }
        Some(Fingerprints(bytes.to_vec()))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        let mut input = self.0.as_slice();
        // Well-formed by construction.
        std::iter::from_fn(move || next_pair(&mut input))
    }
}

/// `u32` length, then the bytes.
fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Reads `n` bytes; `None` when the input ends early.
fn take<'a>(input: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if input.len() < n {
        return None;
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Some(head)
}

fn take_str<'a>(input: &mut &'a [u8]) -> Option<&'a str> {
    let len = u32::from_le_bytes(take(input, 4)?.try_into().ok()?) as usize;
    std::str::from_utf8(take(input, len)?).ok()
}

fn next_pair<'a>(input: &mut &'a [u8]) -> Option<(&'a str, u64)> {
    if input.is_empty() {
        return None;
    }
    let name = take_str(input)?;
    let print = u64::from_le_bytes(take(input, 8)?.try_into().ok()?);
    Some((name, print))
}

/// A 64-bit fingerprint of a value: each scalar hashed once and folded in with its place in
/// the structure. An object's members are summed, so their order does not count (as it did
/// not when snapshots hashed a `Value`, whose keys are sorted). Not a security boundary: it
/// only tells "changed" from "unchanged".
pub(crate) fn fingerprint(v: &Json<'_>) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    fn mix(acc: u64, h: u64) -> u64 {
        (acc.rotate_left(23) ^ h).wrapping_mul(K)
    }
    match v {
        Json::Null => mix(1, 0),
        Json::Bool(b) => mix(2, u64::from(*b)),
        Json::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => mix(3, u),
            (_, Some(i), _) => mix(4, i as u64),
            (_, _, f) => mix(5, f.unwrap_or_default().to_bits()),
        },
        Json::String(s) => mix(6, xxh3_64(s.as_bytes())),
        Json::Array(items) => items.iter().fold(mix(7, items.len() as u64), |acc, item| {
            mix(acc, fingerprint(item))
        }),
        Json::Object(o) => mix(
            8,
            o.iter().fold(o.len() as u64, |acc, (k, v)| {
                acc.wrapping_add(mix(xxh3_64(k.as_bytes()), fingerprint(v)))
            }),
        ),
    }
}

impl Snapshot {
    /// Fingerprints every top-level field except `volatile` ones (timestamps that change on
    /// every save). A repeated field counts once, with its last value.
    pub fn of(body: &Object<'_>, volatile: &[&str]) -> Snapshot {
        Snapshot {
            fields: Fingerprints::from_pairs(
                body.iter()
                    .filter(|(k, _)| !volatile.contains(k))
                    .map(|(k, v)| (k, fingerprint(v))),
            ),
            ..Snapshot::default()
        }
    }

    /// The fields the store keeps; the packed fingerprints and the texts move, uncopied.
    pub fn into_fields(self) -> Vec<(&'static str, Vec<u8>)> {
        let mut out = Vec::with_capacity(9);
        out.push(("f", self.fields.0));
        let text = [
            ("m", self.modified),
            ("s", self.status),
            ("p", self.paid_at),
            ("c", self.customer_id),
            ("n", self.order_number),
            ("l", self.locale),
        ];
        for (name, value) in text {
            if let Some(v) = value {
                out.push((name, v.into_bytes()));
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

    /// The snapshot [`Snapshot::into_fields`] wrote, or one an earlier version wrote (a
    /// `legacy` field holding its JSON); `None` when the fields are neither.
    pub fn from_fields(fields: &[(String, Vec<u8>)]) -> Option<Snapshot> {
        if let [(name, json)] = fields
            && name == crate::store::LEGACY_SNAPSHOT_FIELD
        {
            let old: LegacySnapshot = serde_json::from_slice(json).ok()?;
            return Some(Snapshot {
                modified: old.modified,
                status: old.status,
                paid_at: old.paid_at,
                refunds: old.refunds,
                customer_id: old.customer_id,
                stock: old.stock,
                legacy: true,
                ..Snapshot::default()
            });
        }
        let mut snap = Snapshot::default();
        let text = |v: &[u8]| String::from_utf8(v.to_vec()).ok();
        let mut fingerprinted = false;
        for (name, value) in fields {
            match name.as_str() {
                "f" => {
                    snap.fields = Fingerprints::parse(value)?;
                    fingerprinted = true;
                }
                "m" => snap.modified = Some(text(value)?),
                "s" => snap.status = Some(text(value)?),
                "p" => snap.paid_at = Some(text(value)?),
                "c" => snap.customer_id = Some(text(value)?),
                "n" => snap.order_number = Some(text(value)?),
                "l" => snap.locale = Some(text(value)?),
                "r" => {
                    let mut input = value.as_slice();
                    while !input.is_empty() {
                        snap.refunds.push(take_str(&mut input)?.to_string());
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
            let step = match (a.peek(), b.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(now), Some(was)) => now.0.cmp(was.0),
            };
            match step {
                Ordering::Less => changed.push(a.next().expect("peeked").0.to_string()),
                Ordering::Greater => changed.push(b.next().expect("peeked").0.to_string()),
                Ordering::Equal => {
                    let (now, was) = (a.next().expect("peeked"), b.next().expect("peeked"));
                    if now.1 != was.1 {
                        changed.push(now.0.to_string());
                    }
                }
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
        for (_, value) in s.into_fields() {
            assert!(!String::from_utf8_lossy(&value).contains("jon@"));
        }
    }

    #[test]
    fn kept_fields_read_back_as_the_snapshot() {
        let body = json!({"id": 1, "note": "x", "ünïcode key": [1, 2], "": null});
        let mut s = of(&body, &[]);
        let stored = |s: &Snapshot| -> Vec<(String, Vec<u8>)> {
            s.clone()
                .into_fields()
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
        // A snapshot kept by an earlier version keeps its values, not its fingerprints.
        let legacy = br#"{"modified":"2025-03-14T10:00:00Z","fields":{"id":"00ab"},"status":"paid","refunds":["53140"],"customer_id":"7","stock":4}"#;
        let old =
            Snapshot::from_fields(&[(crate::store::LEGACY_SNAPSHOT_FIELD.into(), legacy.to_vec())])
                .unwrap();
        assert!(old.legacy);
        assert_eq!(old.fields, Fingerprints::default());
        assert_eq!(
            (
                old.status.as_deref(),
                old.refunds,
                old.customer_id.as_deref(),
                old.stock
            ),
            (Some("paid"), vec!["53140".to_string()], Some("7"), Some(4))
        );
        assert_eq!(
            Snapshot::from_fields(&[(crate::store::LEGACY_SNAPSHOT_FIELD.into(), b"{".to_vec())]),
            None
        );
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
        for (a, b) in [
            (json!([["a"], "b"]), json!([["a", "b"]])),
            (json!({"a": {"b": 1}}), json!({"a": {}, "b": 1})),
            (json!({"a": 1, "b": 2}), json!({"a": 2, "b": 1})),
            (json!([1, 2]), json!([2, 1])),
        ] {
            assert_ne!(
                fingerprint(&Json::from(&a)),
                fingerprint(&Json::from(&b)),
                "{a} {b}"
            );
        }
        // The order of an object's members is no change.
        let (x, y) = (
            Json::parse(br#"{"billing": {"a": 1, "b": [2, {"c": 3, "d": 4}]}}"#).unwrap(),
            Json::parse(br#"{"billing": {"b": [2, {"d": 4, "c": 3}], "a": 1}}"#).unwrap(),
        );
        assert_eq!(fingerprint(&x), fingerprint(&y));
    }

    #[test]
    fn a_repeated_field_counts_with_its_last_value() {
        let body = Json::parse(br#"{"x": 1, "y": 2, "x": 3}"#).unwrap();
        let s = Snapshot::of(body.as_object().unwrap(), &[]);
        let (three, two) = (Json::parse(b"3").unwrap(), Json::parse(b"2").unwrap());
        assert_eq!(
            s.fields.iter().collect::<Vec<_>>(),
            [("x", fingerprint(&three)), ("y", fingerprint(&two))]
        );
    }
}
