//! The five-minute tour as a test: a Shopify shop on the real gateway and Redis, the three
//! example plugins running on the SDK with their state in Redis, and the business outcomes.

use chrono::{DateTime, Duration, Utc};
use omnigate::sign::{ProviderWebhook, sign};
use omnigate::store::Retention;
use omnigate_schemas::api::{CreateInstallation, KeyEncoding, Provider, PublishEvent, Scope};
use omnigate_sdk::state::{RedisState, StateStore, Tracked};
use omnigate_sdk::{Client, Runtime};
use omnigate_tests::{ADMIN_TOKEN, Gateway, redis_store, redis_url, unique_prefix};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

const TENANT: &str = "tour-shop";
const SECRET: &str = "tour-shopify-secret";

fn sample(name: &str) -> String {
    omnigate::samples::find(Provider::Shopify, name)
        .unwrap()
        .body
        .to_string()
}

fn at(t: &str) -> i64 {
    t.parse::<DateTime<Utc>>().unwrap().timestamp()
}

async fn send(gw: &Gateway, source: &str, topic: &str, body: &str, now: i64, id: &str) {
    let headers = sign(&ProviderWebhook {
        provider: Provider::Shopify,
        secret: SECRET,
        key_encoding: KeyEncoding::Base64,
        topic,
        body: body.as_bytes(),
        now,
        delivery_id: id,
    })
    .unwrap();
    // The recorded samples are replayed at the time the shop sent them.
    gw.clock
        .set(DateTime::from_timestamp(now, 0).expect("a time in range"));
    let res = gw.deliver(source, &headers, body.as_bytes()).await;
    assert_eq!(res.status().as_u16(), 202, "{topic} {id}");
}

async fn published(gw: &Gateway, event_type: &str) -> Vec<Value> {
    gw.tenant_events(TENANT, Some(event_type))
        .await
        .into_iter()
        .map(|e| e["data"].clone())
        .collect()
}

async fn wait_for(gw: &Gateway, event_type: &str, n: usize) -> Vec<Value> {
    for _ in 0..150 {
        let got = published(gw, event_type).await;
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "{event_type} never reached {n}: {:?}",
        published(gw, event_type).await
    );
}

async fn install(admin: &Client, registration: omnigate_schemas::api::CreatePlugin) -> Client {
    let created = admin.admin().register_plugin(&registration).await.unwrap();
    admin
        .admin()
        .install(
            &created.plugin.id,
            &CreateInstallation {
                tenant: TENANT.into(),
                scopes: vec![Scope::EventsRead, Scope::EventsPublish, Scope::CustomerPii],
                push_url: None,
            },
        )
        .await
        .unwrap();
    Client::builder(admin_url(admin), created.api_key)
        .build()
        .unwrap()
}

fn admin_url(_: &Client) -> String {
    URL.with(|u| u.borrow().clone())
}

