//! Registering plugins, rotating and revoking their keys, installing them in shops.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use omnigate_schemas::api::{
    CreateInstallation, CreatePlugin, DeadLetterPage, InboxStats, InstallationPage,
    InstallationView, KeyCreated, PluginCreated, PluginPage, PluginUpdated, PluginView, Problem,
    ReplayDead, Replayed, RotateKey, SigningSecretCreated, UpdatePlugin,
};

use super::Admin;
use crate::error::{Error, Result};
use crate::plugins::PluginCaller;
use crate::plugins::registry;
use crate::state::AppState;
use crate::store::PluginRecord;

async fn load(state: &AppState, id: &str) -> Result<PluginRecord> {
    state
        .store
        .get_plugin(id)
        .await?
        .ok_or_else(|| Error::not_found(format!("plugin {id:?}")))
}

/// How often a change is applied again on a plugin that moved under it.
const CHANGE_ATTEMPTS: usize = 5;

fn changed_concurrently(id: &str) -> Error {
    Error::Conflict(format!(
        "plugin {id:?} kept changing while this call changed it; try again"
    ))
}

/// What the namespaces `event_types` name outside the catalog declare: `plugin`'s own from
/// its record, the others' from the plugins that claimed them.
async fn declared(
    state: &AppState,
    plugin: &PluginRecord,
    event_types: &[String],
) -> Result<registry::Declared> {
    let own = registry::namespaces(plugin);
    let mut out = registry::Declared::new();
    for ns in registry::foreign_namespaces(event_types) {
        let publishes = if own.contains(&ns) {
            plugin.publishes.clone()
        } else {
            let Some(owner) = state.store.namespace_owner(&ns).await? else {
                continue;
            };
            match state.store.get_plugin(&owner).await? {
                Some(p) => p.publishes,
                None => continue,
            }
        };
        let types = publishes
            .into_iter()
            .map(|p| p.event_type)
            .filter(|t| registry::namespace(t) == ns)
            .collect();
        out.insert(ns, types);
    }
    Ok(out)
}

/// Claims the namespaces `plugin` publishes in: a conflict names the owner.
/// Claims the namespaces `plugin` publishes in: a conflict names the owner. Returns those
/// that were nobody's before, to give back if the change is then not saved.
async fn claim(state: &AppState, plugin: &PluginRecord) -> Result<Vec<String>> {
    let wanted = registry::namespaces(plugin);
    let mut fresh = Vec::new();
    for ns in &wanted {
        if state.store.namespace_owner(ns).await?.is_none() {
            fresh.push(ns.clone());
        }
    }
    // A namespace belongs to the first plugin that publishes in it, so no rival installed
    // in the same shop can write events the others trust as that plugin's.
    let taken = state.store.claim_namespaces(&plugin.id, &wanted).await?;
    if let Some((namespace, owner)) = taken.first() {
        return Err(Error::Conflict(format!(
            "the namespace {namespace:?} belongs to plugin {owner}; publish in a namespace of your own"
        )));
    }
    Ok(fresh)
}

/// Gives back namespaces claimed for a change that was not saved, so they do not stay
/// with a plugin that does not publish there (or does not exist).
async fn unclaim(state: &AppState, plugin_id: &str, fresh: &[String]) {
    if let Err(e) = state.store.release_namespaces(plugin_id, fresh).await {
        tracing::warn!(plugin_id, error = %e, "claimed namespaces could not be given back");
    }
}

