//! `Authorization: Bearer <OMNIGATE_ADMIN_TOKEN>`, compared in constant time.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use std::future::{Ready, ready};
use subtle::ConstantTimeEq;

use crate::error::{Credential, Error};
use crate::state::AppState;

/// Proof that the request carries the admin token.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequest for Admin {
    type Error = Error;
    type Future = Ready<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(state) = req.app_data::<web::Data<AppState>>() else {
            return ready(Err(Error::Internal("application state missing".into())));
        };
        let given = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let ok: bool = given
            .as_bytes()
            .ct_eq(state.admin_token().as_bytes())
            .into();
        ready(if ok {
            Ok(Admin)
        } else {
            Err(Error::Unauthorized(Credential::AdminToken))
        })
    }
}
