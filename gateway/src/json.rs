//! A webhook body parsed once: the document `sonic-rs` builds (SIMD scanning, every node in
//! one allocation, members kept in document order), read through this module's types so
//! the rest of the gateway never names the parser. The hot path reads, validates,
//! fingerprints and maps this tree; building and dropping a `serde_json::Value` (a
//! `BTreeMap` and a `String` per key) cost more than the rest of the pipeline together, and
//! a tree built through serde's visitor still cost three times this one.
//!
//! Repeated keys (which RFC 8259 leaves to the parser and I-JSON forbids): a lookup gets the
//! first one, and so do the schema check and [`Json::to_value`], so the copy the normalizer
//! reads is the copy the contract was checked on.
//!
//! Nesting is limited to [`MAX_DEPTH`], as `serde_json` limits it: the parser, the schema
//! check and the walkers here recurse, and a body of a million `[` must not exhaust a stack.

use ref_cast::RefCast;
use serde_json::{Number, Value};
use sonic_rs::{JsonContainerTrait, JsonNumberTrait, JsonValueTrait};
use std::borrow::Cow;

/// How deep arrays and objects may nest (`serde_json`'s own limit).
pub const MAX_DEPTH: usize = 128;

/// Why a body is not JSON.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The parser's first line only: the rest quotes the body, which may hold personal data
    /// and is kept byte-exact beside the reason anyway.
    #[error("{}", .0.to_string().lines().next().unwrap_or("invalid JSON"))]
    Syntax(#[from] sonic_rs::Error),
    #[error("recursion limit exceeded: arrays and objects nest deeper than {MAX_DEPTH}")]
    TooDeep,
}

/// One JSON value of a parsed document.
#[derive(RefCast)]
#[repr(transparent)]
pub struct Json(sonic_rs::Value);

/// An object's members in document order.
#[derive(Debug, RefCast)]
#[repr(transparent)]
pub struct Object(sonic_rs::Object);

/// An array's items.
#[derive(Debug, RefCast)]
#[repr(transparent)]
pub struct Array(sonic_rs::Array);

/// What a value is, for a `match`.
#[derive(Debug, Clone)]
pub enum Kind<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(&'a str),
    Array(&'a Array),
    Object(&'a Object),
}

static NULL: Json = Json(sonic_rs::Value::new());

impl Json {
    /// Parses a whole document (trailing bytes other than whitespace are an error; so is a
    /// body that is not UTF-8).
    pub fn parse(bytes: &[u8]) -> Result<Json, ParseError> {
        if nests_too_deep(bytes) {
            return Err(ParseError::TooDeep);
        }
        Ok(Json(sonic_rs::from_slice(bytes)?))
    }

    /// Parses a document already known to be UTF-8.
    pub fn parse_str(text: &str) -> Result<Json, ParseError> {
        if nests_too_deep(text.as_bytes()) {
            return Err(ParseError::TooDeep);
        }
        Ok(Json(sonic_rs::from_str(text)?))
    }

    /// `null`.
    pub fn null() -> &'static Json {
        &NULL
    }

    pub fn kind(&self) -> Kind<'_> {
        // One decode of the node's tag.
        match self.0.as_ref() {
            sonic_rs::ValueRef::Null => Kind::Null,
            sonic_rs::ValueRef::Bool(b) => Kind::Bool(b),
            sonic_rs::ValueRef::Number(n) => number(n).map_or(Kind::Null, Kind::Number),
            sonic_rs::ValueRef::String(s) => Kind::String(s),
            sonic_rs::ValueRef::Array(a) => Kind::Array(Array::ref_cast(a)),
            sonic_rs::ValueRef::Object(o) => Kind::Object(Object::ref_cast(o)),
        }
    }

    /// A member of an object (`None` for anything else).
    pub fn get(&self, key: &str) -> Option<&Json> {
        self.as_object()?.get(key)
    }

    pub fn as_object(&self) -> Option<&Object> {
        self.0.as_object().map(Object::ref_cast)
    }

    pub fn as_array(&self) -> Option<&Array> {
        self.0.as_array().map(Array::ref_cast)
    }

    pub fn as_str(&self) -> Option<&str> {
        self.0.as_str()
    }

    pub fn as_bool(&self) -> Option<bool> {
        self.0.as_bool()
    }

    /// The number, as `serde_json` holds it (an integer when it is one, else an `f64`).
    pub fn as_number(&self) -> Option<Number> {
        number(self.0.as_number()?)
    }

    pub fn is_number(&self) -> bool {
        self.0.is_number()
    }

    pub fn as_i64(&self) -> Option<i64> {
        self.0.as_i64()
    }

    pub fn as_u64(&self) -> Option<u64> {
        self.0.as_u64()
    }

    pub fn as_f64(&self) -> Option<f64> {
        self.0.as_f64()
    }

    pub fn is_null(&self) -> bool {
        self.0.is_null()
    }

    /// The value at a JSON Pointer (RFC 6901: `/a/0/b`, `~1` for `/`, `~0` for `~`).
    pub fn pointer(&self, pointer: &str) -> Option<&Json> {
        if pointer.is_empty() {
            return Some(self);
        }
        let rest = pointer.strip_prefix('/')?;
        rest.split('/').try_fold(self, |at, token| {
            let token = token.replace("~1", "/").replace("~0", "~");
            match at.kind() {
                Kind::Object(o) => o.get(&token),
                Kind::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            }
        })
    }

    /// An owned `serde_json::Value` of this tree, for the rare paths that keep it.
    pub fn to_value(&self) -> Value {
        match self.kind() {
            Kind::Null => Value::Null,
            Kind::Bool(b) => Value::Bool(b),
            Kind::Number(n) => Value::Number(n),
            Kind::String(s) => Value::String(s.to_string()),
            Kind::Array(items) => Value::Array(items.iter().map(Json::to_value).collect()),
            Kind::Object(o) => {
                let mut map = serde_json::Map::new();
                for (k, v) in o.iter() {
                    // The first of repeated keys, as `get` reads it.
                    map.entry(k).or_insert_with(|| v.to_value());
                }
                Value::Object(map)
            }
        }
    }
}

