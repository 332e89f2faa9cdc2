//! Operations endpoints and the event catalog.

use actix_web::{HttpResponse, get, web};
use omnigate_schemas::api::{EventTypeInfo, EventTypeList, Health, Problem, SpoolHealth};
use omnigate_schemas::catalog;
use serde_json::Value;

use crate::error::Result;
use crate::state::AppState;

/// Liveness: the process answers.
///
/// Never touches the store: use it to restart a hung process, and `/readyz` to route
/// traffic.
#[utoipa::path(tag = "ops", responses((status = 200, description = "Alive", body = Health)))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok".into(),
        store: None,
        spool: None,
    })
}

/// How long `/readyz` waits for the store when there is a spool to fall back on.
const READY_PING: std::time::Duration = std::time::Duration::from_millis(500);

/// Readiness: the store answers, or the spool takes deliveries while it does not.
///
/// `ready` when the store answers and the spool (if any) is empty; `degraded` (still 200,
/// deliveries are accepted) while the store is unreachable but the spool takes deliveries,
/// or while the spool holds deliveries to drain; 503 when the store is unreachable and
/// there is no spool.
#[utoipa::path(
    tag = "ops",
    responses(
        (status = 200, description = "Ready, or degraded but accepting deliveries", body = Health),
        (status = 503, description = "Store unreachable, and no spool (or a full one)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse> {
    let Some(spool) = &state.spool else {
        state.store.ping().await?;
        return Ok(HttpResponse::Ok().json(Health {
            status: "ready".into(),
            store: Some("reachable".into()),
            spool: None,
        }));
    };
    // A probe gets its answer quickly while the store hangs: the spool is what serves then.
    let reached = if spool.store_known_down() {
        Err(crate::Error::StoreUnavailable("failed moments ago".into()))
    } else {
        match tokio::time::timeout(READY_PING, state.store.ping()).await {
            Ok(pinged) => pinged.map_err(crate::Error::from),
            Err(_) => Err(crate::Error::StoreUnavailable("no answer to a ping".into())),
        }
    };
    let stats = spool.stats();
    if reached.is_err() && !spool.accepting() {
        // Neither the store nor the spool can take a delivery.
        return Err(crate::Error::StoreUnavailable(
            "the store is unreachable and the spool is full".into(),
        ));
    }
    let status = match (&reached, stats.records) {
        (Ok(()), 0) => "ready",
        _ => "degraded",
    };
    Ok(HttpResponse::Ok().json(Health {
        status: status.into(),
        store: Some(
            if reached.is_ok() {
                "reachable"
            } else {
                "unreachable"
            }
            .into(),
        ),
        spool: Some(SpoolHealth {
            records: stats.records,
            bytes: stats.bytes,
            oldest_received_at: stats.oldest.map(crate::normalize::time::format),
        }),
    }))
}

/// Prometheus metrics (text exposition format).
///
/// Webhooks by provider and outcome, ingest latency, store errors, log and inbox trims,
/// router dead letters, spool, push and enrichment counters, all of this process.
#[utoipa::path(
    tag = "ops",
    responses((status = 200, description = "Metrics", content_type = "text/plain; version=0.0.4", body = String))
)]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

/// The canonical event catalog, with each type's JSON Schema.
pub fn event_types() -> EventTypeList {
    let parse = |text: &str| serde_json::from_str(text).unwrap_or(Value::Null);
    EventTypeList {
        event_types: catalog::EVENT_TYPES
            .iter()
            .map(|t| EventTypeInfo {
                event_type: t.name.to_string(),
                schema_version: t.schema_version,
                description: t.description.to_string(),
                schema: parse(t.schema.text),
            })
            .collect(),
        common: parse(catalog::COMMON.text),
    }
}

/// List the canonical event types and their JSON Schemas.
///
/// The catalog every event's `data` follows, with each type's schema version and the
/// shared definitions (`common`) the schemas refer to.
#[utoipa::path(tag = "events", responses((status = 200, description = "The catalog", body = EventTypeList)))]
#[get("/v1/event-types")]
pub async fn list_event_types() -> HttpResponse {
    HttpResponse::Ok().json(event_types())
}
