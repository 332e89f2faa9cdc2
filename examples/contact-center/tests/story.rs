//! An agent looks a customer up; the 10-minute confirmation alert fires with a controlled
//! clock and does not fire when the order was paid in time.

use actix_web::{App, test, web};
use chrono::{DateTime, Duration, Utc};
use contact_center::plugin::{ContactCenter, registration};
use contact_center::timeline::Book;
use omnigate_sdk::api::{CreateInstallation, Scope};
use omnigate_sdk::state::{MemoryState, StateStore, Tracked};
use omnigate_sdk::testing::TestGateway;
use omnigate_sdk::{Client, Runtime};
use serde_json::Value;
use std::sync::{Arc, Mutex};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeline_and_the_unconfirmed_order_alert() {
    let gw = TestGateway::start().await;
    let admin = gw.admin();
    let created = admin
        .admin()
        .register_plugin(&registration())
        .await
        .unwrap();
    for tenant in ["slow-shop", "quick-shop"] {
        admin
            .admin()
            .install(
                &created.plugin.id,
                &CreateInstallation {
                    tenant: tenant.into(),
                    scopes: vec![Scope::EventsRead, Scope::EventsPublish, Scope::CustomerPii],
                    push_url: None,
                },
            )
            .await
            .unwrap();
    }
    let client = Client::builder(&gw.url, &created.api_key).build().unwrap();
    let books: Arc<dyn StateStore<Tracked<Book>>> = Arc::new(MemoryState::default());
    // The order was placed 2025-03-14T09:26:53Z; the clock starts there.
    let now: Arc<Mutex<DateTime<Utc>>> =
        Arc::new(Mutex::new("2025-03-14T09:27:00Z".parse().unwrap()));
    let clock_now = now.clone();
    let cc = Arc::new(ContactCenter {
        books: books.clone(),
        confirm_within: Duration::minutes(10),
        regular_orders: 3,
        clock: Arc::new(move || *clock_now.lock().unwrap()),
        tenants: Default::default(),
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(
        Runtime::new(client.clone(), cc.clone())
            .wait(std::time::Duration::from_millis(200))
            .run_until(async {
                let _ = stopped.await;
            }),
    );

    let slow = gw.source("shopify", "slow-shop").await;
    let quick = gw.source("shopify", "quick-shop").await;
    assert_eq!(gw.send_sample(&slow, "orders/create").await.0, 202);
    assert_eq!(gw.send_sample(&quick, "orders/create").await.0, 202);
    assert_eq!(gw.send_sample(&quick, "orders/paid").await.0, 202);
    // Wait until both shops' events were filed.
    for _ in 0..100 {
        let filed = |t: &'static str| {
            let books = books.clone();
            async move { books.load(t).await.unwrap().0.doc.customers.len() }
        };
        let quick_paid = books
            .load("quick-shop")
            .await
            .unwrap()
            .0
            .doc
            .unconfirmed
            .is_empty();
        if filed("slow-shop").await == 1 && filed("quick-shop").await == 1 && quick_paid {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // Nine minutes after the order was placed: nothing. Eleven minutes: the unpaid order
    // raises one alert, the paid one none; sweeping again raises nothing more. (Samples are
    // sent with fresh times, so the clock follows the order's own.)
    let placed: DateTime<Utc> = gw.events("slow-shop", "order.created").await[0].data["placed_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    *now.lock().unwrap() = placed + Duration::minutes(9);
    assert_eq!(cc.sweep(&client).await.unwrap(), 0);
    *now.lock().unwrap() = placed + Duration::minutes(11);
    assert_eq!(cc.sweep(&client).await.unwrap(), 1);
    assert_eq!(cc.sweep(&client).await.unwrap(), 0);
    let slow_alerts = gw.events("slow-shop", "service.alert").await;
    assert_eq!(slow_alerts.len(), 1);
    assert_eq!(slow_alerts[0].data["kind"], "order_unconfirmed");
    assert_eq!(slow_alerts[0].data["order_id"], "5938201746113");
    assert!(
        gw.events("quick-shop", "service.alert").await.is_empty(),
        "paid in time: no alert"
    );

    // The agent desk: by e-mail (the plugin has customer_pii) or by id.
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(books.clone()))
            .configure(contact_center::desk::routes),
    )
    .await;
    let req = test::TestRequest::get()
        .uri("/customers/quick-shop/severyna.tymoshchuk@example.com")
        .to_request();
    let timeline: Value = test::call_and_read_body_json(&app, req).await;
    assert_eq!(timeline["customer_id"], "7402918365521");
    assert_eq!(timeline["counts"]["order.created"], 1);
    assert_eq!(timeline["counts"]["order.paid"], 1);
    let req = test::TestRequest::get()
        .uri("/customers/quick-shop/nobody")
        .to_request();
    assert_eq!(test::call_service(&app, req).await.status(), 404);

    let _ = stop.send(());
    task.await.unwrap().unwrap();
}
