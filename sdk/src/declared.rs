//! The event types a plugin declared it publishes, with their JSON Schemas compiled, so a
//! publication can be checked where it is decided (before it is saved with the change that
//! caused it) instead of being refused by the gateway later.

use omnigate_schemas::api::{PluginView, PublishEvent};
use std::collections::HashMap;

/// Validators for a plugin's published types ([`crate::Client::declared`]).
pub struct Declared {
    types: HashMap<String, Result<jsonschema::Validator, String>>,
}

impl std::fmt::Debug for Declared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Declared")
            .field("types", &self.types.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Declared {
    /// From a plugin's registration.
    pub fn new(plugin: &PluginView) -> Self {
        let types = plugin
            .publishes
            .iter()
            .map(|p| {
                // As the gateway compiles it: formats checked, no remote references.
                let validator = jsonschema::options()
                    .should_validate_formats(true)
                    .offline()
                    .build(&p.schema)
                    .map_err(|e| e.to_string());
                (p.event_type.clone(), validator)
            })
            .collect();
        Declared { types }
    }

    /// Whether the gateway would take `event`'s type and data: `Err` says why not, naming
    /// the type and the first field that does not match.
    pub fn check(&self, event: &PublishEvent) -> Result<(), String> {
        let t = &event.event_type;
        match self.types.get(t) {
            None => Err(format!(
                "{t:?} is not among the event types this plugin declared it publishes"
            )),
            // The gateway compiled it at registration; one it cannot compile here is left
            // for the gateway to judge.
            Some(Err(_)) => Ok(()),
            Some(Ok(validator)) => match validator.iter_errors(&event.data).next() {
                None => Ok(()),
                Some(e) => Err(format!(
                    "data does not match the declared schema of {t:?}: {e} (at {:?})",
                    e.instance_path().to_string()
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use omnigate_schemas::api::PublishedType;
    use serde_json::json;

    fn declared() -> Declared {
        Declared::new(&PluginView {
            id: "plg_1".into(),
            name: "loyalty".into(),
            event_types: vec![],
            publishes: vec![PublishedType {
                event_type: "loyalty.points.changed".into(),
                schema: json!({"type": "object", "required": ["points"],
                               "properties": {"points": {"type": "integer"}}}),
            }],
            keys: vec![],
            inbox: None,
            delivery: None,
            created_at: "2025-03-14T09:00:00Z".into(),
        })
    }

    fn event(t: &str, data: serde_json::Value) -> PublishEvent {
        serde_json::from_value(json!({"tenant": "shop", "type": t, "data": data})).unwrap()
    }

    #[test]
    fn a_publication_is_checked_against_its_declared_schema() {
        let d = declared();
        assert_eq!(
            d.check(&event("loyalty.points.changed", json!({"points": 5}))),
            Ok(())
        );
        let wrong = d
            .check(&event("loyalty.points.changed", json!({"points": "5"})))
            .unwrap_err();
        assert!(wrong.contains("/points"), "{wrong}");
        let undeclared = d
            .check(&event("loyalty.tier.changed", json!({})))
            .unwrap_err();
        assert!(undeclared.contains("not among"), "{undeclared}");
    }
}
