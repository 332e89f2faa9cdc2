//! `POST /v1/webhooks/{source_id}`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, post, web};
use futures_util::StreamExt;
use omnigate_schemas::api::{
    Accepted, Duplicate, Handshake, IngestAccepted, IngestOk, Problem, Quarantined, Spooled,
};
use std::time::Instant;

use super::{Call, Outcome, ingest};
use crate::error::{Error, Result};
use crate::headers::Headers;
use crate::providers::Answer;
use crate::state::AppState;
use crate::store::SourceRecord;
use crate::telemetry::WebhookOutcome;
use omnigate_schemas::api::Provider;

/// Reads the body up to `limit` bytes, refusing early when Content-Length says it is larger.
async fn read_body(req: &HttpRequest, mut payload: web::Payload, limit: usize) -> Result<Vec<u8>> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(Error::PayloadTooLarge { limit });
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(8 * 1024).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| Error::MalformedBody(format!("reading body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(Error::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Receive a webhook.
///
/// The body is verified byte-exact with the source's signature scheme, validated,
/// normalized into canonical events and written durably before the answer. A verified
/// payload that cannot be normalized is kept in quarantine (still 202). When the store
/// cannot take a verified delivery in time and the gateway has a spool
/// (`OMNIGATE_SPOOL_DIR`), it is fsynced to the spool and answered 202 `spooled`; it reaches
/// the log when the store is back. A 2xx is never sent for a delivery that was not written
/// to the store or the spool; on 503 the sender should retry.
#[utoipa::path(
    tag = "ingest",
    params(("source_id" = String, Path, description = "The source's id, from `webhook_path`")),
    request_body(
        content = Object,
        content_type = "application/json",
        description = "The provider's webhook body, exactly as it was signed",
    ),
    responses(
        (status = 202, description = "Written to the tenant log (`event_ids`), verified but not \
            normalizable and kept in quarantine (`quarantined`, `quarantine_id`), or verified and \
            fsynced to the local spool during a store outage (`spooled`)", body = IngestAccepted),
        (status = 200, description = "Already received (`duplicate`), or a provider handshake such as \
            WooCommerce's creation ping (`handshake`); nothing new was stored", body = IngestOk),
        (status = 401, description = "Signature missing or wrong, signed timestamp outside the window \
            (`timestamp-outside-tolerance`), or a signed body older than the replay window (`stale-delivery`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown source", body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "The body did not arrive in time (`OMNIGATE_BODY_TIMEOUT_MS`)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than the limit", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The source sends faster than `OMNIGATE_WEBHOOK_RATE`; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store could not confirm the write (and no spool could \
            take it); retry", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/webhooks/{source_id}")]
pub async fn receive(
    state: web::Data<AppState>,
    source_id: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse> {
    handle(state, source_id.into_inner(), None, req, payload).await
}

/// Receive a webhook from a provider that signs nothing (Ozon, Mercado Libre).
///
/// The URL carries the source's secret (shown once, when it was set), compared in constant
/// time; a source's `allow_cidrs` also limits where deliveries may come from (403
/// otherwise). Answered as the provider expects: Ozon 200 `{"result": true}` (its
/// `TYPE_PING` with `{"version", "name", "time"}`), Mercado Libre 200.
#[utoipa::path(
    tag = "ingest",
    params(
        ("source_id" = String, Path, description = "The source's id"),
        ("url_secret" = String, Path, description = "The source's URL secret"),
    ),
    request_body(
        content = Object,
        content_type = "application/json",
        description = "The provider's notification body",
    ),
    responses(
        (status = 200, description = "Written (`event_ids`, with Ozon's `result: true`), already received, quarantined, spooled, or Ozon's ping answered (`version`, `name`, `time`)", body = Object),
        (status = 401, description = "Wrong URL secret", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The sender's address is not in the source's `allow_cidrs`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown source, or a source that is signed (post to its path without a secret)", body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "The body did not arrive in time", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than the limit", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The source sends faster than `OMNIGATE_WEBHOOK_RATE`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store could not confirm the write; retry", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/webhooks/{source_id}/{url_secret}")]
pub async fn receive_with_secret(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let (source_id, url_secret) = path.into_inner();
    handle(state, source_id, Some(url_secret), req, payload).await
}

async fn handle(
    state: web::Data<AppState>,
    source_id: String,
    url_secret: Option<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let started = Instant::now();
    let span = tracing::Span::current();
    span.record("source_id", source_id.as_str());
    // Ids have one shape: anything else is unknown without asking the store or filling
    // the cache of unknown ids.
    if !crate::ids::source_id::is_valid(&source_id) {
        record(&state, &span, None, WebhookOutcome::SourceNotFound, started);
        return Err(Error::SourceNotFound(source_id));
    }
    let source = match state.source(&source_id).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            record(&state, &span, None, WebhookOutcome::SourceNotFound, started);
            return Err(Error::SourceNotFound(source_id));
        }
        Err(e) => {
            state
                .metrics
                .store_errors
                .with_label_values(&["get_source"])
                .inc();
            record(
                &state,
                &span,
                None,
                WebhookOutcome::StoreUnavailable,
                started,
            );
            return Err(e);
        }
    };
    let provider = Some(source.provider);
    span.record("provider", source.provider.as_str());
    let descriptor = crate::providers::of(source.provider);
    let unsigned = descriptor.scheme == crate::verify::Scheme::UrlSecret;
    if url_secret.is_some() && !unsigned {
        // Only unsigned sources have a secret path: the shape says nothing about others.
        record(
            &state,
            &span,
            provider,
            WebhookOutcome::SourceNotFound,
            started,
        );
        return Err(Error::SourceNotFound(source_id));
    }
    // Only a source with an allow-list asks who sent it: the rest pay nothing for it.
    let sender = source
        .options
        .allow_cidrs
        .as_ref()
        .and(req.peer_addr())
        .map(|peer| {
            crate::peer::client_ip(
                peer.ip(),
                req.headers()
                    .get_all("x-forwarded-for")
                    .filter_map(|v| v.to_str().ok()),
                &state.settings.trusted_proxies,
            )
        });
    let call = Call {
        url_secret: url_secret.as_deref(),
        sender,
    };

    let timeout_ms = state.settings.body_timeout_ms;
    let read = read_body(&req, payload, state.settings.body_limit_bytes);
    let body = match tokio::time::timeout(std::time::Duration::from_millis(timeout_ms), read).await
    {
        Ok(read) => read,
        Err(_) => Err(Error::BodyTimeout { timeout_ms }),
    };
    let result = match body {
        Ok(body) => ingest(&state, &source, Headers::from(req.headers()), &body, call).await,
        Err(e) => Err(e),
    };
    // One clock read for the count and the answer.
    let now = state.now();
    match result {
        Ok(outcome) => {
            record_for(&state, &span, &source, outcome.label(), started, now);
            Ok(respond(outcome, descriptor.answer, now))
        }
        Err(e) => {
            let label = match &e {
                Error::InvalidSignature(reason) => {
                    tracing::warn!(%reason, "webhook rejected: signature");
                    WebhookOutcome::InvalidSignature
                }
                Error::TimestampOutsideTolerance { .. } => {
                    tracing::warn!("webhook rejected: timestamp outside window");
                    WebhookOutcome::Stale
                }
                Error::StaleDelivery { .. } => {
                    tracing::warn!("webhook rejected: signed body older than the window");
                    WebhookOutcome::Stale
                }
                Error::Forbidden(reason) => {
                    tracing::warn!(%reason, "webhook refused: sender address");
                    WebhookOutcome::SenderNotAllowed
                }
                Error::PayloadTooLarge { .. } => WebhookOutcome::TooLarge,
                Error::BodyTimeout { .. } => WebhookOutcome::BodyTimeout,
                Error::RateLimited { .. } => WebhookOutcome::RateLimited,
                Error::StoreUnavailable(_) | Error::StoreRefused(_) | Error::Contended(_) => {
                    WebhookOutcome::StoreUnavailable
                }
                Error::QuarantineFull(_) => {
                    tracing::error!("webhook refused: the quarantine is full");
                    WebhookOutcome::QuarantineFull
                }
                _ => WebhookOutcome::Error,
            };
            record_for(&state, &span, &source, label, started, now);
            Err(e)
        }
    }
}

fn record(
    state: &AppState,
    span: &tracing::Span,
    provider: Option<Provider>,
    outcome: WebhookOutcome,
    started: Instant,
) {
    span.record("outcome", outcome.as_str());
    state
        .metrics
        .webhook(provider, outcome, started.elapsed().as_secs_f64());
}

/// [`record`], and counted for the source's last hour.
fn record_for(
    state: &AppState,
    span: &tracing::Span,
    source: &SourceRecord,
    outcome: WebhookOutcome,
    started: Instant,
    now: chrono::DateTime<chrono::Utc>,
) {
    record(state, span, Some(source.provider), outcome, started);
    state.tally.count(&source.id, outcome, now);
}

/// Ozon's answer: what Omnigate answers anyone, with the `result: true` Ozon looks for,
/// always 200 (Ozon counts nothing else as received).
fn respond(outcome: Outcome, answer: Answer, now: chrono::DateTime<chrono::Utc>) -> HttpResponse {
    if answer == Answer::Standard {
        return respond_standard(outcome);
    }
    if answer == Answer::Ozon && matches!(outcome, Outcome::Handshake) {
        return HttpResponse::Ok().json(serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "name": "omnigate",
            "time": crate::normalize::time::format(now),
        }));
    }
    let mut body = match outcome {
        Outcome::Accepted(event_ids) => serde_json::json!({"event_ids": event_ids}),
        Outcome::Duplicate => serde_json::json!({"duplicate": true}),
        Outcome::Quarantined { id, reason } => {
            tracing::warn!(quarantine_id = %id, reason = %reason.split(':').next().unwrap_or(""), "webhook quarantined");
            serde_json::json!({"quarantined": true, "quarantine_id": id.to_string()})
        }
        Outcome::Spooled => serde_json::json!({"spooled": true}),
        Outcome::Handshake => serde_json::json!({"handshake": true}),
    };
    if answer == Answer::Ozon {
        body["result"] = serde_json::Value::Bool(true);
    }
    HttpResponse::Ok().json(body)
}

fn respond_standard(outcome: Outcome) -> HttpResponse {
    match outcome {
        Outcome::Accepted(event_ids) => {
            HttpResponse::build(StatusCode::ACCEPTED).json(Accepted { event_ids })
        }
        Outcome::Duplicate => HttpResponse::Ok().json(Duplicate { duplicate: true }),
        Outcome::Quarantined { id, reason } => {
            tracing::warn!(quarantine_id = %id, reason = %reason.split(':').next().unwrap_or(""), "webhook quarantined");
            HttpResponse::build(StatusCode::ACCEPTED).json(Quarantined {
                quarantined: true,
                quarantine_id: id.to_string(),
            })
        }
        Outcome::Spooled => {
            HttpResponse::build(StatusCode::ACCEPTED).json(Spooled { spooled: true })
        }
        Outcome::Handshake => HttpResponse::Ok().json(Handshake { handshake: true }),
    }
}
