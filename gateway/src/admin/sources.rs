//! Connected shops. Secrets are write-only: accepted on create and rotate, never returned
//! or logged. Rotation keeps the previous secret valid until a given time.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Duration, Utc};
use omnigate_schemas::api::{
    CreateSource, PollCredentials, Problem, SecretInfo, SourceDeliveries, SourceMode, SourcePage,
    SourceView, UpdateSource,
};

use super::Admin;
use crate::error::{Error, Result};
use crate::ids::{Tenant, source_id};
use crate::normalize::time;
use crate::providers::Credentials;
use crate::state::AppState;
use crate::store::{SecretValue, SourceRecord, StoredSecret};
use crate::verify;
use crate::verify::Scheme;

/// How long the previous secret stays valid after a rotation, unless told otherwise.
pub const DEFAULT_ROTATION_GRACE: Duration = Duration::hours(24);
const MAX_TOLERANCE_S: u64 = 86_400;

/// A BCP 47 language tag, as far as a shop's language needs one: a 2-3 letter language,
/// then subtags (`en-US`, `sr-Latn-RS`).
fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let language = parts.next().unwrap_or_default();
    tag.len() <= 35
        && (2..=3).contains(&language.len())
        && language.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn check_options(source: &SourceRecord) -> Result<()> {
    if let Some(locale) = &source.options.locale
        && !is_language_tag(locale)
    {
        return Err(Error::validation(format!(
            "options.locale {locale:?} is not a language tag (`uk`, `pl`, `en-US`)"
        )));
    }
    if source
        .options
        .tolerance_s
        .is_some_and(|t| t > MAX_TOLERANCE_S)
    {
        return Err(Error::validation(format!(
            "options.tolerance_s must be at most {MAX_TOLERANCE_S}"
        )));
    }
    let provider = crate::providers::of(source.provider);
    if source.options.key_encoding.is_some() && provider.scheme != Scheme::StandardWebhooks {
        return Err(Error::validation(
            "options.key_encoding applies to standard-webhooks and etsy sources only",
        ));
    }
    let o = &source.options;
    if (o.jwks.is_some() || o.jwks_url.is_some())
        && provider.credentials != Credentials::PublicKeysOrLegacySecret
    {
        return Err(Error::validation(
            "options.jwks and jwks_url apply to saleor sources only",
        ));
    }
    if let Some(jwks) = &o.jwks {
        crate::verify::jwks::parse(jwks)
            .map_err(|e| Error::validation(format!("options.jwks: {e}")))?;
    }
    if let Some(url) = &o.jwks_url {
        // `https` is required by the handlers, which know whether development allows http.
        crate::verify::jwks::check_url(url, true)?;
    }
    if let Some(cidrs) = &o.allow_cidrs {
        if provider.scheme != Scheme::UrlSecret {
            return Err(Error::validation(
                "options.allow_cidrs applies to unsigned sources (ozon, mercadolibre) only: \
                 a signed source is judged by its signature",
            ));
        }
        if cidrs.is_empty() || cidrs.len() > 32 {
            return Err(Error::validation(
                "options.allow_cidrs holds 1 to 32 networks (leave it out to allow any sender)",
            ));
        }
        crate::peer::parse_cidrs(cidrs)
            .map_err(|e| Error::validation(format!("options.allow_cidrs: {e}")))?;
    }
    check_poll_options(source)?;
    check_api(source)?;
    check_saleor_scheme(source)?;
    if source.name.as_ref().is_some_and(|n| n.len() > 200) {
        return Err(Error::validation("name must be at most 200 characters"));
    }
    Ok(())
}

