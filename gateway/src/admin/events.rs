//! `GET /v1/tenants/{tenant}/events`: a tenant's canonical events in log order.

use actix_web::{HttpResponse, get, web};
use omnigate_schemas::Event;
use omnigate_schemas::api::{EventsPage, Problem};
use serde::Deserialize;

use super::Admin;
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::store::{Store, StreamId, partition_of};

pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;
/// Entries of other tenants one request may skip before it returns a partial page.
const MAX_SCAN: usize = 20_000;

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

/// Reads a page of `tenant`'s log. `next` is where to continue (present whenever anything
/// was read); a page shorter than `limit` means the end of the log was reached.
pub async fn page(
    store: &dyn Store,
    partitions: u32,
    tenant: &str,
    event_type: Option<&str>,
    after: Option<StreamId>,
    limit: usize,
) -> Result<EventsPage> {
    let partition = partition_of(tenant, partitions);
    let batch = limit.clamp(100, MAX_LIMIT);
    let mut cursor = after;
    let mut events = Vec::new();
    let mut scanned = 0;
    'scan: loop {
        let entries = store.read_log(partition, cursor, batch).await?;
        let exhausted = entries.len() < batch;
        for entry in entries {
            scanned += 1;
            cursor = Some(entry.cursor);
            let r = entry.record;
            if r.tenant != tenant || event_type.is_some_and(|t| t != r.event_type) {
                continue;
            }
            let event: Event = serde_json::from_str(&r.json)
                .map_err(|e| Error::StoreCorrupt(format!("event {}: {e}", r.event_id)))?;
            events.push(event);
            if events.len() == limit {
                break 'scan;
            }
        }
        if exhausted || scanned >= MAX_SCAN {
            break;
        }
    }
    Ok(EventsPage {
        events,
        next: cursor.map(|c| c.to_string()),
    })
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
    crate::admin::sources::check_tenant(&tenant)
        .map_err(|_| Error::InvalidQuery(format!("{:?} is not a tenant name", tenant.as_str())))?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Error::InvalidQuery(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let after = query.after.as_deref().map(str::parse).transpose()?;
    let page = page(
        state.store.as_ref(),
        state.settings.partitions,
        &tenant,
        query.event_type.as_deref(),
        after,
        limit,
    )
    .await?;
    Ok(HttpResponse::Ok().json(page))
}
