//! Quarantine: verified payloads that could not be normalized, kept byte-exact with the
//! reason, listed and replayed by the admin.

use actix_web::{HttpResponse, delete, get, post, web};
use base64::Engine;
use omnigate_schemas::api::{Accepted, Problem, QuarantineEntry, QuarantinePage};
use serde::Deserialize;

use super::Admin;
use crate::error::{Error, Result};
use crate::ingest;
use crate::normalize::time;
use crate::state::AppState;
use crate::store::{QuarantineId, QuarantineSummary, StoredQuarantine, partition_of};

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;

pub fn entry(q: StoredQuarantine) -> QuarantineEntry {
    let r = q.record;
    QuarantineEntry {
        id: q.id.to_string(),
        tenant: r.tenant,
        source_id: r.source_id,
        provider: r.provider,
        topic: r.topic,
        reason: r.reason,
        received_at: time::format(r.received_at),
        headers: r.headers,
        body_base64: base64::engine::general_purpose::STANDARD.encode(&r.body),
        body: String::from_utf8(r.body).ok(),
        replayed_event_ids: q.replayed,
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QuarantineQuery {
    /// Only this tenant's entries.
    pub tenant: Option<String>,
    /// At most this many entries, newest first (default 50, at most 500).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<usize>,
    /// A `next` from an earlier page: entries older than it.
    #[param(pattern = r"^q[0-9]{1,9}-[0-9]{1,19}-[0-9]{1,19}$")]
    pub before: Option<String>,
}

fn summary(q: QuarantineSummary) -> omnigate_schemas::api::QuarantineSummary {
    omnigate_schemas::api::QuarantineSummary {
        id: q.id.to_string(),
        tenant: q.tenant,
        source_id: q.source_id,
        provider: q.provider,
        topic: q.topic,
        reason: q.reason,
        received_at: time::format(q.received_at),
        body_bytes: q.body_bytes,
        replayed_event_ids: q.replayed,
    }
}

/// Entries of other tenants one list request may pass over before it answers a short page
/// (not `done`) to be read on from `next`.
const MAX_SCAN: usize = 5_000;

/// List quarantined payloads, newest first: metadata only, a page at a time.
///
/// Headers and bodies are fetched one entry at a time with `GET /v1/quarantine/{id}`, so a
/// list never loads them. Pass `next` as `before` for older entries, until `done`.
#[utoipa::path(
    tag = "quarantine",
    security(("admin_token" = [])),
    params(QuarantineQuery),
    responses(
        (status = 400, description = "Malformed JSON body or query parameters", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "Entries, newest first", body = QuarantinePage),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/quarantine")]
pub async fn list(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<QuarantineQuery>,
) -> Result<HttpResponse> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Error::InvalidQuery(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let mut before: Option<QuarantineId> = match &query.before {
        Some(b) => Some(
            b.parse()
                .map_err(|_| Error::InvalidQuery(format!("before {b:?} is not a quarantine id")))?,
        ),
        None => None,
    };
    let partitions: Vec<u32> = match &query.tenant {
        Some(t) => vec![partition_of(t, state.settings.partitions)],
        None => (0..state.settings.partitions).collect(),
    };
    let mut entries = Vec::new();
    let (mut scanned, mut done) = (0, false);
    'pages: loop {
        let page = state
            .store
            .list_quarantine(&partitions, before, limit)
            .await?;
        let count = page.len();
        for (i, q) in page.into_iter().enumerate() {
            scanned += 1;
            before = Some(q.id);
            if query.tenant.as_ref().is_none_or(|t| *t == q.tenant) {
                entries.push(summary(q));
                if entries.len() == limit {
                    done = count < limit && i + 1 == count;
                    break 'pages;
                }
            }
        }
        if count < limit {
            done = true;
            break;
        }
        if scanned >= MAX_SCAN {
            break;
        }
    }
    Ok(HttpResponse::Ok().json(QuarantinePage {
        entries,
        next: before.map(|b| b.to_string()),
        done,
    }))
}

/// Read one quarantined payload, with its headers and its exact body.
///
/// `reason` names the rule or field that failed. `body_base64` is byte-exact (what was
/// verified); `body` repeats it as text when it is UTF-8. `replayed_event_ids` is set once
/// a replay wrote events.
#[utoipa::path(
    tag = "quarantine",
    security(("admin_token" = [])),
    params(("id" = String, Path, description = "Quarantine id")),
    responses(
        (status = 200, description = "The entry", body = QuarantineEntry),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such entry", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/quarantine/{id}")]
pub async fn get(
    _: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse> {
    let qid: QuarantineId = id.parse()?;
    let stored = state
        .store
        .get_quarantine(qid)
        .await?
        .ok_or_else(|| Error::not_found(format!("quarantine entry {}", id.as_str())))?;
    Ok(HttpResponse::Ok().json(entry(stored)))
}

/// Replay a quarantined payload.
///
/// Runs the stored bytes through validation and normalization again (after a mapping or
/// schema fix). On success the events are written with the ids the original delivery
/// would have had; replaying again returns the same ids and writes nothing.
#[utoipa::path(
    tag = "quarantine",
    security(("admin_token" = [])),
    params(("id" = String, Path, description = "Quarantine id")),
    responses(
        (status = 200, description = "Written to the tenant log", body = Accepted),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such entry", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Still cannot be normalized; the entry stays", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/quarantine/{id}/replay")]
pub async fn replay(
    _: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse> {
    let qid: QuarantineId = id.parse()?;
    let event_ids = ingest::replay(&state, qid).await?;
    Ok(HttpResponse::Ok().json(Accepted { event_ids }))
}

/// Discard a quarantined payload for good.
///
/// The entry, its body and its replay result are removed, and its bytes return to the
/// quarantine's budget. Quarantine is never trimmed on its own: this (after a replay, or
/// for a payload nobody needs) is how it shrinks.
#[utoipa::path(
    tag = "quarantine",
    security(("admin_token" = [])),
    params(("id" = String, Path, description = "Quarantine id")),
    responses(
        (status = 204, description = "Discarded"),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such entry", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/quarantine/{id}")]
pub async fn discard(
    _: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse> {
    let qid: QuarantineId = id.parse()?;
    if !state.store.discard_quarantine(qid).await? {
        return Err(Error::not_found(format!(
            "quarantine entry {}",
            id.as_str()
        )));
    }
    tracing::info!(quarantine_id = %qid, "quarantined payload discarded");
    Ok(HttpResponse::NoContent().finish())
}