/// Poll options belong to poll sources, within their bounds.
fn check_poll_options(source: &SourceRecord) -> Result<()> {
    let o = &source.options;
    let polled = crate::providers::of(source.provider).credentials == Credentials::Api;
    let given = o.api_base.is_some()
        || o.token_url.is_some()
        || o.poll_interval_secs.is_some()
        || o.start_from.is_some();
    if given && !polled {
        return Err(Error::validation(
            "options.api_base, token_url, poll_interval_secs and start_from apply to poll \
             sources (allegro, prom, rozetka) only",
        ));
    }
    if o.poll_interval_secs
        .is_some_and(|s| !(1..=3600).contains(&s))
    {
        return Err(Error::validation(
            "options.poll_interval_secs must be 1 to 3600",
        ));
    }
    if let Some(t) = &o.start_from
        && time::rfc3339(t).is_none()
    {
        return Err(Error::validation(format!(
            "options.start_from {t:?} is not an RFC 3339 time"
        )));
    }
    for url in [&o.api_base, &o.token_url].into_iter().flatten() {
        // `https` is required by the handlers, which know whether tests allow http.
        crate::poll::check_url(url, true)
            .map_err(|e| Error::validation(format!("options: {e}")))?;
    }
    if polled {
        let credentials = poll_credentials(source)?;
        let needed = match source.provider {
            omnigate_schemas::api::Provider::Prom => vec![("token", &credentials.token)],
            omnigate_schemas::api::Provider::Rozetka => vec![
                ("username", &credentials.username),
                ("password", &credentials.password),
            ],
            _ => vec![
                ("client_id", &credentials.client_id),
                ("client_secret", &credentials.client_secret),
                ("refresh_token", &credentials.refresh_token),
            ],
        };
        let missing: Vec<&str> = needed
            .into_iter()
            .filter(|(_, v)| v.as_deref().is_none_or(|v| v.trim().is_empty()))
            .map(|(k, _)| k)
            .collect();
        if !missing.is_empty() {
            return Err(Error::validation(format!(
                "credentials.{} required for {} sources",
                missing.join(", credentials."),
                source.provider
            )));
        }
    }
    Ok(())
}

/// A poll source's credentials, kept as its one secret.
fn poll_credentials(source: &SourceRecord) -> Result<PollCredentials> {
    let Some(secret) = source.secrets.first() else {
        return Err(Error::validation(format!(
            "credentials are required for {} sources (allegro: client_id, client_secret, refresh_token; prom: token; rozetka: username, password)",
            source.provider
        )));
    };
    serde_json::from_str(secret.value.expose())
        .map_err(|_| Error::validation("credentials cannot be read"))
}

/// `options.api_base` and `token_url` are `https`, unless this gateway runs with
/// `OMNIGATE_POLL_ALLOW_HTTP` (local fakes).
fn check_poll_urls(source: &SourceRecord, state: &AppState) -> Result<()> {
    let o = &source.options;
    let api_base = o.api.as_ref().and_then(|a| a.base_url.as_ref());
    for url in [o.api_base.as_ref(), o.token_url.as_ref(), api_base]
        .into_iter()
        .flatten()
    {
        crate::poll::check_url(url, state.settings.poll_allow_http)
            .map_err(|e| Error::validation(format!("options: {e}")))?;
    }
    Ok(())
}

/// Which scheme verifies a source, decided once on save: a Saleor source has public keys
/// or, only when it opted in, the legacy HMAC secret; every other source has a secret.
fn check_saleor_scheme(source: &SourceRecord) -> Result<()> {
    let o = &source.options;
    if crate::providers::of(source.provider).credentials == Credentials::Api {
        return Ok(());
    }
    let has_keys = o.jwks.is_some() || o.jwks_url.is_some();
    let legacy = o.legacy_hmac == Some(true);
    if crate::providers::of(source.provider).credentials == Credentials::Secret {
        if o.legacy_hmac.is_some() {
            return Err(Error::validation(
                "options.legacy_hmac applies to saleor sources only",
            ));
        }
        if source.secrets.is_empty() {
            return Err(Error::validation(format!(
                "secret is required for {} sources",
                source.provider
            )));
        }
        return Ok(());
    }
    match (has_keys, legacy) {
        (true, true) => Err(Error::validation(
            "options.legacy_hmac cannot be combined with options.jwks or jwks_url: \
             a source verified by public keys never accepts the shared-secret HMAC",
        )),
        (true, false) if !source.secrets.is_empty() => Err(Error::validation(
            "a saleor source verified by its JWKS takes no secret \
             (the legacy HMAC needs options.legacy_hmac: true and no JWKS)",
        )),
        (false, true) if source.secrets.is_empty() => Err(Error::validation(
            "options.legacy_hmac needs the app's secret key as secret",
        )),
        (false, false) => Err(Error::validation(
            "a saleor source needs options.jwks or options.jwks_url \
             (or options.legacy_hmac: true with a secret, for Saleor's deprecated HMAC)",
        )),
        _ => Ok(()),
    }
}

const CREDENTIALS_FOR: &str = "credentials are for poll sources (allegro, prom, rozetka) \
     and for thin sources whose resources the gateway reads (bigcommerce, ecwid, etsy, \
     mercadolibre, standard-webhooks); this provider signs with a secret";

