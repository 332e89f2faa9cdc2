//! `GET /v1/tenants/{tenant}/events`: a tenant's canonical events in log order.

use actix_web::{HttpResponse, get, web};
use omnigate_schemas::api::{EventsPage, Problem};
use serde::Deserialize;

use super::Admin;
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::store::StreamId;
use crate::store::tenant_log::page;

pub const DEFAULT_LIMIT: usize = 100;
pub use crate::store::tenant_log::MAX_LIMIT;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only events of this type (e.g. `order.created`).
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub event_type: Option<String>,
    /// A `next` value from an earlier page; events strictly after it.
    #[param(pattern = r"^[0-9]{1,19}-[0-9]{1,19}$")]
    pub after: Option<String>,
    /// At most this many events (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// Read a tenant's events in log order.
///
/// Pages with `after`: pass the previous page's `next`. Polling with the last `next`
/// returns only events written since.
#[utoipa::path(
    tag = "events",
    security(("admin_token" = [])),
    params(("tenant" = String, Path, description = "Tenant (shop) name", pattern = r"^[A-Za-z0-9._-]{1,128}$"), EventsQuery),
    responses(
        (status = 200, description = "A page of events", body = EventsPage),
        (status = 400, description = "Bad cursor or limit", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/tenants/{tenant}/events")]
pub async fn tenant_events(
    _: Admin,
    state: web::Data<AppState>,
    tenant: web::Path<String>,
    query: web::Query<EventsQuery>,
) -> Result<HttpResponse> {
    let tenant = crate::ids::Tenant::parse(tenant.into_inner())
        .map_err(|e| Error::InvalidQuery(e.to_string()))?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Error::InvalidQuery(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let after = query.after.as_deref().map(StreamId::cursor).transpose()?;
    let page = page(
        state.store.as_ref(),
        state.settings.partitions,
        tenant.as_str(),
        query.event_type.as_deref(),
        after,
        limit,
    )
    .await?;
    Ok(HttpResponse::Ok().json(page))
}
