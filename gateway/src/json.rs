//! A webhook body parsed once and borrowed: strings point into the request bytes (only
//! escaped ones are copied), objects keep their members in order in a `Vec`. The hot path
//! reads, validates, fingerprints and maps this tree; building and dropping a
//! `serde_json::Value` (a `BTreeMap` and a `String` per key) cost more than the rest of the
//! pipeline together.
//!
//! Repeated keys: a lookup gets the last one, as in `serde_json::Value`; walking the members
//! sees each occurrence, so a schema keyword that walks them (`additionalProperties`,
//! `maxProperties`) holds every copy to the contract — stricter than a `Value`, which keeps
//! only the last.

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};
use std::borrow::Cow;
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Object<'a>),
}

/// An object's members in document order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Object<'a>(Vec<(Cow<'a, str>, Json<'a>)>);

static NULL: Json<'static> = Json::Null;

impl<'a> Json<'a> {
    /// Parses a whole document (trailing bytes other than whitespace are an error).
    pub fn parse(bytes: &'a [u8]) -> Result<Json<'a>, serde_json::Error> {
        // One UTF-8 check of the whole body is much cheaper than serde_json's check of every
        // string; a body that is not UTF-8 is not JSON either, and is refused as before.
        match std::str::from_utf8(bytes) {
            Ok(text) => Json::parse_str(text),
            Err(_) => {
                let mut de = serde_json::Deserializer::from_slice(bytes);
                let json = Scratch::default().seed().deserialize(&mut de)?;
                de.end()?;
                Ok(json)
            }
        }
    }

    pub fn parse_str(text: &'a str) -> Result<Json<'a>, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(text);
        let json = Scratch::default().seed().deserialize(&mut de)?;
        de.end()?;
        Ok(json)
    }

    /// A member of an object (`None` for anything else).
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        self.as_object()?.get(key)
    }

    pub fn as_object(&self) -> Option<&Object<'a>> {
        match self {
            Json::Object(o) => Some(o),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Json<'a>]> {
        match self {
            Json::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<&Number> {
        match self {
            Json::Number(n) => Some(n),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        self.as_number()?.as_i64()
    }

    pub fn as_u64(&self) -> Option<u64> {
        self.as_number()?.as_u64()
    }

    pub fn as_f64(&self) -> Option<f64> {
        self.as_number()?.as_f64()
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }

    /// The value at a JSON Pointer (RFC 6901: `/a/0/b`, `~1` for `/`, `~0` for `~`).
    pub fn pointer(&self, pointer: &str) -> Option<&Json<'a>> {
        if pointer.is_empty() {
            return Some(self);
        }
        let rest = pointer.strip_prefix('/')?;
        rest.split('/').try_fold(self, |at, token| {
            let token = token.replace("~1", "/").replace("~0", "~");
            match at {
                Json::Object(o) => o.get(&token),
                Json::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            }
        })
    }

    /// An owned `serde_json::Value` of this tree, for the rare paths that keep it.
    pub fn to_value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => Value::Number(n.clone()),
            Json::String(s) => Value::String(s.to_string()),
            Json::Array(items) => Value::Array(items.iter().map(Json::to_value).collect()),
            Json::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| (k.to_string(), v.to_value()))
                    .collect(),
            ),
        }
    }
}

impl<'a> std::ops::Index<&str> for Json<'a> {
    type Output = Json<'a>;

    /// `json["key"]`: `Null` when absent or not an object, as with `serde_json::Value`.
    fn index(&self, key: &str) -> &Json<'a> {
        self.get(key).unwrap_or(&NULL)
    }
}

impl<'a> Object<'a> {
    /// The member named `key`; the last one when the document repeats it.
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_ref())
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Members in document order (a repeated key appears each time).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Json<'a>)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> From<&'a Value> for Json<'a> {
    /// A borrowed view of a `Value` (tests and replays build bodies this way).
    fn from(v: &'a Value) -> Self {
        match v {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => Json::Number(n.clone()),
            Value::String(s) => Json::String(Cow::Borrowed(s)),
            Value::Array(items) => Json::Array(items.iter().map(Json::from).collect()),
            Value::Object(map) => Json::Object(Object(
                map.iter()
                    .map(|(k, v)| (Cow::Borrowed(k.as_str()), Json::from(v)))
                    .collect(),
            )),
        }
    }
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Scratch::default().seed().deserialize(deserializer)
    }
}

/// Where the elements of the containers being parsed wait: every container pushes onto one
/// stack and takes its own off into a `Vec` of the exact size. Growing a `Vec` per
/// container by doubling cost a third of the parse.
struct Scratch<'de> {
    items: Vec<Json<'de>>,
    members: Vec<(Cow<'de, str>, Json<'de>)>,
}

