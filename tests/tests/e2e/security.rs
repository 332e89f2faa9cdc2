//! An attacker's stories against the gateway on Redis: each one is a way to get a fact in
//! that nobody signed, or to exhaust the gateway, and each ends with nothing gained.

use chrono::{TimeZone, Utc};
use omnigate::samples::{SALEOR_TEST_KEY, SAMPLES};
use omnigate::sign::{ProviderWebhook, saleor_jwks, sign};
use omnigate::store::Retention;
use omnigate_schemas::api::{KeyEncoding, Provider};
use omnigate_tests::{Gateway, fixture_time, payload_fixture, redis_store};
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
        .json(&json!({"tenant": "saleor-sec", "provider": "saleor",
                      "secret": "placeholder-secret-unused", "options": {"jwks": jwks}}))
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
    let headers = sign(&ProviderWebhook {
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
    assert!(
        detail.contains("/secret") && detail.contains("16"),
        "{detail}"
    );
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
        assert!(
            detail.contains("/secret") && detail.contains("16"),
            "{provider}: {detail}"
        );
        assert!(
            !detail.contains("s3cret"),
            "the secret is not repeated: {detail}"
        );
    }
}

/// A captured delivery's headers with some replaced or added, as an attacker re-sends it.
fn resend(
    f: &omnigate::fixtures::PayloadFixture,
    changes: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = f
        .headers
        .as_map()
        .iter()
        .filter(|(k, _)| !changes.iter().any(|(c, _)| c.eq_ignore_ascii_case(k)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    headers.extend(changes.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    headers
}

async fn quarantined(gw: &Gateway, tenant: &str) -> usize {
    let page = gw
        .admin_json(&format!("/v1/quarantine?tenant={tenant}&limit=100"))
        .await;
    page["entries"].as_array().map_or(0, Vec::len)
}

fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

/// Shopify signs only the body: a captured `orders/create` re-sent with fresh event and
/// webhook ids adds nothing, and re-sent under other topics yields only what the body
/// proves (it is paid, so `order.paid`; it is not cancelled or fulfilled, so one
/// quarantine entry for all such tries), each fact once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_shopify_body_adds_nothing_with_fresh_headers_or_topics() {
    let f = payload_fixture("shopify/orders-create");
    let gw = Gateway::start(redis_store(Retention::default()).await, fixture_time(&f)).await;
    let tenant = "replay-shopify";
    let source = gw.source_for(&f, tenant).await;
    assert_eq!(
        gw.deliver_fixture(&source.id, &f).await.status(),
        StatusCode::ACCEPTED
    );

    // Shopify's own retry, and the attacker's copies with fresh unsigned ids.
    assert_eq!(
        gw.deliver_fixture(&source.id, &f).await.status(),
        StatusCode::OK
    );
    for n in 0..3 {
        let (event, webhook) = (format!("forged-event-{n}"), format!("forged-webhook-{n}"));
        let headers = resend(
            &f,
            &[
                ("X-Shopify-Event-Id", &event),
                ("X-Shopify-Webhook-Id", &webhook),
                ("X-Shopify-Triggered-At", "2025-03-14T09:30:00Z"),
            ],
        );
        let res = gw.deliver(&source.id, &headers, &f.body).await;
        assert_eq!(res.status(), StatusCode::OK, "copy {n}");
        // Without the X- prefix, as newer Shopify deliveries name them: the same.
        let headers = resend(&f, &[("Shopify-Event-Id", &event)]);
        assert_eq!(
            gw.deliver(&source.id, &headers, &f.body).await.status(),
            StatusCode::OK
        );
    }
    assert_eq!(
        types(&gw.tenant_events(tenant, None).await),
        ["order.created"]
    );

    // Other topics: the body is paid, so order.paid is a fact it proves, once.
    for _ in 0..2 {
        let headers = resend(
            &f,
            &[
                ("X-Shopify-Topic", "orders/paid"),
                ("X-Shopify-Event-Id", "x"),
            ],
        );
        gw.deliver(&source.id, &headers, &f.body).await;
    }
    // Not cancelled, not fulfilled: refused, kept once for the operator.
    for topic in ["orders/cancelled", "orders/fulfilled", "orders/cancelled"] {
        let headers = resend(&f, &[("X-Shopify-Topic", topic)]);
        let res = gw.deliver(&source.id, &headers, &f.body).await;
        assert!(
            res.status().is_success(),
            "{topic}: a verified body is kept, never refused"
        );
    }
    // orders/updated: nothing changed since the kept snapshot.
    let headers = resend(&f, &[("X-Shopify-Topic", "orders/updated")]);
    gw.deliver(&source.id, &headers, &f.body).await;
    let events = gw.tenant_events(tenant, None).await;
    assert_eq!(types(&events), ["order.created", "order.paid"]);
    assert_eq!(
        quarantined(&gw, tenant).await,
        1,
        "one quarantine entry per body"
    );
    let q = gw
        .admin_json(&format!("/v1/quarantine?tenant={tenant}&limit=10"))
        .await;
    let reason = q["entries"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("cancelled_at"),
        "the reason names the field: {reason}"
    );

    // The real orders/paid delivery, when it comes: a duplicate of the fact.
    let paid = payload_fixture("shopify/orders-paid");
    assert_eq!(
        gw.deliver_fixture(&source.id, &paid).await.status(),
        StatusCode::OK
    );
    assert_eq!(gw.tenant_events(tenant, None).await.len(), 2);
}

/// A body older than the dedupe window cannot be replayed at all: 401 with its own type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_body_older_than_the_window_is_refused() {
    let f = payload_fixture("shopify/orders-create");
    let late = fixture_time(&f) + chrono::Duration::hours(73);
    let gw = Gateway::start(redis_store(Retention::default()).await, late).await;
    let source = gw.source_for(&f, "stale-shopify").await;
    let (status, kind, detail) = problem_type(gw.deliver_fixture(&source.id, &f).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(kind.ends_with("/stale-delivery"), "{kind}");
    assert!(detail.contains("2025-03-14T09:26:54Z"), "{detail}");
    assert!(gw.tenant_events("stale-shopify", None).await.is_empty());
    assert_eq!(quarantined(&gw, "stale-shopify").await, 0);

    let w = payload_fixture("woocommerce/order.created");
    gw.clock.set(fixture_time(&w) + chrono::Duration::hours(73));
    let source = gw.source_for(&w, "stale-woo").await;
    let (status, kind, _) = problem_type(gw.deliver_fixture(&source.id, &w).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(kind.ends_with("/stale-delivery"), "{kind}");
    // Inside the window it is taken.
    gw.clock.set(fixture_time(&w) + chrono::Duration::hours(71));
    assert_eq!(
        gw.deliver_fixture(&source.id, &w).await.status(),
        StatusCode::ACCEPTED
    );
}

/// WooCommerce's delivery id and topic are unsigned: fresh ids add nothing, and a full
/// customer body re-sent as `customer.deleted` is no erasure request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_woocommerce_body_adds_nothing() {
    let f = payload_fixture("woocommerce/customer.created");
    let gw = Gateway::start(redis_store(Retention::default()).await, fixture_time(&f)).await;
    let tenant = "replay-woo";
    let source = gw.source_for(&f, tenant).await;
    assert_eq!(
        gw.deliver_fixture(&source.id, &f).await.status(),
        StatusCode::ACCEPTED
    );
    for n in 0..3 {
        let id = format!("{n:032x}");
        let headers = resend(&f, &[("X-WC-Webhook-Delivery-ID", &id)]);
        assert_eq!(
            gw.deliver(&source.id, &headers, &f.body).await.status(),
            StatusCode::OK
        );
    }
    for _ in 0..2 {
        let headers = resend(&f, &[("X-WC-Webhook-Topic", "customer.deleted")]);
        gw.deliver(&source.id, &headers, &f.body).await;
    }
    let events = gw.tenant_events(tenant, None).await;
    assert_eq!(types(&events), ["customer.created"]);
    assert_eq!(quarantined(&gw, tenant).await, 1);
}

/// Saleor names the event in an unsigned header: an order body re-sent as a cancellation
/// or a customer update proves neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saleor_body_must_match_its_event_name() {
    let now = Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap();
    let gw = Gateway::start(redis_store(Retention::default()).await, now).await;
    let tenant = "replay-saleor";
    let source = gw
        .create_source(json!({"tenant": tenant, "provider": "saleor",
                              "options": {"jwks": saleor_jwks(SALEOR_TEST_KEY).unwrap()}}))
        .await;
    let s = SAMPLES
        .iter()
        .find(|s| s.provider == Provider::Saleor && s.topic == "ORDER_CREATED")
        .unwrap();
    let signed = sign(&ProviderWebhook {
        provider: Provider::Saleor,
        secret: SALEOR_TEST_KEY,
        key_encoding: KeyEncoding::Base64,
        topic: s.topic,
        body: s.body.as_bytes(),
        now: now.timestamp(),
        delivery_id: "",
    })
    .unwrap();
    let as_event = |name: &str| -> Vec<(String, String)> {
        signed
            .iter()
            .map(|(k, v)| {
                let v = if k == "Saleor-Event" {
                    name.to_string()
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect()
    };
    let body = s.body.as_bytes();
    assert_eq!(
        gw.deliver(&source.id, &as_event("order_created"), body)
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        gw.deliver(&source.id, &as_event("order_created"), body)
            .await
            .status(),
        StatusCode::OK
    );
    for name in ["order_cancelled", "customer_updated", "order_cancelled"] {
        let res = gw.deliver(&source.id, &as_event(name), body).await;
        assert!(res.status().is_success(), "{name}");
    }
    assert_eq!(
        types(&gw.tenant_events(tenant, None).await),
        ["order.created"]
    );
    assert_eq!(quarantined(&gw, tenant).await, 1);
}

/// GitHub's delivery id and event name are unsigned: a captured body is one delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_github_body_is_kept_once() {
    let gw = Gateway::start(redis_store(Retention::default()).await, Utc::now()).await;
    let secret = "github-webhook-secret-0123456789";
    let tenant = "replay-github";
    let source = gw
        .create_source(json!({"tenant": tenant, "provider": "github", "secret": secret}))
        .await;
    let body = br#"{"action":"opened","issue":{"number":1}}"#;
    for (event, delivery) in [("issues", "d-1"), ("issues", "d-2"), ("push", "d-3")] {
        let headers = sign(&ProviderWebhook {
            provider: Provider::Github,
            secret,
            key_encoding: KeyEncoding::Base64,
            topic: event,
            body,
            now: 0,
            delivery_id: delivery,
        })
        .unwrap();
        let res = gw.deliver(&source.id, &headers, body).await;
        assert!(res.status().is_success(), "{event} {delivery}");
    }
    assert_eq!(quarantined(&gw, tenant).await, 1);
}

/// Ecwid signs only `eventCreated.eventId`: a body with another event type under the same
/// signature is the same delivery, and its unsigned statuses decide no fact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecwid_unsigned_fields_never_steer() {
    let now = Utc::now();
    let gw = Gateway::start(redis_store(Retention::default()).await, now).await;
    let secret = "ecwid-client-secret-0123456789";
    let tenant = "replay-ecwid";
    let source = gw
        .create_source(json!({"tenant": tenant, "provider": "ecwid", "secret": secret}))
        .await;
    let s = SAMPLES
        .iter()
        .find(|s| s.provider == Provider::Ecwid && s.topic == "order.updated")
        .unwrap();
    let body = omnigate::samples::fresh(s, now);
    let headers = sign(&ProviderWebhook {
        provider: Provider::Ecwid,
        secret,
        key_encoding: KeyEncoding::Base64,
        topic: s.topic,
        body: &body,
        now: now.timestamp(),
        delivery_id: "",
    })
    .unwrap();
    let res = gw.deliver(&source.id, &headers, &body).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let events = gw.tenant_events(tenant, None).await;
    assert_eq!(
        types(&events),
        ["order.updated"],
        "a pending update, not order.paid"
    );
    assert_eq!(events[0]["data"]["enrichment"], "pending");
    // The same signature over a body that now claims a cancellation.
    let mut forged: Value = serde_json::from_slice(&body).unwrap();
    forged["eventType"] = json!("order.created");
    forged["data"]["newPaymentStatus"] = json!("CANCELLED");
    let forged = serde_json::to_vec(&forged).unwrap();
    let res = gw.deliver(&source.id, &headers, &forged).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(gw.tenant_events(tenant, None).await.len(), 1);
}

/// A JWKS URL must be https (plain http only with the development flag), with a host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_urls_must_be_https() {
    let gw = Gateway::start(redis_store(Retention::default()).await, Utc::now()).await;
    for url in [
        "http://shop.example/.well-known/jwks.json",
        "ftp://shop.example/jwks.json",
        "https://user:pw@shop.example/jwks.json",
    ] {
        let res = gw
            .admin(Method::POST, "/v1/sources")
            .json(&json!({"tenant": "jwks-shop", "provider": "saleor",
                          "options": {"jwks_url": url}}))
            .send()
            .await
            .unwrap();
        let (status, _, detail) = problem_type(res).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}");
        assert!(detail.contains("jwks_url"), "{url}: {detail}");
    }
    gw.create_source(json!({"tenant": "jwks-shop", "provider": "saleor",
                            "options": {"jwks_url": "https://shop.example/.well-known/jwks.json"}}))
        .await;
}

