//! A shop's parcel is delayed: the customer is told once, however often the news arrives.

use std::sync::Arc;

use delivery_news::{DeliveryNews, NoticeRequested, SUBSCRIPTIONS};
use omnigate_sdk::api::ReplayLog;
use omnigate_sdk::testing::TestGateway;
use omnigate_sdk::{PluginEvent, Runtime};

const TENANT: &str = "news-shop";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_parcel_is_told_once() {
    let started = chrono::Utc::now();
    let gw = TestGateway::start().await;
    let plugin = gw
        .plugin("Delivery news", SUBSCRIPTIONS, TENANT)
        .publishes::<NoticeRequested>()
        .await;
    let shop = gw.source("shopify", TENANT).await;
    let running = Runtime::new(plugin.client.clone(), Arc::new(DeliveryNews::in_memory())).spawn();

    // The order (the gateway keeps its number and language for its shipments), then the delay.
    let (status, answer) = gw.send_sample(&shop, "orders-create").await;
    assert_eq!(status, 202, "{answer}");
    let delayed = ["shipment_status=delayed"];
    let (status, answer) = gw
        .send_sample_with(&shop, "fulfillments-update", &delayed)
        .await;
    assert_eq!(status, 202, "{answer}");
    gw.wait_idle().await;

    let notices = gw.events(TENANT, NoticeRequested::TYPE).await;
    assert_eq!(notices.len(), 1, "{notices:?}");
    let notice = &notices[0];
    assert_eq!(notice.subject, "order/5938201746113");
    assert_eq!(notice.data["order_id"], "5938201746113");
    assert_eq!(notice.data["order_number"], "#3108");
    assert_eq!(notice.data["shipment_id"], "5301948276114");
    assert_eq!(notice.data["status"], "delayed");
    assert_eq!(notice.data["locale"], "uk");
    assert_eq!(notice.data["message_key"], "delivery_news.delayed");

    // Shopify says "delayed" again in a new webhook (a new event for the gateway): the
    // plugin's state remembers the customer was told.
    let (status, _) = gw
        .send_sample_with(&shop, "fulfillments-update", &delayed)
        .await;
    assert_eq!(status, 202);
    gw.wait_idle().await;
    assert_eq!(gw.events(TENANT, "shipment.updated").await.len(), 2);
    // Every event delivered again (at least once means this can happen): nothing new.
    let replayed = plugin
        .client
        .inbox()
        .replay(&ReplayLog {
            tenant: TENANT.into(),
            from: started.to_rfc3339(),
            limit: None,
            after: None,
        })
        .await
        .unwrap();
    assert_eq!(replayed.replayed, 2);
    gw.wait_idle().await;
    assert_eq!(gw.events(TENANT, NoticeRequested::TYPE).await.len(), 1);

    let stats = running.stop().await.expect("the runtime ran");
    assert_eq!((stats.handled, stats.failed), (4, 0), "{stats:?}");
    gw.stop().await;
}
