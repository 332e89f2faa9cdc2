//! Schemas plugins declare for the event types they publish: checked on publish, and the
//! source of the redaction plan for plugins without `customer_pii`.

use serde_json::Value;
use std::collections::HashMap;

use super::pii::PluginPlans;

/// Validators of plugins' declared event schemas, compiled once per (plugin, type, schema),
/// and their redaction plans (what they mark `x-pii`), compiled once per (plugin, type).
#[derive(Default)]
pub struct PluginSchemas {
    compiled:
        std::sync::Mutex<HashMap<(String, String, String), std::sync::Arc<jsonschema::Validator>>>,
    plans: PluginPlans,
}

impl PluginSchemas {
    pub fn check(
        &self,
        plugin_id: &str,
        declared: &omnigate_schemas::api::PublishedType,
        data: &Value,
    ) -> std::result::Result<(), String> {
        let key = (
            plugin_id.to_string(),
            declared.event_type.clone(),
            declared.schema.to_string(),
        );
        let validator = {
            let mut compiled = self.compiled.lock().unwrap_or_else(|p| p.into_inner());
            match compiled.get(&key) {
                Some(v) => v.clone(),
                None => {
                    let v = jsonschema::options()
                        .should_validate_formats(true)
                        .offline()
                        .build(&declared.schema)
                        .map_err(|e| e.to_string())?;
                    let v = std::sync::Arc::new(v);
                    compiled.insert(key, v.clone());
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