thread_local! {
    static URL: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_five_minute_tour() {
    // The shop's story is replayed at the times it happened; the plugins are installed
    // just before it starts.
    let start = "2025-03-14T09:26:00Z".parse::<DateTime<Utc>>().unwrap();
    let gw = Gateway::start(redis_store(Retention::default()).await, start).await;
    URL.with(|u| *u.borrow_mut() = gw.base.clone());
    let admin = Client::builder(&gw.base, ADMIN_TOKEN).build().unwrap();
    let source = gw
        .create_source(json!({"tenant": TENANT, "provider": "shopify", "secret": SECRET}))
        .await
        .id;

    // The three plugins, their state in Redis.
    let redis = redis_url();
    let state = |name: &str| {
        let (redis, prefix) = (redis.clone(), format!("{}:{name}", unique_prefix()));
        async move { RedisState::connect(&redis, &prefix).await.unwrap() }
    };
    let loyalty_client = install(&admin, loyalty::plugin::registration()).await;
    let returns_client = install(&admin, returns::plugin::registration()).await;
    let returns_books: Arc<dyn StateStore<Tracked<returns::policy::Book>>> =
        Arc::new(state("returns").await);
    let cc_client = install(&admin, contact_center::plugin::registration()).await;
    let mut excluded = std::collections::HashSet::new();
    excluded.insert("MH-GL-SV-15".to_string());
    let now: Arc<Mutex<DateTime<Utc>>> =
        Arc::new(Mutex::new("2025-03-14T09:27:00Z".parse().unwrap()));
    let clock = now.clone();
    let cc = Arc::new(contact_center::plugin::ContactCenter {
        books: Arc::new(state("cc").await),
        confirm_within: Duration::minutes(10),
        regular_orders: 3,
        clock: Arc::new(move || *clock.lock().unwrap()),
        tenants: Default::default(),
    });
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let wait = std::time::Duration::from_millis(200);
    let runtimes = vec![
        tokio::spawn(
            Runtime::new(
                loyalty_client.clone(),
                loyalty::plugin::Loyalty {
                    policy: loyalty::rules::Policy::default(),
                    books: Arc::new(state("loyalty").await),
                },
            )
            .wait(wait)
            .run_until(until(stopped.clone())),
        ),
        tokio::spawn(
            Runtime::new(
                returns_client,
                returns::plugin::Returns {
                    policy: returns::policy::Policy {
                        excluded_skus: excluded,
                        ..returns::policy::Policy::default()
                    },
                    books: returns_books.clone(),
                },
            )
            .wait(wait)
            .run_until(until(stopped.clone())),
        ),
        tokio::spawn(
            Runtime::new(cc_client.clone(), cc.clone())
                .wait(wait)
                .run_until(until(stopped.clone())),
        ),
    ];

    // An order, paid, delivered.
    let t0 = at("2025-03-14T09:27:00Z");
    send(
        &gw,
        &source,
        "orders/create",
        &sample("orders-create"),
        t0,
        "e-create",
    )
    .await;
    send(
        &gw,
        &source,
        "orders/paid",
        &sample("orders-paid"),
        t0,
        "e-paid",
    )
    .await;
    let points = wait_for(&gw, "loyalty.points.changed", 1).await;
    assert_eq!(
        (points[0]["delta"].clone(), points[0]["balance"].clone()),
        (json!(2300), json!(2300))
    );
    assert_eq!(points[0]["tier"], "gold");
    send(
        &gw,
        &source,
        "fulfillments/update",
        &sample("fulfillments-update"),
        at("2025-03-17T11:18:40Z"),
        "e-delivered",
    )
    .await;
    let asked = wait_for(&gw, "loyalty.nps.requested", 1).await;
    assert_eq!(asked[0]["order_id"], "5938201746113");

    // Three survey answers: 10 and 9 promote, 3 detracts → NPS 33.
    for (i, score) in [10, 9, 3].into_iter().enumerate() {
        loyalty_client
            .events()
            .publish(&PublishEvent {
                tenant: TENANT.into(),
                event_type: loyalty::plugin::NPS_ANSWERED.into(),
                data: json!({"score": score}),
                subject: None,
                occurred_at: None,
                idempotency_key: Some(format!("answer-{i}")),
            })
            .await
            .unwrap();
    }
    let nps = wait_for(&gw, "loyalty.nps.updated", 3).await;
    assert!(nps.iter().any(|n| n["nps"] == 33), "{nps:?}");

    // Returns come after the delivery: in the window (approved), an excluded SKU
    // (declined), out of the window (declined).
    for _ in 0..100 {
        let (t, _) = returns_books.load(TENANT).await.unwrap();
        if t.doc
            .orders
            .get("5938201746113")
            .is_some_and(|o| o.delivered_at.is_some())
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let request = sample("returns-request");
    send(
        &gw,
        &source,
        "returns/request",
        &request,
        at("2025-03-20T07:55:12Z"),
        "r-in",
    )
    .await;
    let excluded_request = request
        .replace("8127364501", "8127364502")
        .replace("14820397497881", "14820397465113");
    send(
        &gw,
        &source,
        "returns/request",
        &excluded_request,
        at("2025-03-20T08:00:00Z"),
        "r-sku",
    )
    .await;
    let late_request = request.replace("8127364501", "8127364503");
    send(
        &gw,
        &source,
        "returns/request",
        &late_request,
        at("2025-05-01T08:00:00Z"),
        "r-late",
    )
    .await;
    let approved = wait_for(&gw, "returns.approved", 1).await;
    let declined = wait_for(&gw, "returns.declined", 2).await;
    assert_eq!(approved[0]["return_id"], "8127364501");
    let rules: Vec<(String, String)> = declined
        .iter()
        .map(|d| {
            (
                d["return_id"].as_str().unwrap().into(),
                d["rule"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        rules.contains(&("8127364502".into(), "excluded_sku".into())),
        "{rules:?}"
    );
    assert!(
        rules.contains(&("8127364503".into(), "outside_window".into())),
        "{rules:?}"
    );

    // The refund takes its points back and closes the approved return.
    send(
        &gw,
        &source,
        "refunds/create",
        &sample("refunds-create"),
        at("2025-03-24T10:06:31Z"),
        "e-refund",
    )
    .await;
    let points = wait_for(&gw, "loyalty.points.changed", 2).await;
    assert_eq!(
        (points[1]["delta"].clone(), points[1]["balance"].clone()),
        (json!(-385), json!(1915))
    );
    let closed = wait_for(&gw, "returns.closed", 1).await;
    assert_eq!(closed[0]["return_id"], "8127364501");

    // A second order, paid, then cancelled: its points come back off.
    let second = sample("orders-create").replace("5938201746113", "5938201746114");
    let second_paid = sample("orders-paid").replace("5938201746113", "5938201746114");
    let second_cancelled = second
        .replace(
            "\"cancelled_at\":null",
            "\"cancelled_at\":\"2025-03-15T10:00:00+02:00\"",
        )
        .replace("\"cancel_reason\":null", "\"cancel_reason\":\"customer\"");
    send(&gw, &source, "orders/create", &second, t0, "e2-create").await;
    send(&gw, &source, "orders/paid", &second_paid, t0, "e2-paid").await;
    send(
        &gw,
        &source,
        "orders/cancelled",
        &second_cancelled,
        t0,
        "e2-cancel",
    )
    .await;
    let points = wait_for(&gw, "loyalty.points.changed", 4).await;
    assert_eq!(points[2]["balance"], 4215);
    assert_eq!(
        (points[3]["delta"].clone(), points[3]["balance"].clone()),
        (json!(-2300), json!(1915))
    );
    assert_eq!(points[3]["reason"], "order_cancelled");

    // A third order is never paid: after ten minutes the contact centre raises an alert;
    // the paid orders raise none.
    let third = sample("orders-create").replace("5938201746113", "5938201746115");
    send(&gw, &source, "orders/create", &third, t0, "e3-create").await;
    for _ in 0..100 {
        let (t, _) = cc.books.load(TENANT).await.unwrap();
        if t.doc.unconfirmed.contains_key("5938201746115") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    *now.lock().unwrap() = "2025-03-14T09:35:00Z".parse().unwrap();
    assert_eq!(cc.sweep(&cc_client).await.unwrap(), 0);
    *now.lock().unwrap() = "2025-03-14T09:37:54Z".parse().unwrap();
    assert_eq!(cc.sweep(&cc_client).await.unwrap(), 1);
    let alerts = wait_for(&gw, "service.alert", 1).await;
    let unconfirmed: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["kind"] == "order_unconfirmed")
        .collect();
    assert_eq!(unconfirmed.len(), 1);
    assert_eq!(unconfirmed[0]["order_id"], "5938201746115");

    // The agent's view of the customer.
    let (t, _) = cc.books.load(TENANT).await.unwrap();
    let timeline = t
        .doc
        .timeline("severyna.tymoshchuk@example.com", true)
        .unwrap();
    assert_eq!(timeline.customer_id, "7402918365521");
    assert_eq!(timeline.counts["order.created"], 3);
    assert_eq!(timeline.counts["order.paid"], 2);
    assert_eq!(timeline.counts["return.requested"], 3);
    assert_eq!(timeline.counts["refund.created"], 1);

    let _ = stop.send(true);
    for r in runtimes {
        r.await.unwrap().unwrap();
    }
}
