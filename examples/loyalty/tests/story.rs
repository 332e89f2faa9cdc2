//! A shop's customer orders, pays, receives the parcel, answers the survey and returns an
//! item: points, tier, NPS request and NPS, against the SDK's in-process gateway.

use loyalty::plugin::{Loyalty, NPS_ANSWERED, registration};
use loyalty::rules::Policy;
use omnigate_sdk::api::{Delivery, PublishEvent, ReplayLog, Scope};
use omnigate_sdk::push::Server;
use omnigate_sdk::state::MemoryState;
use omnigate_sdk::testing::TestGateway;
use omnigate_sdk::{Client, Runtime};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

fn loyalty() -> Loyalty {
    Loyalty {
        policy: Policy::default(),
        books: Arc::new(MemoryState::default()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn points_tiers_and_nps_for_one_customer_pulled() {
    let gw = TestGateway::start().await;
    let plugin = gw
        .install(
            &registration(),
            "maysternia",
            &[Scope::EventsRead, Scope::EventsPublish],
        )
        .await;
    let running = Runtime::new(plugin.client.clone(), loyalty())
        .wait(Duration::from_millis(200))
        .spawn();
    story(&gw, &plugin.client).await;
    let stats = running.stop().await.unwrap();
    assert!(stats.handled >= 5);
}

/// The same plugin, registered for push delivery: the gateway POSTs each event to the
/// SDK's push server, which runs the same handler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn points_tiers_and_nps_for_one_customer_pushed() {
    let gw = TestGateway::start().await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut pushed = registration();
    pushed.delivery = Some(Delivery::push(format!(
        "http://{}/",
        listener.local_addr().unwrap()
    )));
    let plugin = gw
        .install(
            &pushed,
            "maysternia",
            &[Scope::EventsRead, Scope::EventsPublish],
        )
        .await;
    let serving = Server::new(plugin.client.clone(), plugin.verifier(), loyalty())
        .serve(listener)
        .unwrap();
    story(&gw, &plugin.client).await;
    let stats = serving.stop().await;
    assert!(stats.handled >= 5, "{stats:?}");
}

/// Order, payment and delivery → points, tier and a survey request; the answer → NPS; a
/// refund → points taken back, once.
async fn story(gw: &TestGateway, client: &Client) {
    let shop = gw.source("shopify", "maysternia").await;
    for sample in ["orders-create", "orders-paid", "fulfillments-update"] {
        let (status, body) = gw.send_sample(&shop, sample).await;
        assert_eq!(status, 202, "{sample}: {body}");
    }
    let points = gw
        .wait_for_events("maysternia", "loyalty.points.changed", 1)
        .await;
    assert_eq!(points[0].data["delta"], 2300, "1 point per UAH of 2300.00");
    assert_eq!(points[0].data["tier"], "gold");
    assert_eq!(points[0].data["customer_id"], "7402918365521");
    let asked = gw
        .wait_for_events("maysternia", "loyalty.nps.requested", 1)
        .await;
    assert_eq!(asked[0].data["order_id"], "5938201746113");

    // The shop's mailer (here: the plugin's own key) reports the answer.
    client
        .events()
        .publish(&PublishEvent {
            tenant: "maysternia".into(),
            event_type: NPS_ANSWERED.into(),
            data: json!({"score": 9, "customer_id": "7402918365521"}),
            subject: None,
            occurred_at: None,
            idempotency_key: Some("survey-1".into()),
        })
        .await
        .unwrap();
    let nps = gw
        .wait_for_events("maysternia", "loyalty.nps.updated", 1)
        .await;
    assert_eq!(nps[0].data["nps"], 100);

    // The refund takes back the points its amount earned; a redelivery changes nothing.
    let (status, _) = gw.send_sample(&shop, "refunds/create").await;
    assert_eq!(status, 202);
    let points = gw
        .wait_for_events("maysternia", "loyalty.points.changed", 2)
        .await;
    assert_eq!(points[1].data["delta"], -385);
    assert_eq!(points[1].data["balance"], 1915);
    assert_eq!(points[1].data["tier"], "silver");
    // Every event of the shop is delivered again (a replay, as after a lost database):
    // the plugin handles each a second time and publishes nothing twice.
    let (mut after, mut total) = (None, 0);
    loop {
        let replayed = client
            .inbox()
            .replay(&ReplayLog {
                tenant: "maysternia".into(),
                from: "2000-01-01T00:00:00Z".into(),
                limit: None,
                after: after.take(),
            })
            .await
            .unwrap();
        total += replayed.replayed;
        if replayed.done {
            break;
        }
        after = replayed.next;
    }
    assert!(
        total >= 5,
        "every event of the story delivered again: {total}"
    );
    gw.wait_idle().await;
    assert_eq!(
        gw.events("maysternia", "loyalty.points.changed")
            .await
            .len(),
        2
    );
    assert_eq!(
        gw.events("maysternia", "loyalty.nps.updated").await.len(),
        1
    );
}
