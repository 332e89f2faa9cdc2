//! `GET /v1/status`: the store, the spool and the router at a glance, for an operator (and
//! the console's health page). Unlike `/readyz` it answers while the store is down: that
//! is when it is needed.

use actix_web::{HttpResponse, get, web};
use omnigate_schemas::api::{GatewayStatus, PartitionStatus, Problem, SpoolHealth};
use std::time::Duration;

use super::Admin;
use crate::error::Result;
use crate::normalize::time;
use crate::state::AppState;

/// How long the store may take to answer before it is called unreachable.
const PING: Duration = Duration::from_millis(500);

/// How long reading the router's progress on every partition may take in all.
const PROGRESS: Duration = Duration::from_secs(2);

/// The router's progress on every partition (read concurrently, within one deadline), or
/// `None` when the store did not answer for all of them.
async fn router(state: &AppState) -> Option<Vec<PartitionStatus>> {
    let reads = (0..state.settings.partitions).map(|partition| async move {
        let progress = state.store.route_progress(partition).await.ok()?;
        Some(PartitionStatus {
            partition,
            unrouted: progress.unrouted,
            last_written_at: progress
                .last
                .and_then(|id| time::unix_millis(id.ms))
                .map(time::format),
        })
    });
    let read = futures_util::future::join_all(reads);
    tokio::time::timeout(PROGRESS, read)
        .await
        .ok()?
        .into_iter()
        .collect()
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
    if reachable && router.is_none() {
        tracing::warn!("the router's progress could not be read in time");
    }
    let spool = state.spool.as_ref().map(|spool| {
        let stats = spool.stats();
        SpoolHealth {
            records: stats.records,
            bytes: stats.bytes,
            oldest_received_at: stats.oldest.map(time::format),
        }
    });
    Ok(HttpResponse::Ok().json(GatewayStatus {
        store: if reachable {
            "reachable"
        } else {
            "unreachable"
        }
        .into(),
        spool,
        router: router.unwrap_or_default(),
    }))
}
