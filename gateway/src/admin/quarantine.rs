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
use crate::store::{QuarantineId, StoredQuarantine, partition_of};

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
}

/// List quarantined payloads, newest first.
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
    let partitions: Vec<u32> = match &query.tenant {
        Some(t) => vec![partition_of(t, state.settings.partitions)],
        None => (0..state.settings.partitions).collect(),
    };
    // Other tenants share a partition: read more, then filter.
    let read = if query.tenant.is_some() {
        MAX_LIMIT
    } else {
        limit
    };
    let entries = state
        .store
        .list_quarantine(&partitions, read)
        .await?
        .into_iter()
        .filter(|q| query.tenant.as_ref().is_none_or(|t| *t == q.record.tenant))
        .take(limit)
        .map(entry)
        .collect();
    Ok(HttpResponse::Ok().json(QuarantinePage { entries }))
}

/// Read one quarantined payload.
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