impl Default for Scratch<'_> {
    fn default() -> Self {
        // Enough for a large shop order without growing.
        Scratch {
            items: Vec::with_capacity(32),
            members: Vec::with_capacity(256),
        }
    }
}

impl<'de> Scratch<'de> {
    fn seed(&mut self) -> Seed<'_, 'de> {
        Seed(self)
    }
}

struct Seed<'s, 'de>(&'s mut Scratch<'de>);

impl<'de> DeserializeSeed<'de> for Seed<'_, 'de> {
    type Value = Json<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Json<'de>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_, 'de> {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_none<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Json<'de>, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Json<'de>, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Json<'de>, E> {
        // serde_json never hands out NaN or infinities; the fallback only keeps this total.
        Ok(Number::from_f64(n).map_or(Json::Null, Json::Number))
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(s.to_string())))
    }

    fn visit_string<E>(self, s: String) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(s)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let start = self.0.items.len();
        while let Some(item) = seq.next_element_seed(Seed(&mut *self.0))? {
            self.0.items.push(item);
        }
        Ok(Json::Array(self.0.items.drain(start..).collect()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let start = self.0.members.len();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let value = map.next_value_seed(Seed(&mut *self.0))?;
            self.0.members.push((key, value));
        }
        Ok(Json::Object(Object(
            self.0.members.drain(start..).collect(),
        )))
    }
}

/// Object keys, borrowed from the input when they hold no escapes (serde's own `Cow`
/// impl always copies).
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(s))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s.to_string()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s))
    }
}

/// The borrowed tree as a `jsonschema` representation, so the provider and event schemas
/// (the contract) are checked on what was parsed, with no `Value` built for them.
pub struct Schema;

impl jsonschema::json::Json for Schema {
    type Node<'a> = &'a Json<'a>;
    type PreparedKey = Box<str>;
    type StringBuffer = Option<Json<'static>>;

    // Lookups scan the members (from the end); a schema with several properties is checked
    // faster with one pass over them.
    const KEYS_PER_LOOKUP: usize = 8;

    fn prepare_key(key: &str) -> Box<str> {
        key.into()
    }

    fn with_string_node<T>(
        buffer: &mut Option<Json<'static>>,
        string: &str,
        f: impl FnOnce(Self::Node<'_>) -> T,
    ) -> T {
        f(buffer.insert(Json::String(Cow::Owned(string.to_string()))))
    }
}

impl<'a> jsonschema::json::Node<'a, Schema> for &'a Json<'a> {
    type Object = &'a Object<'a>;
    type Array = &'a [Json<'a>];
    type Number = &'a Number;

    fn as_object(&self) -> Option<&'a Object<'a>> {
        Json::as_object(self)
    }

    fn as_array(&self) -> Option<&'a [Json<'a>]> {
        Json::as_array(self)
    }

    fn as_string(&self) -> Option<Cow<'a, str>> {
        match self {
            Json::String(s) => Some(Cow::Borrowed(s)),
            _ => None,
        }
    }

    fn as_number(&self) -> Option<&'a Number> {
        Json::as_number(self)
    }

    fn as_boolean(&self) -> Option<bool> {
        Json::as_bool(self)
    }

    fn is_null(&self) -> bool {
        Json::is_null(self)
    }

    fn json_type(&self) -> jsonschema::JsonType {
        use jsonschema::JsonType as T;
        match self {
            Json::Null => T::Null,
            Json::Bool(_) => T::Boolean,
            Json::Number(_) => T::Number,
            Json::String(_) => T::String,
            Json::Array(_) => T::Array,
            Json::Object(_) => T::Object,
        }
    }

    fn to_value(&self) -> Cow<'a, Value> {
        Cow::Owned(Json::to_value(self))
    }

    fn identity(&self) -> Option<jsonschema::json::NodeIdentity> {
        Some(jsonschema::json::NodeIdentity::new(
            std::ptr::from_ref::<Json<'a>>(*self) as usize,
        ))
    }
}

impl<'a> jsonschema::json::Object<'a, Schema> for &'a Object<'a> {
    type Node = &'a Json<'a>;
    type MemberName = &'a str;
    type MembersIter = Members<'a>;

    fn len(&self) -> usize {
        self.0.len()
    }

    fn get(&self, key: &Box<str>) -> Option<&'a Json<'a>> {
        Object::get(self, key)
    }

    fn members(&self) -> Members<'a> {
        Members(self.0.iter())
    }
}

pub struct Members<'a>(std::slice::Iter<'a, (Cow<'a, str>, Json<'a>)>);

impl<'a> Iterator for Members<'a> {
    type Item = (&'a str, &'a Json<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k.as_ref(), v))
    }
}

impl<'a> jsonschema::json::Array<'a, Schema> for &'a [Json<'a>] {
    type Node = &'a Json<'a>;
    type ElementsIter = std::slice::Iter<'a, Json<'a>>;

