//! The actix-web application: routes (each with its OpenAPI entry, collected by
//! utoipa-actix-web so a route cannot exist without one), error answers for what never
//! reaches a handler, the docs page, and the server.

pub mod console;
pub mod meta;
pub mod spec;
pub mod webhooks;

use actix_web::body::MessageBody;
use actix_web::dev::{ServerHandle, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use std::net::{SocketAddr, TcpListener};
use tracing_actix_web::TracingLogger;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_swagger_ui::SwaggerUi;

use crate::admin;
use crate::error::Error;
use crate::ingest;
use crate::state::AppState;
use crate::telemetry::RequestSpan;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Omnigate",
        description = "Webhook gateway for online shops: signed webhooks from shop engines and \
                       marketplaces in, canonical service events out.\n\n\
                       Errors are RFC 9457 `application/problem+json` documents whose `type` \
                       is stable per cause. Admin calls use `Authorization: Bearer <OMNIGATE_ADMIN_TOKEN>`.",
        license(name = "Apache-2.0"),
    ),
    modifiers(&Security),
    tags(
        (name = "ingest", description = "Webhooks from shop engines and marketplaces"),
        (name = "sources", description = "Connected shops and their signing secrets"),
        (name = "events", description = "Canonical events"),
        (name = "quarantine", description = "Verified payloads that could not be normalized"),
        (name = "plugins", description = "Plugins, their API keys and their installations"),
        (name = "inbox", description = "A plugin's deliveries: pull, acknowledge, retry, dead letters"),
        (name = "ops", description = "Health and metrics"),
    )
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("OMNIGATE_ADMIN_TOKEN"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "plugin_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The plugin's API key (`ogk_…`)"))
                    .build(),
            ),
        );
    }
}

fn routes(cfg: &mut ServiceConfig) {
    cfg.service(ingest::handler::receive)
        .service(ingest::handler::receive_with_secret)
        .service(admin::sources::create_source)
        .service(admin::sources::list_sources)
        .service(admin::sources::get_source)
        .service(admin::sources::update_source)
        .service(admin::sources::delete_source)
        .service(admin::events::tenant_events)
        .service(admin::quarantine::list)
        .service(admin::quarantine::get)
        .service(admin::quarantine::replay)
        .service(admin::quarantine::discard)
        .service(admin::router::list)
        .service(admin::router::replay)
        .service(admin::plugins::create_plugin)
        .service(admin::plugins::list_plugins)
        .service(admin::plugins::get_plugin)
        .service(admin::plugins::update_plugin)
        .service(admin::plugins::rotate_key)
        .service(admin::plugins::revoke_key)
        .service(admin::plugins::rotate_signing_secret)
        .service(admin::plugins::pause_delivery)
        .service(admin::plugins::resume_delivery)
        .service(admin::plugins::install)
        .service(admin::plugins::list_installations)
        .service(admin::plugins::uninstall)
        .service(admin::plugins::list_dead_letters)
        .service(admin::plugins::replay_dead_letters)
        .service(admin::plugins::me)
        .service(crate::inbox::handlers::pull)
        .service(crate::inbox::handlers::ack)
        .service(crate::inbox::handlers::nack)
        .service(crate::inbox::handlers::dead)
        .service(crate::inbox::handlers::replay_dead)
        .service(crate::inbox::handlers::replay_log)
        .service(crate::inbox::handlers::publish)
        .service(meta::list_event_types)
        .service(admin::providers::list_providers)
        .service(meta::healthz)
        .service(meta::readyz)
        .service(admin::status::status)
        .service(meta::metrics);
}

/// The whole OpenAPI document, as served at `/openapi.json` and written by `omnigate
/// openapi`: the routes' operations ([`openapi`]) and the pushed requests' `webhooks`.
pub fn openapi_document() -> serde_json::Value {
    let mut doc = serde_json::to_value(openapi()).expect("the OpenAPI document is JSON");
    spec::finish(&mut doc);
    webhooks::add_to(&mut doc);
    doc
}

/// The routes' part of the OpenAPI document (everything but `webhooks`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(routes)
        .split_for_parts()
        .1
}

/// Every documented path template (`/v1/sources/{id}`) with its methods, from the OpenAPI
/// document the routes were registered with.
fn documented_paths() -> &'static [(Vec<String>, Vec<String>)] {
    static PATHS: std::sync::OnceLock<Vec<(Vec<String>, Vec<String>)>> = std::sync::OnceLock::new();
    PATHS.get_or_init(|| {
        let doc = serde_json::to_value(openapi()).unwrap_or_default();
        doc["paths"]
            .as_object()
            .map(|paths| {
                paths
                    .iter()
                    .map(|(path, item)| {
                        let segments = path.split('/').map(str::to_string).collect();
                        let methods = item
                            .as_object()
                            .map(|m| m.keys().map(|k| k.to_ascii_uppercase()).collect())
                            .unwrap_or_default();
                        (segments, methods)
                    })
                    .collect()
            })
            .unwrap_or_default()
    })
}

