//! Every bundled sample, signed the way its provider signs, goes through the gateway on
//! Redis and becomes the events it promises.

use chrono::{TimeZone, Utc};
use omnigate::samples::SAMPLES;
use omnigate::sign::{Delivery, sign};
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
            _ => "sample-secret",
        };
        let tenant = format!("samples-{i}");
        let source = gw
            .create_source(json!({"tenant": tenant, "provider": s.provider, "secret": secret}))
            .await;
        // Ecwid signs the body's own time; the others sign "now".
        let signed_at = match s.provider {
            Provider::Ecwid => serde_json::from_str::<Value>(s.body).unwrap()["eventCreated"]
                .as_i64()
                .unwrap(),
            _ => now.timestamp(),
        };
        if s.provider == Provider::Ecwid {
            gw.clock
                .set(chrono::DateTime::from_timestamp(signed_at + 5, 0).unwrap());
        } else {
            gw.clock.set(now);
        }
        let headers = sign(&Delivery {
            provider: s.provider,
            secret,
            key_encoding: KeyEncoding::Base64,
            topic: s.topic,
            body: s.body.as_bytes(),
            now: signed_at,
            delivery_id: &format!("sample-{i}"),
        })
        .unwrap();
        let res = gw.deliver(&source.id, &headers, s.body.as_bytes()).await;
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(
            status,
            StatusCode::ACCEPTED,
            "{} {}: {body}",
            s.provider,
            s.topic
        );
        let events = gw.tenant_events(&tenant, None).await;
        let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(types, s.events, "{} {}", s.provider, s.topic);
    }
}