async fn register(gw: &Gateway, body: Value) -> reqwest::Response {
    gw.admin(Method::POST, "/v1/plugins")
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn publishes(types: &[&str]) -> Value {
    json!(
        types
            .iter()
            .map(|t| json!({"type": t, "schema": {"type": "object"}}))
            .collect::<Vec<_>>()
    )
}

/// A plugin cannot publish into a canonical family, nor into a namespace another plugin
/// registered first: a rival installed in the same shop cannot inject events the others
/// trust.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_namespaces_are_owned_and_canonical_families_reserved() {
    let gw = Gateway::start(redis_store(Retention::default()).await, Utc::now()).await;
    for forged in [
        "order.refund_approved",
        "shipment.delivered_early",
        "customer.vip",
    ] {
        let res = register(
            &gw,
            json!({"name": "Rival", "event_types": [], "publishes": publishes(&[forged])}),
        )
        .await;
        let (status, _, detail) = problem_type(res).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{forged}");
        assert!(detail.contains("canonical family"), "{forged}: {detail}");
    }
    let owner = register(
        &gw,
        json!({"name": "Loyalty", "event_types": ["order.*"],
               "publishes": publishes(&["loyalty.points.changed"])}),
    )
    .await;
    assert_eq!(owner.status(), StatusCode::CREATED);
    let owner: Value = owner.json().await.unwrap();
    let rival = register(
        &gw,
        json!({"name": "Rival", "event_types": [],
               "publishes": publishes(&["loyalty.points.awarded", "rival.thing"])}),
    )
    .await;
    let (status, kind, detail) = problem_type(rival).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(kind.ends_with("/conflict"), "{kind}");
    assert!(detail.contains(owner["id"].as_str().unwrap()), "{detail}");
    // Nothing was claimed by the refused registration: `rival` is still free.
    let other = register(
        &gw,
        json!({"name": "Other", "event_types": [], "publishes": publishes(&["rival.thing"])}),
    )
    .await;
    assert_eq!(other.status(), StatusCode::CREATED);
}

