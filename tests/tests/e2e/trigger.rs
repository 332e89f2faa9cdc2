//! `omnigate trigger` sends bundled samples signed as the provider would: a WooCommerce
//! order story triggered step by step becomes the derived events, in order; `--set`
//! changes a field before signing, `--show` prints what would be sent.

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
        show: false,
        set: Vec::new(),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_changed_with_set_is_signed_and_mapped() {
    let gw = Gateway::start(redis_store(Retention::default()).await, Utc::now()).await;
    let source = gw
        .create_source(
            json!({"tenant": "set-shop", "provider": "shopify", "secret": "shpss_set_0123456789"}),
        )
        .await;
    let args = TriggerArgs {
        list: false,
        provider: Some("shopify".into()),
        topic: Some("fulfillments-update".into()),
        source: Some(source.id.clone()),
        secret: Some("shpss_set_0123456789".into()),
        url: gw.base.clone(),
        file: None,
        show: false,
        set: vec![
            "shipment_status=delayed".into(),
            "destination.country=PL".into(),
        ],
    };
    let shown = omnigate::trigger::show(&TriggerArgs {
        show: true,
        source: None,
        secret: None,
        ..args.clone()
    })
    .unwrap();
    assert!(shown.starts_with("# topic: fulfillments/update"), "{shown}");
    assert!(shown.contains(r#""shipment_status": "delayed""#), "{shown}");

    let (status, body) = omnigate::trigger::run(&args).await.unwrap();
    assert_eq!(status, 202, "{body}");
    let events = gw.tenant_events("set-shop", Some("shipment.updated")).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["status"], "delayed");

    let bad = TriggerArgs {
        set: vec!["no-equals-sign".into()],
        ..args
    };
    let err = omnigate::trigger::run(&bad).await.unwrap_err();
    assert!(err.to_string().contains("PATH=VALUE"), "{err}");
}
