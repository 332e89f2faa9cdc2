//! Source secrets are sealed before they reach Redis: a copy of Redis holds no secret,
//! webhooks still verify, keys rotate with `omnigate secrets rewrap`, and a gateway on Redis
//! refuses to start without a key unless plaintext is asked for.

use chrono::{TimeZone, Utc};
use omnigate::config::Settings;
use omnigate::store::sealed::{self, Sealer};
use omnigate::store::{PollState, Pollers, Registry, Retention, SecretValue, Store, redis_options};
use omnigate_tests::{
    Gateway, RedisProcess, TEST_SECRET_KEY, redis_store_with, redis_store_with_prefix, redis_url,
    unique_prefix,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

// Test keys only: base64 of 32 fixed bytes each.
const KEY_A: &str = "c2VhbGVkLWF0LXJlc3Qtcm90YXRpb24ta2V5LWEtMDE=";
const KEY_B: &str = "c2VhbGVkLWF0LXJlc3Qtcm90YXRpb24ta2V5LWItMDI=";

/// A secret no other test uses, so finding its bytes anywhere means it leaked.
fn fresh_secret() -> String {
    format!("shpss_{}", uuid::Uuid::new_v4().simple())
}

/// A Shopify order created at 2025-03-14T09:00:00Z, signed with `secret`.
fn signed_order(secret: &str, n: u32) -> (Vec<(String, String)>, Vec<u8>) {
    let body = format!(
        r##"{{"id":{n},"name":"#{n}","created_at":"2025-03-14T09:00:00Z","currency":"EUR","total_price":"1.00","line_items":[]}}"##
    )
    .into_bytes();
    let headers = vec![
        ("X-Shopify-Topic".into(), "orders/create".into()),
        (
            "X-Shopify-Hmac-Sha256".into(),
            omnigate::sign::body_hmac_base64(secret, &body),
        ),
        ("X-Shopify-Event-Id".into(), format!("e{n}")),
        ("Content-Type".into(), "application/json".into()),
    ];
    (headers, body)
}

/// Every key name, field and value under `prefix`, concatenated: what a dump of Redis
/// would hand an attacker.
async fn raw_redis(prefix: &str) -> Vec<u8> {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut keys: Vec<String> = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, page): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .unwrap();
        keys.extend(page);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    assert!(!keys.is_empty(), "nothing stored under {prefix}");
    let mut all = Vec::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let read = match kind.as_str() {
            "string" => redis::cmd("GET").arg(&key).clone(),
            "hash" => redis::cmd("HGETALL").arg(&key).clone(),
            "stream" => redis::cmd("XRANGE").arg(&key).arg("-").arg("+").clone(),
            "list" => redis::cmd("LRANGE").arg(&key).arg(0).arg(-1).clone(),
            "set" => redis::cmd("SMEMBERS").arg(&key).clone(),
            "zset" => redis::cmd("ZRANGE").arg(&key).arg(0).arg(-1).clone(),
            _ => continue,
        };
        let value: redis::Value = read.query_async(&mut conn).await.unwrap();
        all.extend_from_slice(key.as_bytes());
        flatten(&value, &mut all);
    }
    all
}