/// The same idempotency key in two shops is two publications with two ids; in one shop,
/// one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_are_scoped_to_plugin_and_tenant() {
    let gw = Gateway::start(redis_store(Retention::default()).await, Utc::now()).await;
    let created: Value = register(
        &gw,
        json!({"name": "Loyalty", "event_types": [],
               "publishes": publishes(&["loyalty.points.changed"])}),
    )
    .await
    .json()
    .await
    .unwrap();
    let (id, key) = (
        created["id"].as_str().unwrap(),
        created["api_key"].as_str().unwrap(),
    );
    // Two shops in one log partition, so a key shared across them would collide there too.
    let tenants: Vec<String> = (0..)
        .map(|n| format!("scope-shop-{n}"))
        .filter(|t| omnigate::store::partition_of(t, 16) == 0)
        .take(2)
        .collect();
    for tenant in &tenants {
        let res = gw
            .admin(Method::POST, &format!("/v1/plugins/{id}/installations"))
            .json(&json!({"tenant": tenant, "scopes": ["events:publish"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    let publish = |tenant: String| {
        let (http, url, key) = (gw.http.clone(), gw.url("/v1/events"), key.to_string());
        async move {
            let res = http
                .post(url)
                .bearer_auth(key)
                .json(&json!({"tenant": tenant, "type": "loyalty.points.changed",
                              "data": {"balance": 1}, "idempotency_key": "order-1-points"}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::ACCEPTED);
            res.json::<Value>().await.unwrap()
        }
    };
    let a = publish(tenants[0].clone()).await;
    let b = publish(tenants[1].clone()).await;
    assert_ne!(a["duplicate"], json!(true));
    assert_ne!(
        b["duplicate"],
        json!(true),
        "another shop's publication is no duplicate"
    );
    assert_ne!(a["event_id"], b["event_id"]);
    let again = publish(tenants[0].clone()).await;
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["event_id"], a["event_id"]);
}

/// The SDK makes one idempotency key before its retries: a publication whose answer was
/// lost (503 after the write landed) is sent again with the same key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_keeps_one_idempotency_key_across_retries() {
    use actix_web::{App, HttpResponse, HttpServer, web};
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let recorded = seen.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = HttpServer::new(move || {
        let recorded = recorded.clone();
        App::new().route(
            "/v1/events",
            web::post().to(move |body: web::Json<Value>| {
                let recorded = recorded.clone();
                async move {
                    let mut seen = recorded.lock().unwrap();
                    seen.push(body.into_inner());
                    if seen.len() == 1 {
                        HttpResponse::ServiceUnavailable().finish()
                    } else {
                        HttpResponse::Accepted()
                            .json(json!({"event_id": "evt_1", "duplicate": true}))
                    }
                }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    let client = omnigate_sdk::Client::builder(&url, "ogk_test")
        .backoff(std::time::Duration::from_millis(10))
        .build()
        .unwrap();
    let published = client
        .events()
        .publish(&omnigate_schemas::api::PublishEvent {
            tenant: "shop".into(),
            event_type: "loyalty.points.changed".into(),
            data: json!({"balance": 1}),
            subject: None,
            occurred_at: None,
            idempotency_key: None,
        })
        .await
        .unwrap();
    assert!(published.duplicate);
    handle.stop(true).await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "one retry after the 503");
    let key = seen[0]["idempotency_key"].as_str().expect("a key was made");
    assert!(!key.is_empty());
    assert_eq!(
        seen[1]["idempotency_key"], key,
        "the retry carries the same key"
    );
}

/// Signs a bundled sample (fresh times) as its provider would, with `topic` in place of
/// the sample's own.
fn signed_sample(
    provider: Provider,
    sample_topic: &str,
    topic: &str,
    secret: &str,
    now: chrono::DateTime<Utc>,
) -> (Vec<(String, String)>, Vec<u8>) {
    let s = SAMPLES
        .iter()
        .find(|s| s.provider == provider && s.topic == sample_topic)
        .unwrap();
    let body = omnigate::samples::fresh(s, now);
    let headers = sign(&ProviderWebhook {
        provider,
        secret,
        key_encoding: KeyEncoding::Base64,
        topic,
        body: &body,
        now: now.timestamp(),
        delivery_id: &format!("d-{topic}"),
    })
    .unwrap();
    (headers, body)
}

/// A captured body of one resource re-sent under another resource's topic proves nothing:
/// a customer erasure is no shop erasure, a refund no shipment, an order no customer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_re_sent_as_another_resource_proves_nothing() {
    let now = Utc::now();
    let gw = Gateway::start(redis_store(Retention::default()).await, now).await;
    let secret = "shpss_resource_kinds_0123456789";
    let tenant = "kinds-shopify";
    let source = gw
        .create_source(json!({"tenant": tenant, "provider": "shopify", "secret": secret}))
        .await;
    for (sample, as_topic) in [
        ("customers/redact", "shop/redact"),
        ("refunds/create", "fulfillments/create"),
        ("refunds/create", "fulfillments/update"),
        ("customers/create", "orders/create"),
    ] {
        let (headers, body) = signed_sample(Provider::Shopify, sample, as_topic, secret, now);
        let res = gw.deliver(&source.id, &headers, &body).await;
        assert!(res.status().is_success(), "{sample} as {as_topic}");
    }
    assert!(
        gw.tenant_events(tenant, None).await.is_empty(),
        "no erasure of the shop, no shipment, no order"
    );
    // Each body is kept once for the operator, whatever topics it was tried under.
    assert_eq!(quarantined(&gw, tenant).await, 3);

    let woo_secret = "wc_resource_kinds_0123456789";
    let woo = gw
        .create_source(
            json!({"tenant": "kinds-woo", "provider": "woocommerce", "secret": woo_secret}),
        )
        .await;
    let (headers, body) = signed_sample(
        Provider::Woocommerce,
        "order.created",
        "customer.updated",
        woo_secret,
        now,
    );
    assert!(
        gw.deliver(&woo.id, &headers, &body)
            .await
            .status()
            .is_success()
    );
    assert!(
        gw.tenant_events("kinds-woo", None).await.is_empty(),
        "an order is no customer"
    );
}

/// A body that states no time of its own (a Shopify return request) cannot be refused as
/// stale, so what it proved is remembered far longer than the dedupe window: a replay
/// after the window still adds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untimed_body_replayed_after_the_dedupe_window_adds_nothing() {
    let now = Utc::now();
    let gw = Gateway::start_with(redis_store(Retention::default()).await, now, |s| {
        s.dedupe_ttl_secs = 1
    })
    .await;
    let secret = "shpss_untimed_body_0123456789";
    let tenant = "untimed-shop";
    let source = gw
        .create_source(json!({"tenant": tenant, "provider": "shopify", "secret": secret}))
        .await;
    let (headers, body) = signed_sample(
        Provider::Shopify,
        "returns/request",
        "returns/request",
        secret,
        now,
    );
    assert_eq!(
        gw.deliver(&source.id, &headers, &body).await.status(),
        StatusCode::ACCEPTED
    );
    // Past the (one-second) dedupe window, with fresh unsigned headers.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let replay: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| match k.as_str() {
            "X-Shopify-Webhook-Id" | "X-Shopify-Event-Id" => (k.clone(), "replayed".into()),
            _ => (k.clone(), v.clone()),
        })
        .collect();
    assert_eq!(
        gw.deliver(&source.id, &replay, &body).await.status(),
        StatusCode::OK
    );
    assert_eq!(gw.tenant_events(tenant, None).await.len(), 1);
}

/// Ecwid signs only `eventCreated.eventId`: one captured signature re-sent with other
/// unsigned bytes is one quarantine entry, not one per variation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ecwid_signature_cannot_fill_the_quarantine() {
    let now = Utc::now();
    let gw = Gateway::start(redis_store(Retention::default()).await, now).await;
    let secret = "ecwid-client-secret-0123456789";
    let tenant = "flood-ecwid";
    let source = gw
        .create_source(json!({"tenant": tenant, "provider": "ecwid", "secret": secret}))
        .await;
    let (headers, body) = signed_sample(
        Provider::Ecwid,
        "order.updated",
        "order.updated",
        secret,
        now,
    );
    let mut body: Value = serde_json::from_slice(&body).unwrap();
    body["eventType"] = json!("unmapped.thing");
    for n in 0..5 {
        body["padding"] = json!("x".repeat(1000 * (n + 1)));
        let bytes = serde_json::to_vec(&body).unwrap();
        assert!(
            gw.deliver(&source.id, &headers, &bytes)
                .await
                .status()
                .is_success()
        );
    }
    assert_eq!(quarantined(&gw, tenant).await, 1);
}

/// Unsigned junk sent to a known webhook URL does not use up the shop's rate: the real
/// delivery that follows is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_cannot_spend_a_shops_rate_limit() {
    let gw = Gateway::start_with(redis_store(Retention::default()).await, Utc::now(), |s| {
        s.webhook_rate = 1;
        s.webhook_burst = 1;
    })
    .await;
    let secret = "shpss_junk_rate_0123456789";
    let source = gw
        .create_source(json!({"tenant": "junk-shop", "provider": "shopify", "secret": secret}))
        .await;
    for _ in 0..20 {
        let res = gw
            .deliver(
                &source.id,
                &[("X-Shopify-Hmac-Sha256".into(), "AAAA".into())],
                b"{}",
            )
            .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let (headers, body) = signed_sample(
        Provider::Shopify,
        "orders/create",
        "orders/create",
        secret,
        Utc::now(),
    );
    gw.clock.set(Utc::now());
    assert_eq!(
        gw.deliver(&source.id, &headers, &body).await.status(),
        StatusCode::ACCEPTED
    );
}
