//! The OpenAPI 3.1 `webhooks` section: what push delivery sends a plugin's endpoint, one
//! entry per canonical event type, with the type's JSON Schema, an example and the
//! Standard Webhooks signature headers, so a developer in any language can generate a
//! receiver's types from `/openapi.json`.
//!
//! The event schemas are JSON Schema 2020-12 documents that refer to the shared shapes in
//! `common.schema.json` and to `$defs` of their own; here each definition becomes a
//! component (`common.Money`, `order.paid.Data`) and every `$ref` points at it, so the
//! document stands alone.

use omnigate_schemas::catalog::{COMMON, EVENT_TYPES};
use serde_json::{Map, Value, json};

/// Adds `webhooks` and the event schemas' components to a serialised OpenAPI document.
pub fn add_to(doc: &mut Value) {
    let mut components = Map::new();
    let mut webhooks = Map::new();
    let common: Value =
        serde_json::from_str(COMMON.text).expect("the catalog's common schema is JSON");
    hoist("common", &common, &mut components);
    // Each event type says what its `data` is; the envelope only that it is there (an
    // object schema here would be a second, empty `…Data` type to client generators).
    if let Some(data) = components
        .get_mut("common.Envelope")
        .and_then(|e| e.pointer_mut("/properties/data"))
    {
        *data =
            json!({"description": "Type-specific: each event type's schema says what it holds."});
    }
    for t in EVENT_TYPES {
        let schema: Value = serde_json::from_str(t.schema.text).expect("catalog schemas are JSON");
        let example = schema["examples"][0].clone();
        let mut root = hoist(t.name, &schema, &mut components);
        one_of_data(t.name, &mut root, &mut components);
        components.insert(t.name.to_string(), root);
        webhooks.insert(t.name.to_string(), entry(t.name, t.description, &example));
    }
    // Its members are written out in each event type: unreferenced, it would be a stray
    // type in generated clients.
    let refers = |name: &str| {
        let target = format!("\"#/components/schemas/{name}\"");
        components
            .values()
            .any(|c| serde_json::to_string(c).is_ok_and(|s| s.contains(&target)))
    };
    if !refers("common.Envelope") {
        components.remove("common.Envelope");
    }
    if let Some(schemas) = doc["components"]["schemas"].as_object_mut() {
        schemas.extend(components);
        one_of_types(schemas);
    }
    doc["webhooks"] = Value::Object(webhooks);
}

/// What the lists and inboxes hand out (`Event`) is one of the catalog's types, each with
/// its own `data`, or a type a plugin publishes (`PluginEvent`, open `data`): a union the
/// `type` tells apart (each catalog type is a constant there; a plugin's type is none of
/// them).
fn one_of_types(schemas: &mut Map<String, Value>) {
    let Some(mut plugin) = schemas.get("Event").cloned() else {
        return;
    };
    let names: Vec<Value> = EVENT_TYPES.iter().map(|t| json!(t.name)).collect();
    plugin["description"] = json!(
        "An event of a type a plugin publishes (`<namespace>.<name>`, not a catalog type), \
         with the data the plugin's registered schema allows."
    );
    plugin["properties"]["type"] = json!({
        "type": "string",
        "description": "The plugin's type",
        "not": {"enum": names}
    });
    schemas.insert("PluginEvent".into(), plugin);
    let mut members: Vec<Value> = EVENT_TYPES
        .iter()
        .map(|t| json!({"$ref": format!("#/components/schemas/{}", t.name)}))
        .collect();
    members.push(json!({"$ref": "#/components/schemas/PluginEvent"}));
    schemas.insert(
        "Event".into(),
        json!({
            "description": "A canonical event as stored in the tenant log and handed to \
                plugins: one of the catalog's types (its `data` typed by it), or a plugin's.",
            "oneOf": members
        }),
    );
}

