//! Plugins installed without the `customer_pii` scope see events with personal data
//! removed. What is personal is decided by each event type's JSON Schema: every value
//! whose schema says `"x-pii": true` is removed (contact data, addresses, free text such as
//! message and review text or return reasons, tracking and attachment URLs). Ids stay, so
//! a plugin can still count orders per customer.
//!
//! * Catalog types: the schemas in `schemas/events/` ([`redact_catalog`]).
//! * Plugin-published types: the schema the publishing plugin registered, in which it marks
//!   its own personal fields the same way ([`Plan::compile`], cached per plugin and type by
//!   [`super::PluginSchemas::redact`]).
//! * A type with no known schema: the key-name list below ([`redact_by_key_names`]).
//!
//! A schema is compiled once into a [`Plan`]: a small automaton over `data` whose states
//! are the sets of schema locations (`properties`, `additionalProperties`, `items`,
//! `prefixItems`, followed through `$ref`, `allOf`/`anyOf`/`oneOf` and `if`/`then`/`else`)
//! that apply at a place in the data. Walking an event then costs one pass over the parts
//! of its `data` that can hold personal data at all. A value marked `x-pii` is removed; if
//! its object requires it, it is left empty instead (`""`, `[]`, `{}`, else `null`) so the
//! event keeps its shape (a message's `text` arrives as `""`).

use omnigate_schemas::api::PublishedType;
use omnigate_schemas::catalog;
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

/// The schema keyword that marks a value as personal data.
pub const PII_KEYWORD: &str = "x-pii";

/// Most states a plan may have. A schema that needs more (only a contrived plugin schema
/// could) is not walked: its events reach plugins without the scope with empty `data`.
const MAX_STATES: usize = 4096;

/// Fields that are a person's contact data wherever they appear in `data`: the fallback
/// for a type whose schema is unknown.
const CONTACT: &[&str] = &["email", "phone", "name", "first_name", "last_name"];
/// Fields that hold a whole address (fallback).
const ADDRESSES: &[&str] = &[
    "shipping_address",
    "billing_address",
    "default_address",
    "destination",
];

/// Removes what the catalog schema of `event_type` marks `x-pii` from `data`. False (and
/// `data` untouched) when the type is not in the catalog.
pub fn redact_catalog(event_type: &str, data: &mut Value) -> bool {
    match catalog_plan(event_type) {
        Some(plan) => {
            plan.apply(data);
            true
        }
        None => false,
    }
}

/// The plan of a catalog type, compiled on first use for every type at once.
pub fn catalog_plan(event_type: &str) -> Option<&'static Plan> {
    static PLANS: OnceLock<HashMap<&'static str, Plan>> = OnceLock::new();
    PLANS
        .get_or_init(|| {
            let common: Value =
                serde_json::from_str(catalog::COMMON.text).expect("common.schema.json is JSON");
            catalog::EVENT_TYPES
                .iter()
                .map(|t| {
                    let schema: Value =
                        serde_json::from_str(t.schema.text).expect("catalog schemas are JSON");
                    let docs = [&schema, &common];
                    (t.name, Plan::build(&docs, "/properties/data", MAX_STATES))
                })
                .collect()
        })
        .get(event_type)
}

/// Removes what `schema` (a standalone JSON Schema of `data`, such as a plugin's
/// registered one) marks `x-pii`. Compiles the schema each time: callers that see a type
/// more than once keep the [`Plan`].
pub fn redact_by_schema(schema: &Value, data: &mut Value) {
    Plan::compile(schema).apply(data);
}

