//! Schemas plugins declare for the event types they publish: checked on publish, and the
//! source of the redaction plan for plugins without `customer_pii`.

use serde_json::Value;
use std::collections::HashMap;

use super::pii::PluginPlans;

/// A validator and the schema it was compiled from.
type Compiled = (Value, std::sync::Arc<jsonschema::Validator>);

/// Validators of plugins' declared event schemas, compiled once per (plugin, type), and
/// again when the registered schema changed (one entry per type, however often it changes);
/// and their redaction plans (what they mark `x-pii`), kept the same way.
#[derive(Default)]
pub struct PluginSchemas {
    compiled: std::sync::Mutex<HashMap<(String, String), Compiled>>,
    plans: PluginPlans,
}

impl PluginSchemas {
    pub fn check(
        &self,
        plugin_id: &str,
        declared: &omnigate_schemas::api::PublishedType,
        data: &Value,
    ) -> std::result::Result<(), String> {
        let key = (plugin_id.to_string(), declared.event_type.clone());
        let validator = {
            let mut compiled = self.compiled.lock().unwrap_or_else(|p| p.into_inner());
            match compiled.get(&key) {
                Some((schema, v)) if *schema == declared.schema => v.clone(),
                _ => {
                    let v = jsonschema::options()
                        .should_validate_formats(true)
                        .offline()
                        .build(&declared.schema)
                        .map_err(|e| e.to_string())?;
                    let v = std::sync::Arc::new(v);
                    compiled.insert(key, (declared.schema.clone(), v.clone()));
                    v
                }
            }
        };
        match validator.iter_errors(data).next() {
            None => Ok(()),
            Some(e) => Err(format!("{}: {e}", e.instance_path())),
        }
    }

    /// Removes what `declared`'s schema marks `x-pii` from `data`, for plugins without
    /// `customer_pii`.
    pub fn redact(
        &self,
        plugin_id: &str,
        declared: &omnigate_schemas::api::PublishedType,
        data: &mut Value,
    ) {
        self.plans.get(plugin_id, declared).apply(data);
    }
}
