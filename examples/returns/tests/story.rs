//! A customer returns a cracked mug: the request is decided by the policy, and the return
//! is closed once refunded. Against the SDK's in-process gateway.

use omnigate_sdk::Runtime;
use omnigate_sdk::api::Scope;
use omnigate_sdk::state::{MemoryState, StateStore, Tracked};
use omnigate_sdk::testing::TestGateway;
use returns::plugin::{Returns, registration};
use returns::policy::{Book, Policy};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_within_policy_is_approved_and_closed_after_the_refund() {
    let gw = TestGateway::start().await;
    let plugin = gw
        .install(
            &registration(),
            "maysternia",
            &[Scope::EventsRead, Scope::EventsPublish],
        )
        .await;
    let client = plugin.client.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // The samples' order is from March 2025 while the test gateway stamps the request with
    // today's time (`X-Shopify-Triggered-At`): a window of ten years keeps it "within".
    let books: Arc<dyn StateStore<Tracked<Book>>> = Arc::new(MemoryState::default());
    let handler = Returns {
        policy: Policy {
            window_days: 3650,
            ..Policy::default()
        },
        books: books.clone(),
    };
    let task = tokio::spawn(
        Runtime::new(client, handler)
            .wait(Duration::from_millis(200))
            .run_until(async {
                let _ = stopped.await;
            }),
    );

    let shop = gw.source("shopify", "maysternia").await;
    // Ordered and delivered (17 March), then a return of one mug at 385.00 UAH: under the
    // 500 limit for automatic approval.
    for topic in ["orders/create", "fulfillments/update"] {
        let (status, body) = gw.send_sample(&shop, topic).await;
        assert_eq!(status, 202, "{topic}: {body}");
    }
    // A customer asks to return only after the parcel arrived.
    for _ in 0..100 {
        let (t, _) = books.load("maysternia").await.unwrap();
        if t.doc
            .orders
            .get("5938201746113")
            .is_some_and(|o| o.delivered_at.is_some())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = gw.send_sample(&shop, "returns/request").await;
    assert_eq!(status, 202, "{body}");
    let approved = gw
        .wait_for_events("maysternia", "returns.approved", 1)
        .await;
    assert_eq!(approved[0].data["return_id"], "8127364501");
    assert_eq!(approved[0].data["rule"], "within_policy");
    assert_eq!(approved[0].data["value"]["amount"], "385");
    assert!(gw.events("maysternia", "returns.declined").await.is_empty());

    let (status, _) = gw.send_sample(&shop, "refunds/create").await;
    assert_eq!(status, 202);
    let closed = gw.wait_for_events("maysternia", "returns.closed", 1).await;
    assert_eq!(closed[0].data["return_id"], "8127364501");
    assert_eq!(closed[0].data["refunded"], true);

    let _ = stop.send(());
    task.await.unwrap().unwrap();
}
