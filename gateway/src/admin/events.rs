//! `GET /v1/tenants/{tenant}/events`: a tenant's canonical events in log order.

use actix_web::{HttpResponse, get, web};
use omnigate_schemas::api::{EventsPage, Problem};
use serde::Deserialize;

use super::Admin;
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::store::StreamId;
use crate::store::tenant_log::{LogQuery, Order, page};

pub const DEFAULT_LIMIT: usize = 100;
pub use crate::store::tenant_log::MAX_LIMIT;

/// Which way a page reads the log.
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventOrder {
    /// Log order; page on with `after`.
    #[default]
    OldestFirst,
    /// The newest first; page on with `before`.
    NewestFirst,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only events of this type (e.g. `order.created`).
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub event_type: Option<String>,
    /// `oldest_first` (log order, the default) or `newest_first`.
    #[param(inline)]
    pub order: Option<EventOrder>,
    /// Only events strictly after this log position. Oldest first, pass the previous
    /// page's `next` here.
    #[param(pattern = r"^[0-9]{1,19}-[0-9]{1,19}$")]
    pub after: Option<String>,
    /// Only events strictly before this log position. Newest first, pass the previous
    /// page's `next` here.
    #[param(pattern = r"^[0-9]{1,19}-[0-9]{1,19}$")]
    pub before: Option<String>,
    /// Only events written to the log at or after this time (RFC 3339).
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Only events written to the log before this time (RFC 3339).
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// At most this many events (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// A time bound as log milliseconds: any RFC 3339 time, those before 1970 (before any log
/// position) as 0.
fn millis(name: &str, value: Option<&str>) -> Result<Option<u64>> {
    value
        .map(|text| {
            chrono::DateTime::parse_from_rfc3339(text)
                .map(|t| u64::try_from(t.timestamp_millis()).unwrap_or(0))
                .map_err(|_| Error::InvalidQuery(format!("{name} must be an RFC 3339 time")))
        })
        .transpose()
}

impl EventsQuery {
    /// The store's query for `tenant`, or why these parameters do not make one.
    fn to_log_query<'a>(&'a self, tenant: &'a str) -> Result<LogQuery<'a>> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(Error::InvalidQuery(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            )));
        }
        let order = match self.order.unwrap_or_default() {
            EventOrder::OldestFirst => Order::OldestFirst,
            EventOrder::NewestFirst => Order::NewestFirst,
        };
        // Both bounds make a range; the order says which end the read starts from.
        let after = self.after.as_deref().map(StreamId::cursor).transpose()?;
        let before = self.before.as_deref().map(StreamId::cursor).transpose()?;
        let (cursor, stop) = match order {
            Order::OldestFirst => (after, before),
            Order::NewestFirst => (before, after),
        };
        let since_ms = millis("since", self.since.as_deref())?;
        let until_ms = millis("until", self.until.as_deref())?;
        Ok(LogQuery {
            tenant,
            event_type: self.event_type.as_deref(),
            order,
            cursor,
            stop,
            since_ms,
            until_ms,
            limit,
        })
    }
}

/// Read a tenant's events, in log order or newest first.
///
/// Pages with `after` in log order, with `before` newest first: pass the previous page's
/// `next`. Polling with the last `next` returns only events written since; a newest-first
/// page's `tail` is where to start that. `after` and `before` together read the events
/// between two positions, in either order; `since` and `until` bound the time each event
/// was written to the log (its `received_at`, give or take the write).
#[utoipa::path(
    tag = "events",
    security(("admin_token" = [])),
    params(("tenant" = String, Path, description = "Tenant (shop) name", pattern = r"^[A-Za-z0-9._-]{1,128}$"), EventsQuery),
    responses(
        (status = 200, description = "A page of events", body = EventsPage),
        (status = 400, description = "Bad cursor, time, order or limit", body = Problem, content_type = "application/problem+json"),
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
    let log_query = query.to_log_query(tenant.as_str())?;
    let page = page(state.store.as_ref(), state.settings.partitions, &log_query).await?;
    Ok(HttpResponse::Ok().json(page))
}