/// `serde_json`'s number for the parser's: an integer when it is one, else the `f64`.
fn number(n: sonic_rs::Number) -> Option<Number> {
    n.as_u64()
        .map(Number::from)
        .or_else(|| n.as_i64().map(Number::from))
        .or_else(|| n.as_f64().and_then(Number::from_f64))
}

impl std::fmt::Debug for Json {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::ops::Index<&str> for Json {
    type Output = Json;

    /// `json["key"]`: `Null` when absent or not an object, as with `serde_json::Value`.
    fn index(&self, key: &str) -> &Json {
        self.get(key).unwrap_or(&NULL)
    }
}

impl From<&Value> for Json {
    /// A document holding the same as a `Value` (tests and replays build bodies this way).
    fn from(v: &Value) -> Self {
        let text = serde_json::to_vec(v).unwrap_or_else(|_| b"null".to_vec());
        Json::parse(&text).unwrap_or_else(|_| Json(sonic_rs::Value::new()))
    }
}

impl Object {
    /// The member named `key`; the first one when the document repeats it.
    pub fn get(&self, key: &str) -> Option<&Json> {
        self.0.get(&key).map(Json::ref_cast)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    /// Members in document order (a repeated key appears each time).
    pub fn iter(&self) -> Members<'_> {
        Members(self.0.iter())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Array {
    pub fn iter(&self) -> Items<'_> {
        self.0.iter().map(Json::ref_cast)
    }

    pub fn get(&self, index: usize) -> Option<&Json> {
        self.0.get(index).map(Json::ref_cast)
    }

    pub fn first(&self) -> Option<&Json> {
        self.get(0)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

pub struct Members<'a>(sonic_rs::value::object::Iter<'a>);

impl<'a> Iterator for Members<'a> {
    type Item = (&'a str, &'a Json);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k, Json::ref_cast(v)))
    }
}

pub type Items<'a> =
    std::iter::Map<std::slice::Iter<'a, sonic_rs::Value>, fn(&'a sonic_rs::Value) -> &'a Json>;