/// Register a plugin.
///
/// The answer holds the plugin's API key: it is shown only here and stored hashed.
#[utoipa::path(
    tag = "plugins",
    security(("admin_token" = [])),
    request_body = CreatePlugin,
    responses(
        (status = 400, description = "Malformed JSON body or query parameters", body = Problem, content_type = "application/problem+json"),
        (status = 201, description = "Registered; keep the `api_key` (and a push plugin's `signing_secret`): they are shown only here", body = PluginCreated),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A published namespace belongs to another plugin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A push URL that is not https or not public, invalid type names or schemas, a published type in a canonical family (`order`, `shipment`, `refund`, `return`, `customer`, `stock`, `review`, `message`, `dispute`), or a subscription that matches no type of the catalog or of any plugin's declarations (the detail names it and the closest known type)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/plugins")]
pub async fn create_plugin(
    _: Admin,
    state: web::Data<AppState>,
    body: crate::body::Body<CreatePlugin>,
) -> Result<HttpResponse> {
    let now = state.now();
    let allow_private = state.settings.push_allow_private;
    let (plugin, api_key, signing_secret) =
        registry::create(body.into_inner(), allow_private, now)?;
    let types = &plugin.event_types;
    registry::check_subscriptions(types, &declared(&state, &plugin, types).await?)?;
    let fresh = claim(&state, &plugin).await?;
    if let Err(e) = state.store.put_plugin(&plugin).await {
        unclaim(&state, &plugin.id, &fresh).await;
        return Err(e.into());
    }
    state
        .store
        .put_key(&plugin.keys[0].hash, &plugin.id)
        .await?;
    tracing::info!(plugin_id = %plugin.id, name = %plugin.name, "plugin registered");
    Ok(HttpResponse::Created().json(PluginCreated {
        plugin: registry::view(&plugin, now),
        api_key,
        signing_secret,
    }))
}

/// Read a plugin (without its keys' values).
///
/// Beside the registration: what its inbox holds (waiting, in flight, dead letters) and,
/// for a push plugin, how each endpoint is doing (healthy, failing or paused; failures in
/// a row, the last error and the last success).
#[utoipa::path(
    tag = "plugins",
    security(("admin_token" = [])),
    params(("id" = String, Path, description = "Plugin id")),
    responses(
        (status = 200, description = "The plugin", body = PluginView),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such plugin", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/plugins/{id}")]
