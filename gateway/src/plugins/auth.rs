//! `Authorization: Bearer <plugin API key>`: the key is hashed and looked up; expired and
//! revoked keys are refused like unknown ones.

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use std::future::Future;
use std::pin::Pin;

use super::registry::hash_key;
use crate::error::{Credential, Error};
use crate::state::AppState;
use crate::store::PluginRecord;

/// The plugin making the call.
#[derive(Debug, Clone)]
pub struct PluginCaller {
    pub plugin: PluginRecord,
}

/// The plugin whose key `authorization` (`Bearer <key>`) carries. Expired and revoked keys
/// are refused like unknown ones.
pub async fn authenticate(
    state: &AppState,
    authorization: Option<&str>,
) -> Result<PluginCaller, Error> {
    let key = authorization
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(Error::Unauthorized(Credential::PluginKey))?;
    let hash = hash_key(key);
    let plugin_id = state
        .store
        .plugin_for_key(&hash)
        .await?
        .ok_or(Error::Unauthorized(Credential::PluginKey))?;
    let plugin = state
        .store
        .get_plugin(&plugin_id)
        .await?
        .ok_or(Error::Unauthorized(Credential::PluginKey))?;
    let now = state.now();
    let valid = plugin
        .keys
        .iter()
        .any(|k| k.hash == hash && k.expires_at.is_none_or(|at| at > now));
    if !valid {
        return Err(Error::Unauthorized(Credential::PluginKey));
    }
    Ok(PluginCaller { plugin })
}

/// Routes a plugin calls with its key. The path is percent-decoded first, as the router
/// decodes it: `/v1/%69nbox/pull` is the pull route too.
pub fn is_plugin_route(path: &str) -> bool {
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    decoded.starts_with("/v1/inbox/") || decoded == "/v1/events" || decoded == "/v1/me"
}

/// Middleware for plugin routes: the key is checked and the plugin's rate limit charged
/// before the handler runs, so a request without a valid key never has its body read or
/// decompressed. The caller is left in the request for [`PluginCaller`].
pub async fn gate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if is_plugin_route(req.path()) {
        let state = req
            .app_data::<web::Data<AppState>>()
            .cloned()
            .ok_or_else(|| Error::Internal("application state missing".into()))?;
        let authorization = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let caller = authenticate(&state, authorization.as_deref()).await?;
        state.limits.plugin_call(&caller.plugin.id)?;
        req.extensions_mut().insert(caller);
    }
    next.call(req).await
}

impl FromRequest for PluginCaller {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // Normally [`gate`] has authenticated the call already.
        if let Some(caller) = req.extensions().get::<PluginCaller>().cloned() {
            return Box::pin(async move { Ok(caller) });
        }
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let authorization = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Box::pin(async move {
            let state = state.ok_or_else(|| Error::Internal("application state missing".into()))?;
            authenticate(&state, authorization.as_deref()).await
        })
    }
}