/// The fallback for a type with no known schema: contact fields (as text) and whole
/// addresses, wherever they appear.
pub fn redact_by_key_names(data: &mut Value) {
    match data {
        Value::Object(map) => {
            for key in ADDRESSES {
                map.remove(*key);
            }
            // Only text is contact data: `marketing_consent.email` is a flag and stays.
            map.retain(|k, v| !(CONTACT.contains(&k.as_str()) && v.is_string()));
            for v in map.values_mut() {
                redact_by_key_names(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_by_key_names),
        _ => {}
    }
}

/// Plans of plugin-published types, compiled once per (plugin, type), and again if the
/// registered schema is not the one a plan was compiled from.
#[derive(Debug, Default)]
pub struct PluginPlans {
    plans: Mutex<HashMap<(String, String), Compiled>>,
}

/// A plan and the schema it was compiled from.
type Compiled = (Value, Arc<Plan>);

impl PluginPlans {
    /// The plan of `declared`, as `plugin_id` registered it.
    pub fn get(&self, plugin_id: &str, declared: &PublishedType) -> Arc<Plan> {
        let mut plans = self.plans.lock().unwrap_or_else(|p| p.into_inner());
        let key = (plugin_id.to_string(), declared.event_type.clone());
        match plans.get(&key) {
            Some((schema, plan)) if *schema == declared.schema => plan.clone(),
            _ => {
                let plan = Arc::new(Plan::compile(&declared.schema));
                plans.insert(key, (declared.schema.clone(), plan.clone()));
                plan
            }
        }
    }
}

/// What to remove from the `data` of one event type, compiled from its schema.
#[derive(Debug, Clone)]
pub struct Plan {
    states: Vec<State>,
    /// `None`: no schema applies to `data` (nothing is marked).
    start: Option<usize>,
    /// The schema was too complex to compile: everything is removed.
    opaque: bool,
}

/// The schema locations that apply at one place in the data, merged.
#[derive(Debug, Clone, Default)]
struct State {
    /// A location here says `x-pii: true`.
    pii: bool,
    /// Some value below (or this one) is marked: otherwise the walk stops here.
    reaches_pii: bool,
    /// Properties some location here requires.
    required: HashSet<String>,
    /// The state of a named property.
    fields: HashMap<String, usize>,
    /// The state of any other property (`additionalProperties`, `patternProperties`).
    other: Option<usize>,
    /// The state of the array item at each position (`prefixItems`).
    prefix: Vec<Option<usize>>,
    /// The state of every other array item (`items`).
    rest: Option<usize>,
}

impl Plan {
    /// Compiles a standalone schema of `data`: its `$ref`s may point inside it (`#/$defs/…`,
    /// `#anchor`, or its own `$id`).
    pub fn compile(schema: &Value) -> Plan {
        Plan::build(&[schema], "", MAX_STATES)
    }

    /// Whether applying the plan can change anything.
    pub fn is_noop(&self) -> bool {
        !self.opaque && self.start.is_none_or(|s| !self.states[s].reaches_pii)
    }

    /// Removes every value the schema marks `x-pii` from `data`.
    pub fn apply(&self, data: &mut Value) {
        if self.opaque {
            *data = Value::Object(Map::new());
            return;
        }
        let Some(start) = self.start else { return };
        if self.states[start].pii {
            *data = Value::Object(Map::new());
        } else {
            self.walk(start, data);
        }
    }

    fn walk(&self, state: usize, value: &mut Value) {
        let s = &self.states[state];
        if !s.reaches_pii {
            return;
        }
        match value {
            Value::Object(map) => map.retain(|key, v| {
                let Some(child) = s.fields.get(key).copied().or(s.other) else {
                    return true;
                };
                if !self.states[child].pii {
                    self.walk(child, v);
                    return true;
                }
                if s.required.contains(key) {
                    *v = blank(v);
                    return true;
                }
                false
            }),
            Value::Array(items) => {
                let mut i = 0;
                items.retain_mut(|item| {
                    let child = s.prefix.get(i).copied().flatten().or(s.rest);
                    i += 1;
                    match child {
                        Some(c) if self.states[c].pii => false,
                        Some(c) => {
                            self.walk(c, item);
                            true
                        }
                        None => true,
                    }
                });
            }
            _ => {}
        }
    }

    /// Compiles the schema at `pointer` in `docs[0]`; the other documents are what its
    /// `$ref`s may name by `$id`.
    fn build(docs: &[&Value], pointer: &str, max_states: usize) -> Plan {
        let mut c = Compiler {
            docs: docs
                .iter()
                .map(|root| Doc {
                    id: root.get("$id").and_then(Value::as_str).unwrap_or(""),
                    root,
                })
                .collect(),
            interned: HashMap::new(),
            states: Vec::new(),
            queue: Vec::new(),
            max_states,
        };
        let start = Loc {
            doc: 0,
            pointer: pointer.to_string(),
        };
        match c.run(start) {
            Ok(start) => {
                let mut plan = Plan {
                    states: c.states,
                    start,
                    opaque: false,
                };
                plan.mark_reaching();
                plan
            }
            Err(TooComplex) => {
                tracing::warn!(
                    max_states,
                    "a schema is too complex to redact by: its events reach plugins without \
                     customer_pii with empty data"
                );
                Plan {
                    states: Vec::new(),
                    start: None,
                    opaque: true,
                }
            }
        }
    }

    /// Sets `reaches_pii` on every state from which a marked state can be reached.
    fn mark_reaching(&mut self) {
        for s in &mut self.states {
            s.reaches_pii = s.pii;
        }
        loop {
            let mut changed = false;
            for i in 0..self.states.len() {
                if self.states[i].reaches_pii {
                    continue;
                }
                let s = &self.states[i];
                let reaches = s
                    .fields
                    .values()
                    .copied()
                    .chain(s.other)
                    .chain(s.prefix.iter().copied().flatten())
                    .chain(s.rest)
                    .any(|c| self.states[c].reaches_pii);
                if reaches {
                    self.states[i].reaches_pii = true;
                    changed = true;
                }
            }
            if !changed {
                return;
            }
        }
    }
}

/// What a required marked value is left as: empty, of its own kind.
fn blank(v: &Value) -> Value {
    match v {
        Value::String(_) => Value::String(String::new()),
        Value::Array(_) => Value::Array(Vec::new()),
        Value::Object(_) => Value::Object(Map::new()),
        _ => Value::Null,
    }
}

struct Doc<'a> {
    id: &'a str,
    root: &'a Value,
}

/// A subschema: a JSON pointer into one of the documents.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Loc {
    doc: usize,
    pointer: String,
}

