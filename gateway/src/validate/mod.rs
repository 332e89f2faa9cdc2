//! JSON Schema validators, compiled once at start-up from the schemas embedded in
//! `omnigate-schemas` (formats checked, nothing fetched).

use jsonschema::{Draft, Registry, Validator};
use omnigate_schemas::api::Provider;
use omnigate_schemas::catalog::{self, Embedded};
use serde_json::Value;
use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::json::{self, Json};
use crate::normalize::Rejection;

pub mod pii;
mod plugin;

pub use plugin::PluginSchemas;

/// How many schema errors a rejection lists.
const MAX_ERRORS: usize = 3;

/// Every schema compiled for the borrowed tree ([`json::Schema`]): the webhook path checks
/// what it parsed, without building a `serde_json::Value`.
pub struct Validators {
    events: HashMap<&'static str, Validator<json::Schema>>,
    payloads: HashMap<(&'static str, &'static str), Validator<json::Schema>>,
}

impl std::fmt::Debug for Validators {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validators")
            .field("events", &self.events.keys().collect::<Vec<_>>())
            .field("payloads", &self.payloads.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn parse(doc: &Embedded) -> Result<Value> {
    serde_json::from_str(doc.text)
        .map_err(|e| Error::Config(format!("embedded schema {} is not JSON: {e}", doc.uri)))
}

impl Validators {
    /// Compiles every embedded schema. Fails only if the embedded schemas are broken.
    pub fn compile() -> Result<Self> {
        let registry = Registry::new()
            .add(catalog::COMMON.uri, parse(&catalog::COMMON)?)
            .and_then(|b| b.prepare())
            .map_err(|e| Error::Config(format!("schema registry: {e}")))?;
        let build = |doc: &Embedded| -> Result<Validator<json::Schema>> {
            jsonschema::options_for::<json::Schema>()
                .with_draft(Draft::Draft202012)
                .should_validate_formats(true)
                .offline()
                .with_registry(&registry)
                .build(&parse(doc)?)
                .map_err(|e| Error::Config(format!("schema {}: {e}", doc.uri)))
        };
        let mut events = HashMap::new();
        for t in catalog::EVENT_TYPES {
            events.insert(t.name, build(&t.schema)?);
        }
        let mut payloads = HashMap::new();
        for p in catalog::PROVIDER_SCHEMAS {
            payloads.insert((p.provider, p.resource), build(&p.schema)?);
        }
        Ok(Validators { events, payloads })
    }

    /// Checks a provider payload against `schemas/providers/<provider>/<resource>`.
    pub fn check_payload(
        &self,
        provider: Provider,
        resource: &str,
        body: &Json<'_>,
    ) -> Result<(), Rejection> {
        let v = self
            .payloads
            .get(&(provider.as_str(), resource))
            .ok_or_else(|| Rejection::new(format!("no {provider} schema for {resource}")))?;
        describe(v, body, &format!("{provider} {resource} payload"))
    }

    /// Checks a whole canonical event (envelope included) against its type's schema.
    pub fn check_event(&self, event_type: &str, event: &Json<'_>) -> Result<(), Rejection> {
        let v = self
            .events
            .get(event_type)
            .ok_or_else(|| Rejection::new(format!("{event_type} is not in the event catalog")))?;
        describe(v, event, &format!("{event_type} event"))
    }
}

fn describe(v: &Validator<json::Schema>, value: &Json<'_>, label: &str) -> Result<(), Rejection> {
    if v.is_valid(value) {
        return Ok(());
    }
    let errors: Vec<String> = v
        .iter_errors(value)
        .take(MAX_ERRORS)
        .map(|e| {
            let path = e.instance_path().to_string();
            let mut msg = e.to_string();
            if msg.len() > 160 {
                let cut = (0..=160)
                    .rev()
                    .find(|i| msg.is_char_boundary(*i))
                    .unwrap_or(0);
                msg.truncate(cut);
                msg.push('…');
            }
            format!("{}: {msg}", if path.is_empty() { "/" } else { &path })
        })
        .collect();
    Err(Rejection::new(format!(
        "{label} does not match its schema: {}",
        errors.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_embedded_schema_compiles() {
        let v = Validators::compile().unwrap();
        assert_eq!(v.events.len(), catalog::EVENT_TYPES.len());
        assert_eq!(v.payloads.len(), catalog::PROVIDER_SCHEMAS.len());
    }

    #[test]
    fn every_event_schema_example_validates() {
        let v = Validators::compile().unwrap();
        for t in catalog::EVENT_TYPES {
            let schema: Value = serde_json::from_str(t.schema.text).unwrap();
            let examples = schema["examples"].as_array().expect("examples");
            assert!(!examples.is_empty(), "{} has no examples", t.name);
            for ex in examples {
                v.check_event(t.name, &Json::from(ex)).unwrap();
            }
        }
    }

    #[test]
    fn float_money_and_offset_times_are_refused() {
        let v = Validators::compile().unwrap();
        let t = catalog::event_type("order.created").unwrap();
        let schema: Value = serde_json::from_str(t.schema.text).unwrap();
        let mut ex = schema["examples"][0].clone();
        ex["data"]["total"]["amount"] = json!(2300.0);
        let err = v
            .check_event("order.created", &Json::from(&ex))
            .unwrap_err();
        assert!(err.reason().contains("/data/total/amount"), "{err}");

        let mut ex = schema["examples"][0].clone();
        ex["occurred_at"] = json!("2025-03-14T11:26:53+02:00");
        assert!(v.check_event("order.created", &Json::from(&ex)).is_err());
    }

    #[test]
    fn closed_shapes_refuse_unknown_fields() {
        let v = Validators::compile().unwrap();
        let t = catalog::event_type("return.requested").unwrap();
        let schema: Value = serde_json::from_str(t.schema.text).unwrap();
        let mut ex = schema["examples"][0].clone();
        ex["data"]["lines"][0]["colour"] = json!("red");
        assert!(v.check_event("return.requested", &Json::from(&ex)).is_err());
        let mut ex = schema["examples"][0].clone();
        ex["data"]["lines"][0]
            .as_object_mut()
            .unwrap()
            .remove("reason_code");
        assert!(v.check_event("return.requested", &Json::from(&ex)).is_err());
    }

    #[test]
    fn payload_errors_name_the_path() {
        let v = Validators::compile().unwrap();
        let err = v
            .check_payload(Provider::Shopify, "order", &Json::from(&json!({"id": "x"})))
            .unwrap_err();
        assert!(err.reason().contains("shopify order payload"), "{err}");
    }
}
