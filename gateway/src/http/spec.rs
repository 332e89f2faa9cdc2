//! What the OpenAPI document needs beyond what the routes' annotations say, so generated
//! clients and validators take it as it is: namespaced operation ids, the server, the
//! license's SPDX id, `security: []` on public operations, the problem `type` values, RFC
//! 3339 times marked `date-time`, and an example on every response.

use omnigate_schemas::api::ProblemKind;
use serde_json::{Value, json};

use crate::error::{Credential, Error};

/// Every operation's id: `<resource>.<action>`, stable for generated clients.
const OPERATION_IDS: &[(&str, &str, &str)] = &[
    ("get", "/healthz", "ops.healthz"),
    ("get", "/readyz", "ops.readyz"),
    ("get", "/metrics", "ops.metrics"),
    ("get", "/v1/status", "ops.status"),
    ("get", "/v1/event-types", "events.types.list"),
    ("get", "/v1/tenants/{tenant}/events", "events.list"),
    ("post", "/v1/events", "events.publish"),
    ("post", "/v1/inbox/pull", "inbox.pull"),
    ("post", "/v1/inbox/ack", "inbox.ack"),
    ("post", "/v1/inbox/nack", "inbox.nack"),
    ("get", "/v1/inbox/dead", "inbox.dead_letters.list"),
    ("post", "/v1/inbox/dead/replay", "inbox.dead_letters.replay"),
    ("post", "/v1/inbox/replay", "inbox.replay_log"),
    ("get", "/v1/me", "plugins.me"),
    ("get", "/v1/plugins", "plugins.list"),
    ("post", "/v1/plugins", "plugins.create"),
    ("get", "/v1/plugins/{id}", "plugins.get"),
    ("patch", "/v1/plugins/{id}", "plugins.update"),
    (
        "post",
        "/v1/plugins/{id}/delivery/pause",
        "plugins.delivery.pause",
    ),
    (
        "post",
        "/v1/plugins/{id}/delivery/resume",
        "plugins.delivery.resume",
    ),
    (
        "get",
        "/v1/plugins/{id}/installations",
        "plugins.installations.list",
    ),
    (
        "post",
        "/v1/plugins/{id}/installations",
        "plugins.installations.create",
    ),
    (
        "delete",
        "/v1/plugins/{id}/installations/{tenant}",
        "plugins.installations.delete",
    ),
    (
        "get",
        "/v1/plugins/{id}/dead-letters",
        "plugins.dead_letters.list",
    ),
    (
        "post",
        "/v1/plugins/{id}/dead-letters/replay",
        "plugins.dead_letters.replay",
    ),
    ("post", "/v1/plugins/{id}/keys", "plugins.keys.rotate"),
    (
        "delete",
        "/v1/plugins/{id}/keys/{key_id}",
        "plugins.keys.revoke",
    ),
    (
        "post",
        "/v1/plugins/{id}/signing-secrets",
        "plugins.signing_secrets.rotate",
    ),
    ("get", "/v1/quarantine", "quarantine.list"),
    ("get", "/v1/quarantine/{id}", "quarantine.get"),
    ("post", "/v1/quarantine/{id}/replay", "quarantine.replay"),
    ("delete", "/v1/quarantine/{id}", "quarantine.discard"),
    ("get", "/v1/router/dead-letters", "router.dead_letters.list"),
    (
        "post",
        "/v1/router/dead-letters/{id}/replay",
        "router.dead_letters.replay",
    ),
    ("get", "/v1/providers", "providers.list"),
    ("get", "/v1/sources", "sources.list"),
    ("post", "/v1/sources", "sources.create"),
    ("get", "/v1/sources/{id}", "sources.get"),
    ("patch", "/v1/sources/{id}", "sources.update"),
    ("delete", "/v1/sources/{id}", "sources.delete"),
    ("post", "/v1/webhooks/{source_id}", "webhooks.receive"),
    (
        "post",
        "/v1/webhooks/{source_id}/{url_secret}",
        "webhooks.receive_with_secret",
    ),
];

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];

