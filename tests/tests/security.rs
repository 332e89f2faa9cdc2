//! An attacker's stories against the gateway on Redis: each one is a way to get a fact in
//! that nobody signed, or to exhaust the gateway, and each ends with nothing gained.

use chrono::{TimeZone, Utc};
use omnigate::samples::{SALEOR_TEST_KEY, SAMPLES};
use omnigate::sign::{Delivery, saleor_jwks, sign};
use omnigate::store::Retention;
use omnigate_schemas::api::{KeyEncoding, Provider};
use omnigate_tests::{Gateway, redis_store};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn problem_type(res: reqwest::Response) -> (StatusCode, String, String) {
    let status = res.status();
    let p: Value = res.json().await.unwrap_or(Value::Null);
    (
        status,
        p["type"].as_str().unwrap_or_default().to_string(),
        p["detail"].as_str().unwrap_or_default().to_string(),
    )
}

/// A Saleor shop verified by its JWKS cannot be downgraded to the deprecated HMAC, and no
/// placeholder secret can be stored beside the keys for an attacker to guess.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saleor_jwks_source_refuses_the_legacy_hmac() {
    let now = Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap();
    let gw = Gateway::start(redis_store(Retention::default()).await, now).await;
    let jwks = saleor_jwks(SALEOR_TEST_KEY).unwrap();

    // The placeholder operators used to type next to a JWKS is refused outright.
    let res = gw
        .admin(Method::POST, "/v1/sources")
        .json(
            &json!({"tenant": "saleor-sec", "provider": "saleor", "secret": "x",
                      "options": {"jwks": jwks}}),
        )
        .send()
        .await
        .unwrap();
    let (status, kind, detail) = problem_type(res).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(kind.ends_with("/validation-failed"), "{kind}");
    assert!(detail.contains("takes no secret"), "{detail}");

    let source = gw
        .create_source(json!({"tenant": "saleor-sec", "provider": "saleor",
                              "options": {"jwks": jwks}}))
        .await;
    let s = SAMPLES
        .iter()
        .find(|s| s.provider == Provider::Saleor && s.topic == "ORDER_CREATED")
        .unwrap();
    // A hex HMAC under any key a guesser might try: refused, nothing kept.
    for guess in ["x", "secret", "legacy-hmac-unused", "changeme"] {
        let forged = omnigate::sign::hex_hmac(guess, s.body.as_bytes());
        let headers = vec![
            ("Saleor-Signature".to_string(), forged),
            ("Saleor-Event".to_string(), "order_created".to_string()),
        ];
        let res = gw.deliver(&source.id, &headers, s.body.as_bytes()).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "guess {guess}");
    }
    assert!(gw.tenant_events("saleor-sec", None).await.is_empty());

    // The shop's own JWS still verifies.
    let headers = sign(&Delivery {
        provider: Provider::Saleor,
        secret: SALEOR_TEST_KEY,
        key_encoding: KeyEncoding::Base64,
        topic: s.topic,
        body: s.body.as_bytes(),
        now: now.timestamp(),
        delivery_id: "",
    })
    .unwrap();
    let res = gw.deliver(&source.id, &headers, s.body.as_bytes()).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);

    // The legacy scheme only by explicit opt-in, with a real secret and no keys.
    let res = gw
        .admin(Method::POST, "/v1/sources")
        .json(
            &json!({"tenant": "saleor-sec", "provider": "saleor", "secret": "short",
                      "options": {"legacy_hmac": true}}),
        )
        .send()
        .await
        .unwrap();
    let (status, _, detail) = problem_type(res).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(detail.contains("at least 16 bytes"), "{detail}");
    let legacy_secret = "saleor-app-secret-key-0123456789";
    let legacy = gw
        .create_source(json!({"tenant": "saleor-legacy", "provider": "saleor",
                              "secret": legacy_secret, "options": {"legacy_hmac": true}}))
        .await;
    let headers = vec![
        (
            "Saleor-Signature".to_string(),
            omnigate::sign::hex_hmac(legacy_secret, s.body.as_bytes()),
        ),
        ("Saleor-Event".to_string(), "order_created".to_string()),
    ];
    let res = gw.deliver(&legacy.id, &headers, s.body.as_bytes()).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
}

/// Every HMAC provider refuses a secret shorter than 16 bytes, naming the rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_secrets_are_refused_with_the_rule_named() {
    let gw = Gateway::start(redis_store(Retention::default()).await, Utc::now()).await;
    for provider in [
        "shopify",
        "woocommerce",
        "stripe",
        "github",
        "bigcommerce",
        "ecwid",
    ] {
        let res = gw
            .admin(Method::POST, "/v1/sources")
            .json(&json!({"tenant": "short", "provider": provider, "secret": "s3cret"}))
            .send()
            .await
            .unwrap();
        let (status, kind, detail) = problem_type(res).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{provider}");
        assert!(kind.ends_with("/validation-failed"), "{kind}");
        assert!(detail.contains("at least 16 bytes"), "{provider}: {detail}");
    }
}
