//! The agent desk's endpoint: `GET /customers/{tenant}/{email-or-id}` → the timeline.
//! Without the plugin's `customer_pii` scope no e-mail ever arrives, so lookups work by
//! customer id only.

use actix_web::{HttpResponse, web};
use omnigate_sdk::state::{StateStore, Tracked};
use std::sync::Arc;

use crate::timeline::Book;

pub type Books = web::Data<Arc<dyn StateStore<Tracked<Book>>>>;

pub async fn customer(books: Books, path: web::Path<(String, String)>) -> HttpResponse {
    let (tenant, key) = path.into_inner();
    match books.load(&tenant).await {
        Ok((tracked, _)) => match tracked.doc.timeline(&key, true) {
            Some(t) => HttpResponse::Ok().json(t),
            None => HttpResponse::NotFound()
                .content_type("application/problem+json")
                .body(format!(r#"{{"type":"about:blank","title":"Unknown customer","status":404,"detail":"no timeline for {key:?} in {tenant:?}"}}"#)),
        },
        Err(e) => HttpResponse::ServiceUnavailable().body(e.to_string()),
    }
}

/// The desk's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/customers/{tenant}/{key}", web::get().to(customer));
}
