//! A plugin publishing one of its own event types into a shop's log: checked against the
//! schema it registered, then written by the same append as a webhook's events (dedupe,
//! retention and its accounting), where other plugins subscribed to the type receive it.

use chrono::Utc;
use omnigate_schemas::api::{PublishEvent, Published, Scope};
use omnigate_schemas::{Event, EventSource};

use crate::error::{Error, Result};
use crate::normalize::time;
use crate::state::AppState;
use crate::store::{Append, Appended, LogRecord, PluginRecord, Write, partition_of};

/// Publishes one of the plugin's own event types into a shop's log, where other plugins
/// subscribed to it receive it.
pub async fn publish(
    state: &AppState,
    plugin: &PluginRecord,
    req: PublishEvent,
) -> Result<Published> {
    let inst = state
        .store
        .installations(&req.tenant)
        .await?
        .into_iter()
        .find(|i| i.plugin_id == plugin.id);
    if !inst.is_some_and(|i| i.scopes.contains(&Scope::EventsPublish)) {
        return Err(Error::Forbidden(format!(
            "not installed in {:?} with events:publish",
            req.tenant
        )));
    }
    let declared = plugin
        .publishes
        .iter()
        .find(|p| p.event_type == req.event_type)
        .ok_or_else(|| {
            Error::Forbidden(format!(
                "the plugin did not declare {:?} among the types it publishes",
                req.event_type
            ))
        })?;
    state
        .plugin_schemas
        .check(&plugin.id, declared, &req.data)
        .map_err(|reason| {
            Error::validation(format!("data does not match {}: {reason}", req.event_type))
        })?;

    if req
        .subject
        .as_ref()
        .is_some_and(|s| s.is_empty() || s.len() > 200)
    {
        return Err(Error::validation("subject must be 1-200 characters"));
    }
    let now = state.now();
    let occurred_at = match req.occurred_at.as_deref() {
        Some(t) => {
            time::rfc3339(t).ok_or_else(|| Error::validation("occurred_at must be RFC 3339"))?
        }
        None => now,
    };
    // Scoped to the plugin and the shop: one plugin's key never collides with another's,
    // nor with the same key used in another shop.
    let scope = format!("plugin:{}:{}", plugin.id, req.tenant);
    let key = match &req.idempotency_key {
        Some(k) if !k.is_empty() && k.len() <= 200 => format!("{scope}:{k}"),
        Some(_) => {
            return Err(Error::validation(
                "idempotency_key must be 1-200 characters",
            ));
        }
        None => format!("{scope}:{}", uuid::Uuid::new_v4()),
    };
    let event_id = super::event_id(&key, 0);
    let event = Event {
        id: event_id.clone(),
        event_type: req.event_type.clone(),
        schema_version: 1,
        tenant: req.tenant.clone(),
        occurred_at: time::format(occurred_at),
        received_at: time::format(now.with_timezone(&Utc)),
        source: EventSource {
            id: plugin.id.clone(),
            provider: "plugin".into(),
            topic: req.event_type.clone(),
            delivery_id: None,
        },
        subject: req
            .subject
            .unwrap_or_else(|| format!("plugin/{}", plugin.id)),
        data: req.data,
    };
    let json = serde_json::to_string(&event).map_err(|e| Error::Internal(e.to_string()))?;
    let appended = super::append(
        state,
        Append {
            partition: partition_of(&req.tenant, state.settings.partitions),
            dedupe_key: key,
            dedupe_ttl: state.settings.dedupe_ttl(),
            write: Write::Events(vec![LogRecord {
                event_id: event_id.clone(),
                tenant: req.tenant,
                event_type: req.event_type,
                json,
            }]),
            snapshot: None,
        },
    )
    .await?;
    Ok(Published {
        event_id,
        duplicate: matches!(appended, Appended::Duplicate),
    })
}