/// Whether arrays and objects nest deeper than [`MAX_DEPTH`]. A document cannot nest deeper
/// than it has `[` and `{` bytes, so the common body, with fewer of them than the limit, is
/// answered by one vectorised count; only a larger one is walked, skipping strings.
fn nests_too_deep(bytes: &[u8]) -> bool {
    let openers = memchr::memchr2_iter(b'[', b'{', bytes)
        .take(MAX_DEPTH + 1)
        .count();
    if openers <= MAX_DEPTH {
        return false;
    }
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The tree as a `jsonschema` representation, so the provider and event schemas (the
/// contract) are checked on what was parsed, with no `Value` built for them.
pub struct Schema;

impl jsonschema::json::Json for Schema {
    type Node<'a> = &'a Json;
    type PreparedKey = Box<str>;
    type StringBuffer = Option<Json>;

    // A lookup scans the members (decoding each key), so one pass over them beats even a
    // single lookup: let the validator always walk.
    const KEYS_PER_LOOKUP: usize = 1 << 16;

    fn prepare_key(key: &str) -> Box<str> {
        key.into()
    }

    fn with_string_node<T>(
        buffer: &mut Option<Json>,
        string: &str,
        f: impl FnOnce(Self::Node<'_>) -> T,
    ) -> T {
        f(buffer.insert(Json(sonic_rs::Value::from(string))))
    }
}

impl<'a> jsonschema::json::Node<'a, Schema> for &'a Json {
    type Object = &'a Object;
    type Array = &'a Array;
    type Number = Number;

    fn as_object(&self) -> Option<&'a Object> {
        Json::as_object(self)
    }

    fn as_array(&self) -> Option<&'a Array> {
        Json::as_array(self)
    }

    fn as_string(&self) -> Option<Cow<'a, str>> {
        Json::as_str(self).map(Cow::Borrowed)
    }

    fn as_number(&self) -> Option<Number> {
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
        match self.kind() {
            Kind::Null => T::Null,
            Kind::Bool(_) => T::Boolean,
            Kind::Number(_) => T::Number,
            Kind::String(_) => T::String,
            Kind::Array(_) => T::Array,
            Kind::Object(_) => T::Object,
        }
    }

    fn to_value(&self) -> Cow<'a, Value> {
        Cow::Owned(Json::to_value(self))
    }

    fn identity(&self) -> Option<jsonschema::json::NodeIdentity> {
        Some(jsonschema::json::NodeIdentity::new(
            std::ptr::from_ref::<Json>(*self) as usize,
        ))
    }
}

impl<'a> jsonschema::json::Object<'a, Schema> for &'a Object {
    type Node = &'a Json;
    type MemberName = &'a str;
    type MembersIter = Members<'a>;

    fn len(&self) -> usize {
        Object::len(self)
    }

    fn get(&self, key: &Box<str>) -> Option<&'a Json> {
        Object::get(self, key)
    }

    fn members(&self) -> Members<'a> {
        Object::iter(self)
    }
}

impl<'a> jsonschema::json::Array<'a, Schema> for &'a Array {
    type Node = &'a Json;
    type ElementsIter = Items<'a>;

    fn len(&self) -> usize {
        Array::len(self)
    }

    fn elements(&self) -> Items<'a> {
        Array::iter(self)
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
    fn escaped_strings_and_keys_are_decoded() {
        let text = br#"{"plain": "text", "esc\"aped": "a\nb\u00e9"}"#;
        let json = Json::parse(text).unwrap();
        let keys: Vec<_> = json.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["plain", "esc\"aped"]);
        assert_eq!(json["plain"].as_str(), Some("text"));
        assert_eq!(json["esc\"aped"].as_str(), Some("a\nb\u{e9}"));
    }

    #[test]
    fn nesting_is_limited_before_the_parser_recurses() {
        let nest = |n: usize| "[".repeat(n) + &"]".repeat(n);
        assert!(Json::parse(nest(MAX_DEPTH).as_bytes()).is_ok());
        for n in [MAX_DEPTH + 1, 100_000] {
            let err = Json::parse(nest(n).as_bytes()).unwrap_err();
            assert!(matches!(err, ParseError::TooDeep), "{n}: {err}");
        }
        // Objects count as arrays do.
        let objects = r#"{"a":"#.repeat(MAX_DEPTH + 1) + "1" + &"}".repeat(MAX_DEPTH + 1);
        assert!(matches!(
            Json::parse(objects.as_bytes()),
            Err(ParseError::TooDeep)
        ));
        // Many containers side by side are not deep; brackets in strings are not nesting.
        let wide = format!("[{}]", vec!["[{}]"; 1000].join(","));
        assert!(Json::parse(wide.as_bytes()).is_ok());
        let quoted = format!(r#"["{}", "\"[[[", {}]"#, "[".repeat(5000), nest(10));
        let json = Json::parse(quoted.as_bytes()).unwrap();
        assert_eq!(json.as_array().unwrap().len(), 3);
    }

    #[test]
    fn the_first_of_repeated_keys_is_the_one_read_and_checked() {
        let text = br#"{"id": 1, "id": "two"}"#;
        let json = Json::parse(text).unwrap();
        assert_eq!(json["id"].as_u64(), Some(1));
        assert_eq!(json.to_value(), json!({"id": 1}));
        assert_eq!(json.as_object().unwrap().len(), 2);
        let schema = |t: &str| {
            jsonschema::options_for::<Schema>()
                .build(&json!({"properties": {"id": {"type": t}}}))
                .unwrap()
        };
        assert!(schema("integer").is_valid(&json));
        assert!(!schema("string").is_valid(&json));
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
        let err = Json::parse(br#"{"email": "ada@example.com", oops}"#).unwrap_err();
        let said = err.to_string();
        assert!(said.contains("line 1 column"), "{said}");
        assert!(!said.contains('\n') && !said.contains("ada@"), "{said}");
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
