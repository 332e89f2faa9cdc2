//! The admin API as an operator uses it: connect a shop, rotate its secret without losing
//! deliveries, disconnect it; every mistake answered with a problem document.

use chrono::{Duration, TimeZone, Utc};
use omnigate::store::Retention;
use omnigate_tests::{ADMIN_TOKEN, Gateway, memory_store, redis_store};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const BIG_SECRET: &str = "shpss_big_0123456789abcdef";
const SECRET_A: &str = "shpss_page_a_0123456789";
const SECRET_B: &str = "shpss_page_b_0123456789";

fn shopify_headers(secret: &str, body: &[u8], event_id: &str) -> Vec<(String, String)> {
    vec![
        ("X-Shopify-Topic".into(), "orders/create".into()),
        (
            "X-Shopify-Hmac-Sha256".into(),
            omnigate::sign::body_hmac_base64(secret, body),
        ),
        ("X-Shopify-Event-Id".into(), event_id.into()),
        ("Content-Type".into(), "application/json".into()),
    ]
}

async fn problem(res: reqwest::Response, status: StatusCode, slug: &str) -> Value {
    assert_eq!(res.status(), status);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["type"], format!("https://omnigate.dev/problems/{slug}"));
    assert_eq!(p["status"], status.as_u16());
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_requires_the_token() {
    let gw = Gateway::start(memory_store(), Utc::now()).await;
    let body = json!({"tenant": "a", "provider": "shopify", "secret": "shpss_a_0123456789abcdef"});
    let none = gw
        .http
        .post(gw.url("/v1/sources"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(none.headers().contains_key("www-authenticate"));
    problem(none, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let wrong = gw
        .http
        .post(gw.url("/v1/sources"))
        .bearer_auth(format!("{ADMIN_TOKEN}x"))
        .json(&body)
        .send()
        .await
        .unwrap();
    problem(wrong, StatusCode::UNAUTHORIZED, "unauthorized").await;
    for path in [
        "/v1/tenants/a/events",
        "/v1/quarantine",
        "/v1/sources/src_x",
    ] {
        let res = gw.http.get(gw.url(path)).send().await.unwrap();
        problem(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_write_only_and_rotation_keeps_the_old_one_for_a_grace_period() {
    let t0 = Utc.with_ymd_and_hms(2025, 3, 14, 9, 0, 0).unwrap();
    let gw = Gateway::start(redis_store(Retention::default()).await, t0).await;
    let created = gw
        .admin(Method::POST, "/v1/sources")
        .json(&json!({"tenant": "rot-shop", "provider": "shopify",
                      "secret": "shpss_old-secret-0123456", "name": "Main shop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let text = created.text().await.unwrap();
    assert!(!text.contains("shpss_old-secret-0123456"), "never returned");
    let view: Value = serde_json::from_str(&text).unwrap();
    let id = view["id"].as_str().unwrap().to_string();
    assert_eq!(view["webhook_path"], format!("/v1/webhooks/{id}"));
    assert_eq!(view["name"], "Main shop");

    // A new order per delivery: the same signed body twice is one delivery.
    let send = |secret: &'static str, event: &'static str| {
        let n = &event[1..];
        let body = format!(
            r##"{{"id":{n},"name":"#{n}","created_at":"2025-03-14T09:00:00Z","currency":"EUR","total_price":"1.00","line_items":[]}}"##
        )
        .into_bytes();
        let headers = shopify_headers(secret, &body, event);
        let gw = &gw;
        let id = id.clone();
        async move { gw.deliver(&id, &headers, &body).await.status() }
    };
    assert_eq!(
        send("shpss_old-secret-0123456", "e1").await,
        StatusCode::ACCEPTED
    );

    let rotated = gw
        .admin(Method::PATCH, &format!("/v1/sources/{id}"))
        .json(&json!({"secret": "shpss_new-secret-0123456"}))
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), StatusCode::OK);
    let text = rotated.text().await.unwrap();
    assert!(!text.contains("new-secret") && !text.contains("old-secret"));
    let view: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(view["secrets"].as_array().unwrap().len(), 2);
    assert_eq!(view["secrets"][1]["expires_at"], "2025-03-15T09:00:00Z");

    // During the grace period both secrets verify…
    assert_eq!(
        send("shpss_new-secret-0123456", "e2").await,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        send("shpss_old-secret-0123456", "e3").await,
        StatusCode::ACCEPTED
    );
    // …after it only the new one does.
    gw.clock.set(t0 + Duration::hours(24));
    assert_eq!(
        send("shpss_old-secret-0123456", "e4").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send("shpss_new-secret-0123456", "e5").await,
        StatusCode::ACCEPTED
    );
    let view: Value = gw.admin_json(&format!("/v1/sources/{id}")).await;
    assert_eq!(view["secrets"].as_array().unwrap().len(), 1);

    // Disconnecting: the webhook path stops working, the events stay.
    let del = gw
        .admin(Method::DELETE, &format!("/v1/sources/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), StatusCode::NO_CONTENT);
    let body = br#"{"id":6}"#;
    let gone = gw
        .deliver(
            &id,
            &shopify_headers("shpss_new-secret-0123456", body, "e6"),
            body,
        )
        .await;
    problem(gone, StatusCode::NOT_FOUND, "source-not-found").await;
    assert_eq!(gw.tenant_events("rot-shop", None).await.len(), 4);
    let again = gw
        .admin(Method::DELETE, &format!("/v1/sources/{id}"))
        .send()
        .await
        .unwrap();
    problem(again, StatusCode::NOT_FOUND, "source-not-found").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_problems() {
    let gw = Gateway::start_with(memory_store(), Utc::now(), |s| s.body_limit_bytes = 1024).await;
    let post = |body: &'static str| {
        gw.admin(Method::POST, "/v1/sources")
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    problem(
        post("{").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "malformed-body",
    )
    .await;
    // Well-formed JSON that breaks the body's schema (an unknown provider, an unknown
    // field): 422 naming the field, never repeating the secret.
    let p = problem(
        post(r#"{"tenant":"a","provider":"magento","secret":"s"}"#)
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("/provider"), "{p}");
    problem(
        post(r#"{"tenant":"a","provider":"shopify","secret":"s","colour":"red"}"#)
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;
    let p = problem(
        post(r#"{"tenant":"a b","provider":"shopify","secret":"s"}"#)
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("tenant"));
    problem(
        post(r#"{"tenant":"a","provider":"standard-webhooks","secret":"whsec_???"}"#)
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;

    let unknown = gw.deliver("src_nope", &[], b"{}").await;
    problem(unknown, StatusCode::NOT_FOUND, "source-not-found").await;

    let source = gw
        .create_source(json!({"tenant": "big", "provider": "shopify", "secret": BIG_SECRET}))
        .await;
    let big = vec![b' '; 4096];
    let res = gw
        .deliver(&source.id, &shopify_headers(BIG_SECRET, &big, "e"), &big)
        .await;
    problem(res, StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large").await;

    let res = gw
        .admin(Method::GET, "/v1/tenants/big/events?after=yesterday")
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::BAD_REQUEST, "invalid-query").await;
    // It parses, but nothing can come after it: Redis refuses such a range, which must not
    // read as the store being down (503 for ever).
    let res = gw
        .admin(
            Method::GET,
            "/v1/tenants/big/events?after=18446744073709551615-18446744073709551615",
        )
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::BAD_REQUEST, "invalid-query").await;
    let res = gw
        .admin(Method::GET, "/v1/tenants/big/events?limit=0")
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::BAD_REQUEST, "invalid-query").await;
    let res = gw
        .admin(Method::POST, "/v1/quarantine/q1-1-1/replay")
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::NOT_FOUND, "not-found").await;
    let res = gw.http.get(gw.url("/v2/nothing")).send().await.unwrap();
    problem(res, StatusCode::NOT_FOUND, "not-found").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_events_page_in_order_and_filter_by_type() {
    // The clock just after the orders' signed time, as when the shop sent them.
    let t = Utc.with_ymd_and_hms(2025, 3, 14, 10, 0, 0).unwrap();
    let gw = Gateway::start(redis_store(Retention::default()).await, t).await;
    let a = gw
        .create_source(json!({"tenant": "page-a", "provider": "shopify", "secret": SECRET_A}))
        .await;
    let b = gw
        .create_source(json!({"tenant": "page-b", "provider": "shopify", "secret": SECRET_B}))
        .await;
    for n in 0..120 {
        let body = format!(
            r##"{{"id":{n},"name":"#{n}","created_at":"2025-03-14T09:00:00Z","currency":"EUR","total_price":"1.00","line_items":[]}}"##
        );
        let (src, secret) = if n % 3 == 0 {
            (&b.id, SECRET_B)
        } else {
            (&a.id, SECRET_A)
        };
        let headers = shopify_headers(secret, body.as_bytes(), &format!("e{n}"));
        let res = gw.deliver(src, &headers, body.as_bytes()).await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
    }
    let events = gw.tenant_events("page-a", Some("order.created")).await;
    let orders: Vec<String> = events
        .iter()
        .map(|e| e["data"]["order_id"].as_str().unwrap().to_string())
        .collect();
    let expected: Vec<String> = (0..120)
        .filter(|n| n % 3 != 0)
        .map(|n| n.to_string())
        .collect();
    assert_eq!(
        orders, expected,
        "a tenant sees only its own events, in order"
    );
    assert!(events.iter().all(|e| e["tenant"] == "page-a"));
    assert!(
        gw.tenant_events("page-a", Some("order.paid"))
            .await
            .is_empty()
    );

    // Polling from the last cursor returns only what is new.
    let page: Value = gw.admin_json("/v1/tenants/page-a/events?limit=1000").await;
    let next = page["next"].as_str().unwrap().to_string();
    let later: Value = gw
        .admin(
            Method::GET,
            &format!("/v1/tenants/page-a/events?after={next}"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(later["events"], json!([]));
    assert_eq!(later["done"], true);
}

/// An operator looking at a shop's latest events: newest first, a page at a time with
/// `before`, then following what arrives from the page's `tail`; and narrowing to a time
/// span by when the events were written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_events_come_first_and_a_time_span_narrows_them() {
    let t = Utc.with_ymd_and_hms(2025, 3, 14, 10, 0, 0).unwrap();
    let gw = Gateway::start(redis_store(Retention::default()).await, t).await;
    let a = gw
        .create_source(json!({"tenant": "newest", "provider": "shopify", "secret": SECRET_A}))
        .await;
    let send = |n: u32| {
        let body = format!(
            r##"{{"id":{n},"name":"#{n}","created_at":"2025-03-14T09:00:00Z","currency":"EUR","total_price":"1.00","line_items":[]}}"##
        );
        let headers = shopify_headers(SECRET_A, body.as_bytes(), &format!("n{n}"));
        let gw = &gw;
        let id = a.id.clone();
        async move {
            let res = gw.deliver(&id, &headers, body.as_bytes()).await;
            assert_eq!(res.status(), StatusCode::ACCEPTED);
        }
    };
    let orders = |page: &Value| -> Vec<String> {
        page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["data"]["order_id"].as_str().unwrap().to_string())
            .collect()
    };
    // Log positions start with the millisecond of the write: space the orders apart so
    // each has its own.
    for n in 1..=3 {
        send(n).await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let base = "/v1/tenants/newest/events";
    let newest: Value = gw
        .admin_json(&format!("{base}?order=newest_first&limit=2"))
        .await;
    assert_eq!(orders(&newest), ["3", "2"]);
    assert_eq!(newest["done"], false);
    let older: Value = gw
        .admin_json(&format!(
            "{base}?order=newest_first&limit=2&before={}",
            newest["next"].as_str().unwrap()
        ))
        .await;
    assert_eq!(orders(&older), ["1"]);
    assert_eq!(older["done"], true);

    // Following from the tail shows only what came since.
    let tail = newest["tail"]
        .as_str()
        .expect("a newest-first page has a tail");
    send(4).await;
    let followed: Value = gw.admin_json(&format!("{base}?after={tail}")).await;
    assert_eq!(orders(&followed), ["4"]);

    // The log positions of orders 2 and 3 give the span [2, 3).
    let positions: Vec<u64> = {
        let mut at = Vec::new();
        let mut after = String::new();
        for _ in 0..4 {
            let page: Value = gw.admin_json(&format!("{base}?limit=1{after}")).await;
            let next = page["next"].as_str().unwrap().to_string();
            at.push(next.split('-').next().unwrap().parse().unwrap());
            after = format!("&after={next}");
        }
        at
    };
    let time = |ms: u64| {
        chrono::DateTime::from_timestamp_millis(ms as i64)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let span = format!("since={}&until={}", time(positions[1]), time(positions[2]));
    let forward: Value = gw.admin_json(&format!("{base}?{span}")).await;
    assert_eq!(orders(&forward), ["2"]);
    assert_eq!(forward["done"], true);
    let backward: Value = gw
        .admin_json(&format!("{base}?order=newest_first&{span}"))
        .await;
    assert_eq!(orders(&backward), ["2"]);
    assert_eq!(backward["done"], true);

    // A span that starts after the newest event: nothing, but the tail to follow from.
    let later: Value = gw
        .admin_json(&format!(
            "{base}?order=newest_first&since={}",
            time(positions[3] + 60_000)
        ))
        .await;
    assert_eq!(later["events"], json!([]));
    assert_eq!(later["done"], true);
    assert_eq!(
        later["tail"].as_str().unwrap().split('-').next().unwrap(),
        positions[3].to_string(),
        "{later}"
    );

    // `after` and `before` together are a range, read from either end.
    let cursors: Vec<String> = {
        let all: Value = gw.admin_json(&format!("{base}?order=newest_first")).await;
        assert_eq!(orders(&all), ["4", "3", "2", "1"]);
        let mut at = Vec::new();
        let mut before = String::new();
        for _ in 0..4 {
            let page: Value = gw
                .admin_json(&format!("{base}?order=newest_first&limit=1{before}"))
                .await;
            let next = page["next"].as_str().unwrap().to_string();
            before = format!("&before={next}");
            at.push(next);
        }
        at
    };
    // cursors[k] is the position of order 4 - k: between orders 4 and 1 lie 3 and 2.
    let range = format!("after={}&before={}", cursors[3], cursors[0]);
    let forward: Value = gw.admin_json(&format!("{base}?{range}")).await;
    assert_eq!(orders(&forward), ["2", "3"]);
    assert_eq!(forward["done"], true);
    let backward: Value = gw
        .admin_json(&format!("{base}?order=newest_first&{range}"))
        .await;
    assert_eq!(orders(&backward), ["3", "2"]);
    assert_eq!(backward["done"], true);

    // Any RFC 3339 time is a bound, however early: nothing was written before 1970.
    let early: Value = gw
        .admin_json(&format!(
            "{base}?order=newest_first&until=0547-01-20T05:50:30.95%2B01:10"
        ))
        .await;
    assert_eq!(early["events"], json!([]));
    assert_eq!(early["done"], true);
    let from_start: Value = gw
        .admin_json(&format!("{base}?since=0001-01-01T00:00:00Z"))
        .await;
    assert_eq!(orders(&from_start), ["1", "2", "3", "4"]);

    // Times must be times, and the order one of the two.
    for bad in [
        format!("{base}?since=yesterday"),
        format!("{base}?order=sideways"),
    ] {
        let res = gw.admin(Method::GET, &bad).send().await.unwrap();
        problem(res, StatusCode::BAD_REQUEST, "invalid-query").await;
    }
}

/// An operator checking on a shop: what it sent in the last hour, by outcome, summed over
/// two gateway processes, and when the last delivery came; and the gateway's status, with
/// how far the router is behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sources_deliveries_are_counted_by_outcome_over_the_last_hour() {
    let t = Utc::now();
    let store = redis_store(Retention::default()).await;
    let fast = |s: &mut omnigate::config::Settings| s.tally_report_ms = 50;
    let gw = Gateway::start_with(store.clone(), t, fast).await;
    let other = Gateway::start_with(store, t, fast).await;
    let a = gw
        .create_source(json!({"tenant": "counted", "provider": "shopify", "secret": SECRET_A}))
        .await;
    let body = format!(
        r##"{{"id":1,"name":"#1","created_at":"{}","currency":"EUR","total_price":"1.00","line_items":[]}}"##,
        t.format("%Y-%m-%dT%H:%M:%SZ")
    );
    let signed = shopify_headers(SECRET_A, body.as_bytes(), "c1");
    let forged = shopify_headers(SECRET_B, body.as_bytes(), "c1");
    assert_eq!(
        gw.deliver(&a.id, &signed, body.as_bytes()).await.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        other
            .deliver(&a.id, &signed, body.as_bytes())
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        other
            .deliver(&a.id, &forged, body.as_bytes())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    let expected = json!({"accepted": 1, "duplicate": 1, "invalid_signature": 1});
    let mut shown = Value::Null;
    for _ in 0..100 {
        shown = gw.admin_json(&format!("/v1/sources/{}", a.id)).await;
        if shown["deliveries"]["outcomes"] == expected {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(shown["deliveries"]["outcomes"], expected, "{shown}");
    assert_eq!(shown["deliveries"]["window_minutes"], 60);
    let last = shown["deliveries"]["last_delivery_at"].as_str().unwrap();
    let last = chrono::DateTime::parse_from_rfc3339(last).unwrap();
    assert!(
        (last.with_timezone(&Utc) - t).num_seconds().abs() < 60,
        "{last}"
    );
    let listed: Value = gw.admin_json("/v1/sources?tenant=counted").await;
    assert_eq!(listed["sources"][0]["deliveries"], shown["deliveries"]);

    // The router takes the order; the status shows its partition written and caught up.
    let mut status = Value::Null;
    for _ in 0..100 {
        status = gw.admin_json("/v1/status").await;
        let partitions = status["router"].as_array().unwrap();
        let written = partitions
            .iter()
            .filter(|p| p["last_written_at"].is_string())
            .count();
        if written >= 1 && partitions.iter().all(|p| p["unrouted"] == 0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status["store"], "reachable");
    assert_eq!(status["router"].as_array().unwrap().len(), 16, "{status}");
    assert!(
        status["router"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["unrouted"] == 0)
    );
    assert!(
        status.get("spool").is_none(),
        "no spool configured: {status}"
    );
    let anonymous = gw.http.get(gw.url("/v1/status")).send().await.unwrap();
    problem(anonymous, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

/// Behind a proxy the gateway is told its public address, and each source shows the full
/// URL to paste into the shop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_show_their_full_url_on_the_public_address() {
    let store = redis_store(Retention::default()).await;
    let gw = Gateway::start_with(store.clone(), Utc::now(), |s| {
        s.public_url = Some("https://hooks.example.com".into())
    })
    .await;
    let a = gw
        .create_source(json!({"tenant": "proxied", "provider": "shopify", "secret": SECRET_A}))
        .await;
    let shown: Value = gw.admin_json(&format!("/v1/sources/{}", a.id)).await;
    assert_eq!(
        shown["webhook_url"],
        format!("https://hooks.example.com/v1/webhooks/{}", a.id)
    );
    let listed: Value = gw.admin_json("/v1/sources?tenant=proxied").await;
    assert_eq!(listed["sources"][0]["webhook_url"], shown["webhook_url"]);
    // Without it the path is all there is: the gateway does not guess its address.
    let local = Gateway::start(store, Utc::now()).await;
    let b = local
        .create_source(json!({"tenant": "direct", "provider": "shopify", "secret": SECRET_A}))
        .await;
    let plain: Value = local.admin_json(&format!("/v1/sources/{}", b.id)).await;
    assert!(plain.get("webhook_url").is_none(), "{plain}");
}

/// A tenant sharing a partition with a busy one: a read stops after skipping 20,000 of the
/// other tenant's events and says it is not done, so a client reading on from `next` finds
/// the quiet tenant's event instead of taking the short page for the end of the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_skipped_many_other_tenants_is_not_taken_for_the_end() {
    use omnigate::store::{Append, LogRecord, Write};
    let store = omnigate_tests::redis_store(Retention::default()).await;
    let gw = Gateway::start_with(store.clone(), chrono::Utc::now(), |s| s.partitions = 1).await;
    let record = |tenant: &str, n: u32| {
        let id = format!("evt_{tenant}_{n}");
        let json = json!({"id": id, "type": "order.paid", "schema_version": 1, "tenant": tenant,
            "occurred_at": "2026-11-30T10:00:00Z", "received_at": "2026-11-30T10:00:01Z",
            "source": {"id": "src_0000000000000001", "provider": "shopify", "topic": "orders/paid"},
            "subject": format!("order/{n}"), "data": {}});
        LogRecord {
            event_id: id,
            tenant: tenant.to_string(),
            event_type: "order.paid".into(),
            json: json.to_string(),
        }
    };
    let append = |r: LogRecord| {
        let store = store.clone();
        async move {
            store
                .append(Append {
                    partition: 0,
                    dedupe_key: format!("k:{}", r.event_id),
                    dedupe_ttl: std::time::Duration::from_secs(60),
                    write: Write::Events(vec![r]),
                    snapshot: None,
                })
                .await
                .unwrap();
        }
    };
    for n in 0..20_050 {
        append(record("busy-shop", n)).await;
    }
    append(record("quiet-shop", 1)).await;

    let first: Value = gw
        .admin_json("/v1/tenants/quiet-shop/events?limit=10")
        .await;
    assert_eq!(first["events"], json!([]));
    assert_eq!(first["done"], false, "{}", first["next"]);
    let events = gw.tenant_events("quiet-shop", None).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["id"], "evt_quiet-shop_1");
}

/// Follows `next` from the first page of `path` (`?limit=2…`) until `done`: every item's
/// id, in order.
async fn list_all(gw: &Gateway, path: &str, items: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..20 {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &after {
            Some(a) => format!("{path}{sep}limit=2&after={a}"),
            None => format!("{path}{sep}limit=2"),
        };
        let page = gw.admin_json(&url).await;
        let listed = page[items].as_array().unwrap();
        assert!(listed.len() <= 2, "{page:#}");
        ids.extend(listed.iter().map(|s| s["id"].as_str().unwrap().to_string()));
        if page["done"] == true {
            return ids;
        }
        after = page["next"].as_str().map(str::to_string);
        assert!(
            after.is_some(),
            "a page not done says where to go on: {page:#}"
        );
    }
    panic!("the list never said done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_and_plugins_are_listed_a_page_at_a_time() {
    let gw = Gateway::start(redis_store(Retention::default()).await, Utc::now()).await;
    let mut created = Vec::new();
    for (tenant, provider, secret) in [
        ("shop-a", "shopify", "shpss_0123456789abcdef"),
        ("shop-b", "shopify", "shpss_fedcba9876543210"),
        ("shop-a", "woocommerce", "wc-secret-0123456789"),
    ] {
        let s = gw
            .create_source(json!({"tenant": tenant, "provider": provider, "secret": secret}))
            .await;
        created.push((tenant, provider, s.id));
    }
    let mut all: Vec<String> = created.iter().map(|(_, _, id)| id.clone()).collect();
    all.sort();
    assert_eq!(list_all(&gw, "/v1/sources", "sources").await, all);
    let shop_a: Vec<String> = {
        let mut ids: Vec<String> = created
            .iter()
            .filter(|(t, _, _)| *t == "shop-a")
            .map(|(_, _, id)| id.clone())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(
        list_all(&gw, "/v1/sources?tenant=shop-a", "sources").await,
        shop_a
    );
    let woo = list_all(&gw, "/v1/sources?provider=woocommerce", "sources").await;
    assert_eq!(woo, [created[2].2.clone()]);
    let page = gw.admin_json("/v1/sources?limit=10").await;
    assert!(!page.to_string().contains("shpss_"), "no secret is listed");
    assert_eq!(page["done"], true);

    for name in ["Loyalty", "Returns", "NPS"] {
        gw.register_plugin(json!({"name": name, "event_types": ["order.created"]}))
            .await;
    }
    assert_eq!(list_all(&gw, "/v1/plugins", "plugins").await.len(), 3);
    let res = gw
        .admin(Method::GET, "/v1/plugins?limit=0")
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::BAD_REQUEST, "invalid-query").await;
    let long = "x".repeat(201);
    for path in [
        format!("/v1/plugins?after={long}"),
        format!("/v1/sources?tenant={long}"),
    ] {
        let res = gw.admin(Method::GET, &path).send().await.unwrap();
        problem(res, StatusCode::BAD_REQUEST, "invalid-query").await;
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugins_installations_are_listed_including_those_from_before_the_index() {
    let prefix = omnigate_tests::unique_prefix();
    let store = omnigate_tests::redis_store_with(
        &omnigate_tests::redis_url(),
        &prefix,
        Retention::default(),
        Some(omnigate_tests::test_sealer()),
    )
    .await;
    let store: std::sync::Arc<dyn omnigate::store::Store> = std::sync::Arc::new(store);
    let gw = Gateway::start(store, Utc::now()).await;
    let plugin = gw
        .register_plugin(json!({"name": "Loyalty", "event_types": ["order.created"]}))
        .await;
    for tenant in ["shop-c", "shop-a", "shop-b"] {
        gw.install(&plugin, tenant, json!(["events:read"])).await;
    }
    let page = gw
        .admin_json(&format!("/v1/plugins/{}/installations?limit=2", plugin.id))
        .await;
    let tenants: Vec<&str> = page["installations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(tenants, ["shop-a", "shop-b"]);
    assert_eq!(page["done"], false);
    let rest = gw
        .admin_json(&format!(
            "/v1/plugins/{}/installations?limit=2&after={}",
            plugin.id,
            page["next"].as_str().unwrap()
        ))
        .await;
    assert_eq!(rest["installations"][0]["tenant"], "shop-c");
    assert_eq!(rest["done"], true);
    let res = gw
        .admin(
            Method::DELETE,
            &format!("/v1/plugins/{}/installations/shop-b", plugin.id),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let all = gw
        .admin_json(&format!("/v1/plugins/{}/installations", plugin.id))
        .await;
    assert_eq!(all["installations"].as_array().unwrap().len(), 2);
    let res = gw
        .admin(Method::GET, "/v1/plugins/plg_nope/installations")
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::NOT_FOUND, "not-found").await;

    // An installation written before the index existed (as an older gateway wrote it) is
    // indexed once, at start-up, from the tenants that have sources.
    gw.create_source(json!({"tenant": "shop-old", "provider": "shopify", "secret": BIG_SECRET}))
        .await;
    let mut redis = redis::Client::open(omnigate_tests::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let old = json!({"plugin_id": plugin.id, "tenant": "shop-old", "scopes": ["events:read"],
                     "installed_at": "2025-01-01T00:00:00Z"});
    let _: () = redis::cmd("HSET")
        .arg(format!("{prefix}:cfg:installs:shop-old"))
        .arg(&plugin.id)
        .arg(old.to_string())
        .query_async(&mut redis)
        .await
        .unwrap();
    let before = gw
        .admin_json(&format!("/v1/plugins/{}/installations", plugin.id))
        .await;
    assert_eq!(before["installations"].as_array().unwrap().len(), 2);
    let indexing = omnigate_tests::redis_store_with(
        &omnigate_tests::redis_url(),
        &prefix,
        Retention::default(),
        Some(omnigate_tests::test_sealer()),
    )
    .await;
    let _: () = redis::cmd("DEL")
        .arg(format!("{prefix}:cfg:installed-indexed"))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(indexing.index_installations().await.unwrap(), 1);
    assert_eq!(indexing.index_installations().await.unwrap(), 0, "once");
    let after = gw
        .admin_json(&format!("/v1/plugins/{}/installations", plugin.id))
        .await;
    assert_eq!(after["installations"].as_array().unwrap().len(), 3);
    gw.stop().await;
}
