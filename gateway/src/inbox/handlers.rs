//! `/v1/inbox/*` and `/v1/events`, called with the plugin's API key.

use actix_web::{HttpResponse, get, post, web};
use omnigate_schemas::api::{
    AckRequest, DeadLetterPage, LogReplayed, NackRequest, Problem, PublishEvent, Published,
    PullRequest, PullResponse, ReplayDead, ReplayLog, Replayed, Settled,
};
use serde::Deserialize;

use crate::error::Result;
use crate::plugins::PluginCaller;
use crate::state::AppState;

/// Take deliveries from the inbox.
///
/// Returns at most `max` deliveries, waiting up to `wait_ms` when none is ready. A
/// delivery not acknowledged within the visibility timeout comes back with a higher
/// `attempt`; after the last attempt it moves to the dead letters. Events of shops the
/// plugin left are dropped; without `customer_pii`, personal data is removed.
#[utoipa::path(
    tag = "inbox",
    security(("plugin_key" = [])),
    request_body = PullRequest,
    responses(
        (status = 400, description = "Malformed JSON body or query parameters", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "Deliveries, possibly none", body = PullResponse),
        (status = 401, description = "Missing, unknown, expired or revoked key", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over the plugin's rate limit (or, for pulls, its concurrent pulls; for replays, its replays per minute); retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "max or wait_ms out of range", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/inbox/pull")]
pub async fn pull(
    caller: PluginCaller,
    state: web::Data<AppState>,
    body: crate::body::Body<PullRequest>,
) -> Result<HttpResponse> {
    let deliveries = super::pull(&state, &caller.plugin, body.max, body.wait_ms).await?;
    Ok(HttpResponse::Ok().json(PullResponse { deliveries }))
}

/// Acknowledge handled deliveries: they are not delivered again.
///
/// Pass the `receipt` of each delivery from `POST /v1/inbox/pull`. `settled` counts the
/// receipts that were still pending; one already acknowledged counts as nothing, so
/// acknowledging again is safe.
#[utoipa::path(
    tag = "inbox",
    security(("plugin_key" = [])),
    request_body = AckRequest,
    responses(
        (status = 422, description = "The body breaks a rule of its schema (named in the problem), or a rule of the operation", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "Malformed JSON body or query parameters", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "How many were still pending", body = Settled),
        (status = 401, description = "Missing, unknown, expired or revoked key", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over the plugin's rate limit (or, for pulls, its concurrent pulls; for replays, its replays per minute); retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/inbox/ack")]
pub async fn ack(
    caller: PluginCaller,
    state: web::Data<AppState>,
    body: crate::body::Body<AckRequest>,
) -> Result<HttpResponse> {
    let settled = super::ack(&state, &caller.plugin, &body.receipts).await?;
    Ok(HttpResponse::Ok().json(Settled { settled }))
}

/// Give deliveries back: they come again after `retry_after_ms` (default at once).
///
/// `dead` gives up at once (the delivery becomes a dead letter, with `reason`); `defer`
/// hands it back without counting an attempt (it waits behind an earlier event of its
/// subject).
#[utoipa::path(
    tag = "inbox",
    security(("plugin_key" = [])),
    request_body = NackRequest,
    responses(
        (status = 422, description = "The body breaks a rule of its schema (named in the problem), or a rule of the operation", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "Malformed JSON body or query parameters", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "How many were still pending", body = Settled),
        (status = 401, description = "Missing, unknown, expired or revoked key", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over the plugin's rate limit (or, for pulls, its concurrent pulls; for replays, its replays per minute); retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/inbox/nack")]
pub async fn nack(
    caller: PluginCaller,
    state: web::Data<AppState>,
    body: crate::body::Body<NackRequest>,
) -> Result<HttpResponse> {
    let settled = super::nack(&state, &caller.plugin, &body).await?;
    Ok(HttpResponse::Ok().json(Settled { settled }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadQuery {
    /// At most this many, oldest first (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// A `next` from an earlier page: the dead letters after it.
    #[param(pattern = r"^[0-9]{1,19}-[0-9]{1,19}$")]
    pub after: Option<String>,
}

/// List deliveries that failed every attempt, oldest first, a page at a time.
///
/// Pass `next` as `after` until `done`.
#[utoipa::path(
    tag = "inbox",
    security(("plugin_key" = [])),
    params(DeadQuery),
    responses(
        (status = 400, description = "Malformed JSON body or query parameters", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "Dead letters, oldest first", body = DeadLetterPage),
        (status = 401, description = "Missing, unknown, expired or revoked key", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over the plugin's rate limit (or, for pulls, its concurrent pulls; for replays, its replays per minute); retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/inbox/dead")]
pub async fn dead(
    caller: PluginCaller,
    state: web::Data<AppState>,
    query: web::Query<DeadQuery>,
) -> Result<HttpResponse> {
    let page = super::dead_letter_page(&state, &caller.plugin, &query).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Send dead letters back to the inbox as new deliveries.
///
/// Name the dead letters by their `id`s, or leave `ids` out to send every one back. Each
/// leaves the dead letters and is delivered again from its first attempt: fix the handler
/// first.
#[utoipa::path(
    tag = "inbox",
    security(("plugin_key" = [])),
    request_body = ReplayDead,
    responses(
        (status = 422, description = "The body breaks a rule of its schema (named in the problem), or a rule of the operation", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "Malformed JSON body or query parameters", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "How many went back", body = Replayed),
        (status = 401, description = "Missing, unknown, expired or revoked key", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over the plugin's rate limit (or, for pulls, its concurrent pulls; for replays, its replays per minute); retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/inbox/dead/replay")]
pub async fn replay_dead(
    caller: PluginCaller,
    state: web::Data<AppState>,
    body: crate::body::Body<ReplayDead>,
) -> Result<HttpResponse> {
    let replayed = super::replay_dead(&state, &caller.plugin, body.ids.as_deref()).await?;
    Ok(HttpResponse::Ok().json(Replayed { replayed }))
}

/// Deliver a shop's past events again.
///
/// Events of `tenant` written from `from` on, of the types the plugin subscribed to, go
/// into its inbox as new deliveries (also those from before the installation). Up to
/// `limit` per call; continue with `next`.
#[utoipa::path(
    tag = "inbox",
    security(("plugin_key" = [])),
    request_body = ReplayLog,
    responses(
        (status = 422, description = "The body breaks a rule of its schema (named in the problem), or a rule of the operation", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "Malformed JSON body or query parameters", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "How many were queued", body = LogReplayed),
        (status = 401, description = "Missing, unknown, expired or revoked key", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over the plugin's rate limit (or, for pulls, its concurrent pulls; for replays, its replays per minute); retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not installed there with events:read", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/inbox/replay")]
pub async fn replay_log(
    caller: PluginCaller,
    state: web::Data<AppState>,
    body: crate::body::Body<ReplayLog>,
) -> Result<HttpResponse> {
    let replayed: LogReplayed =
        super::replay_log(&state, &caller.plugin, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(replayed))
}

/// Publish one of the plugin's declared event types into a shop's log.
///
/// Requires the `events:publish` scope in that shop; `data` is validated against the
/// schema the plugin registered. Other plugins subscribed to the type receive it.
#[utoipa::path(
    tag = "events",
    security(("plugin_key" = [])),
    request_body = PublishEvent,
    responses(
        (status = 400, description = "Malformed JSON body or query parameters", body = Problem, content_type = "application/problem+json"),
        (status = 202, description = "Written to the shop's log", body = Published),
        (status = 401, description = "Missing, unknown, expired or revoked key", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over the plugin's rate limit (or, for pulls, its concurrent pulls; for replays, its replays per minute); retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not installed there with events:publish, or a type the plugin did not declare", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Data not matching the type's registered schema, or a bad occurred_at or subject", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/events")]
pub async fn publish(
    caller: PluginCaller,
    state: web::Data<AppState>,
    body: crate::body::Body<PublishEvent>,
) -> Result<HttpResponse> {
    let published: Published =
        crate::ingest::publish::publish(&state, &caller.plugin, body.into_inner()).await?;
    Ok(HttpResponse::Accepted().json(published))
}
