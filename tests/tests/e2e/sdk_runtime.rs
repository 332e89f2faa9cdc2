//! A plugin written with the SDK runtime, run against the real gateway on Redis (restarted
//! mid-stream) and against the SDK's in-process test gateway: the same story passes on both.

use omnigate::store::Retention;
use omnigate_schemas::api::{CreateInstallation, CreatePlugin, Scope};
use omnigate_sdk::testing::TestGateway;
use omnigate_sdk::{
    Client, Data, Delivery, Handler, HandlerResult, Permanent, PluginEvent, Runtime,
};
use omnigate_tests::{Gateway, fixture_time, payload_fixture, redis_store};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Records what it sees; fails the first `fail` attempts of order.paid.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(String, String, u64)>>,
    fail_paid: u64,
    always_fail: bool,
    /// Fails every delivery for good (`Permanent`).
    give_up: bool,
}

#[omnigate_sdk::async_trait]
impl Handler for Recorder {
    async fn handle(&self, d: &Delivery, _client: &Client) -> HandlerResult {
        self.seen.lock().unwrap().push((
            d.event.tenant.clone(),
            d.event.event_type.clone(),
            d.attempt,
        ));
        if self.give_up {
            return Err(Permanent::new("the order has no customer to write to").into());
        }
        if self.always_fail {
            return Err("the plugin's backend is down".into());
        }
        if let Data::OrderPaid(paid) = d.data()? {
            assert_eq!(paid.amount.amount, "2300.00");
            if d.attempt <= self.fail_paid {
                return Err("transient failure".into());
            }
        }
        Ok(())
    }
}

/// Runs `handler` until `done` says so (or 30 s pass), then stops it gracefully.
async fn run_until<H: Handler>(
    client: Client,
    handler: Arc<H>,
    done: impl Fn() -> bool,
) -> omnigate_sdk::RuntimeStats {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let runtime = Runtime::new(client, handler)
        .concurrency(2)
        .wait(Duration::from_millis(200))
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(100));
    let task = tokio::spawn(runtime.run_until(async {
        let _ = rx.await;
    }));
    for _ in 0..300 {
        if done() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = tx.send(());
    task.await.unwrap().unwrap()
}

async fn register(admin: &Client, name: &str, types: &[&str], tenant: &str) -> (String, String) {
    let created = admin
        .admin()
        .register_plugin(&CreatePlugin {
            name: name.into(),
            event_types: types.iter().map(|s| s.to_string()).collect(),
            publishes: Vec::new(),
            delivery: None,
        })
        .await
        .unwrap();
    admin
        .admin()
        .install(
            &created.plugin.id,
            &CreateInstallation {
                tenant: tenant.into(),
                scopes: vec![Scope::EventsRead],
                push_url: None,
            },
        )
        .await
        .unwrap();
    (created.plugin.id, created.api_key)
}

/// The plugin's dead letters, oldest first.
async fn dead_letters(client: &Client) -> Vec<omnigate_schemas::api::DeadLetterView> {
    client.inbox().dead_letters().await.unwrap().dead_letters
}