/// The methods a documented path allows, when `path` is one.
pub fn allowed_methods(path: &str) -> Option<Vec<String>> {
    let segments: Vec<&str> = path.split('/').collect();
    documented_paths().iter().find_map(|(template, methods)| {
        let matches = template.len() == segments.len()
            && template
                .iter()
                .zip(&segments)
                .all(|(t, s)| (t.starts_with('{') && t.ends_with('}') && !s.is_empty()) || t == s);
        matches.then(|| methods.clone())
    })
}

/// No route took the request: a known path with another method is 405 (with `Allow`),
/// anything else 404.
async fn not_found(req: HttpRequest) -> Result<HttpResponse, Error> {
    if let Some(allowed) = allowed_methods(req.path()) {
        return Err(Error::MethodNotAllowed {
            method: req.method().to_string(),
            allowed,
        });
    }
    // An unsigned source's URL secret is never echoed (the detail is logged too).
    Err(Error::not_found(format!(
        "route {} {}",
        req.method(),
        crate::telemetry::loggable_path(req.path())
    )))
}

/// The whole application around `state`.
pub fn app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let (app, _) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(routes)
        .split_for_parts();
    let api = openapi_document();
    app.app_data(state)
        .app_data(
            web::JsonConfig::default()
                .limit(256 * 1024)
                .error_handler(|e, _| Error::MalformedBody(e.to_string()).into()),
        )
        .app_data(
            web::QueryConfig::default()
                .error_handler(|e, _| Error::InvalidQuery(e.to_string()).into()),
        )
        .app_data(
            web::PathConfig::default().error_handler(|e, _| Error::not_found(e.to_string()).into()),
        )
        .service(SwaggerUi::new("/docs/{_:.*}").external_url_unchecked("/openapi.json", api))
        .route(
            "/docs",
            web::get().to(|| async {
                HttpResponse::PermanentRedirect()
                    .insert_header(("Location", "/docs/"))
                    .finish()
            }),
        )
        .configure(console::routes)
        .default_service(web::to(not_found))
        .wrap(actix_web::middleware::from_fn(crate::plugins::auth::gate))
        .wrap(TracingLogger::<RequestSpan>::new())
}

/// A running server.
pub(crate) struct Running {
    pub addr: SocketAddr,
    pub handle: ServerHandle,
    pub server: actix_web::dev::Server,
}

/// Binds `listener` and builds the server; await `server` (or spawn it) to run it. Only
/// `startup` calls it: a gateway is assembled in one place.
pub(crate) fn serve(
    state: web::Data<AppState>,
    listener: TcpListener,
    workers: Option<usize>,
) -> std::io::Result<Running> {
    let addr = listener.local_addr()?;
    let mut server = HttpServer::new(move || app(state.clone()))
        // Shopify allows 5 s for the whole answer: keep slow clients from holding workers.
        .client_request_timeout(std::time::Duration::from_secs(10))
        .shutdown_timeout(10);
    if let Some(n) = workers {
        server = server.workers(n.max(1));
    }
    let server = server.listen(listener)?.run();
    Ok(Running {
        addr,
        handle: server.handle(),
        server,
    })
}

#[cfg(test)]
mod tests {
    use omnigate_schemas::api::*;
    use serde_json::Value;

    /// The schemas `T` and the components it refers to, as `body` compiles them.
    fn collected<T: utoipa::ToSchema>() -> Vec<(String, Value)> {
        let mut schemas = vec![(T::name().to_string(), T::schema())];
        T::schemas(&mut schemas);
        schemas
            .into_iter()
            .map(|(n, s)| (n, serde_json::to_value(s).expect("a schema is JSON")))
            .collect()
    }

    /// `body::Body<T>` validates against the schema `T` itself declares; this proves it is
    /// the schema the published document shows for every request body.
    #[test]
    fn request_bodies_are_checked_against_the_published_schemas() {
        let doc = serde_json::to_value(super::openapi()).expect("the document is JSON");
        let published = &doc["components"]["schemas"];
        let bodies = [
            collected::<CreateSource>(),
            collected::<UpdateSource>(),
            collected::<CreatePlugin>(),
            collected::<UpdatePlugin>(),
            collected::<RotateKey>(),
            collected::<CreateInstallation>(),
            collected::<PullRequest>(),
            collected::<AckRequest>(),
            collected::<NackRequest>(),
            collected::<ReplayDead>(),
            collected::<ReplayLog>(),
            collected::<PublishEvent>(),
        ];
        for (name, schema) in bodies.into_iter().flatten() {
            assert_eq!(published[&name], schema, "{name} differs from the document");
        }
    }
}
