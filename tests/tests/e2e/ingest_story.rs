//! A shop operator connects a Shopify shop and a WooCommerce shop; their signed webhooks
//! arrive, become canonical events in Redis, and can be read back. Redeliveries are
//! recognised, tampering is refused, and what cannot be mapped waits in quarantine.

use omnigate::store::Retention;
use omnigate_tests::{Gateway, fixture_time, payload_fixture, redis_store};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn money(amount: &str, currency: &str) -> Value {
    json!({"amount": amount, "currency": currency})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shopify_order_becomes_an_order_created_event_once() {
    let f = payload_fixture("shopify/orders-create");
    let gw = Gateway::start(redis_store(Retention::default()).await, fixture_time(&f)).await;
    let source = gw.source_for(&f, "maysternia-hlyny").await;

    let res = gw.deliver_fixture(&source.id, &f).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let accepted: Value = res.json().await.unwrap();
    let ids = accepted["event_ids"].as_array().unwrap().clone();
    assert_eq!(ids.len(), 1);

    // Shopify retries with the same event id: recognised, nothing new is written.
    let again = gw.deliver_fixture(&source.id, &f).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(
        again.json::<Value>().await.unwrap(),
        json!({"duplicate": true})
    );

    let events = gw.tenant_events("maysternia-hlyny", None).await;
    assert_eq!(
        events.len(),
        1,
        "one event, no order.paid from orders/create"
    );
    let e = &events[0];
    assert_eq!(e["id"], ids[0]);
    assert_eq!(e["type"], "order.created");
    assert_eq!(e["schema_version"], 1);
    assert_eq!(e["tenant"], "maysternia-hlyny");
    assert_eq!(e["occurred_at"], "2025-03-14T09:26:53Z");
    assert_eq!(e["subject"], "order/5938201746113");
    assert_eq!(
        e["source"],
        json!({"id": source.id, "provider": "shopify", "topic": "orders/create",
               "delivery_id": "d9023779-e7b3-44f4-b64d-33bce4f775d8"})
    );
    let d = &e["data"];
    assert_eq!(d["order_id"], "5938201746113");
    assert_eq!(d["order_number"], "#3108");
    assert_eq!(d["placed_at"], "2025-03-14T09:26:53Z");
    assert_eq!(d["total"], money("2300.00", "UAH"));
    assert_eq!(d["subtotal"], money("2220.00", "UAH"));
    assert_eq!(d["shipping"], money("80.00", "UAH"));
    assert_eq!(d["tax"], money("0.00", "UAH"));
    assert_eq!(d["discount"], money("0.00", "UAH"));
    assert_eq!(d["payment_state"], "paid");
    assert_eq!(d["customer"]["customer_id"], "7402918365521");
    assert_eq!(d["customer"]["email"], "severyna.tymoshchuk@example.com");
    assert_eq!(d["customer"]["locale"], "uk");
    assert_eq!(d["shipping_address"]["line1"], "Відділення №214");
    assert_eq!(d["shipping_address"]["country"], "UA");
    assert_eq!(d["lines"][1]["unit_price"], money("385.00", "UAH"));
    assert_eq!(d["lines"][1]["quantity"], 2);
    assert!(
        !e.to_string().contains("198.51.100.23"),
        "buyer IP is never copied"
    );

    // orders/paid has a byte-identical body and HMAC: only the headers differ, so it is
    // a new delivery, not a duplicate.
    let paid = payload_fixture("shopify/orders-paid");
    let res = gw.deliver_fixture(&source.id, &paid).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let types: Vec<Value> = gw
        .tenant_events("maysternia-hlyny", None)
        .await
        .iter()
        .map(|e| e["type"].clone())
        .collect();
    assert_eq!(types, [json!("order.created"), json!("order.paid")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_woocommerce_order_becomes_an_order_created_event_once() {
    let f = payload_fixture("woocommerce/order.created");
    let gw = Gateway::start(redis_store(Retention::default()).await, fixture_time(&f)).await;
    let source = gw.source_for(&f, "wiklinowe-kosze").await;

    // WooCommerce first pings a new webhook, unsigned and form-encoded.
    let ping = gw
        .deliver(
            &source.id,
            &[(
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            )],
            b"webhook_id=41",
        )
        .await;
    assert_eq!(ping.status(), StatusCode::OK);
    assert_eq!(
        ping.json::<Value>().await.unwrap(),
        json!({"handshake": true})
    );

    assert_eq!(
        gw.deliver_fixture(&source.id, &f).await.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        gw.deliver_fixture(&source.id, &f).await.status(),
        StatusCode::OK
    );

    let events = gw
        .tenant_events("wiklinowe-kosze", Some("order.created"))
        .await;
    assert_eq!(
        events.len(),
        1,
        "the ping stored nothing, the redelivery nothing"
    );
    let e = &events[0];
    assert_eq!(e["occurred_at"], "2024-11-19T20:47:05Z");
    assert_eq!(e["subject"], "order/52907");
    assert_eq!(
        e["source"]["delivery_id"],
        "b8a60adf04e238894f2959e626f8f463"
    );
    let d = &e["data"];
    assert_eq!(d["order_id"], "52907");
    assert_eq!(d["order_number"], "52907");
    assert_eq!(d["total"], money("320.99", "PLN"));
    assert_eq!(d["subtotal"], money("248.78", "PLN"));
    assert_eq!(d["shipping"], money("12.19", "PLN"));
    assert_eq!(d["tax"], money("60.02", "PLN"));
    assert_eq!(d["discount"], money("0.00", "PLN"));
    assert_eq!(d["payment_state"], "pending");
    assert_eq!(d["provider_status"], "pending");
    assert_eq!(
        d["customer"],
        json!({"customer_id": "1184", "email": "radoslaw.slezak@example.net",
               "phone": "+48 512 904 377", "name": "Radosław Ślęzak"})
    );
    assert_eq!(
        d["shipping_address"],
        json!({"name": "Radosław Ślęzak", "line1": "ul. Wrocławska 41/3", "city": "Opole",
               "postal_code": "45-836", "country": "PL"})
    );
    assert_eq!(d["lines"][0]["unit_price"], money("189.00", "PLN"));
    assert_eq!(d["lines"][1]["unit_price"], money("39.00", "PLN"));
    assert_eq!(d["lines"][1]["title"], "Koszyczek na pieczywo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_or_unsigned_delivery_is_refused_and_stores_nothing() {
    let f = payload_fixture("shopify/orders-create");
    let gw = Gateway::start(redis_store(Retention::default()).await, fixture_time(&f)).await;
    let source = gw.source_for(&f, "tampered-shop").await;
    let headers: Vec<(String, String)> = f
        .headers
        .as_map()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();

    let tampered = String::from_utf8(f.body.clone())
        .unwrap()
        .replace("\"total_price\":\"2300.00\"", "\"total_price\":\"23.00\"")
        .into_bytes();
    assert_ne!(tampered, f.body);
    let unsigned: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| k != "x-shopify-hmac-sha256")
        .cloned()
        .collect();

    let mut bodies = Vec::new();
    for (h, body) in [(&headers, &tampered), (&unsigned, &f.body)] {
        let res = gw.deliver(&source.id, h, body).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "errors are RFC 9457 documents"
        );
        bodies.push(res.json::<Value>().await.unwrap());
    }
    assert_eq!(
        bodies[0], bodies[1],
        "missing and wrong signatures look the same"
    );
    assert_eq!(
        bodies[0]["type"],
        "https://omnigate.dev/problems/invalid-signature"
    );
    assert!(gw.tenant_events("tampered-shop", None).await.is_empty());
    let q: Value = gw.admin_json("/v1/quarantine?tenant=tampered-shop").await;
    assert_eq!(
        q["entries"],
        json!([]),
        "unverified payloads are not kept either"
    );

    // The genuine delivery still goes through afterwards.
    assert_eq!(
        gw.deliver_fixture(&source.id, &f).await.status(),
        StatusCode::ACCEPTED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_topic_waits_in_quarantine_byte_exact() {
    // A topic Omnigate does not map (the HMAC covers the body only, so it still verifies).
    let mut f = payload_fixture("shopify/customers-create");
    let mut headers: Vec<(String, String)> = f
        .headers
        .as_map()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in &mut headers {
        if k == "x-shopify-topic" {
            *v = "customers/disable".into();
        }
    }
    f.headers = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let gw = Gateway::start(redis_store(Retention::default()).await, fixture_time(&f)).await;
    let source = gw.source_for(&f, "grunewald-teeladen").await;

    let res = gw.deliver_fixture(&source.id, &f).await;
    assert_eq!(
        res.status(),
        StatusCode::ACCEPTED,
        "a verified payload is never refused"
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["quarantined"], true);
    let qid = body["quarantine_id"].as_str().unwrap().to_string();
    // A redelivery of the same payload is recognised as well.
    assert_eq!(
        gw.deliver_fixture(&source.id, &f).await.status(),
        StatusCode::OK
    );

    let list: Value = gw
        .admin_json("/v1/quarantine?tenant=grunewald-teeladen")
        .await;
    let entries = list["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert_eq!(entry["id"], qid);
    assert_eq!(entry["topic"], "customers/disable");
    assert!(
        entry["reason"]
            .as_str()
            .unwrap()
            .contains("customers/disable")
    );
    assert_eq!(entry["body_bytes"], f.body.len());
    assert!(entry.get("body").is_none(), "a list shows no bodies");
    let entry = gw.admin_json(&format!("/v1/quarantine/{qid}")).await;
    use base64::Engine;
    let kept = base64::engine::general_purpose::STANDARD
        .decode(entry["body_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(kept, f.body, "kept byte-exact");
    assert_eq!(
        entry["headers"]["x-shopify-event-id"],
        "181f1e82-965b-431f-b657-56846d45ad71"
    );

    // Replaying without a mapping fails clearly and keeps the entry.
    let res = gw
        .admin(Method::POST, &format!("/v1/quarantine/{qid}/replay"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(
        problem["type"],
        "https://omnigate.dev/problems/replay-failed"
    );
    let one: Value = gw.admin_json(&format!("/v1/quarantine/{qid}")).await;
    assert_eq!(one["id"], qid);
    assert!(one.get("replayed_event_ids").is_none());
    assert!(
        gw.tenant_events("grunewald-teeladen", None)
            .await
            .is_empty()
    );
}

/// An operator upgrades the gateway to a version that maps a topic the old one could not,
/// and replays what the old version quarantined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantined_payload_replays_into_events_after_an_upgrade() {
    use omnigate::store::{Append, QuarantineId, QuarantineRecord, Write, partition_of};
    let f = payload_fixture("shopify/orders-create");
    let store = redis_store(Retention::default()).await;
    let gw = Gateway::start(store.clone(), fixture_time(&f)).await;
    let source = gw.source_for(&f, "maysternia-hlyny").await;

    // What an older gateway, which did not map orders/create yet, kept.
    let partition = partition_of("maysternia-hlyny", 16);
    let key = format!("{}:7afd1ded-9bb6-4769-b7b3-b75fc209d9af", source.id);
    let written = store
        .append(Append {
            partition,
            dedupe_key: key.clone(),
            dedupe_ttl: std::time::Duration::from_secs(3600),
            write: Write::Quarantine(QuarantineRecord {
                tenant: "maysternia-hlyny".into(),
                source_id: source.id.clone(),
                provider: "shopify".into(),
                topic: Some("orders/create".into()),
                reason: "shopify topic \"orders/create\" is not mapped".into(),
                received_at: fixture_time(&f),
                headers: f.headers.as_map().clone(),
                body: f.body.clone(),
                dedupe_key: key.clone(),
            }),
            snapshot: None,
        })
        .await
        .unwrap();
    let omnigate::store::Appended::Written { ids, .. } = written else {
        panic!("not written")
    };
    let qid = QuarantineId {
        partition,
        entry: ids[0],
    }
    .to_string();

    let replay = |gw: &Gateway| {
        gw.admin(Method::POST, &format!("/v1/quarantine/{qid}/replay"))
            .send()
    };
    let res = replay(&gw).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let first: Value = res.json().await.unwrap();
    // The ids the delivery would have had if it had been mapped on arrival: named after
    // the fact it proves.
    assert_eq!(
        first["event_ids"],
        json!([omnigate::ingest::fact_event_id(
            &source.id,
            "order.created|order/5938201746113"
        )])
    );
    let events = gw.tenant_events("maysternia-hlyny", None).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["total"], money("2300.00", "UAH"));
    assert_eq!(events[0]["received_at"], "2025-03-14T09:26:55Z");

    // Replaying twice writes nothing more.
    let second: Value = replay(&gw).await.unwrap().json().await.unwrap();
    assert_eq!(second, first);
    assert_eq!(gw.tenant_events("maysternia-hlyny", None).await.len(), 1);
    let entry: Value = gw.admin_json(&format!("/v1/quarantine/{qid}")).await;
    assert_eq!(entry["replayed_event_ids"], first["event_ids"]);

    // And the original delivery, retried by Shopify, is a duplicate.
    assert_eq!(
        gw.deliver_fixture(&source.id, &f).await.status(),
        StatusCode::OK
    );
}

/// Every signed sample verifies through the running gateway (with its clock set to the
/// fixture's) and becomes events: every fixture topic is mapped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_signed_fixture_becomes_events() {
    let store = redis_store(Retention::default()).await;
    let fixtures = omnigate_tests::load_payload_fixtures();
    assert!(fixtures.len() >= 20);
    let gw = Gateway::start(store, fixture_time(&fixtures[0])).await;
    for f in &fixtures {
        gw.clock.set(fixture_time(f));
        let source = gw.source_for(f, "all-fixtures").await;
        let res = gw.deliver_fixture(&source.id, f).await;
        assert_eq!(res.status(), StatusCode::ACCEPTED, "{}", f.name);
        let body: Value = res.json().await.unwrap();
        let ids = body["event_ids"].as_array();
        assert!(ids.is_some_and(|ids| !ids.is_empty()), "{}: {body}", f.name);
    }
}

/// Timestamped schemes reject deliveries outside the window, with their own problem type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_stripe_delivery_is_refused() {
    let f = payload_fixture("stripe/charge.refunded");
    let late = fixture_time(&f) + chrono::Duration::seconds(301);
    let gw = Gateway::start(redis_store(Retention::default()).await, late).await;
    let source = gw.source_for(&f, "stale-shop").await;
    let res = gw.deliver_fixture(&source.id, &f).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let p: Value = res.json().await.unwrap();
    assert_eq!(
        p["type"],
        "https://omnigate.dev/problems/timestamp-outside-tolerance"
    );
    // With a wider window configured on the source, it verifies.
    let wide = gw
        .create_source(json!({"tenant": "stale-shop", "provider": "stripe",
                              "secret": f.secret, "options": {"tolerance_s": 600}}))
        .await;
    assert_eq!(
        gw.deliver_fixture(&wide.id, &f).await.status(),
        StatusCode::ACCEPTED
    );
}

/// The WooCommerce order of the fixtures, created → processing → completed → refunded,
/// through the gateway on Redis, each delivery sent twice: every fact once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_woocommerce_order_lifecycle_yields_each_event_once_in_order() {
    let first = payload_fixture("woocommerce/order.created");
    let gw = Gateway::start(
        redis_store(Retention::default()).await,
        fixture_time(&first),
    )
    .await;
    let source = gw.source_for(&first, "wiklinowe-kosze").await;
    for name in [
        "woocommerce/customer.created",
        "woocommerce/order.created",
        "woocommerce/order.updated-processing",
        "woocommerce/order.updated-completed",
        "woocommerce/order.updated-refunded",
    ] {
        let f = payload_fixture(name);
        assert_eq!(
            gw.deliver_fixture(&source.id, &f).await.status(),
            StatusCode::ACCEPTED,
            "{name}"
        );
        assert_eq!(
            gw.deliver_fixture(&source.id, &f).await.status(),
            StatusCode::OK,
            "{name} again"
        );
    }
    // A late redelivery of an older state (after the dedupe window, say) adds nothing either.
    let events = gw.tenant_events("wiklinowe-kosze", None).await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "customer.created",
            "order.created",
            "order.paid",
            "order.fulfilled",
            "refund.created",
            "order.updated"
        ]
    );
    let refund = &events[4];
    assert_eq!(refund["data"]["amount"], money("320.99", "PLN"));
    assert_eq!(refund["occurred_at"], "2024-12-02T13:31:18Z");
    assert_eq!(
        refund["id"],
        omnigate::ingest::fact_event_id(&source.id, "refund:53140"),
        "derived events are named after their fact"
    );
    assert_eq!(events[2]["data"]["reference"], "P24-7Q2M-KX9D-3WHF");
}

/// Calls of one Redis command since the last `CONFIG RESETSTAT`.
async fn calls(redis: &mut redis::aio::MultiplexedConnection, command: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(redis)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_order_is_written_in_one_round_trip_and_its_snapshot_is_a_compact_hash() {
    // A Redis of its own: the test counts the commands the gateway sends it.
    let redis_server = omnigate_tests::RedisProcess::start();
    let prefix = omnigate_tests::unique_prefix();
    let store = omnigate_tests::redis_store_with(
        &redis_server.url(),
        &prefix,
        Retention::default(),
        Some(omnigate_tests::test_sealer()),
    )
    .await;
    let create = payload_fixture("shopify/orders-create");
    let gw = Gateway::start(std::sync::Arc::new(store), fixture_time(&create)).await;
    let client = redis::Client::open(redis_server.url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();

    let source = gw.source_for(&create, "maysternia-hlyny").await;
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut redis)
        .await
        .unwrap();
    let res = gw.deliver_fixture(&source.id, &create).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert_eq!(
        calls(&mut redis, "hgetall").await,
        0,
        "a new order is written without reading a snapshot first"
    );

    // The kept snapshot: a hash of fingerprints and the few values the rules read, no copy
    // of the order.
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:snapshot:*"))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let kind: String = redis::cmd("TYPE")
        .arg(&keys[0])
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(kind, "hash");
    let hash: std::collections::HashMap<String, Vec<u8>> = redis::cmd("HGETALL")
        .arg(&keys[0])
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(hash["v"], b"1");
    assert_eq!(hash["s"], b"paid");
    let kept: usize = hash.values().map(Vec::len).sum();
    assert!(
        kept < create.body.len() / 3,
        "{kept} bytes kept for an order of {}",
        create.body.len()
    );
    for (field, value) in &hash {
        let text = String::from_utf8_lossy(value);
        assert!(
            !text.contains("severyna") && !text.contains("Драгоманова"),
            "{field} holds personal data"
        );
    }

    // A later topic about the order reads the snapshot (one HGETALL) and is diffed against it.
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut redis)
        .await
        .unwrap();
    let updated = payload_fixture("shopify/orders-updated");
    assert_eq!(
        gw.deliver_fixture(&source.id, &updated).await.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(calls(&mut redis, "hgetall").await, 1);
    let events = gw
        .tenant_events("maysternia-hlyny", Some("order.updated"))
        .await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0]["data"]["changed"],
        json!(["shipping_address", "tags"])
    );
    assert_eq!(events[0]["data"]["changed_known"], true);

    // Out of order: orders/paid first, then orders/create. The create expects no snapshot,
    // is told the one that exists in the same reply, and is written from it: no read of its
    // own. (Redis counts the commands scripts run, so the script's HGETALL shows.)
    let other = gw.source_for(&create, "second-shop").await;
    let paid = payload_fixture("shopify/orders-paid");
    assert_eq!(
        gw.deliver_fixture(&other.id, &paid).await.status(),
        StatusCode::ACCEPTED
    );
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(
        gw.deliver_fixture(&other.id, &create).await.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        calls(&mut redis, "hgetall").await,
        1,
        "only the one inside the append script that answered the conflict"
    );
    let types: Vec<Value> = gw
        .tenant_events("second-shop", None)
        .await
        .iter()
        .map(|e| e["type"].clone())
        .collect();
    assert_eq!(types, [json!("order.paid"), json!("order.created")]);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!(
            "{prefix}:snapshot:*:{}:order:5938201746113",
            other.id
        ))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let version: String = redis::cmd("HGET")
        .arg(&keys[0])
        .arg("v")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(version, "2", "paid wrote version 1, the create version 2");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_kept_by_an_earlier_version_still_counts_after_the_upgrade() {
    let (store, prefix) = omnigate_tests::redis_store_with_prefix(Retention::default()).await;
    let create = payload_fixture("shopify/orders-create");
    let updated = payload_fixture("shopify/orders-updated");
    let gw = Gateway::start(store, fixture_time(&create)).await;
    let client = redis::Client::open(omnigate_tests::redis_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    // What the previous layout left: a `version|json` string under `state:`, its fingerprints
    // in a form this version cannot compare.
    let partition = omnigate::store::partition_of(
        "maysternia-hlyny",
        omnigate::config::Settings::default().partitions,
    );
    let key = |layout: &str, source: &str| {
        format!("{prefix}:{layout}:{{{partition}}}:{source}:order:5938201746113")
    };
    let leave = |modified: &str| {
        format!(
            r#"3|{{"modified":"{modified}","fields":{{"tags":"0123456789abcdef"}},"status":"paid","customer_id":"7402918365521"}}"#
        )
    };

    // Its values count: an update older than the order it kept adds nothing.
    let newer = gw.source_for(&create, "maysternia-hlyny").await;
    let _: () = redis::cmd("SET")
        .arg(key("state", &newer.id))
        .arg(leave("2025-03-15T00:00:00Z"))
        .query_async(&mut redis)
        .await
        .unwrap();
    let res = gw.deliver_fixture(&newer.id, &updated).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"event_ids": []}),
        "older than the kept order: nothing new"
    );
    assert!(
        gw.tenant_events("maysternia-hlyny", Some("order.updated"))
            .await
            .is_empty()
    );

    // Its fingerprints do not: the diff says it does not know, instead of guessing; the new
    // layout takes over and the old key is left to expire.
    let older = gw.source_for(&create, "maysternia-hlyny").await;
    let _: () = redis::cmd("SET")
        .arg(key("state", &older.id))
        .arg(leave("2025-03-14T09:26:54Z"))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(
        gw.deliver_fixture(&older.id, &updated).await.status(),
        StatusCode::ACCEPTED
    );
    let events = gw
        .tenant_events("maysternia-hlyny", Some("order.updated"))
        .await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["changed_known"], false);
    let hash: std::collections::HashMap<String, Vec<u8>> = redis::cmd("HGETALL")
        .arg(key("snapshot", &older.id))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(hash["v"], b"1");
    let old: Option<String> = redis::cmd("GET")
        .arg(key("state", &older.id))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(old.is_some());
    gw.stop().await;
}

