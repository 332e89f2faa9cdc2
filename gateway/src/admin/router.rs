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
    /// A `next` from an earlier page: the set-aside events after it.
    #[param(pattern = r"^r[0-9]{1,9}-[0-9]{1,19}-[0-9]{1,19}$")]
    pub after: Option<String>,
}

/// The id just before `id` in a stream, so a read from after it takes `id` itself.
fn before(id: StreamId) -> Option<StreamId> {
    match (id.ms, id.seq) {
        (0, 0) => None,
        (ms, 0) => Some(StreamId {
            ms: ms - 1,
            seq: u64::MAX,
        }),
        (ms, seq) => Some(StreamId { ms, seq: seq - 1 }),
    }
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

/// List the events the router set aside, oldest first, a page at a time (pass `next` as
/// `after` until `done`).
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
    let after =
        match &query.after {
            Some(a) => Some(parse_id(a).ok_or_else(|| {
                Error::InvalidQuery(format!("after {a:?} is not a dead letter id"))
            })?),
            None => None,
        };
    // Ordered by (entry id, partition) across partitions: after `(id, p)` come the entries
    // after `id` in partitions up to `p`, and from `id` itself in the later ones.
    let mut all = Vec::new();
    for p in 0..state.settings.partitions {
        let start = match after {
            Some((ap, id)) if p <= ap => Some(id),
            Some((_, id)) => before(id),
            None => None,
        };
        for d in state.store.route_dead_letters(p, start, limit + 1).await? {
            all.push((d.id, p, d));
        }
    }
    all.sort_by_key(|(id, p, _)| (*id, *p));
    let done = all.len() <= limit;
    all.truncate(limit);
    let next = all
        .last()
        .map(|(id, p, _)| id_of(*p, *id))
        .or_else(|| query.after.clone());
    let dead_letters = all.into_iter().map(|(_, p, d)| view(p, d)).collect();
    Ok(HttpResponse::Ok().json(RouterDeadLetterPage {
        dead_letters,
        next,
        done,
    }))
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
        .route_dead_letters(partition, None, state.settings.dead_maxlen.max(1) as usize)
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
    fn a_read_from_before_an_id_takes_the_id_itself() {
        let id = |ms, seq| StreamId { ms, seq };
        assert_eq!(before(id(5, 3)), Some(id(5, 2)));
        assert_eq!(before(id(5, 0)), Some(id(4, u64::MAX)));
        assert_eq!(before(id(0, 0)), None);
    }

    #[test]
    fn ids_round_trip() {
        let entry = StreamId { ms: 17, seq: 3 };
        assert_eq!(id_of(4, entry), "r4-17-3");
        assert_eq!(parse_id("r4-17-3"), Some((4, entry)));
        assert_eq!(parse_id("q4-17-3"), None);
        assert_eq!(parse_id("r4-17"), None);
    }
}