/// The headers providers sign and name deliveries with, as the webhook endpoints read them
/// (each provider sends its own; none is required by every source).
const WEBHOOK_HEADERS: &[(&str, &str)] = &[
    (
        "X-Shopify-Hmac-Sha256",
        "Shopify: base64 HMAC-SHA256 of the body (newer deliveries drop the `X-`)",
    ),
    ("X-Shopify-Topic", "Shopify: the topic (`orders/create`)"),
    ("X-Shopify-Webhook-Id", "Shopify: the delivery's id"),
    (
        "X-Shopify-Event-Id",
        "Shopify: the event's id (metadata: unsigned)",
    ),
    (
        "X-WC-Webhook-Signature",
        "WooCommerce: base64 HMAC-SHA256 of the body",
    ),
    (
        "X-WC-Webhook-Topic",
        "WooCommerce: the topic (`order.updated`)",
    ),
    (
        "X-WC-Webhook-Delivery-ID",
        "WooCommerce: the delivery's id (metadata)",
    ),
    (
        "webhook-id",
        "Standard Webhooks (BigCommerce, Etsy, bridges): the message id",
    ),
    (
        "webhook-timestamp",
        "Standard Webhooks: Unix seconds, signed",
    ),
    (
        "webhook-signature",
        "Standard Webhooks: `v1,<base64>` (several, space-separated)",
    ),
    ("Stripe-Signature", "Stripe: `t=…,v1=…`"),
    ("Saleor-Signature", "Saleor: a JWS with a detached payload"),
    ("Saleor-Event", "Saleor: the event (`ORDER_CREATED`)"),
    (
        "X-Ecwid-Webhook-Signature",
        "Ecwid: base64 HMAC-SHA256 of `eventCreated.eventId`",
    ),
    ("X-Hub-Signature-256", "GitHub: `sha256=<hex>`"),
    ("X-GitHub-Event", "GitHub: the event"),
    ("X-GitHub-Delivery", "GitHub: the delivery's id"),
];

/// Completes the document generated from the routes.
pub fn finish(doc: &mut Value) {
    doc["info"]["license"]["identifier"] = json!("Apache-2.0");
    doc["servers"] = json!([{
        "url": "http://127.0.0.1:8080",
        "description": "A gateway on its default address (OMNIGATE_BIND); use your own"
    }]);
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            for method in METHODS {
                if let Some(op) = item.get_mut(*method) {
                    operation(method, path, op);
                }
            }
        }
    }
    media_examples(doc);
    let uris: Vec<Value> = ProblemKind::ALL
        .iter()
        .map(|k| Value::String(k.type_uri()))
        .collect();
    if let Some(problem) = doc.pointer_mut("/components/schemas/Problem") {
        let parts = match problem.get_mut("allOf") {
            Some(Value::Array(parts)) => parts.iter_mut().collect(),
            _ => vec![problem],
        };
        for part in parts {
            if let Some(ty) = part.pointer_mut("/properties/type") {
                ty["enum"] = Value::Array(uris.clone());
            }
        }
    }
    if let Some(schemas) = doc.pointer_mut("/components/schemas") {
        refine(schemas);
    }
    if let Some(paths) = doc.pointer_mut("/paths") {
        refine(paths);
    }
}