/// Quarantine is never trimmed: at its cap a further payload that cannot be mapped is
/// refused with 503 (the sender retries; nothing kept is evicted), and an operator makes
/// room by discarding entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_quarantine_refuses_instead_of_evicting_until_an_entry_is_discarded() {
    const SECRET: &str = "shpss_quarantine_cap_0123456789";
    let gw = Gateway::start_with(
        redis_store(Retention {
            quarantine_maxlen: 1,
            ..Retention::default()
        })
        .await,
        chrono::Utc::now(),
        |_| {},
    )
    .await;
    let source = gw
        .create_source(json!({"tenant": "cap-shop", "provider": "shopify", "secret": SECRET}))
        .await;
    // Carts are not mapped: every body below goes to quarantine.
    let cart = |n: u32| {
        let body = format!(r#"{{"id":"cart-{n}","token":"t{n}","line_items":[]}}"#).into_bytes();
        let headers = vec![
            ("X-Shopify-Topic".to_string(), "carts/update".to_string()),
            (
                "X-Shopify-Hmac-Sha256".to_string(),
                omnigate::sign::body_hmac_base64(SECRET, &body),
            ),
        ];
        (headers, body)
    };
    let (h, b) = cart(1);
    let first = gw.deliver(&source.id, &h, &b).await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let qid = first.json::<Value>().await.unwrap()["quarantine_id"]
        .as_str()
        .unwrap()
        .to_string();

    let (h, b) = cart(2);
    let refused = gw.deliver(&source.id, &h, &b).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().contains_key("retry-after"));
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(
        problem["type"],
        "https://omnigate.dev/problems/quarantine-full"
    );
    assert!(gw.admin_json(&format!("/v1/quarantine/{qid}")).await["body"].is_string());

    let discard = |id: String| gw.admin(reqwest::Method::DELETE, &format!("/v1/quarantine/{id}"));
    assert_eq!(
        discard(qid.clone()).send().await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        discard(qid.clone()).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    // The sender's retry now fits.
    assert_eq!(
        gw.deliver(&source.id, &h, &b).await.status(),
        StatusCode::ACCEPTED
    );
}