/// A thin source's API credentials as they are kept (`None`: none given, which ends the
/// enrichment).
fn api_credentials(credentials: PollCredentials) -> Result<Option<SecretValue>> {
    if credentials == PollCredentials::default() {
        return Ok(None);
    }
    let json = serde_json::to_string(&credentials).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(Some(SecretValue::new(json)))
}

/// `options.api` and `credentials` of a thin source: what its provider's API needs.
fn check_api(source: &SourceRecord) -> Result<()> {
    let api = source.options.api.as_ref();
    let enrichable = crate::normalize::enrichable(source.provider);
    if api.is_some() && !enrichable {
        return Err(Error::validation(
            "options.api applies to thin sources whose resources the gateway reads \
             (bigcommerce, ecwid, etsy, mercadolibre, standard-webhooks bridges)",
        ));
    }
    if let Some(api) = api {
        if api.per_minute.is_some_and(|n| !(1..=6000).contains(&n)) {
            return Err(Error::validation(
                "options.api.per_minute must be 1 to 6000",
            ));
        }
        if let Some(url) = &api.base_url {
            crate::poll::check_url(url, true)
                .map_err(|e| Error::validation(format!("options.api.base_url: {e}")))?;
        }
        if let Some(id) = &api.shop_id
            && (id.is_empty() || id.len() > 20 || !id.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(Error::validation(
                "options.api.shop_id is the shop's number",
            ));
        }
        if let Some(id) = &api.store_id
            && (id.is_empty() || id.len() > 20 || !id.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(Error::validation(
                "options.api.store_id is the store's number",
            ));
        }
        if let Some(hash) = &api.store_hash
            && (hash.is_empty()
                || hash.len() > 64
                || !hash.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            return Err(Error::validation(
                "options.api.store_hash is the store hash of the API path (letters and digits)",
            ));
        }
    }
    let Some(stored) = &source.api_credentials else {
        return Ok(());
    };
    let credentials: PollCredentials = serde_json::from_str(stored.expose())
        .map_err(|_| Error::validation("credentials cannot be read"))?;
    let needed: &[(&str, &Option<String>)] = match source.provider {
        omnigate_schemas::api::Provider::Etsy => &[
            ("client_id", &credentials.client_id),
            ("token", &credentials.token),
        ],
        // A refresh token keeps the six-hour access tokens fresh.
        omnigate_schemas::api::Provider::MercadoLibre if credentials.refresh_token.is_some() => &[
            ("client_id", &credentials.client_id),
            ("client_secret", &credentials.client_secret),
            ("refresh_token", &credentials.refresh_token),
        ],
        _ => &[("token", &credentials.token)],
    };
    let missing: Vec<&str> = needed
        .iter()
        .filter(|(_, v)| v.as_deref().is_none_or(|v| v.trim().is_empty()))
        .map(|(k, _)| *k)
        .collect();
    if !missing.is_empty() {
        return Err(Error::validation(format!(
            "credentials.{} required to read {} resources",
            missing.join(", credentials."),
            source.provider
        )));
    }
    if source.provider == omnigate_schemas::api::Provider::Bigcommerce
        && api.and_then(|a| a.store_hash.as_ref()).is_none()
    {
        return Err(Error::validation(
            "options.api.store_hash is required to read bigcommerce resources",
        ));
    }
    if source.provider == omnigate_schemas::api::Provider::StandardWebhooks
        && api.and_then(|a| a.base_url.as_ref()).is_none()
    {
        return Err(Error::validation(
            "options.api.base_url (the Medusa backend's URL) is required to read the \
             resources of a standard-webhooks bridge",
        ));
    }
    if source.provider == omnigate_schemas::api::Provider::Ecwid
        && api.and_then(|a| a.store_id.as_ref()).is_none()
    {
        return Err(Error::validation(
            "options.api.store_id is required to read ecwid resources",
        ));
    }
    Ok(())
}

