//! Events the router set aside (Redis kept refusing a plugin's inbox write for them): listed
//! and delivered again by the admin once the cause is fixed.

use actix_web::{HttpResponse, get, post, web};
use omnigate_schemas::api::{Problem, RouterDeadLetterPage, RouterReplayed};
use serde::Deserialize;

use super::Admin;
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::store::{InboxEntry, RouterDeadLetter, StreamId};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 500;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RouterDeadQuery {
    /// At most this many, oldest first (default 100, at most 500).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<usize>,
}

/// `r<partition>-<ms>-<seq>`.
fn id_of(partition: u32, entry: StreamId) -> String {
    format!("r{partition}-{entry}")
}

fn parse_id(id: &str) -> Option<(u32, StreamId)> {
    let (partition, entry) = id.strip_prefix('r')?.split_once('-')?;
    Some((partition.parse().ok()?, entry.parse().ok()?))
}

fn view(partition: u32, d: RouterDeadLetter) -> omnigate_schemas::api::RouterDeadLetter {
    omnigate_schemas::api::RouterDeadLetter {
        id: id_of(partition, d.id),
        plugin_id: d.plugin_id,
        event_id: d.entry.record.event_id,
        tenant: d.entry.record.tenant,
        event_type: d.entry.record.event_type,
        reason: d.reason,
    }
}

/// List the events the router set aside, oldest first.
///
/// An event lands here when Redis kept refusing to write it to one plugin's inbox (a key of
/// the wrong type, a rejected command) while answering otherwise; the rest of its partition
/// went on. Fix the cause, then deliver it again with `POST …/{id}/replay`.
#[utoipa::path(
    tag = "plugins",
    security(("admin_token" = [])),
    params(RouterDeadQuery),
    responses(
        (status = 200, description = "Set-aside events, oldest first", body = RouterDeadLetterPage),
        (status = 400, description = "Bad limit", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/router/dead-letters")]
pub async fn list(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<RouterDeadQuery>,
) -> Result<HttpResponse> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Error::InvalidQuery(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let mut all = Vec::new();
    for p in 0..state.settings.partitions {
        for d in state.store.route_dead_letters(p, limit).await? {
            all.push((d.id, p, d));
        }
    }
    all.sort_by_key(|(id, p, _)| (*id, *p));
    all.truncate(limit);
    let dead_letters = all.into_iter().map(|(_, p, d)| view(p, d)).collect();
    Ok(HttpResponse::Ok().json(RouterDeadLetterPage { dead_letters }))
}

/// Deliver a set-aside event to its plugin's inbox again.
///
/// The event is written to the plugin's inbox as a new delivery and leaves the router's
/// dead letters. If Redis still refuses the write, the answer is 503 and it stays.
#[utoipa::path(
    tag = "plugins",
    security(("admin_token" = [])),
    params(("id" = String, Path, description = "Router dead letter id (`r<partition>-<ms>-<seq>`)")),
    responses(
        (status = 200, description = "In the plugin's inbox again", body = RouterReplayed),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such dead letter", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Redis refused or did not answer; it stays", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/router/dead-letters/{id}/replay")]
pub async fn replay(
    _: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse> {
    let missing = || Error::not_found(format!("router dead letter {}", id.as_str()));
    let (partition, entry) = parse_id(&id).ok_or_else(missing)?;
    let found = state
        .store
        .route_dead_letters(partition, state.settings.dead_maxlen.max(1) as usize)
        .await?
        .into_iter()
        .find(|d| d.id == entry)
        .ok_or_else(missing)?;
    let r = &found.entry.record;
    let item = InboxEntry {
        event_id: r.event_id.clone(),
        tenant: r.tenant.clone(),
        event_type: r.event_type.clone(),
        json: r.json.clone(),
    };
    let pushed = state.store.inbox_push(&found.plugin_id, &[item]).await?;
    state.note_inbox_trimmed(&found.plugin_id, pushed.trimmed);
    state.store.route_dead_remove(partition, &[entry]).await?;
    tracing::info!(plugin_id = %found.plugin_id, event_id = %r.event_id, "router dead letter delivered again");
    Ok(HttpResponse::Ok().json(RouterReplayed {
        plugin_id: found.plugin_id,
        event_id: r.event_id.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        let entry = StreamId { ms: 17, seq: 3 };
        assert_eq!(id_of(4, entry), "r4-17-3");
        assert_eq!(parse_id("r4-17-3"), Some((4, entry)));
        assert_eq!(parse_id("q4-17-3"), None);
        assert_eq!(parse_id("r4-17"), None);
    }
}