struct TooComplex;

struct Compiler<'a> {
    docs: Vec<Doc<'a>>,
    interned: HashMap<Vec<Loc>, usize>,
    states: Vec<State>,
    queue: Vec<(usize, Vec<Loc>)>,
    max_states: usize,
}

/// Keywords whose subschemas apply to the same value.
const IN_PLACE: &[&str] = &["allOf", "anyOf", "oneOf"];
const IN_PLACE_SINGLE: &[&str] = &["if", "then", "else"];

impl Compiler<'_> {
    fn run(&mut self, start: Loc) -> std::result::Result<Option<usize>, TooComplex> {
        let start = self.intern(vec![start])?;
        while let Some((id, set)) = self.queue.pop() {
            self.expand(id, &set)?;
        }
        Ok(start)
    }

    fn schema(&self, loc: &Loc) -> Option<&Map<String, Value>> {
        self.docs[loc.doc].root.pointer(&loc.pointer)?.as_object()
    }

    /// The state of the locations `seeds` and everything they apply in place.
    fn intern(&mut self, seeds: Vec<Loc>) -> std::result::Result<Option<usize>, TooComplex> {
        let set = self.close(seeds);
        if set.is_empty() {
            return Ok(None);
        }
        if let Some(&id) = self.interned.get(&set) {
            return Ok(Some(id));
        }
        if self.states.len() >= self.max_states {
            return Err(TooComplex);
        }
        let id = self.states.len();
        self.states.push(State::default());
        self.interned.insert(set.clone(), id);
        self.queue.push((id, set));
        Ok(Some(id))
    }

    /// `seeds` with every location they apply in place (`$ref`, `allOf`, `if`, …), sorted.
    /// Boolean schemas and unresolvable references say nothing and are left out.
    fn close(&self, seeds: Vec<Loc>) -> Vec<Loc> {
        let mut seen = BTreeSet::new();
        let mut todo = seeds;
        while let Some(loc) = todo.pop() {
            if seen.contains(&loc) {
                continue;
            }
            let Some(schema) = self.schema(&loc) else {
                continue;
            };
            if let Some(r) = schema.get("$ref").and_then(Value::as_str)
                && let Some(target) = self.resolve(loc.doc, r)
            {
                todo.push(target);
            }
            for k in IN_PLACE {
                if let Some(all) = schema.get(*k).and_then(Value::as_array) {
                    for i in 0..all.len() {
                        todo.push(loc.child(k).child(&i.to_string()));
                    }
                }
            }
            for k in IN_PLACE_SINGLE {
                if schema.contains_key(*k) {
                    todo.push(loc.child(k));
                }
            }
            if let Some(deps) = schema.get("dependentSchemas").and_then(Value::as_object) {
                for name in deps.keys() {
                    todo.push(loc.child("dependentSchemas").child(name));
                }
            }
            seen.insert(loc);
        }
        seen.into_iter().collect()
    }

    /// Works out the state `id` (the locations `set`): its mark and its children.
    fn expand(&mut self, id: usize, set: &[Loc]) -> std::result::Result<(), TooComplex> {
        let mut state = State::default();
        let mut names = BTreeSet::new();
        let mut others = Vec::new();
        let mut prefix_len = 0;
        for loc in set {
            let Some(schema) = self.schema(loc) else {
                continue;
            };
            state.pii |= schema.get(PII_KEYWORD) == Some(&Value::Bool(true));
            if let Some(required) = schema.get("required").and_then(Value::as_array) {
                state.required.extend(
                    required
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string),
                );
            }
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                names.extend(props.keys().cloned());
            }
            others.extend(self.other_properties(loc));
            prefix_len = prefix_len.max(self.prefix_items(loc).len());
        }
        // Nothing below a marked value is ever looked at.
        if !state.pii {
            for name in names {
                let seeds = set
                    .iter()
                    .flat_map(|loc| match self.schema(loc) {
                        Some(s)
                            if s.get("properties")
                                .and_then(Value::as_object)
                                .is_some_and(|p| p.contains_key(&name)) =>
                        {
                            vec![loc.child("properties").child(&name)]
                        }
                        _ => self.other_properties(loc),
                    })
                    .collect();
                if let Some(child) = self.intern(seeds)? {
                    state.fields.insert(name, child);
                }
            }
            state.other = self.intern(others)?;
            for i in 0..prefix_len {
                let seeds = set
                    .iter()
                    .flat_map(|loc| {
                        let mut at = self.all_items(loc);
                        match self.prefix_items(loc).get(i) {
                            Some(p) => at.push(p.clone()),
                            None => at.extend(self.rest_items(loc)),
                        }
                        at
                    })
                    .collect();
                let child = self.intern(seeds)?;
                state.prefix.push(child);
            }
            let rest = set
                .iter()
                .flat_map(|loc| {
                    let mut at = self.all_items(loc);
                    at.extend(self.rest_items(loc));
                    at
                })
                .collect();
            state.rest = self.intern(rest)?;
        }
        self.states[id] = state;
        Ok(())
    }

    /// Where a property not named in `loc`'s `properties` finds its schema. Patterns are
    /// not matched: every `patternProperties` schema is taken to apply (more is removed,
    /// never less).
    fn other_properties(&self, loc: &Loc) -> Vec<Loc> {
        let Some(schema) = self.schema(loc) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for k in ["additionalProperties", "unevaluatedProperties"] {
            if schema.get(k).is_some_and(Value::is_object) {
                out.push(loc.child(k));
            }
        }
        if let Some(patterns) = schema.get("patternProperties").and_then(Value::as_object) {
            for p in patterns.keys() {
                out.push(loc.child("patternProperties").child(p));
            }
        }
        out
    }

    /// The positional item schemas (`prefixItems`, or draft 7's `items` array).
    fn prefix_items(&self, loc: &Loc) -> Vec<Loc> {
        let Some(schema) = self.schema(loc) else {
            return Vec::new();
        };
        for k in ["prefixItems", "items"] {
            if let Some(list) = schema.get(k).and_then(Value::as_array) {
                return (0..list.len())
                    .map(|i| loc.child(k).child(&i.to_string()))
                    .collect();
            }
        }
        Vec::new()
    }

    /// The schema of items past the positional ones.
    fn rest_items(&self, loc: &Loc) -> Vec<Loc> {
        let Some(schema) = self.schema(loc) else {
            return Vec::new();
        };
        let key = if schema.get("items").is_some_and(Value::is_array) {
            "additionalItems"
        } else {
            "items"
        };
        if schema.get(key).is_some_and(Value::is_object) {
            vec![loc.child(key)]
        } else {
            Vec::new()
        }
    }

    /// Schemas that may apply to any item (`contains`, `unevaluatedItems`).
    fn all_items(&self, loc: &Loc) -> Vec<Loc> {
        let Some(schema) = self.schema(loc) else {
            return Vec::new();
        };
        ["contains", "unevaluatedItems"]
            .into_iter()
            .filter(|k| schema.get(*k).is_some_and(Value::is_object))
            .map(|k| loc.child(k))
            .collect()
    }

    /// The location a `$ref` in document `from` names, if it is in one of the documents.
    fn resolve(&self, from: usize, reference: &str) -> Option<Loc> {
        let (uri, fragment) = reference.split_once('#').unwrap_or((reference, ""));
        let doc = if uri.is_empty() {
            from
        } else {
            let base = self.docs[from].id;
            let target = if uri.contains(':') {
                uri.to_string()
            } else {
                match base.rfind('/') {
                    Some(i) => format!("{}{uri}", &base[..=i]),
                    None => uri.to_string(),
                }
            };
            self.docs
                .iter()
                .position(|d| !d.id.is_empty() && d.id.trim_end_matches('#') == target)?
        };
        let fragment = percent_decode(fragment)?;
        let root = self.docs[doc].root;
        let pointer = if fragment.is_empty() || fragment.starts_with('/') {
            fragment
        } else {
            find_anchor(root, &fragment, String::new())?
        };
        root.pointer(&pointer)?;
        Some(Loc { doc, pointer })
    }
}