/// A new source from an admin request.
pub fn create(req: CreateSource, now: DateTime<Utc>) -> Result<SourceRecord> {
    let tenant = Tenant::parse(req.tenant)?;
    let options = req.options.unwrap_or_default();
    let descriptor = crate::providers::of(req.provider);
    let unsigned = descriptor.scheme == Scheme::UrlSecret;
    let polled = descriptor.credentials == Credentials::Api;
    match (req.mode, polled) {
        (Some(SourceMode::Push), true) => {
            return Err(Error::validation(format!(
                "{} sources are polled: mode must be poll (or left out)",
                req.provider
            )));
        }
        (Some(SourceMode::Poll), false) => {
            return Err(Error::validation(format!(
                "{} sources push webhooks: mode poll is for allegro, prom and rozetka",
                req.provider
            )));
        }
        _ => {}
    }
    if polled && req.secret.is_some() {
        return Err(Error::validation(
            "a poll source takes credentials, not a secret",
        ));
    }
    let enriched = crate::normalize::enrichable(req.provider);
    if !polled && !enriched && req.credentials.is_some() {
        return Err(Error::validation(CREDENTIALS_FOR));
    }
    let (poll_credentials, api_credentials) = match req.credentials {
        Some(c) if polled => (Some(c), None),
        other => (None, other.map(api_credentials).transpose()?.flatten()),
    };
    let secret = match (req.secret, poll_credentials) {
        // A poll source keeps its credentials as its one secret, sealed like the others.
        (_, Some(credentials)) => {
            Some(serde_json::to_string(&credentials).map_err(|e| Error::Internal(e.to_string()))?)
        }
        // An unsigned provider is given a URL secret when none was chosen.
        (None, None) if unsigned => Some(verify::url_secret::generate()),
        (secret, None) => secret,
    };
    let source = SourceRecord {
        id: source_id::generate(),
        tenant: tenant.into_inner(),
        provider: req.provider,
        name: req.name.filter(|n| !n.trim().is_empty()),
        options,
        secrets: secret
            .iter()
            .map(|secret| StoredSecret {
                value: SecretValue::new(secret.clone()),
                created_at: now,
                expires_at: None,
            })
            .collect(),
        api_credentials,
        created_at: now,
        updated_at: now,
    };
    // Which scheme first: "this source takes no secret" says more than "too short".
    check_options(&source)?;
    if let Some(secret) = secret.as_ref().filter(|_| !polled) {
        verify::check_secret(
            crate::providers::of(source.provider).scheme,
            source.options.key_encoding.unwrap_or_default(),
            secret,
        )?;
    }
    Ok(source)
}

/// Applies a PATCH. A new secret becomes current; the previous current one expires at
/// `expires_at` (default now + 24 h). Expired secrets are dropped.
pub fn update(
    mut source: SourceRecord,
    req: UpdateSource,
    now: DateTime<Utc>,
) -> Result<SourceRecord> {
    if let Some(name) = req.name {
        source.name = Some(name).filter(|n| !n.trim().is_empty());
    }
    if let Some(options) = req.options {
        // Moving a Saleor source to its JWKS retires the legacy secret at once: keeping it
        // would keep the downgrade open.
        if options.legacy_hmac != Some(true)
            && (options.jwks.is_some() || options.jwks_url.is_some())
        {
            source.secrets.clear();
        }
        source.options = options;
    }
    if let Some(credentials) = req.credentials.clone()
        && crate::normalize::enrichable(source.provider)
    {
        // New API credentials replace the old ones; empty ones end the enrichment.
        source.api_credentials = api_credentials(credentials)?;
    } else if let Some(credentials) = req.credentials {
        if crate::providers::of(source.provider).credentials != Credentials::Api {
            return Err(Error::validation(CREDENTIALS_FOR));
        }
        // New credentials (a new authorization) replace the old ones at once.
        source.secrets = vec![StoredSecret {
            value: SecretValue::new(
                serde_json::to_string(&credentials).map_err(|e| Error::Internal(e.to_string()))?,
            ),
            created_at: now,
            expires_at: None,
        }];
    }
    let expires_at = req
        .expires_at
        .as_deref()
        .map(|t| {
            time::rfc3339(t).ok_or_else(|| Error::validation("expires_at must be an RFC 3339 time"))
        })
        .transpose()?;
    match (req.secret, expires_at) {
        (Some(secret), expires_at) => {
            verify::check_secret(
                crate::providers::of(source.provider).scheme,
                source.options.key_encoding.unwrap_or_default(),
                &secret,
            )?;
            let until = expires_at.unwrap_or(now + DEFAULT_ROTATION_GRACE);
            for s in &mut source.secrets {
                if s.expires_at.is_none_or(|at| at > until) {
                    s.expires_at = Some(until);
                }
            }
            source.secrets.insert(
                0,
                StoredSecret {
                    value: SecretValue::new(secret),
                    created_at: now,
                    expires_at: None,
                },
            );
        }
        (None, Some(_)) => {
            return Err(Error::validation(
                "expires_at is only meaningful with a new secret",
            ));
        }
        (None, None) => {}
    }
    source
        .secrets
        .retain(|s| s.expires_at.is_none_or(|at| at > now));
    source.updated_at = now;
    check_options(&source)?;
    Ok(source)
}

