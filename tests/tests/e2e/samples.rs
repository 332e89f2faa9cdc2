//! Every bundled sample, signed the way its provider signs, goes through the gateway on
//! Redis and becomes the events it promises.

use chrono::{TimeZone, Utc};
use omnigate::samples::{SALEOR_TEST_KEY, SAMPLES};
use omnigate::sign::{ProviderWebhook, saleor_jwks, sign};
use omnigate::store::Retention;
use omnigate_schemas::api::{KeyEncoding, Provider};
use omnigate_tests::{Gateway, redis_store};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_becomes_its_events_through_the_gateway() {
    let now = Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap();
    let gw = Gateway::start(redis_store(Retention::default()).await, now).await;
    for (i, s) in SAMPLES.iter().enumerate() {
        let secret = match s.provider {
            Provider::StandardWebhooks | Provider::Etsy => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            Provider::Saleor => SALEOR_TEST_KEY,
            // Also a valid URL secret, for the providers that sign nothing.
            _ => "sample-signing-secret-0123456789",
        };
        let tenant = format!("samples-{i}");
        let options = match s.provider {
            // The shop publishes its public key; the gateway holds no secret for JWS.
            Provider::Saleor => json!({"jwks": saleor_jwks(SALEOR_TEST_KEY).unwrap()}),
            _ => json!({}),
        };
        let mut create = json!({"tenant": tenant, "provider": s.provider, "options": options});
        if s.provider != Provider::Saleor {
            create["secret"] = json!(secret);
        }
        let source = gw.create_source(create).await;
        // Sent as the shop would send it now: fresh times in the body.
        let body = omnigate::samples::fresh(s, now);
        // Ecwid signs the body's own time; the others sign "now".
        let signed_at = match s.provider {
            Provider::Ecwid => serde_json::from_slice::<Value>(&body).unwrap()["eventCreated"]
                .as_i64()
                .unwrap(),
            _ => now.timestamp(),
        };
        let headers = sign(&ProviderWebhook {
            provider: s.provider,
            secret,
            key_encoding: KeyEncoding::Base64,
            topic: s.topic,
            body: &body,
            now: signed_at,
            delivery_id: &format!("sample-{i}"),
        })
        .unwrap();
        let path = omnigate::sign::webhook_path(s.provider, &source.id, secret);
        let res = gw.deliver_to(&path, &headers, &body).await;
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        // Ozon and Mercado Libre count only a 200 as received.
        let written = match omnigate::providers::of(s.provider).answer {
            omnigate::providers::Answer::Standard => StatusCode::ACCEPTED,
            _ => StatusCode::OK,
        };
        assert_eq!(status, written, "{} {}: {body}", s.provider, s.topic);
        assert!(
            body["event_ids"].is_array(),
            "{} {}: {body}",
            s.provider,
            s.topic
        );
        let events = gw.tenant_events(&tenant, None).await;
        let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(types, s.events, "{} {}", s.provider, s.topic);
    }
}

/// A Saleor shop publishes its keys at a JWKS URL; the gateway fetches and caches them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saleor_keys_are_fetched_from_the_shops_jwks_url() {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let jwks = saleor_jwks(SALEOR_TEST_KEY).unwrap();
    let served = jwks.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let shop = HttpServer::new(move || {
        let body = served.clone();
        App::new().route(
            "/.well-known/jwks.json",
            web::get().to(move || {
                let body = body.clone();
                async move { HttpResponse::Ok().json(body) }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    let shop_handle = shop.handle();
    tokio::spawn(shop);

    let now = Utc::now();
    // The test shop serves plain http on loopback: allowed only by the development flag.
    let gw = Gateway::start_with(redis_store(Retention::default()).await, now, |s| {
        s.jwks_allow_http = true
    })
    .await;
    let source = gw
        .create_source(json!({"tenant": "saleor-shop", "provider": "saleor",
            "options": {"jwks_url": format!("http://{addr}/.well-known/jwks.json")}}))
        .await;
    let s = SAMPLES.iter().find(|s| s.topic == "ORDER_CREATED").unwrap();
    let body = omnigate::samples::fresh(s, now);
    let headers = sign(&ProviderWebhook {
        provider: Provider::Saleor,
        secret: SALEOR_TEST_KEY,
        key_encoding: KeyEncoding::Base64,
        topic: s.topic,
        body: &body,
        now: now.timestamp(),
        delivery_id: "",
    })
    .unwrap();
    let res = gw.deliver(&source.id, &headers, &body).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    // The same delivery again is recognised (the same event name and signed bytes).
    let res = gw.deliver(&source.id, &headers, &body).await;
    assert_eq!(res.status(), StatusCode::OK);
    // Signed by a key the shop does not publish: refused.
    let mut forged = headers.clone();
    for (k, v) in &mut forged {
        if k == "Saleor-Signature" {
            let (h, _) = v.split_once("..").unwrap();
            *v = format!("{h}..{}", "A".repeat(342));
        }
    }
    let res = gw.deliver(&source.id, &forged, &body).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let events = gw.tenant_events("saleor-shop", None).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0]["data"]["total"],
        json!({"amount": "84.90", "currency": "EUR"})
    );
    shop_handle.stop(true).await;
}
