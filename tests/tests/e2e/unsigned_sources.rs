//! Marketplaces that sign nothing (Ozon, Mercado Libre): the webhook URL carries a secret
//! the gateway made, shown once; a source may also name the networks its deliveries come
//! from. Each is answered the way its sender counts as received.

use omnigate::store::Retention;
use omnigate_tests::{Gateway, redis_store};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn gateway() -> Gateway {
    let now = chrono::Utc::now();
    Gateway::start_with(redis_store(Retention::default()).await, now, |s| {
        // The tests' requests come from 127.0.0.1, as from a proxy in front.
        s.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await
}

fn json_headers(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut h = vec![("Content-Type".to_string(), "application/json".to_string())];
    h.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    h
}

fn posting(kind: &str, number: &str) -> Vec<u8> {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    json!({"message_type": kind, "seller_id": 2041857, "posting_number": number,
           "in_process_at": now, "products": [{"sku": 1390927331, "quantity": 1}]})
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ozon_shop_posts_to_a_secret_url_and_is_answered_as_ozon_expects() {
    let gw = gateway().await;
    let created = gw
        .admin(Method::POST, "/v1/sources")
        .json(&json!({"tenant": "ozon-shop", "provider": "ozon"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    let path = created["webhook_path"].as_str().unwrap().to_string();
    let secret = path.rsplit('/').next().unwrap().to_string();
    assert_eq!(secret.len(), 43, "{path}");
    // Shown once: afterwards the path ends in a placeholder.
    let read = gw.admin_json(&format!("/v1/sources/{id}")).await;
    assert_eq!(
        read["webhook_path"],
        format!("/v1/webhooks/{id}/{{url_secret}}")
    );
    assert!(!read.to_string().contains(&secret));

    // Ozon checks the URL with a ping and wants its name, version and time back.
    let ping = json!({"message_type": "TYPE_PING", "time": "2025-05-31T10:00:00Z"});
    let res = gw
        .deliver_to(&path, &json_headers(&[]), ping.to_string().as_bytes())
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["name"], "omnigate");
    assert!(
        answer["version"].is_string() && answer["time"].is_string(),
        "{answer}"
    );

    // A new posting: written, answered 200 with `result: true`.
    let body = posting("TYPE_NEW_POSTING", "57195475-0050-3");
    let res = gw.deliver_to(&path, &json_headers(&[]), &body).await;
    assert_eq!(res.status(), StatusCode::OK);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["result"], true);
    assert_eq!(answer["event_ids"].as_array().unwrap().len(), 1, "{answer}");
    let events = gw.tenant_events("ozon-shop", Some("order.created")).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["subject"], "order/57195475-0050-3");
    assert_eq!(events[0]["data"]["enrichment"], "pending");
    // Ozon's retry of the same body adds nothing.
    let res = gw.deliver_to(&path, &json_headers(&[]), &body).await;
    let answer: Value = res.json().await.unwrap();
    assert_eq!(
        (answer["duplicate"].clone(), answer["result"].clone()),
        (json!(true), json!(true))
    );

    // Without the secret, or with a wrong one: refused, nothing written.
    for wrong in [
        format!("/v1/webhooks/{id}"),
        format!("/v1/webhooks/{id}/{}", "x".repeat(43)),
    ] {
        let other = posting("TYPE_NEW_POSTING", "99999999-0001-1");
        let res = gw.deliver_to(&wrong, &json_headers(&[]), &other).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{wrong}");
    }
    assert_eq!(gw.tenant_events("ozon-shop", None).await.len(), 1);

    // A signed provider's source has no secret path: its shape gives nothing away.
    let shopify = gw
        .create_source(json!({"tenant": "s", "provider": "shopify",
                              "secret": "shpss_0123456789abcdef"}))
        .await;
    let res = gw
        .deliver_to(
            &format!("/v1/webhooks/{}/{secret}", shopify.id),
            &json_headers(&[]),
            &body,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_may_name_the_networks_its_deliveries_come_from() {
    let gw = gateway().await;
    let source = gw
        .create_source(json!({"tenant": "ozon-shop", "provider": "ozon",
                              "secret": "my-own-url-secret-0123456789",
                              "options": {"allow_cidrs": ["195.34.21.0/24", "185.73.192.0/22"]}}))
        .await;
    let path = format!("/v1/webhooks/{}/my-own-url-secret-0123456789", source.id);
    // From the proxy itself (no forwarded address): not an allowed network.
    let res = gw
        .deliver_to(
            &path,
            &json_headers(&[]),
            &posting("TYPE_NEW_POSTING", "1-1-1"),
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let problem: Value = res.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("allow_cidrs"),
        "{problem}"
    );
    // Forwarded by the trusted proxy for an Ozon address: accepted.
    let res = gw
        .deliver_to(
            &path,
            &json_headers(&[("X-Forwarded-For", "195.34.21.7")]),
            &posting("TYPE_NEW_POSTING", "1-1-2"),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    // A forged entry to the left of the proxy's own is not believed.
    let res = gw
        .deliver_to(
            &path,
            &json_headers(&[("X-Forwarded-For", "195.34.21.7, 203.0.113.9")]),
            &posting("TYPE_NEW_POSTING", "1-1-3"),
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(gw.tenant_events("ozon-shop", None).await.len(), 1);

    // A list is for unsigned sources only, and must parse.
    for (provider, cidrs) in [
        ("shopify", json!(["10.0.0.0/8"])),
        ("ozon", json!(["10.0.0.0/33"])),
    ] {
        let res = gw
            .admin(Method::POST, "/v1/sources")
            .json(&json!({"tenant": "t", "provider": provider,
                          "secret": "shpss_0123456789abcdef",
                          "options": {"allow_cidrs": cidrs}}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{provider}");
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mercado_libre_notifications_are_deduplicated_on_their_id_and_rotated_urls_overlap() {
    let gw = gateway().await;
    let created = gw
        .admin(Method::POST, "/v1/sources")
        .json(&json!({"tenant": "ml-shop", "provider": "mercadolibre"}))
        .send()
        .await
        .unwrap();
    let created: Value = created.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    let old_path = created["webhook_path"].as_str().unwrap().to_string();
    let note = |attempt: u32, topic: &str, resource: &str| {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        json!({"_id": format!("note-{topic}{resource}"), "resource": resource, "topic": topic,
               "user_id": 468424240, "application_id": 5503910054141466_u64,
               "attempts": attempt, "sent": now, "received": now})
        .to_string()
        .into_bytes()
    };
    let res = gw
        .deliver_to(
            &old_path,
            &json_headers(&[]),
            &note(1, "orders_v2", "/orders/2000008521436172"),
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "Mercado Libre counts only a 200"
    );
    // Its retry (another attempt, another time, the same `_id`) adds nothing.
    let res = gw
        .deliver_to(
            &old_path,
            &json_headers(&[]),
            &note(2, "orders_v2", "/orders/2000008521436172"),
        )
        .await;
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["duplicate"], true, "{answer}");
    let events = gw.tenant_events("ml-shop", None).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "order.updated");
    assert_eq!(events[0]["subject"], "order/2000008521436172");
    assert_eq!(
        events[0]["data"]["resource_url"],
        "https://api.mercadolibre.com/orders/2000008521436172"
    );

    // A payment names no order until it is read: kept in quarantine, saying why.
    let res = gw
        .deliver_to(
            &old_path,
            &json_headers(&[]),
            &note(1, "payments", "/collections/61733520"),
        )
        .await;
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["quarantined"], true, "{answer}");
    let q = gw.admin_json("/v1/quarantine").await;
    assert!(q.to_string().contains("names no order until"), "{q}");

    // A new URL secret: shown once; the old URL keeps working through the grace period.
    let res = gw
        .admin(Method::PATCH, &format!("/v1/sources/{id}"))
        .json(&json!({"secret": "rotated-url-secret-0123456789"}))
        .send()
        .await
        .unwrap();
    let rotated: Value = res.json().await.unwrap();
    let new_path = format!("/v1/webhooks/{id}/rotated-url-secret-0123456789");
    assert_eq!(rotated["webhook_path"], new_path.as_str());
    for (path, n) in [(&old_path, "/items/MLA1"), (&new_path, "/items/MLA2")] {
        let res = gw
            .deliver_to(path, &json_headers(&[]), &note(1, "items", n))
            .await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
    }
    gw.stop().await;
}