pub async fn get_plugin(
    _: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse> {
    let plugin = load(&state, &id).await?;
    let depth = state.store.inbox_depth(&plugin.id).await?;
    let now = state.now();
    let mut view = registry::view(&plugin, now);
    view.inbox = Some(InboxStats {
        waiting: depth.waiting,
        in_flight: depth.in_flight,
        dead_letters: depth.dead,
    });
    if let (Some(delivery), Some(push)) = (view.delivery.as_mut(), plugin.push.as_ref()) {
        let health = state.store.push_health(&plugin.id).await?;
        let breaker = crate::push::health::Breaker::from_settings(&state.settings);
        delivery.endpoints = crate::push::health::statuses(push, health, &breaker, now);
    }
    Ok(HttpResponse::Ok().json(view))
}

/// List the registered plugins, in id order, a page at a time.
///
/// Each as `GET /v1/plugins/{id}` shows it, without inbox depth and push health (read one
/// plugin for those). Pass `next` as `after` until `done`.
#[utoipa::path(
    tag = "plugins",
    security(("admin_token" = [])),
    params(super::list::Window),
    responses(
        (status = 200, description = "Plugins, in id order", body = PluginPage),
        (status = 400, description = "Malformed query parameters", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/plugins")]
pub async fn list_plugins(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<super::list::Window>,
) -> Result<HttpResponse> {
    let limit = query.limit()?;
    let now = state.now();
    let ids = state.store.plugin_ids().await?;
    let store = &state.store;
    let page = super::list::page(ids, query.after.as_deref(), limit, |id| async move {
        match store.get_plugin(&id).await {
            Ok(plugin) => Ok(plugin.map(|p| registry::view(&p, now))),
            Err(e @ crate::store::StoreError::Unavailable(_)) => Err(e.into()),
            Err(e) => {
                tracing::warn!(plugin_id = %id, error = %e, "a plugin cannot be read; left out of the list");
                Ok(None)
            }
        }
    })
    .await?;
    Ok(HttpResponse::Ok().json(PluginPage {
        plugins: page.items,
        next: page.next,
        done: page.done,
    }))
}

/// Change a plugin's name, subscriptions, published types or delivery.
///
/// Each field given replaces the registered one; the others stay. Switching delivery to
/// `push` answers with the new signing secret, shown only then. Checked as at
/// registration: every subscription must match a type of the catalog or of some plugin's
/// declarations, and new published namespaces are claimed (namespaces claimed before stay
/// the plugin's). The router takes new subscriptions into account within a second.
#[utoipa::path(
    tag = "plugins",
    security(("admin_token" = [])),
    params(("id" = String, Path, description = "Plugin id")),
    request_body = UpdatePlugin,
    responses(
        (status = 200, description = "The plugin as it now is (with `signing_secret` when it became a push plugin)", body = PluginUpdated),
        (status = 400, description = "Malformed JSON body or query parameters", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such plugin", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A published namespace belongs to another plugin, or the plugin kept changing under concurrent calls (try again)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A push URL that is not https or not public, invalid name, type names or schemas, a published type in a canonical family, or a subscription that matches no known type", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/plugins/{id}")]
pub async fn update_plugin(
    _: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: crate::body::Body<UpdatePlugin>,
) -> Result<HttpResponse> {
    let update = body.into_inner();
    // Compare-and-set: a key rotated (or another change made) meanwhile is kept.
    for _ in 0..CHANGE_ATTEMPTS {
        let before = load(&state, &id).await?;
        let mut plugin = before.clone();
        let allow_private = state.settings.push_allow_private;
        let signing_secret =
            registry::update(&mut plugin, update.clone(), allow_private, state.now())?;
        // Only new subscriptions: one that matched when it was made stays, even if its
        // publisher has since dropped the type (a rename must not fail for it).
        let new: Vec<String> = (plugin.event_types.iter())
            .filter(|t| !before.event_types.contains(t))
            .cloned()
            .collect();
        registry::check_subscriptions(&new, &declared(&state, &plugin, &new).await?)?;
        let fresh = claim(&state, &plugin).await?;
        match state.store.replace_plugin(&before, &plugin).await {
            Ok(true) => {
                tracing::info!(plugin_id = %plugin.id, name = %plugin.name, "plugin updated");
                return Ok(HttpResponse::Ok().json(PluginUpdated {
                    plugin: registry::view(&plugin, state.now()),
                    signing_secret,
                }));
            }
            Ok(false) => unclaim(&state, &plugin.id, &fresh).await,
            Err(e) => {
                unclaim(&state, &plugin.id, &fresh).await;
                return Err(e.into());
            }
        }
    }
    Err(changed_concurrently(&id))
}

/// Issue a new API key.
///
/// The previous keys keep working until `previous_expires_at` (default: 24 hours), so the
/// plugin can be redeployed with the new key first; `revoke_previous` stops them at once.
#[utoipa::path(
    tag = "plugins",
    security(("admin_token" = [])),
    params(("id" = String, Path, description = "Plugin id")),
    request_body = RotateKey,
    responses(
        (status = 400, description = "Malformed JSON body or query parameters", body = Problem, content_type = "application/problem+json"),
        (status = 201, description = "The new key, shown only here", body = KeyCreated),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such plugin", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The plugin kept changing under concurrent calls; try again", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Both revoke_previous and previous_expires_at given", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/plugins/{id}/keys")]
pub async fn rotate_key(
    _: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: crate::body::Body<RotateKey>,
) -> Result<HttpResponse> {
    let now = state.now();
    let request = body.into_inner();
    for _ in 0..CHANGE_ATTEMPTS {
        let before = load(&state, &id).await?;
        let mut plugin = before.clone();
        let (stored, api_key) = registry::rotate(&mut plugin, request.clone(), now)?;
        let gone = registry::prune_keys(&mut plugin, now);
        // Index the new key before saving, drop the dead ones after: no window without a key.
        state.store.put_key(&stored.hash, &plugin.id).await?;
        if !state.store.replace_plugin(&before, &plugin).await? {
            // Never saved: its hash must not stay indexed.
            state.store.delete_key(&stored.hash).await?;
            continue;
        }
        for hash in gone {
            state.store.delete_key(&hash).await?;
        }
        tracing::info!(plugin_id = %plugin.id, key_id = %stored.id, "plugin key issued");
        return Ok(HttpResponse::Created().json(KeyCreated {
            key_id: stored.id,
            api_key,
        }));
    }
    Err(changed_concurrently(&id))
}

/// Revoke one API key at once.
///
/// Calls with it are refused from the next request on. Revoking the last key locks the
/// plugin out until `POST /v1/plugins/{id}/keys` issues a new one.
#[utoipa::path(
    tag = "plugins",
    security(("admin_token" = [])),
    params(
        ("id" = String, Path, description = "Plugin id"),
        ("key_id" = String, Path, description = "Key id"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such plugin or key", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The plugin kept changing under concurrent calls; try again", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/plugins/{id}/keys/{key_id}")]
pub async fn revoke_key(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse> {
    let (id, key_id) = path.into_inner();
    for _ in 0..CHANGE_ATTEMPTS {
        let before = load(&state, &id).await?;
        let mut plugin = before.clone();
        let hash = registry::revoke(&mut plugin, &key_id)
            .ok_or_else(|| Error::not_found(format!("key {key_id:?}")))?;
        if !state.store.replace_plugin(&before, &plugin).await? {
            continue;
        }
        state.store.delete_key(&hash).await?;
        tracing::info!(plugin_id = %plugin.id, %key_id, "plugin key revoked");
        return Ok(HttpResponse::NoContent().finish());
    }
    Err(changed_concurrently(&id))
}

/// Issue a new signing secret for a push plugin.
///
/// Until `previous_expires_at` (default: 24 hours) every push carries a signature by each
/// secret (Standard Webhooks lists them space-separated), so the endpoint can switch to the
/// new secret at any moment; `revoke_previous` stops the others at once.
#[utoipa::path(
    tag = "plugins",
    security(("admin_token" = [])),
    params(("id" = String, Path, description = "Plugin id")),
    request_body = RotateKey,
    responses(
        (status = 400, description = "Malformed JSON body or query parameters", body = Problem, content_type = "application/problem+json"),
        (status = 201, description = "The new secret, shown only here", body = SigningSecretCreated),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such plugin", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The plugin pulls its events (it has no signing secret), or it kept changing under concurrent calls (try again)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Both revoke_previous and previous_expires_at given", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/plugins/{id}/signing-secrets")]
pub async fn rotate_signing_secret(
    _: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: crate::body::Body<RotateKey>,
) -> Result<HttpResponse> {
    let now = state.now();
    let request = body.into_inner();
    for _ in 0..CHANGE_ATTEMPTS {
        let before = load(&state, &id).await?;
        let mut plugin = before.clone();
        let (stored, signing_secret) =
            registry::rotate_signing_secret(&mut plugin, request.clone(), now)?;
        if !state.store.replace_plugin(&before, &plugin).await? {
            continue;
        }
        tracing::info!(plugin_id = %plugin.id, secret_id = %stored.id, "signing secret issued");
        return Ok(HttpResponse::Created().json(SigningSecretCreated {
            secret_id: stored.id,
            signing_secret,
        }));
    }
    Err(changed_concurrently(&id))
}

/// Pauses or resumes a push plugin's delivery.
async fn set_paused(state: &AppState, id: &str, pause: bool) -> Result<HttpResponse> {
    let now = state.now();
    for _ in 0..CHANGE_ATTEMPTS {
        let before = load(state, id).await?;
        let mut plugin = before.clone();
        let paused_at = match before.push.as_ref().and_then(|p| p.paused_at) {
            Some(since) if pause => Some(since),
            _ => pause.then_some(now),
        };
        registry::set_paused(&mut plugin, paused_at)?;
        let resuming = !pause && before.push.as_ref().is_some_and(|p| p.paused_at.is_some());
        if resuming {
            // A resumed endpoint starts afresh: the operator says it is fixed, so its
            // breaker closes and what waited is tried (written before the record, which is
            // what tells the pushers to reload it).
            for (url, mut health) in state.store.push_health(id).await? {
                health.failing_since = None;
                health.consecutive_failures = 0;
                state.store.put_push_health(id, &url, &health).await?;
            }
        }
        if plugin != before && !state.store.replace_plugin(&before, &plugin).await? {
            continue;
        }
        tracing::info!(plugin_id = %plugin.id, paused = pause, "push delivery {}", if pause { "paused" } else { "resumed" });
        return Ok(HttpResponse::Ok().json(registry::view(&plugin, now)));
    }
    Err(changed_concurrently(id))
}

/// Pause a push plugin's delivery.
///
/// Events keep arriving in its inbox and wait there (its cap still applies); pushes in
/// flight finish. Every gateway process stops pushing within a few seconds.
#[utoipa::path(
    tag = "plugins",
    security(("admin_token" = [])),
    params(("id" = String, Path, description = "Plugin id")),
    responses(
        (status = 200, description = "The plugin, paused", body = PluginView),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such plugin", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The plugin pulls its events (nothing to pause), or it kept changing under concurrent calls (try again)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/plugins/{id}/delivery/pause")]
pub async fn pause_delivery(
    _: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse> {
    set_paused(&state, &id, true).await
}

/// Resume a push plugin's delivery.
///
/// What waited in its inbox goes out in order; every gateway process resumes pushing
/// within a few seconds.
#[utoipa::path(
    tag = "plugins",
    security(("admin_token" = [])),
    params(("id" = String, Path, description = "Plugin id")),
    responses(
        (status = 200, description = "The plugin, delivering", body = PluginView),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such plugin", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The plugin pulls its events (nothing to pause), or it kept changing under concurrent calls (try again)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/plugins/{id}/delivery/resume")]
pub async fn resume_delivery(
    _: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse> {
    set_paused(&state, &id, false).await
}

/// Install a plugin in a shop.
///
/// Scopes: `events:read` (receive the subscribed events), `events:publish` (publish the
/// plugin's own types), `customer_pii` (see personal data: contact data, addresses, free
/// text, tracking and attachment URLs, and whatever a plugin's schema marks `x-pii`).
/// Installing again replaces the scopes. A push plugin may be given its own endpoint for
/// this shop (`push_url`).
#[utoipa::path(
    tag = "plugins",
    security(("admin_token" = [])),
    params(("id" = String, Path, description = "Plugin id")),
    request_body = CreateInstallation,
    responses(
        (status = 400, description = "Malformed JSON body or query parameters", body = Problem, content_type = "application/problem+json"),
        (status = 201, description = "Installed", body = InstallationView),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such plugin", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A `push_url` for a plugin that pulls its events", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid tenant, or a `push_url` that is not https or not public", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/plugins/{id}/installations")]
pub async fn install(
    _: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: crate::body::Body<CreateInstallation>,
) -> Result<HttpResponse> {
    let plugin = load(&state, &id).await?;
    let allow_private = state.settings.push_allow_private;
    let installation =
        registry::installation(&plugin, body.into_inner(), allow_private, state.now())?;
    state.store.put_installation(&installation).await?;
    tracing::info!(plugin_id = %plugin.id, tenant = %installation.tenant, "plugin installed");
    Ok(HttpResponse::Created().json(registry::installation_view(&installation)))
}

/// List the shops a plugin is installed in, in tenant order, a page at a time.
///
/// Pass `next` as `after` until `done`.
#[utoipa::path(
    tag = "plugins",
    security(("admin_token" = [])),
    params(("id" = String, Path, description = "Plugin id"), super::list::Window),
    responses(
        (status = 200, description = "Installations, in tenant order", body = InstallationPage),
        (status = 400, description = "Malformed query parameters", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such plugin", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/plugins/{id}/installations")]
pub async fn list_installations(
    _: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<super::list::Window>,
) -> Result<HttpResponse> {
    let limit = query.limit()?;
    let plugin = load(&state, &id).await?;
    let all: std::collections::BTreeMap<String, _> = state
        .store
        .plugin_installations(&plugin.id)
        .await?
        .into_iter()
        .map(|i| (i.tenant.clone(), i))
        .collect();
    let tenants = all.keys().cloned().collect();
    let page = super::list::page(tenants, query.after.as_deref(), limit, |tenant| {
        let found = all.get(&tenant).map(registry::installation_view);
        async move { Ok(found) }
    })
    .await?;
    Ok(HttpResponse::Ok().json(InstallationPage {
        installations: page.items,
        next: page.next,
        done: page.done,
    }))
}

/// Remove a plugin from a shop. It receives nothing more from it.
///
/// Deliveries of that shop still waiting in the plugin's inbox are dropped when pulled,
/// and the plugin can no longer publish there.
#[utoipa::path(
    tag = "plugins",
    security(("admin_token" = [])),
    params(
        ("id" = String, Path, description = "Plugin id"),
        ("tenant" = String, Path, description = "Tenant"),
    ),
    responses(
        (status = 204, description = "Uninstalled"),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not installed there", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/plugins/{id}/installations/{tenant}")]
pub async fn uninstall(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse> {
    let (id, tenant) = path.into_inner();
    if !state.store.delete_installation(&id, &tenant).await? {
        return Err(Error::not_found(format!(
            "installation of {id} in {tenant}"
        )));
    }
    tracing::info!(plugin_id = %id, %tenant, "plugin uninstalled");
    Ok(HttpResponse::NoContent().finish())
}

/// List a plugin's dead letters, oldest first, a page at a time (as an operator).
///
/// What `GET /v1/inbox/dead` shows the plugin itself: each delivery that failed every
/// attempt, with the reason of each attempt. Pass `next` as `after` until `done`.
#[utoipa::path(
    tag = "plugins",
    security(("admin_token" = [])),
    params(("id" = String, Path, description = "Plugin id"), crate::inbox::handlers::DeadQuery),
    responses(
        (status = 200, description = "Dead letters, oldest first", body = DeadLetterPage),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such plugin", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/plugins/{id}/dead-letters")]
pub async fn list_dead_letters(
    _: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<crate::inbox::handlers::DeadQuery>,
) -> Result<HttpResponse> {
    let plugin = load(&state, &id).await?;
    let page = crate::inbox::dead_letter_page(&state, &plugin, &query).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Send a plugin's dead letters back to its inbox (as an operator).
///
/// What `POST /v1/inbox/dead/replay` does for the plugin itself, under the same limit of
/// replays per minute: the named dead letters (all without `ids`) are delivered again from
/// their first attempt.
#[utoipa::path(
    tag = "plugins",
    security(("admin_token" = [])),
    params(("id" = String, Path, description = "Plugin id")),
    request_body = ReplayDead,
    responses(
        (status = 200, description = "How many went back", body = Replayed),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such plugin", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over the plugin's replays per minute; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/plugins/{id}/dead-letters/replay")]
pub async fn replay_dead_letters(
    _: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: crate::body::Body<ReplayDead>,
) -> Result<HttpResponse> {
    let plugin = load(&state, &id).await?;
    let replayed = crate::inbox::replay_dead(&state, &plugin, body.ids.as_deref()).await?;
    tracing::info!(plugin_id = %plugin.id, replayed, "dead letters replayed by an operator");
    Ok(HttpResponse::Ok().json(Replayed { replayed }))
}

/// The calling plugin, as its API key identifies it.
///
/// A cheap way for a plugin to check its key at start-up: the answer shows its
/// subscriptions, declared types and key ids, never a key's value.
#[utoipa::path(
    tag = "plugins",
    security(("plugin_key" = [])),
    responses(
        (status = 200, description = "The plugin", body = PluginView),
        (status = 401, description = "Missing, unknown, expired or revoked key", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over the plugin's rate limit (or, for pulls, its concurrent pulls; for replays, its replays per minute); retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/me")]
pub async fn me(caller: PluginCaller, state: web::Data<AppState>) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(registry::view(&caller.plugin, state.now())))
}
