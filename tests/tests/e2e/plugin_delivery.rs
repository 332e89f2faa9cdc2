//! Two plugins in two shops: each receives exactly its shops' subscribed events, at least
//! once, with retries, dead letters and replay; PII only with the scope; plugins publish
//! their own events to each other.

use chrono::Utc;
use omnigate::store::Retention;
use omnigate_tests::{Gateway, Plugin, fixture_time, payload_fixture, redis_store};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Pulls (and acknowledges) until `n` deliveries arrived, or gives up after a few waits.
async fn take(gw: &Gateway, p: &Plugin, n: usize) -> Vec<Value> {
    let mut got = Vec::new();
    for _ in 0..20 {
        let (status, body) = gw
            .plugin_call(p, "/v1/inbox/pull", json!({"max": 50, "wait_ms": 500}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let deliveries = body["deliveries"].as_array().unwrap().clone();
        let receipts: Vec<Value> = deliveries.iter().map(|d| d["receipt"].clone()).collect();
        if !receipts.is_empty() {
            let (status, _) = gw
                .plugin_call(p, "/v1/inbox/ack", json!({"receipts": receipts}))
                .await;
            assert_eq!(status, StatusCode::OK);
        }
        got.extend(deliveries);
        if got.len() >= n {
            break;
        }
    }
    got
}

fn types(deliveries: &[Value]) -> Vec<String> {
    deliveries
        .iter()
        .map(|d| {
            format!(
                "{}:{}",
                d["event"]["tenant"].as_str().unwrap(),
                d["event"]["type"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_plugin_receives_exactly_its_shops_subscribed_events() {
    let shop_fixture = payload_fixture("shopify/orders-create");
    let woo_fixture = payload_fixture("woocommerce/order.created");
    // Plugins are installed before the oldest delivery (the WooCommerce shop's); each
    // shop's deliveries then arrive at the time the shop sent them.
    let gw = Gateway::start(
        redis_store(Retention::default()).await,
        fixture_time(&woo_fixture),
    )
    .await;
    let loyalty = gw
        .register_plugin(
            json!({"name": "Loyalty", "event_types": ["order.*", "refund.created"],
               "publishes": [{"type": "loyalty.points.changed",
                              "schema": {"type": "object", "required": ["balance"],
                                         "properties": {"balance": {"type": "integer"}}}}]}),
        )
        .await;
    let returns = gw
        .register_plugin(json!({"name": "Returns", "event_types": ["return.*", "loyalty.*"]}))
        .await;
    gw.install(&loyalty, "shop-a", json!(["events:read", "events:publish"]))
        .await;
    gw.install(&loyalty, "shop-b", json!(["events:read", "customer_pii"]))
        .await;
    gw.install(&returns, "shop-a", json!(["events:read"])).await;

    let shopify = gw.source_for(&shop_fixture, "shop-a").await;
    for name in [
        "shopify/orders-create",
        "shopify/orders-paid",
        "shopify/returns-request",
    ] {
        let f = payload_fixture(name);
        gw.clock.set(fixture_time(&f));
        assert_eq!(
            gw.deliver_fixture(&shopify.id, &f).await.status(),
            StatusCode::ACCEPTED
        );
    }
    let woo = gw.source_for(&woo_fixture, "shop-b").await;
    gw.clock.set(fixture_time(&woo_fixture));
    for name in ["woocommerce/customer.created", "woocommerce/order.created"] {
        let f = payload_fixture(name);
        assert_eq!(
            gw.deliver_fixture(&woo.id, &f).await.status(),
            StatusCode::ACCEPTED
        );
    }

    let mut got = take(&gw, &loyalty, 3).await;
    got.sort_by_key(|d| d["event"]["tenant"].as_str().unwrap().to_string());
    let mut seen = types(&got);
    seen.sort();
    assert_eq!(
        seen,
        [
            "shop-a:order.created",
            "shop-a:order.paid",
            "shop-b:order.created"
        ],
        "no customer.created (not subscribed), no return (not subscribed)"
    );
    let a = got
        .iter()
        .find(|d| d["event"]["tenant"] == "shop-a" && d["event"]["type"] == "order.created")
        .unwrap();
    let b = got
        .iter()
        .find(|d| d["event"]["tenant"] == "shop-b")
        .unwrap();
    assert!(
        a["event"]["data"]["customer"].get("email").is_none(),
        "no customer_pii in shop-a"
    );
    assert!(a["event"]["data"].get("shipping_address").is_none());
    assert_eq!(
        a["event"]["data"]["customer"]["customer_id"],
        "7402918365521"
    );
    assert_eq!(
        b["event"]["data"]["customer"]["email"],
        "radoslaw.slezak@example.net"
    );
    assert!(got.iter().all(|d| d["attempt"] == 1));

    let r = take(&gw, &returns, 1).await;
    assert_eq!(types(&r), ["shop-a:return.requested"]);

    // Publishing: the loyalty plugin tells shop-a about points; the returns plugin
    // (subscribed to loyalty.*) receives it. It may not publish in shop-b.
    let (status, body) = gw
        .plugin_call(
            &loyalty,
            "/v1/events",
            json!({"tenant": "shop-a", "type": "loyalty.points.changed",
               "data": {"balance": 23}, "idempotency_key": "order-5938201746113"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (_, again) = gw
        .plugin_call(
            &loyalty,
            "/v1/events",
            json!({"tenant": "shop-a", "type": "loyalty.points.changed",
               "data": {"balance": 23}, "idempotency_key": "order-5938201746113"}),
        )
        .await;
    assert_eq!(again["event_id"], body["event_id"]);
    assert_eq!(again["duplicate"], true);
    let r = take(&gw, &returns, 1).await;
    assert_eq!(types(&r), ["shop-a:loyalty.points.changed"]);
    assert_eq!(r[0]["event"]["data"]["balance"], 23);
    let (status, _) = gw
        .plugin_call(
            &loyalty,
            "/v1/events",
            json!({"tenant": "shop-b", "type": "loyalty.points.changed", "data": {"balance": 1}}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = gw
        .plugin_call(
            &loyalty,
            "/v1/events",
            json!({"tenant": "shop-a", "type": "loyalty.points.changed", "data": {"balance": "x"}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = gw
        .plugin_call(
            &returns,
            "/v1/events",
            json!({"tenant": "shop-a", "type": "loyalty.points.changed", "data": {"balance": 1}}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no events:publish scope");

    // Installed later: earlier events of that shop are not delivered.
    gw.install(&returns, "shop-b", json!(["events:read"])).await;
    let (_, body) = gw
        .plugin_call(
            &returns,
            "/v1/inbox/pull",
            json!({"max": 10, "wait_ms": 300}),
        )
        .await;
    assert_eq!(body["deliveries"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_handlers_get_retries_then_dead_letters_then_replay() {
    let f = payload_fixture("shopify/orders-create");
    let gw = Gateway::start_with(
        redis_store(Retention::default()).await,
        fixture_time(&f),
        |s| {
            s.inbox_max_attempts = 3;
        },
    )
    .await;
    let p = gw
        .register_plugin(json!({"name": "Flaky", "event_types": ["order.created"]}))
        .await;
    gw.install(&p, "flaky-shop", json!(["events:read"])).await;
    let source = gw.source_for(&f, "flaky-shop").await;
    assert_eq!(
        gw.deliver_fixture(&source.id, &f).await.status(),
        StatusCode::ACCEPTED
    );

    // The handler fails twice (nack), the third attempt arrives with attempt 3.
    let mut attempts = Vec::new();
    for _ in 0..3 {
        let (_, body) = gw
            .plugin_call(&p, "/v1/inbox/pull", json!({"max": 1, "wait_ms": 2000}))
            .await;
        let d = body["deliveries"][0].clone();
        assert!(d.is_object(), "a delivery: {body}");
        attempts.push(d["attempt"].as_u64().unwrap());
        // A reason is at most 1000 characters.
        let (status, problem) = gw
            .plugin_call(
                &p,
                "/v1/inbox/nack",
                json!({"receipts": [d["receipt"]], "reason": "x".repeat(1001)}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        let (status, settled) = gw
            .plugin_call(&p, "/v1/inbox/nack", json!({"receipts": [d["receipt"]]}))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(settled["settled"], 1);
    }
    assert_eq!(attempts, [1, 2, 3]);
    // A fourth attempt would pass the maximum: dead letter.
    let (_, body) = gw
        .plugin_call(&p, "/v1/inbox/pull", json!({"max": 1, "wait_ms": 200}))
        .await;
    assert_eq!(body["deliveries"], json!([]));
    let dead: Value = gw
        .http
        .get(gw.url("/v1/inbox/dead"))
        .bearer_auth(&p.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let letters = dead["dead_letters"].as_array().unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["attempts"], 3);
    assert_eq!(letters[0]["event"]["type"], "order.created");
    assert_eq!(dead["done"], true);
    assert_eq!(dead["next"], letters[0]["id"]);
    // After the last one: an empty page, done.
    let rest: Value = gw
        .http
        .get(gw.url(&format!(
            "/v1/inbox/dead?after={}",
            letters[0]["id"].as_str().unwrap()
        )))
        .bearer_auth(&p.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rest["dead_letters"], json!([]));
    assert_eq!(rest["done"], true);

    // The operator sees the same dead letters, and sends them back after the fix.
    let seen: Value = gw
        .admin_json(&format!("/v1/plugins/{}/dead-letters", p.id))
        .await;
    assert_eq!(seen, dead, "the operator sees what the plugin sees");
    let unknown = gw
        .admin(Method::GET, "/v1/plugins/plg_nobody/dead-letters")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let replayed: Value = gw
        .admin(
            Method::POST,
            &format!("/v1/plugins/{}/dead-letters/replay", p.id),
        )
        .json(&json!({"ids": [letters[0]["id"]]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(replayed["replayed"], 1);
    let back = take(&gw, &p, 1).await;
    assert_eq!(back.len(), 1);
    assert_eq!(back[0]["attempt"], 1);
    assert_eq!(back[0]["event"]["data"]["order_id"], "5938201746113");
    // Acknowledged: nothing more.
    let (_, body) = gw
        .plugin_call(&p, "/v1/inbox/pull", json!({"max": 1, "wait_ms": 300}))
        .await;
    assert_eq!(body["deliveries"], json!([]));
    let _ = Utc::now();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_cannot_cross_into_other_plugins_or_uninstalled_shops() {
    let f = payload_fixture("shopify/orders-create");
    let gw = Gateway::start(redis_store(Retention::default()).await, fixture_time(&f)).await;
    let a = gw
        .register_plugin(json!({"name": "A", "event_types": ["order.*"]}))
        .await;
    let b = gw
        .register_plugin(json!({"name": "B", "event_types": ["order.*"]}))
        .await;
    gw.install(&a, "iso-shop", json!(["events:read"])).await;
    let source = gw.source_for(&f, "iso-shop").await;
    assert_eq!(
        gw.deliver_fixture(&source.id, &f).await.status(),
        StatusCode::ACCEPTED
    );

    let (_, body) = gw
        .plugin_call(&a, "/v1/inbox/pull", json!({"max": 5, "wait_ms": 2000}))
        .await;
    let receipt = body["deliveries"][0]["receipt"].clone();
    assert!(receipt.is_string());
    // B is not installed: it sees nothing, and A's receipt means nothing in B's inbox.
    let (_, nothing) = gw
        .plugin_call(&b, "/v1/inbox/pull", json!({"max": 5, "wait_ms": 200}))
        .await;
    assert_eq!(nothing["deliveries"], json!([]));
    let (_, settled) = gw
        .plugin_call(&b, "/v1/inbox/ack", json!({"receipts": [receipt]}))
        .await;
    assert_eq!(settled["settled"], 0);
    // A's delivery is still A's to settle.
    let (_, settled) = gw
        .plugin_call(&a, "/v1/inbox/nack", json!({"receipts": [receipt]}))
        .await;
    assert_eq!(settled["settled"], 1);

    // Uninstalled: pending deliveries of that shop are dropped, not shown.
    let res = gw
        .admin(
            Method::DELETE,
            &format!("/v1/plugins/{}/installations/iso-shop", a.id),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (_, after) = gw
        .plugin_call(&a, "/v1/inbox/pull", json!({"max": 5, "wait_ms": 200}))
        .await;
    assert_eq!(after["deliveries"], json!([]));
    let (status, _) = gw
        .plugin_call(&a, "/v1/inbox/pull", json!({"max": 500}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = gw
        .plugin_call(
            &Plugin {
                id: "x".into(),
                key: "ogk_revoked".into(),
            },
            "/v1/inbox/pull",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_installed_later_asks_for_a_replay_from_a_time() {
    let f = payload_fixture("shopify/orders-create");
    let gw = Gateway::start(redis_store(Retention::default()).await, fixture_time(&f)).await;
    let source = gw.source_for(&f, "late-shop").await;
    for name in [
        "shopify/orders-create",
        "shopify/orders-paid",
        "shopify/customers-create",
    ] {
        assert_eq!(
            gw.deliver_fixture(&source.id, &payload_fixture(name))
                .await
                .status(),
            StatusCode::ACCEPTED
        );
    }
    // Installed a minute after those deliveries arrived.
    gw.clock
        .set(fixture_time(&f) + chrono::Duration::minutes(1));
    let late = gw
        .register_plugin(json!({"name": "Late", "event_types": ["order.*"]}))
        .await;
    gw.install(&late, "late-shop", json!(["events:read"])).await;
    let (_, body) = gw
        .plugin_call(&late, "/v1/inbox/pull", json!({"max": 10, "wait_ms": 300}))
        .await;
    assert_eq!(
        body["deliveries"],
        json!([]),
        "nothing from before the installation"
    );

    let (status, replayed) = gw
        .plugin_call(
            &late,
            "/v1/inbox/replay",
            json!({"tenant": "late-shop", "from": "2025-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{replayed}");
    assert_eq!(
        replayed["replayed"], 2,
        "order.* only, not customer.created"
    );
    let got = take(&gw, &late, 2).await;
    assert_eq!(
        types(&got),
        ["late-shop:order.created", "late-shop:order.paid"]
    );

    let (status, _) = gw
        .plugin_call(
            &late,
            "/v1/inbox/replay",
            json!({"tenant": "other-shop", "from": "2025-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
