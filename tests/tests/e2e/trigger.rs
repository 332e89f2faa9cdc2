//! `omnigate trigger` sends bundled samples signed as the provider would: a WooCommerce
//! order story triggered step by step becomes the derived events, in order.

use chrono::Utc;
use omnigate::config::TriggerArgs;
use omnigate::store::Retention;
use omnigate_tests::{Gateway, redis_store};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggering_a_woocommerce_order_story() {
    let gw = Gateway::start(redis_store(Retention::default()).await, Utc::now()).await;
    let source = gw
        .create_source(
            json!({"tenant": "trigger-shop", "provider": "woocommerce", "secret": "wc_s3cret_0123456789"}),
        )
        .await;
    let args = |sample: &str| TriggerArgs {
        list: false,
        provider: Some("woocommerce".into()),
        topic: Some(sample.into()),
        source: Some(source.id.clone()),
        secret: Some("wc_s3cret_0123456789".into()),
        url: gw.base.clone(),
        file: None,
    };
    for sample in [
        "order.created",
        "order.updated-processing",
        "order.updated-completed",
        "order.updated-refunded",
    ] {
        let (status, body) = omnigate::trigger::run(&args(sample)).await.unwrap();
        assert_eq!(status, 202, "{sample}: {body}");
    }
    let types: Vec<String> = gw
        .tenant_events("trigger-shop", None)
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        types,
        [
            "order.created",
            "order.paid",
            "order.fulfilled",
            "refund.created",
            "order.updated"
        ]
    );
    // A wrong secret is refused by the gateway, and said so.
    let mut wrong = args("order.created");
    wrong.secret = Some("nope".into());
    let (status, body) = omnigate::trigger::run(&wrong).await.unwrap();
    assert_eq!(status, 401, "{body}");
    assert!(omnigate::trigger::list().contains("order.updated-refunded"));
    let mut unknown = args("carts/update");
    unknown.provider = Some("shopify".into());
    assert!(omnigate::trigger::run(&unknown).await.is_err());
}
