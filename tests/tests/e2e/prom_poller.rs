//! A Prom.ua shop: the gateway polls its orders by modification time with the shop's API
//! token, pages downwards by id, and diffs each order against the last one kept, so each
//! status tells its fact once however often a window is read again. The API here is a
//! local fake of Prom.ua's documented `GET /orders/list` (`last_modified_from`, `limit`,
//! `last_id`), answering two orders a page.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use chrono::{NaiveDateTime, Utc};
use omnigate::store::Retention;
use omnigate_tests::{Gateway, redis_store};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

const TOKEN: &str = "prom-api-token-0123456789";

/// The fake Prom.ua: orders with the time each was last modified.
#[derive(Default)]
struct Prom {
    orders: Mutex<Vec<(chrono::DateTime<Utc>, Value)>>,
}

async fn list(
    req: HttpRequest,
    q: web::Query<HashMap<String, String>>,
    fake: web::Data<Prom>,
) -> HttpResponse {
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    if bearer != Some(&format!("Bearer {TOKEN}")) {
        return HttpResponse::Unauthorized().json(json!({"error": "Unauthorized"}));
    }
    let since = q
        .get("last_modified_from")
        .and_then(|t| NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S").ok())
        .map(|t| t.and_utc());
    let last_id: Option<i64> = q.get("last_id").and_then(|i| i.parse().ok());
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(100)
        .min(2);
    let mut orders: Vec<Value> = fake
        .orders
        .lock()
        .unwrap()
        .iter()
        .filter(|(at, _)| since.is_none_or(|s| *at >= s))
        .map(|(_, o)| o.clone())
        .filter(|o| last_id.is_none_or(|l| o["id"].as_i64().unwrap() <= l))
        .collect();
    orders.sort_by_key(|o| std::cmp::Reverse(o["id"].as_i64().unwrap()));
    orders.truncate(limit);
    HttpResponse::Ok().json(json!({"orders": orders}))
}

impl Prom {
    fn start() -> (web::Data<Prom>, String) {
        let data = web::Data::new(Prom::default());
        let shared = data.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .route("/orders/list", web::get().to(list))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        (data, base)
    }

    /// Saves an order as modified now (a new one, or a new state of one).
    fn save(&self, order: Value) {
        let mut orders = self.orders.lock().unwrap();
        orders.retain(|(_, o)| o["id"] != order["id"]);
        orders.push((Utc::now(), order));
    }
}

fn order(id: i64, status: &str) -> Value {
    json!({
        "id": id, "date_created": "2026-11-30T10:00:00+02:00",
        "client_first_name": "Олена", "client_last_name": "Коваль", "client_id": 52077,
        "email": "olena@example.com", "phone": "+380501234567",
        "price": "1 200,50 грн.", "full_price": "1 270,50 грн.",
        "status": status, "status_name": status,
        "products": [{"id": 1708, "external_id": "TEA-GRN-100", "name": "Чай зелений",
                      "quantity": 2, "price": "600,25 грн."}],
        "payment_option": {"id": 1, "name": "Оплата карткою"},
        "cancellation": if status == "canceled" { json!({"initiator": "buyer", "reason": "Передумав"}) } else { Value::Null },
        "source": "portal"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prom_shop_is_polled_and_each_status_told_once() {
    let (fake, base) = Prom::start();
    let gw = Gateway::start_with(redis_store(Retention::default()).await, Utc::now(), |s| {
        s.poll_allow_http = true;
    })
    .await;
    let res = gw
        .admin(Method::POST, "/v1/sources")
        .json(&json!({"tenant": "prom-shop", "provider": "prom",
                      "credentials": {"token": TOKEN},
                      "options": {"api_base": base, "poll_interval_secs": 1}}))
        .send()
        .await
        .unwrap();
    let status = res.status();
    let created: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["mode"], "poll");
    let id = created["id"].as_str().unwrap().to_string();
    // The first poll starts the window at the source's creation.
    for _ in 0..100 {
        let s = gw.admin_json(&format!("/v1/sources/{id}")).await;
        if s["poll"]["cursor"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Three orders (two pages); the delivered one is seen first in that status.
    fake.save(order(101, "pending"));
    fake.save(order(102, "paid"));
    fake.save(order(103, "delivered"));
    let types = gw.event_types_when("prom-shop", 5).await;
    assert_eq!(
        types,
        [
            "order.created",
            "order.created",
            "order.created",
            "order.fulfilled",
            "order.paid"
        ]
    );
    let created = gw.tenant_events("prom-shop", Some("order.created")).await;
    let first = created
        .iter()
        .find(|e| e["subject"] == "order/101")
        .unwrap();
    assert_eq!(
        first["data"]["total"],
        json!({"amount": "1270.50", "currency": "UAH"})
    );
    assert_eq!(first["data"]["lines"][0]["unit_price"]["amount"], "600.25");
    assert_eq!(first["data"]["customer"]["name"], "Олена Коваль");

    // Order 101 is paid, then cancelled by the buyer: each status once, then nothing more
    // while the window is read again and again.
    fake.save(order(101, "paid"));
    assert_eq!(gw.event_types_when("prom-shop", 6).await.len(), 6);
    fake.save(order(101, "canceled"));
    let types = gw.event_types_when("prom-shop", 7).await;
    assert_eq!(types.iter().filter(|t| *t == "order.paid").count(), 2);
    assert_eq!(types.iter().filter(|t| *t == "order.cancelled").count(), 1);
    let cancelled = gw.tenant_events("prom-shop", Some("order.cancelled")).await;
    assert_eq!(cancelled[0]["data"]["reason"], "customer");
    assert_eq!(cancelled[0]["data"]["refund_expected"], true);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        gw.event_types_when("prom-shop", 7).await.len(),
        7,
        "a window read again adds nothing"
    );

    let source = gw.admin_json(&format!("/v1/sources/{id}")).await;
    assert_eq!(source["poll"]["polling"], true, "{source:#}");
    assert!(source["poll"]["last_error"].is_null(), "{source:#}");
    assert!(
        !source.to_string().contains(TOKEN),
        "the token is write-only"
    );
    gw.stop().await;
}
