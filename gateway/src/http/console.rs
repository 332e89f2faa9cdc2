//! The operator console at `/console/`: three static files compiled into the binary (no
//! CDN, works offline), a page that calls the documented admin API with the token the
//! operator types in (kept in the tab's session storage only). The strict content security
//! policy allows nothing but the gateway itself: no inline script, no other origin.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use std::sync::LazyLock;

/// One embedded file with its validator.
struct Asset {
    body: &'static str,
    content_type: &'static str,
    etag: String,
}

impl Asset {
    fn new(body: &'static str, content_type: &'static str) -> Asset {
        let etag = format!("\"{:016x}\"", xxhash_rust::xxh3::xxh3_64(body.as_bytes()));
        Asset {
            body,
            content_type,
            etag,
        }
    }
}

static INDEX: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("../../console/index.html"),
        "text/html; charset=utf-8",
    )
});
static SCRIPT: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("../../console/app.js"),
        "text/javascript; charset=utf-8",
    )
});
static STYLE: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("../../console/app.css"),
        "text/css; charset=utf-8",
    )
});

/// What the page may load and talk to: the gateway only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'self'";

fn serve(asset: &Asset, req: &HttpRequest) -> HttpResponse {
    let unchanged = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == asset.etag));
    let mut answer = if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    answer
        .insert_header((header::CONTENT_TYPE, asset.content_type))
        .insert_header((header::ETAG, asset.etag.as_str()))
        // Revalidated on every load: a new gateway's console is picked up at once.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header(("X-Frame-Options", "DENY"));
    if unchanged {
        answer.finish()
    } else {
        answer.body(asset.body)
    }
}

/// `/console`, `/console/` and its two assets, gzip-compressed for browsers that ask
/// (a third of the bytes).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/console")
            .wrap(actix_web::middleware::Compress::default())
            .route(
                "",
                web::get().to(|| async {
                    HttpResponse::PermanentRedirect()
                        .insert_header((header::LOCATION, "/console/"))
                        .finish()
                }),
            )
            .route(
                "/",
                web::get().to(|req: HttpRequest| async move { serve(&INDEX, &req) }),
            )
            .route(
                "/app.js",
                web::get().to(|req: HttpRequest| async move { serve(&SCRIPT, &req) }),
            )
            .route(
                "/app.css",
                web::get().to(|req: HttpRequest| async move { serve(&STYLE, &req) }),
            ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn assets_are_served_with_the_policy_and_revalidated_by_etag() {
        let first = serve(&SCRIPT, &TestRequest::default().to_http_request());
        assert_eq!(first.status(), 200);
        let csp = first.headers().get("content-security-policy").unwrap();
        assert!(csp.to_str().unwrap().contains("script-src 'self'"));
        let etag = first.headers().get(header::ETAG).unwrap().clone();
        let again = TestRequest::default()
            .insert_header((header::IF_NONE_MATCH, etag))
            .to_http_request();
        assert_eq!(serve(&SCRIPT, &again).status(), 304);
    }

    #[test]
    fn the_page_loads_nothing_inline_and_nothing_from_elsewhere() {
        let html = INDEX.body;
        assert!(html.contains(r#"src="app.js""#) && html.contains(r#"href="app.css""#));
        for forbidden in ["<script>", " style=", " onclick=", "http://", "https://"] {
            assert!(!html.contains(forbidden), "index.html has {forbidden:?}");
        }
        for text in [SCRIPT.body, STYLE.body] {
            assert!(!text.contains("http://") && !text.contains("https://"));
        }
        assert!(SCRIPT.body.contains("sessionStorage"));
        assert!(
            !SCRIPT.body.contains("localStorage"),
            "the token stays in the tab"
        );
        for markup in [
            ".innerHTML",
            ".outerHTML",
            "insertAdjacentHTML",
            "document.write",
        ] {
            assert!(
                !SCRIPT.body.contains(markup),
                "server strings never become markup"
            );
        }
    }
}