impl Loc {
    fn child(&self, token: &str) -> Loc {
        Loc {
            doc: self.doc,
            pointer: format!(
                "{}/{}",
                self.pointer,
                token.replace('~', "~0").replace('/', "~1")
            ),
        }
    }
}

/// The pointer of the subschema whose `$anchor` is `name`.
fn find_anchor(v: &Value, name: &str, at: String) -> Option<String> {
    match v {
        Value::Object(map) => {
            if map.get("$anchor").and_then(Value::as_str) == Some(name) {
                return Some(at);
            }
            map.iter().find_map(|(k, v)| {
                let token = k.replace('~', "~0").replace('/', "~1");
                find_anchor(v, name, format!("{at}/{token}"))
            })
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| find_anchor(v, name, format!("{at}/{i}"))),
        _ => None,
    }
}

/// `%XX` escapes of a URI fragment decoded; `None` if they do not make UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_string());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::Validators;
    use serde_json::json;

    /// A step from a value to a part of it.
    #[derive(Debug, Clone)]
    enum Step {
        Key(String),
        Each,
    }

    /// The catalog documents, for the test's own walk (independent of [`Plan`]).
    struct Docs {
        event: Value,
        common: Value,
    }

    impl Docs {
        fn of(t: &catalog::EventType) -> Docs {
            Docs {
                event: serde_json::from_str(t.schema.text).unwrap(),
                common: serde_json::from_str(catalog::COMMON.text).unwrap(),
            }
        }

        /// The schema a `$ref` names, and whether it is in common.schema.json.
        fn resolve(&self, in_common: bool, r: &str) -> (bool, &Value) {
            let (uri, pointer) = r.split_once('#').unwrap();
            let common = in_common || uri == "common.schema.json";
            assert!(uri.is_empty() || uri == "common.schema.json", "{r}");
            let doc = if common { &self.common } else { &self.event };
            (
                common,
                doc.pointer(pointer).unwrap_or_else(|| panic!("{r}")),
            )
        }

        /// Every path from `data` to a value its schema marks `x-pii`, with that schema.
        fn pii_paths(
            &self,
            in_common: bool,
            schema: &Value,
            path: Vec<Step>,
            out: &mut Vec<(Vec<Step>, bool, Value)>,
        ) {
            assert!(path.len() < 20, "the catalog schemas are not recursive");
            if schema.get(PII_KEYWORD) == Some(&json!(true)) {
                out.push((path, in_common, schema.clone()));
                return;
            }
            if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
                let (c, target) = self.resolve(in_common, r);
                self.pii_paths(c, target, path.clone(), out);
            }
            for k in ["allOf", "anyOf", "oneOf"] {
                for s in schema
                    .get(k)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    self.pii_paths(in_common, s, path.clone(), out);
                }
            }
            for k in ["then", "else"] {
                if let Some(s) = schema.get(k) {
                    self.pii_paths(in_common, s, path.clone(), out);
                }
            }
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (name, s) in props {
                    let mut p = path.clone();
                    p.push(Step::Key(name.clone()));
                    self.pii_paths(in_common, s, p, out);
                }
            }
            if let Some(items) = schema.get("items") {
                let mut p = path.clone();
                p.push(Step::Each);
                self.pii_paths(in_common, items, p, out);
            }
        }

        /// A value for a marked schema with a unique marker in every string.
        fn sample(&self, in_common: bool, schema: &Value, markers: &mut Vec<String>) -> Value {
            if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
                let (c, target) = self.resolve(in_common, r);
                return self.sample(c, target, markers);
            }
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                return Value::Object(
                    props
                        .iter()
                        .map(|(k, s)| (k.clone(), self.sample(in_common, s, markers)))
                        .collect(),
                );
            }
            if schema["type"] == "array" {
                return json!([self.sample(in_common, &schema["items"], markers)]);
            }
            let marker = format!("pii-marker-{}-x", markers.len());
            markers.push(marker.clone());
            match schema.get("format").and_then(Value::as_str) {
                Some("uri") => json!(format!("https://example.com/{marker}")),
                _ => json!(marker),
            }
        }
    }

    /// Puts `value` at every place `path` names in `v`, making the containers on the way.
    fn put(v: &mut Value, path: &[Step], value: &Value) {
        match path.split_first() {
            None => *v = value.clone(),
            Some((Step::Key(k), rest)) => {
                let container = match rest.first() {
                    Some(Step::Each) => json!([]),
                    _ => json!({}),
                };
                let child = v
                    .as_object_mut()
                    .unwrap_or_else(|| panic!("{k}'s parent is an object"))
                    .entry(k.clone())
                    .or_insert(container);
                put(child, rest, value);
            }
            Some((Step::Each, rest)) => {
                let items = v.as_array_mut().unwrap();
                if items.is_empty() {
                    items.push(if rest.is_empty() {
                        value.clone()
                    } else {
                        json!({})
                    });
                }
                for item in items {
                    put(item, rest, value);
                }
            }
        }
    }

    fn show(path: &[Step]) -> String {
        path.iter()
            .map(|s| match s {
                Step::Key(k) => k.as_str(),
                Step::Each => "*",
            })
            .collect::<Vec<_>>()
            .join(".")
    }

    /// Every catalog type: a value at every property its schema marks `x-pii` (found by
    /// walking the schema), none of them left after redaction, and the redacted event
    /// still valid.
    #[test]
    fn no_marked_value_of_any_event_type_survives_and_events_stay_valid() {
        let validators = Validators::compile().unwrap();
        let mut marked = Vec::new();
        for t in catalog::EVENT_TYPES {
            let docs = Docs::of(t);
            let mut paths = Vec::new();
            docs.pii_paths(false, &docs.event["properties"]["data"], vec![], &mut paths);
            for example in docs.event["examples"].as_array().unwrap() {
                let mut event = example.clone();
                let mut markers = Vec::new();
                for (path, in_common, schema) in &paths {
                    let value = docs.sample(*in_common, schema, &mut markers);
                    put(&mut event["data"], path, &value);
                }
                let before = event["data"].clone();
                assert!(redact_catalog(t.name, &mut event["data"]), "{}", t.name);
                let text = event["data"].to_string();
                for m in &markers {
                    assert!(!text.contains(m.as_str()), "{}: {m} left in {text}", t.name);
                }
                // Only marked values went: every other top-level field is still there.
                for key in before.as_object().unwrap().keys() {
                    let is_marked = paths
                        .iter()
                        .any(|(p, ..)| matches!(p.as_slice(), [Step::Key(k)] if k == key));
                    assert!(
                        is_marked || event["data"].get(key).is_some(),
                        "{}: {key} was removed",
                        t.name
                    );
                }
                validators
                    .check_event(t.name, &crate::json::Json::from(&event))
                    .unwrap_or_else(|e| panic!("{}: {e:?}", t.name));
            }
            marked.extend(
                paths
                    .iter()
                    .map(|(p, ..)| format!("{} {}", t.name, show(p))),
            );
        }
        // The schemas mark what the contract promises to remove.
        for must in [
            "order.created customer.email",
            "order.created customer.phone",
            "order.created customer.name",
            "order.created shipping_address",
            "order.created billing_address",
            "customer.created email",
            "customer.created first_name",
            "customer.updated default_address",
            "customer.erasure_requested email",
            "message.received text",
            "message.received attachments",
            "message.received from.email",
            "review.created text",
            "review.created author.name",
            "return.requested lines.*.reason_text",
            "refund.created reason",
            "shipment.created tracking_url",
            "shipment.created destination",
            "shipment.updated tracking_url",
        ] {
            assert!(
                marked.iter().any(|m| m == must),
                "{must} is not marked x-pii"
            );
        }
        for keep in [
            "customer_id",
            "order_id",
            "reason_code",
            "tracking_number",
            "locale",
        ] {
            assert!(
                !marked.iter().any(|m| m.ends_with(keep)),
                "{keep} is not personal data"
            );
        }
    }

    fn example(event_type: &str) -> Value {
        let t = catalog::event_type(event_type).unwrap();
        let schema: Value = serde_json::from_str(t.schema.text).unwrap();
        schema["examples"][0]["data"].clone()
    }

    #[test]
    fn free_text_and_tracking_and_attachment_urls_are_removed() {
        let mut m = example("message.received");
        m["attachments"] = json!([{"url": "https://cdn.example.com/photo-of-me.jpg"}]);
        assert!(m["text"].as_str().unwrap().contains("OPO04A"));
        redact_catalog("message.received", &mut m);
        assert_eq!(m["text"], "", "required, so left empty");
        assert!(m.get("attachments").is_none());
        assert_eq!(m["from"], json!({"customer_id": "1184"}));
        assert_eq!(m["message_id"], "note-88213");

        let mut r = example("return.requested");
        redact_catalog("return.requested", &mut r);
        assert_eq!(
            r["lines"],
            json!([{"line_id": "14820397497881", "quantity": 1, "reason_code": "defective"}])
        );

        let mut s = example("shipment.created");
        s["destination"] = json!({"line1": "Відділення №87", "city": "Київ"});
        redact_catalog("shipment.created", &mut s);
        assert!(s.get("tracking_url").is_none());
        assert!(s.get("destination").is_none());
        assert_eq!(s["tracking_number"], "20451038764219");
        assert_eq!(s["carrier"], "Nova Poshta");

        let mut review = json!({"review_id": "9", "rating": 2, "created_at": "2025-03-20T07:55:12Z",
                                "text": "Delivered to my flat at Khreshchatyk 1, broken",
                                "author": {"customer_id": "7", "name": "Olena"}});
        redact_catalog("review.created", &mut review);
        assert_eq!(
            review,
            json!({"review_id": "9", "rating": 2, "created_at": "2025-03-20T07:55:12Z",
                   "author": {"customer_id": "7"}})
        );

        let mut refund = json!({"refund_id": "1", "order_id": "2", "status": "succeeded",
                                "amount": {"amount": "1.00", "currency": "EUR"},
                                "created_at": "2025-03-20T07:55:12Z",
                                "reason": "Refund: call me on +380674419236"});
        redact_catalog("refund.created", &mut refund);
        assert!(refund.get("reason").is_none());
    }

    #[test]
    fn ids_consent_flags_and_pending_data_stay() {
        let mut d = json!({"customer_id": "7", "email": "a@example.com", "locale": "uk",
                           "marketing_consent": {"email": true, "sms": false}});
        redact_catalog("customer.updated", &mut d);
        assert_eq!(
            d,
            json!({"customer_id": "7", "locale": "uk",
                   "marketing_consent": {"email": true, "sms": false}})
        );
        let pending = json!({"enrichment": "pending", "order_id": "5",
                             "resource_url": "https://api.example.com/orders/5"});
        let mut p = pending.clone();
        redact_catalog("order.created", &mut p);
        assert_eq!(p, pending);
        assert!(catalog_plan("stock.changed").unwrap().is_noop());
        assert!(!catalog_plan("message.received").unwrap().is_noop());
    }

    /// A plugin's registered schema decides: nested, behind `$ref`, in array items, in a
    /// map, in an `anyOf` branch, and in a recursive shape.
    #[test]
    fn a_plugin_schema_marks_its_own_pii_at_any_depth() {
        let schema = json!({
            "type": "object",
            "required": ["member", "balance"],
            "properties": {
                "balance": {"type": "integer"},
                "member": {"$ref": "#/$defs/Member"},
                "history": {"type": "array", "items": {
                    "type": "object",
                    "properties": {"points": {"type": "integer"},
                                   "note": {"type": "string", "x-pii": true}}}},
                "by_channel": {"type": "object",
                               "additionalProperties": {"$ref": "#/$defs/Contact"}},
                "referrer": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/Member"}]},
                "tree": {"$ref": "#/$defs/Node"}
            },
            "$defs": {
                "Member": {"type": "object", "required": ["id", "email"],
                           "properties": {"id": {"type": "string"},
                                          "tier": {"type": "string"},
                                          "email": {"type": "string", "x-pii": true},
                                          "contact": {"$ref": "#/$defs/Contact"}}},
                "Contact": {"type": "object", "x-pii": true},
                "Node": {"type": "object",
                         "properties": {"label": {"type": "string"},
                                        "owner": {"type": "string", "x-pii": true},
                                        "children": {"type": "array",
                                                     "items": {"$ref": "#/$defs/Node"}}}}
            }
        });
        let mut data = json!({
            "balance": 23,
            "member": {"id": "m1", "tier": "gold", "email": "m@example.com",
                       "contact": {"phone": "+380674419236"}},
            "history": [{"points": 5, "note": "birthday of Ivan"}, {"points": 1}],
            "by_channel": {"sms": {"phone": "+48 600 000 000"}},
            "referrer": {"id": "m2", "email": "r@example.com"},
            "tree": {"label": "a", "owner": "Ann", "children": [
                {"label": "b", "owner": "Bob", "children": [{"label": "c", "owner": "Cy"}]}]}
        });
        redact_by_schema(&schema, &mut data);
        assert_eq!(
            data,
            json!({
                "balance": 23,
                "member": {"id": "m1", "tier": "gold", "email": ""},
                "history": [{"points": 5}, {"points": 1}],
                "by_channel": {},
                "referrer": {"id": "m2", "email": ""},
                "tree": {"label": "a", "children": [
                    {"label": "b", "children": [{"label": "c"}]}]}
            })
        );

        // The same through the cache the inbox uses, compiled once per plugin and type.
        let schemas = crate::validate::PluginSchemas::default();
        let declared = omnigate_schemas::api::PublishedType {
            event_type: "loyalty.points.changed".into(),
            schema: schema.clone(),
        };
        let mut again = json!({"balance": 1, "member": {"id": "m1", "email": "m@example.com"}});
        schemas.redact("plg_a", &declared, &mut again);
        assert_eq!(
            again,
            json!({"balance": 1, "member": {"id": "m1", "email": ""}})
        );
        let unmarked = omnigate_schemas::api::PublishedType {
            schema: json!({"type": "object"}),
            ..declared
        };
        let mut kept = json!({"member": {"email": "m@example.com"}});
        schemas.redact("plg_a", &unmarked, &mut kept);
        assert_eq!(
            kept,
            json!({"member": {"email": "m@example.com"}}),
            "a changed schema is compiled again"
        );
    }

    #[test]
    fn references_by_id_anchor_and_escaped_pointer_are_followed() {
        let schema = json!({
            "$id": "https://plugins.example/loyalty.json",
            "type": "object",
            "properties": {
                "a": {"$ref": "loyalty.json#/$defs/Secret"},
                "b": {"$ref": "#secret"},
                "c": {"$ref": "#/$defs/odd~1name%20x"},
                "d": {"prefixItems": [{"type": "string"}, {"$ref": "#/$defs/Secret"}],
                      "items": {"type": "integer"}},
                "e": {"$ref": "https://elsewhere.example/unknown.json"}
            },
            "$defs": {
                "Secret": {"type": "string", "x-pii": true},
                "Anchored": {"$anchor": "secret", "type": "string", "x-pii": true},
                "odd/name x": {"type": "string", "x-pii": true}
            }
        });
        let mut data = json!({"a": "1", "b": "2", "c": "3", "d": ["id", "secret", 4], "e": "5"});
        redact_by_schema(&schema, &mut data);
        assert_eq!(data, json!({"d": ["id", 4], "e": "5"}));
    }

    #[test]
    fn a_schema_marked_whole_or_too_complex_empties_data() {
        let mut data = json!({"a": 1});
        redact_by_schema(&json!({"type": "object", "x-pii": true}), &mut data);
        assert_eq!(data, json!({}));

        let schema = json!({"type": "object", "properties": {
            "a": {"type": "object", "properties": {"b": {"type": "string"}}}}});
        let plan = Plan::build(&[&schema], "", 2);
        let mut data = json!({"a": {"b": "x"}});
        plan.apply(&mut data);
        assert_eq!(
            data,
            json!({}),
            "more states than allowed: nothing is trusted"
        );
        assert!(Plan::compile(&schema).is_noop());
    }

    #[test]
    fn a_type_without_a_schema_falls_back_to_key_names() {
        assert!(!redact_catalog("loyalty.points.changed", &mut json!({})));
        let mut d = json!({"customer": {"customer_id": "7", "email": "a@example.com"},
                           "shipping_address": {"city": "Kyiv"},
                           "marketing_consent": {"email": true, "sms": false}});
        redact_by_key_names(&mut d);
        assert_eq!(
            d,
            json!({"customer": {"customer_id": "7"},
                   "marketing_consent": {"email": true, "sms": false}})
        );
    }
}