/// An event's `data` is the full shape or, from a thin payload, the pending one. The JSON
/// Schema says so with `if`/`then`/`else` (on `enrichment`); here it is a component of its
/// own (`order.paid.EventData`), the `oneOf` of the two (they exclude each other: only the
/// pending one has `enrichment`), which client generators turn into a union of two named
/// types.
fn one_of_data(name: &str, root: &mut Value, components: &mut Map<String, Value>) {
    let Some(data) = root.pointer_mut("/properties/data") else {
        return;
    };
    if let (Some(pending), Some(full)) = (data.get("then").cloned(), data.get("else").cloned()) {
        let component = format!("{name}.EventData");
        components.insert(component.clone(), json!({"oneOf": [full, pending]}));
        *data = json!({"$ref": format!("#/components/schemas/{component}")});
    }
    // `$ref` beside other keywords (the envelope, then this type's own members) is valid
    // 2020-12, but generators drop the siblings, and cannot merge an `allOf` of a string
    // and a constant: the envelope's members are written out here, this type's own in
    // their place.
    let Some(Value::Object(map)) = Some(&mut *root) else {
        return;
    };
    let Some(Value::String(envelope)) = map.remove("$ref") else {
        return;
    };
    let name = envelope.trim_start_matches("#/components/schemas/");
    let Some(Value::Object(base)) = components.get(name).cloned() else {
        return;
    };
    let mut properties = base
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(Value::Object(own)) = map.remove("properties") {
        for (k, v) in own {
            // The version is the type's `x-schema-version`.
            if k != "schema_version" {
                properties.insert(k, v);
            }
        }
    }
    for key in ["type", "required", "additionalProperties"] {
        if let Some(v) = base.get(key) {
            map.insert(key.to_string(), v.clone());
        }
    }
    map.insert("properties".into(), Value::Object(properties));
}

/// Moves `schema`'s `$defs` into `components` as `<prefix>.<name>` and returns the schema
/// without them, every reference rewritten.
fn hoist(prefix: &str, schema: &Value, components: &mut Map<String, Value>) -> Value {
    let mut schema = schema.clone();
    let Some(object) = schema.as_object_mut() else {
        return schema;
    };
    object.remove("$schema");
    object.remove("$id");
    if let Some(Value::Object(defs)) = object.remove("$defs") {
        for (name, def) in defs {
            let mut def = def;
            rewrite(prefix, &mut def);
            ref_siblings_to_all_of(&mut def);
            components.insert(format!("{prefix}.{name}"), def);
        }
    }
    rewrite(prefix, &mut schema);
    // The root's own `$ref` (the envelope) is written out by `one_of_data`.
    if let Some(object) = schema.as_object_mut() {
        object.values_mut().for_each(ref_siblings_to_all_of);
    }
    schema
}

/// `{"$ref": A, "properties": …, "unevaluatedProperties": false}` (a shape extending
/// another, valid 2020-12) becomes `{"allOf": [{"$ref": A}, {"properties": …}],
/// "unevaluatedProperties": false}`: the same schema, which validators that treat a `$ref`
/// as replacing its siblings (as OpenAPI 3.0 did) and client generators read as meant.
fn ref_siblings_to_all_of(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.values_mut().for_each(ref_siblings_to_all_of);
            let extends = map.contains_key("$ref")
                && map.keys().any(|k| {
                    !matches!(k.as_str(), "$ref" | "description" | "unevaluatedProperties")
                });
            if !extends {
                return;
            }
            let base = map.remove("$ref").unwrap_or_default();
            let mut outer = Map::new();
            for key in ["description", "unevaluatedProperties"] {
                if let Some(v) = map.remove(key) {
                    outer.insert(key.to_string(), v);
                }
            }
            let own = std::mem::take(map);
            outer.insert("allOf".into(), json!([{"$ref": base}, Value::Object(own)]));
            *map = outer;
        }
        Value::Array(items) => items.iter_mut().for_each(ref_siblings_to_all_of),
        _ => {}
    }
}