/// The API view: no secret values, only the secrets that verify now. An unsigned source's
/// path ends in `{url_secret}`: see [`view_with_secret`].
pub fn view(source: &SourceRecord, now: DateTime<Utc>) -> SourceView {
    let unsigned = crate::providers::of(source.provider).scheme == Scheme::UrlSecret;
    SourceView {
        id: source.id.clone(),
        tenant: source.tenant.clone(),
        provider: source.provider,
        name: source.name.clone(),
        webhook_path: match unsigned {
            true => format!("/v1/webhooks/{}/{{url_secret}}", source.id),
            false => format!("/v1/webhooks/{}", source.id),
        },
        mode: match crate::poller::is_polled(source) {
            true => SourceMode::Poll,
            false => SourceMode::Push,
        },
        poll: None,
        enrichment: None,
        deliveries: None,
        webhook_url: None,
        options: source.options.clone(),
        secrets: source
            .secrets
            .iter()
            .filter(|s| s.expires_at.is_none_or(|at| at > now))
            .map(|s| SecretInfo {
                created_at: time::format(s.created_at),
                expires_at: s.expires_at.map(time::format),
            })
            .collect(),
        created_at: time::format(source.created_at),
        updated_at: time::format(source.updated_at),
    }
}

/// The view answered when a secret was just set: an unsigned source's webhook path then
/// carries its current URL secret (the only time it is shown).
pub fn view_with_secret(source: &SourceRecord, now: DateTime<Utc>) -> SourceView {
    let mut view = view(source, now);
    if crate::providers::of(source.provider).scheme == Scheme::UrlSecret
        && let Some(current) = source.secrets.first()
    {
        view.webhook_path = format!("/v1/webhooks/{}/{}", source.id, current.value.expose());
    }
    view
}

/// `options.jwks_url` is `https`, unless this gateway runs with `--jwks-allow-http`.
fn check_jwks_url(source: &SourceRecord, state: &AppState) -> Result<()> {
    match &source.options.jwks_url {
        Some(url) => Ok(crate::verify::jwks::check_url(
            url,
            state.settings.jwks_allow_http,
        )?),
        None => Ok(()),
    }
}

async fn load(state: &AppState, id: &str) -> Result<SourceRecord> {
    state
        .store
        .get_source(id)
        .await?
        .ok_or_else(|| Error::SourceNotFound(id.to_string()))
}

/// Connect a shop.
///
/// The secret is the provider's signing secret, exactly as the provider shows it. It is
/// never returned. Point the provider's webhook at `webhook_path`. A provider that signs
/// nothing (`ozon`, `mercadolibre`) gets a secret in its URL instead (made here unless
/// given): this answer's `webhook_path` is the only one that shows it.
#[utoipa::path(
    tag = "sources",
    security(("admin_token" = [])),
    request_body = CreateSource,
    responses(
        (status = 201, description = "Created", body = SourceView),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid tenant, secret or options", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/sources")]
