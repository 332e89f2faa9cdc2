//! `Authorization: Bearer <plugin API key>`: the key is hashed and looked up; expired and
//! revoked keys are refused like unknown ones.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use std::future::Future;
use std::pin::Pin;

use super::registry::hash_key;
use crate::error::Error;
use crate::state::AppState;
use crate::store::PluginRecord;

/// The plugin making the call.
#[derive(Debug, Clone)]
pub struct PluginCaller {
    pub plugin: PluginRecord,
}

impl FromRequest for PluginCaller {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let key = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_string);
        Box::pin(async move {
            let state = state.ok_or_else(|| Error::Internal("application state missing".into()))?;
            let key = key.ok_or(Error::Unauthorized)?;
            let hash = hash_key(&key);
            let plugin_id = state
                .store
                .plugin_for_key(&hash)
                .await?
                .ok_or(Error::Unauthorized)?;
            let plugin = state
                .store
                .get_plugin(&plugin_id)
                .await?
                .ok_or(Error::Unauthorized)?;
            let now = state.now();
            let valid = plugin
                .keys
                .iter()
                .any(|k| k.hash == hash && k.expires_at.is_none_or(|at| at > now));
            if !valid {
                return Err(Error::Unauthorized);
            }
            Ok(PluginCaller { plugin })
        })
    }
}