fn flatten(value: &redis::Value, out: &mut Vec<u8>) {
    match value {
        redis::Value::BulkString(b) => out.extend_from_slice(b),
        redis::Value::SimpleString(s) => out.extend_from_slice(s.as_bytes()),
        redis::Value::Array(items) | redis::Value::Set(items) => {
            items.iter().for_each(|v| flatten(v, out))
        }
        redis::Value::Map(pairs) => pairs.iter().for_each(|(k, v)| {
            flatten(k, out);
            flatten(v, out);
        }),
        _ => {}
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The stored JSON of a source, as Redis holds it.
async fn stored_source(prefix: &str, id: &str) -> Value {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let json: String = redis::cmd("HGET")
        .arg(format!("{prefix}:cfg:sources"))
        .arg(id)
        .query_async(&mut conn)
        .await
        .unwrap();
    serde_json::from_str(&json).unwrap()
}

fn settings_for(prefix: &str) -> Settings {
    Settings {
        redis_url: Some(redis_url()),
        redis_prefix: prefix.to_string(),
        ..Settings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_sealed_in_redis_and_webhooks_still_verify() {
    let t0 = Utc.with_ymd_and_hms(2025, 3, 14, 9, 0, 0).unwrap();
    let (store, prefix) = redis_store_with_prefix(Retention::default()).await;
    // No source cache: each webhook reads (and opens) the source from Redis.
    let gw = Gateway::start_with(store, t0, |s| s.source_cache_ms = 0).await;
    let old = fresh_secret();
    let view = gw
        .create_source(json!({"tenant": "sealed-shop", "provider": "shopify", "secret": old}))
        .await;

    let (headers, body) = signed_order(&old, 1001);
    let res = gw.deliver(&view.id, &headers, &body).await;
    assert_eq!(
        res.status(),
        StatusCode::ACCEPTED,
        "{}",
        res.text().await.unwrap()
    );

    // Rotating keeps both secrets for a grace period: both are sealed.
    let new = fresh_secret();
    let rotated = gw
        .admin(Method::PATCH, &format!("/v1/sources/{}", view.id))
        .json(&json!({"secret": new}))
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), StatusCode::OK);
    for (secret, n) in [(&new, 1002), (&old, 1003)] {
        let (headers, body) = signed_order(secret, n);
        let res = gw.deliver(&view.id, &headers, &body).await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
    }
    let (headers, body) = signed_order(&fresh_secret(), 1004);
    let res = gw.deliver(&view.id, &headers, &body).await;
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "a wrong secret still fails"
    );

    let dump = raw_redis(&prefix).await;
    for secret in [&old, &new] {
        assert!(!contains(&dump, secret), "{secret} is stored in plaintext");
    }
    let stored = stored_source(&prefix, &view.id).await;
    let sealer = omnigate_tests::test_sealer();
    let secrets = stored["secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 2);
    for s in secrets {
        let value = s["value"].as_str().unwrap();
        assert!(
            value.starts_with(&format!("sealed:v1:{}:", sealer.key_id())),
            "{value}"
        );
    }
    assert_eq!(gw.tenant_events("sealed-shop", None).await.len(), 3);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrap_seals_plaintext_secrets_and_rotates_keys() {
    let t0 = Utc.with_ymd_and_hms(2025, 3, 14, 9, 0, 0).unwrap();
    let prefix = unique_prefix();
    let url = redis_url();
    let secret = fresh_secret();

    // A gateway from before sealing (or in the insecure mode) stored it in plaintext.
    let plain = redis_store_with(&url, &prefix, Retention::default(), None).await;
    let gw = Gateway::start(Arc::new(plain), t0).await;
    let id = gw
        .create_source(json!({"tenant": "rewrap-shop", "provider": "shopify", "secret": secret}))
        .await
        .id;
    // And a push plugin's signing secret, which is sealed the same way.
    let res = gw
        .admin(reqwest::Method::POST, "/v1/plugins")
        .json(&json!({"name": "CRM", "event_types": ["order.*"],
                      "delivery": {"mode": "push", "url": "https://crm.example.com/hooks"}}))
        .send()
        .await
        .unwrap();
    let created: serde_json::Value = res.json().await.unwrap();
    let plugin_id = created["id"].as_str().unwrap().to_string();
    let signing = created["signing_secret"].as_str().unwrap().to_string();
    gw.stop().await;
    // And a poll source's OAuth tokens, as a poller keeps them.
    let plain = redis_store_with(&url, &prefix, Retention::default(), None).await;
    let tokens = PollState {
        cursor: Some("E0042".into()),
        access_token: Some(SecretValue::new("allegro-access-token-plain")),
        refresh_token: Some(SecretValue::new("allegro-refresh-token-plain")),
        ..PollState::default()
    };
    let lease = std::time::Duration::from_secs(60);
    assert!(plain.poll_lease(&id, "test", lease).await.unwrap());
    assert!(plain.put_poll_state(&id, "test", &tokens).await.unwrap());
    assert!(contains(&raw_redis(&prefix).await, &secret));
    assert!(contains(&raw_redis(&prefix).await, &signing[6..]));
    assert!(contains(
        &raw_redis(&prefix).await,
        "allegro-refresh-token-plain"
    ));

    // A keyed store still reads the legacy plaintext, and rewrap seals it.
    let a = Arc::new(Sealer::new(KEY_A, &[] as &[&str]).unwrap());
    let store_a = redis_store_with(&url, &prefix, Retention::default(), Some(a.clone())).await;
    let before = store_a.get_source(&id).await.unwrap().unwrap();
    assert_eq!(before.secrets[0].value.expose(), secret);
    let report = sealed::rewrap(&store_a).await.unwrap();
    assert_eq!(
        (
            report.sources,
            report.resealed_sources,
            report.resealed_secrets
        ),
        (1, 1, 1)
    );
    assert_eq!(
        (report.resealed_plugins, report.resealed_signing_secrets),
        (1, 1)
    );
    assert_eq!(report.resealed_poll_tokens, 2);
    assert_eq!(report.key_id, a.key_id());
    assert!(!contains(&raw_redis(&prefix).await, &secret));
    assert!(!contains(&raw_redis(&prefix).await, &signing[6..]));
    assert!(!contains(
        &raw_redis(&prefix).await,
        "allegro-refresh-token-plain"
    ));
    assert_eq!(store_a.poll_state(&id).await.unwrap(), Some(tokens.clone()));
    assert_eq!(store_a.get_source(&id).await.unwrap().unwrap(), before);
    // Running it again changes nothing.
    let again = sealed::rewrap(&store_a).await.unwrap();
    assert_eq!((again.sources, again.resealed_secrets), (1, 0));

    // Rotation: the new key current, the old one previous, then `omnigate secrets rewrap`.
    let rotating = Settings {
        secret_key: Some(KEY_B.into()),
        secret_key_previous: vec![KEY_A.into()],
        ..settings_for(&prefix)
    };
    let report = sealed::rewrap_with_settings(&rotating).await.unwrap();
    assert_eq!((report.resealed_sources, report.resealed_secrets), (1, 1));
    assert_eq!(report.resealed_signing_secrets, 1);
    assert_eq!(report.resealed_poll_tokens, 2);
    assert!(
        report
            .to_string()
            .contains("re-sealed 1 secrets in 1 of 1 sources")
    );

    // The old key can go: the new one alone opens everything, the old one nothing.
    let b = Arc::new(Sealer::new(KEY_B, &[] as &[&str]).unwrap());
    let store_b = redis_store_with(&url, &prefix, Retention::default(), Some(b.clone())).await;
    assert_eq!(store_b.get_source(&id).await.unwrap().unwrap(), before);
    let plugin = store_b.get_plugin(&plugin_id).await.unwrap().unwrap();
    assert_eq!(plugin.push.unwrap().secrets[0].value.expose(), signing);
    assert_eq!(store_b.poll_state(&id).await.unwrap(), Some(tokens));
    assert!(
        store_a.get_plugin(&plugin_id).await.is_err(),
        "the old key opens nothing"
    );
    let err = store_a.get_source(&id).await.unwrap_err().to_string();
    assert!(err.contains(b.key_id()), "{err}");
    // A plaintext-mode store refuses sealed secrets instead of using them as secrets.
    let plain = redis_store_with(&url, &prefix, Retention::default(), None).await;
    let err = plain.get_source(&id).await.unwrap_err().to_string();
    assert!(err.contains("OMNIGATE_SECRET_KEY"), "{err}");

    // Webhooks verify against the re-sealed secret.
    let gw = Gateway::start_with(Arc::new(store_b), t0, |s| s.source_cache_ms = 0).await;
    let (headers, body) = signed_order(&secret, 2001);
    let res = gw.deliver(&id, &headers, &body).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_without_a_secret_key_refuses_to_start() {
    let settings = settings_for(&unique_prefix());
    let err = redis_options(&settings).unwrap_err().to_string();
    for needed in [
        "OMNIGATE_SECRET_KEY",
        "head -c 32 /dev/urandom | base64",
        "--insecure-plaintext-secrets",
    ] {
        assert!(err.contains(needed), "{needed} missing from: {err}");
    }
    let err = sealed::rewrap_with_settings(&settings)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("OMNIGATE_SECRET_KEY"), "{err}");

    // The explicit escape hatch starts without sealing; a key turns sealing on.
    let insecure = Settings {
        insecure_plaintext_secrets: true,
        ..settings.clone()
    };
    assert!(redis_options(&insecure).unwrap().sealer.is_none());
    let keyed = Settings {
        secret_key: Some(TEST_SECRET_KEY.into()),
        ..settings.clone()
    };
    assert!(redis_options(&keyed).unwrap().sealer.is_some());
    let bad = Settings {
        secret_key: Some("c2hvcnQ=".into()),
        ..settings
    };
    let err = redis_options(&bad).unwrap_err().to_string();
    assert!(
        err.contains("32 random bytes") && !err.contains("c2hvcnQ="),
        "{err}"
    );
    // The memory store needs no key.
    assert!(
        sealed::from_settings(&Settings::default())
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicting_redis_is_reported() {
    let store = redis_store_with(&redis_url(), &unique_prefix(), Retention::default(), None).await;
    assert!(
        store.eviction_policy().await.is_ok(),
        "the suite's Redis allows CONFIG GET"
    );

    let evicting = RedisProcess::start_with(&["--maxmemory-policy", "allkeys-lru"]);
    let store = redis_store_with(&evicting.url(), "og", Retention::default(), None).await;
    assert_eq!(store.eviction_policy().await.unwrap(), "allkeys-lru");
    assert_eq!(
        store.check_eviction_policy().await.as_deref(),
        Some("allkeys-lru")
    );

    // Managed Redis often refuses CONFIG: the check says it could not look, and start-up
    // goes on.
    let locked = RedisProcess::start_with(&["--rename-command", "CONFIG", ""]);
    let store = redis_store_with(&locked.url(), "og", Retention::default(), None).await;
    assert!(store.eviction_policy().await.is_err());
    assert_eq!(store.check_eviction_policy().await, None);
    store.ping().await.unwrap();
}
