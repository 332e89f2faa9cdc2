//! `GET /v1/status`: the store, the spool and the router at a glance, for an operator (and
//! the console's health page). Unlike `/readyz` it answers while the store is down: that
//! is when it is needed.

use actix_web::{HttpResponse, get, web};
use omnigate_schemas::api::{GatewayStatus, PartitionStatus, Problem, SpoolHealth};
use std::time::Duration;

use super::Admin;
use crate::error::Result;
use crate::state::AppState;

/// How long the store may take to answer before it is called unreachable.
const PING: Duration = Duration::from_millis(500);

/// The router's progress on every partition, or `None` when the store did not answer.
async fn router(state: &AppState) -> Option<Vec<PartitionStatus>> {
    let mut partitions = Vec::with_capacity(state.settings.partitions as usize);
    for partition in 0..state.settings.partitions {
        let progress = tokio::time::timeout(PING, state.store.route_progress(partition))
            .await
            .ok()?
            .ok()?;
        partitions.push(PartitionStatus {
            partition,
            unrouted: progress.unrouted,
            last_written_at: progress.last.and_then(|id| {
                let at = chrono::DateTime::from_timestamp_millis(i64::try_from(id.ms).ok()?)?;
                Some(crate::normalize::time::format(at))
            }),
        });
    }
    Some(partitions)
}

/// The gateway's health as an operator reads it.
///
/// Whether the store answers; the local spool's depth (when there is one: deliveries
/// verified while the store was down, waiting to be written); and per log partition how
/// many entries the router has not routed to plugins yet, with when the newest was
/// written. Always 200 for a valid token: an unreachable store is reported, not failed.
#[utoipa::path(
    tag = "ops",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The gateway's status", body = GatewayStatus),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/status")]
pub async fn status(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse> {
    let reachable = matches!(
        tokio::time::timeout(PING, state.store.ping()).await,
        Ok(Ok(()))
    );
    let router = if reachable {
        router(&state).await
    } else {
        None
    };
    let spool = state.spool.as_ref().map(|spool| {
        let stats = spool.stats();
        SpoolHealth {
            records: stats.records,
            bytes: stats.bytes,
            oldest_received_at: stats.oldest.map(crate::normalize::time::format),
        }
    });
    Ok(HttpResponse::Ok().json(GatewayStatus {
        store: if router.is_some() {
            "reachable"
        } else {
            "unreachable"
        }
        .into(),
        spool,
        router: router.unwrap_or_default(),
    }))
}