/// A webhook endpoint takes the provider's bytes as they were signed, whatever their
/// media type, and the provider's headers.
fn webhook_request(op: &mut Value, signed: bool) {
    op["requestBody"] = json!({
        "required": true,
        "description": "The provider's body exactly as it was signed, as bytes: a client that \
            re-encodes a JSON object changes them, and no signature verifies. `Content-Type` \
            is not read: providers send JSON, and WooCommerce's creation ping is form-encoded.",
        "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
        }
    });
    let Some(params) = op["parameters"].as_array_mut() else {
        return;
    };
    // An unsigned source's `allow_cidrs` judges the sender's address.
    if !signed {
        params.push(json!({
            "name": "X-Forwarded-For",
            "in": "header",
            "required": false,
            "description": "Believed only from OMNIGATE_TRUSTED_PROXIES: the sender's \
                address, for the source's `allow_cidrs`",
            "schema": {"type": "string"}
        }));
    }
    if signed {
        for (name, description) in WEBHOOK_HEADERS {
            params.push(json!({
                "name": name,
                "in": "header",
                "required": false,
                "description": description,
                "schema": {"type": "string"}
            }));
        }
    }
}

/// A problem answer, as every error is one.
fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    })
}

/// The errors an operation can answer whatever its annotations list: what its extractors
/// and the shared layers answer, so a generated client raises them rather than returning
/// nothing.
fn declare_errors(op: &mut Value) {
    let has_body = op.get("requestBody").is_some();
    let has_query = op["parameters"]
        .as_array()
        .is_some_and(|ps| ps.iter().any(|p| p["in"] == "query"));
    let security = op["security"].as_array().cloned().unwrap_or_default();
    let plugin_key = security.iter().any(|r| r.get("plugin_key").is_some());
    let secured = !security.is_empty();
    let Some(responses) = op["responses"].as_object_mut() else {
        return;
    };
    let mut add = |status: &str, description: &str| {
        responses
            .entry(status.to_string())
            .or_insert_with(|| problem(description));
    };
    if has_body || has_query {
        add("400", "Malformed JSON body or query parameters");
    }
    if has_body {
        add(
            "422",
            "The body does not match its schema, or breaks a rule the detail names",
        );
        add(
            "408",
            "The body did not arrive in time (`OMNIGATE_BODY_TIMEOUT_MS`)",
        );
    }
    // Anything else (an internal error) is a problem document too.
    add("default", "An unexpected error, as a problem document");
    if plugin_key {
        add(
            "429",
            "Over the plugin's rate limit; retry after `Retry-After` seconds",
        );
    }
    if secured {
        add(
            "503",
            "The store is unreachable or did not confirm in time; nothing was changed, retry",
        );
    }
}

/// Each response's media type shows an example: its schema's own, or for a problem one
/// built by the gateway's error mapping for that status, so the example is the answer a
/// client really gets.
fn media_examples(doc: &mut Value) {
    let schemas = doc["components"]["schemas"].clone();
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        for method in METHODS {
            let Some(op) = item.get_mut(*method) else {
                continue;
            };
            let has_body = op.get("requestBody").is_some();
            let plugin_key = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("plugin_key").is_some()));
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            for (status, response) in responses.iter_mut() {
                let description = response["description"].as_str().unwrap_or("").to_string();
                let Some(content) = response.get_mut("content").and_then(Value::as_object_mut)
                else {
                    continue;
                };
                for media in content.values_mut() {
                    if media.get("example").is_some() {
                        continue;
                    }
                    let name = media["schema"]["$ref"]
                        .as_str()
                        .and_then(|r| r.strip_prefix("#/components/schemas/"));
                    let example = match name {
                        Some("Problem") => {
                            let error =
                                example_error(status, path, has_body, plugin_key, &description);
                            serde_json::to_value(error.problem()).ok()
                        }
                        Some(name) => schemas[name].get("example").cloned(),
                        None => None,
                    };
                    if let Some(example) = example {
                        media["example"] = example;
                    }
                }
            }
        }
    }
}