/// The story, given a gateway URL where shop A's orders/create and orders/paid and shop
/// B's orders/create were already acknowledged to the sender. "Flaky" is installed in shop A
/// (order.*), "Dead" in shop B (order.created).
async fn story(url: &str, flaky_key: &str, dead_key: &str) {
    let client = |key: &str| Client::builder(url, key).build().unwrap();

    // A handler that fails twice gets the event a third time, with attempt 3.
    let recorder = Arc::new(Recorder {
        fail_paid: 2,
        ..Recorder::default()
    });
    let seen = recorder.clone();
    let stats = run_until(client(flaky_key), recorder.clone(), move || {
        seen.seen.lock().unwrap().len() >= 4
    })
    .await;
    let mut seen = recorder.seen.lock().unwrap().clone();
    seen.sort();
    let a = |t: &str, n| ("sdk-shop-a".to_string(), t.to_string(), n);
    assert_eq!(
        seen,
        [
            a("order.created", 1),
            a("order.paid", 1),
            a("order.paid", 2),
            a("order.paid", 3)
        ],
        "only its own shop's subscribed events"
    );
    assert_eq!((stats.handled, stats.failed), (2, 2));

    // One that always fails lands in the dead letters, and replays from there.
    let failing = Arc::new(Recorder {
        always_fail: true,
        ..Recorder::default()
    });
    let dead_client = client(dead_key);
    let probe = dead_client.clone();
    let dead_seen = Arc::new(Mutex::new(0usize));
    let watcher = dead_seen.clone();
    let poll = tokio::spawn(async move {
        for _ in 0..300 {
            let n = dead_letters(&probe).await.len();
            *watcher.lock().unwrap() = n;
            if n > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let d = dead_seen.clone();
    run_until(dead_client.clone(), failing.clone(), move || {
        *d.lock().unwrap() > 0
    })
    .await;
    poll.await.unwrap();
    let dead = dead_letters(&dead_client).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 3);
    assert_eq!(dead[0].event.event_type, "order.created");
    assert_eq!(dead[0].event.tenant, "sdk-shop-b");
    let why: Vec<(u64, &str)> = dead[0]
        .failures
        .iter()
        .map(|f| (f.attempt, f.reason.as_str()))
        .collect();
    let down = "the plugin's backend is down";
    assert_eq!(
        why,
        [(1, down), (2, down), (3, down)],
        "each attempt's reason"
    );
    assert_eq!(dead_client.inbox().replay_dead(None).await.unwrap(), 1);

    // A failure no retry can fix is a dead letter at its first attempt, with its reason.
    let giving_up = Arc::new(Recorder {
        give_up: true,
        ..Recorder::default()
    });
    let g = giving_up.clone();
    let stats = run_until(dead_client.clone(), giving_up.clone(), move || {
        !g.seen.lock().unwrap().is_empty()
    })
    .await;
    assert_eq!((stats.handled, stats.failed), (0, 1));
    let dead = dead_letters(&dead_client).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 1, "not retried");
    assert_eq!(dead[0].failures.len(), 1);
    assert_eq!(
        dead[0].failures[0].reason,
        "the order has no customer to write to"
    );
    assert_eq!(dead_client.inbox().replay_dead(None).await.unwrap(), 1);
    let healthy = Arc::new(Recorder::default());
    let h = healthy.clone();
    let stats = run_until(dead_client, healthy.clone(), move || {
        !h.seen.lock().unwrap().is_empty()
    })
    .await;
    assert_eq!(stats.handled, 1);
    assert_eq!(
        healthy.seen.lock().unwrap().clone(),
        [("sdk-shop-b".to_string(), "order.created".to_string(), 1)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_story_on_redis_with_a_gateway_restart() {
    let store = redis_store(Retention::default()).await;
    let create = payload_fixture("shopify/orders-create");
    let tweak = |s: &mut omnigate::config::Settings| s.inbox_max_attempts = 3;
    let first = Gateway::start_with(store.clone(), fixture_time(&create), tweak).await;
    let admin = Client::builder(&first.base, omnigate_tests::ADMIN_TOKEN)
        .build()
        .unwrap();
    let (_, flaky) = register(&admin, "Flaky", &["order.*"], "sdk-shop-a").await;
    let (_, dead) = register(&admin, "Dead", &["order.created"], "sdk-shop-b").await;
    let shop_a = first.source_for(&create, "sdk-shop-a").await;
    let shop_b = first.source_for(&create, "sdk-shop-b").await;
    for (source, name) in [
        (&shop_a, "shopify/orders-create"),
        (&shop_a, "shopify/orders-paid"),
        (&shop_b, "shopify/orders-create"),
    ] {
        let res = first
            .deliver_fixture(&source.id, &payload_fixture(name))
            .await;
        assert_eq!(res.status(), reqwest::StatusCode::ACCEPTED);
    }
    // The gateway that acknowledged the deliveries goes away before routing is checked;
    // another process on the same Redis takes over.
    first.stop().await;
    let second = Gateway::start_with(store, fixture_time(&create), tweak).await;
    story(&second.base, &flaky, &dead).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_story_on_the_sdk_test_gateway() {
    let gw = TestGateway::start_with(|s| s.inbox_max_attempts = 3).await;
    let admin = gw.admin();
    let (_, flaky) = register(&admin, "Flaky", &["order.*"], "sdk-shop-a").await;
    let (_, dead) = register(&admin, "Dead", &["order.created"], "sdk-shop-b").await;
    let shop_a = gw.source("shopify", "sdk-shop-a").await;
    let shop_b = gw.source("shopify", "sdk-shop-b").await;
    // The bundled copies of the fixtures, sent with fresh times as a shop would.
    for (source, topic) in [
        (&shop_a, "orders/create"),
        (&shop_a, "orders/paid"),
        (&shop_b, "orders/create"),
    ] {
        let (status, body) = gw.send_sample(source, topic).await;
        assert_eq!(status, 202, "{body}");
    }
    story(&gw.url, &flaky, &dead).await;
}

/// A wrong key is not something to retry: the runtime fails at once, saying so, instead of
/// logging "retrying" forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_fails_fast_on_a_key_the_gateway_refuses() {
    let f = payload_fixture("shopify/orders-create");
    let gw = Gateway::start(redis_store(Retention::default()).await, fixture_time(&f)).await;
    let client = Client::builder(&gw.base, "ogk_not_a_key_of_this_gateway")
        .build()
        .unwrap();
    let run = Runtime::new(client, Recorder::default()).run_until(std::future::pending());
    let err = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the runtime gave up instead of retrying")
        .unwrap_err();
    match &err {
        omnigate_sdk::Error::Api { status, .. } => assert_eq!(*status, 401),
        other => panic!("expected the gateway's 401, got {other}"),
    }
    assert!(err.to_string().contains("plugin API key"), "{err}");
}

/// A stop (SIGTERM) does not wait out the long-poll under way (20 s by default): the
/// runtime drops it after a moment and returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_does_not_wait_for_the_long_poll() {
    let f = payload_fixture("shopify/orders-create");
    let gw = Gateway::start(redis_store(Retention::default()).await, fixture_time(&f)).await;
    let admin = Client::builder(&gw.base, omnigate_tests::ADMIN_TOKEN)
        .build()
        .unwrap();
    let (_, key) = register(&admin, "Quiet", &["order.created"], "sdk-quiet-shop").await;
    let client = Client::builder(&gw.base, &key).build().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(Runtime::new(client, Recorder::default()).run_until(async {
        let _ = stopped.await;
    }));
    // Let it reach its first long-poll, which nothing will answer for 20 s.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.send(()).unwrap();
    let stats = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the runtime stopped without waiting out its 20 s long-poll")
        .unwrap()
        .unwrap();
    assert_eq!(stats.handled, 0);
}

/// `TestGateway::events` gives whole events, every page of them; `send_sample` takes the
/// names `omnigate trigger --list` prints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_gateway_reads_every_page_and_knows_sample_names() {
    use omnigate_schemas::api::{PublishEvent, PublishedType};
    let gw = TestGateway::start().await;
    let plugin = gw
        .install(
            &CreatePlugin {
                name: "Counter".into(),
                event_types: vec!["order.created".into()],
                publishes: vec![PublishedType {
                    event_type: "counter.ticked".into(),
                    schema: serde_json::json!({"type": "object"}),
                }],
                delivery: None,
            },
            "pages-shop",
            &[Scope::EventsRead, Scope::EventsPublish],
        )
        .await;
    for n in 0..150 {
        let tick = PublishEvent::new("pages-shop", "counter.ticked", serde_json::json!({"n": n}));
        plugin.client.events().publish(&tick).await.unwrap();
    }
    let ticks = gw.events("pages-shop", "counter.ticked").await;
    assert_eq!(ticks.len(), 150, "past the first page of 100");
    assert_eq!(ticks[149].data["n"], 149);
    assert!(
        ticks
            .iter()
            .all(|e| e.tenant == "pages-shop" && e.id.starts_with("evt_"))
    );

    let woo = gw.source("woocommerce", "pages-shop").await;
    let (status, body) = gw.send_sample(&woo, "order.updated-completed").await;
    assert_eq!(status, 202, "{body}");
    let updated = gw.wait_for_events("pages-shop", "order.updated", 1).await;
    assert_eq!(updated[0].source.topic, "order.updated");
}

/// Records the order in which it handles events; fails each order's `order.created` at its
/// first two attempts.
#[derive(Default)]
struct FailsCreatedTwice {
    handled: Mutex<Vec<(String, u64, bool)>>,
}

#[omnigate_sdk::async_trait]
impl Handler for FailsCreatedTwice {
    async fn handle(&self, d: &Delivery, _client: &Client) -> HandlerResult {
        let fail = d.event.event_type == "order.created" && d.attempt <= 2;
        self.handled
            .lock()
            .unwrap()
            .push((d.event.event_type.clone(), d.attempt, !fail));
        if fail {
            return Err("the CRM did not answer".into());
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_stays_in_order_across_a_failure_and_its_retry() {
    // Three attempts: order.paid, handed back twice while order.created is retried, must
    // not use them up.
    let gw = TestGateway::start_with(|s| s.inbox_max_attempts = 3).await;
    let plugin = gw
        .plugin("Ordered", &["order.created", "order.paid"], "order-shop")
        .await;
    let shop = gw.source("shopify", "order-shop").await;
    for topic in ["orders/create", "orders/paid"] {
        let (status, body) = gw.send_sample(&shop, topic).await;
        assert_eq!(status, 202, "{body}");
    }
    let handler = Arc::new(FailsCreatedTwice::default());
    let runtime = Runtime::new(plugin.client.clone(), handler.clone())
        .concurrency(4)
        .wait(Duration::from_secs(5))
        .retry_backoff(Duration::from_millis(100), Duration::from_millis(100));
    let stats = gw.run_until_idle(runtime).await;

    // order.paid waited for order.created's retry instead of overtaking it.
    let handled = handler.handled.lock().unwrap().clone();
    assert_eq!(
        handled,
        [
            ("order.created".to_string(), 1, false),
            ("order.created".to_string(), 2, false),
            ("order.created".to_string(), 3, true),
            ("order.paid".to_string(), 1, true),
        ],
        "order.paid waited, untried, and kept its first attempt"
    );
    assert_eq!((stats.handled, stats.failed), (2, 2));
    assert!(stats.held >= 1, "{stats:?}");
    assert!(
        plugin
            .client
            .inbox()
            .dead_letters()
            .await
            .unwrap()
            .dead_letters
            .is_empty()
    );
}

/// The points a customer earned, as the Loyalty plugin publishes them.
#[derive(serde::Serialize, schemars::JsonSchema)]
struct PointsChanged {
    order_id: String,
    points: u32,
}

impl PluginEvent for PointsChanged {
    const TYPE: &'static str = "loyalty.points.changed";
}

struct Loyalty;

#[omnigate_sdk::async_trait]
impl Handler for Loyalty {
    async fn handle(&self, d: &Delivery, client: &Client) -> HandlerResult {
        if let Data::OrderPaid(paid) = d.data()? {
            let points = PointsChanged {
                order_id: paid.order_id.clone(),
                points: 10,
            };
            let event = points
                .publication(&d.event.tenant)?
                .subject(format!("order/{}", paid.order_id))
                .idempotency_key(format!("{}:points", d.event.id));
            client.events().publish(&event).await?;
        }
        Ok(())
    }
}

/// Counts what it receives.
#[derive(Default)]
struct Counter(AtomicUsize);

#[omnigate_sdk::async_trait]
impl Handler for Counter {
    async fn handle(&self, _: &Delivery, _: &Client) -> HandlerResult {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// A publication declared from a Rust type, received by another plugin: the story waits
/// for both plugins to be done with `wait_idle`, not with sleeps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_publication_reaches_its_subscriber_and_the_story_waits_without_sleeping() {
    let gw = TestGateway::start().await;
    let loyalty = gw
        .plugin("Loyalty", &["order.paid"], "typed-shop")
        .publishes::<PointsChanged>()
        .await;
    let declared = loyalty.client.me().await.unwrap().publishes;
    assert_eq!(declared, [PointsChanged::declaration()]);
    let crm = gw
        .plugin("CRM", &["loyalty.points.changed"], "typed-shop")
        .await;
    let shop = gw.source("shopify", "typed-shop").await;
    let (status, body) = gw.send_sample(&shop, "orders/paid").await;
    assert_eq!(status, 202, "{body}");

    let counter = Arc::new(Counter::default());
    let wait = Duration::from_secs(5);
    let a = Runtime::new(loyalty.client.clone(), Loyalty)
        .wait(wait)
        .spawn();
    let b = Runtime::new(crm.client.clone(), counter.clone())
        .wait(wait)
        .spawn();
    gw.wait_idle().await;
    assert_eq!(a.stop().await.unwrap().handled, 1);
    assert_eq!(b.stop().await.unwrap().handled, 1);
    assert_eq!(counter.0.load(Ordering::SeqCst), 1);
    let published = gw.events("typed-shop", "loyalty.points.changed").await;
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].data["points"], 10);
    assert!(published[0].subject.starts_with("order/"));
}