pub async fn create_source(
    _: Admin,
    state: web::Data<AppState>,
    body: crate::body::Body<CreateSource>,
) -> Result<HttpResponse> {
    let now = state.now();
    let source = create(body.into_inner(), now)?;
    check_jwks_url(&source, &state)?;
    check_poll_urls(&source, &state)?;
    state.store.put_source(&source).await?;
    state.forget_source(&source.id);
    tracing::info!(source_id = %source.id, tenant = %source.tenant, provider = %source.provider, "source created");
    let mut shown = view_with_secret(&source, now);
    with_url(&state, &mut shown);
    Ok(HttpResponse::Created().json(shown))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SourceQuery {
    /// Only this tenant's sources.
    #[param(max_length = 128)]
    pub tenant: Option<String>,
    /// Only this provider's.
    pub provider: Option<omnigate_schemas::api::Provider>,
    /// At most this many (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// A `next` from an earlier page: the sources after it.
    #[param(max_length = 200)]
    pub after: Option<String>,
}

/// List the connected shops, in id order, a page at a time.
///
/// Each as `GET /v1/sources/{id}` shows it, without the poll and enrichment progress
/// (read one source for those). Pass `next` as `after` until `done`.
#[utoipa::path(
    tag = "sources",
    security(("admin_token" = [])),
    params(SourceQuery),
    responses(
        (status = 200, description = "Sources, in id order", body = SourcePage),
        (status = 400, description = "Malformed query parameters", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/sources")]
pub async fn list_sources(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<SourceQuery>,
) -> Result<HttpResponse> {
    let q = query.into_inner();
    if q.tenant.as_ref().is_some_and(|t| t.len() > 128) {
        return Err(Error::InvalidQuery(
            "tenant is at most 128 characters".into(),
        ));
    }
    let window = super::list::Window {
        limit: q.limit,
        after: q.after,
    };
    let limit = window.limit()?;
    let now = state.now();
    let ids = state.store.source_ids().await?;
    let (store, tenant, provider) = (&state.store, q.tenant.as_deref(), q.provider);
    let page = super::list::page(ids, window.after.as_deref(), limit, |id| async move {
        let source = match store.get_source(&id).await {
            Ok(source) => source,
            Err(e @ crate::store::StoreError::Unavailable(_)) => return Err(e.into()),
            // One record that cannot be read (a secret sealed with a retired key) does not
            // keep the others from being listed.
            Err(e) => {
                tracing::warn!(source_id = %id, error = %e, "a source cannot be read; left out of the list");
                None
            }
        };
        Ok(source
            .filter(|s| tenant.is_none_or(|t| t == s.tenant))
            .filter(|s| provider.is_none_or(|p| p == s.provider))
            .map(|s| view(&s, now)))
    })
    .await?;
    let mut sources = page.items;
    with_deliveries(&state, &mut sources).await;
    sources.iter_mut().for_each(|s| with_url(&state, s));
    Ok(HttpResponse::Ok().json(SourcePage {
        sources,
        next: page.next,
        done: page.done,
    }))
}

/// The full webhook URL, when the gateway is told its public address.
fn with_url(state: &AppState, view: &mut SourceView) {
    if let Some(base) = &state.settings.public_url {
        // The setting is kept without a trailing `/`.
        view.webhook_url = Some(format!("{base}{}", view.webhook_path));
    }
}

/// Adds each source's last hour of deliveries. Counts that cannot be read leave the field
/// out rather than fail the answer: they are a view, not the source.
async fn with_deliveries(state: &AppState, views: &mut [SourceView]) {
    let ids: Vec<String> = views.iter().map(|v| v.id.clone()).collect();
    let tallies = match crate::tally::last_hour(state.store.as_ref(), &ids, state.now()).await {
        Ok(tallies) => tallies,
        Err(e) => {
            tracing::warn!(error = %e, "delivery counts cannot be read");
            return;
        }
    };
    for (view, tally) in views.iter_mut().zip(tallies) {
        view.deliveries = Some(SourceDeliveries {
            window_minutes: crate::store::TALLY_MINUTES as u32,
            outcomes: tally.outcomes,
            last_delivery_at: tally.last_ms.and_then(time::unix_millis).map(time::format),
        });
    }
}

/// Read a source (without its secrets).
///
/// Shows when each current secret was made and until when an old one still verifies, the
/// webhook path, and for poll and enriched sources how reading the provider's API is doing.
#[utoipa::path(
    tag = "sources",
    security(("admin_token" = [])),
    params(("id" = String, Path, description = "Source id")),
    responses(
        (status = 200, description = "The source", body = SourceView),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such source", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/sources/{id}")]
pub async fn get_source(
    _: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse> {
    let source = load(&state, &id).await?;
    let mut shown = view(&source, state.now());
    if crate::poller::is_polled(&source) {
        let st = state.store.poll_state(&source.id).await?;
        let interval = source
            .options
            .poll_interval_secs
            .unwrap_or(crate::poller::DEFAULT_INTERVAL_SECS);
        shown.poll = Some(crate::poller::progress(st.as_ref(), interval));
    }
    if source.api_credentials.is_some() {
        shown.enrichment = Some(crate::enricher::progress(&state, &source.id).await?);
    }
    with_deliveries(&state, std::slice::from_mut(&mut shown)).await;
    with_url(&state, &mut shown);
    Ok(HttpResponse::Ok().json(shown))
}

/// Rename a source, change its options, or rotate its secret.
///
/// A new `secret` becomes current at once; the previous one keeps verifying until
/// `expires_at` (default: 24 hours from now), so the provider can be switched over
/// without losing deliveries.
#[utoipa::path(
    tag = "sources",
    security(("admin_token" = [])),
    params(("id" = String, Path, description = "Source id")),
    request_body = UpdateSource,
    responses(
        (status = 400, description = "Malformed JSON body or query parameters", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "Updated", body = SourceView),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such source", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid secret, time or options", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/sources/{id}")]
pub async fn update_source(
    _: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: crate::body::Body<UpdateSource>,
) -> Result<HttpResponse> {
    let now = state.now();
    let rotated = body.secret.is_some();
    let source = update(load(&state, &id).await?, body.into_inner(), now)?;
    check_jwks_url(&source, &state)?;
    check_poll_urls(&source, &state)?;
    state.store.put_source(&source).await?;
    state.forget_source(&source.id);
    tracing::info!(source_id = %source.id, rotated, "source updated");
    let mut shown = match rotated {
        true => view_with_secret(&source, now),
        false => view(&source, now),
    };
    with_url(&state, &mut shown);
    Ok(HttpResponse::Ok().json(shown))
}

/// Disconnect a shop. Its events stay in the tenant log.
///
/// Its webhook URL answers 404 from then on, and a poll source stops being read. Its
/// quarantined payloads stay until discarded.
#[utoipa::path(
    tag = "sources",
    security(("admin_token" = [])),
    params(("id" = String, Path, description = "Source id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such source", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/sources/{id}")]
pub async fn delete_source(
    _: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse> {
    if !state.store.delete_source(&id).await? {
        return Err(Error::SourceNotFound(id.into_inner()));
    }
    state.forget_source(&id);
    tracing::info!(source_id = %id, "source deleted");
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use omnigate_schemas::api::{Provider, SourceOptions};

    const OLD: &str = "shpss_old_0123456789abcdef";
    const NEW: &str = "shpss_new_0123456789abcdef";

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 14, 9, 0, 0).unwrap()
    }

    fn shopify(secret: &str) -> CreateSource {
        CreateSource {
            tenant: "shop-a".into(),
            provider: Provider::Shopify,
            secret: Some(secret.into()),
            name: None,
            options: None,
            mode: None,
            credentials: None,
        }
    }

    #[test]
    fn views_never_contain_secrets() {
        let s = create(shopify("super-secret-value"), t0()).unwrap();
        let json = serde_json::to_string(&view(&s, t0())).unwrap();
        assert!(!json.contains("super-secret-value"));
        assert!(!format!("{s:?}").contains("super-secret-value"));
        assert_eq!(
            view(&s, t0()).webhook_path,
            format!("/v1/webhooks/{}", s.id)
        );
    }

    #[test]
    fn rotation_keeps_the_old_secret_until_it_expires() {
        let s = create(shopify(OLD), t0()).unwrap();
        let patch = UpdateSource {
            secret: Some(NEW.into()),
            ..Default::default()
        };
        let s = update(s, patch, t0()).unwrap();
        assert_eq!(s.valid_secrets(t0()), [NEW, OLD]);
        let later = t0() + Duration::hours(23);
        assert_eq!(s.valid_secrets(later), [NEW, OLD]);
        let after = t0() + Duration::hours(24);
        assert_eq!(s.valid_secrets(after), [NEW]);
        assert_eq!(view(&s, t0()).secrets.len(), 2);
        assert_eq!(view(&s, after).secrets.len(), 1);
    }

    #[test]
    fn rotation_with_an_explicit_expiry() {
        let s = create(shopify(OLD), t0()).unwrap();
        let patch = UpdateSource {
            secret: Some(NEW.into()),
            expires_at: Some("2025-03-14T10:00:00Z".into()),
            ..Default::default()
        };
        let s = update(s, patch, t0()).unwrap();
        assert_eq!(s.valid_secrets(t0() + Duration::minutes(59)), [NEW, OLD]);
        assert_eq!(s.valid_secrets(t0() + Duration::minutes(60)), [NEW]);
        // Expired secrets are dropped at the next change.
        let s = update(s, UpdateSource::default(), t0() + Duration::hours(2)).unwrap();
        assert_eq!(s.secrets.len(), 1);
    }

    #[test]
    fn bad_input_is_refused() {
        let mut bad_tenant = shopify(OLD);
        bad_tenant.tenant = "shop a/../".into();
        assert!(create(bad_tenant, t0()).is_err());
        assert!(create(shopify(""), t0()).is_err());
        let mut wrong_option = shopify(OLD);
        wrong_option.options = Some(SourceOptions {
            key_encoding: Some(omnigate_schemas::api::KeyEncoding::Raw),
            tolerance_s: None,
            ..Default::default()
        });
        assert!(create(wrong_option, t0()).is_err());
        for locale in ["", "english", "en_US", "e", "en-", "uk-UA-toolongsubtag"] {
            let mut bad_locale = shopify(OLD);
            bad_locale.options = Some(SourceOptions {
                locale: Some(locale.into()),
                ..Default::default()
            });
            assert!(create(bad_locale, t0()).is_err(), "{locale:?}");
        }
        for locale in ["uk", "pl", "en-US", "sr-Latn-RS"] {
            let mut good = shopify(OLD);
            good.options = Some(SourceOptions {
                locale: Some(locale.into()),
                ..Default::default()
            });
            assert!(create(good, t0()).is_ok(), "{locale:?}");
        }
        let s = create(shopify(OLD), t0()).unwrap();
        let only_expiry = UpdateSource {
            expires_at: Some("2025-03-14T10:00:00Z".into()),
            ..Default::default()
        };
        assert!(update(s, only_expiry, t0()).is_err());
    }

    #[test]
    fn short_secrets_are_refused_for_every_hmac_provider() {
        for provider in [
            Provider::Shopify,
            Provider::Woocommerce,
            Provider::Stripe,
            Provider::Github,
            Provider::Bigcommerce,
            Provider::Ecwid,
        ] {
            let mut req = shopify("fifteen-bytes!!");
            req.provider = provider;
            let err = create(req, t0()).unwrap_err().to_string();
            assert!(err.contains("at least 16 bytes"), "{provider}: {err}");
            let mut req = shopify("sixteen-bytes!!!");
            req.provider = provider;
            assert!(create(req, t0()).is_ok(), "{provider}");
            let mut req = shopify("x");
            req.provider = provider;
            req.secret = None;
            assert!(
                create(req, t0())
                    .unwrap_err()
                    .to_string()
                    .contains("secret is required")
            );
        }
        // Standard Webhooks: the decoded key counts, not the text.
        let mut req = shopify("whsec_MTIzNDU2Nzg5MDEy"); // 12 bytes once decoded
        req.provider = Provider::StandardWebhooks;
        assert!(create(req, t0()).is_err());
        let s = create(shopify(OLD), t0()).unwrap();
        let short = UpdateSource {
            secret: Some("short".into()),
            ..Default::default()
        };
        assert!(update(s, short, t0()).is_err());
    }

    fn saleor(secret: Option<&str>, options: serde_json::Value) -> CreateSource {
        CreateSource {
            tenant: "shop-s".into(),
            provider: Provider::Saleor,
            secret: secret.map(str::to_string),
            name: None,
            options: Some(serde_json::from_value(options).unwrap()),
            mode: None,
            credentials: None,
        }
    }

    #[test]
    fn saleor_is_either_jwks_or_an_explicit_legacy_hmac_never_both() {
        let jwks = crate::sign::saleor_jwks(crate::samples::SALEOR_TEST_KEY).unwrap();
        let url = "https://shop.example/.well-known/jwks.json";
        // JWKS without a secret: fine; a placeholder secret beside it is refused.
        let s = create(saleor(None, serde_json::json!({"jwks": jwks})), t0()).unwrap();
        assert!(s.secrets.is_empty());
        assert!(create(saleor(None, serde_json::json!({"jwks_url": url})), t0()).is_ok());
        let err = create(
            saleor(Some(OLD), serde_json::json!({"jwks_url": url})),
            t0(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("takes no secret"), "{err}");
        // The legacy HMAC: only when asked for, with a secret, and without keys.
        let legacy = serde_json::json!({"legacy_hmac": true});
        assert!(create(saleor(Some(OLD), legacy.clone()), t0()).is_ok());
        assert!(create(saleor(None, legacy), t0()).is_err());
        let both = serde_json::json!({"legacy_hmac": true, "jwks_url": url});
        let err = create(saleor(Some(OLD), both), t0())
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot be combined"), "{err}");
        // Neither: refused, naming both ways.
        let err = create(saleor(Some(OLD), serde_json::json!({})), t0())
            .unwrap_err()
            .to_string();
        assert!(err.contains("jwks") && err.contains("legacy_hmac"), "{err}");
        // Not a Saleor option elsewhere.
        let mut req = shopify(OLD);
        req.options =
            Some(serde_json::from_value(serde_json::json!({"legacy_hmac": true})).unwrap());
        assert!(create(req, t0()).is_err());
        // Moving a legacy source to its JWKS retires the secret.
        let s = create(
            saleor(Some(OLD), serde_json::json!({"legacy_hmac": true})),
            t0(),
        )
        .unwrap();
        let to_jwks = UpdateSource {
            options: Some(serde_json::from_value(serde_json::json!({"jwks_url": url})).unwrap()),
            ..Default::default()
        };
        let s = update(s, to_jwks, t0()).unwrap();
        assert!(s.valid_secrets(t0()).is_empty());
    }
}