/// The error behind a problem response of `status` on `path`, for its example.
fn example_error(
    status: &str,
    path: &str,
    has_body: bool,
    plugin_key: bool,
    description: &str,
) -> Error {
    let webhook = path.starts_with("/v1/webhooks/");
    match status {
        "400" if has_body => Error::MalformedBody("expected `,` or `}` at line 1 column 18".into()),
        "400" => Error::InvalidQuery("limit: invalid digit found in string".into()),
        "401" if webhook => Error::InvalidSignature("no signature matched".into()),
        "401" if plugin_key => Error::Unauthorized(Credential::PluginKey),
        "401" => Error::Unauthorized(Credential::AdminToken),
        "403" => Error::Forbidden(lower_first(description)),
        "404" if webhook => Error::SourceNotFound("src_7m3kq9x2v8w4".into()),
        "404" => Error::not_found(resource_named_by(path)),
        "408" => Error::BodyTimeout { timeout_ms: 10_000 },
        "409" => Error::Conflict(lower_first(description)),
        "413" => Error::PayloadTooLarge { limit: 1 << 20 },
        "422" => Error::Validation {
            detail: "the body does not match its schema".into(),
            errors: vec!["/limit: 0 is less than the minimum of 1".into()],
        },
        "429" => Error::RateLimited {
            what: if webhook { "deliveries" } else { "requests" },
            retry_after_secs: 1,
        },
        "503" => Error::StoreUnavailable("no answer to a ping".into()),
        _ => Error::Internal("unexpected".into()),
    }
}

/// `sources` → `source "src_…"`: what a 404 on `path` names.
fn resource_named_by(path: &str) -> String {
    let (what, id) = match path.split('/').nth(2).unwrap_or("") {
        "sources" => ("source", "src_7m3kq9x2v8w4"),
        "plugins" => ("plugin", "plg_4f8a2c9e1b7d"),
        "quarantine" => ("quarantine entry", "q0-1795384621392-0"),
        "router" => ("dead letter", "1795384621392-0"),
        _ => ("resource", "…"),
    };
    format!("{what} {id:?}")
}

fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_lowercase().chain(chars).collect())
        .unwrap_or_default()
}

fn operation(method: &str, path: &str, op: &mut Value) {
    match (method, path) {
        ("post", "/v1/webhooks/{source_id}") => webhook_request(op, true),
        ("post", "/v1/webhooks/{source_id}/{url_secret}") => webhook_request(op, false),
        _ => {}
    }
    if let Some((_, _, id)) = OPERATION_IDS
        .iter()
        .find(|(m, p, _)| *m == method && *p == path)
    {
        op["operationId"] = json!(id);
    }
    // No credentials: said so, rather than inheriting none by omission.
    if op.get("security").is_none() {
        op["security"] = json!([]);
    }
    let plugin_key = op["security"]
        .as_array()
        .is_some_and(|s| s.iter().any(|r| r.get("plugin_key").is_some()));
    if plugin_key && let Some(unauthorized) = op.pointer_mut("/responses/401/description") {
        *unauthorized = json!("Missing, unknown, expired or revoked API key");
    }
    // A webhook is answered as its provider expects (a body that verifies but does not
    // parse is quarantined, 202): no 400 or 422.
    if !path.starts_with("/v1/webhooks/") {
        declare_errors(op);
    }
}