    fn len(&self) -> usize {
        <[Json<'a>]>::len(self)
    }

    fn elements(&self) -> std::slice::Iter<'a, Json<'a>> {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_like_serde_json() {
        let text = br#"{"a": 1, "b": [true, null, -2, 1.5, "x\u00e9"], "c": {"d": "e"}, "n": 18446744073709551615}"#;
        let json = Json::parse(text).unwrap();
        let value: Value = serde_json::from_slice(text).unwrap();
        assert_eq!(json.to_value(), value);
        assert_eq!(json["c"]["d"].as_str(), Some("e"));
        assert_eq!(json["b"].as_array().unwrap().len(), 5);
        assert!(json["missing"]["deeper"].is_null());
        assert_eq!(json["n"].as_u64(), Some(u64::MAX));
        for pointer in ["", "/a", "/b/4", "/c/d", "/b/9", "/x/y", "/b/x"] {
            assert_eq!(
                json.pointer(pointer).map(Json::to_value),
                value.pointer(pointer).cloned(),
                "{pointer}"
            );
        }
    }

    #[test]
    fn unescaped_strings_and_keys_borrow_the_input() {
        let text = br#"{"plain": "text", "esc\"aped": "a\nb"}"#;
        let json = Json::parse(text).unwrap();
        let o = json.as_object().unwrap();
        let members: Vec<_> = o.0.iter().collect();
        assert!(matches!(members[0].0, Cow::Borrowed("plain")));
        assert!(matches!(members[0].1, Json::String(Cow::Borrowed("text"))));
        assert!(matches!(members[1].0, Cow::Owned(_)));
        assert_eq!(json["esc\"aped"].as_str(), Some("a\nb"));
    }

    #[test]
    fn the_last_of_repeated_keys_wins_as_in_value() {
        let text = br#"{"id": 1, "id": 2}"#;
        let json = Json::parse(text).unwrap();
        let value: Value = serde_json::from_slice(text).unwrap();
        assert_eq!(json["id"].as_u64(), Some(2));
        assert_eq!(json.to_value(), value);
    }

    #[test]
    fn rejects_what_serde_json_rejects() {
        for bad in [&b"{"[..], b"{} x", b"[1,]", b"nul", b"\"\xff\"", b""] {
            assert!(
                Json::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
            assert!(serde_json::from_slice::<Value>(bad).is_err());
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(
            Json::parse(deep.as_bytes()).is_err(),
            "recursion is limited"
        );
    }

    #[test]
    fn schemas_check_the_borrowed_tree_as_they_check_a_value() {
        let schema = json!({
            "type": "object",
            "required": ["id", "lines"],
            "properties": {
                "id": {"type": "integer", "minimum": 1},
                "at": {"type": ["string", "null"], "format": "date-time"},
                "lines": {"type": "array", "items": {"$ref": "#/$defs/Line"}},
                "kind": {"enum": ["a", "b"]},
                "either": {"anyOf": [{"type": "string", "pattern": "^x"}, {"type": "null"}]}
            },
            "$defs": {"Line": {"type": "object", "required": ["price"],
                "properties": {"price": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$"}}}}
        });
        let borrowed = jsonschema::options_for::<Schema>()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap();
        let value = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap();
        for doc in [
            json!({"id": 1, "lines": []}),
            json!({"id": 0, "lines": []}),
            json!({"id": 1.0, "lines": []}),
            json!({"id": 1, "lines": [{"price": "1.50"}], "at": "2025-03-14T10:00:00Z"}),
            json!({"id": 1, "lines": [{"price": "1,50"}]}),
            json!({"id": 1, "lines": [{}]}),
            json!({"id": 1, "lines": [], "at": "yesterday"}),
            json!({"id": 1, "lines": [], "kind": "c"}),
            json!({"id": 1, "lines": [], "either": "xy"}),
            json!({"id": 1, "lines": [], "either": "y"}),
            json!({"lines": []}),
            json!([1]),
        ] {
            let text = serde_json::to_vec(&doc).unwrap();
            let parsed = Json::parse(&text).unwrap();
            assert_eq!(borrowed.is_valid(&parsed), value.is_valid(&doc), "{doc}");
            let paths = |errors: Vec<String>| errors;
            assert_eq!(
                paths(
                    borrowed
                        .iter_errors(&parsed)
                        .map(|e| format!("{}: {e}", e.instance_path()))
                        .collect()
                ),
                paths(
                    value
                        .iter_errors(&doc)
                        .map(|e| format!("{}: {e}", e.instance_path()))
                        .collect()
                ),
            );
        }
    }

    #[test]
    fn views_a_value() {
        let v = json!({"a": [1, {"b": "c"}]});
        assert_eq!(Json::from(&v).to_value(), v);
    }
}