fn rewrite(prefix: &str, value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get_mut("$ref") {
                if let Some(name) = r.strip_prefix("common.schema.json#/$defs/") {
                    *r = format!("#/components/schemas/common.{name}");
                } else if let Some(name) = r.strip_prefix("#/$defs/") {
                    *r = format!("#/components/schemas/{prefix}.{name}");
                }
            }
            for v in map.values_mut() {
                rewrite(prefix, v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite(prefix, v)),
        _ => {}
    }
}

fn header(name: &str, description: &str, example: &str) -> Value {
    json!({
        "name": name,
        "in": "header",
        "required": true,
        "description": description,
        "schema": {"type": "string"},
        "example": example,
    })
}

fn entry(event_type: &str, description: &str, example: &Value) -> Value {
    let mut media = json!({"schema": {"$ref": format!("#/components/schemas/{event_type}")}});
    if !example.is_null() {
        media["example"] = example.clone();
    }
    json!({
        "post": {
            "operationId": format!("push.{event_type}"),
            "summary": format!("A pushed {event_type} event"),
            "description": format!(
                "{description}\n\nSent to a push plugin's URL (or its installation's \
                 `push_url`) when it subscribed to `{event_type}`. The body is the event \
                 exactly as `POST /v1/inbox/pull` would hand it out (without personal data \
                 unless the installation has `customer_pii`). Verify the signature over the \
                 raw body bytes with the plugin's signing secret (any Standard Webhooks \
                 library), dedupe on `webhook-id`, and answer 2xx to acknowledge; anything \
                 else is retried on the push schedule and then becomes a dead letter."
            ),
            "tags": ["push"],
            "security": [],
            "parameters": [
                header("webhook-id", "The event id: the same on every attempt.", "evt_01J9ZQ4XG1V7C4W8M6T2P3R5KA"),
                header("webhook-timestamp", "When this attempt was signed, Unix seconds; refuse ones more than 5 minutes away.", "1748938543"),
                header("webhook-signature", "Space-separated `v1,<base64 HMAC-SHA256>` over `<webhook-id>.<webhook-timestamp>.<body>`, keyed with the base64-decoded part of the `whsec_` secret; one per valid secret during a rotation.", "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="),
                header("omnigate-event-type", "The event's type.", event_type),
                header("omnigate-attempt", "1 on the first attempt, growing with each retry.", "1"),
            ],
            "requestBody": {"required": true, "content": {"application/json": media}},
            "responses": {
                "2XX": {"description": "Acknowledged: not sent again."},
                "429": {"description": "Retried after `Retry-After` (seconds or an HTTP date) when that is later than the schedule's next wait."},
                "4XX": {
                    "description": "Retried like any failure, unless the answer carries `omnigate-dead-letter: true` (and is not 401, 404, 408, 409 or 429, which a retry may fix): then no retry can fix it and it becomes a dead letter at once, with the answer's excerpt as the reason.",
                    "headers": {"omnigate-dead-letter": {"description": "`true`: do not retry.", "schema": {"type": "string", "enum": ["true"]}, "example": "true"}}
                },
                "default": {"description": "Not acknowledged: retried on the schedule, then a dead letter."}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalog_type_has_a_webhook_whose_references_resolve() {
        let mut doc = json!({"components": {"schemas": {}}});
        add_to(&mut doc);
        let webhooks = doc["webhooks"].as_object().unwrap();
        assert_eq!(webhooks.len(), EVENT_TYPES.len());
        let text = doc.to_string();
        assert!(
            !text.contains("common.schema.json"),
            "no external reference is left"
        );
        assert!(!text.contains("\"#/$defs/"), "no local reference is left");
        // Every reference names a component that exists.
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for r in text.split("\"#/components/schemas/").skip(1) {
            let name = &r[..r.find('"').unwrap()];
            assert!(
                schemas.contains_key(name),
                "{name} is referred to but missing"
            );
        }
        let paid = &webhooks["order.paid"]["post"];
        assert_eq!(
            paid["requestBody"]["content"]["application/json"]["example"]["type"],
            "order.paid"
        );
    }
}