/// RFC 3339 times (every string property named `…_at`) marked `date-time`; objects whose
/// members are open (`{"type": "object"}` and nothing more) say `additionalProperties:
/// true`, so generated types take any member rather than none.
fn refine(v: &mut Value) {
    match v {
        Value::Object(map) => {
            let object = match map.get("type") {
                Some(Value::String(t)) => t == "object",
                Some(Value::Array(ts)) => ts.iter().any(|t| t == "object"),
                _ => false,
            };
            let shaped = [
                "properties",
                "additionalProperties",
                "allOf",
                "oneOf",
                "anyOf",
                "$ref",
            ]
            .iter()
            .any(|k| map.contains_key(*k));
            if object && !shaped {
                map.insert("additionalProperties".into(), Value::Bool(true));
            }
            if let Some(Value::Object(props)) = map.get_mut("properties") {
                for (name, prop) in props.iter_mut() {
                    let is_string = match prop.get("type") {
                        Some(Value::String(t)) => t == "string",
                        Some(Value::Array(ts)) => ts.iter().any(|t| t == "string"),
                        _ => false,
                    };
                    if name.ends_with("_at") && is_string && prop.get("format").is_none() {
                        prop["format"] = json!("date-time");
                    }
                }
            }
            for child in map.values_mut() {
                refine(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(refine),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_a_namespaced_unique_id_and_a_description() {
        let doc = crate::http::openapi_document();
        let mut ids = std::collections::BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in METHODS {
                let Some(op) = item.get(*method) else {
                    continue;
                };
                let id = op["operationId"].as_str().unwrap();
                assert!(
                    OPERATION_IDS
                        .iter()
                        .any(|(m, p, i)| m == method && p == path && *i == id),
                    "{method} {path} has no namespaced id in spec.rs (it is {id:?})"
                );
                assert!(ids.insert(id.to_string()), "{id} twice");
                assert!(
                    op["description"].is_string() && op["description"] != op["summary"],
                    "{method} {path}: no description beyond the summary"
                );
                assert!(
                    op["security"].is_array(),
                    "{method} {path}: security unsaid"
                );
            }
        }
        assert_eq!(
            ids.len(),
            OPERATION_IDS.len(),
            "an id for an operation that is gone"
        );
    }

    #[test]
    fn every_operation_declares_the_errors_it_can_answer() {
        let doc = crate::http::openapi_document();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in METHODS {
                let Some(op) = item.get(*method) else {
                    continue;
                };
                let declared = |status: &str| op["responses"].get(status).is_some();
                let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
                if secured {
                    assert!(declared("401") && declared("503"), "{method} {path}");
                }
                if op.get("requestBody").is_some() && !path.starts_with("/v1/webhooks/") {
                    assert!(declared("400") && declared("422"), "{method} {path}");
                }
                for (status, response) in op["responses"].as_object().unwrap() {
                    let Some(problem) = response.pointer("/content/application~1problem+json")
                    else {
                        continue;
                    };
                    let example = &problem["example"];
                    let kind = example["type"]
                        .as_str()
                        .and_then(ProblemKind::from_type_uri);
                    assert!(kind.is_some(), "{method} {path} {status}: {example}");
                    if status != "default" {
                        assert_eq!(
                            example["status"].to_string(),
                            *status,
                            "{method} {path}: the example answers another status"
                        );
                    }
                }
            }
        }
        let created = &doc["paths"]["/v1/sources"]["post"]["responses"]["201"]["content"];
        assert!(
            created["application/json"]["example"].is_object(),
            "responses show their schema's example"
        );
    }

    #[test]
    fn public_operations_say_they_need_no_credentials() {
        let doc = crate::http::openapi_document();
        for (method, path) in [
            ("get", "/healthz"),
            ("get", "/v1/event-types"),
            ("get", "/v1/providers"),
            ("post", "/v1/webhooks/{source_id}"),
        ] {
            assert_eq!(doc["paths"][path][method]["security"], json!([]), "{path}");
        }
        assert_eq!(
            doc["paths"]["/v1/me"]["get"]["responses"]["401"]["description"],
            "Missing, unknown, expired or revoked API key"
        );
        assert_eq!(doc["info"]["license"]["identifier"], "Apache-2.0");
    }

    #[test]
    fn problem_types_are_listed_and_times_marked() {
        let doc = crate::http::openapi_document();
        let problem = &doc["components"]["schemas"]["Problem"]["allOf"][1];
        let types = problem["properties"]["type"]["enum"].as_array().unwrap();
        assert_eq!(
            doc["components"]["schemas"]["Problem"]["allOf"][0]["additionalProperties"], true,
            "a problem's extension members are open"
        );
        assert_eq!(types.len(), ProblemKind::ALL.len());
        assert!(types.contains(&json!("https://omnigate.dev/problems/not-found")));
        let source = &doc["components"]["schemas"]["SourceView"]["properties"];
        assert_eq!(source["created_at"]["format"], "date-time");
    }
}
