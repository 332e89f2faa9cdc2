//! Integrators read openapi/openapi.json and the /docs page: both must match the code and
//! work with no internet.

use chrono::Utc;
use omnigate_tests::{Gateway, memory_store};
use reqwest::StatusCode;
use serde_json::Value;

const REGENERATE: &str = "cargo run -p omnigate -- openapi > openapi/openapi.json";

#[test]
fn the_committed_spec_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/openapi.json");
    let committed = std::fs::read_to_string(path).expect("openapi/openapi.json exists");
    let current = serde_json::to_string_pretty(&omnigate::http::openapi_document()).unwrap();
    assert!(
        committed.trim_end() == current.trim_end(),
        "openapi/openapi.json is stale; regenerate it with `{REGENERATE}`"
    );
}

#[test]
fn every_operation_documents_its_answers() {
    let spec = omnigate::http::openapi_document();
    // What push delivery sends is documented too, one entry per catalog type.
    let webhooks = spec["webhooks"].as_object().unwrap();
    assert_eq!(webhooks.len(), omnigate_schemas::catalog::EVENT_TYPES.len());
    assert!(
        webhooks["order.paid"]["post"]["parameters"]
            .to_string()
            .contains("webhook-signature")
    );
    let paths = spec["paths"].as_object().unwrap();
    assert!(paths.contains_key("/v1/webhooks/{source_id}"));
    assert!(paths.contains_key("/v1/tenants/{tenant}/events"));
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            assert!(!responses.is_empty(), "{method} {path}");
            assert!(op["summary"].is_string(), "{method} {path} has a summary");
            assert!(op["security"].is_array(), "{method} {path} names its auth");
            // Public operations say `security: []`; the others answer 401 without it.
            let public = op["security"].as_array().is_some_and(|s| s.is_empty());
            if public {
                assert!(
                    !path.starts_with("/v1/")
                        || ["/v1/event-types", "/v1/providers"].contains(&path.as_str())
                        || path.starts_with("/v1/webhooks/"),
                    "{method} {path} is public: is that meant?"
                );
            } else {
                assert!(
                    responses.contains_key("401"),
                    "{method} {path} documents 401"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_is_served_from_the_binary() {
    let gw = Gateway::start(memory_store(), Utc::now()).await;
    let served: Value = gw
        .http
        .get(gw.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served, omnigate::http::openapi_document());

    let redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(gw.url("/docs"))
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.headers()["location"], "/docs/");

    let page = gw.http.get(gw.url("/docs/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"));
    assert!(
        !html.contains("https://") && !html.contains("http://"),
        "no asset comes from the internet"
    );
    for asset in [
        "/docs/swagger-ui-bundle.js",
        "/docs/swagger-ui.css",
        "/docs/swagger-initializer.js",
    ] {
        let res = gw.http.get(gw.url(asset)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{asset}");
        assert!(res.bytes().await.unwrap().len() > 100, "{asset}");
    }
}

#[test]
fn the_readme_lists_exactly_the_mapped_topics() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let start = readme
        .find("<!-- topics:start -->\n")
        .expect("start marker")
        + 22;
    let end = readme.find("<!-- topics:end -->").expect("end marker");
    assert_eq!(
        &readme[start..end],
        omnigate::normalize::mappings_table(),
        "README topics table is stale; regenerate it with `cargo run -p omnigate -- topics`"
    );
}