/// A plugin writing to the customer about a parcel needs the order's number and language,
/// which Shopify's fulfillment webhook does not carry: the gateway adds them from the order
/// it kept, or the shop's language (`options.locale`) when it never saw the order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shipment_says_its_order_s_number_and_language() {
    let order = payload_fixture("shopify/orders-create");
    let shipped = payload_fixture("shopify/fulfillments-create");
    let first = fixture_time(&order).min(fixture_time(&shipped));
    let gw = Gateway::start(redis_store(Retention::default()).await, first).await;
    let source = |tenant: &'static str| {
        gw.create_source(json!({"tenant": tenant, "provider": "shopify",
            "secret": order.secret, "options": {"locale": "pl"}}))
    };
    let known = source("known-order-shop").await;
    for f in [&order, &shipped] {
        let res = gw.deliver_fixture(&known.id, f).await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
    }
    let unknown = source("unknown-order-shop").await;
    let res = gw.deliver_fixture(&unknown.id, &shipped).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);

    let gw = &gw;
    let data = |tenant| async move {
        gw.tenant_events(tenant, Some("shipment.created")).await[0]["data"].clone()
    };
    let with_order = data("known-order-shop").await;
    assert_eq!(with_order["order_number"], "#3108");
    assert_eq!(
        with_order["locale"], "uk",
        "the customer's language, not the shop's"
    );
    let without = data("unknown-order-shop").await;
    assert_eq!(without["locale"], "pl");
    assert!(without.get("order_number").is_none(), "{without}");

    let (status, problem) = {
        let res = gw
            .admin(Method::POST, "/v1/sources")
            .json(
                &json!({"tenant": "t", "provider": "shopify", "secret": "0123456789abcdef0123",
                          "options": {"locale": "english"}}),
            )
            .send()
            .await
            .unwrap();
        (res.status(), res.json::<Value>().await.unwrap())
    };
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"].as_array().unwrap().len(), 1, "{problem}");
    assert!(
        problem["errors"][0]
            .as_str()
            .unwrap()
            .starts_with("/options")
    );
}
